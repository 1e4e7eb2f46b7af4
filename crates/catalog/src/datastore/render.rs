//! The store's answers in CKAN's shapes: the result of `datastore_search`
//! (fields, records in the four record formats, total, `_links`) and the files
//! of `/datastore/dump/{id}` (CSV, TSV, JSON), written to any [`Write`] page by
//! page so that a large table is streamed rather than held in memory.

use super::cells::{cell_to_json, cell_to_text};
use super::query::{RecordsFormat, SearchRequest};
use super::ROW_ID;
use serde_json::{json, Map, Value};
use std::io::{self, Write};
use store::datastore::{Cell, RowPage, Table};

/// The path `_links` point at.
const SEARCH_PATH: &str = "/api/3/action/datastore_search";

/// CKAN's description of one column: `{"id", "type"}` and `info` when the
/// data dictionary has one. `_id` is an int; a column the table does not
/// know (a store answering more than asked) is shown as text.
pub fn field_json(table: &Table, column: &str) -> Value {
    if column == ROW_ID {
        return json!({"id": ROW_ID, "type": "int"});
    }
    match table.fields.iter().find(|field| field.id == column) {
        Some(field) => {
            let mut entry = Map::new();
            entry.insert("id".into(), Value::String(field.id.clone()));
            entry.insert(
                "type".into(),
                Value::String(field.column_type.ckan_name().into()),
            );
            if let Some(info) = &field.info {
                entry.insert("info".into(), info.clone());
            }
            Value::Object(entry)
        }
        None => json!({"id": column, "type": "text"}),
    }
}

/// The `result` of `datastore_search`: `resource_id`, `fields` (for the
/// page's columns, `_id` first when returned), `records` in the requested
/// format, `records_format`, `limit`, `offset` when asked, `total` and
/// `total_was_estimated` when counted, `include_total`, the `q`, `filters`,
/// `sort` and `distinct` that were asked, and `_links` to the first and next
/// pages.
pub fn search_result(table: &Table, request: &SearchRequest, page: &RowPage) -> Value {
    let mut result = Map::new();
    result.insert(
        "include_total".into(),
        Value::Bool(request.query.include_total),
    );
    result.insert(
        "resource_id".into(),
        Value::String(request.resource_id.clone()),
    );
    let fields: Vec<Value> = page
        .columns
        .iter()
        .map(|column| field_json(table, column))
        .collect();
    result.insert("fields".into(), Value::Array(fields));
    result.insert(
        "records_format".into(),
        Value::String(request.records_format.ckan_name().into()),
    );
    result.insert(
        "records".into(),
        render_records(page, request.records_format),
    );
    for echoed in ["q", "filters", "sort", "distinct"] {
        if let Some(value) = request.params.get(echoed).filter(|value| !value.is_null()) {
            result.insert(echoed.into(), value.clone());
        }
    }
    result.insert("limit".into(), Value::from(request.query.limit));
    if request
        .params
        .get("offset")
        .is_some_and(|offset| !offset.is_null())
    {
        result.insert("offset".into(), Value::from(request.query.offset));
    }
    if let Some(total) = page.total {
        result.insert("total".into(), Value::from(total));
        result.insert("total_was_estimated".into(), Value::Bool(false));
    }
    result.insert("_links".into(), links(request));
    Value::Object(result)
}

fn render_records(page: &RowPage, format: RecordsFormat) -> Value {
    match format {
        RecordsFormat::Objects => Value::Array(
            page.rows
                .iter()
                .map(|row| {
                    let record: Map<String, Value> = page
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(column, cell)| (column.clone(), cell_to_json(cell)))
                        .collect();
                    Value::Object(record)
                })
                .collect(),
        ),
        RecordsFormat::Lists => Value::Array(
            page.rows
                .iter()
                .map(|row| Value::Array(row.iter().map(cell_to_json).collect()))
                .collect(),
        ),
        RecordsFormat::Csv | RecordsFormat::Tsv => {
            let delimiter = if format == RecordsFormat::Csv {
                ','
            } else {
                '\t'
            };
            let mut text = String::new();
            for row in &page.rows {
                push_delimited_line(&mut text, row.iter().map(cell_to_text), delimiter);
            }
            Value::String(text)
        }
    }
}

/// `start` (the request without `offset`) and `next` (with the offset of the
/// next page), as CKAN builds them from the request's parameters.
fn links(request: &SearchRequest) -> Value {
    let mut query = String::new();
    for (name, value) in &request.params {
        if name == "offset" || value.is_null() {
            continue;
        }
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        query.push_str(&percent_encode(name));
        query.push('=');
        query.push_str(&percent_encode(&text));
        query.push('&');
    }
    let start = format!("{SEARCH_PATH}?{}", query.trim_end_matches('&'));
    let next_offset = request.query.offset.saturating_add(request.query.limit);
    let next = format!("{SEARCH_PATH}?{query}offset={next_offset}");
    json!({"start": start, "next": next})
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Appends one CSV (or TSV) line: a field is quoted when it holds the
/// delimiter, a quote, a line break, or starts or ends with a space; quotes
/// inside are doubled. Lines end with `\n`.
fn push_delimited_line(line: &mut String, fields: impl Iterator<Item = String>, delimiter: char) {
    for (position, field) in fields.enumerate() {
        if position > 0 {
            line.push(delimiter);
        }
        let needs_quotes = field.contains([delimiter, '"', '\n', '\r'])
            || field.starts_with(' ')
            || field.ends_with(' ');
        if needs_quotes {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&field);
        }
    }
    line.push('\n');
}

/// The format of a datastore dump (`/datastore/dump/{id}?format=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// CSV with a header line, UTF-8; `bom` puts a byte order mark first,
    /// which Excel needs to read UTF-8 (CKAN's own dump has none).
    Csv { bom: bool },
    /// TSV with a header line, UTF-8.
    Tsv,
    /// `{"fields": [{"id", "type", "info"?}, …], "records": [[…], …]}`.
    Json,
}

/// Writes a dump: [`DumpWriter::start`] writes the header, each
/// [`DumpWriter::write_rows`] one page of rows, [`DumpWriter::finish`] the end.
#[derive(Debug)]
pub struct DumpWriter<W: Write> {
    out: W,
    format: DumpFormat,
    columns: usize,
    rows_written: u64,
}

impl<W: Write> DumpWriter<W> {
    /// Starts a dump of `columns` (as the store's pages name them, `_id`
    /// usually first) of `table`.
    pub fn start(
        mut out: W,
        format: DumpFormat,
        table: &Table,
        columns: &[String],
    ) -> io::Result<Self> {
        match format {
            DumpFormat::Csv { bom } => {
                if bom {
                    out.write_all("\u{feff}".as_bytes())?;
                }
                write_line(&mut out, columns.iter().cloned(), ',')?;
            }
            DumpFormat::Tsv => write_line(&mut out, columns.iter().cloned(), '\t')?,
            DumpFormat::Json => {
                let fields: Vec<Value> = columns
                    .iter()
                    .map(|column| field_json(table, column))
                    .collect();
                write!(out, "{{\"fields\":{},\"records\":[", Value::Array(fields))?;
            }
        }
        Ok(DumpWriter {
            out,
            format,
            columns: columns.len(),
            rows_written: 0,
        })
    }

    /// Writes rows whose cells are in the order of the columns given to
    /// [`DumpWriter::start`]; a row of another width is an `InvalidInput` error.
    pub fn write_rows(&mut self, rows: &[Vec<Cell>]) -> io::Result<()> {
        for row in rows {
            if row.len() != self.columns {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a row has {} cells for {} columns", row.len(), self.columns),
                ));
            }
            match self.format {
                DumpFormat::Csv { .. } => {
                    write_line(&mut self.out, row.iter().map(cell_to_text), ',')?
                }
                DumpFormat::Tsv => write_line(&mut self.out, row.iter().map(cell_to_text), '\t')?,
                DumpFormat::Json => {
                    if self.rows_written > 0 {
                        self.out.write_all(b",")?;
                    }
                    let record = Value::Array(row.iter().map(cell_to_json).collect());
                    write!(self.out, "{record}")?;
                }
            }
            self.rows_written += 1;
        }
        Ok(())
    }

    /// The output written so far, so that a streaming caller can hand over
    /// each page's bytes and keep writing into an emptied buffer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// How many rows have been written.
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// Ends the dump, flushes and gives the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        if self.format == DumpFormat::Json {
            self.out.write_all(b"]}")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_line(
    out: &mut impl Write,
    fields: impl Iterator<Item = String>,
    delimiter: char,
) -> io::Result<()> {
    let mut line = String::new();
    push_delimited_line(&mut line, fields, delimiter);
    out.write_all(line.as_bytes())
}
