//! The registrations conformance suite of `store`, run on PostgreSQL: every case on a
//! database of its own at `RENKEI_TEST_PG_URL` (nothing is skipped).

use std::sync::Arc;
use store::registrations_conformance::RegistrationsTestStore;
use store_postgres::testing::{test_server_url, TestDatabase, TEST_URL_VAR};
use store_postgres::PostgresStore;

async fn new_store() -> RegistrationsTestStore {
    let database = TestDatabase::create(&test_server_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no PostgreSQL test server at {} (set {TEST_URL_VAR}, or run \
                 scripts/ensure-postgres): {e}",
                test_server_url()
            )
        });
    let store = PostgresStore::connect_config(database.config())
        .await
        .unwrap_or_else(|e| panic!("cannot open the test database: {e}"));
    RegistrationsTestStore::new(Arc::new(store), database)
}

store::registrations_conformance_suite!(new_store());
