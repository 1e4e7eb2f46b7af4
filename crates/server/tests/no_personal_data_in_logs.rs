//! No personal data and no secret in the logs: a global tracing subscriber at TRACE
//! (every crate, `log` records included, span fields included) writes into memory while
//! a whole identity flow runs against a secured renkei: a tenant is registered, a platform
//! administrator signs in and creates a user with a name, e-mail address and password,
//! the user signs in (and once with a wrong password), an API key is made and writes
//! entities, a forged key is refused, and a person signs in through OpenID Connect
//! (once refused). Then the captured text must hold none of the personal data or
//! secrets involved. A negative control shows that the capture works and that the check
//! finds a leak when there is one.
//!
//! This file holds one test only: the subscriber is global to the test binary.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use identity::Principal;
use oidc::testing::{Misbehaviour, RegisteredAuth, TestProvider, TestUser};
use serde_json::json;
use server::admin::ops;
use server::config::{Config, OidcConfig};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

const TENANT: &str = "222127";
const PUBLIC_URL: &str = "http://renkei.test";
const CLIENT_ID: &str = "renkei-yaizu";
const CLIENT_SECRET: &str = "oidc-client-secret-never-logged-7f3a";

const ADMIN_USERNAME: &str = "platform-root";
const ADMIN_PASSWORD: &str = "駿河湾の朝焼けを眺める管理者";
const USERNAME: &str = "yaizu-editor-01";
const DISPLAY_NAME: &str = "焼津太郎テスト";
const EMAIL: &str = "taro.yaizu@example.jp";
const PASSWORD: &str = "静岡の海が見える丘の上で";
const WRONG_PASSWORD: &str = "静岡の山が見える丘の上で";
/// What the OpenID provider says about the person signing in through it.
const OIDC_NAME: &str = "大井川花子テスト";
const OIDC_EMAIL: &str = "hanako.oigawa@example.jp";

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while writing must not hide what was captured before it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

struct CapturedLogWriter(CapturedLog);

impl Write for CapturedLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.bytes().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CapturedLogWriter(self.clone())
    }
}

/// Installs the global subscriber: TRACE for every target, span lifecycles with their
/// fields, `log` records bridged, no colour codes to split a value.
fn capture_logs() -> CapturedLog {
    let log = CapturedLog::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(log.clone())
        .try_init()
        .expect("the only global subscriber of this test binary");
    log
}

/// The forms a value may take in a log line: as is, and percent-encoded as in a URL
/// or a form body.
fn spellings(value: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let path = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let mut all = vec![value.to_owned(), form, path];
    all.dedup();
    all
}

/// The names of the `secrets` that occur in `log`, in any spelling.
fn leaks<'a>(log: &str, secrets: &'a [(&'a str, String)]) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|(_, value)| {
            spellings(value)
                .iter()
                .any(|spelling| log.contains(spelling.as_str()))
        })
        .map(|(name, _)| *name)
        .collect()
}

/// `renkei_session=…` from a sign-in answer, and the value alone.
fn session_cookie(reply: &Reply) -> (String, String) {
    let set_cookie = reply
        .header("set-cookie")
        .expect("a sign-in sets the session cookie");
    let pair = set_cookie.split(';').next().unwrap().trim().to_owned();
    let value = pair.strip_prefix("renkei_session=").unwrap().to_owned();
    assert!(!value.is_empty());
    (pair, value)
}

/// A browser through the OIDC round trip; answers renkei's answer to the callback.
async fn oidc_round_trip(
    s: &TestServer,
    provider: &TestProvider,
    browser: &reqwest::Client,
) -> Reply {
    let start = s.get("/auth/oidc/start?return_to=%2Freview").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let authorization_url = start.header("location").unwrap().to_owned();
    assert!(
        authorization_url.starts_with(provider.issuer()),
        "{authorization_url}"
    );
    let at_provider = browser.get(&authorization_url).send().await.unwrap();
    assert_eq!(at_provider.status(), reqwest::StatusCode::FOUND);
    let callback = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let path = callback
        .strip_prefix(PUBLIC_URL)
        .expect("the provider sends the browser back to renkei");
    s.get(path).await
}

#[tokio::test]
async fn the_logs_hold_no_personal_data_and_no_secret() {
    let log = capture_logs();
    const BEFORE_MARKER: &str = "capture-check-before-the-flow-5b1e";
    tracing::info!("{BEFORE_MARKER}");

    let provider = TestProvider::start(Default::default()).await;
    let callback_url = format!("{PUBLIC_URL}/auth/oidc/callback");
    provider.register_client(
        CLIENT_ID,
        &callback_url,
        RegisteredAuth::Secret(CLIENT_SECRET.into()),
    );
    provider.set_user(TestUser {
        sub: "oidc-subject-4711".into(),
        email: OIDC_EMAIL.into(),
        name: OIDC_NAME.into(),
        preferred_username: "hanako".into(),
    });
    let oidc = OidcConfig {
        issuer: provider.issuer().to_owned(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        private_key_file: None,
        key_id: None,
    };
    let mut config = Config {
        public_url: PUBLIC_URL.into(),
        oidc: Some(oidc),
        ..Config::default()
    };
    config.rate_limits.writes_per_second = 0;
    let s = server_on(Backend::Sqlite, config).await;
    let identity = &s.state.identity;

    // The operator registers the tenant and a platform administrator, who signs in.
    ops::create_tenant(identity, &Principal::Operator, TENANT)
        .await
        .unwrap();
    ops::create_platform_admin(identity, ADMIN_USERNAME, "Platform Root", ADMIN_PASSWORD)
        .await
        .unwrap();
    let admin_login = s
        .post(
            "/auth/login",
            json!({"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(admin_login.status, StatusCode::OK, "{}", admin_login.body);
    let (admin_cookie, admin_cookie_value) = session_cookie(&admin_login);
    let admin_csrf = admin_login.body["csrfToken"].as_str().unwrap().to_owned();
    let as_admin = [
        ("Cookie", admin_cookie.as_str()),
        ("X-CSRF-Token", admin_csrf.as_str()),
    ];

    // The administrator creates a user with personal data.
    let new_user = json!({
        "username": USERNAME,
        "displayName": DISPLAY_NAME,
        "email": EMAIL,
        "password": PASSWORD,
        "roles": ["reviewer"],
    });
    let created = s
        .send(
            Method::POST,
            &format!("/admin/v1/tenants/{TENANT}/users"),
            &as_admin,
            Some(new_user),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let listed = s
        .send(
            Method::GET,
            &format!("/admin/v1/tenants/{TENANT}/users"),
            &as_admin,
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);

    // The user signs in, once with a wrong password.
    let refused = s
        .post(
            "/auth/login",
            json!({"username": USERNAME, "password": WRONG_PASSWORD}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let user_login = s
        .post(
            "/auth/login",
            json!({"username": USERNAME, "password": PASSWORD}),
        )
        .await;
    assert_eq!(user_login.status, StatusCode::OK, "{}", user_login.body);
    let (user_cookie, user_cookie_value) = session_cookie(&user_login);
    let user_csrf = user_login.body["csrfToken"].as_str().unwrap().to_owned();
    let me = s
        .send(
            Method::GET,
            "/auth/me",
            &[("Cookie", user_cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["user"]["displayName"], DISPLAY_NAME);
    let no_csrf = s
        .send(
            Method::POST,
            "/auth/logout",
            &[("Cookie", user_cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.body);

    // A publisher key is made and writes entities.
    let key = s
        .send(
            Method::POST,
            &format!("/admin/v1/tenants/{TENANT}/keys"),
            &as_admin,
            Some(json!({"role": "publisher", "label": "shelters"})),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let token = key.body["key"].as_str().unwrap().to_owned();
    let key_id = key.body["id"].as_str().unwrap().to_owned();
    let secret_part = token
        .strip_prefix(&format!("rk_{key_id}_"))
        .expect("rk_<id>_<secret>")
        .to_owned();
    let bearer = format!("Bearer {token}");
    let as_publisher = [
        ("Authorization", bearer.as_str()),
        ("NGSILD-Tenant", TENANT),
    ];
    for number in 1..=2 {
        let shelter = json!({
            "id": format!("urn:ngsi-ld:Shelter:{TENANT}-{number}"),
            "type": "Shelter",
            "name": {"type": "Property", "value": format!("焼津市避難所{number}")},
        });
        let written = s
            .send(
                Method::POST,
                &format!("{NGSI}/entities"),
                &as_publisher,
                Some(shelter),
            )
            .await;
        assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
    }
    let read = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities?type=Shelter"),
            &as_publisher,
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);

    // Forged keys: an unknown one, and the real id with another secret.
    let forged_secret = "Zm9yZ2VkLXNlY3JldC10aGF0LW5vLW9uZS1pc3N1ZWQtMDE";
    let forged_unknown = format!("rk_0123456789abcdef_{forged_secret}");
    let forged_known_id = format!("rk_{key_id}_{forged_secret}");
    for forged in [&forged_unknown, &forged_known_id] {
        let bearer = format!("Bearer {forged}");
        let shelter =
            json!({"id": format!("urn:ngsi-ld:Shelter:{TENANT}-forged"), "type": "Shelter"});
        let reply = s
            .send(
                Method::POST,
                &format!("{NGSI}/entities"),
                &[
                    ("Authorization", bearer.as_str()),
                    ("NGSILD-Tenant", TENANT),
                ],
                Some(shelter),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }

    // A person signs in through OpenID Connect: refused once (the reason is logged), then accepted.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    provider.misbehave(Misbehaviour::WrongAudience);
    let oidc_refused = oidc_round_trip(&s, &provider, &browser).await;
    assert_eq!(
        oidc_refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        oidc_refused.body
    );
    provider.behave();
    let oidc_signed_in = oidc_round_trip(&s, &provider, &browser).await;
    assert_eq!(
        oidc_signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        oidc_signed_in.body
    );
    let (oidc_cookie, oidc_cookie_value) = session_cookie(&oidc_signed_in);
    let oidc_me = s
        .send(
            Method::GET,
            "/auth/me",
            &[("Cookie", oidc_cookie.as_str())],
            None,
        )
        .await;
    assert_eq!(oidc_me.status, StatusCode::OK, "{}", oidc_me.body);
    let oidc_csrf = oidc_me.body["csrfToken"].as_str().unwrap().to_owned();

    // The user signs out.
    let logout = s
        .send(
            Method::POST,
            "/auth/logout",
            &[
                ("Cookie", user_cookie.as_str()),
                ("X-CSRF-Token", user_csrf.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.body);

    const AFTER_MARKER: &str = "capture-check-after-the-flow-9c2d";
    tracing::trace!(target: "server::auth::routes", "{AFTER_MARKER}");

    let captured = log.text();
    println!(
        "captured log: {} bytes, {} lines",
        captured.len(),
        captured.lines().count()
    );
    // The capture works: events before and after the flow, at TRACE, from the server's targets.
    assert!(
        captured.contains(BEFORE_MARKER),
        "the subscriber captured nothing"
    );
    assert!(
        captured.contains(AFTER_MARKER),
        "TRACE events of the server's targets are not captured"
    );

    let secrets: Vec<(&str, String)> = vec![
        ("the user's display name", DISPLAY_NAME.into()),
        ("the user's e-mail address", EMAIL.into()),
        ("the user's password", PASSWORD.into()),
        ("the wrong password tried", WRONG_PASSWORD.into()),
        ("the administrator's password", ADMIN_PASSWORD.into()),
        ("the API key", token.clone()),
        ("the API key's secret part", secret_part),
        ("the forged keys' secret", forged_secret.into()),
        ("the administrator's session cookie", admin_cookie_value),
        ("the user's session cookie", user_cookie_value),
        ("the OIDC session cookie", oidc_cookie_value),
        ("the administrator's CSRF token", admin_csrf),
        ("the user's CSRF token", user_csrf),
        ("the OIDC session's CSRF token", oidc_csrf),
        ("the OIDC client secret", CLIENT_SECRET.into()),
        ("the OIDC user's name", OIDC_NAME.into()),
        ("the OIDC user's e-mail address", OIDC_EMAIL.into()),
    ];
    let found = leaks(&captured, &secrets);
    assert!(found.is_empty(), "the logs hold {found:?}:\n{captured}");

    // Negative control: the same check finds a value once something logs it.
    tracing::debug!(display_name = DISPLAY_NAME, email = %EMAIL, "a careless line");
    tracing::info!(?token, "another careless line");
    let found = leaks(&log.text(), &secrets);
    assert_eq!(
        found,
        [
            "the user's display name",
            "the user's e-mail address",
            "the API key",
            "the API key's secret part"
        ],
        "the check misses what is logged"
    );
}
