//! The HTTP face of online applications at `/api/v1/procedures` (documented in
//! `docs/openapi/procedures.yaml`): procedure definitions for staff, applications for
//! residents (draft, resume link, attachments, submission, payment, withdrawal), the
//! review queue and commands for staff and back-office systems, documents and their
//! public verification, and the payment gateway's callback. Handlers parse, check the
//! policy table, call `procedures::service::Applications` and map its errors here.

mod definitions;
mod resident;
pub mod setup;
mod staff;
pub mod worker;

use crate::auth::middleware::caller_of;
use crate::auth::{AuthError, Caller};
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::Extensions;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use identity::policy::{Action, Target};
use identity::Principal;
use procedures::service::{Person, ServiceError};
use serde_json::json;

const PROBLEM_BASE: &str = "urn:renkei:problem:";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(definitions::templates))
        .route(
            "/tenants/{tenant}/procedures",
            get(definitions::list).post(definitions::create),
        )
        .route(
            "/tenants/{tenant}/procedures/{id}",
            get(definitions::show).put(definitions::revise),
        )
        .route("/tenants/{tenant}/adopt", post(definitions::adopt))
        .route(
            "/tenants/{tenant}/procedures/{id}/statistics",
            get(staff::statistics),
        )
        .route(
            "/tenants/{tenant}/procedures/{id}/applications.csv",
            get(staff::export_csv),
        )
        .route(
            "/tenants/{tenant}/procedures/{id}/applications",
            post(resident::start),
        )
        .route("/tenants/{tenant}/applications", get(staff::queue))
        .route(
            "/tenants/{tenant}/delegations",
            get(staff::delegations).post(staff::add_delegation),
        )
        .route(
            "/tenants/{tenant}/delegations/{id}",
            delete(staff::remove_delegation),
        )
        .route("/applications/mine", get(resident::mine))
        .route("/applications/mine/export", get(resident::export_mine))
        .route("/applications/{id}", get(resident::show))
        .route("/applications/{id}/answers", put(resident::save))
        .route("/applications/{id}/resume", get(resident::resume))
        .route("/applications/{id}/attachments", post(resident::attach))
        .route(
            "/applications/{id}/attachments/{attachment}",
            get(resident::attachment).delete(resident::detach),
        )
        .route("/applications/{id}/submit", post(resident::submit))
        .route("/applications/{id}/withdraw", post(resident::withdraw))
        .route("/applications/{id}/payment", post(resident::pay))
        .route("/applications/{id}/commands", post(staff::command))
        .route("/applications/{id}/history", get(resident::history))
        .route(
            "/applications/{id}/documents/{kind}",
            get(resident::document),
        )
        .route("/verify/{code}", get(resident::verify))
        .route("/payments/callback", post(resident::payment_callback))
        .route("/payments/{id}/return", get(resident::payment_return))
}

/// A refusal of this face: an authentication or policy refusal, the service's, or a
/// request whose query string or JSON body cannot be read.
#[derive(Debug)]
pub enum ApiError {
    Auth(AuthError),
    Service(ServiceError),
    /// With the status axum chose (400, 413, 415, 422), answered as a problem like
    /// every other refusal rather than as axum's plain text.
    Unreadable {
        status: StatusCode,
        detail: String,
    },
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::Unreadable {
            status: rejection.status(),
            detail: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Unreadable {
            status: rejection.status(),
            detail: rejection.body_text(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::Auth(error)
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        ApiError::Service(error)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Status, stable code, English and Japanese detail, and field errors.
fn parts(error: &ServiceError) -> (StatusCode, String, String, String, serde_json::Value) {
    use procedures::application::TransitionError as T;
    use procedures::approval::ChainError as C;
    let none = serde_json::Value::Null;
    match error {
        ServiceError::NotFound(what) => (
            StatusCode::NOT_FOUND,
            "NotFound".into(),
            format!("{what} was not found"),
            "見つかりません".into(),
            none,
        ),
        ServiceError::Invalid(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidAnswers".into(),
            "some answers are not valid; nothing you entered was lost".into(),
            "入力内容に誤りがあります（入力した内容は保存されています）".into(),
            serde_json::to_value(errors).unwrap_or_default(),
        ),
        ServiceError::InvalidProcedure(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidProcedure".into(),
            "the procedure definition is not valid".into(),
            "手続の定義に誤りがあります".into(),
            serde_json::to_value(problems).unwrap_or_default(),
        ),
        ServiceError::Transition(t) => {
            let status = match t {
                T::WrongActor { .. } => StatusCode::FORBIDDEN,
                T::ReasonRequired { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            (
                status,
                t.code().into(),
                t.message_en(),
                t.message_ja(),
                none,
            )
        }
        ServiceError::Chain(c) => {
            let status = match c {
                C::NotYourStep { .. } => StatusCode::FORBIDDEN,
                C::ReasonRequired => StatusCode::UNPROCESSABLE_ENTITY,
                C::InvalidDefinition(_) | C::ProgressMismatch => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::CONFLICT,
            };
            (
                status,
                c.code().into(),
                c.message_en(),
                c.message_ja(),
                none,
            )
        }
        ServiceError::Conflict { code, ja, en } => (
            StatusCode::CONFLICT,
            (*code).into(),
            en.clone(),
            ja.clone(),
            none,
        ),
        ServiceError::BadRequest { code, ja, en } => (
            StatusCode::BAD_REQUEST,
            (*code).into(),
            en.clone(),
            ja.clone(),
            none,
        ),
        ServiceError::Provider(_) => (
            StatusCode::BAD_GATEWAY,
            "PaymentProviderFailed".into(),
            "the payment service did not answer; nothing was charged, please try again".into(),
            "決済サービスに接続できませんでした。請求は発生していません。もう一度お試しください"
                .into(),
            none,
        ),
        ServiceError::Callback(_) => (
            StatusCode::UNAUTHORIZED,
            "CallbackRefused".into(),
            "the callback is not signed by the payment provider, or is stale".into(),
            "決済通知の署名が正しくないか、期限切れです".into(),
            none,
        ),
        ServiceError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError".into(),
            "an internal error occurred".into(),
            "内部エラーが発生しました".into(),
            none,
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            ApiError::Auth(auth) => return auth.into_response(),
            ApiError::Unreadable { status, detail } => {
                return problem(
                    status,
                    "UnreadableRequest",
                    &format!("the request cannot be read: {detail}"),
                    &format!("リクエストを読み取れません: {detail}"),
                    serde_json::Value::Null,
                )
            }
            ApiError::Service(error) => error,
        };
        match &error {
            ServiceError::Internal(message) | ServiceError::Provider(message) => {
                tracing::error!(error = %message, "applications service failure")
            }
            ServiceError::Callback(message) => {
                tracing::warn!(error = %message, "payment callback refused")
            }
            _ => {}
        }
        let (status, code, en, ja, errors) = parts(&error);
        problem(status, &code, &en, &ja, errors)
    }
}

/// An `application/problem+json` answer; `errors` (field by field) when not null.
fn problem(
    status: StatusCode,
    code: &str,
    en: &str,
    ja: &str,
    errors: serde_json::Value,
) -> Response {
    let mut body = json!({
        "type": format!("{PROBLEM_BASE}{code}"),
        "title": status.canonical_reason().unwrap_or(""),
        "status": status.as_u16(),
        "detail": en,
        "detail_ja": ja,
    });
    if !errors.is_null() {
        body["errors"] = errors;
    }
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// The caller as the service sees them in `tenant`: their name and roles there.
fn person(caller: &Caller, tenant: &str) -> Person {
    let (user_id, display_name) = match &caller.principal {
        Principal::User { username, .. } => (username.clone(), username.clone()),
        other => (other.actor(), other.actor()),
    };
    let mut roles: Vec<String> = caller
        .principal
        .roles_in(tenant)
        .map(|r| r.as_str().to_owned())
        .collect();
    if caller.principal.is_platform_admin() {
        roles.push("platform_admin".into());
    }
    Person {
        user_id,
        display_name,
        roles,
    }
}

/// Checks the policy table for `action` in `tenant` and returns the caller as a person.
async fn require(
    state: &AppState,
    extensions: &Extensions,
    tenant: &str,
    action: Action,
) -> Result<Person, AuthError> {
    let caller = caller_of(extensions);
    let record = state.identity.tenant(tenant).await?;
    if record.is_none() {
        return Err(AuthError::NotFound(format!("tenant {tenant}")));
    }
    state.identity.require(
        &caller.principal,
        action,
        Target::tenant(tenant, record.as_ref()),
    )?;
    Ok(person(&caller, tenant))
}

/// Whether the caller may do `action` in `tenant` (no error: for choosing a view).
async fn allowed(state: &AppState, caller: &Caller, tenant: &str, action: Action) -> bool {
    let Ok(record) = state.identity.tenant(tenant).await else {
        return false;
    };
    state
        .identity
        .decide(
            &caller.principal,
            action,
            Target::tenant(tenant, record.as_ref()),
        )
        .is_allowed()
}

/// The official name of a tenant for documents (焼津市), or its code.
async fn tenant_name(state: &AppState, tenant: &str) -> String {
    match state.identity.tenant(tenant).await {
        Ok(Some(record)) => record.name,
        _ => tenant.to_owned(),
    }
}

/// Who acted, as the audit log names actors (`user:<id>`, `key:<id>`).
fn audit_actor(extensions: &Extensions) -> String {
    caller_of(extensions).principal.actor()
}

/// A signed-in caller (applicants must sign in).
fn signed_in(extensions: &Extensions) -> Result<Caller, AuthError> {
    let caller = caller_of(extensions);
    if caller.principal.is_anonymous() {
        return Err(AuthError::Unauthenticated);
    }
    Ok(caller)
}
