//! OpenID Connect sign-in end to end: renkei (called in-process through the harness)
//! against the real test provider of the `oidc` crate (listening on 127.0.0.1), with a
//! browser played by a reqwest client that does not follow redirects. Both client
//! authentications renkei offers are exercised (`client_secret_basic` and
//! `private_key_jwt`), then every refusal: a flawed ID token, a replayed, unknown,
//! tampered or mixed-up callback, and a `return_to` pointing off-site.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use oidc::testing::{client_key_pair, Misbehaviour, RegisteredAuth, TestProvider, TestUser};
use server::config::{Config, OidcConfig};
use std::io::Write as _;

/// The origin renkei believes it is served at; the provider redirects the browser
/// there, and the test strips it to call the in-process router.
const PUBLIC_URL: &str = "http://renkei.test";
const CALLBACK_URL: &str = "http://renkei.test/auth/oidc/callback";
const CLIENT_ID: &str = "renkei-yaizu";
const CLIENT_SECRET: &str = "a-client-secret-only-these-tests-know";
const OIDC_FAILED: &str = "urn:renkei:problem:OidcSignInFailed";

/// How renkei authenticates at the provider's token endpoint.
#[derive(Debug, Clone, Copy)]
enum ClientAuthentication {
    SecretBasic,
    PrivateKeyJwt,
}

/// One provider, one renkei configured for it, and a browser.
struct World {
    provider: TestProvider,
    server: TestServer,
    browser: reqwest::Client,
    /// The client's private key, read by renkei at start-up; kept until the end.
    _key_file: Option<tempfile::NamedTempFile>,
}

async fn world(authentication: ClientAuthentication) -> World {
    let provider = TestProvider::start(Default::default()).await;
    let (oidc, key_file) = match authentication {
        ClientAuthentication::SecretBasic => {
            provider.register_client(
                CLIENT_ID,
                CALLBACK_URL,
                RegisteredAuth::Secret(CLIENT_SECRET.into()),
            );
            let oidc = OidcConfig {
                issuer: provider.issuer().to_owned(),
                client_id: CLIENT_ID.into(),
                client_secret: Some(CLIENT_SECRET.into()),
                private_key_file: None,
                key_id: None,
            };
            (oidc, None)
        }
        ClientAuthentication::PrivateKeyJwt => {
            let (private_pem, public_jwk) = client_key_pair();
            let key_id = public_jwk["kid"].as_str().map(str::to_owned);
            let mut key_file = tempfile::NamedTempFile::new().unwrap();
            key_file.write_all(private_pem.as_bytes()).unwrap();
            key_file.flush().unwrap();
            provider.register_client(
                CLIENT_ID,
                CALLBACK_URL,
                RegisteredAuth::PublicJwk(public_jwk),
            );
            let oidc = OidcConfig {
                issuer: provider.issuer().to_owned(),
                client_id: CLIENT_ID.into(),
                client_secret: None,
                private_key_file: Some(key_file.path().to_owned()),
                key_id,
            };
            (oidc, Some(key_file))
        }
    };
    let mut config = Config {
        public_url: PUBLIC_URL.into(),
        oidc: Some(oidc),
        ..Config::default()
    };
    config.rate_limits.writes_per_second = 0;
    let server = server_on(Backend::Sqlite, config).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    World {
        provider,
        server,
        browser,
        _key_file: key_file,
    }
}

/// The `Set-Cookie` headers of an answer.
fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Asserts that a callback was refused as a failed OIDC sign-in, starting no session.
fn assert_refused(reply: &Reply, case: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{case}: {}",
        reply.body
    );
    assert_eq!(reply.problem_type(), OIDC_FAILED, "{case}: {}", reply.body);
    assert!(
        set_cookies(reply).is_empty(),
        "{case}: a refused sign-in set {:?}",
        set_cookies(reply)
    );
}

/// A signed-in browser: its cookie (`renkei_session=…`) and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
    user: serde_json::Value,
}

impl World {
    /// `GET /auth/oidc/start`; answers the provider's authorization URL renkei redirects to.
    async fn start(&self, return_to: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let reply = self
            .server
            .get(&format!("/auth/oidc/start?return_to={encoded}"))
            .await;
        assert!(
            matches!(reply.status, StatusCode::SEE_OTHER | StatusCode::FOUND),
            "start: {} {}",
            reply.status,
            reply.body
        );
        let location = reply
            .header("location")
            .expect("start answers a Location")
            .to_owned();
        let authorize = format!("{}/authorize?", self.provider.issuer());
        assert!(
            location.starts_with(&authorize),
            "start redirected to {location}"
        );
        location
    }

    /// The browser at the provider: answers the callback's path and query on renkei.
    async fn authorize(&self, authorization_url: &str) -> String {
        let answer = self.browser.get(authorization_url).send().await.unwrap();
        assert_eq!(
            answer.status(),
            reqwest::StatusCode::FOUND,
            "the provider did not redirect back"
        );
        let location = answer
            .headers()
            .get("location")
            .expect("the provider answers a Location")
            .to_str()
            .unwrap()
            .to_owned();
        let callback = url::Url::parse(&location).unwrap();
        let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
        assert!(
            pairs.iter().any(|(k, _)| k == "code"),
            "no code in {location}"
        );
        assert!(
            pairs.iter().any(|(k, _)| k == "state"),
            "no state in {location}"
        );
        location
            .strip_prefix(PUBLIC_URL)
            .unwrap_or_else(|| panic!("the provider redirected to {location}, not to renkei"))
            .to_owned()
    }

    /// The browser back at renkei's callback.
    async fn callback(&self, path_and_query: &str) -> Reply {
        self.server.get(path_and_query).await
    }

    /// The whole round trip up to renkei's answer to the callback.
    async fn sign_in_reply(&self, return_to: &str) -> Reply {
        let authorization_url = self.start(return_to).await;
        let callback = self.authorize(&authorization_url).await;
        self.callback(&callback).await
    }

    /// A sign-in that must succeed and land at `expected_landing`.
    async fn sign_in(&self, return_to: &str, expected_landing: &str) -> Session {
        let reply = self.sign_in_reply(return_to).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(reply.header("location"), Some(expected_landing));
        let cookies = set_cookies(&reply);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let attributes: Vec<&str> = cookies[0].split(';').map(str::trim).collect();
        assert!(
            attributes[0].starts_with("renkei_session="),
            "{}",
            cookies[0]
        );
        assert!(
            attributes[0].len() > "renkei_session=".len(),
            "{}",
            cookies[0]
        );
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(
                attributes.contains(&attribute),
                "{attribute} missing in {}",
                cookies[0]
            );
        }
        let cookie = attributes[0].to_owned();
        let me = self
            .server
            .send(Method::GET, "/auth/me", &[("Cookie", &cookie)], None)
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        let csrf = me.body["csrfToken"]
            .as_str()
            .expect("/auth/me shows the CSRF token")
            .to_owned();
        assert!(!csrf.is_empty());
        Session {
            cookie,
            csrf,
            user: me.body,
        }
    }
}

/// What a first sign-in through OIDC makes: an account named after the provider's
/// subject, without any role.
fn assert_fresh_oidc_account(me: &serde_json::Value) {
    let username = me["user"]["username"].as_str().unwrap_or_default();
    assert!(username.starts_with("oidc-"), "{me}");
    assert!(
        me["user"]["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{me}"
    );
    assert_eq!(
        me["grants"],
        serde_json::json!([]),
        "a new account has no roles: {me}"
    );
}

#[tokio::test]
async fn client_secret_basic_signs_in_and_finds_the_same_account_again() {
    let w = world(ClientAuthentication::SecretBasic).await;
    let first = w.sign_in("/review", "/review").await;
    assert_fresh_oidc_account(&first.user);
    assert_eq!(
        first.user["user"]["displayName"], "Yamada Taro",
        "{}",
        first.user
    );

    let second = w.sign_in("/review", "/review").await;
    assert_eq!(
        second.user["user"]["id"], first.user["user"]["id"],
        "no second account for the same person"
    );
    assert_eq!(
        second.user["user"]["username"],
        first.user["user"]["username"]
    );
    assert_ne!(
        second.cookie, first.cookie,
        "each sign-in starts its own session"
    );

    // Another person at the same provider is another account, even with the same e-mail.
    w.provider.set_user(TestUser {
        sub: "test-user-2".into(),
        name: "Suzuki Hanako".into(),
        preferred_username: "hanako".into(),
        ..TestUser::default()
    });
    let other = w.sign_in("/", "/").await;
    assert_fresh_oidc_account(&other.user);
    assert_ne!(other.user["user"]["id"], first.user["user"]["id"]);
    assert_eq!(w.provider.token_requests(), 3);
}

#[tokio::test]
async fn private_key_jwt_signs_in_and_finds_the_same_account_again() {
    let w = world(ClientAuthentication::PrivateKeyJwt).await;
    let first = w
        .sign_in("/review?tenant=222127", "/review?tenant=222127")
        .await;
    assert_fresh_oidc_account(&first.user);
    let second = w.sign_in("/review", "/review").await;
    assert_eq!(second.user["user"]["id"], first.user["user"]["id"]);
    assert_eq!(w.provider.token_requests(), 2);
}

#[tokio::test]
async fn flawed_id_tokens_are_refused_without_a_session() {
    for authentication in [
        ClientAuthentication::SecretBasic,
        ClientAuthentication::PrivateKeyJwt,
    ] {
        let w = world(authentication).await;
        for flaw in [
            Misbehaviour::WrongNonce,
            Misbehaviour::WrongIssuer,
            Misbehaviour::WrongAudience,
            Misbehaviour::Expired,
            Misbehaviour::SignWithUnknownKey,
            Misbehaviour::AlgNone,
        ] {
            w.provider.misbehave(flaw);
            let reply = w.sign_in_reply("/review").await;
            assert_refused(&reply, &format!("{authentication:?} {flaw:?}"));
        }
        // The refusals came from the flaws: the same world signs in once the provider behaves.
        let tokens_before = w.provider.token_requests();
        w.provider.behave();
        let session = w.sign_in("/review", "/review").await;
        assert_fresh_oidc_account(&session.user);
        assert_eq!(w.provider.token_requests(), tokens_before + 1);
    }
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let w = world(ClientAuthentication::SecretBasic).await;
    let authorization_url = w.start("/review").await;
    let callback = w.authorize(&authorization_url).await;
    let first = w.callback(&callback).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(set_cookies(&first).len(), 1);

    let tokens_before = w.provider.token_requests();
    let replay = w.callback(&callback).await;
    assert_refused(&replay, "replayed callback");
    assert_eq!(
        w.provider.token_requests(),
        tokens_before,
        "a replay must not reach the provider"
    );
}

#[tokio::test]
async fn callbacks_with_an_unknown_or_missing_state_are_refused() {
    let w = world(ClientAuthentication::SecretBasic).await;
    let unknown = w
        .callback("/auth/oidc/callback?code=some-code&state=a-state-renkei-never-issued")
        .await;
    assert_refused(&unknown, "unknown state");
    let missing = w.callback("/auth/oidc/callback?code=some-code").await;
    assert_refused(&missing, "no state");
    let nothing = w.callback("/auth/oidc/callback").await;
    assert_refused(&nothing, "no parameters");
    assert_eq!(w.provider.token_requests(), 0);
}

/// The callback path with its `state` replaced by `new_state`.
fn with_state(callback: &str, new_state: &str) -> String {
    let parsed = url::Url::parse(&format!("{PUBLIC_URL}{callback}")).unwrap();
    let mut rebuilt = parsed.clone();
    rebuilt
        .query_pairs_mut()
        .clear()
        .extend_pairs(parsed.query_pairs().map(|(k, v)| {
            if k == "state" {
                (k.into_owned(), new_state.to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        }));
    rebuilt
        .as_str()
        .strip_prefix(PUBLIC_URL)
        .unwrap()
        .to_owned()
}

fn state_of(callback: &str) -> String {
    let parsed = url::Url::parse(&format!("{PUBLIC_URL}{callback}")).unwrap();
    let state = parsed
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    state.unwrap()
}

#[tokio::test]
async fn a_tampered_state_is_refused() {
    let w = world(ClientAuthentication::SecretBasic).await;
    let authorization_url = w.start("/review").await;
    let callback = w.authorize(&authorization_url).await;
    let state = state_of(&callback);
    let mut tampered = state.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for forged in [
        tampered,
        format!("{state}x"),
        state[1..].to_owned(),
        String::new(),
    ] {
        let reply = w.callback(&with_state(&callback, &forged)).await;
        assert_refused(&reply, &format!("state {forged:?} instead of {state:?}"));
    }
    assert_eq!(w.provider.token_requests(), 0);
}

#[tokio::test]
async fn a_code_brought_back_with_the_state_of_another_sign_in_is_refused() {
    // The attacker's code with the victim's state (a login CSRF / mix-up): renkei takes
    // the victim's pending sign-in, whose PKCE verifier does not fit the attacker's code.
    let w = world(ClientAuthentication::SecretBasic).await;
    let victim = w.authorize(&w.start("/review").await).await;
    let attacker = w.authorize(&w.start("/").await).await;
    let mixed = with_state(&attacker, &state_of(&victim));
    let reply = w.callback(&mixed).await;
    assert_refused(&reply, "code of one sign-in, state of another");
}

#[tokio::test]
async fn the_provider_refusing_is_a_failed_sign_in() {
    let w = world(ClientAuthentication::SecretBasic).await;
    let callback = w.authorize(&w.start("/review").await).await;
    let state = state_of(&callback);
    let denied = format!("/auth/oidc/callback?error=access_denied&state={state}");
    let reply = w.callback(&denied).await;
    assert_refused(&reply, "error=access_denied");
    assert_eq!(w.provider.token_requests(), 0);
}

#[tokio::test]
async fn return_to_never_leaves_the_site() {
    let w = world(ClientAuthentication::SecretBasic).await;
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "",
    ] {
        let session = w.sign_in(evil, "/").await;
        assert_fresh_oidc_account(&session.user);
    }
}

#[tokio::test]
async fn an_oidc_session_passes_csrf_only_with_its_token() {
    let w = world(ClientAuthentication::PrivateKeyJwt).await;
    let session = w.sign_in("/review", "/review").await;
    let cookie = session.cookie.as_str();

    let without = w
        .server
        .send(Method::POST, "/auth/logout", &[("Cookie", cookie)], None)
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN, "{}", without.body);
    assert_eq!(
        without.problem_type(),
        "urn:renkei:problem:CsrfTokenMissing"
    );
    let wrong = w
        .server
        .send(
            Method::POST,
            "/auth/logout",
            &[("Cookie", cookie), ("X-CSRF-Token", "not-the-token")],
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
    assert_eq!(wrong.problem_type(), "urn:renkei:problem:CsrfTokenMissing");
    // Refused logouts left the session alive.
    let me = w
        .server
        .send(Method::GET, "/auth/me", &[("Cookie", cookie)], None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);

    let logout = w
        .server
        .send(
            Method::POST,
            "/auth/logout",
            &[("Cookie", cookie), ("X-CSRF-Token", &session.csrf)],
            None,
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.body);
    let after = w
        .server
        .send(Method::GET, "/auth/me", &[("Cookie", cookie)], None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
}
