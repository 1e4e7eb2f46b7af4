//! Sign-in through an OpenID Connect provider (authorization code with PKCE), wired
//! from the configuration: the provider is discovered on first use (so renkei starts
//! even while the provider is unreachable), and the pending sign-in between the
//! redirect and the callback is kept in the store, not in this node's memory, so the
//! callback may reach any node.

use crate::config::OidcConfig;
use anyhow::Context as _;
use oidc::{ClientAuth, ClientConfig, IdTokenClaims, OidcError, PendingSignIn, Provider};
use tokio::sync::OnceCell;

/// How long a started sign-in may take before its callback is refused.
pub const PENDING_LIFETIME_MINUTES: i64 = 10;

pub struct OidcSignIn {
    issuer: String,
    client: ClientConfig,
    http: reqwest::Client,
    provider: OnceCell<Provider>,
}

impl OidcSignIn {
    /// Reads the client's key (for `private_key_jwt`) and prepares the client; the
    /// callback URL is `{public_url}/auth/oidc/callback`.
    pub fn from_config(config: &OidcConfig, public_url: &str) -> anyhow::Result<OidcSignIn> {
        let auth = match (&config.client_secret, &config.private_key_file) {
            (Some(secret), None) => ClientAuth::SecretBasic {
                secret: secret.clone(),
            },
            (None, Some(path)) => ClientAuth::PrivateKeyJwt {
                key_pem: std::fs::read_to_string(path)
                    .with_context(|| format!("reading the OIDC client key {}", path.display()))?,
                key_id: config.key_id.clone(),
            },
            _ => anyhow::bail!("OIDC needs exactly one of a client secret or a private key file"),
        };
        let redirect_uri = format!("{}/auth/oidc/callback", public_url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(OidcSignIn {
            issuer: config.issuer.clone(),
            client: ClientConfig::new(config.client_id.clone(), redirect_uri, auth),
            http,
            provider: OnceCell::new(),
        })
    }

    async fn provider(&self) -> Result<&Provider, OidcError> {
        self.provider
            .get_or_try_init(|| Provider::discover(&self.issuer, &self.http))
            .await
    }

    /// The URL to send the browser to, and what to keep until it comes back.
    pub async fn begin(&self) -> Result<(url::Url, PendingSignIn), OidcError> {
        Ok(self.provider().await?.begin(&self.client))
    }

    /// Completes a sign-in with what the browser brought back.
    pub async fn complete(
        &self,
        pending: &PendingSignIn,
        state: &str,
        code: &str,
    ) -> Result<IdTokenClaims, OidcError> {
        self.provider()
            .await?
            .complete(&self.client, pending, state, code, &self.http)
            .await
    }
}
