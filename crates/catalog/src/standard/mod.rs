//! Japan's standard open datasets as data: the current 自治体標準オープンデータセット,
//! the v1 推奨データセット 基本編 and the national shelter files of 国土地理院,
//! each with its columns, their types and which are required. No official
//! machine-readable schema exists, so the column lists are transcribed from
//! the project's notes (`data.rs`) and the types follow the naming
//! conventions the documents themselves use (`infer_type`). A file names no
//! schema, so [`match_header`] recognises one from the header row, tolerant
//! of the spellings real files have (full-width letters, a ― where ー was
//! meant, brackets of either width, stray spaces).

mod data;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// Which family of definitions a schema belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// 自治体標準オープンデータセット (Digital Agency, current).
    Current,
    /// 推奨データセット 基本編 (v1, 2019–2020).
    V1,
    /// 国土地理院's national shelter files.
    Gsi,
}

/// The type of a column's values, which decides how a cell is normalised
/// and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Text,
    /// A decimal number (標高, 料金).
    Number,
    /// A count (定員, トイレ数, population).
    Integer,
    /// YYYY-MM-DD.
    Date,
    /// hh:mm.
    Time,
    Uri,
    /// "1" or empty (災害種別_*).
    Flag,
    /// 有 / 無.
    YesNo,
    /// 全国地方公共団体コード, six digits with check digit.
    LocalGovCode,
    Latitude,
    Longitude,
    Phone,
    PostalCode,
    /// 町字ID of the address base registry.
    TownId,
}

impl ColumnType {
    /// Name of the type for messages, in Japanese and English.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            ColumnType::Text => ("文字列", "text"),
            ColumnType::Number => ("数値", "number"),
            ColumnType::Integer => ("整数", "integer"),
            ColumnType::Date => ("日付", "date"),
            ColumnType::Time => ("時刻", "time"),
            ColumnType::Uri => ("URI", "URI"),
            ColumnType::Flag => ("フラグ (1 または空欄)", "flag (1 or empty)"),
            ColumnType::YesNo => ("有/無", "yes/no (有/無)"),
            ColumnType::LocalGovCode => ("全国地方公共団体コード", "local government code"),
            ColumnType::Latitude => ("緯度", "latitude"),
            ColumnType::Longitude => ("経度", "longitude"),
            ColumnType::Phone => ("電話番号", "phone number"),
            ColumnType::PostalCode => ("郵便番号", "postal code"),
            ColumnType::TownId => ("町字ID", "town ID"),
        }
    }
}

/// Whether a column must have a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Required {
    /// ◎: every row must have a value, and the column must be present.
    Always,
    /// ○: required where the thing exists (a toilet without an English
    /// name leaves it empty), so an empty cell is not an error.
    WhereExists,
    Optional,
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// As the document spells it.
    pub name: &'static str,
    /// [`header_key`] of the name, what header cells are compared by.
    pub key: String,
    pub ty: ColumnType,
    pub required: Required,
    /// Allowed values after normalisation; empty means any.
    pub allowed: &'static [&'static str],
}

/// A standard dataset's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Stable identifier, e.g. `v1-13-childcare-facilities`.
    pub id: &'static str,
    pub name_ja: &'static str,
    pub name_en: &'static str,
    pub generation: Generation,
    pub columns: Vec<Column>,
}

impl Schema {
    /// The column whose [`header_key`] is `key`.
    pub fn column_by_key(&self, key: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.key == key)
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name_ja, self.id)
    }
}

/// The compact form the tables in `data.rs` are written in.
pub(crate) struct DatasetDef {
    generation: Generation,
    id: &'static str,
    name_ja: &'static str,
    name_en: &'static str,
    /// Comma-separated, in file order.
    columns: &'static str,
    required: &'static [&'static str],
    conditional: &'static [&'static str],
    allowed: &'static [(&'static str, &'static [&'static str])],
}

impl DatasetDef {
    fn build(&self) -> Schema {
        let columns = self
            .columns
            .split(',')
            .map(|name| Column {
                name,
                key: header_key(name),
                ty: infer_type(name),
                required: if self.required.contains(&name) {
                    Required::Always
                } else if self.conditional.contains(&name) {
                    Required::WhereExists
                } else {
                    Required::Optional
                },
                allowed: self
                    .allowed
                    .iter()
                    .find(|(column, _)| *column == name)
                    .map_or(&[][..], |(_, values)| *values),
            })
            .collect();
        Schema {
            id: self.id,
            name_ja: self.name_ja,
            name_en: self.name_en,
            generation: self.generation,
            columns,
        }
    }
}

/// Every schema, current ones first.
pub fn schemas() -> &'static [Schema] {
    static SCHEMAS: OnceLock<Vec<Schema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| data::DATASETS.iter().map(DatasetDef::build).collect())
}

/// The schema with the given id.
pub fn schema(id: &str) -> Option<&'static Schema> {
    schemas().iter().find(|s| s.id == id)
}

/// Dash and long-vowel look-alikes that header writers mix up (都道府県コ―ド
/// with a horizontal bar): all compare as one character.
const DASH_LIKE: &[char] = &[
    '-', '\u{2010}', '\u{2011}', '\u{2012}', '\u{2013}', '\u{2014}', '\u{2015}', '\u{2212}',
    '\u{FE63}', '\u{FF0D}', '\u{30FC}', '\u{FF70}', '\u{2500}', '~', '\u{301C}', '\u{FF5E}',
];

/// Brackets of every width and shape; dropped, so that 建物名等(方書),
/// 建物名等（方書） and 建物名等【方書】 compare equal.
const BRACKETS: &[char] = &[
    '(', ')', '[', ']', '{', '}', '【', '】', '「', '」', '『', '』', '〔', '〕', '〈', '〉', '《',
    '》', '｢', '｣',
];

/// The comparison key of a header cell: NFKC (full-width letters and
/// digits, half-width kana), every dash look-alike as one character, no
/// white space nor brackets, ASCII lower case, and 又は written as または.
/// For comparison only, never for display.
pub fn header_key(cell: &str) -> String {
    let normalized = jp::width::normalize(cell);
    let key: String = normalized
        .chars()
        .filter(|c| !c.is_whitespace() && !BRACKETS.contains(c) && *c != '\u{FEFF}')
        .map(|c| {
            if DASH_LIKE.contains(&c) {
                'ー'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    key.replace("又は", "または")
}

/// Hazard names of the national shelter files, which are flags.
const HAZARDS: &[&str] = &[
    "洪水",
    "崖崩れ、土石流及び地滑り",
    "高潮",
    "地震",
    "津波",
    "大規模な火事",
    "内水氾濫",
    "火山現象",
];

/// The type of a column from its name, by the conventions of the
/// documents: v1 states numbers, times, dates and URIs by name, and the
/// current standard names its codes, coordinates and flags consistently.
/// Used for the built-in schemas and for columns no schema knows.
pub fn infer_type(name: &str) -> ColumnType {
    let key = header_key(name);
    let k = key.as_str();
    let ends = |suffix: &str| k.ends_with(&header_key(suffix));
    if ends("緯度") {
        ColumnType::Latitude
    } else if ends("経度") {
        ColumnType::Longitude
    } else if ends("全国地方公共団体コード")
        || k == header_key("市区町村コード")
        || k == header_key("都道府県コード又は市区町村コード")
    {
        ColumnType::LocalGovCode
    } else if ends("電話番号") || ends("FAX番号") {
        ColumnType::Phone
    } else if ends("郵便番号") {
        ColumnType::PostalCode
    } else if k == header_key("町字ID") {
        ColumnType::TownId
    } else if ends("有無") {
        ColumnType::YesNo
    } else if k.starts_with(&header_key("災害種別_"))
        || HAZARDS.iter().any(|h| k == header_key(h))
        || ends("指定避難所との重複")
        || ends("との住所同一")
    {
        ColumnType::Flag
    } else if ends("時間") {
        ColumnType::Time
    } else if ends("日") && !ends("曜日") {
        ColumnType::Date
    } else if ends("URL") || (k.starts_with(&header_key("画像")) && !k.contains("ライセンス"))
    {
        ColumnType::Uri
    } else if k.contains("トイレ数")
        || k.contains("トイレ総数")
        || [
            "定員",
            "病床数",
            "想定収容人数",
            "世帯数",
            "総人口",
            "歳の男性",
            "歳の女性",
            "歳以上の男性",
            "歳以上の女性",
        ]
        .iter()
        .any(|s| ends(s))
        || k == "男性"
        || k == "女性"
    {
        ColumnType::Integer
    } else if ["標高", "高度の値", "料金(基本)"]
        .iter()
        .any(|s| k == header_key(s))
    {
        ColumnType::Number
    } else {
        ColumnType::Text
    }
}

/// How a header row relates to a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatch {
    /// None when no schema scored at or above the threshold.
    pub schema: Option<&'static Schema>,
    /// Share of columns in common: matched / (schema columns + unknown
    /// file columns), from 0 to 1; that of the best candidate when none
    /// was chosen.
    pub score: f64,
    /// The best candidate even when below the threshold, for the message.
    pub best: Option<(&'static Schema, f64)>,
    /// For each file column, the index of its schema column.
    pub mapping: Vec<Option<usize>>,
    /// File columns (0-based) the schema does not know.
    pub unknown: Vec<usize>,
    /// Schema columns (0-based) the file lacks.
    pub missing: Vec<usize>,
    /// File columns matched only after normalisation (spelled differently
    /// from the document, e.g. with a ― for ー).
    pub variants: Vec<usize>,
    /// File columns repeating an earlier column's name; they map to nothing.
    pub duplicates: Vec<usize>,
}

/// Compares a header with one schema.
pub fn match_schema(header: &[String], schema: &'static Schema) -> HeaderMatch {
    let by_key: HashMap<&str, usize> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.as_str(), i))
        .collect();
    let mut seen = vec![false; schema.columns.len()];
    let mut m = HeaderMatch {
        schema: Some(schema),
        score: 0.0,
        best: None,
        mapping: Vec::with_capacity(header.len()),
        unknown: Vec::new(),
        missing: Vec::new(),
        variants: Vec::new(),
        duplicates: Vec::new(),
    };
    for (i, cell) in header.iter().enumerate() {
        let found = by_key.get(header_key(cell).as_str()).copied();
        match found {
            Some(s) if seen.get(s).copied().unwrap_or(true) => {
                m.duplicates.push(i);
                m.mapping.push(None);
            }
            Some(s) => {
                seen[s] = true;
                if schema.columns[s].name != cell.trim_start_matches('\u{FEFF}') {
                    m.variants.push(i);
                }
                m.mapping.push(Some(s));
            }
            None => {
                m.unknown.push(i);
                m.mapping.push(None);
            }
        }
    }
    m.missing = (0..schema.columns.len()).filter(|&s| !seen[s]).collect();
    let matched = schema.columns.len() - m.missing.len();
    // Precision: f64 is exact for column counts.
    m.score = matched as f64 / (schema.columns.len() + m.unknown.len()) as f64;
    m.best = Some((schema, m.score));
    m
}

/// Default share of common columns above which a header is taken to be a
/// schema's: a file may leave out or add a few columns, but one that shares
/// only the generic ones (NO, 名称, 住所, 緯度, 経度) with a schema is not it.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// Picks the schema a header best matches, if any reaches `threshold`.
/// On a tie the earlier schema (the current standard) wins.
pub fn match_header(header: &[String], threshold: f64) -> HeaderMatch {
    let mut best: Option<HeaderMatch> = None;
    for schema in schemas() {
        let candidate = match_schema(header, schema);
        if best.as_ref().is_none_or(|b| candidate.score > b.score) {
            best = Some(candidate);
        }
    }
    match best {
        Some(b) if b.score >= threshold => b,
        other => HeaderMatch {
            schema: None,
            score: other.as_ref().map_or(0.0, |b| b.score),
            best: other.and_then(|b| b.best),
            mapping: vec![None; header.len()],
            unknown: (0..header.len()).collect(),
            missing: Vec::new(),
            variants: Vec::new(),
            duplicates: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cells: &str) -> Vec<String> {
        cells.split(',').map(str::to_string).collect()
    }

    #[test]
    fn every_dataset_of_the_document_with_its_column_count() {
        let counts: Vec<(&str, usize)> =
            schemas().iter().map(|s| (s.id, s.columns.len())).collect();
        let expected = [
            ("current-03-emergency-evacuation-sites", 39),
            ("current-13-public-toilets", 39),
            ("current-14-fire-water-supplies", 16),
            ("current-15-food-business-permits", 34),
            ("current-08-aed", 38),
            ("current-population-by-area-and-age", 46),
            ("v1-01-aed", 22),
            ("v1-02-care-service-providers", 22),
            ("v1-03-medical-institutions", 26),
            ("v1-04-cultural-properties", 34),
            ("v1-05-tourist-facilities", 30),
            ("v1-06-events", 32),
            ("v1-07-public-wireless-lan", 18),
            ("v1-08-public-toilets", 32),
            ("v1-09-fire-water-supplies", 11),
            ("v1-10-emergency-evacuation-sites", 26),
            ("v1-11-population-by-area-and-age", 47),
            ("v1-12-public-facilities", 24),
            ("v1-13-childcare-facilities", 28),
            ("v1-14-open-data", 15),
            ("gsi-designated-shelters", 11),
            ("gsi-emergency-evacuation-sites", 17),
        ];
        assert_eq!(counts, expected);
        for s in schemas() {
            let mut keys: Vec<&str> = s.columns.iter().map(|c| c.key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(
                keys.len(),
                s.columns.len(),
                "{} has two columns with one key",
                s.id
            );
        }
    }

    #[test]
    fn header_keys_unify_spelling_variants() {
        let k = header_key("都道府県コード又は市区町村コード");
        assert_eq!(header_key("都道府県コ―ド又は市区町村コ―ド"), k);
        assert_eq!(header_key("都道府県コ－ドまたは市区町村コ‐ド"), k);
        assert_eq!(
            header_key(" 建物名等（方書） "),
            header_key("建物名等(方書)")
        );
        assert_eq!(header_key("建物名等【方書】"), header_key("建物名等(方書)"));
        assert_eq!(header_key("ＮＯ"), header_key("No"));
        assert_eq!(header_key("名称＿カナ"), header_key("名称_カナ"));
        assert_eq!(header_key("0－4歳の男性"), header_key("0-4歳の男性"));
        assert_ne!(header_key("名称"), header_key("名称_カナ"));
    }

    #[test]
    fn types_follow_the_naming_conventions() {
        use ColumnType::*;
        let cases = [
            ("緯度", Latitude),
            ("経度", Longitude),
            ("全国地方公共団体コード", LocalGovCode),
            ("所在地_全国地方公共団体コード", LocalGovCode),
            ("都道府県コード又は市区町村コード", LocalGovCode),
            ("市区町村コード", LocalGovCode),
            ("電話番号", Phone),
            ("連絡先電話番号", Phone),
            ("FAX番号", Phone),
            ("内線番号", Text),
            ("郵便番号", PostalCode),
            ("町字ID", TownId),
            ("小児対応設備の有無", YesNo),
            ("車椅子使用者用トイレ有無", YesNo),
            ("災害種別_津波", Flag),
            ("指定避難所との重複", Flag),
            ("津波", Flag),
            ("開始時間", Time),
            ("利用開始時間", Time),
            ("利用可能日時特記事項", Text),
            ("時間外における対応", Text),
            ("開始日", Date),
            ("調査年月日", Date),
            ("認可等年月日", Date),
            ("利用可能曜日", Text),
            ("URL", Uri),
            ("連絡先FormURL", Uri),
            ("画像", Uri),
            ("画像1", Uri),
            ("画像_ライセンス", Text),
            ("男性トイレ数（小便器）", Integer),
            ("男性トイレ総数", Integer),
            ("バリアフリートイレ数", Integer),
            ("収容定員", Integer),
            ("病床数", Integer),
            ("0-4歳の女性", Integer),
            ("85歳以上の男性", Integer),
            ("男性", Integer),
            ("世帯数", Integer),
            ("標高", Number),
            ("料金(基本)", Number),
            ("料金(詳細)", Text),
            ("NO", Text),
            ("名称", Text),
        ];
        for (name, ty) in cases {
            assert_eq!(infer_type(name), ty, "{name}");
        }
    }

    #[test]
    fn toilet_requirements_as_documented() {
        let s = schema("current-13-public-toilets").map(|s| &s.columns);
        let req = |name: &str| {
            s.and_then(|cs| cs.iter().find(|c| c.name == name))
                .map(|c| c.required)
        };
        assert_eq!(req("名称"), Some(Required::Always));
        assert_eq!(req("設置位置"), Some(Required::Always));
        assert_eq!(req("名称_英語"), Some(Required::WhereExists));
        assert_eq!(req("備考"), Some(Required::Optional));
    }

    #[test]
    fn matching_picks_the_right_generation_and_reports_differences() {
        let m = match_header(&header("都道府県コ―ド又は市区町村コ―ド,NO,都道府県名,市区町村名,名称,名称_カナ,住所,方書,緯度,経度,設置位置,電話番号,内線番号,法人番号,団体名,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,小児対応設備の有無,URL,備考"), DEFAULT_THRESHOLD);
        assert_eq!(m.schema.map(|s| s.id), Some("v1-01-aed"));
        assert_eq!(m.variants, vec![0]);
        assert!(m.unknown.is_empty() && m.missing.is_empty());

        // A file that leaves out a few columns and adds one still matches,
        // and says so.
        let m = match_header(&header("全国地方公共団体コード,ID,地方公共団体名,種別,所在地_全国地方公共団体コード,町字ID,所在地_連結表記,所在地_都道府県,所在地_市区町村,所在地_町字,所在地_番地以下,緯度,経度,点検日"), DEFAULT_THRESHOLD);
        assert_eq!(
            m.schema.map(|s| s.id),
            Some("current-14-fire-water-supplies")
        );
        assert_eq!(m.unknown, vec![13]);
        assert_eq!(m.missing.len(), 3);

        // One with only half the columns is too far to guess; the caller
        // can name the schema instead (match_schema).
        let sparse =
            header("全国地方公共団体コード,ID,地方公共団体名,種別,緯度,経度,口径,備考,点検日");
        assert!(match_header(&sparse, DEFAULT_THRESHOLD).schema.is_none());
        let forced = schema("current-14-fire-water-supplies").map(|s| match_schema(&sparse, s));
        assert_eq!(forced.map(|m| m.missing.len()), Some(8));

        // Generic columns alone are no schema.
        let m = match_header(&header("NO,名称,住所,緯度,経度,混雑度"), DEFAULT_THRESHOLD);
        assert!(m.schema.is_none());
        assert!(m.best.is_some());
        assert_eq!(m.unknown.len(), 6);
    }

    #[test]
    fn duplicates_map_once() {
        let s = schema("v1-09-fire-water-supplies");
        let m = s.map(|s| match_schema(&header("都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,種別,住所,方書,緯度,経度,口径,備考,備考"), s));
        assert_eq!(m.map(|m| m.duplicates), Some(vec![11]));
    }
}
