//! The comparable values of an entity ([`index_rows`]) as one BLOB in its own row
//! (`entities.vals`), and the `q` and `attrs` prefilters applied to it while a query
//! reads its candidates.
//!
//! They were rows of a table of their own (`entity_values`, keyed by the entity's row),
//! probed once per candidate by the query: never searched by value, since every scan
//! starts from the tenant's or a type's entities. Writing them cost a b-tree insert per
//! value, about thirteen per entity, a fifth of the writer's time under batch upserts
//! (schema version 13 folded them into the row). Read back, the BLOB is decoded without
//! copying and checked in microseconds, before the document is parsed.
//!
//! The encoding, entry after entry: a tag byte (its low five bits the kind of value: 0
//! the bare presence of the attribute, 1 a number, 2 a string; the next two the number
//! of the prefix the attribute's name is shortened by, 0 for none (see
//! [`iri::shorten`]); its high bit set when the entry's attribute is the previous
//! entry's, which is then not repeated), the attribute (a LEB128 length, then UTF-8:
//! the name after its prefix) unless repeated, and the value: a number as eight bytes
//! of an `f64`, little-endian, a string as a LEB128 length and UTF-8. Values written
//! before names were shortened have no prefix bits, and read as they always did.
//! Decoding leaves names and strings as bytes: it does not validate their UTF-8 (a
//! twentieth of the CPU time of a `q` query went to that), since the prefilter only
//! compares them.

use ngsi_ld::model::{iri, Entity};
use ngsi_ld::query::index::{index_rows, EntryRef, IndexEntry, IndexedValue, Prefilter, ValueRef};

const PRESENCE: u8 = 0;
const NUMBER: u8 = 1;
const TEXT: u8 = 2;
const KIND: u8 = 0x1f;
/// The bits of the tag holding the prefix number, and their shift.
const PREFIX: u8 = 0x60;
const PREFIX_SHIFT: u32 = 5;
const SAME_ATTR: u8 = 0x80;

/// The stored form of an entity's comparable values.
pub(crate) fn of_entity(entity: &Entity) -> Vec<u8> {
    encode(&index_rows(entity))
}

pub(crate) fn encode(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.attr.len() + 12).sum());
    let mut previous: Option<&str> = None;
    for entry in entries {
        let kind = match entry.value {
            None => PRESENCE,
            Some(IndexedValue::Number(_)) => NUMBER,
            Some(IndexedValue::Text(_)) => TEXT,
        };
        if previous == Some(entry.attr) {
            out.push(kind | SAME_ATTR);
        } else {
            let (prefix, name) = iri::shorten(entry.attr).unwrap_or((0, entry.attr));
            out.push(kind | prefix << PREFIX_SHIFT);
            push_str(&mut out, name);
        }
        previous = Some(entry.attr);
        match &entry.value {
            None => {}
            Some(IndexedValue::Number(n)) => out.extend_from_slice(&n.to_le_bytes()),
            Some(IndexedValue::Text(t)) => push_str(&mut out, t),
        }
    }
    out
}

/// The entries of a stored BLOB; `None` if it is not one [`encode`] wrote.
pub(crate) fn decode(blob: &[u8]) -> Option<Vec<EntryRef<'_>>> {
    let mut entries = Vec::new();
    let mut rest = blob;
    let mut previous: Option<(&'static str, &[u8])> = None;
    while let Some((&tag, after)) = rest.split_first() {
        rest = after;
        let (prefix, attr) = if tag & SAME_ATTR != 0 {
            previous?
        } else {
            let prefix = match (tag & PREFIX) >> PREFIX_SHIFT {
                0 => "",
                number => iri::shortened_prefix(number)?,
            };
            (prefix, take_bytes(&mut rest)?)
        };
        previous = Some((prefix, attr));
        let value = match tag & KIND {
            PRESENCE => None,
            NUMBER => {
                let (bytes, after) = rest.split_first_chunk::<8>()?;
                rest = after;
                Some(ValueRef::Number(f64::from_le_bytes(*bytes)))
            }
            TEXT => Some(ValueRef::Text(take_bytes(&mut rest)?)),
            _ => return None,
        };
        entries.push(EntryRef {
            prefix,
            attr,
            value,
        });
    }
    Some(entries)
}

/// Whether a candidate with these stored values may match: a row without them
/// (`NULL`, or not readable as [`encode`] wrote them) is always admitted, since the
/// evaluator decides every candidate anyway and a prefilter may only let too much in.
pub(crate) fn admits(filter: &Prefilter, blob: Option<&[u8]>) -> bool {
    match blob.and_then(decode) {
        Some(entries) => filter.admits(&entries),
        None => true,
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s.as_bytes());
}

fn take_bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let mut shift = 0u32;
    loop {
        let (&byte, after) = rest.split_first()?;
        *rest = after;
        len |= usize::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            break;
        }
        shift += 7;
        if shift >= usize::BITS {
            return None;
        }
    }
    if len > rest.len() {
        return None;
    }
    let (text, after) = rest.split_at(len);
    *rest = after;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngsi_ld::query::index::Comparison;
    use proptest::prelude::*;

    fn entry<'a>(attr: &'a str, value: Option<IndexedValue<'a>>) -> IndexEntry<'a> {
        IndexEntry { attr, value }
    }

    /// Attribute names with their values, owned (entries borrow them).
    fn entries() -> impl Strategy<Value = Vec<(String, Option<IndexedValue<'static>>)>> {
        let value = prop_oneof![
            Just(None),
            any::<f64>().prop_map(|n| Some(IndexedValue::Number(n))),
            ".{0,200}".prop_map(|t| Some(IndexedValue::Text(t.into()))),
        ];
        let name = prop_oneof![
            Just("a".to_owned()),
            ".{0,20}",
            ".{0,20}".prop_map(|n| format!("{}{n}", iri::DEFAULT_CONTEXT_VOCAB)),
            ".{0,20}".prop_map(|n| format!("{}{n}", iri::NGSI_LD)),
        ];
        prop::collection::vec((name, value), 0..20)
    }

    proptest! {
        /// What is encoded decodes to the same entries, in order, repeated
        /// attributes included (NaN compared by its bits).
        #[test]
        fn entries_come_back_as_they_were_stored(pairs in entries()) {
            let entries: Vec<IndexEntry> = pairs.iter().map(|(a, v)| entry(a, v.clone())).collect();
            let blob = encode(&entries);
            let decoded = decode(&blob).expect("decodes");
            let expected: Vec<EntryRef<'_>> = entries.iter().map(IndexEntry::as_ref).collect();
            prop_assert_eq!(decoded.len(), expected.len());
            for (got, want) in decoded.iter().zip(&expected) {
                prop_assert_eq!([got.prefix.as_bytes(), got.attr].concat(), want.attr);
                match (got.value, want.value) {
                    (Some(ValueRef::Number(a)), Some(ValueRef::Number(b))) => {
                        prop_assert_eq!(a.to_bits(), b.to_bits());
                    }
                    (a, b) => prop_assert_eq!(a, b),
                }
            }
        }

        /// A comparison with a stored string, read back as bytes, holds exactly when
        /// it holds between the strings themselves (as the evaluator compares them),
        /// whatever their scripts: full-width and kana sort above ASCII either way.
        #[test]
        fn stored_strings_compare_as_the_strings_do(
            stored in "[a-z0-9０-９ぁ-んァ-ン漢字中港 ]{0,12}",
            literal in "[a-z0-9０-９ぁ-んァ-ン漢字中港 ]{0,12}",
        ) {
            let blob = encode(&[entry("name", Some(IndexedValue::Text(stored.as_str().into())))]);
            let (s, l) = (stored.as_str(), literal.as_str());
            for (comparison, holds) in [
                (Comparison::Eq, s == l),
                (Comparison::Lt, s < l),
                (Comparison::Le, s <= l),
                (Comparison::Gt, s > l),
                (Comparison::Ge, s >= l),
            ] {
                let filter = Prefilter::Text("name".into(), comparison, literal.clone());
                prop_assert_eq!(
                    admits(&filter, Some(&blob)), holds, "{:?} {:?} {:?}", s, comparison, l
                );
            }
        }

        /// Any bytes at all (a damaged row) decode or are refused; nothing panics,
        /// and a refused row is admitted.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if decode(&bytes).is_none() {
                prop_assert!(admits(&Prefilter::Has("x".into()), Some(&bytes)));
            }
        }
    }

    /// Names under a shortened prefix are kept without it, and a blob written before
    /// (whole names, no prefix bits) is read and filtered as it always was.
    #[test]
    fn shortened_and_whole_names_are_the_same_attribute_to_the_prefilter() {
        let capacity = "https://uri.etsi.org/ngsi-ld/default-context/capacity";
        let location = "https://uri.etsi.org/ngsi-ld/location";
        let entries = [
            entry(capacity, Some(IndexedValue::Number(120.0))),
            entry(location, None),
        ];
        let shortened = encode(&entries);
        assert!(shortened.len() < 30, "{shortened:?}");
        assert!(!shortened.windows(8).any(|w| w == b"https://"));
        // As the encoding was before: tag, whole name, value.
        let mut whole = vec![NUMBER];
        push_str(&mut whole, capacity);
        whole.extend_from_slice(&120.0f64.to_le_bytes());
        whole.push(PRESENCE);
        push_str(&mut whole, location);
        for blob in [&shortened, &whole] {
            let admits = |filter: Prefilter| admits(&filter, Some(blob));
            assert!(admits(Prefilter::Number(
                capacity.into(),
                Comparison::Eq,
                120.0
            )));
            assert!(!admits(Prefilter::Number(
                capacity.into(),
                Comparison::Gt,
                120.0
            )));
            assert!(admits(Prefilter::Has(location.into())));
            // Same last segment, another prefix: another attribute.
            assert!(!admits(Prefilter::Has(
                "https://uri.etsi.org/ngsi-ld/capacity".into()
            )));
            assert!(!admits(Prefilter::Has("capacity".into())));
        }
        // A prefix number no prefix has: not a blob this module wrote.
        let mut unknown = shortened.clone();
        unknown[0] |= PREFIX;
        assert!(decode(&unknown).is_none());
    }

    #[test]
    fn prefilters_are_applied_to_the_stored_values() {
        let capacity = "https://example.org/capacity";
        let name = "https://example.org/name";
        let blob = encode(&[
            entry(capacity, Some(IndexedValue::Number(120.0))),
            entry(capacity, Some(IndexedValue::Number(80.0))),
            entry(name, Some(IndexedValue::Text("中港".into()))),
            entry("https://example.org/tags", None),
        ]);
        let admits = |filter: Prefilter| admits(&filter, Some(&blob));
        assert!(admits(Prefilter::Number(
            capacity.into(),
            Comparison::Gt,
            100.0
        )));
        assert!(admits(Prefilter::Number(
            capacity.into(),
            Comparison::Eq,
            80.0
        )));
        assert!(!admits(Prefilter::Number(
            capacity.into(),
            Comparison::Gt,
            120.0
        )));
        // A string is not a number, nor a number a string.
        assert!(!admits(Prefilter::Text(
            capacity.into(),
            Comparison::Ge,
            String::new()
        )));
        assert!(!admits(Prefilter::Number(
            name.into(),
            Comparison::Ge,
            f64::MIN
        )));
        assert!(admits(Prefilter::Text(
            name.into(),
            Comparison::Eq,
            "中港".into()
        )));
        assert!(admits(Prefilter::Has("https://example.org/tags".into())));
        assert!(!admits(Prefilter::Has("https://example.org/other".into())));
        assert!(!admits(Prefilter::And(vec![
            Prefilter::Has(name.into()),
            Prefilter::Has("https://example.org/other".into()),
        ])));
        assert!(admits(Prefilter::Or(vec![
            Prefilter::Has("https://example.org/other".into()),
            Prefilter::Number(capacity.into(), Comparison::Lt, 100.0),
        ])));
        // A row without values is a candidate for anything.
        assert!(super::admits(
            &Prefilter::Has("https://example.org/other".into()),
            None
        ));
        assert!(super::admits(&Prefilter::Has("x".into()), Some(&[7])));
    }
}
