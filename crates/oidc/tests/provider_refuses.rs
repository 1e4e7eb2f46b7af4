//! The test provider refuses what a real provider refuses, so that the sign-in
//! tests passing means something.

mod common;

use common::*;
use oidc::testing::{client_key_pair, RegisteredAuth};
use oidc::{ClientAuth, ClientConfig, OidcError, PendingSignIn, Provider};

fn assert_token_endpoint_refused(
    result: Result<oidc::IdTokenClaims, OidcError>,
    status: u16,
    code: &str,
) {
    match result {
        Err(OidcError::TokenEndpoint {
            status: got_status,
            error,
        }) => {
            assert_eq!(got_status, status);
            assert_eq!(error.as_deref(), Some(code));
        }
        other => panic!("expected the token endpoint to answer {status} {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_client_secret_is_refused() {
    let (test_provider, mut client) = provider_with_secret_client().await;
    client.auth = ClientAuth::SecretBasic {
        secret: "not-the-secret".to_owned(),
    };
    assert_token_endpoint_refused(
        sign_in(&test_provider, &client).await,
        401,
        "invalid_client",
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() {
    let (test_provider, client) = provider_with_secret_client().await;
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (pending, state, code) = begin_and_authorize(&provider, &client, &http).await;

    // An attacker who stole the code has no verifier: stand one in.
    let mut record = serde_json::to_value(&pending).expect("serialize");
    record["code_verifier"] =
        serde_json::json!("a-guessed-verifier-that-is-long-enough-0123456789");
    let forged: PendingSignIn = serde_json::from_value(record).expect("deserialize");

    let result = provider
        .complete(&client, &forged, &state, &code, &http)
        .await;
    assert_token_endpoint_refused(result, 400, "invalid_grant");
}

#[tokio::test]
async fn reused_code_is_refused() {
    let (test_provider, client) = provider_with_secret_client().await;
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (pending, state, code) = begin_and_authorize(&provider, &client, &http).await;
    provider
        .complete(&client, &pending, &state, &code, &http)
        .await
        .expect("first exchange");
    let replay = provider
        .complete(&client, &pending, &state, &code, &http)
        .await;
    assert_token_endpoint_refused(replay, 400, "invalid_grant");
}

#[tokio::test]
async fn assertion_signed_by_another_key_is_refused() {
    let (test_provider, client) = provider_with_key_client().await;
    let (other_private_pem, _other_public_jwk) = client_key_pair();
    let ClientAuth::PrivateKeyJwt { key_id, .. } = client.auth.clone() else {
        panic!("key client expected");
    };
    let impostor = ClientConfig {
        auth: ClientAuth::PrivateKeyJwt {
            key_pem: other_private_pem,
            key_id,
        },
        ..client
    };
    assert_token_endpoint_refused(
        sign_in(&test_provider, &impostor).await,
        401,
        "invalid_client",
    );
}

#[tokio::test]
async fn secret_is_refused_for_a_client_registered_with_a_key() {
    let (test_provider, client) = provider_with_key_client().await;
    let with_secret = ClientConfig {
        auth: ClientAuth::SecretBasic {
            secret: SECRET.to_owned(),
        },
        ..client
    };
    assert_token_endpoint_refused(
        sign_in(&test_provider, &with_secret).await,
        401,
        "invalid_client",
    );
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_no_redirect() {
    let (test_provider, mut client) = provider_with_secret_client().await;
    test_provider.register_client(
        "other",
        "http://127.0.0.1:1/other",
        RegisteredAuth::Secret("x".to_owned()),
    );
    client.redirect_uri = "http://127.0.0.1:1/attacker".to_owned();
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (authorization_url, _pending) = provider.begin(&client);
    let response = http
        .get(authorization_url)
        .send()
        .await
        .expect("authorization request");
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(response.headers().get(reqwest::header::LOCATION).is_none());
}

#[tokio::test]
async fn authorization_without_pkce_is_refused() {
    let (test_provider, client) = provider_with_secret_client().await;
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (authorization_url, _pending) = provider.begin(&client);
    let mut without_pkce = authorization_url.clone();
    without_pkce.query_pairs_mut().clear().extend_pairs(
        authorization_url
            .query_pairs()
            .filter(|(name, _)| !name.starts_with("code_challenge")),
    );
    let callback = authorize(&without_pkce, &http).await;
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(query_param(&callback, "code").is_none());
}
