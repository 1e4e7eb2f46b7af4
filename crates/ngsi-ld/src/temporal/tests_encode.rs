//! Tests of the simplified (`temporalValues`) and aggregated representations against
//! the suite's expectations (data/temporalEntities/expectations, copied inline).

use super::*;
use crate::context::ActiveContext;
use serde_json::{json, Value};

fn vehicle() -> TemporalEntity {
    let body = json!({
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
    });
    decode_temporal_entity(&body, &ActiveContext::core()).unwrap()
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

#[test]
fn temporal_values_match_the_suite_expectation() {
    let answer = render(&vehicle(), &[("options", "temporalValues")]);
    // expectations/2020-08-vehicle-temporal-representation-temporal-values.json (the
    // suite writes 67.0 where the payload has 67; its comparison is numeric).
    let expected = json!({
        "id": "urn:ngsi-ld:Vehicle:randomUUID",
        "type": "Vehicle",
        "fuelLevel": {
            "type": "Property",
            "values": [[67, "2020-08-01T12:03:00Z"], [53, "2020-08-01T13:05:00Z"], [40, "2020-08-01T14:07:00Z"]]
        },
        "speed": {
            "type": "Property",
            "values": [[120, "2020-08-01T12:03:00Z"], [80, "2020-08-01T12:05:00Z"], [100, "2020-08-01T12:07:00Z"]]
        }
    });
    assert_eq!(answer, expected);
}

#[test]
fn temporal_values_of_every_kind_and_of_several_datasets() {
    let body = json!({
        "id": "urn:ngsi-ld:Vehicle:1",
        "type": "Vehicle",
        "isParkedIn": [{"type": "Relationship", "object": "urn:ngsi-ld:null", "observedAt": "2024-12-11T15:19:24.696152Z"}],
        "name": [{"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"}, "observedAt": "2024-12-11T16:21:08.388531Z"}],
        "speed": [
            {"type": "JsonProperty", "json": {"value": 120}, "observedAt": "2020-08-01T12:03:00Z"}
        ],
        "category": [
            {"type": "VocabProperty", "vocab": "monument", "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "VocabProperty", "vocab": ["monument", "sightseeing"], "observedAt": "2020-08-01T12:07:00Z"}
        ],
        "route": [{"type": "ListProperty", "valueList": [1, 2], "observedAt": "2020-08-01T12:03:00Z"}],
        "stops": [{"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Stop:1"], "observedAt": "2020-08-01T12:03:00Z"}],
        "fuel": [
            {"type": "Property", "value": 60, "datasetId": "urn:ngsi-ld:Dataset:Speed", "observedAt": "2020-09-01T12:05:00Z"},
            {"type": "Property", "value": 80, "datasetId": "urn:ngsi-ld:Dataset:Common", "observedAt": "2020-09-01T12:06:00Z"},
            {"type": "Property", "value": 62, "datasetId": "urn:ngsi-ld:Dataset:Speed", "observedAt": "2020-09-01T12:15:00Z"}
        ]
    });
    let entity = decode_temporal_entity(&body, &ActiveContext::core()).unwrap();
    let answer = render(&entity, &[("format", "temporalValues")]);
    // 020_18 (relationship and language property), vocab and json simplified files.
    assert_eq!(
        answer["isParkedIn"],
        json!({"type": "Relationship", "objects": [["urn:ngsi-ld:null", "2024-12-11T15:19:24.696152Z"]]})
    );
    assert_eq!(
        answer["name"],
        json!({"type": "LanguageProperty", "languageMaps": [[{"languageMap": {"@none": "urn:ngsi-ld:null"}}, "2024-12-11T16:21:08.388531Z"]]})
    );
    assert_eq!(
        answer["speed"],
        json!({"type": "JsonProperty", "jsons": [[{"json": {"value": 120}}, "2020-08-01T12:03:00Z"]]})
    );
    assert_eq!(
        answer["category"],
        json!({"type": "VocabProperty", "vocabs": [
            [{"vocab": "monument"}, "2020-08-01T12:03:00Z"],
            [{"vocab": ["monument", "sightseeing"]}, "2020-08-01T12:07:00Z"]
        ]})
    );
    assert_eq!(
        answer["route"],
        json!({"type": "ListProperty", "valueLists": [[{"valueList": [1, 2]}, "2020-08-01T12:03:00Z"]]})
    );
    assert_eq!(
        answer["stops"],
        json!({"type": "ListRelationship", "objectLists": [[{"objectList": ["urn:ngsi-ld:Stop:1"]}, "2020-08-01T12:03:00Z"]]})
    );
    // 021_18: one object per dataset id.
    assert_eq!(
        answer["fuel"],
        json!([
            {"type": "Property", "datasetId": "urn:ngsi-ld:Dataset:Speed",
             "values": [[60, "2020-09-01T12:05:00Z"], [62, "2020-09-01T12:15:00Z"]]},
            {"type": "Property", "datasetId": "urn:ngsi-ld:Dataset:Common",
             "values": [[80, "2020-09-01T12:06:00Z"]]}
        ])
    );
}

#[test]
fn aggregated_values_match_the_suite_expectations() {
    let params = [
        ("options", "aggregatedValues"),
        ("aggrMethods", "avg"),
        ("aggrPeriodDuration", "PT1H"),
    ];
    // expectations/vehicle-temporal-representation-aggregated-avg-PT1H.json (020_11_01).
    let expected = json!({
        "id": "urn:ngsi-ld:Vehicle:randomUUID",
        "type": "Vehicle",
        "fuelLevel": {
            "type": "Property",
            "avg": [
                [67.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"],
                [53.0, "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"],
                [40.0, "2020-08-01T14:03:00Z", "2020-08-01T15:03:00Z"]
            ]
        },
        "speed": {
            "type": "Property",
            "avg": [[100.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"]]
        }
    });
    assert_eq!(render(&vehicle(), &params), expected);
    // 021_17_01: the same with timerel=after timeAt=2020-01-01T12:03:00Z.
    let mut after = params.to_vec();
    after.extend([("timerel", "after"), ("timeAt", "2020-01-01T12:03:00Z")]);
    assert_eq!(render(&vehicle(), &after), expected);
    // expectations/vehicle-temporal-representation-aggregated-min-max-P1D.json.
    let params = [
        ("options", "aggregatedValues"),
        ("aggrMethods", "min,max"),
        ("aggrPeriodDuration", "P1D"),
    ];
    let day = |v: f64| json!([[v, "2020-08-01T12:03:00Z", "2020-08-02T12:03:00Z"]]);
    assert_eq!(
        render(&vehicle(), &params),
        json!({
            "id": "urn:ngsi-ld:Vehicle:randomUUID",
            "type": "Vehicle",
            "fuelLevel": {"type": "Property", "min": day(40.0), "max": day(67.0)},
            "speed": {"type": "Property", "min": day(80.0), "max": day(120.0)}
        })
    );
}
