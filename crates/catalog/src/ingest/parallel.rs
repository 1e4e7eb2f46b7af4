//! Checking CSV rows on worker threads while the calling thread reads the
//! file and splits it into records: decoding, normalising and converting
//! cells costs more than that, and rows share no state, so chunks of
//! records go to the workers in turn and come back in the same turn, which
//! keeps file order.
//! At most a few chunks are in flight, so memory stays flat, and the
//! records of a returned chunk are reused for the next one. The sink is
//! only ever called on the calling thread.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::mpsc;

use store::datastore::Cell;

use crate::validate::Issue;

use super::loader::Loader;
use super::text;
use super::{line_of, read_error, IngestError, Sink};

/// Records per chunk handed to a worker.
const CHUNK_ROWS: usize = 256;

struct Chunk {
    /// Row number of the first record (the header is row 1).
    first_row: usize,
    records: Vec<csv::ByteRecord>,
    len: usize,
}

/// A checked row: its number, line, cells and issues.
type CheckedRow = (usize, usize, Vec<Cell>, Vec<Issue>);

struct Checked {
    /// The rows, or why a field could not be decoded (the ingest stops
    /// there, so the chunk's rows before it need not be delivered).
    rows: io::Result<Vec<CheckedRow>>,
    /// Handed back for reuse.
    records: Vec<csv::ByteRecord>,
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
    encoding: jp::encoding::Encoding,
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
                let mut decoder = text::FieldDecoder::new(encoding);
                for chunk in chunk_rx {
                    let check = |(i, record): (usize, &csv::ByteRecord)| {
                        let row = chunk.first_row + i;
                        let line = line_of(record);
                        let (out, issues) = work.check(row, line, &decoder.fields(record)?);
                        Ok((row, line, out, issues))
                    };
                    let rows = chunk
                        .records
                        .iter()
                        .take(chunk.len)
                        .enumerate()
                        .map(check)
                        .collect();
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
        let mut spare: Vec<Vec<csv::ByteRecord>> = Vec::new();
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
                    records.push(csv::ByteRecord::new());
                }
                match csv.read_byte_record(&mut records[len]) {
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
                match checked.rows {
                    Ok(rows) => {
                        for (row, line, out, issues) in rows {
                            if let Err(e) = loader.accept(row, line, out, issues) {
                                delivered = Err(e);
                                break;
                            }
                        }
                    }
                    Err(e) => delivered = Err(IngestError::Io(e)),
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
