//! The SQL prefilters of `q` and geo-queries on a real PostgreSQL: over a few hundred
//! entities, every query returns exactly what the evaluator alone picks from all of
//! them, after writes that replace and delete entities, and on a database migrated
//! from schema version 1 (whose index the migration back-fills).

use ngsi_ld::context::{decode_entity, ActiveContext};
use ngsi_ld::model::Entity;
use ngsi_ld::query::eval::Matcher;
use ngsi_ld::query::geo::parse_geo_query;
use ngsi_ld::query::{q, EntityQuery, TypeExpr};
use ngsi_ld::NgsiError;
use serde_json::{json, Value};
use store::doc::entity_to_doc;
use store::{EntityStore, Modification, Tenant, Write};
use store_postgres::testing::{migrate_to_version, test_server_url, TestDatabase, TEST_URL_VAR};
use store_postgres::PostgresStore;

const SHELTERS: usize = 300;
const SHELTER: &str = "https://uri.etsi.org/ngsi-ld/default-context/Shelter";

async fn database() -> TestDatabase {
    TestDatabase::create(&test_server_url())
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL at {TEST_URL_VAR}: {e}"))
}

/// Shelter `i`: capacities that are numbers, lists, text or missing; names; a flag;
/// a point on a grid, sometimes a second `location` instance far away or none.
fn shelter_json(i: usize, generation: usize) -> Value {
    let capacity = match i % 10 {
        0 => None,
        1 => Some(json!("big")),
        2 => Some(json!([i % 201, (i * 3 + generation) % 201])),
        _ => Some(json!((i * 7 + generation * 13) % 201)),
    };
    let lon = 138.30 + (i % 20) as f64 * 0.004;
    let lat = 34.90 + (i / 20) as f64 * 0.004;
    let point = json!({"type": "Point", "coordinates": [lon, lat]});
    let location = match i % 25 {
        0 => None,
        // The default instance is far away; the other one is on the grid.
        1 => Some(json!([
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [139.7, 35.6]}},
            {"type": "GeoProperty", "value": point, "datasetId": "urn:ngsi-ld:Dataset:grid"}
        ])),
        2 => Some(
            json!({"type": "GeoProperty", "value": {"type": "LineString",
            "coordinates": [[lon, lat], [lon + 0.01, lat + 0.01]]}}),
        ),
        _ => Some(json!({"type": "GeoProperty", "value": point})),
    };
    let mut entity = json!({
        "id": format!("urn:ngsi-ld:Shelter:{i:04}"),
        "type": "Shelter",
        "name": {"type": "Property", "value": format!("shelter-{}", i % 37)},
        "open": {"type": "Property", "value": i.is_multiple_of(3)},
    });
    if let (Some(members), Some(capacity)) = (entity.as_object_mut(), capacity) {
        members.insert(
            "capacity".into(),
            json!({"type": "Property", "value": capacity}),
        );
    }
    if let (Some(members), Some(location)) = (entity.as_object_mut(), location) {
        members.insert("location".into(), location);
    }
    entity
}

fn shelter(i: usize, generation: usize) -> Entity {
    decode_entity(&shelter_json(i, generation), &ActiveContext::core())
        .unwrap_or_else(|e| panic!("fixture shelter {i} does not decode: {e}"))
}

fn expanded(mut query: EntityQuery) -> EntityQuery {
    let ctx = ActiveContext::core();
    query.expand_names(&|t| ctx.expand_iri(t, true), &|a| ctx.expand_iri(a, true));
    query
}

fn q_query(text: &str) -> EntityQuery {
    let parsed = q::parse(text).unwrap_or_else(|e| panic!("q {text:?} does not parse: {e}"));
    expanded(EntityQuery {
        types: Some(TypeExpr::Type("Shelter".into())),
        q: Some(parsed),
        limit: 1000,
        ..EntityQuery::default()
    })
}

fn geo_query(georel: &str, geometry: &str, coordinates: &str) -> EntityQuery {
    let geo = parse_geo_query(georel, geometry, coordinates, None)
        .unwrap_or_else(|e| panic!("geo-query {georel} {coordinates} does not parse: {e}"));
    expanded(EntityQuery {
        types: Some(TypeExpr::Type("Shelter".into())),
        geo_q: Some(geo),
        limit: 1000,
        ..EntityQuery::default()
    })
}

/// The queries compared: numbers, text, booleans, lists, ranges, negations,
/// combinations, presence and geo-queries (including one only the non-default
/// instance of `location` matches).
fn queries() -> Vec<(String, EntityQuery)> {
    let mut queries: Vec<(String, EntityQuery)> = [
        "capacity>150",
        "capacity>=150;open==true",
        "capacity<10|name==\"shelter-3\"",
        "capacity==10,20,30,\"big\"",
        "capacity==5..50",
        "capacity!=100",
        "capacity==\"big\"",
        "name>\"shelter-30\"",
        "name<=\"shelter-10\"",
        "open==false",
        "capacity",
        "capacity~=b.*",
        "(capacity>190|capacity<3);name!=\"shelter-1\"",
    ]
    .into_iter()
    .map(|text| (format!("q={text}"), q_query(text)))
    .collect();
    let middle = "[138.338,34.92]";
    let area = "[[[138.30,34.90],[138.33,34.90],[138.33,34.93],[138.30,34.93],[138.30,34.90]]]";
    for (georel, geometry, coordinates) in [
        ("near;maxDistance==1500", "Point", middle),
        ("near;maxDistance==500", "Point", "[138.304,34.904]"),
        ("near;minDistance==2000", "Point", middle),
        ("within", "Polygon", area),
        ("intersects", "Polygon", area),
        ("disjoint", "Polygon", area),
        ("near;maxDistance==10", "Point", "[139.7,35.6]"),
        // Only shelter 1's second `location` instance is this close.
        ("near;maxDistance==100", "Point", "[138.304,34.90]"),
    ] {
        let label = format!("georel={georel} {geometry} {coordinates}");
        queries.push((label, geo_query(georel, geometry, coordinates)));
    }
    queries
}

fn ids(entities: &[Entity]) -> Vec<String> {
    entities.iter().map(|e| e.id.clone()).collect()
}

/// Checks every query against the evaluator run over every stored entity, as a whole
/// and as a counted page from the middle.
async fn assert_queries_match_the_evaluator(store: &PostgresStore, stage: &str) {
    let tenant = Tenant::default_tenant();
    let everything = EntityQuery {
        types: Some(TypeExpr::Type(SHELTER.into())),
        limit: SHELTERS * 2,
        ..EntityQuery::default()
    };
    let all = store
        .query_entities(&tenant, &everything)
        .await
        .unwrap_or_else(|e| panic!("{stage}: listing every shelter failed: {e}"))
        .entities;
    assert!(
        all.len() > SHELTERS / 2,
        "{stage}: only {} shelters",
        all.len()
    );
    for (label, query) in queries() {
        let matcher = Matcher::new(&query);
        let expected: Vec<String> = all
            .iter()
            .filter(|e| matcher.matches(e))
            .map(|e| e.id.clone())
            .collect();
        // A query nothing matches would prove nothing about the prefilter.
        assert!(!expected.is_empty(), "{stage}: {label} matches nothing");
        let page = store
            .query_entities(&tenant, &query)
            .await
            .unwrap_or_else(|e| panic!("{stage}: {label} failed: {e}"));
        assert_eq!(ids(&page.entities), expected, "{stage}: {label}");
        let paged = EntityQuery {
            offset: 3,
            limit: 5,
            count: true,
            ..query.clone()
        };
        let page = store
            .query_entities(&tenant, &paged)
            .await
            .unwrap_or_else(|e| panic!("{stage}: {label} (paged) failed: {e}"));
        let window: Vec<String> = expected.iter().skip(3).take(5).cloned().collect();
        assert_eq!(ids(&page.entities), window, "{stage}: {label} (paged)");
        assert_eq!(
            page.total,
            Some(expected.len() as u64),
            "{stage}: {label} (count)"
        );
    }
}

#[tokio::test]
async fn prefiltered_queries_return_what_the_evaluator_alone_returns() {
    let database = database().await;
    let store = PostgresStore::connect_config(database.config())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let tenant = Tenant::default_tenant();
    for i in 0..SHELTERS {
        store
            .create_entity(&tenant, shelter(i, 0))
            .await
            .unwrap_or_else(|e| panic!("creating shelter {i}: {e}"));
    }
    assert_queries_match_the_evaluator(&store, "after creation").await;

    // Replace every third shelter with new values, and delete every seventh: the
    // index rows must follow.
    let mut modifications = Vec::new();
    for i in 0..SHELTERS {
        let id = format!("urn:ngsi-ld:Shelter:{i:04}");
        if i.is_multiple_of(7) {
            modifications.push(Modification::new(id, |_| Ok(Write::Delete)));
        } else if i.is_multiple_of(3) {
            let replacement = shelter(i, 1);
            modifications.push(Modification::new(id, move |_| {
                Ok::<_, NgsiError>(Write::Put(replacement))
            }));
        }
    }
    let results = store
        .modify(&tenant, modifications)
        .await
        .unwrap_or_else(|e| panic!("modifying: {e}"));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_queries_match_the_evaluator(&store, "after modification").await;

    // Deleting by a prefiltered query deletes exactly the matches.
    let doomed = q_query("capacity>180");
    let all = store
        .query_entities(&tenant, &q_query("name"))
        .await
        .unwrap_or_else(|e| panic!("listing: {e}"))
        .entities;
    let matcher = Matcher::new(&doomed);
    let expected = all.iter().filter(|e| matcher.matches(e)).count();
    assert!(expected > 0, "the fixture has no capacity above 180");
    let deleted = store
        .delete_matching(&tenant, &doomed)
        .await
        .unwrap_or_else(|e| panic!("delete_matching: {e}"));
    assert_eq!(deleted, expected as u64);
    assert_queries_match_the_evaluator(&store, "after delete_matching").await;
}

#[tokio::test]
async fn migrating_from_version_1_indexes_existing_entities() {
    let database = database().await;
    let config = database.config();
    migrate_to_version(&config, 1)
        .await
        .unwrap_or_else(|e| panic!("migrating to version 1: {e}"));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(connection);
    // Rows as version 1 wrote them: the default `location` instance's geometry only.
    for i in 0..SHELTERS {
        let entity = shelter(i, 0);
        let location = shelter_json(i, 0).get("location").and_then(|l| {
            let default = if l.is_array() { l.get(0)? } else { l };
            default.get("value").map(Value::to_string)
        });
        client
            .execute(
                "INSERT INTO entities (tenant, id, types, scopes, doc, location)
                 VALUES ('', $1, $2, '{}', $3, renkei_geometry_or_null($4))",
                &[
                    &entity.id,
                    &entity.types,
                    &entity_to_doc(&entity),
                    &location,
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("writing a version 1 row: {e}"));
    }
    let store = PostgresStore::connect_config(config.clone())
        .await
        .unwrap_or_else(|e| panic!("migrating to the newest version: {e}"));
    let indexed: i64 = client
        .query_one("SELECT count(DISTINCT seq) FROM entity_values", &[])
        .await
        .and_then(|row| row.try_get(0))
        .unwrap_or_else(|e| panic!("counting index rows: {e}"));
    assert_eq!(indexed, SHELTERS as i64);
    assert_queries_match_the_evaluator(&store, "after migration").await;
}

#[tokio::test]
async fn bulk_writes_refresh_the_planner_statistics() {
    let database = database().await;
    let config = database.config();
    let store = PostgresStore::connect_config(config.clone())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(connection);
    let analysed = || async {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_user_tables
                 WHERE relname IN ('entities', 'entity_values') AND last_analyze IS NOT NULL",
                &[],
            )
            .await
            .and_then(|row| row.try_get::<_, i64>(0))
            .unwrap_or_else(|e| panic!("reading table statistics: {e}"))
    };
    let tenant = Tenant::default_tenant();
    let batch = |from: usize, to: usize| {
        (from..to)
            .map(|i| {
                let entity = shelter(i, 0);
                Modification::new(entity.id.clone(), move |_| Ok(Write::Put(entity)))
            })
            .collect::<Vec<_>>()
    };
    store
        .modify(&tenant, batch(0, 500))
        .await
        .unwrap_or_else(|e| panic!("writing: {e}"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(analysed().await, 0, "analysed after a few writes");
    store
        .modify(&tenant, batch(500, 1000))
        .await
        .unwrap_or_else(|e| panic!("writing: {e}"));
    let mut waited = 0;
    while analysed().await < 2 {
        assert!(waited < 100, "no statistics 10 s after 1000 writes");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
}
