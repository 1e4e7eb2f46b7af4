//! Field types for Japanese services. Each takes what residents actually type (hiragana
//! where katakana was asked, full-width digits, 〒 marks, 和暦) and gives the one canonical
//! form that is stored, or says why it cannot. Every normaliser is idempotent: its output,
//! fed back, comes out unchanged, so a draft can be validated again on resume.

use chrono::NaiveDate;
use serde_json::Value;

/// A renkei field type, named by `format` or by `x-renkei-type` in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenkeiType {
    /// `jp-kana`: full-width katakana (フリガナ).
    Kana,
    /// `jp-postal-code`: `123-4567`.
    PostalCode,
    /// `jp-phone`: a domestic number, grouped as written.
    Phone,
    /// `jp-date`: ISO `yyyy-mm-dd`, from 和暦 or Western input.
    Date,
    /// `jp-birth-date`: a `jp-date` that is not in the future.
    BirthDate,
    /// `my-number`: 個人番号, 12 digits with the official check digit; always sealed.
    MyNumber,
    /// `email`.
    Email,
}

/// Why a value does not fit its field type. Never carries the value itself: an invalid
/// マイナンバー is still personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("カタカナで入力してください / use katakana")]
    Kana,
    #[error("郵便番号は 123-4567 の形で入力してください / enter the postal code as 123-4567")]
    PostalCode,
    #[error("電話番号の形が正しくありません / the phone number is not valid")]
    Phone,
    #[error("日付として読めません (例: 令和5年4月1日, 2023-04-01) / not a date (e.g. 令和5年4月1日, 2023-04-01)")]
    Date,
    #[error("未来の日付は入力できません / the date cannot be in the future")]
    FutureDate,
    #[error("個人番号は12桁の数字です / an individual number has 12 digits")]
    MyNumberFormat,
    #[error("個人番号のチェックデジットが一致しません / the individual number's check digit does not match")]
    MyNumberCheckDigit,
    #[error("メールアドレスの形が正しくありません / the email address is not valid")]
    Email,
}

impl RenkeiType {
    pub const ALL: [RenkeiType; 7] = [
        RenkeiType::Kana,
        RenkeiType::PostalCode,
        RenkeiType::Phone,
        RenkeiType::Date,
        RenkeiType::BirthDate,
        RenkeiType::MyNumber,
        RenkeiType::Email,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RenkeiType::Kana => "jp-kana",
            RenkeiType::PostalCode => "jp-postal-code",
            RenkeiType::Phone => "jp-phone",
            RenkeiType::Date => "jp-date",
            RenkeiType::BirthDate => "jp-birth-date",
            RenkeiType::MyNumber => "my-number",
            RenkeiType::Email => "email",
        }
    }

    pub fn from_name(name: &str) -> Option<RenkeiType> {
        RenkeiType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The type of a (resolved) field schema: `x-renkei-type` first, then `format`.
    pub fn of_schema(schema: &Value) -> Option<RenkeiType> {
        schema
            .get("x-renkei-type")
            .and_then(Value::as_str)
            .or_else(|| schema.get("format").and_then(Value::as_str))
            .and_then(RenkeiType::from_name)
    }

    /// Whether a field of this type is always sealed.
    pub fn always_sensitive(self) -> bool {
        self == RenkeiType::MyNumber
    }

    /// Normalises `input` (already trimmed and non-empty) to its stored form. `today` is the
    /// date in Japan, for `jp-birth-date`.
    pub fn normalize(self, input: &str, today: NaiveDate) -> Result<String, FormatError> {
        match self {
            RenkeiType::Kana => normalize_kana(input).ok_or(FormatError::Kana),
            RenkeiType::PostalCode => jp::postal::normalize(input)
                .map(|p| p.as_str().to_string())
                .map_err(|_| FormatError::PostalCode),
            RenkeiType::Phone => jp::phone::normalize(input)
                .map(|p| p.to_string())
                .map_err(|_| FormatError::Phone),
            RenkeiType::Date => parse_date(input),
            RenkeiType::BirthDate => {
                let iso = parse_date(input)?;
                match NaiveDate::parse_from_str(&iso, "%Y-%m-%d") {
                    Ok(date) if date > today => Err(FormatError::FutureDate),
                    _ => Ok(iso),
                }
            }
            RenkeiType::MyNumber => normalize_my_number(input),
            RenkeiType::Email => normalize_email(input),
        }
    }
}

fn parse_date(input: &str) -> Result<String, FormatError> {
    jp::wareki::parse_date(input)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| FormatError::Date)
}

/// Katakana for フリガナ: hiragana and half-width kana become full-width katakana, runs of
/// white space become one ideographic space (姓と名の間). `None` when anything else is left.
pub fn normalize_kana(input: &str) -> Option<String> {
    // NFKC merges half-width kana with their voiced marks (ﾀﾞ → ダ) and maps U+3000 to an
    // ASCII space, which the loop below turns back into the Japanese one.
    let nfkc = jp::width::normalize(input);
    let mut out = String::with_capacity(nfkc.len());
    let mut pending_space = false;
    for c in nfkc.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let k = match c {
            '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' => char::from_u32(c as u32 + 0x60)?,
            '\u{30A1}'..='\u{30FA}' | '\u{30FB}' | '\u{30FC}' | '\u{30FD}' | '\u{30FE}' => c,
            _ => return None,
        };
        if pending_space {
            out.push('\u{3000}');
            pending_space = false;
        }
        out.push(k);
    }
    (!out.is_empty()).then_some(out)
}

/// The check digit of an 11-digit マイナンバー body, as defined by 行政手続における特定の個人を
/// 識別するための番号の利用等に関する法律施行令 第8条: weights 2..7 then 2..6 from the right,
/// remainder modulo 11, 0 when the remainder is 0 or 1. `None` unless `body` is 11 ASCII digits.
pub fn my_number_check_digit(body: &str) -> Option<u32> {
    if body.len() != 11 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let n = i as u32 + 1;
            let weight = if n <= 6 { n + 1 } else { n - 5 };
            u32::from(b - b'0') * weight
        })
        .sum();
    let remainder = sum % 11;
    Some(if remainder <= 1 { 0 } else { 11 - remainder })
}

fn normalize_my_number(input: &str) -> Result<String, FormatError> {
    let text = jp::width::normalize_digits(input);
    let mut digits = String::with_capacity(12);
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | ' ' | '\u{3000}' => {}
            _ => return Err(FormatError::MyNumberFormat),
        }
    }
    if digits.len() != 12 {
        return Err(FormatError::MyNumberFormat);
    }
    let (body, check) = digits.split_at(11);
    match (my_number_check_digit(body), check.parse::<u32>()) {
        (Some(expected), Ok(given)) if expected == given => Ok(digits),
        _ => Err(FormatError::MyNumberCheckDigit),
    }
}

/// NFKC (residents type ＠ and full-width letters with a Japanese IME), then a plain
/// `local@domain.tld` shape check; the domain is lower-cased, the local part kept.
fn normalize_email(input: &str) -> Result<String, FormatError> {
    let text = jp::width::normalize(input);
    let (local, domain) = text.rsplit_once('@').ok_or(FormatError::Email)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"@()<>[]:;\\,\"".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok
        && domain_ok
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
    {
        Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
    } else {
        Err(FormatError::Email)
    }
}

/// What the stored answers carry instead of a sealed value. Only a valid マイナンバー shows
/// its last four digits; an invalid one would otherwise come back on resume looking sealed.
pub(crate) fn mask(kind: Option<RenkeiType>, clear: &Value, valid: bool) -> Value {
    match (kind, clear.as_str()) {
        (Some(RenkeiType::MyNumber), Some(s))
            if valid && s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Value::String(format!("********{}", &s[8..]))
        }
        (Some(RenkeiType::MyNumber), _) => Value::String("*".repeat(12)),
        _ => Value::String("********".to_string()),
    }
}

/// Whether a value is the mask of a value sealed earlier (a draft coming back on resume).
pub(crate) fn is_mask(kind: Option<RenkeiType>, value: &Value) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    match kind {
        Some(RenkeiType::MyNumber) => {
            s.len() == 12 && s.starts_with("********") && s[8..].bytes().all(|b| b.is_ascii_digit())
        }
        _ => s == "********",
    }
}
