//! Rendering an entity's history (clauses 4.5.7 normalized, 4.5.8 simplified a.k.a.
//! `temporalValues`, 4.5.19 aggregated), compacted with the request's context.
//!
//! The normalized form reuses the entity codec for every instance and adds its
//! `instanceId` (and `deletedAt` for a recorded deletion). The other forms group an
//! attribute's instances by `datasetId`: one group is shown as an object, several as
//! an array of objects, each with its `datasetId`.

use super::aggregate::{aggregate, AggregatedValue, AggregationWindow};
use super::query::{AggregationMethod, TemporalForm, TemporalQuery};
use super::{TemporalInstance, TimeProperty};
use crate::context::{encode_entity, format_time, ActiveContext, Format, RenderOptions};
use crate::model::{Attribute, AttributeValue, Entity, RelationshipObject};
use serde_json::{json, Map, Value};

/// Rendering choices besides the form and the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TemporalRender {
    /// `options=sysAttrs`: `createdAt` and `modifiedAt` of each instance (normalized).
    pub sys_attrs: bool,
}

/// Renders the history of one entity as `query.form` asks.
///
/// `instances` are shown as given: select them first with [`TemporalQuery::select`]
/// (window, then lastN, in ascending time). Attributes appear in the order of their
/// expanded names; the instances of each in the given order. The time in
/// `temporalValues` pairs is `query.time_property`; aggregation periods are laid in
/// `query.timerel`'s window.
pub fn encode_temporal(
    entity_id: &str,
    types: &[String],
    scopes: &[String],
    instances: &[TemporalInstance],
    ctx: &ActiveContext,
    query: &TemporalQuery,
    render: &TemporalRender,
) -> Value {
    match &query.form {
        TemporalForm::Normalized => {
            encode_normalized(entity_id, types, scopes, instances, ctx, render)
        }
        TemporalForm::Aggregated(aggregation) => {
            let series = series_by_attribute(instances)
                .into_iter()
                .flat_map(|(name, groups)| {
                    groups.into_iter().map(move |group| AggregatedSeries {
                        name: name.to_owned(),
                        kind: group[0].attribute.value.kind_name(),
                        dataset_id: group[0].attribute.dataset_id.clone(),
                        results: aggregate(
                            group.iter().copied(),
                            query.time_property,
                            &aggregation.methods,
                            aggregation.period.as_ref(),
                            AggregationWindow::from(query.timerel),
                        ),
                    })
                })
                .collect::<Vec<_>>();
            encode_aggregated(entity_id, types, scopes, &series, ctx)
        }
        TemporalForm::TemporalValues => {
            let mut out = entity_head(entity_id, types, scopes, ctx);
            for (name, groups) in series_by_attribute(instances) {
                let groups = groups
                    .iter()
                    .map(|group| temporal_values(group, ctx, query.time_property))
                    .collect();
                out.insert(ctx.compact_iri(name, true), one_or_many(groups));
            }
            Value::Object(out)
        }
    }
}

/// One attribute series (name and dataset id) with its aggregation results, however
/// they were computed (from instances, or from a store's hourly rollups).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedSeries {
    /// The expanded attribute name.
    pub name: String,
    /// The attribute kind (`Property`, …).
    pub kind: &'static str,
    pub dataset_id: Option<String>,
    pub results: Vec<(AggregationMethod, Vec<AggregatedValue>)>,
}

/// Renders the aggregated temporal representation (clause 4.5.19) of aggregated
/// series: each attribute holds one object per dataset id with a member per method of
/// `[value, start, end]` triples. Series of one name must be adjacent.
pub fn encode_aggregated(
    entity_id: &str,
    types: &[String],
    scopes: &[String],
    series: &[AggregatedSeries],
    ctx: &ActiveContext,
) -> Value {
    let mut out = entity_head(entity_id, types, scopes, ctx);
    for group in series.chunk_by(|a, b| a.name == b.name) {
        let objects = group
            .iter()
            .map(|one| {
                let mut object = Map::new();
                object.insert("type".into(), json!(one.kind));
                if let Some(dataset) = &one.dataset_id {
                    object.insert("datasetId".into(), json!(dataset));
                }
                for (method, values) in &one.results {
                    let triples = values
                        .iter()
                        .map(|v| {
                            json!([
                                v.value,
                                format_time(&v.bucket.start),
                                format_time(&v.bucket.end)
                            ])
                        })
                        .collect();
                    object.insert(method.as_str().into(), Value::Array(triples));
                }
                Value::Object(object)
            })
            .collect();
        out.insert(ctx.compact_iri(&group[0].name, true), one_or_many(objects));
    }
    Value::Object(out)
}

/// `id`, `type` and `scope` of a temporal entity in the simplified and aggregated forms.
fn entity_head(
    entity_id: &str,
    types: &[String],
    scopes: &[String],
    ctx: &ActiveContext,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(entity_id));
    out.insert(
        "type".into(),
        one_or_many(
            types
                .iter()
                .map(|t| json!(ctx.compact_iri(t, true)))
                .collect(),
        ),
    );
    if !scopes.is_empty() {
        out.insert(
            "scope".into(),
            one_or_many(scopes.iter().map(|s| json!(s)).collect()),
        );
    }
    out
}

fn encode_normalized(
    entity_id: &str,
    types: &[String],
    scopes: &[String],
    instances: &[TemporalInstance],
    ctx: &ActiveContext,
    render: &TemporalRender,
) -> Value {
    let mut entity = Entity::new(entity_id, types.to_vec());
    entity.scopes = scopes.to_vec();
    for instance in instances {
        entity
            .attributes
            .entry(instance.name.clone())
            .or_default()
            .push(instance.attribute.clone());
    }
    let options = RenderOptions {
        format: Format::Normalized,
        sys_attrs: render.sys_attrs,
        lang: None,
    };
    let mut out = match encode_entity(&entity, ctx, &options) {
        Value::Object(map) => map,
        other => return other,
    };
    for name in entity.attributes.keys() {
        let key = ctx.compact_iri(name, true);
        let Some(rendered) = out.remove(&key) else {
            continue;
        };
        let mut rendered = match rendered {
            Value::Array(items) => items,
            single => vec![single],
        };
        // The codec renders the instances of one name in the order they were given.
        let ordered = instances.iter().filter(|i| &i.name == name);
        for (value, instance) in rendered.iter_mut().zip(ordered) {
            if let Value::Object(map) = value {
                map.insert("instanceId".into(), json!(instance.instance_id));
                if let Some(deleted) = &instance.deleted_at {
                    map.insert("deletedAt".into(), json!(format_time(deleted)));
                }
            }
        }
        out.insert(key, Value::Array(rendered));
    }
    Value::Object(out)
}

/// The instances of each attribute (in name order), split by dataset id in order of
/// first appearance.
fn series_by_attribute(instances: &[TemporalInstance]) -> Vec<(&str, Vec<Vec<&TemporalInstance>>)> {
    let mut names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let mut groups: Vec<Vec<&TemporalInstance>> = Vec::new();
            for instance in instances.iter().filter(|i| i.name == name) {
                let dataset = &instance.attribute.dataset_id;
                match groups
                    .iter_mut()
                    .find(|g| &g[0].attribute.dataset_id == dataset)
                {
                    Some(group) => group.push(instance),
                    None => groups.push(vec![instance]),
                }
            }
            (name, groups)
        })
        .collect()
}

/// `type` and `datasetId` of a series, from its first instance.
fn series_head(group: &[&TemporalInstance]) -> Map<String, Value> {
    let mut object = Map::new();
    if let Some(first) = group.first() {
        object.insert("type".into(), json!(first.attribute.value.kind_name()));
        if let Some(dataset) = &first.attribute.dataset_id {
            object.insert("datasetId".into(), json!(dataset));
        }
    }
    object
}

/// A series in the simplified form: `{"type": …, "values": [[value, time], …]}`, the
/// member named for the kind (`objects`, `languageMaps`, `vocabs`, `valueLists`,
/// `objectLists`, `jsons`).
fn temporal_values(
    group: &[&TemporalInstance],
    ctx: &ActiveContext,
    property: TimeProperty,
) -> Value {
    let mut object = series_head(group);
    let member = group
        .first()
        .map_or("values", |i| plural_member(&i.attribute));
    let pairs = group
        .iter()
        .map(|i| {
            let time = i
                .time(property)
                .map_or(Value::Null, |t| json!(format_time(&t)));
            json!([simplified_value(&i.attribute.value, ctx), time])
        })
        .collect();
    object.insert(member.into(), Value::Array(pairs));
    Value::Object(object)
}

fn plural_member(attribute: &Attribute) -> &'static str {
    plural_member_of(attribute.value.kind_name())
}

/// The member holding the `[value, time]` pairs of a kind in the simplified form.
fn plural_member_of(kind: &str) -> &'static str {
    match kind {
        "Relationship" => "objects",
        "LanguageProperty" => "languageMaps",
        "VocabProperty" => "vocabs",
        "ListProperty" => "valueLists",
        "ListRelationship" => "objectLists",
        "JsonProperty" => "jsons",
        _ => "values",
    }
}

/// An attribute of `kind` shown without instances (a page's cut left it none): an
/// empty list, or in the simplified form an empty series.
pub fn empty_series(kind: &str, form: &TemporalForm) -> Value {
    match form {
        TemporalForm::TemporalValues => json!({ "type": kind, plural_member_of(kind): [] }),
        _ => Value::Array(Vec::new()),
    }
}

/// The first element of a `[value, time]` pair: the bare value for Properties,
/// GeoProperties and Relationships, else an object holding the kind's member, as the
/// specification shows (`{"languageMap": …}`, `{"vocab": …}`, `{"json": …}`).
fn simplified_value(value: &AttributeValue, ctx: &ActiveContext) -> Value {
    match value {
        AttributeValue::Property(v) | AttributeValue::GeoProperty(v) => v.clone(),
        AttributeValue::Relationship { object, .. } => match object {
            RelationshipObject::One(o) => json!(o),
            RelationshipObject::Many(os) => json!(os),
        },
        AttributeValue::LanguageProperty(map) => json!({ "languageMap": map }),
        AttributeValue::VocabProperty(terms) => json!({
            "vocab": one_or_many(terms.iter().map(|t| json!(ctx.compact_iri(t, true))).collect())
        }),
        AttributeValue::ListProperty(items) => json!({ "valueList": items }),
        AttributeValue::ListRelationship(items) => json!({ "objectList": items }),
        AttributeValue::JsonProperty(v) => json!({ "json": v }),
    }
}

fn one_or_many(mut items: Vec<Value>) -> Value {
    if items.len() == 1 {
        items.remove(0)
    } else {
        Value::Array(items)
    }
}
