//! The behavioural suite every backend's [`TemporalStore`] must pass, together with the
//! history its [`EntityStore`] writes: entity writes record their history in the same
//! transaction, reads select by attribute, window and lastN in time order, and the
//! temporal API's edits touch exactly what they name, on SQLite and PostgreSQL alike.
//! A backend runs it from a test file of its own:
//!
//! ```text
//! async fn new_store() -> store::temporal_conformance::TemporalTestStore { /* … */ }
//! store::temporal_conformance_suite!(new_store());
//! ```
//!
//! Every instant a case gives has whole microseconds, the precision both backends keep.

use crate::temporal::{
    DatasetSelector, HistoryRead, SharedTemporalStore, TemporalHead, TemporalStore,
};
use crate::{EntityStore, Modification, SharedStore, StoreError, Tenant, Write};
use chrono::{DateTime, TimeZone, Utc};
use ngsi_ld::model::{Attribute, AttributeValue, Entity, RelationshipObject};
use ngsi_ld::query::EntityQuery;
use ngsi_ld::temporal::{HourlyRollup, TemporalInstance, TimeProperty, TimeRel, NGSI_LD_NULL};
use serde_json::json;
use std::ops::Deref;
use std::sync::Arc;

/// A store under test, seen both as the [`EntityStore`] whose writes record history
/// and as the [`TemporalStore`], with whatever keeps its database alive (dropped
/// last). Dereferences to the [`TemporalStore`].
pub struct TemporalTestStore {
    // Field order matters: fields drop in declaration order.
    entities: SharedStore,
    temporal: SharedTemporalStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl TemporalTestStore {
    pub fn new<S>(store: Arc<S>, keep_alive: impl Send + Sync + 'static) -> Self
    where
        S: EntityStore + TemporalStore + 'static,
    {
        TemporalTestStore {
            entities: store.clone(),
            temporal: store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    pub fn entities(&self) -> &dyn EntityStore {
        self.entities.as_ref()
    }
}

impl Deref for TemporalTestStore {
    type Target = dyn TemporalStore;

    fn deref(&self) -> &Self::Target {
        self.temporal.as_ref()
    }
}

/// Expands to the temporal suite as `#[tokio::test]` functions, each getting a fresh
/// store from `$new_store` (an async expression yielding a [`TemporalTestStore`]).
#[macro_export]
macro_rules! temporal_conformance_suite {
    ($new_store:expr) => {
        $crate::temporal_conformance_suite!(@cases $new_store;
            entity_writes_record_what_changed,
            deletions_leave_records_and_the_history_stays,
            delete_matching_records_each_deletion,
            refused_and_unchanged_writes_record_nothing,
            a_modification_records_the_history_it_carries,
            instances_round_trip_exactly,
            reads_select_attributes_window_and_last_n_in_time_order,
            last_n_counts_each_dataset_id_apart,
            instances_are_read_replaced_and_deleted_by_id,
            attribute_history_is_deleted_by_dataset,
            deleting_a_history_leaves_other_entities_and_tenants_alone,
            a_history_deleted_while_its_entity_lives_begins_again_at_its_next_write,
            heads_are_listed_in_id_order,
            rollups_follow_every_write_replacement_and_deletion,
            given_instances_replace_those_observed_at_the_same_instant,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: $crate::temporal_conformance::TemporalTestStore = $new_store.await;
                $crate::temporal_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

const VEHICLE: &str = "https://ex.org/Vehicle";
const SPEED: &str = "https://ex.org/speed";
const PARKED: &str = "https://ex.org/isParked";
const ID: &str = "urn:ngsi-ld:Vehicle:1";

fn at(second: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(second)
}

fn yaizu() -> Tenant {
    Tenant::named("222127")
}

fn speed(value: i64) -> Attribute {
    Attribute::new(AttributeValue::Property(json!(value)))
}

fn vehicle(id: &str, attrs: &[(&str, Attribute)]) -> Entity {
    let mut e = Entity::new(id, vec![VEHICLE.to_owned()]);
    e.created_at = Some(at(0));
    e.modified_at = Some(at(0));
    for (name, attribute) in attrs {
        e.attributes
            .entry((*name).to_owned())
            .or_default()
            .push(attribute.clone());
    }
    e
}

/// An instance of speed observed at `second`, in `dataset` if given.
fn observed(value: i64, second: i64, dataset: Option<&str>) -> TemporalInstance {
    let mut a = speed(value);
    a.observed_at = Some(at(second));
    a.created_at = Some(at(second));
    a.modified_at = Some(at(second));
    a.dataset_id = dataset.map(str::to_owned);
    TemporalInstance::new(SPEED, a)
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

async fn write(store: &TemporalTestStore, tenant: &Tenant, modification: Modification) {
    let results = expect(
        store.entities().modify(tenant, vec![modification]).await,
        "modify",
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

fn put(entity: Entity) -> Modification {
    Modification::new(entity.id.clone(), move |_| Ok(Write::Put(entity)))
}

/// The whole history of `id` by recording time (`createdAt`), oldest first.
async fn recorded(store: &TemporalTestStore, tenant: &Tenant, id: &str) -> Vec<TemporalInstance> {
    let read = HistoryRead {
        time_property: TimeProperty::CreatedAt,
        ..HistoryRead::default()
    };
    expect(store.history(tenant, id, &read).await, "history")
}

/// The speed values of instances, in order.
fn values(instances: &[TemporalInstance]) -> Vec<serde_json::Value> {
    instances
        .iter()
        .map(|i| match &i.attribute.value {
            AttributeValue::Property(v) => v.clone(),
            other => json!(other.kind_name()),
        })
        .collect()
}

/// A history seeded through the temporal path: speed observed 1..=n seconds after
/// `at(0)`, valued 10 × the second.
async fn seeded(store: &TemporalTestStore, tenant: &Tenant, n: i64) -> Vec<TemporalInstance> {
    let instances: Vec<_> = (1..=n).map(|s| observed(10 * s, s, None)).collect();
    let latest = vehicle(
        ID,
        &[(SPEED, instances[instances.len() - 1].attribute.clone())],
    );
    write(store, tenant, put(latest).with_history(instances.clone())).await;
    instances
}

// ---------------------------------------------------------------------------------
// Cases.

pub async fn entity_writes_record_what_changed(store: &TemporalTestStore) {
    let tenant = yaizu();
    expect(
        store
            .entities()
            .create_entity(&tenant, vehicle(ID, &[(SPEED, speed(50))]))
            .await,
        "create_entity",
    );
    write(store, &tenant, put(vehicle(ID, &[(SPEED, speed(60))]))).await;
    let history = recorded(store, &tenant, ID).await;
    assert_eq!(values(&history), vec![json!(50), json!(60)]);
    assert!(history.iter().all(|i| i.name == SPEED
        && i.instance_id.starts_with("urn:ngsi-ld:AttributeInstance:")
        && i.attribute.created_at.is_some()
        && i.deleted_at.is_none()));
    assert_ne!(history[0].instance_id, history[1].instance_id);
    let head = expect(store.temporal_head(&tenant, ID).await, "temporal_head")
        .unwrap_or_else(|| panic!("an entity with history has a head"));
    assert_eq!(head.types, vec![VEHICLE.to_owned()]);
    assert_eq!(head.deleted_at, None);
    assert!(head.modified_at >= head.created_at);
}

pub async fn deletions_leave_records_and_the_history_stays(store: &TemporalTestStore) {
    let tenant = yaizu();
    let both = vehicle(ID, &[(SPEED, speed(50)), (PARKED, speed(1))]);
    write(store, &tenant, put(both)).await;
    write(store, &tenant, put(vehicle(ID, &[(SPEED, speed(50))]))).await;
    let history = recorded(store, &tenant, ID).await;
    let deletion = history
        .iter()
        .find(|i| i.name == PARKED && i.deleted_at.is_some())
        .unwrap_or_else(|| panic!("no deletion record in {history:?}"));
    assert_eq!(
        deletion.attribute.value,
        AttributeValue::Property(json!(NGSI_LD_NULL))
    );
    write(store, &tenant, Modification::new(ID, |_| Ok(Write::Delete))).await;
    let head = expect(store.temporal_head(&tenant, ID).await, "temporal_head")
        .unwrap_or_else(|| panic!("the head stays after the entity is deleted"));
    assert!(head.deleted_at.is_some());
    let after = recorded(store, &tenant, ID).await;
    assert_eq!(after.iter().filter(|i| i.deleted_at.is_some()).count(), 2);
    assert_eq!(after.len(), 4);
    // Recreating the entity reopens its history.
    write(store, &tenant, put(vehicle(ID, &[(SPEED, speed(70))]))).await;
    let head = expect(store.temporal_head(&tenant, ID).await, "temporal_head");
    assert_eq!(head.and_then(|h| h.deleted_at), None);
}

pub async fn delete_matching_records_each_deletion(store: &TemporalTestStore) {
    let tenant = yaizu();
    for id in ["urn:ngsi-ld:Vehicle:a", "urn:ngsi-ld:Vehicle:b"] {
        write(store, &tenant, put(vehicle(id, &[(SPEED, speed(1))]))).await;
    }
    let query = EntityQuery {
        ids: vec![
            "urn:ngsi-ld:Vehicle:a".into(),
            "urn:ngsi-ld:Vehicle:b".into(),
        ],
        limit: 100,
        ..EntityQuery::default()
    };
    assert_eq!(
        expect(
            store.entities().delete_matching(&tenant, &query).await,
            "delete_matching"
        ),
        2
    );
    for id in &query.ids {
        let history = recorded(store, &tenant, id).await;
        assert_eq!(history.len(), 2, "{id}: {history:?}");
        assert!(history[1].deleted_at.is_some());
    }
}

pub async fn refused_and_unchanged_writes_record_nothing(store: &TemporalTestStore) {
    let tenant = yaizu();
    write(store, &tenant, put(vehicle(ID, &[(SPEED, speed(50))]))).await;
    let refused = Modification::new(ID, |_| Err(ngsi_ld::NgsiError::bad_request_data("refused")));
    let unchanged = Modification::new(ID, |_| Ok(Write::Unchanged));
    let same = put(vehicle(ID, &[(SPEED, speed(50))]));
    let results = expect(
        store
            .entities()
            .modify(&tenant, vec![refused, unchanged, same])
            .await,
        "modify",
    );
    assert!(results[0].is_err());
    assert_eq!(recorded(store, &tenant, ID).await.len(), 1);
    assert_eq!(
        expect(
            store
                .temporal_head(&tenant, "urn:ngsi-ld:Vehicle:none")
                .await,
            "head"
        ),
        None
    );
}

pub async fn a_modification_records_the_history_it_carries(store: &TemporalTestStore) {
    let tenant = yaizu();
    let given = seeded(store, &tenant, 3).await;
    let read = HistoryRead::default(); // observedAt, every instance having it
    let history = expect(store.history(&tenant, ID, &read).await, "history");
    assert_eq!(history, given);
    let current = expect(store.entities().get_entity(&tenant, ID).await, "get_entity");
    assert_eq!(
        current.map(|e| e.attributes[SPEED][0].value.clone()),
        Some(AttributeValue::Property(json!(30)))
    );
}

pub async fn instances_round_trip_exactly(store: &TemporalTestStore) {
    let tenant = yaizu();
    let mut rich = observed(1, 1, Some("urn:ngsi-ld:Dataset:a"));
    rich.attribute.unit_code = Some("KMH".into());
    rich.attribute.sub_attributes.insert(
        "https://ex.org/accuracy".into(),
        vec![Attribute::new(AttributeValue::Property(json!({"m": 0.5})))],
    );
    let mut parked = Attribute::new(AttributeValue::Relationship {
        object: RelationshipObject::One("urn:ngsi-ld:Parking:1".into()),
        object_type: None,
    });
    parked.observed_at = Some(at(2));
    let parked = TemporalInstance::new(PARKED, parked);
    let mut gone = observed(0, 3, None);
    gone.deleted_at = Some(at(3));
    let given = vec![rich, parked, gone];
    let latest = vehicle(ID, &[(SPEED, speed(1))]);
    write(store, &tenant, put(latest).with_history(given.clone())).await;
    let read = HistoryRead::default();
    assert_eq!(
        expect(store.history(&tenant, ID, &read).await, "history"),
        given
    );
}

pub async fn reads_select_attributes_window_and_last_n_in_time_order(store: &TemporalTestStore) {
    let tenant = &yaizu();
    // Recorded out of time order: the read sorts by the time property.
    let mut instances: Vec<_> = (1..=10).rev().map(|s| observed(s, s, None)).collect();
    let mut parked = Attribute::new(AttributeValue::Property(json!("P")));
    parked.observed_at = Some(at(5));
    instances.push(TemporalInstance::new(PARKED, parked));
    let latest = vehicle(ID, &[(SPEED, speed(10))]);
    write(store, tenant, put(latest).with_history(instances)).await;
    let read = |attrs: &[&str], window, last_n| HistoryRead {
        attrs: attrs.iter().map(|a| (*a).to_owned()).collect(),
        time_property: TimeProperty::ObservedAt,
        window,
        last_n,
    };
    let history = |read: HistoryRead| async move {
        values(&expect(store.history(tenant, ID, &read).await, "history"))
    };
    assert_eq!(
        history(read(&[SPEED], None, None)).await,
        (1..=10).map(|v| json!(v)).collect::<Vec<_>>()
    );
    assert_eq!(history(read(&[], None, None)).await.len(), 11);
    assert_eq!(history(read(&[PARKED], None, None)).await, vec![json!("P")]);
    let between = Some(TimeRel::Between(at(3), at(7)));
    assert_eq!(
        history(read(&[SPEED], between, None)).await,
        vec![json!(3), json!(4), json!(5), json!(6)]
    );
    assert_eq!(
        history(read(&[SPEED], Some(TimeRel::Before(at(3))), None)).await,
        vec![json!(1), json!(2)]
    );
    assert_eq!(
        history(read(&[SPEED], Some(TimeRel::After(at(9))), None)).await,
        vec![json!(9), json!(10)]
    );
    assert_eq!(
        history(read(&[SPEED], None, Some(2))).await,
        vec![json!(9), json!(10)]
    );
    assert_eq!(
        history(read(&[SPEED], between, Some(2))).await,
        vec![json!(5), json!(6)]
    );
    // No instance has deletedAt: a read on it selects nothing.
    let deleted = HistoryRead {
        time_property: TimeProperty::DeletedAt,
        ..HistoryRead::default()
    };
    assert_eq!(history(deleted).await, Vec::<serde_json::Value>::new());
    assert_eq!(
        expect(
            store
                .history(tenant, "urn:ngsi-ld:Vehicle:none", &HistoryRead::default())
                .await,
            "history"
        ),
        Vec::new()
    );
}

pub async fn last_n_counts_each_dataset_id_apart(store: &TemporalTestStore) {
    let tenant = yaizu();
    let instances = vec![
        observed(1, 1, None),
        observed(2, 2, Some("urn:d:a")),
        observed(3, 3, None),
        observed(4, 4, Some("urn:d:a")),
        observed(5, 5, None),
    ];
    let latest = vehicle(ID, &[(SPEED, speed(5))]);
    write(store, &tenant, put(latest).with_history(instances)).await;
    let read = HistoryRead {
        last_n: Some(1),
        ..HistoryRead::default()
    };
    let history = expect(store.history(&tenant, ID, &read).await, "history");
    assert_eq!(values(&history), vec![json!(4), json!(5)]);
}

pub async fn instances_are_read_replaced_and_deleted_by_id(store: &TemporalTestStore) {
    let tenant = yaizu();
    let given = seeded(store, &tenant, 3).await;
    let target = &given[1];
    let found = expect(
        store
            .history_instance(&tenant, ID, SPEED, &target.instance_id)
            .await,
        "history_instance",
    );
    assert_eq!(found.as_ref(), Some(target));
    let mut changed = target.attribute.clone();
    changed.value = AttributeValue::Property(json!(99));
    assert!(expect(
        store
            .replace_history_instance(&tenant, ID, SPEED, &target.instance_id, changed)
            .await,
        "replace_history_instance"
    ));
    assert!(!expect(
        store
            .replace_history_instance(&tenant, ID, PARKED, &target.instance_id, speed(1))
            .await,
        "replace under another attribute"
    ));
    let read = HistoryRead::default();
    let history = expect(store.history(&tenant, ID, &read).await, "history");
    assert_eq!(values(&history), vec![json!(10), json!(99), json!(30)]);
    assert_eq!(history[1].instance_id, target.instance_id);
    assert!(expect(
        store
            .delete_history_instance(&tenant, ID, SPEED, &target.instance_id)
            .await,
        "delete_history_instance"
    ));
    assert!(!expect(
        store
            .delete_history_instance(&tenant, ID, SPEED, &target.instance_id)
            .await,
        "delete twice"
    ));
    let history = expect(store.history(&tenant, ID, &read).await, "history");
    assert_eq!(values(&history), vec![json!(10), json!(30)]);
}

pub async fn attribute_history_is_deleted_by_dataset(store: &TemporalTestStore) {
    let tenant = &yaizu();
    let instances = vec![
        observed(1, 1, None),
        observed(2, 2, Some("urn:d:a")),
        observed(3, 3, Some("urn:d:b")),
    ];
    let latest = vehicle(ID, &[(SPEED, speed(1))]);
    write(store, tenant, put(latest).with_history(instances)).await;
    let delete = |selector: DatasetSelector| async move {
        expect(
            store
                .delete_attribute_history(tenant, ID, SPEED, &selector)
                .await,
            "delete_attribute_history",
        )
    };
    let left = || async {
        values(&expect(
            store.history(tenant, ID, &HistoryRead::default()).await,
            "history",
        ))
    };
    assert!(delete(DatasetSelector::Id("urn:d:a".into())).await);
    assert_eq!(left().await, vec![json!(1), json!(3)]);
    assert!(delete(DatasetSelector::Default).await);
    assert_eq!(left().await, vec![json!(3)]);
    assert!(!delete(DatasetSelector::Default).await);
    assert!(delete(DatasetSelector::All).await);
    assert_eq!(left().await, Vec::<serde_json::Value>::new());
    assert!(!delete(DatasetSelector::All).await);
}

pub async fn deleting_a_history_leaves_other_entities_and_tenants_alone(store: &TemporalTestStore) {
    let (yaizu, shizuoka) = (yaizu(), Tenant::named("220001"));
    let other = "urn:ngsi-ld:Vehicle:2";
    seeded(store, &yaizu, 2).await;
    seeded(store, &shizuoka, 2).await;
    write(store, &yaizu, put(vehicle(other, &[(SPEED, speed(1))]))).await;
    assert!(expect(
        store.delete_history(&yaizu, ID).await,
        "delete_history"
    ));
    assert!(!expect(
        store.delete_history(&yaizu, ID).await,
        "delete_history twice"
    ));
    assert_eq!(expect(store.temporal_head(&yaizu, ID).await, "head"), None);
    assert!(recorded(store, &yaizu, ID).await.is_empty());
    assert_eq!(recorded(store, &yaizu, other).await.len(), 1);
    assert_eq!(recorded(store, &shizuoka, ID).await.len(), 2);
}

/// An entity written once (whose history a backend may keep implied by the entity
/// itself) loses its history and keeps its data; its next write begins a new
/// history holding only what that write changed.
pub async fn a_history_deleted_while_its_entity_lives_begins_again_at_its_next_write(
    store: &TemporalTestStore,
) {
    let tenant = yaizu();
    let created = vehicle(ID, &[(SPEED, speed(50)), (PARKED, speed(1))]);
    write(store, &tenant, put(created.clone())).await;
    assert_eq!(recorded(store, &tenant, ID).await.len(), 2);
    assert!(expect(
        store.delete_history(&tenant, ID).await,
        "delete_history"
    ));
    assert_eq!(expect(store.temporal_head(&tenant, ID).await, "head"), None);
    assert!(recorded(store, &tenant, ID).await.is_empty());
    let heads = expect(store.temporal_heads(&tenant, &[]).await, "temporal_heads");
    assert!(heads.is_empty(), "{heads:?}");
    let kept = expect(store.entities().get_entity(&tenant, ID).await, "get_entity");
    assert_eq!(kept.map(|e| e.attributes.len()), Some(2));
    assert!(!expect(
        store.delete_history(&tenant, ID).await,
        "delete_history twice"
    ));

    write(
        store,
        &tenant,
        put(vehicle(ID, &[(SPEED, speed(60)), (PARKED, speed(1))])),
    )
    .await;
    let again = recorded(store, &tenant, ID).await;
    assert_eq!(values(&again), vec![json!(60)]);
    assert_eq!(again[0].name, SPEED);
    let head = expect(store.temporal_head(&tenant, ID).await, "head")
        .unwrap_or_else(|| panic!("the next write begins a history"));
    assert_eq!(head.deleted_at, None);
}

pub async fn heads_are_listed_in_id_order(store: &TemporalTestStore) {
    let tenant = yaizu();
    for id in [
        "urn:ngsi-ld:Vehicle:c",
        "urn:ngsi-ld:Vehicle:a",
        "urn:ngsi-ld:Vehicle:b",
    ] {
        write(store, &tenant, put(vehicle(id, &[(SPEED, speed(1))]))).await;
    }
    // One history grown past its entity's creation, the others not.
    let b = "urn:ngsi-ld:Vehicle:b";
    write(store, &tenant, put(vehicle(b, &[(SPEED, speed(2))]))).await;
    let ids = |heads: Vec<TemporalHead>| heads.into_iter().map(|h| h.id).collect::<Vec<_>>();
    let all = expect(store.temporal_heads(&tenant, &[]).await, "temporal_heads");
    assert_eq!(
        ids(all),
        vec![
            "urn:ngsi-ld:Vehicle:a",
            "urn:ngsi-ld:Vehicle:b",
            "urn:ngsi-ld:Vehicle:c"
        ]
    );
    let some = expect(
        store
            .temporal_heads(
                &tenant,
                &[
                    "urn:ngsi-ld:Vehicle:c".into(),
                    "urn:ngsi-ld:Vehicle:x".into(),
                ],
            )
            .await,
        "temporal_heads by id",
    );
    assert_eq!(ids(some), vec!["urn:ngsi-ld:Vehicle:c"]);
    let elsewhere = expect(
        store.temporal_heads(&Tenant::named("220001"), &[]).await,
        "heads",
    );
    assert!(elsewhere.is_empty());
}

/// The rollups a store holds for `ID` against those recomputed from its history.
async fn assert_rollups_match_history(store: &TemporalTestStore, tenant: &Tenant, when: &str) {
    let history = expect(
        store.history(tenant, ID, &HistoryRead::default()).await,
        "history",
    );
    let held = expect(
        store.hourly_rollups(tenant, ID, &[], None, None).await,
        "hourly_rollups",
    );
    assert_eq!(held, HourlyRollup::of_all(&history), "rollups {when}");
}

pub async fn rollups_follow_every_write_replacement_and_deletion(store: &TemporalTestStore) {
    let tenant = &yaizu();
    // Three hours of speed (two datasets) and a non-numeric attribute.
    let mut instances: Vec<_> = (0..30)
        .map(|k| observed(k, k * 400, (k % 3 == 0).then_some("urn:d:a")))
        .collect();
    let mut parked = Attribute::new(AttributeValue::Property(json!("P")));
    parked.observed_at = Some(at(100));
    instances.push(TemporalInstance::new(PARKED, parked));
    let latest = vehicle(ID, &[(SPEED, speed(29))]);
    write(store, tenant, put(latest).with_history(instances.clone())).await;
    assert_rollups_match_history(store, tenant, "after the first write").await;
    // An entity write adds an instance observed in a fourth hour.
    let mut newer = speed(1000);
    newer.observed_at = Some(at(4 * 3600));
    write(store, tenant, put(vehicle(ID, &[(SPEED, newer)]))).await;
    assert_rollups_match_history(store, tenant, "after an entity write").await;
    // Narrowed by attribute and hours.
    let second_hour = expect(
        store
            .hourly_rollups(
                tenant,
                ID,
                &[SPEED.to_owned()],
                Some(at(3600)),
                Some(at(7200)),
            )
            .await,
        "hourly_rollups narrowed",
    );
    assert_eq!(second_hour.len(), 2, "{second_hour:?}");
    assert!(second_hour
        .iter()
        .all(|r| r.hour == at(3600) && r.name == SPEED));
    let mut changed = instances[4].attribute.clone();
    changed.value = AttributeValue::Property(json!(-50));
    let id = &instances[4].instance_id;
    assert!(expect(
        store
            .replace_history_instance(tenant, ID, SPEED, id, changed)
            .await,
        "replace"
    ));
    assert_rollups_match_history(store, tenant, "after a replacement").await;
    let id = &instances[5].instance_id;
    assert!(expect(
        store.delete_history_instance(tenant, ID, SPEED, id).await,
        "delete"
    ));
    assert_rollups_match_history(store, tenant, "after an instance deletion").await;
    let dataset = DatasetSelector::Id("urn:d:a".into());
    assert!(expect(
        store
            .delete_attribute_history(tenant, ID, SPEED, &dataset)
            .await,
        "delete"
    ));
    assert_rollups_match_history(store, tenant, "after a dataset deletion").await;
    assert!(expect(
        store.delete_history(tenant, ID).await,
        "delete_history"
    ));
    assert_rollups_match_history(store, tenant, "after the history is deleted").await;
}

pub async fn given_instances_replace_those_observed_at_the_same_instant(store: &TemporalTestStore) {
    let tenant = &yaizu();
    seeded(store, tenant, 3).await; // 10, 20, 30 at seconds 1, 2, 3
                                    // Sent again: second 2 with a new value, second 3 unchanged, second 4 new, and
                                    // second 2 of another dataset id, which is another series.
    let again = vec![
        observed(21, 2, None),
        observed(30, 3, None),
        observed(40, 4, None),
        observed(22, 2, Some("urn:d:a")),
    ];
    let latest = vehicle(ID, &[(SPEED, speed(40))]);
    write(store, tenant, put(latest).with_history(again.clone())).await;
    let history = expect(
        store.history(tenant, ID, &HistoryRead::default()).await,
        "history",
    );
    let mut seen: Vec<(i64, Option<String>, serde_json::Value)> = history
        .iter()
        .map(|i| {
            let second = (i.attribute.observed_at.unwrap_or_default() - at(0)).num_seconds();
            (
                second,
                i.attribute.dataset_id.clone(),
                values(std::slice::from_ref(i))[0].clone(),
            )
        })
        .collect();
    seen.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    assert_eq!(
        seen,
        vec![
            (1, None, json!(10)),
            (2, None, json!(21)),
            (2, Some("urn:d:a".to_owned()), json!(22)),
            (3, None, json!(30)),
            (4, None, json!(40)),
        ]
    );
    // The replacing instances are the ones sent (their ids), and rollups follow.
    assert!(history
        .iter()
        .any(|i| i.instance_id == again[0].instance_id));
    assert_rollups_match_history(store, tenant, "after replacing instances").await;
}
