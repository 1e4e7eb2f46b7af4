//! The per-row half of validation: a [`RowChecker`] is built once from the
//! header and then checks one record at a time, holding nothing between
//! rows, which is what lets validation stream.

use std::borrow::Cow;

use super::normalize::{normalize_value, Normal};
use super::{Issue, Severity};
use crate::standard::{self, ColumnType, HeaderMatch, Required};

/// How one file column is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// As the file spells it.
    name: String,
    ty: ColumnType,
    required: Required,
    allowed: &'static [&'static str],
}

/// Totals that must equal the sum of their parts, by column name.
const SUMS: &[(&str, &[&str])] = &[
    (
        "男性トイレ総数",
        &[
            "男性トイレ数（小便器）",
            "男性トイレ数（和式）",
            "男性トイレ数（洋式）",
        ],
    ),
    (
        "女性トイレ総数",
        &["女性トイレ数（和式）", "女性トイレ数（洋式）"],
    ),
    (
        "男女共用トイレ総数",
        &["男女共用トイレ数（和式）", "男女共用トイレ数（洋式）"],
    ),
    ("総人口", &["男性", "女性"]),
];

/// A total column and its parts, as 0-based file columns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sum {
    total: usize,
    parts: Vec<usize>,
}

/// Where [`RowChecker::check_each`] puts the issues it finds: a list, or
/// (in the ingest, once the report keeps no more details) only their
/// counts, which spares writing each issue out and reading it back.
pub(crate) trait Issues {
    fn push(&mut self, issue: Issue);
}

impl Issues for Vec<Issue> {
    fn push(&mut self, issue: Issue) {
        Vec::push(self, issue);
    }
}

/// Checks data rows against a header and the schema it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChecker {
    plans: Vec<Plan>,
    sums: Vec<Sum>,
}

impl RowChecker {
    /// Columns the schema knows take its type and requirement; the others
    /// (all of them when no schema matched) are typed by their names.
    pub fn new(header: &[String], m: &HeaderMatch) -> RowChecker {
        let plans = header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let known = m
                    .schema
                    .zip(m.mapping.get(i).copied().flatten())
                    .and_then(|(s, c)| s.columns.get(c));
                match known {
                    Some(c) => Plan {
                        name: name.clone(),
                        ty: c.ty,
                        required: c.required,
                        allowed: c.allowed,
                    },
                    None => Plan {
                        name: name.clone(),
                        ty: standard::infer_type(name),
                        required: Required::Optional,
                        allowed: &[],
                    },
                }
            })
            .collect::<Vec<Plan>>();
        let find = |name: &str| {
            let key = standard::header_key(name);
            plans
                .iter()
                .position(|p| standard::header_key(&p.name) == key)
        };
        let sums = SUMS
            .iter()
            .filter_map(|(total, parts)| {
                Some(Sum {
                    total: find(total)?,
                    parts: parts
                        .iter()
                        .map(|p| find(p))
                        .collect::<Option<Vec<usize>>>()?,
                })
            })
            .collect();
        RowChecker { plans, sums }
    }

    /// Issues about the header itself: the schema found or not, unknown,
    /// missing, misspelt and repeated columns, empty column names.
    pub fn header_issues(&self, header: &[String], m: &HeaderMatch, line: usize) -> Vec<Issue> {
        let mut out = Vec::new();
        let mut push =
            |column: Option<usize>, severity, code, original: &str, ja: String, en: String| {
                out.push(Issue {
                    row: 1,
                    line,
                    column: column.map(|c| c + 1),
                    column_name: column.and_then(|c| header.get(c).cloned()),
                    severity,
                    code,
                    original: original.to_string(),
                    message_ja: ja,
                    message_en: en,
                });
            };
        let Some(schema) = m.schema else {
            let (ja, en) = match m.best {
                Some((best, score)) => (
                    format!("見出しがどの標準データセットとも一致しません (最も近いのは{} {:.0}%): 型は列名から推定し、CSV として読み込みます", best.name_ja, score * 100.0),
                    format!("the header matches no standard dataset (closest: {} at {:.0}%): loaded as plain CSV, types guessed from column names", best.name_en, score * 100.0),
                ),
                None => ("見出しがどの標準データセットとも一致しません".into(), "the header matches no standard dataset".into()),
            };
            push(None, Severity::Warning, "no-schema", "", ja, en);
            for (i, name) in header
                .iter()
                .enumerate()
                .filter(|(_, n)| n.trim().is_empty())
            {
                push(
                    Some(i),
                    Severity::Warning,
                    "empty-column-name",
                    name,
                    format!("{}列目の列名が空です", i + 1),
                    format!("column {} has no name", i + 1),
                );
            }
            return out;
        };
        for &i in &m.variants {
            let Some(c) = m
                .mapping
                .get(i)
                .copied()
                .flatten()
                .and_then(|c| schema.columns.get(c))
            else {
                continue;
            };
            let cell = header.get(i).map_or("", String::as_str);
            push(Some(i), Severity::Warning, "header-variant", cell,
                format!("列名「{cell}」は定義の「{}」と表記が違います (同じ列として扱います)", c.name),
                format!("column name {cell:?} is spelt differently from the definition's {:?} (taken as that column)", c.name));
        }
        for &i in &m.unknown {
            let cell = header.get(i).map_or("", String::as_str);
            push(
                Some(i),
                Severity::Warning,
                "unknown-column",
                cell,
                format!(
                    "列「{cell}」は{}の定義にありません (値は保持します)",
                    schema.name_ja
                ),
                format!(
                    "column {cell:?} is not in the {} definition (values kept)",
                    schema.name_en
                ),
            );
        }
        for &i in &m.duplicates {
            let cell = header.get(i).map_or("", String::as_str);
            push(Some(i), Severity::Warning, "duplicate-column", cell,
                format!("列名「{cell}」が重複しています (最初の列を定義に対応させます)"),
                format!("column name {cell:?} appears twice (the first one is matched to the definition)"));
        }
        for &s in &m.missing {
            let Some(c) = schema.columns.get(s) else {
                continue;
            };
            let severity = if c.required == Required::Always {
                Severity::Error
            } else {
                Severity::Warning
            };
            let (need_ja, need_en) = if c.required == Required::Always {
                ("必須の", "required ")
            } else {
                ("", "")
            };
            push(
                None,
                severity,
                "missing-column",
                "",
                format!("{need_ja}列「{}」がありません", c.name),
                format!("{need_en}column {:?} is missing", c.name),
            );
        }
        out
    }

    /// Normalises and checks one record: `row` is its number in the file
    /// (header = 1), `line` the physical line it starts on. Returns every
    /// cell (normalised where valid, as written where not) and the issues.
    pub fn check(&self, row: usize, line: usize, cells: &[&str]) -> (Vec<String>, Vec<Issue>) {
        self.check_values(row, line, cells, true)
    }

    /// [`check`](Self::check), with or without details.
    fn check_values(
        &self,
        row: usize,
        line: usize,
        cells: &[&str],
        details: bool,
    ) -> (Vec<String>, Vec<Issue>) {
        let mut values = Vec::with_capacity(cells.len());
        let mut issues = Vec::new();
        self.check_each(row, line, cells, details, &mut issues, |_, value| {
            values.push(value.to_owned());
        });
        (values, issues)
    }

    /// Checks one record as [`check`](Self::check) does, handing each
    /// value to `each` (with its column index) as soon as it is checked
    /// instead of collecting them, and adding the issues to `issues`.
    /// Unchanged values are borrowed from `cells`. A value is handed over
    /// as `&str`, in two registers: a `Cow` went through the stack, and
    /// reading it back before its stores had landed was half the checker's
    /// own time in the profile of the ingest. Without `details`,
    /// issues keep what counting them needs (row, line, column, severity,
    /// code) but not the column's name, the original value nor the
    /// messages: building those costs more than the checks, and a report
    /// past its cap of details drops them anyway.
    pub(crate) fn check_each(
        &self,
        row: usize,
        line: usize,
        cells: &[&str],
        details: bool,
        issues: &mut impl Issues,
        mut each: impl FnMut(usize, &str),
    ) {
        let issue =
            |column: Option<usize>, severity, code, original: &str, ja: String, en: String| {
                let (original, ja, en) = if details {
                    (original.to_string(), ja, en)
                } else {
                    (String::new(), String::new(), String::new())
                };
                Issue {
                    row,
                    line,
                    column: column.map(|c| c + 1),
                    column_name: column
                        .filter(|_| details)
                        .and_then(|c| self.plans.get(c))
                        .map(|p| p.name.clone()),
                    severity,
                    code,
                    original,
                    message_ja: ja,
                    message_en: en,
                }
            };
        if cells.len() != self.plans.len() {
            let (ja, en) = if cells.len() > self.plans.len() {
                (
                    "多すぎます (余分な値も保持します)",
                    "too many (the extra values are kept)",
                )
            } else {
                ("足りません", "too few")
            };
            issues.push(issue(
                None,
                Severity::Error,
                "column-count",
                "",
                format!(
                    "{}列ありますが見出しは{}列です: 列が{ja}",
                    cells.len(),
                    self.plans.len()
                ),
                format!(
                    "{} columns where the header has {}: {en}",
                    cells.len(),
                    self.plans.len()
                ),
            ));
        }
        if cells.iter().all(|c| c.trim().is_empty()) {
            issues.push(issue(
                None,
                Severity::Warning,
                "empty-row",
                "",
                "空の行です".into(),
                "the row is empty".into(),
            ));
        }
        // The numbers the sums compare, by column: only files whose schema
        // has totals (toilets, population) need them.
        let mut numbers: Vec<Option<u64>> = if self.sums.is_empty() {
            Vec::new()
        } else {
            vec![None; cells.len()]
        };
        for (i, raw) in cells.iter().enumerate() {
            let plan = self.plans.get(i);
            let ty = plan.map_or(ColumnType::Text, |p| p.ty);
            let value = match normalize_value(ty, raw, details) {
                Normal::Ok(v) => v,
                Normal::Fixed(v, n) => {
                    issues.push(issue(Some(i), Severity::Warning, n.code, raw, n.ja, n.en));
                    v
                }
                Normal::Bad(n) => {
                    issues.push(issue(Some(i), Severity::Error, n.code, raw, n.ja, n.en));
                    Cow::Borrowed(*raw)
                }
            };
            if let Some(p) = plan {
                if value.is_empty() && p.required == Required::Always {
                    issues.push(issue(
                        Some(i),
                        Severity::Error,
                        "required",
                        raw,
                        format!("必須の列「{}」が空です", p.name),
                        format!("required column {:?} is empty", p.name),
                    ));
                } else if !value.is_empty()
                    && !p.allowed.is_empty()
                    && !p.allowed.contains(&value.as_ref())
                {
                    issues.push(issue(
                        Some(i),
                        Severity::Error,
                        "not-allowed",
                        raw,
                        format!(
                            "「{value}」は列「{}」に使える値ではありません ({})",
                            p.name,
                            p.allowed.join("、")
                        ),
                        format!(
                            "{value:?} is not an allowed value of {:?} ({})",
                            p.name,
                            p.allowed.join(", ")
                        ),
                    ));
                }
            }
            if let Some(number) = numbers.get_mut(i) {
                *number = value.parse().ok();
            }
            each(i, &value);
        }
        for sum in &self.sums {
            let number = |c: usize| numbers.get(c).copied().flatten();
            let (Some(total), Some(parts)) = (
                number(sum.total),
                sum.parts
                    .iter()
                    .map(|&c| number(c))
                    .collect::<Option<Vec<u64>>>(),
            ) else {
                continue;
            };
            let added: u64 = parts.iter().sum();
            if added != total {
                let name = self.plans.get(sum.total).map_or("", |p| p.name.as_str());
                let shown = parts
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("+");
                let original = cells.get(sum.total).copied().unwrap_or("");
                issues.push(issue(
                    Some(sum.total),
                    Severity::Error,
                    "sum",
                    original,
                    format!("「{name}」は {total} ですが、内訳の合計は {shown} = {added} です"),
                    format!("{name:?} is {total} but its parts add up to {shown} = {added}"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AED_HEADER: &str = "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,住所,方書,緯度,経度,設置位置,電話番号,内線番号,法人番号,団体名,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,小児対応設備の有無,URL,備考";

    /// What counting an issue reads; the rest are its details.
    fn counted(issue: &Issue) -> (usize, usize, Option<usize>, Severity, &str) {
        (
            issue.row,
            issue.line,
            issue.column,
            issue.severity,
            issue.code,
        )
    }

    proptest! {
        /// Checking without details gives the same values and the same
        /// issues, less their original values and messages.
        #[test]
        fn without_details_only_the_details_differ(
            cells in proptest::collection::vec(
                "[0-9０-９.,:/ー\\-()（）令和年月日時分○有無ﾄｲﾚ２階 \u{3000}a-z]{0,12}",
                0..26,
            ),
        ) {
            let header: Vec<String> = AED_HEADER.split(',').map(str::to_string).collect();
            let m = standard::match_header(&header, standard::DEFAULT_THRESHOLD);
            prop_assert!(m.schema.is_some());
            let checker = RowChecker::new(&header, &m);
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            let (values, issues) = checker.check(7, 9, &cells);
            let (quiet_values, quiet_issues) = checker.check_values(7, 9, &cells, false);
            prop_assert_eq!(&values, &quiet_values);
            prop_assert_eq!(
                issues.iter().map(counted).collect::<Vec<_>>(),
                quiet_issues.iter().map(counted).collect::<Vec<_>>()
            );
            prop_assert!(issues.iter().all(|i| !i.message_ja.is_empty() && !i.message_en.is_empty()));
            prop_assert!(quiet_issues.iter().all(|i| i.original.is_empty() && i.message_en.is_empty() && i.column_name.is_none()));
        }
    }
}
