//! Signing in and out: `/auth/login` with a user name and password, `/auth/logout`,
//! `/auth/me`, and OpenID Connect at `/auth/oidc/start` and `/auth/oidc/callback`.
//! A successful sign-in starts a server-side session whose random token goes in an
//! HttpOnly, SameSite=Lax cookie (Secure under HTTPS); the answer carries the CSRF
//! token the browser must echo on unsafe requests.

use super::middleware::caller_of;
use super::{AuthError, Credential, Identity, SESSION_COOKIE};
use crate::AppState;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use identity::account::{self, SignIn, User};
use identity::secret::{sha256_hex, SessionRecord};
use identity::Principal;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/oidc/start", get(oidc_start))
        .route("/oidc/callback", get(oidc_callback))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    Json(form): Json<LoginForm>,
) -> Result<Response, AuthError> {
    let identity = &state.identity;
    let store = identity.store();
    let now = Utc::now();
    let username = account::normalize_username(&form.username);
    let Some(mut user) = store.find_user_by_username(&username).await? else {
        identity::password::verify_nothing(&form.password);
        return Err(AuthError::SignInRefused);
    };
    let outcome = account::sign_in(&mut user, &form.password, now, identity.lockout());
    store.update_user(&user).await?;
    match outcome {
        SignIn::Accepted => {}
        SignIn::JustLocked { until } => {
            identity
                .audit(
                    "system",
                    None,
                    "account.lock",
                    &format!("user:{}", user.id),
                    json!({"until": until}),
                )
                .await?;
            store.delete_sessions_of(&user.id).await?;
            return Err(AuthError::SignInRefused);
        }
        SignIn::Locked { .. } | SignIn::WrongPassword | SignIn::Disabled | SignIn::NoPassword => {
            return Err(AuthError::SignInRefused)
        }
    }
    start_session(identity, &user, "password").await
}

/// Starts a session for `user` and answers with its cookie and CSRF token.
async fn start_session(
    identity: &Identity,
    user: &User,
    method: &str,
) -> Result<Response, AuthError> {
    let (session, token) = SessionRecord::start(&user.id, Utc::now(), identity.session_lifetime());
    identity.store().create_session(&session).await?;
    identity
        .audit(
            &format!("user:{}", user.id),
            None,
            "session.start",
            &format!("user:{}", user.id),
            json!({"method": method}),
        )
        .await?;
    let grants = identity.store().grants_of(&user.id).await?;
    let body = json!({
        "user": {"id": user.id, "username": user.username, "displayName": user.display_name},
        "grants": grants,
        "csrfToken": session.csrf_token,
    });
    let mut response = (StatusCode::OK, Json(body)).into_response();
    set_cookie(
        &mut response,
        identity,
        &token,
        identity.session_lifetime().num_seconds(),
    );
    Ok(response)
}

fn set_cookie(response: &mut Response, identity: &Identity, value: &str, max_age: i64) {
    let secure = if identity.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

async fn logout(State(state): State<AppState>, request: Request) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    if let Credential::Session { token_hash, .. } = &caller.credential {
        state.identity.store().delete_session(token_hash).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut response, &state.identity, "", 0);
    Ok(response)
}

async fn me(State(state): State<AppState>, request: Request) -> Result<Response, AuthError> {
    let caller = caller_of(request.extensions());
    let body = match &caller.principal {
        Principal::Anonymous | Principal::Operator => return Err(AuthError::Unauthenticated),
        Principal::ApiKey {
            key_id,
            grant,
            scopes,
        } => json!({"apiKey": key_id, "grants": [grant], "scopes": scopes}),
        Principal::User {
            user_id,
            username,
            grants,
        } => {
            let user = state.identity.store().get_user(user_id).await?;
            let csrf = match &caller.credential {
                Credential::Session { csrf_token, .. } => Some(csrf_token.clone()),
                _ => None,
            };
            json!({
                "user": {"id": user_id, "username": username, "displayName": user.map(|u| u.display_name)},
                "grants": grants,
                "csrfToken": csrf,
            })
        }
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
struct StartParams {
    return_to: Option<String>,
}

/// Where to go after sign-in: a path on this site only (an absolute or
/// protocol-relative URL would make renkei an open redirect).
fn safe_return_path(return_to: Option<&str>) -> String {
    match return_to {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn oidc_start(
    State(state): State<AppState>,
    Query(params): Query<StartParams>,
) -> Result<Response, AuthError> {
    let oidc = state
        .identity
        .oidc()
        .ok_or_else(|| AuthError::NotFound("OpenID Connect sign-in".into()))?;
    let (url, pending) = oidc.begin().await.map_err(|e| {
        tracing::warn!(error = %e, "cannot start an OIDC sign-in");
        AuthError::OidcFailed
    })?;
    let record =
        json!({"pending": pending, "returnTo": safe_return_path(params.return_to.as_deref())});
    let expires = Utc::now() + chrono::Duration::minutes(super::oidc::PENDING_LIFETIME_MINUTES);
    state
        .identity
        .store()
        .put_pending_sign_in(&sha256_hex(pending.state()), &record.to_string(), expires)
        .await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Deserialize)]
struct Callback {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

async fn oidc_callback(
    State(state): State<AppState>,
    Query(params): Query<Callback>,
) -> Result<Response, AuthError> {
    let identity = &state.identity;
    let oidc = identity
        .oidc()
        .ok_or_else(|| AuthError::NotFound("OpenID Connect sign-in".into()))?;
    let returned_state = params.state.ok_or(AuthError::OidcFailed)?;
    // Taken, so a replayed callback finds nothing.
    let record = identity
        .store()
        .take_pending_sign_in(&sha256_hex(&returned_state))
        .await?
        .ok_or(AuthError::OidcFailed)?;
    if let Some(error) = params.error {
        tracing::info!(%error, "the identity provider refused the sign-in");
        return Err(AuthError::OidcFailed);
    }
    let code = params.code.ok_or(AuthError::OidcFailed)?;
    let record: serde_json::Value =
        serde_json::from_str(&record).map_err(|e| AuthError::Internal(e.to_string()))?;
    let pending = serde_json::from_value(record["pending"].clone())
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    let claims = oidc
        .complete(&pending, &returned_state, &code)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "OIDC sign-in refused");
            AuthError::OidcFailed
        })?;
    let user = match identity
        .store()
        .find_user_by_oidc(&claims.iss, &claims.sub)
        .await?
    {
        Some(user) => user,
        None => {
            // A first sign-in makes an account without roles; a tenant administrator
            // grants them. Accounts are matched by issuer and subject only, never by
            // e-mail, so nobody takes over a local account by naming its address.
            let name = format!(
                "oidc-{}",
                &sha256_hex(&format!("{}|{}", claims.iss, claims.sub))[..16]
            );
            let mut user = User::new(&name, claims.name.clone().unwrap_or_default(), Utc::now());
            user.oidc_issuer = Some(claims.iss.clone());
            user.oidc_subject = Some(claims.sub.clone());
            user.email = claims
                .email
                .clone()
                .filter(|_| claims.email_verified == Some(true));
            identity.store().create_user(&user).await?;
            user
        }
    };
    if user.disabled {
        return Err(AuthError::OidcFailed);
    }
    let mut response = start_session(identity, &user, "oidc").await?;
    let return_to = safe_return_path(record["returnTo"].as_str());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(location) = HeaderValue::from_str(&return_to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_return_path(Some("/review?tenant=222127")),
            "/review?tenant=222127"
        );
        for evil in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_path(Some(evil)), "/", "{evil}");
        }
        assert_eq!(safe_return_path(None), "/");
    }
}
