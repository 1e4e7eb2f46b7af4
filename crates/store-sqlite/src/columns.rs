//! How the identity and subscription tables keep what SQLite has no type for:
//! timestamps as fixed-width RFC 3339 text in microseconds (so they compare as text
//! and round-trip exactly), JSON as text; and reading them back, a column that cannot
//! be read being a conversion error of that column.

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::Row;

/// Whether a write failed on a unique key or primary key, i.e. the row is taken.
pub(crate) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
    )
}

/// Stored form of a timestamp: UTC, microseconds, `Z`, fixed width (the one form
/// [`store::doc::format_time`] gives every stored timestamp).
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    store::doc::format_time(&at)
}

pub(crate) fn opt_stamp(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(stamp)
}

/// A column value that SQLite holds but renkei cannot read back.
pub(crate) fn unreadable(
    index: usize,
    err: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err))
}

pub(crate) fn time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_stamp(&text, index)
}

/// A stored timestamp read from column `index`.
pub(crate) fn parse_stamp(text: &str, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| unreadable(index, e))
}

pub(crate) fn opt_time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => time_at(row, index).map(Some),
    }
}

/// A JSON text column, parsed.
pub(crate) fn json_at<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| unreadable(index, e))
}
