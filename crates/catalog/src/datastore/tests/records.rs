//! Records of `datastore_create` / `datastore_upsert` turned into typed rows.

use crate::datastore::cells::{cell_from_json, parse_timestamp};
use crate::datastore::records::{parse_records, parse_write_method};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::json;
use store::datastore::{Cell, ColumnType, Field, Table, WriteMethod};

fn table() -> Table {
    let field = |id: &str, column_type| Field {
        id: id.to_owned(),
        column_type,
        info: None,
    };
    Table {
        resource_id: "r".into(),
        fields: vec![
            field("code", ColumnType::Text),
            field("population", ColumnType::Int),
            field("area", ColumnType::Numeric),
            field("open", ColumnType::Bool),
            field("opened", ColumnType::Date),
            field("updated", ColumnType::Timestamp),
            field("extra", ColumnType::Json),
        ],
        primary_key: vec!["code".into()],
        indexes: vec![],
    }
}

fn stamp(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
}

#[test]
fn records_become_rows_in_column_order_with_coercions() {
    let records = json!([
        {"extra": [1, {"a": 2}], "population": "12", "code": 372013, "area": "1.5", "open": "TRUE",
         "opened": "2024-04-01", "updated": "2024-04-01T09:30:00+09:00"},
        {"code": "x", "population": 12.0, "area": 3, "open": false, "opened": null}
    ]);
    let rows = parse_records(&table(), &records, WriteMethod::Insert).unwrap();
    assert_eq!(
        rows[0],
        vec![
            ("code".to_owned(), Cell::Text("372013".into())),
            ("population".to_owned(), Cell::Int(12)),
            ("area".to_owned(), Cell::Numeric(1.5)),
            ("open".to_owned(), Cell::Bool(true)),
            (
                "opened".to_owned(),
                Cell::Date(NaiveDate::from_ymd_opt(2024, 4, 1).unwrap())
            ),
            (
                "updated".to_owned(),
                Cell::Timestamp(stamp("2024-04-01T00:30:00"))
            ),
            (
                "extra".to_owned(),
                Cell::Json(Box::new(json!([1, {"a": 2}])))
            ),
        ]
    );
    // Keys left out stay out of the row; an explicit null is written.
    assert_eq!(
        rows[1],
        vec![
            ("code".to_owned(), Cell::Text("x".into())),
            ("population".to_owned(), Cell::Int(12)),
            ("area".to_owned(), Cell::Numeric(3.0)),
            ("open".to_owned(), Cell::Bool(false)),
            ("opened".to_owned(), Cell::Null),
        ]
    );
}

#[test]
fn errors_name_the_record_and_the_column() {
    let cases = [
        (
            json!([{"code": "a"}, {}, {}, {"population": "abc"}]),
            r#"records[3].population: "abc" is not an int"#,
        ),
        (
            json!([{"population": 12.5}]),
            "records[0].population: 12.5 is not an int",
        ),
        (
            json!([{"area": "NaN"}]),
            r#"records[0].area: "NaN" is not a number"#,
        ),
        (
            json!([{"open": "yes"}]),
            r#"records[0].open: "yes" is not a bool (true or false)"#,
        ),
        (
            json!([{"opened": "2024/04/01"}]),
            r#"records[0].opened: "2024/04/01" is not a date (YYYY-MM-DD)"#,
        ),
        (
            json!([{"opened": "2024-02-30"}]),
            r#"records[0].opened: "2024-02-30" is not a date (YYYY-MM-DD)"#,
        ),
        (
            json!([{"updated": "yesterday"}]),
            r#"records[0].updated: "yesterday" is not a timestamp (ISO 8601)"#,
        ),
        (
            json!([{"code": {"a": 1}}]),
            r#"records[0].code: {"a":1} is not text"#,
        ),
        (
            json!([{"code": "a"}, {"人口": 1}]),
            "records[1].人口: unknown column \"人口\"",
        ),
        (
            json!([{"_id": 1}]),
            "records[0]._id: _id is assigned by the datastore and cannot be written",
        ),
        (json!([{"code": "a"}, 5]), "records[1]: must be an object"),
        (json!({"code": "a"}), "records: must be a list of objects"),
    ];
    for (records, message) in cases {
        let error = parse_records(&table(), &records, WriteMethod::Insert).unwrap_err();
        assert_eq!(error.to_string(), message);
        assert_eq!(error.param(), "records");
    }
}

#[test]
fn upserts_need_the_primary_key() {
    let error = parse_records(
        &table(),
        &json!([{"code": "a"}, {"population": 1}]),
        WriteMethod::Upsert,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "records[1].code: upsert needs a value for primary key column \"code\""
    );
    let mut keyless = table();
    keyless.primary_key.clear();
    let error = parse_records(&keyless, &json!([{"code": "a"}]), WriteMethod::Update).unwrap_err();
    assert_eq!(
        error.to_string(),
        "method: update needs a primary key, and table \"r\" has none"
    );
    assert!(parse_records(&keyless, &json!([{"code": "a"}]), WriteMethod::Insert).is_ok());
}

#[test]
fn write_methods_default_to_upsert() {
    assert_eq!(parse_write_method(&json!({})).unwrap(), WriteMethod::Upsert);
    assert_eq!(
        parse_write_method(&json!({"method": "Insert"})).unwrap(),
        WriteMethod::Insert
    );
    assert_eq!(
        parse_write_method(&json!({"method": "update"})).unwrap(),
        WriteMethod::Update
    );
    assert_eq!(
        parse_write_method(&json!({"method": "replace"}))
            .unwrap_err()
            .to_string(),
        "method: \"replace\" is not one of insert, upsert, update"
    );
}

#[test]
fn timestamps_are_read_in_their_iso_forms_and_kept_in_utc() {
    let cases = [
        ("2024-04-01T09:30:00", "2024-04-01T09:30:00"),
        ("2024-04-01 09:30", "2024-04-01T09:30:00"),
        ("2024-04-01T09:30:00.123456", "2024-04-01T09:30:00.123456"),
        ("2024-04-01T09:30:00Z", "2024-04-01T09:30:00"),
        ("2024-04-01T09:30:00+09:00", "2024-04-01T00:30:00"),
        ("2024-04-01T09:30:00+0900", "2024-04-01T00:30:00"),
        ("2024-04-01T01:00:00-05:00", "2024-04-01T06:00:00"),
        ("2024-04-01", "2024-04-01T00:00:00"),
    ];
    for (text, utc) in cases {
        assert_eq!(parse_timestamp(text), Some(stamp(utc)), "{text}");
    }
    for bad in [
        "2024-04-01T25:00:00",
        "2024-04-01T09:30:00+9",
        "2024-04-01X09:30",
        "09:30",
        "",
    ] {
        assert_eq!(parse_timestamp(bad), None, "{bad}");
    }
}

#[test]
fn ints_are_taken_only_when_unambiguous() {
    assert_eq!(
        cell_from_json(ColumnType::Int, &json!(" 42 ")),
        Ok(Cell::Int(42))
    );
    assert_eq!(
        cell_from_json(ColumnType::Int, &json!(-7)),
        Ok(Cell::Int(-7))
    );
    assert!(cell_from_json(ColumnType::Int, &json!("1.0")).is_err());
    assert!(cell_from_json(ColumnType::Int, &json!(1e300)).is_err());
    assert!(cell_from_json(ColumnType::Int, &json!(true)).is_err());
    assert!(cell_from_json(ColumnType::Numeric, &json!("inf")).is_err());
    assert_eq!(
        cell_from_json(ColumnType::Json, &json!(null)),
        Ok(Cell::Null)
    );
}

#[test]
fn required_parameters_are_named_when_missing() {
    use crate::datastore::{required_param, DatastoreError};
    let params = json!({"resource_id": "r", "records": null});
    assert_eq!(required_param(&params, "resource_id").unwrap(), &json!("r"));
    let error = required_param(&params, "records").unwrap_err();
    assert_eq!(error, DatastoreError::Missing { param: "records" });
    assert_eq!(error.to_string(), "records: missing value");
}
