//! Round trips and refusals of the entity codec.
use super::*;
use crate::context::{ActiveContext, Format, NoRemoteContexts};
use crate::json::JsonRef;
use proptest::prelude::*;
use serde_json::json;

fn core() -> ActiveContext {
    ActiveContext::core()
}

fn normalized() -> RenderOptions {
    RenderOptions::default()
}

fn shelter() -> Value {
    json!({
        "id": "urn:ngsi-ld:EvacuationSpace:222127-1",
        "type": "EvacuationSpace",
        "scope": "/Shizuoka/Yaizu",
        "name": {"type": "Property", "value": "中港タワー"},
        "capacity": {"type": "Property", "value": 120, "unitCode": "C62", "observedAt": "2024-04-01T09:00:00Z",
                     "reliability": {"type": "Property", "value": 0.9}},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [138.327, 34.875]}},
        "managedBy": {"type": "Relationship", "object": "urn:ngsi-ld:LocalGovernment:222127", "objectType": "LocalGovernment"},
        "label": {"type": "LanguageProperty", "languageMap": {"ja": "中港タワー", "en": "Nakaminato Tower"}},
        "category": {"type": "VocabProperty", "vocab": "tsunamiShelter"},
        "openingHours": {"type": "ListProperty", "valueList": ["09:00", "17:00"]},
        "neighbours": {"type": "ListRelationship", "objectList": ["urn:ngsi-ld:EvacuationSpace:222127-2"]},
        "extra": {"type": "JsonProperty", "json": {"free": ["form", 1]}},
        "temperature": [
            {"type": "Property", "value": 20.5},
            {"type": "Property", "value": 21.0, "datasetId": "urn:ngsi-ld:Dataset:sensor2"}
        ]
    })
}

#[test]
fn normalized_entities_round_trip_with_every_attribute_kind() {
    let entity = decode_entity(&shelter(), &core()).unwrap();
    assert_eq!(
        entity.types,
        vec!["https://uri.etsi.org/ngsi-ld/default-context/EvacuationSpace"]
    );
    assert_eq!(entity.scopes, vec!["/Shizuoka/Yaizu"]);
    assert_eq!(entity.attributes.len(), 10);
    let capacity = entity
        .attribute(
            "https://uri.etsi.org/ngsi-ld/default-context/capacity",
            None,
        )
        .unwrap();
    assert_eq!(capacity.unit_code.as_deref(), Some("C62"));
    assert_eq!(capacity.sub_attributes.len(), 1);
    assert_eq!(encode_entity(&entity, &core(), &normalized()), shelter());
}

#[test]
fn concise_input_is_understood_and_rendered_back() {
    let concise = json!({
        "id": "urn:ngsi-ld:Sensor:1",
        "type": "Sensor",
        "level": 3.2,
        "status": {"value": "open", "observedAt": "2024-04-01T09:00:00Z"},
        "near": {"object": "urn:ngsi-ld:River:1"},
        "location": {"type": "Point", "coordinates": [138.3, 34.9]},
        "address": {"streetAddress": "焼津市中港5-463"},
        "tags": ["a", "b"]
    });
    let entity = decode_entity(&concise, &core()).unwrap();
    let level = entity
        .attribute("https://uri.etsi.org/ngsi-ld/default-context/level", None)
        .unwrap();
    assert_eq!(level.value, AttributeValue::Property(json!(3.2)));
    assert!(matches!(
        entity.attribute(iri::LOCATION, None).unwrap().value,
        AttributeValue::GeoProperty(_)
    ));
    let address = entity
        .attribute("https://uri.etsi.org/ngsi-ld/default-context/address", None)
        .unwrap();
    assert_eq!(
        address.value,
        AttributeValue::Property(json!({"streetAddress": "焼津市中港5-463"}))
    );
    let options = RenderOptions {
        format: Format::Concise,
        ..normalized()
    };
    let rendered = encode_entity(&entity, &core(), &options);
    assert_eq!(rendered["level"], json!(3.2));
    assert_eq!(rendered["near"], json!({"object": "urn:ngsi-ld:River:1"}));
    assert_eq!(
        rendered["address"],
        json!({"value": {"streetAddress": "焼津市中港5-463"}})
    );
    assert_eq!(decode_entity(&rendered, &core()).unwrap(), entity);
}

#[test]
fn key_values_and_lang_show_plain_values() {
    let entity = decode_entity(&shelter(), &core()).unwrap();
    let options = RenderOptions {
        format: Format::KeyValues,
        lang: Some("en".into()),
        ..normalized()
    };
    let kv = encode_entity(&entity, &core(), &options);
    assert_eq!(kv["name"], json!("中港タワー"));
    assert_eq!(kv["label"], json!("Nakaminato Tower"));
    assert_eq!(kv["managedBy"], json!("urn:ngsi-ld:LocalGovernment:222127"));
    assert_eq!(kv["temperature"], json!(20.5));
    let options = RenderOptions {
        lang: Some("ja".into()),
        ..normalized()
    };
    let rendered = encode_entity(&entity, &core(), &options);
    assert_eq!(
        rendered["label"],
        json!({"type": "Property", "value": "中港タワー", "lang": "ja"})
    );
}

#[test]
fn user_contexts_compact_names_and_types() {
    let ctx = ActiveContext::process(
        &json!({"EvacuationSpace": "https://example.jp/EvacuationSpace", "name": "https://schema.org/name"}),
        &NoRemoteContexts,
    )
    .unwrap();
    let entity = decode_entity(&shelter(), &ctx).unwrap();
    assert_eq!(entity.types, vec!["https://example.jp/EvacuationSpace"]);
    assert!(entity.attributes.contains_key("https://schema.org/name"));
    // Rendered with the core context alone, the user's IRIs stay IRIs.
    let plain = encode_entity(&entity, &core(), &normalized());
    assert_eq!(plain["type"], json!("https://example.jp/EvacuationSpace"));
    assert!(plain.get("https://schema.org/name").is_some());
}

#[test]
fn sys_attrs_show_timestamps() {
    let mut entity = decode_entity(&shelter(), &core()).unwrap();
    let t = DateTime::parse_from_rfc3339("2024-04-01T09:00:00.123Z")
        .unwrap()
        .with_timezone(&Utc);
    entity.created_at = Some(t);
    entity.modified_at = Some(t);
    let options = RenderOptions {
        sys_attrs: true,
        ..normalized()
    };
    let rendered = encode_entity(&entity, &core(), &options);
    assert_eq!(rendered["createdAt"], json!("2024-04-01T09:00:00.123Z"));
}

#[test]
fn geojson_features_carry_the_chosen_geometry() {
    let entity = decode_entity(&shelter(), &core()).unwrap();
    let feature = encode_geojson_feature(&entity, &core(), &normalized(), iri::LOCATION);
    assert_eq!(feature["type"], "Feature");
    assert_eq!(feature["geometry"]["type"], "Point");
    assert_eq!(feature["properties"]["type"], "EvacuationSpace");
    let none = encode_geojson_feature(&entity, &core(), &normalized(), "https://example.org/none");
    assert_eq!(none["geometry"], Value::Null);
}

#[test]
fn bad_entities_are_refused_naming_the_member() {
    let cases = [
        (json!([]), "JSON object"),
        (json!({"type": "T"}), "no 'id'"),
        (json!({"id": "not an iri", "type": "T"}), "absolute IRI"),
        (json!({"id": "urn:a:b"}), "no 'type'"),
        (json!({"id": "urn:a:b", "type": []}), "type"),
        (
            json!({"id": "urn:a:b", "type": "T", "speed": {"type": "Property"}}),
            "attribute 'speed'",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "speed": null}),
            "attribute 'speed'",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "owner": {"type": "Relationship", "object": 5}}),
            "attribute 'owner'",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}}),
            "attribute 'location'",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "x": {"type": "Propertee", "value": 1}}),
            "Propertee",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "bad name": 1}),
            "bad name",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "t": {"type": "Property", "value": 1, "observedAt": "yesterday"}}),
            "observedAt",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "scope": "nope"}),
            "scope",
        ),
        (
            json!({"id": "urn:a:b", "type": "T", "t": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}]}),
            "two instances",
        ),
        // One attribute under two names: its instances are counted together.
        (
            json!({"id": "urn:a:b", "type": "T", "t": 1, VOCAB_T: 2}),
            "two instances",
        ),
    ];
    for (body, needle) in cases {
        let err = decode_entity(&body, &core()).unwrap_err();
        assert_eq!(err.problem, crate::ProblemType::BadRequestData);
        assert!(err.detail.contains(needle), "{body}: {}", err.detail);
    }
}

/// `t` expanded by the core context's `@vocab`.
const VOCAB_T: &str = "https://uri.etsi.org/ngsi-ld/default-context/t";

/// A term and its IRI name one attribute, whose instances are those of both.
#[test]
fn instances_under_two_names_of_one_attribute_are_one_attribute() {
    let body = json!({
        "id": "urn:a:b",
        "type": "T",
        "t": 1,
        VOCAB_T: {"type": "Property", "value": 2, "datasetId": "urn:d:2"},
    });
    let entity = decode_entity(&body, &core()).unwrap();
    assert_eq!(entity.attributes.len(), 1);
    let datasets: Vec<Option<&str>> = entity.attributes[VOCAB_T]
        .iter()
        .map(|a| a.dataset_id.as_deref())
        .collect();
    assert_eq!(datasets, [None, Some("urn:d:2")]);
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z:/ ]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("Property"),
            Just("Relationship"),
            Just("GeoProperty"),
            Just("Point"),
            Just("value"),
            Just("object")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("value".to_owned()),
                    Just("object".to_owned()),
                    Just("coordinates".to_owned()),
                    "[a-z]{1,5}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn decoding_never_panics_and_decoded_entities_round_trip(attrs in arbitrary_json()) {
        let mut body = json!({"id": "urn:ngsi-ld:T:1", "type": "T"});
        if let Value::Object(extra) = attrs {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        // The borrowed tree of the same text decodes to the same entity or error.
        // (Both parsed from the text: serde_json may read a float back one unit in
        // the last place off.)
        let text = body.to_string();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let tree = JsonRef::parse(text.as_bytes()).unwrap();
        let from_tree = decode_entity(&tree, &core()).map_err(|e| e.detail);
        prop_assert_eq!(from_tree, decode_entity(&parsed, &core()).map_err(|e| e.detail));
        if let Ok(entity) = decode_entity(&body, &core()) {
            let again = decode_entity(&encode_entity(&entity, &core(), &normalized()), &core()).unwrap();
            prop_assert_eq!(again, entity);
        }
    }
}

#[test]
fn any_language_and_ranked_languages_pick_one_text() {
    let entity = decode_entity(&shelter(), &core()).unwrap();
    let with_lang = |lang: &str| RenderOptions {
        lang: Some(lang.into()),
        ..normalized()
    };
    // `*` is any language: the first one is shown, not the whole map.
    assert_eq!(
        encode_entity(&entity, &core(), &with_lang("*"))["label"],
        json!({"type": "Property", "value": "Nakaminato Tower", "lang": "en"})
    );
    // Quality values rank the tags, whatever their written order.
    assert_eq!(
        encode_entity(&entity, &core(), &with_lang("en;q=0.5,ja;q=0.9,*;q=0.1"))["label"]["lang"],
        json!("ja")
    );
}

#[test]
fn joined_rendering_puts_linked_entities_inside_relationships() {
    let entity = decode_entity(&shelter(), &core()).unwrap();
    let linked = |name: &str, attribute: &Attribute| {
        (name.ends_with("managedBy") && attribute.dataset_id.is_none())
            .then(|| json!({"id": "urn:ngsi-ld:LocalGovernment:222127", "type": "LocalGovernment"}))
    };
    let rendered = encode_entity_joined(&entity, &core(), &normalized(), &linked);
    assert_eq!(
        rendered["managedBy"]["entity"],
        json!({"id": "urn:ngsi-ld:LocalGovernment:222127", "type": "LocalGovernment"})
    );
    assert_eq!(
        rendered["managedBy"]["object"],
        json!("urn:ngsi-ld:LocalGovernment:222127")
    );
    // Only relationships are joined, whatever the renderer says of other kinds.
    assert!(rendered["name"].get("entity").is_none());
    let options = RenderOptions {
        format: Format::KeyValues,
        ..normalized()
    };
    let kv = encode_entity_joined(&entity, &core(), &options, &linked);
    assert_eq!(kv["managedBy"]["type"], json!("LocalGovernment"));
}

#[test]
fn json_ld_keywords_are_no_entity_attribute_or_sub_attribute_names() {
    let refused = |body: Value, member: &str| {
        let err = decode_entity(&body, &core()).unwrap_err();
        assert_eq!(err.problem, crate::ProblemType::BadRequestData);
        assert!(
            err.detail.contains(&format!("'{member}'")),
            "{}",
            err.detail
        );
    };
    refused(
        json!({"id": "urn:ngsi-ld:T:1", "@type": "T", "@id": "urn:ngsi-ld:T:2"}),
        "@type",
    );
    refused(json!({"@id": "urn:ngsi-ld:T:1", "type": "T"}), "@id");
    refused(
        json!({"id": "urn:ngsi-ld:T:1", "type": "T", "@graph": []}),
        "@graph",
    );
    refused(
        json!({"id": "urn:ngsi-ld:T:1", "type": "T",
            "name": {"type": "Property", "value": 1, "@type": "Thing"}}),
        "@type",
    );
    let fragment = json!({"name": {"type": "Property", "value": 1}, "@index": "x"});
    assert!(decode_attributes(&fragment, &core()).is_err());
    // Keywords inside a value are data, and @context is the context.
    let typed = json!({"id": "urn:ngsi-ld:T:1", "type": "T", "@context": crate::context::CORE_CONTEXT_URL,
        "since": {"type": "Property", "value": {"@type": "DateTime", "@value": "2024-04-01T00:00:00Z"}},
        "label": {"type": "LanguageProperty", "languageMap": {"@none": "x"}}});
    decode_entity(&typed, &core()).unwrap();
}

#[test]
fn streamed_entities_keep_the_member_order_and_end_with_the_context() {
    let entity = decode_entity(&shelter(), &core()).unwrap();
    let ctx = core();
    let options = normalized();
    // The text itself, not a `Value` (whose maps compare regardless of order).
    let text = |json: EntityJson<'_>| serde_json::to_string(&json).unwrap();
    let full = text(EntityJson::new(&entity, &ctx, &options));
    // Attributes in the model's order (by expanded name); within an attribute, its
    // kind, its value, then the members the specification lists after it.
    let expected = concat!(
        r#"{"id":"urn:ngsi-ld:EvacuationSpace:222127-1","type":"EvacuationSpace","#,
        r#""scope":"/Shizuoka/Yaizu","capacity":{"type":"Property","value":120,"#,
        r#""observedAt":"2024-04-01T09:00:00Z","unitCode":"C62","#,
        r#""reliability":{"type":"Property","value":0.9}},"#,
        r#""category":{"type":"VocabProperty","vocab":"tsunamiShelter"},"#,
        r#""extra":{"type":"JsonProperty","json":{"free":["form",1]}},"#,
        r#""label":{"type":"LanguageProperty","#,
        r#""languageMap":{"en":"Nakaminato Tower","ja":"中港タワー"}},"#,
        r#""managedBy":{"type":"Relationship","#,
        r#""object":"urn:ngsi-ld:LocalGovernment:222127","objectType":"LocalGovernment"},"#,
        r#""name":{"type":"Property","value":"中港タワー"},"#,
        r#""neighbours":{"type":"ListRelationship","#,
        r#""objectList":["urn:ngsi-ld:EvacuationSpace:222127-2"]},"#,
        r#""openingHours":{"type":"ListProperty","valueList":["09:00","17:00"]},"#,
        r#""temperature":[{"type":"Property","value":20.5},"#,
        r#"{"type":"Property","value":21.0,"datasetId":"urn:ngsi-ld:Dataset:sensor2"}],"#,
        r#""location":{"type":"GeoProperty","#,
        r#""value":{"type":"Point","coordinates":[138.327,34.875]}}}"#
    );
    assert_eq!(full, expected);
    assert_eq!(
        full,
        encode_entity(&entity, &ctx, &options).to_string(),
        "the Value form is the same rendering"
    );

    let hidden = text(
        EntityJson::new(&entity, &ctx, &options)
            .members(false, true)
            .with_context(Some("https://example.org/ctx.jsonld")),
    );
    assert!(hidden.starts_with(r#"{"type":"EvacuationSpace","scope":"/Shizuoka/Yaizu","#));
    assert!(hidden.ends_with(r#""@context":"https://example.org/ctx.jsonld"}"#));
    assert!(!hidden.contains(r#""id":"urn:ngsi-ld:EvacuationSpace:222127-1""#));

    let concise = RenderOptions {
        format: Format::Concise,
        ..normalized()
    };
    let text_concise = text(EntityJson::new(&entity, &ctx, &concise));
    assert!(text_concise.contains(r#""name":"中港タワー""#));
    assert!(text_concise.contains(
        r#""capacity":{"value":120,"observedAt":"2024-04-01T09:00:00Z","unitCode":"C62","reliability":0.9}"#
    ));
}

#[test]
fn names_refuse_exactly_the_forbidden_characters() {
    for c in [
        '<', '>', '"', '\'', '=', ';', '(', ')', '&', ' ', '\t', '\u{3000}', '\u{7f}',
    ] {
        assert!(check_name(&format!("a{c}b")).is_err(), "{c:?}");
    }
    for ok in [
        "temperature",
        "水位",
        "https://example.org/x#y",
        "a-b_c.d:e/f?g[0]",
    ] {
        assert!(check_name(ok).is_ok(), "{ok}");
    }
    assert!(check_name("").is_err());
}
