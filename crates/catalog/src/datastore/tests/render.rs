//! `datastore_search` results and dumps in CKAN's shapes.

use crate::datastore::cells::cell_to_json;
use crate::datastore::query::{parse_search, SearchLimits};
use crate::datastore::render::{search_result, DumpFormat, DumpWriter};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::json;
use store::datastore::{Cell, ColumnType, Field, RowPage, Table};

fn table() -> Table {
    Table {
        resource_id: "r1".into(),
        fields: vec![
            Field {
                id: "名称".into(),
                column_type: ColumnType::Text,
                info: Some(json!({"label": "名称"})),
            },
            Field {
                id: "定員".into(),
                column_type: ColumnType::Int,
                info: None,
            },
            Field {
                id: "面積".into(),
                column_type: ColumnType::Numeric,
                info: None,
            },
            Field {
                id: "開設".into(),
                column_type: ColumnType::Date,
                info: None,
            },
            Field {
                id: "更新".into(),
                column_type: ColumnType::Timestamp,
                info: None,
            },
        ],
        primary_key: vec![],
        indexes: vec![],
    }
}

fn stamp(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
}

fn page() -> RowPage {
    RowPage {
        columns: ["_id", "名称", "定員", "面積", "開設", "更新"]
            .map(String::from)
            .to_vec(),
        rows: vec![
            vec![
                Cell::Int(1),
                Cell::Text("公民館, 東".into()),
                Cell::Int(120),
                Cell::Numeric(1.5),
                Cell::Date(NaiveDate::from_ymd_opt(2024, 4, 1).unwrap()),
                Cell::Timestamp(stamp("2024-04-01T09:30:00.250")),
            ],
            vec![
                Cell::Int(2),
                Cell::Text("\"体育館\"".into()),
                Cell::Null,
                Cell::Numeric(f64::NAN),
                Cell::Null,
                Cell::Null,
            ],
        ],
        total: Some(42),
    }
}

#[test]
fn cells_render_as_ckan_json() {
    assert_eq!(cell_to_json(&Cell::Numeric(f64::INFINITY)), json!(null));
    assert_eq!(
        cell_to_json(&Cell::Timestamp(stamp("2024-04-01T09:30:00"))),
        json!("2024-04-01T09:30:00")
    );
    assert_eq!(
        cell_to_json(&Cell::Timestamp(stamp("2024-04-01T09:30:00.000001"))),
        json!("2024-04-01T09:30:00.000001")
    );
    assert_eq!(
        cell_to_json(&Cell::Json(Box::new(json!({"a": [1]})))),
        json!({"a": [1]})
    );
}

#[test]
fn search_results_have_ckans_shape() {
    let params =
        json!({"resource_id": "r1", "q": "館", "limit": 2, "offset": 4, "filters": {"定員": 120}});
    let request = parse_search(&table(), &params, SearchLimits::default()).unwrap();
    let result = search_result(&table(), &request, &page());
    assert_eq!(result["resource_id"], "r1");
    assert_eq!(
        result["fields"],
        json!([
            {"id": "_id", "type": "int"},
            {"id": "名称", "type": "text", "info": {"label": "名称"}},
            {"id": "定員", "type": "int"},
            {"id": "面積", "type": "numeric"},
            {"id": "開設", "type": "date"},
            {"id": "更新", "type": "timestamp"}
        ])
    );
    assert_eq!(
        result["records"][0],
        json!({"_id": 1, "名称": "公民館, 東", "定員": 120, "面積": 1.5, "開設": "2024-04-01", "更新": "2024-04-01T09:30:00.250000"})
    );
    let keys: Vec<&String> = result["records"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["_id", "名称", "定員", "面積", "開設", "更新"]);
    assert_eq!(result["records"][1]["面積"], json!(null));
    assert_eq!(
        (
            result["total"].clone(),
            result["limit"].clone(),
            result["offset"].clone()
        ),
        (json!(42), json!(2), json!(4))
    );
    assert_eq!(result["q"], "館");
    assert_eq!(result["filters"], json!({"定員": 120}));
    assert_eq!(
        result["_links"],
        json!({
            "start": "/api/3/action/datastore_search?resource_id=r1&q=%E9%A4%A8&limit=2&filters=%7B%22%E5%AE%9A%E5%93%A1%22%3A120%7D",
            "next": "/api/3/action/datastore_search?resource_id=r1&q=%E9%A4%A8&limit=2&filters=%7B%22%E5%AE%9A%E5%93%A1%22%3A120%7D&offset=6"
        })
    );
}

#[test]
fn lists_csv_and_tsv_records() {
    let render = |format: &str| {
        let params = json!({"resource_id": "r1", "records_format": format});
        let request = parse_search(&table(), &params, SearchLimits::default()).unwrap();
        search_result(&table(), &request, &page())
    };
    let lists = render("lists");
    assert_eq!(
        lists["records"][1],
        json!([2, "\"体育館\"", null, null, null, null])
    );
    assert_eq!(lists["records_format"], "lists");
    assert!(lists.get("offset").is_none());
    assert_eq!(
        render("csv")["records"],
        json!("1,\"公民館, 東\",120,1.5,2024-04-01,2024-04-01T09:30:00.250000\n2,\"\"\"体育館\"\"\",,,,\n")
    );
    assert_eq!(
        render("tsv")["records"],
        json!("1\t公民館, 東\t120\t1.5\t2024-04-01\t2024-04-01T09:30:00.250000\n2\t\"\"\"体育館\"\"\"\t\t\t\t\n")
    );
}

#[test]
fn dumps_stream_page_by_page() {
    let columns = page().columns;
    let rows = page().rows;
    let mut csv = DumpWriter::start(
        Vec::new(),
        DumpFormat::Csv { bom: true },
        &table(),
        &columns,
    )
    .unwrap();
    csv.write_rows(&rows[..1]).unwrap();
    csv.write_rows(&rows[1..]).unwrap();
    assert_eq!(csv.rows_written(), 2);
    let text = String::from_utf8(csv.finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "\u{feff}_id,名称,定員,面積,開設,更新\n1,\"公民館, 東\",120,1.5,2024-04-01,2024-04-01T09:30:00.250000\n2,\"\"\"体育館\"\"\",,,,\n"
    );

    let plain = DumpWriter::start(
        Vec::new(),
        DumpFormat::Csv { bom: false },
        &table(),
        &columns,
    )
    .unwrap();
    assert!(plain.finish().unwrap().starts_with(b"_id,"));

    let mut json_dump =
        DumpWriter::start(Vec::new(), DumpFormat::Json, &table(), &columns[..3]).unwrap();
    json_dump
        .write_rows(&[vec![Cell::Int(1), Cell::Text("a".into()), Cell::Int(3)]])
        .unwrap();
    json_dump
        .write_rows(&[vec![Cell::Int(2), Cell::Null, Cell::Null]])
        .unwrap();
    let written: serde_json::Value = serde_json::from_slice(&json_dump.finish().unwrap()).unwrap();
    assert_eq!(
        written,
        json!({
            "fields": [{"id": "_id", "type": "int"}, {"id": "名称", "type": "text", "info": {"label": "名称"}}, {"id": "定員", "type": "int"}],
            "records": [[1, "a", 3], [2, null, null]]
        })
    );
    let empty = DumpWriter::start(Vec::new(), DumpFormat::Json, &table(), &columns).unwrap();
    let empty: serde_json::Value = serde_json::from_slice(&empty.finish().unwrap()).unwrap();
    assert_eq!(empty["records"], json!([]));

    let mut tsv = DumpWriter::start(Vec::new(), DumpFormat::Tsv, &table(), &columns[..2]).unwrap();
    assert!(tsv.write_rows(&[vec![Cell::Int(1)]]).is_err());
    tsv.write_rows(&[vec![Cell::Int(1), Cell::Text("a\tb".into())]])
        .unwrap();
    assert_eq!(
        String::from_utf8(tsv.finish().unwrap()).unwrap(),
        "_id\t名称\n1\t\"a\tb\"\n"
    );
}

#[test]
fn a_dump_can_be_handed_over_page_by_page_from_one_buffer() {
    let columns = page().columns;
    let rows = page().rows;
    let mut dump = DumpWriter::start(Vec::new(), DumpFormat::Json, &table(), &columns).unwrap();
    let mut sent: Vec<u8> = std::mem::take(dump.get_mut());
    for row in &rows {
        dump.write_rows(std::slice::from_ref(row)).unwrap();
        sent.append(dump.get_mut());
    }
    sent.extend(dump.finish().unwrap());
    let whole: serde_json::Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(whole["records"].as_array().map(Vec::len), Some(2));
    assert_eq!(whole["records"][0][1], json!("公民館, 東"));
}
