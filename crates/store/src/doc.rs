//! The JSON document in which both backends keep an entity. Its shape is part of the
//! storage contract, because the backends' SQL reaches into it (`attrs.<IRI>[*].value`):
//!
//! ```json
//! {"id": "urn:…", "type": ["https://…/Shelter"], "scope": ["/Shizuoka/Yaizu"],
//!  "createdAt": "2024-01-01T00:00:00.000000Z", "modifiedAt": "…",
//!  "attrs": {"https://…/capacity": [{"type": "Property", "value": 120,
//!    "datasetId": "urn:…", "observedAt": "…", "unitCode": "C62",
//!    "modifiedAt": "…", "sub": {"https://…/reliability": [ … ]}}]}}
//! ```
//!
//! The value sits under the member its kind uses in NGSI-LD (`value`, `object`,
//! `languageMap`, `vocab`, `valueList`, `objectList`, `json`). Timestamps are written
//! with a fixed width (microseconds, `Z`) so that comparing them as text orders them.
//!
//! An attribute's (or sub-attribute's) `createdAt` or `modifiedAt` equal to its entity's
//! is left out and reads back as the entity's; one the attribute lacks while its entity
//! has one is written `null`. A created entity's attributes share its stamps, and
//! written out they were two fifths of its document (2,107 of a benchmark shelter's
//! bytes, now 1,257). Documents written before this rule hold every stamp and read
//! as before.
//!
//! A backend whose SQL never reads the names in the document (SQLite) keeps them
//! shortened ([`entity_doc_text_shortened`]): a name under one of the prefixes of
//! [`ngsi_ld::model::iri::SHORTENED_PREFIXES`] is written as the prefix's number, a
//! control character (`"\u0001capacity"`), followed by the rest. No decoded entity
//! has a name beginning with one (the entity decoder refuses control characters in
//! names, and context processing refuses a term or `@vocab` mapped to an IRI holding
//! one), and every reader reads both forms, so documents written whole before read as
//! before. A benchmark shelter's document went from about 1,280 bytes
//! to 925, and its values (module `values` of SQLite) from 735 to 322.

use chrono::{DateTime, SecondsFormat, Utc};
use ngsi_ld::model::{Attribute, AttributeValue, Attributes, Entity, RelationshipObject};
use serde_json::Value;

mod text;

/// A stored document that does not have the shape this module writes.
#[derive(Debug, thiserror::Error)]
#[error("malformed stored entity document: {0}")]
pub struct DocError(String);

fn malformed(what: impl Into<String>) -> DocError {
    DocError(what.into())
}

/// The stamps of the entity an attribute is written in (see the module comment);
/// `None` where an attribute is written alone (a history instance) and keeps its own.
#[derive(Clone, Copy)]
struct EntityStamps<'a> {
    created: Option<&'a DateTime<Utc>>,
    modified: Option<&'a DateTime<Utc>>,
}

impl<'a> EntityStamps<'a> {
    fn of(entity: &'a Entity) -> EntityStamps<'a> {
        EntityStamps {
            created: entity.created_at.as_ref(),
            modified: entity.modified_at.as_ref(),
        }
    }
}

/// How an attribute's stamp is written: left out, `null`, or the stamp.
enum StampText<'a> {
    Left,
    Null,
    At(&'a DateTime<Utc>),
}

/// How `attribute`'s `createdAt` and `modifiedAt` are written, by member name.
fn attribute_stamps<'a>(
    attribute: &'a Attribute,
    entity: Option<EntityStamps>,
) -> [(&'static str, StampText<'a>); 2] {
    [
        (
            "createdAt",
            stamp_text(attribute.created_at.as_ref(), entity.map(|e| e.created)),
        ),
        (
            "modifiedAt",
            stamp_text(attribute.modified_at.as_ref(), entity.map(|e| e.modified)),
        ),
    ]
}

/// How an attribute's stamp `own` is written beside its entity's (`None`: no entity).
fn stamp_text<'a>(
    own: Option<&'a DateTime<Utc>>,
    of_entity: Option<Option<&DateTime<Utc>>>,
) -> StampText<'a> {
    match (own, of_entity) {
        (own, Some(of_entity)) if own == of_entity => StampText::Left,
        (Some(t), _) => StampText::At(t),
        (None, Some(_)) => StampText::Null,
        (None, None) => StampText::Left,
    }
}

/// What an attribute left out of its document reads as until [`inherit`] puts its
/// entity's stamp there. No stored stamp is this: they have four-digit years.
const INHERITED: DateTime<Utc> = DateTime::<Utc>::MIN_UTC;

/// Gives `attribute` and its sub-attributes the entity's stamps where their documents
/// left theirs out ([`INHERITED`]); `None` for an attribute read alone.
fn inherit(
    attribute: &mut Attribute,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
) {
    if attribute.created_at == Some(INHERITED) {
        attribute.created_at = created;
    }
    if attribute.modified_at == Some(INHERITED) {
        attribute.modified_at = modified;
    }
    for sub in attribute.sub_attributes.values_mut().flatten() {
        inherit(sub, created, modified);
    }
}

/// Formats a timestamp the way every stored timestamp is formatted.
pub fn format_time(time: &DateTime<Utc>) -> String {
    ngsi_ld::time::rfc3339_utc(time, SecondsFormat::Micros)
}

/// An entity as its stored document.
pub fn entity_to_doc(entity: &Entity) -> Value {
    serde_json::to_value(encoding::EntityDoc(entity)).unwrap_or(Value::Null)
}

/// The text of an entity's stored document, written straight from the model (what
/// [`entity_to_doc`] gives, without building the `Value` first: every write does this).
pub fn entity_doc_text(entity: &Entity) -> String {
    text::entity(entity, text::Names::Whole)
}

/// [`entity_doc_text`] with the attribute names shortened (see the module comment), for
/// a backend whose queries never read the names in the document itself.
pub fn entity_doc_text_shortened(entity: &Entity) -> String {
    text::entity(entity, text::Names::Shortened)
}

/// One attribute instance in the stored encoding (PostgreSQL keeps history instances
/// so too; SQLite as [`instance_doc_text`]).
pub fn attribute_to_doc(attribute: &Attribute) -> Value {
    serde_json::to_value(encoding::AttributeDoc {
        attribute,
        own_keys: true,
        entity: None,
    })
    .unwrap_or(Value::Null)
}

/// The text of a history instance's stored document: [`attribute_to_doc`] without
/// the attribute's own `datasetId`, `observedAt`, `createdAt` and `modifiedAt`, which a
/// backend keeps in columns of the instance's row (they key its indexes) and puts back
/// when it reads the instance. Written twice they were about a third of every row.
/// Sub-attributes keep theirs: no column holds them.
pub fn instance_doc_text(attribute: &Attribute) -> String {
    text::attribute(attribute, false, None)
}

/// The serde side of writing the stored shape, the source of the `Value` forms (module
/// `text` writes the same bytes faster, for the text forms). Serializing these cannot
/// fail: every member is a string, a list of strings or a JSON value already (hence
/// the `unwrap_or` above, which never takes its default).
mod encoding {
    use super::{
        attribute_stamps, Attribute, AttributeValue, Attributes, Entity, EntityStamps,
        RelationshipObject, StampText,
    };
    use serde::ser::{Serialize, SerializeMap, Serializer};

    pub struct EntityDoc<'a>(pub &'a Entity);
    pub struct AttributeDoc<'a> {
        pub attribute: &'a Attribute,
        /// Whether the attribute's `datasetId`, `observedAt`, `createdAt` and
        /// `modifiedAt` are written (see [`super::instance_doc_text`]).
        pub own_keys: bool,
        /// The stamps of the entity it is written in, if any.
        pub entity: Option<EntityStamps<'a>>,
    }
    struct AttributesDoc<'a>(&'a Attributes, Option<EntityStamps<'a>>);
    struct InstancesDoc<'a>(&'a [Attribute], Option<EntityStamps<'a>>);

    impl Serialize for EntityDoc<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let entity = self.0;
            let mut doc = serializer.serialize_map(None)?;
            doc.serialize_entry("id", &entity.id)?;
            doc.serialize_entry("type", &entity.types)?;
            if !entity.scopes.is_empty() {
                doc.serialize_entry("scope", &entity.scopes)?;
            }
            if let Some(t) = &entity.created_at {
                doc.serialize_entry("createdAt", &ngsi_ld::time::Rfc3339::micros(t))?;
            }
            if let Some(t) = &entity.modified_at {
                doc.serialize_entry("modifiedAt", &ngsi_ld::time::Rfc3339::micros(t))?;
            }
            doc.serialize_entry(
                "attrs",
                &AttributesDoc(&entity.attributes, Some(EntityStamps::of(entity))),
            )?;
            doc.end()
        }
    }

    impl Serialize for AttributesDoc<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(
                self.0
                    .iter()
                    .map(|(name, instances)| (name, InstancesDoc(instances, self.1))),
            )
        }
    }

    impl Serialize for InstancesDoc<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().map(|attribute| AttributeDoc {
                attribute,
                own_keys: true,
                entity: self.1,
            }))
        }
    }

    impl Serialize for AttributeDoc<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let (attribute, own_keys) = (self.attribute, self.own_keys);
            let mut doc = serializer.serialize_map(None)?;
            doc.serialize_entry("type", attribute.value.kind_name())?;
            match &attribute.value {
                AttributeValue::Property(v) | AttributeValue::GeoProperty(v) => {
                    doc.serialize_entry("value", v)?;
                }
                AttributeValue::Relationship {
                    object,
                    object_type,
                } => {
                    match object {
                        RelationshipObject::One(o) => doc.serialize_entry("object", o)?,
                        RelationshipObject::Many(os) => doc.serialize_entry("object", os)?,
                    }
                    if let Some(types) = object_type {
                        doc.serialize_entry("objectType", types)?;
                    }
                }
                AttributeValue::LanguageProperty(map) => doc.serialize_entry("languageMap", map)?,
                AttributeValue::VocabProperty(vocab) => doc.serialize_entry("vocab", vocab)?,
                AttributeValue::ListProperty(list) => doc.serialize_entry("valueList", list)?,
                AttributeValue::ListRelationship(list) => {
                    doc.serialize_entry("objectList", list)?
                }
                AttributeValue::JsonProperty(v) => doc.serialize_entry("json", v)?,
            }
            if let Some(d) = attribute.dataset_id.as_ref().filter(|_| own_keys) {
                doc.serialize_entry("datasetId", d)?;
            }
            if let Some(t) = attribute.observed_at.as_ref().filter(|_| own_keys) {
                doc.serialize_entry("observedAt", &ngsi_ld::time::Rfc3339::micros(t))?;
            }
            if let Some(u) = &attribute.unit_code {
                doc.serialize_entry("unitCode", u)?;
            }
            if own_keys {
                for (name, stamp) in attribute_stamps(attribute, self.entity) {
                    match stamp {
                        StampText::Left => {}
                        StampText::Null => doc.serialize_entry(name, &())?,
                        StampText::At(t) => {
                            doc.serialize_entry(name, &ngsi_ld::time::Rfc3339::micros(t))?
                        }
                    }
                }
            }
            if !attribute.sub_attributes.is_empty() {
                doc.serialize_entry(
                    "sub",
                    &AttributesDoc(&attribute.sub_attributes, self.entity),
                )?;
            }
            doc.end()
        }
    }
}

/// An entity back from its stored document (as `Value`; see [`decode_entity`] for text).
pub fn doc_to_entity(doc: &Value) -> Result<Entity, DocError> {
    StoredEntity::deserialize(doc)
        .map(StoredEntity::inherited)
        .map_err(|e| malformed(e.to_string()))
}

/// An entity back from the text of its stored document, decoded in one pass straight
/// into the model: reads are dominated by this, and going through a `Value` first
/// cost twice the time and allocations.
pub fn decode_entity(text: &str) -> Result<Entity, DocError> {
    serde_json::from_str::<StoredEntity>(text)
        .map(StoredEntity::inherited)
        .map_err(|e| malformed(e.to_string()))
}

/// An attribute instance back from [`attribute_to_doc`].
pub fn doc_to_attribute(doc: &Value) -> Result<Attribute, DocError> {
    StoredAttribute::deserialize(doc)
        .map(StoredAttribute::alone)
        .map_err(|e| malformed(e.to_string()))
}

/// The serde side of the stored shape. The members mirror what [`entity_to_doc`] and
/// [`attribute_to_doc`] write; unknown members are ignored, an unknown attribute kind
/// or a value of the wrong JSON type is an error.
mod decoding {
    use super::{inherit, Attribute, AttributeValue, Attributes, Entity, RelationshipObject};
    use chrono::{DateTime, NaiveDate, Utc};
    use ngsi_ld::model::iri;
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;
    use std::collections::BTreeMap;
    use std::fmt;

    /// An entity as read, its attributes' left-out stamps not yet its own
    /// ([`inherited`](Self::inherited)).
    pub struct StoredEntity(Entity);
    /// An attribute as read, a left-out stamp not yet resolved ([`alone`](Self::alone),
    /// or its entity's through [`StoredEntity::inherited`]).
    pub struct StoredAttribute(Attribute);

    impl StoredEntity {
        /// The entity, every stamp its attributes left out now the entity's.
        pub fn inherited(self) -> Entity {
            let mut entity = self.0;
            let (created, modified) = (entity.created_at, entity.modified_at);
            for attribute in entity.attributes.values_mut().flatten() {
                inherit(attribute, created, modified);
            }
            entity
        }
    }

    impl StoredAttribute {
        /// The attribute read alone (a history instance): a left-out stamp is none.
        pub fn alone(self) -> Attribute {
            let mut attribute = self.0;
            inherit(&mut attribute, None, None);
            attribute
        }
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct EntityMembers {
        id: String,
        #[serde(rename = "type", default)]
        types: Strings,
        #[serde(rename = "scope", default)]
        scopes: Strings,
        created_at: Option<Stamp>,
        modified_at: Option<Stamp>,
        #[serde(default)]
        attrs: StoredAttributes,
    }

    impl<'de> Deserialize<'de> for StoredEntity {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let m = EntityMembers::deserialize(deserializer)?;
            Ok(StoredEntity(Entity {
                id: m.id,
                types: m.types.0,
                scopes: m.scopes.0,
                attributes: m.attrs.0,
                created_at: m.created_at.map(|t| t.0),
                modified_at: m.modified_at.map(|t| t.0),
            }))
        }
    }

    #[derive(serde::Deserialize, Default)]
    enum Kind {
        #[default]
        Property,
        GeoProperty,
        Relationship,
        LanguageProperty,
        VocabProperty,
        ListProperty,
        ListRelationship,
        JsonProperty,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct AttributeMembers {
        #[serde(rename = "type", default)]
        kind: Kind,
        value: Option<Value>,
        object: Option<Object>,
        object_type: Option<Strings>,
        language_map: Option<BTreeMap<String, Value>>,
        vocab: Option<Strings>,
        value_list: Option<Vec<Value>>,
        object_list: Option<Strings>,
        json: Option<Value>,
        dataset_id: Option<String>,
        observed_at: Option<Stamp>,
        unit_code: Option<String>,
        #[serde(default)]
        created_at: AttributeStamp,
        #[serde(default)]
        modified_at: AttributeStamp,
        #[serde(default)]
        sub: StoredAttributes,
    }

    impl<'de> Deserialize<'de> for StoredAttribute {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let m = AttributeMembers::deserialize(deserializer)?;
            let value = match m.kind {
                Kind::Property => AttributeValue::Property(m.value.unwrap_or(Value::Null)),
                Kind::GeoProperty => AttributeValue::GeoProperty(m.value.unwrap_or(Value::Null)),
                Kind::Relationship => AttributeValue::Relationship {
                    object: m
                        .object
                        .ok_or_else(|| de::Error::custom("relationship object is not an IRI"))?
                        .0,
                    object_type: m.object_type.map(|t| t.0),
                },
                Kind::LanguageProperty => {
                    AttributeValue::LanguageProperty(m.language_map.unwrap_or_default())
                }
                Kind::VocabProperty => AttributeValue::VocabProperty(m.vocab.unwrap_or_default().0),
                Kind::ListProperty => {
                    AttributeValue::ListProperty(m.value_list.unwrap_or_default())
                }
                Kind::ListRelationship => {
                    AttributeValue::ListRelationship(m.object_list.unwrap_or_default().0)
                }
                Kind::JsonProperty => AttributeValue::JsonProperty(m.json.unwrap_or(Value::Null)),
            };
            Ok(StoredAttribute(Attribute {
                value,
                dataset_id: m.dataset_id,
                observed_at: m.observed_at.map(|t| t.0),
                unit_code: m.unit_code,
                created_at: m.created_at.read(),
                modified_at: m.modified_at.read(),
                sub_attributes: m.sub.0,
            }))
        }
    }

    /// `attrs` (and `sub`): attribute name to its list of instances.
    #[derive(Default)]
    struct StoredAttributes(Attributes);

    impl<'de> Deserialize<'de> for StoredAttributes {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct AttrsVisitor;
            impl<'de> Visitor<'de> for AttrsVisitor {
                type Value = StoredAttributes;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object of attribute instance lists")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut attributes = Attributes::new();
                    while let Some((StoredName(name), instances)) =
                        map.next_entry::<StoredName, Vec<StoredAttribute>>()?
                    {
                        attributes.insert(name, instances.into_iter().map(|a| a.0).collect());
                    }
                    Ok(StoredAttributes(attributes))
                }
            }
            deserializer.deserialize_map(AttrsVisitor)
        }
    }

    /// An attribute's name as kept: whole, or shortened (its prefix's number as its
    /// first character, U+0001 or U+0002), read back whole.
    struct StoredName(String);

    impl<'de> Deserialize<'de> for StoredName {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct NameVisitor;
            impl Visitor<'_> for NameVisitor {
                type Value = StoredName;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an attribute name")
                }
                fn visit_str<E: de::Error>(self, name: &str) -> Result<StoredName, E> {
                    Ok(StoredName(
                        whole_name(name).unwrap_or_else(|| name.to_owned()),
                    ))
                }
                fn visit_string<E: de::Error>(self, name: String) -> Result<StoredName, E> {
                    Ok(StoredName(whole_name(&name).unwrap_or(name)))
                }
            }
            deserializer.deserialize_str(NameVisitor)
        }
    }

    /// The whole name of a shortened one; `None` for a name kept whole. (No name is
    /// ever stored beginning with a control character: see the module comment.)
    fn whole_name(name: &str) -> Option<String> {
        let &number = name.as_bytes().first()?;
        let prefix = iri::shortened_prefix(number)?;
        // The first byte is below 0x80, a character of its own.
        let rest = name.get(1..).unwrap_or_default();
        Some([prefix, rest].concat())
    }

    /// A string or a list of strings (null: none), as `type`, `scope`, `vocab` are kept.
    #[derive(Default)]
    struct Strings(Vec<String>);

    impl<'de> Deserialize<'de> for Strings {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            match Object::deserialize(deserializer)?.0 {
                RelationshipObject::One(s) => Ok(Strings(vec![s])),
                RelationshipObject::Many(list) => Ok(Strings(list)),
            }
        }
    }

    /// A relationship's `object`: one IRI, or a list of them (null: an empty list, which
    /// [`Strings`] needs and a relationship never has).
    struct Object(RelationshipObject);

    impl<'de> Deserialize<'de> for Object {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct ObjectVisitor;
            impl<'de> Visitor<'de> for ObjectVisitor {
                type Value = Object;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string or a list of strings")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Object, E> {
                    Ok(Object(RelationshipObject::One(s.to_owned())))
                }
                fn visit_string<E: de::Error>(self, s: String) -> Result<Object, E> {
                    Ok(Object(RelationshipObject::One(s)))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Object, E> {
                    Ok(Object(RelationshipObject::Many(Vec::new())))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Object, A::Error> {
                    let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                    while let Some(item) = seq.next_element::<String>()? {
                        list.push(item);
                    }
                    Ok(Object(RelationshipObject::Many(list)))
                }
            }
            deserializer.deserialize_any(ObjectVisitor)
        }
    }

    /// An attribute's stamp member: a stamp, `null`, or absent (its entity's).
    #[derive(Default)]
    enum AttributeStamp {
        #[default]
        Left,
        Null,
        At(DateTime<Utc>),
    }

    impl AttributeStamp {
        /// As the attribute holds it until [`inherit`] resolves a left-out one.
        fn read(self) -> Option<DateTime<Utc>> {
            match self {
                AttributeStamp::Left => Some(super::INHERITED),
                AttributeStamp::Null => None,
                AttributeStamp::At(t) => Some(t),
            }
        }
    }

    impl<'de> Deserialize<'de> for AttributeStamp {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            Ok(match Option::<Stamp>::deserialize(deserializer)? {
                None => AttributeStamp::Null,
                Some(stamp) => AttributeStamp::At(stamp.0),
            })
        }
    }

    /// A stored timestamp.
    struct Stamp(DateTime<Utc>);

    impl<'de> Deserialize<'de> for Stamp {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct StampVisitor;
            impl<'de> Visitor<'de> for StampVisitor {
                type Value = Stamp;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an RFC 3339 timestamp")
                }
                fn visit_str<E: de::Error>(self, text: &str) -> Result<Stamp, E> {
                    parse_stamp(text)
                        .map(Stamp)
                        .ok_or_else(|| E::custom(format!("timestamp {text} is not RFC 3339")))
                }
            }
            deserializer.deserialize_str(StampVisitor)
        }
    }

    /// Parses a timestamp: the fixed width this module writes
    /// (`2024-01-01T00:00:00.000000Z`) directly, anything else RFC 3339 by chrono.
    pub(super) fn parse_stamp(text: &str) -> Option<DateTime<Utc>> {
        fixed_width(text.as_bytes()).or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
    }

    fn fixed_width(b: &[u8]) -> Option<DateTime<Utc>> {
        let shape_ok = b.len() == 27
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'.'
            && b[26] == b'Z';
        if !shape_ok {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<u32> {
            b[range].iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let date = NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
        let time = date.and_hms_micro_opt(
            number(11..13)?,
            number(14..16)?,
            number(17..19)?,
            number(20..26)?,
        )?;
        Some(time.and_utc())
    }
}

use decoding::{StoredAttribute, StoredEntity};
use serde::Deserialize;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;

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
        // The text written directly is the document, member for member and in order.
        assert_eq!(entity_doc_text(&entity), entity_to_doc(&entity).to_string());
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

    /// The stored shape is a contract with the backends' SQL: pin it. The entity was
    /// created at `t0` with both attributes; `capacity` changed at `t1`, `status` did
    /// not, and the sub-attribute has no stamps of its own.
    /// Shortened, names under the two prefixes lose them (sub-attributes' too), a name
    /// under neither or needing an escape stays whole, and all read back whole.
    #[test]
    fn shortened_names_lose_their_prefix_and_read_back_whole() {
        let vocab = ngsi_ld::model::iri::DEFAULT_CONTEXT_VOCAB;
        let mut entity = Entity::new("urn:a", vec![format!("{vocab}Shelter")]);
        let mut capacity = Attribute::new(AttributeValue::Property(json!(120)));
        capacity.sub_attributes.insert(
            format!("{vocab}reliability"),
            vec![Attribute::new(AttributeValue::Property(json!(0.9)))],
        );
        let point = json!({"type": "Point", "coordinates": [138.3, 34.9]});
        for (name, attribute) in [
            (format!("{vocab}capacity"), capacity),
            (
                ngsi_ld::model::iri::LOCATION.to_owned(),
                Attribute::new(AttributeValue::GeoProperty(point)),
            ),
            (
                "https://ex.org/status".to_owned(),
                Attribute::new(AttributeValue::Property(json!("open"))),
            ),
            (
                format!("{vocab}a\"quote"),
                Attribute::new(AttributeValue::Property(json!(1))),
            ),
        ] {
            entity.attributes.insert(name, vec![attribute]);
        }
        let shortened = entity_doc_text_shortened(&entity);
        for expected in [
            r#""\u0001capacity":"#,
            r#""\u0001reliability":"#,
            r#""\u0002location":"#,
            r#""https://ex.org/status":"#,
            r#""https://uri.etsi.org/ngsi-ld/default-context/a\"quote":"#,
            // Types are not attribute names: whole.
            r#""type":["https://uri.etsi.org/ngsi-ld/default-context/Shelter"]"#,
        ] {
            assert!(shortened.contains(expected), "{expected} in {shortened}");
        }
        let whole = entity_doc_text(&entity);
        // Each prefix gives way to a six-byte escape.
        assert_eq!(
            whole.len() - shortened.len(),
            2 * (vocab.len() - 6) + (29 - 6)
        );
        assert_eq!(decode_entity(&shortened).unwrap(), entity);
        let value: Value = serde_json::from_str(&shortened).unwrap();
        assert_eq!(doc_to_entity(&value).unwrap(), entity);
    }

    #[test]
    fn the_stored_shape_is_the_documented_one() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let (t0, t1) = (at("2024-01-01T00:00:00Z"), at("2024-01-02T00:00:00Z"));
        let mut entity = Entity::new("urn:a", vec!["https://ex.org/T".into()]);
        entity.created_at = Some(t0);
        entity.modified_at = Some(t1);
        let mut capacity = Attribute::new(AttributeValue::Property(json!(120)));
        capacity.unit_code = Some("C62".into());
        capacity.created_at = Some(t0);
        capacity.modified_at = Some(t1);
        let mut reliability = Attribute::new(AttributeValue::Property(json!(0.9)));
        reliability.dataset_id = Some("urn:ds".into());
        capacity
            .sub_attributes
            .insert("https://ex.org/reliability".into(), vec![reliability]);
        let mut status = Attribute::new(AttributeValue::Property(json!("open")));
        status.created_at = Some(t0);
        status.modified_at = Some(t0);
        entity
            .attributes
            .insert("https://ex.org/capacity".into(), vec![capacity]);
        entity
            .attributes
            .insert("https://ex.org/status".into(), vec![status]);
        let text = entity_doc_text(&entity);
        assert_eq!(
            text,
            r#"{"id":"urn:a","type":["https://ex.org/T"],"createdAt":"2024-01-01T00:00:00.000000Z","modifiedAt":"2024-01-02T00:00:00.000000Z","attrs":{"https://ex.org/capacity":[{"type":"Property","value":120,"unitCode":"C62","sub":{"https://ex.org/reliability":[{"type":"Property","value":0.9,"datasetId":"urn:ds","createdAt":null,"modifiedAt":null}]}}],"https://ex.org/status":[{"type":"Property","value":"open","modifiedAt":"2024-01-01T00:00:00.000000Z"}]}}"#
        );
        assert_eq!(decode_entity(&text).unwrap(), entity);
    }

    /// A document written before stamps were left out holds every stamp, and one
    /// without an entity (a history instance) keeps an absent stamp absent.
    #[test]
    fn documents_with_every_stamp_and_lone_attributes_read_as_before() {
        let old = json!({"id": "urn:a", "type": ["https://ex.org/T"],
            "createdAt": "2024-01-01T00:00:00.000000Z", "modifiedAt": "2024-01-03T00:00:00.000000Z",
            "attrs": {"https://ex.org/p": [{"type": "Property", "value": 1,
                "createdAt": "2024-01-01T00:00:00.000000Z", "modifiedAt": "2024-01-02T00:00:00.000000Z"}]}});
        let entity = doc_to_entity(&old).unwrap();
        let p = &entity.attributes["https://ex.org/p"][0];
        assert_eq!(p.created_at, entity.created_at);
        assert_eq!(
            format_time(&p.modified_at.unwrap()),
            "2024-01-02T00:00:00.000000Z"
        );
        assert_eq!(decode_entity(&old.to_string()).unwrap(), entity);

        let lone = doc_to_attribute(&json!({"type": "Property", "value": 1,
            "sub": {"https://ex.org/s": [{"type": "Property", "value": 2}]}}))
        .unwrap();
        assert_eq!((lone.created_at, lone.modified_at), (None, None));
        let sub = &lone.sub_attributes["https://ex.org/s"][0];
        assert_eq!((sub.created_at, sub.modified_at), (None, None));
    }

    #[test]
    fn text_and_value_decode_alike() {
        let doc = json!({"id": "urn:a", "type": "https://ex.org/T", "scope": null,
            "createdAt": "2024-02-29T23:59:59.999999Z",
            "attrs": {"https://ex.org/r": [{"type": "Relationship", "object": ["urn:b"],
                "modifiedAt": "2024-01-01T09:00:00+09:00"}],
                "https://ex.org/p": [{"value": null, "ignored": 1}]}});
        let from_value = doc_to_entity(&doc).unwrap();
        assert_eq!(decode_entity(&doc.to_string()).unwrap(), from_value);
        assert_eq!(from_value.types, vec!["https://ex.org/T".to_owned()]);
        assert!(from_value.scopes.is_empty());
        let r = &from_value.attributes["https://ex.org/r"][0];
        assert_eq!(
            r.value,
            AttributeValue::Relationship {
                object: RelationshipObject::Many(vec!["urn:b".into()]),
                object_type: None
            }
        );
        assert_eq!(
            r.modified_at.unwrap().to_rfc3339(),
            "2024-01-01T00:00:00+00:00"
        );
        let p = &from_value.attributes["https://ex.org/p"][0];
        assert_eq!(p.value, AttributeValue::Property(Value::Null));
    }

    #[test]
    fn the_fixed_width_fast_path_agrees_with_chrono() {
        let stamps = [
            "2024-02-29T23:59:59.999999Z",
            "1970-01-01T00:00:00.000000Z",
            "2026-11-26T21:00:00.000001Z",
        ];
        for text in stamps {
            let chrono = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(decoding::parse_stamp(text), Some(chrono), "{text}");
            assert_eq!(format_time(&chrono), text);
        }
        // Impossible dates and non-digits are refused, not wrapped around.
        for bad in [
            "2023-02-29T00:00:00.000000Z",
            "2024-13-01T00:00:00.000000Z",
            "2024-01-01T24:00:00.000000Z",
            "2024-01-01T00:00:0x.000000Z",
            "2024-01-01T00:00:00.000000",
        ] {
            assert_eq!(decoding::parse_stamp(bad), None, "{bad}");
        }
    }

    /// Text that often needs an escape: quotes, backslashes, control characters and
    /// Japanese, around the sixteen-byte chunks the escape check reads.
    fn any_text() -> impl Strategy<Value = String> {
        "([a-z/:.#]{0,20}|[\"\\\\\u{0}-\u{1f}\u{7f}]|避難所){0,4}"
    }

    /// An attribute name: any text, under a shortened prefix or not, but never one
    /// beginning with U+0001 or U+0002, which no decoded entity has (names and IRIs
    /// with control characters are refused) and which stand for the prefixes in a
    /// shortened document.
    fn any_name() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                Just(""),
                Just(ngsi_ld::model::iri::DEFAULT_CONTEXT_VOCAB),
                Just(ngsi_ld::model::iri::NGSI_LD)
            ],
            any_text(),
        )
            .prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
            .prop_filter("a shortened name's mark", |name| {
                !name.starts_with(['\u{1}', '\u{2}'])
            })
    }

    fn any_time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        proptest::option::of(
            (0i64..=253_402_300_799_999_999)
                .prop_map(|m| DateTime::from_timestamp_micros(m).unwrap()),
        )
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any_text().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((any_text(), inner), 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    fn any_kind() -> impl Strategy<Value = AttributeValue> {
        let texts = || proptest::collection::vec(any_text(), 0..3);
        prop_oneof![
            any_value().prop_map(AttributeValue::Property),
            any_value().prop_map(AttributeValue::GeoProperty),
            (any_text(), proptest::option::of(texts())).prop_map(|(o, object_type)| {
                AttributeValue::Relationship {
                    object: RelationshipObject::One(o),
                    object_type,
                }
            }),
            texts().prop_map(|os| AttributeValue::Relationship {
                object: RelationshipObject::Many(os),
                object_type: None,
            }),
            proptest::collection::btree_map(any_text(), any_value(), 0..3)
                .prop_map(AttributeValue::LanguageProperty),
            texts().prop_map(AttributeValue::VocabProperty),
            proptest::collection::vec(any_value(), 0..3).prop_map(AttributeValue::ListProperty),
            texts().prop_map(AttributeValue::ListRelationship),
            any_value().prop_map(AttributeValue::JsonProperty),
        ]
    }

    fn any_attribute() -> impl Strategy<Value = Attribute> {
        let flat = (
            any_kind(),
            proptest::option::of(any_text()),
            any_time(),
            proptest::option::of(any_text()),
            any_time(),
            any_time(),
        )
            .prop_map(
                |(value, dataset_id, observed_at, unit_code, created_at, modified_at)| Attribute {
                    value,
                    dataset_id,
                    observed_at,
                    unit_code,
                    created_at,
                    modified_at,
                    sub_attributes: Attributes::new(),
                },
            );
        flat.prop_recursive(2, 8, 3, |inner| {
            (
                inner.clone(),
                proptest::collection::btree_map(
                    any_name(),
                    proptest::collection::vec(inner, 1..3),
                    0..3,
                ),
            )
                .prop_map(|(mut attribute, sub)| {
                    attribute.sub_attributes = sub;
                    attribute
                })
        })
    }

    fn any_entity() -> impl Strategy<Value = Entity> {
        (
            any_text(),
            proptest::collection::vec(any_text(), 0..3),
            proptest::collection::vec(any_text(), 0..2),
            any_time(),
            any_time(),
            proptest::collection::btree_map(
                any_name(),
                proptest::collection::vec(any_attribute(), 1..3),
                0..5,
            ),
        )
            .prop_map(
                |(id, types, scopes, created_at, modified_at, attributes)| Entity {
                    id,
                    types,
                    scopes,
                    attributes,
                    created_at,
                    modified_at,
                },
            )
    }

    proptest::proptest! {
        /// The text writer writes the very bytes serde_json writes from the serde
        /// encoding, whatever the entity: the text and `Value` forms never differ.
        #[test]
        fn the_text_writer_writes_what_serde_json_writes(entity in any_entity()) {
            let serde = serde_json::to_string(&encoding::EntityDoc(&entity)).unwrap();
            proptest::prop_assert_eq!(entity_doc_text(&entity), serde);
            for attribute in entity.attributes.values().flatten() {
                for own_keys in [true, false] {
                    for entity in [None, Some(EntityStamps::of(&entity))] {
                        let serde = serde_json::to_string(&encoding::AttributeDoc { attribute, own_keys, entity }).unwrap();
                        proptest::prop_assert_eq!(text::attribute(attribute, own_keys, entity), serde);
                    }
                }
            }
        }

        /// Every stamp comes back as it was, whichever of its entity's stamps it equals,
        /// through the text and through the `Value` (PostgreSQL's jsonb reorders
        /// members, so the entity's stamps may come after its attributes).
        #[test]
        fn every_stamp_survives_the_stored_document(
            entity in any_entity(),
            choices in proptest::collection::vec(0u8..4, 64),
        ) {
            let mut entity = entity;
            let (created, modified) = (entity.created_at, entity.modified_at);
            let mut choices = choices.into_iter().cycle();
            let mut pick = |own: Option<DateTime<Utc>>| match choices.next() {
                Some(1) => created,
                Some(2) => modified,
                Some(3) => None,
                _ => own,
            };
            fn each(attributes: &mut Attributes, f: &mut dyn FnMut(&mut Attribute)) {
                for attribute in attributes.values_mut().flatten() {
                    f(attribute);
                    each(&mut attribute.sub_attributes, f);
                }
            }
            each(&mut entity.attributes, &mut |a| {
                a.created_at = pick(a.created_at);
                a.modified_at = pick(a.modified_at);
            });
            let stamps = |entity: &Entity| {
                let mut all = Vec::new();
                each(&mut entity.attributes.clone(), &mut |a| all.push((a.created_at, a.modified_at)));
                (entity.created_at, entity.modified_at, all)
            };
            let text = entity_doc_text(&entity);
            let from_text = decode_entity(&text).unwrap();
            proptest::prop_assert_eq!(stamps(&from_text), stamps(&entity));
            proptest::prop_assert_eq!(entity_doc_text(&from_text), text);
            // With names shortened: the same entity back, the same document again.
            let shortened = entity_doc_text_shortened(&entity);
            let from_shortened = decode_entity(&shortened).unwrap();
            proptest::prop_assert_eq!(&from_shortened, &from_text);
            proptest::prop_assert_eq!(entity_doc_text_shortened(&from_shortened), shortened);
            let mut value = entity_to_doc(&entity);
            // The entity's own members last, as jsonb may order them.
            if let Some(members) = value.as_object_mut() {
                let attrs = members.shift_remove("attrs");
                let mut reordered = serde_json::Map::new();
                reordered.extend(attrs.map(|a| ("attrs".to_owned(), a)));
                reordered.extend(std::mem::take(members));
                *members = reordered;
            }
            let from_value = doc_to_entity(&value).unwrap();
            proptest::prop_assert_eq!(stamps(&from_value), stamps(&entity));
        }

        /// Every stamp this module writes is read back exactly by the fast path.
        #[test]
        fn every_written_stamp_reads_back(micros in 0i64..=253_402_300_799_999_999) {
            let time = DateTime::from_timestamp_micros(micros).unwrap();
            proptest::prop_assert_eq!(decoding::parse_stamp(&format_time(&time)), Some(time));
        }

        /// On any text the reader agrees with chrono's RFC 3339 parser, and never panics.
        #[test]
        fn stamps_read_as_chrono_reads_them(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,16}(Z|[+-][0-9]{2}:[0-9]{2})?|.{0,30}") {
            let chrono = DateTime::parse_from_rfc3339(&text).ok().map(|t| t.with_timezone(&Utc));
            proptest::prop_assert_eq!(decoding::parse_stamp(&text), chrono);
        }
    }

    /// Every float comes back bit for bit: serde_json's default float parsing is
    /// best effort and read this one a unit in the last place off.
    #[test]
    fn floats_come_back_exactly() {
        let mut entity = Entity::new("urn:a", vec![]);
        let value = 1.5649430948463133e-292_f64;
        entity.attributes.insert(
            "https://ex.org/p".into(),
            vec![Attribute::new(AttributeValue::Property(json!(value)))],
        );
        let read = decode_entity(&entity_doc_text(&entity)).unwrap();
        let AttributeValue::Property(back) = &read.attributes["https://ex.org/p"][0].value else {
            panic!("not a property: {read:?}");
        };
        assert_eq!(back.as_f64().map(f64::to_bits), Some(value.to_bits()));
    }

    #[test]
    fn a_malformed_document_is_an_error_not_a_panic() {
        assert!(doc_to_entity(&json!([])).is_err());
        assert!(doc_to_entity(&json!({"type": "x"})).is_err());
        assert!(
            doc_to_entity(&json!({"id": "urn:a", "attrs": {"x": [{"type": "Nope"}]}})).is_err()
        );
        for text in [
            "",
            "{",
            r#"{"id": 1}"#,
            r#"{"id": "urn:a", "attrs": {"x": {"type": "Property"}}}"#,
            r#"{"id": "urn:a", "attrs": {"x": [{"type": "Relationship"}]}}"#,
            r#"{"id": "urn:a", "createdAt": "yesterday"}"#,
        ] {
            assert!(decode_entity(text).is_err(), "{text}");
        }
    }
}
