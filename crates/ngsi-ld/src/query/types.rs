//! Parser of entity type expressions (ETSI GS CIM 009 clause 4.17), the value of the
//! `type` query parameter.
//!
//! Type names (short terms such as `Building` or full IRIs such as
//! `https://uri.etsi.org/ngsi-ld/default-context/Vehicle`) combine with `,` or `|`
//! (or) and `;` (and), `;` binding tighter, with parentheses for grouping:
//! `Building,(Vehicle;Car)` selects buildings and entities that are both vehicles and
//! cars. A single name is a bare [`TypeExpr::Type`]; trees are flattened. Names are
//! kept as written for the broker to expand with the `@context`.
//!
//! Errors read `invalid type expression at position N: <what>`, `N` being the
//! 0-based character offset.
use std::fmt;

use super::q::{parse_logical, write_joined, BoolTree, Cursor};
use super::TypeExpr;
use crate::NgsiError;

/// Parses a `type` parameter (already percent-decoded).
pub fn parse(text: &str) -> Result<TypeExpr, NgsiError> {
    let mut cursor = Cursor::new(text, "type expression");
    parse_logical(&mut cursor, |c| c == '|' || c == ',', &mut parse_name)
}

/// Characters that cannot be part of a type name because they structure the
/// expression (or, for whitespace and quotes, are never meant to be in one).
fn ends_name(c: char) -> bool {
    matches!(c, ',' | '|' | ';' | '(' | ')' | '"') || c.is_whitespace() || c.is_control()
}

fn parse_name(cursor: &mut Cursor<'_>) -> Result<TypeExpr, NgsiError> {
    let name = cursor.take_while(|c| !ends_name(c));
    if name.is_empty() {
        return Err(cursor.unexpected("a type name"));
    }
    Ok(TypeExpr::Type(name.to_string()))
}

impl BoolTree for TypeExpr {
    fn and(parts: Vec<Self>) -> Self {
        TypeExpr::And(parts)
    }
    fn or(parts: Vec<Self>) -> Self {
        TypeExpr::Or(parts)
    }
    fn into_and_parts(self) -> Result<Vec<Self>, Self> {
        match self {
            TypeExpr::And(parts) => Ok(parts),
            other => Err(other),
        }
    }
    fn into_or_parts(self) -> Result<Vec<Self>, Self> {
        match self {
            TypeExpr::Or(parts) => Ok(parts),
            other => Err(other),
        }
    }
}

/// Writes the expression back in `type` parameter syntax (`,` for or), so that
/// parsing the output gives the same tree again.
impl fmt::Display for TypeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeExpr::Type(name) => f.write_str(name),
            TypeExpr::And(parts) => {
                write_joined(f, parts, ";", |p| !matches!(p, TypeExpr::Type(_)))
            }
            TypeExpr::Or(parts) => write_joined(f, parts, ",", |p| matches!(p, TypeExpr::Or(_))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str) -> TypeExpr {
        TypeExpr::Type(name.to_string())
    }

    #[test]
    fn names_and_iris() {
        assert_eq!(parse("Building").unwrap(), ty("Building"));
        assert_eq!(
            parse("https://uri.etsi.org/ngsi-ld/default-context/Vehicle").unwrap(),
            ty("https://uri.etsi.org/ngsi-ld/default-context/Vehicle")
        );
        assert_eq!(parse("fiware:Device").unwrap(), ty("fiware:Device"));
    }

    #[test]
    fn comma_and_bar_are_or_semicolon_is_and() {
        assert_eq!(parse("A,B").unwrap(), TypeExpr::Or(vec![ty("A"), ty("B")]));
        assert_eq!(
            parse("A|B,C").unwrap(),
            TypeExpr::Or(vec![ty("A"), ty("B"), ty("C")])
        );
        assert_eq!(
            parse("Building,(Vehicle;Car)").unwrap(),
            TypeExpr::Or(vec![
                ty("Building"),
                TypeExpr::And(vec![ty("Vehicle"), ty("Car")])
            ])
        );
        assert_eq!(
            parse("A;B,C").unwrap(),
            TypeExpr::Or(vec![TypeExpr::And(vec![ty("A"), ty("B")]), ty("C")])
        );
        assert_eq!(
            parse("(A,B);C").unwrap(),
            TypeExpr::And(vec![TypeExpr::Or(vec![ty("A"), ty("B")]), ty("C")])
        );
    }

    #[test]
    fn errors_name_the_position() {
        for (text, expected) in [
            (
                "",
                "invalid type expression at position 0: the expression is empty",
            ),
            (
                ",A",
                "invalid type expression at position 0: missing term before ','",
            ),
            (
                "A,,B",
                "invalid type expression at position 2: missing term before ','",
            ),
            (
                "A,",
                "invalid type expression at position 2: missing term at the end",
            ),
            (
                "A, B",
                "invalid type expression at position 2: whitespace is not allowed",
            ),
            (
                "(A;B",
                "invalid type expression at position 0: '(' is never closed",
            ),
            (
                "A)",
                "invalid type expression at position 1: unbalanced ')'",
            ),
            (
                "A(B)",
                "invalid type expression at position 1: unexpected '('",
            ),
            (
                "\"A\"",
                "invalid type expression at position 0: unexpected '\"'",
            ),
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

        fn name() -> impl Strategy<Value = TypeExpr> {
            prop_oneof![
                "[A-Za-z][A-Za-z0-9_]{0,8}",
                "https://example\\.org/[a-z/#.]{1,8}",
                "[ぁ-ん]{1,4}",
            ]
            .prop_map(TypeExpr::Type)
        }

        fn expr() -> impl Strategy<Value = TypeExpr> {
            crate::query::q::tree_strategies::flattened(name())
        }

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                let _ = parse(&text);
            }

            #[test]
            fn accepted_text_prints_back_to_the_same_tree(text in "[A-Za-z:/#;|,()]{0,30}") {
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
