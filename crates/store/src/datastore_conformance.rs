//! The behavioural suite every backend's [`DatastoreStore`] must pass: definitions
//! round-trip and grow, rows of every column type come back typed and in `_id`
//! order, writes are all or none, searches filter, sort, project and page alike,
//! names with quotes, spaces and Japanese work, and `run_sql` reads within its
//! limits and never writes, on SQLite and PostgreSQL alike. A backend runs it from a
//! test file of its own:
//!
//! ```text
//! async fn new_store() -> store::datastore_conformance::DatastoreTestStore { /* … */ }
//! store::datastore_conformance_suite!(new_store());
//! ```
//!
//! Every timestamp a case gives has whole microseconds, the precision both backends
//! keep.

use crate::datastore::{
    Cell, ColumnFilter, ColumnType, DatastoreStore, Field, RowPage, RowQuery, RowValues,
    SharedDatastoreStore, SqlAnswer, SqlLimits, SqlRefusal, Table, WriteMethod,
};
use crate::StoreError;
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::json;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// A store under test with whatever keeps its database alive (dropped last).
/// Dereferences to the [`DatastoreStore`].
pub struct DatastoreTestStore {
    // Field order matters: fields drop in declaration order.
    store: SharedDatastoreStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl DatastoreTestStore {
    pub fn new<S>(store: Arc<S>, keep_alive: impl Send + Sync + 'static) -> Self
    where
        S: DatastoreStore + 'static,
    {
        DatastoreTestStore {
            store,
            _keep_alive: Box::new(keep_alive),
        }
    }
}

impl Deref for DatastoreTestStore {
    type Target = dyn DatastoreStore;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

/// Expands to the datastore suite as `#[tokio::test]` functions, each getting a fresh
/// store from `$new_store` (an async expression yielding a [`DatastoreTestStore`]).
#[macro_export]
macro_rules! datastore_conformance_suite {
    ($new_store:expr) => {
        $crate::datastore_conformance_suite!(@cases $new_store;
            definitions_round_trip_and_drop,
            adding_fields_keeps_rows_and_types_cannot_change,
            primary_key_and_indexes_are_replaced,
            every_column_type_reads_back_typed_in_id_order,
            text_of_every_length_reads_back_and_filters,
            a_duplicate_key_writes_nothing_of_the_call,
            upsert_replaces_given_columns_and_adds_new_keys,
            update_of_a_missing_key_is_not_found_and_writes_nothing,
            matching_by_key_needs_a_primary_key,
            delete_rows_with_and_without_filters,
            filters_all_hold_and_match_any_listed_value,
            text_search_finds_any_text_column_ignoring_ascii_case,
            sorting_breaks_ties_by_id_and_puts_nulls_last,
            columns_are_projected_and_distinct_rows_kept_once,
            limit_offset_and_total_page_the_matches,
            pages_after_an_id_read_every_row_once,
            unknown_columns_and_tables_are_refused,
            names_with_quotes_spaces_and_japanese_work,
            run_sql_answers_a_select_with_columns_and_rows,
            run_sql_truncates_at_max_rows,
            run_sql_never_writes,
            run_sql_reports_invalid_queries,
            run_sql_stops_at_its_time_limit,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: $crate::datastore_conformance::DatastoreTestStore = $new_store.await;
                $crate::datastore_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

/// The shelters table (指定緊急避難場所) most cases use.
const SHELTERS: &str = "0f3e7a52-9c1b-4d6e-8a51-3b2f6c4d9e10";

fn field(id: &str, column_type: ColumnType) -> Field {
    Field {
        id: id.to_owned(),
        column_type,
        info: None,
    }
}

fn table(resource_id: &str, fields: Vec<Field>, primary_key: &[&str]) -> Table {
    Table {
        resource_id: resource_id.to_owned(),
        fields,
        primary_key: primary_key.iter().map(|c| (*c).to_owned()).collect(),
        indexes: Vec::new(),
    }
}

fn text(value: &str) -> Cell {
    Cell::Text(value.into())
}

fn row(cells: &[(&str, Cell)]) -> RowValues {
    cells
        .iter()
        .map(|(column, cell)| ((*column).to_owned(), cell.clone()))
        .collect()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_else(|| panic!("bad date {y}-{m}-{d}"))
}

fn timestamp(day: NaiveDate, h: u32, m: u32, s: u32, micro: u32) -> NaiveDateTime {
    day.and_hms_micro_opt(h, m, s, micro)
        .unwrap_or_else(|| panic!("bad time {h}:{m}:{s}.{micro}"))
}

/// Shelters of three municipalities: code (key), name, city, capacity, open.
fn shelter_table() -> Table {
    table(
        SHELTERS,
        vec![
            field("code", ColumnType::Text),
            field("name", ColumnType::Text),
            field("city", ColumnType::Text),
            field("capacity", ColumnType::Int),
            field("open", ColumnType::Bool),
        ],
        &["code"],
    )
}

fn shelter(code: &str, name: &str, city: &str, capacity: Option<i64>, open: bool) -> RowValues {
    row(&[
        ("code", text(code)),
        ("name", text(name)),
        ("city", text(city)),
        ("capacity", capacity.map_or(Cell::Null, Cell::Int)),
        ("open", Cell::Bool(open)),
    ])
}

/// The shelters table with six rows, `_id` 1 to 6 in this order.
async fn seeded(store: &DatastoreTestStore) {
    expect(store.create_table(&shelter_table()).await, "create_table");
    let rows = vec![
        shelter("A1", "Yaizu Gym", "焼津市", Some(300), true),
        shelter("A2", "Oigawa School", "焼津市", Some(120), false),
        shelter("B1", "Fujieda Hall", "藤枝市", Some(300), true),
        shelter("B2", "TOKYO Dome Annex", "藤枝市", None, true),
        shelter("C1", "市民会館", "島田市", Some(80), false),
        shelter("C2", "Shimada gym", "島田市", Some(120), true),
    ];
    assert_eq!(
        expect(
            store.write_rows(SHELTERS, WriteMethod::Insert, rows).await,
            "write_rows"
        ),
        6
    );
}

fn everything() -> RowQuery {
    RowQuery {
        limit: 1000,
        ..RowQuery::default()
    }
}

async fn search(store: &DatastoreTestStore, resource_id: &str, query: RowQuery) -> RowPage {
    expect(store.search_rows(resource_id, &query).await, "search_rows")
}

/// The values of one column of a page, as text (null as `-`).
fn column_of(page: &RowPage, column: &str) -> Vec<String> {
    let at = page
        .columns
        .iter()
        .position(|c| c == column)
        .unwrap_or_else(|| panic!("no column {column} in {:?}", page.columns));
    page.rows
        .iter()
        .map(|r| match &r[at] {
            Cell::Text(t) => t.to_string(),
            Cell::Int(n) => n.to_string(),
            Cell::Null => "-".to_owned(),
            other => format!("{other:?}"),
        })
        .collect()
}

async fn codes(store: &DatastoreTestStore, query: RowQuery) -> Vec<String> {
    column_of(&search(store, SHELTERS, query).await, "code")
}

fn filter(column: &str, any_of: Vec<Cell>) -> ColumnFilter {
    ColumnFilter {
        column: column.to_owned(),
        any_of,
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::NotFound(_))),
        "{what}: expected NotFound, got {result:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "{what}: expected Conflict, got {result:?}"
    );
}

const LIMITS: SqlLimits = SqlLimits {
    max_rows: 100,
    timeout: Duration::from_secs(30),
};

async fn sql(store: &DatastoreTestStore, query: &str, limits: SqlLimits) -> SqlAnswer {
    match expect(store.run_sql(query, limits).await, "run_sql") {
        Ok(answer) => answer,
        Err(refusal) => panic!("{query} was refused: {refusal}"),
    }
}

// ---------------------------------------------------------------------------------
// Definitions.

pub async fn definitions_round_trip_and_drop(store: &DatastoreTestStore) {
    assert!(expect(store.table_ids().await, "table_ids").is_empty());
    let mut shelters = shelter_table();
    shelters.fields[1].info = Some(json!({"label": "名称", "notes": "施設の正式名称"}));
    shelters.indexes = vec![strings(&["city", "capacity"]), strings(&["capacity"])];
    expect(store.create_table(&shelters).await, "create_table");
    let other = table(
        "00000000-aaaa-4000-8000-000000000001",
        vec![field("n", ColumnType::Int)],
        &[],
    );
    expect(store.create_table(&other).await, "create_table");
    assert_eq!(
        expect(store.table(SHELTERS).await, "table"),
        Some(shelters.clone())
    );
    assert_eq!(
        expect(store.table_ids().await, "table_ids"),
        strings(&[&other.resource_id, SHELTERS])
    );
    assert_eq!(expect(store.table("no-such-resource").await, "table"), None);
    assert!(expect(store.drop_table(SHELTERS).await, "drop_table"));
    assert!(!expect(store.drop_table(SHELTERS).await, "drop_table"));
    assert_eq!(expect(store.table(SHELTERS).await, "table"), None);
    assert_not_found(
        store.search_rows(SHELTERS, &everything()).await,
        "search of a dropped table",
    );
    assert_eq!(
        expect(store.table_ids().await, "table_ids"),
        vec![other.resource_id.clone()]
    );
    // The name is free again, for a table of another shape.
    let again = table(SHELTERS, vec![field("code", ColumnType::Int)], &[]);
    expect(store.create_table(&again).await, "create_table again");
    assert_eq!(expect(store.table(SHELTERS).await, "table"), Some(again));
    assert!(search(store, SHELTERS, everything()).await.rows.is_empty());
}

pub async fn adding_fields_keeps_rows_and_types_cannot_change(store: &DatastoreTestStore) {
    seeded(store).await;
    let mut grown = table(
        SHELTERS,
        vec![
            field("elevation", ColumnType::Numeric),
            Field {
                info: Some(json!({"label": "市町村"})),
                ..field("city", ColumnType::Text)
            },
        ],
        &["code"],
    );
    expect(
        store.create_table(&grown).await,
        "create_table with new fields",
    );
    let definition =
        expect(store.table(SHELTERS).await, "table").unwrap_or_else(|| panic!("the table is gone"));
    let ids: Vec<&str> = definition.fields.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["code", "name", "city", "capacity", "open", "elevation"]
    );
    assert_eq!(definition.fields[2].info, Some(json!({"label": "市町村"})));
    let page = search(store, SHELTERS, everything()).await;
    assert_eq!(page.rows.len(), 6);
    assert_eq!(column_of(&page, "elevation"), vec!["-"; 6]);
    assert_eq!(column_of(&page, "name")[0], "Yaizu Gym");
    expect(
        store
            .write_rows(
                SHELTERS,
                WriteMethod::Update,
                vec![row(&[
                    ("code", text("A1")),
                    ("elevation", Cell::Numeric(4.5)),
                ])],
            )
            .await,
        "update of the new column",
    );
    let page = search(store, SHELTERS, everything()).await;
    assert_eq!(page.rows[0][6], Cell::Numeric(4.5));
    // A field keeps its type.
    grown.fields = vec![field("capacity", ColumnType::Text)];
    assert_conflict(store.create_table(&grown).await, "type change");
    let after = expect(store.table(SHELTERS).await, "table");
    assert_eq!(after, Some(definition));
}

pub async fn primary_key_and_indexes_are_replaced(store: &DatastoreTestStore) {
    seeded(store).await;
    let mut changed = shelter_table();
    changed.primary_key = Vec::new();
    changed.indexes = vec![strings(&["name"])];
    expect(
        store.create_table(&changed).await,
        "create_table without key",
    );
    let definition = expect(store.table(SHELTERS).await, "table");
    assert_eq!(definition.as_ref().map(|t| t.primary_key.len()), Some(0));
    assert_eq!(
        definition.map(|t| t.indexes),
        Some(vec![strings(&["name"])])
    );
    // Without the key, a repeated code is a new row…
    expect(
        store
            .write_rows(
                SHELTERS,
                WriteMethod::Insert,
                vec![shelter("A1", "Yaizu Gym annex", "焼津市", Some(10), true)],
            )
            .await,
        "insert of a repeated code",
    );
    // …so the codes no longer identify rows, and a key on them is refused.
    assert_conflict(
        store.create_table(&shelter_table()).await,
        "a primary key over repeated values",
    );
    // Keyed by code and name the rows are unique again.
    changed.primary_key = strings(&["code", "name"]);
    expect(
        store.create_table(&changed).await,
        "create_table with a pair key",
    );
    assert_conflict(
        store
            .write_rows(
                SHELTERS,
                WriteMethod::Insert,
                vec![shelter("A1", "Yaizu Gym", "焼津市", Some(1), true)],
            )
            .await,
        "insert of a taken pair",
    );
    let missing_key_column = table(SHELTERS, Vec::new(), &["nowhere"]);
    assert_not_found(
        store.create_table(&missing_key_column).await,
        "a primary key naming no column",
    );
}

// ---------------------------------------------------------------------------------
// Writes.

pub async fn every_column_type_reads_back_typed_in_id_order(store: &DatastoreTestStore) {
    let all_types: Vec<Field> = ColumnType::ALL
        .into_iter()
        .map(|t| field(&format!("{}_value", t.ckan_name()), t))
        .collect();
    expect(
        store.create_table(&table(SHELTERS, all_types, &[])).await,
        "create_table",
    );
    let day = date(2024, 4, 1);
    let full = vec![
        text("避難所 ① ＡＢＣ"),
        Cell::Int(-9_007_199_254_740_993),
        Cell::Numeric(34.866_25),
        Cell::Bool(true),
        Cell::Date(day),
        Cell::Timestamp(timestamp(date(2024, 4, 1), 9, 30, 15, 123_456)),
        Cell::Json(Box::new(
            json!({"floors": [1, 2], "note": "津波", "ok": null}),
        )),
    ];
    let second = vec![
        text(""),
        Cell::Int(0),
        Cell::Numeric(-0.5),
        Cell::Bool(false),
        Cell::Date(date(1989, 1, 8)),
        Cell::Timestamp(timestamp(date(2000, 2, 29), 0, 0, 0, 0)),
        Cell::Json(Box::new(json!("text"))),
    ];
    let names: Vec<String> = ColumnType::ALL
        .iter()
        .map(|t| format!("{}_value", t.ckan_name()))
        .collect();
    let as_row =
        |cells: &[Cell]| -> RowValues { names.iter().cloned().zip(cells.to_vec()).collect() };
    let rows = vec![
        as_row(&full),
        as_row(&second),
        // A row giving nothing is all nulls.
        Vec::new(),
        // A JSON null is a value, not a missing one; an integer fits a numeric column.
        row(&[
            ("json_value", Cell::Json(Box::new(json!(null)))),
            ("numeric_value", Cell::Int(7)),
        ]),
    ];
    assert_eq!(
        expect(
            store.write_rows(SHELTERS, WriteMethod::Insert, rows).await,
            "write_rows"
        ),
        4
    );
    let page = search(store, SHELTERS, everything()).await;
    let mut expected_columns = vec!["_id".to_owned()];
    expected_columns.extend(names.iter().cloned());
    assert_eq!(page.columns, expected_columns);
    assert_eq!(page.rows.len(), 4);
    let ids: Vec<i64> = page
        .rows
        .iter()
        .map(|r| match r[0] {
            Cell::Int(id) => id,
            ref other => panic!("_id is {other:?}"),
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(page.rows[0][1..], full[..]);
    assert_eq!(page.rows[1][1..], second[..]);
    assert_eq!(page.rows[2][1..], vec![Cell::Null; 7][..]);
    let mut fourth = vec![Cell::Null; 7];
    fourth[2] = Cell::Numeric(7.0);
    fourth[6] = Cell::Json(Box::new(json!(null)));
    assert_eq!(page.rows[3][1..], fourth[..]);
    assert_eq!(page.total, None);
}

/// Text cells up to 24 bytes are kept inside the cell and longer ones on the heap:
/// texts of every length around that boundary, ASCII and Japanese (where the boundary
/// falls inside a character), are written, read back and found by a filter alike.
pub async fn text_of_every_length_reads_back_and_filters(store: &DatastoreTestStore) {
    expect(
        store
            .create_table(&table(SHELTERS, vec![field("name", ColumnType::Text)], &[]))
            .await,
        "create_table",
    );
    let mut texts: Vec<String> = (0..=40).map(|n| "a".repeat(n)).collect();
    texts.extend((1..=12).map(|n| "避".repeat(n)));
    texts.extend((1..=12).map(|n| format!("x{}", "難".repeat(n))));
    let rows = texts
        .iter()
        .map(|t| row(&[("name", text(t))]))
        .collect::<Vec<_>>();
    expect(
        store.write_rows(SHELTERS, WriteMethod::Insert, rows).await,
        "write_rows",
    );
    let read = column_of(&search(store, SHELTERS, everything()).await, "name");
    assert_eq!(read, texts);
    for wanted in [
        "a".repeat(24),
        "a".repeat(25),
        "避".repeat(8),
        "避".repeat(9),
    ] {
        let query = RowQuery {
            filters: vec![filter("name", vec![text(&wanted)])],
            ..everything()
        };
        let found = column_of(&search(store, SHELTERS, query).await, "name");
        assert_eq!(found, std::slice::from_ref(&wanted), "filter on {wanted:?}");
    }
}

pub async fn a_duplicate_key_writes_nothing_of_the_call(store: &DatastoreTestStore) {
    seeded(store).await;
    let before = search(store, SHELTERS, everything()).await;
    let clash = store
        .write_rows(
            SHELTERS,
            WriteMethod::Insert,
            vec![
                shelter("D1", "New Hall", "牧之原市", Some(50), true),
                shelter("A2", "Copy of Oigawa", "焼津市", Some(1), true),
            ],
        )
        .await;
    assert_conflict(clash, "insert of a taken key");
    let twice = store
        .write_rows(
            SHELTERS,
            WriteMethod::Insert,
            vec![
                shelter("E1", "Once", "牧之原市", Some(5), true),
                shelter("E1", "Twice", "牧之原市", Some(6), true),
            ],
        )
        .await;
    assert_conflict(twice, "insert of one key twice");
    let after = search(store, SHELTERS, everything()).await;
    assert_eq!(after, before, "a refused write left rows behind");
}

pub async fn upsert_replaces_given_columns_and_adds_new_keys(store: &DatastoreTestStore) {
    seeded(store).await;
    let written = expect(
        store
            .write_rows(
                SHELTERS,
                WriteMethod::Upsert,
                vec![
                    row(&[("code", text("B1")), ("capacity", Cell::Int(350))]),
                    row(&[("code", text("D1")), ("name", text("Makinohara Hall"))]),
                    row(&[("code", text("B1")), ("open", Cell::Bool(false))]),
                ],
            )
            .await,
        "upsert",
    );
    assert_eq!(written, 3);
    let page = search(
        store,
        SHELTERS,
        RowQuery {
            filters: vec![filter("code", vec![text("B1"), text("D1")])],
            ..everything()
        },
    )
    .await;
    assert_eq!(column_of(&page, "code"), ["B1", "D1"]);
    assert_eq!(
        page.rows[0][1..],
        [
            text("B1"),
            text("Fujieda Hall"),
            text("藤枝市"),
            Cell::Int(350),
            Cell::Bool(false)
        ]
    );
    assert_eq!(
        page.rows[1][1..],
        [
            text("D1"),
            text("Makinohara Hall"),
            Cell::Null,
            Cell::Null,
            Cell::Null
        ]
    );
    // The replaced row keeps its place (its `_id`).
    assert_eq!(page.rows[0][0], Cell::Int(3));
    assert_eq!(search(store, SHELTERS, everything()).await.rows.len(), 7);
}

pub async fn update_of_a_missing_key_is_not_found_and_writes_nothing(store: &DatastoreTestStore) {
    seeded(store).await;
    let before = search(store, SHELTERS, everything()).await;
    assert_not_found(
        store
            .write_rows(
                SHELTERS,
                WriteMethod::Update,
                vec![
                    row(&[("code", text("A1")), ("name", text("Renamed"))]),
                    row(&[("code", text("Z9")), ("name", text("Nowhere"))]),
                ],
            )
            .await,
        "update of a missing key",
    );
    assert_eq!(search(store, SHELTERS, everything()).await, before);
    expect(
        store
            .write_rows(
                SHELTERS,
                WriteMethod::Update,
                vec![row(&[("code", text("A1")), ("name", text("Renamed"))])],
            )
            .await,
        "update",
    );
    let page = search(store, SHELTERS, everything()).await;
    assert_eq!(column_of(&page, "name")[0], "Renamed");
    assert_eq!(column_of(&page, "capacity")[0], "300");
}

pub async fn matching_by_key_needs_a_primary_key(store: &DatastoreTestStore) {
    let keyless = table(SHELTERS, vec![field("name", ColumnType::Text)], &[]);
    expect(store.create_table(&keyless).await, "create_table");
    for method in [WriteMethod::Upsert, WriteMethod::Update] {
        assert_conflict(
            store
                .write_rows(SHELTERS, method, vec![row(&[("name", text("x"))])])
                .await,
            "upsert or update without a primary key",
        );
    }
    seeded_keyed_elsewhere(store).await;
}

/// On a keyed table, a row of an upsert must give its key.
async fn seeded_keyed_elsewhere(store: &DatastoreTestStore) {
    let keyed = Table {
        resource_id: "keyed".to_owned(),
        ..shelter_table()
    };
    expect(store.create_table(&keyed).await, "create_table");
    assert_conflict(
        store
            .write_rows(
                "keyed",
                WriteMethod::Upsert,
                vec![row(&[("name", text("no code"))])],
            )
            .await,
        "upsert of a row without its key",
    );
    assert!(search(store, "keyed", everything()).await.rows.is_empty());
    assert_not_found(
        store
            .write_rows("no-such-table", WriteMethod::Insert, vec![Vec::new()])
            .await,
        "insert into a missing table",
    );
}

pub async fn delete_rows_with_and_without_filters(store: &DatastoreTestStore) {
    seeded(store).await;
    let deleted = expect(
        store
            .delete_rows(
                SHELTERS,
                &[
                    filter("city", vec![text("焼津市"), text("島田市")]),
                    filter("open", vec![Cell::Bool(true)]),
                ],
            )
            .await,
        "delete_rows",
    );
    assert_eq!(deleted, 2);
    assert_eq!(codes(store, everything()).await, ["A2", "B1", "B2", "C1"]);
    let by_id = expect(
        store
            .delete_rows(SHELTERS, &[filter("_id", vec![Cell::Int(2)])])
            .await,
        "delete by _id",
    );
    assert_eq!(by_id, 1);
    assert_eq!(
        expect(store.delete_rows(SHELTERS, &[]).await, "delete all"),
        3
    );
    assert!(search(store, SHELTERS, everything()).await.rows.is_empty());
    assert!(expect(store.table(SHELTERS).await, "table").is_some());
    assert_not_found(
        store.delete_rows("no-such-table", &[]).await,
        "delete from a missing table",
    );
}

// ---------------------------------------------------------------------------------
// Searches.

pub async fn filters_all_hold_and_match_any_listed_value(store: &DatastoreTestStore) {
    seeded(store).await;
    let open_in_two_cities = RowQuery {
        filters: vec![
            filter("city", vec![text("焼津市"), text("藤枝市")]),
            filter("open", vec![Cell::Bool(true)]),
        ],
        ..everything()
    };
    assert_eq!(codes(store, open_in_two_cities).await, ["A1", "B1", "B2"]);
    let capacity_or_unknown = RowQuery {
        filters: vec![filter("capacity", vec![Cell::Int(120), Cell::Null])],
        ..everything()
    };
    assert_eq!(codes(store, capacity_or_unknown).await, ["A2", "B2", "C2"]);
    let by_id = RowQuery {
        filters: vec![filter("_id", vec![Cell::Int(5), Cell::Int(1)])],
        ..everything()
    };
    assert_eq!(codes(store, by_id).await, ["A1", "C1"]);
    let none_listed = RowQuery {
        filters: vec![filter("code", Vec::new())],
        ..everything()
    };
    assert!(codes(store, none_listed).await.is_empty());
}

pub async fn text_search_finds_any_text_column_ignoring_ascii_case(store: &DatastoreTestStore) {
    seeded(store).await;
    let find = |needle: &str| RowQuery {
        text: Some(needle.to_owned()),
        ..everything()
    };
    assert_eq!(codes(store, find("GYM")).await, ["A1", "C2"]);
    assert_eq!(codes(store, find("tokyo dome")).await, ["B2"]);
    assert_eq!(codes(store, find("市民")).await, ["C1"]);
    // The city column is searched too, and the code column.
    assert_eq!(codes(store, find("焼津")).await, ["A1", "A2"]);
    assert_eq!(codes(store, find("b2")).await, ["B2"]);
    // Numbers are not text; pattern characters are plain characters.
    assert!(codes(store, find("300")).await.is_empty());
    assert!(codes(store, find("%")).await.is_empty());
    assert!(codes(store, find("_")).await.is_empty());
    let combined = RowQuery {
        text: Some("hall".to_owned()),
        filters: vec![filter("open", vec![Cell::Bool(true)])],
        ..everything()
    };
    assert_eq!(codes(store, combined).await, ["B1"]);
}

pub async fn sorting_breaks_ties_by_id_and_puts_nulls_last(store: &DatastoreTestStore) {
    seeded(store).await;
    let sorted = |sort: &[(&str, bool)]| RowQuery {
        sort: sort.iter().map(|(c, d)| ((*c).to_owned(), *d)).collect(),
        ..everything()
    };
    assert_eq!(
        codes(store, sorted(&[("capacity", false)])).await,
        ["C1", "A2", "C2", "A1", "B1", "B2"]
    );
    assert_eq!(
        codes(store, sorted(&[("capacity", true)])).await,
        ["B2", "A1", "B1", "A2", "C2", "C1"]
    );
    // Text sorts by code point: 島 (U+5CF6) < 焼 (U+713C) < 藤 (U+85E4).
    assert_eq!(
        codes(store, sorted(&[("city", false), ("capacity", true)])).await,
        ["C2", "C1", "A1", "A2", "B2", "B1"]
    );
    assert_eq!(
        codes(store, sorted(&[("open", false), ("name", true)])).await,
        ["C1", "A2", "A1", "B2", "C2", "B1"]
    );
    assert_eq!(
        codes(store, sorted(&[("_id", true)])).await,
        ["C2", "C1", "B2", "B1", "A2", "A1"]
    );
}

pub async fn columns_are_projected_and_distinct_rows_kept_once(store: &DatastoreTestStore) {
    seeded(store).await;
    let projected = search(
        store,
        SHELTERS,
        RowQuery {
            columns: Some(strings(&["name", "_id"])),
            filters: vec![filter("code", vec![text("C1")])],
            ..everything()
        },
    )
    .await;
    assert_eq!(projected.columns, strings(&["name", "_id"]));
    assert_eq!(projected.rows, vec![vec![text("市民会館"), Cell::Int(5)]]);
    let cities = search(
        store,
        SHELTERS,
        RowQuery {
            columns: Some(strings(&["city"])),
            distinct: true,
            include_total: true,
            ..everything()
        },
    )
    .await;
    assert_eq!(column_of(&cities, "city"), ["焼津市", "藤枝市", "島田市"]);
    assert_eq!(cities.total, Some(3));
    let pairs = search(
        store,
        SHELTERS,
        RowQuery {
            columns: Some(strings(&["capacity", "open"])),
            distinct: true,
            include_total: true,
            limit: 3,
            ..everything()
        },
    )
    .await;
    assert_eq!(
        pairs.rows,
        vec![
            vec![Cell::Int(300), Cell::Bool(true)],
            vec![Cell::Int(120), Cell::Bool(false)],
            vec![Cell::Null, Cell::Bool(true)],
        ]
    );
    assert_eq!(pairs.total, Some(5));
    let sorted_cities = search(
        store,
        SHELTERS,
        RowQuery {
            columns: Some(strings(&["city"])),
            distinct: true,
            sort: vec![("city".to_owned(), true)],
            ..everything()
        },
    )
    .await;
    assert_eq!(
        column_of(&sorted_cities, "city"),
        ["藤枝市", "焼津市", "島田市"]
    );
    // Sorted by columns not returned, a group goes by its smallest values there:
    // 焼津市 and 島田市 both have a closed shelter, and their smallest names are
    // "Oigawa School" and "Shimada gym", the latter first in descending order.
    let by_smallest = search(
        store,
        SHELTERS,
        RowQuery {
            columns: Some(strings(&["city"])),
            distinct: true,
            sort: vec![("open".to_owned(), false), ("name".to_owned(), true)],
            ..everything()
        },
    )
    .await;
    assert_eq!(
        column_of(&by_smallest, "city"),
        ["島田市", "焼津市", "藤枝市"]
    );
}

pub async fn limit_offset_and_total_page_the_matches(store: &DatastoreTestStore) {
    seeded(store).await;
    let page = |limit: usize, offset: usize| RowQuery {
        sort: vec![("capacity".to_owned(), false)],
        limit,
        offset,
        include_total: true,
        ..RowQuery::default()
    };
    let second = search(store, SHELTERS, page(2, 1)).await;
    assert_eq!(column_of(&second, "code"), ["A2", "C2"]);
    assert_eq!(second.total, Some(6));
    let past_the_end = search(store, SHELTERS, page(10, 6)).await;
    assert!(past_the_end.rows.is_empty());
    assert_eq!(past_the_end.total, Some(6));
    let nothing = search(store, SHELTERS, page(0, 0)).await;
    assert!(nothing.rows.is_empty());
    assert_eq!(nothing.total, Some(6));
    let open = search(
        store,
        SHELTERS,
        RowQuery {
            filters: vec![filter("open", vec![Cell::Bool(true)])],
            text: Some("a".to_owned()),
            ..page(1, 0)
        },
    )
    .await;
    assert_eq!(column_of(&open, "code"), ["C2"]);
    assert_eq!(open.total, Some(4));
}

/// Keyset paging: reading page after page from the last `_id` seen gives every
/// matching row once, in `_id` order, with filters and totals applying as usual.
pub async fn pages_after_an_id_read_every_row_once(store: &DatastoreTestStore) {
    seeded(store).await;
    let every_id = search(store, SHELTERS, everything()).await;
    let all_ids: Vec<Cell> = every_id.rows.iter().map(|row| row[0].clone()).collect();
    assert_eq!(all_ids.len(), 6);
    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = search(
            store,
            SHELTERS,
            RowQuery {
                limit: 4,
                after_id: after,
                ..RowQuery::default()
            },
        )
        .await;
        read.extend(page.rows.iter().map(|row| row[0].clone()));
        if page.rows.len() < 4 {
            break;
        }
        after = Some(
            page.last_id()
                .unwrap_or_else(|| panic!("a full page has a last _id: {page:?}")),
        );
    }
    assert_eq!(read, all_ids);
    let Cell::Int(second) = all_ids[1] else {
        panic!("_id is not an integer: {:?}", all_ids[1]);
    };
    let open_after_second = search(
        store,
        SHELTERS,
        RowQuery {
            filters: vec![filter("open", vec![Cell::Bool(true)])],
            after_id: Some(second),
            include_total: true,
            limit: 100,
            ..RowQuery::default()
        },
    )
    .await;
    let every_open = search(
        store,
        SHELTERS,
        RowQuery {
            filters: vec![filter("open", vec![Cell::Bool(true)])],
            limit: 100,
            ..RowQuery::default()
        },
    )
    .await;
    let expected: Vec<&Vec<Cell>> = every_open
        .rows
        .iter()
        .filter(|row| matches!(row[0], Cell::Int(id) if id > second))
        .collect();
    assert!(
        !expected.is_empty(),
        "the fixture has open shelters after the second row"
    );
    assert_eq!(open_after_second.rows.iter().collect::<Vec<_>>(), expected);
    assert_eq!(open_after_second.total, Some(expected.len() as u64));
}

pub async fn unknown_columns_and_tables_are_refused(store: &DatastoreTestStore) {
    seeded(store).await;
    let before = search(store, SHELTERS, everything()).await;
    let attempts = [
        RowQuery {
            filters: vec![filter("nope", vec![text("x")])],
            ..everything()
        },
        RowQuery {
            sort: vec![("code\" DESC, \"name".to_owned(), false)],
            ..everything()
        },
        RowQuery {
            columns: Some(strings(&["code", "nope"])),
            ..everything()
        },
    ];
    for query in attempts {
        assert_not_found(store.search_rows(SHELTERS, &query).await, "unknown column");
    }
    for method in [WriteMethod::Insert, WriteMethod::Upsert] {
        assert_not_found(
            store
                .write_rows(
                    SHELTERS,
                    method,
                    vec![row(&[("code", text("Q1")), ("nope", text("x"))])],
                )
                .await,
            "write of an unknown column",
        );
    }
    assert_not_found(
        store
            .write_rows(
                SHELTERS,
                WriteMethod::Insert,
                vec![row(&[("_id", Cell::Int(99)), ("code", text("Q2"))])],
            )
            .await,
        "write of _id",
    );
    assert_not_found(
        store
            .delete_rows(SHELTERS, &[filter("nope", vec![text("x")])])
            .await,
        "delete by an unknown column",
    );
    assert_not_found(
        store.search_rows("no-such-table", &everything()).await,
        "search of a missing table",
    );
    assert_eq!(search(store, SHELTERS, everything()).await, before);
}

pub async fn names_with_quotes_spaces_and_japanese_work(store: &DatastoreTestStore) {
    const ODD: &str = "避難所 \"一覧\" v2";
    let odd = Table {
        resource_id: ODD.to_owned(),
        fields: vec![
            field("名称 \"A\"", ColumnType::Text),
            field("収容 人数", ColumnType::Int),
            field("it's", ColumnType::Text),
        ],
        primary_key: strings(&["名称 \"A\""]),
        indexes: vec![strings(&["収容 人数", "it's"]), strings(&["it's"])],
    };
    expect(store.create_table(&odd).await, "create_table");
    assert_eq!(expect(store.table(ODD).await, "table"), Some(odd.clone()));
    let rows = vec![
        row(&[
            ("名称 \"A\"", text("公民館")),
            ("収容 人数", Cell::Int(40)),
            ("it's", text("o'clock")),
        ]),
        row(&[
            ("名称 \"A\"", text("体育館")),
            ("収容 人数", Cell::Int(200)),
        ]),
    ];
    expect(
        store.write_rows(ODD, WriteMethod::Insert, rows).await,
        "write_rows",
    );
    expect(
        store
            .write_rows(
                ODD,
                WriteMethod::Upsert,
                vec![row(&[
                    ("名称 \"A\"", text("公民館")),
                    ("it's", text("x\"y")),
                ])],
            )
            .await,
        "upsert",
    );
    let page = search(
        store,
        ODD,
        RowQuery {
            filters: vec![filter("収容 人数", vec![Cell::Int(40), Cell::Int(200)])],
            sort: vec![("収容 人数".to_owned(), true)],
            columns: Some(strings(&["名称 \"A\"", "it's"])),
            text: Some("館".to_owned()),
            include_total: true,
            ..everything()
        },
    )
    .await;
    assert_eq!(
        page.rows,
        vec![
            vec![text("体育館"), Cell::Null],
            vec![text("公民館"), text("x\"y")],
        ]
    );
    assert_eq!(page.total, Some(2));
    let answer = sql(
        store,
        "SELECT \"名称 \"\"A\"\"\" AS name, \"収容 人数\" AS people \
         FROM \"避難所 \"\"一覧\"\" v2\" WHERE \"収容 人数\" > 100",
        LIMITS,
    )
    .await;
    assert_eq!(answer.columns, strings(&["name", "people"]));
    assert_eq!(answer.rows, vec![vec![text("体育館"), Cell::Int(200)]]);
    let grown = Table {
        fields: vec![field("備考 \"注\"", ColumnType::Json)],
        ..odd.clone()
    };
    expect(
        store.create_table(&grown).await,
        "create_table adding a column",
    );
    assert_eq!(
        expect(
            store
                .delete_rows(ODD, &[filter("it's", vec![text("x\"y")])])
                .await,
            "delete_rows"
        ),
        1
    );
    assert!(expect(store.drop_table(ODD).await, "drop_table"));
}

// ---------------------------------------------------------------------------------
// SQL.

fn shelters_sql(rest: &str) -> String {
    rest.replace("$T", &format!("\"{SHELTERS}\""))
}

pub async fn run_sql_answers_a_select_with_columns_and_rows(store: &DatastoreTestStore) {
    seeded(store).await;
    let answer = sql(
        store,
        &shelters_sql(
            "SELECT city, count(*) AS n, max(capacity) AS largest FROM $T \
             WHERE \"open\" = true GROUP BY city ORDER BY n DESC, largest DESC",
        ),
        LIMITS,
    )
    .await;
    assert_eq!(answer.columns, strings(&["city", "n", "largest"]));
    assert_eq!(
        answer.rows,
        vec![
            vec![text("藤枝市"), Cell::Int(2), Cell::Int(300)],
            vec![text("焼津市"), Cell::Int(1), Cell::Int(300)],
            vec![text("島田市"), Cell::Int(1), Cell::Int(120)],
        ]
    );
    assert!(!answer.truncated);
    let named = sql(
        store,
        &shelters_sql(
            "SELECT code, name, capacity FROM $T WHERE code IN ('C1', 'B2') ORDER BY code",
        ),
        LIMITS,
    )
    .await;
    assert_eq!(
        named.rows,
        vec![
            vec![text("B2"), text("TOKYO Dome Annex"), Cell::Null],
            vec![text("C1"), text("市民会館"), Cell::Int(80)],
        ]
    );
    // Whole sums stay integers, averages are numeric, and repeated names keep apart.
    let aggregates = sql(
        store,
        &shelters_sql(
            "SELECT sum(capacity) AS total, avg(capacity) AS mean, min(code) AS x, \
             max(code) AS x FROM $T WHERE code IN ('A1', 'A2')",
        ),
        LIMITS,
    )
    .await;
    assert_eq!(aggregates.columns, strings(&["total", "mean", "x", "x"]));
    assert_eq!(
        aggregates.rows,
        vec![vec![
            Cell::Int(420),
            Cell::Numeric(210.0),
            text("A1"),
            text("A2")
        ]]
    );
    // A trailing semicolon or comment is no second statement.
    for tail in [";", " ; ", "\n-- counted"] {
        let counted = sql(
            store,
            &shelters_sql(&format!("SELECT count(*) AS n FROM $T{tail}")),
            LIMITS,
        )
        .await;
        assert_eq!(counted.rows, vec![vec![Cell::Int(6)]], "{tail:?}");
    }
    let empty = sql(
        store,
        &shelters_sql("SELECT code, capacity FROM $T WHERE capacity > 1000"),
        LIMITS,
    )
    .await;
    assert_eq!(empty.columns, strings(&["code", "capacity"]));
    assert!(empty.rows.is_empty());
}

pub async fn run_sql_truncates_at_max_rows(store: &DatastoreTestStore) {
    seeded(store).await;
    let query = shelters_sql("SELECT code FROM $T ORDER BY code");
    let limited = |max_rows| SqlLimits { max_rows, ..LIMITS };
    let four = sql(store, &query, limited(4)).await;
    assert_eq!(
        four.rows,
        vec![
            vec![text("A1")],
            vec![text("A2")],
            vec![text("B1")],
            vec![text("B2")]
        ]
    );
    assert!(four.truncated);
    let six = sql(store, &query, limited(6)).await;
    assert_eq!(six.rows.len(), 6);
    assert!(!six.truncated);
    let none = sql(store, &query, limited(0)).await;
    assert!(none.rows.is_empty());
    assert!(none.truncated);
}

pub async fn run_sql_never_writes(store: &DatastoreTestStore) {
    seeded(store).await;
    let before = search(store, SHELTERS, everything()).await;
    let writes = [
        "INSERT INTO $T (code) VALUES ('X1')",
        "UPDATE $T SET name = 'overwritten'",
        "DELETE FROM $T",
        "DROP TABLE $T",
        "CREATE TABLE intruder (x integer)",
        "ALTER TABLE $T ADD COLUMN intruder integer",
        "SELECT 1; DELETE FROM $T",
        "WITH gone AS (DELETE FROM $T RETURNING code) SELECT code FROM gone",
        "SELECT code FROM $T; DROP TABLE $T",
    ];
    for write in writes {
        let query = shelters_sql(write);
        let outcome = store.run_sql(&query, LIMITS).await;
        assert!(
            !matches!(outcome, Ok(Ok(_))),
            "{query} was run: {outcome:?}"
        );
    }
    assert_eq!(search(store, SHELTERS, everything()).await, before);
    assert_eq!(
        expect(store.table_ids().await, "table_ids"),
        strings(&[SHELTERS])
    );
    assert!(!matches!(
        store.run_sql("SELECT x FROM intruder", LIMITS).await,
        Ok(Ok(_))
    ));
}

pub async fn run_sql_reports_invalid_queries(store: &DatastoreTestStore) {
    seeded(store).await;
    let invalid = [
        "SELEC code FROM $T".to_owned(),
        "SELECT * FROM \"no-such-table\"".to_owned(),
        "SELECT nope FROM $T".to_owned(),
        // The store's own tables are no datastore tables.
        "SELECT definition FROM datastore_tables".to_owned(),
    ];
    for query in invalid {
        let query = shelters_sql(&query);
        match expect(store.run_sql(&query, LIMITS).await, "run_sql") {
            Err(SqlRefusal::Invalid(message)) => assert!(!message.is_empty()),
            other => panic!("{query}: expected Invalid, got {other:?}"),
        }
    }
}

pub async fn run_sql_stops_at_its_time_limit(store: &DatastoreTestStore) {
    seeded(store).await;
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let limits = SqlLimits {
        max_rows: 10,
        timeout: Duration::from_millis(200),
    };
    match expect(store.run_sql(endless, limits).await, "run_sql") {
        Err(SqlRefusal::TimedOut(limit)) => assert_eq!(limit, limits.timeout),
        other => panic!("expected TimedOut, got {other:?}"),
    }
    // The connection it ran on serves the next query normally.
    for _ in 0..6 {
        let answer = sql(store, &shelters_sql("SELECT count(*) AS n FROM $T"), LIMITS).await;
        assert_eq!(answer.rows, vec![vec![Cell::Int(6)]]);
    }
    assert!(expect(
        store.drop_table(SHELTERS).await,
        "drop_table after a cancelled query"
    ));
}
