//! `datastore_search` parameters turned into the store's row query.

use crate::datastore::query::{
    parse_filters, parse_search, parse_sort, RecordsFormat, SearchLimits,
};
use serde_json::json;
use store::datastore::{Cell, ColumnFilter, ColumnType, Field, Table};

pub(super) fn table() -> Table {
    let field = |id: &str, column_type| Field {
        id: id.to_owned(),
        column_type,
        info: None,
    };
    Table {
        resource_id: "r".into(),
        fields: vec![
            field("種別", ColumnType::Text),
            field("定員", ColumnType::Int),
            field("col name", ColumnType::Text),
            field("tags", ColumnType::Json),
        ],
        primary_key: vec![],
        indexes: vec![],
    }
}

#[test]
fn defaults_follow_ckan() {
    let request = parse_search(
        &table(),
        &json!({"resource_id": "r"}),
        SearchLimits::default(),
    )
    .unwrap();
    assert_eq!(request.query.limit, 100);
    assert_eq!(request.query.offset, 0);
    assert!(request.query.include_total);
    assert!(!request.query.distinct);
    assert_eq!(request.query.columns, None);
    assert_eq!(request.query.text, None);
    assert_eq!(request.records_format, RecordsFormat::Objects);
}

#[test]
fn every_parameter_is_read_strings_included() {
    let params = json!({
        "resource_id": "r",
        "filters": {"種別": "避難所", "定員": ["10", 20]},
        "q": "公民館",
        "sort": "\"col name\" desc, 定員",
        "fields": "種別, 定員,_id",
        "limit": "50",
        "offset": 100,
        "distinct": "true",
        "include_total": false,
        "records_format": "csv"
    });
    let request = parse_search(&table(), &params, SearchLimits::default()).unwrap();
    let query = &request.query;
    assert_eq!(
        query.filters,
        vec![
            ColumnFilter {
                column: "種別".into(),
                any_of: vec![Cell::Text("避難所".into())]
            },
            ColumnFilter {
                column: "定員".into(),
                any_of: vec![Cell::Int(10), Cell::Int(20)]
            },
        ]
    );
    assert_eq!(query.text.as_deref(), Some("公民館"));
    assert_eq!(
        query.sort,
        vec![("col name".to_owned(), true), ("定員".to_owned(), false)]
    );
    assert_eq!(
        query.columns,
        Some(vec!["種別".to_owned(), "定員".to_owned(), "_id".to_owned()])
    );
    assert_eq!((query.limit, query.offset), (50, 100));
    assert!(query.distinct);
    assert!(!query.include_total);
    assert_eq!(request.records_format, RecordsFormat::Csv);
}

#[test]
fn the_limit_is_capped_at_the_maximum() {
    let limits = SearchLimits {
        default_limit: 10,
        max_limit: 500,
    };
    let capped = parse_search(&table(), &json!({"limit": 100000}), limits).unwrap();
    assert_eq!(capped.query.limit, 500);
    assert_eq!(
        parse_search(&table(), &json!({}), limits)
            .unwrap()
            .query
            .limit,
        10
    );
    assert_eq!(
        parse_search(&table(), &json!({"limit": 0}), limits)
            .unwrap()
            .query
            .limit,
        0
    );
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let cases = [
        (json!({"filters": {"無い": 1}}), "filters.無い: unknown column \"無い\""),
        (json!({"filters": {"定員": "多い"}}), "filters.定員: \"多い\" is not an int"),
        (json!({"filters": {"定員": [1, "x"]}}), "filters.定員[1]: \"x\" is not an int"),
        (json!({"filters": {"定員": []}}), "filters.定員: an empty list of values matches nothing"),
        (json!({"filters": [1]}), "filters: must be an object of column: value"),
        (json!({"sort": "定員 up"}), "sort: \"up\" is not asc or desc (in \"定員 up\")"),
        (json!({"sort": "missing"}), "sort: unknown column \"missing\""),
        (json!({"sort": "\"col name"}), "sort: unclosed quote in \"\\\"col name\""),
        (json!({"fields": "種別,nope"}), "fields: unknown column \"nope\""),
        (json!({"fields": ["種別", "種別"]}), "fields: column \"種別\" is named more than once"),
        (json!({"limit": -1}), "limit: -1 is not a non-negative integer"),
        (json!({"offset": "ten"}), "offset: \"ten\" is not a non-negative integer"),
        (json!({"include_total": "maybe"}), "include_total: \"maybe\" is not a bool (true or false)"),
        (json!({"records_format": "xml"}), "records_format: \"xml\" is not one of objects, lists, csv, tsv"),
        (
            json!({"q": {"種別": "避難所"}}),
            "q: searching single columns with a dict is not supported; give q as a string, or use filters",
        ),
    ];
    for (params, message) in cases {
        let error = parse_search(&table(), &params, SearchLimits::default()).unwrap_err();
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn filters_may_come_as_json_text_and_name_id() {
    let filters = parse_filters(
        &table(),
        &json!(r#"{"_id": [1, 2], "tags": ["a"]}"#),
        "filters",
    )
    .unwrap();
    assert_eq!(
        filters[0],
        ColumnFilter {
            column: "_id".into(),
            any_of: vec![Cell::Int(1), Cell::Int(2)]
        }
    );
    // For a json column a list is one value, not a choice of values.
    assert_eq!(filters[1].any_of, vec![Cell::Json(Box::new(json!(["a"])))]);
    let error = parse_filters(&table(), &json!("{nope"), "filters").unwrap_err();
    assert!(
        error.to_string().starts_with("filters: is not valid JSON"),
        "{error}"
    );
}

#[test]
fn sort_reads_quotes_lists_and_id() {
    let sort = parse_sort(&table(), &json!(["_id DESC", "\"col name\"", "定員 Asc"])).unwrap();
    assert_eq!(
        sort,
        vec![
            ("_id".to_owned(), true),
            ("col name".to_owned(), false),
            ("定員".to_owned(), false)
        ]
    );
    assert!(parse_sort(&table(), &json!("定員,,")).is_err());
    assert_eq!(parse_sort(&table(), &json!("  ")).unwrap(), vec![]);
}

mod never_panics {
    use super::table;
    use crate::datastore::cells::parse_timestamp;
    use crate::datastore::query::{parse_search, parse_sort, SearchLimits};
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn sort_and_timestamp_parsers_take_any_text(text in "\\PC{0,40}") {
            let _ = parse_sort(&table(), &json!(text));
            let _ = parse_timestamp(&text);
            let _ = parse_search(&table(), &json!({"fields": text.clone(), "filters": text.clone()}), SearchLimits::default());
        }
    }
}
