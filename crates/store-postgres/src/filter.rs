//! Translation of the parts of an [`EntityQuery`] that SQL can decide exactly (tenant,
//! types, ids, attribute presence) into a `WHERE` clause that uses the table's
//! indexes. What SQL does not decide here (idPattern, q, scopeQ, geoQ, nested type
//! expressions) is left to the in-memory evaluator, which then sees only the rows
//! this clause let through.

use ngsi_ld::query::{EntityQuery, TypeExpr};
use tokio_postgres::types::ToSql;

pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A `WHERE` clause with its parameters, and whether it selects exactly the matches
/// (so that counting and paging can be left to SQL too).
pub(crate) struct Narrowing {
    pub(crate) condition: String,
    pub(crate) params: Vec<Param>,
    pub(crate) exact: bool,
}

impl Narrowing {
    pub(crate) fn new(tenant: &str, query: &EntityQuery) -> Narrowing {
        let mut narrowing = Narrowing {
            condition: "tenant = $1".to_owned(),
            params: vec![Box::new(tenant.to_owned())],
            exact: true,
        };
        if let Some(types) = &query.types {
            match type_condition(types) {
                Some((operator, names)) => narrowing.push(&format!("types {operator}"), names),
                None => narrowing.exact = false,
            }
        }
        if !query.ids.is_empty() {
            narrowing.push("id = ANY", query.ids.clone());
        }
        if !query.attrs.is_empty() {
            narrowing.push("doc -> 'attrs' ?|", query.attrs.clone());
        }
        if query.id_pattern.is_some()
            || query.q.is_some()
            || query.scope_q.is_some()
            || query.geo_q.is_some()
        {
            narrowing.exact = false;
        }
        narrowing
    }

    /// Adds `<lhs> ($n)` with the next parameter number.
    fn push(&mut self, lhs: &str, names: Vec<String>) {
        self.params.push(Box::new(names));
        let n = self.params.len();
        self.condition.push_str(&format!(" AND {lhs} (${n})"));
    }

    /// Adds one more parameter and returns its placeholder.
    pub(crate) fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    pub(crate) fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The array operator and type names for type expressions SQL answers with the GIN
/// index alone: any of some names (`&&`) or all of them (`@>`).
fn type_condition(expr: &TypeExpr) -> Option<(&'static str, Vec<String>)> {
    if let Some(names) = plain_names(expr, Combination::Any) {
        return Some(("&&", names));
    }
    plain_names(expr, Combination::All).map(|names| ("@>", names))
}

#[derive(Clone, Copy, PartialEq)]
enum Combination {
    Any,
    All,
}

/// The type names of an expression that only combines names one way (a single name
/// or a one-member group fits either).
fn plain_names(expr: &TypeExpr, how: Combination) -> Option<Vec<String>> {
    match expr {
        TypeExpr::Type(name) => Some(vec![name.clone()]),
        TypeExpr::Or(parts) | TypeExpr::And(parts) if parts.len() == 1 => {
            parts.first().and_then(|p| plain_names(p, how))
        }
        TypeExpr::Or(parts) if how == Combination::Any => collect(parts, how),
        TypeExpr::And(parts) if how == Combination::All => collect(parts, how),
        _ => None,
    }
}

fn collect(parts: &[TypeExpr], how: Combination) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for part in parts {
        names.extend(plain_names(part, how)?);
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TypeExpr {
        TypeExpr::Type(name.into())
    }

    #[test]
    fn plain_type_expressions_are_decided_by_sql() {
        let or = TypeExpr::Or(vec![t("a"), TypeExpr::Or(vec![t("b")])]);
        assert_eq!(
            type_condition(&or),
            Some(("&&", vec!["a".into(), "b".into()]))
        );
        let and = TypeExpr::And(vec![t("a"), t("b")]);
        assert_eq!(
            type_condition(&and),
            Some(("@>", vec!["a".into(), "b".into()]))
        );
        let mixed = TypeExpr::Or(vec![t("a"), TypeExpr::And(vec![t("b"), t("c")])]);
        assert_eq!(type_condition(&mixed), None);
    }

    #[test]
    fn anything_sql_does_not_decide_makes_the_narrowing_inexact() {
        let query = EntityQuery {
            types: Some(t("a")),
            ids: vec!["urn:x".into()],
            attrs: vec!["https://ex.org/p".into()],
            ..EntityQuery::default()
        };
        let narrowing = Narrowing::new("", &query);
        assert!(narrowing.exact);
        assert_eq!(
            narrowing.condition,
            "tenant = $1 AND types && ($2) AND id = ANY ($3) AND doc -> 'attrs' ?| ($4)"
        );
        let inexact = EntityQuery {
            id_pattern: Some("urn:.*".into()),
            ..query
        };
        assert!(!Narrowing::new("", &inexact).exact);
    }
}
