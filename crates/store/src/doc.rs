//! The JSON document in which both backends keep an entity. Its shape is part of the
//! storage contract, because the backends' SQL reaches into it (`attrs.<IRI>[*].value`):
//!
//! ```json
//! {"id": "urn:…", "type": ["https://…/Shelter"], "scope": ["/Shizuoka/Yaizu"],
//!  "createdAt": "2024-01-01T00:00:00.000000Z", "modifiedAt": "…",
//!  "attrs": {"https://…/capacity": [{"type": "Property", "value": 120,
//!    "datasetId": "urn:…", "observedAt": "…", "unitCode": "C62",
//!    "createdAt": "…", "modifiedAt": "…", "sub": {"https://…/reliability": [ … ]}}]}}
//! ```
//!
//! The value sits under the member its kind uses in NGSI-LD (`value`, `object`,
//! `languageMap`, `vocab`, `valueList`, `objectList`, `json`). Timestamps are written
//! with a fixed width (microseconds, `Z`) so that comparing them as text orders them.

use chrono::{DateTime, SecondsFormat, Utc};
use ngsi_ld::model::{Attribute, AttributeValue, Attributes, Entity, RelationshipObject};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A stored document that does not have the shape this module writes.
#[derive(Debug, thiserror::Error)]
#[error("malformed stored entity document: {0}")]
pub struct DocError(String);

fn malformed(what: impl Into<String>) -> DocError {
    DocError(what.into())
}

/// Formats a timestamp the way every stored timestamp is formatted.
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(value: &Value) -> Result<DateTime<Utc>, DocError> {
    let text = value
        .as_str()
        .ok_or_else(|| malformed("timestamp is not a string"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| malformed(format!("timestamp {text}: {e}")))
}

pub fn entity_to_doc(entity: &Entity) -> Value {
    let mut doc = Map::new();
    doc.insert("id".into(), Value::String(entity.id.clone()));
    doc.insert("type".into(), json!(entity.types));
    if !entity.scopes.is_empty() {
        doc.insert("scope".into(), json!(entity.scopes));
    }
    if let Some(t) = &entity.created_at {
        doc.insert("createdAt".into(), Value::String(format_time(t)));
    }
    if let Some(t) = &entity.modified_at {
        doc.insert("modifiedAt".into(), Value::String(format_time(t)));
    }
    doc.insert("attrs".into(), attributes_to_doc(&entity.attributes));
    Value::Object(doc)
}

fn attributes_to_doc(attributes: &Attributes) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|(name, instances)| {
                let list = instances.iter().map(attribute_to_doc).collect();
                (name.clone(), Value::Array(list))
            })
            .collect(),
    )
}

/// One attribute instance in the stored encoding (also how history instances are kept).
pub fn attribute_to_doc(attribute: &Attribute) -> Value {
    let mut doc = Map::new();
    doc.insert("type".into(), json!(attribute.value.kind_name()));
    match &attribute.value {
        AttributeValue::Property(v) | AttributeValue::GeoProperty(v) => {
            doc.insert("value".into(), v.clone());
        }
        AttributeValue::Relationship {
            object,
            object_type,
        } => {
            let object = match object {
                RelationshipObject::One(o) => json!(o),
                RelationshipObject::Many(os) => json!(os),
            };
            doc.insert("object".into(), object);
            if let Some(types) = object_type {
                doc.insert("objectType".into(), json!(types));
            }
        }
        AttributeValue::LanguageProperty(map) => {
            doc.insert("languageMap".into(), json!(map));
        }
        AttributeValue::VocabProperty(vocab) => {
            doc.insert("vocab".into(), json!(vocab));
        }
        AttributeValue::ListProperty(list) => {
            doc.insert("valueList".into(), json!(list));
        }
        AttributeValue::ListRelationship(list) => {
            doc.insert("objectList".into(), json!(list));
        }
        AttributeValue::JsonProperty(v) => {
            doc.insert("json".into(), v.clone());
        }
    }
    if let Some(d) = &attribute.dataset_id {
        doc.insert("datasetId".into(), json!(d));
    }
    if let Some(t) = &attribute.observed_at {
        doc.insert("observedAt".into(), json!(format_time(t)));
    }
    if let Some(u) = &attribute.unit_code {
        doc.insert("unitCode".into(), json!(u));
    }
    if let Some(t) = &attribute.created_at {
        doc.insert("createdAt".into(), json!(format_time(t)));
    }
    if let Some(t) = &attribute.modified_at {
        doc.insert("modifiedAt".into(), json!(format_time(t)));
    }
    if !attribute.sub_attributes.is_empty() {
        doc.insert("sub".into(), attributes_to_doc(&attribute.sub_attributes));
    }
    Value::Object(doc)
}

pub fn doc_to_entity(doc: &Value) -> Result<Entity, DocError> {
    let obj = doc.as_object().ok_or_else(|| malformed("not an object"))?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("missing id"))?;
    let mut entity = Entity::new(id, strings(obj.get("type"))?);
    entity.scopes = strings(obj.get("scope"))?;
    entity.created_at = obj.get("createdAt").map(parse_time).transpose()?;
    entity.modified_at = obj.get("modifiedAt").map(parse_time).transpose()?;
    if let Some(attrs) = obj.get("attrs") {
        entity.attributes = doc_to_attributes(attrs)?;
    }
    Ok(entity)
}

fn strings(value: Option<&Value>) -> Result<Vec<String>, DocError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| malformed("list member is not a string"))
            })
            .collect(),
        Some(_) => Err(malformed("expected a string or a list of strings")),
    }
}

fn doc_to_attributes(doc: &Value) -> Result<Attributes, DocError> {
    let map = doc
        .as_object()
        .ok_or_else(|| malformed("attrs is not an object"))?;
    map.iter()
        .map(|(name, instances)| {
            let list = instances
                .as_array()
                .ok_or_else(|| malformed(format!("attribute {name} is not a list")))?
                .iter()
                .map(doc_to_attribute)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name.clone(), list))
        })
        .collect()
}

/// An attribute instance back from [`attribute_to_doc`].
pub fn doc_to_attribute(doc: &Value) -> Result<Attribute, DocError> {
    let obj = doc
        .as_object()
        .ok_or_else(|| malformed("attribute instance is not an object"))?;
    let member = |key: &str| obj.get(key).cloned().unwrap_or(Value::Null);
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Property");
    let value = match kind {
        "Property" => AttributeValue::Property(member("value")),
        "GeoProperty" => AttributeValue::GeoProperty(member("value")),
        "Relationship" => AttributeValue::Relationship {
            object: match member("object") {
                Value::Array(_) => RelationshipObject::Many(strings(obj.get("object"))?),
                Value::String(s) => RelationshipObject::One(s),
                _ => return Err(malformed("relationship object is not an IRI")),
            },
            object_type: obj
                .get("objectType")
                .map(|t| strings(Some(t)))
                .transpose()?,
        },
        "LanguageProperty" => AttributeValue::LanguageProperty(
            member("languageMap")
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_else(BTreeMap::new),
        ),
        "VocabProperty" => AttributeValue::VocabProperty(strings(obj.get("vocab"))?),
        "ListProperty" => AttributeValue::ListProperty(
            member("valueList").as_array().cloned().unwrap_or_default(),
        ),
        "ListRelationship" => AttributeValue::ListRelationship(strings(obj.get("objectList"))?),
        "JsonProperty" => AttributeValue::JsonProperty(member("json")),
        other => return Err(malformed(format!("unknown attribute kind {other}"))),
    };
    let mut attribute = Attribute::new(value);
    attribute.dataset_id = obj
        .get("datasetId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    attribute.observed_at = obj.get("observedAt").map(parse_time).transpose()?;
    attribute.unit_code = obj
        .get("unitCode")
        .and_then(Value::as_str)
        .map(str::to_owned);
    attribute.created_at = obj.get("createdAt").map(parse_time).transpose()?;
    attribute.modified_at = obj.get("modifiedAt").map(parse_time).transpose()?;
    if let Some(sub) = obj.get("sub") {
        attribute.sub_attributes = doc_to_attributes(sub)?;
    }
    Ok(attribute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_kind_survives_a_round_trip() {
        let now = Utc::now();
        let mut entity = Entity::new(
            "urn:ngsi-ld:Shelter:1",
            vec!["https://ex.org/Shelter".into()],
        );
        entity.scopes = vec!["/Shizuoka/Yaizu".into()];
        entity.created_at = Some(now);
        entity.modified_at = Some(now);
        let kinds = vec![
            AttributeValue::Property(json!({"floors": 3})),
            AttributeValue::GeoProperty(json!({"type": "Point", "coordinates": [138.3, 34.8]})),
            AttributeValue::Relationship {
                object: RelationshipObject::One("urn:a".into()),
                object_type: Some(vec!["https://ex.org/Building".into()]),
            },
            AttributeValue::Relationship {
                object: RelationshipObject::Many(vec!["urn:a".into(), "urn:b".into()]),
                object_type: None,
            },
            AttributeValue::LanguageProperty(BTreeMap::from([("ja".into(), json!("避難所"))])),
            AttributeValue::VocabProperty(vec!["https://ex.org/Open".into()]),
            AttributeValue::ListProperty(vec![json!(1), json!("two")]),
            AttributeValue::ListRelationship(vec!["urn:x".into()]),
            AttributeValue::JsonProperty(json!({"@type": "kept", "id": 1})),
        ];
        for (i, value) in kinds.into_iter().enumerate() {
            let mut attribute = Attribute::new(value);
            attribute.dataset_id = Some(format!("urn:ds:{i}"));
            attribute.observed_at = Some(now);
            attribute.unit_code = Some("C62".into());
            let mut sub = Attribute::new(AttributeValue::Property(json!(0.9)));
            sub.created_at = Some(now);
            attribute
                .sub_attributes
                .insert("https://ex.org/reliability".into(), vec![sub]);
            entity
                .attributes
                .insert(format!("https://ex.org/attr{i}"), vec![attribute]);
        }
        // Timestamps are kept to the microsecond.
        let truncate = |e: &Entity| doc_to_entity(&entity_to_doc(e)).unwrap();
        let once = truncate(&entity);
        assert_eq!(once, truncate(&once));
        assert_eq!(once.attributes.len(), 9);
        assert_eq!(once.id, entity.id);
        assert_eq!(once.scopes, entity.scopes);
        assert_eq!(
            once.attributes["https://ex.org/attr2"][0].value,
            entity.attributes["https://ex.org/attr2"][0].value
        );
    }

    #[test]
    fn a_malformed_document_is_an_error_not_a_panic() {
        assert!(doc_to_entity(&json!([])).is_err());
        assert!(doc_to_entity(&json!({"type": "x"})).is_err());
        assert!(
            doc_to_entity(&json!({"id": "urn:a", "attrs": {"x": [{"type": "Nope"}]}})).is_err()
        );
    }
}
