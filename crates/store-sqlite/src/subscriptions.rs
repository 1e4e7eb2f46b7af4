//! [`SubscriptionStore`] on SQLite, in the tables of schema versions 5 and 7.
//!
//! Every write goes through the one writer thread, which is what makes the outbox
//! simple here: the change rows an entity write appends (see `writer::log_change`)
//! are numbered in commit order because commits happen one at a time, and claiming
//! notifications needs no locking beyond that single writer. Reads of subscriptions
//! and of the change log run on the pooled readers.

use crate::columns::{is_unique_violation, json_at, opt_time_at, stamp, time_at, unreadable};
use crate::{decode, writer, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use store::subscriptions::{
    DeliveryOutcome, DeliveryStatus, EntityChange, NewNotification, QueuedNotification,
    StoredSubscription, SubscriptionStore,
};
use store::{StoreError, Tenant};
use tokio::sync::Notify;

fn count_at(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(index)?;
    u64::try_from(n).map_err(|e| unreadable(index, e))
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The end of a lease starting at `now`; a lease too long to add ends in year 9999,
/// the last instant the fixed-width text form holds.
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

const SUBSCRIPTION_COLUMNS: &str = "tenant, id, doc, times_sent, times_failed, \
     last_notification, last_success, last_failure, consecutive_failures";

fn row_to_subscription(row: &Row<'_>) -> rusqlite::Result<StoredSubscription> {
    Ok(StoredSubscription {
        tenant: Tenant::named(row.get::<_, String>(0)?),
        id: row.get(1)?,
        doc: json_at(row, 2)?,
        status: DeliveryStatus {
            times_sent: count_at(row, 3)?,
            times_failed: count_at(row, 4)?,
            last_notification: opt_time_at(row, 5)?,
            last_success: opt_time_at(row, 6)?,
            last_failure: opt_time_at(row, 7)?,
            consecutive_failures: row
                .get::<_, i64>(8)
                .and_then(|n| u32::try_from(n).map_err(|e| unreadable(8, e)))?,
        },
    })
}

fn subscriptions_where(
    conn: &Connection,
    condition: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredSubscription>, StoreError> {
    let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions {condition}");
    let mut statement = conn.prepare_cached(&sql).map_err(StoreError::backend)?;
    let rows = statement
        .query_map(args, row_to_subscription)
        .map_err(StoreError::backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::backend);
    rows
}

/// A change row as read: the documents are decoded after the row is read, since
/// decoding can fail with a store error rather than a driver one.
type ChangeRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);

fn to_change(
    (seq, tenant, entity_id, before, after, at): ChangeRow,
) -> Result<EntityChange, StoreError> {
    Ok(EntityChange {
        seq,
        tenant: Tenant::named(tenant),
        entity_id,
        before: before.as_deref().map(decode).transpose()?,
        after: after.as_deref().map(decode).transpose()?,
        at,
    })
}

fn row_to_notification(row: &Row<'_>) -> rusqlite::Result<QueuedNotification> {
    Ok(QueuedNotification {
        id: row.get(0)?,
        tenant: Tenant::named(row.get::<_, String>(1)?),
        subscription_id: row.get(2)?,
        payload: json_at(row, 3)?,
        attempts: row
            .get::<_, i64>(4)
            .and_then(|n| u32::try_from(n).map_err(|e| unreadable(4, e)))?,
        created_at: time_at(row, 5)?,
    })
}

/// The head (oldest notification) of every subscription with something queued, kept
/// when it is due and free at `?1`, oldest first, at most `?2`. The heads are found
/// by skipping through the `(tenant, subscription_id, id)` index one subscription at
/// a time (a seek each), so the cost follows the number of subscriptions with queued
/// notifications, not the length of the queue: a `GROUP BY` would read every entry
/// of the index at every claim, and a backlog would make each claim slower still.
/// The next subscription is looked for in the same tenant first, then in the next
/// tenants, each a range of the index (a row-value comparison over both columns is
/// not used as a range by SQLite here). `coalesce` evaluates its second argument
/// only when the first is NULL.
const DUE_HEADS: &str = "
    WITH RECURSIVE heads(id) AS (
        SELECT (SELECT id FROM notification_queue
                ORDER BY tenant, subscription_id, id LIMIT 1)
        UNION ALL
        SELECT coalesce(
            (SELECT q.id FROM notification_queue q
             WHERE q.tenant = h.tenant AND q.subscription_id > h.subscription_id
             ORDER BY q.subscription_id, q.id LIMIT 1),
            (SELECT q.id FROM notification_queue q
             WHERE q.tenant > h.tenant
             ORDER BY q.tenant, q.subscription_id, q.id LIMIT 1))
        FROM heads JOIN notification_queue h ON h.id = heads.id
    )
    SELECT q.id, q.tenant, q.subscription_id
    FROM heads JOIN notification_queue q ON q.id = heads.id
    WHERE (q.next_attempt_at IS NULL OR q.next_attempt_at <= ?1)
      AND (q.claimed_by IS NULL OR q.claim_until <= ?1)
    ORDER BY q.id LIMIT ?2";

/// A subscription's notifications from its head on, in order, each with whether it
/// may be claimed at `?4` (due and free); the claim stops at the first that may not.
const RUN_FROM_HEAD: &str = "
    SELECT id, tenant, subscription_id, payload, attempts, created_at,
           (next_attempt_at IS NULL OR next_attempt_at <= ?4)
               AND (claimed_by IS NULL OR claim_until <= ?4)
    FROM notification_queue
    WHERE tenant = ?1 AND subscription_id = ?2 AND id >= ?3
    ORDER BY id LIMIT ?5";

/// Claims, inside the writer's transaction, what
/// [`SubscriptionStore::claim_due_notifications`] describes.
fn claim_in(
    tx: &Transaction<'_>,
    node: &str,
    now: &str,
    until: &str,
    limit: usize,
    per_subscription: usize,
) -> Result<Vec<QueuedNotification>, StoreError> {
    // Asking for none after the head still hands out the head: a claim of nothing
    // would leave the queue stuck.
    let per_subscription = to_i64(per_subscription.max(1));
    let heads: Vec<(i64, String, String)> = {
        let mut statement = tx.prepare_cached(DUE_HEADS).map_err(StoreError::backend)?;
        let rows = statement
            .query_map(params![now, to_i64(limit)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(StoreError::backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::backend);
        rows?
    };
    let mut run = tx
        .prepare_cached(RUN_FROM_HEAD)
        .map_err(StoreError::backend)?;
    // A run is consecutive in the subscription's queue: one range of its index.
    let mut hold = tx
        .prepare_cached(
            "UPDATE notification_queue SET claimed_by = ?1, claim_until = ?2
             WHERE tenant = ?3 AND subscription_id = ?4 AND id BETWEEN ?5 AND ?6",
        )
        .map_err(StoreError::backend)?;
    // A claimed notification is being sent: `timesSent` counts attempts (the
    // specification counts failed ones too), and counting before the send means a
    // receiver that asks at once already sees it.
    let mut sent = tx
        .prepare_cached(
            "UPDATE subscriptions SET times_sent = times_sent + ?3, last_notification = ?4
             WHERE tenant = ?1 AND id = ?2",
        )
        .map_err(StoreError::backend)?;
    let mut claimed = Vec::new();
    for (head, tenant, subscription_id) in heads {
        let mut rows = run
            .query(params![
                tenant,
                subscription_id,
                head,
                now,
                per_subscription
            ])
            .map_err(StoreError::backend)?;
        let start = claimed.len();
        while let Some(row) = rows.next().map_err(StoreError::backend)? {
            let ready: bool = row.get(6).map_err(StoreError::backend)?;
            if !ready {
                break;
            }
            claimed.push(row_to_notification(row).map_err(StoreError::backend)?);
        }
        drop(rows);
        let Some(last) = claimed.last().filter(|_| claimed.len() > start) else {
            continue;
        };
        hold.execute(params![node, until, tenant, subscription_id, head, last.id])
            .map_err(StoreError::backend)?;
        let count = to_i64(claimed.len() - start);
        sent.execute(params![tenant, subscription_id, count, now])
            .map_err(StoreError::backend)?;
    }
    // Each subscription's run is in order; the runs are merged into id order.
    claimed.sort_by_key(|n| n.id);
    Ok(claimed)
}

/// Moves the subscriptions epoch inside the writer's transaction of a subscription
/// write, so a reader sees the new number exactly when it sees the write.
fn bump_epoch(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE subscription_epoch SET n = n + 1")
        .and_then(|mut s| s.execute([]))
        .map_err(StoreError::backend)?;
    Ok(())
}

/// Records one outcome inside the writer's transaction; an id no longer queued
/// (finished twice, or its subscription deleted) leaves nothing to record.
fn finish_in(tx: &Transaction<'_>, id: i64, outcome: DeliveryOutcome) -> Result<(), StoreError> {
    let (queue_sql, status_sql, at, retry_at) = match outcome {
        DeliveryOutcome::Delivered { at } => (
            "DELETE FROM notification_queue WHERE id = ?1 RETURNING tenant, subscription_id",
            "UPDATE subscriptions SET last_success = ?3, consecutive_failures = 0
             WHERE tenant = ?1 AND id = ?2",
            Some(at),
            None,
        ),
        DeliveryOutcome::Failed { at, retry_at } => (
            if retry_at.is_some() {
                "UPDATE notification_queue SET attempts = attempts + 1,
                     next_attempt_at = ?2, claimed_by = NULL, claim_until = NULL
                 WHERE id = ?1
                 RETURNING tenant, subscription_id"
            } else {
                "DELETE FROM notification_queue WHERE id = ?1 RETURNING tenant, subscription_id"
            },
            "UPDATE subscriptions SET times_failed = times_failed + 1,
                 last_failure = ?3,
                 consecutive_failures = consecutive_failures + 1
             WHERE tenant = ?1 AND id = ?2",
            Some(at),
            retry_at,
        ),
        // Not attempted: free again, due as it was, and no longer counted as sent
        // (its claim counted it).
        DeliveryOutcome::Released => (
            "UPDATE notification_queue SET claimed_by = NULL, claim_until = NULL
             WHERE id = ?1
             RETURNING tenant, subscription_id",
            "UPDATE subscriptions SET times_sent = max(times_sent - 1, 0)
             WHERE tenant = ?1 AND id = ?2",
            None,
            None,
        ),
    };
    let owner: Option<(String, String)> = {
        let mut statement = tx.prepare_cached(queue_sql).map_err(StoreError::backend)?;
        let owner = |row: &Row<'_>| Ok((row.get(0)?, row.get(1)?));
        let found = match retry_at {
            Some(retry_at) => statement.query_row(params![id, stamp(retry_at)], owner),
            None => statement.query_row([id], owner),
        };
        found.optional().map_err(StoreError::backend)?
    };
    if let Some((tenant, subscription_id)) = owner {
        let mut statement = tx.prepare_cached(status_sql).map_err(StoreError::backend)?;
        match at {
            Some(at) => statement.execute(params![tenant, subscription_id, stamp(at)]),
            None => statement.execute(params![tenant, subscription_id]),
        }
        .map_err(StoreError::backend)?;
    }
    Ok(())
}

#[async_trait]
impl SubscriptionStore for SqliteStore {
    async fn create_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let (tenant, id, doc) = (tenant.clone(), id.to_owned(), doc.to_string());
        let subscribed = self.writer.subscribed_tenants();
        self.writer
            .run(move |tx| {
                writer::ensure_tenant(tx, &tenant)?;
                tx.prepare_cached(
                    "INSERT INTO subscriptions (tenant, id, doc, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![tenant.name(), id, doc, stamp(Utc::now())]))
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::AlreadyExists(id.clone())
                    } else {
                        StoreError::backend(e)
                    }
                })?;
                bump_epoch(tx)?;
                subscribed.forget(&tenant);
                Ok(())
            })
            .await
    }

    async fn replace_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let (tenant, id, doc) = (tenant.clone(), id.to_owned(), doc.to_string());
        self.writer
            .run(move |tx| {
                let replaced = tx
                    .prepare_cached(
                        "UPDATE subscriptions SET doc = ?3 WHERE tenant = ?1 AND id = ?2",
                    )
                    .and_then(|mut s| s.execute(params![tenant.name(), id, doc]))
                    .map_err(StoreError::backend)?;
                if replaced == 0 {
                    return Err(StoreError::NotFound(id));
                }
                bump_epoch(tx)
            })
            .await
    }

    async fn get_subscription(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<StoredSubscription>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |conn| {
            let found = subscriptions_where(
                conn,
                "WHERE tenant = ?1 AND id = ?2",
                params![tenant.name(), id],
            )?;
            Ok(found.into_iter().next())
        })
        .await
    }

    async fn list_subscriptions(
        &self,
        tenant: &Tenant,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<StoredSubscription>, u64), StoreError> {
        let tenant = tenant.clone();
        self.read(move |conn| {
            let page = subscriptions_where(
                conn,
                "WHERE tenant = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3",
                params![tenant.name(), to_i64(limit), to_i64(offset)],
            )?;
            let total: i64 = conn
                .prepare_cached("SELECT count(*) FROM subscriptions WHERE tenant = ?1")
                .and_then(|mut s| s.query_row([tenant.name()], |row| row.get(0)))
                .map_err(StoreError::backend)?;
            Ok((page, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }

    async fn delete_subscription(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        let subscribed = self.writer.subscribed_tenants();
        self.writer
            .run(move |tx| {
                let deleted = tx
                    .prepare_cached("DELETE FROM subscriptions WHERE tenant = ?1 AND id = ?2")
                    .and_then(|mut s| s.execute(params![tenant.name(), id]))
                    .map_err(StoreError::backend)?;
                tx.prepare_cached(
                    "DELETE FROM notification_queue WHERE tenant = ?1 AND subscription_id = ?2",
                )
                .and_then(|mut s| s.execute(params![tenant.name(), id]))
                .map_err(StoreError::backend)?;
                // Deleting a missing subscription changes nothing, the epoch included.
                if deleted > 0 {
                    bump_epoch(tx)?;
                }
                subscribed.forget(&tenant);
                Ok(deleted > 0)
            })
            .await
    }

    async fn all_subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        self.read(|conn| subscriptions_where(conn, "ORDER BY seq", []))
            .await
    }

    async fn subscriptions_epoch(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT n FROM subscription_epoch")
                .and_then(|mut s| s.query_row([], |row| row.get(0)))
                .map_err(StoreError::backend)
        })
        .await
    }

    async fn changes_after(&self, seq: i64, limit: usize) -> Result<Vec<EntityChange>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT seq, tenant, entity_id, before, after, at FROM entity_changes
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(StoreError::backend)?;
            let rows = statement
                .query_map(params![seq, to_i64(limit)], |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        time_at(row, 5)?,
                    ))
                })
                .map_err(StoreError::backend)?
                .collect::<Result<Vec<ChangeRow>, _>>()
                .map_err(StoreError::backend)?;
            rows.into_iter().map(to_change).collect()
        })
        .await
    }

    async fn dispatch_cursor(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT seq FROM dispatch_cursor", [], |row| row.get(0))
                .map_err(StoreError::backend)
        })
        .await
    }

    async fn enqueue_notifications(
        &self,
        notifications: Vec<NewNotification>,
        from: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        self.writer
            .run_signalling(move |tx| {
                let current: i64 = tx
                    .prepare_cached("SELECT seq FROM dispatch_cursor")
                    .and_then(|mut s| s.query_row([], |row| row.get(0)))
                    .map_err(StoreError::backend)?;
                if current != from {
                    return Ok((false, false));
                }
                let now = stamp(Utc::now());
                // A notification for a subscription deleted since it was matched is
                // dropped here rather than left in the queue with no owner.
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO notification_queue (tenant, subscription_id, payload, created_at)
                         SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (
                             SELECT 1 FROM subscriptions WHERE tenant = ?1 AND id = ?2)",
                    )
                    .map_err(StoreError::backend)?;
                for notification in &notifications {
                    insert
                        .execute(params![
                            notification.tenant.name(),
                            notification.subscription_id,
                            notification.payload.to_string(),
                            now
                        ])
                        .map_err(StoreError::backend)?;
                }
                tx.prepare_cached("UPDATE dispatch_cursor SET seq = ?1")
                    .and_then(|mut s| s.execute([to]))
                    .map_err(StoreError::backend)?;
                tx.prepare_cached("DELETE FROM entity_changes WHERE seq <= ?1")
                    .and_then(|mut s| s.execute([to]))
                    .map_err(StoreError::backend)?;
                // The delivery workers are woken once this commits.
                Ok((true, true))
            })
            .await
    }

    async fn claim_due_notifications(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
        per_subscription: usize,
    ) -> Result<Vec<QueuedNotification>, StoreError> {
        let node = node.to_owned();
        let (now, until) = (stamp(now), stamp(lease_end(now, lease)));
        self.writer
            .run(move |tx| claim_in(tx, &node, &now, &until, limit, per_subscription))
            .await
    }

    async fn finish_notifications(
        &self,
        outcomes: Vec<(i64, DeliveryOutcome)>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.writer
            .run(move |tx| {
                for (id, outcome) in outcomes {
                    finish_in(tx, id, outcome)?;
                }
                Ok(())
            })
            .await
    }

    fn activity(&self) -> Arc<Notify> {
        self.writer.activity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngsi_ld::model::Entity;
    use store::EntityStore;

    fn plan(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details: Vec<String> = statement
            .query_map(args, |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        details.join("\n")
    }

    /// The claim runs at every delivery round: it must seek through the index, never
    /// read the whole queue (which a backlog makes long).
    #[test]
    fn claims_seek_through_the_queue_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let heads = plan(&conn, DUE_HEADS, params!["now", 10]);
        assert!(
            heads.contains("(tenant=? AND subscription_id>?)") && heads.contains("(tenant>?)"),
            "{heads}"
        );
        let run = plan(&conn, RUN_FROM_HEAD, params!["t", "s", 1, "now", 3]);
        assert!(
            run.contains("(tenant=? AND subscription_id=? AND id>?)"),
            "{run}"
        );
    }

    #[tokio::test]
    async fn activity_is_woken_after_commits_that_log_changes_or_queue_notifications() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("renkei.db"))
            .await
            .unwrap();
        let activity = store.activity();
        let woken = || async {
            tokio::time::timeout(Duration::from_millis(100), activity.notified())
                .await
                .is_ok()
        };
        let (quiet, watched) = (Tenant::named("quiet"), Tenant::named("watched"));
        let entity = |id: &str| Entity::new(id, vec!["https://example.org/T".into()]);
        store
            .create_entity(&quiet, entity("urn:e:1"))
            .await
            .unwrap();
        assert!(!woken().await, "no subscription, no change logged");
        store
            .create_subscription(&watched, "urn:s:1", &serde_json::json!({}))
            .await
            .unwrap();
        assert!(!woken().await, "a subscription alone logs no change");
        store
            .create_entity(&watched, entity("urn:e:1"))
            .await
            .unwrap();
        assert!(woken().await, "a logged change wakes");
        assert!(store
            .create_entity(&watched, entity("urn:e:1"))
            .await
            .is_err());
        assert!(!woken().await, "a failed write logs nothing");
        let cursor = store.dispatch_cursor().await.unwrap();
        let queued = store
            .enqueue_notifications(Vec::new(), cursor, cursor + 1)
            .await
            .unwrap();
        assert!(queued && woken().await, "queued notifications wake");
        assert!(!store
            .enqueue_notifications(Vec::new(), cursor, cursor + 1)
            .await
            .unwrap());
        assert!(!woken().await, "a stale cursor queues nothing");
    }
}
