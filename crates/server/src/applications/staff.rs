//! Staff and back-office systems: the review queue (with filters and due dates), the
//! commands of review and approval (each signed into the audit log), delegations of
//! approval (代決), statistics and the CSV export of a procedure's applications.

use super::{allowed, audit_actor, require, tenant_name, ApiResult};
use crate::auth::middleware::caller_of;
use crate::auth::AuthError;
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Extensions;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use identity::policy::Action;
use procedures::application::ApplicationState;
use procedures::approval::Delegation;
use procedures::service::{ApplicationView, ProcedureStatistics, StaffCommand, Viewer};
use serde::Deserialize;
use serde_json::{json, Value};
use store::applications::{ApplicationFilter, DelegationRecord};

#[derive(Deserialize)]
pub struct QueueQuery {
    /// Comma-separated states (`submitted,received,in_review`).
    state: Option<String>,
    procedure: Option<String>,
    due_before: Option<DateTime<Utc>>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `GET /tenants/{tenant}/applications`: the review queue, due first.
pub async fn queue(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(tenant): Path<String>,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    require(&state, &extensions, &tenant, Action::ApplicationReview).await?;
    let Query(query) = query?;
    // A draft is the resident's until submitted: staff never list one.
    let submitted = |state: &str| state != ApplicationState::Draft.as_str();
    let states: Vec<String> = match &query.state {
        Some(asked) => asked
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && submitted(s))
            .map(str::to_owned)
            .collect(),
        None => ApplicationState::ALL
            .iter()
            .map(|s| s.as_str())
            .filter(|s| submitted(s))
            .map(str::to_owned)
            .collect(),
    };
    if states.is_empty() {
        return Ok(Json(json!({"total": 0, "applications": []})));
    }
    let filter = ApplicationFilter {
        tenant: Some(tenant),
        procedure_id: query.procedure,
        states,
        due_before: query.due_before,
        limit: query.limit.unwrap_or(50).clamp(1, 500),
        offset: query.offset.unwrap_or(0),
        ..ApplicationFilter::default()
    };
    let (views, total) = state
        .applications
        .list(&filter, Viewer::Staff { sensitive: false })
        .await?;
    Ok(Json(json!({"total": total, "applications": views})))
}

/// `POST /applications/{id}/commands`: `{"command": "receive" | "start_review" |
/// "return_for_correction" (with "reasons") | "decide" (with "decision": "approve" |
/// "reject" + "reason" | "send_back" + "to_step" + "reason") | "complete"}`.
pub async fn command(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(id): Path<String>,
    command: Result<Json<StaffCommand>, JsonRejection>,
) -> ApiResult<Json<ApplicationView>> {
    let tenant = state.applications.tenant_of(&id).await?;
    // Which right the command needs is only known from a readable body; one that
    // cannot be read is answered after the caller is known to review here.
    let command = match command {
        Ok(Json(command)) => command,
        Err(rejection) => {
            require(&state, &extensions, &tenant, Action::ApplicationReview).await?;
            return Err(rejection.into());
        }
    };
    let action = match command {
        StaffCommand::Decide { .. } => Action::ApplicationDecide,
        _ => Action::ApplicationReview,
    };
    let staff = require(&state, &extensions, &tenant, action).await?;
    let name = tenant_name(&state, &tenant).await;
    let record = state
        .applications
        .staff_command(&id, &staff, command.clone(), &name)
        .await?;
    // The decision is signed into the hash-chained audit log with what it decided.
    state
        .identity
        .audit(
            &audit_actor(&extensions),
            Some(&tenant),
            "application.command",
            &format!("application:{id}"),
            json!({
                "by": staff.user_id,
                "command": command,
                "state": record.state,
                "reception_number": record.reception_number,
                "version": record.version,
            }),
        )
        .await?;
    let sensitive = action == Action::ApplicationDecide;
    Ok(Json(
        state.applications.view_for_staff(&id, sensitive).await?,
    ))
}

pub async fn statistics(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<ProcedureStatistics>> {
    require(&state, &extensions, &tenant, Action::ApplicationReview).await?;
    Ok(Json(state.applications.statistics(&tenant, &id).await?))
}

/// The CSV for staff; sensitive fields only for those who decide (approvers).
pub async fn export_csv(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    require(&state, &extensions, &tenant, Action::ApplicationReview).await?;
    // The same rule as the application view: those who decide see sensitive answers.
    let sensitive = allowed(
        &state,
        &caller_of(&extensions),
        &tenant,
        Action::ApplicationDecide,
    )
    .await;
    let csv = state
        .applications
        .export_csv(&tenant, &id, sensitive)
        .await?;
    state
        .identity
        .audit(
            &audit_actor(&extensions),
            Some(&tenant),
            "application.export",
            &format!("procedure:{id}"),
            json!({"sensitive": sensitive}),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}-applications.csv\""),
            ),
        ],
        // A BOM so that Excel reads the UTF-8 Japanese correctly.
        format!("\u{feff}{csv}"),
    )
        .into_response())
}

fn delegation_json(d: &DelegationRecord) -> Value {
    json!({"id": d.id, "principal": d.principal, "delegate": d.delegate, "from": d.from, "until": d.until})
}

pub async fn delegations(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(tenant): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    require(&state, &extensions, &tenant, Action::ApplicationReview).await?;
    let list = state
        .applications
        .store()
        .delegations(&tenant)
        .await
        .map_err(AuthError::from)?;
    Ok(Json(list.iter().map(delegation_json).collect()))
}

/// `POST /tenants/{tenant}/delegations`: an approver names who decides for them while
/// they are away (代決); only for themself.
pub async fn add_delegation(
    State(state): State<AppState>,
    extensions: Extensions,
    Path(tenant): Path<String>,
    Json(delegation): Json<Delegation>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let staff = require(&state, &extensions, &tenant, Action::ApplicationDecide).await?;
    if delegation.principal != staff.user_id {
        return Err(
            AuthError::Forbidden("an approver delegates only their own seats".into()).into(),
        );
    }
    let record = state
        .applications
        .add_delegation(&tenant, delegation)
        .await?;
    state
        .identity
        .audit(
            &audit_actor(&extensions),
            Some(&tenant),
            "delegation.create",
            &format!("delegation:{}", record.id),
            delegation_json(&record),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(delegation_json(&record))))
}

pub async fn remove_delegation(
    State(state): State<AppState>,
    extensions: Extensions,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let staff = require(&state, &extensions, &tenant, Action::ApplicationDecide).await?;
    let store = state.applications.store();
    let mine = store
        .delegations(&tenant)
        .await
        .map_err(AuthError::from)?
        .into_iter()
        .any(|d| d.id == id && d.principal == staff.user_id);
    if !mine {
        return Err(AuthError::NotFound(format!("delegation {id}")).into());
    }
    store
        .delete_delegation(&tenant, &id)
        .await
        .map_err(AuthError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
