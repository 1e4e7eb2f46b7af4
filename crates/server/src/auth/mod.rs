//! Authentication and authorisation as the HTTP faces use them: who sent a request
//! (an API key in `Authorization: Bearer` or CKAN's headers, a session cookie, or
//! nobody), what the policy table of `identity` says they may do, and the audit
//! records of what staff did. Sign-in routes live in [`routes`], the request
//! middleware in [`middleware`], the refusals in [`error`].

pub mod error;
pub mod middleware;
pub mod oidc;
pub mod routes;

pub use error::AuthError;

use axum::http::{header, HeaderMap};
use chrono::Utc;
use identity::account::Lockout;
use identity::audit::AuditEvent;
use identity::policy::{self, Action, Decision, Settings, Target};
use identity::secret::{parse_api_key, sha256_hex};
use identity::{Principal, TenantRecord};
use serde_json::Value;
use std::sync::Arc;
use store::identity::SharedIdentityStore;

/// The cookie that carries a signed-in session.
pub const SESSION_COOKIE: &str = "renkei_session";
/// The header a browser sends the session's CSRF token back in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// CKAN clients send their API token here (or bare in `Authorization`).
pub const CKAN_KEY_HEADER: &str = "x-ckan-api-key";

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    None,
    ApiKey,
    /// A browser session; unsafe requests must echo its CSRF token.
    Session {
        token_hash: String,
        csrf_token: String,
    },
}

/// The authenticated sender of a request, put in the request's extensions by the
/// middleware for handlers to read.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub credential: Credential,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller {
            principal: Principal::Anonymous,
            credential: Credential::None,
        }
    }
}

/// Identity and access, shared by every handler.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedIdentityStore,
    settings: Settings,
    lockout: Lockout,
    session_lifetime: chrono::Duration,
    secure_cookies: bool,
    oidc: Option<oidc::OidcSignIn>,
}

impl Identity {
    pub fn new(
        store: SharedIdentityStore,
        config: &crate::config::Config,
        oidc: Option<oidc::OidcSignIn>,
    ) -> Identity {
        Identity {
            inner: Arc::new(Inner {
                store,
                settings: Settings {
                    anonymous_broker_access: config.allow_anonymous_writes,
                },
                lockout: Lockout::default(),
                session_lifetime: chrono::Duration::from_std(config.session_lifetime)
                    .unwrap_or(chrono::Duration::hours(8)),
                secure_cookies: config.https(),
                oidc,
            }),
        }
    }

    pub fn store(&self) -> &SharedIdentityStore {
        &self.inner.store
    }

    pub fn settings(&self) -> Settings {
        self.inner.settings
    }

    /// Works out who sent a request. Presented credentials that are not valid are an
    /// error (never a silent fall back to anonymous, which would hide a broken key).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        if let Some(token) = presented_key(headers)? {
            return self.authenticate_key(&token).await;
        }
        if let Some(token) = session_cookie(headers) {
            return self.authenticate_session(&token).await;
        }
        Ok(Caller::anonymous())
    }

    async fn authenticate_key(&self, token: &str) -> Result<Caller, AuthError> {
        let (id, secret) = parse_api_key(token).ok_or(AuthError::InvalidCredentials)?;
        let record = self
            .inner
            .store
            .get_api_key(id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        record
            .verify(secret, Utc::now())
            .map_err(|_| AuthError::InvalidCredentials)?;
        Ok(Caller {
            principal: Principal::ApiKey {
                key_id: record.id,
                grant: record.grant,
                scopes: record.scopes,
            },
            credential: Credential::ApiKey,
        })
    }

    async fn authenticate_session(&self, token: &str) -> Result<Caller, AuthError> {
        let token_hash = sha256_hex(token);
        let now = Utc::now();
        let session = self
            .inner
            .store
            .get_session(&token_hash)
            .await?
            .filter(|s| s.is_live(now))
            .ok_or(AuthError::InvalidCredentials)?;
        let user = self
            .inner
            .store
            .get_user(&session.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        let grants = self.inner.store.grants_of(&user.id).await?;
        Ok(Caller {
            principal: Principal::User {
                user_id: user.id,
                username: user.username,
                grants,
            },
            credential: Credential::Session {
                token_hash,
                csrf_token: session.csrf_token,
            },
        })
    }

    /// The registry record of a tenant, if it is registered.
    pub async fn tenant(&self, code: &str) -> Result<Option<TenantRecord>, AuthError> {
        if code.is_empty() {
            return Ok(None);
        }
        Ok(self.inner.store.get_tenant(code).await?)
    }

    /// Asks the policy table.
    pub fn decide(&self, principal: &Principal, action: Action, target: Target<'_>) -> Decision {
        policy::decide(principal, action, target, self.inner.settings)
    }

    /// Asks the policy table and turns a denial into the refusal to answer with.
    pub fn require(
        &self,
        principal: &Principal,
        action: Action,
        target: Target<'_>,
    ) -> Result<(), AuthError> {
        match self.decide(principal, action, target) {
            Decision::Allow => Ok(()),
            Decision::Deny(denial) => Err(AuthError::from_denial(denial, target.tenant)),
        }
    }

    /// Writes one record to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        tenant: Option<&str>,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<(), AuthError> {
        self.inner
            .store
            .append_audit(AuditEvent::new(tenant, actor, action, target, detail))
            .await?;
        Ok(())
    }

    pub fn lockout(&self) -> Lockout {
        self.inner.lockout
    }

    pub fn session_lifetime(&self) -> chrono::Duration {
        self.inner.session_lifetime
    }

    pub fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    pub fn oidc(&self) -> Option<&oidc::OidcSignIn> {
        self.inner.oidc.as_ref()
    }
}

/// The API key a request presents: `Authorization: Bearer <key>`, CKAN's bare
/// `Authorization: <key>`, or `X-CKAN-API-Key: <key>`.
fn presented_key(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| AuthError::InvalidCredentials)?
            .trim();
        let token = match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) => return Err(AuthError::InvalidCredentials),
            None => text,
        };
        return Ok(Some(token.to_owned()));
    }
    if let Some(value) = headers.get(CKAN_KEY_HEADER) {
        let text = value.to_str().map_err(|_| AuthError::InvalidCredentials)?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(None)
}

/// The session token from the `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys_are_read_as_bearer_ckan_bare_or_ckan_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers).unwrap(), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer rk_abc"),
        );
        assert_eq!(presented_key(&headers).unwrap().as_deref(), Some("rk_abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("rk_bare"));
        assert_eq!(presented_key(&headers).unwrap().as_deref(), Some("rk_bare"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        assert!(presented_key(&headers).is_err());
        headers.remove(header::AUTHORIZATION);
        headers.insert(CKAN_KEY_HEADER, HeaderValue::from_static("rk_ckan"));
        assert_eq!(presented_key(&headers).unwrap().as_deref(), Some("rk_ckan"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; renkei_session=tok123; lang=ja"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("tok123"));
    }
}
