//! Tests of the protection layers as a router uses them: the rate-limit middleware
//! (called in-process, with a clock the test moves), the security headers, and TLS
//! termination over a real loopback socket with a freshly made self-signed certificate.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use server::protect::{
    limit_rate, security_headers, RateLimitConfig, RateLimits, CONTENT_SECURITY_POLICY,
    TOO_MANY_REQUESTS_TYPE,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{Layer as _, ServiceExt};

/// A clock that stands still until the test advances it.
#[derive(Clone)]
struct TestClock {
    start: Instant,
    elapsed_ms: Arc<AtomicU64>,
}

impl TestClock {
    fn new() -> TestClock {
        TestClock {
            start: Instant::now(),
            elapsed_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.elapsed_ms.load(Ordering::SeqCst))
    }

    fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).expect("a short test duration");
        self.elapsed_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

fn limited_router(config: RateLimitConfig, clock: &TestClock) -> Router {
    let clock = clock.clone();
    let limits = Arc::new(RateLimits::with_clock(config, move || clock.now()));
    Router::new()
        .route("/auth/login", post(|| async { "signed in" }))
        .route("/auth/oidc/token", post(|| async { "signed in" }))
        .route(
            "/things",
            get(|| async { "things" }).post(|| async { "created" }),
        )
        .layer(from_fn_with_state(limits, limit_rate))
}

fn request(method: Method, uri: &str, api_key: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(key) = api_key {
        builder = builder.header("X-CKAN-API-Key", key);
    }
    builder.body(Body::empty()).expect("a valid request")
}

async fn status_of(router: &Router, request: Request<Body>) -> StatusCode {
    router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
}

#[tokio::test]
async fn the_eleventh_sign_in_in_a_minute_is_refused_with_retry_after() {
    let clock = TestClock::new();
    let router = limited_router(RateLimitConfig::default(), &clock);
    for attempt in 0..10 {
        let status = status_of(&router, request(Method::POST, "/auth/login", None)).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}");
    }
    let refused = router
        .clone()
        .oneshot(request(Method::POST, "/auth/login", None))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "6");
    assert_eq!(
        refused.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["type"], TOO_MANY_REQUESTS_TYPE);
    assert_eq!(problem["status"], 429);
    assert!(problem["detail"].as_str().unwrap().contains("6 seconds"));
    assert_eq!(
        problem["detail_ja"],
        "リクエストが多すぎます。6秒後に再試行してください。"
    );

    // The OIDC sign-in shares the same per-IP budget.
    let oidc = status_of(&router, request(Method::POST, "/auth/oidc/token", None)).await;
    assert_eq!(oidc, StatusCode::TOO_MANY_REQUESTS);

    // Six seconds later one more attempt is allowed, and only one.
    clock.advance(Duration::from_secs(6));
    let again = status_of(&router, request(Method::POST, "/auth/login", None)).await;
    assert_eq!(again, StatusCode::OK);
    let after = status_of(&router, request(Method::POST, "/auth/login", None)).await;
    assert_eq!(after, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn reads_are_never_limited() {
    let clock = TestClock::new();
    let config = RateLimitConfig {
        sign_in_per_minute: 1,
        writes_per_second: 1,
        writes_burst: 1,
    };
    let router = limited_router(config, &clock);
    assert_eq!(
        status_of(&router, request(Method::POST, "/things", None)).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&router, request(Method::POST, "/things", None)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    for _ in 0..50 {
        assert_eq!(
            status_of(&router, request(Method::GET, "/things", None)).await,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn inventing_a_new_key_for_each_write_does_not_escape_the_limit() {
    let clock = TestClock::new();
    let config = RateLimitConfig {
        sign_in_per_minute: 10,
        writes_per_second: 1,
        writes_burst: 2,
    };
    let router = limited_router(config, &clock);
    let burst = 2 * server::protect::KEYS_PER_ADDRESS as usize;
    for n in 0..burst {
        let key = format!("invented-{n}");
        let status = status_of(&router, request(Method::POST, "/things", Some(&key))).await;
        assert_eq!(status, StatusCode::OK, "write {n}");
    }
    let refused = status_of(
        &router,
        request(Method::POST, "/things", Some("invented-x")),
    )
    .await;
    assert_eq!(refused, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn writes_with_different_api_keys_are_limited_independently() {
    let clock = TestClock::new();
    let config = RateLimitConfig {
        sign_in_per_minute: 10,
        writes_per_second: 1,
        writes_burst: 2,
    };
    let router = limited_router(config, &clock);
    for _ in 0..2 {
        let status = status_of(&router, request(Method::POST, "/things", Some("key-a"))).await;
        assert_eq!(status, StatusCode::OK);
    }
    let a = status_of(&router, request(Method::POST, "/things", Some("key-a"))).await;
    assert_eq!(a, StatusCode::TOO_MANY_REQUESTS);
    // Another key, and a client without a key (limited by address), still have their
    // whole burst.
    for _ in 0..2 {
        let b = status_of(&router, request(Method::POST, "/things", Some("key-b"))).await;
        assert_eq!(b, StatusCode::OK);
        let anonymous = status_of(&router, request(Method::POST, "/things", None)).await;
        assert_eq!(anonymous, StatusCode::OK);
    }
    // Writes and sign-ins draw on separate budgets.
    let sign_in = status_of(&router, request(Method::POST, "/auth/login", None)).await;
    assert_eq!(sign_in, StatusCode::OK);
}

#[tokio::test]
async fn sign_ins_are_limited_per_client_address() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let clock = TestClock::new();
    let config = RateLimitConfig {
        sign_in_per_minute: 1,
        ..RateLimitConfig::default()
    };
    let router = limited_router(config, &clock);
    let from = |address: &str| {
        let mut request = request(Method::POST, "/auth/login", None);
        let address: SocketAddr = address.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(address));
        request
    };
    assert_eq!(
        status_of(&router, from("192.0.2.1:5000")).await,
        StatusCode::OK
    );
    // Another port of the same address is the same client.
    assert_eq!(
        status_of(&router, from("192.0.2.1:5001")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status_of(&router, from("192.0.2.2:5000")).await,
        StatusCode::OK
    );
    // X-Forwarded-For is not trusted: it picks no fresh bucket.
    let mut spoofed = from("192.0.2.1:5002");
    spoofed
        .headers_mut()
        .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
    assert_eq!(
        status_of(&router, spoofed).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn router_with_headers(tls: bool) -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route(
            "/strict",
            get(|| async {
                (
                    [(header::CONTENT_SECURITY_POLICY, "default-src 'none'")],
                    "strict",
                )
            }),
        )
        .layer(from_fn_with_state(tls, security_headers))
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let response = router_with_headers(false)
        .oneshot(request(Method::GET, "/", None))
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
    assert_eq!(
        headers["permissions-policy"],
        "geolocation=(self), camera=(), microphone=()"
    );
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert_eq!(csp, CONTENT_SECURITY_POLICY);
    assert!(csp.contains("script-src 'self'"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert!(!csp.contains("unsafe-eval"));
    assert!(headers.get(header::STRICT_TRANSPORT_SECURITY).is_none());

    // Even a 404 from the router's fallback is covered.
    let missing = router_with_headers(false)
        .oneshot(request(Method::GET, "/nowhere", None))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn hsts_is_sent_only_over_tls_and_a_handler_header_is_kept() {
    let response = router_with_headers(true)
        .oneshot(request(Method::GET, "/strict", None))
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(
        headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'"
    );
    assert_eq!(
        headers
            .get_all(header::CONTENT_SECURITY_POLICY)
            .iter()
            .count(),
        1
    );
}

/// A self-signed certificate for `localhost`, written as PEM files in `dir`; returns
/// the certificate's PEM for the client to trust.
fn write_self_signed_localhost(dir: &std::path::Path) -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("generating a certificate");
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
    cert_pem
}

async fn answer_with_peer_address(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> String {
    format!("ok from {}", peer.ip())
}

#[tokio::test]
async fn tls_termination_serves_https_and_refuses_plain_http() {
    use server::tls::{load_tls_config, serve_tls};

    let dir = tempfile::tempdir().unwrap();
    let cert_pem = write_self_signed_localhost(dir.path());
    let tls = load_tls_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem"))
        .expect("loading the PEM files");
    assert_eq!(tls.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);

    // The handler answers with the client address the accept loop recorded; the
    // router sits behind path normalisation, as `server::HttpService` does.
    let app = tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash()
        .layer(Router::new().route("/health", get(answer_with_peer_address)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tls(listener, tls, app, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", address)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/health", address.port());
    let response = client.get(&url).send().await.expect("an HTTPS answer");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok from 127.0.0.1");

    // Plain HTTP to the TLS port gets no HTTP answer...
    let plain = client
        .get(format!("http://localhost:{}/health", address.port()))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // ...and the failed handshake did not stop the server.
    let again = client
        .get(format!("{url}/"))
        .send()
        .await
        .expect("still serving");
    assert_eq!(again.status(), reqwest::StatusCode::OK);

    stop.send(()).unwrap();
    server
        .await
        .expect("the server task did not panic")
        .expect("a clean shutdown");
}

#[test]
fn missing_or_invalid_pem_files_are_named_in_the_error() {
    use server::tls::load_tls_config;

    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let missing = load_tls_config(&cert, &key).unwrap_err();
    assert!(format!("{missing:#}").contains("cert.pem"), "{missing:#}");

    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let empty = load_tls_config(&cert, &key).unwrap_err();
    assert!(format!("{empty:#}").contains("cert.pem"), "{empty:#}");

    write_self_signed_localhost(dir.path());
    std::fs::write(&key, "not a key").unwrap();
    let bad_key = load_tls_config(&cert, &key).unwrap_err();
    assert!(format!("{bad_key:#}").contains("key.pem"), "{bad_key:#}");

    // A valid key of another certificate is refused too.
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&key, other.serialize_pem()).unwrap();
    let mismatched = load_tls_config(&cert, &key).unwrap_err();
    assert!(
        format!("{mismatched:#}").contains("does not fit"),
        "{mismatched:#}"
    );
}
