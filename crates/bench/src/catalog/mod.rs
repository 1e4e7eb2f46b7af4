//! The catalog scenarios (issue 5): `catalog-ingest` (a 39-column Shift_JIS
//! 指定緊急避難場所 file through `catalog::ingest` and through the real upload, next to
//! the `csv` crate parsing the same file), `catalog-search` (`package_search` over
//! many datasets, next to the bare endpoint) and `catalog-datastore`
//! (`datastore_search` with two filters over a large table, next to the store's own
//! `search_rows`). Each starts its own renkei over an empty store; unlike
//! `targets::start_renkei` it keeps the [`server::AppState`], so that tenants, keys
//! and bulk data can be put in directly and the raw store measured beside the API.

mod datastore;
mod file;
mod ingest;
mod places;
mod search;

pub use datastore::datastore;
pub use ingest::ingest;
pub use search::search;

use crate::error::BenchError;
use crate::targets::{self, Backend};
use identity::{Principal, Role};
use std::sync::Arc;
use tokio::task::JoinHandle;

const ACTION: &str = "/api/3/action";

/// A renkei for the catalog scenarios, with its state at hand.
pub struct CatalogRenkei {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub state: server::AppState,
    /// An API key of a data publisher of the first registered organisation.
    pub key: String,
    task: JoinHandle<()>,
    /// The files directory and the database; dropped after the server.
    _storage: Vec<Box<dyn Send>>,
}

impl Drop for CatalogRenkei {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn startup(detail: impl std::fmt::Display) -> BenchError {
    BenchError::Startup {
        what: "renkei (catalog)",
        detail: detail.to_string(),
    }
}

/// Starts renkei over a fresh store, registers `organizations` as tenants and
/// creates a publisher key for the first. Uploads are kept in a temporary directory.
pub async fn start(backend: &Backend, organizations: &[&str]) -> Result<CatalogRenkei, BenchError> {
    let files = tempfile::tempdir().map_err(startup)?;
    let mut storage: Vec<Box<dyn Send>> = Vec::new();
    let stores: server::storage::Stores = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().map_err(startup)?;
            let store = store_sqlite::SqliteStore::open(dir.path().join("renkei.db"))
                .await
                .map_err(startup)?;
            storage.push(Box::new(dir));
            Arc::new(store).into()
        }
        Backend::Postgres { server_url } => {
            let database = store_postgres::testing::TestDatabase::create(server_url)
                .await
                .map_err(startup)?;
            let store = store_postgres::PostgresStore::connect_config(database.config())
                .await
                .map_err(startup)?;
            storage.push(Box::new(database));
            Arc::new(store).into()
        }
    };
    let mut config = server::config::Config {
        remote_contexts: false,
        files_dir: files.path().to_path_buf(),
        // Loading the datastore table sends 10,000 rows per request; that is set-up,
        // not what is measured, so the body limit is raised for it.
        max_body_bytes: 64 * 1024 * 1024,
        max_upload_bytes: 4 * 1024 * 1024 * 1024,
        ..server::config::Config::default()
    };
    config.rate_limits.writes_per_second = 0;
    let state = server::AppState::new(stores, config).map_err(|e| startup(format!("{e:#}")))?;
    for code in organizations {
        server::admin::ops::create_tenant(&state.identity, &Principal::Operator, code)
            .await
            .map_err(|e| startup(format!("registering tenant {code}: {e}")))?;
    }
    let first = organizations.first().copied().unwrap_or("222127");
    let request = server::admin::ops::KeyRequest {
        tenant: first.to_owned(),
        role: Role::Publisher,
        scopes: None,
        label: "renkei-bench".into(),
        expires_in_days: None,
    };
    let (_, key) = server::admin::ops::create_key(&state.identity, &Principal::Operator, request)
        .await
        .map_err(|e| startup(format!("creating an API key: {e}")))?;
    storage.push(Box::new(files));
    let app = server::app(state.clone());
    let (base, task) = targets::serve(app, "renkei").await?;
    Ok(CatalogRenkei {
        base,
        state,
        key,
        task,
        _storage: storage,
    })
}

/// POSTs a JSON action call with the key and returns its `result`.
pub async fn call(
    renkei: &CatalogRenkei,
    client: &reqwest::Client,
    action: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, BenchError> {
    let url = format!("{}{ACTION}/{action}", renkei.base);
    let response = client
        .post(&url)
        .header("authorization", &renkei.key)
        .json(&body)
        .send()
        .await
        .map_err(|source| BenchError::Http {
            what: url.clone(),
            source,
        })?;
    action_result(&url, response).await
}

/// The `result` of a CKAN answer, or the error naming the call.
pub async fn action_result(
    url: &str,
    response: reqwest::Response,
) -> Result<serde_json::Value, BenchError> {
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|source| BenchError::Http {
        what: url.to_owned(),
        source,
    })?;
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status != 200 || parsed["success"] != serde_json::Value::Bool(true) {
        return Err(BenchError::Status {
            what: url.to_owned(),
            expected: 200,
            got: status,
            body: String::from_utf8_lossy(body.get(..500).unwrap_or(&body)).into_owned(),
        });
    }
    Ok(parsed["result"].clone())
}

/// The process's resident set high-water mark and current size, KiB.
pub fn memory_kib() -> (Option<u64>, Option<u64>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    (
        crate::report::status_kib(&status, "VmHWM:"),
        crate::report::status_kib(&status, "VmRSS:"),
    )
}
