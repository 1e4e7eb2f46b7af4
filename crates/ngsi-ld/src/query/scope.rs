//! Parser of `scopeQ` (ETSI GS CIM 009 clause 4.19).
//!
//! A scope pattern is a path of segments, each starting with `/`: `/Madrid/Gardens`
//! names one scope, `+` stands for exactly one segment (`/Madrid/+/Parks`), a final
//! `#` for the scope and all its descendants (`/Madrid/#`), and `/#` alone for every
//! scope. Patterns combine with `;` (and) and `|` or `,` (or), `;` binding tighter,
//! with parentheses for grouping. Segments are letters (including non-ASCII ones such
//! as `/東京都/渋谷区`), digits, `_`, `-` and `.`. Patterns are kept as written; the
//! store decides how to match them.
//!
//! Errors read `invalid scopeQ at position N: <what>`, `N` being the 0-based
//! character offset.
use std::fmt;

use super::q::{parse_logical, write_joined, BoolTree, Cursor};
use super::ScopeExpr;
use crate::NgsiError;

/// Parses a `scopeQ` value (already percent-decoded).
pub fn parse(text: &str) -> Result<ScopeExpr, NgsiError> {
    let mut cursor = Cursor::new(text, "scopeQ");
    parse_logical(&mut cursor, |c| c == '|' || c == ',', &mut parse_pattern)
}

fn is_segment_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn parse_pattern(cursor: &mut Cursor<'_>) -> Result<ScopeExpr, NgsiError> {
    let start = cursor.pos();
    if cursor.peek() != Some('/') {
        return Err(cursor.unexpected("a scope starting with '/'"));
    }
    while cursor.eat('/') {
        if cursor.eat('#') {
            // `#` only makes sense last: it already covers every level below.
            if let Some(c) = cursor.peek() {
                if !matches!(c, ';' | '|' | ',' | ')') {
                    return Err(cursor.error("'#' must be the last segment of a scope"));
                }
            }
            break;
        }
        if cursor.eat('+') {
            continue;
        }
        let segment = cursor.take_while(is_segment_char);
        if segment.is_empty() {
            return Err(cursor.unexpected("a scope segment after '/'"));
        }
        if matches!(cursor.peek(), Some('+' | '#')) {
            return Err(cursor.error("'+' and '#' must stand alone as a segment"));
        }
    }
    match cursor.peek() {
        None | Some(';' | '|' | ',' | ')') => {}
        Some(_) => return Err(cursor.unexpected("'/', ';', '|', ',' or ')'")),
    }
    let pattern = cursor.text_since(start);
    Ok(ScopeExpr::Pattern(pattern.to_string()))
}

impl BoolTree for ScopeExpr {
    fn and(parts: Vec<Self>) -> Self {
        ScopeExpr::And(parts)
    }
    fn or(parts: Vec<Self>) -> Self {
        ScopeExpr::Or(parts)
    }
    fn into_and_parts(self) -> Result<Vec<Self>, Self> {
        match self {
            ScopeExpr::And(parts) => Ok(parts),
            other => Err(other),
        }
    }
    fn into_or_parts(self) -> Result<Vec<Self>, Self> {
        match self {
            ScopeExpr::Or(parts) => Ok(parts),
            other => Err(other),
        }
    }
}

/// Writes the expression back in `scopeQ` syntax, so that parsing the output gives
/// the same tree again.
impl fmt::Display for ScopeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeExpr::Pattern(p) => f.write_str(p),
            ScopeExpr::And(parts) => {
                write_joined(f, parts, ";", |p| !matches!(p, ScopeExpr::Pattern(_)))
            }
            ScopeExpr::Or(parts) => write_joined(f, parts, "|", |p| matches!(p, ScopeExpr::Or(_))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> ScopeExpr {
        ScopeExpr::Pattern(p.to_string())
    }

    #[test]
    fn single_patterns() {
        for p in [
            "/Madrid",
            "/Madrid/Gardens/ParqueNorte",
            "/Madrid/+",
            "/Madrid/+/Parks",
            "/+/+",
            "/Madrid/#",
            "/#",
            "/東京都/渋谷区",
            "/a-b/c_d/v1.2",
        ] {
            assert_eq!(parse(p).unwrap(), pat(p), "{p}");
        }
    }

    #[test]
    fn combinations_and_precedence() {
        assert_eq!(
            parse("/a;/b|/c").unwrap(),
            ScopeExpr::Or(vec![ScopeExpr::And(vec![pat("/a"), pat("/b")]), pat("/c")])
        );
        assert_eq!(
            parse("/a,/b;/c").unwrap(),
            ScopeExpr::Or(vec![pat("/a"), ScopeExpr::And(vec![pat("/b"), pat("/c")])])
        );
        assert_eq!(
            parse("(/a|/b);/c/#").unwrap(),
            ScopeExpr::And(vec![ScopeExpr::Or(vec![pat("/a"), pat("/b")]), pat("/c/#")])
        );
        assert_eq!(
            parse("/a,/b|/c").unwrap(),
            ScopeExpr::Or(vec![pat("/a"), pat("/b"), pat("/c")])
        );
    }

    #[test]
    fn errors_name_the_position() {
        for (text, expected) in [
            ("", "invalid scopeQ at position 0: the expression is empty"),
            (
                "Madrid",
                "invalid scopeQ at position 0: unexpected 'M', expected a scope",
            ),
            (
                "/",
                "invalid scopeQ at position 1: unexpected end, expected a scope segment",
            ),
            (
                "/a/",
                "invalid scopeQ at position 3: unexpected end, expected a scope segment",
            ),
            ("/a//b", "invalid scopeQ at position 3: unexpected '/'"),
            (
                "/a/#/b",
                "invalid scopeQ at position 4: '#' must be the last segment",
            ),
            (
                "/a+",
                "invalid scopeQ at position 2: '+' and '#' must stand alone",
            ),
            ("/+a", "invalid scopeQ at position 2: unexpected 'a'"),
            (
                "/a;",
                "invalid scopeQ at position 3: missing term at the end",
            ),
            (
                "/a, /b",
                "invalid scopeQ at position 3: whitespace is not allowed",
            ),
            ("(/a", "invalid scopeQ at position 0: '(' is never closed"),
            ("/a)", "invalid scopeQ at position 2: unbalanced ')'"),
            ("/a/b*", "invalid scopeQ at position 4: unexpected '*'"),
        ] {
            let detail = parse(text).unwrap_err().detail;
            assert!(
                detail.starts_with(expected),
                "{text:?}: got {detail:?}, want {expected:?}"
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn pattern() -> impl Strategy<Value = ScopeExpr> {
            (
                prop::collection::vec(prop_oneof!["[A-Za-z0-9_.-]{1,6}", Just("+".into())], 0..4),
                any::<bool>(),
            )
                .prop_filter_map(
                    "a scope has at least one segment",
                    |(segments, hash)| {
                        let mut p: String = segments.iter().map(|s| format!("/{s}")).collect();
                        if hash {
                            p.push_str("/#");
                        }
                        (!p.is_empty()).then_some(ScopeExpr::Pattern(p))
                    },
                )
        }

        fn expr() -> impl Strategy<Value = ScopeExpr> {
            crate::query::q::tree_strategies::flattened(pattern())
        }

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                let _ = parse(&text);
            }

            #[test]
            fn scope_like_text_never_panics(text in "[a-z/+#;|,() ]{0,30}") {
                let _ = parse(&text);
            }

            #[test]
            fn accepted_text_prints_back_to_the_same_tree(text in "[a-z/+#;|,()]{0,30}") {
                if let Ok(tree) = parse(&text) {
                    let printed = tree.to_string();
                    prop_assert_eq!(parse(&printed), Ok(tree), "{:?} printed as {:?}", text, printed);
                }
            }

            #[test]
            fn generated_expressions_round_trip(tree in expr()) {
                let text = tree.to_string();
                prop_assert_eq!(parse(&text), Ok(tree), "text: {}", text);
            }
        }
    }
}
