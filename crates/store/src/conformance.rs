//! The one behavioural test suite every storage backend must pass, so that the broker
//! behaves the same on SQLite and on PostgreSQL. A backend runs it from one of its
//! test files with [`conformance_suite!`](crate::conformance_suite), giving an async
//! expression that yields a fresh, empty [`TestStore`]:
//!
//! ```text
//! async fn new_store() -> store::conformance::TestStore { /* a throwaway database */ }
//! store::conformance_suite!(new_store());
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case (the public async
//! functions of this module), so the calling
//! crate needs `tokio` (features `macros`, `rt-multi-thread`) among its
//! dev-dependencies. The cases build their queries by hand, so they test the store
//! and not the query parsers.

use crate::{EntityStore, SharedStore};
use std::ops::Deref;

/// A store under test together with whatever keeps its database alive (a temporary
/// file, a throwaway PostgreSQL database). The store is dropped before the guard, so
/// a guard whose `Drop` removes the database finds no connection of its own left.
pub struct TestStore {
    // Field order matters: fields drop in declaration order.
    store: SharedStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl TestStore {
    /// `keep_alive` is dropped when the test is done with the store; its `Drop`
    /// should remove the database.
    pub fn new(store: SharedStore, keep_alive: impl Send + Sync + 'static) -> Self {
        TestStore {
            store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    /// Another handle to the store, for tasks spawned by a test.
    pub fn shared(&self) -> SharedStore {
        SharedStore::clone(&self.store)
    }
}

impl Deref for TestStore {
    type Target = dyn EntityStore;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

/// Expands to the conformance suite as `#[tokio::test]` functions, each getting a
/// fresh store from `$new_store` (an async expression yielding a [`TestStore`]).
/// Invoke it once, in a test file or module of its own (the test names are those of
/// the cases in this module).
#[macro_export]
macro_rules! conformance_suite {
    ($new_store:expr) => {
        $crate::conformance_suite!(@cases $new_store;
            create_then_get_returns_the_entity,
            creating_an_existing_entity_is_already_exists,
            a_missing_entity_is_none,
            the_default_tenant_exists_and_others_appear_on_first_write,
            tenants_are_strictly_isolated,
            modify_applies_in_order_each_item_seeing_the_previous,
            a_long_batch_applies_in_order_each_item_seeing_the_previous,
            a_refused_item_writes_nothing_and_the_others_are_written,
            modify_deletes_and_leaves_unchanged,
            modify_creates_the_tenant_on_first_write,
            concurrent_modifications_lose_no_update,
            query_by_type_any_and_all,
            query_by_ids_and_attributes,
            query_by_id_pattern,
            query_by_q_comparison_and_range,
            query_by_q_on_long_strings,
            query_by_scope_q,
            query_by_geo_q_near_and_within,
            paging_follows_creation_order_and_counts_the_total,
            a_long_page_is_whole_and_in_creation_order,
            a_replaced_entity_keeps_its_place_in_creation_order,
            delete_matching_deletes_only_the_matches,
            type_and_attribute_stats,
            contexts_by_id_and_url,
            every_attribute_kind_round_trips,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: $crate::conformance::TestStore = $new_store.await;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures. Every name is an expanded IRI, as the broker hands them to the store.

use crate::{ContextKind, EntityPage, Modification, StoreError, StoredContext, Tenant, Write};
use chrono::{DateTime, TimeZone, Utc};
use ngsi_ld::model::{iri, Attribute, AttributeValue, Entity, RelationshipObject};
use ngsi_ld::query::{
    AttrPath, EntityQuery, GeoQuery, GeoRel, Geometry, QExpr, QOp, QTerm, QValue, ScopeExpr,
    TypeExpr,
};
use ngsi_ld::NgsiError;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const SHELTER: &str = "https://ex.org/Shelter";
const HOSPITAL: &str = "https://ex.org/Hospital";
const BUILDING: &str = "https://ex.org/Building";
const CAPACITY: &str = "https://ex.org/capacity";
const NAME: &str = "https://ex.org/name";
const COUNTER: &str = "https://ex.org/counter";

/// A fixed instant, whole microseconds, so it survives every backend unchanged.
fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, second)
        .single()
        .unwrap_or_default()
}

fn entity(id: &str, types: &[&str]) -> Entity {
    let mut e = Entity::new(id, types.iter().map(|t| t.to_string()).collect());
    e.created_at = Some(at(0));
    e.modified_at = Some(at(0));
    e
}

fn with_property(mut e: Entity, attr: &str, value: Value) -> Entity {
    e.attributes.insert(
        attr.to_owned(),
        vec![Attribute::new(AttributeValue::Property(value))],
    );
    e
}

fn with_location(mut e: Entity, longitude: f64, latitude: f64) -> Entity {
    let point = json!({"type": "Point", "coordinates": [longitude, latitude]});
    e.attributes.insert(
        iri::LOCATION.to_owned(),
        vec![Attribute::new(AttributeValue::GeoProperty(point))],
    );
    e
}

async fn create(store: &TestStore, tenant: &Tenant, e: Entity) {
    let id = e.id.clone();
    if let Err(err) = store.create_entity(tenant, e).await {
        panic!("creating {id} in tenant {tenant:?} failed: {err}");
    }
}

async fn get(store: &TestStore, tenant: &Tenant, id: &str) -> Option<Entity> {
    store
        .get_entity(tenant, id)
        .await
        .unwrap_or_else(|err| panic!("getting {id} in tenant {tenant:?} failed: {err}"))
}

async fn query(store: &TestStore, tenant: &Tenant, q: EntityQuery) -> EntityPage {
    store
        .query_entities(tenant, &q)
        .await
        .unwrap_or_else(|err| panic!("query {q:?} failed: {err}"))
}

/// The ids of the entities a query returns, in the order returned.
async fn ids(store: &TestStore, q: EntityQuery) -> Vec<String> {
    query(store, &Tenant::default_tenant(), q)
        .await
        .entities
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// A query for everything, one page big enough for every fixture.
fn all() -> EntityQuery {
    EntityQuery {
        limit: 1000,
        ..EntityQuery::default()
    }
}

fn types_or(names: &[&str]) -> Option<TypeExpr> {
    Some(TypeExpr::Or(
        names
            .iter()
            .map(|n| TypeExpr::Type(n.to_string()))
            .collect(),
    ))
}

fn q_term(attr: &str, op: QOp, value: QValue) -> QExpr {
    QExpr::Term(QTerm {
        path: AttrPath {
            attr: attr.to_owned(),
            sub_attrs: Vec::new(),
            trailing: Vec::new(),
        },
        comparison: Some((op, value)),
    })
}

fn geometry(geojson: Value) -> Geometry {
    Geometry::from_geojson(&geojson)
        .unwrap_or_else(|err| panic!("fixture geometry {geojson} rejected: {err}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn modify(
    store: &TestStore,
    tenant: &Tenant,
    modifications: Vec<Modification>,
) -> Vec<Result<Write, NgsiError>> {
    store
        .modify(tenant, modifications)
        .await
        .unwrap_or_else(|err| panic!("modify in tenant {tenant:?} failed: {err}"))
}

/// The integer value of a Property of an entity, if it has one.
fn integer(e: &Entity, attr: &str) -> Option<i64> {
    match &e.attribute(attr, None)?.value {
        AttributeValue::Property(v) => v.as_i64(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Entities and tenants.

pub async fn create_then_get_returns_the_entity(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    let mut e = with_property(
        entity("urn:ngsi-ld:Shelter:1", &[SHELTER, BUILDING]),
        CAPACITY,
        json!(120),
    );
    e.scopes = strings(&["/Shizuoka/Yaizu"]);
    create(store, &tenant, e.clone()).await;
    assert_eq!(get(store, &tenant, "urn:ngsi-ld:Shelter:1").await, Some(e));
}

pub async fn creating_an_existing_entity_is_already_exists(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    let first = with_property(
        entity("urn:ngsi-ld:Shelter:1", &[SHELTER]),
        CAPACITY,
        json!(1),
    );
    create(store, &tenant, first.clone()).await;
    let second = with_property(
        entity("urn:ngsi-ld:Shelter:1", &[SHELTER]),
        CAPACITY,
        json!(2),
    );
    match store.create_entity(&tenant, second).await {
        Err(StoreError::AlreadyExists(id)) => assert_eq!(id, "urn:ngsi-ld:Shelter:1"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        get(store, &tenant, "urn:ngsi-ld:Shelter:1").await,
        Some(first)
    );
}

pub async fn a_missing_entity_is_none(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    assert_eq!(get(store, &tenant, "urn:ngsi-ld:Shelter:none").await, None);
    let unknown = Tenant::named("unknown");
    assert_eq!(get(store, &unknown, "urn:ngsi-ld:Shelter:none").await, None);
    let page = query(
        store,
        &unknown,
        EntityQuery {
            count: true,
            ..all()
        },
    )
    .await;
    assert_eq!(
        page,
        EntityPage {
            entities: Vec::new(),
            total: Some(0)
        }
    );
}

pub async fn the_default_tenant_exists_and_others_appear_on_first_write(store: &TestStore) {
    let default = Tenant::default_tenant();
    let yaizu = Tenant::named("yaizu");
    assert!(store.tenant_exists(&default).await.unwrap_or(false));
    assert!(!store.tenant_exists(&yaizu).await.unwrap_or(true));
    let before = store.list_tenants().await.unwrap_or_default();
    assert_eq!(before, vec![default.clone()]);
    // Reading does not create a tenant.
    get(store, &yaizu, "urn:ngsi-ld:Shelter:1").await;
    assert!(!store.tenant_exists(&yaizu).await.unwrap_or(true));
    create(store, &yaizu, entity("urn:ngsi-ld:Shelter:1", &[SHELTER])).await;
    assert!(store.tenant_exists(&yaizu).await.unwrap_or(false));
    let after = store.list_tenants().await.unwrap_or_default();
    assert_eq!(after, vec![default, yaizu]);
}

pub async fn tenants_are_strictly_isolated(store: &TestStore) {
    let (a, b) = (Tenant::named("shizuoka"), Tenant::named("hamamatsu"));
    let in_a = with_property(
        entity("urn:ngsi-ld:Shelter:1", &[SHELTER]),
        CAPACITY,
        json!(10),
    );
    let in_b = with_property(
        entity("urn:ngsi-ld:Shelter:1", &[HOSPITAL]),
        CAPACITY,
        json!(20),
    );
    create(store, &a, in_a.clone()).await;
    create(store, &b, in_b.clone()).await;
    assert_eq!(
        get(store, &a, "urn:ngsi-ld:Shelter:1").await,
        Some(in_a.clone())
    );
    assert_eq!(get(store, &b, "urn:ngsi-ld:Shelter:1").await, Some(in_b));
    assert_eq!(
        get(store, &Tenant::default_tenant(), "urn:ngsi-ld:Shelter:1").await,
        None
    );
    let page = query(
        store,
        &a,
        EntityQuery {
            count: true,
            ..all()
        },
    )
    .await;
    assert_eq!(
        page,
        EntityPage {
            entities: vec![in_a],
            total: Some(1)
        }
    );
    let deleted = store.delete_matching(&b, &all()).await;
    assert_eq!(deleted.ok(), Some(1));
    assert!(get(store, &a, "urn:ngsi-ld:Shelter:1").await.is_some());
    assert!(store.type_stats(&b).await.unwrap_or_default().is_empty());
    assert_eq!(store.type_stats(&a).await.unwrap_or_default().len(), 1);
}

// ---------------------------------------------------------------------------------
// Read-modify-write.

pub async fn modify_applies_in_order_each_item_seeing_the_previous(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    let id = "urn:ngsi-ld:Shelter:1";
    let results = modify(
        store,
        &tenant,
        vec![
            Modification::new(id, |current| {
                assert!(current.is_none(), "the entity does not exist yet");
                Ok(Write::Put(with_property(
                    entity(id, &[SHELTER]),
                    CAPACITY,
                    json!(1),
                )))
            }),
            Modification::new(id, |current| {
                let current = current.ok_or_else(|| NgsiError::not_found("first item not seen"))?;
                let next = integer(&current, CAPACITY).unwrap_or(0) + 1;
                Ok(Write::Put(with_property(current, CAPACITY, json!(next))))
            }),
            Modification::new(id, |current| {
                let current =
                    current.ok_or_else(|| NgsiError::not_found("second item not seen"))?;
                Ok(Write::Put(with_property(
                    current,
                    NAME,
                    json!("焼津避難所"),
                )))
            }),
        ],
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let stored = get(store, &tenant, id)
        .await
        .unwrap_or_else(|| panic!("{id} missing"));
    assert_eq!(integer(&stored, CAPACITY), Some(2));
    assert_eq!(
        stored.attribute(NAME, None).map(|a| a.value.clone()),
        Some(AttributeValue::Property(json!("焼津避難所")))
    );
}

/// A batch long enough for a backend to work on several items at once (the SQLite
/// writer encodes items on a helper thread): items on the same entities, a few apart,
/// still see each other's writes, and come back in order.
pub async fn a_long_batch_applies_in_order_each_item_seeing_the_previous(store: &TestStore) {
    /// What an item does to an entity whose counter is `count` (`None`: not stored):
    /// deletes it, or puts it with the counter one up.
    fn step(id: &str, delete: bool, count: Option<i64>) -> Result<Write, NgsiError> {
        Ok(match (delete, count) {
            (true, Some(_)) => Write::Delete,
            (true, None) => Write::Unchanged,
            (false, _) => Write::Put(with_property(
                entity(id, &[SHELTER]),
                COUNTER,
                json!(count.unwrap_or(0) + 1),
            )),
        })
    }
    let tenant = Tenant::default_tenant();
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    let mut expected = Vec::new();
    let mut modifications = Vec::new();
    for i in 0..150 {
        let id = format!("urn:ngsi-ld:Shelter:long:{}", i % 7);
        let seen = counters.get(&id).copied();
        let delete = i % 11 == 10;
        if delete {
            counters.remove(&id);
        } else {
            counters.insert(id.clone(), seen.unwrap_or(0) + 1);
        }
        expected.push(step(&id, delete, seen));
        let item_id = id.clone();
        modifications.push(Modification::new(id, move |current| {
            let current_count = current.as_ref().and_then(|e| integer(e, COUNTER));
            if current_count != seen {
                return Err(NgsiError::bad_request_data(format!(
                    "item {i} on {item_id} saw {current_count:?}, not {seen:?}"
                )));
            }
            step(&item_id, delete, current_count)
        }));
    }
    let results = modify(store, &tenant, modifications).await;
    assert_eq!(results, expected);
    for i in 0..7 {
        let id = format!("urn:ngsi-ld:Shelter:long:{i}");
        let stored = get(store, &tenant, &id).await;
        assert_eq!(
            stored.as_ref().and_then(|e| integer(e, COUNTER)),
            counters.get(&id).copied(),
            "{id}"
        );
    }
}

pub async fn a_refused_item_writes_nothing_and_the_others_are_written(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    create(
        store,
        &tenant,
        with_property(entity("urn:a", &[SHELTER]), CAPACITY, json!(1)),
    )
    .await;
    let results = modify(
        store,
        &tenant,
        vec![
            Modification::new("urn:a", |current| {
                let current = current.ok_or_else(|| NgsiError::not_found("urn:a"))?;
                Ok(Write::Put(with_property(current, CAPACITY, json!(2))))
            }),
            Modification::new("urn:b", |current| match current {
                Some(_) => Ok(Write::Delete),
                None => Err(NgsiError::not_found("urn:b does not exist")),
            }),
            Modification::new("urn:c", |_| Ok(Write::Put(entity("urn:c", &[HOSPITAL])))),
        ],
    )
    .await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(
        results[1],
        Err(NgsiError::not_found("urn:b does not exist"))
    );
    let a = get(store, &tenant, "urn:a").await;
    assert_eq!(a.as_ref().and_then(|a| integer(a, CAPACITY)), Some(2));
    assert_eq!(get(store, &tenant, "urn:b").await, None);
    // A refused item leaves the entity as it was for the next item on it.
    let results = modify(
        store,
        &tenant,
        vec![
            Modification::new("urn:a", |_| Err(NgsiError::not_found("refused"))),
            Modification::new("urn:a", |current| {
                let current = current.ok_or_else(|| NgsiError::not_found("urn:a lost"))?;
                let next = integer(&current, CAPACITY).unwrap_or(0) + 1;
                Ok(Write::Put(with_property(current, CAPACITY, json!(next))))
            }),
        ],
    )
    .await;
    assert!(results[0].is_err() && results[1].is_ok(), "{results:?}");
    let a = get(store, &tenant, "urn:a").await;
    assert_eq!(a.as_ref().and_then(|a| integer(a, CAPACITY)), Some(3));
    assert_eq!(
        get(store, &tenant, "urn:c").await,
        Some(entity("urn:c", &[HOSPITAL]))
    );
}

pub async fn modify_deletes_and_leaves_unchanged(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    let kept = with_property(entity("urn:kept", &[SHELTER]), CAPACITY, json!(7));
    create(store, &tenant, kept.clone()).await;
    create(store, &tenant, entity("urn:gone", &[SHELTER])).await;
    let results = modify(
        store,
        &tenant,
        vec![
            Modification::new("urn:gone", |current| {
                assert!(current.is_some());
                Ok(Write::Delete)
            }),
            Modification::new("urn:gone", |current| {
                assert!(current.is_none(), "the previous item deleted it");
                Ok(Write::Unchanged)
            }),
            Modification::new("urn:kept", |_| Ok(Write::Unchanged)),
        ],
    )
    .await;
    assert_eq!(
        results,
        vec![
            Ok(Write::Delete),
            Ok(Write::Unchanged),
            Ok(Write::Unchanged)
        ]
    );
    assert_eq!(get(store, &tenant, "urn:gone").await, None);
    assert_eq!(get(store, &tenant, "urn:kept").await, Some(kept));
}

pub async fn modify_creates_the_tenant_on_first_write(store: &TestStore) {
    let tenant = Tenant::named("fujieda");
    let untouched = modify(
        store,
        &tenant,
        vec![Modification::new("urn:a", |_| Ok(Write::Unchanged))],
    )
    .await;
    assert_eq!(untouched, vec![Ok(Write::Unchanged)]);
    assert!(!store.tenant_exists(&tenant).await.unwrap_or(true));
    modify(
        store,
        &tenant,
        vec![Modification::new("urn:a", |_| {
            Ok(Write::Put(entity("urn:a", &[SHELTER])))
        })],
    )
    .await;
    assert!(store.tenant_exists(&tenant).await.unwrap_or(false));
    assert!(get(store, &tenant, "urn:a").await.is_some());
}

pub async fn concurrent_modifications_lose_no_update(store: &TestStore) {
    const TASKS: i64 = 20;
    let tenant = Tenant::named("concurrent");
    let id = "urn:ngsi-ld:Counter:1";
    create(
        store,
        &tenant,
        with_property(entity(id, &[BUILDING]), COUNTER, json!(0)),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (shared, tenant) = (store.shared(), tenant.clone());
        tasks.spawn(async move {
            let increment = Modification::new(id, move |current| {
                let current = current.ok_or_else(|| NgsiError::not_found(id))?;
                let next = integer(&current, COUNTER).unwrap_or(-1000) + 1;
                Ok(Write::Put(with_property(current, COUNTER, json!(next))))
            });
            shared.modify(&tenant, vec![increment]).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(results)) => assert!(results.iter().all(Result::is_ok), "{results:?}"),
            Ok(Err(err)) => panic!("a concurrent modify failed: {err}"),
            Err(err) => panic!("a modifying task failed: {err}"),
        }
    }
    let stored = get(store, &tenant, id).await;
    assert_eq!(
        stored.as_ref().and_then(|e| integer(e, COUNTER)),
        Some(TASKS)
    );
}

// ---------------------------------------------------------------------------------
// Queries. The fixture: four entities created in this order.

const SHIZUOKA_STATION: (f64, f64) = (138.3890, 34.9719);
const YAIZU_STATION: (f64, f64) = (138.3186, 34.8657);
const HAMAMATSU_STATION: (f64, f64) = (137.7347, 34.7038);

async fn create_fixture(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    let mut s1 = with_property(entity("urn:s1", &[SHELTER, BUILDING]), CAPACITY, json!(50));
    s1.scopes = strings(&["/Shizuoka/Yaizu"]);
    let s1 = with_location(s1, YAIZU_STATION.0, YAIZU_STATION.1);
    let mut s2 = with_property(entity("urn:s2", &[SHELTER]), CAPACITY, json!(120));
    s2.scopes = strings(&["/Shizuoka/Shizuoka/Aoi"]);
    let s2 = with_location(
        with_property(s2, NAME, json!("駿府")),
        SHIZUOKA_STATION.0,
        SHIZUOKA_STATION.1,
    );
    let mut h1 = with_property(
        entity("urn:h1", &[HOSPITAL, BUILDING]),
        CAPACITY,
        json!(300),
    );
    h1.scopes = strings(&["/Aichi/Nagoya"]);
    let h1 = with_location(h1, HAMAMATSU_STATION.0, HAMAMATSU_STATION.1);
    let b1 = with_property(entity("urn:b1", &[BUILDING]), NAME, json!("倉庫"));
    for e in [s1, s2, h1, b1] {
        create(store, &tenant, e).await;
    }
}

pub async fn query_by_type_any_and_all(store: &TestStore) {
    create_fixture(store).await;
    let any = EntityQuery {
        types: types_or(&[SHELTER, HOSPITAL]),
        ..all()
    };
    assert_eq!(
        ids(store, any).await,
        strings(&["urn:s1", "urn:s2", "urn:h1"])
    );
    let one = EntityQuery {
        types: types_or(&[BUILDING]),
        ..all()
    };
    assert_eq!(
        ids(store, one).await,
        strings(&["urn:s1", "urn:h1", "urn:b1"])
    );
    let both = EntityQuery {
        types: Some(TypeExpr::And(vec![
            TypeExpr::Type(SHELTER.into()),
            TypeExpr::Type(BUILDING.into()),
        ])),
        ..all()
    };
    assert_eq!(ids(store, both).await, strings(&["urn:s1"]));
    // Hospital, or (Shelter and not-a-Building is not expressible): Hospital | (Shelter; Building).
    let nested = EntityQuery {
        types: Some(TypeExpr::Or(vec![
            TypeExpr::Type(HOSPITAL.into()),
            TypeExpr::And(vec![
                TypeExpr::Type(SHELTER.into()),
                TypeExpr::Type(BUILDING.into()),
            ]),
        ])),
        ..all()
    };
    assert_eq!(ids(store, nested).await, strings(&["urn:s1", "urn:h1"]));
    let none = EntityQuery {
        types: types_or(&["https://ex.org/Nothing"]),
        ..all()
    };
    assert!(ids(store, none).await.is_empty());
    // Whole names only: a part of a stored type's name, or a longer one, finds nothing.
    let parts = EntityQuery {
        types: types_or(&[
            &SHELTER[..SHELTER.len() - 1],
            &format!("{SHELTER}s"),
            "Shelter",
        ]),
        ..all()
    };
    assert!(ids(store, parts).await.is_empty());
    // More names than SQLite checks against a candidate's types (256): its evaluator
    // alone decides, and both backends answer alike.
    let mut many: Vec<String> = (0..300)
        .map(|i| format!("https://ex.org/Unused{i}"))
        .collect();
    many.push(HOSPITAL.to_owned());
    let many = EntityQuery {
        types: Some(TypeExpr::Or(many.into_iter().map(TypeExpr::Type).collect())),
        ..all()
    };
    assert_eq!(ids(store, many).await, strings(&["urn:h1"]));
    // A replaced entity is found by its new types only.
    let tenant = Tenant::default_tenant();
    let results = modify(
        store,
        &tenant,
        vec![Modification::new("urn:h1", |current| {
            let mut current = current.ok_or_else(|| NgsiError::not_found("urn:h1"))?;
            current.types = strings(&[SHELTER]);
            Ok(Write::Put(current))
        })],
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let hospitals = EntityQuery {
        types: types_or(&[HOSPITAL]),
        ..all()
    };
    assert!(ids(store, hospitals).await.is_empty());
    let shelters = EntityQuery {
        types: types_or(&[SHELTER]),
        ..all()
    };
    assert_eq!(
        ids(store, shelters).await,
        strings(&["urn:s1", "urn:s2", "urn:h1"])
    );
}

pub async fn query_by_ids_and_attributes(store: &TestStore) {
    create_fixture(store).await;
    let by_id = EntityQuery {
        ids: strings(&["urn:h1", "urn:s1", "urn:none"]),
        ..all()
    };
    // Creation order, not the order the ids were asked in.
    assert_eq!(ids(store, by_id).await, strings(&["urn:s1", "urn:h1"]));
    let by_attr = EntityQuery {
        attrs: strings(&[NAME]),
        ..all()
    };
    assert_eq!(ids(store, by_attr).await, strings(&["urn:s2", "urn:b1"]));
    // More names than SQLite checks against a candidate's values (256): its
    // evaluator alone decides, and both backends answer alike.
    let mut many: Vec<String> = (0..300)
        .map(|i| format!("https://example.org/unused{i}"))
        .collect();
    many.push(NAME.to_owned());
    let many_attrs = EntityQuery {
        attrs: many,
        ..all()
    };
    assert_eq!(ids(store, many_attrs).await, strings(&["urn:s2", "urn:b1"]));
    let any_attr = EntityQuery {
        attrs: strings(&[NAME, CAPACITY]),
        ..all()
    };
    assert_eq!(ids(store, any_attr).await.len(), 4);
    let both = EntityQuery {
        ids: strings(&["urn:s1", "urn:s2"]),
        attrs: strings(&[NAME]),
        ..all()
    };
    assert_eq!(ids(store, both).await, strings(&["urn:s2"]));
}

pub async fn query_by_id_pattern(store: &TestStore) {
    create_fixture(store).await;
    let shelters = EntityQuery {
        id_pattern: Some("^urn:s[0-9]$".into()),
        ..all()
    };
    assert_eq!(ids(store, shelters).await, strings(&["urn:s1", "urn:s2"]));
    let none = EntityQuery {
        id_pattern: Some("^urn:x".into()),
        ..all()
    };
    assert!(ids(store, none).await.is_empty());
}

pub async fn query_by_q_comparison_and_range(store: &TestStore) {
    create_fixture(store).await;
    let over_100 = EntityQuery {
        q: Some(q_term(CAPACITY, QOp::Gt, QValue::Number(100.0))),
        count: true,
        ..all()
    };
    let page = query(store, &Tenant::default_tenant(), over_100).await;
    assert_eq!(page.total, Some(2));
    assert_eq!(
        page.entities
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["urn:s2", "urn:h1"]
    );
    let range = QValue::Range(
        Box::new(QValue::Number(50.0)),
        Box::new(QValue::Number(120.0)),
    );
    let in_range = EntityQuery {
        q: Some(q_term(CAPACITY, QOp::Eq, range)),
        ..all()
    };
    assert_eq!(ids(store, in_range).await, strings(&["urn:s1", "urn:s2"]));
    let named = EntityQuery {
        q: Some(QExpr::And(vec![
            q_term(NAME, QOp::Eq, QValue::Text("駿府".into())),
            q_term(CAPACITY, QOp::Le, QValue::Number(120.0)),
        ])),
        ..all()
    };
    assert_eq!(ids(store, named).await, strings(&["urn:s2"]));
    let either = EntityQuery {
        q: Some(QExpr::Or(vec![
            q_term(CAPACITY, QOp::Lt, QValue::Number(60.0)),
            q_term(NAME, QOp::Eq, QValue::Text("倉庫".into())),
        ])),
        ..all()
    };
    assert_eq!(ids(store, either).await, strings(&["urn:s1", "urn:b1"]));
}

/// Strings longer than a store indexes whole (see
/// `ngsi_ld::query::index::INDEXED_TEXT_CHARS`): stored, and found exactly by `q`
/// equality and order, even where they share the indexed prefix.
pub async fn query_by_q_on_long_strings(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    let prefix = "a".repeat(300);
    let longer_b = format!("{prefix}b");
    let longer_c = format!("{prefix}c");
    // Exactly as long as the index keeps, and a prefix of the two above.
    let cut_length = "a".repeat(256);
    let kanji = "大".repeat(300);
    for (id, name) in [
        ("urn:l1", &longer_b),
        ("urn:l2", &longer_c),
        ("urn:l3", &cut_length),
        ("urn:l4", &kanji),
    ] {
        create(
            store,
            &tenant,
            with_property(entity(id, &[BUILDING]), NAME, json!(name)),
        )
        .await;
    }
    let stored = get(store, &tenant, "urn:l4").await;
    assert_eq!(
        stored.and_then(|e| match &e.attribute(NAME, None)?.value {
            AttributeValue::Property(v) => v.as_str().map(str::to_owned),
            _ => None,
        }),
        Some(kanji.clone())
    );
    let named = |op: QOp, text: &str| EntityQuery {
        q: Some(q_term(NAME, op, QValue::Text(text.to_owned()))),
        ..all()
    };
    let cases = [
        (named(QOp::Eq, &longer_b), vec!["urn:l1"]),
        (named(QOp::Eq, &longer_c), vec!["urn:l2"]),
        (named(QOp::Eq, &kanji), vec!["urn:l4"]),
        (named(QOp::Eq, &format!("{prefix}d")), vec![]),
        (named(QOp::Gt, &longer_b), vec!["urn:l2", "urn:l4"]),
        (
            named(QOp::Ge, &longer_b),
            vec!["urn:l1", "urn:l2", "urn:l4"],
        ),
        (named(QOp::Lt, &longer_c), vec!["urn:l1", "urn:l3"]),
        (named(QOp::Le, &longer_b), vec!["urn:l1", "urn:l3"]),
        (
            named(QOp::Gt, &cut_length),
            vec!["urn:l1", "urn:l2", "urn:l4"],
        ),
        (named(QOp::Le, &cut_length), vec!["urn:l3"]),
        (named(QOp::Lt, &cut_length), vec![]),
        (named(QOp::Lt, "大"), vec!["urn:l1", "urn:l2", "urn:l3"]),
    ];
    for (q, expected) in cases {
        let described = format!("{:?}", q.q).chars().take(80).collect::<String>();
        assert_eq!(ids(store, q).await, strings(&expected), "{described}");
    }
}

pub async fn query_by_scope_q(store: &TestStore) {
    create_fixture(store).await;
    let exact = EntityQuery {
        scope_q: Some(ScopeExpr::Pattern("/Shizuoka/Yaizu".into())),
        ..all()
    };
    assert_eq!(ids(store, exact).await, strings(&["urn:s1"]));
    let below = EntityQuery {
        scope_q: Some(ScopeExpr::Pattern("/Shizuoka/#".into())),
        ..all()
    };
    assert_eq!(ids(store, below).await, strings(&["urn:s1", "urn:s2"]));
    let either = EntityQuery {
        scope_q: Some(ScopeExpr::Or(vec![
            ScopeExpr::Pattern("/Aichi/Nagoya".into()),
            ScopeExpr::Pattern("/Shizuoka/Yaizu".into()),
        ])),
        ..all()
    };
    assert_eq!(ids(store, either).await, strings(&["urn:s1", "urn:h1"]));
}

pub async fn query_by_geo_q_near_and_within(store: &TestStore) {
    create_fixture(store).await;
    let station = json!({"type": "Point", "coordinates": [SHIZUOKA_STATION.0, SHIZUOKA_STATION.1]});
    let near = |max_distance, min_distance| EntityQuery {
        geo_q: Some(GeoQuery {
            rel: GeoRel::Near {
                max_distance,
                min_distance,
            },
            geometry: geometry(station.clone()),
            property: iri::LOCATION.into(),
        }),
        ..all()
    };
    // Yaizu station is about 13 km from Shizuoka station, Hamamatsu station about 65 km.
    assert_eq!(
        ids(store, near(Some(20_000.0), None)).await,
        strings(&["urn:s1", "urn:s2"])
    );
    assert_eq!(
        ids(store, near(Some(1_000.0), None)).await,
        strings(&["urn:s2"])
    );
    assert_eq!(
        ids(store, near(None, Some(1_000.0))).await,
        strings(&["urn:s1", "urn:h1"])
    );
    let central_shizuoka = json!({"type": "Polygon", "coordinates": [[
        [138.2, 34.8], [138.5, 34.8], [138.5, 35.05], [138.2, 35.05], [138.2, 34.8]
    ]]});
    let within = EntityQuery {
        geo_q: Some(GeoQuery {
            rel: GeoRel::Within,
            geometry: geometry(central_shizuoka),
            property: iri::LOCATION.into(),
        }),
        count: true,
        ..all()
    };
    let page = query(store, &Tenant::default_tenant(), within).await;
    assert_eq!(page.total, Some(2));
    assert_eq!(
        page.entities
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["urn:s1", "urn:s2"]
    );
    // Updates that leave the location alone, then ones that move it: each entity is
    // found where it now is, and only there.
    let update = |id: &'static str, change: fn(Entity) -> Entity| {
        Modification::new(id, move |current| {
            let current = current.ok_or_else(|| NgsiError::not_found(id))?;
            Ok(Write::Put(change(current)))
        })
    };
    let tenant = Tenant::default_tenant();
    let results = modify(
        store,
        &tenant,
        vec![
            update("urn:s2", |e| with_property(e, CAPACITY, json!(121))),
            update("urn:h1", |e| with_property(e, CAPACITY, json!(301))),
        ],
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        ids(store, near(Some(1_000.0), None)).await,
        strings(&["urn:s2"])
    );
    let results = modify(
        store,
        &tenant,
        vec![
            update("urn:s2", |e| {
                with_location(e, HAMAMATSU_STATION.0, HAMAMATSU_STATION.1)
            }),
            update("urn:h1", |e| {
                with_location(e, SHIZUOKA_STATION.0, SHIZUOKA_STATION.1)
            }),
        ],
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        ids(store, near(Some(1_000.0), None)).await,
        strings(&["urn:h1"])
    );
}

/// A page longer than the part of a read a backend may do before moving it elsewhere
/// (the SQLite backend reads the first 64 candidates on the calling thread), and one
/// whose matches are rare among many candidates: whole, in creation order, each match
/// once.
pub async fn a_long_page_is_whole_and_in_creation_order(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    let created: Vec<String> = (0..300).map(|i| format!("urn:long:{i}")).collect();
    for (i, id) in created.iter().enumerate() {
        create(
            store,
            &tenant,
            with_property(entity(id, &[SHELTER]), CAPACITY, json!(i)),
        )
        .await;
    }
    let page = |offset, limit| EntityQuery {
        types: types_or(&[SHELTER]),
        offset,
        limit,
        ..EntityQuery::default()
    };
    assert_eq!(ids(store, page(10, 200)).await, created[10..210]);
    // Every tenth entity matches: no index can tell, so all 300 are candidates.
    let tenths = EntityQuery {
        id_pattern: Some(r"^urn:long:\d*0$".to_owned()),
        ..page(0, 1000)
    };
    let expected: Vec<String> = created.iter().step_by(10).cloned().collect();
    assert_eq!(ids(store, tenths).await, expected);
    let last_few = EntityQuery {
        q: Some(q_term(CAPACITY, QOp::Ge, QValue::Number(295.0))),
        ..page(0, 20)
    };
    assert_eq!(ids(store, last_few).await, created[295..]);
}

pub async fn paging_follows_creation_order_and_counts_the_total(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    // Ids deliberately out of lexical order, so that order by id would show.
    let created: Vec<String> = (0..7).map(|i| format!("urn:p:{}", (i * 5) % 7)).collect();
    for id in &created {
        create(store, &tenant, entity(id, &[SHELTER])).await;
    }
    create(store, &tenant, entity("urn:other", &[HOSPITAL])).await;
    let page = |offset, limit, count| EntityQuery {
        types: types_or(&[SHELTER]),
        offset,
        limit,
        count,
        ..EntityQuery::default()
    };
    let first = query(store, &tenant, page(0, 3, true)).await;
    assert_eq!(first.total, Some(7));
    assert_eq!(
        first.entities.iter().map(|e| &e.id).collect::<Vec<_>>(),
        created[0..3].iter().collect::<Vec<_>>()
    );
    let middle = query(store, &tenant, page(3, 3, false)).await;
    assert_eq!(middle.total, None);
    assert_eq!(
        middle.entities.iter().map(|e| &e.id).collect::<Vec<_>>(),
        created[3..6].iter().collect::<Vec<_>>()
    );
    let last = query(store, &tenant, page(6, 3, true)).await;
    assert_eq!(last.total, Some(7));
    assert_eq!(
        last.entities.iter().map(|e| &e.id).collect::<Vec<_>>(),
        created[6..].iter().collect::<Vec<_>>()
    );
    let beyond = query(store, &tenant, page(10, 3, true)).await;
    assert_eq!(
        beyond,
        EntityPage {
            entities: Vec::new(),
            total: Some(7)
        }
    );
    let count_only = query(store, &tenant, page(0, 0, true)).await;
    assert_eq!(
        count_only,
        EntityPage {
            entities: Vec::new(),
            total: Some(7)
        }
    );
}

pub async fn a_replaced_entity_keeps_its_place_in_creation_order(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    for id in ["urn:first", "urn:second", "urn:third"] {
        create(store, &tenant, entity(id, &[SHELTER])).await;
    }
    modify(
        store,
        &tenant,
        vec![Modification::new("urn:first", |current| {
            let current = current.ok_or_else(|| NgsiError::not_found("urn:first"))?;
            Ok(Write::Put(with_property(current, CAPACITY, json!(9))))
        })],
    )
    .await;
    assert_eq!(
        ids(store, all()).await,
        strings(&["urn:first", "urn:second", "urn:third"])
    );
}

pub async fn delete_matching_deletes_only_the_matches(store: &TestStore) {
    create_fixture(store).await;
    let tenant = Tenant::default_tenant();
    // Limit and offset do not apply to a purge.
    let hospitals_and_b1 = EntityQuery {
        ids: strings(&["urn:h1", "urn:b1", "urn:none"]),
        limit: 1,
        offset: 1,
        ..EntityQuery::default()
    };
    assert_eq!(
        store.delete_matching(&tenant, &hospitals_and_b1).await.ok(),
        Some(2)
    );
    assert_eq!(ids(store, all()).await, strings(&["urn:s1", "urn:s2"]));
    let big = EntityQuery {
        types: types_or(&[SHELTER]),
        q: Some(q_term(CAPACITY, QOp::Ge, QValue::Number(100.0))),
        ..EntityQuery::default()
    };
    assert_eq!(store.delete_matching(&tenant, &big).await.ok(), Some(1));
    assert_eq!(ids(store, all()).await, strings(&["urn:s1"]));
    let nothing = EntityQuery {
        types: types_or(&[HOSPITAL]),
        ..EntityQuery::default()
    };
    assert_eq!(store.delete_matching(&tenant, &nothing).await.ok(), Some(0));
}

pub async fn type_and_attribute_stats(store: &TestStore) {
    let tenant = Tenant::default_tenant();
    create_fixture(store).await;
    let mut relating = entity("urn:r1", &[HOSPITAL]);
    relating.attributes.insert(
        NAME.into(),
        vec![Attribute::new(AttributeValue::Relationship {
            object: RelationshipObject::One("urn:s1".into()),
            object_type: None,
        })],
    );
    create(store, &tenant, relating).await;
    let types = store
        .type_stats(&tenant)
        .await
        .unwrap_or_else(|e| panic!("type_stats: {e}"));
    let location = iri::LOCATION;
    assert_eq!(
        types,
        vec![
            crate::TypeStats {
                type_iri: BUILDING.into(),
                entity_count: 3,
                attributes: strings(&[CAPACITY, NAME, location]),
            },
            crate::TypeStats {
                type_iri: HOSPITAL.into(),
                entity_count: 2,
                attributes: strings(&[CAPACITY, NAME, location]),
            },
            crate::TypeStats {
                type_iri: SHELTER.into(),
                entity_count: 2,
                attributes: strings(&[CAPACITY, NAME, location]),
            },
        ]
    );
    let attributes = store
        .attribute_stats(&tenant)
        .await
        .unwrap_or_else(|e| panic!("attribute_stats: {e}"));
    assert_eq!(
        attributes,
        vec![
            crate::AttributeStats {
                attribute_iri: CAPACITY.into(),
                entity_count: 3,
                kinds: strings(&["Property"]),
                types: strings(&[BUILDING, HOSPITAL, SHELTER]),
            },
            crate::AttributeStats {
                attribute_iri: NAME.into(),
                entity_count: 3,
                kinds: strings(&["Property", "Relationship"]),
                types: strings(&[BUILDING, HOSPITAL, SHELTER]),
            },
            crate::AttributeStats {
                attribute_iri: location.into(),
                entity_count: 3,
                kinds: strings(&["GeoProperty"]),
                types: strings(&[BUILDING, HOSPITAL, SHELTER]),
            },
        ]
    );
    assert!(store
        .type_stats(&Tenant::named("empty"))
        .await
        .unwrap_or_default()
        .is_empty());
    assert!(store
        .attribute_stats(&Tenant::named("empty"))
        .await
        .unwrap_or_default()
        .is_empty());
}

// ---------------------------------------------------------------------------------
// Contexts and the stored form of attributes.

pub async fn contexts_by_id_and_url(store: &TestStore) {
    let hosted = StoredContext {
        id: "ctx-1".into(),
        url: "http://renkei.example/jsonldContexts/ctx-1".into(),
        kind: ContextKind::Hosted,
        body: json!({"@context": {"Shelter": "https://ex.org/Shelter"}}),
        created_at: at(1),
    };
    let cached = StoredContext {
        id: "ctx-2".into(),
        url: "https://ex.org/context.jsonld".into(),
        kind: ContextKind::Cached,
        body: json!({"@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]}),
        created_at: at(2),
    };
    for c in [hosted.clone(), cached.clone()] {
        if let Err(e) = store.put_context(c).await {
            panic!("put_context failed: {e}");
        }
    }
    let by = |key: &'static str| async move {
        store
            .get_context(key)
            .await
            .unwrap_or_else(|e| panic!("get_context {key}: {e}"))
    };
    assert_eq!(by("ctx-1").await, Some(hosted.clone()));
    assert_eq!(
        by("https://ex.org/context.jsonld").await,
        Some(cached.clone())
    );
    assert_eq!(by("ctx-3").await, None);
    let listed = store
        .list_contexts()
        .await
        .unwrap_or_else(|e| panic!("list_contexts: {e}"));
    assert_eq!(listed, vec![hosted.clone(), cached.clone()]);
    // Putting an id again replaces that context.
    let replaced = StoredContext {
        kind: ContextKind::Implicit,
        body: json!({"@context": {"name": "https://ex.org/name"}}),
        ..hosted
    };
    store
        .put_context(replaced.clone())
        .await
        .unwrap_or_else(|e| panic!("put_context: {e}"));
    assert_eq!(
        by("http://renkei.example/jsonldContexts/ctx-1").await,
        Some(replaced)
    );
    assert_eq!(store.delete_context("ctx-1").await.ok(), Some(true));
    assert_eq!(store.delete_context("ctx-1").await.ok(), Some(false));
    assert_eq!(by("ctx-1").await, None);
    let listed = store
        .list_contexts()
        .await
        .unwrap_or_else(|e| panic!("list_contexts: {e}"));
    assert_eq!(listed, vec![cached]);
}

pub async fn every_attribute_kind_round_trips(store: &TestStore) {
    let tenant = Tenant::named("roundtrip");
    let mut e = entity("urn:ngsi-ld:Shelter:kinds", &[SHELTER]);
    e.scopes = strings(&["/Shizuoka/Yaizu", "/Shizuoka/Fujieda"]);
    e.modified_at = Some(at(30));
    let kinds = vec![
        AttributeValue::Property(json!({"floors": 3, "open": true, "note": null})),
        AttributeValue::GeoProperty(json!({"type": "Point", "coordinates": [138.3186, 34.8657]})),
        AttributeValue::Relationship {
            object: RelationshipObject::One("urn:ngsi-ld:Building:1".into()),
            object_type: Some(strings(&[BUILDING])),
        },
        AttributeValue::Relationship {
            object: RelationshipObject::Many(strings(&["urn:a", "urn:b"])),
            object_type: None,
        },
        AttributeValue::LanguageProperty(BTreeMap::from([
            ("ja".to_owned(), json!("避難所")),
            ("en".to_owned(), json!(["shelter", "refuge"])),
        ])),
        AttributeValue::VocabProperty(strings(&["https://ex.org/Open"])),
        AttributeValue::ListProperty(vec![json!(1), json!("two"), json!({"three": 3})]),
        AttributeValue::ListRelationship(strings(&["urn:x", "urn:y"])),
        AttributeValue::JsonProperty(json!({"@type": "kept", "id": 1})),
    ];
    for (i, value) in kinds.into_iter().enumerate() {
        let mut default = Attribute::new(value.clone());
        default.observed_at = Some(at(10));
        default.unit_code = Some("C62".into());
        default.created_at = Some(at(11));
        default.modified_at = Some(at(12));
        let mut sub = Attribute::new(AttributeValue::Property(json!(0.9)));
        sub.observed_at = Some(at(13));
        let mut sub_relationship = Attribute::new(AttributeValue::Relationship {
            object: RelationshipObject::One("urn:ngsi-ld:Sensor:1".into()),
            object_type: None,
        });
        sub_relationship.dataset_id = Some("urn:ds:sub".into());
        default
            .sub_attributes
            .insert("https://ex.org/reliability".into(), vec![sub]);
        default
            .sub_attributes
            .insert("https://ex.org/observedBy".into(), vec![sub_relationship]);
        let mut other_dataset = Attribute::new(value);
        other_dataset.dataset_id = Some(format!("urn:ds:{i}"));
        e.attributes.insert(
            format!("https://ex.org/attr{i}"),
            vec![default, other_dataset],
        );
    }
    create(store, &tenant, e.clone()).await;
    assert_eq!(get(store, &tenant, &e.id).await, Some(e.clone()));
    let page = query(
        store,
        &tenant,
        EntityQuery {
            ids: vec![e.id.clone()],
            ..all()
        },
    )
    .await;
    assert_eq!(page.entities, vec![e.clone()]);
    // And through a modification too.
    let written = modify(
        store,
        &tenant,
        vec![Modification::new(e.id.clone(), |current| {
            current
                .map(Write::Put)
                .ok_or_else(|| NgsiError::not_found("roundtrip entity"))
        })],
    )
    .await;
    assert_eq!(written, vec![Ok(Write::Put(e.clone()))]);
    assert_eq!(get(store, &tenant, &e.id).await, Some(e));
}
