//! The storage conformance suite of `store`, run on PostgreSQL: every case on a
//! database of its own. PostgreSQL with PostGIS must be reachable at
//! `RENKEI_TEST_PG_URL` (scripts/ensure-postgres sees to it); nothing is skipped.

use store::conformance::TestStore;
use store_postgres::testing::{test_server_url, test_store, TEST_URL_VAR};

async fn new_store() -> TestStore {
    match test_store().await {
        Ok(store) => store,
        Err(e) => panic!(
            "no PostgreSQL test database at {} (set {TEST_URL_VAR}, or run \
             scripts/ensure-postgres): {e}",
            test_server_url()
        ),
    }
}

store::conformance_suite!(new_store());
