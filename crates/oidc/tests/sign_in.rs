//! Whole sign-ins against the test provider, as renkei's callback route does them.

mod common;

use common::*;
use oidc::testing::TestUser;
use oidc::{OidcError, PendingSignIn, Provider};

#[tokio::test]
async fn full_flow_with_client_secret_basic() {
    let (test_provider, client) = provider_with_secret_client().await;
    test_provider.set_user(TestUser {
        sub: "user-42".to_owned(),
        email: "hanako@example.jp".to_owned(),
        name: "Sato Hanako".to_owned(),
        preferred_username: "hanako".to_owned(),
    });
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");

    let (authorization_url, pending) = provider.begin(&client);
    assert_eq!(
        query_param(&authorization_url, "response_type").as_deref(),
        Some("code")
    );
    assert_eq!(
        query_param(&authorization_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&authorization_url, "state").as_deref(),
        Some(pending.state())
    );
    assert_eq!(
        query_param(&authorization_url, "nonce").as_deref(),
        Some(pending.nonce())
    );
    assert_eq!(
        query_param(&authorization_url, "scope").as_deref(),
        Some("openid profile email")
    );

    let callback = authorize(&authorization_url, &http).await;
    let state = query_param(&callback, "state").expect("state");
    let code = query_param(&callback, "code").expect("code");
    let claims = provider
        .complete(&client, &pending, &state, &code, &http)
        .await
        .expect("sign-in");

    assert_eq!(claims.sub, "user-42");
    assert_eq!(claims.iss, test_provider.issuer());
    assert_eq!(claims.email.as_deref(), Some("hanako@example.jp"));
    assert_eq!(claims.email_verified, Some(true));
    assert_eq!(claims.name.as_deref(), Some("Sato Hanako"));
    assert_eq!(claims.preferred_username.as_deref(), Some("hanako"));
    assert_eq!(claims.raw["nonce"], pending.nonce());
    assert_eq!(test_provider.token_requests(), 1);
}

#[tokio::test]
async fn full_flow_with_private_key_jwt() {
    let (test_provider, client) = provider_with_key_client().await;
    let claims = sign_in(&test_provider, &client).await.expect("sign-in");
    assert_eq!(claims.sub, TestUser::default().sub);
    assert_eq!(
        claims.email.as_deref(),
        Some(TestUser::default().email.as_str())
    );
}

#[tokio::test]
async fn pending_sign_in_survives_storage_as_json() {
    let (test_provider, client) = provider_with_secret_client().await;
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (pending, state, code) = begin_and_authorize(&provider, &client, &http).await;
    let stored = serde_json::to_string(&pending).expect("serialize");
    let restored: PendingSignIn = serde_json::from_str(&stored).expect("deserialize");
    let claims = provider
        .complete(&client, &restored, &state, &code, &http)
        .await
        .expect("sign-in");
    assert_eq!(claims.sub, TestUser::default().sub);
}

#[tokio::test]
async fn rotated_provider_key_is_fetched_once_and_accepted() {
    let (test_provider, client) = provider_with_secret_client().await;
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    assert_eq!(test_provider.jwks_requests(), 1);
    test_provider.rotate_signing_key();

    let (pending, state, code) = begin_and_authorize(&provider, &client, &http).await;
    provider
        .complete(&client, &pending, &state, &code, &http)
        .await
        .expect("sign-in after rotation");
    assert_eq!(test_provider.jwks_requests(), 2);

    // The refreshed cache serves the next sign-in without another fetch.
    let (pending, state, code) = begin_and_authorize(&provider, &client, &http).await;
    provider
        .complete(&client, &pending, &state, &code, &http)
        .await
        .expect("second sign-in");
    assert_eq!(test_provider.jwks_requests(), 2);
}

#[tokio::test]
async fn discovery_refuses_an_issuer_that_differs_from_the_configured_one() {
    let (test_provider, _client) = provider_with_secret_client().await;
    // Same server, but the configured issuer has a trailing slash: not the same identifier.
    let configured = format!("{}/", test_provider.issuer());
    match Provider::discover(&configured, &http()).await {
        Err(OidcError::Discovery(message)) => assert!(message.contains("issuer"), "{message}"),
        other => panic!("expected a discovery error, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_refuses_plain_http_to_another_host() {
    match Provider::discover("http://idp.example", &http()).await {
        Err(OidcError::Config(_)) => {}
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
