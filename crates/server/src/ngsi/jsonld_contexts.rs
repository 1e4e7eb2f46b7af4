//! Handlers for `/jsonldContexts` (clause 6.29–6.30): contexts hosted by renkei, cached
//! from their URLs or preloaded, listed, served and deleted.

use super::NgsiRequest;
use crate::problem::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ngsi_ld::NgsiError;
use serde_json::{json, Value};
use store::{ContextKind, StoredContext};

type Answer = Result<Response, ApiError>;

fn details(state: &AppState, context: &StoredContext) -> Value {
    let mut details = json!({
        "URL": context.url,
        "localId": context.id,
        "kind": context.kind.as_str(),
        "createdAt": ngsi_ld::context::codec::format_time(&context.created_at),
        "numberOfHits": 0,
    });
    if let Some(usage) = state.broker.contexts().usage(&context.url) {
        details["numberOfHits"] = json!(usage.hits);
        details["lastUsage"] = json!(ngsi_ld::context::codec::format_time(&usage.last));
    }
    details
}

fn json_response(status: StatusCode, request: &NgsiRequest, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    request.add_tenant_header(response.headers_mut());
    response
}

pub async fn list(State(state): State<AppState>, request: NgsiRequest) -> Answer {
    request.params.allow_only(&["details", "kind"])?;
    let kind = match request.params.get("kind")? {
        None => None,
        Some(k) => Some(ContextKind::parse(k).ok_or_else(|| {
            NgsiError::bad_request_data(format!(
                "kind must be Hosted, Cached or ImplicitlyCreated, not '{k}'"
            ))
        })?),
    };
    let show_details = request.params.bool("details")?;
    let contexts = state.broker.contexts().list().await?;
    let body: Vec<Value> = contexts
        .iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .map(|c| {
            if show_details {
                details(&state, c)
            } else {
                json!(c.url)
            }
        })
        .collect();
    Ok(json_response(StatusCode::OK, &request, &Value::Array(body)))
}

pub async fn add(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("");
    if !(content_type.starts_with("application/json")
        || content_type.starts_with("application/ld+json"))
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type '{content_type}' is not supported: use application/json or application/ld+json"
        )));
    }
    let value = super::read_body_value(&state, body).await?;
    let context = state.broker.contexts().add_hosted(value).await?;
    let mut response = request.respond_empty(StatusCode::CREATED);
    // A path, as for every created resource; used as an @context it resolves against
    // the request's URL to the context's own URL (JSON-LD relative IRIs).
    if let Ok(location) =
        HeaderValue::from_str(&format!("/ngsi-ld/v1/jsonldContexts/{}", context.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["details"])?;
    let context = state.broker.contexts().get(&id).await?;
    let body = if request.params.bool("details")? {
        details(&state, &context)
    } else {
        context.body
    };
    Ok(json_response(StatusCode::OK, &request, &body))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["reload"])?;
    let reload = request.params.bool("reload")?;
    state.broker.contexts().delete(&id, reload).await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}
