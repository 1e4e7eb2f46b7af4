//! [`SubscriptionStore`] on PostgreSQL, in the tables of schema versions 5 and 7,
//! and the outbox the entity writes of `lib.rs` append to.
//!
//! Commit order: the dispatcher reads the change log after a cursor, so a change
//! must never become visible after one with a higher number. Sequence numbers are
//! handed out when a row is inserted, not when its transaction commits, so every
//! transaction that logs changes takes one transaction-level advisory lock just
//! before its inserts and holds it to its commit: numbers are then handed out in
//! commit order. Only writes of tenants with subscriptions take it, at the end of
//! their transaction; the others pay one `EXISTS` query.
//!
//! Claims are safe with any number of nodes: one statement finds each
//! subscription's oldest notification by skipping through the queue's index (one
//! probe per subscription with a queue, however long the queue), locks the due and
//! free ones `FOR UPDATE SKIP LOCKED` (a row another claimer is taking is skipped;
//! one it has taken is looked at again, now claimed, and left out), then locks the
//! free run right behind each head it got and marks them all claimed. Holding a
//! subscription's head is what entitles a claimer to the rows behind it, so two
//! claimers never hold notifications of one subscription. Outcomes are recorded
//! many at a time, in one set-based statement.
//!
//! The subscriptions epoch is the one row of `subscription_epoch`, incremented by
//! each creation, replacement and deletion in its own transaction, after the
//! subscription row is written: subscription writes therefore serialise on that
//! row (they are rare), and every node reads the same number once they commit.
//!
//! [`SubscriptionStore::activity`] is woken only after a commit that logged changes
//! or queued notifications, so that whoever wakes finds them.

use crate::{backend, ensure_tenant, to_i64, PostgresError, PostgresStore};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use store::doc::doc_to_entity;
use store::subscriptions::{
    DeliveryOutcome, DeliveryStatus, EntityChange, NewNotification, QueuedNotification,
    StoredSubscription, SubscriptionStore,
};
use store::{StoreError, Tenant};
use tokio_postgres::error::SqlState;
use tokio_postgres::{GenericClient, Row};

/// The advisory lock key ordering the change log ("outbox" in ASCII).
const OUTBOX_LOCK_KEY: i64 = 0x6f_75_74_62_6f_78;

/// Whether the tenant has subscriptions, that is whether its writes are logged.
pub(crate) async fn tenant_has_subscriptions(
    client: &impl GenericClient,
    tenant: &Tenant,
) -> Result<bool, StoreError> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM subscriptions WHERE tenant = $1)",
            &[&tenant.name()],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(backend)
}

/// Takes the lock that numbers the change log in commit order (held to the end of
/// the transaction).
pub(crate) async fn lock_change_log(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&OUTBOX_LOCK_KEY])
        .await
        .map(drop)
        .map_err(backend)
}

/// Moves the subscriptions epoch, in the caller's transaction (the row stays locked
/// until it ends, so concurrent subscription writes queue behind it).
async fn bump_epoch(tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("UPDATE subscription_epoch SET n = n + 1", &[])
        .await
        .map(drop)
        .map_err(backend)
}

/// One change to log: the entity's id and its documents before and after.
pub(crate) type Change = (String, Option<Value>, Option<Value>);

/// Appends the changes, in the order given, to the change log.
pub(crate) async fn log_changes(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: &Tenant,
    changes: Vec<Change>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    lock_change_log(tx).await?;
    let mut ids = Vec::with_capacity(changes.len());
    let mut befores = Vec::with_capacity(changes.len());
    let mut afters = Vec::with_capacity(changes.len());
    for (id, before, after) in changes {
        ids.push(id);
        befores.push(before);
        afters.push(after);
    }
    tx.execute(
        "INSERT INTO entity_changes (tenant, entity_id, before, after)
         SELECT $1, u.id, u.before, u.after
         FROM unnest($2::text[], $3::jsonb[], $4::jsonb[]) WITH ORDINALITY
             AS u (id, before, after, n)
         ORDER BY u.n",
        &[&tenant.name(), &ids, &befores, &afters],
    )
    .await
    .map(drop)
    .map_err(backend)
}

/// The end of a lease starting at `now`; one too long to add ends in year 9999.
fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    let far = Utc
        .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .unwrap_or(now);
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .map_or(far, |end| end.min(far))
}

fn count_of(row: &Row, column: &str) -> Result<u64, StoreError> {
    let n: i64 = row.try_get(column).map_err(backend)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn small_count(row: &Row, column: &str) -> Result<u32, StoreError> {
    let n: i32 = row.try_get(column).map_err(backend)?;
    Ok(u32::try_from(n).unwrap_or(0))
}

const SUBSCRIPTION_COLUMNS: &str = "tenant, id, doc, times_sent, times_failed, \
     last_notification, last_success, last_failure, consecutive_failures";

fn subscription_from_row(row: &Row) -> Result<StoredSubscription, StoreError> {
    Ok(StoredSubscription {
        tenant: Tenant::named(row.try_get::<_, String>("tenant").map_err(backend)?),
        id: row.try_get("id").map_err(backend)?,
        doc: row.try_get("doc").map_err(backend)?,
        status: DeliveryStatus {
            times_sent: count_of(row, "times_sent")?,
            times_failed: count_of(row, "times_failed")?,
            last_notification: row.try_get("last_notification").map_err(backend)?,
            last_success: row.try_get("last_success").map_err(backend)?,
            last_failure: row.try_get("last_failure").map_err(backend)?,
            consecutive_failures: small_count(row, "consecutive_failures")?,
        },
    })
}

fn change_document(
    row: &Row,
    column: &str,
    tenant: &str,
    id: &str,
) -> Result<Option<ngsi_ld::model::Entity>, StoreError> {
    let doc: Option<Value> = row.try_get(column).map_err(backend)?;
    doc.map(|doc| {
        doc_to_entity(&doc).map_err(|e| {
            StoreError::backend(PostgresError::CorruptEntity {
                tenant: tenant.to_owned(),
                id: id.to_owned(),
                reason: format!("in the change log ({column}): {e}"),
            })
        })
    })
    .transpose()
}

fn change_from_row(row: &Row) -> Result<EntityChange, StoreError> {
    let tenant: String = row.try_get("tenant").map_err(backend)?;
    let entity_id: String = row.try_get("entity_id").map_err(backend)?;
    Ok(EntityChange {
        seq: row.try_get("seq").map_err(backend)?,
        before: change_document(row, "before", &tenant, &entity_id)?,
        after: change_document(row, "after", &tenant, &entity_id)?,
        at: row.try_get("at").map_err(backend)?,
        tenant: Tenant::named(tenant),
        entity_id,
    })
}

fn notification_from_row(row: &Row) -> Result<QueuedNotification, StoreError> {
    Ok(QueuedNotification {
        id: row.try_get("id").map_err(backend)?,
        tenant: Tenant::named(row.try_get::<_, String>("tenant").map_err(backend)?),
        subscription_id: row.try_get("subscription_id").map_err(backend)?,
        payload: row.try_get("payload").map_err(backend)?,
        attempts: small_count(row, "attempts")?,
        created_at: row.try_get("created_at").map_err(backend)?,
    })
}

/// Claims each subscription's oldest notification if it is due and free, and the
/// free notifications right behind it (see the module documentation for why two
/// claimers never share a subscription).
///
/// `$1` node, `$2` now, `$3` end of the lease, `$4` how many subscriptions, `$5` how
/// many notifications behind each head at most.
const CLAIM_SQL: &str = "
    WITH RECURSIVE subs AS (
        -- Each queued subscription's oldest notification, found by skipping through
        -- the (tenant, subscription_id, id) index one subscription at a time: the
        -- cost grows with the subscriptions that have a queue, not with its length.
        (SELECT tenant, subscription_id, id FROM notification_queue
         ORDER BY tenant, subscription_id, id LIMIT 1)
        UNION ALL
        SELECT n.tenant, n.subscription_id, n.id FROM subs s
        CROSS JOIN LATERAL (
            SELECT q.tenant, q.subscription_id, q.id FROM notification_queue q
            WHERE (q.tenant, q.subscription_id) > (s.tenant, s.subscription_id)
            ORDER BY q.tenant, q.subscription_id, q.id LIMIT 1
        ) n
    ), heads AS (
        SELECT q.id, q.tenant, q.subscription_id FROM notification_queue q
        WHERE q.id IN (SELECT id FROM subs)
          AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= $2)
          AND (q.claimed_by IS NULL OR q.claim_until <= $2)
        ORDER BY q.id
        LIMIT $4
        FOR UPDATE SKIP LOCKED
    ), candidates AS (
        -- The notifications right behind each head, numbered from 1. Nobody else can
        -- be claiming them: a claim of this subscription needs its head, locked above.
        SELECT f.id, h.id AS head,
            row_number() OVER (PARTITION BY h.id ORDER BY f.id) AS n
        FROM heads h
        CROSS JOIN LATERAL (
            SELECT q.id FROM notification_queue q
            WHERE q.tenant = h.tenant AND q.subscription_id = h.subscription_id
              AND q.id > h.id
            ORDER BY q.id LIMIT $5
        ) f
    ), locked AS (
        -- Those still free once locked (one a late deliverer is finishing is skipped
        -- rather than waited for: waiting could deadlock with it).
        SELECT q.id FROM notification_queue q
        WHERE q.id IN (SELECT id FROM candidates)
          AND (q.claimed_by IS NULL OR q.claim_until <= $2)
        FOR UPDATE SKIP LOCKED
    ), runs AS (
        -- Consecutive: the run behind each head ends at the first one not taken.
        SELECT c.id, count(*) FILTER (WHERE l.id IS NULL)
            OVER (PARTITION BY c.head ORDER BY c.n) AS gaps
        FROM candidates c LEFT JOIN locked l ON l.id = c.id
    ), followers AS (
        SELECT id FROM runs WHERE gaps = 0
    ), claimed AS (
        UPDATE notification_queue q SET claimed_by = $1, claim_until = $3
        WHERE q.id IN (SELECT id FROM heads UNION ALL SELECT id FROM followers)
        RETURNING q.id, q.tenant, q.subscription_id, q.payload, q.attempts, q.created_at
    ), sent AS (
        -- A claimed notification is being sent: timesSent counts attempts (failed ones
        -- too, as the specification says), counted before the send so that a receiver
        -- asking at once already sees it.
        UPDATE subscriptions s SET times_sent = s.times_sent + c.n, last_notification = $2
        FROM (SELECT tenant, subscription_id, count(*) AS n FROM claimed
              GROUP BY tenant, subscription_id) c
        WHERE s.tenant = c.tenant AND s.id = c.subscription_id
    )
    SELECT id, tenant, subscription_id, payload, attempts, created_at FROM claimed";

/// The outcome kinds as [`FINISH_SQL`] reads them.
const DELIVERED: &str = "delivered";
const RETRY: &str = "retry";
const DROPPED: &str = "dropped";
const RELEASED: &str = "released";

/// Records many outcomes in one statement: `$1` ids, `$2` kinds, `$3` times of the
/// attempts, `$4` retry times, in the order given, which is the order the status
/// changes apply in (a delivery resets the consecutive failures, a failure after it
/// counts again). An id given twice counts once; an id no longer queued not at all.
const FINISH_SQL: &str = "
    WITH given AS (
        SELECT DISTINCT ON (u.id) u.id, u.kind, u.at, u.retry_at, u.n
        FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[])
            WITH ORDINALITY AS u (id, kind, at, retry_at, n)
        ORDER BY u.id, u.n
    ), removed AS (
        DELETE FROM notification_queue q USING given g
        WHERE q.id = g.id AND g.kind IN ('delivered', 'dropped')
        RETURNING q.id, q.tenant, q.subscription_id
    ), kept AS (
        -- A retry counts the attempt and waits; a release leaves both as they were.
        UPDATE notification_queue q SET
            attempts = CASE WHEN g.kind = 'retry' THEN q.attempts + 1 ELSE q.attempts END,
            next_attempt_at = CASE WHEN g.kind = 'retry' THEN g.retry_at
                                   ELSE q.next_attempt_at END,
            claimed_by = NULL, claim_until = NULL
        FROM given g
        WHERE q.id = g.id AND g.kind IN ('retry', 'released')
        RETURNING q.id, q.tenant, q.subscription_id
    ), touched AS (
        SELECT t.tenant, t.subscription_id, g.kind, g.at, g.n
        FROM (SELECT * FROM removed UNION ALL SELECT * FROM kept) t
        JOIN given g ON g.id = t.id
    ), per_subscription AS (
        SELECT tenant, subscription_id,
            count(*) FILTER (WHERE kind = 'released') AS released,
            count(*) FILTER (WHERE kind IN ('retry', 'dropped')) AS failed,
            (array_agg(at ORDER BY n DESC) FILTER (WHERE kind = 'delivered'))[1]
                AS last_success,
            (array_agg(at ORDER BY n DESC) FILTER (WHERE kind IN ('retry', 'dropped')))[1]
                AS last_failure,
            max(n) FILTER (WHERE kind = 'delivered') AS last_delivered
        FROM touched GROUP BY tenant, subscription_id
    ), failures_after AS (
        SELECT p.*, (SELECT count(*) FROM touched t
                     WHERE t.tenant = p.tenant AND t.subscription_id = p.subscription_id
                       AND t.kind IN ('retry', 'dropped')
                       AND t.n > coalesce(p.last_delivered, 0)) AS trailing
        FROM per_subscription p
    )
    UPDATE subscriptions s SET
        times_sent = greatest(s.times_sent - f.released, 0),
        times_failed = s.times_failed + f.failed,
        last_success = coalesce(f.last_success, s.last_success),
        last_failure = coalesce(f.last_failure, s.last_failure),
        consecutive_failures = CASE WHEN f.last_delivered IS NULL
            THEN s.consecutive_failures + f.trailing::integer
            ELSE f.trailing::integer END
    FROM failures_after f
    WHERE s.tenant = f.tenant AND s.id = f.subscription_id";

#[async_trait]
impl SubscriptionStore for PostgresStore {
    async fn create_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        ensure_tenant(&tx, tenant).await?;
        match tx
            .execute(
                "INSERT INTO subscriptions (tenant, id, doc) VALUES ($1, $2, $3)",
                &[&tenant.name(), &id, doc],
            )
            .await
        {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(StoreError::AlreadyExists(id.to_owned()));
            }
            other => other.map_err(backend)?,
        };
        bump_epoch(&tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn replace_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let replaced = tx
            .execute(
                "UPDATE subscriptions SET doc = $3 WHERE tenant = $1 AND id = $2",
                &[&tenant.name(), &id, doc],
            )
            .await
            .map_err(backend)?;
        if replaced == 0 {
            // Nothing written: the transaction rolls back when dropped.
            return Err(StoreError::NotFound(id.to_owned()));
        }
        bump_epoch(&tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<StoredSubscription>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = $1 AND id = $2"
        );
        client
            .query_opt(&sql, &[&tenant.name(), &id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(subscription_from_row)
            .transpose()
    }

    async fn list_subscriptions(
        &self,
        tenant: &Tenant,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<StoredSubscription>, u64), StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant = $1
             ORDER BY seq LIMIT $2 OFFSET $3"
        );
        let page = client
            .query(&sql, &[&tenant.name(), &to_i64(limit), &to_i64(offset)])
            .await
            .map_err(backend)?
            .iter()
            .map(subscription_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let total = client
            .query_one(
                "SELECT count(*) AS n FROM subscriptions WHERE tenant = $1",
                &[&tenant.name()],
            )
            .await
            .map_err(backend)?;
        Ok((page, count_of(&total, "n")?))
    }

    async fn delete_subscription(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let deleted = tx
            .execute(
                "DELETE FROM subscriptions WHERE tenant = $1 AND id = $2",
                &[&tenant.name(), &id],
            )
            .await
            .map_err(backend)?;
        tx.execute(
            "DELETE FROM notification_queue WHERE tenant = $1 AND subscription_id = $2",
            &[&tenant.name(), &id],
        )
        .await
        .map_err(backend)?;
        // Deleting a missing subscription changes nothing, the epoch included.
        if deleted > 0 {
            bump_epoch(&tx).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn all_subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY seq");
        client
            .query(&sql, &[])
            .await
            .map_err(backend)?
            .iter()
            .map(subscription_from_row)
            .collect()
    }

    async fn subscriptions_epoch(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        client
            .query_one("SELECT n FROM subscription_epoch", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(backend)
    }

    async fn changes_after(&self, seq: i64, limit: usize) -> Result<Vec<EntityChange>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT seq, tenant, entity_id, before, after, at FROM entity_changes
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&seq, &to_i64(limit)],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(change_from_row)
            .collect()
    }

    async fn dispatch_cursor(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        client
            .query_one("SELECT seq FROM dispatch_cursor", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(backend)
    }

    async fn enqueue_notifications(
        &self,
        notifications: Vec<NewNotification>,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The cursor row, locked: a second dispatcher waits here and then finds the
        // cursor moved, so each change is dispatched by exactly one node.
        let current: i64 = tx
            .query_one("SELECT seq FROM dispatch_cursor FOR UPDATE", &[])
            .await
            .map_err(backend)?
            .get(0);
        if current != from {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        if !notifications.is_empty() {
            let mut tenants = Vec::with_capacity(notifications.len());
            let mut subscription_ids = Vec::with_capacity(notifications.len());
            let mut payloads = Vec::with_capacity(notifications.len());
            for notification in notifications {
                tenants.push(notification.tenant.name().to_owned());
                subscription_ids.push(notification.subscription_id);
                payloads.push(notification.payload);
            }
            // A notification for a subscription deleted since it was matched is
            // dropped here rather than left in the queue with no owner.
            tx.execute(
                "INSERT INTO notification_queue (tenant, subscription_id, payload)
                 SELECT u.tenant, u.subscription_id, u.payload
                 FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY
                     AS u (tenant, subscription_id, payload, n)
                 WHERE EXISTS (SELECT 1 FROM subscriptions s
                               WHERE s.tenant = u.tenant AND s.id = u.subscription_id)
                 ORDER BY u.n",
                &[&tenants, &subscription_ids, &payloads],
            )
            .await
            .map_err(backend)?;
        }
        tx.execute("UPDATE dispatch_cursor SET seq = $1", &[&to])
            .await
            .map_err(backend)?;
        tx.execute("DELETE FROM entity_changes WHERE seq <= $1", &[&to])
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        // Only once committed: a woken delivery worker must find the notifications.
        self.activity.notify_one();
        Ok(true)
    }

    async fn claim_due_notifications(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
        per_subscription: usize,
    ) -> Result<Vec<QueuedNotification>, StoreError> {
        let client = self.client().await?;
        let until = lease_end(now, lease);
        // The head is always claimed; these are the ones behind it.
        let behind = to_i64(per_subscription.saturating_sub(1));
        let mut claimed = client
            .query(CLAIM_SQL, &[&node, &now, &until, &to_i64(limit), &behind])
            .await
            .map_err(backend)?
            .iter()
            .map(notification_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives rows in no promised order.
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }

    async fn finish_notifications(
        &self,
        outcomes: Vec<(i64, DeliveryOutcome)>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(outcomes.len());
        let mut kinds = Vec::with_capacity(outcomes.len());
        let mut ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(outcomes.len());
        let mut retries: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(outcomes.len());
        for (id, outcome) in outcomes {
            let (kind, at, retry_at) = match outcome {
                DeliveryOutcome::Delivered { at } => (DELIVERED, Some(at), None),
                DeliveryOutcome::Failed {
                    at,
                    retry_at: Some(retry_at),
                } => (RETRY, Some(at), Some(retry_at)),
                DeliveryOutcome::Failed { at, retry_at: None } => (DROPPED, Some(at), None),
                DeliveryOutcome::Released => (RELEASED, None, None),
            };
            ids.push(id);
            kinds.push(kind);
            ats.push(at);
            retries.push(retry_at);
        }
        // One statement, so one transaction: the queue rows and the status changes
        // together, and rows already gone (finished twice, subscription deleted)
        // change nothing.
        let client = self.client().await?;
        client
            .execute(FINISH_SQL, &[&ids, &kinds, &ats, &retries])
            .await
            .map(drop)
            .map_err(backend)
    }

    fn activity(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.activity)
    }
}
