//! Verification codes printed on receipts and notices of decision, and the digest that ties a
//! code to the exact PDF it was printed on.
//!
//! A code is 80 random bits written as 16 characters of Crockford base32 in four groups,
//! `7K3M-Q9TD-2XWB-H4NE`: short enough to type from paper, long enough that guessing a valid
//! code is hopeless. People copy codes by hand, so parsing forgives what hands do: lower case,
//! missing or extra hyphens and spaces, full-width characters from a Japanese IME, and the
//! letters O, I and L typed for the digits 0, 1 and 1 (Crockford's own rule).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Crockford's base32 alphabet: digits and upper-case letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Number of random bytes in a code (80 bits).
pub const CODE_BYTES: usize = 10;

/// Number of base32 characters in a code, hyphens not counted.
pub const CODE_CHARS: usize = 16;

/// Why a string is not a verification code. Messages are Japanese first, then English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerificationCodeError {
    #[error(
        "検証コードに使えない文字「{character}」が含まれています / \
         the verification code contains {character:?}, which is not allowed"
    )]
    InvalidCharacter { character: char },
    #[error(
        "検証コードは16文字です（{found}文字ありました） / \
         a verification code has 16 characters, found {found}"
    )]
    WrongLength { found: usize },
}

/// The operating system's random source failed; a code must never be made from anything weaker.
#[derive(Debug, Clone, thiserror::Error)]
#[error("乱数を取得できませんでした / the system random number source failed: {0}")]
pub struct RandomSourceError(String);

/// An 80-bit verification code; its [`Display`](fmt::Display) form is the canonical
/// `XXXX-XXXX-XXXX-XXXX`, which is also how it is stored and serialised.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VerificationCode([u8; CODE_BYTES]);

impl VerificationCode {
    /// A fresh code from the operating system's cryptographic random source.
    pub fn generate() -> Result<Self, RandomSourceError> {
        let mut bytes = [0u8; CODE_BYTES];
        getrandom::getrandom(&mut bytes).map_err(|e| RandomSourceError(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The code for these 80 bits.
    pub fn from_bytes(bytes: [u8; CODE_BYTES]) -> Self {
        Self(bytes)
    }

    /// The 80 bits of this code.
    pub fn as_bytes(&self) -> &[u8; CODE_BYTES] {
        &self.0
    }

    /// Reads a code as a person may have typed it; see the module note for what is forgiven.
    pub fn parse(input: &str) -> Result<Self, VerificationCodeError> {
        // Full-width letters, digits and hyphens (ＡＢ１－) are what a Japanese IME produces.
        let normalized = jp::width::normalize(input);
        let mut values = Vec::with_capacity(CODE_CHARS);
        for character in normalized.chars() {
            if matches!(
                character,
                '-' | ' ' | '\u{2010}'..='\u{2015}' | '\u{2212}' | 'ー'
            ) {
                continue;
            }
            let value = symbol_value(character)
                .ok_or(VerificationCodeError::InvalidCharacter { character })?;
            values.push(value);
        }
        if values.len() != CODE_CHARS {
            return Err(VerificationCodeError::WrongLength {
                found: values.len(),
            });
        }
        let mut bits: u128 = 0;
        for value in values {
            bits = (bits << 5) | u128::from(value);
        }
        let mut bytes = [0u8; CODE_BYTES];
        for (index, byte) in bytes.iter_mut().enumerate() {
            // 80 bits fill the low 10 bytes; the first byte is the most significant.
            *byte = (bits >> (8 * (CODE_BYTES - 1 - index))) as u8;
        }
        Ok(Self(bytes))
    }
}

/// The value of one Crockford symbol, forgiving case and the look-alikes O, I and L.
fn symbol_value(character: char) -> Option<u8> {
    let upper = character.to_ascii_uppercase();
    let canonical = match upper {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    if !canonical.is_ascii() {
        return None;
    }
    ALPHABET
        .iter()
        .position(|&symbol| symbol == canonical as u8)
        .map(|position| position as u8)
}

impl fmt::Display for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self
            .0
            .iter()
            .fold(0u128, |acc, &byte| (acc << 8) | u128::from(byte));
        let mut out = String::with_capacity(CODE_CHARS + 3);
        for index in 0..CODE_CHARS {
            if index > 0 && index % 4 == 0 {
                out.push('-');
            }
            let shift = 5 * (CODE_CHARS - 1 - index);
            out.push(ALPHABET[((bits >> shift) & 0x1f) as usize] as char);
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerificationCode({self})")
    }
}

impl FromStr for VerificationCode {
    type Err = VerificationCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for VerificationCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VerificationCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The SHA-256 of a document's bytes as 64 lower-case hex digits: stored beside its
/// verification code, so the public verification page can say whether a file someone holds
/// is byte for byte the document that was issued.
pub fn document_digest(pdf: &[u8]) -> String {
    let digest = Sha256::digest(pdf);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";
