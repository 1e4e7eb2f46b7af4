//! The behavioural suite every backend's [`SubscriptionStore`] must pass, together
//! with the outbox its [`EntityStore`] writes: subscriptions, the change log, the
//! dispatch cursor and the notification queue behave the same on SQLite and on
//! PostgreSQL. A backend runs it from a test file of its own:
//!
//! ```text
//! async fn new_store() -> store::subscriptions_conformance::SubscriptionTestStore { /* … */ }
//! store::subscriptions_conformance_suite!(new_store());
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case (the public async functions of
//! this module), so the calling crate needs `tokio` (features `macros`,
//! `rt-multi-thread`) among its dev-dependencies. Time is passed in, never waited
//! for: every `now` a case gives is a fixed instant, and every stored timestamp has
//! whole microseconds, the precision both backends keep.

use crate::subscriptions::{
    DeliveryOutcome, DeliveryStatus, EntityChange, NewNotification, QueuedNotification,
    SharedSubscriptionStore, StoredSubscription, SubscriptionStore,
};
use crate::{EntityStore, Modification, SharedStore, StoreError, Tenant, Write};
use chrono::{DateTime, TimeZone, Utc};
use ngsi_ld::model::{Attribute, AttributeValue, Entity};
use ngsi_ld::query::{EntityQuery, TypeExpr};
use ngsi_ld::NgsiError;
use serde_json::{json, Value};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// A store under test, seen both as the [`EntityStore`] whose writes feed the change
/// log and as the [`SubscriptionStore`], together with whatever keeps its database
/// alive. The store is dropped before the guard, so a guard whose `Drop` removes the
/// database finds no connection of its own left. Dereferences to the
/// [`SubscriptionStore`]; [`entities`](Self::entities) gives the other face.
pub struct SubscriptionTestStore {
    // Field order matters: fields drop in declaration order.
    entities: SharedStore,
    subscriptions: SharedSubscriptionStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl SubscriptionTestStore {
    /// `keep_alive` is dropped when the test is done with the store; its `Drop`
    /// should remove the database.
    pub fn new<S>(store: Arc<S>, keep_alive: impl Send + Sync + 'static) -> Self
    where
        S: EntityStore + SubscriptionStore + 'static,
    {
        SubscriptionTestStore {
            entities: store.clone(),
            subscriptions: store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    pub fn entities(&self) -> &dyn EntityStore {
        self.entities.as_ref()
    }

    /// Another handle to the store, for tasks spawned by a test.
    pub fn shared(&self) -> SharedSubscriptionStore {
        SharedSubscriptionStore::clone(&self.subscriptions)
    }
}

impl Deref for SubscriptionTestStore {
    type Target = dyn SubscriptionStore;

    fn deref(&self) -> &Self::Target {
        self.subscriptions.as_ref()
    }
}

/// Expands to the subscription suite as `#[tokio::test]` functions, each getting a
/// fresh store from `$new_store` (an async expression yielding a
/// [`SubscriptionTestStore`]). Invoke it once, in a test file or module of its own.
#[macro_export]
macro_rules! subscriptions_conformance_suite {
    ($new_store:expr) => {
        $crate::subscriptions_conformance_suite!(@cases $new_store;
            subscriptions_are_created_read_replaced_and_deleted,
            subscriptions_are_listed_in_creation_order_a_page_at_a_time,
            subscriptions_are_isolated_per_tenant,
            creating_a_subscription_creates_the_tenant,
            a_tenant_without_subscriptions_logs_no_changes,
            every_kind_of_entity_write_logs_its_change_in_commit_order,
            a_refused_or_unchanged_item_logs_nothing,
            delete_matching_logs_each_deleted_entity,
            enqueueing_moves_the_cursor_and_removes_dispatched_changes,
            a_dispatcher_that_lost_the_race_writes_nothing,
            claims_give_only_the_oldest_due_notification_of_each_subscription,
            a_claim_holds_other_nodes_off_until_its_lease_ends,
            delivery_outcomes_update_the_status,
            order_per_subscription_holds_across_retries,
            finishing_after_the_subscription_is_gone_is_harmless,
            deleting_a_subscription_drops_its_queue,
            concurrent_claimers_never_share_a_subscription,
            changes_become_visible_in_sequence_order,
            claims_take_consecutive_notifications_of_each_subscription,
            released_notifications_are_claimed_again_and_not_counted_as_sent,
            the_epoch_moves_with_subscription_writes_only,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: $crate::subscriptions_conformance::SubscriptionTestStore =
                    $new_store.await;
                $crate::subscriptions_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

const SHELTER: &str = "https://ex.org/Shelter";
const CAPACITY: &str = "https://ex.org/capacity";
const NODE_A: &str = "node-a";
const NODE_B: &str = "node-b";
const LEASE: Duration = Duration::from_secs(30);

/// A fixed instant, whole seconds, so it survives every backend unchanged.
fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(i64::from(second))
}

fn yaizu() -> Tenant {
    Tenant::named("222127")
}

fn shelter(id: &str, capacity: i64) -> Entity {
    let mut e = Entity::new(id, vec![SHELTER.to_owned()]);
    e.created_at = Some(at(0));
    e.modified_at = Some(at(0));
    e.attributes.insert(
        CAPACITY.to_owned(),
        vec![Attribute::new(AttributeValue::Property(json!(capacity)))],
    );
    e
}

fn subscription_doc(id: &str) -> Value {
    json!({
        "id": id,
        "type": "Subscription",
        "entities": [{"type": SHELTER}],
        "notification": {"endpoint": {"uri": "http://example.org/notify"}},
    })
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

async fn subscribe(store: &SubscriptionTestStore, tenant: &Tenant, id: &str) {
    expect(
        store
            .create_subscription(tenant, id, &subscription_doc(id))
            .await,
        "create_subscription",
    );
}

async fn create(store: &SubscriptionTestStore, tenant: &Tenant, entity: Entity) {
    expect(
        store.entities().create_entity(tenant, entity).await,
        "create_entity",
    );
}

/// Runs one modification and returns its result.
async fn modify_one(
    store: &SubscriptionTestStore,
    tenant: &Tenant,
    id: &str,
    apply: impl FnOnce(Option<Entity>) -> Result<Write, NgsiError> + Send + 'static,
) -> Result<Write, NgsiError> {
    let mut results = expect(
        store
            .entities()
            .modify(tenant, vec![Modification::new(id, apply)])
            .await,
        "modify",
    );
    results
        .pop()
        .unwrap_or_else(|| panic!("modify returned no result"))
}

async fn all_changes(store: &SubscriptionTestStore) -> Vec<EntityChange> {
    expect(store.changes_after(0, 1000).await, "changes_after")
}

/// What a change says, without its sequence number and time.
fn summary(change: &EntityChange) -> (String, String, Option<Entity>, Option<Entity>) {
    (
        change.tenant.name().to_owned(),
        change.entity_id.clone(),
        change.before.clone(),
        change.after.clone(),
    )
}

fn notification(tenant: &Tenant, subscription_id: &str, n: i64) -> NewNotification {
    NewNotification {
        tenant: tenant.clone(),
        subscription_id: subscription_id.to_owned(),
        payload: json!({"subscriptionId": subscription_id, "n": n}),
    }
}

async fn enqueue(store: &SubscriptionTestStore, notifications: Vec<NewNotification>) {
    let cursor = expect(store.dispatch_cursor().await, "dispatch_cursor");
    expect(
        store
            .enqueue_notifications(notifications, cursor, cursor)
            .await,
        "enqueue_notifications",
    );
}

async fn claim(
    store: &SubscriptionTestStore,
    node: &str,
    now: DateTime<Utc>,
) -> Vec<QueuedNotification> {
    expect(
        store
            .claim_due_notifications(node, now, LEASE, 100, 1)
            .await,
        "claim_due_notifications",
    )
}

/// The `n` of each notification's payload, in the order given.
fn numbers(claimed: &[QueuedNotification]) -> Vec<(String, i64)> {
    claimed
        .iter()
        .map(|q| {
            (
                q.subscription_id.clone(),
                q.payload["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

async fn finish(store: &SubscriptionTestStore, id: i64, outcome: DeliveryOutcome) {
    expect(
        store.finish_notification(id, outcome).await,
        "finish_notification",
    );
}

async fn status_of(store: &SubscriptionTestStore, tenant: &Tenant, id: &str) -> DeliveryStatus {
    expect(store.get_subscription(tenant, id).await, "get_subscription")
        .unwrap_or_else(|| panic!("subscription {id} is missing"))
        .status
}

// ---------------------------------------------------------------------------------
// Subscriptions.

pub async fn subscriptions_are_created_read_replaced_and_deleted(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    assert_eq!(
        expect(store.get_subscription(&tenant, "urn:s:1").await, "get"),
        None
    );
    subscribe(store, &tenant, "urn:s:1").await;
    let stored = expect(store.get_subscription(&tenant, "urn:s:1").await, "get");
    assert_eq!(
        stored,
        Some(StoredSubscription {
            tenant: tenant.clone(),
            id: "urn:s:1".into(),
            doc: subscription_doc("urn:s:1"),
            status: DeliveryStatus::default(),
        })
    );
    match store
        .create_subscription(&tenant, "urn:s:1", &subscription_doc("urn:s:1"))
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("creating a taken id gave {other:?}"),
    }

    let replaced = json!({"id": "urn:s:1", "type": "Subscription", "q": "capacity>10"});
    expect(
        store
            .replace_subscription(&tenant, "urn:s:1", &replaced)
            .await,
        "replace_subscription",
    );
    let stored = expect(store.get_subscription(&tenant, "urn:s:1").await, "get");
    assert_eq!(stored.map(|s| s.doc), Some(replaced.clone()));
    match store
        .replace_subscription(&tenant, "urn:s:missing", &replaced)
        .await
    {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("replacing a missing subscription gave {other:?}"),
    }

    assert!(expect(
        store.delete_subscription(&tenant, "urn:s:1").await,
        "delete"
    ));
    assert!(!expect(
        store.delete_subscription(&tenant, "urn:s:1").await,
        "delete"
    ));
    assert_eq!(
        expect(store.get_subscription(&tenant, "urn:s:1").await, "get"),
        None
    );
    assert!(expect(store.all_subscriptions().await, "all_subscriptions").is_empty());
}

pub async fn subscriptions_are_listed_in_creation_order_a_page_at_a_time(
    store: &SubscriptionTestStore,
) {
    let tenant = yaizu();
    // Ids out of alphabetical order: the listing follows creation, not the id.
    let ids = ["urn:s:c", "urn:s:a", "urn:s:d", "urn:s:b", "urn:s:e"];
    for id in ids {
        subscribe(store, &tenant, id).await;
    }
    let page = |limit, offset| async move {
        let (subs, total) = expect(
            store.list_subscriptions(&yaizu(), limit, offset).await,
            "list_subscriptions",
        );
        (subs.into_iter().map(|s| s.id).collect::<Vec<_>>(), total)
    };
    assert_eq!(
        page(2, 0).await,
        (vec!["urn:s:c".into(), "urn:s:a".into()], 5)
    );
    assert_eq!(
        page(2, 2).await,
        (vec!["urn:s:d".into(), "urn:s:b".into()], 5)
    );
    assert_eq!(page(2, 4).await, (vec!["urn:s:e".into()], 5));
    assert_eq!(page(2, 9).await, (Vec::<String>::new(), 5));
    let all: Vec<String> = expect(store.all_subscriptions().await, "all_subscriptions")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(all, ids);
}

pub async fn subscriptions_are_isolated_per_tenant(store: &SubscriptionTestStore) {
    let (yaizu, shizuoka) = (yaizu(), Tenant::named("220001"));
    subscribe(store, &yaizu, "urn:s:1").await;
    // The same id in another tenant is another subscription.
    subscribe(store, &shizuoka, "urn:s:1").await;
    subscribe(store, &shizuoka, "urn:s:2").await;
    assert_eq!(
        expect(store.list_subscriptions(&yaizu, 10, 0).await, "list").1,
        1
    );
    assert_eq!(
        expect(store.list_subscriptions(&shizuoka, 10, 0).await, "list").1,
        2
    );
    assert_eq!(
        expect(
            store
                .list_subscriptions(&Tenant::default_tenant(), 10, 0)
                .await,
            "list"
        ),
        (Vec::new(), 0)
    );
    assert!(expect(
        store.delete_subscription(&shizuoka, "urn:s:1").await,
        "delete"
    ));
    let left = expect(store.get_subscription(&yaizu, "urn:s:1").await, "get");
    assert_eq!(left.map(|s| s.tenant), Some(yaizu.clone()));
    let mut everywhere: Vec<(String, String)> =
        expect(store.all_subscriptions().await, "all_subscriptions")
            .into_iter()
            .map(|s| (s.tenant.name().to_owned(), s.id))
            .collect();
    everywhere.sort();
    assert_eq!(
        everywhere,
        [
            ("220001".to_owned(), "urn:s:2".to_owned()),
            ("222127".to_owned(), "urn:s:1".to_owned())
        ]
    );
}

pub async fn creating_a_subscription_creates_the_tenant(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    assert!(!expect(
        store.entities().tenant_exists(&tenant).await,
        "tenant_exists"
    ));
    subscribe(store, &tenant, "urn:s:1").await;
    assert!(expect(
        store.entities().tenant_exists(&tenant).await,
        "tenant_exists"
    ));
    // And a write of an entity in it still works (the tenant row is already there).
    create(store, &tenant, shelter("urn:ngsi-ld:Shelter:1", 10)).await;
}

// ---------------------------------------------------------------------------------
// The change log.

pub async fn a_tenant_without_subscriptions_logs_no_changes(store: &SubscriptionTestStore) {
    let (quiet, watched) = (Tenant::named("220001"), yaizu());
    subscribe(store, &watched, "urn:s:1").await;
    create(store, &quiet, shelter("urn:ngsi-ld:Shelter:1", 10)).await;
    let put = modify_one(store, &quiet, "urn:ngsi-ld:Shelter:1", |_| {
        Ok(Write::Put(shelter("urn:ngsi-ld:Shelter:1", 20)))
    })
    .await;
    assert!(put.is_ok(), "{put:?}");
    let deleted = modify_one(store, &quiet, "urn:ngsi-ld:Shelter:1", |_| {
        Ok(Write::Delete)
    })
    .await;
    assert!(deleted.is_ok(), "{deleted:?}");
    create(store, &quiet, shelter("urn:ngsi-ld:Shelter:2", 10)).await;
    expect(
        store
            .entities()
            .delete_matching(&quiet, &EntityQuery::default())
            .await,
        "delete_matching",
    );
    assert_eq!(all_changes(store).await, Vec::new());

    // A tenant whose last subscription is gone stops logging.
    create(store, &watched, shelter("urn:ngsi-ld:Shelter:1", 10)).await;
    assert_eq!(all_changes(store).await.len(), 1);
    assert!(expect(
        store.delete_subscription(&watched, "urn:s:1").await,
        "delete"
    ));
    create(store, &watched, shelter("urn:ngsi-ld:Shelter:2", 10)).await;
    assert_eq!(all_changes(store).await.len(), 1);
}

pub async fn every_kind_of_entity_write_logs_its_change_in_commit_order(
    store: &SubscriptionTestStore,
) {
    let tenant = yaizu();
    let id = "urn:ngsi-ld:Shelter:1";
    subscribe(store, &tenant, "urn:s:1").await;
    create(store, &tenant, shelter(id, 10)).await;
    let put = modify_one(store, &tenant, id, |_| Ok(Write::Put(shelter(id, 20)))).await;
    assert_eq!(put, Ok(Write::Put(shelter(id, 20))));
    // A modification creating the entity logs a creation.
    let other = "urn:ngsi-ld:Shelter:2";
    let created = modify_one(store, &tenant, other, |stored| {
        assert_eq!(stored, None);
        Ok(Write::Put(shelter(other, 5)))
    })
    .await;
    assert!(created.is_ok(), "{created:?}");
    let deleted = modify_one(store, &tenant, id, |_| Ok(Write::Delete)).await;
    assert_eq!(deleted, Ok(Write::Delete));

    let changes = all_changes(store).await;
    let name = tenant.name().to_owned();
    assert_eq!(
        changes.iter().map(summary).collect::<Vec<_>>(),
        vec![
            (name.clone(), id.to_owned(), None, Some(shelter(id, 10))),
            (
                name.clone(),
                id.to_owned(),
                Some(shelter(id, 10)),
                Some(shelter(id, 20))
            ),
            (
                name.clone(),
                other.to_owned(),
                None,
                Some(shelter(other, 5))
            ),
            (name, id.to_owned(), Some(shelter(id, 20)), None),
        ]
    );
    let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "sequence numbers rise: {seqs:?}"
    );
    // Reading after a sequence number gives what follows it, a page at a time.
    let after_first = expect(store.changes_after(seqs[0], 2).await, "changes_after");
    assert_eq!(
        after_first.iter().map(|c| c.seq).collect::<Vec<_>>(),
        seqs[1..3]
    );
}

pub async fn a_refused_or_unchanged_item_logs_nothing(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    let id = "urn:ngsi-ld:Shelter:1";
    subscribe(store, &tenant, "urn:s:1").await;
    create(store, &tenant, shelter(id, 10)).await;
    let results = expect(
        store
            .entities()
            .modify(
                &tenant,
                vec![
                    Modification::new(id, |_| Ok(Write::Unchanged)),
                    Modification::new(id, |_| Err(NgsiError::not_found("refused"))),
                    Modification::new("urn:ngsi-ld:Shelter:404", |_| {
                        Err(NgsiError::not_found("absent"))
                    }),
                    Modification::new(id, |_| Ok(Write::Put(shelter(id, 30)))),
                ],
            )
            .await,
        "modify",
    );
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], Ok(Write::Unchanged));
    assert!(results[1].is_err() && results[2].is_err(), "{results:?}");
    let changes = all_changes(store).await;
    assert_eq!(
        changes.iter().map(summary).collect::<Vec<_>>(),
        vec![
            (
                tenant.name().to_owned(),
                id.to_owned(),
                None,
                Some(shelter(id, 10))
            ),
            (
                tenant.name().to_owned(),
                id.to_owned(),
                Some(shelter(id, 10)),
                Some(shelter(id, 30))
            ),
        ]
    );
    // Creating an entity that exists is refused and logs nothing either.
    match store
        .entities()
        .create_entity(&tenant, shelter(id, 1))
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("creating an existing entity gave {other:?}"),
    }
    assert_eq!(all_changes(store).await.len(), 2);
}

pub async fn delete_matching_logs_each_deleted_entity(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    for n in 1..=3 {
        create(
            store,
            &tenant,
            shelter(&format!("urn:ngsi-ld:Shelter:{n}"), n),
        )
        .await;
    }
    let mut other = Entity::new(
        "urn:ngsi-ld:Hospital:1",
        vec!["https://ex.org/Hospital".into()],
    );
    other.created_at = Some(at(0));
    other.modified_at = Some(at(0));
    create(store, &tenant, other).await;
    let before = all_changes(store).await;
    let cursor = before.last().map_or(0, |c| c.seq);
    // Only the shelters, and both exact and evaluated queries log.
    let query = EntityQuery {
        types: Some(TypeExpr::Type(SHELTER.into())),
        ..EntityQuery::default()
    };
    let deleted = expect(
        store.entities().delete_matching(&tenant, &query).await,
        "delete_matching",
    );
    assert_eq!(deleted, 3);
    let mut logged: Vec<_> = expect(store.changes_after(cursor, 100).await, "changes_after")
        .iter()
        .map(summary)
        .collect();
    logged.sort_by(|a, b| a.1.cmp(&b.1));
    let expected: Vec<_> = (1..=3)
        .map(|n| {
            let id = format!("urn:ngsi-ld:Shelter:{n}");
            (
                tenant.name().to_owned(),
                id.clone(),
                Some(shelter(&id, n)),
                None,
            )
        })
        .collect();
    assert_eq!(logged, expected);
}

// ---------------------------------------------------------------------------------
// Dispatch and delivery.

pub async fn enqueueing_moves_the_cursor_and_removes_dispatched_changes(
    store: &SubscriptionTestStore,
) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    assert_eq!(expect(store.dispatch_cursor().await, "dispatch_cursor"), 0);
    for n in 1..=3 {
        create(
            store,
            &tenant,
            shelter(&format!("urn:ngsi-ld:Shelter:{n}"), n),
        )
        .await;
    }
    let changes = all_changes(store).await;
    assert_eq!(changes.len(), 3);
    let second = changes[1].seq;
    expect(
        store
            .enqueue_notifications(
                vec![
                    notification(&tenant, "urn:s:1", 1),
                    notification(&tenant, "urn:s:1", 2),
                ],
                0,
                second,
            )
            .await,
        "enqueue_notifications",
    );
    assert_eq!(
        expect(store.dispatch_cursor().await, "dispatch_cursor"),
        second
    );
    // The dispatched rows are gone; what follows the cursor is still there.
    let left = all_changes(store).await;
    assert_eq!(left, changes[2..]);
    let claimed = claim(store, NODE_A, at(1)).await;
    assert_eq!(numbers(&claimed), [("urn:s:1".to_owned(), 1)]);
    assert_eq!(claimed[0].tenant, tenant);
    assert_eq!(claimed[0].attempts, 0);
    assert_eq!(
        claimed[0].payload,
        json!({"subscriptionId": "urn:s:1", "n": 1})
    );

    // Nothing to queue still moves the cursor, and new changes keep rising above it.
    expect(
        store
            .enqueue_notifications(Vec::new(), second, changes[2].seq)
            .await,
        "enqueue_notifications",
    );
    assert_eq!(all_changes(store).await, Vec::new());
    create(store, &tenant, shelter("urn:ngsi-ld:Shelter:4", 4)).await;
    let newest = all_changes(store).await;
    assert_eq!(newest.len(), 1);
    assert!(
        newest[0].seq > changes[2].seq,
        "{newest:?} after {changes:?}"
    );
}

/// Two nodes read the same changes; the one that moves the cursor second is told so
/// and queues nothing, so no change is notified twice.
pub async fn a_dispatcher_that_lost_the_race_writes_nothing(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    create(store, &tenant, shelter("urn:ngsi-ld:Shelter:1", 1)).await;
    let changes = all_changes(store).await;
    let last = changes[0].seq;
    let first = store
        .enqueue_notifications(vec![notification(&tenant, "urn:s:1", 1)], 0, last)
        .await;
    assert!(expect(first, "enqueue_notifications"));
    let second = store
        .enqueue_notifications(vec![notification(&tenant, "urn:s:1", 1)], 0, last)
        .await;
    assert!(!expect(second, "enqueue_notifications"));
    let claimed = claim(store, NODE_A, at(1)).await;
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        expect(store.dispatch_cursor().await, "dispatch_cursor"),
        last
    );
}

pub async fn claims_give_only_the_oldest_due_notification_of_each_subscription(
    store: &SubscriptionTestStore,
) {
    let tenant = yaizu();
    for id in ["urn:s:1", "urn:s:2", "urn:s:3"] {
        subscribe(store, &tenant, id).await;
    }
    enqueue(
        store,
        vec![
            notification(&tenant, "urn:s:1", 1),
            notification(&tenant, "urn:s:2", 1),
            notification(&tenant, "urn:s:1", 2),
            notification(&tenant, "urn:s:2", 2),
            notification(&tenant, "urn:s:1", 3),
        ],
    )
    .await;
    // Notifications for a subscription that does not exist are not queued.
    enqueue(store, vec![notification(&tenant, "urn:s:gone", 1)]).await;
    let claimed = claim(store, NODE_A, at(1)).await;
    assert_eq!(
        numbers(&claimed),
        [("urn:s:1".to_owned(), 1), ("urn:s:2".to_owned(), 1)]
    );
    // While they are out, their successors wait, whoever asks.
    assert_eq!(claim(store, NODE_B, at(2)).await, Vec::new());
    // A limit caps a claim.
    expect(
        store
            .finish_notification(claimed[0].id, DeliveryOutcome::Delivered { at: at(2) })
            .await,
        "finish_notification",
    );
    expect(
        store
            .finish_notification(claimed[1].id, DeliveryOutcome::Delivered { at: at(2) })
            .await,
        "finish_notification",
    );
    let limited = expect(
        store
            .claim_due_notifications(NODE_A, at(3), LEASE, 1, 1)
            .await,
        "claim_due_notifications",
    );
    assert_eq!(numbers(&limited), [("urn:s:1".to_owned(), 2)]);
    let rest = claim(store, NODE_B, at(3)).await;
    assert_eq!(numbers(&rest), [("urn:s:2".to_owned(), 2)]);
    // A node asking again while its lease holds gets nothing: what it holds may be
    // in flight, and handing it out again would deliver it twice.
    let again = claim(store, NODE_A, at(4)).await;
    assert!(again.is_empty(), "{again:?}");
}

pub async fn a_claim_holds_other_nodes_off_until_its_lease_ends(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    enqueue(store, vec![notification(&tenant, "urn:s:1", 1)]).await;
    let first = claim(store, NODE_A, at(0)).await;
    assert_eq!(numbers(&first), [("urn:s:1".to_owned(), 1)]);
    // The lease is 30 s: another node gets nothing before it ends…
    assert_eq!(claim(store, NODE_B, at(29)).await, Vec::new());
    // …and the notification once it has (node A is presumed dead).
    let taken_over = claim(store, NODE_B, at(30)).await;
    assert_eq!(
        taken_over.iter().map(|q| q.id).collect::<Vec<_>>(),
        [first[0].id]
    );
    // Now node B holds it.
    assert_eq!(claim(store, NODE_A, at(31)).await, Vec::new());
}

pub async fn delivery_outcomes_update_the_status(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    enqueue(
        store,
        (1..=3)
            .map(|n| notification(&tenant, "urn:s:1", n))
            .collect(),
    )
    .await;

    let first = claim(store, NODE_A, at(1)).await;
    finish(store, first[0].id, DeliveryOutcome::Delivered { at: at(2) }).await;
    assert_eq!(
        status_of(store, &tenant, "urn:s:1").await,
        DeliveryStatus {
            times_sent: 1,
            times_failed: 0,
            last_notification: Some(at(1)),
            last_success: Some(at(2)),
            last_failure: None,
            consecutive_failures: 0,
        }
    );

    // A failure to retry later: counted, and the notification waits until then.
    let second = claim(store, NODE_A, at(3)).await;
    assert_eq!(numbers(&second), [("urn:s:1".to_owned(), 2)]);
    finish(
        store,
        second[0].id,
        DeliveryOutcome::Failed {
            at: at(4),
            retry_at: Some(at(10)),
        },
    )
    .await;
    assert_eq!(
        status_of(store, &tenant, "urn:s:1").await,
        DeliveryStatus {
            times_sent: 2,
            times_failed: 1,
            last_notification: Some(at(3)),
            last_success: Some(at(2)),
            last_failure: Some(at(4)),
            consecutive_failures: 1,
        }
    );
    assert_eq!(claim(store, NODE_A, at(9)).await, Vec::new());
    // A failure with no retry drops it; the failures run on.
    let retried = claim(store, NODE_A, at(10)).await;
    assert_eq!(
        retried
            .iter()
            .map(|q| (q.id, q.attempts))
            .collect::<Vec<_>>(),
        [(second[0].id, 1)]
    );
    finish(
        store,
        retried[0].id,
        DeliveryOutcome::Failed {
            at: at(11),
            retry_at: None,
        },
    )
    .await;
    assert_eq!(
        status_of(store, &tenant, "urn:s:1").await,
        DeliveryStatus {
            times_sent: 3,
            times_failed: 2,
            last_notification: Some(at(10)),
            last_success: Some(at(2)),
            last_failure: Some(at(11)),
            consecutive_failures: 2,
        }
    );
    // The next one is up, and a success resets the run of failures.
    let third = claim(store, NODE_A, at(12)).await;
    assert_eq!(numbers(&third), [("urn:s:1".to_owned(), 3)]);
    finish(
        store,
        third[0].id,
        DeliveryOutcome::Delivered { at: at(13) },
    )
    .await;
    let status = status_of(store, &tenant, "urn:s:1").await;
    // Four attempts, two of them failed.
    assert_eq!((status.times_sent, status.times_failed), (4, 2));
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.last_success, Some(at(13)));
    assert_eq!(status.last_failure, Some(at(11)));
    assert_eq!(claim(store, NODE_A, at(100)).await, Vec::new());
    // Finishing one that is gone again changes nothing.
    finish(
        store,
        third[0].id,
        DeliveryOutcome::Delivered { at: at(14) },
    )
    .await;
    assert_eq!(status_of(store, &tenant, "urn:s:1").await, status);
}

pub async fn order_per_subscription_holds_across_retries(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    subscribe(store, &tenant, "urn:s:2").await;
    enqueue(
        store,
        vec![
            notification(&tenant, "urn:s:1", 1),
            notification(&tenant, "urn:s:1", 2),
            notification(&tenant, "urn:s:2", 1),
        ],
    )
    .await;
    let mut delivered = Vec::new();
    // The first of urn:s:1 fails twice before it goes through; the second waits for it
    // all along, while urn:s:2 is not held up.
    let mut now = 1;
    for failures_left in [2, 1, 0, 0] {
        let claimed = claim(store, NODE_A, at(now)).await;
        for q in &claimed {
            let n = q.payload["n"].as_i64().unwrap_or(-1);
            if q.subscription_id == "urn:s:1" && n == 1 && failures_left > 0 {
                let retry_at = Some(at(now + 5));
                finish(
                    store,
                    q.id,
                    DeliveryOutcome::Failed {
                        at: at(now),
                        retry_at,
                    },
                )
                .await;
            } else {
                delivered.push((q.subscription_id.clone(), n));
                finish(store, q.id, DeliveryOutcome::Delivered { at: at(now) }).await;
            }
        }
        // A claim before the retry is due finds urn:s:1 blocked.
        let early = claim(store, NODE_A, at(now + 1)).await;
        assert!(
            early
                .iter()
                .all(|q| q.subscription_id != "urn:s:1" || failures_left == 0),
            "{early:?}"
        );
        for q in &early {
            delivered.push((
                q.subscription_id.clone(),
                q.payload["n"].as_i64().unwrap_or(-1),
            ));
            finish(store, q.id, DeliveryOutcome::Delivered { at: at(now + 1) }).await;
        }
        now += 5;
    }
    let of = |id: &str| -> Vec<i64> {
        delivered
            .iter()
            .filter(|(s, _)| s == id)
            .map(|(_, n)| *n)
            .collect()
    };
    assert_eq!(of("urn:s:1"), [1, 2]);
    assert_eq!(of("urn:s:2"), [1]);
    let status = status_of(store, &tenant, "urn:s:1").await;
    assert_eq!((status.times_sent, status.times_failed), (4, 2));
}

pub async fn finishing_after_the_subscription_is_gone_is_harmless(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    enqueue(
        store,
        (1..=3)
            .map(|n| notification(&tenant, "urn:s:1", n))
            .collect(),
    )
    .await;
    let claimed = claim(store, NODE_A, at(1)).await;
    assert_eq!(claimed.len(), 1);
    assert!(expect(
        store.delete_subscription(&tenant, "urn:s:1").await,
        "delete"
    ));
    for outcome in [
        DeliveryOutcome::Delivered { at: at(2) },
        DeliveryOutcome::Failed {
            at: at(2),
            retry_at: Some(at(9)),
        },
        DeliveryOutcome::Failed {
            at: at(2),
            retry_at: None,
        },
    ] {
        finish(store, claimed[0].id, outcome).await;
    }
    // A notification id that never existed is no error either.
    finish(store, i64::MAX, DeliveryOutcome::Delivered { at: at(2) }).await;
    assert_eq!(claim(store, NODE_A, at(100)).await, Vec::new());
}

pub async fn deleting_a_subscription_drops_its_queue(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    subscribe(store, &tenant, "urn:s:2").await;
    // The same subscription id in another tenant keeps its queue.
    let other = Tenant::named("220001");
    subscribe(store, &other, "urn:s:1").await;
    enqueue(
        store,
        vec![
            notification(&tenant, "urn:s:1", 1),
            notification(&tenant, "urn:s:1", 2),
            notification(&tenant, "urn:s:2", 1),
            notification(&other, "urn:s:1", 1),
        ],
    )
    .await;
    assert!(expect(
        store.delete_subscription(&tenant, "urn:s:1").await,
        "delete"
    ));
    // Created again, it starts with an empty queue.
    subscribe(store, &tenant, "urn:s:1").await;
    let mut left: Vec<(String, String, i64)> = claim(store, NODE_A, at(1))
        .await
        .iter()
        .map(|q| {
            (
                q.tenant.name().to_owned(),
                q.subscription_id.clone(),
                q.payload["n"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ("220001".to_owned(), "urn:s:1".to_owned(), 1),
            ("222127".to_owned(), "urn:s:2".to_owned(), 1)
        ]
    );
}

/// Two nodes claim and deliver at once, many times over: no notification is handed
/// out twice, no subscription ever has two notifications out at once, and each
/// subscription's notifications are delivered in the order they were queued.
pub async fn concurrent_claimers_never_share_a_subscription(store: &SubscriptionTestStore) {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    const SUBSCRIPTIONS: i64 = 12;
    const PER_SUBSCRIPTION: i64 = 4;
    let total = usize::try_from(SUBSCRIPTIONS * PER_SUBSCRIPTION).unwrap_or(0);
    let tenant = yaizu();
    for s in 0..SUBSCRIPTIONS {
        subscribe(store, &tenant, &format!("urn:s:{s}")).await;
    }
    let mut queued = Vec::new();
    for n in 1..=PER_SUBSCRIPTION {
        for s in 0..SUBSCRIPTIONS {
            queued.push(notification(&tenant, &format!("urn:s:{s}"), n));
        }
    }
    enqueue(store, queued).await;

    let out: Arc<Mutex<HashSet<String>>> = Arc::default();
    let delivered: Arc<Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let mut nodes = Vec::new();
    for node in [NODE_A, NODE_B] {
        let (store, out, delivered, done) =
            (store.shared(), out.clone(), delivered.clone(), done.clone());
        nodes.push(tokio::spawn(async move {
            let mut rounds = 0;
            while done.load(Ordering::SeqCst) < total {
                rounds += 1;
                assert!(rounds < 100_000, "{node} made no progress");
                // A fixed `now` well inside every lease: a claim never expires here.
                let claimed = store
                    .claim_due_notifications(node, at(1), LEASE, 3, 1)
                    .await
                    .unwrap_or_else(|e| panic!("{node}: claim failed: {e}"));
                for q in &claimed {
                    let fresh = out
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(q.subscription_id.clone());
                    assert!(
                        fresh,
                        "{node} got a second notification of {}",
                        q.subscription_id
                    );
                }
                for q in claimed {
                    let n = q.payload["n"].as_i64().unwrap_or(-1);
                    delivered.lock().unwrap_or_else(|p| p.into_inner()).push((
                        q.subscription_id.clone(),
                        n,
                        q.id,
                    ));
                    // Released here before the store frees it, so that the check above
                    // can only be stricter than the store.
                    out.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&q.subscription_id);
                    store
                        .finish_notification(q.id, DeliveryOutcome::Delivered { at: at(2) })
                        .await
                        .unwrap_or_else(|e| panic!("{node}: finish failed: {e}"));
                    done.fetch_add(1, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for node in nodes {
        node.await
            .unwrap_or_else(|e| panic!("a claiming task failed: {e}"));
    }
    let delivered = delivered.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let ids: HashSet<i64> = delivered.iter().map(|(_, _, id)| *id).collect();
    assert_eq!(
        ids.len(),
        delivered.len(),
        "a notification was delivered twice"
    );
    assert_eq!(delivered.len(), total);
    let mut per_subscription: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (subscription, n, _) in delivered {
        per_subscription.entry(subscription).or_default().push(n);
    }
    for (subscription, order) in per_subscription {
        assert_eq!(
            order,
            (1..=PER_SUBSCRIPTION).collect::<Vec<_>>(),
            "{subscription}"
        );
    }
}

/// Writers in parallel while a reader watches the change log: a change never appears
/// below one already seen, which is what lets the dispatcher keep a plain cursor.
pub async fn changes_become_visible_in_sequence_order(store: &SubscriptionTestStore) {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const WRITERS: usize = 4;
    const WRITES: usize = 15;
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    let finished = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (entities, finished, tenant) =
            (store.entities.clone(), finished.clone(), tenant.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..WRITES {
                let id = format!("urn:ngsi-ld:Shelter:{w}-{n}");
                let capacity = i64::try_from(n).unwrap_or(0);
                entities
                    .create_entity(&tenant, shelter(&id, capacity))
                    .await
                    .unwrap_or_else(|e| panic!("writer {w}: create failed: {e}"));
            }
            finished.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    loop {
        let done = finished.load(Ordering::SeqCst) == WRITERS;
        let now: BTreeSet<i64> = expect(store.changes_after(0, 10_000).await, "changes_after")
            .iter()
            .map(|c| c.seq)
            .collect();
        let highest_seen = seen.last().copied().unwrap_or(0);
        let late: Vec<i64> = now
            .difference(&seen)
            .copied()
            .filter(|seq| *seq < highest_seen)
            .collect();
        assert!(
            late.is_empty(),
            "changes {late:?} appeared below {highest_seen}"
        );
        assert!(seen.is_subset(&now), "a change row vanished");
        seen = now;
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer
            .await
            .unwrap_or_else(|e| panic!("a writer failed: {e}"));
    }
    assert_eq!(seen.len(), WRITERS * WRITES);
}

pub async fn claims_take_consecutive_notifications_of_each_subscription(
    store: &SubscriptionTestStore,
) {
    let tenant = yaizu();
    for id in ["urn:s:1", "urn:s:2"] {
        subscribe(store, &tenant, id).await;
    }
    let mut queued: Vec<_> = (1..=5)
        .map(|n| notification(&tenant, "urn:s:1", n))
        .collect();
    queued.extend((1..=2).map(|n| notification(&tenant, "urn:s:2", n)));
    enqueue(store, queued).await;
    let claimed = expect(
        store
            .claim_due_notifications(NODE_A, at(1), LEASE, 100, 3)
            .await,
        "claim_due_notifications",
    );
    let mut ids: Vec<i64> = claimed.iter().map(|q| q.id).collect();
    ids.sort_unstable();
    assert_eq!(
        claimed.iter().map(|q| q.id).collect::<Vec<_>>(),
        ids,
        "in id order"
    );
    let mut got = numbers(&claimed);
    got.sort();
    assert_eq!(
        got,
        [
            ("urn:s:1".to_owned(), 1),
            ("urn:s:1".to_owned(), 2),
            ("urn:s:1".to_owned(), 3),
            ("urn:s:2".to_owned(), 1),
            ("urn:s:2".to_owned(), 2),
        ]
    );
    assert_eq!(status_of(store, &tenant, "urn:s:1").await.times_sent, 3);
    // Nothing behind a held head is handed out, to anyone.
    let behind = expect(
        store
            .claim_due_notifications(NODE_B, at(2), LEASE, 100, 3)
            .await,
        "claim_due_notifications",
    );
    assert!(behind.is_empty(), "{behind:?}");
    // All outcomes recorded in one call; the rest of the queue comes next.
    let outcomes = claimed
        .iter()
        .map(|q| (q.id, DeliveryOutcome::Delivered { at: at(2) }))
        .collect();
    expect(
        store.finish_notifications(outcomes).await,
        "finish_notifications",
    );
    let rest = expect(
        store
            .claim_due_notifications(NODE_B, at(3), LEASE, 100, 3)
            .await,
        "claim_due_notifications",
    );
    assert_eq!(
        numbers(&rest),
        [("urn:s:1".to_owned(), 4), ("urn:s:1".to_owned(), 5)]
    );
    let status = status_of(store, &tenant, "urn:s:2").await;
    assert_eq!((status.times_sent, status.last_success), (2, Some(at(2))));
}

pub async fn released_notifications_are_claimed_again_and_not_counted_as_sent(
    store: &SubscriptionTestStore,
) {
    let tenant = yaizu();
    subscribe(store, &tenant, "urn:s:1").await;
    enqueue(
        store,
        (1..=3)
            .map(|n| notification(&tenant, "urn:s:1", n))
            .collect(),
    )
    .await;
    let claimed = expect(
        store
            .claim_due_notifications(NODE_A, at(1), LEASE, 100, 3)
            .await,
        "claim_due_notifications",
    );
    assert_eq!(claimed.len(), 3);
    // The first delivered, the second failed, the third not attempted.
    let outcomes = vec![
        (claimed[0].id, DeliveryOutcome::Delivered { at: at(2) }),
        (
            claimed[1].id,
            DeliveryOutcome::Failed {
                at: at(2),
                retry_at: Some(at(5)),
            },
        ),
        (claimed[2].id, DeliveryOutcome::Released),
    ];
    expect(
        store.finish_notifications(outcomes).await,
        "finish_notifications",
    );
    let status = status_of(store, &tenant, "urn:s:1").await;
    assert_eq!((status.times_sent, status.times_failed), (2, 1));
    // The failed head waits for its retry; the released one waits behind it.
    let early = expect(
        store
            .claim_due_notifications(NODE_B, at(4), LEASE, 100, 3)
            .await,
        "claim_due_notifications",
    );
    assert!(early.is_empty(), "{early:?}");
    let retried = expect(
        store
            .claim_due_notifications(NODE_B, at(5), LEASE, 100, 3)
            .await,
        "claim_due_notifications",
    );
    assert_eq!(
        numbers(&retried),
        [("urn:s:1".to_owned(), 2), ("urn:s:1".to_owned(), 3)]
    );
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[1].attempts, 0);
}

pub async fn the_epoch_moves_with_subscription_writes_only(store: &SubscriptionTestStore) {
    let tenant = yaizu();
    let epoch = || async { expect(store.subscriptions_epoch().await, "subscriptions_epoch") };
    let start = epoch().await;
    subscribe(store, &tenant, "urn:s:1").await;
    let created = epoch().await;
    assert_ne!(created, start, "a creation moves the epoch");
    // Entity writes, queued notifications, claims and outcomes do not.
    create(store, &tenant, shelter("urn:ngsi-ld:Shelter:1", 5)).await;
    enqueue(store, vec![notification(&tenant, "urn:s:1", 1)]).await;
    let claimed = claim(store, NODE_A, at(1)).await;
    finish(
        store,
        claimed[0].id,
        DeliveryOutcome::Delivered { at: at(2) },
    )
    .await;
    assert_eq!(epoch().await, created);
    expect(
        store
            .replace_subscription(&tenant, "urn:s:1", &subscription_doc("urn:s:1"))
            .await,
        "replace_subscription",
    );
    let replaced = epoch().await;
    assert_ne!(replaced, created, "a replacement moves the epoch");
    assert!(expect(
        store.delete_subscription(&tenant, "urn:s:1").await,
        "delete"
    ));
    let deleted = epoch().await;
    assert_ne!(deleted, replaced, "a deletion moves the epoch");
    // Deleting what is not there changes nothing.
    assert!(!expect(
        store.delete_subscription(&tenant, "urn:s:1").await,
        "delete again"
    ));
    assert_eq!(epoch().await, deleted);
}
