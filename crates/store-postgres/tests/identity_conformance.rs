//! The identity conformance suite of `store`, run on PostgreSQL (every case on a
//! database of its own at `RENKEI_TEST_PG_URL`; nothing is skipped), and what the
//! audit chain shows when someone with access to the database changes or deletes a
//! record behind the store.

use identity::audit::{AuditEvent, ChainBreak, ChainCursor};
use serde_json::json;
use std::sync::Arc;
use store::identity::IdentityStore;
use store::identity_conformance::IdentityTestStore;
use store_postgres::testing::{test_server_url, TestDatabase, TEST_URL_VAR};
use store_postgres::PostgresStore;
use tokio_postgres::NoTls;

/// A fresh, migrated store on a database of its own, and that database.
async fn fresh_store() -> (PostgresStore, TestDatabase) {
    let database = match TestDatabase::create(&test_server_url()).await {
        Ok(database) => database,
        Err(e) => panic!(
            "no PostgreSQL test server at {} (set {TEST_URL_VAR}, or run \
             scripts/ensure-postgres): {e}",
            test_server_url()
        ),
    };
    let store = PostgresStore::connect_config(database.config())
        .await
        .unwrap_or_else(|e| panic!("cannot open the test database: {e}"));
    (store, database)
}

async fn new_store() -> IdentityTestStore {
    let (store, database) = fresh_store().await;
    IdentityTestStore::new(Arc::new(store), database)
}

store::identity_conformance_suite!(new_store());

async fn append_five(store: &PostgresStore) {
    for n in 1..=5 {
        let event = AuditEvent::new(
            Some("222127"),
            "user:u1",
            "key.create",
            format!("key:{n}"),
            json!({"label": format!("key {n}"), "scopes": ["broker:read"]}),
        );
        store
            .append_audit(event)
            .await
            .unwrap_or_else(|e| panic!("append_audit failed: {e}"));
    }
}

/// Runs SQL on the test database over a connection of its own, as anyone with the
/// database owner's password could.
async fn run_sql(database: &TestDatabase, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = database
        .config()
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    let driver = tokio::spawn(connection);
    let result = client.batch_execute(sql).await;
    drop(client);
    let _ = driver.await;
    result
}

async fn verify(store: &PostgresStore) -> Result<(), ChainBreak> {
    let chain = store
        .audit_chain(1, 100)
        .await
        .unwrap_or_else(|e| panic!("audit_chain failed: {e}"));
    ChainCursor::default().verify(&chain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_to_change_or_delete_audit_records() {
    let (store, database) = fresh_store().await;
    append_five(&store).await;
    for sql in [
        "UPDATE audit_log SET target = 'key:x' WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 2",
        "TRUNCATE audit_log",
    ] {
        assert!(run_sql(&database, sql).await.is_err(), "{sql} went through");
    }
    assert_eq!(verify(&store).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_changed_in_the_database_breaks_the_chain_at_that_record() {
    let (store, database) = fresh_store().await;
    append_five(&store).await;
    assert_eq!(verify(&store).await, Ok(()));
    run_sql(
        &database,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
         UPDATE audit_log SET target = 'key:someone-elses' WHERE seq = 3;",
    )
    .await
    .unwrap_or_else(|e| panic!("tampering failed: {e}"));
    assert_eq!(verify(&store).await, Err(ChainBreak::Altered { seq: 3 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_deleted_from_the_database_leaves_a_gap() {
    let (store, database) = fresh_store().await;
    append_five(&store).await;
    run_sql(
        &database,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
         DELETE FROM audit_log WHERE seq = 3;",
    )
    .await
    .unwrap_or_else(|e| panic!("tampering failed: {e}"));
    assert_eq!(
        verify(&store).await,
        Err(ChainBreak::Gap {
            expected: 3,
            found: 4
        })
    );
}
