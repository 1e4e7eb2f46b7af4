//! The middleware that authenticates every request before routing: it puts the
//! [`Caller`] in the request's extensions, refuses presented credentials that are not
//! valid, and refuses unsafe requests of a cookie session that do not echo the
//! session's CSRF token (so another site cannot make a signed-in browser act).

use super::{AuthError, Caller, Credential, CSRF_HEADER};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use identity::secret::constant_time_eq;

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match state.identity.authenticate(request.headers()).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    if let Credential::Session { csrf_token, .. } = &caller.credential {
        if !is_safe(request.method()) && !csrf_echoed(&request, csrf_token) {
            return AuthError::CsrfTokenMissing.into_response();
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_echoed(request: &Request, expected: &str) -> bool {
    request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|presented| constant_time_eq(presented.as_bytes(), expected.as_bytes()))
}

/// The caller of a request (anonymous when the middleware did not run, as in unit
/// tests of a single router).
pub fn caller_of(extensions: &axum::http::Extensions) -> Caller {
    extensions
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}
