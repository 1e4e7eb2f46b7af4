//! What both datastore backends do alike, kept once: the JSON codec of a table's
//! definition as `datastore_tables` stores it, merging a new definition into the
//! stored one, looking up a column's type, checking a cell against its column, and
//! naming and declaring indexes. Only identifier quoting and index statements touch
//! SQL text here, and they are plain standard SQL both backends accept.

use crate::datastore::{Cell, ColumnType, Field, Table};
use crate::StoreError;
use serde_json::{json, Value};
use std::collections::HashSet;

/// A definition or cell a backend cannot use: a caller handing a cell of the wrong
/// type (the catalog converts values first), or a stored definition that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionFault {
    #[error("column {column} holds {expected} values, not {given}")]
    CellType {
        column: String,
        expected: &'static str,
        given: String,
    },
    #[error("the stored definition of datastore table {resource_id} is unreadable: {reason}")]
    CorruptDefinition { resource_id: String, reason: String },
}

/// A table's definition as stored in `datastore_tables.definition`.
pub fn definition_json(table: &Table) -> Value {
    let fields: Vec<Value> = table
        .fields
        .iter()
        .map(|field| {
            let mut entry = json!({"id": field.id, "type": field.column_type.ckan_name()});
            if let Some(info) = &field.info {
                entry["info"] = info.clone();
            }
            entry
        })
        .collect();
    json!({"fields": fields, "primary_key": table.primary_key, "indexes": table.indexes})
}

pub fn table_from_json(resource_id: &str, definition: &Value) -> Result<Table, StoreError> {
    let corrupt = |reason: &str| {
        StoreError::backend(DefinitionFault::CorruptDefinition {
            resource_id: resource_id.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let names = |list: Option<&Value>| -> Result<Vec<String>, StoreError> {
        match list {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| corrupt("a column name is not text"))
                })
                .collect(),
            Some(_) => Err(corrupt("a column list is not an array")),
        }
    };
    let fields = definition
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| corrupt("no fields"))?
        .iter()
        .map(|entry| {
            let id = entry.get("id").and_then(Value::as_str);
            let type_name = entry.get("type").and_then(Value::as_str);
            let column_type = ColumnType::ALL
                .into_iter()
                .find(|t| Some(t.ckan_name()) == type_name);
            match (id, column_type) {
                (Some(id), Some(column_type)) => Ok(Field {
                    id: id.to_owned(),
                    column_type,
                    info: entry.get("info").cloned(),
                }),
                _ => Err(corrupt("a field lacks its id or has an unknown type")),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Table {
        resource_id: resource_id.to_owned(),
        fields,
        primary_key: names(definition.get("primary_key"))?,
        indexes: match definition.get("indexes") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    // Definitions written before composite indexes name one column.
                    Value::String(column) => Ok(vec![column.clone()]),
                    list => names(Some(list)),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(corrupt("the index list is not an array")),
        },
    })
}

/// What creating `wanted` over the `existing` definition makes: the existing fields
/// in their places with their types (and the data dictionary given now, if the field
/// is given), the new fields after them, and the given primary key and indexes. Also
/// the fields to add to the real table.
pub fn merge_definition(
    existing: Option<&Table>,
    wanted: &Table,
) -> Result<(Table, Vec<Field>), StoreError> {
    let mut seen = HashSet::new();
    for field in &wanted.fields {
        if field.id == "_id" {
            return Err(StoreError::Conflict("column _id is reserved".to_owned()));
        }
        if !seen.insert(field.id.as_str()) {
            return Err(StoreError::Conflict(format!(
                "column {} is given twice",
                field.id
            )));
        }
    }
    let mut fields = existing.map(|t| t.fields.clone()).unwrap_or_default();
    let mut added = Vec::new();
    for field in &wanted.fields {
        match fields.iter_mut().find(|f| f.id == field.id) {
            Some(known) if known.column_type != field.column_type => {
                return Err(StoreError::Conflict(format!(
                    "column {} is {}, not {}",
                    field.id,
                    known.column_type.ckan_name(),
                    field.column_type.ckan_name()
                )));
            }
            Some(known) => known.info = field.info.clone(),
            None => {
                fields.push(field.clone());
                added.push(field.clone());
            }
        }
    }
    let merged = Table {
        resource_id: wanted.resource_id.clone(),
        fields,
        primary_key: wanted.primary_key.clone(),
        indexes: wanted.indexes.clone(),
    };
    for column in merged
        .primary_key
        .iter()
        .chain(merged.indexes.iter().flatten())
    {
        if !merged.fields.iter().any(|f| &f.id == column) {
            return Err(StoreError::NotFound(format!("column {column}")));
        }
    }
    Ok((merged, added))
}

/// The type of a column a call names: `_id` or a field of the definition.
pub fn column_type(table: &Table, column: &str) -> Result<ColumnType, StoreError> {
    if column == "_id" {
        return Ok(ColumnType::Int);
    }
    table
        .fields
        .iter()
        .find(|f| f.id == column)
        .map(|f| f.column_type)
        .ok_or_else(|| StoreError::NotFound(format!("column {column}")))
}

/// The cell as the column keeps it: the cell itself when its type is the column's,
/// an integer widened for a numeric column, null anywhere.
pub fn fit(column: &str, column_type: ColumnType, cell: Cell) -> Result<Cell, StoreError> {
    let fits = matches!(
        (&cell, column_type),
        (Cell::Null, _)
            | (Cell::Text(_), ColumnType::Text)
            | (Cell::Int(_), ColumnType::Int)
            | (Cell::Numeric(_), ColumnType::Numeric)
            | (Cell::Bool(_), ColumnType::Bool)
            | (Cell::Date(_), ColumnType::Date)
            | (Cell::Timestamp(_), ColumnType::Timestamp)
            | (Cell::Json(_), ColumnType::Json)
    );
    match cell {
        _ if fits => Ok(cell),
        // Integers are exact in a double up to 2^53, far beyond what a count or an
        // amount in a municipal table reaches.
        Cell::Int(n) if column_type == ColumnType::Numeric => Ok(Cell::Numeric(n as f64)),
        other => Err(StoreError::backend(DefinitionFault::CellType {
            column: column.to_owned(),
            expected: column_type.ckan_name(),
            given: format!("{other:?}"),
        })),
    }
}

/// An identifier as SQL reads it, whatever it contains.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A stable 64-bit hash (FNV-1a) for index names, which must not change between
/// builds the way `std`'s hasher may.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The name of the index over `columns` of the table, `unique` for the primary key.
pub fn index_name(resource_id: &str, unique: bool, columns: &[String]) -> String {
    let parts: Vec<&str> = columns.iter().map(String::as_str).collect();
    format!(
        "ds_{:016x}_{}_{:016x}",
        stable_hash(&[resource_id]),
        if unique { "u" } else { "i" },
        stable_hash(&parts)
    )
}

/// The indexes the definition asks for: name and `CREATE INDEX` statement.
pub fn wanted_indexes(table: &Table, table_name: &str) -> Vec<(String, String)> {
    let mut wanted = Vec::new();
    let mut add = |unique: bool, columns: &[String]| {
        let name = index_name(&table.resource_id, unique, columns);
        let list: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
        let sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if unique { "UNIQUE " } else { "" },
            quoted(&name),
            table_name,
            list.join(", ")
        );
        if !wanted.iter().any(|(n, _)| n == &name) {
            wanted.push((name, sql));
        }
    };
    if !table.primary_key.is_empty() {
        add(true, &table.primary_key);
    }
    for columns in &table.indexes {
        add(false, columns);
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(indexes: Vec<Vec<String>>) -> Table {
        Table {
            resource_id: "r".into(),
            fields: ["code", "kind"]
                .map(|id| Field {
                    id: id.into(),
                    column_type: ColumnType::Text,
                    info: None,
                })
                .to_vec(),
            primary_key: Vec::new(),
            indexes,
        }
    }

    #[test]
    fn a_composite_index_is_one_statement_over_its_columns() {
        let wanted = wanted_indexes(
            &table(vec![
                vec!["code".into(), "kind".into()],
                vec!["kind".into()],
            ]),
            "\"r\"",
        );
        assert_eq!(wanted.len(), 2);
        assert!(
            wanted[0].1.ends_with("ON \"r\" (\"code\", \"kind\")"),
            "{}",
            wanted[0].1
        );
        assert!(
            wanted[1].1.ends_with("ON \"r\" (\"kind\")"),
            "{}",
            wanted[1].1
        );
        assert_ne!(wanted[0].0, wanted[1].0);
    }

    #[test]
    fn definitions_round_trip_and_old_single_column_indexes_still_read() {
        let composite = table(vec![vec!["code".into(), "kind".into()]]);
        let json = definition_json(&composite);
        assert_eq!(table_from_json("r", &json).unwrap(), composite);
        let old = json!({"fields": [{"id": "code", "type": "text"}, {"id": "kind", "type": "text"}],
                         "primary_key": [], "indexes": ["code", "kind"]});
        assert_eq!(
            table_from_json("r", &old).unwrap().indexes,
            vec![vec!["code".to_owned()], vec!["kind".to_owned()]]
        );
    }
}
