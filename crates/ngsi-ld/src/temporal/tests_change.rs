use super::*;
use crate::model::{Attribute, AttributeValue, Entity};
use chrono::TimeZone;
use serde_json::json;

const SPEED: &str = "https://example.org/speed";
const NAME: &str = "https://example.org/name";

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, hour, 0, 0).unwrap()
}

fn property(value: serde_json::Value) -> Attribute {
    Attribute::new(AttributeValue::Property(value))
}

fn vehicle(attrs: &[(&str, Attribute)]) -> Entity {
    let mut entity = Entity::new(
        "urn:ngsi-ld:Vehicle:1",
        vec!["https://example.org/Vehicle".into()],
    );
    for (name, attribute) in attrs {
        entity
            .attributes
            .entry((*name).to_owned())
            .or_default()
            .push(attribute.clone());
    }
    entity
}

#[test]
fn a_creation_records_every_attribute_stamped_with_the_time_of_recording() {
    let after = vehicle(&[(SPEED, property(json!(50))), (NAME, property(json!("bus")))]);
    let instances = instances_of_change(None, Some(&after), at(9));
    assert_eq!(instances.len(), 2);
    for instance in &instances {
        assert!(instance
            .instance_id
            .starts_with("urn:ngsi-ld:AttributeInstance:"));
        assert_eq!(instance.attribute.created_at, Some(at(9)));
        assert_eq!(instance.attribute.modified_at, Some(at(9)));
        assert_eq!(instance.deleted_at, None);
    }
}

#[test]
fn an_update_records_only_what_changed_and_a_deletion_record_for_what_went() {
    let before = vehicle(&[(SPEED, property(json!(50))), (NAME, property(json!("bus")))]);
    let mut faster = property(json!(60));
    faster.dataset_id = None;
    let after = vehicle(&[(SPEED, faster)]);
    let instances = instances_of_change(Some(&before), Some(&after), at(10));
    assert_eq!(instances.len(), 2);
    assert_eq!(instances[0].name, SPEED);
    assert_eq!(
        instances[0].attribute.value,
        AttributeValue::Property(json!(60))
    );
    assert_eq!(instances[1].name, NAME);
    assert_eq!(instances[1].deleted_at, Some(at(10)));
    assert_eq!(
        instances[1].attribute.value,
        AttributeValue::Property(json!(NGSI_LD_NULL))
    );
}

#[test]
fn an_unchanged_entity_records_nothing_and_a_deletion_records_every_attribute() {
    let entity = vehicle(&[(SPEED, property(json!(50)))]);
    assert!(instances_of_change(Some(&entity), Some(&entity), at(9)).is_empty());
    let deleted = instances_of_change(Some(&entity), None, at(11));
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].deleted_at, Some(at(11)));
}

#[test]
fn a_relationship_is_deleted_with_a_null_object_and_keeps_its_dataset_id() {
    let mut parked = Attribute::new(AttributeValue::Relationship {
        object: crate::model::RelationshipObject::One("urn:ngsi-ld:Parking:1".into()),
        object_type: None,
    });
    parked.dataset_id = Some("urn:ngsi-ld:Dataset:a".into());
    let record = deletion_record("https://example.org/isParked", &parked, at(12));
    assert_eq!(
        record.attribute.dataset_id.as_deref(),
        Some("urn:ngsi-ld:Dataset:a")
    );
    assert_eq!(
        record.attribute.value,
        AttributeValue::Relationship {
            object: crate::model::RelationshipObject::One(NGSI_LD_NULL.into()),
            object_type: None
        }
    );
}

#[test]
fn the_latest_attributes_are_the_last_observed_ones_without_deletions() {
    let observed = |value: i64, hour: u32| {
        let mut a = property(json!(value));
        a.observed_at = Some(at(hour));
        TemporalInstance::new(SPEED, a)
    };
    let mut gone = TemporalInstance::new(NAME, property(json!(NGSI_LD_NULL)));
    gone.deleted_at = Some(at(8));
    let instances = [observed(70, 12), observed(90, 14), observed(80, 13), gone];
    let latest = latest_attributes(&instances);
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[SPEED][0].value, AttributeValue::Property(json!(90)));
    assert_eq!(latest[SPEED][0].observed_at, Some(at(14)));
}
