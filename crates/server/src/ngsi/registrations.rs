//! Handlers for `/csourceRegistrations` (clauses 6.8–6.9): create, query (context
//! source discovery, clause 5.10), retrieve, update and delete a tenant's context
//! source registrations. What a registration is lives in `ngsi_ld::registration`;
//! renkei keeps them and answers discovery, it does not forward to the sources.

use super::query::check_iri;
use super::{negotiate, read_json_body, NgsiRequest};
use crate::problem::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use broker::store_error;
use chrono::Utc;
use ngsi_ld::registration::{self, Registration};
use ngsi_ld::NgsiError;
use serde_json::Value;

type Answer = Result<axum::response::Response, ApiError>;

fn not_found(id: &str) -> ApiError {
    NgsiError::not_found(format!("context source registration {id} not found")).into()
}

pub async fn create(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let generated = format!(
        "urn:ngsi-ld:ContextSourceRegistration:{}",
        uuid::Uuid::new_v4()
    );
    let registration = Registration::decode(&body.value, &ctx, &generated, Utc::now())?;
    state
        .registrations
        .create_registration(&request.tenant, &registration.id, &registration.doc)
        .await
        .map_err(store_error)?;
    let mut response = request.respond_empty(StatusCode::CREATED);
    let location = format!("/ngsi-ld/v1/csourceRegistrations/{}", registration.id);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Context source discovery: the registrations about the given entity types, entity
/// id and attributes (each a comma-separated list; any may be left out).
pub async fn query(State(state): State<AppState>, request: NgsiRequest) -> Answer {
    request
        .params
        .allow_only(&["type", "id", "attrs", "limit", "offset", "count", "options"])?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let expanded = |name: &str| -> Result<Vec<String>, ApiError> {
        Ok(request
            .params
            .get(name)?
            .map(|list| {
                list.split(',')
                    .filter(|n| !n.is_empty())
                    .map(|n| ctx.expand_iri(n, true))
                    .collect()
            })
            .unwrap_or_default())
    };
    let (types, attrs) = (expanded("type")?, expanded("attrs")?);
    let ids: Vec<String> = request
        .params
        .get("id")?
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    for id in &ids {
        check_iri("id", id)?;
    }
    let (limit, offset) = super::listing_page(&request)?;
    let stored = state
        .registrations
        .list_registrations(&request.tenant)
        .await
        .map_err(store_error)?;
    if stored.is_empty() {
        state.broker.check_tenant(&request.tenant).await?;
    }
    let matching: Vec<&Value> = stored
        .iter()
        .map(|r| &r.doc)
        .filter(|doc| {
            let by_id = |id: Option<&str>| registration::matches(doc, &types, id, &attrs);
            if ids.is_empty() {
                by_id(None)
            } else {
                ids.iter().any(|id| by_id(Some(id)))
            }
        })
        .collect();
    let total = matching.len() as u64;
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|doc| Registration::encode(doc, &ctx))
        .collect();
    super::listing_answer(
        &request,
        media,
        "/ngsi-ld/v1/csourceRegistrations",
        page,
        (limit, offset),
        total,
    )
}

pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["options"])?;
    check_iri("registration id", &id)?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let doc = state
        .registrations
        .get_registration(&request.tenant, &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    Ok(request.respond(StatusCode::OK, media, Registration::encode(&doc, &ctx)))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("registration id", &id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let doc = state
        .registrations
        .get_registration(&request.tenant, &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    let patched = Registration::patch(&doc, &body.value, &ctx, Utc::now())?;
    state
        .registrations
        .replace_registration(&request.tenant, &id, &patched.doc)
        .await
        .map_err(store_error)?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("registration id", &id)?;
    let deleted = state
        .registrations
        .delete_registration(&request.tenant, &id)
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(not_found(&id));
    }
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}
