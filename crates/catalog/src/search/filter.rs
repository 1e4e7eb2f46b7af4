//! CKAN `fq` filter queries, as clients and facet links send them:
//! `organization:222127 res_format:CSV tags:"避難 所"`, clauses separated by
//! white space, `AND` or `&&`, each optionally prefixed by `+` (required, the
//! default) or `-` (excluded), values bare, quoted, or with Solr backslash
//! escapes (`tags:避難\ 所`). Unlike words in `q`, a filter value is compared
//! exactly with the stored value, like Solr's string fields and like
//! [`super::Facets`] groups them. Unsupported syntax (`OR`, parentheses, a
//! clause without a field) is an error rather than a silently wrong result.

use serde::Serialize;
use thiserror::Error;

use super::document::{Document, Field};

/// One `field:value` clause of an `fq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub field: Field,
    pub value: String,
    /// `-field:value`: documents with the value are removed.
    pub excluded: bool,
}

/// Why an `fq` could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FqError {
    #[error("fq clause `{0}` has no field (expected field:value)")]
    MissingField(String),
    #[error("fq field `{0}` is not searchable")]
    UnknownField(String),
    #[error("fq clause for `{0}` has an empty value")]
    EmptyValue(String),
    #[error("fq has an unterminated quote")]
    UnterminatedQuote,
    #[error("fq syntax `{0}` is not supported")]
    Unsupported(String),
}

/// Parses a CKAN `fq` into filters, all of which a document must satisfy.
/// An empty or blank `fq` gives no filters.
pub fn parse_fq(fq: &str) -> Result<Vec<Filter>, FqError> {
    let chars: Vec<char> = fq.chars().collect();
    let mut filters = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (word, next) = read_bare(&chars, i);
        match word.as_str() {
            "AND" | "&&" => {
                i = next;
                continue;
            }
            "OR" | "||" | "NOT" => return Err(FqError::Unsupported(word)),
            _ => {}
        }
        let mut excluded = false;
        match c {
            '+' => i += 1,
            '-' => {
                excluded = true;
                i += 1;
            }
            '(' | ')' => return Err(FqError::Unsupported(c.to_string())),
            _ => {}
        }
        let Some(colon) = chars[i..].iter().position(|&c| c == ':') else {
            return Err(FqError::MissingField(read_bare(&chars, i).0));
        };
        let name: String = chars[i..i + colon].iter().collect();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '"') {
            return Err(FqError::MissingField(read_bare(&chars, i).0));
        }
        let field = Field::parse(&name).ok_or_else(|| FqError::UnknownField(name.clone()))?;
        let (value, next) = read_value(&chars, i + colon + 1)?;
        if value.is_empty() {
            return Err(FqError::EmptyValue(name));
        }
        // Grouping such as `tags:(a OR b)`; a quoted "(…)" is a plain value.
        if chars.get(i + colon + 1) == Some(&'(') {
            return Err(FqError::Unsupported(value));
        }
        filters.push(Filter {
            field,
            value,
            excluded,
        });
        i = next;
    }
    Ok(filters)
}

/// Whether a document passes every filter: a required value must be one of
/// the field's values exactly, an excluded one must not.
pub fn matches_filters(filters: &[Filter], doc: &Document) -> bool {
    filters
        .iter()
        .all(|f| doc.values(f.field).contains(&f.value.as_str()) != f.excluded)
}

/// The raw run of non-white-space characters at `i` (for keywords and errors).
fn read_bare(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && !chars[i].is_whitespace() {
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

/// A value at `i`: quoted up to the closing quote, or bare up to white space;
/// a backslash escapes the next character in both.
fn read_value(chars: &[char], mut i: usize) -> Result<(String, usize), FqError> {
    let quoted = chars.get(i) == Some(&'"');
    if quoted {
        i += 1;
    }
    let mut value = String::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return if quoted {
                Err(FqError::UnterminatedQuote)
            } else {
                Ok((value, i))
            };
        };
        match c {
            '\\' => {
                if let Some(&n) = chars.get(i + 1) {
                    value.push(n);
                }
                i += 2;
            }
            '"' if quoted => return Ok((value, i + 1)),
            c if !quoted && c.is_whitespace() => return Ok((value, i)),
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(field: Field, value: &str, excluded: bool) -> Filter {
        Filter {
            field,
            value: value.into(),
            excluded,
        }
    }

    #[test]
    fn ckan_fq_forms() {
        let expected = vec![
            f(Field::Organization, "222127", false),
            f(Field::ResFormat, "CSV", false),
            f(Field::Tags, "避難 所", false),
        ];
        assert_eq!(
            parse_fq("organization:222127 res_format:CSV tags:\"避難 所\""),
            Ok(expected.clone())
        );
        assert_eq!(
            parse_fq("+organization:222127 AND +res_format:\"CSV\" && tags:避難\\ 所"),
            Ok(expected)
        );
        assert_eq!(
            parse_fq("\u{3000}-license_id:cc-by-4.0 groups:bousai "),
            Ok(vec![
                f(Field::LicenseId, "cc-by-4.0", true),
                f(Field::Groups, "bousai", false)
            ])
        );
        assert_eq!(parse_fq(""), Ok(vec![]));
        assert_eq!(
            parse_fq("tags:\"a\\\"b\""),
            Ok(vec![f(Field::Tags, "a\"b", false)])
        );
    }

    #[test]
    fn unsupported_fq_is_an_error() {
        assert_eq!(parse_fq("避難"), Err(FqError::MissingField("避難".into())));
        assert_eq!(
            parse_fq("capacity:public"),
            Err(FqError::UnknownField("capacity".into()))
        );
        assert_eq!(parse_fq("tags:\"避難"), Err(FqError::UnterminatedQuote));
        assert_eq!(parse_fq("tags:"), Err(FqError::EmptyValue("tags".into())));
        assert!(matches!(
            parse_fq("tags:a OR tags:b"),
            Err(FqError::Unsupported(_))
        ));
        assert!(matches!(
            parse_fq("tags:(a b)"),
            Err(FqError::Unsupported(_))
        ));
    }

    #[test]
    fn filters_compare_values_exactly() {
        let doc = Document {
            organization: Some("222127".into()),
            res_formats: vec!["CSV".into(), "PDF".into()],
            tags: vec!["避難 所".into()],
            ..Document::default()
        };
        let ok = |fq: &str| parse_fq(fq).map(|fs| matches_filters(&fs, &doc));
        assert_eq!(
            ok("organization:222127 res_format:CSV tags:\"避難 所\""),
            Ok(true)
        );
        assert_eq!(ok("res_format:PDF"), Ok(true));
        assert_eq!(ok("res_format:csv"), Ok(false));
        assert_eq!(ok("tags:避難"), Ok(false));
        assert_eq!(ok("-res_format:PDF"), Ok(false));
        assert_eq!(ok("-res_format:XLSX organization:222127"), Ok(true));
        assert_eq!(ok("license_id:cc-by-4.0"), Ok(false));
    }

    proptest! {
        #[test]
        fn fq_parser_never_panics(s in any::<String>()) {
            let _ = parse_fq(&s);
        }

        /// A filter built from any value, quoted and escaped as a client
        /// would, reads back as that value.
        #[test]
        fn quoted_values_round_trip(v in "\\PC{1,20}") {
            let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
            let parsed = parse_fq(&format!("tags:\"{escaped}\""));
            prop_assert_eq!(parsed, Ok(vec![f(Field::Tags, &v, false)]));
        }
    }
}
