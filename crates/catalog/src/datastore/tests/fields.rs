//! Table definitions from `datastore_create` parameters.

use crate::datastore::fields::{parse_column_type, table_definition, validate_column_id};
use crate::datastore::DatastoreError;
use serde_json::json;
use store::datastore::{ColumnType, Field, Table};

fn field(id: &str, column_type: ColumnType) -> Field {
    Field {
        id: id.to_owned(),
        column_type,
        info: None,
    }
}

#[test]
fn type_names_are_read_case_insensitively() {
    let cases = [
        ("TEXT", ColumnType::Text),
        ("int4", ColumnType::Int),
        ("BigInt", ColumnType::Int),
        ("integer", ColumnType::Int),
        ("Double  Precision", ColumnType::Numeric),
        ("float8", ColumnType::Numeric),
        ("real", ColumnType::Numeric),
        ("boolean", ColumnType::Bool),
        ("DATE", ColumnType::Date),
        ("timestamptz", ColumnType::Timestamp),
        ("jsonb", ColumnType::Json),
    ];
    for (name, expected) in cases {
        assert_eq!(parse_column_type(name), Some(expected), "{name}");
    }
    assert_eq!(parse_column_type("varchar"), None);
    assert_eq!(parse_column_type(""), None);
}

#[test]
fn column_ids_follow_the_rules() {
    assert!(validate_column_id("人口").is_ok());
    assert!(validate_column_id("a b,c").is_ok());
    assert!(validate_column_id("").is_err());
    assert!(validate_column_id("_id").is_err());
    assert!(validate_column_id("_private").is_err());
    assert!(validate_column_id("say \"hi\"").is_err());
    assert!(validate_column_id("tab\there").is_err());
    // 21 three-byte characters are 63 bytes; 22 are too many.
    assert!(validate_column_id(&"避".repeat(21)).is_ok());
    let long = validate_column_id(&"避".repeat(22)).unwrap_err();
    assert!(long.contains("66 bytes"), "{long}");
}

#[test]
fn fields_are_parsed_with_types_info_and_keys() {
    let params = json!({
        "resource_id": "r1",
        "fields": [
            {"id": "code", "type": "text", "info": {"label": "コード"}},
            {"id": "人口", "type": "INT"},
            {"id": "開設日", "type": "date"}
        ],
        "primary_key": "code",
        "indexes": ["人口, 開設日", "code"]
    });
    let table = table_definition("r1", &params, None).unwrap();
    assert_eq!(table.fields.len(), 3);
    assert_eq!(table.fields[0].info, Some(json!({"label": "コード"})));
    assert_eq!(table.fields[1], field("人口", ColumnType::Int));
    assert_eq!(table.primary_key, vec!["code"]);
    // A list item is one index over the columns it names, as in CKAN.
    assert_eq!(table.indexes, vec![vec!["人口", "開設日"], vec!["code"]]);
    let by_column = json!({"fields": [{"id": "a"}, {"id": "b"}], "indexes": "a, b"});
    let table = table_definition("r2", &by_column, None).unwrap();
    assert_eq!(table.indexes, vec![vec!["a"], vec!["b"]]);
    let nested = json!({"fields": [{"id": "a"}, {"id": "b"}], "indexes": [["b", "a"], "a", "a"]});
    let table = table_definition("r3", &nested, None).unwrap();
    assert_eq!(table.indexes, vec![vec!["b", "a"], vec!["a"]]);
}

#[test]
fn missing_types_are_inferred_from_the_first_non_null_values() {
    let params = json!({
        "fields": [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}, {"id": "e"}, {"id": "f"}, {"id": "g"}],
        "records": [
            {"a": null, "b": 1.5, "c": "2024-04-01", "d": "x"},
            {"a": 3, "e": true, "f": {"k": 1}, "g": "2024-04-01T09:00:00+09:00"}
        ]
    });
    let types: Vec<ColumnType> = table_definition("r", &params, None)
        .unwrap()
        .fields
        .iter()
        .map(|field| field.column_type)
        .collect();
    use ColumnType::*;
    assert_eq!(types, vec![Int, Numeric, Date, Text, Bool, Json, Timestamp]);
    let none = table_definition("r", &json!({"fields": [{"id": "x"}]}), None).unwrap();
    assert_eq!(none.fields[0].column_type, Text);
}

#[test]
fn without_fields_the_columns_come_from_the_records() {
    let params = json!({"records": [{"名称": "公民館", "定員": 120}, {"定員": 80, "備考": null}]});
    let table = table_definition("r", &params, None).unwrap();
    assert_eq!(
        table.fields,
        vec![
            field("名称", ColumnType::Text),
            field("定員", ColumnType::Int),
            field("備考", ColumnType::Text)
        ]
    );
}

#[test]
fn bad_fields_are_refused_with_their_position() {
    let cases = [
        (json!({"fields": [{"id": "a"}, {"id": "_b"}]}), "fields[1].id: column id \"_b\" must not start with _"),
        (json!({"fields": [{"id": "a"}, {"id": "a"}]}), "fields[1].id: column \"a\" is given more than once"),
        (json!({"fields": [{"type": "int"}]}), "fields[0].id: missing value"),
        (
            json!({"fields": [{"id": "a", "type": "money"}]}),
            "fields[0].type: unknown type \"money\"; use text, int, numeric, bool, date, timestamp or json",
        ),
        (json!({"fields": [{"id": "a", "info": "x"}]}), "fields[0].info: must be an object"),
        (json!({"fields": [{"id": "a"}], "primary_key": "b"}), "primary_key: unknown column \"b\""),
        (json!({"fields": [{"id": "a"}], "indexes": ["a", "_id"]}), "indexes: unknown column \"_id\""),
        (json!({"fields": [{"id": "a"}], "primary_key": "a,a"}), "primary_key: column \"a\" is named more than once"),
        (json!({"fields": {"id": "a"}}), "fields: must be a list of field objects"),
        (json!({"records": [{"_x": 1}]}), "records[0]._x: column id \"_x\" must not start with _"),
    ];
    for (params, message) in cases {
        let error = table_definition("r", &params, None).unwrap_err();
        assert_eq!(error.to_string(), message);
    }
    let error = table_definition(
        "r",
        &json!({"fields": [{"id": "a"}], "primary_key": "b"}),
        None,
    )
    .unwrap_err();
    assert_eq!(error.param(), "primary_key");
}

#[test]
fn an_existing_table_is_extended_and_keeps_its_keys() {
    let existing = Table {
        resource_id: "r".into(),
        fields: vec![field("code", ColumnType::Text), field("n", ColumnType::Int)],
        primary_key: vec!["code".into()],
        indexes: vec![vec!["n".into()]],
    };
    let params =
        json!({"fields": [{"id": "n", "info": {"label": "数"}}, {"id": "new", "type": "date"}]});
    let table = table_definition("r", &params, Some(&existing)).unwrap();
    assert_eq!(table.fields.len(), 3);
    assert_eq!(table.fields[1].column_type, ColumnType::Int);
    assert_eq!(table.fields[1].info, Some(json!({"label": "数"})));
    assert_eq!(table.fields[2], field("new", ColumnType::Date));
    assert_eq!(table.primary_key, vec!["code"]);
    assert_eq!(table.indexes, vec![vec!["n"]]);

    let retyped = json!({"fields": [{"id": "n", "type": "text"}]});
    let error = table_definition("r", &retyped, Some(&existing)).unwrap_err();
    assert!(matches!(error, DatastoreError::Invalid { .. }));
    assert_eq!(
        error.to_string(),
        "fields[0].type: column \"n\" already exists as int, not text"
    );
}
