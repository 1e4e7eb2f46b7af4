//! The registrations conformance suite of `store`, run on SQLite: every case on a
//! fresh database file in a temporary directory that is removed afterwards.

use std::sync::Arc;
use store::registrations_conformance::RegistrationsTestStore;
use store_sqlite::SqliteStore;

async fn new_store() -> RegistrationsTestStore {
    let dir =
        tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"));
    let store = SqliteStore::open(dir.path().join("renkei.db"))
        .await
        .unwrap_or_else(|e| panic!("cannot open a SQLite store: {e}"));
    RegistrationsTestStore::new(Arc::new(store), dir)
}

store::registrations_conformance_suite!(new_store());
