//! A small but real OpenID provider for tests (feature `testing`): discovery,
//! JWKS, an authorization endpoint that signs in a configured user without a
//! login page, and a token endpoint with `client_secret_basic`,
//! `private_key_jwt` and PKCE. It listens on 127.0.0.1 and can be told to
//! misbehave so that tests show the relying party refusing each attack.

mod server;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::EncodingKey;
use p256::elliptic_curve::rand_core::OsRng;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::flow::random_token;

/// Settings of a [`TestProvider`].
#[derive(Debug, Clone)]
pub struct TestProviderOptions {
    /// How long an authorization code can be exchanged.
    pub code_lifetime: Duration,
    /// How long issued ID tokens are valid.
    pub id_token_lifetime: Duration,
}

impl Default for TestProviderOptions {
    fn default() -> Self {
        Self {
            code_lifetime: Duration::from_secs(60),
            id_token_lifetime: Duration::from_secs(300),
        }
    }
}

/// How a registered client authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum RegisteredAuth {
    /// `client_secret_basic` with this secret.
    Secret(String),
    /// `private_key_jwt` with assertions verified by this public JWK.
    PublicJwk(Value),
}

/// The user the provider signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// Subject identifier.
    pub sub: String,
    /// Email address (sent as verified).
    pub email: String,
    /// Full name.
    pub name: String,
    /// Preferred user name.
    pub preferred_username: String,
}

impl Default for TestUser {
    fn default() -> Self {
        Self {
            sub: "test-user-1".to_owned(),
            email: "taro.yamada@example.jp".to_owned(),
            name: "Yamada Taro".to_owned(),
            preferred_username: "taro".to_owned(),
        }
    }
}

/// Ways the provider can be told to issue a bad ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// `nonce` is not the one of the authorization request.
    WrongNonce,
    /// `iss` is another issuer.
    WrongIssuer,
    /// `aud` is another client.
    WrongAudience,
    /// `exp` (and `iat`) lie in the past.
    Expired,
    /// Signed with a key the JWKS never publishes.
    SignWithUnknownKey,
    /// Unsigned: `alg` is `none`.
    AlgNone,
}

/// A running test provider; the server stops when this is dropped.
pub struct TestProvider {
    issuer: String,
    shared: Arc<Mutex<ProviderState>>,
    server: JoinHandle<()>,
}

pub(crate) struct RegisteredClient {
    pub(crate) redirect_uri: String,
    pub(crate) auth: RegisteredAuth,
}

/// An issued authorization code, waiting to be exchanged.
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) user: TestUser,
    pub(crate) issued_at: std::time::Instant,
}

pub(crate) struct SigningKey {
    pub(crate) key_id: String,
    pub(crate) encoding_key: EncodingKey,
    pub(crate) public_jwk: Value,
}

pub(crate) struct ProviderState {
    pub(crate) issuer: String,
    pub(crate) options: TestProviderOptions,
    pub(crate) clients: HashMap<String, RegisteredClient>,
    pub(crate) user: TestUser,
    pub(crate) codes: HashMap<String, CodeGrant>,
    pub(crate) used_assertion_ids: HashSet<String>,
    pub(crate) misbehaviour: Option<Misbehaviour>,
    pub(crate) signing_key: SigningKey,
    pub(crate) token_requests: usize,
    pub(crate) jwks_requests: usize,
}

impl TestProvider {
    /// Starts the provider on 127.0.0.1 with a fresh ES256 signing key.
    ///
    /// # Panics
    /// When no port can be bound on 127.0.0.1.
    pub async fn start(options: TestProviderOptions) -> TestProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test provider: bind 127.0.0.1:0");
        let address = listener.local_addr().expect("test provider: local address");
        let issuer = format!("http://{address}");
        let shared = Arc::new(Mutex::new(ProviderState {
            issuer: issuer.clone(),
            options,
            clients: HashMap::new(),
            user: TestUser::default(),
            codes: HashMap::new(),
            used_assertion_ids: HashSet::new(),
            misbehaviour: None,
            signing_key: new_signing_key(),
            token_requests: 0,
            jwks_requests: 0,
        }));
        let router = server::router(shared.clone());
        let server = tokio::spawn(async move {
            // Ends only when the task is aborted on drop.
            let _ = axum::serve(listener, router).await;
        });
        TestProvider {
            issuer,
            shared,
            server,
        }
    }

    /// The issuer identifier: the base URL, e.g. `http://127.0.0.1:41234`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint URL (the `aud` of client assertions).
    pub fn token_endpoint(&self) -> String {
        server::token_endpoint(&self.issuer)
    }

    /// Registers (or replaces) a client.
    pub fn register_client(
        &self,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        auth: RegisteredAuth,
    ) {
        let client = RegisteredClient {
            redirect_uri: redirect_uri.into(),
            auth,
        };
        self.state().clients.insert(client_id.into(), client);
    }

    /// Sets the user that the authorization endpoint signs in.
    pub fn set_user(&self, user: TestUser) {
        self.state().user = user;
    }

    /// From now on, issue ID tokens with this flaw.
    pub fn misbehave(&self, misbehaviour: Misbehaviour) {
        self.state().misbehaviour = Some(misbehaviour);
    }

    /// From now on, issue correct ID tokens again.
    pub fn behave(&self) {
        self.state().misbehaviour = None;
    }

    /// Replaces the signing key: the JWKS publishes only the new one.
    pub fn rotate_signing_key(&self) {
        self.state().signing_key = new_signing_key();
    }

    /// How many requests reached the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// How many requests reached the JWKS endpoint.
    pub fn jwks_requests(&self) -> usize {
        self.state().jwks_requests
    }

    fn state(&self) -> MutexGuard<'_, ProviderState> {
        lock(&self.shared)
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A panic in one handler must not make every later request fail too.
pub(crate) fn lock(shared: &Mutex<ProviderState>) -> MutexGuard<'_, ProviderState> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh ES256 client key pair: the private key as PKCS#8 PEM (for
/// [`crate::ClientAuth::PrivateKeyJwt`]) and the public key as a JWK (for
/// [`RegisteredAuth::PublicJwk`]), both with the same random `kid` in the JWK.
pub fn client_key_pair() -> (String, Value) {
    let (private_pem, public_jwk) = es256_key_pair(&random_token());
    (private_pem, public_jwk)
}

pub(crate) fn new_signing_key() -> SigningKey {
    let key_id = random_token();
    let (private_pem, public_jwk) = es256_key_pair(&key_id);
    let encoding_key = EncodingKey::from_ec_pem(private_pem.as_bytes())
        .expect("a fresh P-256 key is a valid ES256 key");
    SigningKey {
        key_id,
        encoding_key,
        public_jwk,
    }
}

fn es256_key_pair(key_id: &str) -> (String, Value) {
    let secret = p256::SecretKey::random(&mut OsRng);
    let private_pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .expect("a fresh P-256 key encodes as PKCS#8");
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        unreachable!("an uncompressed point has both coordinates");
    };
    let public_jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
        "kid": key_id,
        "alg": "ES256",
        "use": "sig",
    });
    (private_pem.to_string(), public_jwk)
}
