//! Storage of NGSI-LD subscriptions and of what makes their notifications never lost:
//! the change log (an outbox written in the same transaction as every entity change
//! of a tenant that has subscriptions), the dispatch cursor over it, and the queue of
//! notifications waiting for delivery, claimed by one node at a time and delivered in
//! order per subscription.
//!
//! The flow: a write commits the entity and its change row together; the dispatcher
//! reads changes after its cursor, matches them against the subscriptions, and in one
//! transaction queues the notifications and moves the cursor; delivery workers claim
//! the oldest due notification of each subscription, send it, and record the outcome.
//! A crash anywhere repeats at most the step that was running (at-least-once).

use crate::{StoreError, Tenant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ngsi_ld::model::Entity;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A subscription as kept: its document (as `ngsi_ld::subscription` serialises it)
/// and the delivery status the workers maintain.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSubscription {
    pub tenant: Tenant,
    pub id: String,
    pub doc: Value,
    pub status: DeliveryStatus,
}

/// The status members of a subscription (clause 5.2.12).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryStatus {
    pub times_sent: u64,
    pub times_failed: u64,
    pub last_notification: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    /// Failures since the last success (0 when the last attempt succeeded).
    pub consecutive_failures: u32,
}

/// One committed change of one entity; `before` is absent for a creation, `after`
/// for a deletion.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityChange {
    pub seq: i64,
    pub tenant: Tenant,
    pub entity_id: String,
    pub before: Option<Entity>,
    pub after: Option<Entity>,
    pub at: DateTime<Utc>,
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub tenant: Tenant,
    pub subscription_id: String,
    pub payload: Value,
}

/// A queued notification claimed for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedNotification {
    pub id: i64,
    pub tenant: Tenant,
    pub subscription_id: String,
    pub payload: Value,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// How a delivery attempt ended. (Each claim already counted the attempt in
/// `timesSent` and `lastNotification`: the specification counts failed sends too.)
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// Delivered: the notification leaves the queue; `lastSuccess`.
    Delivered { at: DateTime<Utc> },
    /// Failed: `timesFailed` and `lastFailure`; tried again at `retry_at`, or dropped
    /// when `None` (the subscription was deleted or the notification expired).
    Failed {
        at: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    },
    /// Not attempted (a notification before it in the same claim failed): the claim
    /// is dropped, and the claim's count in `timesSent` taken back.
    Released,
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// `AlreadyExists` when the tenant has a subscription with this id. Creates the
    /// tenant on first write, like an entity.
    async fn create_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError>;
    /// Replaces the document (the status is kept); `NotFound` if absent.
    async fn replace_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError>;
    async fn get_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<StoredSubscription>, StoreError>;
    /// A page of the tenant's subscriptions in creation order, and their total.
    async fn list_subscriptions(
        &self,
        tenant: &Tenant,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<StoredSubscription>, u64), StoreError>;
    /// Deletes a subscription and its queued notifications; false if there was none.
    async fn delete_subscription(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError>;
    /// Every subscription of every tenant (the dispatcher matches changes against them).
    async fn all_subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError>;

    /// A number that moves whenever a subscription is created, replaced or deleted,
    /// on any node, in the same transaction (delivery status updates leave it alone).
    /// Read after [`changes_after`](Self::changes_after), an epoch equal to the one
    /// read with the subscriptions says those subscriptions are the ones every change
    /// read was committed under, so the dispatcher need not read them again.
    async fn subscriptions_epoch(&self) -> Result<i64, StoreError>;

    /// Committed changes with a sequence number above `seq`, oldest first.
    async fn changes_after(&self, seq: i64, limit: usize) -> Result<Vec<EntityChange>, StoreError>;
    /// The sequence number of the last change dispatched (0 at first).
    async fn dispatch_cursor(&self) -> Result<i64, StoreError>;
    /// In one transaction: if the cursor is still at `from`, queues the notifications,
    /// moves the cursor to `to`, removes the change rows up to it, and answers true;
    /// if another node moved the cursor meanwhile, writes nothing and answers false
    /// (those changes were dispatched there), so no change is dispatched twice.
    async fn enqueue_notifications(
        &self,
        notifications: Vec<NewNotification>,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError>;
    /// Claims, for `lease`, the oldest undelivered notifications of each subscription
    /// whose oldest one is due and held by nobody (the claiming node included: what
    /// it holds may be in flight): that one and up to `per_subscription - 1` after
    /// it, consecutive and free; for at most `limit` subscriptions, oldest heads
    /// first. Returned in id order. Delivering a subscription's claim in order, and
    /// nothing behind a held head, keeps its order. Each claimed notification counts
    /// in `timesSent` and sets `lastNotification`.
    async fn claim_due_notifications(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
        per_subscription: usize,
    ) -> Result<Vec<QueuedNotification>, StoreError>;

    /// Records the outcomes of attempts (and releases) and updates the subscriptions'
    /// status, all in one transaction; an id no longer queued is skipped.
    async fn finish_notifications(
        &self,
        outcomes: Vec<(i64, DeliveryOutcome)>,
    ) -> Result<(), StoreError>;

    /// Records the outcome of one attempt ([`finish_notifications`](Self::finish_notifications)).
    async fn finish_notification(
        &self,
        id: i64,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError> {
        self.finish_notifications(vec![(id, outcome)]).await
    }

    /// Woken after this process commits a change to a tenant with subscriptions (or
    /// queues notifications), so that the loops need not wait for their next poll.
    /// Changes committed by other nodes are found by polling alone.
    fn activity(&self) -> Arc<tokio::sync::Notify>;
}

pub type SharedSubscriptionStore = Arc<dyn SubscriptionStore>;
