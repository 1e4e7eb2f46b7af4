//! Tests of reading temporal bodies and rendering histories, against the shapes of
//! the ETSI conformance suite (data/temporalEntities, copied inline).

use super::*;
use crate::context::ActiveContext;
use crate::model::{AttributeValue, RelationshipObject};
use crate::ProblemType;
use serde_json::{json, Value};
use std::collections::HashSet;

const VOCAB: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

/// data/temporalEntities/2020-08-vehicle-temporal-representation.jsonld, without its
/// remote @context (the core context gives the same compacted names).
fn vehicle_2020_08() -> Value {
    json!({
        "id": "urn:ngsi-ld:Vehicle:randomUUID",
        "type": "Vehicle",
        "speed": [
            {"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "Property", "value": 80, "observedAt": "2020-08-01T12:05:00Z"},
            {"type": "Property", "value": 100, "observedAt": "2020-08-01T12:07:00Z"}
        ],
        "fuelLevel": [
            {"type": "Property", "value": 67, "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "Property", "value": 53, "observedAt": "2020-08-01T13:05:00Z"},
            {"type": "Property", "value": 40, "observedAt": "2020-08-01T14:07:00Z"}
        ]
    })
}

fn decoded_vehicle() -> TemporalEntity {
    decode_temporal_entity(&vehicle_2020_08(), &ActiveContext::core()).unwrap()
}

fn render(entity: &TemporalEntity, params: &[(&str, &str)]) -> Value {
    let query = TemporalQuery::from_params(params.iter().copied()).unwrap();
    let selected = query.select(entity.instances.clone());
    encode_temporal(
        &entity.id,
        &entity.types,
        &entity.scopes,
        &selected,
        &ActiveContext::core(),
        &query,
        &TemporalRender::default(),
    )
}

/// Removes every `instanceId` after checking it is one, as the suite ignores them.
fn strip_instance_ids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(id) = map.remove("instanceId") {
                assert!(id
                    .as_str()
                    .unwrap()
                    .starts_with("urn:ngsi-ld:AttributeInstance:"));
            }
            map.values_mut().for_each(strip_instance_ids);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_instance_ids),
        _ => {}
    }
}

#[test]
fn a_suite_payload_decodes_into_instances() {
    let entity = decoded_vehicle();
    assert_eq!(entity.id, "urn:ngsi-ld:Vehicle:randomUUID");
    assert_eq!(entity.types, vec![format!("{VOCAB}Vehicle")]);
    assert_eq!(entity.instances.len(), 6);
    let speeds: Vec<_> = entity
        .instances
        .iter()
        .filter(|i| i.name == format!("{VOCAB}speed"))
        .map(|i| {
            (
                i.attribute.value.clone(),
                i.attribute.observed_at.map(|t| t.to_rfc3339()),
            )
        })
        .collect();
    assert_eq!(
        speeds[0],
        (
            AttributeValue::Property(json!(120)),
            Some("2020-08-01T12:03:00+00:00".into())
        )
    );
    assert_eq!(speeds.len(), 3);
    let ids: HashSet<_> = entity
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    assert_eq!(ids.len(), 6, "every instance has its own id");
    assert!(entity.instances.iter().all(|i| i.deleted_at.is_none()));
}

#[test]
fn attributes_bodies_take_single_instances_datasets_and_any_kind() {
    let body = json!({
        "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
        "speed": {"type": "Property", "value": 129, "observedAt": "2020-09-01T12:03:00Z", "instanceId": "urn:ngsi-ld:x"},
        "fuelLevel": [
            {"type": "Property", "value": 53, "observedAt": "2020-09-01T13:05:00Z"},
            {"type": "Property", "value": 40, "observedAt": "2020-09-01T14:07:00Z", "datasetId": "urn:ngsi-ld:Vehicle:12345-fuel"},
            {"type": "Property", "value": 39, "observedAt": "2020-09-01T15:07:00Z"}
        ],
        "isParkedIn": [{"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:Commerce", "observedAt": "2024-12-01T12:00:00Z"}],
        "name": [{"type": "LanguageProperty", "languageMap": {"fr": "Ma voiture", "en": "My vehicle"}, "observedAt": "2024-12-01T12:00:00Z"}]
    });
    let instances = decode_temporal_attributes(&body, &ActiveContext::core()).unwrap();
    assert_eq!(instances.len(), 6);
    let speed = instances
        .iter()
        .find(|i| i.name == format!("{VOCAB}speed"))
        .unwrap();
    assert_ne!(
        speed.instance_id, "urn:ngsi-ld:x",
        "the broker assigns instance ids"
    );
    let fuel: Vec<_> = instances
        .iter()
        .filter(|i| i.name.ends_with("fuelLevel"))
        .collect();
    assert_eq!(
        fuel.len(),
        3,
        "several default instances are history, not a conflict"
    );
    assert_eq!(
        fuel[1].attribute.dataset_id.as_deref(),
        Some("urn:ngsi-ld:Vehicle:12345-fuel")
    );
    let parked = instances
        .iter()
        .find(|i| i.name.ends_with("isParkedIn"))
        .unwrap();
    assert!(matches!(
        &parked.attribute.value,
        AttributeValue::Relationship { object: RelationshipObject::One(o), .. } if o == "urn:ngsi-ld:OffStreetParking:Commerce"
    ));
}

#[test]
fn bad_temporal_bodies_are_refused_naming_the_culprit() {
    let ctx = ActiveContext::core();
    let refused = |body: Value, needle: &str| {
        let err = decode_temporal_entity(&body, &ctx).unwrap_err();
        assert_eq!(err.problem, ProblemType::BadRequestData);
        assert!(err.detail.contains(needle), "{body}: {}", err.detail);
    };
    refused(json!({"type": "Vehicle"}), "no 'id'");
    refused(json!({"id": "", "type": "Vehicle"}), "entity id");
    refused(
        json!({"id": "invalidId", "type": "Vehicle"}),
        "'invalidId' is not an absolute IRI",
    );
    refused(json!({"id": "urn:ngsi-ld:Vehicle:1"}), "no 'type'");
    refused(json!([]), "JSON object");
    refused(
        json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": []}),
        "attribute 'speed'",
    );
    refused(
        json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": [{"type": "Property", "value": 1, "observedAt": "noon"}]}),
        "attribute 'speed'",
    );
    refused(
        json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": [{"type": "Propertee", "value": 1}]}),
        "attribute 'speed'",
    );
    refused(
        json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "bad(name": 1}),
        "bad(name",
    );
    refused(
        json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "@type": "X"}),
        "@type",
    );
}

#[test]
fn normalized_history_matches_the_suite_expectation_020_04_03() {
    let params = [
        ("timerel", "between"),
        ("timeAt", "2020-08-01T12:00:00Z"),
        ("endTimeAt", "2020-08-01T13:00:00Z"),
    ];
    let mut answer = render(&decoded_vehicle(), &params);
    strip_instance_ids(&mut answer);
    // expectations/vehicle-temporal-representation-020-04-03.jsonld
    let expected = json!({
        "id": "urn:ngsi-ld:Vehicle:randomUUID",
        "type": "Vehicle",
        "fuelLevel": [
            {"type": "Property", "value": 67, "observedAt": "2020-08-01T12:03:00Z"}
        ],
        "speed": [
            {"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "Property", "value": 80, "observedAt": "2020-08-01T12:05:00Z"},
            {"type": "Property", "value": 100, "observedAt": "2020-08-01T12:07:00Z"}
        ]
    });
    assert_eq!(answer, expected);
}

#[test]
fn normalized_history_shows_deletions_and_system_times() {
    let mut entity = decoded_vehicle();
    let now = chrono::DateTime::parse_from_rfc3339("2024-12-09T17:16:12.031483Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    for instance in &mut entity.instances {
        instance.attribute.created_at = Some(now);
    }
    let mut deletion = TemporalInstance::new(
        format!("{VOCAB}fuelLevel"),
        Attribute::new(AttributeValue::Property(json!("urn:ngsi-ld:null"))),
    );
    deletion.deleted_at = Some(now);
    entity.instances.push(deletion.clone());
    // 020_17: timeproperty=deletedAt shows only the deletion, with its deletedAt.
    let answer = render(&entity, &[("timeproperty", "deletedAt")]);
    let expected = json!({
        "id": "urn:ngsi-ld:Vehicle:randomUUID",
        "type": "Vehicle",
        "fuelLevel": [{
            "type": "Property",
            "value": "urn:ngsi-ld:null",
            "instanceId": deletion.instance_id,
            "deletedAt": "2024-12-09T17:16:12.031483Z"
        }]
    });
    assert_eq!(answer, expected);
    // sysAttrs adds createdAt to each instance.
    let query = TemporalQuery::from_params([("lastN", "1")]).unwrap();
    let selected = query.select(entity.instances.clone());
    let answer = encode_temporal(
        &entity.id,
        &entity.types,
        &[],
        &selected,
        &ActiveContext::core(),
        &query,
        &TemporalRender { sys_attrs: true },
    );
    assert_eq!(
        answer["speed"][0]["createdAt"],
        json!("2024-12-09T17:16:12.031483Z")
    );
    assert_eq!(answer["speed"].as_array().unwrap().len(), 1);
}
