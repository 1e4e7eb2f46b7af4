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
}
