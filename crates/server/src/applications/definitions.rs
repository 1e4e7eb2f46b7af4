//! Procedure definitions: anyone reads the published ones; staff who manage procedures
//! (tenant administrators) read drafts, create, revise and adopt shared templates.

use super::{allowed, audit_actor, require, ApiResult};
use crate::auth::middleware::caller_of;
use crate::auth::AuthError;
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Extensions;
use axum::http::StatusCode;
use axum::Json;
use identity::policy::Action;
use procedures::procedure::{Procedure, ProcedureStatus};
use procedures::service::ProcedureView;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub struct TenantQuery {
    tenant: String,
}

#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<i64>,
}

#[derive(Deserialize)]
pub struct Adopt {
    from_tenant: String,
    template_id: String,
    id: String,
}

fn procedure_body(mut body: Value) -> Result<(Option<String>, Procedure), AuthError> {
    let id = body
        .as_object_mut()
        .and_then(|o| o.remove("id"))
        .and_then(|v| v.as_str().map(str::to_owned));
    let procedure = serde_json::from_value(body).map_err(|e| {
        AuthError::bad_request(
            format!("the procedure definition cannot be read: {e}"),
            format!("手続の定義を読み取れません: {e}"),
        )
    })?;
    Ok((id, procedure))
}

/// `GET /templates?tenant=…`: the templates other tenants share.
pub async fn templates(
    State(state): State<AppState>,
    extensions: Extensions,
    Query(query): Query<TenantQuery>,
) -> ApiResult<Json<Vec<ProcedureView>>> {
    require(&state, &extensions, &query.tenant, Action::ProcedureManage).await?;
    Ok(Json(state.applications.templates(&query.tenant).await?))
}

/// `GET /tenants/{tenant}/procedures`: published ones, or all for their managers.
pub async fn list(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<ProcedureView>>> {
    let caller = caller_of(&extensions);
    let manager = allowed(&state, &caller, &tenant, Action::ProcedureManage).await;
    let mut views = state.applications.procedures(&tenant, !manager).await?;
    if !manager {
        views.iter_mut().for_each(hide_internals);
    }
    Ok(Json(views))
}

/// What only the tenant's staff see of a procedure: the back office's webhook URL
/// (it may carry a token).
fn hide_internals(view: &mut ProcedureView) {
    view.procedure.webhook_url = None;
}

pub async fn show(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((tenant, id)): Path<(String, String)>,
    query: Result<Query<VersionQuery>, QueryRejection>,
) -> ApiResult<Json<ProcedureView>> {
    let Query(query) = query?;
    let mut view = state
        .applications
        .procedure(&tenant, &id, query.version)
        .await?;
    let caller = caller_of(&extensions);
    if !allowed(&state, &caller, &tenant, Action::ProcedureManage).await {
        if view.procedure.status != ProcedureStatus::Published {
            return Err(AuthError::NotFound(format!("procedure {id}")).into());
        }
        hide_internals(&mut view);
    }
    Ok(Json(view))
}

pub async fn create(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(tenant): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ProcedureView>)> {
    require(&state, &extensions, &tenant, Action::ProcedureManage).await?;
    let Json(body) = body?;
    let (id, procedure) = procedure_body(body)?;
    let id = id.ok_or_else(|| {
        AuthError::bad_request("the procedure needs an \"id\"", "手続の \"id\" が必要です")
    })?;
    let view = state
        .applications
        .create_procedure(&tenant, &id, procedure)
        .await?;
    audit(
        &state,
        &audit_actor(&extensions),
        &tenant,
        "procedure.create",
        &view,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn revise(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((tenant, id)): Path<(String, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<ProcedureView>> {
    require(&state, &extensions, &tenant, Action::ProcedureManage).await?;
    let Json(body) = body?;
    let (_, procedure) = procedure_body(body)?;
    let view = state
        .applications
        .revise_procedure(&tenant, &id, procedure)
        .await?;
    audit(
        &state,
        &audit_actor(&extensions),
        &tenant,
        "procedure.revise",
        &view,
    )
    .await?;
    Ok(Json(view))
}

pub async fn adopt(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(tenant): Path<String>,
    Json(body): Json<Adopt>,
) -> ApiResult<(StatusCode, Json<ProcedureView>)> {
    require(&state, &extensions, &tenant, Action::ProcedureManage).await?;
    let view = state
        .applications
        .adopt_template(&tenant, &body.from_tenant, &body.template_id, &body.id)
        .await?;
    audit(
        &state,
        &audit_actor(&extensions),
        &tenant,
        "procedure.adopt",
        &view,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn audit(
    state: &AppState,
    actor: &str,
    tenant: &str,
    action: &str,
    view: &ProcedureView,
) -> Result<(), AuthError> {
    state
        .identity
        .audit(
            actor,
            Some(tenant),
            action,
            &format!("procedure:{}", view.id),
            serde_json::json!({"version": view.version}),
        )
        .await
}
