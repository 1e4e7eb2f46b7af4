//! Character encoding detection for Japanese files. Municipal open data is
//! published as UTF-8, UTF-8 with a byte order mark (what Excel writes), or
//! Shift_JIS (what Excel wrote for years and many offices still do), and the
//! file never says which. [`decode`] takes valid UTF-8 as UTF-8 and
//! otherwise tries Shift_JIS in its Windows form (CP932, the WHATWG
//! `Shift_JIS` of `encoding_rs`, which includes the NEC and IBM extensions
//! such as ① and 髙). When neither fits, the error names the line and byte
//! so that whoever publishes the file can find and fix it.

use std::fmt;

use encoding_rs::{DecoderResult, SHIFT_JIS};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The encoding a file turned out to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Utf8,
    /// UTF-8 starting with a byte order mark, which has been removed.
    Utf8Bom,
    /// Shift_JIS as Windows writes it (CP932).
    ShiftJis,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Bom => "UTF-8 (BOM)",
            Encoding::ShiftJis => "Shift_JIS",
        })
    }
}

/// Decoded text together with the encoding it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    pub encoding: Encoding,
}

/// Why bytes could not be decoded. Lines count from 1; the byte offset is
/// from the start of the input, counting from 0, and includes any BOM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "{line}行目 (バイト位置 {offset}) の文字を読めません: UTF-8 でも Shift_JIS でもありません (0x{byte:02X}) / \
         line {line} (byte {offset}): not valid UTF-8 nor Shift_JIS (0x{byte:02X})"
    )]
    NeitherUtf8NorShiftJis {
        line: usize,
        offset: usize,
        byte: u8,
    },
    /// A BOM declares UTF-8, so Shift_JIS is not tried after it.
    #[error(
        "{line}行目 (バイト位置 {offset}) の文字を読めません: BOM 付き UTF-8 ですが不正なバイトがあります (0x{byte:02X}) / \
         line {line} (byte {offset}): file starts with a UTF-8 BOM but has an invalid byte (0x{byte:02X})"
    )]
    InvalidUtf8AfterBom {
        line: usize,
        offset: usize,
        byte: u8,
    },
}

impl DecodeError {
    /// 1-based line of the first undecodable byte.
    pub fn line(&self) -> usize {
        match self {
            DecodeError::NeitherUtf8NorShiftJis { line, .. }
            | DecodeError::InvalidUtf8AfterBom { line, .. } => *line,
        }
    }

    /// 0-based byte offset of the first undecodable byte in the input.
    pub fn offset(&self) -> usize {
        match self {
            DecodeError::NeitherUtf8NorShiftJis { offset, .. }
            | DecodeError::InvalidUtf8AfterBom { offset, .. } => *offset,
        }
    }
}

/// Decodes a file's bytes, detecting UTF-8, UTF-8 with BOM and Shift_JIS.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return match std::str::from_utf8(rest) {
            Ok(text) => Ok(Decoded {
                text: text.to_string(),
                encoding: Encoding::Utf8Bom,
            }),
            Err(e) => {
                let offset = UTF8_BOM.len() + e.valid_up_to();
                Err(DecodeError::InvalidUtf8AfterBom {
                    line: line_of(bytes, offset),
                    offset,
                    byte: bytes.get(offset).copied().unwrap_or(0),
                })
            }
        };
    }
    let utf8_error_at = match std::str::from_utf8(bytes) {
        Ok(text) => {
            return Ok(Decoded {
                text: text.to_string(),
                encoding: Encoding::Utf8,
            })
        }
        Err(e) => e.valid_up_to(),
    };
    let sjis_error_at = match decode_shift_jis(bytes) {
        Ok(text) => {
            return Ok(Decoded {
                text,
                encoding: Encoding::ShiftJis,
            })
        }
        Err(at) => at,
    };
    // The encoding that got further is more likely the one the author meant,
    // so its first bad byte is the one worth pointing at.
    let offset = utf8_error_at.max(sjis_error_at);
    Err(DecodeError::NeitherUtf8NorShiftJis {
        line: line_of(bytes, offset),
        offset,
        byte: bytes.get(offset).copied().unwrap_or(0),
    })
}

/// Decodes strictly as Shift_JIS, returning the offset of the first
/// malformed byte on failure.
fn decode_shift_jis(bytes: &[u8]) -> Result<String, usize> {
    let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(3));
    let mut text = String::with_capacity(capacity);
    let mut consumed = 0;
    loop {
        let rest = bytes.get(consumed..).unwrap_or_default();
        let (result, read) = decoder.decode_to_string_without_replacement(rest, &mut text, true);
        consumed += read;
        match result {
            DecoderResult::InputEmpty => return Ok(text),
            DecoderResult::OutputFull => text.reserve(rest.len().saturating_mul(3).max(16)),
            // The malformed sequence is `len` bytes long and ends `after`
            // bytes before the read position.
            DecoderResult::Malformed(len, after) => {
                return Err(consumed.saturating_sub(usize::from(len) + usize::from(after)))
            }
        }
    }
}

/// ASCII 0x0A never occurs inside a multi-byte character in UTF-8 or
/// Shift_JIS (trail bytes are 0x40 and above), so counting it is exact.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    let before = bytes.get(..offset).unwrap_or(bytes);
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bom_is_stripped() {
        let mut bytes = UTF8_BOM.to_vec();
        bytes.extend_from_slice("都道府県コード,名称".as_bytes());
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.encoding, Encoding::Utf8Bom);
        assert_eq!(decoded.text, "都道府県コード,名称");
    }

    #[test]
    fn shift_jis_is_detected() {
        let original = "名称,住所\n焼津市役所,静岡県焼津市本町2-16-32\n";
        let (bytes, _, unmappable) = SHIFT_JIS.encode(original);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err());
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.encoding, Encoding::ShiftJis);
        assert_eq!(decoded.text, original);
    }

    #[test]
    fn cp932_extensions_decode() {
        // 0x8740 is NEC's circled one; 0xFBFC is the IBM extension 髙.
        let decoded = decode(b"\x87\x40\xFB\xFC").unwrap();
        assert_eq!(decoded.encoding, Encoding::ShiftJis);
        assert_eq!(decoded.text, "①髙");
    }

    #[test]
    fn neither_names_line_and_byte() {
        // 0xFF is invalid in both encodings.
        let bytes = b"a,b\nc,d\nef\xFFg\n";
        let err = decode(bytes).unwrap_err();
        assert_eq!(err.line(), 3);
        assert_eq!(err.offset(), 10);
        let msg = err.to_string();
        assert!(msg.contains("3行目 (バイト位置 10)"), "{msg}");
        assert!(msg.contains("line 3 (byte 10)"), "{msg}");
        assert!(msg.contains("0xFF"), "{msg}");
    }

    #[test]
    fn bad_byte_after_bom_is_reported() {
        let err = decode(b"\xEF\xBB\xBFab\n\x82\xA0").unwrap_err();
        assert!(matches!(err, DecodeError::InvalidUtf8AfterBom { .. }));
        assert_eq!((err.line(), err.offset()), (2, 6));
    }

    #[test]
    fn empty_input_is_utf8() {
        assert_eq!(decode(b"").unwrap().text, "");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            match decode(&bytes) {
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(e.offset() < bytes.len());
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }

        #[test]
        fn utf8_round_trips(s in any::<String>()) {
            let decoded = decode(s.as_bytes()).unwrap();
            prop_assert_eq!(decoded.text.as_str(), s.strip_prefix('\u{FEFF}').unwrap_or(&s));
        }
    }
}
