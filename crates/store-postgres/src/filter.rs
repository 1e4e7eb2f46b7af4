//! Translation of an [`EntityQuery`] into a `WHERE` clause over `entities e` that
//! uses the indexes. Tenant, plain type unions, ids and attribute presence are decided
//! exactly; `q` and a geo-query on `location` become prefilters
//! ([`ngsi_ld::query::index`]) over `entity_values` and the `location` geometry, which
//! may let through rows the in-memory evaluator then rejects but never hold back a
//! match. Whatever is left (idPattern, scopeQ, the exact q and geo semantics, nested
//! type expressions) is the evaluator's, which sees only the rows this clause let
//! through.

use ngsi_ld::query::index::{geo_prefilter, q_prefilter, Comparison, Prefilter};
use ngsi_ld::query::{EntityQuery, TypeExpr};
use tokio_postgres::types::ToSql;

pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The most attribute conditions of a `q` prefilter rendered in SQL (two parameters
/// each at most).
const MAX_NARROWING_TERMS: usize = 4000;

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
            condition: "e.tenant = $1".to_owned(),
            params: vec![Box::new(tenant.to_owned())],
            exact: true,
        };
        if let Some(types) = &query.types {
            match type_condition(types) {
                Some((operator, names)) => narrowing.push(&format!("e.types {operator}"), names),
                None => narrowing.exact = false,
            }
        }
        if !query.ids.is_empty() {
            narrowing.push("e.id = ANY", query.ids.clone());
        }
        if !query.attrs.is_empty() {
            narrowing.push("e.doc -> 'attrs' ?|", query.attrs.clone());
        }
        if let Some(q) = &query.q {
            let prefilter = q_prefilter(q);
            // A huge prefilter is left to the evaluator: it would need more than the
            // 65535 parameters a statement may have, and plan slowly anyway.
            if prefilter != Prefilter::All && prefilter.term_count() <= MAX_NARROWING_TERMS {
                let mut sql = String::new();
                narrowing.render(&mut sql, &prefilter);
                narrowing.condition.push_str(&format!(" AND {sql}"));
            }
        }
        if let Some(b) = query.geo_q.as_ref().and_then(geo_prefilter) {
            // The `location` column holds a shape whose box covers every instance of
            // the entity's `location` (see `EntityIndex`), so the GiST index can
            // answer the box test.
            let corners = [b.min_lon, b.min_lat, b.max_lon, b.max_lat]
                .map(|c| narrowing.bind(Box::new(c)))
                .join(", ");
            narrowing.condition.push_str(&format!(
                " AND e.location && ST_MakeEnvelope({corners}, 4326)"
            ));
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

    /// Renders a prefilter as a condition on `entity_values`, one `EXISTS` per
    /// indexed term so that each can use the `(attr, num)`/`(attr, txt)` indexes or
    /// probe the entity's own rows.
    fn render(&mut self, sql: &mut String, filter: &Prefilter) {
        const EXISTS: &str = "EXISTS (SELECT 1 FROM entity_values v WHERE v.seq = e.seq";
        match filter {
            Prefilter::All => sql.push_str("true"),
            Prefilter::Has(attr) => {
                let a = self.bind(Box::new(attr.clone()));
                sql.push_str(&format!("{EXISTS} AND v.attr = {a})"));
            }
            Prefilter::Number(attr, c, n) => {
                let a = self.bind(Box::new(attr.clone()));
                let n = self.bind(Box::new(*n));
                sql.push_str(&format!(
                    "{EXISTS} AND v.attr = {a} AND v.num {} {n})",
                    op(*c)
                ));
            }
            Prefilter::Text(attr, c, t) => {
                // `txt` is in the "C" collation: byte order, which is how the
                // evaluator compares strings.
                let a = self.bind(Box::new(attr.clone()));
                let t = self.bind(Box::new(t.clone()));
                sql.push_str(&format!(
                    "{EXISTS} AND v.attr = {a} AND v.txt {} {t})",
                    op(*c)
                ));
            }
            Prefilter::And(parts) | Prefilter::Or(parts) => {
                let and = matches!(filter, Prefilter::And(_));
                if parts.is_empty() {
                    sql.push_str(if and { "true" } else { "false" });
                    return;
                }
                sql.push('(');
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(if and { " AND " } else { " OR " });
                    }
                    self.render(sql, part);
                }
                sql.push(')');
            }
        }
    }

    /// How many parameters the condition has (the next one is `$<len + 1>`).
    pub(crate) fn param_count(&self) -> usize {
        self.params.len()
    }

    pub(crate) fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

fn op(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::Eq => "=",
        Comparison::Gt => ">",
        Comparison::Ge => ">=",
        Comparison::Lt => "<",
        Comparison::Le => "<=",
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
            "e.tenant = $1 AND e.types && ($2) AND e.id = ANY ($3) AND e.doc -> 'attrs' ?| ($4)"
        );
        let inexact = EntityQuery {
            id_pattern: Some("urn:.*".into()),
            ..query
        };
        assert!(!Narrowing::new("", &inexact).exact);
    }

    const CAPACITY: &str = "https://uri.etsi.org/ngsi-ld/default-context/capacity";
    const NAME: &str = "https://uri.etsi.org/ngsi-ld/default-context/name";

    fn with_q(text: &str) -> EntityQuery {
        let mut query = EntityQuery {
            q: Some(ngsi_ld::query::q::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))),
            ..EntityQuery::default()
        };
        let ctx = ngsi_ld::context::ActiveContext::core();
        query.expand_names(&|t| ctx.expand_iri(t, true), &|a| ctx.expand_iri(a, true));
        query
    }

    /// The parameters' debug forms, to check what each placeholder is bound to.
    fn params(narrowing: &Narrowing) -> Vec<String> {
        narrowing.params.iter().map(|p| format!("{p:?}")).collect()
    }

    const EXISTS: &str = "EXISTS (SELECT 1 FROM entity_values v WHERE v.seq = e.seq";

    #[test]
    fn q_comparisons_become_exists_over_entity_values() {
        let narrowing = Narrowing::new("t", &with_q("capacity>50;name<=\"b\""));
        assert!(!narrowing.exact);
        assert_eq!(
            narrowing.condition,
            format!(
                "e.tenant = $1 AND ({EXISTS} AND v.attr = $2 AND v.num > $3) AND \
                 {EXISTS} AND v.attr = $4 AND v.txt <= $5))"
            )
        );
        assert_eq!(
            params(&narrowing),
            [
                "\"t\"".to_owned(),
                format!("{CAPACITY:?}"),
                "50.0".to_owned(),
                format!("{NAME:?}"),
                "\"b\"".to_owned()
            ]
        );
    }

    #[test]
    fn lists_ranges_and_negations_render_as_or_and_and_presence() {
        let list = Narrowing::new("", &with_q("capacity==1,2|name!=\"x\""));
        assert_eq!(
            list.condition,
            format!(
                "e.tenant = $1 AND (({EXISTS} AND v.attr = $2 AND v.num = $3) OR \
                 {EXISTS} AND v.attr = $4 AND v.num = $5)) OR {EXISTS} AND v.attr = $6))"
            )
        );
        let range = Narrowing::new("", &with_q("capacity==1..5"));
        assert_eq!(
            range.condition,
            format!(
                "e.tenant = $1 AND ({EXISTS} AND v.attr = $2 AND v.num >= $3) AND \
                 {EXISTS} AND v.attr = $4 AND v.num <= $5))"
            )
        );
    }

    #[test]
    fn terms_the_index_cannot_compare_need_only_the_attribute() {
        // A date-time compares chronologically, not in text order, and a pattern is
        // no order at all: presence is all the index knows.
        let narrowing = Narrowing::new("", &with_q("capacity>2024-01-01T00:00:00Z;name~=a.*"));
        assert_eq!(
            narrowing.condition,
            format!("e.tenant = $1 AND ({EXISTS} AND v.attr = $2) AND {EXISTS} AND v.attr = $3))")
        );
        assert!(!narrowing.exact);
    }

    #[test]
    fn geo_queries_on_location_test_the_box_of_the_location_column() {
        let mut query = EntityQuery {
            geo_q: Some(
                ngsi_ld::query::geo::parse_geo_query(
                    "near;maxDistance==1000",
                    "Point",
                    "[138.3,34.9]",
                    None,
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            ..EntityQuery::default()
        };
        let ctx = ngsi_ld::context::ActiveContext::core();
        query.expand_names(&|t| ctx.expand_iri(t, true), &|a| ctx.expand_iri(a, true));
        let narrowing = Narrowing::new("", &query);
        assert!(!narrowing.exact);
        assert_eq!(
            narrowing.condition,
            "e.tenant = $1 AND e.location && ST_MakeEnvelope($2, $3, $4, $5, 4326)"
        );
        let corners: Vec<f64> = params(&narrowing)
            .iter()
            .skip(1)
            .filter_map(|p| p.parse().ok())
            .collect();
        // About 1 km around the point in each direction.
        assert_eq!(corners.len(), 4, "{corners:?}");
        assert!(
            corners[0] < 138.3 - 0.009 && corners[2] > 138.3 + 0.009,
            "{corners:?}"
        );
        assert!(
            corners[1] < 34.9 - 0.008 && corners[3] > 34.9 + 0.008,
            "{corners:?}"
        );

        // `disjoint` cannot be narrowed by a box.
        if let Some(geo) = query.geo_q.as_mut() {
            geo.rel = ngsi_ld::query::GeoRel::Disjoint;
        }
        assert_eq!(Narrowing::new("", &query).condition, "e.tenant = $1");
    }
}
