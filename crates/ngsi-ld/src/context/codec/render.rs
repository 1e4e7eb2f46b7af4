//! Rendering an entity as normalized, concise or keyValues JSON by serializing it
//! straight from the model. Retrieval and query answers write [`EntityJson`] into the
//! response body with no tree of `serde_json::Value` in between (building and then
//! writing that tree was a fifth of the CPU time of a query); the `Value` forms
//! ([`super::encode_entity`]) collect the same serialization, so there is one
//! rendering.

use super::super::{ActiveContext, Format, RenderOptions};
use super::format_time;
use crate::model::{Attribute, AttributeValue, Entity, RelationshipObject};
use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// The rendering of the entities a relationship instance links to, for `join=inline`
/// (clause 4.5.23): called with the relationship's expanded name and instance; `None`
/// leaves the relationship as it is.
pub type LinkedRenderer<'a> = &'a dyn Fn(&str, &Attribute) -> Option<Value>;

fn no_links(_: &str, _: &Attribute) -> Option<Value> {
    None
}

/// An entity in the requested format, compacted with `ctx`, ready to serialize.
pub struct EntityJson<'a> {
    entity: &'a Entity,
    ctx: &'a ActiveContext,
    options: &'a RenderOptions,
    linked: LinkedRenderer<'a>,
    show_id: bool,
    show_type: bool,
    context: Option<&'a str>,
}

impl<'a> EntityJson<'a> {
    pub fn new(entity: &'a Entity, ctx: &'a ActiveContext, options: &'a RenderOptions) -> Self {
        EntityJson {
            entity,
            ctx,
            options,
            linked: &no_links,
            show_id: true,
            show_type: true,
            context: None,
        }
    }

    /// Puts what `linked` gives for each top-level relationship inside it: as its
    /// `entity` member, or in keyValues in place of the object.
    pub fn linked(mut self, linked: LinkedRenderer<'a>) -> Self {
        self.linked = linked;
        self
    }

    /// Whether `id` and `type` are shown (`pick` and `omit` may hide them).
    pub fn members(mut self, show_id: bool, show_type: bool) -> Self {
        self.show_id = show_id;
        self.show_type = show_type;
        self
    }

    /// Ends the entity with an `@context` member (JSON-LD answers).
    pub fn with_context(mut self, context: Option<&'a str>) -> Self {
        self.context = context;
        self
    }
}

impl Serialize for EntityJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (entity, ctx, options) = (self.entity, self.ctx, self.options);
        let mut map = serializer.serialize_map(None)?;
        if self.show_id {
            map.serialize_entry("id", &entity.id)?;
        }
        if self.show_type {
            map.serialize_entry("type", &Terms(&entity.types, ctx))?;
        }
        if !entity.scopes.is_empty() {
            map.serialize_entry("scope", &OneOrMany(&entity.scopes))?;
        }
        if options.sys_attrs && options.format != Format::KeyValues {
            times(&mut map, entity.created_at, entity.modified_at)?;
        }
        for (name, instances) in &entity.attributes {
            let join = |attribute: &Attribute| (self.linked)(name, attribute);
            map.serialize_entry(
                &ctx.compact_iri(name, true),
                &Instances {
                    instances,
                    ctx,
                    options,
                    join: Some(&join),
                },
            )?;
        }
        if let Some(context) = self.context {
            map.serialize_entry("@context", context)?;
        }
        map.end()
    }
}

/// One item alone, or several as a list.
struct OneOrMany<'a, T>(&'a [T]);

impl<T: Serialize> Serialize for OneOrMany<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            [one] => one.serialize(serializer),
            many => serializer.collect_seq(many),
        }
    }
}

/// Expanded IRIs (types, vocab terms) compacted, one alone or several as a list.
struct Terms<'a>(&'a [String], &'a ActiveContext);

impl Serialize for Terms<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let compact = |iri: &String| self.1.compact_iri(iri, true);
        match self.0 {
            [one] => serializer.serialize_str(&compact(one)),
            many => serializer.collect_seq(many.iter().map(compact)),
        }
    }
}

fn times<M: SerializeMap>(
    map: &mut M,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
) -> Result<(), M::Error> {
    if let Some(t) = created {
        map.serialize_entry("createdAt", &format_time(&t))?;
    }
    if let Some(t) = modified {
        map.serialize_entry("modifiedAt", &format_time(&t))?;
    }
    Ok(())
}

/// The linked entities of one relationship instance, when a join asks for them.
type Join<'a> = Option<&'a dyn Fn(&Attribute) -> Option<Value>>;

/// The instances of one attribute: one alone, several as a list; in keyValues the
/// bare value of the default instance (else the first).
struct Instances<'a> {
    instances: &'a [Attribute],
    ctx: &'a ActiveContext,
    options: &'a RenderOptions,
    join: Join<'a>,
}

impl Instances<'_> {
    fn linked(&self, attribute: &Attribute) -> Option<Value> {
        match attribute.value {
            AttributeValue::Relationship { .. } => self.join.and_then(|join| join(attribute)),
            _ => None,
        }
    }

    fn attribute<'b>(&'b self, attribute: &'b Attribute) -> AttributeJson<'b> {
        AttributeJson {
            attribute,
            ctx: self.ctx,
            options: self.options,
            entity: self.linked(attribute),
        }
    }
}

impl Serialize for Instances<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.options.format == Format::KeyValues {
            let chosen = self
                .instances
                .iter()
                .find(|a| a.dataset_id.is_none())
                .or_else(|| self.instances.first());
            let Some(attribute) = chosen else {
                return serializer.serialize_unit();
            };
            return match self.linked(attribute) {
                Some(entity) => entity.serialize(serializer),
                None => KeyValue(attribute, self.ctx, self.options).serialize(serializer),
            };
        }
        match self.instances {
            [one] => self.attribute(one).serialize(serializer),
            many => {
                let mut seq = serializer.serialize_seq(Some(many.len()))?;
                for attribute in many {
                    seq.serialize_element(&self.attribute(attribute))?;
                }
                seq.end()
            }
        }
    }
}

/// The bare value of an attribute, as keyValues shows it.
struct KeyValue<'a>(&'a Attribute, &'a ActiveContext, &'a RenderOptions);

impl Serialize for KeyValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let KeyValue(attribute, ctx, options) = self;
        match &attribute.value {
            AttributeValue::Property(v)
            | AttributeValue::GeoProperty(v)
            | AttributeValue::JsonProperty(v) => v.serialize(serializer),
            AttributeValue::Relationship { object, .. } => Object(object).serialize(serializer),
            AttributeValue::LanguageProperty(map) => {
                match pick_language(map, options.lang.as_deref()) {
                    Some((_, text)) => text.serialize(serializer),
                    None => {
                        let mut out = serializer.serialize_map(Some(1))?;
                        out.serialize_entry("languageMap", map)?;
                        out.end()
                    }
                }
            }
            AttributeValue::VocabProperty(terms) => Terms(terms, ctx).serialize(serializer),
            AttributeValue::ListProperty(items) => items.serialize(serializer),
            AttributeValue::ListRelationship(items) => items.serialize(serializer),
        }
    }
}

/// A relationship's `object`: one IRI or a list of them.
struct Object<'a>(&'a RelationshipObject);

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            RelationshipObject::One(id) => serializer.serialize_str(id),
            RelationshipObject::Many(ids) => ids.serialize(serializer),
        }
    }
}

/// What an attribute holds, under the member that names its kind (`value`, `object`,
/// `languageMap`, `vocab`, `valueList`, `objectList`, `json`).
enum Body<'a> {
    Json(&'a Value),
    Object(&'a RelationshipObject),
    LanguageMap(&'a BTreeMap<String, Value>),
    Terms(&'a [String], &'a ActiveContext),
    Values(&'a [Value]),
    Ids(&'a [String]),
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Body::Json(v) => v.serialize(serializer),
            Body::Object(object) => Object(object).serialize(serializer),
            Body::LanguageMap(map) => map.serialize(serializer),
            Body::Terms(terms, ctx) => Terms(terms, ctx).serialize(serializer),
            Body::Values(items) => items.serialize(serializer),
            Body::Ids(ids) => ids.serialize(serializer),
        }
    }
}

/// One attribute instance in normalized or concise form, with the linked entities
/// of an inline join as its `entity` member.
struct AttributeJson<'a> {
    attribute: &'a Attribute,
    ctx: &'a ActiveContext,
    options: &'a RenderOptions,
    entity: Option<Value>,
}

impl Serialize for AttributeJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (attribute, ctx, options) = (self.attribute, self.ctx, self.options);
        let concise = options.format == Format::Concise;
        let mut kind = attribute.value.kind_name();
        // Members that come right after the value, known while the value is picked.
        let mut object_type = None;
        let mut lang = None;
        let (member, body) = match &attribute.value {
            AttributeValue::Property(v) | AttributeValue::GeoProperty(v) => {
                ("value", Body::Json(v))
            }
            AttributeValue::Relationship {
                object,
                object_type: types,
            } => {
                object_type = types.as_deref();
                ("object", Body::Object(object))
            }
            AttributeValue::LanguageProperty(map) => {
                match pick_language(map, options.lang.as_deref()) {
                    Some((tag, text)) => {
                        // With `lang`, a LanguageProperty is shown as a Property (clause 4.15).
                        kind = "Property";
                        lang = Some(tag);
                        ("value", Body::Json(text))
                    }
                    None => ("languageMap", Body::LanguageMap(map)),
                }
            }
            AttributeValue::VocabProperty(terms) => ("vocab", Body::Terms(terms, ctx)),
            AttributeValue::ListProperty(items) => ("valueList", Body::Values(items)),
            AttributeValue::ListRelationship(items) => ("objectList", Body::Ids(items)),
            AttributeValue::JsonProperty(v) => ("json", Body::Json(v)),
        };
        let has_meta = attribute.dataset_id.is_some()
            || attribute.observed_at.is_some()
            || attribute.unit_code.is_some()
            || !attribute.sub_attributes.is_empty()
            || object_type.is_some()
            || lang.is_some()
            || (options.sys_attrs
                && (attribute.created_at.is_some() || attribute.modified_at.is_some()));
        if concise && !has_meta {
            // A bare value stands for itself where reading it back gives the same attribute.
            match &attribute.value {
                AttributeValue::Property(v)
                    if !v.is_object()
                        && !v.as_array().is_some_and(|a| a.iter().any(Value::is_object)) =>
                {
                    return v.serialize(serializer)
                }
                AttributeValue::GeoProperty(v) => return v.serialize(serializer),
                _ => {}
            }
        }
        // The kind first and the value second, as the specification's examples do.
        let mut map = serializer.serialize_map(None)?;
        if !concise {
            map.serialize_entry("type", kind)?;
        }
        map.serialize_entry(member, &body)?;
        if let Some(types) = object_type {
            map.serialize_entry("objectType", &Terms(types, ctx))?;
        }
        if let Some(tag) = lang {
            map.serialize_entry("lang", tag)?;
        }
        if let Some(dataset) = &attribute.dataset_id {
            map.serialize_entry("datasetId", dataset)?;
        }
        if let Some(t) = &attribute.observed_at {
            map.serialize_entry("observedAt", &format_time(t))?;
        }
        if let Some(unit) = &attribute.unit_code {
            map.serialize_entry("unitCode", unit)?;
        }
        if options.sys_attrs {
            times(&mut map, attribute.created_at, attribute.modified_at)?;
        }
        for (name, instances) in &attribute.sub_attributes {
            map.serialize_entry(
                &ctx.compact_iri(name, true),
                &Instances {
                    instances,
                    ctx,
                    options,
                    join: None,
                },
            )?;
        }
        if let Some(entity) = &self.entity {
            map.serialize_entry("entity", entity)?;
        }
        map.end()
    }
}

/// The text in the language asked for (`lang=ja`, `lang=ja,en;q=0.8`, `lang=*`),
/// trying the tags by falling quality: an exact tag, else a tag of the same primary
/// language; `*` (any language) and the end of the list take `@none`, else the first.
fn pick_language<'a>(
    map: &'a BTreeMap<String, Value>,
    lang: Option<&str>,
) -> Option<(&'a str, &'a Value)> {
    let lang = lang?;
    let mut wanted: Vec<(&str, f32)> = lang
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (!tag.is_empty()).then_some((tag, quality))
        })
        .collect();
    // A stable sort keeps the written order among equal qualities.
    wanted.sort_by(|a, b| b.1.total_cmp(&a.1));
    let any = || {
        map.get_key_value("@none")
            .or_else(|| map.iter().next())
            .map(|(k, v)| (k.as_str(), v))
    };
    for (tag, _) in &wanted {
        if *tag == "*" {
            return any();
        }
        if let Some((k, v)) = map.get_key_value(*tag) {
            return Some((k, v));
        }
        let primary = tag.split('-').next().unwrap_or(tag);
        if let Some((k, v)) = map
            .iter()
            .find(|(k, _)| k.split('-').next() == Some(primary))
        {
            return Some((k, v));
        }
    }
    any()
}
