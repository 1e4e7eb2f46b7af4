//! What an entity write leaves in the entity's history, and the other way round: the
//! current attributes a set of history instances stands for.
//!
//! Every attribute instance that a write creates or changes becomes one history
//! instance; every instance it removes becomes a deletion record carrying the
//! NGSI-LD Null and `deletedAt` (clause 4.5.7 and the `deletedAt` time property).
//! History instances are stamped with the time they entered the history as their
//! `createdAt` and `modifiedAt`, so that `timeproperty=createdAt` asks "when was this
//! recorded".

use super::TemporalInstance;
use crate::model::{Attribute, AttributeValue, Attributes, Entity, RelationshipObject};
use chrono::{DateTime, Utc};
use serde_json::json;

/// The NGSI-LD Null (clause 4.5.0), which a deletion record carries as its value.
pub const NGSI_LD_NULL: &str = "urn:ngsi-ld:null";

/// The history instances that the change from `before` to `after` (either absent for
/// a creation or a deletion) adds, stamped `at`: the instances of `after` that are new
/// or differ from `before`, then a deletion record for each instance of `before` that
/// `after` no longer has.
pub fn instances_of_change(
    before: Option<&Entity>,
    after: Option<&Entity>,
    at: DateTime<Utc>,
) -> Vec<TemporalInstance> {
    let mut instances = Vec::new();
    if let Some(after) = after {
        for (name, values) in &after.attributes {
            for attribute in values {
                let old = before.and_then(|b| b.attribute(name, attribute.dataset_id.as_deref()));
                if old != Some(attribute) {
                    instances.push(recorded(name, attribute.clone(), at));
                }
            }
        }
    }
    if let Some(before) = before {
        for (name, values) in &before.attributes {
            for attribute in values {
                let kept = after
                    .and_then(|a| a.attribute(name, attribute.dataset_id.as_deref()))
                    .is_some();
                if !kept {
                    instances.push(deletion_record(name, attribute, at));
                }
            }
        }
    }
    instances
}

/// `attribute` as a history instance of `name` recorded `at`.
pub fn recorded(name: &str, mut attribute: Attribute, at: DateTime<Utc>) -> TemporalInstance {
    attribute.created_at = Some(at);
    attribute.modified_at = Some(at);
    TemporalInstance::new(name, attribute)
}

/// The record of the deletion of `attribute` (an instance of `name`) `at`: the same
/// kind and dataset id with the NGSI-LD Null as its value and no sub-attributes.
pub fn deletion_record(name: &str, attribute: &Attribute, at: DateTime<Utc>) -> TemporalInstance {
    let mut null = Attribute::new(null_of(&attribute.value));
    null.dataset_id = attribute.dataset_id.clone();
    let mut instance = recorded(name, null, at);
    instance.deleted_at = Some(at);
    instance
}

fn null_of(value: &AttributeValue) -> AttributeValue {
    let null = || NGSI_LD_NULL.to_owned();
    match value {
        AttributeValue::Relationship { .. } => AttributeValue::Relationship {
            object: RelationshipObject::One(null()),
            object_type: None,
        },
        AttributeValue::LanguageProperty(_) => {
            AttributeValue::LanguageProperty([("@none".to_owned(), json!(null()))].into())
        }
        AttributeValue::VocabProperty(_) => AttributeValue::VocabProperty(vec![null()]),
        AttributeValue::ListProperty(_) => AttributeValue::ListProperty(vec![json!(null())]),
        AttributeValue::ListRelationship(_) => AttributeValue::ListRelationship(vec![null()]),
        AttributeValue::JsonProperty(_) => AttributeValue::JsonProperty(json!(null())),
        AttributeValue::GeoProperty(_) => AttributeValue::GeoProperty(json!(null())),
        AttributeValue::Property(_) => AttributeValue::Property(json!(null())),
    }
}

/// The current attributes that history instances stand for: of each attribute and
/// dataset id, the instance observed last (the last given when none is observed, and
/// an observed one over an unobserved one), leaving out deletion records. Instance
/// ids and history stamps are not carried over.
pub fn latest_attributes<'a>(
    instances: impl IntoIterator<Item = &'a TemporalInstance>,
) -> Attributes {
    let mut latest = Attributes::new();
    for instance in instances {
        if instance.deleted_at.is_some() {
            continue;
        }
        let series = latest.entry(instance.name.clone()).or_default();
        let dataset = &instance.attribute.dataset_id;
        let mut candidate = instance.attribute.clone();
        candidate.created_at = None;
        candidate.modified_at = None;
        match series.iter_mut().find(|a| &a.dataset_id == dataset) {
            Some(current) if current.observed_at <= candidate.observed_at => *current = candidate,
            Some(_) => {}
            None => series.push(candidate),
        }
    }
    latest
}
