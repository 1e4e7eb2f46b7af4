//! Datastore columns for a file: each column's name and store type, and
//! the conversion of a normalised cell into a typed [`Cell`].
//!
//! A recognised standard dataset types its columns by the definition:
//! dates become `date`, counts `int`, coordinates and measures `numeric`,
//! and everything whose digits are not a quantity — local government
//! codes, phone and postal numbers, town IDs — stays `text`, so that a
//! leading zero is never lost. A file of no known dataset loads every
//! column as `text`, as CKAN's xloader does: types guessed from a sample
//! of rows would fail on a later row the sample did not include, and text
//! keeps every value as published.

use store::datastore::{Cell, ColumnType, Field};

use super::Rows;
use crate::standard::{self, HeaderMatch};

/// How one file column is stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnPlan {
    pub(crate) ty: ColumnType,
}

/// The store type of a standard column type.
pub fn store_type(ty: standard::ColumnType) -> ColumnType {
    use standard::ColumnType as S;
    match ty {
        S::Integer => ColumnType::Int,
        S::Number | S::Latitude | S::Longitude => ColumnType::Numeric,
        S::Date => ColumnType::Date,
        // Times (hh:mm, with 24:00 allowed as a closing time) have no store
        // type; flags and 有/無 keep the values the definition names.
        S::Text
        | S::Time
        | S::Uri
        | S::Flag
        | S::YesNo
        | S::LocalGovCode
        | S::Phone
        | S::PostalCode
        | S::TownId => ColumnType::Text,
    }
}

/// PostgreSQL cuts identifiers at 63 bytes, which is 21 kanji: longer
/// names are shortened here so that every backend stores the same name.
const MAX_NAME_BYTES: usize = 63;

fn shorten(name: &str, max: usize) -> &str {
    if name.len() <= max {
        return name;
    }
    let mut end = max;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The fields of the table and how each column converts. A column the
/// schema knows is named as the definition spells it (so that the same
/// dataset from two municipalities has the same columns); others keep the
/// header text. Names are made unique and never start with `_`, which
/// the datastore reserves.
pub(crate) fn plan_columns(header: &[String], m: &HeaderMatch) -> (Vec<Field>, Vec<ColumnPlan>) {
    let mut fields: Vec<Field> = Vec::with_capacity(header.len());
    let mut plans = Vec::with_capacity(header.len());
    for (i, written) in header.iter().enumerate() {
        let known = m
            .schema
            .zip(m.mapping.get(i).copied().flatten())
            .and_then(|(s, c)| s.columns.get(c));
        let trimmed = written
            .trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
            .replace(['\r', '\n'], " ");
        let base = match known {
            Some(c) => c.name.to_string(),
            None if trimmed.is_empty() => format!("column_{}", i + 1),
            None => trimmed.trim_start_matches('_').to_string(),
        };
        let base = if base.is_empty() {
            format!("column_{}", i + 1)
        } else {
            base
        };
        let mut id = shorten(&base, MAX_NAME_BYTES).to_string();
        let mut n = 2;
        while fields.iter().any(|f| f.id == id) {
            let suffix = format!("_{n}");
            id = format!("{}{suffix}", shorten(&base, MAX_NAME_BYTES - suffix.len()));
            n += 1;
        }
        let ty = match known {
            Some(c) => store_type(c.ty),
            None => ColumnType::Text,
        };
        let mut info = serde_json::Map::new();
        info.insert("label".into(), written.clone().into());
        info.insert("original_header".into(), written.clone().into());
        info.insert("column".into(), (i + 1).into());
        if let (Some(schema), Some(c)) = (m.schema, known) {
            info.insert("standard_schema".into(), schema.id.into());
            info.insert("standard_column".into(), c.name.into());
            let (type_ja, type_en) = c.ty.names();
            info.insert("standard_type_ja".into(), type_ja.into());
            info.insert("standard_type_en".into(), type_en.into());
        }
        fields.push(Field {
            id,
            column_type: ty,
            info: Some(serde_json::Value::Object(info)),
        });
        plans.push(ColumnPlan { ty });
    }
    (fields, plans)
}

/// Converts a normalised value and adds it to the row `out` is filling;
/// `Err`, and nothing added, when it does not fit the type. Empty cells
/// are null, as CKAN loads them. Text is copied into the batch's text;
/// numbers and dates are parsed from the borrowed value.
pub(crate) fn push_converted(out: &mut Rows, ty: ColumnType, value: &str) -> Result<(), NotStored> {
    if value.is_empty() {
        out.push(Cell::Null);
    } else if ty == ColumnType::Text {
        out.push_text(value);
    } else {
        out.push(convert(ty, value)?);
    }
    Ok(())
}

/// A value its column's type cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotStored;

/// A non-empty value as a cell ([`push_converted`] adds text without
/// making a cell of it).
fn convert(ty: ColumnType, value: &str) -> Result<Cell, NotStored> {
    match ty {
        ColumnType::Text => Ok(Cell::Text(value.into())),
        ColumnType::Int => value.parse::<i64>().map(Cell::Int).map_err(|_| NotStored),
        ColumnType::Numeric => match value.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Cell::Numeric(x)),
            _ => Err(NotStored),
        },
        ColumnType::Date => parse_iso_date(value).map(Cell::Date).ok_or(NotStored),
        ColumnType::Bool => match value {
            "true" | "TRUE" | "1" => Ok(Cell::Bool(true)),
            "false" | "FALSE" | "0" => Ok(Cell::Bool(false)),
            _ => Err(NotStored),
        },
        ColumnType::Timestamp => chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S")
            .map(Cell::Timestamp)
            .map_err(|_| NotStored),
        ColumnType::Json => match serde_json::from_str(value) {
            Ok(v) => Ok(Cell::Json(Box::new(v))),
            Err(_) => Err(NotStored),
        },
    }
}

/// YYYY-MM-DD, what the date normaliser writes.
fn parse_iso_date(value: &str) -> Option<chrono::NaiveDate> {
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = value.get(..4)?.parse().ok()?;
    let month = value.get(5..7)?.parse().ok()?;
    let day = value.get(8..)?.parse().ok()?;
    chrono::NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cell `value` becomes in a column of type `ty`.
    fn convert(ty: ColumnType, value: &str) -> Result<Cell, NotStored> {
        let mut out = Rows::with_capacity(1, 1);
        push_converted(&mut out, ty, value)?;
        out.end_row();
        let cell = out.drain().flatten().next().unwrap_or(Cell::Null);
        Ok(cell)
    }

    #[test]
    fn values_convert_or_come_back() {
        assert_eq!(convert(ColumnType::Int, "70"), Ok(Cell::Int(70)));
        assert_eq!(convert(ColumnType::Int, "3人"), Err(NotStored));
        assert_eq!(convert(ColumnType::Int, ""), Ok(Cell::Null));
        assert_eq!(
            convert(ColumnType::Numeric, "34.866918"),
            Ok(Cell::Numeric(34.866918))
        );
        assert_eq!(
            convert(ColumnType::Date, "2023-04-01"),
            Ok(Cell::Date(
                chrono::NaiveDate::from_ymd_opt(2023, 4, 1).unwrap_or_default()
            ))
        );
        assert!(convert(ColumnType::Date, "令和5年").is_err());
        assert!(convert(ColumnType::Date, "2023-02-30").is_err());
        assert_eq!(
            convert(ColumnType::Text, "054-626-1139"),
            Ok(Cell::Text("054-626-1139".into()))
        );
    }

    #[test]
    fn names_are_unique_short_and_not_reserved() {
        let header: Vec<String> = ["名称", "名称", "", "_id", &"長".repeat(30)]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = standard::match_header(&header, standard::DEFAULT_THRESHOLD);
        let (fields, _) = plan_columns(&header, &m);
        let ids: Vec<&str> = fields.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(&ids[..4], &["名称", "名称_2", "column_3", "id"]);
        assert_eq!(ids[4], "長".repeat(21));
        assert!(fields.iter().all(|f| f.column_type == ColumnType::Text));
    }
}
