//! Loading the records of a CSV or TSV file in chunks. The calling thread
//! reads the file in blocks and cuts it into chunks of whole records
//! ([`text::last_record_end`]); workers decode each chunk whole, split it
//! into records ([`split`]), and normalise, check and convert them. Chunks
//! go to the workers in turn and come back in the same turn, so rows reach
//! the loader in file order. Parsing belongs on the workers: on a machine
//! of two cores a reading thread that also parsed every record took six
//! tenths of a worker's CPU time from the two of them, while cutting only
//! looks at quotes and line ends. Decoding a chunk whole and splitting the
//! text, rather than parsing bytes with `csv` and decoding field by field,
//! cut a sixth of the workers' time: no decoder set up per field, no copy
//! of every field, no second UTF-8 check per record.
//! With one worker the calling thread does the same work itself.
//!
//! A worker numbers rows and lines within its chunk; they are renumbered
//! in file order as they are accepted, from the rows and lines of the
//! chunks before. At most a few chunks are in flight, so memory stays
//! flat, and the buffers of a returned chunk are reused for the next one.
//! The sink is only ever called on the calling thread.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc;

use jp::encoding::Encoding;

use crate::validate::{record_line, reject, Issue, RejectKind};

use super::loader::{Loader, RowWork};
use super::report::Tally;
use super::split::{self, Span, Splitter};
use super::text::{self, FieldDecoder, Scope};
use super::{IngestError, Rows, Sink};

/// Bytes read at a time; a chunk is about this size.
const BLOCK: usize = 256 * 1024;

fn csv_reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes)
}

/// Reading bytes from memory fails only if `csv` itself does.
fn parse_error(e: csv::Error) -> io::Error {
    io::Error::other(e)
}

/// The header record, the line it starts on and the line after it.
pub(crate) struct Header {
    pub(crate) record: csv::ByteRecord,
    pub(crate) line: usize,
    data_line: usize,
}

/// The file's bytes, read in blocks, from the start of a record on.
pub(crate) struct Chunks {
    file: File,
    delimiter: u8,
    /// Read and not yet handed out; always starts where a record starts.
    pending: Vec<u8>,
    /// Below this length, looking for a record's end again is pointless:
    /// it was not found in what is pending now. Doubling it keeps a huge
    /// record (an unclosed quote) from being scanned over and over.
    look_from: usize,
    eof: bool,
    /// A NUL byte was read: not text, past the head [`text::sniff`] saw.
    nul: bool,
    /// `"` in the header, for the count of the whole file (see [`Renumber`]).
    quotes: usize,
}

impl Chunks {
    /// The file after any BOM, read as `encoding` (what [`text::sniff`] found).
    pub(crate) fn open(path: &Path, encoding: Encoding, delimiter: u8) -> io::Result<Chunks> {
        Ok(Chunks {
            file: text::open_records(path, encoding)?,
            delimiter,
            pending: Vec::with_capacity(2 * BLOCK),
            look_from: BLOCK,
            eof: false,
            nul: false,
            quotes: 0,
        })
    }

    /// Appends one block to `pending`.
    fn fill(&mut self) -> io::Result<()> {
        let start = self.pending.len();
        let read = (&mut self.file)
            .take(BLOCK as u64)
            .read_to_end(&mut self.pending)?;
        self.eof = read < BLOCK;
        self.nul |= memchr::memchr(0, &self.pending[start..]).is_some();
        Ok(())
    }

    /// The first record, or `None` when the file has none.
    pub(crate) fn header(&mut self) -> io::Result<Option<Header>> {
        loop {
            let mut reader = csv_reader(&self.pending, self.delimiter);
            let mut record = csv::ByteRecord::new();
            let found = reader.read_byte_record(&mut record).map_err(parse_error)?;
            let end = usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
            let data_line = usize::try_from(reader.position().line()).unwrap_or(usize::MAX);
            drop(reader);
            // A record reaching the end of what was read may go on.
            if self.eof || (found && end < self.pending.len()) {
                if !found {
                    return Ok(None);
                }
                let end = end.min(self.pending.len());
                self.quotes = memchr::memchr_iter(b'"', &self.pending[..end]).count();
                let line = record_line(&self.pending, record.position()).max(1);
                self.pending.drain(..end);
                return Ok(Some(Header {
                    line,
                    record,
                    data_line,
                }));
            }
            let target = (2 * self.pending.len()).max(BLOCK);
            while !self.eof && self.pending.len() < target {
                self.fill()?;
            }
        }
    }

    /// The next chunk of whole records in `spare`'s buffers, `None` at the end.
    fn next_chunk(&mut self, mut spare: Chunk) -> io::Result<Option<Chunk>> {
        loop {
            let end = if self.eof {
                Some(self.pending.len()).filter(|&n| n > 0)
            } else if self.pending.len() >= self.look_from {
                let end = text::last_record_end(&self.pending, self.delimiter);
                if end.is_none() {
                    self.look_from = 2 * self.pending.len();
                }
                end
            } else {
                None
            };
            if let Some(end) = end {
                spare.bytes.clear();
                spare.bytes.extend_from_slice(&self.pending[end..]);
                self.pending.truncate(end);
                std::mem::swap(&mut self.pending, &mut spare.bytes);
                self.look_from = BLOCK;
                return Ok(Some(spare));
            }
            if self.eof {
                return Ok(None);
            }
            self.fill()?;
        }
    }
}

/// A checked row: its line within the chunk and where its issues end in
/// [`Chunk::issues`]. Its cells are the next row of [`Chunk::cells`].
struct CheckedRow {
    line: usize,
    issues_end: usize,
}

/// A chunk's bytes and, once checked, its rows: their cells and issues
/// one after another. The vectors go round between the reading thread and
/// the workers and are reused, so that a chunk allocates none of them: a
/// profile showed page faults where each chunk's vectors grew from empty.
struct Chunk {
    bytes: Vec<u8>,
    rows: Vec<CheckedRow>,
    cells: Rows,
    issues: Vec<Issue>,
    /// Issues of rows checked without details, only counted.
    tally: Tally,
}

impl Chunk {
    /// Empty buffers for rows of `width` cells.
    fn new(width: usize) -> Chunk {
        Chunk {
            bytes: Vec::new(),
            rows: Vec::new(),
            cells: Rows::with_capacity(width, 0),
            issues: Vec::new(),
            tally: Tally::default(),
        }
    }
}

/// What checking a chunk gave.
struct Checked {
    chunk: Chunk,
    /// The line (within the chunk) of the first record the file's
    /// encoding does not read: the ingest stops there.
    undecodable: Option<usize>,
    /// Line ends in the chunk.
    lines: usize,
    quotes: usize,
}

/// What a worker keeps between chunks so that a chunk costs no new buffers.
struct Buffers {
    encoding: Encoding,
    /// The chunk decoded, when it is not UTF-8 already.
    text: Vec<u8>,
    spans: Vec<Span>,
    scratch: String,
}

impl Buffers {
    fn new(encoding: Encoding) -> Buffers {
        Buffers {
            encoding,
            text: Vec::new(),
            spans: Vec::new(),
            scratch: String::new(),
        }
    }
}

/// The chunk as text: UTF-8 is checked in place, Shift_JIS decoded whole
/// (records end at line ends, below 0x40, so never inside a character).
/// `None` when some record does not read as the encoding.
fn decode<'a>(bytes: &'a [u8], encoding: Encoding, text: &'a mut Vec<u8>) -> Option<&'a str> {
    if encoding != Encoding::ShiftJis {
        return simdutf8::basic::from_utf8(bytes).ok();
    }
    jp::shift_jis::decode(bytes, text)
}

/// The line (within the chunk) of the first record `encoding` does not
/// read, for a chunk that did not decode: read record by record as the
/// header is. A byte the encoding does not read is in some field, and a
/// character cut by a delimiter, quote or line end leaves a field ending
/// in half a character, so some record is found; 1 if none were.
fn first_undecodable_line(bytes: &[u8], encoding: Encoding, delimiter: u8) -> io::Result<usize> {
    let mut reader = csv_reader(bytes, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut decoder = FieldDecoder::new(encoding);
    while reader.read_byte_record(&mut record).map_err(parse_error)? {
        if decoder.fields(&record).is_err() {
            return Ok(record_line(bytes, record.position()));
        }
    }
    Ok(1)
}

/// Decodes, splits and checks every record of one chunk. Rows are
/// numbered from 0 and lines from 1 within the chunk (see [`Renumber`]).
fn check_chunk(
    work: &RowWork,
    buffers: &mut Buffers,
    mut chunk: Chunk,
    delimiter: u8,
) -> io::Result<Checked> {
    let Chunk {
        bytes,
        rows,
        cells,
        issues,
        tally,
    } = &mut chunk;
    let quotes = memchr::memchr_iter(b'"', bytes).count();
    let Buffers {
        encoding,
        text,
        spans,
        scratch,
    } = buffers;
    let Some(text) = decode(bytes, *encoding, text) else {
        let line = first_undecodable_line(bytes, *encoding, delimiter)?;
        return Ok(Checked {
            chunk,
            undecodable: Some(line),
            lines: 0,
            quotes,
        });
    };
    let mut splitter = Splitter::new(text, delimiter);
    rows.clear();
    cells.clear();
    issues.clear();
    tally.clear();
    let mut fields: Vec<&str> = Vec::new();
    while let Some(line) = splitter.next_record(spans, scratch) {
        let mut record = reuse(fields);
        record.extend(spans.iter().map(|&span| split::field(text, scratch, span)));
        work.check(rows.len(), line, &record, cells, issues, tally);
        rows.push(CheckedRow {
            line,
            issues_end: issues.len(),
        });
        fields = reuse(record);
    }
    let lines = splitter.lines();
    Ok(Checked {
        chunk,
        undecodable: None,
        lines,
        quotes,
    })
}

/// An empty vector of another lifetime in the room of `fields`: the
/// record's fields borrow the splitter's scratch text, which the next
/// record rewrites, so one vector cannot hold both records' fields, but
/// its allocation can be handed on (collecting into a vector of the same
/// layout reuses it).
fn reuse<'b>(mut fields: Vec<&str>) -> Vec<&'b str> {
    fields.clear();
    fields.into_iter().map(|_| "").collect()
}

/// Gives the rows of chunks, taken in file order, their numbers in the file.
struct Renumber {
    /// Row number of the next row (the header is row 1).
    next_row: usize,
    /// Line the next chunk starts on.
    line: usize,
    /// `"` so far: an odd count at the end means a quoted field is never
    /// closed. 0x22 is never part of a multi-byte character in UTF-8 nor
    /// Shift_JIS, so counting bytes is exact.
    quotes: usize,
}

impl Renumber {
    fn accept<S: Sink>(
        &mut self,
        checked: Checked,
        loader: &mut Loader<'_, S>,
        path: &Path,
        encoding: Encoding,
    ) -> Result<Chunk, IngestError<S::Error>> {
        if let Some(line) = checked.undecodable {
            return Err(past_the_head(path, encoding, self.line + line - 1));
        }
        let mut chunk = checked.chunk;
        let mut issues = chunk.issues.drain(..);
        let mut issues_start = 0;
        for row in chunk.rows.drain(..) {
            let line = self.line + row.line - 1;
            let row_issues = issues.by_ref().take(row.issues_end - issues_start);
            issues_start = row.issues_end;
            let row_issues = row_issues.map(|mut issue| {
                issue.row = self.next_row;
                issue.line = line;
                issue
            });
            loader.accept_issues(self.next_row, line, row_issues);
            self.next_row += 1;
        }
        drop(issues);
        loader.accept_rows(&mut chunk.cells)?;
        loader.add_tally(&mut chunk.tally);
        self.line += checked.lines;
        self.quotes += checked.quotes;
        Ok(chunk)
    }
}

/// The file turned out unusable past the head the first pass read (a
/// record the encoding does not read, a NUL byte): the verdict on the
/// whole file, worded as it would have been had the first pass read it
/// all. Only a file whose head reads as one encoding and whose rest only
/// as the other passes that pass; it is refused at the line it changes.
pub(crate) fn past_the_head<E>(path: &Path, encoding: Encoding, line: usize) -> IngestError<E> {
    match text::sniff(path, Scope::Whole) {
        Err(e) => e.into(),
        Ok(_) => IngestError::Rejected(reject(
            RejectKind::Undecodable,
            line,
            None,
            format!(
                "{line}行目で文字コードが変わっています: ファイルの先頭は {encoding} ですが、この行は {encoding} として読めません"
            ),
            format!(
                "the encoding changes at line {line}: the start of the file is {encoding}, but this line does not read as {encoding}"
            ),
        )),
    }
}

fn stopped() -> io::Error {
    io::Error::other("a row-checking thread stopped")
}

/// Reads every record after the header into `loader`, checking them on
/// `workers` threads (on this one when `workers` is 1). Returns whether
/// the file has an odd number of `"` (a quoted field left open).
pub(crate) fn load_rows<S: Sink>(
    path: &Path,
    mut chunks: Chunks,
    header: &Header,
    loader: &mut Loader<'_, S>,
    workers: usize,
    encoding: Encoding,
) -> Result<bool, IngestError<S::Error>> {
    let mut renumber = Renumber {
        next_row: 2,
        line: header.data_line,
        quotes: chunks.quotes,
    };
    let delimiter = chunks.delimiter;
    let not_text = |chunks: &Chunks, renumber: &Renumber| {
        chunks
            .nul
            .then(|| past_the_head(path, encoding, renumber.line))
    };
    if workers <= 1 {
        let work = loader.work();
        let mut buffers = Buffers::new(encoding);
        let mut spare = Chunk::new(loader.width());
        while let Some(chunk) = chunks.next_chunk(spare)? {
            if let Some(e) = not_text(&chunks, &renumber) {
                return Err(e);
            }
            let checked = check_chunk(&work, &mut buffers, chunk, delimiter)?;
            spare = renumber.accept(checked, loader, path, encoding)?;
        }
        return Ok(renumber.quotes % 2 == 1);
    }
    std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (chunk_tx, chunk_rx) = mpsc::channel::<Chunk>();
            let (done_tx, done_rx) = mpsc::channel::<io::Result<Checked>>();
            let work = loader.work();
            scope.spawn(move || {
                let mut buffers = Buffers::new(encoding);
                for chunk in chunk_rx {
                    let checked = check_chunk(&work, &mut buffers, chunk, delimiter);
                    if done_tx.send(checked).is_err() {
                        break;
                    }
                }
            });
            to_workers.push(chunk_tx);
            from_workers.push(done_rx);
        }
        let mut spare: Vec<Chunk> = Vec::new();
        let width = loader.width();
        // The worker of each chunk in flight, oldest first.
        let mut in_flight: VecDeque<usize> = VecDeque::new();
        let mut turn = 0;
        let result = loop {
            let buffers = spare.pop().unwrap_or_else(|| Chunk::new(width));
            let next = match chunks.next_chunk(buffers) {
                Ok(next) => next,
                Err(e) => break Err(IngestError::Io(e)),
            };
            if let Some(e) = not_text(&chunks, &renumber) {
                break Err(e);
            }
            let finished = next.is_none();
            if let Some(chunk) = next {
                let worker = turn % workers;
                turn += 1;
                if to_workers[worker].send(chunk).is_err() {
                    break Err(IngestError::Io(stopped()));
                }
                in_flight.push_back(worker);
            }
            let keep = if finished { 0 } else { 2 * workers };
            let mut delivered = Ok(());
            while in_flight.len() > keep {
                let Some(worker) = in_flight.pop_front() else {
                    break;
                };
                let checked = match from_workers[worker].recv() {
                    Ok(Ok(checked)) => checked,
                    Ok(Err(e)) => {
                        delivered = Err(IngestError::Io(e));
                        break;
                    }
                    Err(_) => {
                        delivered = Err(IngestError::Io(stopped()));
                        break;
                    }
                };
                match renumber.accept(checked, loader, path, encoding) {
                    Ok(chunk) => spare.push(chunk),
                    Err(e) => {
                        delivered = Err(e);
                        break;
                    }
                }
            }
            if delivered.is_err() || finished {
                break delivered;
            }
        };
        // Closing the channels ends the workers; the scope waits for them.
        drop(to_workers);
        result.map(|()| renumber.quotes % 2 == 1)
    })
}
