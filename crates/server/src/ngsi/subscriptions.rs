//! Handlers for `/subscriptions` (clause 6.10–6.11): create, list, retrieve, update
//! and delete the tenant's subscriptions. What a subscription means lives in
//! `ngsi_ld::subscription`; matching and delivery run in the background
//! (`broker::notifications`, `crate::delivery`).

use super::query::check_iri;
use super::{negotiate, read_json_body, NgsiRequest};
use crate::problem::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use broker::store_error;
use chrono::Utc;
use ngsi_ld::subscription::{Subscription, SubscriptionStatus};
use ngsi_ld::NgsiError;
use serde_json::Value;
use store::subscriptions::StoredSubscription;

type Answer = Result<axum::response::Response, ApiError>;

fn internal(detail: impl Into<String>) -> NgsiError {
    NgsiError::new(ngsi_ld::ProblemType::InternalError, detail)
}

fn not_found(id: &str) -> ApiError {
    NgsiError::not_found(format!("subscription {id} not found")).into()
}

fn decode_stored(stored: &StoredSubscription) -> Result<Subscription, NgsiError> {
    Subscription::from_document(&stored.doc).map_err(|e| {
        tracing::error!(id = %stored.id, error = %e, "a stored subscription cannot be read");
        internal("a stored subscription cannot be read")
    })
}

fn status_of(stored: &StoredSubscription) -> SubscriptionStatus {
    let s = &stored.status;
    SubscriptionStatus {
        times_sent: s.times_sent,
        times_failed: s.times_failed,
        last_notification: s.last_notification,
        last_success: s.last_success,
        last_failure: s.last_failure,
    }
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
    let context = body
        .local_context
        .clone()
        .unwrap_or_else(|| Value::String(super::CORE_CONTEXT_URL.to_owned()));
    let generated = format!("urn:ngsi-ld:Subscription:{}", uuid::Uuid::new_v4());
    let mut subscription =
        Subscription::decode(&body.value, &ctx, context, &generated, Utc::now())?;
    // A receiver must be able to dereference the context its notifications name; a
    // request context that is no single URL becomes an ImplicitlyCreated one.
    if subscription.jsonld_context.is_none() {
        if let Some(local) = body.local_context.as_ref().filter(|c| !is_single_url(c)) {
            let url = state.broker.contexts().implicit_url(local).await?;
            subscription.jsonld_context = Some(url);
        }
    }
    // The context notifications are to be compacted with must be there now, not
    // fail later at every notification (503 LdContextNotAvailable when it is not).
    if let Some(url) = &subscription.jsonld_context {
        state
            .broker
            .contexts()
            .resolve(Some(&Value::String(url.clone())))
            .await?;
    }
    let doc = subscription.to_document();
    state
        .subscriptions
        .create_subscription(&request.tenant, &subscription.id, &doc)
        .await
        .map_err(store_error)?;
    let mut response = request.respond_empty(StatusCode::CREATED);
    let location = format!("/ngsi-ld/v1/subscriptions/{}", subscription.id);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Whether a request's `@context` is one URL (alone or as the only item of an array),
/// which notifications can name as it is.
fn is_single_url(context: &Value) -> bool {
    match context {
        Value::String(_) => true,
        Value::Array(items) => matches!(items.as_slice(), [Value::String(_)]),
        _ => false,
    }
}

pub async fn list(State(state): State<AppState>, request: NgsiRequest) -> Answer {
    request
        .params
        .allow_only(&["limit", "offset", "count", "options"])?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let (limit, offset) = super::listing_page(&request)?;
    let sys_attrs = super::query::render_options(&request.params)?.sys_attrs;
    let (page, total) = state
        .subscriptions
        .list_subscriptions(&request.tenant, limit, offset)
        .await
        .map_err(store_error)?;
    let now = Utc::now();
    let mut items = Vec::with_capacity(page.len());
    for stored in &page {
        items.push(decode_stored(stored)?.encode(&ctx, &status_of(stored), sys_attrs, now));
    }
    super::listing_answer(
        &request,
        media,
        "/ngsi-ld/v1/subscriptions",
        items,
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
    check_iri("subscription id", &id)?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let stored = state
        .subscriptions
        .get_subscription(&request.tenant, &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    let sys_attrs = super::query::render_options(&request.params)?.sys_attrs;
    let body = decode_stored(&stored)?.encode(&ctx, &status_of(&stored), sys_attrs, Utc::now());
    Ok(request.respond(StatusCode::OK, media, body))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("subscription id", &id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let stored = state
        .subscriptions
        .get_subscription(&request.tenant, &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&id))?;
    let mut subscription = decode_stored(&stored)?;
    subscription.update(&body.value, &ctx, Utc::now())?;
    let doc = subscription.to_document();
    state
        .subscriptions
        .replace_subscription(&request.tenant, &id, &doc)
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
    check_iri("subscription id", &id)?;
    let deleted = state
        .subscriptions
        .delete_subscription(&request.tenant, &id)
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(not_found(&id));
    }
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}
