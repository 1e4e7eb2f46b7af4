//! The single writer thread and its group commit. SQLite allows one writer at a time;
//! rather than make every request wait for its own `fsync`, the writer takes every job
//! waiting in its queue, runs them in one transaction and commits once. A job's caller
//! hears back only after that commit is durable (`synchronous=FULL`), so nothing it was
//! told is stored can be lost.
//!
//! Each job normally runs in its own savepoint, so that its failure undoes only its own
//! writes ([`Writer::run`]). Entity writes, the bulk of the work, run without one
//! ([`Writer::run_signalling`]): the savepoints' page copies cost a sixth of the
//! writer's time under batch writes, and an entity write refuses before it writes.
//! Such a job that fails before writing anything leaves the group alone; one that
//! fails after writing (a backend failure midway) rolls the whole group back, and
//! every job of it is told it failed: nothing half done is ever committed.
//!
//! The log is copied into the database by a thread of its own (module `checkpoint`),
//! not inside a commit.

use crate::checkpoint::Checkpointer;
use crate::temporal::{Implied, StoredHistory};
use ngsi_ld::model::Entity;
use ngsi_ld::query::index::location_box;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use store::{StoreError, StoredContext, Tenant};
use tokio::sync::{mpsc, oneshot, Notify};

/// How many queued jobs one transaction takes at most: enough to amortise the commit,
/// few enough that the first caller in a burst does not wait long.
const MAX_GROUP: usize = 256;

/// How many prepared statements the writer keeps (see [`Writer::start`]).
const WRITER_STATEMENTS: usize = 128;

/// Work for the writer: a closure run inside the group's transaction. It answers
/// whether it failed after writing (so the group must be rolled back) and what to tell
/// its caller once the group is committed (`true`) or not.
pub type Job = Box<dyn FnOnce(&Transaction<'_>) -> (bool, Box<dyn FnOnce(bool) + Send>) + Send>;

/// A handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    subscribed: Arc<SubscribedTenants>,
    /// Woken after a commit that logged entity changes or queued notifications (see
    /// [`run_signalling`](Self::run_signalling)); every handle shares the one.
    activity: Arc<Notify>,
}

impl Writer {
    /// Starts the writer thread on its own connection.
    pub fn start(conn: Connection) -> Writer {
        // Every statement the writer runs stays prepared: an entity write alone runs
        // a dozen (entity, index, change log, history), more than rusqlite's default
        // cache of 16 keeps once subscriptions and identity writes are counted.
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        let (jobs, queue) = mpsc::unbounded_channel();
        let checkpointer = Checkpointer::start(&conn);
        std::thread::Builder::new()
            .name("renkei-sqlite-writer".into())
            .spawn(move || run(conn, queue, checkpointer))
            .unwrap_or_else(|e| panic!("cannot start the SQLite writer thread: {e}"));
        Writer {
            jobs,
            subscribed: Arc::default(),
            activity: Arc::default(),
        }
    }

    /// What the subscription loops wait on between polls.
    pub fn activity(&self) -> Arc<Notify> {
        Arc::clone(&self.activity)
    }

    /// Which tenants have subscriptions, as the writer's jobs know it (see
    /// [`SubscribedTenants`]).
    pub fn subscribed_tenants(&self) -> Arc<SubscribedTenants> {
        Arc::clone(&self.subscribed)
    }

    /// Runs `work` in the writer's transaction, inside a savepoint of its own, and
    /// returns its result once the transaction is committed. If the commit fails, the
    /// caller gets that failure.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.submit(work, true).await
    }

    /// Runs an entity write without a savepoint (see the module comment) and returns
    /// its result once committed; `work` says, beside its result, whether it wrote
    /// something the subscription loops act on (a change row, queued notifications):
    /// if so, [`activity`](Self::activity) is woken once the transaction is committed.
    /// Only a successful answer means committed, so neither a failed job nor a failed
    /// commit wakes anyone.
    pub async fn run_signalling<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<(T, bool), StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (value, active) = self.submit(work, false).await?;
        if active {
            self.activity.notify_one();
        }
        Ok(value)
    }

    async fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        in_savepoint: bool,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let subscribed = Arc::clone(&self.subscribed);
        let job: Job = Box::new(move |tx| {
            let (outcome, spoils_group) = if in_savepoint {
                (savepoint(tx, work), false)
            } else {
                let before = tx.total_changes();
                let outcome = work(tx);
                let spoils = outcome.is_err() && tx.total_changes() != before;
                (outcome, spoils)
            };
            let reply = Box::new(move |committed: bool| {
                let outcome = if committed {
                    outcome
                } else {
                    // What the cache learnt inside the lost transaction may be untrue.
                    subscribed.clear();
                    Err(StoreError::backend(CommitFailed))
                };
                let _ = reply.send(outcome);
            });
            (spoils_group, reply as Box<dyn FnOnce(bool) + Send>)
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::backend(WriterGone))?;
        answer.await.map_err(|_| StoreError::backend(WriterGone))?
    }
}

/// Runs `work` in a savepoint: undone alone if it fails.
fn savepoint<T>(
    tx: &Transaction<'_>,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let run = |sql: &str| {
        tx.prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map(drop)
            .map_err(StoreError::backend)
    };
    run("SAVEPOINT job")?;
    let outcome = work(tx);
    if outcome.is_err() {
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job")?;
    outcome
}

#[derive(Debug, thiserror::Error)]
#[error("the SQLite transaction could not be committed")]
struct CommitFailed;

#[derive(Debug, thiserror::Error)]
#[error("the SQLite writer did not finish the write (the writer stopped, or the write failed inside it)")]
struct WriterGone;

fn run(
    mut conn: Connection,
    mut queue: mpsc::UnboundedReceiver<Job>,
    checkpointer: Option<Checkpointer>,
) {
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
        let mut spoiled = false;
        let replies: Vec<_> = group
            .into_iter()
            .filter_map(|job| {
                // A job that panics (a fault in its code) must not take the writer,
                // and with it every later write, down. It may have written part of its
                // work, so its group is rolled back; its caller's answer is dropped.
                match std::panic::catch_unwind(AssertUnwindSafe(|| job(&tx))) {
                    Ok((spoils, reply)) => {
                        spoiled |= spoils;
                        Some(reply)
                    }
                    Err(_) => {
                        tracing::error!("a SQLite writer job panicked");
                        spoiled = true;
                        None
                    }
                }
            })
            .collect();
        let committed = if spoiled {
            tracing::error!(
                jobs = replies.len(),
                "a job failed after writing; the group is rolled back"
            );
            if let Err(err) = tx.rollback() {
                tracing::error!(error = %err, "SQLite rollback failed");
            }
            false
        } else {
            match tx.commit() {
                Ok(()) => {
                    if let Some(checkpointer) = &checkpointer {
                        checkpointer.committed();
                    }
                    true
                }
                Err(err) => {
                    tracing::error!(error = %err, jobs = replies.len(), "SQLite group commit failed");
                    false
                }
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
    tx.prepare_cached("INSERT OR IGNORE INTO tenants (name, created_at) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![tenant.name(), chrono::Utc::now().to_rfc3339()]))
        .map_err(StoreError::backend)?;
    Ok(())
}

/// An entity turned into the rows that store it: the document with its comparable
/// values (module `values`), its types and the spatial cell of its location (module
/// `cells`). Built before it reaches the writer where possible (creation), so that the
/// one writer thread spends its time on SQLite alone.
pub struct EntityRows {
    id: String,
    /// Its types, as [`types_text`] writes them.
    types: String,
    doc: String,
    /// Its comparable values, encoded (module `values`).
    vals: Vec<u8>,
    cell: Option<i64>,
    /// Whether the stored entity it replaces is in the same cell, so that its entry
    /// in the index of cells stands: most updates (a river level, a shelter's status)
    /// leave the location alone, and an `UPDATE` that sets the column maintains its
    /// index, same value or not.
    same_cell: bool,
}

impl EntityRows {
    pub fn new(entity: &Entity) -> EntityRows {
        EntityRows::replacing(entity, None)
    }

    /// The rows of `entity` replacing `stored`, the stored entity, when known.
    pub fn replacing(entity: &Entity, stored: Option<&Entity>) -> EntityRows {
        let cell = cell_of(entity);
        EntityRows {
            id: entity.id.clone(),
            types: types_text(&entity.types),
            doc: store::doc::entity_doc_text_shortened(entity),
            vals: crate::values::of_entity(entity),
            same_cell: stored.is_some_and(|stored| cell_of(stored) == cell),
            cell,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stored document ([`store::doc`] encoding, as JSON text).
    pub fn doc(&self) -> &str {
        &self.doc
    }
}

/// A stored entity's row as a write needs it.
pub(crate) struct StoredRow {
    pub(crate) seq: i64,
    /// The stored document (JSON text).
    pub(crate) doc: String,
    /// The history the row implies, if it does (see `temporal`).
    pub(crate) implied: Option<Implied>,
}

/// What a write finds of its entity: its row, or, when it is not stored, whether a
/// history of its id is (a head in rows, left by a deleted entity of that id).
pub(crate) enum Lookup {
    Stored(StoredRow),
    Absent { history: bool },
}

impl Lookup {
    pub(crate) fn seq(&self) -> Option<i64> {
        match self {
            Lookup::Stored(row) => Some(row.seq),
            Lookup::Absent { .. } => None,
        }
    }

    /// The stored document (JSON text), if the entity is stored.
    pub(crate) fn doc(&self) -> Option<&str> {
        match self {
            Lookup::Stored(row) => Some(&row.doc),
            Lookup::Absent { .. } => None,
        }
    }

    /// How the entity's history is stored, as far as the write needs to know.
    pub(crate) fn history(&self) -> StoredHistory<'_> {
        match self {
            Lookup::Stored(row) => StoredHistory::of_stored(row.implied.as_ref()),
            Lookup::Absent { history: true } => StoredHistory::InRows,
            Lookup::Absent { history: false } => StoredHistory::None,
        }
    }
}

/// What a writer job holds while it writes entities: the row ids of its new ones
/// ([`NewRowIds`]) and the statements it runs for each, every one prepared at its
/// first use and held until the job ends. Taking a statement from rusqlite's cache
/// and putting it back hashes its SQL both ways, about 1,700 instructions a use: a
/// twentieth of the writer's work per batch-upserted entity, for two statements.
pub(crate) struct EntityWrites<'c> {
    tx: &'c Transaction<'c>,
    /// Few, so a search by their SQL costs less than hashing it.
    held: Vec<(&'static str, CachedStatement<'c>)>,
    new_ids: NewRowIds,
}

impl<'c> EntityWrites<'c> {
    pub(crate) fn new(tx: &'c Transaction<'c>) -> EntityWrites<'c> {
        EntityWrites {
            tx,
            held: Vec::new(),
            new_ids: NewRowIds::default(),
        }
    }

    /// The statement of `sql`, prepared (through the cache) at its first use.
    fn get(&mut self, sql: &'static str) -> rusqlite::Result<&mut CachedStatement<'c>> {
        let at = match self.held.iter().position(|(held, _)| *held == sql) {
            Some(at) => at,
            None => {
                self.held.push((sql, self.tx.prepare_cached(sql)?));
                self.held.len() - 1
            }
        };
        Ok(&mut self.held[at].1)
    }
}

/// Looks an entity up for a write ([`Lookup`]): one statement, whose second part
/// (the head) SQLite runs only when the first finds no row, so that a new entity
/// costs one statement rather than two.
pub(crate) fn look_up(
    writes: &mut EntityWrites<'_>,
    tenant: &Tenant,
    id: &str,
) -> Result<Lookup, StoreError> {
    type Columns = (Option<i64>, Option<String>, Option<String>, Option<String>);
    let found: Option<Columns> = writes
        .get(
            "SELECT seq, doc, history_at, history_ids FROM entities
             WHERE tenant = ?1 AND id = ?2
             UNION ALL
             SELECT NULL, NULL, NULL, NULL FROM temporal_heads
             WHERE tenant = ?1 AND id = ?2",
        )
        .and_then(|s| {
            s.query_row(params![tenant.name(), id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()
        })
        .map_err(StoreError::backend)?;
    match found {
        Some((Some(seq), Some(doc), at, ids)) => Ok(Lookup::Stored(StoredRow {
            seq,
            doc,
            implied: Implied::of_columns(at.as_deref(), ids.as_deref())?,
        })),
        Some(_) => Ok(Lookup::Absent { history: true }),
        None => Ok(Lookup::Absent { history: false }),
    }
}

/// Whether a tenant has subscriptions, remembered per tenant so that an entity write
/// costs a map lookup rather than a query. Only writer jobs use it, so what it holds
/// is what the writer's transaction sees: subscription writes [`forget`](Self::forget)
/// their tenant (the next write looks again, inside its own transaction), and a
/// failed group commit clears everything learnt.
#[derive(Default)]
pub struct SubscribedTenants(Mutex<HashMap<String, bool>>);

impl SubscribedTenants {
    pub fn check(&self, tx: &Transaction<'_>, tenant: &Tenant) -> Result<bool, StoreError> {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(subscribed) = known.get(tenant.name()) {
            return Ok(*subscribed);
        }
        let subscribed = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM subscriptions WHERE tenant = ?1)")
            .and_then(|mut s| s.query_row([tenant.name()], |row| row.get::<_, bool>(0)))
            .map_err(StoreError::backend)?;
        known.insert(tenant.name().to_owned(), subscribed);
        Ok(subscribed)
    }

    pub fn forget(&self, tenant: &Tenant) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant.name());
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Appends a row to the change log (the outbox of subscriptions): the entity's
/// documents before and after, `None` for a creation's before or a deletion's after.
pub fn log_change(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    entity_id: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO entity_changes (tenant, entity_id, before, after, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.name(),
            entity_id,
            before,
            after,
            crate::columns::stamp(chrono::Utc::now())
        ])
    })
    .map(drop)
    .map_err(StoreError::backend)
}

/// How many row ids each tenant's entities have: the default tenant's are the first
/// range, from 0, and a named tenant's the range of its number (`tenants.no`). A
/// tenant's entities in creation order are then one range of the table itself, with
/// no index of their own to keep, and their row ids are given here ([`NewRowIds`])
/// rather than by `AUTOINCREMENT`, whose counter was a second row written per insert.
/// 2^40 ids each leave room for 2^23 tenants.
pub const TENANT_ROWS: i64 = 1 << 40;

/// The row ids of a tenant's entities; `None` for a named tenant never written to.
pub fn tenant_rows(conn: &Connection, tenant: &Tenant) -> Result<Option<Range<i64>>, StoreError> {
    let number: Option<i64> = if tenant.is_default() {
        Some(0)
    } else {
        conn.prepare_cached("SELECT no FROM tenants WHERE name = ?1")
            .and_then(|mut s| s.query_row([tenant.name()], |row| row.get(0)).optional())
            .map_err(StoreError::backend)?
    };
    let Some(number) = number else {
        return Ok(None);
    };
    let start = number.checked_mul(TENANT_ROWS);
    let end = number
        .checked_add(1)
        .and_then(|n| n.checked_mul(TENANT_ROWS));
    match (start, end) {
        (Some(start), Some(end)) => Ok(Some(start..end)),
        _ => Err(rows_exhausted(tenant)),
    }
}

fn rows_exhausted(tenant: &Tenant) -> StoreError {
    StoreError::backend(TenantRowsError::Exhausted(tenant.name().to_owned()))
}

/// Why a tenant's entities have no row id to give.
#[derive(Debug, thiserror::Error)]
enum TenantRowsError {
    #[error("no row ids are left for the entities of tenant '{0}'")]
    Exhausted(String),
    #[error("tenant '{0}' has no number although its row was just written")]
    Unnumbered(String),
}

/// Row ids for one job's new entities of its tenant, each after the last stored: the
/// first is found at the job's first insert (creating the tenant's row), the others
/// counted from it. Never kept across jobs, so a job rolled back leaves nothing
/// behind that a later one could trust.
#[derive(Default)]
pub struct NewRowIds {
    /// The next id and the end of the tenant's range, once found.
    next: Option<(i64, i64)>,
}

impl NewRowIds {
    pub fn next(&mut self, tx: &Transaction<'_>, tenant: &Tenant) -> Result<i64, StoreError> {
        let (next, end) = match self.next {
            Some(found) => found,
            None => first_free_row(tx, tenant)?,
        };
        if next >= end {
            return Err(rows_exhausted(tenant));
        }
        self.next = Some((next + 1, end));
        Ok(next)
    }
}

/// The row id after the tenant's last stored entity (its range's first but one if
/// none), and the end of its range.
fn first_free_row(tx: &Transaction<'_>, tenant: &Tenant) -> Result<(i64, i64), StoreError> {
    ensure_tenant(tx, tenant)?;
    let rows = tenant_rows(tx, tenant)?.ok_or_else(|| {
        StoreError::backend(TenantRowsError::Unnumbered(tenant.name().to_owned()))
    })?;
    let last: Option<i64> = tx
        .prepare_cached(
            "SELECT seq FROM entities WHERE seq >= ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row([rows.start, rows.end], |row| row.get(0))
                .optional()
        })
        .map_err(StoreError::backend)?;
    Ok((last.unwrap_or(rows.start) + 1, rows.end))
}

/// Inserts or replaces an entity's rows, keeping its `seq` (creation order) when it
/// already exists: `existing` is that row id, which the caller has just read in this
/// transaction (`None`: not stored, and a new one is taken from the job's, the row
/// keeping the `implied` history [`crate::temporal::record`] gave). A replaced
/// entity's cell is left alone when it stays the same ([`EntityRows::replacing`]).
pub(crate) fn put_entity(
    writes: &mut EntityWrites<'_>,
    tenant: &Tenant,
    rows: &EntityRows,
    existing: Option<i64>,
    implied: Option<&Implied>,
) -> Result<(), StoreError> {
    let tx = writes.tx;
    if let (Some(cell), false) = (rows.cell, rows.same_cell) {
        note_cell_level(tx, cell).map_err(StoreError::backend)?;
    }
    match existing {
        Some(seq) if rows.same_cell => writes
            .get("UPDATE entities SET doc = ?1, vals = ?2, types = ?3 WHERE seq = ?4")
            .and_then(|s| s.execute(params![rows.doc, rows.vals, rows.types, seq])),
        Some(seq) => writes
            .get("UPDATE entities SET doc = ?1, vals = ?2, types = ?3, cell = ?4 WHERE seq = ?5")
            .and_then(|s| s.execute(params![rows.doc, rows.vals, rows.types, rows.cell, seq])),
        None => {
            let seq = writes.new_ids.next(tx, tenant)?;
            let (history_at, history_ids) = implied.map(Implied::columns).unzip();
            writes
                .get(
                    "INSERT INTO entities (seq, tenant, id, doc, vals, types, cell, \
                         history_at, history_ids) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .and_then(|s| {
                    s.execute(params![
                        seq,
                        tenant.name(),
                        rows.id,
                        rows.doc,
                        rows.vals,
                        rows.types,
                        rows.cell,
                        history_at,
                        history_ids
                    ])
                })
        }
    }
    .map(drop)
    .map_err(StoreError::backend)
}

/// The cell an entity's location is kept in (module `cells`), if it has one.
pub fn cell_of(entity: &Entity) -> Option<i64> {
    location_box(entity).map(|b| crate::cells::cell_of(&b))
}

/// Lists the level of `cell` among those holding boxes above the last level, which
/// queries read ([`cell_levels`]).
pub fn note_cell_level(tx: &Transaction<'_>, cell: i64) -> rusqlite::Result<()> {
    let level = crate::cells::level_of(cell);
    if level < crate::cells::MAX_LEVEL {
        tx.prepare_cached("INSERT OR IGNORE INTO entity_cell_levels (level) VALUES (?1)")?
            .execute([level])?;
    }
    Ok(())
}

/// The levels above the last where a box has been kept ([`note_cell_level`]).
pub fn cell_levels(conn: &rusqlite::Connection) -> rusqlite::Result<crate::cells::Levels> {
    let mut statement = conn.prepare_cached("SELECT level FROM entity_cell_levels")?;
    let mut levels = statement.query_map([], |row| row.get::<_, u32>(0))?;
    levels.try_fold(crate::cells::Levels::default(), |set, level| {
        Ok(crate::cells::Levels(set.0 | 1 << level?))
    })
}

/// The separator around each type name in `entities.types`: a control character, which
/// no IRI holds.
const TYPE_SEPARATOR: char = '\u{1f}';

/// An entity's types as its row keeps them: each name between two separators, so
/// that the row of an entity of type `t` always holds the text `types_text([t])`
/// ([`may_have_type`]).
pub fn types_text(types: &[String]) -> String {
    let mut text = String::from(TYPE_SEPARATOR);
    for t in types {
        text.push_str(t);
        text.push(TYPE_SEPARATOR);
    }
    text
}

/// Whether a row's `types` may hold one of the types whose [`types_text`] are
/// `wanted`; a row without them (`None`) may. Never refuses an entity of one of them;
/// may admit one that is not (a name holding the separator), which the evaluator,
/// deciding every candidate, then refuses.
pub fn may_have_type(types: Option<&str>, wanted: &[String]) -> bool {
    types.is_none_or(|types| wanted.iter().any(|t| types.contains(t.as_str())))
}

/// Deletes an entity by its row.
pub fn delete_seq(tx: &Transaction<'_>, seq: i64) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM entities WHERE seq = ?1")
        .and_then(|mut statement| statement.execute([seq]))
        .map(drop)
        .map_err(StoreError::backend)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("refused")]
    struct Refused;

    fn writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = Connection::open(dir.path().join("w.db")).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .unwrap_or_else(|e| panic!("{e}"));
        (Writer::start(conn), dir)
    }

    fn stored(dir: &tempfile::TempDir) -> Vec<i64> {
        let conn = Connection::open(dir.path().join("w.db")).unwrap_or_else(|e| panic!("{e}"));
        let mut statement = conn
            .prepare("SELECT k FROM t ORDER BY k")
            .unwrap_or_else(|e| panic!("{e}"));
        let keys = statement
            .query_map([], |row| row.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        keys.collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A write's lookup finds a stored entity whether or not a head of its history
    /// is stored too, and tells an absent entity with a history from one without.
    #[test]
    fn a_lookup_finds_the_row_before_any_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("l.db")).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO entities (seq, tenant, id, doc, history_at, history_ids) VALUES
                 (1, '', 'urn:implied', '{}', '2026-01-01T00:00:00.000000Z',
                  '5f0c6a39-0d5e-4d7c-9a57-3c1a4b9b2e11'),
                 (2, '', 'urn:in-rows', '{}', NULL, NULL);
             INSERT INTO temporal_heads (tenant, id, types, scopes, created_at, modified_at,
                 last_seq) VALUES
                 ('', 'urn:in-rows', '[]', '[]', 't', 't', 1),
                 ('', 'urn:deleted', '[]', '[]', 't', 't', 1);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        let tenant = Tenant::default_tenant();
        let mut writes = EntityWrites::new(&tx);
        let mut found = |id: &str| {
            let lookup = look_up(&mut writes, &tenant, id).unwrap();
            let history = match lookup.history() {
                StoredHistory::None => "none",
                StoredHistory::Implied(_) => "implied",
                StoredHistory::InRows => "in rows",
            };
            (lookup.seq(), history)
        };
        assert_eq!(found("urn:implied"), (Some(1), "implied"));
        assert_eq!(found("urn:in-rows"), (Some(2), "in rows"));
        assert_eq!(found("urn:deleted"), (None, "in rows"));
        assert_eq!(found("urn:new"), (None, "none"));
    }

    /// Whatever the jobs' grouping: what failed after writing is never stored, a
    /// refusal before writing spoils nothing, and every acknowledged write is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_after_writing_never_commits_and_acknowledged_writes_are_kept() {
        let (writer, dir) = writer();
        let mut tasks = Vec::new();
        for k in 0..60i64 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = writer
                    .run_signalling(move |tx| {
                        match k % 3 {
                            // Refused before writing anything.
                            1 => return Err(StoreError::backend(Refused)),
                            // Fails after writing: must leave no trace.
                            2 => {
                                tx.execute("INSERT INTO t (k) VALUES (?1)", [k])
                                    .map_err(StoreError::backend)?;
                                return Err(StoreError::backend(Refused));
                            }
                            _ => {}
                        }
                        tx.execute("INSERT INTO t (k) VALUES (?1)", [k])
                            .map_err(StoreError::backend)?;
                        Ok(((), false))
                    })
                    .await;
                (k, outcome.is_ok())
            }));
        }
        let mut acknowledged = Vec::new();
        for task in tasks {
            let (k, ok) = task.await.unwrap_or_else(|e| panic!("{e}"));
            assert!(k % 3 == 0 || !ok, "job {k} failed yet was acknowledged");
            if ok {
                acknowledged.push(k);
            }
        }
        let kept = stored(&dir);
        assert!(
            kept.iter().all(|k| k % 3 == 0),
            "a failed job's write was kept: {kept:?}"
        );
        assert!(
            acknowledged.iter().all(|k| kept.contains(k)),
            "an acknowledged write was lost"
        );
        // Alone, a refusal before writing leaves the next job's write in place.
        assert!(writer
            .run(|_| Err::<(), _>(StoreError::backend(Refused)))
            .await
            .is_err());
        writer
            .run(|tx| {
                tx.execute("INSERT INTO t (k) VALUES (1000)", [])
                    .map(drop)
                    .map_err(StoreError::backend)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(stored(&dir).contains(&1000));
        // A job in its savepoint that fails after writing is undone alone.
        let undone = writer
            .run(|tx| {
                tx.execute("INSERT INTO t (k) VALUES (2000)", [])
                    .map_err(StoreError::backend)?;
                Err::<(), _>(StoreError::backend(Refused))
            })
            .await;
        assert!(undone.is_err());
        assert!(!stored(&dir).contains(&2000));
    }

    /// A job that panics after writing fails alone: its write is not kept, and the
    /// writer goes on with the next jobs.
    #[tokio::test]
    async fn a_panicking_job_fails_without_stopping_the_writer() {
        let (writer, dir) = writer();
        let panicked = writer
            .run_signalling(|tx| -> Result<((), bool), StoreError> {
                tx.execute("INSERT INTO t (k) VALUES (1)", [])
                    .map_err(StoreError::backend)?;
                panic!("a fault inside a write")
            })
            .await;
        assert!(panicked.is_err());
        writer
            .run_signalling(|tx| {
                tx.execute("INSERT INTO t (k) VALUES (2)", [])
                    .map(|_| ((), false))
                    .map_err(StoreError::backend)
            })
            .await
            .unwrap_or_else(|e| panic!("the writer stopped after a panic: {e}"));
        assert_eq!(stored(&dir), vec![2]);
    }
}
