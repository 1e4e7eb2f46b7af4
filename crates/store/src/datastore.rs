//! Storage of the catalog's datastore: one real table per resource (named by the
//! resource id, as in CKAN, so that `datastore_search_sql` reads
//! `SELECT … FROM "<resource id>"`), with typed columns, an `_id` row number, an
//! optional primary key for upserts and indexes on the columns asked for.
//!
//! Values arrive already typed ([`Cell`]): the `catalog` crate turns JSON records
//! and file rows into cells and refuses what does not fit, so a store only maps
//! each [`ColumnType`] to its native column type. SQL handed to
//! [`DatastoreStore::run_sql`] has already been checked by the catalog to be one
//! read-only SELECT over datastore tables; the store runs it read-only anyway,
//! with a time limit and a row limit, so a mistake in that check cannot write.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A datastore column type, by its CKAN name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Text,
    /// 64-bit integer (`int`, `int4`, `int8`, `bigint` in CKAN).
    Int,
    /// Floating point (`numeric`, `float8`).
    Numeric,
    Bool,
    Date,
    Timestamp,
    /// Any JSON value (`json`).
    Json,
}

impl ColumnType {
    pub const ALL: [ColumnType; 7] = [
        ColumnType::Text,
        ColumnType::Int,
        ColumnType::Numeric,
        ColumnType::Bool,
        ColumnType::Date,
        ColumnType::Timestamp,
        ColumnType::Json,
    ];

    /// The name CKAN clients see in `fields`.
    pub fn ckan_name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Int => "int",
            ColumnType::Numeric => "numeric",
            ColumnType::Bool => "bool",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Json => "json",
        }
    }
}

/// One column of a datastore table.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The column name as clients send it (any text but `_id` and names starting
    /// with `_`; the catalog checks).
    pub id: String,
    pub column_type: ColumnType,
    /// CKAN's data dictionary entry (`label`, `notes`, …), kept as given.
    pub info: Option<Value>,
}

/// A datastore table's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub resource_id: String,
    pub fields: Vec<Field>,
    /// Columns whose values identify a row for upserts (may be empty).
    pub primary_key: Vec<String>,
    /// Indexes for filters and sorting, each over one or more columns (a query that
    /// filters on two columns is fast with one index over both).
    pub indexes: Vec<Vec<String>>,
}

/// One typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    /// Text of up to 24 bytes (a code, a phone number, a flag, a name of eight kanji)
    /// is kept in the cell itself: a load makes and frees millions of cells, often on
    /// different threads, and a heap allocation for each short text cost more than
    /// checking it.
    Text(CompactString),
    Int(i64),
    Numeric(f64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
    /// Boxed: an inline `Value` (an ordered map) would make every cell of every
    /// table more than twice as large, and loads move millions of cells.
    Json(Box<Value>),
}

// What the box above keeps: a cell the size of a `String` and its tag.
const _: () = assert!(std::mem::size_of::<Cell>() <= 32);

pub use compact_str::CompactString;

/// How [`DatastoreStore::write_rows`] treats rows whose primary key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    /// Add every row; a duplicate key is an error (`Conflict`).
    Insert,
    /// Replace the row with the same key, or add it.
    Upsert,
    /// Replace the row with the same key; a missing key is `NotFound`.
    Update,
}

/// A row to write: a value for some of the table's columns (the others become
/// null on insert and are left as they are on upsert and update).
pub type RowValues = Vec<(String, Cell)>;

/// A filter: the column equals one of the values.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnFilter {
    pub column: String,
    pub any_of: Vec<Cell>,
}

/// What `datastore_search` asks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowQuery {
    /// All must hold.
    pub filters: Vec<ColumnFilter>,
    /// Rows where any text column contains this text (case-insensitive for ASCII).
    pub text: Option<String>,
    /// Columns to sort by, `true` for descending; `_id` ascending is always last.
    pub sort: Vec<(String, bool)>,
    /// The columns to return (`None`: `_id` then every column in order).
    pub columns: Option<Vec<String>>,
    /// Leave out rows equal on every returned column to an earlier one.
    pub distinct: bool,
    pub limit: usize,
    pub offset: usize,
    /// Only rows whose `_id` is above this: keyset paging, for reading a whole table
    /// page by page in `_id` order. Each page then costs only its own rows, where an
    /// offset makes the store walk past every row before it (quadratic over a table).
    pub after_id: Option<i64>,
    pub include_total: bool,
}

/// A page of rows: `columns` names each position of the rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowPage {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// The number of matching rows without limit and offset, when asked.
    pub total: Option<u64>,
}

impl RowPage {
    /// The `_id` of the page's last row, to ask for the next page with
    /// [`RowQuery::after_id`]; `None` for an empty page or one without `_id`.
    pub fn last_id(&self) -> Option<i64> {
        let at = self.columns.iter().position(|c| c == "_id")?;
        match self.rows.last()?.get(at)? {
            Cell::Int(id) => Some(*id),
            _ => None,
        }
    }
}

/// The limits a `datastore_search_sql` query runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// At most this many rows are returned; `truncated` tells if there were more.
    pub max_rows: usize,
    /// The query is cancelled after this long.
    pub timeout: Duration,
}

/// The answer of a `datastore_search_sql` query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SqlAnswer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub truncated: bool,
}

/// Why a SQL query failed, in words the caller may see (a mistake in their SQL,
/// the time limit), apart from backend failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlRefusal {
    #[error("the query took longer than {0:?} and was cancelled")]
    TimedOut(Duration),
    #[error("the query is not valid: {0}")]
    Invalid(String),
}

/// Storage of datastore tables.
#[async_trait]
pub trait DatastoreStore: Send + Sync {
    /// Creates the table, or adds to an existing one the fields it lacks (an
    /// existing field keeps its type; a different type is `Conflict`). Primary
    /// key and indexes are replaced by the given ones.
    async fn create_table(&self, table: &Table) -> Result<(), StoreError>;

    async fn table(&self, resource_id: &str) -> Result<Option<Table>, StoreError>;

    /// Every datastore table's resource id.
    async fn table_ids(&self) -> Result<Vec<String>, StoreError>;

    /// Removes the table; false if there was none.
    async fn drop_table(&self, resource_id: &str) -> Result<bool, StoreError>;

    /// Writes rows in one transaction: all or none. Upsert and update need a
    /// primary key and every row must give all of its columns.
    async fn write_rows(
        &self,
        resource_id: &str,
        method: WriteMethod,
        rows: Vec<RowValues>,
    ) -> Result<u64, StoreError>;

    /// Deletes the rows matching all filters (every row when there are none) and
    /// returns how many.
    async fn delete_rows(
        &self,
        resource_id: &str,
        filters: &[ColumnFilter],
    ) -> Result<u64, StoreError>;

    async fn search_rows(&self, resource_id: &str, query: &RowQuery)
        -> Result<RowPage, StoreError>;

    /// Runs a SELECT the catalog has checked, read-only, within the limits.
    async fn run_sql(
        &self,
        sql: &str,
        limits: SqlLimits,
    ) -> Result<Result<SqlAnswer, SqlRefusal>, StoreError>;
}

pub type SharedDatastoreStore = Arc<dyn DatastoreStore>;
