//! Throwaway databases for tests: each test gets a database of its own,
//! `renkei_test_<random>`, on the server named by `RENKEI_TEST_PG_URL`, dropped again
//! when the test is done, so test runs (and tests within a run) never see each
//! other's data and can run in parallel.

use crate::{parse_url, PostgresError, PostgresStore};
use std::sync::Arc;
use store::conformance::TestStore;
use store::StoreError;
use tokio_postgres::NoTls;

/// The variable naming the PostgreSQL server tests use.
pub const TEST_URL_VAR: &str = "RENKEI_TEST_PG_URL";

/// The server tests use when [`TEST_URL_VAR`] is not set (`scripts/ensure-postgres`
/// makes sure it runs, with PostGIS).
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the test server: [`TEST_URL_VAR`] or [`DEFAULT_TEST_URL`].
pub fn test_server_url() -> String {
    std::env::var(TEST_URL_VAR).unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned())
}

/// A database created for one test, dropped (with any connection still open to it)
/// when this value is dropped.
pub struct TestDatabase {
    server: tokio_postgres::Config,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database on the server at `server_url`.
    pub async fn create(server_url: &str) -> Result<TestDatabase, StoreError> {
        let server = parse_url(server_url)?;
        let name = format!("renkei_test_{}", uuid::Uuid::new_v4().simple());
        execute_on(&server, &format!("CREATE DATABASE {name}")).await?;
        Ok(TestDatabase { server, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection configuration of this database.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut config = self.server.clone();
        config.dbname(&self.name);
        config
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread
        // with a runtime of its own can, and joining it keeps the drop synchronous.
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(execute_on(&server, &sql))
                .map_err(|e| e.to_string())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

/// Brings the database `config` names up to schema `version` only, as an older
/// build would have left it (for testing migrations from it).
pub async fn migrate_to_version(
    config: &tokio_postgres::Config,
    version: i32,
) -> Result<(), StoreError> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::backend(PostgresError::Connect(e.to_string())))?;
    let driver = tokio::spawn(connection);
    let result = crate::migrations::run_up_to(&mut client, version).await;
    drop(client);
    // The connection ends with the client; its own error, if any, is the migration's.
    let _ = driver.await;
    result
}

/// Runs one statement on its own short-lived connection (`CREATE DATABASE` and
/// `DROP DATABASE` cannot run inside a transaction or a pooled session).
async fn execute_on(config: &tokio_postgres::Config, sql: &str) -> Result<(), StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        StoreError::backend(PostgresError::Connect(format!(
            "{e} (the test server is {TEST_URL_VAR}, default {DEFAULT_TEST_URL}; \
             scripts/ensure-postgres starts it)"
        )))
    })?;
    let driver = tokio::spawn(connection);
    let result = client.batch_execute(sql).await.map_err(crate::backend);
    drop(client);
    // The connection ends with the client; its own error, if any, is the statement's.
    let _ = driver.await;
    result
}

/// A fresh, migrated store on a database of its own, for the conformance suite and
/// any other test that needs a PostgreSQL store.
pub async fn test_store() -> Result<TestStore, StoreError> {
    let database = TestDatabase::create(&test_server_url()).await?;
    let store = PostgresStore::connect_config(database.config()).await?;
    Ok(TestStore::new(Arc::new(store), database))
}
