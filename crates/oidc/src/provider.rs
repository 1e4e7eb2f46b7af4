//! One OpenID provider as the relying party sees it: its discovery metadata and
//! its signing keys (JWKS), cached and refetched once when a token names a key
//! the cache does not hold.

use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::OidcError;

/// Path of the discovery document below the issuer (OpenID Connect Discovery 4).
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The provider metadata renkei uses (OpenID Connect Discovery 3); the rest is kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer identifier; ID tokens carry it as `iss`.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: Url,
    /// Where the code is exchanged for tokens.
    pub token_endpoint: Url,
    /// Where the provider's public signing keys are.
    pub jwks_uri: Url,
    /// The user info endpoint, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<Url>,
    /// Where the browser is sent to sign out, when the provider supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<Url>,
    /// Every other field of the discovery document.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A discovered provider. Cloning is cheap and clones share the JWKS cache.
#[derive(Debug, Clone)]
pub struct Provider {
    metadata: Arc<ProviderMetadata>,
    signing_keys: Arc<RwLock<JwkSet>>,
}

impl Provider {
    /// Fetches `{issuer}/.well-known/openid-configuration`, checks that its `issuer`
    /// is exactly `issuer_url`, and fetches the JWKS.
    ///
    /// The issuer must be `https`, except on loopback hosts (for tests and local development).
    pub async fn discover(issuer_url: &str, http: &reqwest::Client) -> Result<Provider, OidcError> {
        let issuer = Url::parse(issuer_url)
            .map_err(|_| OidcError::Config("issuer is not a URL".to_owned()))?;
        require_secure_transport(&issuer, "issuer")?;
        let discovery_url = format!("{}{DISCOVERY_PATH}", issuer_url.trim_end_matches('/'));
        let response = http.get(&discovery_url).send().await?;
        if !response.status().is_success() {
            return Err(OidcError::Discovery(format!(
                "discovery document answered HTTP {}",
                response.status().as_u16()
            )));
        }
        let metadata: ProviderMetadata = response.json().await.map_err(|error| {
            OidcError::Discovery(format!(
                "discovery document is not valid: {}",
                error.without_url()
            ))
        })?;
        if metadata.issuer != issuer_url {
            return Err(OidcError::Discovery(format!(
                "discovery document names issuer {:?}, expected {issuer_url:?}",
                metadata.issuer
            )));
        }
        Self::from_metadata(metadata, http).await
    }

    /// A provider from metadata known in advance (no discovery); fetches the JWKS.
    pub async fn from_metadata(
        metadata: ProviderMetadata,
        http: &reqwest::Client,
    ) -> Result<Provider, OidcError> {
        require_secure_transport(&metadata.authorization_endpoint, "authorization_endpoint")?;
        require_secure_transport(&metadata.token_endpoint, "token_endpoint")?;
        require_secure_transport(&metadata.jwks_uri, "jwks_uri")?;
        let signing_keys = fetch_jwks(&metadata.jwks_uri, http).await?;
        Ok(Provider {
            metadata: Arc::new(metadata),
            signing_keys: Arc::new(RwLock::new(signing_keys)),
        })
    }

    /// The provider's metadata.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }

    /// The cached key with this `kid` (or the only key, when the token names none).
    pub(crate) fn cached_key(&self, key_id: Option<&str>) -> Option<Jwk> {
        let keys = self
            .signing_keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match key_id {
            Some(key_id) => keys.find(key_id).cloned(),
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        }
    }

    /// Fetches the JWKS again and replaces the cache (the provider may have rotated keys).
    pub(crate) async fn refresh_keys(&self, http: &reqwest::Client) -> Result<(), OidcError> {
        let fresh = fetch_jwks(&self.metadata.jwks_uri, http).await?;
        let mut keys = self
            .signing_keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *keys = fresh;
        Ok(())
    }
}

async fn fetch_jwks(jwks_uri: &Url, http: &reqwest::Client) -> Result<JwkSet, OidcError> {
    let response = http.get(jwks_uri.clone()).send().await?;
    if !response.status().is_success() {
        return Err(OidcError::Discovery(format!(
            "JWKS answered HTTP {}",
            response.status().as_u16()
        )));
    }
    // Parse key by key so that one key of a type this library does not know
    // (e.g. a future kty) does not make the whole set unusable.
    let document: serde_json::Value = response.json().await.map_err(|error| {
        OidcError::Discovery(format!("JWKS is not JSON: {}", error.without_url()))
    })?;
    let Some(entries) = document.get("keys").and_then(serde_json::Value::as_array) else {
        return Err(OidcError::Discovery(
            "JWKS has no \"keys\" array".to_owned(),
        ));
    };
    let keys = entries
        .iter()
        .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
        .collect();
    Ok(JwkSet { keys })
}

/// Refuses plain `http` except to loopback hosts: tokens and codes must not cross a network in clear.
fn require_secure_transport(url: &Url, what: &str) -> Result<(), OidcError> {
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(OidcError::Config(format!("{what} must use https"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        let allowed = [
            "https://idp.example/",
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://[::1]:1/",
        ];
        for url in allowed {
            assert!(
                require_secure_transport(&Url::parse(url).expect("url"), "issuer").is_ok(),
                "{url}"
            );
        }
        for url in [
            "http://idp.example/",
            "http://10.0.0.1/",
            "ftp://idp.example/",
        ] {
            assert!(
                require_secure_transport(&Url::parse(url).expect("url"), "issuer").is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn metadata_keeps_unknown_fields() {
        let document = serde_json::json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/authorize",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://idp.example/jwks",
            "scopes_supported": ["openid"]
        });
        let metadata: ProviderMetadata = serde_json::from_value(document).expect("metadata");
        assert_eq!(metadata.issuer, "https://idp.example");
        assert!(metadata.userinfo_endpoint.is_none());
        assert_eq!(
            metadata.other["scopes_supported"],
            serde_json::json!(["openid"])
        );
    }
}
