//! Reading temporal entity bodies (clause 5.6.11 Create or Update Temporal Evolution,
//! 5.6.12 Add Attributes to a Temporal Entity): like an entity, but an attribute may
//! hold any number of instances, with or without `datasetId`, each one a moment of
//! its history. Each instance is read by the entity codec and gets a fresh
//! `instanceId`; an `instanceId` in the body is ignored, as the broker assigns them.

use super::TemporalInstance;
use crate::context::codec::{check_attribute_name, decode_entity_head};
use crate::context::{decode_attribute, ActiveContext};
use crate::NgsiError;
use serde_json::Value;

/// A temporal entity as a client sends it: the entity's identity and the instances of
/// its attributes, in the order of the body.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalEntity {
    pub id: String,
    /// Expanded type IRIs.
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    pub instances: Vec<TemporalInstance>,
}

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

fn bad(detail: impl Into<String>) -> NgsiError {
    NgsiError::bad_request_data(detail)
}

/// Reads the body of `POST /temporal/entities`: `id`, `type`, optional `scope` and
/// attributes whose values are instances or arrays of instances.
pub fn decode_temporal_entity(
    body: &Value,
    ctx: &ActiveContext,
) -> Result<TemporalEntity, NgsiError> {
    if !body.is_object() {
        return Err(bad("a temporal entity must be a JSON object"));
    }
    let head = decode_entity_head(body, "temporal entity", ctx)?;
    Ok(TemporalEntity {
        id: head.id,
        types: head.types,
        scopes: head.scopes,
        instances: decode_temporal_attributes(body, ctx)?,
    })
}

/// Reads the attributes of a temporal body (`POST /temporal/entities/{id}/attrs`, or
/// the attributes of a whole temporal entity, whose `id`, `type` and `scope` are
/// skipped). Each attribute is one instance or a non-empty array of instances; the
/// instances are returned in body order, each with a new instance id. Errors are
/// `BadRequestData` naming the attribute.
pub fn decode_temporal_attributes(
    body: &Value,
    ctx: &ActiveContext,
) -> Result<Vec<TemporalInstance>, NgsiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object of attributes"))?;
    let mut instances = Vec::new();
    for (name, member) in obj {
        if ENTITY_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        check_attribute_name(name)?;
        if member.as_array().is_some_and(Vec::is_empty) {
            return Err(bad(format!(
                "attribute '{name}': an empty array holds no instances"
            )));
        }
        let iri = ctx.expand_iri(name, true);
        let decoded = decode_attribute(&iri, member, ctx).map_err(|e| {
            if e.detail.starts_with("attribute ") {
                e
            } else {
                NgsiError::new(e.problem, format!("attribute '{name}': {}", e.detail))
            }
        })?;
        instances.extend(
            decoded
                .into_iter()
                .map(|attribute| TemporalInstance::new(iri.clone(), attribute)),
        );
    }
    Ok(instances)
}
