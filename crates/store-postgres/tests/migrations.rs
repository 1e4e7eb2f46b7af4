//! Schema migrations on a real PostgreSQL: applied once however many nodes start
//! together, and harmless to run again.

use store::{EntityStore, Tenant};
use store_postgres::testing::{migrate_to_version, test_server_url, TestDatabase, TEST_URL_VAR};
use store_postgres::PostgresStore;

async fn database() -> TestDatabase {
    TestDatabase::create(&test_server_url())
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL at {TEST_URL_VAR}: {e}"))
}

fn url_of(database: &TestDatabase) -> String {
    // The test server URL with the database name swapped in.
    let server = test_server_url();
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base.to_owned(), format!("?{query}")),
        None => (server.clone(), String::new()),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    format!("{}/{}{query}", &base[..authority_end], database.name())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_migrate_once() {
    let database = database().await;
    let url = url_of(&database);
    let mut nodes = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let url = url.clone();
        nodes.spawn(async move { PostgresStore::connect(&url).await });
    }
    let mut stores = Vec::new();
    while let Some(joined) = nodes.join_next().await {
        match joined {
            Ok(Ok(store)) => stores.push(store),
            Ok(Err(e)) => panic!("a node failed to start: {e}"),
            Err(e) => panic!("a node's task failed: {e}"),
        }
    }
    PostgresStore::migrate(&url)
        .await
        .unwrap_or_else(|e| panic!("migrating again failed: {e}"));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(connection);
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM renkei_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("reading migrations: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Each version applied exactly once, none skipped (the catalog's is 8).
    let expected: Vec<i32> = (1..=versions.len() as i32).collect();
    assert_eq!(versions, expected);
    assert!(versions.len() >= 8, "{versions:?}");
    for store in &stores {
        assert_eq!(
            store.list_tenants().await.ok(),
            Some(vec![Tenant::default_tenant()])
        );
    }
}

#[tokio::test]
async fn a_bad_url_is_a_clear_error() {
    match PostgresStore::connect("postgres://[nope").await {
        Err(e) => assert!(
            e.to_string().contains("PostgreSQL URL") || format!("{e:?}").contains("InvalidUrl"),
            "{e:?}"
        ),
        Ok(_) => panic!("a malformed URL was accepted"),
    }
}

#[tokio::test]
async fn migrating_to_version_4_cuts_long_indexed_strings() {
    use ngsi_ld::query::index::INDEXED_TEXT_CHARS;
    let database = database().await;
    let config = database.config();
    migrate_to_version(&config, 3)
        .await
        .unwrap_or_else(|e| panic!("migrating to version 3: {e}"));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(connection);
    // A long string that compresses, so that version 3 could index it whole.
    let long = "大".repeat(INDEXED_TEXT_CHARS + 1);
    let mut entity = ngsi_ld::model::Entity::new(
        "urn:ngsi-ld:Shelter:1",
        vec!["https://ex.org/Shelter".into()],
    );
    entity.attributes.insert(
        "https://ex.org/name".into(),
        vec![ngsi_ld::model::Attribute::new(
            ngsi_ld::model::AttributeValue::Property(serde_json::json!(long)),
        )],
    );
    let doc = store::doc::entity_to_doc(&entity);
    client
        .execute(
            "WITH e AS (INSERT INTO entities (tenant, id, types, doc) VALUES ('', $1, $2, $3) RETURNING seq)
             INSERT INTO entity_values (seq, attr, txt) SELECT seq, 'https://ex.org/name', $4 FROM e",
            &[&entity.id, &entity.types, &doc, &long],
        )
        .await
        .unwrap_or_else(|e| panic!("writing a version 3 row: {e}"));
    let url_config = config.clone();
    PostgresStore::connect_config(url_config)
        .await
        .unwrap_or_else(|e| panic!("migrating to the newest version: {e}"));
    let indexed: Vec<String> = client
        .query(
            "SELECT txt FROM entity_values WHERE attr = 'https://ex.org/name'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("reading index rows: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(indexed, ["大".repeat(INDEXED_TEXT_CHARS)]);
}
