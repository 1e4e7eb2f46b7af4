//! Decoding of the bodies of update operations: NGSI-LD Null in every kind of
//! attribute, partial-update fragments whose members are all optional, and the names a
//! request may not use for a type or an attribute.

use ngsi_ld::context::codec::{
    check_attribute_name, decode_attribute, decode_fragment, decode_types, NGSI_LD_NULL,
};
use ngsi_ld::context::ActiveContext;
use ngsi_ld::model::AttributeValue;
use serde_json::json;

const LOCATION: &str = "https://uri.etsi.org/ngsi-ld/location";

#[test]
fn null_geo_property_is_kept_for_the_broker_not_refused_as_geometry() {
    let ctx = ActiveContext::core();
    let decoded = decode_attribute(
        LOCATION,
        &json!({"type": "GeoProperty", "value": NGSI_LD_NULL}),
        &ctx,
    )
    .unwrap();
    assert_eq!(
        decoded[0].value,
        AttributeValue::GeoProperty(json!(NGSI_LD_NULL))
    );
    // Any other string is still no geometry.
    assert!(decode_attribute(
        LOCATION,
        &json!({"type": "GeoProperty", "value": "here"}),
        &ctx
    )
    .is_err());
}

#[test]
fn fragment_members_are_optional() {
    let ctx = ActiveContext::core();
    let only_sub =
        json!({"providedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}});
    let fragments = decode_fragment("https://ex.org/isParked", &only_sub, &ctx).unwrap();
    assert_eq!(fragments.len(), 1);
    assert_eq!(fragments[0].value, None, "no value member, no new value");
    assert_eq!(fragments[0].kind, None);
    assert_eq!(fragments[0].sub_attributes.len(), 1);

    let typed = json!({"type": "Relationship", "object": "urn:ngsi-ld:X:1", "datasetId": "urn:d"});
    let fragments = decode_fragment("https://ex.org/speed", &typed, &ctx).unwrap();
    assert_eq!(fragments[0].kind, Some("Relationship"));
    assert_eq!(fragments[0].dataset_id.as_deref(), Some("urn:d"));

    assert!(decode_fragment("https://ex.org/speed", &json!({}), &ctx).is_err());
    assert!(decode_fragment("https://ex.org/speed", &json!({"type": "Thing"}), &ctx).is_err());
}

#[test]
fn keywords_are_no_type_or_attribute_names() {
    let ctx = ActiveContext::core();
    assert!(
        decode_types(&json!("type"), &ctx).is_err(),
        "core maps type to @type"
    );
    assert!(decode_types(&json!(["Shelter"]), &ctx).is_ok());
    assert!(check_attribute_name("@invalid").is_err());
    assert!(check_attribute_name("has space").is_err());
    assert!(check_attribute_name("capacity").is_ok());
}
