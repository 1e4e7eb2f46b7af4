//! The parameters of `datastore_search` (and the `filters` of
//! `datastore_delete`) turned into the store's [`RowQuery`]: typed filters,
//! sort, the columns asked for, paging and the format of the records.

use super::cells::{cell_from_json, describe_value};
use super::{param, path_segment, DatastoreError, ROW_ID};
use serde_json::{Map, Value};
use store::datastore::{Cell, ColumnFilter, ColumnType, RowQuery, Table};

/// Paging limits of `datastore_search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchLimits {
    /// Rows returned when `limit` is not given (CKAN: 100).
    pub default_limit: usize,
    /// A larger `limit` is lowered to this, as CKAN's
    /// `ckan.datastore.search.rows_max` does (CKAN: 32000).
    pub max_limit: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            default_limit: 100,
            max_limit: 32_000,
        }
    }
}

/// How `datastore_search` returns its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordsFormat {
    /// A list of objects, one key per column (the default).
    #[default]
    Objects,
    /// A list of lists, in the order of `fields`.
    Lists,
    /// One string of CSV lines, without header.
    Csv,
    /// One string of TSV lines, without header.
    Tsv,
}

impl RecordsFormat {
    pub fn ckan_name(self) -> &'static str {
        match self {
            RecordsFormat::Objects => "objects",
            RecordsFormat::Lists => "lists",
            RecordsFormat::Csv => "csv",
            RecordsFormat::Tsv => "tsv",
        }
    }
}

/// A parsed `datastore_search`: what to ask the store, and what the rendering
/// of its answer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub resource_id: String,
    pub query: RowQuery,
    pub records_format: RecordsFormat,
    /// The parameters as the client sent them, for `_links` and the echo of
    /// `q`, `filters` and `sort` in the result.
    pub params: Map<String, Value>,
}

/// Parses the parameters of `datastore_search` for a table.
///
/// `limit` (default and maximum from `limits`) and `offset` are non-negative
/// integers or strings of one; `distinct` and `include_total` (default true)
/// are booleans or their usual strings; `q` is a string (CKAN's per-column dict
/// form is refused); `filters`, `sort` and `fields` are read by
/// [`parse_filters`], [`parse_sort`] and [`parse_columns`].
pub fn parse_search(
    table: &Table,
    params: &Value,
    limits: SearchLimits,
) -> Result<SearchRequest, DatastoreError> {
    let object = params
        .as_object()
        .ok_or_else(|| DatastoreError::invalid("params", "params", "must be an object"))?;
    let filters = match param(params, "filters") {
        Some(filters) => parse_filters(table, filters, "filters")?,
        None => Vec::new(),
    };
    let text = match param(params, "q") {
        None => None,
        Some(Value::String(text)) => Some(text.clone()).filter(|text| !text.trim().is_empty()),
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(Value::Object(_)) => {
            return Err(DatastoreError::invalid(
                "q",
                "q",
                "searching single columns with a dict is not supported; give q as a string, or use filters",
            ))
        }
        Some(_) => return Err(DatastoreError::invalid("q", "q", "must be a string")),
    };
    let sort = match param(params, "sort") {
        Some(sort) => parse_sort(table, sort)?,
        None => Vec::new(),
    };
    let columns = match param(params, "fields") {
        Some(fields) => Some(parse_columns(table, fields)?),
        None => None,
    };
    let limit = parse_count(params, "limit")?
        .unwrap_or(limits.default_limit)
        .min(limits.max_limit);
    let records_format = match param(params, "records_format") {
        None => RecordsFormat::Objects,
        Some(Value::String(name)) => match name.as_str() {
            "objects" => RecordsFormat::Objects,
            "lists" => RecordsFormat::Lists,
            "csv" => RecordsFormat::Csv,
            "tsv" => RecordsFormat::Tsv,
            _ => {
                return Err(DatastoreError::invalid(
                    "records_format",
                    "records_format",
                    format!("\"{name}\" is not one of objects, lists, csv, tsv"),
                ))
            }
        },
        Some(_) => {
            return Err(DatastoreError::invalid(
                "records_format",
                "records_format",
                "must be a string",
            ))
        }
    };
    let resource_id = match param(params, "resource_id") {
        Some(Value::String(id)) => id.clone(),
        _ => table.resource_id.clone(),
    };
    Ok(SearchRequest {
        resource_id,
        query: RowQuery {
            filters,
            text,
            sort,
            columns,
            distinct: parse_flag(params, "distinct")?.unwrap_or(false),
            limit,
            offset: parse_count(params, "offset")?.unwrap_or(0),
            after_id: None,
            include_total: parse_flag(params, "include_total")?.unwrap_or(true),
        },
        records_format,
        params: object.clone(),
    })
}

/// The type of a column for filters and sorting, `_id` included.
fn column_type(table: &Table, column: &str) -> Option<ColumnType> {
    if column == ROW_ID {
        return Some(ColumnType::Int);
    }
    table
        .fields
        .iter()
        .find(|field| field.id == column)
        .map(|field| field.column_type)
}

/// Parses CKAN's `filters`: an object `{column: value | [values]}` (or a string
/// holding one as JSON, as GET requests send it); a row matches when each
/// column equals one of its values. Values are typed like record values;
/// `_id` may be filtered on as an int. For a json column a list is one JSON
/// value to match, not a choice of values. `param_name` is the parameter's name in
/// error messages (`filters` for search and delete).
pub fn parse_filters(
    table: &Table,
    filters: &Value,
    param_name: &'static str,
) -> Result<Vec<ColumnFilter>, DatastoreError> {
    let decoded;
    let filters = match filters {
        Value::String(text) => {
            decoded = serde_json::from_str::<Value>(text).map_err(|error| {
                DatastoreError::invalid(
                    param_name,
                    param_name,
                    format!("is not valid JSON: {error}"),
                )
            })?;
            &decoded
        }
        other => other,
    };
    let object = filters.as_object().ok_or_else(|| {
        DatastoreError::invalid(param_name, param_name, "must be an object of column: value")
    })?;
    let mut parsed = Vec::with_capacity(object.len());
    for (column, wanted) in object {
        let at = format!("{param_name}.{}", path_segment(column));
        let column_type = column_type(table, column)
            .ok_or_else(|| DatastoreError::unknown_column(param_name, at.clone(), column))?;
        let values: &[Value] = match wanted {
            Value::Array(values) if column_type != ColumnType::Json => values,
            single => std::slice::from_ref(single),
        };
        if values.is_empty() {
            return Err(DatastoreError::invalid(
                param_name,
                at,
                "an empty list of values matches nothing",
            ));
        }
        let any_of = values
            .iter()
            .enumerate()
            .map(|(position, value)| {
                cell_from_json(column_type, value).map_err(|expected| DatastoreError::BadValue {
                    param: param_name,
                    at: if values.len() > 1 || wanted.is_array() {
                        format!("{at}[{position}]")
                    } else {
                        at.clone()
                    },
                    value: describe_value(value),
                    expected,
                })
            })
            .collect::<Result<Vec<Cell>, _>>()?;
        parsed.push(ColumnFilter {
            column: column.clone(),
            any_of,
        });
    }
    Ok(parsed)
}

/// Parses CKAN's `sort`: `"col1 desc, col2"`, with double-quoted names for
/// columns holding spaces or commas (`"\"col name\" asc"`, `""` for a quote
/// inside), or a list of such strings. Gives `(column, descending)` pairs;
/// every column must exist (`_id` included).
pub fn parse_sort(table: &Table, sort: &Value) -> Result<Vec<(String, bool)>, DatastoreError> {
    let texts: Vec<&str> = match sort {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_str().ok_or_else(|| {
                    DatastoreError::invalid("sort", format!("sort[{index}]"), "must be a string")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(DatastoreError::invalid(
                "sort",
                "sort",
                "must be a string or a list of strings",
            ))
        }
    };
    let mut keys = Vec::new();
    for text in texts {
        for (column, descending) in split_sort(text)? {
            if column_type(table, &column).is_none() {
                return Err(DatastoreError::unknown_column("sort", "sort", &column));
            }
            keys.push((column, descending));
        }
    }
    Ok(keys)
}

/// Splits one sort string into `(column, descending)` pairs.
fn split_sort(text: &str) -> Result<Vec<(String, bool)>, DatastoreError> {
    let bad = |message: String| DatastoreError::invalid("sort", "sort", message);
    let mut keys = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut column = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => column.push('"'),
                    Some('"') => break,
                    Some(c) => column.push(c),
                    None => return Err(bad(format!("unclosed quote in {text:?}"))),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != ',') {
                column.push(c);
            }
        }
        if column.is_empty() {
            return Err(bad(format!("a column name is missing in {text:?}")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut direction = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != ',') {
            direction.push(c);
        }
        let descending = match direction.to_ascii_lowercase().as_str() {
            "" | "asc" => false,
            "desc" => true,
            _ => {
                return Err(bad(format!(
                    "\"{direction}\" is not asc or desc (in {text:?})"
                )))
            }
        };
        keys.push((column, descending));
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => return Err(bad(format!("unexpected {c:?} in {text:?}"))),
        }
    }
    Ok(keys)
}

/// Parses the `fields` parameter of `datastore_search`: the columns to
/// return, as a comma-separated string or a list of exact names. Every column
/// must exist (`_id` included) and none may repeat.
pub fn parse_columns(table: &Table, fields: &Value) -> Result<Vec<String>, DatastoreError> {
    let names: Vec<&str> = match fields {
        Value::String(text) => text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_str().ok_or_else(|| {
                    DatastoreError::invalid(
                        "fields",
                        format!("fields[{index}]"),
                        "must be a string",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(DatastoreError::invalid(
                "fields",
                "fields",
                "must be a string or a list of strings",
            ))
        }
    };
    let mut columns: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if column_type(table, name).is_none() {
            return Err(DatastoreError::unknown_column("fields", "fields", name));
        }
        if columns.iter().any(|column| column == name) {
            return Err(DatastoreError::invalid(
                "fields",
                "fields",
                format!("column \"{name}\" is named more than once"),
            ));
        }
        columns.push(name.to_owned());
    }
    Ok(columns)
}

/// A non-negative integer parameter, given as a number or a string of one.
fn parse_count(params: &Value, name: &'static str) -> Result<Option<usize>, DatastoreError> {
    let Some(value) = param(params, name) else {
        return Ok(None);
    };
    let count = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    count
        .and_then(|count| usize::try_from(count).ok())
        .map(Some)
        .ok_or_else(|| DatastoreError::BadValue {
            param: name,
            at: name.to_owned(),
            value: describe_value(value),
            expected: "a non-negative integer",
        })
}

/// A boolean parameter: `true`/`false`, or the strings CKAN's boolean
/// validator takes (`true`, `yes`, `t`, `y`, `1`, `on` and their opposites).
fn parse_flag(params: &Value, name: &'static str) -> Result<Option<bool>, DatastoreError> {
    let Some(value) = param(params, name) else {
        return Ok(None);
    };
    let flag = match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "t" | "y" | "1" | "on" => Some(true),
            "false" | "no" | "f" | "n" | "0" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    };
    flag.map(Some).ok_or_else(|| DatastoreError::BadValue {
        param: name,
        at: name.to_owned(),
        value: describe_value(value),
        expected: "a bool (true or false)",
    })
}
