//! Splitting decoded CSV text into records and fields exactly as the `csv`
//! crate reads them, configured as `ingest` configures it: RFC 4180 double
//! quotes (a `"` opens a quoted field only at a field's start, `""` inside
//! one is a quote, and text after its closing quote is kept up to the next
//! delimiter), any of CR, LF and CRLF ending a record, blank lines skipped,
//! records of any width, and an unclosed quote running to the end.
//!
//! `ingest` decodes each chunk of a file once and splits the text here: an
//! unquoted field, and a quoted one with no `""` or trailing text, is then
//! a slice of that text, so a record costs neither the copy `csv` makes of
//! every field nor a per-record check that its bytes are UTF-8. Delimiters,
//! quotes and line ends are ASCII, so every cut is at a character boundary.
//! A proptest holds the splitter to `csv` on inputs where quotes,
//! delimiters and line ends of every kind meet.

/// Where a field's text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Span {
    /// A slice of the text being split.
    Text(usize, usize),
    /// A slice of the record's scratch buffer: a quoted field that had to
    /// be rewritten (a `""`, or text after the closing quote).
    Scratch(usize, usize),
}

/// The records of one piece of text, in order.
pub(crate) struct Splitter<'t> {
    text: &'t str,
    delimiter: u8,
    at: usize,
    /// Line feeds before `at`: `csv` counts lines by them.
    lines: usize,
}

impl<'t> Splitter<'t> {
    pub(crate) fn new(text: &'t str, delimiter: u8) -> Splitter<'t> {
        Splitter {
            text,
            delimiter,
            at: 0,
            lines: 0,
        }
    }

    /// Line feeds in what has been split so far; after the last record,
    /// in the whole text.
    pub(crate) fn lines(&self) -> usize {
        self.lines
    }

    /// Reads the next record into `spans` (cleared first), with `scratch`
    /// for fields that must be rewritten; returns the line it starts on
    /// (from 1), or `None` past the last record.
    pub(crate) fn next_record(
        &mut self,
        spans: &mut Vec<Span>,
        scratch: &mut String,
    ) -> Option<usize> {
        spans.clear();
        scratch.clear();
        let bytes = self.text.as_bytes();
        // Blank lines, and the LF of a CRLF, before the record.
        while let Some(&b) = bytes.get(self.at) {
            match b {
                b'\n' => self.lines += 1,
                b'\r' => {}
                _ => break,
            }
            self.at += 1;
        }
        if self.at >= bytes.len() {
            return None;
        }
        let line = self.lines + 1;
        // Most records have no quote: their fields end at the delimiters
        // before the line end, found a whole record at a time.
        let rest = &bytes[self.at..];
        let record = &rest[..memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len())];
        if memchr::memchr(b'"', record).is_none() {
            let mut start = self.at;
            for at in memchr::memchr_iter(self.delimiter, record) {
                spans.push(Span::Text(start, self.at + at));
                start = self.at + at + 1;
            }
            self.at += record.len();
            spans.push(Span::Text(start, self.at));
            return Some(line);
        }
        loop {
            let (span, end) = if bytes.get(self.at) == Some(&b'"') {
                self.quoted(scratch)
            } else {
                let end = self.field_end(self.at);
                (Span::Text(self.at, end), end)
            };
            spans.push(span);
            match bytes.get(end) {
                Some(&d) if d == self.delimiter => self.at = end + 1,
                // A line end (left for the next record to skip) or the end.
                _ => {
                    self.at = end;
                    return Some(line);
                }
            }
        }
    }

    /// Where an unquoted stretch starting at `from` ends: at a delimiter,
    /// a line end, or the end of the text.
    fn field_end(&self, from: usize) -> usize {
        let rest = &self.text.as_bytes()[from..];
        from + memchr::memchr3(self.delimiter, b'\r', b'\n', rest).unwrap_or(rest.len())
    }

    /// A field starting with `"` at `self.at`: its span and where it ends.
    fn quoted(&mut self, scratch: &mut String) -> (Span, usize) {
        let bytes = self.text.as_bytes();
        let open = self.at + 1;
        let mut from = open;
        // Set once the field must be rewritten into `scratch`.
        let mut rewritten: Option<usize> = None;
        loop {
            let Some(q) = memchr::memchr(b'"', &bytes[from..]).map(|q| from + q) else {
                // Never closed: the field runs to the end of the text.
                self.lines += memchr::memchr_iter(b'\n', &bytes[from..]).count();
                let end = bytes.len();
                return match rewritten {
                    Some(start) => {
                        scratch.push_str(&self.text[from..end]);
                        (Span::Scratch(start, scratch.len()), end)
                    }
                    None => (Span::Text(open, end), end),
                };
            };
            self.lines += memchr::memchr_iter(b'\n', &bytes[from..q]).count();
            if bytes.get(q + 1) == Some(&b'"') {
                // `""`: one quote, and the field no longer a slice. Its copy
                // starts here the first time; `from` is then still `open`,
                // so nothing of it is left behind.
                rewritten.get_or_insert(scratch.len());
                scratch.push_str(&self.text[from..=q]);
                from = q + 2;
                continue;
            }
            // The closing quote; anything up to the next delimiter or line
            // end is kept as written, quotes included.
            let end = self.field_end(q + 1);
            if rewritten.is_none() && end == q + 1 {
                return (Span::Text(open, q), end);
            }
            let start = *rewritten.get_or_insert(scratch.len());
            scratch.push_str(&self.text[from..q]);
            scratch.push_str(&self.text[q + 1..end]);
            return (Span::Scratch(start, scratch.len()), end);
        }
    }
}

/// The text of `span`, from the text split and the record's scratch.
pub(crate) fn field<'a>(text: &'a str, scratch: &'a str, span: Span) -> &'a str {
    // Spans are cut at ASCII bytes or the ends of their buffers, so always
    // at character boundaries.
    match span {
        Span::Text(from, to) => &text[from..to],
        Span::Scratch(from, to) => &scratch[from..to],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every record with the line `ingest` gives it, and the line feeds.
    fn split(text: &str, delimiter: u8) -> (Vec<(Vec<String>, usize)>, usize) {
        let mut splitter = Splitter::new(text, delimiter);
        let (mut spans, mut scratch) = (Vec::new(), String::new());
        let mut out = Vec::new();
        while let Some(line) = splitter.next_record(&mut spans, &mut scratch) {
            let fields = spans
                .iter()
                .map(|&s| field(text, &scratch, s).to_string())
                .collect();
            out.push((fields, line));
        }
        (out, splitter.lines())
    }

    /// The same, read by `csv` as `ingest` reads files.
    fn reference(text: &str, delimiter: u8) -> (Vec<(Vec<String>, usize)>, usize) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let mut out = Vec::new();
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).unwrap_or(false) {
            let line = crate::validate::record_line(text.as_bytes(), record.position());
            let fields = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((fields, line));
        }
        let lines = usize::try_from(reader.position().line()).unwrap_or(0) - 1;
        (out, lines)
    }

    #[test]
    fn quotes_line_ends_and_blank_lines_read_as_csv_reads_them() {
        let text = "名称,備考\r\n\"焼津市役所\",\"夜間は\"\"施錠\"\"\"\r\n\r\n\"a\"b\"c,\"x\ny\",z\rlast,\"open\n";
        let (records, lines) = split(text, b',');
        assert_eq!((records.clone(), lines), reference(text, b','));
        assert_eq!(records[1].0, ["焼津市役所", "夜間は\"施錠\""]);
        assert_eq!(
            records[2],
            (vec!["ab\"c".into(), "x\ny".into(), "z".into()], 4)
        );
        assert_eq!(records[3].0, ["last", "open\n"]);
    }

    fn piece() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "\"", "\"\"", ",", "\t", "\r", "\n", "\r\n", "a", "bc", " ", "避難", "ｱｲ", "○",
        ])
        .prop_map(String::from)
    }

    proptest! {
        /// Records without quotes, of the lengths real rows have: their
        /// fields are cut at the delimiters found in the whole record.
        #[test]
        fn long_unquoted_records_split_as_csv_does(
            records in prop::collection::vec(
                prop::collection::vec("[a-z0-9避難 ]{0,20}", 1..30),
                1..6,
            ),
            tab in any::<bool>(),
        ) {
            let delimiter = if tab { b'\t' } else { b',' };
            let separator = char::from(delimiter).to_string();
            let text: String = records
                .iter()
                .map(|fields| fields.join(&separator) + "\r\n")
                .collect();
            prop_assert_eq!(split(&text, delimiter), reference(&text, delimiter));
        }

        #[test]
        fn splits_as_csv_does(
            pieces in prop::collection::vec(piece(), 0..40),
            tab in any::<bool>(),
        ) {
            let text: String = pieces.concat();
            let delimiter = if tab { b'\t' } else { b',' };
            prop_assert_eq!(split(&text, delimiter), reference(&text, delimiter));
        }
    }
}
