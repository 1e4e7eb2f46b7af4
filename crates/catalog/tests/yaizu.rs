//! The seven real files of 焼津市 (testdata/yaizu, PDL1.0) through the
//! validator: each must load, be recognised as the dataset it is, keep
//! every row, and report the problems it really has — ○ flags, ２階,
//! 都道府県コ―ド, (054)626-1139, a lone ー for "no phone", trailing spaces, a
//! ― inside katakana names — and nothing it does not have (no errors: the
//! files are usable, only untidy). The counts were read off the files
//! themselves; a change in any of them means the validator changed.

use catalog::validate::{validate, Issue, Options, Severity, Validated};
use jp::encoding::Encoding;

fn load(file: &str) -> Validated {
    let path = format!("{}/testdata/yaizu/{file}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v =
        validate(&bytes, &Options::default()).unwrap_or_else(|e| panic!("{file} rejected: {e}"));
    assert_eq!(v.encoding, Encoding::Utf8, "{file}");
    // Nothing dropped: one normalised row per data line (these files have
    // no quoted line breaks), each as wide as the header.
    let lines = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(v.rows.len(), lines - 1, "{file}");
    assert!(v.rows.iter().all(|r| r.len() == v.header.len()), "{file}");
    assert_eq!(
        v.report.errors().count(),
        0,
        "{file}: {:#?}",
        v.report.errors().collect::<Vec<_>>()
    );
    for issue in &v.report.issues {
        assert!(
            !issue.message_ja.is_empty()
                && !issue.message_en.is_empty()
                && issue.message_ja != issue.message_en
        );
    }
    v
}

fn schema_id(v: &Validated) -> Option<&str> {
    v.schema.map(|s| s.id)
}

/// Number of issues with this code in the column of this name.
fn count(v: &Validated, code: &str, column: &str) -> usize {
    v.report
        .with_code(code)
        .filter(|i| i.column_name.as_deref() == Some(column))
        .count()
}

/// The issue at a row and column (1-based, as in the file).
fn at(v: &Validated, row: usize, column: usize) -> &Issue {
    let found: Vec<&Issue> = v
        .report
        .issues
        .iter()
        .filter(|i| i.row == row && i.column == Some(column))
        .collect();
    match found.as_slice() {
        [one] => one,
        other => panic!("expected one issue at row {row} column {column}, found {other:#?}"),
    }
}

/// The normalised cell at a row and column (1-based, as in the file).
fn cell(v: &Validated, row: usize, column: usize) -> &str {
    &v.rows[row - 2][column - 1]
}

#[test]
fn aed_v1_with_full_width_floors_and_bracketed_phones() {
    let v = load("222127_aed.csv");
    assert_eq!(schema_id(&v), Some("v1-01-aed"));
    assert!(v.header_match.unknown.is_empty() && v.header_match.missing.is_empty());

    let floor = at(&v, 2, 11);
    assert_eq!(
        (floor.code, floor.severity, floor.original.as_str()),
        ("text", Severity::Warning, "２階正面入口")
    );
    assert_eq!(floor.column_name.as_deref(), Some("設置位置"));
    assert!(floor.message_ja.contains("全角英数字") && floor.message_en.contains("full-width"));
    assert_eq!(cell(&v, 2, 11), "2階正面入口");
    assert_eq!(count(&v, "text", "設置位置"), 59);
    assert_eq!(count(&v, "text", "名称"), 4);

    let phone = at(&v, 2, 12);
    assert_eq!(
        (phone.code, phone.original.as_str()),
        ("phone", "(054)626-1139")
    );
    assert_eq!(cell(&v, 2, 12), "054-626-1139");
    assert_eq!(count(&v, "phone", "電話番号"), 82);

    assert_eq!(count(&v, "trimmed", "住所"), 2);
    assert_eq!(at(&v, 56, 7).original, "静岡県焼津市宗高88  ");
    assert_eq!(cell(&v, 56, 7), "静岡県焼津市宗高88");
    assert_eq!(v.report.issues.len(), 82 + 59 + 4 + 2);
}

#[test]
fn evacuation_space_v1_with_circle_flags() {
    let v = load("222127_evacuation_space.csv");
    assert_eq!(schema_id(&v), Some("v1-10-emergency-evacuation-sites"));
    let flag = at(&v, 2, 17);
    assert_eq!((flag.code, flag.original.as_str()), ("flag", "○"));
    assert_eq!(flag.column_name.as_deref(), Some("災害種別_地震"));
    assert_eq!(cell(&v, 2, 17), "1");
    assert_eq!(count(&v, "flag", "災害種別_地震"), 26);
    assert_eq!(count(&v, "flag", "災害種別_津波"), 26);
    assert_eq!(count(&v, "flag", "災害種別_崖崩れ、土石流及び地滑り"), 5);
    assert_eq!(count(&v, "flag", "指定避難所との重複"), 5);
    // Every flag is now 1 or empty.
    for row in &v.rows {
        for c in (13..=21).map(|c| row[c].as_str()) {
            assert!(c.is_empty() || c == "1", "{c:?}");
        }
    }
    assert_eq!(count(&v, "phone", "電話番号"), 31);
    assert_eq!(cell(&v, 2, 9), "054-625-0128");
    assert_eq!(v.report.issues.len(), 26 + 26 + 5 + 5 + 31);
}

#[test]
fn fire_hydrant_current_layout_clean_but_for_trailing_spaces() {
    let v = load("222127_fire_hydrant.csv");
    assert_eq!(schema_id(&v), Some("current-14-fire-water-supplies"));
    assert!(v.header_match.variants.is_empty());
    assert_eq!(count(&v, "trimmed", "所在地_連結表記"), 6);
    assert_eq!(count(&v, "trimmed", "所在地_番地以下"), 5);
    assert_eq!(
        at(&v, 102, 7).original,
        "静岡県焼津市小川新町二丁目7番11号  "
    );
    // Codes with their check digit, 7-digit town IDs: accepted as they are.
    assert_eq!(cell(&v, 2, 1), "222127");
    assert_eq!(cell(&v, 2, 6), "0003000");
    assert_eq!(v.report.issues.len(), 11);
}

#[test]
fn hinannjo_city_layout_loads_as_plain_csv_typed_by_name() {
    let v = load("222127_hinannjo.csv");
    assert_eq!(schema_id(&v), None);
    assert!(v.header_match.score < catalog::standard::DEFAULT_THRESHOLD);
    let warning: Vec<&Issue> = v.report.with_code("no-schema").collect();
    assert_eq!(warning.len(), 1);
    assert_eq!(
        (warning[0].row, warning[0].severity),
        (1, Severity::Warning)
    );
    // Still typed by column name: phones normalised, and the ー written
    // where a shelter has no phone taken as empty, each reported.
    assert_eq!(count(&v, "phone", "電話番号"), 48);
    assert_eq!(cell(&v, 2, 16), "054-628-3359");
    assert_eq!(count(&v, "placeholder", "電話番号"), 8);
    let none = at(&v, 12, 16);
    assert_eq!((none.original.as_str(), cell(&v, 12, 16)), ("ー", ""));
    assert_eq!(at(&v, 5, 5).original, "第５コミュニティ防災センター");
    assert_eq!(cell(&v, 5, 5), "第5コミュニティ防災センター");
    // ○ in the city's own 開設される災害の種類 columns is its text, kept.
    assert_eq!(cell(&v, 2, 12), "○");
    assert_eq!(v.report.issues.len(), 1 + 48 + 8 + 1);
}

#[test]
fn preschool_v1_with_a_misspelt_header_and_dashes_in_kana() {
    let v = load("222127_preschool.csv");
    assert_eq!(schema_id(&v), Some("v1-13-childcare-facilities"));
    let header = at(&v, 1, 1);
    assert_eq!(
        (header.code, header.original.as_str()),
        ("header-variant", "都道府県コ―ド又は市区町村コ―ド")
    );
    assert!(header
        .message_ja
        .contains("都道府県コード又は市区町村コード"));
    assert_eq!(v.header_match.mapping[0], Some(0));
    assert_eq!(cell(&v, 2, 1), "222127");

    let kana = at(&v, 36, 6);
    assert_eq!(kana.code, "text");
    assert_eq!(cell(&v, 36, 5), "保育所グローアップ石津園");
    assert_eq!(cell(&v, 47, 5), "COCORO保育園");
    assert_eq!(count(&v, "text", "名称"), 4);
    assert_eq!(count(&v, "text", "名称_カナ"), 9);

    // Two mobile numbers are already in normal form; ten have no fax.
    assert_eq!(count(&v, "phone", "電話番号"), 58);
    assert_eq!(count(&v, "phone", "FAX番号"), 50);
    assert_eq!(cell(&v, 53, 14), "090-9127-0870");
    assert_eq!(count(&v, "trimmed", "住所"), 13);
    // 種別 holds only the document's values.
    assert_eq!(v.report.with_code("not-allowed").count(), 0);
    assert_eq!(v.report.issues.len(), 1 + 4 + 9 + 58 + 50 + 13);
}

#[test]
fn public_toilet_current_layout_with_full_width_letters() {
    let v = load("222127_public_toilet.csv");
    assert_eq!(schema_id(&v), Some("current-13-public-toilets"));
    assert!(v.header_match.unknown.is_empty() && v.header_match.missing.is_empty());
    // ◎ columns are all filled and ○ columns may be empty: no errors.
    assert_eq!(v.report.with_code("required").count(), 0);
    assert_eq!(at(&v, 30, 4).original, "赤塚川公園Ａ");
    assert_eq!(cell(&v, 30, 4), "赤塚川公園A");
    assert_eq!(count(&v, "text", "名称"), 6);
    assert_eq!(count(&v, "text", "所在地_番地以下"), 1);
    assert_eq!(count(&v, "text", "所在地_連結表記"), 1);
    assert_eq!(count(&v, "text", "設置位置"), 1);
    assert_eq!(cell(&v, 104, 13), "205-4");
    assert_eq!(v.report.issues.len(), 9);
}

#[test]
fn public_wireless_lan_v1() {
    let v = load("222127_public_wireless_lan.csv");
    assert_eq!(schema_id(&v), Some("v1-07-public-wireless-lan"));
    assert_eq!(count(&v, "phone", "電話番号"), 17);
    assert_eq!(count(&v, "text", "名称"), 9);
    assert_eq!(cell(&v, 5, 5), "焼津図書館\u{3000}1階");
    assert_eq!(count(&v, "text", "提供エリア"), 1);
    assert_eq!(count(&v, "text", "備考"), 1);
    assert_eq!(count(&v, "trimmed", "住所"), 1);
    assert_eq!(v.report.issues.len(), 17 + 9 + 1 + 1 + 1);
}
