//! The applications conformance suite of `store`, run on SQLite: every case on a
//! fresh database file in a temporary directory that is removed afterwards.

use std::sync::Arc;
use store::applications_conformance::ApplicationsTestStore;
use store_sqlite::SqliteStore;

async fn new_store() -> ApplicationsTestStore {
    let dir =
        tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"));
    let store = SqliteStore::open(dir.path().join("renkei.db"))
        .await
        .unwrap_or_else(|e| panic!("cannot open a SQLite store: {e}"));
    ApplicationsTestStore::new(Arc::new(store), dir)
}

store::applications_conformance_suite!(new_store());
