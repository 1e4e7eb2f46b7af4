//! Normalisation of single cells by column type. Each normaliser returns
//! the value to store and, when it changed anything or could not read the
//! value, a bilingual note saying what and why, so that the caller can put
//! every change in the report: a municipality must be able to see exactly
//! what the catalog did to its data.

use std::borrow::Cow;

use crate::standard::ColumnType;

/// What became of a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Already in normal form (or empty).
    Ok(String),
    /// Rewritten into normal form; the note says how.
    Fixed(String, Note),
    /// Not readable as its type; the original is kept.
    Bad(Note),
}

/// A bilingual explanation with a stable code for programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub code: &'static str,
    pub ja: String,
    pub en: String,
}

fn note(code: &'static str, ja: impl Into<String>, en: impl Into<String>) -> Note {
    Note {
        code,
        ja: ja.into(),
        en: en.into(),
    }
}

/// The `jp` crate's errors display as "日本語 / English"; splits them.
fn bilingual(code: &'static str, error: &dyn std::fmt::Display) -> Note {
    let text = error.to_string();
    match text.split_once(" / ") {
        Some((ja, en)) => note(code, ja, en),
        None => note(code, text.clone(), text),
    }
}

/// Trims white space, including the ideographic space U+3000, at both ends.
fn trim(raw: &str) -> &str {
    let blank = |c: char| c.is_whitespace() || c == '\u{FEFF}';
    // Most cells have nothing to trim: looking at their two ends is enough.
    if !raw.chars().next().is_some_and(blank) && !raw.chars().next_back().is_some_and(blank) {
        return raw;
    }
    raw.trim_matches(blank)
}

/// [`jp::width::normalize`] for a value already trimmed: NFKC leaves
/// ASCII as it is, so the (costly) normalisation is skipped for it.
fn width_normalize(value: &str) -> Cow<'_, str> {
    if value.is_ascii() {
        Cow::Borrowed(value.trim())
    } else {
        Cow::Owned(jp::width::normalize(value))
    }
}

/// [`jp::width::normalize_digits`] changes only non-ASCII characters.
fn digits_normalize(value: &str) -> Cow<'_, str> {
    if value.is_ascii() {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(jp::width::normalize_digits(value))
    }
}

/// Normalises one cell as `ty`.
pub fn normalize_cell(ty: ColumnType, raw: &str) -> Cell {
    match normalize_value(ty, raw, true) {
        Normal::Ok(v) => Cell::Ok(v.into_owned()),
        Normal::Fixed(v, n) => Cell::Fixed(v.into_owned(), n),
        Normal::Bad(n) => Cell::Bad(n),
    }
}

/// A cell's outcome as [`Cell`], but with an unchanged value borrowed
/// from the input: most cells are already normal, and ingest parses
/// numbers and dates straight from the text, so they cost no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Normal<'a> {
    Ok(Cow<'a, str>),
    /// Borrowed when the normal form is a constant (a flag's `1`) or a
    /// part of the input.
    Fixed(Cow<'a, str>, Note),
    Bad(Note),
}

/// [`normalize_cell`] without the copy of unchanged values. Without
/// `details`, the notes of rewritten values (the common ones: ○ flags,
/// bracketed phone numbers, full-width digits) keep their code but not
/// their messages, which cost more than the normalisation itself and are
/// not read once a report holds all the details it keeps.
///
/// Inlined into its callers: returned through memory, its result was read
/// back before the stores writing it had landed, and that stall was two
/// fifths of the row checker's own time in the profile of the ingest.
#[inline(always)]
pub(crate) fn normalize_value(ty: ColumnType, raw: &str, details: bool) -> Normal<'_> {
    let value = trim(raw);
    if value.is_empty() {
        return if raw.is_empty() {
            Normal::Ok(Cow::Borrowed(""))
        } else {
            Normal::Fixed(
                Cow::Borrowed(""),
                note(
                    "blank",
                    "空白だけの値を空欄にしました",
                    "a value of only white space was emptied",
                ),
            )
        };
    }
    if ty != ColumnType::Text && ty != ColumnType::Flag && is_placeholder(value) {
        return Normal::Fixed(
            Cow::Borrowed(""),
            note(
                "placeholder",
                format!("「{value}」は値なしの記号とみなし、空欄にしました"),
                format!("{value:?} taken as a \"no value\" mark and emptied"),
            ),
        );
    }
    let cell = match ty {
        ColumnType::Text => text_value(value, details),
        ColumnType::Number => number(value, false),
        ColumnType::Integer => number(value, true),
        ColumnType::Latitude => coordinate(value, true),
        ColumnType::Longitude => coordinate(value, false),
        ColumnType::Date => date(value),
        ColumnType::Time => time(value),
        ColumnType::Uri => uri(value),
        ColumnType::Flag => flag(value, details),
        ColumnType::YesNo => yes_no(value),
        ColumnType::LocalGovCode => local_gov_code(value),
        ColumnType::Phone if jp::phone::is_normal(value) => Normal::Ok(Cow::Borrowed(value)),
        ColumnType::Phone => match jp::phone::normalize(value) {
            Ok(p) => fixed_if_changed_with(
                value,
                p.to_string(),
                "phone",
                "電話番号を 000-000-0000 の形に",
                "phone number rewritten as 000-000-0000",
                details,
            ),
            Err(e) => Normal::Bad(bilingual("phone", &e)),
        },
        ColumnType::PostalCode => postal(value),
        ColumnType::TownId => town_id(value),
    };
    // Trimming is a change too, but only worth its own note when nothing
    // else changed.
    match cell {
        Normal::Ok(v) if value.len() != raw.len() => Normal::Fixed(
            v,
            note(
                "trimmed",
                "前後の空白を除きました",
                "removed white space at the start or end",
            ),
        ),
        other => other,
    }
}

/// A lone dash of any width, or 〃-like marks, written where there is no
/// value (a fax column of a centre without fax: ー).
fn is_placeholder(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(
        (chars.next(), chars.next()),
        (
            Some(
                '-' | '\u{2010}'
                    ..='\u{2015}' | '\u{2212}' | '\u{FF0D}' | '\u{30FC}' | '\u{FF70}' | '\u{2500}'
            ),
            None
        )
    )
}

fn fixed_if_changed<'a>(
    original: &'a str,
    value: impl Into<Cow<'a, str>>,
    code: &'static str,
    ja: &str,
    en: &str,
) -> Normal<'a> {
    fixed_if_changed_with(original, value, code, ja, en, true)
}

/// As [`fixed_if_changed`]; without `details` a fix's note has no messages.
/// The value may be borrowed: an unchanged one is then never copied.
fn fixed_if_changed_with<'a>(
    original: &'a str,
    value: impl Into<Cow<'a, str>>,
    code: &'static str,
    ja: &str,
    en: &str,
    details: bool,
) -> Normal<'a> {
    let value = value.into();
    if value == original {
        Normal::Ok(Cow::Borrowed(original))
    } else if !details {
        Normal::Fixed(value, note(code, String::new(), String::new()))
    } else {
        let n = note(
            code,
            format!("{ja}: 「{original}」→「{value}」"),
            format!("{en}: {original:?} → {value:?}"),
        );
        Normal::Fixed(value, n)
    }
}

fn is_katakana(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30FA}' | '\u{30FC}')
}

fn is_half_width_kana(c: char) -> bool {
    matches!(c, '\u{FF61}'..='\u{FF9F}')
}

/// Free text: full-width ASCII letters and digits become ASCII (２階 → 2階),
/// half-width katakana becomes full-width (ﾄｲﾚ → トイレ), and a dash
/// look-alike inside a katakana word becomes the long vowel mark it was
/// meant to be (グロ―アップ → グローアップ). Full-width punctuation and
/// brackets are left as written: they are normal in Japanese text.
pub fn text(value: &str) -> Cell {
    match text_value(value, true) {
        Normal::Ok(v) => Cell::Ok(v.into_owned()),
        Normal::Fixed(v, n) => Cell::Fixed(v.into_owned(), n),
        Normal::Bad(n) => Cell::Bad(n),
    }
}

/// Whether `value` has a character [`text_value`] may rewrite: a full-width
/// letter or digit, half-width katakana or a dash look-alike (a dash only
/// becomes ー after katakana).
/// Every such character is three bytes in UTF-8 starting E2 or EF, bytes
/// that Japanese text (kana and kanji start E3 to E9) seldom has, so only
/// the characters at those bytes are looked at. A lead byte is never in the
/// middle of a character, so each is a character boundary.
fn has_rewritable(value: &str) -> bool {
    memchr::memchr2_iter(0xE2, 0xEF, value.as_bytes()).any(|at| {
        value
            .get(at..)
            .and_then(|rest| rest.chars().next())
            .is_some_and(is_rewritable)
    })
}

fn is_rewritable(c: char) -> bool {
    matches!(
        c,
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FF0D}'..='\u{FF9F}'
    )
}

/// [`text`] as [`normalize_value`] wants it.
fn text_value(value: &str, details: bool) -> Normal<'_> {
    // Only full-width letters and digits, half-width katakana and dash
    // look-alikes are rewritten; most cells have none.
    if !has_rewritable(value) {
        return Normal::Ok(Cow::Borrowed(value));
    }
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::with_capacity(value.len());
    let (mut wide, mut half_kana, mut dash) = (false, false, false);
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if matches!(c, '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ') {
            out.push(char::from_u32(c as u32 - 0xFEE0).unwrap_or(c));
            wide = true;
        } else if is_half_width_kana(c) {
            let start = i;
            while chars.get(i + 1).copied().is_some_and(is_half_width_kana) {
                i += 1;
            }
            let run: String = chars[start..=i].iter().collect();
            out.push_str(&jp::width::normalize(&run));
            half_kana = true;
        } else if matches!(
            c,
            '\u{2010}' | '\u{2012}'..='\u{2015}' | '\u{2212}' | '\u{FF0D}'
        ) && out.chars().last().is_some_and(is_katakana)
            && !chars
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_digit() || matches!(n, '０'..='９'))
        {
            out.push('ー');
            dash = true;
        } else {
            out.push(c);
        }
        i += 1;
    }
    if !(wide || half_kana || dash) {
        return Normal::Ok(Cow::Owned(out));
    }
    if !details {
        return Normal::Fixed(out.into(), note("text", String::new(), String::new()));
    }
    let mut ja = Vec::new();
    let mut en = Vec::new();
    if wide {
        ja.push("全角英数字を半角に");
        en.push("full-width letters and digits made ASCII");
    }
    if half_kana {
        ja.push("半角カナを全角に");
        en.push("half-width katakana made full-width");
    }
    if dash {
        ja.push("カタカナ語中のダッシュを長音符「ー」に");
        en.push("a dash inside a katakana word made the long vowel mark ー");
    }
    let n = note(
        "text",
        format!("{}: 「{value}」→「{out}」", ja.join("、")),
        format!("{}: {value:?} → {out:?}", en.join("; ")),
    );
    Normal::Fixed(out.into(), n)
}

/// Digits in ASCII, full-width punctuation folded, thousands separators
/// removed; the result is checked to be a plain decimal (or integer).
fn number(value: &str, integer: bool) -> Normal<'_> {
    if is_plain_number(value, integer) {
        return Normal::Ok(Cow::Borrowed(value));
    }
    let digits = digits_normalize(value);
    let folded = width_normalize(&digits);
    let plain: String = folded.chars().filter(|&c| c != ',').collect();
    let (what_ja, what_en) = if integer {
        ("整数", "an integer")
    } else {
        ("数値", "a number")
    };
    let body = plain.strip_prefix('-').unwrap_or(&plain);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = digits(int) && frac.is_none_or(digits) && !(integer && frac.is_some());
    if !ok {
        return Normal::Bad(note(
            if integer { "integer" } else { "number" },
            format!("「{value}」は{what_ja}ではありません"),
            format!("{value:?} is not {what_en}"),
        ));
    }
    fixed_if_changed(
        value,
        plain,
        "number",
        "数値を半角に",
        "number rewritten in ASCII",
    )
}

/// Already in the normal form [`number`] writes: `-?[0-9]+(\.[0-9]+)?`.
fn is_plain_number(value: &str, integer: bool) -> bool {
    let body = value.strip_prefix('-').unwrap_or(value);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits) && !(integer && frac.is_some())
}

/// Japan lies within about lat 20–46, lng 122–154.
fn coordinate(value: &str, latitude: bool) -> Normal<'_> {
    let cell = number(value, false);
    let v = match &cell {
        Normal::Ok(v) => v.parse::<f64>().ok(),
        Normal::Fixed(v, _) => v.parse::<f64>().ok(),
        Normal::Bad(_) => None,
    };
    let (lo, hi, other_lo, other_hi) = if latitude {
        (20.0, 46.0, 122.0, 154.0)
    } else {
        (122.0, 154.0, 20.0, 46.0)
    };
    let (name_ja, name_en) = if latitude {
        ("緯度", "latitude")
    } else {
        ("経度", "longitude")
    };
    match v {
        None => Normal::Bad(note(
            "coordinate",
            format!("{name_ja}「{value}」は十進の度数ではありません (例: 34.866918)"),
            format!("{name_en} {value:?} is not decimal degrees (e.g. 34.866918)"),
        )),
        Some(x) if (lo..=hi).contains(&x) => cell,
        Some(x) => {
            let swapped = (other_lo..=other_hi).contains(&x);
            let (hint_ja, hint_en) = if swapped {
                (
                    " 緯度と経度が入れ替わっていませんか。",
                    " Are latitude and longitude swapped?",
                )
            } else {
                ("", "")
            };
            Normal::Bad(note(
                if swapped {
                    "coordinate-swapped"
                } else {
                    "coordinate-range"
                },
                format!("{name_ja}「{value}」は日本の範囲 ({lo}〜{hi}) の外です。{hint_ja}"),
                format!("{name_en} {value:?} is outside Japan ({lo}–{hi}).{hint_en}"),
            ))
        }
    }
}

fn date(value: &str) -> Normal<'_> {
    match jp::wareki::parse_date(value) {
        Ok(d) => fixed_if_changed(
            value,
            d.format("%Y-%m-%d").to_string(),
            "date",
            "日付を YYYY-MM-DD に",
            "date rewritten as YYYY-MM-DD",
        ),
        Err(e) => Normal::Bad(bilingual("date", &e)),
    }
}

/// hh:mm from 9:00, 09:00:00, ９時３０分, 0900. 24:00 is allowed as a
/// closing time; seconds are dropped only when zero.
fn time(value: &str) -> Normal<'_> {
    let t: String = width_normalize(value)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bad = || {
        Normal::Bad(note(
            "time",
            format!("「{value}」は時刻 (hh:mm) として読めません"),
            format!("{value:?} is not a time (hh:mm)"),
        ))
    };
    let parts: Vec<&str> = if let Some(rest) = t.strip_suffix('分') {
        rest.split('時').collect()
    } else if let Some(rest) = t.strip_suffix('時') {
        vec![rest, "00"]
    } else if t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()) {
        vec![&t[..2], &t[2..]]
    } else {
        t.split(':').collect()
    };
    let num = |s: &str| -> Option<u32> {
        if (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (h, m) = match parts.as_slice() {
        [h, m] => (num(h), num(m)),
        [h, m, s] if num(s) == Some(0) => (num(h), num(m)),
        _ => return bad(),
    };
    match (h, m) {
        (Some(h), Some(m)) if m < 60 && (h < 24 || (h == 24 && m == 0)) => fixed_if_changed(
            value,
            format!("{h:02}:{m:02}"),
            "time",
            "時刻を hh:mm に",
            "time rewritten as hh:mm",
        ),
        _ => bad(),
    }
}

/// `value.chars().any(char::is_whitespace)`, by bytes when it is ASCII
/// (URLs nearly always are): the white space of ASCII is tab to CR and
/// the space.
fn has_white_space(value: &str) -> bool {
    if value.is_ascii() {
        value.bytes().any(|b| matches!(b, b'\t'..=b'\r' | b' '))
    } else {
        value.chars().any(char::is_whitespace)
    }
}

fn uri(value: &str) -> Normal<'_> {
    let v = width_normalize(value);
    let scheme_ok = v.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            && !rest.is_empty()
    });
    if !scheme_ok || has_white_space(&v) {
        return Normal::Bad(note(
            "uri",
            format!("「{value}」は URI ではありません (例: https://www.city.yaizu.lg.jp/)"),
            format!("{value:?} is not a URI (e.g. https://www.city.yaizu.lg.jp/)"),
        ));
    }
    fixed_if_changed(value, v, "uri", "URI を半角に", "URI rewritten in ASCII")
}

/// Hazard flags are "1" or empty; files write ○ and the like.
fn flag(value: &str, details: bool) -> Normal<'_> {
    // Every mark flag_mark knows is its own NFKC form (a test checks), so
    // a value written exactly as one skips the costly normalisation.
    let Some(to) = flag_mark(value).or_else(|| flag_mark(&width_normalize(value))) else {
        return Normal::Bad(note(
            "flag",
            format!("「{value}」はフラグとして読めません (1 または空欄)"),
            format!("{value:?} is not a flag (1 or empty)"),
        ));
    };
    fixed_if_changed_with(
        value,
        to,
        "flag",
        "フラグを 1/空欄 に",
        "flag rewritten as 1 or empty",
        details,
    )
}

/// The flag value a mark stands for, once width-normalised.
fn flag_mark(v: &str) -> Option<&'static str> {
    match v {
        "1" => Some("1"),
        "○" | "◯" | "〇" | "●" | "◎" | "✓" | "✔" | "有" | "有り" | "あり" | "true" | "TRUE" => {
            Some("1")
        }
        "0" | "×" | "✕" | "-" | "無" | "無し" | "なし" | "false" | "FALSE" => Some(""),
        _ => None,
    }
}

/// Every value [`flag_mark`] knows, for the test that they are NFKC-stable.
#[cfg(test)]
const FLAG_MARKS: &[&str] = &[
    "1", "○", "◯", "〇", "●", "◎", "✓", "✔", "有", "有り", "あり", "true", "TRUE", "0", "×", "✕",
    "-", "無", "無し", "なし", "false", "FALSE",
];

fn yes_no(value: &str) -> Normal<'_> {
    let v = width_normalize(value);
    let to = match v.as_ref() {
        "有" | "有り" | "あり" | "○" | "◯" | "〇" | "1" | "はい" | "yes" | "Yes" | "YES" => {
            "有"
        }
        "無" | "無し" | "なし" | "×" | "✕" | "0" | "いいえ" | "no" | "No" | "NO" => "無",
        _ => {
            return Normal::Bad(note(
                "yes-no",
                format!("「{value}」は「有」または「無」ではありません"),
                format!("{value:?} is not 有 (yes) or 無 (no)"),
            ))
        }
    };
    fixed_if_changed(
        value,
        to,
        "yes-no",
        "有無を「有」「無」に",
        "yes/no rewritten as 有/無",
    )
}

/// Six digits with a check digit. Five digits are either a code whose
/// leading zero a spreadsheet dropped (11002 for 札幌市 011002) or the old
/// form without check digit; the former is recognised by its check digit.
fn local_gov_code(value: &str) -> Normal<'_> {
    // Six ASCII digits with a valid check digit are already normal.
    if value.len() == 6 && value.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(code) = jp::localgov::LocalGovCode::parse(value) {
            if code.as_str() == value {
                return Normal::Ok(Cow::Borrowed(value));
            }
        }
    }
    let digits: String = digits_normalize(value)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let padded = format!("0{digits}");
        if let Ok(code) = jp::localgov::LocalGovCode::parse(&padded) {
            let n = note(
                "localgov-leading-zero",
                format!(
                    "全国地方公共団体コード「{value}」は先頭の 0 が落ちています: {code} としました"
                ),
                format!("local government code {value:?} lost its leading zero: stored as {code}"),
            );
            return Normal::Fixed(code.to_string().into(), n);
        }
    }
    match jp::localgov::LocalGovCode::parse(&digits) {
        Ok(code) if digits.len() == 5 => {
            let n = note(
                "localgov-check-digit",
                format!(
                    "全国地方公共団体コード「{value}」に検査数字がありません: {code} としました"
                ),
                format!("local government code {value:?} has no check digit: stored as {code}"),
            );
            Normal::Fixed(code.to_string().into(), n)
        }
        Ok(code) => fixed_if_changed(
            value,
            code.to_string(),
            "localgov",
            "コードを半角数字に",
            "code rewritten in ASCII digits",
        ),
        Err(e) => Normal::Bad(bilingual("localgov", &e)),
    }
}

/// 000-0000, written as [`jp::postal::normalize`] writes it (which reads
/// it back unchanged), is checked without the allocations of a full parse.
fn postal(value: &str) -> Normal<'_> {
    let b = value.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if b.len() == 8 && b[3] == b'-' && digits(&b[..3]) && digits(&b[4..]) {
        return Normal::Ok(Cow::Borrowed(value));
    }
    postal_parsed(value)
}

fn postal_parsed(value: &str) -> Normal<'_> {
    match jp::postal::normalize(value) {
        Ok(p) => fixed_if_changed(
            value,
            p.as_str().to_string(),
            "postal",
            "郵便番号を 000-0000 の形に",
            "postal code rewritten as 000-0000",
        ),
        Err(e) => Normal::Bad(bilingual("postal", &e)),
    }
}

/// 町字ID of the address base registry: seven digits, written 0008001 or
/// 0008-001. Both are accepted as written.
fn town_id(value: &str) -> Normal<'_> {
    let v = digits_normalize(value);
    let b = v.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let ok = (b.len() == 7 && digits(b))
        || (b.len() == 8 && b[4] == b'-' && digits(&b[..4]) && digits(&b[5..]));
    if ok {
        fixed_if_changed(
            value,
            v,
            "town-id",
            "町字ID を半角に",
            "town ID rewritten in ASCII",
        )
    } else {
        Normal::Bad(note(
            "town-id",
            format!("「{value}」は町字ID (例: 0008001 または 0008-001) ではありません"),
            format!("{value:?} is not a town ID (e.g. 0008001 or 0008-001)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ColumnType::*;

    const ALL_TYPES: &[ColumnType] = &[
        Text,
        Number,
        Integer,
        Date,
        Time,
        Uri,
        Flag,
        YesNo,
        LocalGovCode,
        Latitude,
        Longitude,
        Phone,
        PostalCode,
        TownId,
    ];

    /// Cells as real files write them, and anything else.
    fn any_cell() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9０-９.,:/ー\\-()（）年月日時分令和○◯×有無ﾄｲﾚｶﾞｽ２階 \u{3000}a-zＡ-Ｚ]{0,16}",
            proptest::sample::select(FLAG_MARKS).prop_map(String::from),
        ]
    }

    proptest! {
        #[test]
        fn white_space_is_found_as_char_is_whitespace_finds_it(s in any::<String>(), ascii in "[\t-\r -~\x00-\x08\x0E-\x1F]{0,12}") {
            prop_assert_eq!(has_white_space(&s), s.chars().any(char::is_whitespace));
            prop_assert_eq!(has_white_space(&ascii), ascii.chars().any(char::is_whitespace));
        }
    }

    #[test]
    fn flag_marks_are_their_own_nfkc_form() {
        for mark in FLAG_MARKS {
            assert_eq!(jp::width::normalize(mark), *mark);
            assert!(flag_mark(mark).is_some(), "{mark}");
        }
    }

    proptest! {
        /// The flag fast path (matching before normalising) against the
        /// slow one (normalising first, as before it existed).
        #[test]
        fn flag_fast_path_agrees_with_normalising_first(raw in any_cell()) {
            let value = trim(&raw);
            let slow = flag_mark(&width_normalize(value));
            let fast = flag_mark(value).or_else(|| flag_mark(&width_normalize(value)));
            prop_assert_eq!(fast, slow);
        }

        /// The byte search for characters text rewrites against looking at
        /// every character.
        #[test]
        fn rewritable_search_agrees_with_every_character(
            raw in prop_oneof![any_cell(), "[ｦ-ﾟ０-９Ａ-Ｚａ-ｚ‐-―−－（）！？…、。あ漢\u{2000}-\u{2030}\u{FF00}-\u{FFEF}a]{0,12}"],
        ) {
            prop_assert_eq!(has_rewritable(&raw), raw.chars().any(is_rewritable));
        }

        /// Trimming looks at the ends first; it must still trim as before.
        #[test]
        fn trimming_agrees_with_trimming_every_end(
            raw in prop_oneof![any_cell(), "[ \u{3000}\u{FEFF}\t\r\na-zあ]{0,8}"],
        ) {
            prop_assert_eq!(trim(&raw), raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}'));
        }

        /// The postal code fast path against the full parse.
        #[test]
        fn postal_fast_path_agrees_with_parsing(
            raw in prop_oneof![any_cell(), "[0-9０-９〒\\-ー ]{0,9}", "[0-9]{3}-[0-9]{4}"],
        ) {
            let value = trim(&raw);
            prop_assert_eq!(postal(value), postal_parsed(value));
        }

        /// Without details only the messages go: same value, same kind of
        /// outcome, same code; and with details it is normalize_cell.
        #[test]
        fn without_details_only_the_messages_differ(
            ty in proptest::sample::select(ALL_TYPES),
            raw in any_cell(),
        ) {
            let full = normalize_cell(ty, &raw);
            let with = normalize_value(ty, &raw, true);
            let without = normalize_value(ty, &raw, false);
            match (&full, &with, &without) {
                (Cell::Ok(a), Normal::Ok(b), Normal::Ok(c)) => {
                    prop_assert_eq!(a.as_str(), b.as_ref());
                    prop_assert_eq!(a.as_str(), c.as_ref());
                }
                (Cell::Fixed(a, n), Normal::Fixed(b, m), Normal::Fixed(c, o)) => {
                    prop_assert_eq!(a.as_str(), b.as_ref());
                    prop_assert_eq!(a.as_str(), c.as_ref());
                    prop_assert_eq!(n, m);
                    prop_assert_eq!(n.code, o.code);
                }
                (Cell::Bad(n), Normal::Bad(m), Normal::Bad(o)) => {
                    prop_assert_eq!(n, m);
                    prop_assert_eq!(n.code, o.code);
                }
                _ => prop_assert!(false, "{:?} / {:?} / {:?}", full, with, without),
            }
        }
    }

    fn ok(ty: ColumnType, raw: &str) -> String {
        match normalize_cell(ty, raw) {
            Cell::Ok(v) => v,
            other => panic!("{raw:?} as {ty:?}: expected unchanged, got {other:?}"),
        }
    }

    fn fixed(ty: ColumnType, raw: &str) -> (String, &'static str) {
        match normalize_cell(ty, raw) {
            Cell::Fixed(v, n) => {
                assert!(!n.ja.is_empty() && !n.en.is_empty());
                (v, n.code)
            }
            other => panic!("{raw:?} as {ty:?}: expected a fix, got {other:?}"),
        }
    }

    fn bad(ty: ColumnType, raw: &str) -> &'static str {
        match normalize_cell(ty, raw) {
            Cell::Bad(n) => {
                assert!(
                    !n.ja.is_empty() && !n.en.is_empty() && n.ja != n.en,
                    "{n:?}"
                );
                n.code
            }
            other => panic!("{raw:?} as {ty:?}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(ok(Integer, ""), "");
        assert_eq!(fixed(Phone, " \u{3000}"), (String::new(), "blank"));
        assert_eq!(
            fixed(Text, "静岡県焼津市宗高88  "),
            ("静岡県焼津市宗高88".into(), "trimmed")
        );
    }

    #[test]
    fn text_width_kana_and_dashes() {
        assert_eq!(fixed(Text, "２階正面入口"), ("2階正面入口".into(), "text"));
        assert_eq!(fixed(Text, "ＣＯＣＯＲＯ保育園").0, "COCORO保育園");
        assert_eq!(fixed(Text, "ﾄｲﾚ ｶﾞｽ").0, "トイレ ガス");
        assert_eq!(
            fixed(Text, "保育所グロ―アップ石津園").0,
            "保育所グローアップ石津園"
        );
        // Full-width brackets are ordinary Japanese text, and a dash before
        // a number is a range or an address, not a long vowel.
        assert_eq!(ok(Text, "（県）焼津水産高等学校"), "（県）焼津水産高等学校");
        assert_eq!(ok(Text, "センター―1"), "センター―1");
        assert_eq!(ok(Text, "市役所本館"), "市役所本館");
    }

    #[test]
    fn numbers() {
        assert_eq!(ok(Integer, "70"), "70");
        assert_eq!(fixed(Integer, "１，２００").0, "1200");
        assert_eq!(ok(Number, "-3.5"), "-3.5");
        assert_eq!(bad(Integer, "3.5"), "integer");
        assert_eq!(bad(Integer, "3人"), "integer");
        assert_eq!(bad(Number, "."), "number");
    }

    #[test]
    fn coordinates_inside_japan() {
        assert_eq!(ok(Latitude, "34.866918"), "34.866918");
        assert_eq!(ok(Longitude, "138.323171"), "138.323171");
        assert_eq!(fixed(Latitude, "３４．８６６９１８").0, "34.866918");
        assert_eq!(bad(Latitude, "138.323171"), "coordinate-swapped");
        assert_eq!(bad(Longitude, "34.8"), "coordinate-swapped");
        assert_eq!(bad(Latitude, "0"), "coordinate-range");
        assert_eq!(bad(Latitude, "北緯34度"), "coordinate");
    }

    #[test]
    fn dates_from_wareki_and_slashes() {
        assert_eq!(ok(Date, "2023-04-01"), "2023-04-01");
        assert_eq!(fixed(Date, "令和5年4月1日"), ("2023-04-01".into(), "date"));
        assert_eq!(fixed(Date, "2023/4/1").0, "2023-04-01");
        assert_eq!(bad(Date, "2023/2/30"), "date");
    }

    #[test]
    fn times() {
        assert_eq!(ok(Time, "09:00"), "09:00");
        assert_eq!(fixed(Time, "9:00").0, "09:00");
        assert_eq!(fixed(Time, "９時３０分").0, "09:30");
        assert_eq!(fixed(Time, "17:15:00").0, "17:15");
        assert_eq!(ok(Time, "24:00"), "24:00");
        assert_eq!(bad(Time, "25:00"), "time");
        assert_eq!(bad(Time, "午前"), "time");
    }

    #[test]
    fn uris() {
        assert_eq!(
            ok(Uri, "http://www.musico.or.jp/"),
            "http://www.musico.or.jp/"
        );
        assert_eq!(bad(Uri, "www.musico.or.jp"), "uri");
        assert_eq!(bad(Uri, "http://a b"), "uri");
    }

    #[test]
    fn flags_and_yes_no() {
        assert_eq!(ok(Flag, "1"), "1");
        assert_eq!(fixed(Flag, "○"), ("1".into(), "flag"));
        assert_eq!(fixed(Flag, "×").0, "");
        assert_eq!(bad(Flag, "2"), "flag");
        assert_eq!(ok(YesNo, "有"), "有");
        assert_eq!(fixed(YesNo, "あり").0, "有");
        assert_eq!(fixed(YesNo, "0").0, "無");
        assert_eq!(bad(YesNo, "たぶん"), "yes-no");
    }

    #[test]
    fn local_government_codes() {
        assert_eq!(ok(LocalGovCode, "222127"), "222127");
        assert_eq!(fixed(LocalGovCode, "２２２１２７").0, "222127");
        // 札幌市 011002 with its leading zero dropped by a spreadsheet.
        assert_eq!(
            fixed(LocalGovCode, "11002"),
            ("011002".into(), "localgov-leading-zero")
        );
        // 焼津市 in the five-digit form, without check digit.
        assert_eq!(
            fixed(LocalGovCode, "22212"),
            ("222127".into(), "localgov-check-digit")
        );
        assert_eq!(bad(LocalGovCode, "222128"), "localgov");
        assert_eq!(bad(LocalGovCode, "焼津市"), "localgov");
    }

    #[test]
    fn phones_and_postal_codes() {
        assert_eq!(
            fixed(Phone, "(054)626-1139"),
            ("054-626-1139".into(), "phone")
        );
        assert_eq!(ok(Phone, "090-9127-0870"), "090-9127-0870");
        assert_eq!(bad(Phone, "626-1139"), "phone");
        assert_eq!(fixed(Phone, "ー"), (String::new(), "placeholder"));
        assert_eq!(ok(PostalCode, "425-0028"), "425-0028");
        assert_eq!(fixed(PostalCode, "〒4250028").0, "425-0028");
        assert_eq!(bad(PostalCode, "42500"), "postal");
    }

    #[test]
    fn town_ids() {
        assert_eq!(ok(TownId, "0003000"), "0003000");
        assert_eq!(ok(TownId, "0008-001"), "0008-001");
        assert_eq!(fixed(TownId, "０００８００１").0, "0008001");
        assert_eq!(bad(TownId, "8-1"), "town-id");
    }
}
