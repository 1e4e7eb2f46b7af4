//! Checking that bytes are Shift_JIS (CP932, the WHATWG `Shift_JIS` of
//! `encoding_rs`) without decoding them, for a loader that must reject an
//! undecodable file before loading any of it and would otherwise decode
//! the whole file twice; and decoding it with one table lookup per
//! two-byte character ([`decode`]), which decodes the catalog's chunks
//! about a tenth to a third faster than `encoding_rs`, whose tables are
//! compact and searched by range. The table of lead and trail byte pairs
//! is built once from `encoding_rs` itself, so [`is_valid`], [`Validator`]
//! and [`decode`] agree with it by construction; the tests compare them
//! over every byte pair and random input.
//!
//! A valid file can then be split into records before it is decoded: the
//! bytes CSV and TSV split at (tab, line feed, carriage return, `"` and
//! `,`) are all below 0x40, and no Shift_JIS character has a second byte
//! below 0x40, so every field of a valid file is whole characters.

use std::sync::LazyLock;

use encoding_rs::SHIFT_JIS;

/// Lead bytes of two-byte characters: 0x81–0x9F and 0xE0–0xFC.
fn lead_index(byte: u8) -> Option<usize> {
    match byte {
        0x81..=0x9F => Some(usize::from(byte - 0x81)),
        0xE0..=0xFC => Some(usize::from(byte - 0xE0) + 31),
        _ => None,
    }
}

const LEADS: usize = 31 + 29;

/// The character of each (lead, trail) pair, as `encoding_rs` decodes it
/// (with no error and to one character), in UTF-8: its bytes and, last,
/// their count (every such character is in the Basic Multilingual Plane,
/// so at most three); all zero where the pair is not a character. Rows
/// are indexed by the whole trail byte, so a lookup needs no range check.
struct PairTable(Box<[[[u8; 4]; 256]; LEADS]>);

static PAIRS: LazyLock<PairTable> = LazyLock::new(|| {
    let mut table = Box::new([[[0; 4]; 256]; LEADS]);
    for lead in (0x81..=0x9Fu8).chain(0xE0..=0xFC) {
        let Some(row) = lead_index(lead) else {
            continue;
        };
        for trail in 0x40..=0xFCu8 {
            let pair = [lead, trail];
            let (text, malformed) = SHIFT_JIS.decode_without_bom_handling(&pair);
            let mut chars = text.chars();
            if let (false, Some(c), None) = (malformed, chars.next(), chars.next()) {
                let entry = &mut table[row][usize::from(trail)];
                let len = c.encode_utf8(&mut entry[..3]).len();
                entry[3] = len as u8;
            }
        }
    }
    PairTable(table)
});

impl PairTable {
    /// The pair's entry (its UTF-8, then the count of those bytes), or
    /// `None` when it is not a character.
    fn entry(&self, lead: usize, trail: u8) -> Option<&[u8; 4]> {
        let entry = &self.0[lead][usize::from(trail)];
        (entry[3] > 0).then_some(entry)
    }

    fn is_pair(&self, lead: usize, trail: u8) -> bool {
        self.entry(lead, trail).is_some()
    }
}

/// Whether the eight bytes at `at` are all ASCII (false when fewer remain).
fn ascii_word_at(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at..at + 8)
        .and_then(|word| word.try_into().ok())
        .is_some_and(|word| u64::from_le_bytes(word) & 0x8080_8080_8080_8080 == 0)
}

/// Decodes `bytes` into `out`, as `encoding_rs` decodes them, and gives
/// the text; `None` when they are not all Shift_JIS (a character cut at
/// the end included). `out` is a buffer kept between calls: it is grown
/// to the most the text can take (three bytes of UTF-8 for one of
/// Shift_JIS) and written by fixed-size copies, eight ASCII bytes or one
/// table entry at a time: appending each piece to a `String` checked
/// every short ASCII run as UTF-8, which made a table decoder no faster
/// than `encoding_rs`. The UTF-8 is then checked once, whole, with
/// `simdutf8`, since safe code cannot take it as text unchecked.
pub fn decode<'o>(bytes: &[u8], out: &'o mut Vec<u8>) -> Option<&'o str> {
    let pairs = &*PAIRS;
    // Room for a last eight-byte copy past the text.
    let most = 3 * bytes.len() + 8;
    if out.len() < most {
        out.resize(most, 0);
    }
    let (mut i, mut o) = (0, 0);
    while i < bytes.len() {
        if ascii_word_at(bytes, i) {
            out[o..o + 8].copy_from_slice(&bytes[i..i + 8]);
            i += 8;
            o += 8;
            continue;
        }
        let byte = bytes[i];
        if byte.is_ascii() {
            out[o] = byte;
            i += 1;
            o += 1;
        } else if let Some(lead) = lead_index(byte) {
            let entry = pairs.entry(lead, *bytes.get(i + 1)?)?;
            out[o..o + 4].copy_from_slice(entry);
            i += 2;
            o += usize::from(entry[3]);
        } else {
            let (utf8, len) = match byte {
                // Half-width katakana, U+FF61–U+FF9F: EF BD A1–BF, EF BE 80–9F.
                0xA1..=0xBF => ([0xEF, 0xBD, byte], 3),
                0xC0..=0xDF => ([0xEF, 0xBE, byte - 0x40], 3),
                // U+0080, and a third byte the next character overwrites.
                0x80 => ([0xC2, 0x80, 0], 2),
                _ => return None,
            };
            out[o..o + 3].copy_from_slice(&utf8);
            i += 1;
            o += len;
        }
    }
    simdutf8::basic::from_utf8(&out[..o]).ok()
}

/// A one-byte character: ASCII, 0x80 (U+0080, as WHATWG maps it) and the
/// half-width katakana 0xA1–0xDF.
fn is_single(byte: u8) -> bool {
    matches!(byte, 0x00..=0x80 | 0xA1..=0xDF)
}

/// Checks bytes without decoding them. A stream cut into pieces is checked
/// with a [`Validator`].
pub fn is_valid(bytes: &[u8]) -> bool {
    let mut validator = Validator::default();
    validator.feed(bytes) && validator.finish()
}

/// Checks a stream of Shift_JIS fed in pieces, cut anywhere.
#[derive(Debug, Default, Clone)]
pub struct Validator {
    /// A lead byte that ended the previous piece.
    lead: Option<usize>,
}

impl Validator {
    /// False once the stream so far is not valid Shift_JIS.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        let pairs = &*PAIRS;
        let mut i = 0;
        if let Some(lead) = self.lead.take() {
            match bytes.first() {
                None => {
                    self.lead = Some(lead);
                    return true;
                }
                Some(&trail) if pairs.is_pair(lead, trail) => i = 1,
                Some(_) => return false,
            }
        }
        while i < bytes.len() {
            // Eight ASCII bytes at a time: most of a CSV's bytes are.
            if ascii_word_at(bytes, i) {
                i += 8;
                continue;
            }
            let byte = bytes[i];
            if byte.is_ascii() {
                i += 1;
            } else if let Some(lead) = lead_index(byte) {
                match bytes.get(i + 1) {
                    None => {
                        self.lead = Some(lead);
                        return true;
                    }
                    Some(&trail) if pairs.is_pair(lead, trail) => i += 2,
                    Some(_) => return false,
                }
            } else if is_single(byte) {
                i += 1;
            } else {
                return false;
            }
        }
        true
    }

    /// False when the stream ended inside a two-byte character.
    pub fn finish(&self) -> bool {
        self.lead.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(bytes: &[u8]) -> Option<String> {
        SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|text| text.into_owned())
    }

    fn decoded(bytes: &[u8]) -> Option<String> {
        let mut out = b"left from before".to_vec();
        decode(bytes, &mut out).map(str::to_string)
    }

    #[test]
    fn every_one_and_two_byte_sequence_agrees_with_encoding_rs() {
        for first in 0..=255u8 {
            assert_eq!(
                is_valid(&[first]),
                reference(&[first]).is_some(),
                "{first:02X}"
            );
            assert_eq!(decoded(&[first]), reference(&[first]), "{first:02X}");
            for second in 0..=255u8 {
                let pair = [first, second];
                assert_eq!(is_valid(&pair), reference(&pair).is_some(), "{pair:02X?}");
                assert_eq!(decoded(&pair), reference(&pair), "{pair:02X?}");
            }
        }
    }

    #[test]
    fn a_real_text_is_valid_and_a_cut_character_is_not() {
        let text = "指定緊急避難場所,ｼﾔｸｼﾖ,①髙橋,０５４-６２６,\u{80}";
        let (bytes, _, lossy) = SHIFT_JIS.encode(text);
        assert!(!lossy);
        assert!(is_valid(&bytes));
        assert_eq!(decoded(&bytes).as_deref(), Some(text));
        assert!(!is_valid(&bytes[..1]));
        assert_eq!(decoded(&bytes[..1]), None);
        assert!(!is_valid(b"ab\x82,"));
    }

    /// Bytes weighted towards the ranges where Shift_JIS is subtle.
    fn sjis_like() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                0x20..0x7Fu8,
                0x80..=0x80u8,
                0x81..=0x9Fu8,
                0xA0..=0xDFu8,
                0xE0..=0xFFu8,
                0x40..=0xFCu8,
            ],
            0..40,
        )
    }

    proptest! {
        #[test]
        fn validating_agrees_with_encoding_rs(bytes in sjis_like()) {
            prop_assert_eq!(is_valid(&bytes), reference(&bytes).is_some());
        }

        #[test]
        fn decoding_agrees_with_encoding_rs(bytes in sjis_like()) {
            prop_assert_eq!(decoded(&bytes), reference(&bytes));
        }

        /// Real text, long ASCII runs and all, decodes back to itself.
        #[test]
        fn encoded_text_decodes_to_itself(text in "[ -~]{0,20}([ぁ-んァ-ヶ一-龠ｦ-ﾟ０-９①-⑳、。「」]{0,6}[ -~]{0,20}){0,4}") {
            let (bytes, _, lossy) = SHIFT_JIS.encode(&text);
            prop_assume!(!lossy);
            prop_assert_eq!(decoded(&bytes), Some(text));
        }

        /// A stream cut anywhere is judged as the whole.
        #[test]
        fn validating_in_pieces_agrees_with_encoding_rs(bytes in sjis_like(), cuts in proptest::collection::vec(0..40usize, 0..4)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut validator = Validator::default();
            let mut from = 0;
            let mut ok = true;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                ok = ok && validator.feed(&bytes[from..cut]);
                from = cut;
            }
            ok = ok && validator.finish();
            prop_assert_eq!(ok, reference(&bytes).is_some());
        }
    }
}
