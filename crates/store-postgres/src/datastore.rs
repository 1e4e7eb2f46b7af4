//! [`DatastoreStore`] on PostgreSQL: each resource's table is a real table
//! `datastore."<resource id>"` (the schema of migration 8), with `_id bigserial
//! PRIMARY KEY` and one column per field (text, bigint, double precision, boolean,
//! date, timestamp, jsonb). Its definition (fields with their data dictionary,
//! primary key, indexes) is kept as JSON in `datastore_tables`.
//!
//! Every name that reaches SQL is checked against the stored definition first and
//! then quoted; values are always bound. Definition changes of one table serialise
//! on a transaction-level advisory lock keyed by its resource id, so that two nodes
//! creating the same table at once do not race. Text sorts by code point
//! (`COLLATE "C"`) and nulls sort as the largest value, which is what SQLite does
//! too, so both backends page alike. `run_sql` runs in a `READ ONLY` transaction
//! with `statement_timeout` and only the `datastore` schema on its search path; its
//! rows come back as `row_to_json` text, typed by the columns of the prepared
//! statement, so no PostgreSQL type needs a decoder of its own.

use crate::{backend, to_i64, PostgresStore};
use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;
use std::collections::HashMap;
use store::datastore::{
    Cell, ColumnFilter, ColumnType, CompactString, DatastoreStore, RowPage, RowQuery, RowValues,
    SqlAnswer, SqlLimits, SqlRefusal, Table, WriteMethod,
};
use store::datastore_backend::{
    column_type, definition_json, fit, merge_definition, quoted, stable_hash, table_from_json,
    wanted_indexes,
};
use store::StoreError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row, Statement, Transaction};

/// What is wrong with a datastore call beyond the domain refusals of [`StoreError`]:
/// a caller handing a cell of the wrong type (the catalog converts values first), or
/// a stored definition that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error("a row of a datastore_search_sql answer is unreadable: {0}")]
    UnreadableAnswer(String),
}

/// The table of a resource, in the datastore schema.
fn qualified(resource_id: &str) -> String {
    format!("datastore.{}", quoted(resource_id))
}

/// The advisory lock key of one table's definition ("datastore" and its id hashed).
fn definition_lock_key(resource_id: &str) -> i64 {
    i64::from_ne_bytes(stable_hash(&["datastore", resource_id]).to_ne_bytes())
}

// ---------------------------------------------------------------------------------
// Values.

fn sql_type(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Text => "text",
        ColumnType::Int => "bigint",
        ColumnType::Numeric => "double precision",
        ColumnType::Bool => "boolean",
        ColumnType::Date => "date",
        ColumnType::Timestamp => "timestamp",
        ColumnType::Json => "jsonb",
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

/// A fitted cell as a parameter of its column's type (a null typed too, since the
/// driver checks every parameter's type).
fn param(cell: Cell, column_type: ColumnType) -> Param {
    match cell {
        Cell::Null => match column_type {
            ColumnType::Text => Box::new(None::<String>),
            ColumnType::Int => Box::new(None::<i64>),
            ColumnType::Numeric => Box::new(None::<f64>),
            ColumnType::Bool => Box::new(None::<bool>),
            ColumnType::Date => Box::new(None::<NaiveDate>),
            ColumnType::Timestamp => Box::new(None::<NaiveDateTime>),
            ColumnType::Json => Box::new(None::<Value>),
        },
        Cell::Text(text) => Box::new(Text(text)),
        Cell::Int(n) => Box::new(n),
        Cell::Numeric(x) => Box::new(x),
        Cell::Bool(b) => Box::new(b),
        Cell::Date(date) => Box::new(date),
        Cell::Timestamp(at) => Box::new(at),
        Cell::Json(value) => Box::new(*value),
    }
}

/// A text cell as a parameter, sent as the `&str` it holds: turning it into a
/// `String` would allocate for every short text, which the cell keeps inline.
#[derive(Debug)]
struct Text(CompactString);

impl ToSql for Text {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The cell at `index` of a row of a datastore table, typed by its column.
fn cell_at(row: &Row, index: usize, column_type: ColumnType) -> Result<Cell, StoreError> {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a Row,
        index: usize,
        wrap: impl FnOnce(T) -> Cell,
    ) -> Result<Cell, StoreError> {
        row.try_get::<_, Option<T>>(index)
            .map(|value| value.map_or(Cell::Null, wrap))
            .map_err(backend)
    }
    match column_type {
        ColumnType::Text => get(row, index, |text: &str| Cell::Text(text.into())),
        ColumnType::Int => get(row, index, Cell::Int),
        ColumnType::Numeric => get(row, index, Cell::Numeric),
        ColumnType::Bool => get(row, index, Cell::Bool),
        ColumnType::Date => get(row, index, Cell::Date),
        ColumnType::Timestamp => get(row, index, Cell::Timestamp),
        ColumnType::Json => get(row, index, |v: Value| Cell::Json(Box::new(v))),
    }
}

/// A `run_sql` answer's cell: the JSON `row_to_json` gave for it, read by the
/// column's type where JSON alone would blur it (a float that happens to be whole
/// stays numeric, JSON stays JSON).
fn answer_cell(value: Value, column_type: &Type) -> Cell {
    let number = |value: &Value| match value.as_i64() {
        Some(n) => Cell::Int(n),
        None => value.as_f64().map_or(Cell::Null, Cell::Numeric),
    };
    match value {
        Value::Null => Cell::Null,
        _ if *column_type == Type::JSON || *column_type == Type::JSONB => {
            Cell::Json(Box::new(value))
        }
        Value::Number(_) if *column_type == Type::FLOAT4 || *column_type == Type::FLOAT8 => {
            value.as_f64().map_or(Cell::Null, Cell::Numeric)
        }
        Value::Number(_) => number(&value),
        Value::String(text) => Cell::Text(text.into()),
        Value::Bool(b) => Cell::Bool(b),
        other => Cell::Json(Box::new(other)),
    }
}

// ---------------------------------------------------------------------------------
// Statements.

/// A `WHERE` condition and its arguments, numbered from the first parameter.
struct Condition {
    sql: String,
    args: Vec<Param>,
}

/// The condition of filters (all must hold) and a text search (any text column
/// contains it, ASCII case folded) on a table, every column checked.
fn condition(
    table: &Table,
    filters: &[ColumnFilter],
    text: Option<&str>,
) -> Result<Condition, StoreError> {
    let mut parts = Vec::new();
    let mut args: Vec<Param> = Vec::new();
    for filter in filters {
        let column_type = column_type(table, &filter.column)?;
        let column = quoted(&filter.column);
        let mut alternatives = Vec::new();
        let mut marks = Vec::new();
        for cell in &filter.any_of {
            match fit(&filter.column, column_type, cell.clone())? {
                Cell::Null => alternatives.push(format!("{column} IS NULL")),
                cell => {
                    args.push(param(cell, column_type));
                    marks.push(format!("${}", args.len()));
                }
            }
        }
        if !marks.is_empty() {
            alternatives.push(format!("{column} IN ({})", marks.join(", ")));
        }
        if alternatives.is_empty() {
            alternatives.push("false".to_owned());
        }
        parts.push(format!("({})", alternatives.join(" OR ")));
    }
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        // ASCII folded on both sides, exactly: ILIKE and lower() would also fold
        // other letters by the database's locale, and SQLite does not.
        args.push(Box::new(text.to_ascii_lowercase()));
        let needle = format!("${}", args.len());
        let searched: Vec<String> = table
            .fields
            .iter()
            .filter(|f| f.column_type == ColumnType::Text)
            .map(|f| {
                format!(
                    "strpos(translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', \
                     'abcdefghijklmnopqrstuvwxyz'), {needle}) > 0",
                    quoted(&f.id)
                )
            })
            .collect();
        if searched.is_empty() {
            parts.push("false".to_owned());
        } else {
            parts.push(format!("({})", searched.join(" OR ")));
        }
    }
    let sql = if parts.is_empty() {
        "true".to_owned()
    } else {
        parts.join(" AND ")
    };
    Ok(Condition { sql, args })
}

/// The smallest value of a column in a group, as SQLite's `min` would find it: text
/// by code point, `false` before `true` (PostgreSQL has no `min` of booleans), JSON
/// by its text.
fn smallest(column: &str, column_type: ColumnType) -> String {
    let column = quoted(column);
    match column_type {
        ColumnType::Text => format!("min({column} COLLATE \"C\")"),
        ColumnType::Bool => format!("bool_and({column})"),
        ColumnType::Json => format!("min({column}::text COLLATE \"C\")"),
        _ => format!("min({column})"),
    }
}

/// How a column sorts: text by code point, nulls as the largest value (as SQLite
/// is made to sort), the given direction.
fn order_term(expression: &str, column_type: ColumnType, descending: bool) -> String {
    let collate = if column_type == ColumnType::Text {
        " COLLATE \"C\""
    } else {
        ""
    };
    let direction = if descending {
        "DESC NULLS FIRST"
    } else {
        "ASC NULLS LAST"
    };
    format!("{expression}{collate} {direction}")
}

async fn stored_table(
    client: &impl GenericClient,
    resource_id: &str,
) -> Result<Option<Table>, StoreError> {
    let row = client
        .query_opt(
            "SELECT definition FROM datastore_tables WHERE resource_id = $1",
            &[&resource_id],
        )
        .await
        .map_err(backend)?;
    row.map(|row| {
        let definition: Value = row.try_get(0).map_err(backend)?;
        table_from_json(resource_id, &definition)
    })
    .transpose()
}

async fn existing_table(
    client: &impl GenericClient,
    resource_id: &str,
) -> Result<Table, StoreError> {
    stored_table(client, resource_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("datastore table {resource_id}")))
}

fn is_code(err: &tokio_postgres::Error, state: &SqlState) -> bool {
    err.code() == Some(state)
}

// ---------------------------------------------------------------------------------
// Writes.

async fn lock_definition(tx: &Transaction<'_>, resource_id: &str) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&definition_lock_key(resource_id)],
    )
    .await
    .map(drop)
    .map_err(backend)
}

async fn create_in(tx: &Transaction<'_>, wanted: &Table) -> Result<(), StoreError> {
    lock_definition(tx, &wanted.resource_id).await?;
    let existing = stored_table(tx, &wanted.resource_id).await?;
    let (merged, added) = merge_definition(existing.as_ref(), wanted)?;
    let target = qualified(&merged.resource_id);
    let taken = |what: String| {
        move |e: tokio_postgres::Error| {
            if is_code(&e, &SqlState::DUPLICATE_TABLE) || is_code(&e, &SqlState::DUPLICATE_COLUMN) {
                StoreError::Conflict(what)
            } else {
                backend(e)
            }
        }
    };
    if existing.is_none() {
        let mut columns = vec!["\"_id\" bigserial PRIMARY KEY".to_owned()];
        columns.extend(
            merged
                .fields
                .iter()
                .map(|f| format!("{} {}", quoted(&f.id), sql_type(f.column_type))),
        );
        tx.batch_execute(&format!("CREATE TABLE {target} ({})", columns.join(", ")))
            .await
            .map_err(taken(format!("table {}", merged.resource_id)))?;
    } else {
        for field in &added {
            tx.batch_execute(&format!(
                "ALTER TABLE {target} ADD COLUMN {} {}",
                quoted(&field.id),
                sql_type(field.column_type)
            ))
            .await
            .map_err(taken(format!(
                "column {} (PostgreSQL tells names apart by their first 63 bytes)",
                field.id
            )))?;
        }
    }
    let wanted_indexes = wanted_indexes(&merged, &qualified(&merged.resource_id));
    let present: Vec<String> = tx
        .query(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = to_regclass($1) AND NOT i.indisprimary",
            &[&target],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(backend)?;
    for name in &present {
        if !wanted_indexes.iter().any(|(n, _)| n == name) {
            tx.batch_execute(&format!("DROP INDEX datastore.{}", quoted(name)))
                .await
                .map_err(backend)?;
        }
    }
    for (name, sql) in &wanted_indexes {
        if !present.contains(name) {
            tx.batch_execute(sql).await.map_err(|e| {
                if is_code(&e, &SqlState::UNIQUE_VIOLATION) {
                    StoreError::Conflict(format!(
                        "rows of {} repeat a primary key",
                        merged.resource_id
                    ))
                } else {
                    backend(e)
                }
            })?;
        }
    }
    tx.execute(
        "INSERT INTO datastore_tables (resource_id, definition) VALUES ($1, $2)
         ON CONFLICT (resource_id) DO UPDATE SET definition = excluded.definition",
        &[&merged.resource_id, &definition_json(&merged)],
    )
    .await
    .map(drop)
    .map_err(backend)
}

async fn drop_in(tx: &Transaction<'_>, resource_id: &str) -> Result<bool, StoreError> {
    lock_definition(tx, resource_id).await?;
    let deleted = tx
        .execute(
            "DELETE FROM datastore_tables WHERE resource_id = $1",
            &[&resource_id],
        )
        .await
        .map_err(backend)?;
    if deleted == 0 {
        return Ok(false);
    }
    tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", qualified(resource_id)))
        .await
        .map_err(backend)?;
    Ok(true)
}

/// A row to write, checked against the definition: its columns, their types and
/// their values.
struct CheckedRow {
    columns: Vec<String>,
    types: Vec<ColumnType>,
    values: Vec<Cell>,
}

fn check_row(table: &Table, row: RowValues) -> Result<CheckedRow, StoreError> {
    let mut checked = CheckedRow {
        columns: Vec::with_capacity(row.len()),
        types: Vec::with_capacity(row.len()),
        values: Vec::with_capacity(row.len()),
    };
    for (column, cell) in row {
        let column_type = match column.as_str() {
            "_id" => return Err(StoreError::NotFound("column _id".to_owned())),
            name => column_type(table, name)?,
        };
        if checked.columns.contains(&column) {
            return Err(StoreError::Conflict(format!(
                "column {column} is given twice"
            )));
        }
        checked.values.push(fit(&column, column_type, cell)?);
        checked.types.push(column_type);
        checked.columns.push(column);
    }
    Ok(checked)
}

/// The row's primary key values, in key order; refused when one is missing or null.
fn key_of(table: &Table, row: &CheckedRow) -> Result<Vec<(Cell, ColumnType)>, StoreError> {
    table
        .primary_key
        .iter()
        .map(|key| match row.columns.iter().position(|c| c == key) {
            Some(i) if row.values[i] != Cell::Null => Ok((row.values[i].clone(), row.types[i])),
            _ => Err(StoreError::Conflict(format!(
                "a row of {} lacks its primary key column {key}",
                table.resource_id
            ))),
        })
        .collect()
}

/// How a key reads in an error: `code=Text("A1"), name=Text("x") of <resource>`.
fn key_description(table: &Table, key: &[(Cell, ColumnType)]) -> String {
    let parts: Vec<String> = table
        .primary_key
        .iter()
        .zip(key)
        .map(|(column, (cell, _))| format!("{column}={cell:?}"))
        .collect();
    format!("row {} of {}", parts.join(", "), table.resource_id)
}

/// The statements of one `write_rows` call, prepared once per shape of row.
struct Statements<'a> {
    tx: &'a Transaction<'a>,
    prepared: HashMap<String, Statement>,
}

impl Statements<'_> {
    async fn get(&mut self, sql: String) -> Result<Statement, StoreError> {
        if let Some(statement) = self.prepared.get(&sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(&sql).await.map_err(backend)?;
        self.prepared.insert(sql, statement.clone());
        Ok(statement)
    }
}

async fn insert_row(
    statements: &mut Statements<'_>,
    table: &Table,
    row: CheckedRow,
) -> Result<(), StoreError> {
    let target = qualified(&table.resource_id);
    let sql = if row.columns.is_empty() {
        format!("INSERT INTO {target} DEFAULT VALUES")
    } else {
        let names: Vec<String> = row.columns.iter().map(|c| quoted(c)).collect();
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        format!(
            "INSERT INTO {target} ({}) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        )
    };
    let key = if table.primary_key.is_empty() {
        None
    } else {
        key_of(table, &row).ok()
    };
    let statement = statements.get(sql).await?;
    let params: Vec<Param> = row
        .values
        .into_iter()
        .zip(row.types)
        .map(|(cell, t)| param(cell, t))
        .collect();
    statements
        .tx
        .execute(&statement, &refs(&params))
        .await
        .map(drop)
        .map_err(|e| {
            if is_code(&e, &SqlState::UNIQUE_VIOLATION) {
                StoreError::Conflict(match key {
                    Some(key) => key_description(table, &key),
                    None => format!("a row of {}", table.resource_id),
                })
            } else {
                backend(e)
            }
        })
}

/// Replaces the given columns of the row with the same key; a missing key is
/// inserted (upsert) or `NotFound` (update).
async fn replace_row(
    statements: &mut Statements<'_>,
    table: &Table,
    row: CheckedRow,
    insert_missing: bool,
) -> Result<(), StoreError> {
    let key = key_of(table, &row)?;
    let target = qualified(&table.resource_id);
    let matches: Vec<String> = table
        .primary_key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = ${}", quoted(c), i + 1))
        .collect();
    let lookup = statements
        .get(format!(
            "SELECT \"_id\" FROM {target} WHERE {} FOR UPDATE",
            matches.join(" AND ")
        ))
        .await?;
    let key_params: Vec<Param> = key.iter().map(|(c, t)| param(c.clone(), *t)).collect();
    let found = statements
        .tx
        .query_opt(&lookup, &refs(&key_params))
        .await
        .map_err(backend)?;
    let Some(found) = found else {
        return if insert_missing {
            insert_row(statements, table, row).await
        } else {
            Err(StoreError::NotFound(key_description(table, &key)))
        };
    };
    let id: i64 = found.try_get(0).map_err(backend)?;
    let (mut sets, mut params): (Vec<String>, Vec<Param>) = (Vec::new(), Vec::new());
    for ((column, value), column_type) in row.columns.iter().zip(row.values).zip(row.types) {
        if !table.primary_key.contains(column) {
            params.push(param(value, column_type));
            sets.push(format!("{} = ${}", quoted(column), params.len()));
        }
    }
    if sets.is_empty() {
        return Ok(());
    }
    params.push(Box::new(id));
    let update = statements
        .get(format!(
            "UPDATE {target} SET {} WHERE \"_id\" = ${}",
            sets.join(", "),
            params.len()
        ))
        .await?;
    statements
        .tx
        .execute(&update, &refs(&params))
        .await
        .map(drop)
        .map_err(backend)
}

async fn write_in(
    tx: &Transaction<'_>,
    resource_id: &str,
    method: WriteMethod,
    rows: Vec<RowValues>,
) -> Result<u64, StoreError> {
    let table = existing_table(tx, resource_id).await?;
    if method != WriteMethod::Insert && table.primary_key.is_empty() {
        return Err(StoreError::Conflict(format!(
            "datastore table {resource_id} has no primary key to match rows by"
        )));
    }
    let mut statements = Statements {
        tx,
        prepared: HashMap::new(),
    };
    let mut written = 0;
    for row in rows {
        let row = check_row(&table, row)?;
        match method {
            WriteMethod::Insert => insert_row(&mut statements, &table, row).await?,
            WriteMethod::Upsert => replace_row(&mut statements, &table, row, true).await?,
            WriteMethod::Update => replace_row(&mut statements, &table, row, false).await?,
        }
        written += 1;
    }
    Ok(written)
}

// ---------------------------------------------------------------------------------
// Reads.

async fn search_in(
    client: &impl GenericClient,
    table: &Table,
    query: &RowQuery,
) -> Result<RowPage, StoreError> {
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
    let sort_types = query
        .sort
        .iter()
        .map(|(c, _)| column_type(table, c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut condition = condition(table, &query.filters, query.text.as_deref())?;
    if let Some(after) = query.after_id {
        condition
            .args
            .push(param(Cell::Int(after), ColumnType::Int));
        condition.sql = format!(
            "({}) AND \"_id\" > ${}",
            condition.sql,
            condition.args.len()
        );
    }
    let target = qualified(&table.resource_id);
    let selected: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
    let limit_mark = condition.args.len() + 1;
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
        for (i, ((column, descending), column_type)) in
            query.sort.iter().zip(&sort_types).enumerate()
        {
            match columns.iter().position(|c| c == column) {
                Some(at) => order.push(order_term(&format!("c{at}"), *column_type, *descending)),
                None => {
                    keys.push(format!("{} AS k{i}", smallest(column, *column_type)));
                    // The smallest text and JSON values are text, the others not.
                    let key_type = match column_type {
                        ColumnType::Text | ColumnType::Json => ColumnType::Text,
                        other => *other,
                    };
                    order.push(order_term(&format!("k{i}"), key_type, *descending));
                }
            }
        }
        keys.push("min(\"_id\") AS first_id".to_owned());
        order.push("first_id".to_owned());
        let outer: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
        (
            format!(
                "SELECT {} FROM (SELECT {}, {} FROM {target} WHERE {} GROUP BY {}) AS g \
                 ORDER BY {} LIMIT ${limit_mark} OFFSET ${}",
                outer.join(", "),
                aliased.join(", "),
                keys.join(", "),
                condition.sql,
                selected.join(", "),
                order.join(", "),
                limit_mark + 1
            ),
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM {target} WHERE {} GROUP BY {}) AS g",
                condition.sql,
                selected.join(", ")
            ),
        )
    } else {
        let mut order: Vec<String> = query
            .sort
            .iter()
            .zip(&sort_types)
            .map(|((column, descending), t)| order_term(&quoted(column), *t, *descending))
            .collect();
        order.push("\"_id\"".to_owned());
        (
            format!(
                "SELECT {} FROM {target} WHERE {} ORDER BY {} LIMIT ${limit_mark} OFFSET ${}",
                selected.join(", "),
                condition.sql,
                order.join(", "),
                limit_mark + 1
            ),
            format!("SELECT count(*) FROM {target} WHERE {}", condition.sql),
        )
    };
    let limit = to_i64(query.limit);
    let offset = to_i64(query.offset);
    let mut args = refs(&condition.args);
    let count_args = args.clone();
    args.push(&limit);
    args.push(&offset);
    let rows = client
        .query(sql.as_str(), &args)
        .await
        .map_err(backend)?
        .iter()
        .map(|row| {
            types
                .iter()
                .enumerate()
                .map(|(i, t)| cell_at(row, i, *t))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total = if query.include_total {
        let row = client
            .query_one(count_sql.as_str(), &count_args)
            .await
            .map_err(backend)?;
        let count: i64 = row.try_get(0).map_err(backend)?;
        Some(u64::try_from(count).unwrap_or(0))
    } else {
        None
    };
    Ok(RowPage {
        columns,
        rows,
        total,
    })
}

async fn delete_in(
    tx: &Transaction<'_>,
    resource_id: &str,
    filters: &[ColumnFilter],
) -> Result<u64, StoreError> {
    let table = existing_table(tx, resource_id).await?;
    let condition = condition(&table, filters, None)?;
    tx.execute(
        format!(
            "DELETE FROM {} WHERE {}",
            qualified(resource_id),
            condition.sql
        )
        .as_str(),
        &refs(&condition.args),
    )
    .await
    .map_err(backend)
}

// ---------------------------------------------------------------------------------
// SQL.

/// SQLSTATE classes of errors that are the query's own fault (its text, what it
/// reads or computes), which the caller may be told: feature not supported,
/// cardinality, data exception, invalid transaction state (a write in the read-only
/// transaction), routine exceptions, invalid schema name, syntax error or access
/// rule violation, check option, program limit.
const QUERY_FAULT_CLASSES: [&str; 11] = [
    "0A", "21", "22", "25", "2F", "38", "39", "3F", "42", "44", "54",
];

/// What a `run_sql` failure tells the caller, if it is the query's doing.
fn refusal(err: &tokio_postgres::Error, limits: SqlLimits) -> Option<SqlRefusal> {
    let db = err.as_db_error()?;
    if *db.code() == SqlState::QUERY_CANCELED {
        return Some(SqlRefusal::TimedOut(limits.timeout));
    }
    let class = db.code().code().get(..2)?;
    QUERY_FAULT_CLASSES
        .contains(&class)
        .then(|| SqlRefusal::Invalid(db.message().to_owned()))
}

async fn run_sql_in(
    tx: &Transaction<'_>,
    sql: &str,
    limits: SqlLimits,
) -> Result<Result<SqlAnswer, SqlRefusal>, StoreError> {
    // At least one millisecond: zero would mean no limit at all.
    let timeout_ms = limits.timeout.as_millis().clamp(1, i32::MAX as u128);
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL search_path = datastore"
    ))
    .await
    .map_err(backend)?;
    let fail = |e: tokio_postgres::Error| match refusal(&e, limits) {
        Some(refusal) => Ok(Err(refusal)),
        None => Err(backend(e)),
    };
    // A trailing semicolon is allowed alone; the query becomes a subquery below.
    let query = sql.trim_end().trim_end_matches(';');
    let described = match tx.prepare(query).await {
        Ok(statement) => statement,
        Err(e) => return fail(e),
    };
    if !described.params().is_empty() {
        return Ok(Err(SqlRefusal::Invalid(
            "the query must not take parameters".to_owned(),
        )));
    }
    let columns = described.columns();
    if columns.is_empty() {
        return Ok(Err(SqlRefusal::Invalid(
            "the query returns no columns".to_owned(),
        )));
    }
    // Renamed c0, c1, … so that repeated names keep apart in the JSON object; the
    // newlines keep a trailing comment from swallowing the parenthesis.
    let aliases: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
    let wrapped = format!(
        "SELECT row_to_json(q)::text FROM (\n{query}\n) AS q({}) LIMIT {}",
        aliases.join(", "),
        to_i64(limits.max_rows).saturating_add(1)
    );
    let rows = match tx.query(wrapped.as_str(), &[]).await {
        Ok(rows) => rows,
        Err(e) => return fail(e),
    };
    let mut answer = SqlAnswer {
        columns: columns.iter().map(|c| c.name().to_owned()).collect(),
        rows: Vec::with_capacity(rows.len().min(limits.max_rows)),
        truncated: rows.len() > limits.max_rows,
    };
    for row in rows.iter().take(limits.max_rows) {
        let text: &str = row.try_get(0).map_err(backend)?;
        let mut object: serde_json::Map<String, Value> = serde_json::from_str(text)
            .map_err(|e| StoreError::backend(DatastoreError::UnreadableAnswer(e.to_string())))?;
        let cells = aliases
            .iter()
            .zip(columns)
            .map(|(alias, column)| {
                answer_cell(object.remove(alias).unwrap_or(Value::Null), column.type_())
            })
            .collect();
        answer.rows.push(cells);
    }
    Ok(Ok(answer))
}

#[async_trait]
impl DatastoreStore for PostgresStore {
    async fn create_table(&self, table: &Table) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        create_in(&tx, table).await?;
        tx.commit().await.map_err(backend)
    }

    async fn table(&self, resource_id: &str) -> Result<Option<Table>, StoreError> {
        let client = self.client().await?;
        stored_table(&**client, resource_id).await
    }

    async fn table_ids(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT resource_id FROM datastore_tables ORDER BY resource_id COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|row| row.try_get(0).map_err(backend))
            .collect()
    }

    async fn drop_table(&self, resource_id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let dropped = drop_in(&tx, resource_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(dropped)
    }

    async fn write_rows(
        &self,
        resource_id: &str,
        method: WriteMethod,
        rows: Vec<RowValues>,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let written = write_in(&tx, resource_id, method, rows).await?;
        tx.commit().await.map_err(backend)?;
        Ok(written)
    }

    async fn delete_rows(
        &self,
        resource_id: &str,
        filters: &[ColumnFilter],
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let deleted = delete_in(&tx, resource_id, filters).await?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn search_rows(
        &self,
        resource_id: &str,
        query: &RowQuery,
    ) -> Result<RowPage, StoreError> {
        let client = self.client().await?;
        let table = existing_table(&**client, resource_id).await?;
        search_in(&**client, &table, query).await
    }

    async fn run_sql(
        &self,
        sql: &str,
        limits: SqlLimits,
    ) -> Result<Result<SqlAnswer, SqlRefusal>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(backend)?;
        // Never committed: dropping the transaction rolls it back.
        run_sql_in(&tx, sql, limits).await
    }
}
