//! Loading an uploaded resource file into a datastore table, what CKAN
//! needs xloader for: CSV, TSV, xlsx and xls, streamed so that memory stays
//! flat however large the file.
//!
//! The file is read from disk (uploads are saved first), so a CSV can be
//! read twice: its head once to decide its encoding and reject what cannot
//! be used before anything is loaded, then all of it in chunks of whole
//! records, parsed and checked on worker threads (see `text` and
//! `chunks`). An Excel workbook's first non-empty sheet is read with title rows
//! above the header skipped and reported; its cells become text first, so
//! CSV and Excel rows meet the same [`RowChecker`](crate::validate::RowChecker)
//! and get the same normalisation and report as [`validate`](crate::validate::validate).
//!
//! The caller's [`Sink`] receives the [`Plan`] (the table's fields) first,
//! then rows in batches of at most [`Options::batch_size`], typed by the
//! standard dataset the header was recognised as (see `columns` for why an
//! unknown file is all text). [`ingest`] returns the [`IngestReport`] to
//! keep with the resource. The calls are synchronous: an async caller runs
//! ingest on a blocking thread and forwards batches over a channel. When
//! ingest returns an error after batches were sent, the caller discards
//! what it wrote (a table is loaded whole or not at all).

mod chunks;
mod columns;
mod excel;
mod loader;
mod report;
mod rows;
mod split;
mod text;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use store::datastore::Field;

use crate::standard::{self, Schema};
use crate::validate::{self, reject, RejectKind, Rejected};

pub use columns::store_type;
pub use report::{ColumnCounts, Counts, IngestReport, SchemaSummary};
pub use rows::Rows;

/// The formats a resource file is loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Xlsx,
    Xls,
}

impl Format {
    /// A resource's declared format, by CKAN format name, media type or
    /// file extension (`CSV`, `text/csv`, `.xlsx`).
    pub fn from_name(name: &str) -> Option<Format> {
        let n = name.trim().trim_start_matches('.').to_ascii_lowercase();
        match n.as_str() {
            "csv" | "text/csv" | "application/csv" => Some(Format::Csv),
            "tsv" | "text/tab-separated-values" => Some(Format::Tsv),
            "xlsx" | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
                Some(Format::Xlsx)
            }
            "xls" | "application/vnd.ms-excel" => Some(Format::Xls),
            _ => None,
        }
    }

    /// The format the first bytes show: a zip (`PK\x03\x04`) is xlsx, an
    /// OLE2 compound file (`D0 CF 11 E0`) is xls; text shows nothing.
    pub fn from_magic(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"PK\x03\x04") {
            Some(Format::Xlsx)
        } else if head.starts_with(b"\xD0\xCF\x11\xE0") {
            Some(Format::Xls)
        } else {
            None
        }
    }

    /// The format to read a file as: the magic bytes when they show a
    /// workbook (a file declared CSV may really be one), else the declared
    /// format when it is a text one, else CSV.
    pub fn detect(path: &Path, declared: Option<&str>) -> io::Result<Format> {
        let mut head = [0u8; 8];
        let mut file = File::open(path)?;
        let mut filled = 0;
        while filled < head.len() {
            match file.read(&mut head[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if let Some(format) = Format::from_magic(&head[..filled]) {
            return Ok(format);
        }
        Ok(match declared.and_then(Format::from_name) {
            Some(Format::Tsv) => Format::Tsv,
            // A workbook without a workbook's bytes: text sent as Excel.
            _ => Format::Csv,
        })
    }
}

/// How to ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Files larger than this are refused.
    pub max_bytes: u64,
    /// Load as this standard schema instead of recognising the header.
    pub schema: Option<String>,
    /// Minimum header match score (see [`standard::HeaderMatch::score`]).
    pub threshold: f64,
    /// Rows per batch handed to the sink.
    pub batch_size: usize,
    /// Issue details kept in the report; counts are always complete.
    pub max_issue_details: usize,
    /// Threads that check CSV rows while the calling thread reads: 0 picks
    /// by the machine's cores for files of a few megabytes and more, 1
    /// checks on the calling thread. The result is the same either way.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_bytes: 100 * 1024 * 1024,
            schema: None,
            threshold: standard::DEFAULT_THRESHOLD,
            batch_size: 5_000,
            max_issue_details: 1_000,
            threads: 0,
        }
    }
}

/// What the table will look like, sent before any row.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// In the order of the cells of every row. `info` holds the header as
    /// written (`label`, `original_header`), its 1-based `column`, and for
    /// a recognised schema `standard_schema`, `standard_column` and the
    /// standard type's names.
    pub fields: Vec<Field>,
    pub schema: Option<&'static Schema>,
    pub format: Format,
    /// CSV and TSV only.
    pub encoding: Option<jp::encoding::Encoding>,
    /// Excel only.
    pub sheet: Option<String>,
    /// As in [`IngestReport::header_row`].
    pub header_row: usize,
    /// The header cells as written.
    pub header: Vec<String>,
}

/// Where ingested rows go.
pub trait Sink {
    type Error;
    /// Called once, before any batch.
    fn plan(&mut self, plan: &Plan) -> Result<(), Self::Error>;
    /// Rows in file order, each with one cell per field. The sink takes
    /// what it keeps ([`Rows::drain`], or the whole batch with
    /// [`Rows::take`]); the loader then empties the batch and reuses its
    /// room. An error stops the ingest and is returned as
    /// [`IngestError::Sink`].
    fn batch(&mut self, rows: &mut Rows) -> Result<(), Self::Error>;
}

/// Why an ingest stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError<E> {
    /// The file cannot be used; the message is for whoever published it.
    #[error("{0}")]
    Rejected(Rejected),
    /// Reading the saved upload failed: the platform's problem, not the
    /// publisher's.
    #[error("reading the uploaded file failed: {0}")]
    Io(#[from] io::Error),
    #[error("the sink failed: {0}")]
    Sink(E),
}

impl<E> From<Rejected> for IngestError<E> {
    fn from(r: Rejected) -> Self {
        IngestError::Rejected(r)
    }
}

impl<E> From<text::SniffError> for IngestError<E> {
    fn from(e: text::SniffError) -> Self {
        match e {
            text::SniffError::Rejected(r) => IngestError::Rejected(r),
            text::SniffError::Io(e) => IngestError::Io(e),
        }
    }
}

/// Loads the file at `path` as `format` into `sink`.
pub fn ingest<S: Sink>(
    path: &Path,
    format: Format,
    options: &Options,
    sink: &mut S,
) -> Result<IngestReport, IngestError<S::Error>> {
    let size = std::fs::metadata(path)?.len();
    if size > options.max_bytes {
        let (mib, limit) = (megabytes(size), megabytes(options.max_bytes));
        return Err(IngestError::Rejected(reject(
            RejectKind::TooLarge,
            0,
            None,
            format!("ファイルが大きすぎます ({mib} MB): 読み込めるのは {limit} MB までです"),
            format!("the file is too large ({mib} MB): at most {limit} MB can be loaded"),
        )));
    }
    match format {
        Format::Csv => ingest_text(path, b',', Format::Csv, options, sink),
        Format::Tsv => ingest_text(path, b'\t', Format::Tsv, options, sink),
        Format::Xlsx => excel::ingest_xlsx(path, options, sink),
        Format::Xls => excel::ingest_xls(path, options, sink),
    }
}

/// One decimal, as people read file sizes.
fn megabytes(bytes: u64) -> String {
    // Precision: a size shown to one decimal.
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn ingest_text<S: Sink>(
    path: &Path,
    delimiter: u8,
    format: Format,
    options: &Options,
    sink: &mut S,
) -> Result<IngestReport, IngestError<S::Error>> {
    let encoding = text::sniff(path, text::Scope::Head)?;
    let mut chunks = chunks::Chunks::open(path, encoding, delimiter)?;
    let Some(header) = chunks.header()? else {
        return Err(IngestError::Rejected(reject(
            RejectKind::Empty,
            0,
            None,
            "ファイルが空です",
            "the file is empty",
        )));
    };
    let mut decoder = text::FieldDecoder::new(encoding);
    let header_cells: Vec<String> = match decoder.fields(&header.record) {
        Ok(fields) => fields.into_iter().map(str::to_string).collect(),
        Err(text::Undecodable) => return Err(chunks::past_the_head(path, encoding, header.line)),
    };
    let header_match = validate::match_header(
        &header_cells,
        &validate::Options {
            schema: options.schema.clone(),
            threshold: options.threshold,
        },
    );
    loader::check_header_is_not_data(&header_cells, &header_match, header.line, true)?;
    let outline = loader::outline(format, Some(encoding), None, 1);
    let mut loader = loader::Loader::start(
        sink,
        header_cells,
        header_match,
        header.line,
        outline,
        Vec::new(),
        options,
    )?;
    let workers = workers(options, std::fs::metadata(path)?.len());
    let unbalanced_quotes =
        chunks::load_rows(path, chunks, &header, &mut loader, workers, encoding)?;
    loader.finish(unbalanced_quotes)
}

/// Below this size threads cost more than they save.
const PARALLEL_FROM_BYTES: u64 = 4 * 1024 * 1024;

fn workers(options: &Options, size: u64) -> usize {
    match options.threads {
        0 if size >= PARALLEL_FROM_BYTES => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4),
        0 => 1,
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::datastore::Cell;

    struct Keep(Vec<Vec<Cell>>);

    impl Sink for Keep {
        type Error = std::convert::Infallible;
        fn plan(&mut self, _plan: &Plan) -> Result<(), Self::Error> {
            Ok(())
        }
        fn batch(&mut self, rows: &mut Rows) -> Result<(), Self::Error> {
            self.0.extend(rows.drain());
            Ok(())
        }
    }

    /// Rows past the report's cap of details are checked without building
    /// messages; that must change nothing but the details dropped anyway,
    /// on one thread and on several.
    #[test]
    fn a_small_cap_of_details_changes_nothing_else() {
        let header = "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,住所,方書,緯度,経度,設置位置,電話番号,内線番号,法人番号,団体名,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,小児対応設備の有無,URL,備考";
        let mut text = format!("{header}\r\n");
        for i in 0..1_500 {
            let extra = if i % 97 == 0 { ",余分" } else { "" };
            let children = ["有", "あり", "○", "たぶん", ""][i % 5];
            // Out of Japan, and (not stored, as a number) not a number.
            let lat = match i {
                _ if i % 31 == 0 => "138.3",
                _ if i % 53 == 0 => "北緯",
                _ => "34.86",
            };
            text.push_str(&format!(
                "22212,{i},静岡県,焼津市,ＣＯＣＯＲＯ{i},ｼﾔｸｼﾖ,本町2-16-32,２階,{lat},138.32,,(054)626-{:04},,,,,9:00,17時,,{children},,{extra}\r\n",
                i % 10_000
            ));
        }
        let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(&text);
        assert!(!lossy);
        let path =
            std::env::temp_dir().join(format!("renkei-ingest-cap-{}.csv", std::process::id()));
        std::fs::write(&path, &sjis).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
        let run = |threads, cap| {
            let options = Options {
                threads,
                max_issue_details: cap,
                batch_size: 64,
                ..Options::default()
            };
            let mut sink = Keep(Vec::new());
            let report = ingest(&path, Format::Csv, &options, &mut sink)
                .unwrap_or_else(|e| panic!("ingest: {e}"));
            (report, sink.0)
        };
        let (all, all_rows) = run(1, usize::MAX);
        assert!(all.count("not-stored") > 0);
        assert!(
            !all.issues_capped && all.issues.len() > 3_000,
            "{}",
            all.issues.len()
        );
        for threads in [1, 2, 3] {
            for cap in [0, 7, 1_000] {
                let (capped, rows) = run(threads, cap);
                assert_eq!(rows, all_rows, "{threads} threads, cap {cap}");
                assert_eq!(
                    capped.issues,
                    all.issues[..cap],
                    "{threads} threads, cap {cap}"
                );
                assert_eq!(
                    (
                        &capped.by_code,
                        &capped.by_column,
                        capped.errors,
                        capped.warnings
                    ),
                    (&all.by_code, &all.by_column, all.errors, all.warnings),
                    "{threads} threads, cap {cap}"
                );
                assert!(capped.issues_capped);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}
