//! One value between CKAN's JSON and the store's typed [`Cell`]: the coercions
//! CKAN clients rely on (numbers sent as strings, dates as ISO text) where the
//! meaning is unambiguous, refusals where it is not, and the rendering of cells
//! as JSON and as CSV text.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::{Number, Value};
use store::datastore::{Cell, ColumnType};

/// Converts a JSON value into a cell of the column type, or says what the
/// value should have been (`"an int"`, `"a date (YYYY-MM-DD)"`, …).
///
/// - `null` is [`Cell::Null`] for every type;
/// - text takes strings, and numbers and booleans as their JSON text;
/// - int takes integral numbers (also `12.0`) and strings of an integer (`"12"`),
///   not `12.5`;
/// - numeric takes finite numbers and strings of one (`"1.5"`);
/// - bool takes `true`/`false` and the strings `"true"`/`"false"` (any case);
/// - date takes `"YYYY-MM-DD"`;
/// - timestamp takes ISO 8601 date-times with `T` or a space, seconds and
///   fractions optional, with or without an offset (`Z`, `+09:00`, `+0900`); an
///   offset is converted to UTC and dropped; a bare date means midnight;
/// - json takes anything.
pub fn cell_from_json(column_type: ColumnType, value: &Value) -> Result<Cell, &'static str> {
    if value.is_null() {
        return Ok(Cell::Null);
    }
    match column_type {
        ColumnType::Text => match value {
            Value::String(text) => Ok(Cell::Text(text.as_str().into())),
            Value::Number(number) => Ok(Cell::Text(number.to_string().into())),
            Value::Bool(flag) => Ok(Cell::Text(flag.to_string().into())),
            _ => Err("text"),
        },
        ColumnType::Int => int_from_json(value).map(Cell::Int).ok_or("an int"),
        ColumnType::Numeric => numeric_from_json(value)
            .map(Cell::Numeric)
            .ok_or("a number"),
        ColumnType::Bool => match value {
            Value::Bool(flag) => Ok(Cell::Bool(*flag)),
            Value::String(text) if text.trim().eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
            Value::String(text) if text.trim().eq_ignore_ascii_case("false") => {
                Ok(Cell::Bool(false))
            }
            _ => Err("a bool (true or false)"),
        },
        ColumnType::Date => value
            .as_str()
            .and_then(parse_date)
            .map(Cell::Date)
            .ok_or("a date (YYYY-MM-DD)"),
        ColumnType::Timestamp => value
            .as_str()
            .and_then(parse_timestamp)
            .map(Cell::Timestamp)
            .ok_or("a timestamp (ISO 8601)"),
        ColumnType::Json => Ok(Cell::Json(Box::new(value.clone()))),
    }
}

/// Integers beyond this lose precision as `f64`, so `1e300` is not taken as an int.
const F64_EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

fn int_from_json(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            (float.fract() == 0.0 && float.abs() <= F64_EXACT_INTEGER_LIMIT).then_some(float as i64)
        }),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }
}

fn numeric_from_json(value: &Value) -> Option<f64> {
    let float = match value {
        Value::Number(number) => number.as_f64()?,
        // `f64::from_str` also reads "NaN" and "inf", which are refused below.
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    float.is_finite().then_some(float)
}

/// Reads `YYYY-MM-DD` exactly (four-digit year).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Reads an ISO 8601 date-time (see [`cell_from_json`]) as UTC without zone.
pub fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Some(date) = parse_date(text) {
        return Some(date.and_time(NaiveTime::MIN));
    }
    let date = parse_date(text.get(..10)?)?;
    let rest = text.get(10..)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // Split the clock from a trailing offset: `Z`, or the last `+`/`-`.
    let (clock, offset) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, Some("+00:00"))
    } else if let Some(sign_at) = rest.rfind(['+', '-']) {
        (&rest[..sign_at], Some(&rest[sign_at..]))
    } else {
        (rest, None)
    };
    let time = ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|format| NaiveTime::parse_from_str(clock, format).ok())?;
    let local = date.and_time(time);
    match offset {
        None => Some(local),
        Some(offset) => {
            let stamp = format!("{}{}", local.format("%Y-%m-%dT%H:%M:%S%.f"), offset);
            [
                "%Y-%m-%dT%H:%M:%S%.f%:z",
                "%Y-%m-%dT%H:%M:%S%.f%z",
                "%Y-%m-%dT%H:%M:%S%.f%#z",
            ]
            .iter()
            .find_map(|format| DateTime::parse_from_str(&stamp, format).ok())
            .map(|moment| moment.naive_utc())
        }
    }
}

/// The type CKAN would guess for a column from one of its values (`None` for
/// null, which tells nothing).
pub fn infer_column_type(value: &Value) -> Option<ColumnType> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some(ColumnType::Bool),
        Value::Number(number) if number.is_i64() || number.is_u64() => Some(ColumnType::Int),
        Value::Number(_) => Some(ColumnType::Numeric),
        Value::Array(_) | Value::Object(_) => Some(ColumnType::Json),
        Value::String(text) => Some(if parse_date(text).is_some() {
            ColumnType::Date
        } else if parse_timestamp(text).is_some() {
            ColumnType::Timestamp
        } else {
            ColumnType::Text
        }),
    }
}

/// A cell as CKAN's JSON: numbers as numbers (a non-finite numeric as null),
/// dates as `YYYY-MM-DD`, timestamps as `YYYY-MM-DDTHH:MM:SS[.ffffff]`.
pub fn cell_to_json(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Text(text) => Value::String(text.to_string()),
        Cell::Int(int) => Value::from(*int),
        Cell::Numeric(float) => Number::from_f64(*float).map_or(Value::Null, Value::Number),
        Cell::Bool(flag) => Value::Bool(*flag),
        Cell::Date(date) => Value::String(format_date(*date)),
        Cell::Timestamp(stamp) => Value::String(format_timestamp(*stamp)),
        Cell::Json(value) => Value::clone(value),
    }
}

/// A cell as the text of a CSV or TSV field: null is empty, JSON is compact JSON.
pub fn cell_to_text(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Text(text) => text.to_string(),
        Cell::Int(int) => int.to_string(),
        Cell::Numeric(float) if float.is_finite() => float.to_string(),
        Cell::Numeric(_) => String::new(),
        Cell::Bool(flag) => flag.to_string(),
        Cell::Date(date) => format_date(*date),
        Cell::Timestamp(stamp) => format_timestamp(*stamp),
        Cell::Json(value) => value.to_string(),
    }
}

fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn format_timestamp(stamp: NaiveDateTime) -> String {
    let whole = stamp.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = stamp.nanosecond() % 1_000_000_000 / 1_000;
    if micros == 0 {
        whole
    } else {
        format!("{whole}.{micros:06}")
    }
}

/// A value as JSON for an error message, shortened so that a huge value does
/// not flood the answer.
pub(crate) fn describe_value(value: &Value) -> String {
    const MAX_CHARS: usize = 80;
    let text = value.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let mut short: String = text.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}
