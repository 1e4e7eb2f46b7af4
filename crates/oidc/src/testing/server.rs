//! The HTTP side of the test provider: discovery, JWKS, authorization and token endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{json, Value};

use super::{lock, new_signing_key, CodeGrant, Misbehaviour, ProviderState, RegisteredAuth};
use crate::client::{unix_now, JWT_BEARER_ASSERTION_TYPE};
use crate::flow::{constant_time_eq, pkce_challenge, random_token};

type Shared = Arc<Mutex<ProviderState>>;

/// How long ago a token issued under [`Misbehaviour::Expired`] expired.
const EXPIRED_AGO_SECONDS: u64 = 600;

pub(super) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(shared)
}

pub(super) fn token_endpoint(issuer: &str) -> String {
    format!("{issuer}/token")
}

async fn discovery(State(shared): State<Shared>) -> Json<Value> {
    let issuer = lock(&shared).issuer.clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": token_endpoint(&issuer),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code"],
    }))
}

async fn jwks(State(shared): State<Shared>) -> Json<Value> {
    let mut state = lock(&shared);
    state.jwks_requests += 1;
    Json(json!({ "keys": [state.signing_key.public_jwk.clone()] }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = Json(json!({ "error": error, "error_description": description }));
    if status == StatusCode::UNAUTHORIZED {
        (
            status,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"test-provider\"")],
            body,
        )
            .into_response()
    } else {
        (status, body).into_response()
    }
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

async fn authorize(
    State(shared): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str);
    let mut state = lock(&shared);
    // Until the redirect URI is known good, errors go to the user agent, never to a redirect.
    let (Some(client_id), Some(redirect_uri)) = (param("client_id"), param("redirect_uri")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and redirect_uri are required",
        );
    };
    let Some(client) = state.clients.get(client_id) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "unknown client_id",
        );
    };
    if client.redirect_uri != redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not the registered one",
        );
    }
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not a URL",
        );
    };
    let refusal = if param("response_type") != Some("code") {
        Some((
            "unsupported_response_type",
            "only response_type=code is supported",
        ))
    } else if param("code_challenge_method") != Some("S256")
        || param("code_challenge").is_none_or(str::is_empty)
    {
        Some((
            "invalid_request",
            "PKCE with code_challenge_method=S256 is required",
        ))
    } else if !param("scope")
        .unwrap_or_default()
        .split(' ')
        .any(|scope| scope == "openid")
    {
        Some(("invalid_scope", "the openid scope is required"))
    } else {
        None
    };
    {
        let mut query = location.query_pairs_mut();
        match refusal {
            Some((error, description)) => {
                query
                    .append_pair("error", error)
                    .append_pair("error_description", description);
            }
            None => {
                let code = random_token();
                let grant = CodeGrant {
                    client_id: client_id.to_owned(),
                    redirect_uri: redirect_uri.to_owned(),
                    code_challenge: param("code_challenge").unwrap_or_default().to_owned(),
                    nonce: param("nonce").map(str::to_owned),
                    user: state.user.clone(),
                    issued_at: Instant::now(),
                };
                state.codes.insert(code.clone(), grant);
                query.append_pair("code", &code);
            }
        }
        if let Some(client_state) = param("state") {
            query.append_pair("state", client_state);
        }
    }
    redirect(location.as_str())
}

async fn token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    let mut state = lock(&shared);
    state.token_requests += 1;
    if field("grant_type") != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is supported",
        );
    }
    let client_id = match authenticate_client(&mut state, &headers, &form) {
        Ok(client_id) => client_id,
        Err(description) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    };
    // A code is spent by its first exchange attempt, good or bad.
    let Some(grant) = field("code").and_then(|code| state.codes.remove(code)) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or already used code",
        );
    };
    if grant.client_id != client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code was issued to another client",
        );
    }
    if grant.issued_at.elapsed() > state.options.code_lifetime {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code expired");
    }
    if field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let Some(verifier) = field("code_verifier") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code_verifier is required",
        );
    };
    if !constant_time_eq(
        pkce_challenge(verifier).as_bytes(),
        grant.code_challenge.as_bytes(),
    ) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code_verifier does not match code_challenge",
        );
    }
    let id_token = issue_id_token(&state, &grant);
    let lifetime = state.options.id_token_lifetime.as_secs();
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": random_token(),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "id_token": id_token,
        })),
    )
        .into_response()
}

/// Authenticates the client of a token request; answers its id, or why it is refused.
fn authenticate_client(
    state: &mut ProviderState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, &'static str> {
    let form_client_id = form.get("client_id").map(String::as_str);
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let (client_id, secret) = basic_credentials(
            authorization
                .to_str()
                .map_err(|_| "bad Authorization header")?,
        )
        .ok_or("bad Basic credentials")?;
        if form_client_id.is_some_and(|form_id| form_id != client_id) {
            return Err("client_id differs from the Basic credentials");
        }
        return match state.clients.get(&client_id).map(|client| &client.auth) {
            Some(RegisteredAuth::Secret(registered))
                if constant_time_eq(registered.as_bytes(), secret.as_bytes()) =>
            {
                Ok(client_id)
            }
            _ => Err("client authentication failed"),
        };
    }
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER_ASSERTION_TYPE)
        {
            return Err("unsupported client_assertion_type");
        }
        let client_id = match form_client_id {
            Some(client_id) => client_id.to_owned(),
            None => unverified_issuer(assertion).ok_or("client assertion names no issuer")?,
        };
        let Some(RegisteredAuth::PublicJwk(public_jwk)) =
            state.clients.get(&client_id).map(|client| &client.auth)
        else {
            return Err("client authentication failed");
        };
        let audience = token_endpoint(&state.issuer);
        let assertion_id = verify_client_assertion(assertion, public_jwk, &client_id, &audience)?;
        if !state.used_assertion_ids.insert(assertion_id) {
            return Err("client assertion was already used");
        }
        return Ok(client_id);
    }
    Err("client authentication is required")
}

/// Decodes `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 2.3.1).
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((form_urldecode(user), form_urldecode(password)))
}

fn form_urldecode(component: &str) -> String {
    // A lone component parses as a key without value; `&` and `=` arrive percent-encoded.
    url::form_urlencoded::parse(component.as_bytes())
        .next()
        .map(|(decoded, _)| decoded.into_owned())
        .unwrap_or_default()
}

fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = URL_SAFE_NO_PAD.decode(assertion.split('.').nth(1)?).ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Verifies a `private_key_jwt` assertion; answers its `jti`.
fn verify_client_assertion(
    assertion: &str,
    public_jwk: &Value,
    client_id: &str,
    audience: &str,
) -> Result<String, &'static str> {
    let refused = "client assertion is not valid";
    let jwk: Jwk =
        serde_json::from_value(public_jwk.clone()).map_err(|_| "registered JWK is not usable")?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refused)?;
    if !matches!(
        header.alg,
        Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256
    ) {
        return Err(refused);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "registered JWK is not usable")?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|_| refused)?
        .claims;
    claims
        .get("jti")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(refused)
}

/// Signs the ID token for a grant, flawed as the current misbehaviour asks.
fn issue_id_token(state: &ProviderState, grant: &CodeGrant) -> String {
    let now = unix_now();
    let lifetime = state.options.id_token_lifetime.as_secs();
    let misbehaviour = state.misbehaviour;
    let (issued_at, expires_at) = if misbehaviour == Some(Misbehaviour::Expired) {
        // Well past any clock leeway.
        let expired_at = now.saturating_sub(EXPIRED_AGO_SECONDS);
        (expired_at.saturating_sub(lifetime), expired_at)
    } else {
        (now, now + lifetime)
    };
    let mut claims = json!({
        "iss": if misbehaviour == Some(Misbehaviour::WrongIssuer) { "https://evil.example" } else { state.issuer.as_str() },
        "sub": grant.user.sub,
        "aud": if misbehaviour == Some(Misbehaviour::WrongAudience) { "another-client" } else { grant.client_id.as_str() },
        "exp": expires_at,
        "iat": issued_at,
        "auth_time": issued_at,
        "email": grant.user.email,
        "email_verified": true,
        "name": grant.user.name,
        "preferred_username": grant.user.preferred_username,
    });
    let nonce = match misbehaviour {
        Some(Misbehaviour::WrongNonce) => Some("not-the-nonce-that-was-sent".to_owned()),
        _ => grant.nonce.clone(),
    };
    if let Some(nonce) = nonce {
        claims["nonce"] = Value::String(nonce);
    }
    match misbehaviour {
        Some(Misbehaviour::AlgNone) => {
            let header = json!({ "alg": "none", "typ": "JWT", "kid": state.signing_key.key_id });
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        }
        Some(Misbehaviour::SignWithUnknownKey) => sign(&new_signing_key(), &claims),
        _ => sign(&state.signing_key, &claims),
    }
}

fn sign(key: &super::SigningKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.key_id.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding_key)
        .expect("signing with a fresh P-256 key succeeds")
}
