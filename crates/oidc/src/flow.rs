//! The two halves of a sign-in: [`Provider::begin`] before the browser goes to
//! the provider, [`Provider::complete`] when it comes back.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::client::{unix_now, ClientConfig, TokenRequestAuth};
use crate::error::OidcError;
use crate::id_token::{validate_id_token, IdTokenClaims};
use crate::provider::Provider;

/// What the server keeps between [`Provider::begin`] and [`Provider::complete`],
/// in a short-lived server-side record keyed by [`PendingSignIn::state`].
///
/// It holds the PKCE verifier, so it must not be handed to the browser.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    code_verifier: String,
    redirect_uri: String,
    created_at: u64,
}

impl PendingSignIn {
    /// The `state` sent with the authorization request.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The `nonce` sent with the authorization request.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// When the sign-in began, in seconds since the Unix epoch (to expire old records).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("code_verifier", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: Option<String>,
}

impl Provider {
    /// Starts a sign-in: the URL to redirect the browser to, and what to keep until it comes back.
    pub fn begin(&self, client: &ClientConfig) -> (Url, PendingSignIn) {
        let pending = PendingSignIn {
            state: random_token(),
            nonce: random_token(),
            code_verifier: random_token(),
            redirect_uri: client.redirect_uri.clone(),
            created_at: unix_now(),
        };
        let mut url = self.metadata().authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &pending.redirect_uri)
            .append_pair("scope", &client.scopes)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pkce_challenge(&pending.code_verifier))
            .append_pair("code_challenge_method", "S256");
        (url, pending)
    }

    /// Finishes a sign-in with the `state` and `code` the browser came back with:
    /// checks the state (before any network call), exchanges the code and validates the ID token.
    pub async fn complete(
        &self,
        client: &ClientConfig,
        pending: &PendingSignIn,
        returned_state: &str,
        code: &str,
        http: &reqwest::Client,
    ) -> Result<IdTokenClaims, OidcError> {
        if !constant_time_eq(pending.state.as_bytes(), returned_state.as_bytes()) {
            return Err(OidcError::StateMismatch);
        }
        let id_token = self.exchange_code(client, pending, code, http).await?;
        validate_id_token(self, client, &pending.nonce, &id_token, http).await
    }

    async fn exchange_code(
        &self,
        client: &ClientConfig,
        pending: &PendingSignIn,
        code: &str,
        http: &reqwest::Client,
    ) -> Result<String, OidcError> {
        let token_endpoint = &self.metadata().token_endpoint;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", pending.redirect_uri.clone()),
            ("code_verifier", pending.code_verifier.clone()),
        ];
        let mut request = http
            .post(token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match client.token_request_auth(token_endpoint.as_str())? {
            TokenRequestAuth::BasicHeader(value) => {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            TokenRequestAuth::FormFields(fields) => form.extend(fields),
        }
        let response = request.form(&form).send().await?;
        let status = response.status();
        if !status.is_success() {
            // The body of an error answer is read only for its `error` code.
            let error = response
                .json::<TokenErrorResponse>()
                .await
                .ok()
                .and_then(|body| body.error);
            return Err(OidcError::TokenEndpoint {
                status: status.as_u16(),
                error,
            });
        }
        let body: TokenResponse = response.json().await.map_err(|_| {
            OidcError::TokenResponse("body is not a JSON token response".to_owned())
        })?;
        body.id_token.ok_or_else(|| {
            OidcError::TokenResponse("no id_token (is the openid scope asked for?)".to_owned())
        })
    }
}

/// 32 random bytes, base64url without padding: 43 characters.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of RFC 7636 4.2.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Compares without stopping at the first difference, so timing does not tell how much matched.
pub(crate) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            pkce_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_long_enough_and_differ() {
        let first = random_token();
        assert!(first.len() >= 43);
        assert_ne!(first, random_token());
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn pending_sign_in_round_trips_and_hides_the_verifier_in_debug() {
        let pending = PendingSignIn {
            state: "s".to_owned(),
            nonce: "n".to_owned(),
            code_verifier: "VERIFIER-SECRET".to_owned(),
            redirect_uri: "https://x/cb".to_owned(),
            created_at: 1,
        };
        let json = serde_json::to_string(&pending).expect("serialize");
        let back: PendingSignIn = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, pending);
        assert!(!format!("{pending:?}").contains("VERIFIER-SECRET"));
    }
}
