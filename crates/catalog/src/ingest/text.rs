//! Reading a CSV or TSV file without holding it in memory. A first pass
//! over the head of the file decides the encoding the way
//! `jp::encoding::decode` does (a BOM means UTF-8; text valid as UTF-8 is
//! UTF-8; otherwise Shift_JIS in its Windows form, CP932) and finds what
//! makes a file unusable there — NUL bytes, bytes neither encoding reads,
//! nothing but white space — so that a broken file is rejected before any
//! row is loaded. Reading the whole file twice cost a tenth of a large
//! ingest, so past its head a file is checked as it loads: a problem found
//! there stops the load, and [`sniff`] of the whole file then names it
//! exactly as it would have before. The second pass cuts the file's own
//! bytes into chunks of whole records ([`last_record_end`], exact for
//! Shift_JIS too, see `jp::shift_jis`), which the workers decode whole and
//! split (`chunks`, `split`). A [`FieldDecoder`] turns single records read
//! by `csv` into text: the header, and the records of a chunk that did not
//! decode, to find the first bad one.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use encoding_rs::{DecoderResult, SHIFT_JIS};
use jp::encoding::{DecodeError, Encoding};

use crate::validate::{reject, RejectKind, Rejected};

const CHUNK: usize = 256 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

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

/// How much of the file [`sniff`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// All of it: the verdict is final.
    Whole,
    /// The first [`HEAD_BYTES`], and on until something other than white
    /// space and [`AFTER_NON_ASCII`] bytes past the first byte that is not
    /// ASCII have been seen, so that the encoding is decided on real text.
    Head,
}

/// See [`Scope::Head`].
const HEAD_BYTES: u64 = 1024 * 1024;
/// See [`Scope::Head`].
const AFTER_NON_ASCII: u64 = 64 * 1024;

/// The first pass: decides the encoding and rejects unusable files, from
/// the whole file or its head (`scope`). A problem inside the head gets the
/// same verdict either way.
pub(crate) fn sniff(path: &Path, scope: Scope) -> Result<Encoding, SniffError> {
    let mut file = File::open(path)?;
    let mut buf = vec![0; CHUNK + 4];
    // Bytes of a UTF-8 character cut by the end of the previous chunk.
    let mut carry = 0;
    let mut offset: u64 = 0;
    let mut utf8_error: Option<u64> = None;
    let mut blank = true;
    let mut bom = false;
    // Checked alongside UTF-8 so the file is read once; given up once it fails.
    let mut shift_jis = Some(jp::shift_jis::Validator::default());
    let mut first_non_ascii: Option<u64> = None;
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
        if blank {
            blank = scan.iter().all(|b| b.is_ascii_whitespace() || *b == 0x0B);
        }
        if scope == Scope::Head && first_non_ascii.is_none() {
            first_non_ascii = fresh
                .iter()
                .position(|b| !b.is_ascii())
                .map(|at| offset + at as u64);
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
        let head_seen = scope == Scope::Head
            && offset >= HEAD_BYTES
            && !blank
            && first_non_ascii.is_some_and(|at| offset >= at + AFTER_NON_ASCII);
        if head_seen {
            // A character cut by the head's end (`carry`, or a Shift_JIS
            // lead byte in the validator) is not an error: the rest of it
            // is checked as the file loads.
            break;
        }
    }
    let encoding = match (bom, utf8_error) {
        (true, None) => Encoding::Utf8Bom,
        (false, None) => Encoding::Utf8,
        (true, Some(at)) => return Err(SniffError::Rejected(undecodable(path, at, true)?)),
        (false, Some(_)) if shift_jis.is_some() => Encoding::ShiftJis,
        // Both failed inside what was read, so the first Shift_JIS error
        // of the whole file is the one the head shows.
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
    Ok(encoding)
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

/// Where the last whole record in `bytes` ends, for `bytes` that begin
/// where a record begins: the offset just past its line end, or `None`
/// when no record ends inside `bytes` (or where it ends cannot be told
/// before more bytes come).
///
/// It agrees exactly with the `csv` crate reading the same bytes (RFC 4180
/// double quotes, any of CR, LF and CRLF ending a record, which is how
/// `ingest` configures it): a `"` opens a quoted field only at a field's
/// start, `""` inside one is a quote, and a line end inside one is text.
/// So each chunk cut here and read alone gives the records, and record
/// lines (by [`record_line`](crate::validate::record_line)), that reading
/// the whole file gives. Only quotes and line ends are looked at, with
/// `memchr`, many times faster than parsing the fields.
pub(crate) fn last_record_end(bytes: &[u8], delimiter: u8) -> Option<usize> {
    let mut last = None;
    // Where the stretch outside quotes being scanned started.
    let mut outside_from = 0;
    let mut quoted = false;
    // Past a `""` in a quoted field, whose second quote is not looked at.
    let mut skip_to = 0;
    for q in memchr::memchr_iter(b'"', bytes) {
        if q < skip_to {
            continue;
        }
        if quoted {
            match bytes.get(q + 1) {
                Some(b'"') => skip_to = q + 2,
                // Escaped or closing: the next byte tells, and it is not here.
                None => return last,
                Some(_) => {
                    quoted = false;
                    outside_from = q + 1;
                }
            }
        } else if q == 0 || matches!(bytes[q - 1], b'\r' | b'\n') || bytes[q - 1] == delimiter {
            if let Some(end) = last_line_end(bytes, outside_from, q) {
                last = Some(end);
            }
            quoted = true;
        }
    }
    if quoted {
        return last;
    }
    last_line_end(bytes, outside_from, bytes.len()).or(last)
}

/// Just past the last line end in `bytes[from..to]`, a stretch outside
/// quotes. A CR and the LF after it may land in different chunks: the LF
/// then starts the next one, where `csv` skips it as it skips blank lines.
fn last_line_end(bytes: &[u8], from: usize, to: usize) -> Option<usize> {
    memchr::memrchr2(b'\n', b'\r', &bytes[from..to]).map(|at| from + at + 1)
}

/// Appends the Shift_JIS `bytes`, decoded, to `text`; false when they do
/// not all decode (a cut character included).
pub(crate) fn decode_shift_jis(bytes: &[u8], text: &mut String) -> bool {
    let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
    let Some(most) = decoder.max_utf8_buffer_length_without_replacement(bytes.len()) else {
        return false;
    };
    text.reserve(most);
    let (result, _) = decoder.decode_to_string_without_replacement(bytes, text, true);
    result == DecoderResult::InputEmpty
}

/// A record whose bytes the file's encoding does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Undecodable;

/// Turns records read as bytes into text fields, into one buffer it keeps
/// for the next record.
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

    /// The fields of `record` as text, or [`Undecodable`] when its bytes
    /// are not valid in the encoding the head of the file was found in.
    pub(crate) fn fields<'d>(
        &'d mut self,
        record: &'d csv::ByteRecord,
    ) -> Result<Vec<&'d str>, Undecodable> {
        if self.encoding != Encoding::ShiftJis {
            // UTF-8: the record is checked whole, once, and its fields cut
            // from it (CSV splits only at ASCII bytes, so at character
            // boundaries).
            let whole = record.as_slice();
            let text = std::str::from_utf8(whole).map_err(|_| Undecodable)?;
            return (0..record.len())
                .map(|i| record.range(i).and_then(|r| text.get(r)).ok_or(Undecodable))
                .collect();
        }
        self.text.clear();
        self.ends.clear();
        // The fields are decoded one after the other into the one buffer,
        // and sliced from it.
        for field in record {
            if !decode_shift_jis(field, &mut self.text) {
                return Err(Undecodable);
            }
            self.ends.push(self.text.len());
        }
        let mut out = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for &end in &self.ends {
            out.push(self.text.get(start..end).ok_or(Undecodable)?);
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
            let fields = decoder.fields(&record).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(fields, cells.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    /// Every record of `bytes` with the line `csv` says it starts on,
    /// read as `ingest` reads files; the line ends read, to carry on from.
    /// A record's fields and the line it starts on.
    type Record = (Vec<Vec<u8>>, u64);

    fn read_records(bytes: &[u8], first_line: u64) -> (Vec<Record>, u64) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut out = Vec::new();
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).unwrap_or(false) {
            let line = crate::validate::record_line(bytes, record.position()) as u64;
            out.push((
                record.iter().map(<[u8]>::to_vec).collect(),
                first_line + line - 1,
            ));
        }
        (out, reader.position().line() - 1)
    }

    /// Bytes where quotes, delimiters and line ends of every kind meet, with
    /// Shift_JIS kanji and half-width kana between them.
    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        let pieces = prop::sample::select(vec![
            &b"a"[..],
            b",",
            b"\"",
            b"\"\"",
            b"\r",
            b"\n",
            b"\r\n",
            b"\x94\xF0",
            b"\xB1",
            b" ",
        ]);
        prop::collection::vec(pieces, 0..80).prop_map(|ps| ps.concat())
    }

    proptest! {
        /// Cut where `last_record_end` says, after windows of any size, and
        /// each chunk read alone, a file gives the records and lines that
        /// reading it whole gives.
        #[test]
        fn chunks_cut_at_record_ends_read_as_the_whole_file(
            bytes in csv_bytes(),
            windows in prop::collection::vec(1usize..40, 1..20),
        ) {
            let (whole, _) = read_records(&bytes, 1);
            let mut chunked = Vec::new();
            let (mut start, mut line) = (0, 1);
            let mut windows = windows.into_iter().cycle();
            while start < bytes.len() {
                let window = windows.next().unwrap_or(1);
                // As `chunks` does: read on until a record ends, or to the end.
                let mut end = start;
                let cut = loop {
                    end = (end + window).min(bytes.len());
                    if end == bytes.len() {
                        break end - start;
                    }
                    if let Some(cut) = last_record_end(&bytes[start..end], b',') {
                        break cut;
                    }
                };
                prop_assert!(cut > 0 && start + cut <= end);
                let (records, lines) = read_records(&bytes[start..start + cut], line);
                chunked.extend(records);
                line += lines;
                start += cut;
            }
            prop_assert_eq!(chunked, whole);
        }
    }

    #[test]
    fn record_ends_follow_quotes_as_csv_does() {
        // A quote inside an unquoted field is text; one at a field's start opens.
        assert_eq!(last_record_end(b"ab\"c,d\n\"x\ny\",z\nq", b','), Some(15));
        // Inside quotes a line end is text.
        assert_eq!(last_record_end(b"a,\"x\ny", b','), None);
        // Blank lines and a CR at the end do not matter: `csv` skips line
        // ends before a record, and `record_line` counts them.
        assert_eq!(last_record_end(b"a\r\n\r\nb", b','), Some(5));
        assert_eq!(last_record_end(b"a\nb\r", b','), Some(4));
        // The quote closing a field at the end may be the first of "".
        assert_eq!(last_record_end(b"a\n\"x\"", b','), Some(2));
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
