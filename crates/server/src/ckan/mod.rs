//! The CKAN Action API face of the catalog: `/api/3/action/{action}` (and
//! `/api/action/{action}`), by GET with query parameters or POST with a JSON,
//! form or multipart body, answered in CKAN's envelope
//! `{"help", "success", "result"}` or `{"help", "success": false, "error":
//! {"__type", …}}` with the status codes CKAN uses. Handlers read parameters,
//! call `catalog`, and render with `catalog::ckan`; the one error table is
//! [`CkanError`]'s `IntoResponse`.

mod actions;
mod datastore;
mod dcat;
pub mod harvest;
mod params;
mod publish;
mod tokens;
mod upload;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use catalog::service::{Access, CatalogError};
use identity::policy::{Action, Decision, Target};
use identity::principal::Principal;
use identity::tenant::TenantRecord;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::middleware::caller_of;
use crate::AppState;

pub use params::Params;
pub(crate) use upload::write_resource_from_file;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/3/action/{action}", any(dispatch))
        .route("/api/action/{action}", any(dispatch))
        // Uploads stream to disk under `max_upload_bytes` and other bodies are read
        // under `max_body_bytes` by `Params::read`; axum's own 2 MB default would
        // refuse real files first.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .route(
            "/dataset/resource/{resource_id}/download/{file_name}",
            axum::routing::get(upload::download),
        )
        .route("/catalog.jsonld", axum::routing::get(dcat::catalog_page))
        .route("/catalog.ttl", axum::routing::get(dcat::catalog_page))
        .route("/catalog.xml", axum::routing::get(dcat::catalog_page))
        .route("/catalog.rdf", axum::routing::get(dcat::catalog_page))
        .route("/dataset/{file}", axum::routing::get(dcat::dataset))
        .route(
            "/datastore/dump/{resource_id}",
            axum::routing::get(datastore::dump),
        )
        .route(
            catalog::publish::CONTEXT_PATH,
            axum::routing::get(publish::context),
        )
}

/// An Action API failure, by CKAN's error types.
#[derive(Debug)]
pub enum CkanError {
    /// 400 `Bad request` (unknown action, unreadable body or parameter).
    BadRequest(String),
    /// 404 `Not Found Error`.
    NotFound(String),
    /// 403 `Authorization Error`.
    NotAuthorized(String),
    /// 409 `Validation Error` with the field → messages dictionary.
    Validation(Map<String, Value>),
    /// 500, logged, never shown.
    Internal(String),
}

impl CkanError {
    pub fn field(field: &str, message: impl Into<String>) -> CkanError {
        let mut map = Map::new();
        map.insert(field.to_owned(), json!([message.into()]));
        CkanError::Validation(map)
    }
}

impl From<CatalogError> for CkanError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::NotFound(what) => CkanError::NotFound(format!("Not found: {what}")),
            CatalogError::Validation(fields) => {
                CkanError::Validation(fields.into_iter().map(|(k, v)| (k, json!(v))).collect())
            }
            CatalogError::NotAuthorized(why) => CkanError::NotAuthorized(why),
            CatalogError::BadRequest(why) => CkanError::BadRequest(why),
            CatalogError::Store(e) => CkanError::Internal(e.to_string()),
        }
    }
}

impl From<crate::auth::AuthError> for CkanError {
    fn from(error: crate::auth::AuthError) -> Self {
        CkanError::Internal(format!("{error:?}"))
    }
}

/// A finished action: its result, or the error to answer with.
pub type ActionResult = Result<Value, CkanError>;

struct Answer {
    action: String,
    result: ActionResult,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let help = format!("/api/3/action/help_show?name={}", self.action);
        let (status, error) = match self.result {
            Ok(result) => {
                return Json(json!({"help": help, "success": true, "result": result}))
                    .into_response()
            }
            Err(CkanError::BadRequest(message)) => (
                StatusCode::BAD_REQUEST,
                json!({"__type": "Bad request", "message": message}),
            ),
            Err(CkanError::NotFound(message)) => (
                StatusCode::NOT_FOUND,
                json!({"__type": "Not Found Error", "message": message}),
            ),
            Err(CkanError::NotAuthorized(message)) => (
                StatusCode::FORBIDDEN,
                json!({"__type": "Authorization Error", "message": message}),
            ),
            Err(CkanError::Validation(mut fields)) => {
                fields.insert("__type".into(), json!("Validation Error"));
                (StatusCode::CONFLICT, Value::Object(fields))
            }
            Err(CkanError::Internal(detail)) => {
                tracing::error!(action = %self.action, error = %detail, "catalog action failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"__type": "Internal Server Error", "message": "Internal Server Error"}),
                )
            }
        };
        (
            status,
            Json(json!({"help": help, "success": false, "error": error})),
        )
            .into_response()
    }
}

async fn dispatch(
    State(state): State<AppState>,
    Path(action): Path<String>,
    request: Request,
) -> Response {
    let caller = caller_of(request.extensions());
    let spool = state.config.files_dir.join("incoming");
    let result = match Params::read(
        request,
        state.config.max_body_bytes,
        state.config.max_upload_bytes,
        &spool,
    )
    .await
    {
        Ok(params) => {
            let access = CallerAccess::new(&state, caller.principal).await;
            match access {
                Ok(access) => actions::run(&state, &action, params, &access).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    Answer { action, result }.into_response()
}

/// The caller's rights in the catalog, from the policy table.
pub struct CallerAccess {
    pub principal: Principal,
    identity: crate::auth::Identity,
    tenants: Arc<HashMap<String, TenantRecord>>,
}

impl CallerAccess {
    pub async fn new(state: &AppState, principal: Principal) -> Result<CallerAccess, CkanError> {
        Ok(CallerAccess {
            principal,
            identity: state.identity.clone(),
            tenants: state.catalog.organizations().await?,
        })
    }

    fn allows(&self, action: Action, org: &str) -> bool {
        let target = Target::tenant(org, self.tenants.get(org));
        matches!(
            self.identity.decide(&self.principal, action, target),
            Decision::Allow
        )
    }
}

impl Access for CallerAccess {
    fn can_read_private(&self, org: &str) -> bool {
        self.allows(Action::DatasetRead, org)
    }
    fn can_write(&self, org: &str) -> bool {
        self.allows(Action::DatasetWrite, org)
    }
    fn can_purge(&self) -> bool {
        self.principal.is_platform_admin()
    }
    fn user_id(&self) -> Option<String> {
        match &self.principal {
            Principal::User { user_id, .. } => Some(user_id.clone()),
            Principal::ApiKey { key_id, .. } => Some(format!("key:{key_id}")),
            _ => None,
        }
    }
}
