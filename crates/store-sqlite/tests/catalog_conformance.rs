//! The catalog conformance suite of `store`, run on SQLite: every case on a fresh
//! database file in a temporary directory that is removed afterwards.

use std::sync::Arc;
use store::catalog_conformance::CatalogTestStore;
use store_sqlite::SqliteStore;

async fn new_store() -> CatalogTestStore {
    let dir =
        tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"));
    let store = SqliteStore::open(dir.path().join("renkei.db"))
        .await
        .unwrap_or_else(|e| panic!("cannot open a SQLite store: {e}"));
    CatalogTestStore::new(Arc::new(store), dir)
}

store::catalog_conformance_suite!(new_store());

/// SQLite keeps a document as the text it was given, so even the order of its keys
/// reads back (PostgreSQL's `jsonb` does not keep it; the suite compares values).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_keep_the_order_of_their_keys() {
    use store::catalog::PackageRecord;
    let store = new_store().await;
    let document =
        serde_json::json!({"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [{"z": 0, "a": 1}]});
    let record = PackageRecord {
        id: "p-1".to_owned(),
        name: "ordered".to_owned(),
        owner_org: "372013".to_owned(),
        private: false,
        state: "active".to_owned(),
        resource_ids: Vec::new(),
        metadata_modified: chrono::DateTime::UNIX_EPOCH,
        document: document.clone(),
        change: 0,
    };
    store
        .insert_package(&record)
        .await
        .unwrap_or_else(|e| panic!("insert_package failed: {e}"));
    let read = store
        .get_package("p-1")
        .await
        .unwrap_or_else(|e| panic!("get_package failed: {e}"))
        .map(|r| r.document.to_string());
    assert_eq!(read, Some(document.to_string()));
    assert_eq!(
        read.as_deref(),
        Some(r#"{"zeta":1,"alpha":{"y":2,"b":3},"mid":[{"z":0,"a":1}]}"#)
    );
}
