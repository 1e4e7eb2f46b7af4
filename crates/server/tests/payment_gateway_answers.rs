//! GenericRedirectProvider against a misbehaving gateway: every answer it cannot trust is
//! refused as a protocol error rather than read as a payment status.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use procedures::payment::{
    GenericRedirectConfig, GenericRedirectProvider, PaymentProvider, ProviderError, ProviderStatus,
    StartRequest,
};

/// The next answer the gateway gives, as (status, body).
type Canned = Arc<Mutex<(u16, String)>>;

async fn answer(State(canned): State<Canned>) -> Response {
    let (status, body) = canned.lock().unwrap().clone();
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

async fn gateway() -> (GenericRedirectProvider, Canned) {
    let canned: Canned = Arc::new(Mutex::new((200, String::new())));
    let app = Router::new()
        .route("/payments", post(answer))
        .route("/payments/{id}", get(answer))
        .with_state(canned.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let provider =
        GenericRedirectProvider::new(GenericRedirectConfig::new("odd", base, "s3cret")).unwrap();
    (provider, canned)
}

fn request() -> StartRequest {
    StartRequest {
        payment_id: "p1".into(),
        amount_yen: 300,
        description: "test".into(),
        return_url: "https://renkei.example/return".into(),
        callback_url: "https://renkei.example/callback".into(),
    }
}

#[tokio::test]
async fn untrustworthy_start_answers_are_refused() {
    let (provider, canned) = gateway().await;
    for body in [
        r#"{"id":"gw_1","redirect_url":"javascript:alert(1)"}"#,
        r#"{"id":"gw_1","redirect_url":"not a url"}"#,
        r#"{"id":"","redirect_url":"https://pay.example/x"}"#,
        r#"{"redirect_url":"https://pay.example/x"}"#,
        "<html>",
    ] {
        *canned.lock().unwrap() = (201, body.into());
        assert!(
            matches!(
                provider.start(&request()).await,
                Err(ProviderError::Protocol(_))
            ),
            "{body}"
        );
    }
    *canned.lock().unwrap() = (
        201,
        r#"{"id":"gw_1","redirect_url":"https://pay.example/x"}"#.into(),
    );
    let started = provider.start(&request()).await.unwrap();
    assert_eq!(started.provider_ref, "gw_1");
    assert_eq!(started.redirect_url, "https://pay.example/x");

    *canned.lock().unwrap() = (500, "{}".into());
    assert_eq!(
        provider.start(&request()).await,
        Err(ProviderError::Status { status: 500 })
    );
}

#[tokio::test]
async fn untrustworthy_status_answers_are_refused() {
    let (provider, canned) = gateway().await;
    for body in [
        r#"{"id":"gw_OTHER","status":"captured"}"#.to_owned(),
        r#"{"id":"gw_1","status":"paid-ish"}"#.to_owned(),
        r#"{"id":"gw_1"}"#.to_owned(),
        format!(
            r#"{{"id":"gw_1","status":"captured","pad":"{}"}}"#,
            "x".repeat(70_000)
        ),
    ] {
        *canned.lock().unwrap() = (200, body.clone());
        assert!(
            matches!(
                provider.status("gw_1").await,
                Err(ProviderError::Protocol(_))
            ),
            "{}",
            &body[..body.len().min(60)]
        );
    }
    *canned.lock().unwrap() = (200, r#"{"status":"expired"}"#.into());
    assert_eq!(
        provider.status("gw_1").await,
        Ok(ProviderStatus::Failed {
            reason: "expired".into()
        })
    );
}

#[tokio::test]
async fn unreachable_gateway_is_a_transport_error() {
    // Bind then drop, so the port is (very likely) closed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let provider = GenericRedirectProvider::new(GenericRedirectConfig::new(
        "gone",
        format!("http://{addr}"),
        "s3cret",
    ))
    .unwrap();
    assert!(matches!(
        provider.status("gw_1").await,
        Err(ProviderError::Transport(_))
    ));
}

#[test]
fn bad_configurations_are_refused() {
    for (base, secret) in [
        ("ftp://pay.example", "s"),
        ("not a url", "s"),
        ("mailto:pay@example.jp", "s"),
        ("https://pay.example", ""),
    ] {
        assert!(matches!(
            GenericRedirectProvider::new(GenericRedirectConfig::new("x", base, secret)),
            Err(ProviderError::Config(_))
        ));
    }
    // The secret never reaches logs.
    let config = GenericRedirectConfig::new("x", "https://pay.example", "very-secret");
    assert!(!format!("{config:?}").contains("very-secret"));
}
