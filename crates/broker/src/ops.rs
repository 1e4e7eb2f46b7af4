//! The entity mutations of ETSI GS CIM 009 clause 5.6 as pure functions on an
//! [`Entity`]: what append, update, partial update, replace, merge and delete do to an
//! entity's attributes and timestamps. No I/O here; the broker runs these inside a
//! store transaction so that concurrent writers never interleave.

use chrono::{DateTime, Utc};
use ngsi_ld::context::codec::AttributeFragment;
use ngsi_ld::model::{
    Attribute, AttributeValue, Attributes, DatasetSelector, Entity, RelationshipObject,
};
use ngsi_ld::NgsiError;

/// NGSI-LD's Null (clause 4.5.0): in a merge, an attribute or member with this value is
/// deleted rather than set.
pub use ngsi_ld::context::codec::NGSI_LD_NULL;

/// The expanded name of the entity member `scope`, which the attribute operations treat
/// like an attribute (`DELETE …/attrs/scope`, scope in an update's 207 answer).
pub const SCOPE: &str = "https://uri.etsi.org/ngsi-ld/scope";

/// The outcome of an operation on several attributes of one entity
/// (UpdateResult, clause 5.2.18).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateReport {
    /// Expanded names of the attributes that were written.
    pub updated: Vec<String>,
    pub not_updated: Vec<NotUpdated>,
    /// Whether something besides attributes (types, scopes) changed.
    pub changed: bool,
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
    /// Whether the entity was modified at all, and so must be written back.
    pub fn changed(&self) -> bool {
        self.changed || !self.updated.is_empty()
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

/// Readies an entity to be written whole as new (create, or an upsert that replaces):
/// refuses NGSI-LD Null in it, then stamps it as created now.
pub fn admit_new_entity(entity: &mut Entity, now: DateTime<Utc>) -> Result<(), NgsiError> {
    refuse_nulls(&entity.attributes)?;
    stamp_new_entity(entity, now);
    Ok(())
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
    keep_creation_time(old, new)
}

/// A replacement already stamped as new ([`stamp_new_entity`]), with the creation
/// time of the entity it replaces.
pub fn keep_creation_time(old: &Entity, mut new: Entity) -> Entity {
    new.created_at = old.created_at;
    new
}

/// Append entity attributes (clause 5.6.3). With `no_overwrite`, instances that exist
/// already are reported as not updated instead of being replaced, and given scopes are
/// added to the entity's instead of replacing them. Types are always added, and an
/// attribute given as NGSI-LD Null is deleted.
pub fn append_attributes(
    entity: &mut Entity,
    patch: EntityPatch,
    no_overwrite: bool,
    now: DateTime<Utc>,
) -> UpdateReport {
    let mut report = UpdateReport::default();
    add_types(entity, patch.types, &mut report);
    if let Some(scopes) = patch.scopes {
        if no_overwrite {
            for scope in scopes {
                if !entity.scopes.contains(&scope) {
                    entity.scopes.push(scope);
                    report.changed = true;
                }
            }
        } else {
            entity.scopes = scopes;
            report.changed = true;
        }
    }
    for (name, instances) in patch.attributes {
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
            write_or_delete(entity, &name, attribute, exists, now, &mut report);
        }
    }
    touch(entity, &report, now);
    report
}

/// Update entity attributes (clause 5.6.2): instances that exist are replaced (or
/// deleted, for NGSI-LD Null) and those that do not are appended, as ETSI's suite
/// expects of V1.8 (011_01_03 "update existing attributes and append non-existing
/// attributes", and the subscription cases built on it); NGSI-LD Null for an absent
/// instance is reported in `notUpdated`; types are added; scopes replace the
/// entity's only when it has some (011_05_02).
pub fn update_attributes(
    entity: &mut Entity,
    patch: EntityPatch,
    now: DateTime<Utc>,
) -> UpdateReport {
    let mut report = UpdateReport::default();
    add_types(entity, patch.types, &mut report);
    if let Some(scopes) = patch.scopes {
        if entity.scopes.is_empty() {
            report.not_updated(SCOPE, "the entity has no scope to update");
        } else {
            entity.scopes = scopes;
            report.changed = true;
        }
    }
    for (name, instances) in patch.attributes {
        for attribute in instances {
            let exists =
                find_instance(&entity.attributes, &name, attribute.dataset_id.as_deref()).is_some();
            write_or_delete(entity, &name, attribute, exists, now, &mut report);
        }
    }
    touch(entity, &report, now);
    report
}

/// Writes one instance, or deletes the existing one when the instance is NGSI-LD Null.
fn write_or_delete(
    entity: &mut Entity,
    name: &str,
    attribute: Attribute,
    exists: bool,
    now: DateTime<Utc>,
    report: &mut UpdateReport,
) {
    if is_null(&attribute) {
        if exists {
            remove_instance(
                &mut entity.attributes,
                name,
                attribute.dataset_id.as_deref(),
            );
            report.updated(name);
        } else {
            report.not_updated(
                name,
                "NGSI-LD Null given for an attribute that does not exist",
            );
        }
        return;
    }
    put_instance(entity, name, attribute, now);
    report.updated(name);
}

fn add_types(entity: &mut Entity, types: Vec<String>, report: &mut UpdateReport) {
    for t in types {
        if !entity.types.contains(&t) {
            entity.types.push(t);
            report.changed = true;
        }
    }
}

/// Removes the instance with the given dataset id, and the attribute with its last one.
fn remove_instance(attributes: &mut Attributes, name: &str, dataset_id: Option<&str>) -> bool {
    let Some(list) = attributes.get_mut(name) else {
        return false;
    };
    let before = list.len();
    list.retain(|a| a.dataset_id.as_deref() != dataset_id);
    let removed = list.len() != before;
    if list.is_empty() {
        attributes.remove(name);
    }
    removed
}

fn touch(entity: &mut Entity, report: &UpdateReport, now: DateTime<Utc>) {
    if report.changed() {
        entity.modified_at = Some(now);
    }
}

/// Partial attribute update (clause 5.6.4): the given members of each fragment are
/// merged into the existing instance with the same dataset id; a fragment whose value
/// is NGSI-LD Null deletes that instance. A fragment naming another kind than the
/// attribute's is refused, since the update must not change what the attribute is.
pub fn partial_update_attribute(
    entity: &mut Entity,
    name: &str,
    fragments: Vec<AttributeFragment>,
    now: DateTime<Utc>,
) -> Result<(), NgsiError> {
    for fragment in fragments {
        let dataset_id = fragment.dataset_id.clone();
        let Some(existing) = entity
            .attributes
            .get_mut(name)
            .and_then(|list| list.iter_mut().find(|a| a.dataset_id == dataset_id))
        else {
            return Err(missing_attribute(name, dataset_id.as_deref()));
        };
        if fragment.value.as_ref().is_some_and(is_null_value) {
            remove_instance(&mut entity.attributes, name, dataset_id.as_deref());
            continue;
        }
        if let Some(kind) = fragment.kind {
            let current = existing.value.kind_name();
            if kind != current {
                return Err(NgsiError::bad_request_data(format!(
                    "attribute {name} is a {current}; a partial update cannot make it a {kind}"
                )));
            }
        }
        if let Some(value) = fragment.value {
            existing.value = value;
        }
        if fragment.observed_at.is_some() {
            existing.observed_at = fragment.observed_at;
        }
        if fragment.unit_code.is_some() {
            existing.unit_code = fragment.unit_code;
        }
        merge_attributes(&mut existing.sub_attributes, fragment.sub_attributes, now);
        existing.modified_at = Some(now);
    }
    entity.modified_at = Some(now);
    Ok(())
}

/// Refuses NGSI-LD Null in a whole entity (create, replace): Null asks to delete a
/// member, which only a partial update or merge can do (clause 5.2.1), so anywhere else
/// it is BadRequestData.
pub fn refuse_nulls(attributes: &Attributes) -> Result<(), NgsiError> {
    for (name, list) in attributes {
        for attribute in list {
            if is_null(attribute) {
                return Err(NgsiError::bad_request_data(format!(
                    "attribute {name} is NGSI-LD Null ({NGSI_LD_NULL}), which only an update or merge may use, to delete it"
                )));
            }
            refuse_nulls(&attribute.sub_attributes)?;
        }
    }
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

/// Delete attribute (clause 5.6.5).
pub fn delete_attribute(
    entity: &mut Entity,
    name: &str,
    which: &DatasetSelector,
    now: DateTime<Utc>,
) -> Result<(), NgsiError> {
    if name == SCOPE {
        if entity.scopes.is_empty() {
            return Err(NgsiError::not_found("the entity has no scope to delete"));
        }
        entity.scopes.clear();
        entity.modified_at = Some(now);
        return Ok(());
    }
    let Some(instances) = entity.attributes.get_mut(name) else {
        return Err(missing_attribute(name, None));
    };
    let before = instances.len();
    match which {
        DatasetSelector::All => instances.clear(),
        DatasetSelector::Default => instances.retain(|a| a.dataset_id.is_some()),
        DatasetSelector::Id(id) => instances.retain(|a| a.dataset_id.as_deref() != Some(id)),
    }
    if instances.len() == before {
        let dataset = match which {
            DatasetSelector::Id(id) => Some(id.as_str()),
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
    is_null_value(&attribute.value)
}

/// Whether a value is NGSI-LD Null in the member its kind uses (clause 4.5.0).
fn is_null_value(value: &AttributeValue) -> bool {
    let null = |v: &serde_json::Value| v.as_str() == Some(NGSI_LD_NULL) || v.is_null();
    let only_null = |items: &[serde_json::Value]| items.len() == 1 && items.iter().all(null);
    match value {
        AttributeValue::Property(v)
        | AttributeValue::JsonProperty(v)
        | AttributeValue::GeoProperty(v) => null(v),
        AttributeValue::Relationship { object, .. } => match object {
            RelationshipObject::One(o) => o == NGSI_LD_NULL,
            RelationshipObject::Many(os) => os.len() == 1 && os.iter().all(|o| o == NGSI_LD_NULL),
        },
        AttributeValue::LanguageProperty(map) => {
            map.len() == 1 && map.get("@none").is_some_and(null)
        }
        AttributeValue::VocabProperty(terms) | AttributeValue::ListRelationship(terms) => {
            terms.len() == 1 && terms.iter().all(|t| t == NGSI_LD_NULL)
        }
        AttributeValue::ListProperty(items) => only_null(items),
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
    fn patch(pairs: Vec<(&str, Attribute)>) -> EntityPatch {
        EntityPatch {
            attributes: attrs(pairs),
            ..Default::default()
        }
    }
    fn fragment(a: Attribute) -> AttributeFragment {
        AttributeFragment {
            kind: None,
            value: Some(a.value),
            dataset_id: a.dataset_id,
            observed_at: a.observed_at,
            unit_code: a.unit_code,
            sub_attributes: a.sub_attributes,
        }
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
            patch(vec![
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
            patch(vec![("capacity", prop(json!(7)))]),
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
    fn update_replaces_existing_instances_and_appends_the_others() {
        let mut e = shelter();
        let report = update_attributes(
            &mut e,
            patch(vec![
                ("capacity", prop(json!(1))),
                ("capacity", with_dataset(prop(json!(2)), "urn:d")),
                ("missing", prop(json!(3))),
                ("absent", prop(json!(NGSI_LD_NULL))),
            ]),
            t(5),
        );
        assert_eq!(report.updated, vec!["capacity", "missing"]);
        // Only the Null for an attribute that is not there is refused.
        assert_eq!(report.not_updated.len(), 1);
        assert_eq!(e.attributes["capacity"].len(), 2);
        assert_eq!(e.attributes["missing"].len(), 1);
        assert!(!e.attributes.contains_key("absent"));
    }

    #[test]
    fn delete_by_dataset_id_default_and_all() {
        let mut e = shelter();
        append_attributes(
            &mut e,
            patch(vec![("capacity", with_dataset(prop(json!(2)), "urn:d"))]),
            false,
            t(1),
        );
        assert_eq!(e.attributes["capacity"].len(), 2);
        delete_attribute(&mut e, "capacity", &DatasetSelector::Default, t(2)).unwrap();
        assert_eq!(e.attributes["capacity"].len(), 1);
        assert!(delete_attribute(&mut e, "capacity", &DatasetSelector::Default, t(3)).is_err());
        delete_attribute(
            &mut e,
            "capacity",
            &DatasetSelector::Id("urn:d".into()),
            t(4),
        )
        .unwrap();
        assert!(!e.attributes.contains_key("capacity"));
        assert!(delete_attribute(&mut e, "capacity", &DatasetSelector::All, t(5)).is_err());
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
            vec![fragment(with_dataset(prop(json!(1)), "urn:x"))],
            t(1)
        )
        .is_err());
        let mut change = prop(json!(42));
        change.unit_code = Some("C62".into());
        partial_update_attribute(&mut e, "capacity", vec![fragment(change)], t(2)).unwrap();
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

    fn geo_null() -> Attribute {
        Attribute::new(AttributeValue::GeoProperty(json!(NGSI_LD_NULL)))
    }

    #[test]
    fn null_of_every_kind_deletes_in_update_and_merge() {
        let mut e = shelter();
        let point = json!({"type": "Point", "coordinates": [139.7, 35.6]});
        let mut name = std::collections::BTreeMap::new();
        name.insert("ja".to_owned(), json!("避難所"));
        append_attributes(
            &mut e,
            patch(vec![
                (
                    "location",
                    Attribute::new(AttributeValue::GeoProperty(point)),
                ),
                (
                    "name",
                    Attribute::new(AttributeValue::LanguageProperty(name)),
                ),
            ]),
            false,
            t(1),
        );
        let mut none = std::collections::BTreeMap::new();
        none.insert("@none".to_owned(), json!(NGSI_LD_NULL));
        let report = update_attributes(
            &mut e,
            patch(vec![
                ("location", geo_null()),
                (
                    "name",
                    Attribute::new(AttributeValue::LanguageProperty(none)),
                ),
            ]),
            t(2),
        );
        assert!(report.is_complete(), "{report:?}");
        assert!(!e.attributes.contains_key("location"));
        assert!(!e.attributes.contains_key("name"));
        merge_entity(&mut e, patch(vec![("capacity", geo_null())]), t(3));
        assert!(!e.attributes.contains_key("capacity"));
    }

    #[test]
    fn null_with_dataset_id_deletes_only_that_instance() {
        let mut e = shelter();
        append_attributes(
            &mut e,
            patch(vec![("capacity", with_dataset(prop(json!(2)), "urn:d"))]),
            false,
            t(1),
        );
        let report = update_attributes(
            &mut e,
            patch(vec![(
                "capacity",
                with_dataset(prop(json!(NGSI_LD_NULL)), "urn:d"),
            )]),
            t(2),
        );
        assert_eq!(report.updated, vec!["capacity"]);
        assert_eq!(e.attributes["capacity"].len(), 1);
        assert_eq!(e.attributes["capacity"][0].dataset_id, None);
        let report = update_attributes(
            &mut e,
            patch(vec![(
                "capacity",
                with_dataset(prop(json!(NGSI_LD_NULL)), "urn:d"),
            )]),
            t(3),
        );
        assert_eq!(report.not_updated.len(), 1, "that instance is gone");
    }

    #[test]
    fn types_and_scopes_in_append_and_update() {
        let mut e = shelter();
        let with = |types: Vec<&str>, scopes: Vec<&str>| EntityPatch {
            types: types.into_iter().map(str::to_owned).collect(),
            scopes: Some(scopes.into_iter().map(str::to_owned).collect()),
            attributes: Attributes::new(),
        };
        let report = update_attributes(
            &mut e,
            with(vec!["https://ex.org/Building"], vec!["/A"]),
            t(1),
        );
        assert_eq!(e.types.len(), 2, "types are added by an update");
        assert_eq!(report.not_updated[0].attribute, SCOPE, "no scope to update");
        assert!(e.scopes.is_empty());
        assert_eq!(e.modified_at, Some(t(1)), "the new type is a change");

        append_attributes(&mut e, with(vec![], vec!["/A"]), false, t(2));
        append_attributes(&mut e, with(vec![], vec!["/B"]), true, t(3));
        assert_eq!(e.scopes, vec!["/A", "/B"], "noOverwrite adds scopes");
        append_attributes(&mut e, with(vec![], vec!["/C"]), false, t(4));
        assert_eq!(e.scopes, vec!["/C"], "overwrite replaces them");
        let report = update_attributes(&mut e, with(vec![], vec!["/D"]), t(5));
        assert!(report.is_complete());
        assert_eq!(e.scopes, vec!["/D"]);

        delete_attribute(&mut e, SCOPE, &DatasetSelector::Default, t(6)).unwrap();
        assert!(e.scopes.is_empty());
        assert!(delete_attribute(&mut e, SCOPE, &DatasetSelector::Default, t(7)).is_err());
    }

    #[test]
    fn partial_update_checks_kind_keeps_value_and_deletes_on_null() {
        let mut e = shelter();
        let mut relationship = fragment(Attribute::new(AttributeValue::Relationship {
            object: RelationshipObject::One("urn:ngsi-ld:X:1".into()),
            object_type: None,
        }));
        relationship.kind = Some("Relationship");
        let err = partial_update_attribute(&mut e, "capacity", vec![relationship], t(1));
        assert!(err.is_err(), "a Property cannot become a Relationship");

        let mut only_sub = fragment(prop(json!(0)));
        only_sub.value = None;
        only_sub
            .sub_attributes
            .insert("reliability".into(), vec![prop(json!(0.9))]);
        partial_update_attribute(&mut e, "capacity", vec![only_sub], t(2)).unwrap();
        let c = e.attribute("capacity", None).unwrap();
        assert_eq!(c.value, AttributeValue::Property(json!(100)), "value kept");
        assert!(c.sub_attributes.contains_key("reliability"));

        partial_update_attribute(&mut e, "capacity", vec![fragment(geo_null())], t(3)).unwrap();
        assert!(!e.attributes.contains_key("capacity"));
    }

    #[test]
    fn whole_entities_may_not_carry_null() {
        let mut capacity = prop(json!(1));
        capacity
            .sub_attributes
            .insert("reliability".into(), vec![prop(json!(NGSI_LD_NULL))]);
        assert!(refuse_nulls(&attrs(vec![("capacity", capacity)])).is_err());
        assert!(refuse_nulls(&attrs(vec![("open", geo_null())])).is_err());
        assert!(refuse_nulls(&attrs(vec![("capacity", prop(json!(1)))])).is_ok());
    }
}
