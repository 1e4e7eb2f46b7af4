//! The servers under measurement, each started in this process on a real TCP
//! listener (127.0.0.1, a free port) so that requests pay for the loopback network,
//! HTTP framing and JSON just as a deployment does: renkei over a throwaway SQLite file
//! or PostgreSQL database, and a bare axum server that does nothing but the HTTP and
//! JSON work, to show what renkei adds on top.

use crate::error::BenchError;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Where renkei keeps its data during the run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server at this URL, dropped afterwards.
    Postgres { server_url: String },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// A server running on a spawned task; it stops (and its data is removed) on drop.
pub struct Running {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    task: JoinHandle<()>,
    /// The dispatcher and delivery loops of subscriptions, when started; they stop
    /// when this is dropped, before the storage goes.
    _delivery: Option<server::delivery::Background>,
    /// The temporary directory or database; held only to be dropped after the server.
    _storage: Option<Box<dyn Send>>,
    /// The PostgreSQL database, for [`Running::settle`].
    postgres: Option<tokio_postgres::Config>,
}

impl Running {
    /// After a bulk load, brings PostgreSQL's statistics and visibility map up to date
    /// (`VACUUM ANALYZE`), as autovacuum does on its own a little later: otherwise the
    /// first seconds of a read scenario share the machine with autovacuum and are
    /// planned without statistics. SQLite needs nothing.
    pub async fn settle(&self) -> Result<(), BenchError> {
        let Some(config) = &self.postgres else {
            return Ok(());
        };
        let fail = |e: tokio_postgres::Error| BenchError::Startup {
            what: "VACUUM ANALYZE after loading",
            detail: e.to_string(),
        };
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(fail)?;
        let connection = tokio::spawn(connection);
        let outcome = client.batch_execute("VACUUM ANALYZE").await.map_err(fail);
        drop(client);
        let _ = connection.await;
        outcome
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `renkei` binary running as a process of its own, so that its memory can be read
/// apart from the load generator's; killed (and its data removed) on drop.
pub struct Process {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Process {
    /// The process's resident memory now, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        crate::report::status_kib(&status, "VmRSS:")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the `renkei` binary built beside this one (`cargo build --release -p
/// server`) on a fresh SQLite file and a free port, and waits until it answers.
pub async fn start_renkei_process(client: &reqwest::Client) -> Result<Process, BenchError> {
    let startup = |detail: String| BenchError::Startup {
        what: "renkei process",
        detail,
    };
    let binary = std::env::current_exe()
        .map_err(|e| startup(e.to_string()))?
        .with_file_name("renkei");
    if !binary.exists() {
        return Err(startup(format!(
            "{} is missing: build it first with `cargo build --release -p server`",
            binary.display()
        )));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| startup(e.to_string()))?
        .port();
    let dir = tempfile::tempdir().map_err(|e| startup(e.to_string()))?;
    let child = std::process::Command::new(&binary)
        .arg("serve")
        .env("RENKEI_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "RENKEI_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("renkei.db").display()),
        )
        .env("RENKEI_REMOTE_CONTEXTS", "false")
        .env("RENKEI_ALLOW_ANONYMOUS_WRITES", "1")
        .env("RENKEI_RATE_LIMIT_WRITES_PER_SECOND", "0")
        .env("RENKEI_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| startup(format!("{}: {e}", binary.display())))?;
    let process = Process {
        base: format!("http://127.0.0.1:{port}"),
        child,
        _dir: dir,
    };
    for _ in 0..100 {
        if client
            .get(format!("{}/health", process.base))
            .send()
            .await
            .is_ok()
        {
            return Ok(process);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(startup("it did not answer /health within 10 s".into()))
}

pub async fn serve(
    router: Router,
    what: &'static str,
) -> Result<(String, JoinHandle<()>), BenchError> {
    let startup = |e: std::io::Error| BenchError::Startup {
        what,
        detail: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(startup)?;
    let addr = listener.local_addr().map_err(startup)?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("{what} stopped: {e}");
        }
    });
    Ok((format!("http://{addr}"), task))
}

/// Starts renkei over a fresh, empty store of the given backend, without the
/// subscription loops (no scenario but `notify` needs them, and their polling would
/// only add noise to the others).
pub async fn start_renkei(backend: &Backend) -> Result<Running, BenchError> {
    start_renkei_with(backend, false).await
}

/// Starts renkei like `start_renkei`, and also its dispatcher and delivery loops
/// (`server::delivery::start`), as the `renkei` binary runs them: subscriptions
/// created on it send their notifications.
pub async fn start_renkei_delivering(backend: &Backend) -> Result<Running, BenchError> {
    start_renkei_with(backend, true).await
}

async fn start_renkei_with(backend: &Backend, deliver: bool) -> Result<Running, BenchError> {
    let store_err = |e: store::StoreError| BenchError::Startup {
        what: "renkei store",
        detail: e.to_string(),
    };
    let mut postgres = None;
    let (store, storage): (server::storage::Stores, Box<dyn Send>) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().map_err(|e| BenchError::Startup {
                what: "renkei store",
                detail: format!("creating a temporary directory: {e}"),
            })?;
            let store = store_sqlite::SqliteStore::open(dir.path().join("renkei.db"))
                .await
                .map_err(store_err)?;
            (Arc::new(store).into(), Box::new(dir))
        }
        Backend::Postgres { server_url } => {
            let database = store_postgres::testing::TestDatabase::create(server_url)
                .await
                .map_err(store_err)?;
            let store = store_postgres::PostgresStore::connect_config(database.config())
                .await
                .map_err(store_err)?;
            postgres = Some(database.config());
            (Arc::new(store).into(), Box::new(database))
        }
    };
    let mut config = server::config::Config {
        // The benchmark must not depend on (or wait for) the network.
        remote_contexts: false,
        // The broker as the ETSI suite drives it: no keys, no write limit. What a key
        // adds (one lookup of the key and one of the tenant) is not in these figures.
        allow_anonymous_writes: true,
        ..server::config::Config::default()
    };
    config.rate_limits.writes_per_second = 0;
    let state = server::AppState::new(store, config).map_err(|e| BenchError::Startup {
        what: "renkei",
        detail: format!("{e:#}"),
    })?;
    let delivery = if deliver {
        let background = server::delivery::start(&state).map_err(|e| BenchError::Startup {
            what: "renkei notification delivery",
            detail: format!("{e:#}"),
        })?;
        Some(background)
    } else {
        None
    };
    let (base, task) = serve(server::app(state), "renkei").await?;
    Ok(Running {
        base,
        task,
        _delivery: delivery,
        _storage: Some(storage),
        postgres,
    })
}

/// Starts the bare baseline server:
/// - `POST /entities` parses the JSON body and answers 201 with no body;
/// - `GET /entities` answers a fixed array of `list` (serialised once, up front);
/// - `GET /entities/{id}` answers the fixed document `one`.
pub async fn start_bare(list: &Value, one: &Value) -> Result<Running, BenchError> {
    let list = Bytes::from(list.to_string());
    let one = Bytes::from(one.to_string());
    let router = Router::new()
        .route(
            "/entities",
            post(|Json(body): Json<Value>| async move {
                // Keeps the parse from being optimised away and mirrors renkei's
                // refusal of a body that is not an entity or an array of them.
                if body.is_object() || body.is_array() {
                    StatusCode::CREATED
                } else {
                    StatusCode::BAD_REQUEST
                }
            })
            .get(move || {
                let list = list.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], list) }
            }),
        )
        .route(
            "/entities/{id}",
            get(move || {
                let one = one.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], one) }
            }),
        )
        // As much as renkei accepts (its default `max_body_bytes`), so that a batch
        // of 1000 shelters is parsed here too instead of refused by axum's 2 MB default.
        .layer(DefaultBodyLimit::max(
            server::config::Config::default().max_body_bytes,
        ));
    let (base, task) = serve(router, "bare axum baseline").await?;
    Ok(Running {
        base,
        task,
        _delivery: None,
        _storage: None,
        postgres: None,
    })
}
