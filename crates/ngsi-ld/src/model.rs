//! The NGSI-LD information model in expanded form: every entity type and attribute
//! name is a full IRI, so two clients using different `@context`s that mean the same
//! thing address the same data. Turning these into compacted JSON (and back) is the
//! job of the `context` module; keeping them is the job of the stores.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// Attribute instances keyed by expanded attribute IRI. One name may hold several
/// instances, told apart by `datasetId` (at most one instance without it, the default).
pub type Attributes = BTreeMap<String, Vec<Attribute>>;

/// An NGSI-LD entity. `id` is an absolute IRI, `types` are expanded IRIs.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub id: String,
    pub types: Vec<String>,
    /// The entity's `scope` values (`/Madrid/Gardens`), empty when none.
    pub scopes: Vec<String>,
    pub attributes: Attributes,
    pub created_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
}

impl Entity {
    pub fn new(id: impl Into<String>, types: Vec<String>) -> Self {
        Entity {
            id: id.into(),
            types,
            scopes: Vec::new(),
            attributes: Attributes::new(),
            created_at: None,
            modified_at: None,
        }
    }

    /// Whether `other` has the same types, scopes and attributes, whatever the system
    /// times (`createdAt`, `modifiedAt`) of either: what a replace by `other` would
    /// change nothing of.
    pub fn same_content(&self, other: &Entity) -> bool {
        self.id == other.id
            && self.types == other.types
            && self.scopes == other.scopes
            && same_attributes(&self.attributes, &other.attributes)
    }

    /// The instance of `attr` with the given dataset id (`None` is the default instance).
    pub fn attribute(&self, attr: &str, dataset_id: Option<&str>) -> Option<&Attribute> {
        self.attributes
            .get(attr)?
            .iter()
            .find(|a| a.dataset_id.as_deref() == dataset_id)
    }
}

/// One instance of a Property, Relationship or any other attribute kind, with its
/// own meta-data and sub-attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub value: AttributeValue,
    pub dataset_id: Option<String>,
    pub observed_at: Option<DateTime<Utc>>,
    pub unit_code: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub modified_at: Option<DateTime<Utc>>,
    /// Properties and relationships of this attribute, keyed by expanded IRI.
    pub sub_attributes: Attributes,
}

impl Attribute {
    pub fn new(value: AttributeValue) -> Self {
        Attribute {
            value,
            dataset_id: None,
            observed_at: None,
            unit_code: None,
            created_at: None,
            modified_at: None,
            sub_attributes: Attributes::new(),
        }
    }
}

/// Attribute maps equal but for the system times, instance by instance in order.
fn same_attributes(a: &Attributes, b: &Attributes) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((name_a, xs), (name_b, ys))| {
            name_a == name_b
                && xs.len() == ys.len()
                && xs.iter().zip(ys).all(|(x, y)| {
                    x.value == y.value
                        && x.dataset_id == y.dataset_id
                        && x.observed_at == y.observed_at
                        && x.unit_code == y.unit_code
                        && same_attributes(&x.sub_attributes, &y.sub_attributes)
                })
        })
}

/// Which instances of an attribute an operation takes (`datasetId`, `deleteAll`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSelector {
    /// The instance without a dataset id.
    Default,
    /// The instance with this dataset id.
    Id(String),
    /// Every instance (`deleteAll=true`).
    All,
}

/// The kind of an attribute together with its value, as clause 4.5 defines them.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// `value`: any JSON value, kept as the client sent it (after `@value` unwrapping
    /// is left to the context module).
    Property(Value),
    /// `object`: the target entity IRI (or several), with the optional `objectType`.
    Relationship {
        object: RelationshipObject,
        object_type: Option<Vec<String>>,
    },
    /// `value`: a GeoJSON geometry, already validated.
    GeoProperty(Value),
    /// `languageMap`: language tag to string (or list of strings).
    LanguageProperty(BTreeMap<String, Value>),
    /// `vocab`: one or more expanded IRIs.
    VocabProperty(Vec<String>),
    /// `valueList`: an ordered list of values.
    ListProperty(Vec<Value>),
    /// `objectList`: an ordered list of entity IRIs.
    ListRelationship(Vec<String>),
    /// `json`: a JSON value that is never expanded or compacted.
    JsonProperty(Value),
}

/// The `object` of a relationship: one IRI, or (since V1.6) several.
#[derive(Debug, Clone, PartialEq)]
pub enum RelationshipObject {
    One(String),
    Many(Vec<String>),
}

impl AttributeValue {
    /// The NGSI-LD type name of this kind (`Property`, `Relationship`, …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            AttributeValue::Property(_) => "Property",
            AttributeValue::Relationship { .. } => "Relationship",
            AttributeValue::GeoProperty(_) => "GeoProperty",
            AttributeValue::LanguageProperty(_) => "LanguageProperty",
            AttributeValue::VocabProperty(_) => "VocabProperty",
            AttributeValue::ListProperty(_) => "ListProperty",
            AttributeValue::ListRelationship(_) => "ListRelationship",
            AttributeValue::JsonProperty(_) => "JsonProperty",
        }
    }
}

/// The IRIs of the NGSI-LD core vocabulary that the model refers to by name.
pub mod iri {
    pub const NGSI_LD: &str = "https://uri.etsi.org/ngsi-ld/";
    pub const LOCATION: &str = "https://uri.etsi.org/ngsi-ld/location";
    pub const OBSERVATION_SPACE: &str = "https://uri.etsi.org/ngsi-ld/observationSpace";
    pub const OPERATION_SPACE: &str = "https://uri.etsi.org/ngsi-ld/operationSpace";
    pub const DEFAULT_CONTEXT_VOCAB: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

    /// The prefixes a store may shorten the attribute IRIs it keeps by, numbered from
    /// 1 (see [`shorten`]): nearly every attribute is named under one of them (the core
    /// context's `@vocab` and the core vocabulary), and written out whole in a stored
    /// entity those names were a third of its bytes. The longer comes first, since it
    /// begins with the other.
    pub const SHORTENED_PREFIXES: [&str; 2] = [DEFAULT_CONTEXT_VOCAB, NGSI_LD];

    /// The number of the prefix of [`SHORTENED_PREFIXES`] that `iri` begins with (the
    /// longest), and what follows it; `None` if it begins with none.
    pub fn shorten(iri: &str) -> Option<(u8, &str)> {
        (1..)
            .zip(SHORTENED_PREFIXES)
            .find_map(|(number, prefix)| Some((number, iri.strip_prefix(prefix)?)))
    }

    /// The prefix numbered `number` by [`shorten`].
    pub fn shortened_prefix(number: u8) -> Option<&'static str> {
        SHORTENED_PREFIXES
            .get(usize::from(number).checked_sub(1)?)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shelter(name: &str, stamp: Option<DateTime<Utc>>) -> Entity {
        let mut entity = Entity::new("urn:ngsi-ld:EvacuationSpace:1", vec!["T".into()]);
        let mut attribute = Attribute::new(AttributeValue::Property(json!(name)));
        attribute.created_at = stamp;
        attribute.modified_at = stamp;
        let mut capacity = Attribute::new(AttributeValue::Property(json!(1900)));
        capacity.unit_code = Some("C62".into());
        attribute
            .sub_attributes
            .insert("capacity".into(), vec![capacity]);
        entity.attributes.insert("name".into(), vec![attribute]);
        entity.created_at = stamp;
        entity.modified_at = stamp;
        entity
    }

    #[test]
    fn iris_under_the_shortened_prefixes_shorten_by_the_longest_and_come_back_whole() {
        for (iri, number, rest) in [
            (
                "https://uri.etsi.org/ngsi-ld/default-context/capacity",
                1,
                "capacity",
            ),
            ("https://uri.etsi.org/ngsi-ld/location", 2, "location"),
            ("https://uri.etsi.org/ngsi-ld/default-context/", 1, ""),
        ] {
            assert_eq!(iri::shorten(iri), Some((number, rest)));
            let prefix = iri::shortened_prefix(number).unwrap();
            assert_eq!(format!("{prefix}{rest}"), iri);
        }
        assert_eq!(iri::shorten("https://smartdatamodels.org/name"), None);
        assert_eq!(iri::shorten("https://uri.etsi.org/ngsi-l"), None);
        assert_eq!(iri::shortened_prefix(0), None);
        assert_eq!(iri::shortened_prefix(3), None);
    }

    #[test]
    fn same_content_ignores_system_times_and_nothing_else() {
        let now = Some(Utc::now());
        let stored = shelter("中港タワー", now);
        assert!(stored.same_content(&shelter("中港タワー", None)));
        assert!(!stored.same_content(&shelter("中港タワー（改修）", now)));
        let mut other = shelter("中港タワー", now);
        other.scopes.push("/Shizuoka".into());
        assert!(!stored.same_content(&other));
        let mut other = shelter("中港タワー", now);
        other.attributes.insert("extra".into(), Vec::new());
        assert!(!stored.same_content(&other));
        let mut other = shelter("中港タワー", now);
        if let Some(sub) = other
            .attributes
            .get_mut("name")
            .and_then(|xs| xs.first_mut())
            .and_then(|x| x.sub_attributes.get_mut("capacity"))
            .and_then(|xs| xs.first_mut())
        {
            sub.unit_code = None;
        }
        assert!(!stored.same_content(&other), "a sub-attribute differs");
        let mut other = shelter("中港タワー", now);
        other.types.push("U".into());
        assert!(!stored.same_content(&other));
    }
}
