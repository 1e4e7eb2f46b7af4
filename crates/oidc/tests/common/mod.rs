//! Shared steps of the sign-in tests: a browser stand-in that does not follow
//! redirects, and providers with one registered client.

#![allow(dead_code)] // each test file uses its own subset

use oidc::testing::{client_key_pair, RegisteredAuth, TestProvider, TestProviderOptions};
use oidc::{ClientAuth, ClientConfig, IdTokenClaims, OidcError, PendingSignIn, Provider};
use url::Url;

pub const CLIENT_ID: &str = "renkei";
pub const REDIRECT_URI: &str = "http://127.0.0.1:1/auth/oidc/callback";
pub const SECRET: &str = "s3cret with spaces & symbols:=";

/// An HTTP client that, like a test browser, shows redirects instead of following them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// A running provider with `renkei` registered for `client_secret_basic`.
pub async fn provider_with_secret_client() -> (TestProvider, ClientConfig) {
    let provider = TestProvider::start(TestProviderOptions::default()).await;
    provider.register_client(
        CLIENT_ID,
        REDIRECT_URI,
        RegisteredAuth::Secret(SECRET.to_owned()),
    );
    let client = ClientConfig::new(
        CLIENT_ID,
        REDIRECT_URI,
        ClientAuth::SecretBasic {
            secret: SECRET.to_owned(),
        },
    );
    (provider, client)
}

/// A running provider with `renkei` registered for `private_key_jwt`.
pub async fn provider_with_key_client() -> (TestProvider, ClientConfig) {
    let provider = TestProvider::start(TestProviderOptions::default()).await;
    let (private_pem, public_jwk) = client_key_pair();
    let key_id = public_jwk["kid"].as_str().map(str::to_owned);
    provider.register_client(
        CLIENT_ID,
        REDIRECT_URI,
        RegisteredAuth::PublicJwk(public_jwk),
    );
    let client = ClientConfig::new(
        CLIENT_ID,
        REDIRECT_URI,
        ClientAuth::PrivateKeyJwt {
            key_pem: private_pem,
            key_id,
        },
    );
    (provider, client)
}

/// Visits the authorization URL and reads the redirect back to the relying party.
pub async fn authorize(authorization_url: &Url, http: &reqwest::Client) -> Url {
    let response = http
        .get(authorization_url.clone())
        .send()
        .await
        .expect("authorization request");
    assert_eq!(
        response.status(),
        reqwest::StatusCode::FOUND,
        "authorization endpoint must redirect"
    );
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("Location header")
        .to_str()
        .expect("ASCII Location");
    Url::parse(location).expect("Location is a URL")
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Begins a sign-in and follows it to the callback: the pending record, and the callback's state and code.
pub async fn begin_and_authorize(
    provider: &Provider,
    client: &ClientConfig,
    http: &reqwest::Client,
) -> (PendingSignIn, String, String) {
    let (authorization_url, pending) = provider.begin(client);
    let callback = authorize(&authorization_url, http).await;
    assert!(
        callback.as_str().starts_with(REDIRECT_URI),
        "redirected to {callback}"
    );
    let state = query_param(&callback, "state").expect("state in callback");
    let code = query_param(&callback, "code").expect("code in callback");
    (pending, state, code)
}

/// A whole sign-in against `test_provider` with `client`.
pub async fn sign_in(
    test_provider: &TestProvider,
    client: &ClientConfig,
) -> Result<IdTokenClaims, OidcError> {
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (pending, state, code) = begin_and_authorize(&provider, client, &http).await;
    provider
        .complete(client, &pending, &state, &code, &http)
        .await
}
