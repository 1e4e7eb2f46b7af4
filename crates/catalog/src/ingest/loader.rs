//! The part every format shares once it has a header and text cells:
//! recognise the schema, hand the plan to the sink, then check, convert
//! and batch each row, counting its issues. CSV and Excel rows go through
//! the same [`RowChecker`], so both get the same normalisation and report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use store::datastore::Cell;

use crate::standard::HeaderMatch;
use crate::validate::{self, Issue, RowChecker, Severity};

use super::columns::{self, ColumnPlan};
use super::report::{IngestReport, Outline, ReportBuilder};
use super::{Format, IngestError, Options, Plan, Sink};

/// What checking a row needs: no state between rows, so worker threads
/// can share it.
#[derive(Debug)]
pub(crate) struct RowWork {
    checker: RowChecker,
    header: Vec<String>,
    columns: Vec<ColumnPlan>,
    /// Cleared by the loader once the report keeps no more issue details;
    /// rows checked after that get issues without messages. Rows are
    /// accepted in file order and a row being checked is not accepted yet,
    /// so every row checked after the flag falls is later in the file than
    /// the issues that filled the report, and a stale `true` only costs
    /// messages that are then dropped.
    details: AtomicBool,
}

impl RowWork {
    /// Normalises, checks and converts one row: `row` is its number as
    /// the report shows it, `line` where it starts.
    pub(crate) fn check(&self, row: usize, line: usize, cells: &[&str]) -> (Vec<Cell>, Vec<Issue>) {
        let details = self.details.load(Ordering::Relaxed);
        let (normalized, mut issues) = self.checker.check_values(row, line, cells, details);
        let width = self.columns.len();
        if details && cells.len() > width {
            // The checker keeps extra values in its rows; a table has only
            // the header's columns, so say what was left out.
            let extra = cells.get(width..).unwrap_or_default().join(",");
            for issue in issues.iter_mut().filter(|i| i.code == "column-count") {
                issue.original.clone_from(&extra);
                issue.message_ja = format!(
                    "{}列ありますが見出しは{}列です: 見出しの列だけを読み込み、余分な値「{extra}」は格納していません",
                    cells.len(),
                    width
                );
                issue.message_en = format!(
                    "{} columns where the header has {}: the header's columns were loaded; the extra values {extra:?} are not stored",
                    cells.len(),
                    width
                );
            }
        }
        let mut out = Vec::with_capacity(width);
        for (i, value) in normalized.into_iter().take(width).enumerate() {
            let ty = self.columns[i].ty;
            match columns::convert(ty, value) {
                Ok(cell) => out.push(cell),
                Err(_) if !details => {
                    issues.push(Issue {
                        row,
                        line,
                        column: Some(i + 1),
                        column_name: None,
                        severity: Severity::Error,
                        code: "not-stored",
                        original: String::new(),
                        message_ja: String::new(),
                        message_en: String::new(),
                    });
                    out.push(Cell::Null);
                }
                Err(value) => {
                    let name = self.header.get(i).cloned().unwrap_or_default();
                    let original = cells.get(i).copied().unwrap_or_default().to_string();
                    issues.push(Issue {
                        row,
                        line,
                        column: Some(i + 1),
                        column_name: Some(name.clone()),
                        severity: Severity::Error,
                        code: "not-stored",
                        original,
                        message_ja: format!(
                            "「{value}」は列「{name}」の型 ({}) に合わないため、空 (NULL) として格納しました",
                            ty.ckan_name()
                        ),
                        message_en: format!(
                            "{value:?} does not fit the type of column {name:?} ({}), so it was stored as null",
                            ty.ckan_name()
                        ),
                    });
                    out.push(Cell::Null);
                }
            }
        }
        out.resize(width, Cell::Null);
        (out, issues)
    }
}

/// Loads rows into a sink in batches.
pub(crate) struct Loader<'s, S: Sink> {
    sink: &'s mut S,
    work: Arc<RowWork>,
    batch: Vec<Vec<Cell>>,
    batch_size: usize,
    report: ReportBuilder,
    outline: Outline,
    /// Row and line of the last row, for file-level issues.
    last: (usize, usize),
    header_line: usize,
}

impl<'s, S: Sink> Loader<'s, S> {
    /// Matches the header, reports on it and sends the plan.
    pub(crate) fn start(
        sink: &'s mut S,
        header: Vec<String>,
        header_match: HeaderMatch,
        header_line: usize,
        mut outline: Outline,
        early_issues: Vec<Issue>,
        options: &Options,
    ) -> Result<Loader<'s, S>, IngestError<S::Error>> {
        let checker = RowChecker::new(&header, &header_match);
        let mut report = ReportBuilder::new(options.max_issue_details, &header);
        report.extend(early_issues);
        report.extend(checker.header_issues(&header, &header_match, header_line));
        let (fields, columns) = columns::plan_columns(&header, &header_match);
        outline.schema = header_match.schema.map(|s| (s, header_match.score));
        let plan = Plan {
            fields,
            schema: header_match.schema,
            format: outline.format,
            encoding: outline.encoding,
            sheet: outline.sheet.clone(),
            header_row: outline.header_row,
            header: header.clone(),
        };
        sink.plan(&plan).map_err(IngestError::Sink)?;
        let batch_size = options.batch_size.max(1);
        let last = (outline.header_row, header_line);
        Ok(Loader {
            sink,
            work: Arc::new(RowWork {
                checker,
                header,
                columns,
                details: AtomicBool::new(!report.is_full()),
            }),
            batch: Vec::with_capacity(batch_size),
            batch_size,
            report,
            outline,
            last,
            header_line,
        })
    }

    /// Adds an issue found outside the row checks (an Excel error value).
    pub(crate) fn push_issue(&mut self, issue: Issue) {
        self.report.push(issue);
    }

    /// Checks, converts and queues one row.
    pub(crate) fn row(
        &mut self,
        row: usize,
        line: usize,
        cells: &[&str],
    ) -> Result<(), IngestError<S::Error>> {
        let (out, issues) = self.work.check(row, line, cells);
        self.accept(row, line, out, issues)
    }

    /// The checks every row gets, shareable with worker threads.
    pub(crate) fn work(&self) -> Arc<RowWork> {
        Arc::clone(&self.work)
    }

    /// Queues a row checked by [`RowWork::check`], in file order.
    pub(crate) fn accept(
        &mut self,
        row: usize,
        line: usize,
        out: Vec<Cell>,
        issues: Vec<Issue>,
    ) -> Result<(), IngestError<S::Error>> {
        self.last = (row, line);
        self.report.extend(issues);
        if self.report.is_full() {
            self.work.details.store(false, Ordering::Relaxed);
        }
        self.batch.push(out);
        self.outline.rows += 1;
        if self.batch.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError<S::Error>> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        self.sink.batch(full).map_err(IngestError::Sink)
    }

    /// Sends the last batch and closes the report, adding the file-level
    /// findings `validate` makes too.
    pub(crate) fn finish(
        mut self,
        unbalanced_quotes: bool,
    ) -> Result<IngestReport, IngestError<S::Error>> {
        self.flush()?;
        let (row, line) = self.last;
        if unbalanced_quotes {
            self.report.push(Issue {
                row,
                line,
                column: None,
                column_name: None,
                severity: Severity::Warning,
                code: "unclosed-quote",
                original: String::new(),
                message_ja: "ダブルクォート (\") の数が奇数です: 閉じられていない引用符があり、最後の行がファイル末尾までを取り込んでいる可能性があります".into(),
                message_en: "the file has an odd number of double quotes: a quoted field may be unclosed and the last row may have swallowed the rest of the file".into(),
            });
        }
        if self.outline.rows == 0 {
            self.report.push(Issue {
                row: self.outline.header_row,
                line: self.header_line,
                column: None,
                column_name: None,
                severity: Severity::Warning,
                code: "no-rows",
                original: String::new(),
                message_ja: "見出しだけでデータ行がありません".into(),
                message_en: "the file has a header but no data rows".into(),
            });
        }
        Ok(self.report.finish(self.outline))
    }
}

/// Rejects a header that is really a data row, as `validate` does (and in
/// its words for a CSV, whose header is always the first record).
pub(crate) fn check_header_is_not_data(
    header: &[String],
    header_match: &HeaderMatch,
    line: usize,
    first_record: bool,
) -> Result<(), validate::Rejected> {
    if header_match.schema.is_some() || !validate::looks_like_data(header) {
        return Ok(());
    }
    let (ja, en) = if first_record {
        (
            "1行目が見出しではなくデータのようです: 列名の行がありません".to_string(),
            "the first row looks like data, not column names: the file has no header".to_string(),
        )
    } else {
        (
            format!("{line}行目が見出しではなくデータのようです: 列名の行がありません"),
            format!("row {line} looks like data, not column names: the sheet has no header"),
        )
    };
    Err(validate::reject(
        validate::RejectKind::NoHeader,
        line,
        None,
        ja,
        en,
    ))
}

/// The format-specific outline before the header is known.
pub(crate) fn outline(
    format: Format,
    encoding: Option<jp::encoding::Encoding>,
    sheet: Option<String>,
    header_row: usize,
) -> Outline {
    Outline {
        format,
        encoding,
        sheet,
        schema: None,
        header_row,
        rows: 0,
    }
}
