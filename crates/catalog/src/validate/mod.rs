//! Validation of the CSV files municipalities publish: decode (UTF-8 with or
//! without BOM, Shift_JIS), read the header and recognise the standard
//! dataset it belongs to, then normalise and check every cell by its
//! column's type. Nothing is dropped silently: every change and every
//! problem becomes an [`Issue`] with its row, column, original value and a
//! message in Japanese and English, and rows of the wrong width are kept
//! and reported. Only a file that cannot be read at all is [`Rejected`].
//!
//! Rows go through a [`RowChecker`] one at a time, so that a later version
//! can stream a large file from a reader instead of holding it in memory;
//! [`validate`] is the in-memory driver.

pub mod normalize;
mod row;

pub(crate) use row::Issues;
pub use row::RowChecker;

use std::fmt;

use crate::standard::{self, HeaderMatch, Schema};

/// How to validate.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Validate against this schema id instead of recognising the header.
    pub schema: Option<String>,
    /// Minimum header match score (see [`HeaderMatch::score`]).
    pub threshold: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            schema: None,
            threshold: standard::DEFAULT_THRESHOLD,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The value was normalised, or something is unusual but usable.
    Warning,
    /// The value or row does not meet the schema.
    Error,
}

/// One finding, in Japanese and English.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// Record number as in the file, the header being row 1.
    pub row: usize,
    /// Physical line where the record starts (differs from `row` after a
    /// quoted field containing line breaks).
    pub line: usize,
    /// 1-based column, when the issue is about one.
    pub column: Option<usize>,
    pub column_name: Option<String>,
    pub severity: Severity,
    /// Stable identifier of the kind of issue, for programs and tests.
    pub code: &'static str,
    /// The value as it was in the file.
    pub original: String,
    pub message_ja: String,
    pub message_en: String,
}

/// All findings for a file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub issues: Vec<Issue>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Issue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
    }

    /// Issues with the given code.
    pub fn with_code<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a Issue> + 'a {
        self.issues.iter().filter(move |i| i.code == code)
    }
}

/// A file that could be read, with its findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub encoding: jp::encoding::Encoding,
    /// The standard dataset recognised, or None (loaded as plain CSV).
    pub schema: Option<&'static Schema>,
    pub header_match: HeaderMatch,
    /// The header cells as written.
    pub header: Vec<String>,
    /// Data rows after normalisation, every row of the file, in order,
    /// with as many cells as the file had.
    pub rows: Vec<Vec<String>>,
    pub report: Report,
}

/// Why a file is unusable as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectKind {
    /// Neither UTF-8 nor Shift_JIS.
    Undecodable,
    /// NUL bytes: a binary file (an Excel workbook, a PDF) sent as CSV.
    NotText,
    Empty,
    NoHeader,
    CsvSyntax,
    /// Larger than the size limit the catalog accepts (see `ingest`).
    TooLarge,
    /// Announced or recognised as an Excel workbook but not readable as
    /// one (truncated, corrupt, password-protected).
    NotAWorkbook,
}

/// A file that cannot be used, with where and why in both languages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub kind: RejectKind,
    /// 1-based line, 0 when the problem is the whole file.
    pub line: usize,
    /// 0-based byte offset in the input, when known.
    pub byte: Option<usize>,
    pub message_ja: String,
    pub message_en: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.message_ja, self.message_en)
    }
}

impl std::error::Error for Rejected {}

pub(crate) fn reject(
    kind: RejectKind,
    line: usize,
    byte: Option<usize>,
    ja: impl Into<String>,
    en: impl Into<String>,
) -> Rejected {
    Rejected {
        kind,
        line,
        byte,
        message_ja: ja.into(),
        message_en: en.into(),
    }
}

/// Validates a whole file held in memory.
pub fn validate(bytes: &[u8], options: &Options) -> Result<Validated, Rejected> {
    if bytes.contains(&0) {
        let at = bytes.iter().position(|&b| b == 0);
        let line = at.map_or(0, |o| {
            bytes[..o].iter().filter(|&&b| b == b'\n').count() + 1
        });
        return Err(reject(
            RejectKind::NotText,
            line,
            at,
            "NUL バイトを含むため CSV テキストではありません (Excel ファイルなどでは?)",
            "contains NUL bytes, so it is not CSV text (an Excel workbook or other binary file?)",
        ));
    }
    let decoded = jp::encoding::decode(bytes).map_err(|e| {
        let text = e.to_string();
        let (ja, en) = text.split_once(" / ").unwrap_or((&text, &text));
        reject(RejectKind::Undecodable, e.line(), Some(e.offset()), ja, en)
    })?;
    if decoded.text.trim().is_empty() {
        return Err(reject(
            RejectKind::Empty,
            0,
            None,
            "ファイルが空です",
            "the file is empty",
        ));
    }
    // Well-formed CSV always has an even number of quotes; an odd number
    // means a quoted field was never closed, which the reader silently runs
    // to the end of the file.
    let unbalanced = decoded.text.bytes().filter(|&b| b == b'"').count() % 2 == 1;
    validate_records(
        decoded.text.as_bytes(),
        decoded.encoding,
        unbalanced,
        options,
    )
}

/// The line a record starts on, for a record `csv` read from `bytes`.
/// `csv` gives the line it started reading at, which stops short of the
/// line ends it skips before the record: blank lines, and with CRLF line
/// ends (most Japanese files) the LF of the line before, so every record
/// but the first was put a line too early. Those line ends are counted
/// here.
pub(crate) fn record_line(bytes: &[u8], position: Option<&csv::Position>) -> usize {
    let Some(position) = position else {
        return 0;
    };
    let start = usize::try_from(position.byte()).unwrap_or(usize::MAX);
    let skipped = bytes
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .filter(|&&b| b == b'\n')
        .count();
    usize::try_from(position.line())
        .unwrap_or(usize::MAX)
        .saturating_add(skipped)
}

pub(crate) fn csv_error(e: &csv::Error) -> Rejected {
    let line = e
        .position()
        .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
    let byte = e.position().and_then(|p| usize::try_from(p.byte()).ok());
    reject(
        RejectKind::CsvSyntax,
        line,
        byte,
        format!("{line}行目付近で CSV として読めません: {e}"),
        format!("not readable as CSV near line {line}: {e}"),
    )
}

/// The row loop, over UTF-8 CSV, one record at a time.
fn validate_records(
    text: &[u8],
    encoding: jp::encoding::Encoding,
    unbalanced_quotes: bool,
    options: &Options,
) -> Result<Validated, Rejected> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut records = reader.records();
    let first = match records.next() {
        None => {
            return Err(reject(
                RejectKind::Empty,
                0,
                None,
                "ファイルが空です",
                "the file is empty",
            ))
        }
        Some(Err(e)) => return Err(csv_error(&e)),
        Some(Ok(r)) => r,
    };
    let header: Vec<String> = first.iter().map(str::to_string).collect();
    let header_line = record_line(text, first.position()).max(1);
    let header_match = match_header(&header, options);
    if header_match.schema.is_none() && looks_like_data(&header) {
        return Err(reject(
            RejectKind::NoHeader,
            header_line,
            None,
            "1行目が見出しではなくデータのようです: 列名の行がありません",
            "the first row looks like data, not column names: the file has no header",
        ));
    }
    let checker = RowChecker::new(&header, &header_match);
    let mut report = Report {
        issues: checker.header_issues(&header, &header_match, header_line),
    };
    let mut rows = Vec::new();
    let mut last = (1, header_line);
    for (index, record) in records.enumerate() {
        let record = record.map_err(|e| csv_error(&e))?;
        let line = record_line(text, record.position());
        let cells: Vec<&str> = record.iter().collect();
        last = (index + 2, line);
        let (normalized, issues) = checker.check(index + 2, line, &cells);
        rows.push(normalized);
        report.issues.extend(issues);
    }
    if unbalanced_quotes {
        let (row, line) = last;
        report.issues.push(Issue {
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
    if rows.is_empty() {
        report.issues.push(Issue {
            row: 1,
            line: header_line,
            column: None,
            column_name: None,
            severity: Severity::Warning,
            code: "no-rows",
            original: String::new(),
            message_ja: "見出しだけでデータ行がありません".into(),
            message_en: "the file has a header but no data rows".into(),
        });
    }
    Ok(Validated {
        encoding,
        schema: header_match.schema,
        header_match,
        header,
        rows,
        report,
    })
}

pub(crate) fn match_header(header: &[String], options: &Options) -> HeaderMatch {
    match options.schema.as_deref().and_then(standard::schema) {
        Some(schema) => standard::match_schema(header, schema),
        None => standard::match_header(header, options.threshold),
    }
}

/// A first row whose non-empty cells are mostly numbers is data, not a
/// header: column names are words.
pub(crate) fn looks_like_data(header: &[String]) -> bool {
    let filled: Vec<&String> = header.iter().filter(|c| !c.trim().is_empty()).collect();
    if filled.is_empty() {
        return true;
    }
    let numeric = filled
        .iter()
        .filter(|c| {
            let v = jp::width::normalize(c);
            !v.is_empty()
                && v.chars()
                    .all(|ch| ch.is_ascii_digit() || ".-+:/".contains(ch))
        })
        .count();
    numeric * 2 > filled.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AED_HEADER: &str = "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,住所,方書,緯度,経度,設置位置,電話番号,内線番号,法人番号,団体名,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,小児対応設備の有無,URL,備考";
    const AED_ROW: &str = "222127,0000000001,静岡県,焼津市,市役所本館,シヤクショホンカン,静岡県焼津市本町2-16-32,,34.866918,138.323171,２階正面入口,(054)626-1139,,,管財課,,,,,有,,";

    fn run(text: &str) -> Validated {
        match validate(text.as_bytes(), &Options::default()) {
            Ok(v) => v,
            Err(e) => panic!("rejected: {e}"),
        }
    }

    fn codes(v: &Validated) -> Vec<(usize, Option<usize>, &'static str)> {
        v.report
            .issues
            .iter()
            .map(|i| (i.row, i.column, i.code))
            .collect()
    }

    #[test]
    fn shift_jis_and_bom_files_decode_to_the_same_result() {
        let text = format!("{AED_HEADER}\r\n{AED_ROW}\r\n");
        let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(&text);
        assert!(!lossy);
        let from_sjis = validate(&sjis, &Options::default());
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        let from_bom = validate(&bom, &Options::default());
        let (Ok(a), Ok(b)) = (from_sjis, from_bom) else {
            panic!("rejected")
        };
        assert_eq!(a.encoding, jp::encoding::Encoding::ShiftJis);
        assert_eq!(b.encoding, jp::encoding::Encoding::Utf8Bom);
        assert_eq!(a.schema.map(|s| s.id), Some("v1-01-aed"));
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.rows[0][10], "2階正面入口");
        assert_eq!(a.rows[0][11], "054-626-1139");
    }

    #[test]
    fn unusable_files_are_rejected_with_the_reason() {
        let reject = |bytes: &[u8]| match validate(bytes, &Options::default()) {
            Err(e) => {
                assert!(
                    !e.message_ja.is_empty()
                        && !e.message_en.is_empty()
                        && e.message_ja != e.message_en
                );
                (e.kind, e.line)
            }
            Ok(v) => panic!("accepted: {v:?}"),
        };
        assert_eq!(reject(b"").0, RejectKind::Empty);
        assert_eq!(reject(b"\xEF\xBB\xBF\r\n \r\n").0, RejectKind::Empty);
        assert_eq!(reject(b"PK\x03\x04\x00\x00"), (RejectKind::NotText, 1));
        assert_eq!(
            reject(
                "名称\n"
                    .as_bytes()
                    .iter()
                    .chain(b"\xFF\xFF\n")
                    .copied()
                    .collect::<Vec<u8>>()
                    .as_slice()
            ),
            (RejectKind::Undecodable, 2)
        );
        assert_eq!(
            reject(b"222127,1,34.86,138.32\n222127,2,34.87,138.33\n"),
            (RejectKind::NoHeader, 1)
        );
    }

    #[test]
    fn rows_of_the_wrong_width_are_kept_and_reported() {
        let v = run(&format!("{AED_HEADER}\n222127,1,静岡県\n{AED_ROW},余分\n"));
        assert_eq!(v.rows.len(), 2);
        assert_eq!(v.rows[0].len(), 3);
        assert_eq!(v.rows[1].len(), 23);
        assert_eq!(v.rows[1][22], "余分");
        let counts: Vec<_> = v
            .report
            .with_code("column-count")
            .map(|i| (i.row, i.severity))
            .collect();
        assert_eq!(counts, vec![(2, Severity::Error), (3, Severity::Error)]);
    }

    #[test]
    fn rows_and_lines_differ_after_a_quoted_line_break() {
        let v = run(&format!("{AED_HEADER}\n222127,1,静岡県,焼津市,\"市役所\n本館\",,,,34.8,138.3,,,,,,,,,,有,,\n222127,2,静岡県,焼津市,x,,,,34.8,200,,,,,,,,,,有,,\n"));
        let bad: Vec<_> = v
            .report
            .errors()
            .map(|i| (i.row, i.line, i.column, i.code))
            .collect();
        assert_eq!(bad, vec![(3, 4, Some(10), "coordinate-range")]);
        assert_eq!(v.rows[0][4], "市役所\n本館");
    }

    /// `csv` starts each record after a CRLF on the line before; most
    /// Japanese files end lines with CRLF, so every line was one short.
    #[test]
    fn lines_count_crlf_and_blank_lines() {
        let v = run(&format!("{AED_HEADER}\r\n222127,1,静岡県,焼津市,x,,,,34.8,200,,,,,,,,,,有,,\r\n\r\n222127,2,静岡県,焼津市,\"市役所\r\n本館\",,,,34.8,200,,,,,,,,,,有,,\r\n222127,3,静岡県,焼津市,x,,,,34.8,200,,,,,,,,,,有,,\r\n"));
        let bad: Vec<_> = v.report.errors().map(|i| (i.row, i.line, i.code)).collect();
        assert_eq!(
            bad,
            vec![
                (2, 2, "coordinate-range"),
                (3, 4, "coordinate-range"),
                (4, 6, "coordinate-range")
            ]
        );
    }

    #[test]
    fn required_and_allowed_values() {
        let toilet = crate::standard::schema("current-13-public-toilets").map(|s| {
            s.columns
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(",")
        });
        let Some(toilet) = toilet else {
            panic!("no toilet schema")
        };
        let mut row = vec![""; 39];
        row[3] = "駅前トイレ";
        row[30] = "たぶん";
        let v = run(&format!("{toilet}\n{}\n", row.join(",")));
        assert_eq!(v.schema.map(|s| s.id), Some("current-13-public-toilets"));
        let found = codes(&v);
        assert!(found.contains(&(2, Some(9), "required")), "{found:?}");
        assert!(found.contains(&(2, Some(15), "required")), "{found:?}");
        assert!(found.contains(&(2, Some(31), "yes-no")), "{found:?}");
        // ○ columns may be empty.
        assert!(!found.contains(&(2, Some(6), "required")));

        let mut child = "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,種別,住所,方書,緯度,経度,アクセス方法,駐車場情報,電話番号,内線番号,FAX番号,法人番号,団体名,認可等年月日,収容定員,受入年齢,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,一時預かりの有無,URL,備考".to_string();
        child.push_str(
            "\n222127,1,静岡県,焼津市,x,,保育園,,,,,,,,,,,,令和5年4月1日,70,,,9:00,,,,,\n",
        );
        let v = run(&child);
        let found = codes(&v);
        assert!(found.contains(&(2, Some(7), "not-allowed")), "{found:?}");
        assert_eq!(v.rows[0][18], "2023-04-01");
        assert_eq!(v.rows[0][22], "09:00");
    }

    #[test]
    fn an_unknown_header_loads_as_plain_csv_typed_by_name() {
        let v = run("名前,緯度,経度,電話番号\n灯台,34.8,200,(054)626-1139\n");
        assert!(v.schema.is_none());
        assert_eq!(
            codes(&v),
            vec![
                (1, None, "no-schema"),
                (2, Some(3), "coordinate-range"),
                (2, Some(4), "phone")
            ]
        );
        assert_eq!(v.rows, vec![vec!["灯台", "34.8", "200", "054-626-1139"]]);
    }

    #[test]
    fn forced_schema_and_header_only_file() {
        let options = Options {
            schema: Some("v1-09-fire-water-supplies".into()),
            ..Options::default()
        };
        let v = validate("種別,緯度,経度\n".as_bytes(), &options);
        let Ok(v) = v else { panic!("rejected") };
        assert_eq!(v.schema.map(|s| s.id), Some("v1-09-fire-water-supplies"));
        assert_eq!(v.report.with_code("missing-column").count(), 8);
        assert_eq!(v.report.with_code("no-rows").count(), 1);
    }

    #[test]
    fn toilet_totals_must_add_up() {
        let v = run("名称,男性トイレ総数,男性トイレ数（小便器）,男性トイレ数（和式）,男性トイレ数（洋式）,女性トイレ総数,女性トイレ数（和式）,女性トイレ数（洋式）\nA,3,2,0,1,2,0,2\nB,4,2,0,1,2,,2\n");
        assert_eq!(codes(&v), vec![(1, None, "no-schema"), (3, Some(2), "sum")]);
        let sum = v
            .report
            .with_code("sum")
            .next()
            .map(|i| (i.original.clone(), i.message_en.clone()));
        assert_eq!(
            sum,
            Some((
                "4".into(),
                "\"男性トイレ総数\" is 4 but its parts add up to 2+0+1 = 3".into()
            ))
        );
    }

    #[test]
    fn an_unclosed_quote_is_reported() {
        let v = run("名称,備考\nA,\"閉じていない\nB,x\n");
        assert_eq!(v.rows.len(), 1);
        assert_eq!(
            codes(&v),
            vec![
                (1, None, "no-schema"),
                (2, Some(2), "trimmed"),
                (2, None, "unclosed-quote")
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = validate(&bytes, &Options::default());
        }

        #[test]
        fn never_panics_and_keeps_every_row_of_csvish_text(
            text in "[名称緯度経度電話番号,\"\r\n ○０-９a-z\u{3000}ー―(054)\\.]{0,300}"
        ) {
            if let Ok(v) = validate(text.as_bytes(), &Options::default()) {
                let records = csv::ReaderBuilder::new().has_headers(false).flexible(true)
                    .from_reader(text.as_bytes()).records().count();
                prop_assert_eq!(v.rows.len() + 1, records);
                for issue in &v.report.issues {
                    prop_assert!(issue.row >= 1 && !issue.message_ja.is_empty() && !issue.message_en.is_empty());
                }
            }
        }

        #[test]
        fn never_panics_with_a_real_header(rows in proptest::collection::vec("[0-9０-９.,/:ー○有無\"a-z ]{0,40}", 0..20)) {
            let text = format!("{AED_HEADER}\n{}", rows.join("\n"));
            let v = validate(text.as_bytes(), &Options::default());
            prop_assert!(v.is_ok());
        }
    }
}
