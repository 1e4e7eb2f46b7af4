//! The Japanese vocabulary the catalog scenarios draw their data from: real
//! municipalities of Shizuoka prefecture (codes, names, centres, telephone area
//! codes and postal prefixes), town names, facility kinds and dataset themes.
//! Everything generated is a function of a row or dataset number, so two runs build
//! the same files and catalogs.

/// A municipality of Shizuoka: its 全国地方公共団体コード (check digit included),
/// name, romanised name for URLs, centre, telephone area code and postal prefix.
pub struct Municipality {
    pub code: &'static str,
    pub name: &'static str,
    pub romaji: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub area_code: &'static str,
    pub postal_prefix: u32,
}

const fn m(
    code: &'static str,
    name: &'static str,
    romaji: &'static str,
    lat: f64,
    lon: f64,
    area_code: &'static str,
    postal_prefix: u32,
) -> Municipality {
    Municipality {
        code,
        name,
        romaji,
        lat,
        lon,
        area_code,
        postal_prefix,
    }
}

/// From shared/data/localgov/municipalities.csv.
pub const MUNICIPALITIES: &[Municipality] = &[
    m(
        "221007",
        "静岡市",
        "shizuoka",
        34.97556,
        138.38278,
        "054",
        420,
    ),
    m(
        "221309",
        "浜松市",
        "hamamatsu",
        34.71083,
        137.72667,
        "053",
        430,
    ),
    m(
        "222038",
        "沼津市",
        "numazu",
        35.09556,
        138.86361,
        "055",
        410,
    ),
    m(
        "222054",
        "熱海市",
        "atami",
        35.09611,
        139.07167,
        "0557",
        413,
    ),
    m(
        "222062",
        "三島市",
        "mishima",
        35.11861,
        138.91861,
        "055",
        411,
    ),
    m("222089", "伊東市", "ito", 34.96583, 139.10194, "0557", 414),
    m(
        "222097",
        "島田市",
        "shimada",
        34.83639,
        138.17611,
        "0547",
        427,
    ),
    m("222101", "富士市", "fuji", 35.16139, 138.67639, "0545", 417),
    m(
        "222119",
        "磐田市",
        "iwata",
        34.71778,
        137.85139,
        "0538",
        438,
    ),
    m("222127", "焼津市", "yaizu", 34.86694, 138.32306, "054", 425),
    m(
        "222135",
        "掛川市",
        "kakegawa",
        34.76861,
        137.99833,
        "0537",
        436,
    ),
    m(
        "222143",
        "藤枝市",
        "fujieda",
        34.8675,
        138.25778,
        "054",
        426,
    ),
];

/// Town names (町字) with their reading and romanisation.
pub const TOWNS: &[(&str, &str, &str)] = &[
    ("小川", "コガワ", "Kogawa"),
    ("中港", "ナカミナト", "Nakaminato"),
    ("石津", "イシヅ", "Ishizu"),
    ("大住", "オオズミ", "Ozumi"),
    ("本町", "ホンマチ", "Honmachi"),
    ("栄町", "サカエチョウ", "Sakaecho"),
    ("八幡", "ヤハタ", "Yahata"),
    ("新屋", "アラヤ", "Araya"),
    ("田尻", "タジリ", "Tajiri"),
    ("東町", "ヒガシマチ", "Higashimachi"),
    ("西町", "ニシマチ", "Nishimachi"),
    ("浜通", "ハマドオリ", "Hamadori"),
    ("緑が丘", "ミドリガオカ", "Midorigaoka"),
    ("旭町", "アサヒマチ", "Asahimachi"),
    ("三ケ名", "サンガミョウ", "Sangamyo"),
    ("宗高", "ムネタカ", "Munetaka"),
];

/// Kinds of evacuation site: suffix of the name, its reading and English, and the
/// hazards (in the standard's column order, 洪水 … 火山現象) it is designated for.
pub const SITE_KINDS: &[(&str, &str, &str, [bool; 8])] = &[
    (
        "小学校",
        "ショウガッコウ",
        "Elementary School",
        [true, true, false, true, true, true, true, false],
    ),
    (
        "中学校",
        "チュウガッコウ",
        "Junior High School",
        [true, true, false, true, true, true, true, false],
    ),
    (
        "公園",
        "コウエン",
        "Park",
        [false, false, false, true, false, true, false, false],
    ),
    (
        "津波避難タワー",
        "ツナミヒナンタワー",
        "Tsunami Evacuation Tower",
        [false, false, true, true, true, false, false, false],
    ),
    (
        "公民館",
        "コウミンカン",
        "Community Hall",
        [true, true, false, true, false, false, true, false],
    ),
    (
        "体育館",
        "タイイクカン",
        "Gymnasium",
        [true, false, false, true, true, true, true, false],
    ),
    (
        "高等学校",
        "コウトウガッコウ",
        "High School",
        [true, true, true, true, true, true, true, false],
    ),
    (
        "グラウンド",
        "グラウンド",
        "Ground",
        [false, false, false, true, false, true, false, false],
    ),
];

/// Dataset themes of the search scenario: title stem, description and tags.
pub const THEMES: &[(&str, &str, &[&str])] = &[
    (
        "指定緊急避難場所一覧",
        "災害時に身の安全を確保するための指定緊急避難場所の一覧です。",
        &["防災", "避難所", "災害"],
    ),
    (
        "指定避難所一覧",
        "災害時に避難者が滞在する指定避難所の所在地と収容人数です。",
        &["防災", "避難所"],
    ),
    (
        "AED設置箇所一覧",
        "市内の公共施設に設置されたAED（自動体外式除細動器）の設置場所です。",
        &["健康", "医療", "AED"],
    ),
    (
        "公衆トイレ一覧",
        "公園や駅前の公衆トイレの所在地と設備の一覧です。",
        &["まちづくり", "観光"],
    ),
    (
        "子育て施設一覧",
        "保育所、幼稚園、認定こども園など子育て施設の一覧です。",
        &["子育て", "教育"],
    ),
    (
        "地域・年齢別人口",
        "町字別、5歳階級別の人口です。毎月1日現在。",
        &["人口", "統計"],
    ),
    (
        "観光施設一覧",
        "観光施設、文化施設、景勝地の一覧です。",
        &["観光", "文化"],
    ),
    (
        "消防水利施設一覧",
        "消火栓、防火水槽など消防水利の位置です。",
        &["防災", "消防"],
    ),
    (
        "ハザードマップ（津波浸水想定区域）",
        "津波浸水想定区域と避難経路を示したハザードマップのデータです。",
        &["防災", "避難", "津波"],
    ),
    (
        "公共施設一覧",
        "市の公共施設の所在地、電話番号、開館時間の一覧です。",
        &["行政", "施設"],
    ),
    (
        "イベント一覧",
        "市が主催、共催する催しの日程と会場です。",
        &["観光", "イベント"],
    ),
    (
        "避難行動要支援者支援制度の概要",
        "避難行動要支援者名簿と個別避難計画の制度を説明する資料です。",
        &["防災", "福祉", "避難"],
    ),
];

/// Formats of the search scenario's resources.
pub const FORMATS: &[&str] = &["CSV", "XLSX", "PDF", "JSON"];
