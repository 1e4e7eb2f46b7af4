//! The streaming ingest against real and generated files: the seven Yaizu
//! files must give exactly what the in-memory validator gives (schema,
//! every issue, every value), Shift_JIS decodes, Excel workbooks with title
//! rows load through the same checks, unusable files are rejected with a
//! reason, arbitrary bytes never panic, and a large file arrives in
//! bounded batches.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use catalog::ingest::{ingest, Format, IngestError, IngestReport, Options, Plan, Rows, Sink};
use catalog::validate::{self, RejectKind, Rejected, Severity};
use chrono::NaiveDate;
use jp::encoding::Encoding;
use store::datastore::{Cell, ColumnType};

/// A file in a directory of its own, removed when dropped.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "catalog-ingest-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        TempFile { dir, path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Keeps everything it is sent, and the size of every batch.
#[derive(Default)]
struct Collect {
    plan: Option<Plan>,
    rows: Vec<Vec<Cell>>,
    batches: Vec<usize>,
    /// Only count rows, for large files.
    count_only: bool,
    counted: usize,
}

impl Sink for Collect {
    type Error = String;

    fn plan(&mut self, plan: &Plan) -> Result<(), String> {
        if self.plan.is_some() {
            return Err("plan sent twice".into());
        }
        self.plan = Some(plan.clone());
        Ok(())
    }

    fn batch(&mut self, rows: &mut Rows) -> Result<(), String> {
        let Some(plan) = &self.plan else {
            return Err("batch before plan".into());
        };
        if rows.width() != plan.fields.len() {
            return Err("a batch of the wrong width".into());
        }
        self.batches.push(rows.len());
        self.counted += rows.len();
        if !self.count_only {
            let before = self.rows.len();
            self.rows.extend(rows.drain());
            if self.rows.len() - before != self.batches[self.batches.len() - 1] {
                return Err("a batch gave more or fewer rows than it has".into());
            }
            if self.rows[before..]
                .iter()
                .any(|r| r.len() != plan.fields.len())
            {
                return Err("a row of the wrong width".into());
            }
        }
        Ok(())
    }
}

fn run(path: &Path, format: Format, options: &Options) -> (IngestReport, Collect) {
    let mut sink = Collect::default();
    match ingest(path, format, options, &mut sink) {
        Ok(report) => (report, sink),
        Err(e) => panic!("{path:?}: {e}"),
    }
}

fn rejected(path: &Path, format: Format, options: &Options) -> Rejected {
    let (r, planned) = rejected_as_it_loads(path, format, options);
    assert!(!planned, "rejected after the plan was sent");
    r
}

/// The rejection, and whether the sink had been sent the plan (rows may
/// have followed; the caller then discards what it wrote).
fn rejected_as_it_loads(path: &Path, format: Format, options: &Options) -> (Rejected, bool) {
    let mut sink = Collect::default();
    match ingest(path, format, options, &mut sink) {
        Err(IngestError::Rejected(r)) => {
            assert!(
                !r.message_ja.is_empty()
                    && !r.message_en.is_empty()
                    && r.message_ja != r.message_en,
                "{r:?}"
            );
            (r, sink.plan.is_some())
        }
        Err(e) => panic!("{path:?}: not a rejection: {e}"),
        Ok(report) => panic!("{path:?}: accepted: {}", report.message_en),
    }
}

fn yaizu(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/yaizu")
        .join(file)
}

const YAIZU: [&str; 7] = [
    "222127_aed.csv",
    "222127_evacuation_space.csv",
    "222127_fire_hydrant.csv",
    "222127_hinannjo.csv",
    "222127_preschool.csv",
    "222127_public_toilet.csv",
    "222127_public_wireless_lan.csv",
];

/// What `validate`'s normalised text should become in a typed column.
fn expected_cell(ty: ColumnType, value: &str) -> Cell {
    if value.is_empty() {
        return Cell::Null;
    }
    match ty {
        ColumnType::Int => value.parse().map_or(Cell::Null, Cell::Int),
        ColumnType::Numeric => value.parse().map_or(Cell::Null, Cell::Numeric),
        ColumnType::Date => {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_or(Cell::Null, Cell::Date)
        }
        _ => Cell::Text(value.into()),
    }
}

#[test]
fn yaizu_files_load_exactly_as_validate_reads_them() {
    for file in YAIZU {
        let path = yaizu(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let validated = validate::validate(&bytes, &validate::Options::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let options = Options {
            batch_size: 17,
            ..Options::default()
        };
        let (report, sink) = run(&path, Format::Csv, &options);
        let plan = sink
            .plan
            .as_ref()
            .unwrap_or_else(|| panic!("{file}: no plan"));

        assert_eq!(
            report.schema.as_ref().map(|s| s.id),
            validated.schema.map(|s| s.id),
            "{file}"
        );
        assert_eq!(plan.schema.map(|s| s.id), validated.schema.map(|s| s.id));
        assert_eq!(report.encoding.as_deref(), Some("UTF-8"), "{file}");
        assert_eq!(plan.encoding, Some(Encoding::Utf8));
        assert_eq!(plan.header, validated.header, "{file}");
        assert_eq!(report.header_row, 1);

        // The same issues, one for one, in the same order.
        assert!(!report.issues_capped, "{file}");
        assert_eq!(report.issues, validated.report.issues, "{file}");
        assert_eq!(report.issue_count(), validated.report.issues.len() as u64);
        assert_eq!(report.errors, validated.report.errors().count() as u64);
        assert_eq!(report.warnings, validated.report.warnings().count() as u64);
        for issue in &validated.report.issues {
            let same = validated.report.with_code(issue.code).count() as u64;
            assert_eq!(report.count(issue.code), same, "{file} {}", issue.code);
        }
        for column in &report.by_column {
            let same = validated
                .report
                .issues
                .iter()
                .filter(|i| i.column == Some(column.column))
                .count() as u64;
            assert_eq!(column.errors + column.warnings, same, "{file} {column:?}");
        }

        // Every row, every value, typed by the plan.
        assert_eq!(report.rows, validated.rows.len() as u64, "{file}");
        assert_eq!(sink.rows.len(), validated.rows.len(), "{file}");
        assert!(sink.batches.iter().all(|&b| b <= 17), "{file}");
        for (row, (got, want)) in sink.rows.iter().zip(&validated.rows).enumerate() {
            for (i, field) in plan.fields.iter().enumerate() {
                let expected = expected_cell(field.column_type, &want[i]);
                assert_eq!(
                    got[i],
                    expected,
                    "{file} row {} column {}",
                    row + 2,
                    field.id
                );
            }
        }
    }
}

/// Quoting and line ends of every kind, over many chunks and two threads:
/// the rows, values, issues and lines are those `validate` (which reads
/// with the `csv` crate) gives, in UTF-8 and in Shift_JIS.
#[test]
fn awkward_quoting_and_line_ends_load_as_validate_reads_them() {
    let mut text = String::from("名称,備考,番号\r\n");
    for i in 0..40_000 {
        let row = match i % 9 {
            0 => format!("\"避難所{i}\",\"夜間は\"\"施錠\"\"\",{i}\r\n"),
            1 => format!("公民館{i},\"一行目\r\n二行目\",{i}\r\n"),
            2 => format!("\r\n\r\n\"ｺｳｴﾝ{i}\"の東,,{i}\n"),
            3 => format!("集会所{i},a\"b\"c,{i},余分\r"),
            4 => format!("\"{i}\"\r\n"),
            5 => format!("学校{i},\"開いた,まま\",\r\n"),
            6 => format!("センター{i},２階,\"\"\r\n"),
            7 => ",,\n".to_string(),
            _ => format!("体育館{i},\"津波避難ビル,屋上\",{i}\r\n"),
        };
        text.push_str(&row);
    }
    let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!lossy);
    for (name, bytes) in [("utf-8.csv", text.as_bytes()), ("sjis.csv", &sjis[..])] {
        assert!(bytes.len() > 3 * 256 * 1024, "{name}: several chunks");
        let validated = validate::validate(bytes, &validate::Options::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let file = TempFile::new(name, bytes);
        let options = Options {
            threads: 2,
            max_issue_details: 1_000_000,
            ..Options::default()
        };
        let (report, sink) = run(&file.path, Format::Csv, &options);
        assert!(!report.issues_capped, "{name}");
        assert_eq!(report.issues.len(), validated.report.issues.len(), "{name}");
        for (got, want) in report.issues.iter().zip(&validated.report.issues) {
            // A row too wide is worded for what each keeps of it.
            if got.code != "column-count" {
                assert_eq!(got, want, "{name}");
            }
            let at = |i: &validate::Issue| (i.row, i.line, i.column, i.severity, i.code);
            assert_eq!(at(got), at(want), "{name}");
        }
        assert_eq!(sink.rows.len(), validated.rows.len(), "{name}");
        for (row, (got, want)) in sink.rows.iter().zip(&validated.rows).enumerate() {
            let want: Vec<Cell> = want
                .iter()
                .take(3)
                .map(|v| expected_cell(ColumnType::Text, v))
                .chain(std::iter::repeat(Cell::Null))
                .take(3)
                .collect();
            assert_eq!(got, &want, "{name} row {}", row + 2);
        }
    }
}

#[test]
fn a_standard_dataset_is_typed_by_its_definition() {
    let (report, sink) = run(
        &yaizu("222127_preschool.csv"),
        Format::Csv,
        &Options::default(),
    );
    assert_eq!(
        report.schema.as_ref().map(|s| s.id),
        Some("v1-13-childcare-facilities")
    );
    let Some(plan) = sink.plan else {
        panic!("no plan")
    };
    let ty = |id: &str| {
        plan.fields
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.column_type)
            .unwrap_or_else(|| panic!("no field {id}"))
    };
    assert_eq!(ty("収容定員"), ColumnType::Int);
    assert_eq!(ty("認可等年月日"), ColumnType::Date);
    assert_eq!(ty("緯度"), ColumnType::Numeric);
    assert_eq!(ty("経度"), ColumnType::Numeric);
    // Codes and numbers with leading zeros stay text.
    assert_eq!(ty("都道府県コード又は市区町村コード"), ColumnType::Text);
    assert_eq!(ty("電話番号"), ColumnType::Text);
    assert_eq!(ty("NO"), ColumnType::Text);
    assert_eq!(ty("開始時間"), ColumnType::Text);
    // The misspelt header (都道府県コ―ド) is named as the definition spells
    // it, and the original kept in the field's info.
    let info = plan.fields[0].info.clone().unwrap_or_default();
    assert_eq!(info["original_header"], "都道府県コ―ド又は市区町村コ―ド");
    assert_eq!(info["standard_column"], "都道府県コード又は市区町村コード");
    assert_eq!(info["standard_schema"], "v1-13-childcare-facilities");

    // An unknown layout is all text.
    let (report, sink) = run(
        &yaizu("222127_hinannjo.csv"),
        Format::Csv,
        &Options::default(),
    );
    assert!(report.schema.is_none());
    let Some(plan) = sink.plan else {
        panic!("no plan")
    };
    assert!(plan
        .fields
        .iter()
        .all(|f| f.column_type == ColumnType::Text));
}

#[test]
fn the_report_serialises_with_both_languages() {
    let (report, _) = run(&yaizu("222127_aed.csv"), Format::Csv, &Options::default());
    let json = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(json["format"], "csv");
    assert_eq!(json["schema"]["id"], "v1-01-aed");
    assert_eq!(json["rows"], report.rows);
    assert_eq!(json["by_code"]["phone"]["warnings"], 82);
    assert!(json["message_ja"]
        .as_str()
        .is_some_and(|m| m.contains("行を読み込みました")));
    assert!(json["message_en"]
        .as_str()
        .is_some_and(|m| m.contains("rows loaded")));
    let first = &json["issues"][0];
    assert!(first["message_ja"].is_string() && first["message_en"].is_string());
    assert_eq!(first["severity"], "warning");
}

#[test]
fn issue_details_are_capped_but_counts_are_not() {
    let options = Options {
        max_issue_details: 10,
        ..Options::default()
    };
    let (report, _) = run(&yaizu("222127_aed.csv"), Format::Csv, &options);
    assert_eq!(report.issues.len(), 10);
    assert!(report.issues_capped);
    assert_eq!(report.issue_count(), 82 + 59 + 4 + 2);
    assert_eq!(report.count("phone"), 82);
    assert_eq!(report.count("text"), 63);
    let phones = report
        .by_column
        .iter()
        .find(|c| c.name == "電話番号")
        .map(|c| (c.column, c.warnings, c.by_code.get("phone").copied()));
    assert_eq!(phones, Some((12, 82, Some(82))));
    assert!(report.message_ja.contains("最初の 10 件"));
    assert!(report.message_en.contains("first 10"));
}

const AED_HEADER: &str = "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,住所,方書,緯度,経度,設置位置,電話番号,内線番号,法人番号,団体名,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,小児対応設備の有無,URL,備考";
const AED_ROW: &str = "222127,0000000001,静岡県,焼津市,市役所本館,シヤクショホンカン,静岡県焼津市本町2-16-32,,34.866918,138.323171,２階正面入口,(054)626-1139,,,管財課,,,,,有,,";

#[test]
fn shift_jis_decodes_as_it_streams() {
    let text = format!("{AED_HEADER}\r\n{AED_ROW}\r\n");
    let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!lossy);
    let file = TempFile::new("aed.csv", &sjis);
    let (report, sink) = run(&file.path, Format::Csv, &Options::default());
    assert_eq!(report.encoding.as_deref(), Some("Shift_JIS"));
    assert_eq!(
        sink.plan.as_ref().and_then(|p| p.encoding),
        Some(Encoding::ShiftJis)
    );
    assert_eq!(report.schema.as_ref().map(|s| s.id), Some("v1-01-aed"));
    assert_eq!(sink.rows.len(), 1);
    let row = &sink.rows[0];
    assert_eq!(row[4], Cell::Text("市役所本館".into()));
    assert_eq!(row[8], Cell::Numeric(34.866918));
    assert_eq!(row[10], Cell::Text("2階正面入口".into()));
    assert_eq!(row[11], Cell::Text("054-626-1139".into()));
    assert_eq!(row[7], Cell::Null);

    // And with a BOM, the same.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(text.as_bytes());
    let file = TempFile::new("aed-bom.csv", &bom);
    let (report, bom_sink) = run(&file.path, Format::Csv, &Options::default());
    assert_eq!(report.encoding.as_deref(), Some("UTF-8 (BOM)"));
    assert_eq!(bom_sink.rows, sink.rows);
    assert_eq!(bom_sink.plan.map(|p| p.header), sink.plan.map(|p| p.header));
}

#[test]
fn a_large_shift_jis_file_decodes_across_chunk_boundaries() {
    // Rows of two-byte characters, long enough that some character is cut
    // by every read of the decoder.
    let mut text = String::from("名称,備考\n");
    for i in 0..20_000 {
        text.push_str(&format!("施設{i},漢字かなカナ混じりの備考欄です{i}\n"));
    }
    let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!lossy);
    let file = TempFile::new("large-sjis.csv", &sjis);
    let (report, sink) = run(&file.path, Format::Csv, &Options::default());
    assert_eq!(report.rows, 20_000);
    assert_eq!(sink.rows[19_999][0], Cell::Text("施設19999".into()));
    assert_eq!(
        sink.rows[12_345][1],
        Cell::Text("漢字かなカナ混じりの備考欄です12345".into())
    );
}

#[test]
fn tsv_and_format_detection() {
    let file = TempFile::new("a.tsv", "名称\t緯度\n灯台\t34.8\n".as_bytes());
    let (report, sink) = run(&file.path, Format::Tsv, &Options::default());
    assert_eq!(report.rows, 1);
    assert_eq!(sink.rows[0][0], Cell::Text("灯台".into()));
    let detect = |declared| Format::detect(&file.path, declared).ok();
    assert_eq!(detect(Some("TSV")), Some(Format::Tsv));
    assert_eq!(detect(Some("CSV")), Some(Format::Csv));
    assert_eq!(detect(None), Some(Format::Csv));
    // Text declared as a workbook is read as text.
    assert_eq!(detect(Some("XLSX")), Some(Format::Csv));
    let xls = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/excel/childcare_title_rows.xls");
    assert_eq!(Format::detect(&xls, Some("CSV")).ok(), Some(Format::Xls));
    assert_eq!(Format::from_name("text/csv"), Some(Format::Csv));
    assert_eq!(Format::from_name(".xlsx"), Some(Format::Xlsx));
    assert_eq!(Format::from_magic(b"PK\x03\x04rest"), Some(Format::Xlsx));
}

#[test]
fn rows_of_the_wrong_width_and_values_of_the_wrong_type() {
    let child = "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,種別,住所,方書,緯度,経度,アクセス方法,駐車場情報,電話番号,内線番号,FAX番号,法人番号,団体名,認可等年月日,収容定員,受入年齢,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,一時預かりの有無,URL,備考";
    let text = format!(
        "{child}\n222127,1,静岡県,焼津市,x,,認可外保育所,,,,,,,,,,,,令和5年4月1日,七十,,,9:00,,,,,,余分,もう一つ\n222127,2,静岡県\n"
    );
    let file = TempFile::new("child.csv", text.as_bytes());
    let (report, sink) = run(&file.path, Format::Csv, &Options::default());
    assert_eq!(sink.rows.len(), 2);
    let first = &sink.rows[0];
    assert_eq!(first.len(), 28);
    assert_eq!(
        first[18],
        Cell::Date(NaiveDate::from_ymd_opt(2023, 4, 1).unwrap_or_default())
    );
    assert_eq!(first[19], Cell::Null);
    assert_eq!(first[22], Cell::Text("09:00".into()));
    // The bad count is reported twice: not an integer, and not stored.
    let at = |row: usize, code: &str| {
        report
            .issues
            .iter()
            .filter(|i| i.row == row && i.code == code)
            .map(|i| (i.column, i.severity, i.original.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        at(2, "integer"),
        vec![(Some(20), Severity::Error, "七十".to_string())]
    );
    assert_eq!(
        at(2, "not-stored"),
        vec![(Some(20), Severity::Error, "七十".to_string())]
    );
    // Extra cells: reported with their values, which are not stored.
    let extra: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.row == 2 && i.code == "column-count")
        .collect();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].original, "余分,もう一つ");
    assert!(
        extra[0].message_en.contains("not stored")
            && extra[0].message_ja.contains("格納していません")
    );
    // Missing cells are null, and reported.
    assert_eq!(sink.rows[1][2], Cell::Text("静岡県".into()));
    assert!(sink.rows[1][3..].iter().all(|c| *c == Cell::Null));
    assert_eq!(at(3, "column-count").len(), 1);
}

const CHILDCARE: &str = "都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,種別,住所,方書,緯度,経度,アクセス方法,駐車場情報,電話番号,内線番号,FAX番号,法人番号,団体名,認可等年月日,収容定員,受入年齢,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,一時預かりの有無,URL,備考";

/// The sheet make_childcare_xls.py writes, as xlsx.
fn childcare_xlsx() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};
    let build = || -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut book = Workbook::new();
        book.add_worksheet().set_name("表紙")?;
        let sheet = book.add_worksheet().set_name("子育て施設")?;
        let date = CellFormat::new().set_num_format("yyyy/mm/dd");
        let time = CellFormat::new().set_num_format("h:mm");
        sheet.write_string(0, 0, "焼津市 子育て施設一覧")?;
        for (col, name) in CHILDCARE.split(',').enumerate() {
            sheet.write_string(2, col as u16, name)?;
        }
        for (r, (no, name, kana, kind, lat, lng, phone)) in [
            (
                1.0,
                "さくら保育園",
                "サクラホイクエン",
                "認可私立保育所",
                34.866918,
                138.323171,
                "(054)626-1139",
            ),
            (
                2.0,
                "ＣＯＣＯＲＯ保育園",
                "ココロホイクエン",
                "認可外保育所",
                34.87,
                138.32,
                "054-626-0000",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let r = r as u32 + 3;
            sheet.write_number(r, 0, 222127.0)?;
            sheet.write_number(r, 1, no)?;
            sheet.write_string(r, 2, "静岡県")?;
            sheet.write_string(r, 3, "焼津市")?;
            sheet.write_string(r, 4, name)?;
            sheet.write_string(r, 5, kana)?;
            sheet.write_string(r, 6, kind)?;
            sheet.write_string(r, 7, format!("静岡県焼津市本町{no}-{no}"))?;
            sheet.write_number(r, 9, lat)?;
            sheet.write_number(r, 10, lng)?;
            sheet.write_string(r, 13, phone)?;
        }
        sheet.write_datetime_with_format(3, 18, &ExcelDateTime::from_ymd(2015, 4, 1)?, &date)?;
        sheet.write_number(3, 19, 90.0)?;
        sheet.write_string(3, 20, "0歳～5歳")?;
        sheet.write_string(3, 21, "月～土")?;
        sheet.write_datetime_with_format(3, 22, &ExcelDateTime::from_hms(7, 30, 0)?, &time)?;
        sheet.write_datetime_with_format(3, 23, &ExcelDateTime::from_hms(18, 30, 0)?, &time)?;
        sheet.write_string(3, 25, "有")?;
        sheet.write_string(4, 18, "令和5年4月1日")?;
        sheet.write_string(4, 19, "七十")?;
        sheet.write_datetime_with_format(4, 22, &ExcelDateTime::from_hms(8, 0, 0)?, &time)?;
        sheet.write_datetime_with_format(4, 23, &ExcelDateTime::from_hms(17, 0, 0)?, &time)?;
        sheet.write_string(4, 25, "無")?;
        book.save_to_buffer()
    };
    build().unwrap_or_else(|e| panic!("writing the xlsx: {e}"))
}

/// Both workbooks hold the same sheet and must load the same.
fn check_childcare_sheet(report: &IngestReport, sink: &Collect) {
    let date = |y, m, d| Cell::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default());
    assert_eq!(
        report.schema.as_ref().map(|s| s.id),
        Some("v1-13-childcare-facilities")
    );
    assert_eq!(report.sheet.as_deref(), Some("子育て施設"));
    assert_eq!(report.header_row, 3);
    assert_eq!(report.rows, 2);
    let title: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.code == "title-row")
        .map(|i| (i.row, i.severity, i.original.as_str()))
        .collect();
    assert_eq!(title, vec![(1, Severity::Warning, "焼津市 子育て施設一覧")]);
    let Some(plan) = &sink.plan else {
        panic!("no plan")
    };
    assert_eq!(plan.header_row, 3);
    assert_eq!(plan.fields.len(), 28);
    let first = &sink.rows[0];
    // 222127.0 and 1.0 are shown as Excel shows them.
    assert_eq!(first[0], Cell::Text("222127".into()));
    assert_eq!(first[1], Cell::Text("1".into()));
    assert_eq!(first[9], Cell::Numeric(34.866918));
    assert_eq!(first[13], Cell::Text("054-626-1139".into()));
    assert_eq!(first[18], date(2015, 4, 1));
    assert_eq!(first[19], Cell::Int(90));
    assert_eq!(first[22], Cell::Text("07:30".into()));
    assert_eq!(first[23], Cell::Text("18:30".into()));
    assert_eq!(first[25], Cell::Text("有".into()));
    assert_eq!(first[8], Cell::Null);
    let second = &sink.rows[1];
    assert_eq!(second[4], Cell::Text("COCORO保育園".into()));
    assert_eq!(second[18], date(2023, 4, 1));
    assert_eq!(second[19], Cell::Null);
    // The same row checks as CSV, numbered as Excel numbers rows.
    let issues: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.row > 3)
        .map(|i| (i.row, i.column, i.code))
        .collect();
    assert_eq!(
        issues,
        vec![
            (4, Some(14), "phone"),
            (5, Some(5), "text"),
            (5, Some(19), "date"),
            (5, Some(20), "integer"),
            (5, Some(20), "not-stored"),
        ]
    );
}

#[test]
fn an_xlsx_with_a_title_row_loads_from_its_header() {
    let file = TempFile::new("childcare.xlsx", &childcare_xlsx());
    assert_eq!(
        Format::detect(&file.path, Some("CSV")).ok(),
        Some(Format::Xlsx)
    );
    let (report, sink) = run(&file.path, Format::Xlsx, &Options::default());
    assert_eq!(report.format, Format::Xlsx);
    assert_eq!(report.encoding, None);
    check_childcare_sheet(&report, &sink);
}

#[test]
fn an_xls_with_a_title_row_loads_from_its_header() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/excel/childcare_title_rows.xls");
    let (report, sink) = run(&path, Format::Xls, &Options::default());
    assert_eq!(report.format, Format::Xls);
    check_childcare_sheet(&report, &sink);
}

#[test]
fn an_xlsx_of_no_standard_layout_finds_its_header_below_notes() {
    use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};
    let build = || -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        let date = CellFormat::new().set_num_format("yyyy\"年\"m\"月\"d\"日\"");
        sheet.write_string(0, 0, "令和5年度 イベント一覧")?;
        sheet.write_string(2, 0, "作成: 焼津市")?;
        for (col, name) in ["イベント名", "開催日", "会場", "定員", "参加費"]
            .iter()
            .enumerate()
        {
            sheet.write_string(3, col as u16, *name)?;
        }
        sheet.write_string(4, 0, "みなと祭り")?;
        sheet.write_datetime_with_format(4, 1, &ExcelDateTime::from_ymd(2023, 8, 5)?, &date)?;
        sheet.write_string(4, 2, "焼津漁港")?;
        sheet.write_number(4, 3, 12.0)?;
        sheet.write_number(4, 4, 1.5)?;
        sheet.write_string(5, 0, "朝市")?;
        sheet.write_string(5, 6, "列の外")?;
        book.save_to_buffer()
    };
    let bytes = build().unwrap_or_else(|e| panic!("writing the xlsx: {e}"));
    let file = TempFile::new("events.xlsx", &bytes);
    let (report, sink) = run(&file.path, Format::Xlsx, &Options::default());
    assert!(report.schema.is_none());
    assert_eq!(report.header_row, 4);
    let skipped: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.code == "title-row")
        .map(|i| i.row)
        .collect();
    assert_eq!(skipped, vec![1, 3]);
    let Some(plan) = &sink.plan else {
        panic!("no plan")
    };
    assert!(plan
        .fields
        .iter()
        .all(|f| f.column_type == ColumnType::Text));
    assert_eq!(
        plan.header,
        vec!["イベント名", "開催日", "会場", "定員", "参加費"]
    );
    assert_eq!(
        sink.rows[0],
        vec![
            Cell::Text("みなと祭り".into()),
            Cell::Text("2023-08-05".into()),
            Cell::Text("焼津漁港".into()),
            Cell::Text("12".into()),
            Cell::Text("1.5".into()),
        ]
    );
    // A value past the header is reported, not stored.
    assert_eq!(sink.rows[1][0], Cell::Text("朝市".into()));
    let extra: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.code == "column-count")
        .map(|i| (i.row, i.original.as_str()))
        .collect();
    assert_eq!(extra, vec![(6, ",列の外")]);
}

#[test]
fn unusable_files_are_rejected_before_anything_is_loaded() {
    let options = Options::default();
    let csv = |bytes: &[u8]| {
        let file = TempFile::new("x.csv", bytes);
        let r = rejected(&file.path, Format::Csv, &options);
        (r.kind, r.line)
    };
    assert_eq!(csv(b"").0, RejectKind::Empty);
    assert_eq!(csv(b"\xEF\xBB\xBF\r\n \r\n").0, RejectKind::Empty);
    assert_eq!(csv(b"a,b\nc,\x00d\n"), (RejectKind::NotText, 2));
    let mut bad = "名称\n".as_bytes().to_vec();
    bad.extend_from_slice(b"\xFF\xFF\n");
    assert_eq!(csv(&bad), (RejectKind::Undecodable, 2));
    // Records are split before they are decoded, so a Shift_JIS character
    // cut by a delimiter, or by the end of the file, must be caught first.
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("名称,住所\n避難所,焼津\n");
    let mut cut_by_comma = sjis.to_vec();
    cut_by_comma.extend_from_slice(b"\x82,\xA0\n");
    assert_eq!(csv(&cut_by_comma), (RejectKind::Undecodable, 3));
    let mut cut_by_end = sjis.to_vec();
    cut_by_end.extend_from_slice(b"\x82");
    assert_eq!(csv(&cut_by_end), (RejectKind::Undecodable, 3));
    assert_eq!(
        csv(b"222127,1,34.86,138.32\n222127,2,34.87,138.33\n"),
        (RejectKind::NoHeader, 1)
    );
    // The same reasons and lines as the in-memory validator.
    for bytes in [
        &b""[..],
        b"a,b\nc,\x00d\n",
        &bad,
        &cut_by_comma,
        &cut_by_end,
        b"1,2\n3,4\n",
    ] {
        let file = TempFile::new("x.csv", bytes);
        let streamed = rejected(&file.path, Format::Csv, &options);
        let Err(in_memory) = validate::validate(bytes, &validate::Options::default()) else {
            panic!("validate accepted {bytes:?}")
        };
        assert_eq!(streamed, in_memory);
    }
}

/// Past the head the first pass reads (1 MiB and a little more), a broken
/// file is found as it loads: the load stops with the verdict the whole
/// file gets, at the line where it breaks.
#[test]
fn problems_past_the_head_stop_the_load_with_the_whole_files_verdict() {
    let options = Options::default();
    let sjis = |text: &str| encoding_rs::SHIFT_JIS.encode(text).0.into_owned();
    let lines = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'\n').count();
    let mut body = sjis("名称,住所\r\n");
    while body.len() < 2 * 1024 * 1024 {
        body.extend_from_slice(&sjis("避難所,焼津市本町\r\n"));
    }
    let mut nul = body.clone();
    nul.extend_from_slice(b"a,\x00\r\n");
    let mut bad = body.clone();
    bad.extend_from_slice(b"\xFF\xFF\r\n");
    for bytes in [&nul, &bad] {
        let file = TempFile::new("x.csv", bytes);
        let (streamed, planned) = rejected_as_it_loads(&file.path, Format::Csv, &options);
        assert!(planned);
        let Err(in_memory) = validate::validate(bytes, &validate::Options::default()) else {
            panic!("validate accepted a broken file")
        };
        assert_eq!(streamed, in_memory);
        assert_eq!(streamed.line, lines(&body) + 1);
    }
    // "ア" in UTF-8 (E3 82 A2) is also valid Shift_JIS, so the head reads
    // as UTF-8; the rest is Shift_JIS only.
    let mut mixed = b"name,kana\r\n".to_vec();
    while mixed.len() < 2 * 1024 * 1024 {
        mixed.extend_from_slice("x,ア\r\n".as_bytes());
    }
    let changes_at = lines(&mixed) + 1;
    mixed.extend_from_slice(&sjis("y,あ\r\n"));
    let file = TempFile::new("mixed.csv", &mixed);
    let (r, _) = rejected_as_it_loads(&file.path, Format::Csv, &options);
    assert_eq!((r.kind, r.line), (RejectKind::Undecodable, changes_at));
    assert!(
        r.message_ja.contains("文字コードが変わっています")
            && r.message_en.contains("the encoding changes"),
        "{r:?}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let file = TempFile::new("big.csv", format!("{AED_HEADER}\n{AED_ROW}\n").as_bytes());
    let options = Options {
        max_bytes: 100,
        ..Options::default()
    };
    let r = rejected(&file.path, Format::Csv, &options);
    assert_eq!(r.kind, RejectKind::TooLarge);
    assert!(r.message_ja.contains("大きすぎます") && r.message_en.contains("too large"));
}

#[test]
fn a_truncated_xlsx_is_rejected_with_a_clear_message() {
    let bytes = childcare_xlsx();
    let file = TempFile::new("cut.xlsx", &bytes[..bytes.len() / 2]);
    assert_eq!(Format::detect(&file.path, None).ok(), Some(Format::Xlsx));
    let r = rejected(&file.path, Format::Xlsx, &Options::default());
    assert_eq!(r.kind, RejectKind::NotAWorkbook);
    assert!(
        r.message_ja
            .contains("Excel ファイル (xlsx) として読めません"),
        "{r}"
    );
    assert!(r.message_en.contains("corrupt or truncated"), "{r}");
    // A CSV announced as xls is no workbook either.
    let file = TempFile::new("fake.xls", b"\xD0\xCF\x11\xE0 not really");
    assert_eq!(
        rejected(&file.path, Format::Xls, &Options::default()).kind,
        RejectKind::NotAWorkbook
    );
}

#[test]
fn a_sink_error_stops_the_ingest() {
    struct Refuse;
    impl Sink for Refuse {
        type Error = &'static str;
        fn plan(&mut self, _: &Plan) -> Result<(), Self::Error> {
            Ok(())
        }
        fn batch(&mut self, _: &mut Rows) -> Result<(), Self::Error> {
            Err("disk full")
        }
    }
    let result = ingest(
        &yaizu("222127_aed.csv"),
        Format::Csv,
        &Options::default(),
        &mut Refuse,
    );
    assert!(matches!(result, Err(IngestError::Sink("disk full"))));
}

#[test]
fn a_large_file_arrives_in_bounded_batches() {
    let mut text = String::with_capacity(200_000 * 48);
    text.push_str("名称,緯度,経度,電話番号,備考\n");
    for i in 0..200_000 {
        text.push_str(&format!("施設{i},34.{i:06},138.3,054-626-1139,\n"));
    }
    let file = TempFile::new("large.csv", text.as_bytes());
    drop(text);
    let options = Options {
        batch_size: 1_000,
        ..Options::default()
    };
    let mut sink = Collect {
        count_only: true,
        ..Collect::default()
    };
    let report = match ingest(&file.path, Format::Csv, &options, &mut sink) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(report.rows, 200_000);
    // UTF-8 characters cut by the sniffer's chunk boundaries still count
    // as UTF-8.
    assert_eq!(report.encoding.as_deref(), Some("UTF-8"));
    assert_eq!(sink.counted, 200_000);
    assert!(
        sink.batches.iter().all(|&b| (1..=1_000).contains(&b)),
        "{:?}",
        sink.batches.iter().max()
    );
    assert_eq!(sink.batches.len(), 200);
    assert!(sink.rows.is_empty());
}

mod arbitrary_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn never_panic_and_agree_with_validate(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let file = TempFile::new("p.csv", &bytes);
            let mut sink = Collect::default();
            let streamed = ingest(&file.path, Format::Csv, &Options::default(), &mut sink);
            let in_memory = validate::validate(&bytes, &validate::Options::default());
            match (streamed, in_memory) {
                (Ok(report), Ok(v)) => {
                    prop_assert_eq!(report.rows, v.rows.len() as u64);
                    let codes = |issues: &[validate::Issue]| issues.iter().map(|i| (i.row, i.column, i.code)).collect::<Vec<_>>();
                    prop_assert_eq!(codes(&report.issues), codes(&v.report.issues));
                }
                (Err(IngestError::Rejected(a)), Err(b)) => prop_assert_eq!(a.kind, b.kind),
                (a, b) => prop_assert!(false, "ingest {:?} but validate {:?}", a.map(|r| r.rows), b.map(|v| v.rows.len())),
            }
        }

        #[test]
        fn csvish_text_never_panics(text in "[名称緯度経度電話番号,\"\r\n ○０-９a-z\u{3000}ー―(054)\\.]{0,300}") {
            let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
            for bytes in [text.as_bytes(), &sjis[..]] {
                let file = TempFile::new("p.csv", bytes);
                let _ = ingest(&file.path, Format::Csv, &Options::default(), &mut Collect::default());
                let _ = ingest(&file.path, Format::Xlsx, &Options::default(), &mut Collect::default());
            }
        }
    }
}

#[test]
fn rows_checked_on_threads_come_out_as_on_one() {
    let mut text = format!("{CHILDCARE}\n");
    for i in 0..3_000 {
        let extra = if i % 97 == 0 { ",余分" } else { "" };
        let count = if i % 13 == 0 {
            "七十".to_string()
        } else {
            (i % 200).to_string()
        };
        text.push_str(&format!(
            "22212,{i},静岡県,焼津市,ＣＯＣＯＲＯ保育園{i},,認可外保育所,,,34.{i:04},138.3,,,(054)626-{:04},,,,,令和5年4月{}日,{count},,,9:00,,,,,{extra}\n",
            i % 10_000,
            i % 28 + 1
        ));
    }
    let file = TempFile::new("threads.csv", text.as_bytes());
    let run_with = |threads| {
        let options = Options {
            threads,
            batch_size: 100,
            max_issue_details: 50_000,
            ..Options::default()
        };
        run(&file.path, Format::Csv, &options)
    };
    let (one, one_sink) = run_with(1);
    for threads in [2, 3] {
        let (many, many_sink) = run_with(threads);
        assert_eq!(many, one, "{threads} threads");
        assert_eq!(many_sink.rows, one_sink.rows);
        assert_eq!(many_sink.batches, one_sink.batches);
    }
    assert_eq!(one.rows, 3_000);
    assert_eq!(one.count("localgov-check-digit"), 3_000);
    assert_eq!(one.count("not-stored"), 231);
    assert_eq!(one.count("column-count"), 31);
    assert!(one_sink.batches.iter().all(|&b| b <= 100));
}
