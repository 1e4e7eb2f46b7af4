//! The single writer thread and its group commit. SQLite allows one writer at a time;
//! rather than make every request wait for its own `fsync`, the writer takes every job
//! waiting in its queue, runs them in one transaction (each inside its own savepoint,
//! so one job's failure undoes only that job) and commits once. A job's caller hears
//! back only after that commit is durable (`synchronous=FULL`), so nothing it was told
//! is stored can be lost.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use store::{StoreError, StoredContext, Tenant};
use tokio::sync::{mpsc, oneshot};

/// How many queued jobs one transaction takes at most: enough to amortise the commit,
/// few enough that the first caller in a burst does not wait long.
const MAX_GROUP: usize = 256;

/// Work for the writer: a closure run inside the group's transaction.
pub type Job = Box<dyn FnOnce(&Transaction<'_>) -> Box<dyn FnOnce(bool) + Send> + Send>;

/// A handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer thread on its own connection.
    pub fn start(conn: Connection) -> Writer {
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("renkei-sqlite-writer".into())
            .spawn(move || run(conn, queue))
            .unwrap_or_else(|e| panic!("cannot start the SQLite writer thread: {e}"));
        Writer { jobs }
    }

    /// Runs `work` in the writer's transaction and returns its result once the
    /// transaction is committed. If the commit fails, the caller gets that failure.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |tx| {
            let outcome = in_savepoint(tx, work);
            Box::new(move |committed: bool| {
                let outcome = if committed {
                    outcome
                } else {
                    Err(StoreError::backend(CommitFailed))
                };
                let _ = reply.send(outcome);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::backend(WriterGone))?;
        answer.await.map_err(|_| StoreError::backend(WriterGone))?
    }
}

fn in_savepoint<T>(
    tx: &Transaction<'_>,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    tx.execute_batch("SAVEPOINT job")
        .map_err(StoreError::backend)?;
    let outcome = work(tx);
    let end = if outcome.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    tx.execute_batch(end).map_err(StoreError::backend)?;
    outcome
}

#[derive(Debug, thiserror::Error)]
#[error("the SQLite transaction could not be committed")]
struct CommitFailed;

#[derive(Debug, thiserror::Error)]
#[error("the SQLite writer thread has stopped")]
struct WriterGone;

fn run(mut conn: Connection, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(err) => {
                tracing::error!(error = %err, "cannot begin a SQLite transaction");
                // Each job is told it failed; none ran.
                drop(group);
                continue;
            }
        };
        let replies: Vec<_> = group.into_iter().map(|job| job(&tx)).collect();
        let committed = match tx.commit() {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, jobs = replies.len(), "SQLite group commit failed");
                false
            }
        };
        for reply in replies {
            reply(committed);
        }
    }
}

/// Creates the tenant row on first write.
pub fn ensure_tenant(tx: &Transaction<'_>, tenant: &Tenant) -> Result<(), StoreError> {
    if tenant.is_default() {
        return Ok(());
    }
    tx.execute(
        "INSERT OR IGNORE INTO tenants (name, created_at) VALUES (?1, ?2)",
        params![tenant.name(), chrono::Utc::now().to_rfc3339()],
    )
    .map_err(StoreError::backend)?;
    Ok(())
}

/// Inserts or replaces an entity's row and its type index rows, keeping its `seq`
/// (creation order) when it already exists.
pub fn put_entity(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    entity: &ngsi_ld::model::Entity,
) -> Result<(), StoreError> {
    let doc = store::doc::entity_to_doc(entity).to_string();
    let existing: Option<i64> = tx
        .query_row(
            "SELECT seq FROM entities WHERE tenant = ?1 AND id = ?2",
            params![tenant.name(), entity.id],
            |row| row.get(0),
        )
        .optional()
        .map_err(StoreError::backend)?;
    let seq = match existing {
        Some(seq) => {
            tx.execute(
                "UPDATE entities SET doc = ?1 WHERE seq = ?2",
                params![doc, seq],
            )
            .map_err(StoreError::backend)?;
            tx.execute("DELETE FROM entity_types WHERE seq = ?1", [seq])
                .map_err(StoreError::backend)?;
            seq
        }
        None => {
            tx.execute(
                "INSERT INTO entities (tenant, id, doc) VALUES (?1, ?2, ?3)",
                params![tenant.name(), entity.id, doc],
            )
            .map_err(StoreError::backend)?;
            tx.last_insert_rowid()
        }
    };
    write_index(tx, seq, entity).map_err(StoreError::backend)?;
    let mut insert_type = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO entity_types (tenant, type, seq) VALUES (?1, ?2, ?3)",
        )
        .map_err(StoreError::backend)?;
    for t in &entity.types {
        insert_type
            .execute(params![tenant.name(), t, seq])
            .map_err(StoreError::backend)?;
    }
    Ok(())
}

/// Replaces the index rows of an entity (its comparable values and location box).
pub fn write_index(
    tx: &Transaction<'_>,
    seq: i64,
    entity: &ngsi_ld::model::Entity,
) -> rusqlite::Result<()> {
    use ngsi_ld::query::index::{index_entries, location_box, IndexedValue};
    tx.prepare_cached("DELETE FROM entity_values WHERE seq = ?1")?
        .execute([seq])?;
    tx.prepare_cached("DELETE FROM entity_location WHERE seq = ?1")?
        .execute([seq])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO entity_values (seq, attr, num, txt) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for entry in index_entries(entity) {
        let (num, txt) = match &entry.value {
            None => (None, None),
            Some(IndexedValue::Number(n)) => (Some(*n), None),
            Some(IndexedValue::Text(t)) => (None, Some(t.as_str())),
        };
        insert.execute(params![seq, entry.attr, num, txt])?;
    }
    if let Some(b) = location_box(entity) {
        tx.prepare_cached(
            "INSERT INTO entity_location (seq, min_lon, max_lon, min_lat, max_lat) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![seq, b.min_lon, b.max_lon, b.min_lat, b.max_lat])?;
    }
    Ok(())
}

/// Deletes an entity by its row, with the index rows no foreign key can reach.
pub fn delete_seq(tx: &Transaction<'_>, seq: i64) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM entity_location WHERE seq = ?1",
        "DELETE FROM entities WHERE seq = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut statement| statement.execute([seq]))
            .map_err(StoreError::backend)?;
    }
    Ok(())
}

pub fn delete_entity(tx: &Transaction<'_>, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
    let seq: Option<i64> = tx
        .query_row(
            "SELECT seq FROM entities WHERE tenant = ?1 AND id = ?2",
            params![tenant.name(), id],
            |row| row.get(0),
        )
        .optional()
        .map_err(StoreError::backend)?;
    match seq {
        Some(seq) => delete_seq(tx, seq).map(|()| true),
        None => Ok(false),
    }
}

pub fn put_context(tx: &Transaction<'_>, context: &StoredContext) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO contexts (id, url, kind, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET url = excluded.url, kind = excluded.kind,
             body = excluded.body, created_at = excluded.created_at",
        params![
            context.id,
            context.url,
            context.kind.as_str(),
            context.body.to_string(),
            context.created_at.to_rfc3339()
        ],
    )
    .map_err(StoreError::backend)?;
    Ok(())
}
