//! [`SubscriptionStore`] on SQLite, in the tables of schema version 5.
//!
//! Every write goes through the one writer thread, which is what makes the outbox
//! simple here: the change rows an entity write appends (see `writer::log_change`)
//! are numbered in commit order because commits happen one at a time, and claiming
//! notifications needs no locking beyond that single writer. Reads of subscriptions
//! and of the change log run on the pooled readers.

use crate::columns::{json_at, opt_time_at, stamp, time_at, unreadable};
use crate::{decode, writer, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;
use std::time::Duration;
use store::subscriptions::{
    DeliveryOutcome, DeliveryStatus, EntityChange, NewNotification, QueuedNotification,
    StoredSubscription, SubscriptionStore,
};
use store::{StoreError, Tenant};

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

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation
    )
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
                Ok(())
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
                subscribed.forget(&tenant);
                Ok(deleted > 0)
            })
            .await
    }

    async fn all_subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        self.read(|conn| subscriptions_where(conn, "ORDER BY seq", []))
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
            .run(move |tx| {
                let current: i64 = tx
                    .prepare_cached("SELECT seq FROM dispatch_cursor")
                    .and_then(|mut s| s.query_row([], |row| row.get(0)))
                    .map_err(StoreError::backend)?;
                if current != from {
                    return Ok(false);
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
                Ok(true)
            })
            .await
    }

    async fn claim_due_notifications(
        &self,
        node: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<QueuedNotification>, StoreError> {
        let node = node.to_owned();
        let (now_text, until) = (stamp(now), stamp(lease_end(now, lease)));
        self.writer
            .run(move |tx| {
                // The head of each subscription's queue, if it is due and free: a
                // later notification waits behind it whatever its own state.
                let claimed = {
                    let mut statement = tx
                        .prepare_cached(
                            "UPDATE notification_queue
                             SET claimed_by = ?1, claim_until = ?3
                             WHERE id IN (
                                 SELECT q.id FROM notification_queue q
                                 WHERE q.id IN (SELECT min(id) FROM notification_queue
                                                GROUP BY tenant, subscription_id)
                                   AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= ?2)
                                   AND (q.claimed_by IS NULL OR q.claim_until <= ?2)
                                 ORDER BY q.id LIMIT ?4)
                             RETURNING id, tenant, subscription_id, payload, attempts, created_at",
                        )
                        .map_err(StoreError::backend)?;
                    let rows = statement
                        .query_map(
                            params![node, now_text, until, to_i64(limit)],
                            row_to_notification,
                        )
                        .map_err(StoreError::backend)?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(StoreError::backend);
                    rows
                };
                let mut claimed = claimed?;
                // RETURNING gives rows in no promised order.
                claimed.sort_by_key(|n| n.id);
                // A claimed notification is being sent: `timesSent` counts attempts
                // (the specification counts failed ones too), and counting before the
                // send means a receiver that asks at once already sees it.
                let mut sent = tx
                    .prepare_cached(
                        "UPDATE subscriptions SET times_sent = times_sent + 1,
                             last_notification = ?3
                         WHERE tenant = ?1 AND id = ?2",
                    )
                    .map_err(StoreError::backend)?;
                for notification in &claimed {
                    sent.execute(params![
                        notification.tenant.name(),
                        notification.subscription_id,
                        now_text
                    ])
                    .map_err(StoreError::backend)?;
                }
                Ok(claimed)
            })
            .await
    }

    async fn finish_notification(
        &self,
        id: i64,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError> {
        self.writer
            .run(move |tx| {
                let (queue_sql, status_sql, at, retry_at) = match outcome {
                    DeliveryOutcome::Delivered { at } => (
                        "DELETE FROM notification_queue WHERE id = ?1
                         RETURNING tenant, subscription_id",
                        "UPDATE subscriptions SET last_success = ?3, consecutive_failures = 0
                         WHERE tenant = ?1 AND id = ?2",
                        at,
                        None,
                    ),
                    DeliveryOutcome::Failed { at, retry_at } => (
                        if retry_at.is_some() {
                            "UPDATE notification_queue SET attempts = attempts + 1,
                                 next_attempt_at = ?2, claimed_by = NULL, claim_until = NULL
                             WHERE id = ?1
                             RETURNING tenant, subscription_id"
                        } else {
                            "DELETE FROM notification_queue WHERE id = ?1
                             RETURNING tenant, subscription_id"
                        },
                        "UPDATE subscriptions SET times_failed = times_failed + 1,
                             last_failure = ?3,
                             consecutive_failures = consecutive_failures + 1
                         WHERE tenant = ?1 AND id = ?2",
                        at,
                        retry_at,
                    ),
                };
                let owner: Option<(String, String)> = {
                    let mut statement =
                        tx.prepare_cached(queue_sql).map_err(StoreError::backend)?;
                    let found = match retry_at {
                        Some(retry_at) => statement
                            .query_row(params![id, stamp(retry_at)], |row| {
                                Ok((row.get(0)?, row.get(1)?))
                            }),
                        None => statement.query_row([id], |row| Ok((row.get(0)?, row.get(1)?))),
                    };
                    found.optional().map_err(StoreError::backend)?
                };
                // Gone already (finished twice, or its subscription was deleted):
                // there is nothing left to record.
                if let Some((tenant, subscription_id)) = owner {
                    tx.prepare_cached(status_sql)
                        .and_then(|mut s| s.execute(params![tenant, subscription_id, stamp(at)]))
                        .map_err(StoreError::backend)?;
                }
                Ok(())
            })
            .await
    }
}
