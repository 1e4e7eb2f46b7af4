//! The per-row half of validation: a [`RowChecker`] is built once from the
//! header and then checks one record at a time, holding nothing between
//! rows, which is what lets validation stream.

use super::normalize::{normalize_cell, Cell};
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
        let mut issues = Vec::new();
        let issue =
            |column: Option<usize>, severity, code, original: &str, ja: String, en: String| Issue {
                row,
                line,
                column: column.map(|c| c + 1),
                column_name: column
                    .and_then(|c| self.plans.get(c))
                    .map(|p| p.name.clone()),
                severity,
                code,
                original: original.to_string(),
                message_ja: ja,
                message_en: en,
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
        let mut out = Vec::with_capacity(cells.len());
        for (i, raw) in cells.iter().enumerate() {
            let plan = self.plans.get(i);
            let ty = plan.map_or(ColumnType::Text, |p| p.ty);
            let value = match normalize_cell(ty, raw) {
                Cell::Ok(v) => v,
                Cell::Fixed(v, n) => {
                    issues.push(issue(Some(i), Severity::Warning, n.code, raw, n.ja, n.en));
                    v
                }
                Cell::Bad(n) => {
                    issues.push(issue(Some(i), Severity::Error, n.code, raw, n.ja, n.en));
                    (*raw).to_string()
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
                    && !p.allowed.contains(&value.as_str())
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
            out.push(value);
        }
        for sum in &self.sums {
            let number = |c: usize| out.get(c).and_then(|v| v.parse::<u64>().ok());
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
        (out, issues)
    }
}
