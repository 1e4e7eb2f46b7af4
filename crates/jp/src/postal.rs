//! Japanese postal codes (郵便番号). Files write them as `〒425-0028`,
//! `4250028`, `４２５－００２８` or with a stray dash look-alike; this module
//! checks there are exactly seven digits (three, then four) and gives the
//! one form everyone reads, `425-0028`. It does not check that the code is
//! actually assigned, which would need Japan Post's list.

use std::fmt;
use std::str::FromStr;

use crate::width::normalize_digits;

/// Why a postal code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostalError {
    #[error("郵便番号が空です / postal code is empty")]
    Empty,
    #[error(
        "郵便番号「{input}」に使えない文字「{ch}」があります / \
         postal code {input:?} contains {ch:?}, which is not a digit or hyphen"
    )]
    InvalidCharacter { input: String, ch: char },
    #[error(
        "郵便番号「{input}」は 123-4567 または 1234567 の形ではありません / \
         postal code {input:?} is not of the form 123-4567 or 1234567"
    )]
    Format { input: String },
}

/// A postal code of seven digits, displayed as `425-0028`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PostalCode {
    /// Always `NNN-NNNN` with ASCII digits.
    formatted: String,
}

impl PostalCode {
    /// `425-0028`.
    pub fn as_str(&self) -> &str {
        &self.formatted
    }

    /// `4250028`.
    pub fn digits(&self) -> String {
        self.formatted
            .chars()
            .filter(char::is_ascii_digit)
            .collect()
    }
}

impl fmt::Display for PostalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formatted)
    }
}

impl FromStr for PostalCode {
    type Err = PostalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        normalize(s)
    }
}

/// Parses a postal code, accepting a leading 〒 (or `〶`), full-width digits,
/// any dash look-alike and surrounding white space.
pub fn normalize(input: &str) -> Result<PostalCode, PostalError> {
    let digits_only = normalize_digits(input);
    let body = digits_only.trim();
    let body = body
        .strip_prefix(['〒', '〶'])
        .map_or(body, str::trim_start);
    if body.is_empty() {
        return Err(PostalError::Empty);
    }
    if let Some(ch) = body.chars().find(|c| !c.is_ascii_digit() && *c != '-') {
        return Err(PostalError::InvalidCharacter {
            input: input.to_string(),
            ch,
        });
    }
    let (head, tail) = match body.split_once('-') {
        Some(parts) => parts,
        None if body.len() == 7 => body.split_at(3),
        None => ("", ""),
    };
    if head.len() != 3 || tail.len() != 4 || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PostalError::Format {
            input: input.to_string(),
        });
    }
    Ok(PostalCode {
        formatted: format!("{head}-{tail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_common_spellings() {
        for input in [
            "〒425-0028",
            "4250028",
            "４２５－００２８",
            "〒 ４２５ー００２８ ",
            "425−0028",
            "\u{3000}425-0028",
        ] {
            let code = normalize(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(code.as_str(), "425-0028", "{input}");
            assert_eq!(code.digits(), "4250028");
        }
        assert_eq!(
            "100-0001".parse::<PostalCode>().unwrap().to_string(),
            "100-0001"
        );
    }

    #[test]
    fn rejects_malformed_codes() {
        assert_eq!(normalize(" 〒 "), Err(PostalError::Empty));
        assert!(matches!(
            normalize("425-002"),
            Err(PostalError::Format { .. })
        ));
        assert!(matches!(
            normalize("42500288"),
            Err(PostalError::Format { .. })
        ));
        assert!(matches!(
            normalize("4250-028"),
            Err(PostalError::Format { .. })
        ));
        assert!(matches!(
            normalize("425-00-28"),
            Err(PostalError::Format { .. })
        ));
        assert!(matches!(
            normalize("425-002A"),
            Err(PostalError::InvalidCharacter { ch: 'A', .. })
        ));
        let msg = normalize("12345").unwrap_err().to_string();
        assert!(msg.contains("12345") && msg.contains("123-4567"), "{msg}");
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            if let Ok(code) = normalize(&s) {
                prop_assert_eq!(code.as_str().len(), 8);
                prop_assert_eq!(normalize(code.as_str()), Ok(code.clone()));
            }
        }

        #[test]
        fn any_seven_digits_parse(d in "[0-9]{7}") {
            let code = normalize(&d).unwrap();
            prop_assert_eq!(code.digits(), d);
        }
    }
}
