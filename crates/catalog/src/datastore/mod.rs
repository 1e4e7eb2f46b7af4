//! CKAN's datastore (the tabular data API) as pure domain logic: it turns the
//! parameters CKAN clients send to `datastore_create`, `datastore_upsert`,
//! `datastore_delete` and `datastore_search` (JSON values, as `ckanapi` sends
//! them) into the typed requests of [`store::datastore`], renders the typed
//! answers back into CKAN's JSON shapes and dump files, and guards
//! `datastore_search_sql` so that only one read-only SELECT over datastore
//! tables reaches a database.
//!
//! The HTTP handlers stay thin: they read the table definition from the store,
//! call one function here, hand the result to the store and render its answer
//! with [`render`]. Every refusal is a [`DatastoreError`] (or a
//! [`sql::SqlError`]) whose message names the parameter, record and column at
//! fault in English, as CKAN's error dicts do.
//!
//! - [`fields`]: `fields`, `primary_key`, `indexes` → [`store::datastore::Table`];
//! - [`records`]: `records` → rows of typed cells, `method` → write method;
//! - [`query`]: `filters`, `q`, `sort`, `fields`, `limit`, … → [`store::datastore::RowQuery`];
//! - [`render`]: pages → `datastore_search` results, and streamed dumps (CSV, TSV, JSON);
//! - [`sql`]: the SQL guard of `datastore_search_sql`.

pub mod cells;
pub mod fields;
pub mod query;
pub mod records;
pub mod render;
pub mod sql;

pub use cells::{cell_from_json, cell_to_json};
pub use fields::{parse_column_type, table_definition, validate_column_id};
pub use query::{parse_filters, parse_search, RecordsFormat, SearchLimits, SearchRequest};
pub use records::{parse_records, parse_write_method};
pub use render::{search_result, DumpFormat, DumpWriter};
pub use sql::{check_sql, CheckedSql, SqlError};

/// The column every datastore table has: the row number the store assigns.
pub const ROW_ID: &str = "_id";

/// Why datastore parameters were refused. `at` is the path of the value at
/// fault (`records[3].population`, `fields[0].id`, `filters.種別`), `param` the
/// top-level parameter it belongs to, so a handler can build CKAN's
/// `{"__type": "Validation Error", "<param>": ["<message>"]}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatastoreError {
    #[error("{param}: missing value")]
    Missing { param: &'static str },
    #[error("{at}: {message}")]
    Invalid {
        param: &'static str,
        at: String,
        message: String,
    },
    #[error("{at}: unknown column \"{column}\"")]
    UnknownColumn {
        param: &'static str,
        at: String,
        column: String,
    },
    /// A value that cannot become a cell of its column's type.
    #[error("{at}: {value} is not {expected}")]
    BadValue {
        param: &'static str,
        at: String,
        /// The value as JSON, shortened when long.
        value: String,
        expected: &'static str,
    },
}

impl DatastoreError {
    /// The top-level request parameter at fault (`records`, `fields`, …).
    pub fn param(&self) -> &'static str {
        match self {
            DatastoreError::Missing { param }
            | DatastoreError::Invalid { param, .. }
            | DatastoreError::UnknownColumn { param, .. }
            | DatastoreError::BadValue { param, .. } => param,
        }
    }

    pub(crate) fn invalid(
        param: &'static str,
        at: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DatastoreError::Invalid {
            param,
            at: at.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unknown_column(param: &'static str, at: impl Into<String>, column: &str) -> Self {
        DatastoreError::UnknownColumn {
            param,
            at: at.into(),
            column: column.to_owned(),
        }
    }
}

/// Reads a parameter the action cannot do without (`resource_id`, the
/// `records` of `datastore_upsert`); absent or null is [`DatastoreError::Missing`].
pub fn required_param<'a>(
    params: &'a serde_json::Value,
    name: &'static str,
) -> Result<&'a serde_json::Value, DatastoreError> {
    param(params, name).ok_or(DatastoreError::Missing { param: name })
}

/// Reads an optional parameter from CKAN's parameter object; JSON null counts
/// as absent, as it does in CKAN's validators.
pub(crate) fn param<'a>(
    params: &'a serde_json::Value,
    name: &str,
) -> Option<&'a serde_json::Value> {
    params.get(name).filter(|value| !value.is_null())
}

/// Quotes a column name for a path (`records[0]."a b"`) only when a reader
/// could misread it.
pub(crate) fn path_segment(column: &str) -> String {
    if column
        .chars()
        .any(|c| c == '.' || c == '[' || c == ' ' || c == '"')
    {
        format!("\"{}\"", column.replace('"', "\"\""))
    } else {
        column.to_owned()
    }
}

#[cfg(test)]
mod tests;
