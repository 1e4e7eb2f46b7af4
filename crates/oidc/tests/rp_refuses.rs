//! The relying party refuses every forged or mismatched answer: each test makes
//! the test provider misbehave in one way and checks the typed refusal.

mod common;

use common::*;
use oidc::testing::Misbehaviour;
use oidc::{IdTokenRejection, OidcError, Provider};

async fn sign_in_while(misbehaviour: Misbehaviour) -> (OidcError, oidc::testing::TestProvider) {
    let (test_provider, client) = provider_with_secret_client().await;
    test_provider.misbehave(misbehaviour);
    let error = sign_in(&test_provider, &client)
        .await
        .expect_err("the relying party must refuse");
    (error, test_provider)
}

fn assert_rejected(error: &OidcError, reason: IdTokenRejection) {
    match error {
        OidcError::InvalidIdToken(got) => assert_eq!(*got, reason),
        other => panic!("expected ID token refusal {reason:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn state_mismatch_is_refused_before_any_network_call() {
    let (test_provider, client) = provider_with_secret_client().await;
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (pending, _state, code) = begin_and_authorize(&provider, &client, &http).await;
    let result = provider
        .complete(&client, &pending, "state-of-another-sign-in", &code, &http)
        .await;
    assert!(
        matches!(result, Err(OidcError::StateMismatch)),
        "{result:?}"
    );
    assert_eq!(test_provider.token_requests(), 0);
}

#[tokio::test]
async fn wrong_nonce_is_refused() {
    let (error, _provider) = sign_in_while(Misbehaviour::WrongNonce).await;
    assert_rejected(&error, IdTokenRejection::Nonce);
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let (error, _provider) = sign_in_while(Misbehaviour::WrongIssuer).await;
    assert_rejected(&error, IdTokenRejection::Issuer);
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (error, _provider) = sign_in_while(Misbehaviour::WrongAudience).await;
    assert_rejected(&error, IdTokenRejection::Audience);
}

#[tokio::test]
async fn expired_token_is_refused() {
    let (error, _provider) = sign_in_while(Misbehaviour::Expired).await;
    assert_rejected(&error, IdTokenRejection::Expired);
}

#[tokio::test]
async fn unknown_key_is_refused_after_one_jwks_refetch() {
    let (error, test_provider) = sign_in_while(Misbehaviour::SignWithUnknownKey).await;
    assert_rejected(&error, IdTokenRejection::UnknownKey);
    // Once at discovery, once more when the token named a key not in the cache.
    assert_eq!(test_provider.jwks_requests(), 2);
}

#[tokio::test]
async fn unsigned_token_is_refused() {
    let (error, _provider) = sign_in_while(Misbehaviour::AlgNone).await;
    assert_rejected(&error, IdTokenRejection::Algorithm);
}

#[tokio::test]
async fn provider_behaving_again_is_accepted() {
    let (test_provider, client) = provider_with_secret_client().await;
    test_provider.misbehave(Misbehaviour::WrongNonce);
    test_provider.behave();
    sign_in(&test_provider, &client).await.expect("sign-in");
}

#[tokio::test]
async fn error_messages_carry_no_secret_or_token() {
    let (test_provider, client) = provider_with_secret_client().await;
    let http = http();
    let provider = Provider::discover(test_provider.issuer(), &http)
        .await
        .expect("discovery");
    let (pending, state, code) = begin_and_authorize(&provider, &client, &http).await;
    test_provider.misbehave(Misbehaviour::WrongAudience);
    let error = provider
        .complete(&client, &pending, &state, &code, &http)
        .await
        .expect_err("refused");
    let message = format!("{error} {error:?}");
    assert!(!message.contains(SECRET), "{message}");
    assert!(!message.contains(&code), "{message}");
    assert!(!message.contains("eyJ"), "looks like a JWT in {message}");
}
