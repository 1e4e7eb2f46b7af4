//! How renkei is registered with the OpenID provider: client id, redirect URI,
//! scopes and how it authenticates at the token endpoint.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::error::OidcError;
use crate::flow::random_token;

/// Scopes asked for when the configuration names none.
pub const DEFAULT_SCOPES: &str = "openid profile email";

/// `client_assertion_type` of RFC 7523 for `private_key_jwt`.
pub(crate) const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a `private_key_jwt` assertion stays valid.
const ASSERTION_LIFETIME_SECONDS: u64 = 60;

/// The relying party's registration at one provider.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The `client_id` the provider gave renkei.
    pub client_id: String,
    /// The callback URL, exactly as registered at the provider.
    pub redirect_uri: String,
    /// Space-separated scopes; must contain `openid`.
    pub scopes: String,
    /// How the client authenticates at the token endpoint.
    pub auth: ClientAuth,
}

impl ClientConfig {
    /// A configuration with the [`DEFAULT_SCOPES`].
    pub fn new(
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        auth: ClientAuth,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scopes: DEFAULT_SCOPES.to_owned(),
            auth,
        }
    }
}

/// Client authentication at the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret (RFC 6749 2.3.1).
    SecretBasic {
        /// The client secret.
        secret: String,
    },
    /// `private_key_jwt`: a JWT signed with the client's private key (OpenID Connect Core 9).
    PrivateKeyJwt {
        /// PKCS#8 PEM of an EC P-256 key (signs ES256) or an RSA key (signs RS256).
        key_pem: String,
        /// `kid` put in the assertion header, when the provider needs it to pick the key.
        key_id: Option<String>,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SecretBasic { .. } => f
                .debug_struct("SecretBasic")
                .field("secret", &"<redacted>")
                .finish(),
            Self::PrivateKeyJwt { key_id, .. } => f
                .debug_struct("PrivateKeyJwt")
                .field("key_pem", &"<redacted>")
                .field("key_id", key_id)
                .finish(),
        }
    }
}

/// What client authentication adds to a token request.
pub(crate) enum TokenRequestAuth {
    /// The value of the `Authorization` header.
    BasicHeader(String),
    /// Extra form fields.
    FormFields(Vec<(&'static str, String)>),
}

#[derive(Serialize)]
struct ClientAssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

impl ClientConfig {
    /// The authentication for one request to `token_endpoint`.
    pub(crate) fn token_request_auth(
        &self,
        token_endpoint: &str,
    ) -> Result<TokenRequestAuth, OidcError> {
        match &self.auth {
            ClientAuth::SecretBasic { secret } => {
                let user = form_urlencode(&self.client_id);
                let password = form_urlencode(secret);
                let credentials = STANDARD.encode(format!("{user}:{password}"));
                Ok(TokenRequestAuth::BasicHeader(format!(
                    "Basic {credentials}"
                )))
            }
            ClientAuth::PrivateKeyJwt { key_pem, key_id } => {
                let assertion =
                    self.client_assertion(key_pem, key_id.as_deref(), token_endpoint)?;
                Ok(TokenRequestAuth::FormFields(vec![
                    ("client_id", self.client_id.clone()),
                    (
                        "client_assertion_type",
                        JWT_BEARER_ASSERTION_TYPE.to_owned(),
                    ),
                    ("client_assertion", assertion),
                ]))
            }
        }
    }

    fn client_assertion(
        &self,
        key_pem: &str,
        key_id: Option<&str>,
        token_endpoint: &str,
    ) -> Result<String, OidcError> {
        let (algorithm, key) = signing_key_from_pem(key_pem)?;
        let now = unix_now();
        let claims = ClientAssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: token_endpoint,
            jti: random_token(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECONDS,
        };
        let mut header = Header::new(algorithm);
        header.kid = key_id.map(str::to_owned);
        // The library's error names the failure, never the key material.
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|error| OidcError::ClientKey(error.to_string()))
    }
}

/// Reads a PKCS#8 PEM private key: EC P-256 signs ES256, RSA signs RS256.
fn signing_key_from_pem(key_pem: &str) -> Result<(Algorithm, EncodingKey), OidcError> {
    if let Ok(key) = EncodingKey::from_ec_pem(key_pem.as_bytes()) {
        return Ok((Algorithm::ES256, key));
    }
    match EncodingKey::from_rsa_pem(key_pem.as_bytes()) {
        Ok(key) => Ok((Algorithm::RS256, key)),
        Err(_) => Err(OidcError::ClientKey(
            "not a PKCS#8 PEM EC P-256 or RSA private key".to_owned(),
        )),
    }
}

fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets_or_keys() {
        let secret = ClientAuth::SecretBasic {
            secret: "s3cr3t-value".to_owned(),
        };
        let key = ClientAuth::PrivateKeyJwt {
            key_pem: "-----BEGIN PRIVATE KEY-----abc".to_owned(),
            key_id: Some("k1".to_owned()),
        };
        let client = ClientConfig::new("renkei", "https://renkei.example/cb", secret);
        let printed = format!("{client:?} {key:?}");
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
        assert!(!printed.contains("BEGIN PRIVATE KEY"), "{printed}");
        assert!(printed.contains("k1"));
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_before_base64() {
        let client = ClientConfig::new(
            "id with:colon",
            "https://x/cb",
            ClientAuth::SecretBasic {
                secret: "p&ss word".to_owned(),
            },
        );
        let Ok(TokenRequestAuth::BasicHeader(header)) =
            client.token_request_auth("https://x/token")
        else {
            panic!("expected a Basic header");
        };
        let encoded = header.strip_prefix("Basic ").expect("Basic scheme");
        let decoded = String::from_utf8(STANDARD.decode(encoded).expect("base64")).expect("utf-8");
        assert_eq!(decoded, "id+with%3Acolon:p%26ss+word");
    }

    /// A throwaway RSA key made for this test only (PKCS#8 PEM), and its public half.
    const RSA_TEST_KEY: &str = include_str!("../tests/fixtures/rsa_client_key.pem");
    const RSA_TEST_PUBLIC_KEY: &str = include_str!("../tests/fixtures/rsa_client_public.pem");

    #[test]
    fn rsa_key_signs_an_rs256_assertion_with_the_claims_of_rfc_7523() {
        let client = ClientConfig::new(
            "renkei",
            "https://x/cb",
            ClientAuth::PrivateKeyJwt {
                key_pem: RSA_TEST_KEY.to_owned(),
                key_id: Some("rsa-1".to_owned()),
            },
        );
        let Ok(TokenRequestAuth::FormFields(fields)) =
            client.token_request_auth("https://idp.example/token")
        else {
            panic!("expected assertion form fields");
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(
            field("client_assertion_type").as_deref(),
            Some(JWT_BEARER_ASSERTION_TYPE)
        );
        assert_eq!(field("client_id").as_deref(), Some("renkei"));
        let assertion = field("client_assertion").expect("assertion");

        let header = jsonwebtoken::decode_header(&assertion).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("rsa-1"));
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_TEST_PUBLIC_KEY.as_bytes())
            .expect("public key");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://idp.example/token"]);
        validation.set_issuer(&["renkei"]);
        validation.sub = Some("renkei".to_owned());
        let claims = jsonwebtoken::decode::<serde_json::Value>(&assertion, &key, &validation)
            .expect("valid assertion")
            .claims;
        let issued_at = claims["iat"].as_u64().expect("iat");
        assert_eq!(
            claims["exp"].as_u64(),
            Some(issued_at + ASSERTION_LIFETIME_SECONDS)
        );
        assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 32));
    }

    #[test]
    fn unusable_private_key_is_a_typed_error_without_the_key() {
        let client = ClientConfig::new(
            "renkei",
            "https://x/cb",
            ClientAuth::PrivateKeyJwt {
                key_pem: "not a key SECRETMATERIAL".to_owned(),
                key_id: None,
            },
        );
        match client.token_request_auth("https://x/token") {
            Err(error @ OidcError::ClientKey(_)) => {
                assert!(!error.to_string().contains("SECRETMATERIAL"))
            }
            other => panic!("expected ClientKey error, got {:?}", other.err()),
        }
    }
}
