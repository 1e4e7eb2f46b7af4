//! What a reader may see of a tenant's entities. Staff of the tenant (and anyone the
//! policy lets read it whole) see everything; everyone else sees only entities of the
//! types the tenant made public — as if the others did not exist, so that neither a
//! query, a retrieval, a join nor discovery reveals that a hidden entity is there.

use ngsi_ld::model::Entity;
use ngsi_ld::query::{EntityQuery, TypeExpr};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every entity of the tenant.
    All,
    /// Only entities having at least one of these types (expanded IRIs).
    PublicTypes(BTreeSet<String>),
}

impl Visibility {
    /// Whether the reader may see this entity.
    pub fn allows(&self, entity: &Entity) -> bool {
        match self {
            Visibility::All => true,
            Visibility::PublicTypes(public) => entity.types.iter().any(|t| public.contains(t)),
        }
    }

    /// Whether the reader may see entities of this type.
    pub fn allows_type(&self, type_iri: &str) -> bool {
        match self {
            Visibility::All => true,
            Visibility::PublicTypes(public) => public.contains(type_iri),
        }
    }

    /// Narrows a query to what the reader may see. Returns false when nothing can be
    /// seen, so the caller answers with an empty result without asking the store.
    pub fn narrow(&self, query: &mut EntityQuery) -> bool {
        let Visibility::PublicTypes(public) = self else {
            return true;
        };
        if public.is_empty() {
            return false;
        }
        let visible = TypeExpr::Or(public.iter().cloned().map(TypeExpr::Type).collect());
        query.types = Some(match query.types.take() {
            None => visible,
            // A plain union of public types needs no narrowing (and keeps its index
            // lookup); anything else must also have a public type.
            Some(asked) if union_within(&asked, public) => asked,
            Some(asked) => TypeExpr::And(vec![asked, visible]),
        });
        true
    }
}

fn union_within(expr: &TypeExpr, public: &BTreeSet<String>) -> bool {
    match expr {
        TypeExpr::Type(name) => public.contains(name),
        TypeExpr::Or(parts) => parts.iter().all(|p| union_within(p, public)),
        TypeExpr::And(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngsi_ld::query::eval::Matcher;

    fn public(types: &[&str]) -> Visibility {
        Visibility::PublicTypes(types.iter().map(|t| t.to_string()).collect())
    }

    #[test]
    fn restricted_readers_see_only_entities_with_a_public_type() {
        let shelter = Entity::new("urn:s:1", vec!["Shelter".into()]);
        let case = Entity::new("urn:c:1", vec!["WelfareCase".into()]);
        let both = Entity::new("urn:b:1", vec!["WelfareCase".into(), "Shelter".into()]);
        let reader = public(&["Shelter"]);
        assert!(reader.allows(&shelter) && reader.allows(&both) && !reader.allows(&case));
        assert!(Visibility::All.allows(&case));
    }

    #[test]
    fn narrowed_queries_match_only_visible_entities() {
        let reader = public(&["Shelter"]);
        let case = Entity::new("urn:c:1", vec!["WelfareCase".into()]);
        let shelter = Entity::new("urn:s:1", vec!["Shelter".into()]);
        let both = Entity::new("urn:b:1", vec!["WelfareCase".into(), "Shelter".into()]);
        for asked in [
            None,
            Some(TypeExpr::Type("WelfareCase".into())),
            Some(TypeExpr::Or(vec![
                TypeExpr::Type("WelfareCase".into()),
                TypeExpr::Type("Shelter".into()),
            ])),
        ] {
            let mut query = EntityQuery {
                types: asked.clone(),
                ..EntityQuery::default()
            };
            assert!(reader.narrow(&mut query));
            let matcher = Matcher::new(&query);
            assert!(!matcher.matches(&case), "{asked:?}");
            assert!(matcher.matches(&both), "{asked:?}");
            assert_eq!(
                matcher.matches(&shelter),
                asked != Some(TypeExpr::Type("WelfareCase".into()))
            );
        }
        let mut query = EntityQuery::default();
        assert!(!public(&[]).narrow(&mut query));
    }
}
