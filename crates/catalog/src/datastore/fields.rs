//! Table definitions from `datastore_create`: CKAN's `fields`
//! (`[{"id": …, "type": …, "info": {…}}]`), `primary_key` and `indexes`,
//! checked against the rules a column name must follow in both databases, and
//! merged with the table that already exists.

use super::cells::infer_column_type;
use super::{param, path_segment, DatastoreError, ROW_ID};
use serde_json::Value;
use store::datastore::{ColumnType, Field, Table};

/// PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
pub const MAX_COLUMN_ID_BYTES: usize = 63;

/// A CKAN type name, case-insensitively: `text`; `int`, `int4`, `int8`,
/// `integer`, `bigint`; `numeric`, `float`, `float8`, `double precision`,
/// `real`; `bool`, `boolean`; `date`; `timestamp`, `timestamptz`; `json`, `jsonb`.
pub fn parse_column_type(name: &str) -> Option<ColumnType> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(match name.as_str() {
        "text" => ColumnType::Text,
        "int" | "int4" | "int8" | "integer" | "bigint" => ColumnType::Int,
        "numeric" | "float" | "float8" | "double precision" | "real" => ColumnType::Numeric,
        "bool" | "boolean" => ColumnType::Bool,
        "date" => ColumnType::Date,
        "timestamp" | "timestamptz" => ColumnType::Timestamp,
        "json" | "jsonb" => ColumnType::Json,
        _ => return None,
    })
}

/// Checks a column id: not empty, not starting with `_` (reserved for `_id`
/// and the store's own columns), no `"` and no control characters, at most
/// [`MAX_COLUMN_ID_BYTES`] bytes of UTF-8. Says what is wrong otherwise.
pub fn validate_column_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a column id must not be empty".to_owned());
    }
    if id.starts_with('_') {
        return Err(format!("column id \"{id}\" must not start with _"));
    }
    if id.contains('"') {
        return Err(format!("column id {id:?} must not contain \""));
    }
    if id.chars().any(char::is_control) {
        return Err(format!(
            "column id {id:?} must not contain control characters"
        ));
    }
    if id.len() > MAX_COLUMN_ID_BYTES {
        return Err(format!(
            "column id \"{id}\" is {} bytes long; at most {MAX_COLUMN_ID_BYTES} are allowed",
            id.len()
        ));
    }
    Ok(())
}

/// Builds the table `datastore_create` asks for from its parameter object.
///
/// - `fields` gives the columns; a field without `type` takes the type of its
///   first non-null value in `records` ([`infer_column_type`]), or text. Without
///   `fields`, the columns are the keys of `records` in the order first seen.
/// - With `existing`, its fields come first and keep their types (naming one
///   with another type is refused); new fields are added after them; an `info`
///   given replaces the old one. Absent `primary_key` / `indexes` keep the
///   existing ones, since the store replaces them by what it is given.
/// - `primary_key` and `indexes` are a string (comma-separated) or a list of
///   strings, and must name fields of the resulting table.
pub fn table_definition(
    resource_id: &str,
    params: &Value,
    existing: Option<&Table>,
) -> Result<Table, DatastoreError> {
    let records = param(params, "records").and_then(Value::as_array);
    let records = records.map(Vec::as_slice).unwrap_or_default();
    let declared = match param(params, "fields") {
        Some(fields) => parse_fields(fields, records)?,
        None => fields_from_records(records)?,
    };
    let mut fields: Vec<Field> = existing
        .map(|table| table.fields.clone())
        .unwrap_or_default();
    for (index, field) in declared.into_iter().enumerate() {
        match fields.iter_mut().find(|old| old.id == field.id) {
            None => fields.push(field),
            Some(old) => {
                let type_given = params
                    .get("fields")
                    .and_then(|list| list.get(index))
                    .and_then(|entry| entry.get("type"))
                    .is_some_and(|kind| !kind.is_null());
                if type_given && old.column_type != field.column_type {
                    return Err(DatastoreError::invalid(
                        "fields",
                        format!("fields[{index}].type"),
                        format!(
                            "column \"{}\" already exists as {}, not {}",
                            field.id,
                            old.column_type.ckan_name(),
                            field.column_type.ckan_name()
                        ),
                    ));
                }
                if field.info.is_some() {
                    old.info = field.info;
                }
            }
        }
    }
    let primary_key = match param(params, "primary_key") {
        Some(value) => parse_key_list("primary_key", value, &fields)?,
        None => existing
            .map(|table| table.primary_key.clone())
            .unwrap_or_default(),
    };
    let indexes = match param(params, "indexes") {
        Some(value) => parse_index_list(value, &fields)?,
        None => existing
            .map(|table| table.indexes.clone())
            .unwrap_or_default(),
    };
    Ok(Table {
        resource_id: resource_id.to_owned(),
        fields,
        primary_key,
        indexes,
    })
}

/// Parses CKAN's `fields` list; `records` serves type inference only.
pub fn parse_fields(fields: &Value, records: &[Value]) -> Result<Vec<Field>, DatastoreError> {
    let list = fields.as_array().ok_or_else(|| {
        DatastoreError::invalid("fields", "fields", "must be a list of field objects")
    })?;
    let mut parsed: Vec<Field> = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let at = |key: &str| format!("fields[{index}]{key}");
        let entry = entry.as_object().ok_or_else(|| {
            DatastoreError::invalid("fields", at(""), "must be an object with an id")
        })?;
        let id = match entry.get("id") {
            Some(Value::String(id)) => id.clone(),
            None | Some(Value::Null) => {
                return Err(DatastoreError::invalid(
                    "fields",
                    at(".id"),
                    "missing value",
                ))
            }
            Some(_) => {
                return Err(DatastoreError::invalid(
                    "fields",
                    at(".id"),
                    "must be a string",
                ))
            }
        };
        validate_column_id(&id)
            .map_err(|message| DatastoreError::invalid("fields", at(".id"), message))?;
        if parsed.iter().any(|field| field.id == id) {
            return Err(DatastoreError::invalid(
                "fields",
                at(".id"),
                format!("column \"{id}\" is given more than once"),
            ));
        }
        let column_type = match entry.get("type") {
            None | Some(Value::Null) => infer_from_records(&id, records),
            Some(Value::String(name)) => parse_column_type(name).ok_or_else(|| {
                DatastoreError::invalid(
                    "fields",
                    at(".type"),
                    format!(
                        "unknown type \"{name}\"; use text, int, numeric, bool, date, timestamp or json"
                    ),
                )
            })?,
            Some(_) => return Err(DatastoreError::invalid("fields", at(".type"), "must be a string")),
        };
        let info = match entry.get("info") {
            None | Some(Value::Null) => None,
            Some(info @ Value::Object(_)) => Some(info.clone()),
            Some(_) => {
                return Err(DatastoreError::invalid(
                    "fields",
                    at(".info"),
                    "must be an object",
                ))
            }
        };
        parsed.push(Field {
            id,
            column_type,
            info,
        });
    }
    Ok(parsed)
}

/// The columns of records sent without `fields`: their keys in the order first
/// seen, typed by inference.
fn fields_from_records(records: &[Value]) -> Result<Vec<Field>, DatastoreError> {
    let mut ids: Vec<String> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let Some(record) = record.as_object() else {
            return Err(DatastoreError::invalid(
                "records",
                format!("records[{index}]"),
                "must be an object",
            ));
        };
        for key in record.keys() {
            if !ids.contains(key) {
                validate_column_id(key).map_err(|message| {
                    DatastoreError::invalid(
                        "records",
                        format!("records[{index}].{}", path_segment(key)),
                        message,
                    )
                })?;
                ids.push(key.clone());
            }
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| Field {
            column_type: infer_from_records(&id, records),
            id,
            info: None,
        })
        .collect())
}

fn infer_from_records(id: &str, records: &[Value]) -> ColumnType {
    records
        .iter()
        .filter_map(|record| record.get(id))
        .find_map(infer_column_type)
        .unwrap_or(ColumnType::Text)
}

/// Parses `indexes` as CKAN reads it: a string of comma-separated column ids is
/// one index per column; in a list, each item is one index, over the columns its
/// comma-separated text (or its own list) names, so `["a", "b,c"]` asks for an
/// index on `a` and one over `b` and `c` together.
pub fn parse_index_list(
    value: &Value,
    fields: &[Field],
) -> Result<Vec<Vec<String>>, DatastoreError> {
    const NAME: &str = "indexes";
    let mut indexes: Vec<Vec<String>> = Vec::new();
    let mut add = |columns: Vec<String>| {
        if !columns.is_empty() && !indexes.contains(&columns) {
            indexes.push(columns);
        }
    };
    match value {
        Value::String(_) => {
            for column in parse_key_list(NAME, value, fields)? {
                add(vec![column]);
            }
        }
        Value::Array(items) => {
            for item in items {
                add(parse_key_list(NAME, item, fields)?);
            }
        }
        _ => {
            return Err(DatastoreError::invalid(
                NAME,
                NAME,
                "must be a string or a list of strings",
            ))
        }
    }
    Ok(indexes)
}

/// Parses `primary_key` (or one index of `indexes`): a string of comma-separated
/// column ids or a list of them (whose items may themselves be comma-separated).
/// Every id must name one of `fields`; none may repeat.
pub fn parse_key_list(
    param_name: &'static str,
    value: &Value,
    fields: &[Field],
) -> Result<Vec<String>, DatastoreError> {
    let parts: Vec<&str> = match value {
        Value::String(text) => text.split(',').collect(),
        Value::Array(items) => {
            let mut parts = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let text = item.as_str().ok_or_else(|| {
                    DatastoreError::invalid(
                        param_name,
                        format!("{param_name}[{index}]"),
                        "must be a string",
                    )
                })?;
                parts.extend(text.split(','));
            }
            parts
        }
        _ => {
            return Err(DatastoreError::invalid(
                param_name,
                param_name,
                "must be a string or a list of strings",
            ))
        }
    };
    let mut columns: Vec<String> = Vec::new();
    for part in parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        if part == ROW_ID || !fields.iter().any(|field| field.id == part) {
            return Err(DatastoreError::unknown_column(param_name, param_name, part));
        }
        if columns.iter().any(|column| column == part) {
            return Err(DatastoreError::invalid(
                param_name,
                param_name,
                format!("column \"{part}\" is named more than once"),
            ));
        }
        columns.push(part.to_owned());
    }
    Ok(columns)
}
