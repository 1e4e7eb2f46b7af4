//! Records of `datastore_create` and `datastore_upsert`: JSON objects turned
//! into typed rows for the store, every value checked against its column's
//! type, every refusal naming the record's index and the column.

use super::cells::{cell_from_json, describe_value};
use super::{param, path_segment, DatastoreError, ROW_ID};
use serde_json::Value;
use store::datastore::{RowValues, Table, WriteMethod};

/// Reads `method` of `datastore_upsert`: `insert`, `upsert` (the default, as in
/// CKAN) or `update`.
pub fn parse_write_method(params: &Value) -> Result<WriteMethod, DatastoreError> {
    match param(params, "method") {
        None => Ok(WriteMethod::Upsert),
        Some(Value::String(name)) => match name.trim().to_ascii_lowercase().as_str() {
            "insert" => Ok(WriteMethod::Insert),
            "upsert" => Ok(WriteMethod::Upsert),
            "update" => Ok(WriteMethod::Update),
            _ => Err(DatastoreError::invalid(
                "method",
                "method",
                format!("\"{name}\" is not one of insert, upsert, update"),
            )),
        },
        Some(_) => Err(DatastoreError::invalid(
            "method",
            "method",
            "must be a string",
        )),
    }
}

/// Turns `records` (a list of objects) into rows of the table.
///
/// Each row holds the record's keys in the table's column order; a key the
/// record leaves out is left out of the row (null on insert, unchanged on
/// upsert and update), an explicit `null` is written as null. Keys that are not
/// columns are refused, and so is `_id`: the store numbers rows itself and
/// cannot match rows by it, so accepting it would silently mean nothing.
/// Upsert and update need a primary key and every record must give a non-null
/// value for each of its columns.
pub fn parse_records(
    table: &Table,
    records: &Value,
    method: WriteMethod,
) -> Result<Vec<RowValues>, DatastoreError> {
    let records = records.as_array().ok_or_else(|| {
        DatastoreError::invalid("records", "records", "must be a list of objects")
    })?;
    if method != WriteMethod::Insert && table.primary_key.is_empty() && !records.is_empty() {
        return Err(DatastoreError::invalid(
            "method",
            "method",
            format!(
                "{} needs a primary key, and table \"{}\" has none",
                method_name(method),
                table.resource_id
            ),
        ));
    }
    records
        .iter()
        .enumerate()
        .map(|(index, record)| parse_record(table, index, record, method))
        .collect()
}

fn parse_record(
    table: &Table,
    index: usize,
    record: &Value,
    method: WriteMethod,
) -> Result<RowValues, DatastoreError> {
    let object = record.as_object().ok_or_else(|| {
        DatastoreError::invalid("records", format!("records[{index}]"), "must be an object")
    })?;
    for key in object.keys() {
        let at = format!("records[{index}].{}", path_segment(key));
        if key == ROW_ID {
            return Err(DatastoreError::invalid(
                "records",
                at,
                "_id is assigned by the datastore and cannot be written",
            ));
        }
        if !table.fields.iter().any(|field| &field.id == key) {
            return Err(DatastoreError::unknown_column("records", at, key));
        }
    }
    let mut row = RowValues::with_capacity(object.len());
    for field in &table.fields {
        let Some(value) = object.get(&field.id) else {
            continue;
        };
        let cell = cell_from_json(field.column_type, value).map_err(|expected| {
            DatastoreError::BadValue {
                param: "records",
                at: format!("records[{index}].{}", path_segment(&field.id)),
                value: describe_value(value),
                expected,
            }
        })?;
        row.push((field.id.clone(), cell));
    }
    if method != WriteMethod::Insert {
        for key in &table.primary_key {
            if object.get(key).is_none_or(Value::is_null) {
                return Err(DatastoreError::invalid(
                    "records",
                    format!("records[{index}].{}", path_segment(key)),
                    format!(
                        "{} needs a value for primary key column \"{key}\"",
                        method_name(method)
                    ),
                ));
            }
        }
    }
    Ok(row)
}

fn method_name(method: WriteMethod) -> &'static str {
    match method {
        WriteMethod::Insert => "insert",
        WriteMethod::Upsert => "upsert",
        WriteMethod::Update => "update",
    }
}
