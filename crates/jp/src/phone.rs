//! Japanese telephone numbers. Municipal files write them as
//! `(054)626-1139`, `054-625-0128`, `０５４６２５０１２８` or
//! `+81 54 625 0128`; this module checks that the result is a domestic
//! number of the right length for its kind (10 digits for fixed lines, 11
//! for mobiles, IP phones and 0800 free dial) and keeps the grouping the
//! publisher chose, since the split of a fixed-line number depends on the
//! area code and cannot be guessed without the national numbering table.

use std::fmt;
use std::str::FromStr;

use crate::width::normalize_digits;

/// Why a telephone number was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("電話番号が空です / phone number is empty")]
    Empty,
    #[error(
        "電話番号「{input}」に使えない文字「{ch}」があります / \
         phone number {input:?} contains {ch:?}, which is not a digit, space, hyphen or parenthesis"
    )]
    InvalidCharacter { input: String, ch: char },
    #[error(
        "電話番号「{input}」は 0 で始まる国内の番号ではありません (国際番号は +81 で書いてください) / \
         phone number {input:?} is not a domestic number starting with a single 0 (write international numbers with +81)"
    )]
    NotStartingWithZero { input: String },
    #[error(
        "電話番号「{input}」は{digits}桁ですが、{expected}桁のはずです / \
         phone number {input:?} has {digits} digits, expected {expected}"
    )]
    Length {
        input: String,
        digits: usize,
        expected: usize,
    },
}

/// What kind of line a number belongs to, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    /// 固定電話: area code numbers, 10 digits.
    Fixed,
    /// 携帯電話 070/080/090, 11 digits.
    Mobile,
    /// IP 電話 050, 11 digits.
    Ip,
    /// フリーダイヤル 0120 (10 digits) and 0800 (11 digits).
    FreeDial,
    /// Other non-geographic services: 0570 ナビダイヤル, 0990, 020, 060.
    Other,
}

impl PhoneKind {
    fn of(digits: &str) -> PhoneKind {
        if digits.starts_with("0120") || digits.starts_with("0800") {
            PhoneKind::FreeDial
        } else if ["070", "080", "090"].iter().any(|p| digits.starts_with(p)) {
            PhoneKind::Mobile
        } else if digits.starts_with("050") {
            PhoneKind::Ip
        } else if ["0570", "0990", "020", "060"]
            .iter()
            .any(|p| digits.starts_with(p))
        {
            PhoneKind::Other
        } else {
            PhoneKind::Fixed
        }
    }

    /// Number of digits, including the leading 0, that a number with this
    /// prefix must have.
    fn expected_len(self, digits: &str) -> usize {
        match self {
            PhoneKind::Mobile | PhoneKind::Ip => 11,
            PhoneKind::FreeDial if digits.starts_with("0800") => 11,
            PhoneKind::Other if digits.starts_with("020") || digits.starts_with("060") => 11,
            _ => 10,
        }
    }

    /// Standard grouping for prefixes where it is fixed nationally.
    fn grouping(self, digits: &str) -> Option<[usize; 3]> {
        match self {
            PhoneKind::Mobile | PhoneKind::Ip => Some([3, 4, 4]),
            PhoneKind::Other if digits.len() == 11 => Some([3, 4, 4]),
            PhoneKind::FreeDial | PhoneKind::Other if digits.starts_with("0800") => Some([4, 3, 4]),
            PhoneKind::FreeDial | PhoneKind::Other => Some([4, 3, 3]),
            PhoneKind::Fixed => None,
        }
    }
}

/// A validated domestic telephone number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    digits: String,
    /// The digit groups as written, or the standard grouping when it was
    /// written without separators; a single group means "digits only".
    groups: Vec<String>,
}

impl PhoneNumber {
    /// The digits only, with the leading 0: `0546250128`.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    pub fn kind(&self) -> PhoneKind {
        PhoneKind::of(&self.digits)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.groups.join("-"))
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        normalize(s)
    }
}

/// Parses a Japanese telephone number. Spaces, hyphens (and their
/// look-alikes) and parentheses separate digit groups; `+81` is replaced by
/// the domestic 0, dropping a `(0)` that some write after it.
pub fn normalize(input: &str) -> Result<PhoneNumber, PhoneError> {
    let text = normalize_digits(input);
    let text = text.trim();
    if text.is_empty() {
        return Err(PhoneError::Empty);
    }
    let (international, rest) = match text.strip_prefix("+81") {
        Some(rest) => {
            let rest = rest.trim_start_matches([' ', '-', '\u{3000}']);
            (true, rest.strip_prefix("(0)").unwrap_or(rest))
        }
        None => (false, text),
    };

    let mut groups: Vec<String> = Vec::new();
    let mut current = String::new();
    for ch in rest.chars() {
        match ch {
            '0'..='9' => current.push(ch),
            '-' | '(' | ')' | '（' | '）' | ' ' | '\u{3000}' | '\t' => {
                if !current.is_empty() {
                    groups.push(std::mem::take(&mut current));
                }
            }
            _ => {
                return Err(PhoneError::InvalidCharacter {
                    input: input.to_string(),
                    ch,
                })
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    if international {
        match groups.first_mut() {
            // `+81 054…` is a common slip for `+81 54…`: the trunk 0 was
            // kept, so it is not added a second time.
            Some(first) if first.starts_with('0') => {}
            Some(first) => first.insert(0, '0'),
            None => {
                return Err(PhoneError::Length {
                    input: input.to_string(),
                    digits: 0,
                    expected: 10,
                })
            }
        }
    }

    let digits: String = groups.concat();
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    if !digits.starts_with('0') || digits.starts_with("00") {
        return Err(PhoneError::NotStartingWithZero {
            input: input.to_string(),
        });
    }
    let kind = PhoneKind::of(&digits);
    let expected = kind.expected_len(&digits);
    if digits.len() != expected {
        return Err(PhoneError::Length {
            input: input.to_string(),
            digits: digits.len(),
            expected,
        });
    }
    if groups.len() == 1 {
        if let Some(sizes) = kind.grouping(&digits) {
            groups = split_groups(&digits, sizes);
        }
    }
    Ok(PhoneNumber { digits, groups })
}

/// Whether `input` is already written as [`normalize`] writes it: ASCII
/// digit groups joined by single hyphens, at least two groups, a domestic
/// number of the right length. Loading a file checks one phone number per
/// row; most are written so, and this tells without the allocations of a
/// full parse.
pub fn is_normal(input: &str) -> bool {
    let bytes = input.as_bytes();
    let mut digits = [0u8; 11];
    let mut count = 0;
    let mut groups = 1;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                let Some(slot) = digits.get_mut(count) else {
                    return false;
                };
                *slot = b;
                count += 1;
            }
            // Between two digits only.
            b'-' if i > 0 && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                if !bytes[i - 1].is_ascii_digit() {
                    return false;
                }
                groups += 1;
            }
            _ => return false,
        }
    }
    let Ok(digits) = std::str::from_utf8(&digits[..count]) else {
        return false;
    };
    groups >= 2
        && digits.starts_with('0')
        && !digits.starts_with("00")
        && digits.len() == PhoneKind::of(digits).expected_len(digits)
}

/// Splits ASCII digits into groups of the given sizes; the sizes always add
/// up to the validated length, and any remainder is kept as a last group.
fn split_groups(digits: &str, sizes: [usize; 3]) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    let mut rest = digits;
    for size in sizes {
        let (head, tail) = rest.split_at(size.min(rest.len()));
        if !head.is_empty() {
            out.push(head.to_string());
        }
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shown(input: &str) -> String {
        normalize(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .to_string()
    }

    #[test]
    fn normal_forms_are_told_without_parsing() {
        for normal in [
            "054-626-1139",
            "03-1234-5678",
            "090-1234-5678",
            "0120-123-456",
        ] {
            assert!(is_normal(normal), "{normal}");
        }
        for other in [
            "(054)626-1139",
            "0546261139",
            "054--626-1139",
            "-054-626-1139",
            "054-626-113",
            "00-1234-5678",
            "054-626-1139-",
        ] {
            assert!(!is_normal(other), "{other}");
        }
    }

    #[test]
    fn keeps_the_grouping_given() {
        assert_eq!(shown("054-625-0128"), "054-625-0128");
        assert_eq!(shown("(054)625-0128"), "054-625-0128");
        assert_eq!(shown("（０５４）６２６－１１３９"), "054-626-1139");
        assert_eq!(shown("054 625 0128"), "054-625-0128");
        assert_eq!(shown("03-1234-5678"), "03-1234-5678");
        assert_eq!(shown("0548-12-3456"), "0548-12-3456");
        assert_eq!(shown("054ー625ー0128"), "054-625-0128");
    }

    #[test]
    fn international_form_becomes_domestic() {
        assert_eq!(shown("+81 54 625 0128"), "054-625-0128");
        assert_eq!(shown("+81-90-1234-5678"), "090-1234-5678");
        assert_eq!(shown("+81 (0)54 625 0128"), "054-625-0128");
        assert_eq!(shown("+81 054-625-0128"), "054-625-0128");
        assert_eq!(shown("＋８１５４６２５０１２８"), "0546250128");
    }

    #[test]
    fn groups_numbers_written_without_separators_when_standard() {
        assert_eq!(shown("09012345678"), "090-1234-5678");
        assert_eq!(shown("05012345678"), "050-1234-5678");
        assert_eq!(shown("0120123456"), "0120-123-456");
        assert_eq!(shown("08001234567"), "0800-123-4567");
        assert_eq!(shown("0570123456"), "0570-123-456");
        // A fixed line's area code may be 1 to 5 digits: left as digits.
        assert_eq!(shown("0546250128"), "0546250128");
    }

    #[test]
    fn digits_and_kind() {
        let n = normalize("(054)625-0128").unwrap();
        assert_eq!(n.digits(), "0546250128");
        assert_eq!(n.kind(), PhoneKind::Fixed);
        assert_eq!(
            normalize("080-1234-5678").unwrap().kind(),
            PhoneKind::Mobile
        );
        assert_eq!(
            normalize("0120-123-456").unwrap().kind(),
            PhoneKind::FreeDial
        );
        assert_eq!(normalize("050-1234-5678").unwrap().kind(), PhoneKind::Ip);
        assert_eq!(
            "0570-123-456".parse::<PhoneNumber>().unwrap().kind(),
            PhoneKind::Other
        );
    }

    #[test]
    fn rejects_wrong_numbers() {
        assert_eq!(normalize(" "), Err(PhoneError::Empty));
        assert_eq!(normalize("()-"), Err(PhoneError::Empty));
        assert!(matches!(
            normalize("054-625-012"),
            Err(PhoneError::Length {
                digits: 9,
                expected: 10,
                ..
            })
        ));
        assert!(matches!(
            normalize("090-1234-567"),
            Err(PhoneError::Length {
                digits: 10,
                expected: 11,
                ..
            })
        ));
        assert!(matches!(
            normalize("0120-123-4567"),
            Err(PhoneError::Length {
                digits: 11,
                expected: 10,
                ..
            })
        ));
        assert!(matches!(
            normalize("546250128"),
            Err(PhoneError::NotStartingWithZero { .. })
        ));
        assert!(matches!(
            normalize("0081546250128"),
            Err(PhoneError::NotStartingWithZero { .. })
        ));
        assert!(matches!(
            normalize("TEL 054-625-0128"),
            Err(PhoneError::InvalidCharacter { ch: 'T', .. })
        ));
        let msg = normalize("054-625-012").unwrap_err().to_string();
        assert!(msg.contains("9桁") && msg.contains("expected 10"), "{msg}");
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            if let Ok(n) = normalize(&s) {
                prop_assert!(n.digits().len() == 10 || n.digits().len() == 11);
                // What we display parses back to the same number.
                prop_assert_eq!(normalize(&n.to_string()).map(|m| m.digits().to_string()), Ok(n.digits().to_string()));
            }
        }

        #[test]
        // 0800 is free dial, so no mobile number continues 080-0.
        fn mobile_numbers_group_3_4_4(rest in "[1-9][0-9]{7}", p in "0[789]0") {
            let n = normalize(&format!("{p}{rest}")).unwrap();
            prop_assert_eq!(n.to_string(), format!("{p}-{}-{}", &rest[..4], &rest[4..]));
        }

        /// `is_normal` says yes exactly when `normalize` gives the input
        /// back unchanged with two groups or more (a single group may be
        /// regrouped, so it is left to the full parse).
        #[test]
        fn is_normal_is_normalize_changing_nothing(s in "[-0-9０()+ ]{0,16}|0[0-9]{1,4}-[0-9]{1,4}-?[0-9]{0,5}") {
            let unchanged = normalize(&s).is_ok_and(|n| n.to_string() == s && s.contains('-'));
            prop_assert_eq!(is_normal(&s), unchanged, "{:?}", s);
        }
    }
}
