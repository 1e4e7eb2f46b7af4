//! [`DatastoreStore`] on SQLite: each resource's table is a real table of the main
//! database named exactly by the resource id, with `_id INTEGER PRIMARY KEY` and one
//! column per field (text, integer, real, 0/1 for booleans, ISO 8601 text for dates
//! and timestamps, JSON text). Its definition (fields with their data dictionary,
//! primary key, indexes) is kept as JSON in `datastore_tables` (schema version 9),
//! which is also the list of what `run_sql` may read.
//!
//! Every name that reaches SQL is checked against the stored definition first and
//! then quoted; values are always bound. Writes (definitions, DDL and rows alike) run
//! in the writer's transaction inside a savepoint, so a refused row undoes the whole
//! call. `run_sql` runs on a reader connection (opened read-only) with
//! `query_only` on, an authorizer that lets through nothing but reads of datastore
//! tables and function calls, and a progress handler that interrupts it at its time
//! limit.

use crate::columns::is_unique_violation;
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime, Timelike};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{
    params_from_iter, Batch, Connection, ErrorCode, OptionalExtension, Row, Transaction,
};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Instant;
use store::datastore::{
    Cell, ColumnFilter, ColumnType, DatastoreStore, RowPage, RowQuery, RowValues, SqlAnswer,
    SqlLimits, SqlRefusal, Table, WriteMethod,
};
use store::datastore_backend::{
    column_type, definition_json, fit, merge_definition, quoted, table_from_json, wanted_indexes,
};
use store::StoreError;

/// How many virtual machine steps `run_sql` runs between looks at the clock.
const STEPS_PER_CLOCK_CHECK: i32 = 1000;

/// What is wrong with a datastore call beyond the domain refusals of [`StoreError`]:
/// a caller handing a cell of the wrong type (the catalog converts values first), or
/// a stored definition or value that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error("a stored {expected} value is unreadable: {value}")]
    CorruptValue {
        expected: &'static str,
        value: String,
    },
}

// ---------------------------------------------------------------------------------
// Values.

fn sql_type(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Text | ColumnType::Date | ColumnType::Timestamp | ColumnType::Json => "TEXT",
        ColumnType::Int | ColumnType::Bool => "INTEGER",
        ColumnType::Numeric => "REAL",
    }
}

const DATE_FORMAT: &str = "%Y-%m-%d";

/// A timestamp as stored: ISO 8601 with a `T`, microseconds without trailing zeros
/// (the shape PostgreSQL's JSON gives, so `run_sql` answers alike), which sorts as
/// text in time order.
fn timestamp_text(at: NaiveDateTime) -> String {
    let seconds = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = at.nanosecond() % 1_000_000_000 / 1000;
    if micros == 0 {
        seconds
    } else {
        let fraction = format!("{micros:06}");
        format!("{seconds}.{}", fraction.trim_end_matches('0'))
    }
}

fn sql_value(cell: Cell) -> SqlValue {
    match cell {
        Cell::Null => SqlValue::Null,
        Cell::Text(text) => SqlValue::Text(text.into_string()),
        Cell::Int(n) => SqlValue::Integer(n),
        Cell::Numeric(x) => SqlValue::Real(x),
        Cell::Bool(b) => SqlValue::Integer(i64::from(b)),
        Cell::Date(date) => SqlValue::Text(date.format(DATE_FORMAT).to_string()),
        Cell::Timestamp(at) => SqlValue::Text(timestamp_text(at)),
        Cell::Json(value) => SqlValue::Text(value.to_string()),
    }
}

/// A cell bound to an insert: text, most of a loaded table, is bound where it lies
/// instead of being copied into a parameter of its own.
struct Bound<'a>(&'a Cell);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ToSqlOutput;
        Ok(match self.0 {
            Cell::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            // Serialised from the value where it lies, not from a deep copy of it.
            Cell::Json(value) => ToSqlOutput::Owned(SqlValue::Text(value.to_string())),
            // The rest are a few bytes to copy.
            cell => ToSqlOutput::Owned(sql_value(cell.clone())),
        })
    }
}

fn corrupt_value(index: usize, expected: ColumnType, value: ValueRef<'_>) -> rusqlite::Error {
    crate::columns::unreadable(
        index,
        DatastoreError::CorruptValue {
            expected: expected.ckan_name(),
            value: format!("{value:?}"),
        },
    )
}

/// The cell at `index` of a row of a datastore table, typed by its column.
fn cell_at(row: &Row<'_>, index: usize, column_type: ColumnType) -> rusqlite::Result<Cell> {
    let value = row.get_ref(index)?;
    let bad = || corrupt_value(index, column_type, value);
    let text = || value.as_str().map_err(|_| bad());
    Ok(match (value, column_type) {
        (ValueRef::Null, _) => Cell::Null,
        (_, ColumnType::Text) => Cell::Text(text()?.into()),
        (ValueRef::Integer(n), ColumnType::Int) => Cell::Int(n),
        (ValueRef::Integer(n), ColumnType::Numeric) => Cell::Numeric(n as f64),
        (ValueRef::Real(x), ColumnType::Numeric) => Cell::Numeric(x),
        (ValueRef::Integer(n), ColumnType::Bool) => Cell::Bool(n != 0),
        (_, ColumnType::Date) => {
            Cell::Date(NaiveDate::parse_from_str(text()?, DATE_FORMAT).map_err(|_| bad())?)
        }
        (_, ColumnType::Timestamp) => Cell::Timestamp(
            NaiveDateTime::parse_from_str(text()?, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| bad())?,
        ),
        (_, ColumnType::Json) => {
            Cell::Json(Box::new(serde_json::from_str(text()?).map_err(|_| bad())?))
        }
        _ => return Err(bad()),
    })
}

/// A `run_sql` answer's cell, by the value's own SQLite type.
fn dynamic_cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        ValueRef::Real(x) => Cell::Numeric(x),
        ValueRef::Text(bytes) => Cell::Text(String::from_utf8_lossy(bytes).into()),
        ValueRef::Blob(bytes) => Cell::Text(bytes.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

// ---------------------------------------------------------------------------------
// Statements.

/// A `WHERE` condition and its arguments.
struct Condition {
    sql: String,
    args: Vec<SqlValue>,
}

/// The condition of filters (all must hold) and a text search (any text column
/// contains it, ASCII case folded) on a table, every column checked.
fn condition(
    table: &Table,
    filters: &[ColumnFilter],
    text: Option<&str>,
) -> Result<Condition, StoreError> {
    let mut parts = Vec::new();
    let mut args = Vec::new();
    for filter in filters {
        let column_type = column_type(table, &filter.column)?;
        let column = quoted(&filter.column);
        let mut alternatives = Vec::new();
        let mut values = Vec::new();
        for cell in &filter.any_of {
            match fit(&filter.column, column_type, cell.clone())? {
                Cell::Null => alternatives.push(format!("{column} IS NULL")),
                cell => values.push(sql_value(cell)),
            }
        }
        if !values.is_empty() {
            let marks = vec!["?"; values.len()].join(", ");
            alternatives.push(format!("{column} IN ({marks})"));
            args.extend(values);
        }
        if alternatives.is_empty() {
            alternatives.push("0".to_owned());
        }
        parts.push(format!("({})", alternatives.join(" OR ")));
    }
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        let needle = text.to_ascii_lowercase();
        // SQLite's lower() folds ASCII only, which is what the contract asks.
        let searched: Vec<String> = table
            .fields
            .iter()
            .filter(|f| f.column_type == ColumnType::Text)
            .map(|f| {
                args.push(SqlValue::Text(needle.clone()));
                format!("instr(lower({}), ?) > 0", quoted(&f.id))
            })
            .collect();
        if searched.is_empty() {
            parts.push("0".to_owned());
        } else {
            parts.push(format!("({})", searched.join(" OR ")));
        }
    }
    let sql = if parts.is_empty() {
        "1".to_owned()
    } else {
        parts.join(" AND ")
    };
    Ok(Condition { sql, args })
}

/// `ASC NULLS LAST` / `DESC NULLS FIRST`: nulls count as the largest value, as in
/// PostgreSQL, so both backends sort alike.
fn direction(descending: bool) -> &'static str {
    if descending {
        "DESC NULLS FIRST"
    } else {
        "ASC NULLS LAST"
    }
}

fn stored_table(conn: &Connection, resource_id: &str) -> Result<Option<Table>, StoreError> {
    let definition: Option<String> = conn
        .prepare_cached("SELECT definition FROM datastore_tables WHERE resource_id = ?1")
        .and_then(|mut s| s.query_row([resource_id], |row| row.get(0)).optional())
        .map_err(StoreError::backend)?;
    definition
        .map(|text| {
            let value: Value = serde_json::from_str(&text).map_err(StoreError::backend)?;
            table_from_json(resource_id, &value)
        })
        .transpose()
}

fn existing_table(conn: &Connection, resource_id: &str) -> Result<Table, StoreError> {
    stored_table(conn, resource_id)?
        .ok_or_else(|| StoreError::NotFound(format!("datastore table {resource_id}")))
}

// ---------------------------------------------------------------------------------
// Writes, run by the writer in its transaction.

fn execute(tx: &Transaction<'_>, sql: &str) -> Result<(), StoreError> {
    tx.execute(sql, []).map(drop).map_err(StoreError::backend)
}

fn create_in(tx: &Transaction<'_>, wanted: &Table) -> Result<(), StoreError> {
    let existing = stored_table(tx, &wanted.resource_id)?;
    let (merged, added) = merge_definition(existing.as_ref(), wanted)?;
    let table = quoted(&merged.resource_id);
    if existing.is_none() {
        let mut columns = vec!["\"_id\" INTEGER PRIMARY KEY".to_owned()];
        columns.extend(
            merged
                .fields
                .iter()
                .map(|f| format!("{} {}", quoted(&f.id), sql_type(f.column_type))),
        );
        tx.execute(
            &format!("CREATE TABLE {table} ({})", columns.join(", ")),
            [],
        )
        .map_err(|e| match e {
            // The name is taken by a table that is no datastore table.
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::Unknown => {
                StoreError::Conflict(format!("table {}", merged.resource_id))
            }
            other => StoreError::backend(other),
        })?;
    } else {
        for field in &added {
            execute(
                tx,
                &format!(
                    "ALTER TABLE {table} ADD COLUMN {} {}",
                    quoted(&field.id),
                    sql_type(field.column_type)
                ),
            )?;
        }
    }
    let wanted_indexes = wanted_indexes(&merged, &quoted(&merged.resource_id));
    let present: Vec<String> = {
        let mut statement = tx
            .prepare_cached(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
                 AND sql IS NOT NULL",
            )
            .map_err(StoreError::backend)?;
        let names = statement
            .query_map([&merged.resource_id], |row| row.get(0))
            .map_err(StoreError::backend)?;
        names
            .collect::<Result<_, _>>()
            .map_err(StoreError::backend)?
    };
    for name in &present {
        if !wanted_indexes.iter().any(|(n, _)| n == name) {
            execute(tx, &format!("DROP INDEX {}", quoted(name)))?;
        }
    }
    for (name, sql) in &wanted_indexes {
        if !present.contains(name) {
            tx.execute(sql, []).map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!(
                        "rows of {} repeat a primary key",
                        merged.resource_id
                    ))
                } else {
                    StoreError::backend(e)
                }
            })?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO datastore_tables (resource_id, definition) VALUES (?1, ?2)
         ON CONFLICT (resource_id) DO UPDATE SET definition = excluded.definition",
    )
    .and_then(|mut s| {
        s.execute([
            merged.resource_id.as_str(),
            &definition_json(&merged).to_string(),
        ])
    })
    .map(drop)
    .map_err(StoreError::backend)
}

fn drop_in(tx: &Transaction<'_>, resource_id: &str) -> Result<bool, StoreError> {
    if stored_table(tx, resource_id)?.is_none() {
        return Ok(false);
    }
    execute(tx, &format!("DROP TABLE IF EXISTS {}", quoted(resource_id)))?;
    tx.prepare_cached("DELETE FROM datastore_tables WHERE resource_id = ?1")
        .and_then(|mut s| s.execute([resource_id]))
        .map_err(StoreError::backend)?;
    Ok(true)
}

/// A row to write, checked against the definition: its columns and their values.
struct CheckedRow {
    columns: Vec<String>,
    values: Vec<Cell>,
}

fn check_row(table: &Table, row: RowValues) -> Result<CheckedRow, StoreError> {
    let mut columns = Vec::with_capacity(row.len());
    let mut values = Vec::with_capacity(row.len());
    for (column, cell) in row {
        let column_type = match column.as_str() {
            "_id" => return Err(StoreError::NotFound("column _id".to_owned())),
            name => column_type(table, name)?,
        };
        if columns.contains(&column) {
            return Err(StoreError::Conflict(format!(
                "column {column} is given twice"
            )));
        }
        values.push(fit(&column, column_type, cell)?);
        columns.push(column);
    }
    Ok(CheckedRow { columns, values })
}

/// The row's primary key values, in key order; refused when one is missing or null.
fn key_of(table: &Table, row: &CheckedRow) -> Result<Vec<Cell>, StoreError> {
    table
        .primary_key
        .iter()
        .map(|key| {
            match row
                .columns
                .iter()
                .position(|c| c == key)
                .map(|i| &row.values[i])
            {
                None | Some(Cell::Null) => Err(StoreError::Conflict(format!(
                    "a row of {} lacks its primary key column {key}",
                    table.resource_id
                ))),
                Some(cell) => Ok(cell.clone()),
            }
        })
        .collect()
}

/// How a key reads in an error: `code=13201, name="A"`.
fn key_description(table: &Table, key: &[Cell]) -> String {
    let parts: Vec<String> = table
        .primary_key
        .iter()
        .zip(key)
        .map(|(column, cell)| format!("{column}={cell:?}"))
        .collect();
    format!("row {} of {}", parts.join(", "), table.resource_id)
}

fn insert_row(tx: &Transaction<'_>, table: &Table, row: CheckedRow) -> Result<(), StoreError> {
    let target = quoted(&table.resource_id);
    let sql = if row.columns.is_empty() {
        format!("INSERT INTO {target} DEFAULT VALUES")
    } else {
        let names: Vec<String> = row.columns.iter().map(|c| quoted(c)).collect();
        let marks = vec!["?"; names.len()].join(", ");
        format!(
            "INSERT INTO {target} ({}) VALUES ({marks})",
            names.join(", ")
        )
    };
    let key = if table.primary_key.is_empty() {
        None
    } else {
        key_of(table, &row).ok()
    };
    tx.prepare_cached(&sql)
        .and_then(|mut s| s.execute(params_from_iter(row.values.iter().map(Bound))))
        .map(drop)
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(match key {
                    Some(key) => key_description(table, &key),
                    None => format!("a row of {}", table.resource_id),
                })
            } else {
                StoreError::backend(e)
            }
        })
}

/// Replaces the given columns of the row with the same key; a missing key is
/// inserted (upsert) or `NotFound` (update).
fn replace_row(
    tx: &Transaction<'_>,
    table: &Table,
    row: CheckedRow,
    insert_missing: bool,
) -> Result<(), StoreError> {
    let key = key_of(table, &row)?;
    let target = quoted(&table.resource_id);
    let matches: Vec<String> = table
        .primary_key
        .iter()
        .map(|c| format!("{} = ?", quoted(c)))
        .collect();
    let found: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT \"_id\" FROM {target} WHERE {}",
            matches.join(" AND ")
        ))
        .and_then(|mut s| {
            s.query_row(params_from_iter(key.iter().cloned().map(sql_value)), |r| {
                r.get(0)
            })
            .optional()
        })
        .map_err(StoreError::backend)?;
    let Some(id) = found else {
        return if insert_missing {
            insert_row(tx, table, row)
        } else {
            Err(StoreError::NotFound(key_description(table, &key)))
        };
    };
    let (mut sets, mut args) = (Vec::new(), Vec::new());
    for (column, value) in row.columns.iter().zip(row.values) {
        if !table.primary_key.contains(column) {
            sets.push(format!("{} = ?", quoted(column)));
            args.push(sql_value(value));
        }
    }
    if sets.is_empty() {
        return Ok(());
    }
    args.push(SqlValue::Integer(id));
    tx.prepare_cached(&format!(
        "UPDATE {target} SET {} WHERE \"_id\" = ?",
        sets.join(", ")
    ))
    .and_then(|mut s| s.execute(params_from_iter(args)))
    .map(drop)
    .map_err(StoreError::backend)
}

fn write_in(
    tx: &Transaction<'_>,
    resource_id: &str,
    method: WriteMethod,
    rows: Vec<RowValues>,
) -> Result<u64, StoreError> {
    let table = existing_table(tx, resource_id)?;
    if method != WriteMethod::Insert && table.primary_key.is_empty() {
        return Err(StoreError::Conflict(format!(
            "datastore table {resource_id} has no primary key to match rows by"
        )));
    }
    let mut written = 0;
    for row in rows {
        let row = check_row(&table, row)?;
        match method {
            WriteMethod::Insert => insert_row(tx, &table, row)?,
            WriteMethod::Upsert => replace_row(tx, &table, row, true)?,
            WriteMethod::Update => replace_row(tx, &table, row, false)?,
        }
        written += 1;
    }
    Ok(written)
}

fn delete_in(
    tx: &Transaction<'_>,
    resource_id: &str,
    filters: &[ColumnFilter],
) -> Result<u64, StoreError> {
    let table = existing_table(tx, resource_id)?;
    let condition = condition(&table, filters, None)?;
    let deleted = tx
        .prepare(&format!(
            "DELETE FROM {} WHERE {}",
            quoted(resource_id),
            condition.sql
        ))
        .and_then(|mut s| s.execute(params_from_iter(condition.args)))
        .map_err(StoreError::backend)?;
    Ok(deleted as u64)
}

// ---------------------------------------------------------------------------------
// Reads.

fn search_in(conn: &Connection, table: &Table, query: &RowQuery) -> Result<RowPage, StoreError> {
    let columns: Vec<String> = match &query.columns {
        Some(columns) if !columns.is_empty() => columns.clone(),
        // No columns asked (or an empty list): all of them.
        _ => std::iter::once("_id".to_owned())
            .chain(table.fields.iter().map(|f| f.id.clone()))
            .collect(),
    };
    let types = columns
        .iter()
        .map(|c| column_type(table, c))
        .collect::<Result<Vec<_>, _>>()?;
    for (column, _) in &query.sort {
        column_type(table, column)?;
    }
    let mut condition = condition(table, &query.filters, query.text.as_deref())?;
    if let Some(after) = query.after_id {
        condition.sql = format!("({}) AND \"_id\" > ?", condition.sql);
        condition.args.push(SqlValue::Integer(after));
    }
    let target = quoted(&table.resource_id);
    let selected: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
    let (sql, count_sql) = if query.distinct {
        // Equal rows are one group, placed where its first row (by `_id`) would be;
        // a sort column not returned sorts the group by its smallest value.
        let aliased: Vec<String> = selected
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} AS c{i}"))
            .collect();
        let mut keys = Vec::new();
        let mut order = Vec::new();
        for (i, (column, descending)) in query.sort.iter().enumerate() {
            match columns.iter().position(|c| c == column) {
                Some(at) => order.push(format!("c{at} {}", direction(*descending))),
                None => {
                    keys.push(format!("min({}) AS k{i}", quoted(column)));
                    order.push(format!("k{i} {}", direction(*descending)));
                }
            }
        }
        keys.push("min(\"_id\") AS first_id".to_owned());
        order.push("first_id".to_owned());
        let outer: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
        (
            format!(
                "SELECT {} FROM (SELECT {}, {} FROM {target} WHERE {} GROUP BY {}) \
                 ORDER BY {} LIMIT ? OFFSET ?",
                outer.join(", "),
                aliased.join(", "),
                keys.join(", "),
                condition.sql,
                selected.join(", "),
                order.join(", ")
            ),
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM {target} WHERE {} GROUP BY {})",
                condition.sql,
                selected.join(", ")
            ),
        )
    } else {
        let mut order: Vec<String> = query
            .sort
            .iter()
            .map(|(column, descending)| format!("{} {}", quoted(column), direction(*descending)))
            .collect();
        order.push("\"_id\"".to_owned());
        (
            format!(
                "SELECT {} FROM {target} WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
                selected.join(", "),
                condition.sql,
                order.join(", ")
            ),
            format!("SELECT count(*) FROM {target} WHERE {}", condition.sql),
        )
    };
    let mut args = condition.args.clone();
    args.push(SqlValue::Integer(
        i64::try_from(query.limit).unwrap_or(i64::MAX),
    ));
    args.push(SqlValue::Integer(
        i64::try_from(query.offset).unwrap_or(i64::MAX),
    ));
    let rows = {
        let mut statement = conn.prepare(&sql).map_err(StoreError::backend)?;
        let rows = statement
            .query_map(params_from_iter(args), |row| {
                types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| cell_at(row, i, *t))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(StoreError::backend)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::backend)?
    };
    let total = if query.include_total {
        let count: i64 = conn
            .prepare(&count_sql)
            .and_then(|mut s| s.query_row(params_from_iter(condition.args), |row| row.get(0)))
            .map_err(StoreError::backend)?;
        Some(count.max(0) as u64)
    } else {
        None
    };
    Ok(RowPage {
        columns,
        rows,
        total,
    })
}

/// Whether an error of a `run_sql` query is the query's own fault (its text, what
/// it reads), which the caller may be told, rather than the backend's.
fn is_query_fault(err: &rusqlite::Error) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(e, _) => matches!(
            e.code,
            ErrorCode::Unknown
                | ErrorCode::AuthorizationForStatementDenied
                | ErrorCode::ReadOnly
                | ErrorCode::TooBig
                | ErrorCode::TypeMismatch
                | ErrorCode::ConstraintViolation
        ),
        rusqlite::Error::MultipleStatement
        | rusqlite::Error::InvalidQuery
        | rusqlite::Error::SqlInputError { .. } => true,
        _ => false,
    }
}

fn is_interrupt(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::OperationInterrupted)
}

/// Runs the query with the connection's guards up: they are taken down again
/// whatever happens, since the connection goes back to the pool.
fn run_sql_on(
    conn: &Connection,
    sql: &str,
    limits: SqlLimits,
) -> Result<Result<SqlAnswer, SqlRefusal>, StoreError> {
    let readable: HashSet<String> = {
        let mut statement = conn
            .prepare_cached("SELECT resource_id FROM datastore_tables")
            .map_err(StoreError::backend)?;
        let ids = statement
            .query_map([], |row| row.get(0))
            .map_err(StoreError::backend)?;
        ids.collect::<Result<_, _>>().map_err(StoreError::backend)?
    };
    conn.pragma_update(None, "query_only", true)
        .map_err(StoreError::backend)?;
    conn.authorizer(Some(move |context: AuthContext<'_>| match context.action {
        AuthAction::Select | AuthAction::Recursive | AuthAction::Function { .. } => {
            Authorization::Allow
        }
        AuthAction::Read { table_name, .. }
            if context.database_name == Some("main") && readable.contains(table_name) =>
        {
            Authorization::Allow
        }
        // What a common table expression or subquery yields has no database.
        AuthAction::Read { .. } if context.database_name.is_none() => Authorization::Allow,
        _ => Authorization::Deny,
    }));
    let deadline = Instant::now() + limits.timeout;
    conn.progress_handler(
        STEPS_PER_CLOCK_CHECK,
        Some(move || Instant::now() >= deadline),
    );
    let outcome = query_rows(conn, sql, limits.max_rows);
    conn.progress_handler(0, None::<fn() -> bool>);
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    conn.pragma_update(None, "query_only", false)
        .map_err(StoreError::backend)?;
    match outcome {
        Ok(answer) => Ok(Ok(answer)),
        Err(e) if is_interrupt(&e) => Ok(Err(SqlRefusal::TimedOut(limits.timeout))),
        Err(e) if is_query_fault(&e) => Ok(Err(SqlRefusal::Invalid(e.to_string()))),
        Err(e) => Err(StoreError::backend(e)),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("only queries that read run here")]
struct NotReadOnly;

#[derive(Debug, thiserror::Error)]
#[error("exactly one query is run at a time")]
struct QueryCount;

fn query_rows(conn: &Connection, sql: &str, max_rows: usize) -> rusqlite::Result<SqlAnswer> {
    let mut statements = Batch::new(conn, sql);
    let mut statement = statements.next()?.ok_or_else(|| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(QueryCount.to_string()),
        )
    })?;
    if statements.next()?.is_some() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(QueryCount.to_string()),
        ));
    }
    if !statement.readonly() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some(NotReadOnly.to_string()),
        ));
    }
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut rows = statement.query([])?;
    let mut answer = SqlAnswer {
        columns,
        rows: Vec::new(),
        truncated: false,
    };
    while let Some(row) = rows.next()? {
        if answer.rows.len() == max_rows {
            answer.truncated = true;
            break;
        }
        let cells = (0..answer.columns.len())
            .map(|i| row.get_ref(i).map(dynamic_cell))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        answer.rows.push(cells);
    }
    Ok(answer)
}

#[async_trait]
impl DatastoreStore for SqliteStore {
    async fn create_table(&self, table: &Table) -> Result<(), StoreError> {
        let table = table.clone();
        self.writer.run(move |tx| create_in(tx, &table)).await
    }

    async fn table(&self, resource_id: &str) -> Result<Option<Table>, StoreError> {
        let resource_id = resource_id.to_owned();
        self.read(move |conn| stored_table(conn, &resource_id))
            .await
    }

    async fn table_ids(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached("SELECT resource_id FROM datastore_tables ORDER BY resource_id")
                .map_err(StoreError::backend)?;
            let ids = statement
                .query_map([], |row| row.get(0))
                .map_err(StoreError::backend)?;
            ids.collect::<Result<_, _>>().map_err(StoreError::backend)
        })
        .await
    }

    async fn drop_table(&self, resource_id: &str) -> Result<bool, StoreError> {
        let resource_id = resource_id.to_owned();
        self.writer.run(move |tx| drop_in(tx, &resource_id)).await
    }

    async fn write_rows(
        &self,
        resource_id: &str,
        method: WriteMethod,
        rows: Vec<RowValues>,
    ) -> Result<u64, StoreError> {
        let resource_id = resource_id.to_owned();
        self.writer
            .run(move |tx| write_in(tx, &resource_id, method, rows))
            .await
    }

    async fn delete_rows(
        &self,
        resource_id: &str,
        filters: &[ColumnFilter],
    ) -> Result<u64, StoreError> {
        let resource_id = resource_id.to_owned();
        let filters = filters.to_vec();
        self.writer
            .run(move |tx| delete_in(tx, &resource_id, &filters))
            .await
    }

    async fn search_rows(
        &self,
        resource_id: &str,
        query: &RowQuery,
    ) -> Result<RowPage, StoreError> {
        let resource_id = resource_id.to_owned();
        let query = query.clone();
        self.read(move |conn| {
            let table = existing_table(conn, &resource_id)?;
            search_in(conn, &table, &query)
        })
        .await
    }

    async fn run_sql(
        &self,
        sql: &str,
        limits: SqlLimits,
    ) -> Result<Result<SqlAnswer, SqlRefusal>, StoreError> {
        let sql = sql.to_owned();
        self.read(move |conn| run_sql_on(conn, &sql, limits)).await
    }
}
