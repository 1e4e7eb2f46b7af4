//! Excel workbooks (xlsx and xls, read by calamine). The first sheet with
//! any content is loaded. Offices put a title row or two above the table
//! (`焼津市 指定緊急避難場所一覧`, then a blank row), so the header is the
//! first row that matches a standard schema, else the first row with at
//! least half the columns filled that has data below it; the rows above
//! it are reported as skipped. Cells become the text a person sees in
//! Excel — a date as 2023-04-01, 12.0 as 12, a time as 09:00 — and then go
//! through the same row checks as CSV. An xlsx sheet is read cell by cell
//! as the XML streams; an xls sheet is read whole, which the size limit
//! bounds (and the format itself, at 65,536 rows).

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{CellErrorType, Data, DataRef, ExcelDateTime, Reader, Xls, Xlsx};

use crate::validate::{self, reject, Issue, RejectKind, Rejected, Severity};

use super::loader::{self, Loader};
use super::{Format, IngestError, IngestReport, Options, Sink};

/// Rows read ahead to find the header below any title rows.
const LOOKAHEAD: usize = 30;

/// A cell as calamine gives it, from either reader.
enum Value<'a> {
    Text(&'a str),
    Float(f64),
    Int(i64),
    Bool(bool),
    DateTime(&'a ExcelDateTime),
    Error(&'a CellErrorType),
    Empty,
}

impl<'a> From<&'a Data> for Value<'a> {
    fn from(d: &'a Data) -> Self {
        match d {
            Data::Int(i) => Value::Int(*i),
            Data::Float(f) => Value::Float(*f),
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Value::Text(s),
            Data::Bool(b) => Value::Bool(*b),
            Data::DateTime(d) => Value::DateTime(d),
            Data::Error(e) => Value::Error(e),
            Data::Empty => Value::Empty,
        }
    }
}

impl<'a> From<&'a DataRef<'_>> for Value<'a> {
    fn from(d: &'a DataRef<'_>) -> Self {
        match d {
            DataRef::Int(i) => Value::Int(*i),
            DataRef::Float(f) => Value::Float(*f),
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                Value::Text(s)
            }
            DataRef::SharedString(s) => Value::Text(s),
            DataRef::Bool(b) => Value::Bool(*b),
            DataRef::DateTime(d) => Value::DateTime(d),
            DataRef::Error(e) => Value::Error(e),
            DataRef::Empty => Value::Empty,
        }
    }
}

/// A float as Excel shows it in a General cell: whole numbers without
/// `.0`, others in their shortest exact form.
fn float_text(f: f64) -> String {
    // Precision: whole floats below 2^53 convert exactly.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn date_time_text(d: &ExcelDateTime) -> String {
    let (y, mo, day, h, mi, s, _) = d.to_ymd_hms_milli();
    let serial = d.as_f64();
    if d.is_duration() {
        // Precision: a duration in whole minutes or seconds.
        let seconds = (serial * 86_400.0).round() as i64;
        let (h, rest) = (seconds / 3600, seconds % 3600);
        return if rest % 60 == 0 {
            format!("{h}:{:02}", rest / 60)
        } else {
            format!("{h}:{:02}:{:02}", rest / 60, rest % 60)
        };
    }
    let time = if s == 0 {
        format!("{h:02}:{mi:02}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}")
    };
    if (0.0..1.0).contains(&serial) {
        time
    } else if (h, mi, s) == (0, 0, 0) {
        format!("{y:04}-{mo:02}-{day:02}")
    } else {
        format!("{y:04}-{mo:02}-{day:02} {h:02}:{mi:02}:{s:02}")
    }
}

/// The text of a cell, or the error value it holds.
fn cell_text(v: Value<'_>) -> Result<String, String> {
    Ok(match v {
        Value::Text(s) => s.to_string(),
        Value::Float(f) => float_text(f),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => if b { "TRUE" } else { "FALSE" }.to_string(),
        Value::DateTime(d) => date_time_text(d),
        Value::Error(e) => return Err(e.to_string()),
        Value::Empty => String::new(),
    })
}

/// One non-empty sheet row as text.
#[derive(Debug, Default)]
struct SheetRow {
    /// 1-based, as Excel numbers rows.
    number: usize,
    cells: Vec<String>,
    /// Excel error values (#N/A, #DIV/0!), by 0-based column.
    errors: Vec<(usize, String)>,
}

impl SheetRow {
    fn put(&mut self, column: usize, value: Value<'_>) {
        if self.cells.len() <= column {
            self.cells.resize(column + 1, String::new());
        }
        match cell_text(value) {
            Ok(text) => self.cells[column] = text,
            Err(error) => self.errors.push((column, error)),
        }
    }

    fn is_blank(&self) -> bool {
        self.errors.is_empty() && self.cells.iter().all(|c| c.trim().is_empty())
    }

    /// Cells up to the last non-empty one.
    fn filled_width(&self) -> usize {
        self.cells
            .iter()
            .rposition(|c| !c.trim().is_empty())
            .map_or(0, |i| i + 1)
    }

    fn filled(&self) -> usize {
        self.cells.iter().filter(|c| !c.trim().is_empty()).count()
    }
}

/// Rows of a sheet in order, blank rows left out (as a CSV reader skips
/// blank lines).
trait RowSource {
    fn next_row(&mut self) -> Result<Option<SheetRow>, Rejected>;
}

fn corrupt(format: Format, row: usize, error: &dyn std::fmt::Display) -> Rejected {
    let what = match format {
        Format::Xls => "xls",
        _ => "xlsx",
    };
    let (at_ja, at_en) = if row > 0 {
        (format!("{row}行目付近で"), format!(" near row {row}"))
    } else {
        (String::new(), String::new())
    };
    reject(
        RejectKind::NotAWorkbook,
        row,
        None,
        format!("{at_ja}Excel ファイル ({what}) として読めません。壊れているか、途中で切れている可能性があります: {error}"),
        format!("not readable as an Excel workbook ({what}){at_en}; it may be corrupt or truncated: {error}"),
    )
}

/// An xlsx sheet's cells, streamed; `next` is the cell reader's
/// `next_cell`, whose type calamine does not export.
struct XlsxRows<'a, F> {
    next: F,
    pending: Option<calamine::Cell<DataRef<'a>>>,
    last_row: usize,
    /// The reader said it had no more cells; asking again is an error.
    finished: bool,
}

impl<'a, F> XlsxRows<'a, F>
where
    F: FnMut() -> Result<Option<calamine::Cell<DataRef<'a>>>, calamine::XlsxError>,
{
    fn new(next: F) -> Self {
        XlsxRows {
            next,
            pending: None,
            last_row: 0,
            finished: false,
        }
    }

    fn next_cell(&mut self) -> Result<Option<calamine::Cell<DataRef<'a>>>, Rejected> {
        if self.finished {
            return Ok(None);
        }
        match (self.next)() {
            Ok(Some(cell)) => Ok(Some(cell)),
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => Err(corrupt(Format::Xlsx, self.last_row, &e)),
        }
    }
}

impl<'a, F> RowSource for XlsxRows<'a, F>
where
    F: FnMut() -> Result<Option<calamine::Cell<DataRef<'a>>>, calamine::XlsxError>,
{
    fn next_row(&mut self) -> Result<Option<SheetRow>, Rejected> {
        loop {
            let first = match self.pending.take() {
                Some(cell) => cell,
                None => match self.next_cell()? {
                    Some(cell) => cell,
                    None => return Ok(None),
                },
            };
            let (row, column) = first.get_position();
            let mut out = SheetRow {
                number: row as usize + 1,
                ..SheetRow::default()
            };
            self.last_row = out.number;
            out.put(column as usize, first.get_value().into());
            loop {
                match self.next_cell()? {
                    Some(cell) if cell.get_position().0 == row => {
                        out.put(cell.get_position().1 as usize, cell.get_value().into());
                    }
                    Some(cell) => {
                        self.pending = Some(cell);
                        break;
                    }
                    None => break,
                }
            }
            if !out.is_blank() {
                return Ok(Some(out));
            }
        }
    }
}

/// An xls sheet, read whole.
struct RangeRows {
    range: calamine::Range<Data>,
    next: usize,
}

impl RowSource for RangeRows {
    fn next_row(&mut self) -> Result<Option<SheetRow>, Rejected> {
        let (top, left) = self.range.start().unwrap_or((0, 0));
        while let Some(cells) = self.range.rows().nth(self.next) {
            let mut out = SheetRow {
                number: top as usize + self.next + 1,
                ..SheetRow::default()
            };
            self.next += 1;
            for (i, cell) in cells.iter().enumerate() {
                if !matches!(cell, Data::Empty) {
                    out.put(left as usize + i, cell.into());
                }
            }
            if !out.is_blank() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

fn open(path: &Path) -> std::io::Result<BufReader<File>> {
    Ok(BufReader::new(File::open(path)?))
}

/// Loads the first non-empty sheet of an xlsx workbook.
pub(crate) fn ingest_xlsx<S: Sink>(
    path: &Path,
    options: &Options,
    sink: &mut S,
) -> Result<IngestReport, IngestError<S::Error>> {
    let mut workbook: Xlsx<_> = Xlsx::new(open(path)?).map_err(|e| corrupt(Format::Xlsx, 0, &e))?;
    let mut chosen = None;
    let mut first_error = None;
    for name in workbook.sheet_names() {
        // A chart sheet or an unreadable sheet is passed over, in case a
        // later sheet holds the table.
        let mut reader = match workbook.worksheet_cells_reader(&name) {
            Ok(reader) => reader,
            Err(e) => {
                first_error.get_or_insert_with(|| corrupt(Format::Xlsx, 0, &e));
                continue;
            }
        };
        let mut rows = XlsxRows::new(|| reader.next_cell());
        match rows.next_row() {
            Ok(Some(_)) => {
                chosen = Some(name);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some(sheet) = chosen else {
        return Err(first_error.unwrap_or_else(empty_workbook).into());
    };
    let mut reader = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(|e| corrupt(Format::Xlsx, 0, &e))?;
    let mut rows = XlsxRows::new(|| reader.next_cell());
    load_sheet(&mut rows, Format::Xlsx, sheet, options, sink)
}

/// Loads the first non-empty sheet of an xls workbook.
pub(crate) fn ingest_xls<S: Sink>(
    path: &Path,
    options: &Options,
    sink: &mut S,
) -> Result<IngestReport, IngestError<S::Error>> {
    let mut workbook: Xls<_> = Xls::new(open(path)?).map_err(|e| corrupt(Format::Xls, 0, &e))?;
    let mut first_error = None;
    for name in workbook.sheet_names() {
        let range = match workbook.worksheet_range(&name) {
            Ok(range) => range,
            Err(e) => {
                first_error.get_or_insert_with(|| corrupt(Format::Xls, 0, &e));
                continue;
            }
        };
        let mut rows = RangeRows { range, next: 0 };
        if rows.next_row()?.is_some() {
            rows.next = 0;
            return load_sheet(&mut rows, Format::Xls, name, options, sink);
        }
    }
    Err(first_error.unwrap_or_else(empty_workbook).into())
}

fn empty_workbook() -> Rejected {
    reject(
        RejectKind::Empty,
        0,
        None,
        "ブックのどのシートにもデータがありません",
        "no sheet of the workbook has any data",
    )
}

fn validate_options(options: &Options) -> validate::Options {
    validate::Options {
        schema: options.schema.clone(),
        threshold: options.threshold,
    }
}

/// Index of the header among the rows read ahead.
fn find_header(rows: &VecDeque<SheetRow>, options: &Options) -> usize {
    let by_schema = validate_options(options);
    let header_of = |row: &SheetRow| -> Vec<String> { row.cells[..row.filled_width()].to_vec() };
    for (i, row) in rows.iter().enumerate() {
        let m = validate::match_header(&header_of(row), &by_schema);
        if m.schema.is_some() && m.score >= options.threshold {
            return i;
        }
    }
    let width = rows.iter().map(SheetRow::filled_width).max().unwrap_or(0);
    rows.iter()
        .enumerate()
        .position(|(i, row)| {
            row.filled() * 2 >= width
                && i + 1 < rows.len()
                && !validate::looks_like_data(&header_of(row))
        })
        .unwrap_or(0)
}

fn skipped_row(row: &SheetRow) -> Issue {
    let text: Vec<&str> = row
        .cells
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .collect();
    Issue {
        row: row.number,
        line: row.number,
        column: None,
        column_name: None,
        severity: Severity::Warning,
        code: "title-row",
        original: text.join(" "),
        message_ja: format!(
            "{}行目は見出しより上の行 (表題や注記) のため読み込んでいません",
            row.number
        ),
        message_en: format!(
            "row {} is above the header (a title or note) and was not loaded",
            row.number
        ),
    }
}

fn error_value(row: &SheetRow, column: usize, error: &str, header: &[String]) -> Issue {
    Issue {
        row: row.number,
        line: row.number,
        column: Some(column + 1),
        column_name: header.get(column).cloned(),
        severity: Severity::Error,
        code: "excel-error",
        original: error.to_string(),
        message_ja: format!("Excel のエラー値 {error} は値ではないため、空欄として読み込みました"),
        message_en: format!("the Excel error value {error} is not a value and was loaded as empty"),
    }
}

fn load_sheet<S: Sink>(
    source: &mut dyn RowSource,
    format: Format,
    sheet: String,
    options: &Options,
    sink: &mut S,
) -> Result<IngestReport, IngestError<S::Error>> {
    let mut ahead = VecDeque::with_capacity(LOOKAHEAD);
    while ahead.len() < LOOKAHEAD {
        match source.next_row()? {
            Some(row) => ahead.push_back(row),
            None => break,
        }
    }
    let at = find_header(&ahead, options);
    let mut early: Vec<Issue> = ahead.drain(..at).map(|r| skipped_row(&r)).collect();
    let Some(header_row) = ahead.pop_front() else {
        return Err(empty_workbook().into());
    };
    let header: Vec<String> = header_row.cells[..header_row.filled_width()].to_vec();
    let header_match = validate::match_header(&header, &validate_options(options));
    loader::check_header_is_not_data(&header, &header_match, header_row.number, false)?;
    early.extend(
        header_row
            .errors
            .iter()
            .map(|(c, e)| error_value(&header_row, *c, e, &header)),
    );
    let outline = loader::outline(format, None, Some(sheet), header_row.number);
    let width = header.len();
    let mut loader = Loader::start(
        sink,
        header.clone(),
        header_match,
        header_row.number,
        outline,
        early,
        options,
    )?;
    let feed = |loader: &mut Loader<'_, S>, mut row: SheetRow| {
        for (column, error) in &row.errors {
            loader.push_issue(error_value(&row, *column, error, &header));
        }
        // A spreadsheet row has no missing cells, only empty ones: short
        // rows are padded, and empty cells past the header are not extra.
        let keep = row.filled_width().max(width);
        row.cells.resize(keep, String::new());
        let cells: Vec<&str> = row.cells.iter().map(String::as_str).collect();
        loader.row(row.number, row.number, &cells)
    };
    for row in ahead.drain(..) {
        feed(&mut loader, row)?;
    }
    while let Some(row) = source.next_row()? {
        feed(&mut loader, row)?;
    }
    loader.finish(false)
}
