//! The refusals of authentication, authorisation and administration, each mapped to
//! one status and a stable problem type (`urn:renkei:problem:<Code>`), with the detail
//! in English and Japanese. A storage failure is logged and answered without its text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use identity::policy::Denial;
use serde_json::json;
use store::StoreError;

pub const PROBLEM_BASE: &str = "urn:renkei:problem:";

#[derive(Debug)]
pub enum AuthError {
    /// No credentials, and the action needs them (401).
    Unauthenticated,
    /// Credentials were presented and are not valid: unknown, wrong, revoked, expired
    /// (401). Which of these is never said.
    InvalidCredentials,
    /// Wrong user name or password at sign-in (401), the same words whatever the cause.
    SignInRefused,
    /// Authenticated, but not allowed (403).
    Forbidden(String),
    TenantSuspended(String),
    /// An unsafe request with a session cookie lacked the right CSRF token (403).
    CsrfTokenMissing,
    NotFound(String),
    Conflict(String),
    BadRequest {
        en: String,
        ja: String,
    },
    /// Sign-in through OIDC failed; the reason is logged, not shown.
    OidcFailed,
    Internal(String),
}

impl AuthError {
    /// The refusal for a policy denial in `tenant` (named in the answer only when the
    /// tenant itself is the reason).
    pub fn from_denial(denial: Denial, tenant: Option<&str>) -> AuthError {
        match denial {
            Denial::Unauthenticated => AuthError::Unauthenticated,
            Denial::TenantSuspended => AuthError::TenantSuspended(tenant.unwrap_or("").to_owned()),
            Denial::MissingScope(scope) => {
                AuthError::Forbidden(format!("this API key lacks the scope '{scope}'"))
            }
            Denial::Forbidden => AuthError::Forbidden("your roles do not allow this here".into()),
        }
    }

    pub fn bad_request(en: impl Into<String>, ja: impl Into<String>) -> AuthError {
        AuthError::BadRequest {
            en: en.into(),
            ja: ja.into(),
        }
    }

    /// Status, problem code, English and Japanese detail.
    fn parts(&self) -> (StatusCode, &'static str, String, String) {
        match self {
            AuthError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "Unauthenticated",
                "sign in or send an API key (Authorization: Bearer …)".into(),
                "サインインするか、APIキーを送信してください".into(),
            ),
            AuthError::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "InvalidCredentials",
                "the credentials are not valid (unknown, revoked or expired)".into(),
                "認証情報が無効です(不明、失効、または期限切れ)".into(),
            ),
            AuthError::SignInRefused => (
                StatusCode::UNAUTHORIZED,
                "SignInRefused",
                "wrong user name or password (after 5 failures an account is locked for 15 minutes)".into(),
                "ユーザー名またはパスワードが違います(5回失敗すると15分間ロックされます)".into(),
            ),
            AuthError::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("not allowed: {why}"),
                "この操作は許可されていません".into(),
            ),
            AuthError::TenantSuspended(code) => (
                StatusCode::FORBIDDEN,
                "TenantSuspended",
                format!("tenant {code} is suspended"),
                "この団体の利用は停止されています".into(),
            ),
            AuthError::CsrfTokenMissing => (
                StatusCode::FORBIDDEN,
                "CsrfTokenMissing",
                "a request signed in with a session cookie needs the X-CSRF-Token header".into(),
                "CSRFトークンがないか、正しくありません".into(),
            ),
            AuthError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{what} was not found"),
                "見つかりません".into(),
            ),
            AuthError::Conflict(what) => (
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{what} already exists"),
                "すでに存在します".into(),
            ),
            AuthError::BadRequest { en, ja } => {
                (StatusCode::BAD_REQUEST, "BadRequest", en.clone(), ja.clone())
            }
            AuthError::OidcFailed => (
                StatusCode::UNAUTHORIZED,
                "OidcSignInFailed",
                "sign-in with the identity provider failed; please start again".into(),
                "外部認証でのサインインに失敗しました。もう一度お試しください".into(),
            ),
            AuthError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "an internal error occurred".into(),
                "内部エラーが発生しました".into(),
            ),
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (status, code, en, ja) = self.parts();
        write!(f, "{} {code}: {en} / {ja}", status.as_u16())
    }
}

impl std::error::Error for AuthError {}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::AlreadyExists(what) => AuthError::Conflict(what),
            StoreError::NotFound(what) => AuthError::NotFound(what),
            other => AuthError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        if let AuthError::Internal(message) = &self {
            tracing::error!(error = %message, "identity storage failure");
        }
        let (status, code, en, ja) = self.parts();
        let body = json!({
            "type": format!("{PROBLEM_BASE}{code}"),
            "title": status.canonical_reason().unwrap_or(""),
            "status": status.as_u16(),
            "detail": en,
            "detail_ja": ja,
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"renkei\""),
            );
        }
        response
    }
}
