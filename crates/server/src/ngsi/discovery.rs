//! Handlers for `/types` and `/attributes` (clause 6.25–6.28): what entity types and
//! attributes exist, compacted with the request's `@context`.

use super::{negotiate, NgsiRequest};
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::BTreeSet;

type Answer = Result<Response, ApiError>;

fn list_id(kind: &str) -> String {
    format!("urn:ngsi-ld:{kind}:{}", uuid::Uuid::new_v4())
}

pub async fn types(State(state): State<AppState>, request: NgsiRequest) -> Answer {
    request.params.allow_only(&["details", "local", "via"])?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let stats = state
        .broker
        .types(&request.tenant, &request.visibility)
        .await?;
    let body = if request.params.bool("details")? {
        Value::Array(
            stats
                .iter()
                .map(|t| {
                    json!({
                        "id": t.type_iri,
                        "type": "EntityType",
                        "typeName": ctx.compact_iri(&t.type_iri, true),
                        "attributeNames": t.attributes.iter().map(|a| ctx.compact_iri(a, true)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    } else {
        json!({
            "id": list_id("EntityTypeList"),
            "type": "EntityTypeList",
            "typeList": stats.iter().map(|t| ctx.compact_iri(&t.type_iri, true)).collect::<Vec<_>>(),
        })
    };
    Ok(request.respond(StatusCode::OK, media, body))
}

pub async fn type_details(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["local", "via"])?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let type_iri = ctx.expand_iri(&type_name, true);
    let stats = state
        .broker
        .type_details(&request.tenant, &type_iri, &request.visibility)
        .await?;
    let attributes = state
        .broker
        .attributes(&request.tenant, &request.visibility)
        .await?;
    let details: Vec<Value> = stats
        .attributes
        .iter()
        .map(|name| {
            let kinds = attributes
                .iter()
                .find(|a| &a.attribute_iri == name)
                .map(|a| a.kinds.clone())
                .unwrap_or_default();
            json!({
                "id": name,
                "type": "Attribute",
                "attributeName": ctx.compact_iri(name, true),
                "attributeTypes": kinds,
            })
        })
        .collect();
    let body = json!({
        "id": stats.type_iri,
        "type": "EntityTypeInfo",
        "typeName": ctx.compact_iri(&stats.type_iri, true),
        "entityCount": stats.entity_count,
        "attributeDetails": details,
    });
    Ok(request.respond(StatusCode::OK, media, body))
}

pub async fn attributes(State(state): State<AppState>, request: NgsiRequest) -> Answer {
    request.params.allow_only(&["details", "local", "via"])?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let stats = state
        .broker
        .attributes(&request.tenant, &request.visibility)
        .await?;
    let body = if request.params.bool("details")? {
        Value::Array(
            stats
                .iter()
                .map(|a| {
                    json!({
                        "id": a.attribute_iri,
                        "type": "Attribute",
                        "attributeName": ctx.compact_iri(&a.attribute_iri, true),
                        "typeNames": compact_all(&ctx, &a.types),
                    })
                })
                .collect(),
        )
    } else {
        json!({
            "id": list_id("AttributeList"),
            "type": "AttributeList",
            "attributeList": stats.iter().map(|a| ctx.compact_iri(&a.attribute_iri, true)).collect::<Vec<_>>(),
        })
    };
    Ok(request.respond(StatusCode::OK, media, body))
}

pub async fn attribute_details(
    State(state): State<AppState>,
    Path(attr): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["local", "via"])?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let iri = ctx.expand_iri(&attr, true);
    let stats = state
        .broker
        .attribute_details(&request.tenant, &iri, &request.visibility)
        .await?;
    let body = json!({
        "id": stats.attribute_iri,
        "type": "Attribute",
        "attributeName": ctx.compact_iri(&stats.attribute_iri, true),
        "attributeCount": stats.entity_count,
        "attributeTypes": stats.kinds,
        "typeNames": compact_all(&ctx, &stats.types),
    });
    Ok(request.respond(StatusCode::OK, media, body))
}

fn compact_all(ctx: &ngsi_ld::context::ActiveContext, iris: &[String]) -> Vec<String> {
    iris.iter()
        .map(|i| ctx.compact_iri(i, true))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
