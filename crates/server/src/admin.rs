//! The administration API at `/admin/v1`: tenants (register, suspend, configure), the
//! users and roles of a tenant, API keys, and the audit log. Every action is decided by
//! the policy table and every change is written to the audit log. The command line
//! (`renkei tenant add`, `renkei key create`, …) calls the same functions in
//! [`ops`], so both paths check and record alike.

pub mod ops;

use crate::auth::middleware::caller_of;
use crate::auth::AuthError;
use crate::AppState;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use identity::audit::AuditFilter;
use identity::policy::{Action, Target};
use identity::{Role, Scope};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(list_tenants).post(create_tenant))
        .route("/tenants/{code}", get(show_tenant).patch(update_tenant))
        .route("/tenants/{code}/users", get(list_users).post(create_user))
        .route(
            "/tenants/{code}/grants",
            post(change_grant).delete(change_grant),
        )
        .route("/tenants/{code}/keys", get(list_keys).post(create_key))
        .route("/tenants/{code}/keys/{id}", delete(revoke_key))
        .route("/audit", get(search_audit))
        .route("/audit/verify", get(verify_audit))
}

/// Reads a JSON body (the caller is taken from the request first).
async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<T, AuthError> {
    let bytes = axum::body::to_bytes(request.into_body(), state.config.max_body_bytes)
        .await
        .map_err(|_| {
            AuthError::bad_request("the request body is too large", "リクエストが大きすぎます")
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        AuthError::bad_request(
            format!("the request body is not the expected JSON: {e}"),
            format!("リクエストの JSON が正しくありません: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    code: String,
}

async fn create_tenant(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    let body: NewTenant = json_body(&state, request).await?;
    let record = ops::create_tenant(&state.identity, &caller.principal, &body.code).await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

async fn list_tenants(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    state
        .identity
        .require(&caller.principal, Action::TenantCreate, Target::platform())?;
    Ok(Json(state.identity.store().list_registered_tenants().await?).into_response())
}

async fn show_tenant(
    State(state): State<AppState>,
    Path(code): Path<String>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    let record = ops::tenant_for(
        &state.identity,
        &caller.principal,
        &code,
        Action::TenantConfigure,
    )
    .await?;
    Ok(Json(record).into_response())
}

async fn update_tenant(
    State(state): State<AppState>,
    Path(code): Path<String>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    let change: ops::TenantChange = json_body(&state, request).await?;
    let record = ops::update_tenant(&state.identity, &caller.principal, &code, change).await?;
    Ok(Json(record).into_response())
}

async fn list_users(
    State(state): State<AppState>,
    Path(code): Path<String>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    ops::tenant_for(
        &state.identity,
        &caller.principal,
        &code,
        Action::UserManage,
    )
    .await?;
    Ok(Json(ops::users_of_tenant(&state.identity, &code).await?).into_response())
}

async fn create_user(
    State(state): State<AppState>,
    Path(code): Path<String>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    let body: ops::NewUser = json_body(&state, request).await?;
    let user = ops::create_user(&state.identity, &caller.principal, &code, body).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    username: String,
    role: Role,
}

/// `POST` grants the role, `DELETE` takes it away.
async fn change_grant(
    State(state): State<AppState>,
    Path(code): Path<String>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    let add = request.method() == axum::http::Method::POST;
    let body: GrantBody = json_body(&state, request).await?;
    ops::change_grant(
        &state.identity,
        &caller.principal,
        &code,
        &body.username,
        body.role,
        add,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    role: Role,
    #[serde(default)]
    scopes: Option<Vec<Scope>>,
    #[serde(default)]
    label: String,
    #[serde(default)]
    expires_in_days: Option<u32>,
}

async fn create_key(
    State(state): State<AppState>,
    Path(code): Path<String>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    let body: NewKey = json_body(&state, request).await?;
    let request = ops::KeyRequest {
        tenant: code,
        role: body.role,
        scopes: body.scopes,
        label: body.label,
        expires_in_days: body.expires_in_days,
    };
    let (record, token) = ops::create_key(&state.identity, &caller.principal, request).await?;
    let mut shown = key_view(&record);
    // The only time the key is ever shown.
    shown["key"] = json!(token);
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

fn key_view(record: &identity::secret::ApiKeyRecord) -> Value {
    json!({
        "id": record.id,
        "tenant": record.grant.tenant,
        "role": record.grant.role,
        "scopes": record.scopes,
        "label": record.label,
        "createdBy": record.created_by,
        "createdAt": record.created_at,
        "expiresAt": record.expires_at,
        "revokedAt": record.revoked_at,
    })
}

async fn list_keys(
    State(state): State<AppState>,
    Path(code): Path<String>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    ops::tenant_for(&state.identity, &caller.principal, &code, Action::KeyManage).await?;
    let keys = state.identity.store().list_api_keys(Some(&code)).await?;
    Ok(Json(keys.iter().map(key_view).collect::<Vec<_>>()).into_response())
}

async fn revoke_key(
    State(state): State<AppState>,
    Path((code, id)): Path<(String, String)>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    ops::revoke_key(&state.identity, &caller.principal, Some(&code), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    tenant: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    action: Option<String>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
    before: Option<i64>,
    limit: Option<usize>,
}

async fn search_audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    // A tenant's administrator reads that tenant's records; the whole log (records
    // of no tenant included) is the platform administrator's.
    match &query.tenant {
        Some(code) => {
            let record = state.identity.tenant(code).await?;
            state.identity.require(
                &caller.principal,
                Action::AuditRead,
                Target::tenant(code, record.as_ref()),
            )?;
        }
        None => {
            state
                .identity
                .require(&caller.principal, Action::TenantCreate, Target::platform())?
        }
    }
    let filter = AuditFilter {
        tenant: query.tenant,
        actor: query.actor,
        target: query.target,
        action: query.action,
        from: query.from,
        to: query.to,
        before_seq: query.before,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let records = state.identity.store().search_audit(&filter).await?;
    Ok(Json(records).into_response())
}

async fn verify_audit(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    state
        .identity
        .require(&caller.principal, Action::TenantCreate, Target::platform())?;
    let report = ops::verify_audit(state.identity.store().as_ref()).await?;
    Ok(Json(report).into_response())
}
