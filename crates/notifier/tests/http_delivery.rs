//! Delivers notifications to a local HTTP receiver and checks what arrives, and what
//! deliver() says when the receiver fails, is absent, or never answers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use notifier::{Accept, DeliveryError, Endpoint, Notifier, NotifierConfig, Outgoing};
use serde_json::{json, Value};

const CONTEXT: &str = "https://example.org/ngsi-ld/context.jsonld";

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Value,
}

type Log = Arc<Mutex<Vec<Received>>>;

async fn record(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.lock()
        .expect("log lock")
        .push(Received { headers, body });
    StatusCode::NO_CONTENT
}

async fn fail() -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn hang() -> StatusCode {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    StatusCode::OK
}

/// Starts the receiver; returns its base URL and what it recorded.
async fn receiver() -> (String, Log) {
    let log = Log::default();
    let app = Router::new()
        .route("/notify", post(record))
        .route("/fail", post(fail))
        .route("/hang", post(hang))
        .with_state(Arc::clone(&log));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let address = listener.local_addr().expect("receiver address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), log)
}

fn notifier() -> Notifier {
    Notifier::new(NotifierConfig {
        http_timeout: Duration::from_millis(500),
        ..NotifierConfig::default()
    })
    .expect("notifier")
}

fn endpoint(uri: &str, accept: Accept) -> Endpoint {
    Endpoint {
        uri: uri.parse().expect("endpoint URI"),
        accept,
        receiver_info: vec![
            ("X-Auth-Token".to_owned(), "secret-token".to_owned()),
            (
                "test-receiver-key".to_owned(),
                "test-receiver-info".to_owned(),
            ),
        ],
        notifier_info: Vec::new(),
    }
}

fn notification() -> Value {
    json!({
        "id": "urn:ngsi-ld:Notification:1",
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:1",
        "notifiedAt": "2026-01-01T00:00:00.000Z",
        "data": [{"id": "urn:ngsi-ld:Building:1", "type": "Building"}]
    })
}

fn header<'a>(received: &'a Received, name: &str) -> Option<&'a str> {
    received
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn json_notification_names_the_context_in_a_link_header() {
    let (base, log) = receiver().await;
    let notification = notification();
    notifier()
        .deliver(
            &endpoint(&format!("{base}/notify"), Accept::Json),
            Outgoing {
                notification: &notification,
                context_url: CONTEXT,
                tenant: Some("kyoto"),
            },
        )
        .await
        .expect("delivered");

    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(header(request, "content-type"), Some("application/json"));
    assert_eq!(
        header(request, "link"),
        Some(
            "<https://example.org/ngsi-ld/context.jsonld>; \
             rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
        )
    );
    assert_eq!(header(request, "ngsild-tenant"), Some("kyoto"));
    assert_eq!(header(request, "x-auth-token"), Some("secret-token"));
    assert_eq!(
        header(request, "test-receiver-key"),
        Some("test-receiver-info")
    );
    assert_eq!(request.body, notification);
    assert!(request.body.get("@context").is_none());
}

#[tokio::test]
async fn json_ld_notification_carries_the_context_in_the_body() {
    let (base, log) = receiver().await;
    let notification = notification();
    notifier()
        .deliver(
            &endpoint(&format!("{base}/notify"), Accept::JsonLd),
            Outgoing {
                notification: &notification,
                context_url: CONTEXT,
                tenant: None,
            },
        )
        .await
        .expect("delivered");

    let received = log.lock().expect("log lock").clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(header(request, "content-type"), Some("application/ld+json"));
    assert_eq!(header(request, "link"), None);
    assert_eq!(header(request, "ngsild-tenant"), None);
    assert_eq!(request.body["@context"], json!(CONTEXT));
    assert_eq!(request.body["type"], json!("Notification"));
    // Each entity carries the context too, and is otherwise unchanged.
    let mut data = request.body["data"].clone();
    for entity in data.as_array_mut().unwrap() {
        assert_eq!(entity["@context"], json!(CONTEXT));
        entity.as_object_mut().unwrap().remove("@context");
    }
    assert_eq!(data, notification["data"]);
}

#[tokio::test]
async fn non_2xx_answer_is_a_status_error() {
    let (base, _log) = receiver().await;
    let notification = notification();
    let outcome = notifier()
        .deliver(
            &endpoint(&format!("{base}/fail"), Accept::Json),
            Outgoing {
                notification: &notification,
                context_url: CONTEXT,
                tenant: None,
            },
        )
        .await;
    assert_eq!(outcome, Err(DeliveryError::Status(500)));
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let notification = notification();
    let outcome = notifier()
        .deliver(
            &endpoint(&format!("http://127.0.0.1:{port}/notify"), Accept::Json),
            Outgoing {
                notification: &notification,
                context_url: CONTEXT,
                tenant: None,
            },
        )
        .await;
    assert!(
        matches!(outcome, Err(DeliveryError::Unreachable(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn hanging_receiver_is_unreachable_after_the_timeout() {
    let (base, _log) = receiver().await;
    let notification = notification();
    let outcome = notifier()
        .deliver(
            &endpoint(&format!("{base}/hang"), Accept::Json),
            Outgoing {
                notification: &notification,
                context_url: CONTEXT,
                tenant: None,
            },
        )
        .await;
    match outcome {
        Err(DeliveryError::Unreachable(reason)) => {
            assert!(!reason.contains("urn:ngsi-ld"), "payload leaked: {reason}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn unsupported_scheme_and_bad_receiver_info_are_invalid_endpoints() {
    let notification = notification();
    let outgoing = Outgoing {
        notification: &notification,
        context_url: CONTEXT,
        tenant: None,
    };
    let notifier = notifier();
    let ftp = endpoint("ftp://127.0.0.1/notify", Accept::Json);
    assert!(matches!(
        notifier.deliver(&ftp, outgoing).await,
        Err(DeliveryError::InvalidEndpoint(_))
    ));
    let mut bad_header = endpoint("http://127.0.0.1:9/notify", Accept::Json);
    bad_header.receiver_info = vec![("not a header".to_owned(), "x".to_owned())];
    assert!(matches!(
        notifier.deliver(&bad_header, outgoing).await,
        Err(DeliveryError::InvalidEndpoint(_))
    ));
}
