//! When a change of an entity triggers a subscription (clauses 5.8.6 and 5.11).
//!
//! A change is the entity `before` and `after` it: no `before` is a creation, no
//! `after` a deletion. Changes are worked out per attribute instance (name and
//! datasetId), so a new dataset instance is an attribute creation.

use super::decode::parse_geo_q;
use super::{Subscription, Trigger};
use crate::context::ActiveContext;
use crate::model::{Attribute, Entity};
use crate::query::eval::Matcher;
use crate::query::{self, EntityQuery};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// The attribute names (expanded) created, updated and deleted by one change.
#[derive(Debug, Default)]
struct Changes {
    created: BTreeSet<String>,
    updated: BTreeSet<String>,
    deleted: BTreeSet<String>,
}

impl Subscription {
    /// Whether a change of one entity triggers a notification, and why: the
    /// subscription is active, not periodic, one of its `entities` selects the entity
    /// (the entity before the change for a deletion), the change is of a kind its
    /// triggers ask for and touches a watched attribute (any, without
    /// `watchedAttributes`), and `q`, `scopeQ` and `geoQ` hold on the entity, their
    /// names expanded with `ctx` (the subscription's own context).
    ///
    /// An entity deletion deletes its attributes too, so `attributeDeleted` fires for
    /// it when a watched attribute was there (as the conformance suite expects).
    pub fn evaluate(
        &self,
        before: Option<&Entity>,
        after: Option<&Entity>,
        ctx: &ActiveContext,
        now: DateTime<Utc>,
    ) -> Option<Trigger> {
        if !self.is_active_at(now) || self.time_interval.is_some() {
            return None;
        }
        let entity = after.or(before)?;
        if !self.selects(entity) {
            return None;
        }
        let triggers = self.triggers();
        let wants = |t: Trigger| triggers.contains(&t);
        let changes = self.changes(before, after);
        let has_watched = |e: &Entity| {
            self.watched_attributes.is_empty()
                || self
                    .watched_attributes
                    .iter()
                    .any(|w| e.attributes.get(w).is_some_and(|i| !i.is_empty()))
        };
        let reason = match (before, after) {
            (None, Some(created)) => {
                if wants(Trigger::EntityCreated) && has_watched(created) {
                    Trigger::EntityCreated
                } else if wants(Trigger::AttributeCreated) && !changes.created.is_empty() {
                    Trigger::AttributeCreated
                } else {
                    return None;
                }
            }
            (Some(deleted), None) => {
                if wants(Trigger::EntityDeleted) && has_watched(deleted) {
                    Trigger::EntityDeleted
                } else if wants(Trigger::AttributeDeleted) && !changes.deleted.is_empty() {
                    Trigger::AttributeDeleted
                } else {
                    return None;
                }
            }
            (Some(old), Some(new)) => {
                let entity_changed = old.scopes != new.scopes || old.types != new.types;
                if wants(Trigger::AttributeUpdated) && !changes.updated.is_empty() {
                    Trigger::AttributeUpdated
                } else if wants(Trigger::AttributeCreated) && !changes.created.is_empty() {
                    Trigger::AttributeCreated
                } else if wants(Trigger::AttributeDeleted) && !changes.deleted.is_empty() {
                    Trigger::AttributeDeleted
                } else if wants(Trigger::EntityUpdated)
                    && (!changes.is_empty()
                        || (entity_changed && self.watched_attributes.is_empty()))
                {
                    Trigger::EntityUpdated
                } else {
                    return None;
                }
            }
            (None, None) => return None,
        };
        self.query_holds(entity, ctx).then_some(reason)
    }

    /// Whether the subscription covers the entity as it is: one of its `entities`
    /// selects it and `q`, `scopeQ` and `geoQ` hold (what a periodic notification
    /// reports).
    pub fn covers(&self, entity: &Entity, ctx: &ActiveContext) -> bool {
        self.selects(entity) && self.query_holds(entity, ctx)
    }

    /// The queries that find the entities the `entities` selectors name (one per
    /// selector; the evaluator still has the last word through [`Self::covers`]).
    pub fn selector_queries(&self) -> Vec<EntityQuery> {
        self.entities
            .iter()
            .filter_map(|selector| {
                Some(EntityQuery {
                    types: Some(query::types::parse(&selector.type_iri).ok()?),
                    ids: selector.id.iter().cloned().collect(),
                    id_pattern: selector.id_pattern.clone(),
                    ..EntityQuery::default()
                })
            })
            .collect()
    }

    /// Whether one of the `entities` selectors (or none being given) selects the entity.
    fn selects(&self, entity: &Entity) -> bool {
        self.entities.is_empty()
            || self.entities.iter().any(|selector| {
                let Ok(types) = query::types::parse(&selector.type_iri) else {
                    return false;
                };
                let query = EntityQuery {
                    types: Some(types),
                    ids: selector.id.iter().cloned().collect(),
                    id_pattern: selector.id_pattern.clone(),
                    ..EntityQuery::default()
                };
                Matcher::new(&query).matches(entity)
            })
    }

    /// Whether `q`, `scopeQ` and `geoQ` hold on the entity. They were validated when the
    /// subscription was made, so a failure to parse now selects nothing.
    fn query_holds(&self, entity: &Entity, ctx: &ActiveContext) -> bool {
        let mut query = EntityQuery::default();
        if let Some(q) = &self.q {
            match query::q::parse(q) {
                Ok(expr) => query.q = Some(expr),
                Err(_) => return false,
            }
        }
        if let Some(scope) = &self.scope_q {
            match query::scope::parse(scope) {
                Ok(expr) => query.scope_q = Some(expr),
                Err(_) => return false,
            }
        }
        if let Some(geo) = &self.geo_q {
            match parse_geo_q(geo) {
                Ok(expr) => query.geo_q = Some(expr),
                Err(_) => return false,
            }
        }
        let expand = |name: &str| ctx.expand_iri(name, true);
        query.expand_names(&expand, &expand);
        Matcher::new(&query).matches(entity)
    }

    /// Whether an attribute instance is one the subscription's `datasetId` lets count.
    pub(super) fn counts(&self, instance: &Attribute) -> bool {
        self.dataset_id.is_empty()
            || self
                .dataset_id
                .iter()
                .any(|d| Some(d.as_str()) == instance.dataset_id.as_deref().or(Some("@none")))
    }

    /// The watched attributes (all, without `watchedAttributes`) the change created,
    /// updated or deleted, counting only the instances `datasetId` lets count.
    fn changes(&self, before: Option<&Entity>, after: Option<&Entity>) -> Changes {
        let mut changes = Changes::default();
        let names: BTreeSet<&String> = before
            .into_iter()
            .chain(after)
            .flat_map(|e| e.attributes.keys())
            .filter(|n| self.watched_attributes.is_empty() || self.watched_attributes.contains(n))
            .collect();
        let instances = |e: Option<&Entity>, name: &str| -> Vec<Attribute> {
            e.and_then(|e| e.attributes.get(name))
                .map(|is| is.iter().filter(|i| self.counts(i)).cloned().collect())
                .unwrap_or_default()
        };
        for name in names {
            let old = instances(before, name);
            let new = instances(after, name);
            for instance in &new {
                match old.iter().find(|o| o.dataset_id == instance.dataset_id) {
                    None => changes.created.insert(name.clone()),
                    Some(o) if o != instance => changes.updated.insert(name.clone()),
                    Some(_) => false,
                };
            }
            if old
                .iter()
                .any(|o| !new.iter().any(|n| n.dataset_id == o.dataset_id))
            {
                changes.deleted.insert(name.clone());
            }
        }
        changes
    }
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}
