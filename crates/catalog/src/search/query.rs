//! Parsing CKAN's `q` parameter into the small subset of Solr syntax people
//! actually type: words separated by white space (the ideographic space of a
//! Japanese input method included), `"quoted phrases"`, `-word` or `NOT word`
//! exclusion, a `+` prefix and `AND` (both no-ops, since every word is
//! required), `field:value` for the CKAN fields, and `*:*` for everything.
//! Anything else is taken literally as a word rather than rejected, so a
//! query never fails; `OR` is not supported and is ignored.

use jp::width::normalize;
use serde::Serialize;

use super::document::Field;
use super::tokenize::{candidate_terms, fold};

/// One word or phrase of a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    /// The word as typed, after NFKC (for display and logs).
    pub text: String,
    /// The word folded by [`fold`], compared as a substring.
    pub folded: String,
    /// `title:避難` restricts the word to one field; `None` searches them all.
    pub field: Option<Field>,
    /// `-word`: documents containing it are removed.
    pub excluded: bool,
}

/// A parsed `q`: every non-excluded term must match, no excluded one may.
/// An empty query (or `*:*`) matches every document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SearchQuery {
    pub terms: Vec<Term>,
}

impl SearchQuery {
    /// Parses a CKAN `q` string. Never fails: unknown syntax is a word.
    pub fn parse(q: &str) -> SearchQuery {
        let q = normalize(q);
        let chars: Vec<char> = q.chars().collect();
        let mut terms = Vec::new();
        let mut negate_next = false;
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let mut excluded = std::mem::take(&mut negate_next);
            match chars[i] {
                '-' | '!' => {
                    excluded = true;
                    i += 1;
                }
                '+' => i += 1,
                _ => {}
            }
            let field = field_prefix(&chars[i..]).map(|(f, len)| {
                i += len;
                f
            });
            let (raw, quoted, next) = read_value(&chars, i);
            i = next;
            if !quoted && field.is_none() {
                match raw.as_str() {
                    "AND" | "&&" | "OR" | "||" | "*:*" | "*" => continue,
                    "NOT" => {
                        negate_next = !excluded;
                        continue;
                    }
                    _ => {}
                }
            }
            let folded = fold(&raw);
            if folded.is_empty() {
                continue;
            }
            terms.push(Term {
                text: raw.trim().to_string(),
                folded,
                field,
                excluded,
            });
        }
        SearchQuery { terms }
    }

    /// Whether the query puts no condition at all (empty or `*:*`).
    pub fn is_match_all(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms every match must contain.
    pub fn required(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| !t.excluded)
    }

    /// The terms no match may contain.
    pub fn excluded(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| t.excluded)
    }

    /// The index terms a store must require of a candidate (all of them):
    /// the union of [`candidate_terms`] of the required terms. Excluded terms
    /// cannot be pushed to the index (a bigram hit is no proof of the word),
    /// so they are left to [`super::score()`]. Empty means no narrowing.
    pub fn candidate_terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = self
            .required()
            .flat_map(|t| candidate_terms(&t.folded))
            .collect();
        terms.sort_unstable();
        terms.dedup();
        terms
    }
}

/// A known `field:` prefix at the start of `chars`, with its length in chars.
fn field_prefix(chars: &[char]) -> Option<(Field, usize)> {
    let colon = chars.iter().take(20).position(|&c| c == ':')?;
    let name: String = chars[..colon].iter().collect();
    let field = Field::parse(&name)?;
    // `title:` followed by nothing is the word "title:", not an empty field.
    let rest = chars.get(colon + 1)?;
    if rest.is_whitespace() {
        return None;
    }
    Some((field, colon + 1))
}

/// Reads a quoted phrase (up to the closing quote or the end) or a bare word
/// (up to white space) starting at `i`; returns it, whether it was quoted,
/// and the index after it.
fn read_value(chars: &[char], mut i: usize) -> (String, bool, usize) {
    let is_quote = |c: char| matches!(c, '"' | '“' | '”');
    if chars.get(i).copied().is_some_and(is_quote) {
        i += 1;
        let start = i;
        while i < chars.len() && !is_quote(chars[i]) {
            i += 1;
        }
        let phrase: String = chars[start..i].iter().collect();
        return (phrase, true, (i + 1).min(chars.len()));
    }
    let start = i;
    while i < chars.len() && !chars[i].is_whitespace() {
        i += 1;
    }
    (chars[start..i].iter().collect(), false, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(q: &str) -> Vec<(String, Option<Field>, bool)> {
        SearchQuery::parse(q)
            .terms
            .into_iter()
            .map(|t| (t.folded, t.field, t.excluded))
            .collect()
    }

    #[test]
    fn words_phrases_fields_and_exclusions() {
        assert_eq!(
            words("避難\u{3000}ﾄｲﾚ -廃止 \"避難 所\" title:公園 tags:\"子ども 食堂\""),
            vec![
                ("避難".into(), None, false),
                ("といれ".into(), None, false),
                ("廃止".into(), None, true),
                ("避難 所".into(), None, false),
                ("公園".into(), Some(Field::Title), false),
                ("子ども 食堂".into(), Some(Field::Tags), false),
            ]
        );
        assert_eq!(
            words("－廃止 ｔｉｔｌｅ：公園"),
            vec![
                ("廃止".into(), None, true),
                ("公園".into(), Some(Field::Title), false),
            ]
        );
    }

    #[test]
    fn operators_and_edge_cases() {
        assert!(SearchQuery::parse("*:*").is_match_all());
        assert!(SearchQuery::parse("  \u{3000} ").is_match_all());
        assert_eq!(words("避難 AND トイレ"), words("+避難 トイレ"));
        assert_eq!(words("NOT 廃止"), words("-廃止"));
        assert_eq!(words("foo:bar"), vec![("foo:bar".into(), None, false)]);
        assert_eq!(
            words("title: 公園"),
            vec![("title:".into(), None, false), ("公園".into(), None, false)]
        );
        assert_eq!(words("\"避難"), vec![("避難".into(), None, false)]);
        assert_eq!(words("- \"\""), vec![]);
        assert_eq!(words("7-11"), vec![("7-11".into(), None, false)]);
    }

    #[test]
    fn query_candidate_terms_skip_exclusions() {
        let q = SearchQuery::parse("避難所 市 -廃止");
        assert_eq!(q.candidate_terms(), vec!["市", "避難", "難所"]);
    }
}
