//! Checking CSV rows on worker threads while the calling thread reads and
//! decodes the file: normalising and converting cells costs more than
//! parsing them, and rows share no state, so chunks of records go to the
//! workers in turn and come back in the same turn, which keeps file order.
//! At most a few chunks are in flight, so memory stays flat, and the
//! records of a returned chunk are reused for the next one. The sink is
//! only ever called on the calling thread.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::mpsc;

use store::datastore::Cell;

use crate::validate::Issue;

use super::loader::Loader;
use super::{line_of, read_error, IngestError, Sink};

/// Records per chunk handed to a worker.
const CHUNK_ROWS: usize = 256;

struct Chunk {
    /// Row number of the first record (the header is row 1).
    first_row: usize,
    records: Vec<csv::StringRecord>,
    len: usize,
}

struct Checked {
    rows: Vec<(usize, usize, Vec<Cell>, Vec<Issue>)>,
    /// Handed back for reuse.
    records: Vec<csv::StringRecord>,
}

fn stopped() -> io::Error {
    io::Error::other("a row-checking thread stopped")
}

/// Reads every remaining record of `csv` into `loader`, checking rows on
/// `workers` threads.
pub(crate) fn load_rows<S: Sink, R: Read>(
    csv: &mut csv::Reader<R>,
    loader: &mut Loader<'_, S>,
    workers: usize,
) -> Result<(), IngestError<S::Error>> {
    let workers = workers.max(1);
    std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (chunk_tx, chunk_rx) = mpsc::channel::<Chunk>();
            let (done_tx, done_rx) = mpsc::channel::<Checked>();
            let work = loader.work();
            scope.spawn(move || {
                for chunk in chunk_rx {
                    let mut rows = Vec::with_capacity(chunk.len);
                    for (i, record) in chunk.records.iter().take(chunk.len).enumerate() {
                        let row = chunk.first_row + i;
                        let line = line_of(record);
                        let cells: Vec<&str> = record.iter().collect();
                        let (out, issues) = work.check(row, line, &cells);
                        rows.push((row, line, out, issues));
                    }
                    let checked = Checked {
                        rows,
                        records: chunk.records,
                    };
                    if done_tx.send(checked).is_err() {
                        break;
                    }
                }
            });
            to_workers.push(chunk_tx);
            from_workers.push(done_rx);
        }
        let mut spare: Vec<Vec<csv::StringRecord>> = Vec::new();
        // The worker of each chunk in flight, oldest first.
        let mut in_flight: VecDeque<usize> = VecDeque::new();
        let mut next_row = 2;
        let mut turn = 0;
        let result = loop {
            let mut records = spare.pop().unwrap_or_default();
            let mut len = 0;
            let mut failed = None;
            while len < CHUNK_ROWS {
                if records.len() == len {
                    records.push(csv::StringRecord::new());
                }
                match csv.read_record(&mut records[len]) {
                    Ok(true) => len += 1,
                    Ok(false) => break,
                    Err(e) => {
                        failed = Some(read_error(e));
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            let finished = len < CHUNK_ROWS;
            if len > 0 {
                let worker = turn % workers;
                turn += 1;
                let chunk = Chunk {
                    first_row: next_row,
                    records,
                    len,
                };
                if to_workers[worker].send(chunk).is_err() {
                    break Err(IngestError::Io(stopped()));
                }
                next_row += len;
                in_flight.push_back(worker);
            }
            let keep = if finished { 0 } else { 2 * workers };
            let mut delivered = Ok(());
            while in_flight.len() > keep {
                let Some(worker) = in_flight.pop_front() else {
                    break;
                };
                let Ok(checked) = from_workers[worker].recv() else {
                    delivered = Err(IngestError::Io(stopped()));
                    break;
                };
                for (row, line, out, issues) in checked.rows {
                    if let Err(e) = loader.accept(row, line, out, issues) {
                        delivered = Err(e);
                        break;
                    }
                }
                spare.push(checked.records);
                if delivered.is_err() {
                    break;
                }
            }
            if delivered.is_err() || finished {
                break delivered;
            }
        };
        // Closing the channels ends the workers; the scope waits for them.
        drop(to_workers);
        result
    })
}
