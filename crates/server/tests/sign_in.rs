//! Signing in with a password through the real router: lockout after repeated
//! failures, the same refusal for an unknown user, the sign-in rate limit per client,
//! session cookies with their attributes, and security headers on every answer.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use server::admin::ops;

const PASSWORD: &str = "駿河湾に昇る朝日を見ながら";

async fn with_admin() -> TestServer {
    let s = secured_server(Backend::Sqlite).await;
    ops::create_platform_admin(&s.state.identity, "pref-admin", "県管理者", PASSWORD)
        .await
        .unwrap();
    s
}

async fn sign_in(s: &TestServer, username: &str, password: &str) -> Reply {
    s.post(
        "/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_and_unknown_users_read_the_same() {
    let s = with_admin().await;
    let unknown = sign_in(&s, "nobody", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    for _ in 0..5 {
        let wrong = sign_in(&s, "pref-admin", "違うパスワードです違う").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        // Nothing tells a wrong password from an unknown user.
        assert_eq!(wrong.body, unknown.body);
    }
    let locked = sign_in(&s, "PREF-ADMIN ", PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::UNAUTHORIZED,
        "the right password does not unlock early"
    );
    let audit = s
        .state
        .identity
        .store()
        .search_audit(&identity::audit::AuditFilter {
            action: Some("account.lock".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
}

#[tokio::test]
async fn a_session_cookie_is_http_only_and_same_site_and_ends_at_logout() {
    let s = with_admin().await;
    let reply = sign_in(&s, "pref-admin", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let cookie = reply.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP in tests: {cookie}");
    let session = cookie.split(';').next().unwrap();
    let csrf = reply.body["csrfToken"].as_str().unwrap();
    let me = s
        .send(
            axum::http::Method::GET,
            "/auth/me",
            &[("Cookie", session)],
            None,
        )
        .await;
    assert_eq!(me.body["user"]["username"], "pref-admin");
    assert_eq!(me.body["grants"][0]["role"], "platform_admin");
    let out = s
        .send(
            axum::http::Method::POST,
            "/auth/logout",
            &[("Cookie", session), ("X-CSRF-Token", csrf)],
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = s
        .send(
            axum::http::Method::GET,
            "/auth/me",
            &[("Cookie", session)],
            None,
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_eleventh_sign_in_in_a_minute_is_429_with_retry_after() {
    let s = with_admin().await;
    for n in 0..10 {
        let reply = sign_in(&s, "someone", "whatever-whatever").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let limited = sign_in(&s, "pref-admin", PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(limited.problem_type(), "urn:renkei:problem:TooManyRequests");
}

#[tokio::test]
async fn every_face_answers_with_security_headers() {
    let s = with_admin().await;
    for path in [
        format!("{NGSI}/entities?type=X"),
        "/admin/v1/tenants".into(),
        "/nowhere".into(),
    ] {
        let reply = s.get(&path).await;
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            reply.header("strict-transport-security"),
            None,
            "{path}: no TLS here"
        );
    }
}
