//! The report an ingest leaves with the resource: counts that are always
//! exact (per issue code and per column) and the details of the first
//! issues, capped so that a million-row file with an error on every row
//! keeps a report of bounded size. Serialises to JSON as it is shown
//! through the API, in Japanese and English.

use std::collections::BTreeMap;

use crate::standard::Schema;
use crate::validate::{Issue, Severity};

use super::Format;

/// Errors and warnings of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub errors: u64,
    pub warnings: u64,
}

impl Counts {
    fn add(&mut self, severity: Severity, n: u64) {
        match severity {
            Severity::Error => self.errors += n,
            Severity::Warning => self.warnings += n,
        }
    }

    pub fn total(&self) -> u64 {
        self.errors + self.warnings
    }
}

/// The issues found in one file column.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ColumnCounts {
    /// 1-based, as in the file.
    pub column: usize,
    /// The header cell as written (empty for cells beyond the header).
    pub name: String,
    pub errors: u64,
    pub warnings: u64,
    pub by_code: BTreeMap<&'static str, u64>,
}

/// The standard dataset a file was recognised as.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SchemaSummary {
    pub id: &'static str,
    pub name_ja: &'static str,
    pub name_en: &'static str,
    /// Share of columns in common with the definition, 0 to 1.
    pub score: f64,
}

/// What an ingest did, to keep with the resource.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IngestReport {
    pub format: Format,
    /// The text encoding found (CSV and TSV only): `UTF-8`, `UTF-8 (BOM)`
    /// or `Shift_JIS`.
    pub encoding: Option<String>,
    /// The sheet read (Excel only).
    pub sheet: Option<String>,
    pub schema: Option<SchemaSummary>,
    /// Row of the header: the first record of a CSV; the spreadsheet's own
    /// row number in Excel, after any title rows.
    pub header_row: usize,
    /// Data rows loaded, every one of the file's.
    pub rows: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Exact counts per issue code, however many details were kept.
    pub by_code: BTreeMap<&'static str, Counts>,
    /// Exact counts per file column that had any issue, in column order.
    pub by_column: Vec<ColumnCounts>,
    /// The first `issue_cap` issues in file order.
    pub issues: Vec<Issue>,
    pub issue_cap: usize,
    /// True when more issues were found than `issues` holds.
    pub issues_capped: bool,
    /// A one-paragraph summary, also saying when details were capped.
    pub message_ja: String,
    pub message_en: String,
}

impl IngestReport {
    /// Issues found in total, kept or not.
    pub fn issue_count(&self) -> u64 {
        self.errors + self.warnings
    }

    /// Exact number of issues with this code.
    pub fn count(&self, code: &str) -> u64 {
        self.by_code.get(code).map_or(0, Counts::total)
    }
}

/// Issues counted by kind where they were found, for a report that keeps
/// no more details: a worker thread counts a chunk's issues itself rather
/// than build each one and hand it to the reading thread to count (three
/// million of them in a million-row file of ○ flags). A chunk has a few
/// kinds, so a short list searched in order beats a map.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Column, code, severity, how many.
    kinds: Vec<(Option<usize>, &'static str, Severity, u64)>,
}

impl crate::validate::Issues for Tally {
    fn push(&mut self, issue: Issue) {
        self.add(&issue);
    }
}

impl Tally {
    pub(crate) fn add(&mut self, issue: &Issue) {
        let same = |(column, code, severity, _): &&mut (Option<usize>, &str, Severity, u64)| {
            *column == issue.column && *severity == issue.severity && *code == issue.code
        };
        match self.kinds.iter_mut().find(same) {
            Some(kind) => kind.3 += 1,
            None => self
                .kinds
                .push((issue.column, issue.code, issue.severity, 1)),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.kinds.clear();
    }
}

/// Gathers issues as rows are checked.
#[derive(Debug)]
pub(crate) struct ReportBuilder {
    cap: usize,
    issues: Vec<Issue>,
    by_code: BTreeMap<&'static str, Counts>,
    by_column: Vec<ColumnCounts>,
    totals: Counts,
}

impl ReportBuilder {
    /// `header` names the columns counted: the names come from it alone, so
    /// that issues checked without details need not carry them (a column
    /// beyond the header has none).
    pub(crate) fn new(cap: usize, header: &[String]) -> ReportBuilder {
        let by_column = header
            .iter()
            .enumerate()
            .map(|(i, name)| ColumnCounts {
                column: i + 1,
                name: name.clone(),
                ..ColumnCounts::default()
            })
            .collect();
        ReportBuilder {
            cap,
            issues: Vec::new(),
            by_code: BTreeMap::new(),
            by_column,
            totals: Counts::default(),
        }
    }

    pub(crate) fn push(&mut self, issue: Issue) {
        self.count(issue.column, issue.code, issue.severity, 1);
        if self.issues.len() < self.cap {
            debug_assert!(
                !issue.message_en.is_empty(),
                "an issue checked without details was kept"
            );
            self.issues.push(issue);
        }
    }

    /// Adds `n` issues of one kind to the counts.
    fn count(&mut self, column: Option<usize>, code: &'static str, severity: Severity, n: u64) {
        self.totals.add(severity, n);
        self.by_code.entry(code).or_default().add(severity, n);
        if let Some(column) = column.filter(|&c| c > 0) {
            if self.by_column.len() < column {
                let from = self.by_column.len();
                self.by_column
                    .extend((from + 1..=column).map(|c| ColumnCounts {
                        column: c,
                        ..ColumnCounts::default()
                    }));
            }
            let counts = &mut self.by_column[column - 1];
            match severity {
                Severity::Error => counts.errors += n,
                Severity::Warning => counts.warnings += n,
            }
            *counts.by_code.entry(code).or_default() += n;
        }
    }

    /// Adds what `tally` counted and empties it.
    pub(crate) fn add_tally(&mut self, tally: &mut Tally) {
        for (column, code, severity, n) in tally.kinds.drain(..) {
            self.count(column, code, severity, n);
        }
    }

    /// True once no more issue details will be kept: issues of later rows
    /// are only counted, so their messages need not be written.
    pub(crate) fn is_full(&self) -> bool {
        self.issues.len() >= self.cap
    }

    pub(crate) fn extend(&mut self, issues: impl IntoIterator<Item = Issue>) {
        for issue in issues {
            self.push(issue);
        }
    }

    pub(crate) fn finish(self, outline: Outline) -> IngestReport {
        let total = self.totals.total();
        let capped = total > self.issues.len() as u64;
        let rows = outline.rows;
        let (errors, warnings) = (self.totals.errors, self.totals.warnings);
        let mut message_ja =
            format!("{rows}行を読み込みました。エラー {errors} 件、警告 {warnings} 件。");
        let mut message_en =
            format!("{rows} rows loaded, with {errors} errors and {warnings} warnings.");
        if capped {
            let kept = self.issues.len();
            message_ja.push_str(&format!(
                " 詳細は最初の {kept} 件だけを残しています (件数は全件を数えています)。"
            ));
            message_en.push_str(&format!(
                " Details are kept for the first {kept} only (the counts include all)."
            ));
        }
        IngestReport {
            format: outline.format,
            encoding: outline.encoding.map(|e| e.to_string()),
            sheet: outline.sheet,
            schema: outline.schema.map(|(s, score)| SchemaSummary {
                id: s.id,
                name_ja: s.name_ja,
                name_en: s.name_en,
                score,
            }),
            header_row: outline.header_row,
            rows,
            errors,
            warnings,
            by_code: self.by_code,
            by_column: self
                .by_column
                .into_iter()
                .filter(|c| c.errors + c.warnings > 0)
                .collect(),
            issues: self.issues,
            issue_cap: self.cap,
            issues_capped: capped,
            message_ja,
            message_en,
        }
    }
}

/// The facts of the file that the report states besides its issues.
#[derive(Debug, Clone)]
pub(crate) struct Outline {
    pub(crate) format: Format,
    pub(crate) encoding: Option<jp::encoding::Encoding>,
    pub(crate) sheet: Option<String>,
    pub(crate) schema: Option<(&'static Schema, f64)>,
    pub(crate) header_row: usize,
    pub(crate) rows: u64,
}
