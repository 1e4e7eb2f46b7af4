//! The entity mutations of ETSI GS CIM 009 clause 5.6 as pure functions on an
//! [`Entity`]: what append, update, partial update, replace, merge and delete do to an
//! entity's attributes and timestamps. No I/O here; the broker runs these inside a
//! store transaction so that concurrent writers never interleave.

use chrono::{DateTime, Utc};
use ngsi_ld::model::{Attribute, AttributeValue, Attributes, Entity};
use ngsi_ld::NgsiError;

/// NGSI-LD's Null (clause 4.5.0): in a merge, an attribute or member with this value is
/// deleted rather than set.
pub const NGSI_LD_NULL: &str = "urn:ngsi-ld:null";

/// The outcome of an operation on several attributes of one entity
/// (UpdateResult, clause 5.2.18).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateReport {
    /// Expanded names of the attributes that were written.
    pub updated: Vec<String>,
    pub not_updated: Vec<NotUpdated>,
}

/// An attribute that was not written, and why (NotUpdatedDetails, clause 5.2.19).
#[derive(Debug, Clone, PartialEq)]
pub struct NotUpdated {
    pub attribute: String,
    pub reason: String,
}

impl UpdateReport {
    pub fn is_complete(&self) -> bool {
        self.not_updated.is_empty()
    }
    fn updated(&mut self, name: &str) {
        if !self.updated.iter().any(|n| n == name) {
            self.updated.push(name.to_owned());
        }
    }
    fn not_updated(&mut self, name: &str, reason: impl Into<String>) {
        self.not_updated.push(NotUpdated {
            attribute: name.to_owned(),
            reason: reason.into(),
        });
    }
}

/// Stamps a new entity and all its attributes as created now.
pub fn stamp_new_entity(entity: &mut Entity, now: DateTime<Utc>) {
    entity.created_at = Some(now);
    entity.modified_at = Some(now);
    for instances in entity.attributes.values_mut() {
        for attribute in instances {
            stamp_attribute(attribute, None, now);
        }
    }
}

/// Stamps an attribute written now; it keeps the creation time of the instance it
/// replaces, if any. Sub-attributes are stamped the same way.
fn stamp_attribute(attribute: &mut Attribute, replaced: Option<&Attribute>, now: DateTime<Utc>) {
    attribute.created_at = replaced.and_then(|r| r.created_at).or(Some(now));
    attribute.modified_at = Some(now);
    for (name, instances) in attribute.sub_attributes.iter_mut() {
        for sub in instances {
            let old = replaced
                .and_then(|r| find_instance(&r.sub_attributes, name, sub.dataset_id.as_deref()));
            let old = old.cloned();
            stamp_attribute(sub, old.as_ref(), now);
        }
    }
}

fn find_instance<'a>(
    attributes: &'a Attributes,
    name: &str,
    dataset_id: Option<&str>,
) -> Option<&'a Attribute> {
    attributes
        .get(name)?
        .iter()
        .find(|a| a.dataset_id.as_deref() == dataset_id)
}

/// Writes `attribute` as the instance of `name` with its dataset id, replacing any
/// instance with the same dataset id. Returns whether one was replaced.
fn put_instance(
    entity: &mut Entity,
    name: &str,
    mut attribute: Attribute,
    now: DateTime<Utc>,
) -> bool {
    let instances = entity.attributes.entry(name.to_owned()).or_default();
    let position = instances
        .iter()
        .position(|a| a.dataset_id == attribute.dataset_id);
    match position {
        Some(i) => {
            stamp_attribute(&mut attribute, Some(&instances[i]), now);
            instances[i] = attribute;
            true
        }
        None => {
            stamp_attribute(&mut attribute, None, now);
            instances.push(attribute);
            false
        }
    }
}

/// Replace entity (clause 5.6.18): everything but the id and creation time is replaced.
pub fn replace_entity(old: &Entity, mut new: Entity, now: DateTime<Utc>) -> Entity {
    stamp_new_entity(&mut new, now);
    new.created_at = old.created_at;
    new
}

/// Append entity attributes (clause 5.6.3). With `no_overwrite`, instances that exist
/// already are reported as not updated instead of being replaced.
pub fn append_attributes(
    entity: &mut Entity,
    attributes: Attributes,
    no_overwrite: bool,
    now: DateTime<Utc>,
) -> UpdateReport {
    let mut report = UpdateReport::default();
    for (name, instances) in attributes {
        for attribute in instances {
            let exists =
                find_instance(&entity.attributes, &name, attribute.dataset_id.as_deref()).is_some();
            if exists && no_overwrite {
                report.not_updated(
                    &name,
                    "attribute already exists and noOverwrite was requested",
                );
                continue;
            }
            put_instance(entity, &name, attribute, now);
            report.updated(&name);
        }
    }
    touch(entity, &report, now);
    report
}

/// Update entity attributes (clause 5.6.2): only instances that exist are replaced.
pub fn update_attributes(
    entity: &mut Entity,
    attributes: Attributes,
    now: DateTime<Utc>,
) -> UpdateReport {
    let mut report = UpdateReport::default();
    for (name, instances) in attributes {
        for attribute in instances {
            if find_instance(&entity.attributes, &name, attribute.dataset_id.as_deref()).is_none() {
                report.not_updated(&name, "attribute (with this datasetId) does not exist");
                continue;
            }
            put_instance(entity, &name, attribute, now);
            report.updated(&name);
        }
    }
    touch(entity, &report, now);
    report
}

fn touch(entity: &mut Entity, report: &UpdateReport, now: DateTime<Utc>) {
    if !report.updated.is_empty() {
        entity.modified_at = Some(now);
    }
}

/// Partial attribute update (clause 5.6.4): the given members of each instance are
/// merged into the existing instance with the same dataset id.
pub fn partial_update_attribute(
    entity: &mut Entity,
    name: &str,
    fragments: Vec<Attribute>,
    now: DateTime<Utc>,
) -> Result<(), NgsiError> {
    for fragment in fragments {
        let Some(existing) = entity.attributes.get_mut(name).and_then(|list| {
            list.iter_mut()
                .find(|a| a.dataset_id == fragment.dataset_id)
        }) else {
            return Err(missing_attribute(name, fragment.dataset_id.as_deref()));
        };
        merge_attribute(existing, fragment, now);
    }
    entity.modified_at = Some(now);
    Ok(())
}

/// Replace attribute (clause 5.6.19): the instance with the same dataset id must exist.
pub fn replace_attribute(
    entity: &mut Entity,
    name: &str,
    instances: Vec<Attribute>,
    now: DateTime<Utc>,
) -> Result<(), NgsiError> {
    for attribute in &instances {
        if find_instance(&entity.attributes, name, attribute.dataset_id.as_deref()).is_none() {
            return Err(missing_attribute(name, attribute.dataset_id.as_deref()));
        }
    }
    for attribute in instances {
        put_instance(entity, name, attribute, now);
    }
    entity.modified_at = Some(now);
    Ok(())
}

/// Which instances of an attribute a delete removes.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceSelector {
    Default,
    DatasetId(String),
    All,
}

/// Delete attribute (clause 5.6.5).
pub fn delete_attribute(
    entity: &mut Entity,
    name: &str,
    which: &InstanceSelector,
    now: DateTime<Utc>,
) -> Result<(), NgsiError> {
    let Some(instances) = entity.attributes.get_mut(name) else {
        return Err(missing_attribute(name, None));
    };
    let before = instances.len();
    match which {
        InstanceSelector::All => instances.clear(),
        InstanceSelector::Default => instances.retain(|a| a.dataset_id.is_some()),
        InstanceSelector::DatasetId(id) => {
            instances.retain(|a| a.dataset_id.as_deref() != Some(id))
        }
    }
    if instances.len() == before {
        let dataset = match which {
            InstanceSelector::DatasetId(id) => Some(id.as_str()),
            _ => None,
        };
        return Err(missing_attribute(name, dataset));
    }
    if instances.is_empty() {
        entity.attributes.remove(name);
    }
    entity.modified_at = Some(now);
    Ok(())
}

/// What a merge (clause 5.6.17, merge-patch) brings besides attributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityPatch {
    /// Types to add to the entity's types.
    pub types: Vec<String>,
    /// Scopes to set, if given.
    pub scopes: Option<Vec<String>>,
    pub attributes: Attributes,
}

/// Merge entity (clause 5.6.17): attributes are added or merged member by member; an
/// attribute whose value is NGSI-LD Null is deleted.
pub fn merge_entity(entity: &mut Entity, patch: EntityPatch, now: DateTime<Utc>) {
    for t in patch.types {
        if !entity.types.contains(&t) {
            entity.types.push(t);
        }
    }
    if let Some(scopes) = patch.scopes {
        entity.scopes = scopes;
    }
    merge_attributes(&mut entity.attributes, patch.attributes, now);
    entity.modified_at = Some(now);
}

fn merge_attributes(target: &mut Attributes, patch: Attributes, now: DateTime<Utc>) {
    for (name, instances) in patch {
        for fragment in instances {
            let list = target.entry(name.clone()).or_default();
            let position = list
                .iter()
                .position(|a| a.dataset_id == fragment.dataset_id);
            match (position, is_null(&fragment)) {
                (Some(i), true) => {
                    list.remove(i);
                }
                (None, true) => {}
                (Some(i), false) => merge_attribute(&mut list[i], fragment, now),
                (None, false) => {
                    let mut fresh = fragment;
                    stamp_attribute(&mut fresh, None, now);
                    list.push(fresh);
                }
            }
            if list.is_empty() {
                target.remove(&name);
            }
        }
    }
}

fn is_null(attribute: &Attribute) -> bool {
    match &attribute.value {
        AttributeValue::Property(v) | AttributeValue::JsonProperty(v) => {
            v.as_str() == Some(NGSI_LD_NULL) || v.is_null()
        }
        AttributeValue::Relationship { object, .. } => {
            matches!(object, ngsi_ld::model::RelationshipObject::One(o) if o == NGSI_LD_NULL)
        }
        _ => false,
    }
}

/// Merges a fragment into an existing instance: the value and the given meta-data
/// replace the old ones, sub-attributes are merged recursively.
fn merge_attribute(existing: &mut Attribute, fragment: Attribute, now: DateTime<Utc>) {
    existing.value = fragment.value;
    if fragment.observed_at.is_some() {
        existing.observed_at = fragment.observed_at;
    }
    if fragment.unit_code.is_some() {
        existing.unit_code = fragment.unit_code;
    }
    merge_attributes(&mut existing.sub_attributes, fragment.sub_attributes, now);
    existing.modified_at = Some(now);
}

fn missing_attribute(name: &str, dataset_id: Option<&str>) -> NgsiError {
    match dataset_id {
        Some(d) => NgsiError::not_found(format!("attribute {name} with datasetId {d} not found")),
        None => NgsiError::not_found(format!("attribute {name} not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }
    fn prop(v: serde_json::Value) -> Attribute {
        Attribute::new(AttributeValue::Property(v))
    }
    fn with_dataset(mut a: Attribute, d: &str) -> Attribute {
        a.dataset_id = Some(d.into());
        a
    }
    fn shelter() -> Entity {
        let mut e = Entity::new(
            "urn:ngsi-ld:Shelter:1",
            vec!["https://ex.org/Shelter".into()],
        );
        e.attributes
            .insert("capacity".into(), vec![prop(json!(100))]);
        stamp_new_entity(&mut e, t(0));
        e
    }
    fn attrs(pairs: Vec<(&str, Attribute)>) -> Attributes {
        let mut out = Attributes::new();
        for (n, a) in pairs {
            out.entry(n.to_string()).or_default().push(a);
        }
        out
    }

    #[test]
    fn append_keeps_creation_time_and_reports_no_overwrite() {
        let mut e = shelter();
        let report = append_attributes(
            &mut e,
            attrs(vec![
                ("capacity", prop(json!(5))),
                ("open", prop(json!(true))),
            ]),
            false,
            t(10),
        );
        assert_eq!(report.updated, vec!["capacity", "open"]);
        let capacity = e.attribute("capacity", None).unwrap();
        assert_eq!(capacity.value, AttributeValue::Property(json!(5)));
        assert_eq!(capacity.created_at, Some(t(0)));
        assert_eq!(capacity.modified_at, Some(t(10)));
        assert_eq!(e.modified_at, Some(t(10)));

        let report = append_attributes(
            &mut e,
            attrs(vec![("capacity", prop(json!(7)))]),
            true,
            t(20),
        );
        assert_eq!(report.not_updated.len(), 1);
        assert_eq!(
            e.attribute("capacity", None).unwrap().value,
            AttributeValue::Property(json!(5))
        );
        assert_eq!(
            e.modified_at,
            Some(t(10)),
            "nothing written, nothing modified"
        );
    }

    #[test]
    fn update_only_touches_existing_instances() {
        let mut e = shelter();
        let report = update_attributes(
            &mut e,
            attrs(vec![
                ("capacity", prop(json!(1))),
                ("capacity", with_dataset(prop(json!(2)), "urn:d")),
                ("missing", prop(json!(3))),
            ]),
            t(5),
        );
        assert_eq!(report.updated, vec!["capacity"]);
        assert_eq!(report.not_updated.len(), 2);
        assert_eq!(e.attributes["capacity"].len(), 1);
        assert!(!e.attributes.contains_key("missing"));
    }

    #[test]
    fn delete_by_dataset_id_default_and_all() {
        let mut e = shelter();
        append_attributes(
            &mut e,
            attrs(vec![("capacity", with_dataset(prop(json!(2)), "urn:d"))]),
            false,
            t(1),
        );
        assert_eq!(e.attributes["capacity"].len(), 2);
        delete_attribute(&mut e, "capacity", &InstanceSelector::Default, t(2)).unwrap();
        assert_eq!(e.attributes["capacity"].len(), 1);
        assert!(delete_attribute(&mut e, "capacity", &InstanceSelector::Default, t(3)).is_err());
        delete_attribute(
            &mut e,
            "capacity",
            &InstanceSelector::DatasetId("urn:d".into()),
            t(4),
        )
        .unwrap();
        assert!(!e.attributes.contains_key("capacity"));
        assert!(delete_attribute(&mut e, "capacity", &InstanceSelector::All, t(5)).is_err());
    }

    #[test]
    fn merge_adds_merges_and_deletes_on_null() {
        let mut e = shelter();
        let mut capacity = prop(json!(150));
        capacity
            .sub_attributes
            .insert("reliability".into(), vec![prop(json!(0.9))]);
        let patch = EntityPatch {
            types: vec!["https://ex.org/Building".into()],
            scopes: None,
            attributes: attrs(vec![("capacity", capacity), ("open", prop(json!(true)))]),
        };
        merge_entity(&mut e, patch, t(3));
        assert_eq!(e.types.len(), 2);
        let c = e.attribute("capacity", None).unwrap();
        assert_eq!(c.value, AttributeValue::Property(json!(150)));
        assert_eq!(c.created_at, Some(t(0)));
        assert!(c.sub_attributes.contains_key("reliability"));

        let patch = EntityPatch {
            attributes: attrs(vec![("open", prop(json!(NGSI_LD_NULL)))]),
            ..Default::default()
        };
        merge_entity(&mut e, patch, t(4));
        assert!(!e.attributes.contains_key("open"));
    }

    #[test]
    fn replace_and_partial_update_need_an_existing_instance() {
        let mut e = shelter();
        assert!(replace_attribute(&mut e, "nope", vec![prop(json!(1))], t(1)).is_err());
        assert!(partial_update_attribute(
            &mut e,
            "capacity",
            vec![with_dataset(prop(json!(1)), "urn:x")],
            t(1)
        )
        .is_err());
        let mut fragment = prop(json!(42));
        fragment.unit_code = Some("C62".into());
        partial_update_attribute(&mut e, "capacity", vec![fragment], t(2)).unwrap();
        let c = e.attribute("capacity", None).unwrap();
        assert_eq!(c.value, AttributeValue::Property(json!(42)));
        assert_eq!(c.unit_code.as_deref(), Some("C62"));
        replace_attribute(&mut e, "capacity", vec![prop(json!(7))], t(3)).unwrap();
        let c = e.attribute("capacity", None).unwrap();
        assert_eq!(
            c.unit_code, None,
            "replace drops what the new instance lacks"
        );
        assert_eq!(c.created_at, Some(t(0)));
    }

    #[test]
    fn replace_entity_keeps_only_id_and_creation_time() {
        let old = shelter();
        let new = Entity::new(old.id.clone(), vec!["https://ex.org/Other".into()]);
        let replaced = replace_entity(&old, new, t(9));
        assert_eq!(replaced.created_at, Some(t(0)));
        assert_eq!(replaced.modified_at, Some(t(9)));
        assert!(replaced.attributes.is_empty());
    }
}
