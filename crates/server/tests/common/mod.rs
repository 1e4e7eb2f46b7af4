//! The in-process harness shared by the server's HTTP tests: a router over a real SQLite
//! store in a temporary directory, called without a network, and the constants the tests
//! compare answers against. Keeping one harness means every test file sends requests and
//! reads answers the same way, so a difference between files is a difference in the
//! rules tested, never in the plumbing.

// Each test file is its own crate that compiles this module whole and uses only some of
// its helpers and constants; the rest would otherwise be reported as dead code there.
#![allow(dead_code)]

pub mod process;
pub mod receiver;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use server::config::Config;
use std::sync::Arc;
use tower::ServiceExt;

/// The prefix of every NGSI-LD path.
pub const NGSI: &str = "/ngsi-ld/v1";
/// The core context the broker uses when a request names none.
pub const CORE_CONTEXT: &str = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld";
/// The Link header that points a plain JSON answer at the core context.
pub const CORE_LINK: &str = "<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";

// Problem types of NGSI-LD errors (clause 5.5.2).
pub const ALREADY_EXISTS: &str = "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists";
pub const BAD_REQUEST_DATA: &str = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData";
pub const INVALID_REQUEST: &str = "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest";
pub const LD_CONTEXT_NOT_AVAILABLE: &str =
    "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable";
pub const NONEXISTENT_TENANT: &str = "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant";
pub const RESOURCE_NOT_FOUND: &str = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound";
pub const TOO_MANY_RESULTS: &str = "https://uri.etsi.org/ngsi-ld/errors/TooManyResults";

/// The router of one renkei and whatever keeps its database alive (a temporary
/// directory, a throwaway PostgreSQL database), removed when the server is dropped.
pub struct TestServer {
    app: server::HttpService,
    pub state: server::AppState,
    /// The dispatcher and delivery loops, when started with [`TestServer::deliver`].
    background: Option<server::delivery::Background>,
    /// The PostgreSQL database, for starting another node on it.
    postgres: Option<tokio_postgres::Config>,
    _keep_alive: Box<dyn Send + Sync>,
}

/// Which storage backend a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What the router answered, the body already parsed.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body; `Null` when empty, and the text as a JSON string when it is not JSON,
    /// so that a failing assertion can still show it.
    pub body: Value,
}

impl Reply {
    /// A response header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `type` of a problem details body, or "" when there is none.
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
}

/// A broker as the NGSI-LD conformance tests want it: anyone may read and write every
/// tenant (`RENKEI_ALLOW_ANONYMOUS_WRITES`, as the ETSI suite runs) and writes are not
/// rate-limited. Tests of access control use [`secured_server`].
pub async fn server() -> TestServer {
    server_with(Config::default()).await
}

/// [`server`] with `config` (anonymous broker access and unlimited writes added).
pub async fn server_with(mut config: Config) -> TestServer {
    config.allow_anonymous_writes = true;
    config.rate_limits.writes_per_second = 0;
    server_on(Backend::Sqlite, config).await
}

/// renkei as deployed: every write needs a key or a role, writes unlimited (the
/// rate limit has tests of its own).
pub async fn secured_server(backend: Backend) -> TestServer {
    let mut config = Config::default();
    config.rate_limits.writes_per_second = 0;
    server_on(backend, config).await
}

/// A server on `backend` with `config`, except that remote contexts are never fetched:
/// tests must not depend on the network.
pub async fn server_on(backend: Backend, mut config: Config) -> TestServer {
    config.remote_contexts = false;
    let files = tempfile::tempdir().unwrap();
    config.files_dir = files.path().to_owned();
    // Tests never share (or leave behind) a generated key file.
    if config.encryption_keys.is_none() {
        let key = field_crypto::Keyring::generate_key_entry("test").unwrap();
        config.encryption_keys = Some(server::config::EncryptionKeys::Inline(key));
    }
    let mut postgres = None;
    let (stores, keep_alive): (server::storage::Stores, Box<dyn Send + Sync>) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let store = store_sqlite::SqliteStore::open(&dir.path().join("renkei.db"))
                .await
                .unwrap();
            (Arc::new(store).into(), Box::new(dir))
        }
        Backend::Postgres => {
            let database = store_postgres::testing::TestDatabase::create(
                &store_postgres::testing::test_server_url(),
            )
            .await
            .unwrap();
            let store = store_postgres::PostgresStore::connect_config(database.config())
                .await
                .unwrap();
            postgres = Some(database.config());
            (Arc::new(store).into(), Box::new(database))
        }
    };
    let state = server::AppState::new(stores, config).unwrap();
    TestServer {
        app: server::service(state.clone()),
        state,
        background: None,
        postgres,
        _keep_alive: Box::new((keep_alive, files)),
    }
}

impl TestServer {
    /// Another renkei node on the same PostgreSQL database, with the same
    /// configuration; the database lives as long as this server.
    pub async fn another_node(&self) -> TestServer {
        let config = self
            .postgres
            .clone()
            .expect("another node needs PostgreSQL");
        let store = store_postgres::PostgresStore::connect_config(config.clone())
            .await
            .unwrap();
        let state =
            server::AppState::new(Arc::new(store).into(), (*self.state.config).clone()).unwrap();
        TestServer {
            app: server::service(state.clone()),
            state,
            background: None,
            postgres: Some(config),
            _keep_alive: Box::new(()),
        }
    }

    /// Starts dispatching and delivering notifications, as `renkei serve` does.
    pub fn deliver(mut self) -> TestServer {
        self.background = Some(server::delivery::start(&self.state).unwrap());
        self
    }

    /// Sends one request. A body is JSON unless `headers` name another content type.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(value) => {
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    request = request.header("content-type", "application/json");
                }
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        self.send_request(request.body(body).unwrap()).await
    }

    /// Sends a request built by hand, for bodies `send` cannot express (such as broken JSON).
    pub async fn send_request(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, &[], Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, &[], None).await
    }

    /// Creates `entity` from plain JSON, failing the test unless it is created.
    pub async fn create(&self, entity: Value) {
        let reply = self.post(&format!("{NGSI}/entities"), entity).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
}

/// Registers `tenant` and, in it, one account per `(username, role)` with `password`,
/// as the operator does from the command line.
pub async fn tenant_with_users(
    identity: &server::auth::Identity,
    tenant: &str,
    users: &[(&str, identity::Role)],
    password: &str,
) {
    use identity::Principal;
    use server::admin::ops::{self, NewUser};
    ops::create_tenant(identity, &Principal::Operator, tenant)
        .await
        .unwrap();
    for (username, role) in users {
        let user = NewUser {
            username: (*username).into(),
            display_name: (*username).into(),
            email: None,
            password: Some(password.into()),
            roles: vec![*role],
        };
        ops::create_user(identity, &Principal::Operator, tenant, user)
            .await
            .unwrap();
    }
}
