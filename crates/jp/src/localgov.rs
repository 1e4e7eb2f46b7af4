//! 全国地方公共団体コード (local government codes) and a registry of the
//! prefectures and municipalities they name. Every Japanese open data file
//! identifies its publisher by this six-digit code: two digits of
//! prefecture, three of municipality and a check digit, so a mistyped code
//! can be caught before it files a dataset under the wrong city. Many files
//! write the five-digit form without the check digit, or in full-width
//! digits; [`LocalGovCode::parse`] accepts all of these and always yields the
//! six-digit form.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Prefecture numbers run from 01 (北海道) to 47 (沖縄県).
const PREFECTURES: std::ops::RangeInclusive<u8> = 1..=47;

/// Why a code or a registry file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalGovError {
    #[error("地方公共団体コードが空です / local government code is empty")]
    Empty,
    #[error(
        "地方公共団体コード「{input}」の{position}文字目「{ch}」は数字ではありません / \
         local government code {input:?}: character {position} ({ch:?}) is not a digit"
    )]
    NotADigit {
        input: String,
        position: usize,
        ch: char,
    },
    #[error(
        "地方公共団体コード「{input}」は{len}桁です (5桁または6桁) / \
         local government code {input:?} has {len} digits, expected 5 or 6"
    )]
    Length { input: String, len: usize },
    #[error(
        "地方公共団体コード「{input}」の検査数字が違います: {found} ではなく {expected} のはずです / \
         local government code {input:?}: check digit is {found}, expected {expected}"
    )]
    CheckDigit {
        input: String,
        expected: char,
        found: char,
    },
    #[error(
        "地方公共団体コード「{input}」の都道府県番号 {prefecture} は 01〜47 の範囲外です / \
         local government code {input:?}: prefecture number {prefecture} is not between 01 and 47"
    )]
    UnknownPrefecture { input: String, prefecture: String },
    #[error("{file} {line}行目: {message_ja} / {file} line {line}: {message_en}")]
    Csv {
        file: &'static str,
        line: usize,
        message_ja: String,
        message_en: String,
    },
}

/// A validated six-digit local government code such as `222127` (焼津市).
/// Prefectures have codes of the form `PP000C`, e.g. `220001` (静岡県).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalGovCode([u8; 6]);

impl LocalGovCode {
    /// Parses a code written with 6 digits (check digit verified) or 5
    /// digits (check digit computed), in ASCII or full-width digits, with
    /// surrounding white space ignored.
    pub fn parse(input: &str) -> Result<LocalGovCode, LocalGovError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(LocalGovError::Empty);
        }
        // Six digits at most are kept; more are only counted, for the error.
        let mut digits = [0u8; 6];
        let mut len = 0;
        for (i, ch) in trimmed.chars().enumerate() {
            let d = match ch {
                '0'..='9' => ch as u32 - '0' as u32,
                '０'..='９' => ch as u32 - '０' as u32,
                _ => {
                    return Err(LocalGovError::NotADigit {
                        input: input.to_string(),
                        position: i + 1,
                        ch,
                    })
                }
            };
            if let Some(slot) = digits.get_mut(len) {
                // Values are below 10, so the narrowing cannot lose anything.
                *slot = d as u8;
            }
            len += 1;
        }
        if !(5..=6).contains(&len) {
            return Err(LocalGovError::Length {
                input: input.to_string(),
                len,
            });
        }
        let [a, b, c, d, e, given] = digits;
        let body = [a, b, c, d, e];
        let prefecture = body[0] * 10 + body[1];
        if !PREFECTURES.contains(&prefecture) {
            return Err(LocalGovError::UnknownPrefecture {
                input: input.to_string(),
                prefecture: format!("{prefecture:02}"),
            });
        }
        let code = LocalGovCode::from_body(body);
        if len == 6 {
            let expected = check_digit(body);
            if given != expected {
                return Err(LocalGovError::CheckDigit {
                    input: input.to_string(),
                    expected: char::from(b'0' + expected),
                    found: char::from(b'0' + given),
                });
            }
        }
        Ok(code)
    }

    /// Builds the code from its first five digits (each below 10).
    fn from_body(body: [u8; 5]) -> LocalGovCode {
        let [a, b, c, d, e] = body;
        LocalGovCode([a, b, c, d, e, check_digit(body)].map(|x| b'0' + x))
    }

    /// The six ASCII digits.
    pub fn as_str(&self) -> &str {
        // Every constructor stores ASCII digits only, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    fn digit(&self, i: usize) -> u8 {
        self.0.get(i).map_or(0, |b| b.saturating_sub(b'0'))
    }

    /// The prefecture number, 1 (北海道) to 47 (沖縄県).
    pub fn prefecture_number(&self) -> u8 {
        self.digit(0) * 10 + self.digit(1)
    }

    /// The code of the prefecture this code belongs to (`222127` →
    /// `220001`); a prefecture's own code maps to itself.
    pub fn prefecture_code(&self) -> LocalGovCode {
        LocalGovCode::from_body([self.digit(0), self.digit(1), 0, 0, 0])
    }

    /// Whether this is a prefecture's code rather than a municipality's.
    pub fn is_prefecture(&self) -> bool {
        self.0.get(2..5) == Some(b"000".as_slice())
    }
}

/// 全国地方公共団体コード check digit: weights 6..2 over the first five
/// digits, modulus 11, with remainders 0 and 1 mapping to 1 and 0.
fn check_digit(body: [u8; 5]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip([6u32, 5, 4, 3, 2])
        .map(|(&d, w)| u32::from(d) * w)
        .sum();
    // The result is below 10, so the narrowing cannot lose anything.
    ((11 - sum % 11) % 10) as u8
}

impl fmt::Display for LocalGovCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for LocalGovCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalGovCode({})", self.as_str())
    }
}

impl FromStr for LocalGovCode {
    type Err = LocalGovError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LocalGovCode::parse(s)
    }
}

/// One prefecture or municipality.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalGov {
    pub code: LocalGovCode,
    /// Official name; designated-city wards read like `札幌市 中央区`.
    pub name: String,
    /// Reading in hiragana.
    pub kana: String,
    /// The prefecture's code; a prefecture's is its own.
    pub prefecture: LocalGovCode,
    /// Latitude and longitude of the office, when the source gives them.
    pub lat: Option<f64>,
    pub lng: Option<f64>,
}

/// All prefectures and municipalities, looked up by code.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: BTreeMap<LocalGovCode, LocalGov>,
}

impl Registry {
    /// Loads the reference files: `prefectures.csv` with columns
    /// `lgcode,name,name_kana` (others ignored) and `municipalities.csv` with
    /// `lgcode,prefecture_code,name,name_kana,lat,lng`. Columns are found by
    /// header name. Every code is validated, duplicates are rejected, and a
    /// municipality must belong to a listed prefecture that agrees with its
    /// own code.
    pub fn from_csv(
        prefectures_csv: &str,
        municipalities_csv: &str,
    ) -> Result<Registry, LocalGovError> {
        const PREF_FILE: &str = "prefectures.csv";
        const MUNI_FILE: &str = "municipalities.csv";
        let mut entries = BTreeMap::new();

        let prefs = Table::parse(PREF_FILE, prefectures_csv)?;
        let [code_i, name_i, kana_i] = prefs.columns(["lgcode", "name", "name_kana"])?;
        for (line, row) in prefs.rows() {
            let code = parse_code(PREF_FILE, line, field(row, code_i))?;
            if !code.is_prefecture() {
                return Err(csv_error(
                    PREF_FILE,
                    line,
                    format!("「{code}」は都道府県のコードではありません"),
                    format!("{code} is not a prefecture code"),
                ));
            }
            let gov = LocalGov {
                code,
                name: field(row, name_i).to_string(),
                kana: field(row, kana_i).to_string(),
                prefecture: code,
                lat: None,
                lng: None,
            };
            insert(&mut entries, PREF_FILE, line, gov)?;
        }

        let munis = Table::parse(MUNI_FILE, municipalities_csv)?;
        let [code_i, pref_i, name_i, kana_i, lat_i, lng_i] = munis.columns([
            "lgcode",
            "prefecture_code",
            "name",
            "name_kana",
            "lat",
            "lng",
        ])?;
        for (line, row) in munis.rows() {
            let code = parse_code(MUNI_FILE, line, field(row, code_i))?;
            let prefecture = parse_code(MUNI_FILE, line, field(row, pref_i))?;
            if prefecture != code.prefecture_code() {
                return Err(csv_error(
                    MUNI_FILE,
                    line,
                    format!(
                        "「{code}」の都道府県は {} のはずですが {prefecture} と書かれています",
                        code.prefecture_code()
                    ),
                    format!(
                        "{code} belongs to prefecture {}, but the row says {prefecture}",
                        code.prefecture_code()
                    ),
                ));
            }
            if !entries.contains_key(&prefecture) {
                return Err(csv_error(
                    MUNI_FILE,
                    line,
                    format!("都道府県コード {prefecture} が {PREF_FILE} にありません"),
                    format!("prefecture {prefecture} is not in {PREF_FILE}"),
                ));
            }
            let gov = LocalGov {
                code,
                name: field(row, name_i).to_string(),
                kana: field(row, kana_i).to_string(),
                prefecture,
                lat: parse_coordinate(MUNI_FILE, line, "lat", field(row, lat_i), 90.0)?,
                lng: parse_coordinate(MUNI_FILE, line, "lng", field(row, lng_i), 180.0)?,
            };
            insert(&mut entries, MUNI_FILE, line, gov)?;
        }
        Ok(Registry { entries })
    }

    /// The name of a prefecture or municipality.
    pub fn name(&self, code: &LocalGovCode) -> Option<&str> {
        self.entries.get(code).map(|g| g.name.as_str())
    }

    pub fn get(&self, code: &LocalGovCode) -> Option<&LocalGov> {
        self.entries.get(code)
    }

    /// Municipalities (not the prefecture itself) of the prefecture that
    /// `prefecture` belongs to, in code order. Given a municipality's code
    /// this lists its neighbours in the same prefecture.
    pub fn municipalities_of(
        &self,
        prefecture: &LocalGovCode,
    ) -> impl Iterator<Item = &LocalGov> + '_ {
        let prefecture = prefecture.prefecture_code();
        self.entries
            .values()
            .filter(move |g| g.prefecture == prefecture && !g.code.is_prefecture())
    }

    /// Number of prefectures and municipalities together.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Everything, in code order.
    pub fn iter(&self) -> impl Iterator<Item = &LocalGov> + '_ {
        self.entries.values()
    }
}

fn insert(
    entries: &mut BTreeMap<LocalGovCode, LocalGov>,
    file: &'static str,
    line: usize,
    gov: LocalGov,
) -> Result<(), LocalGovError> {
    if entries.contains_key(&gov.code) {
        return Err(csv_error(
            file,
            line,
            format!("コード {} が重複しています", gov.code),
            format!("code {} appears more than once", gov.code),
        ));
    }
    entries.insert(gov.code, gov);
    Ok(())
}

fn csv_error(
    file: &'static str,
    line: usize,
    message_ja: String,
    message_en: String,
) -> LocalGovError {
    LocalGovError::Csv {
        file,
        line,
        message_ja,
        message_en,
    }
}

fn field(row: &[String], i: usize) -> &str {
    row.get(i).map_or("", |s| s.trim())
}

fn parse_code(file: &'static str, line: usize, value: &str) -> Result<LocalGovCode, LocalGovError> {
    LocalGovCode::parse(value).map_err(|e| {
        let text = e.to_string();
        let (ja, en) = text.split_once(" / ").unwrap_or((&text, &text));
        csv_error(file, line, ja.to_string(), en.to_string())
    })
}

fn parse_coordinate(
    file: &'static str,
    line: usize,
    column: &str,
    value: &str,
    limit: f64,
) -> Result<Option<f64>, LocalGovError> {
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= limit => Ok(Some(v)),
        _ => Err(csv_error(
            file,
            line,
            format!("{column} の値「{value}」は座標ではありません"),
            format!("{column} value {value:?} is not a coordinate"),
        )),
    }
}

/// A minimal RFC 4180 reader, enough for the reference files: quoted fields
/// with `""` escapes and embedded newlines, CRLF or LF, a leading BOM, blank
/// lines skipped. Each record keeps the line it starts on for messages.
struct Table {
    file: &'static str,
    header: Vec<String>,
    records: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn parse(file: &'static str, text: &str) -> Result<Table, LocalGovError> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut records = Vec::new();
        let mut record: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut line = 1;
        let mut record_line = 1;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => in_quotes = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() => in_quotes = true,
                ',' => record.push(std::mem::take(&mut field)),
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' | '\r' => {
                    record.push(std::mem::take(&mut field));
                    push_record(&mut records, record_line, std::mem::take(&mut record));
                    line += 1;
                    record_line = line;
                }
                _ => field.push(c),
            }
        }
        if in_quotes {
            return Err(csv_error(
                file,
                record_line,
                "引用符 \" が閉じられていません".to_string(),
                "unterminated quoted field".to_string(),
            ));
        }
        record.push(field);
        push_record(&mut records, record_line, record);

        let mut records = records.into_iter();
        let header = match records.next() {
            Some((_, header)) => header.into_iter().map(|h| h.trim().to_string()).collect(),
            None => {
                return Err(csv_error(
                    file,
                    1,
                    "見出し行がありません".to_string(),
                    "missing header row".to_string(),
                ))
            }
        };
        Ok(Table {
            file,
            header,
            records: records.collect(),
        })
    }

    /// Indexes of the named columns, or an error naming the first missing one.
    fn columns<const N: usize>(&self, names: [&str; N]) -> Result<[usize; N], LocalGovError> {
        let mut out = [0; N];
        for (slot, name) in out.iter_mut().zip(names) {
            *slot = self.header.iter().position(|h| h == name).ok_or_else(|| {
                csv_error(
                    self.file,
                    1,
                    format!("列「{name}」がありません"),
                    format!("missing column {name:?}"),
                )
            })?;
        }
        Ok(out)
    }

    fn rows(&self) -> impl Iterator<Item = (usize, &[String])> + '_ {
        self.records
            .iter()
            .map(|(line, row)| (*line, row.as_slice()))
    }
}

/// Skips lines with nothing on them, which editors leave at the end.
fn push_record(records: &mut Vec<(usize, Vec<String>)>, line: usize, record: Vec<String>) {
    if !(record.len() == 1 && record.iter().all(|f| f.trim().is_empty())) {
        records.push((line, record));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PREFECTURES_CSV: &str = include_str!("../../../reference-data/localgov/prefectures.csv");
    const MUNICIPALITIES_CSV: &str =
        include_str!("../../../reference-data/localgov/municipalities.csv");

    fn code(s: &str) -> LocalGovCode {
        LocalGovCode::parse(s).unwrap()
    }

    #[test]
    fn check_digit_holds_on_every_reference_row() {
        let mut checked = 0;
        for (text, columns) in [(PREFECTURES_CSV, 1), (MUNICIPALITIES_CSV, 2)] {
            for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
                for value in line.split(',').take(columns) {
                    let parsed =
                        LocalGovCode::parse(value).unwrap_or_else(|e| panic!("{line}: {e}"));
                    assert_eq!(parsed.as_str(), value);
                    // The five-digit form must compute the same check digit.
                    assert_eq!(code(&value[..5]), parsed);
                    checked += 1;
                }
            }
        }
        assert!(checked > 3800, "only {checked} codes checked");
    }

    #[test]
    fn parses_all_accepted_forms() {
        assert_eq!(code("222127").as_str(), "222127");
        assert_eq!(code("22212").as_str(), "222127");
        assert_eq!(code("２２２１２７").as_str(), "222127");
        assert_eq!(code(" 22212 ").to_string(), "222127");
        assert_eq!("131016".parse::<LocalGovCode>().unwrap().as_str(), "131016");
    }

    #[test]
    fn wrong_check_digit_names_expected_digit() {
        let err = LocalGovCode::parse("222128").unwrap_err();
        assert_eq!(
            err,
            LocalGovError::CheckDigit {
                input: "222128".into(),
                expected: '7',
                found: '8'
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("7 のはず") && msg.contains("expected 7"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_malformed_codes() {
        assert_eq!(LocalGovCode::parse("  "), Err(LocalGovError::Empty));
        assert!(matches!(
            LocalGovCode::parse("2221"),
            Err(LocalGovError::Length { len: 4, .. })
        ));
        assert!(matches!(
            LocalGovCode::parse("2221270"),
            Err(LocalGovError::Length { len: 7, .. })
        ));
        assert!(matches!(
            LocalGovCode::parse("22-127"),
            Err(LocalGovError::NotADigit {
                position: 3,
                ch: '-',
                ..
            })
        ));
        assert!(matches!(
            LocalGovCode::parse("48000"),
            Err(LocalGovError::UnknownPrefecture { .. })
        ));
        assert!(matches!(
            LocalGovCode::parse("00000"),
            Err(LocalGovError::UnknownPrefecture { .. })
        ));
    }

    #[test]
    fn prefecture_codes() {
        let yaizu = code("222127");
        assert_eq!(yaizu.prefecture_code(), code("220001"));
        assert_eq!(yaizu.prefecture_number(), 22);
        assert!(!yaizu.is_prefecture());
        assert!(code("220001").is_prefecture());
        assert_eq!(code("010006").prefecture_code(), code("010006"));
        assert_eq!(code("47000").as_str(), "470007");
    }

    #[test]
    fn registry_loads_reference_data() {
        let registry = Registry::from_csv(PREFECTURES_CSV, MUNICIPALITIES_CSV).unwrap();
        let expected_rows =
            PREFECTURES_CSV.lines().count() + MUNICIPALITIES_CSV.lines().count() - 2;
        assert_eq!(registry.len(), expected_rows);
        assert_eq!(registry.name(&code("222127")), Some("焼津市"));
        assert_eq!(registry.name(&code("220001")), Some("静岡県"));
        let yaizu = registry.get(&code("222127")).unwrap();
        assert_eq!(yaizu.prefecture, code("220001"));
        assert!(yaizu.lat.is_some_and(|lat| (34.0..35.5).contains(&lat)));
        assert!(registry.get(&code("220001")).unwrap().lat.is_none());

        let shizuoka: Vec<_> = registry.municipalities_of(&code("220001")).collect();
        assert!(shizuoka.iter().any(|g| g.name == "焼津市"));
        assert!(shizuoka
            .iter()
            .all(|g| g.code.prefecture_number() == 22 && !g.code.is_prefecture()));
        assert_eq!(
            registry.municipalities_of(&code("222127")).count(),
            shizuoka.len()
        );
        let total: usize = registry
            .iter()
            .filter(|g| g.code.is_prefecture())
            .map(|p| registry.municipalities_of(&p.code).count())
            .sum();
        assert_eq!(total, MUNICIPALITIES_CSV.lines().count() - 1);
    }

    const PREFS: &str = "lgcode,name,name_kana\n220001,静岡県,しずおかけん\n";

    #[test]
    fn registry_reader_handles_quotes_crlf_and_bom() {
        let munis = "\u{FEFF}lgcode,prefecture_code,prefecture,name,name_kana,lat,lng\r\n\
                     222127,220001,静岡県,\"焼津市, \"\"港町\"\"\",やいづし,,\r\n\r\n";
        let registry = Registry::from_csv(PREFS, munis).unwrap();
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.name(&code("222127")), Some("焼津市, \"港町\""));
        assert_eq!(registry.get(&code("222127")).unwrap().lng, None);
    }

    #[test]
    fn registry_errors_name_file_and_line() {
        let header = "lgcode,prefecture_code,name,name_kana,lat,lng\n";
        let cases = [
            ("222128,220001,焼津市,やいづし,,\n", "line 2", "expected 7"),
            (
                "222127,220001,焼津市,やいづし,,\n222127,220001,x,x,,\n",
                "line 3",
                "more than once",
            ),
            (
                "232017,220001,名古屋市,なごやし,,\n",
                "line 2",
                "belongs to prefecture 230006",
            ),
            (
                "232017,230006,名古屋市,なごやし,,\n",
                "line 2",
                "not in prefectures.csv",
            ),
            (
                "222127,220001,焼津市,やいづし,north,\n",
                "line 2",
                "lat value",
            ),
            (
                "222127,220001,\"焼津市,やいづし,,\n",
                "line 2",
                "unterminated",
            ),
        ];
        for (rows, line, message) in cases {
            let err = Registry::from_csv(PREFS, &format!("{header}{rows}")).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("municipalities.csv") && text.contains(line),
                "{text}"
            );
            assert!(text.contains(message), "{text}");
        }
        let err = Registry::from_csv("lgcode,name\n", "").unwrap_err();
        assert!(err.to_string().contains("name_kana"), "{err}");
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<LocalGovError>();
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = LocalGovCode::parse(&s);
            let _ = Registry::from_csv(&s, &s);
        }

        #[test]
        fn five_digit_form_always_round_trips(body in "(0[1-9]|[1-3][0-9]|4[0-7])[0-9]{3}") {
            let c = code(&body);
            prop_assert_eq!(code(c.as_str()), c);
            prop_assert!(c.as_str().starts_with(&body));
            // Any other last digit must be rejected.
            for d in '0'..='9' {
                let other = format!("{body}{d}");
                prop_assert_eq!(LocalGovCode::parse(&other).is_ok(), other == c.as_str());
            }
        }
    }
}
