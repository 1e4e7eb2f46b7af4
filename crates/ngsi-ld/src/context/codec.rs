//! Entities to and from their JSON forms (clause 4.5 and 5.2): reading a client's
//! normalized or concise payload into the expanded [`Entity`] model, and rendering an
//! entity as normalized, concise or keyValues JSON, or as a GeoJSON Feature (clause
//! 6.3.15), compacted with the request's context.
//!
//! Every refusal is a `BadRequestData` that names the entity member or attribute at
//! fault, because a client sending a hundred attributes needs to know which one.

use super::{ActiveContext, RenderOptions};
use crate::json::JsonNode;
use crate::model::{iri, Attribute, AttributeValue, Attributes, Entity, RelationshipObject};
use crate::query::Geometry;
use crate::NgsiError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

mod render;
pub use render::{EntityJson, LinkedRenderer};

/// Entity members that are not attributes.
const ENTITY_MEMBERS: &[&str] = &[
    "id",
    "type",
    "scope",
    "@context",
    "createdAt",
    "modifiedAt",
    "deletedAt",
];

/// Attribute members that are not sub-attributes.
const ATTRIBUTE_MEMBERS: &[&str] = &[
    "type",
    "value",
    "object",
    "objectType",
    "languageMap",
    "vocab",
    "valueList",
    "objectList",
    "json",
    "datasetId",
    "observedAt",
    "unitCode",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "instanceId",
    "previousValue",
    "previousObject",
    "previousLanguageMap",
    "previousVocab",
    "previousValueList",
    "previousObjectList",
    "previousJson",
    "lang",
    "@context",
];

const GEOJSON_GEOMETRY_TYPES: &[&str] = &[
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
];

/// NGSI-LD Null (clause 4.5.0): as the value of an attribute in an update or merge it
/// asks for the attribute (instance) to be deleted. Decoding keeps it in the member the
/// kind uses (`value`, `object`, `languageMap: {"@none": …}`, …) for the broker to act on.
pub const NGSI_LD_NULL: &str = "urn:ngsi-ld:null";

fn bad(detail: impl Into<String>) -> NgsiError {
    NgsiError::bad_request_data(detail)
}

/// Reads a whole entity (Create Entity, batch operations, replace).
pub fn decode_entity<J: JsonNode>(value: &J, ctx: &ActiveContext) -> Result<Entity, NgsiError> {
    let members = value
        .members()
        .ok_or_else(|| bad("an entity must be a JSON object"))?;
    for (name, _) in members {
        refuse_keyword("entity member", name)?;
    }
    let mut entity = decode_entity_head(value, "entity", ctx)?;
    entity.attributes = decode_attributes(value, ctx)?;
    Ok(entity)
}

/// The `id`, `type` and `scope` of an entity body, a JSON object (`what` names it in
/// errors: "entity", "temporal entity"), as an entity without attributes.
pub fn decode_entity_head<J: JsonNode>(
    obj: &J,
    what: &str,
    ctx: &ActiveContext,
) -> Result<Entity, NgsiError> {
    let id = match obj.get("id") {
        Some(id) => id
            .as_str()
            .ok_or_else(|| bad("entity member 'id' must be a string"))?
            .to_owned(),
        None => return Err(bad(format!("the {what} has no 'id'"))),
    };
    check_iri("entity id", &id)?;
    let types = match obj.get("type") {
        None => return Err(bad(format!("entity {id} has no 'type'"))),
        Some(t) => decode_types(t, ctx).map_err(|why| bad(format!("entity {id}: {why}")))?,
    };
    let mut entity = Entity::new(id, types);
    if let Some(scope) = obj.get("scope") {
        entity.scopes = decode_scopes(scope)?;
    }
    Ok(entity)
}

/// The `type` member: one name or a non-empty list of names, expanded.
pub fn decode_types<J: JsonNode>(value: &J, ctx: &ActiveContext) -> Result<Vec<String>, String> {
    let names: Vec<&str> = match (value.as_str(), value.as_array()) {
        (Some(t), _) => vec![t],
        (_, Some(ts)) if !ts.is_empty() => ts
            .iter()
            .map(|t| {
                t.as_str()
                    .ok_or_else(|| "every type must be a string".to_owned())
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("'type' must be a name or a non-empty list of names".into()),
    };
    names
        .into_iter()
        .map(|name| {
            check_name(name).map_err(|why| format!("type '{name}' {why}"))?;
            let expanded = ctx.expand_iri(name, true);
            // A term the context maps to a JSON-LD keyword (`type` → `@type`) names no type.
            if expanded.starts_with('@') {
                return Err(format!(
                    "type '{name}' is a JSON-LD keyword in the @context, not a type name"
                ));
            }
            Ok(expanded)
        })
        .collect()
}

/// The `scope` member: one scope or a list, each `/`-rooted.
pub fn decode_scopes<J: JsonNode>(value: &J) -> Result<Vec<String>, NgsiError> {
    let scopes: Vec<String> = match (value.as_str(), value.as_array()) {
        (Some(s), _) => vec![s.to_owned()],
        (_, Some(items)) => items
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("every scope must be a string"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad("'scope' must be a string or a list of strings")),
    };
    for scope in &scopes {
        let valid = scope.starts_with('/')
            && scope.len() > 1
            && scope[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            });
        if !valid {
            return Err(bad(format!(
                "scope '{scope}' is not valid: use /segment/segment"
            )));
        }
    }
    Ok(scopes)
}

/// Reads the attributes of an entity or an entity fragment (append, update, merge);
/// entity members such as `id` and `type` are skipped.
pub fn decode_attributes<J: JsonNode>(
    value: &J,
    ctx: &ActiveContext,
) -> Result<Attributes, NgsiError> {
    let members = value
        .members()
        .ok_or_else(|| bad("the body must be a JSON object of attributes"))?;
    let mut attributes = Attributes::new();
    for (name, member) in members {
        if ENTITY_MEMBERS.contains(&name) {
            continue;
        }
        refuse_keyword("entity member", name)?;
        check_name(name).map_err(|why| bad(format!("attribute name '{name}' {why}")))?;
        let iri = ctx.expand_iri(name, true);
        let instances = decode_attribute(&iri, member, ctx).map_err(|e| with_attribute(e, name))?;
        // The instances are moved in whole; extending an empty list would copy them.
        match attributes.entry(iri) {
            Entry::Vacant(slot) => {
                slot.insert(instances);
            }
            // Two names expanding to one attribute (a term and its IRI).
            Entry::Occupied(mut slot) => slot.get_mut().extend(instances),
        }
    }
    for (iri, instances) in &attributes {
        // The name is compacted only for the message: doing it for every attribute
        // cost more than the check.
        check_unique_datasets(instances)
            .map_err(|which| duplicate_dataset(&ctx.compact_iri(iri, true), which))?;
    }
    Ok(attributes)
}

fn with_attribute(err: NgsiError, name: &str) -> NgsiError {
    if err.detail.starts_with("attribute ") {
        err
    } else {
        NgsiError::new(err.problem, format!("attribute '{name}': {}", err.detail))
    }
}

/// The first datasetId two of the instances share (`None` inside for the default
/// instance), if any.
fn check_unique_datasets(instances: &[Attribute]) -> Result<(), Option<&str>> {
    for (i, a) in instances.iter().enumerate() {
        if instances[..i].iter().any(|b| b.dataset_id == a.dataset_id) {
            return Err(a.dataset_id.as_deref());
        }
    }
    Ok(())
}

fn duplicate_dataset(name: &str, dataset_id: Option<&str>) -> NgsiError {
    let which = dataset_id.unwrap_or("the default instance");
    bad(format!(
        "attribute '{name}' has two instances with datasetId {which}"
    ))
}

/// Reads one attribute's body (an object, a list of instances, or a concise value).
/// `name` is the expanded attribute name: `location` and the other core GeoProperties
/// take concise GeoJSON values.
pub fn decode_attribute<J: JsonNode>(
    name: &str,
    value: &J,
    ctx: &ActiveContext,
) -> Result<Vec<Attribute>, NgsiError> {
    match value.as_array() {
        Some(items) if !items.is_empty() && items.iter().all(is_attribute_object) => items
            .iter()
            .map(|item| decode_instance(name, item, ctx))
            .collect(),
        _ => Ok(vec![decode_instance(name, value, ctx)?]),
    }
}

/// Whether a JSON value in concise form stands for an attribute object (rather than
/// being the value of a Property).
fn is_attribute_object<J: JsonNode>(value: &J) -> bool {
    let Some(mut members) = value.members() else {
        return false;
    };
    let known_type = value
        .get("type")
        .and_then(J::as_str)
        .is_some_and(|t| KIND_NAMES.contains(&t) || GEOJSON_GEOMETRY_TYPES.contains(&t));
    // An unknown `type` beside a value member is a mistyped kind, refused below;
    // without one the object is the value of a Property.
    known_type || members.any(|(k, _)| VALUE_MEMBERS.contains(&k))
}

const KIND_NAMES: &[&str] = &[
    "Property",
    "Relationship",
    "GeoProperty",
    "LanguageProperty",
    "VocabProperty",
    "ListProperty",
    "ListRelationship",
    "JsonProperty",
];

fn is_geo_name(name: &str) -> bool {
    [iri::LOCATION, iri::OBSERVATION_SPACE, iri::OPERATION_SPACE].contains(&name)
}

fn decode_instance<J: JsonNode>(
    name: &str,
    value: &J,
    ctx: &ActiveContext,
) -> Result<Attribute, NgsiError> {
    if value.is_null() {
        return Err(bad("null is not an attribute value"));
    }
    if !is_attribute_object(value) {
        // Concise: a bare value is the value of a Property (or of a GeoProperty for
        // GeoJSON given to a geo attribute).
        if is_geo_name(name)
            && value
                .get("type")
                .and_then(J::as_str)
                .is_some_and(|t| GEOJSON_GEOMETRY_TYPES.contains(&t))
        {
            return Ok(Attribute::new(AttributeValue::GeoProperty(
                checked_geometry(value)?,
            )));
        }
        return Ok(Attribute::new(AttributeValue::Property(value.to_value())));
    }
    let kind = match value.get("type") {
        None => infer_kind(name, value),
        Some(t) => match t.as_str() {
            Some(t) if GEOJSON_GEOMETRY_TYPES.contains(&t) => {
                return Ok(Attribute::new(AttributeValue::GeoProperty(
                    checked_geometry(value)?,
                )));
            }
            Some(t) => t,
            None => return Err(bad(format!("'type' must be an attribute kind, not {t}"))),
        },
    };
    let member = |m: &str| value.get(m).filter(|v| !v.is_null());
    let required = |m: &str| member(m).ok_or_else(|| bad(format!("a {kind} needs '{m}'")));
    let attribute_value = match kind {
        "Property" => AttributeValue::Property(required("value")?.to_value()),
        // NGSI-LD Null (clause 4.5.0) asks for a deletion; it is no geometry.
        "GeoProperty" => match required("value")? {
            null if null.as_str() == Some(NGSI_LD_NULL) => {
                AttributeValue::GeoProperty(Value::String(NGSI_LD_NULL.to_owned()))
            }
            geometry => AttributeValue::GeoProperty(checked_geometry(geometry)?),
        },
        "Relationship" => {
            let object = required("object")?;
            let object = match (object.as_str(), object.as_array()) {
                (Some(o), _) => {
                    check_iri("object", o)?;
                    RelationshipObject::One(o.to_owned())
                }
                (_, Some(os)) if !os.is_empty() => RelationshipObject::Many(
                    os.iter()
                        .map(|o| match o.as_str() {
                            Some(o) => check_iri("object", o).map(|()| o.to_owned()),
                            None => Err(bad("every 'object' must be an IRI")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(bad(format!("'object' must be an IRI or a list of IRIs, not {object}"))),
            };
            let object_type = match member("objectType") {
                None => None,
                Some(t) => Some(decode_types(t, ctx).map_err(|why| bad(format!("objectType: {why}")))?),
            };
            AttributeValue::Relationship { object, object_type }
        }
        "LanguageProperty" => {
            let map = required("languageMap")?
                .members()
                .ok_or_else(|| bad("'languageMap' must be an object of language tags"))?;
            let mut languages = BTreeMap::new();
            for (tag, text) in map {
                let valid = text.is_string()
                    || text.as_array().is_some_and(|items| items.iter().all(J::is_string));
                if !valid {
                    return Err(bad(format!("languageMap '{tag}' must be a string or a list of strings")));
                }
                languages.insert(tag.to_owned(), text.to_value());
            }
            AttributeValue::LanguageProperty(languages)
        }
        "VocabProperty" => {
            let vocab = required("vocab")?;
            let terms: Vec<&str> = match (vocab.as_str(), vocab.as_array()) {
                (Some(v), _) => vec![v],
                (_, Some(vs)) => vs
                    .iter()
                    .map(|v| v.as_str().ok_or_else(|| bad("every 'vocab' must be a string")))
                    .collect::<Result<_, _>>()?,
                _ => return Err(bad(format!("'vocab' must be a term or a list of terms, not {vocab}"))),
            };
            AttributeValue::VocabProperty(terms.into_iter().map(|t| ctx.expand_iri(t, true)).collect())
        }
        "ListProperty" => {
            let list = required("valueList")?;
            match list.as_array() {
                Some(items) => AttributeValue::ListProperty(items.iter().map(J::to_value).collect()),
                None => return Err(bad(format!("'valueList' must be a list, not {list}"))),
            }
        }
        "ListRelationship" => {
            let list = required("objectList")?;
            match list.as_array() {
                Some(items) => AttributeValue::ListRelationship(
                    items
                        .iter()
                        .map(|item| {
                            let o = item
                                .as_str()
                                .or_else(|| item.get("object").and_then(J::as_str));
                            let o = o.ok_or_else(|| bad("every member of 'objectList' must be an IRI"))?;
                            check_iri("objectList", o)?;
                            Ok(o.to_owned())
                        })
                        .collect::<Result<_, NgsiError>>()?,
                ),
                None => return Err(bad(format!("'objectList' must be a list, not {list}"))),
            }
        }
        "JsonProperty" => AttributeValue::JsonProperty(required("json")?.to_value()),
        other => {
            return Err(bad(format!(
                "'type' {other} is not an attribute kind (Property, Relationship, GeoProperty, LanguageProperty, VocabProperty, ListProperty, ListRelationship, JsonProperty)"
            )))
        }
    };
    let mut attribute = Attribute::new(attribute_value);
    decode_members(value, ctx, &mut attribute)?;
    Ok(attribute)
}

/// The meta-data (`datasetId`, `observedAt`, `unitCode`) and sub-attributes of an
/// attribute object, written into `attribute`.
fn decode_members<J: JsonNode>(
    obj: &J,
    ctx: &ActiveContext,
    attribute: &mut Attribute,
) -> Result<(), NgsiError> {
    let member = |m: &str| obj.get(m).filter(|v| !v.is_null());
    if let Some(dataset) = member("datasetId") {
        let dataset = dataset
            .as_str()
            .ok_or_else(|| bad("'datasetId' must be an IRI"))?;
        check_iri("datasetId", dataset)?;
        attribute.dataset_id = Some(dataset.to_owned());
    }
    if let Some(observed) = member("observedAt") {
        attribute.observed_at = Some(parse_date_time("observedAt", observed)?);
    }
    if let Some(unit) = member("unitCode") {
        attribute.unit_code = Some(
            unit.as_str()
                .ok_or_else(|| bad("'unitCode' must be a string"))?
                .to_owned(),
        );
    }
    for (sub_name, sub_value) in obj.members().into_iter().flatten() {
        if ATTRIBUTE_MEMBERS.contains(&sub_name) {
            continue;
        }
        refuse_keyword("sub-attribute", sub_name)?;
        check_name(sub_name)
            .map_err(|why| bad(format!("sub-attribute name '{sub_name}' {why}")))?;
        let sub_iri = ctx.expand_iri(sub_name, true);
        let instances = decode_attribute(&sub_iri, sub_value, ctx).map_err(|e| {
            NgsiError::new(
                e.problem,
                format!("sub-attribute '{sub_name}': {}", e.detail),
            )
        })?;
        attribute
            .sub_attributes
            .entry(sub_iri)
            .or_default()
            .extend(instances);
    }
    Ok(())
}

/// The body of a partial attribute update (clause 5.6.4): like an attribute, but every
/// member is optional, so a fragment may only add a sub-attribute or change `observedAt`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeFragment {
    /// The kind the fragment names with `type`, to be checked against the attribute's.
    pub kind: Option<&'static str>,
    /// The new value, when the fragment carries a value member.
    pub value: Option<AttributeValue>,
    pub dataset_id: Option<String>,
    pub observed_at: Option<DateTime<Utc>>,
    pub unit_code: Option<String>,
    pub sub_attributes: Attributes,
}

/// Reads the body of a partial attribute update: one fragment, or a list of them for
/// several dataset ids. `name` is the expanded attribute name.
pub fn decode_fragment<J: JsonNode>(
    name: &str,
    value: &J,
    ctx: &ActiveContext,
) -> Result<Vec<AttributeFragment>, NgsiError> {
    match value.as_array() {
        Some(items) if !items.is_empty() && items.iter().all(J::is_object) => items
            .iter()
            .map(|item| decode_one_fragment(name, item, ctx))
            .collect(),
        _ => Ok(vec![decode_one_fragment(name, value, ctx)?]),
    }
}

fn decode_one_fragment<J: JsonNode>(
    name: &str,
    value: &J,
    ctx: &ActiveContext,
) -> Result<AttributeFragment, NgsiError> {
    let Some(members) = value.members() else {
        // A bare value is the new value of a Property.
        let attribute = decode_instance(name, value, ctx)?;
        return Ok(AttributeFragment {
            kind: None,
            value: Some(attribute.value),
            dataset_id: None,
            observed_at: None,
            unit_code: None,
            sub_attributes: Attributes::new(),
        });
    };
    let (mut only_context, mut carries_value) = (true, false);
    for (k, _) in members {
        only_context &= k == "@context";
        carries_value |= VALUE_MEMBERS.contains(&k);
    }
    if only_context {
        return Err(bad("the fragment is empty: give the members to update"));
    }
    if carries_value {
        let attribute = decode_instance(name, value, ctx)?;
        return Ok(AttributeFragment {
            // Only a kind the client named is checked against the attribute's.
            kind: value
                .get("type")
                .is_some()
                .then(|| attribute.value.kind_name()),
            value: Some(attribute.value),
            dataset_id: attribute.dataset_id,
            observed_at: attribute.observed_at,
            unit_code: attribute.unit_code,
            sub_attributes: attribute.sub_attributes,
        });
    }
    let kind = match value.get("type") {
        None => None,
        Some(t) => match t.as_str() {
            Some(t) => Some(
                KIND_NAMES
                    .iter()
                    .copied()
                    .find(|k| *k == t)
                    .ok_or_else(|| bad(format!("'type' {t} is not an attribute kind")))?,
            ),
            None => return Err(bad(format!("'type' must be an attribute kind, not {t}"))),
        },
    };
    // The placeholder value is dropped: only the members are kept.
    let mut attribute = Attribute::new(AttributeValue::Property(Value::Null));
    decode_members(value, ctx, &mut attribute)?;
    Ok(AttributeFragment {
        kind,
        value: None,
        dataset_id: attribute.dataset_id,
        observed_at: attribute.observed_at,
        unit_code: attribute.unit_code,
        sub_attributes: attribute.sub_attributes,
    })
}

/// The members that carry an attribute's value, one per kind.
const VALUE_MEMBERS: &[&str] = &[
    "value",
    "object",
    "languageMap",
    "vocab",
    "valueList",
    "objectList",
    "json",
];

/// The kind of a concise attribute object, from the member that carries its value.
fn infer_kind<J: JsonNode>(name: &str, obj: &J) -> &'static str {
    if obj.get("object").is_some() {
        "Relationship"
    } else if obj.get("languageMap").is_some() {
        "LanguageProperty"
    } else if obj.get("vocab").is_some() {
        "VocabProperty"
    } else if obj.get("valueList").is_some() {
        "ListProperty"
    } else if obj.get("objectList").is_some() {
        "ListRelationship"
    } else if obj.get("json").is_some() {
        "JsonProperty"
    } else if is_geo_name(name)
        && obj
            .get("value")
            .and_then(|v| v.get("type"))
            .and_then(J::as_str)
            .is_some_and(|t| GEOJSON_GEOMETRY_TYPES.contains(&t))
    {
        "GeoProperty"
    } else {
        "Property"
    }
}

fn checked_geometry<J: JsonNode>(value: &J) -> Result<Value, NgsiError> {
    let value = value.to_value();
    Geometry::shape_of(&value)
        .map(|_| value)
        .map_err(|why| bad(format!("not a valid GeoJSON geometry: {why}")))
}

fn parse_date_time<J: JsonNode>(member: &str, value: &J) -> Result<DateTime<Utc>, NgsiError> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            bad(format!(
                "'{member}' must be a date-time such as 2024-04-01T09:00:00Z, not {value}"
            ))
        })
}

/// Refuses an attribute name given in a request path that no attribute can have: one
/// `check_name` refuses, or a JSON-LD keyword form (`@…`).
pub fn check_attribute_name(name: &str) -> Result<(), NgsiError> {
    let why = if name.starts_with('@') {
        Some("is a JSON-LD keyword form, not an attribute name")
    } else {
        check_name(name).err()
    };
    match why {
        Some(why) => Err(bad(format!("attribute name '{name}' {why}"))),
        None => Ok(()),
    }
}

/// Refuses a member name in JSON-LD keyword form (`@type`, `@id`, …) other than
/// `@context`: as an attribute it would be stored under a name JSON-LD gives another
/// meaning, and renkei does not read `@id`/`@type` as aliases of `id`/`type` either.
fn refuse_keyword(what: &str, name: &str) -> Result<(), NgsiError> {
    if name.starts_with('@') && name != "@context" {
        return Err(bad(format!(
            "{what} '{name}' is a JSON-LD keyword, not a name an entity may use (write id and type without @)"
        )));
    }
    Ok(())
}

/// Refuses names that JSON-LD or the `q` language could not carry (clause 4.6.2).
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '<' | '>' | '"' | '\'' | '=' | ';' | '(' | ')' | '&')
    }) {
        return Err(
            "contains a character not allowed in names (whitespace, control, < > \" ' = ; ( ) &)",
        );
    }
    Ok(())
}

/// Refuses a value that is not an absolute IRI (`scheme:rest`).
pub fn check_iri(what: &str, value: &str) -> Result<(), NgsiError> {
    let valid = value.split_once(':').is_some_and(|(scheme, rest)| {
        scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    }) && !value.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
    });
    if valid {
        Ok(())
    } else {
        Err(bad(format!("{what} '{value}' is not an absolute IRI")))
    }
}

/// A timestamp as NGSI-LD shows it: RFC 3339 in UTC, fractions only when present.
pub fn format_time(time: &DateTime<Utc>) -> String {
    crate::time::rfc3339_utc(time, SecondsFormat::AutoSi)
}

/// Renders an entity in the requested format, compacted with `ctx`.
pub fn encode_entity(entity: &Entity, ctx: &ActiveContext, options: &RenderOptions) -> Value {
    encode_entity_joined(entity, ctx, options, &|_, _| None)
}

/// Renders an entity like [`encode_entity`], putting what `linked` gives for each
/// top-level relationship inside it: as its `entity` member, or in keyValues in place
/// of the object.
pub fn encode_entity_joined(
    entity: &Entity,
    ctx: &ActiveContext,
    options: &RenderOptions,
    linked: LinkedRenderer<'_>,
) -> Value {
    let rendered = EntityJson::new(entity, ctx, options).linked(linked);
    // Only a map with a key that is not a string fails to become a `Value`, and every
    // key of a rendered entity is a string.
    serde_json::to_value(rendered).unwrap_or(Value::Null)
}

/// An entity as a GeoJSON Feature (clause 6.3.15), its geometry taken from the
/// GeoProperty `geometry_property` (expanded), `null` when it has none.
pub fn encode_geojson_feature(
    entity: &Entity,
    ctx: &ActiveContext,
    options: &RenderOptions,
    geometry_property: &str,
) -> Value {
    let geometry = entity
        .attributes
        .get(geometry_property)
        .and_then(|instances| {
            instances
                .iter()
                .find(|a| a.dataset_id.is_none())
                .or_else(|| instances.first())
        })
        .and_then(|a| match &a.value {
            AttributeValue::GeoProperty(g) => Some(g.clone()),
            _ => None,
        })
        .unwrap_or(Value::Null);
    let mut properties = match encode_entity(entity, ctx, options) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    properties.remove("id");
    json!({
        "id": entity.id,
        "type": "Feature",
        "geometry": geometry,
        "properties": properties,
    })
}

/// Features gathered into a FeatureCollection.
pub fn encode_feature_collection(features: Vec<Value>) -> Value {
    json!({"type": "FeatureCollection", "features": features})
}

#[cfg(test)]
mod tests;
