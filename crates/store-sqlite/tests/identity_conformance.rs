//! The identity conformance suite of `store`, run on SQLite (every case on a fresh
//! database file in a temporary directory), and what the audit chain shows when
//! someone with access to the file changes or deletes a record behind the store.

use identity::audit::{AuditEvent, ChainBreak, ChainCursor};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use store::identity::IdentityStore;
use store::identity_conformance::IdentityTestStore;
use store_sqlite::SqliteStore;

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path)
        .await
        .unwrap_or_else(|e| panic!("cannot open a SQLite store: {e}"))
}

async fn new_store() -> IdentityTestStore {
    let dir =
        tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"));
    let store = open(&dir.path().join("renkei.db")).await;
    IdentityTestStore::new(Arc::new(store), dir)
}

store::identity_conformance_suite!(new_store());

/// A store with five audit records, and where its file is.
async fn store_with_five_records(dir: &Path) -> (SqliteStore, std::path::PathBuf) {
    let path = dir.join("renkei.db");
    let store = open(&path).await;
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
    (store, path)
}

/// Runs SQL on the database file directly, as anyone able to open it could.
fn tamper(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path)
        .unwrap_or_else(|e| panic!("cannot open the database file: {e}"));
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("tampering failed: {e}"));
}

async fn verify(store: &SqliteStore) -> Result<(), ChainBreak> {
    let chain = store
        .audit_chain(1, 100)
        .await
        .unwrap_or_else(|e| panic!("audit_chain failed: {e}"));
    ChainCursor::default().verify(&chain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_refuses_to_change_or_delete_audit_records() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let (store, path) = store_with_five_records(dir.path()).await;
    let conn = rusqlite::Connection::open(&path)
        .unwrap_or_else(|e| panic!("cannot open the database file: {e}"));
    let update = conn.execute("UPDATE audit_log SET target = 'key:x' WHERE seq = 3", []);
    assert!(update.is_err(), "an UPDATE of the audit log went through");
    let delete = conn.execute("DELETE FROM audit_log WHERE seq = 2", []);
    assert!(delete.is_err(), "a DELETE from the audit log went through");
    drop(conn);
    assert_eq!(verify(&store).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_changed_in_the_file_breaks_the_chain_at_that_record() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let (store, path) = store_with_five_records(dir.path()).await;
    assert_eq!(verify(&store).await, Ok(()));
    tamper(
        &path,
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET target = 'key:someone-elses' WHERE seq = 3;",
    );
    assert_eq!(verify(&store).await, Err(ChainBreak::Altered { seq: 3 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_deleted_from_the_file_leaves_a_gap() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let (store, path) = store_with_five_records(dir.path()).await;
    tamper(
        &path,
        "DROP TRIGGER audit_log_no_delete;
         DELETE FROM audit_log WHERE seq = 3;",
    );
    assert_eq!(
        verify(&store).await,
        Err(ChainBreak::Gap {
            expected: 3,
            found: 4
        })
    );
}
