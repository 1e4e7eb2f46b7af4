//! Reading a CSV or TSV file without holding it in memory. A first pass
//! over the file decides the encoding the way `jp::encoding::decode` does
//! (a BOM means UTF-8; a file valid as UTF-8 throughout is UTF-8;
//! otherwise Shift_JIS in its Windows form, CP932) and finds what makes a
//! file unusable — NUL bytes, bytes neither encoding reads, nothing but
//! white space — so that a file is rejected before any row is loaded. The
//! second pass splits the file's own bytes into records (exact for
//! Shift_JIS too, see `jp::shift_jis`) and a [`FieldDecoder`] turns each
//! record into text on whichever thread checks it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use encoding_rs::{DecoderResult, SHIFT_JIS};
use jp::encoding::{DecodeError, Encoding};

use crate::validate::{reject, RejectKind, Rejected};

const CHUNK: usize = 256 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the first pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sniffed {
    pub(crate) encoding: Encoding,
    /// An odd number of `"`: a quoted field is never closed. 0x22 is never
    /// part of a multi-byte character in UTF-8 nor Shift_JIS, so counting
    /// bytes is exact.
    pub(crate) unbalanced_quotes: bool,
}

/// Why the first pass stopped: the file's fault, or the disk's.
#[derive(Debug)]
pub(crate) enum SniffError {
    Rejected(Rejected),
    Io(io::Error),
}

impl From<io::Error> for SniffError {
    fn from(e: io::Error) -> Self {
        SniffError::Io(e)
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// 1-based line of a byte offset, by reading the file again up to it
/// (0x0A is never inside a multi-byte character in either encoding).
fn line_of(path: &Path, offset: u64) -> io::Result<usize> {
    let mut file = File::open(path)?;
    let mut buf = vec![0; CHUNK];
    let mut left = offset;
    let mut lines = 1;
    while left > 0 {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(n);
        lines += buf[..take].iter().filter(|&&b| b == b'\n').count();
        left -= take as u64;
    }
    Ok(lines)
}

/// The first pass: decides the encoding and rejects unusable files.
pub(crate) fn sniff(path: &Path) -> Result<Sniffed, SniffError> {
    let mut file = File::open(path)?;
    let mut buf = vec![0; CHUNK + 4];
    // Bytes of a UTF-8 character cut by the end of the previous chunk.
    let mut carry = 0;
    let mut offset: u64 = 0;
    let mut utf8_error: Option<u64> = None;
    let mut quotes = 0usize;
    let mut blank = true;
    let mut bom = false;
    // Checked alongside UTF-8 so the file is read once; given up once it fails.
    let mut shift_jis = Some(jp::shift_jis::Validator::default());
    loop {
        let n = read_full(&mut file, &mut buf[carry..carry + CHUNK])?;
        let fresh = &buf[carry..carry + n];
        // `contains` searches bytes with memchr, far faster than position.
        if let Some(at) = fresh
            .contains(&0)
            .then(|| fresh.iter().position(|&b| b == 0))
            .flatten()
        {
            let at = offset + at as u64;
            return Err(SniffError::Rejected(reject(
                RejectKind::NotText,
                line_of(path, at)?,
                usize::try_from(at).ok(),
                "NUL バイトを含むため CSV テキストではありません (Excel ファイルなどでは?)",
                "contains NUL bytes, so it is not CSV text (an Excel workbook or other binary file?)",
            )));
        }
        let mut scan = fresh;
        if offset == 0 && fresh.starts_with(UTF8_BOM) {
            bom = true;
            scan = &fresh[UTF8_BOM.len()..];
        }
        // Quotes are few, so finding them (memchr) beats comparing every byte.
        quotes += memchr::memchr_iter(b'"', scan).count();
        if blank {
            blank = scan.iter().all(|b| b.is_ascii_whitespace() || *b == 0x0B);
        }
        if let Some(validator) = &mut shift_jis {
            if !validator.feed(fresh) || (n == 0 && !validator.finish()) {
                shift_jis = None;
            }
        }
        let data_len = carry + n;
        if utf8_error.is_none() {
            let start_of_data = offset - carry as u64;
            let (data, data_start) = if offset == 0 && bom {
                (&buf[UTF8_BOM.len()..data_len], UTF8_BOM.len() as u64)
            } else {
                (&buf[..data_len], start_of_data)
            };
            carry = 0;
            if let Err(e) = std::str::from_utf8(data) {
                match e.error_len() {
                    Some(_) => utf8_error = Some(data_start + e.valid_up_to() as u64),
                    None if n == 0 => utf8_error = Some(data_start + e.valid_up_to() as u64),
                    None => {
                        let cut = e.valid_up_to();
                        carry = data.len() - cut;
                        let from = data_len - carry;
                        buf.copy_within(from..data_len, 0);
                    }
                }
            }
        }
        offset += n as u64;
        if n == 0 {
            break;
        }
    }
    let unbalanced_quotes = quotes % 2 == 1;
    let encoding = match (bom, utf8_error) {
        (true, None) => Encoding::Utf8Bom,
        (false, None) => Encoding::Utf8,
        (true, Some(at)) => return Err(SniffError::Rejected(undecodable(path, at, true)?)),
        (false, Some(_)) if shift_jis.is_some() => Encoding::ShiftJis,
        (false, Some(utf8_at)) => match shift_jis_error(path)? {
            None => Encoding::ShiftJis,
            Some(sjis_at) => {
                // As jp::encoding::decode: the encoding that got further is
                // more likely the one meant, so its bad byte is shown.
                return Err(SniffError::Rejected(undecodable(
                    path,
                    utf8_at.max(sjis_at),
                    false,
                )?));
            }
        },
    };
    if blank {
        return Err(SniffError::Rejected(reject(
            RejectKind::Empty,
            0,
            None,
            "ファイルが空です",
            "the file is empty",
        )));
    }
    Ok(Sniffed {
        encoding,
        unbalanced_quotes,
    })
}

fn undecodable(path: &Path, at: u64, after_bom: bool) -> io::Result<Rejected> {
    let line = line_of(path, at)?;
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(at))?;
    let mut one = [0u8; 1];
    let byte = if read_full(&mut file, &mut one)? == 1 {
        one[0]
    } else {
        0
    };
    let offset = usize::try_from(at).unwrap_or(usize::MAX);
    let error = if after_bom {
        DecodeError::InvalidUtf8AfterBom { line, offset, byte }
    } else {
        DecodeError::NeitherUtf8NorShiftJis { line, offset, byte }
    };
    let text = error.to_string();
    let (ja, en) = text.split_once(" / ").unwrap_or((&text, &text));
    Ok(reject(RejectKind::Undecodable, line, Some(offset), ja, en))
}

/// Decodes the whole file as Shift_JIS without keeping the text; the
/// offset of the first malformed byte, if any. Only for a file already
/// found invalid, to name the byte exactly as `jp::encoding` does.
fn shift_jis_error(path: &Path) -> io::Result<Option<u64>> {
    let mut file = File::open(path)?;
    let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
    let mut input = vec![0; CHUNK];
    let mut output = vec![0; CHUNK * 3 + 16];
    let mut consumed: u64 = 0;
    loop {
        let n = read_full(&mut file, &mut input)?;
        let last = n == 0;
        let mut pos = 0;
        loop {
            let (result, read, _) =
                decoder.decode_to_utf8_without_replacement(&input[pos..n], &mut output, last);
            pos += read;
            match result {
                DecoderResult::InputEmpty => break,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(len, after) => {
                    let end = consumed + pos as u64;
                    return Ok(Some(end.saturating_sub(u64::from(len) + u64::from(after))));
                }
            }
        }
        consumed += n as u64;
        if last {
            return Ok(None);
        }
    }
}

/// The file's bytes for the CSV reader: after any BOM, not decoded.
pub(crate) fn open_records(path: &Path, encoding: Encoding) -> io::Result<File> {
    let mut file = File::open(path)?;
    if encoding == Encoding::Utf8Bom {
        file.seek(SeekFrom::Start(UTF8_BOM.len() as u64))?;
    }
    Ok(file)
}

/// Turns records read as bytes into text fields. It keeps one buffer for
/// the decoded record, so a thread decoding many records allocates once.
pub(crate) struct FieldDecoder {
    encoding: Encoding,
    text: String,
    ends: Vec<usize>,
}

impl FieldDecoder {
    pub(crate) fn new(encoding: Encoding) -> FieldDecoder {
        FieldDecoder {
            encoding,
            text: String::new(),
            ends: Vec::new(),
        }
    }

    /// The fields of `record` as text. The first pass found the whole file
    /// valid, so this can only fail if the file changed between the
    /// passes.
    pub(crate) fn fields<'d>(
        &'d mut self,
        record: &'d csv::ByteRecord,
    ) -> io::Result<Vec<&'d str>> {
        let changed = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the file is no longer valid text (changed while being read?)",
            )
        };
        if self.encoding != Encoding::ShiftJis {
            // UTF-8: the record is checked whole, once, and its fields cut
            // from it (CSV splits only at ASCII bytes, so at character
            // boundaries).
            let whole = record.as_slice();
            let text = std::str::from_utf8(whole).map_err(|_| changed())?;
            return (0..record.len())
                .map(|i| {
                    record
                        .range(i)
                        .and_then(|r| text.get(r))
                        .ok_or_else(changed)
                })
                .collect();
        }
        self.text.clear();
        self.ends.clear();
        // A Shift_JIS byte becomes at most three of UTF-8. The fields are
        // decoded into one buffer this thread reuses, so a record costs no
        // allocation, and sliced from it.
        self.text.reserve(record.as_slice().len() * 3);
        for field in record {
            let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
            let (result, _) =
                decoder.decode_to_string_without_replacement(field, &mut self.text, true);
            if result != DecoderResult::InputEmpty {
                return Err(changed());
            }
            self.ends.push(self.text.len());
        }
        let mut out = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for &end in &self.ends {
            out.push(self.text.get(start..end).ok_or_else(changed)?);
            start = end;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Characters of every width Shift_JIS gives them: ASCII, half-width kana,
    /// kanji and kana, and symbols that become two bytes of UTF-8.
    fn cell() -> impl Strategy<Value = String> {
        let chars = prop::sample::select(vec![
            'a', '1', ' ', '-', '"', ',', 'ｱ', 'ﾟ', '避', '難', 'ア', '○', '×', '°', 'Α', '　',
        ]);
        prop::collection::vec(chars, 0..8).prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        /// Fields come back as they were written, in any mix of widths: each is
        /// cut from the one buffer the record is decoded into.
        #[test]
        fn shift_jis_fields_decode_to_what_was_encoded(
            cells in prop::collection::vec(cell(), 1..12),
        ) {
            let mut record = csv::ByteRecord::new();
            for cell in &cells {
                let (bytes, _, unmappable) = SHIFT_JIS.encode(cell);
                prop_assert!(!unmappable, "{cell:?}");
                record.push_field(&bytes);
            }
            let mut decoder = FieldDecoder::new(Encoding::ShiftJis);
            let fields = decoder.fields(&record).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(fields, cells.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_field_cut_inside_a_character_is_refused() {
        let mut record = csv::ByteRecord::new();
        record.push_field(b"ok");
        record.push_field(b"\x94");
        let mut decoder = FieldDecoder::new(Encoding::ShiftJis);
        assert!(decoder.fields(&record).is_err());
    }
}
