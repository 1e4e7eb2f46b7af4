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
use super::report::{IngestReport, Outline, ReportBuilder, Tally};
use super::{Format, IngestError, Options, Plan, Rows, Sink};

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
    /// the report shows it, `line` where it starts. Adds it to `out` (of
    /// the header's width), and the row's issues to `issues` or, once the
    /// report keeps no more details, only to `tally`.
    pub(crate) fn check(
        &self,
        row: usize,
        line: usize,
        cells: &[&str],
        out: &mut Rows,
        issues: &mut Vec<Issue>,
        tally: &mut Tally,
    ) {
        let details = self.details.load(Ordering::Relaxed);
        let width = self.columns.len();
        debug_assert_eq!(out.width(), width);
        // Values that do not fit their column are reported after the
        // checks' own issues, as when converting came after checking.
        let mut not_stored = Vec::new();
        let each = |i: usize, value: &str| {
            let Some(column) = self.columns.get(i) else {
                return;
            };
            if columns::push_converted(out, column.ty, value).is_err() {
                not_stored.push(self.not_stored(row, line, i, cells, value, details));
                out.push(Cell::Null);
            }
        };
        if !details {
            self.checker
                .check_each(row, line, cells, false, tally, each);
            for issue in not_stored {
                tally.add(&issue);
            }
            out.end_row();
            return;
        }
        let first_issue = issues.len();
        self.checker
            .check_each(row, line, cells, true, issues, each);
        if cells.len() > width {
            // The checker keeps extra values in its rows; a table has only
            // the header's columns, so say what was left out.
            let extra = cells.get(width..).unwrap_or_default().join(",");
            let row_issues = issues.get_mut(first_issue..).unwrap_or_default();
            for issue in row_issues.iter_mut().filter(|i| i.code == "column-count") {
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
        issues.append(&mut not_stored);
        out.end_row();
    }

    /// The issue of a checked value its column's type cannot hold.
    fn not_stored(
        &self,
        row: usize,
        line: usize,
        column: usize,
        cells: &[&str],
        value: &str,
        details: bool,
    ) -> Issue {
        let mut issue = Issue {
            row,
            line,
            column: Some(column + 1),
            column_name: None,
            severity: Severity::Error,
            code: "not-stored",
            original: String::new(),
            message_ja: String::new(),
            message_en: String::new(),
        };
        if details {
            let name = self.header.get(column).cloned().unwrap_or_default();
            let ty = self.columns[column].ty.ckan_name();
            issue.original = cells.get(column).copied().unwrap_or_default().to_string();
            issue.message_ja = format!(
                "「{value}」は列「{name}」の型 ({ty}) に合わないため、空 (NULL) として格納しました"
            );
            issue.message_en = format!(
                "{value:?} does not fit the type of column {name:?} ({ty}), so it was stored as null"
            );
            issue.column_name = Some(name);
        }
        issue
    }
}

/// Loads rows into a sink in batches.
pub(crate) struct Loader<'s, S: Sink> {
    sink: &'s mut S,
    work: Arc<RowWork>,
    batch: Rows,
    batch_size: usize,
    report: ReportBuilder,
    /// Issues of rows checked here ([`Loader::row`]) without details.
    tally: Tally,
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
        let width = columns.len();
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
            batch: Rows::with_capacity(width, batch_size),
            batch_size,
            report,
            tally: Tally::default(),
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
        let mut issues = Vec::new();
        self.work.check(
            row,
            line,
            cells,
            &mut self.batch,
            &mut issues,
            &mut self.tally,
        );
        self.report.add_tally(&mut self.tally);
        self.accept_issues(row, line, issues);
        self.outline.rows += 1;
        if self.batch.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Counts the issues a worker only counted.
    pub(crate) fn add_tally(&mut self, tally: &mut Tally) {
        self.report.add_tally(tally);
    }

    /// Cells in every row: the header's columns.
    pub(crate) fn width(&self) -> usize {
        self.batch.width()
    }

    /// The checks every row gets, shareable with worker threads.
    pub(crate) fn work(&self) -> Arc<RowWork> {
        Arc::clone(&self.work)
    }

    /// Reports the issues of a row checked by [`RowWork::check`], in file
    /// order; its cells go with [`Loader::accept_rows`].
    pub(crate) fn accept_issues(
        &mut self,
        row: usize,
        line: usize,
        issues: impl IntoIterator<Item = Issue>,
    ) {
        self.last = (row, line);
        self.report.extend(issues);
        if self.report.is_full() {
            self.work.details.store(false, Ordering::Relaxed);
        }
    }

    /// Queues rows checked by [`RowWork::check`], in file order, taking
    /// them out of `rows`; their issues go with [`Loader::accept_issues`].
    pub(crate) fn accept_rows(&mut self, rows: &mut Rows) -> Result<(), IngestError<S::Error>> {
        let mut next = 0;
        while next < rows.len() {
            let room = self.batch_size.saturating_sub(self.batch.len()).max(1);
            let end = rows.len().min(next + room);
            self.batch.extend_from(rows, next..end);
            next = end;
            if self.batch.len() >= self.batch_size {
                self.flush()?;
            }
        }
        self.outline.rows += rows.len() as u64;
        rows.clear();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError<S::Error>> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let sent = self.sink.batch(&mut self.batch).map_err(IngestError::Sink);
        self.batch.clear();
        sent
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
