//! The embedded SQLite backend: renkei's default, a single file under `./data/` that a
//! small municipality can run and back up without a database server.
//!
//! Writes go through one writer thread with group commit (see [`writer`]); reads run on
//! a small pool of their own connections, which WAL lets proceed while the writer
//! works. Each tenant's entities are one range of row ids ([`writer::TENANT_ROWS`]).
//! Queries read their tenant's range, or narrow candidates with indexes (id, the
//! spatial cell of a location) in SQL, then by the types and values each candidate's
//! row keeps (a union of types; `attrs` and `q`, module `values`) before its document
//! is parsed, and decide the rest (`q`, `scopeQ`, `geoQ`, `idPattern`) with
//! `ngsi-ld`'s evaluator, the same one the PostgreSQL backend uses, so both answer
//! alike.

mod applications;
mod catalog;
mod cells;
mod checkpoint;
mod columns;
mod datastore;
mod harvest;
mod identity;
mod modify;
mod registrations;
mod schema;
mod subscriptions;
mod temporal;
mod values;
pub mod writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ngsi_ld::model::Entity;
use ngsi_ld::query::eval::Matcher;
use ngsi_ld::query::index::{geo_prefilter, q_prefilter, BoundingBox, Prefilter};
use ngsi_ld::query::{EntityQuery, TypeExpr};
use ngsi_ld::temporal::instances_of_change;
use ngsi_ld::NgsiError;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store::{
    AttributeStats, ContextKind, EntityPage, EntityStore, Modification, StoreError, StoredContext,
    Tenant, TypeStats, Write,
};
use writer::Writer;

/// Read connections: at most this many reads run at once, each on a connection kept
/// open with its warm page cache. Opening one per request would start every read with
/// a cold cache and re-read the schema; more than a few per core only queue on the CPU.
const READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReaderPool>,
    read_slots: Arc<tokio::sync::Semaphore>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, brings its schema up to date and
    /// starts the writer.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer_conn = {
            let path = path.clone();
            blocking(move || {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
                }
                let mut conn = Connection::open(&path).map_err(StoreError::backend)?;
                schema::configure(&conn).map_err(StoreError::backend)?;
                schema::migrate(&mut conn).map_err(StoreError::backend)?;
                Ok(conn)
            })
            .await?
        };
        Ok(SqliteStore {
            path,
            writer: Writer::start(writer_conn),
            readers: Arc::new(ReaderPool::default()),
            read_slots: Arc::new(tokio::sync::Semaphore::new(READERS)),
        })
    }

    /// Brings the schema of the database file up to date without serving.
    pub async fn migrate(path: impl AsRef<Path>) -> Result<(), StoreError> {
        SqliteStore::open(path).await.map(drop)
    }

    /// Runs a read on a pooled connection off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::backend)?;
        blocking(move || {
            let _slot = slot;
            let conn = match readers.take() {
                Some(conn) => conn,
                None => {
                    let conn = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(StoreError::backend)?;
                    conn.busy_timeout(std::time::Duration::from_secs(10))
                        .map_err(StoreError::backend)?;
                    // 2 MiB of page cache per reader (negative: KiB).
                    conn.pragma_update(None, "cache_size", -2048)
                        .map_err(StoreError::backend)?;
                    conn
                }
            };
            let result = work(&conn);
            readers.put_back(conn);
            result
        })
        .await
    }

    /// Runs a read of one row by its key on the calling thread when a warm pooled
    /// connection is free, else like [`SqliteStore::read`]. Such a read takes
    /// microseconds, less than handing it to a blocking thread and waking the task
    /// again, which was a fifth of the CPU time of retrieving an entity. Scans never
    /// come here: they may take long enough to hold up the other tasks of this thread
    /// (a query reads only its first part on this thread, within a [`Budget`]).
    async fn read_by_key<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Some((_slot, conn)) = self.try_warm_reader() {
            let result = work(&conn);
            self.readers.put_back(conn);
            return result;
        }
        self.read(work).await
    }

    /// A read slot and a warm pooled connection, if both are free now.
    fn try_warm_reader(&self) -> Option<(tokio::sync::OwnedSemaphorePermit, Connection)> {
        let slot = self.read_slots.clone().try_acquire_owned().ok()?;
        Some((slot, self.readers.take()?))
    }
}

/// The read connections kept open between reads (at most [`READERS`], as many as
/// read slots).
#[derive(Default)]
struct ReaderPool(Mutex<Vec<Connection>>);

impl ReaderPool {
    /// A warm connection, if one is free.
    fn take(&self) -> Option<Connection> {
        // A poisoned lock only means a read panicked; the list itself is intact.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_back(&self, conn: Connection) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
    }

    /// Ends the read transaction [`scan_first_part`] opened and keeps the connection,
    /// unless the transaction could not be ended: a connection left inside one would
    /// hold its old snapshot (and keep the WAL from being checkpointed), so it is closed.
    fn end_read_and_put_back(&self, conn: Connection) {
        let ended = conn
            .prepare_cached("COMMIT")
            .and_then(|mut statement| statement.execute([]));
        if let Err(e) = ended {
            tracing::warn!(error = %e, "cannot end a SQLite read transaction");
        }
        if conn.is_autocommit() {
            self.put_back(conn);
        }
    }
}

/// The first part of a scan that may be resumed: opens a read transaction, so that
/// every statement until [`ReaderPool::end_read_and_put_back`] reads the same snapshot,
/// then scans within `budget`.
fn scan_first_part(
    conn: &Connection,
    tenant: &Tenant,
    query: &EntityQuery,
    budget: Budget,
    visit: impl FnMut(i64, Entity) -> bool,
) -> Result<ScanEnd, StoreError> {
    conn.prepare_cached("BEGIN")
        .and_then(|mut statement| statement.execute([]))
        .map_err(StoreError::backend)?;
    scan(conn, tenant, query, None, Some(budget), visit)
}

/// Collects the page a query asks for as a scan visits the matches: the entities from
/// `offset` on, `limit` of them, and the number of matches if asked.
struct PageBuilder {
    page: EntityPage,
    seen: usize,
    offset: usize,
    end: usize,
    count: bool,
}

impl PageBuilder {
    fn new(query: &EntityQuery) -> PageBuilder {
        PageBuilder {
            page: EntityPage::default(),
            seen: 0,
            offset: query.offset,
            end: query.offset.saturating_add(query.limit),
            count: query.count,
        }
    }

    /// Takes one match; answers whether the scan should go on.
    fn visit(&mut self, entity: Entity) -> bool {
        if self.seen >= self.offset && self.seen < self.end {
            self.page.entities.push(entity);
        }
        self.seen += 1;
        // Without a count, there is no need to read past the page.
        self.count || self.seen < self.end
    }

    fn finish(mut self) -> EntityPage {
        if self.count {
            self.page.total = Some(self.seen as u64);
        }
        self.page
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(StoreError::backend)?
}

fn decode(doc: &str) -> Result<Entity, StoreError> {
    store::doc::decode_entity(doc).map_err(StoreError::backend)
}

/// The type names of an expression that is a plain union of types (`A,B`), which a
/// candidate's `types` column answers; `None` for anything needing evaluation.
fn type_union(types: &TypeExpr) -> Option<Vec<String>> {
    match types {
        TypeExpr::Type(name) => Some(vec![name.clone()]),
        TypeExpr::Or(parts) => parts.iter().try_fold(Vec::new(), |mut names, part| {
            names.extend(type_union(part)?);
            Some(names)
        }),
        TypeExpr::And(_) => None,
    }
}

/// How much of a scan may run before it pauses (see [`SqliteStore::query_entities`]):
/// at most `rows` candidates decoded, and at most `vm_ticks` times
/// [`VM_TICK`] SQLite virtual machine instructions, which bounds the time SQL spends
/// between two candidates when the indexes narrow poorly.
#[derive(Debug, Clone, Copy)]
struct Budget {
    rows: usize,
    vm_ticks: u32,
}

/// How many SQLite instructions make one tick of a [`Budget`].
const VM_TICK: std::os::raw::c_int = 1000;

/// How far a query runs on the calling async thread: about a millisecond of work,
/// enough for a page of 20 (the usual size) of well-narrowed candidates.
const INLINE_BUDGET: Budget = Budget {
    rows: 64,
    vm_ticks: 50,
};

/// How a [`scan`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanEnd {
    /// Every candidate was visited, or `visit` asked to stop.
    Finished,
    /// The budget ran out; the scan goes on with the candidates after `last_seq`.
    Paused { last_seq: Option<i64> },
}

/// Streams the tenant's candidate entities for a query in creation order, calling
/// `visit` with each one that matches; `visit` returns false to stop. Only candidates
/// after `after_seq` are read (to resume a paused scan); with a `budget`, the scan
/// pauses once it is spent.
fn scan(
    conn: &Connection,
    tenant: &Tenant,
    query: &EntityQuery,
    after_seq: Option<i64>,
    budget: Option<Budget>,
    visit: impl FnMut(i64, Entity) -> bool,
) -> Result<ScanEnd, StoreError> {
    let Some(budget) = budget else {
        return scan_rows(conn, tenant, query, after_seq, usize::MAX, visit);
    };
    let mut ticks = 0u32;
    conn.progress_handler(
        VM_TICK,
        Some(move || {
            ticks += 1;
            ticks > budget.vm_ticks
        }),
    );
    let end = scan_rows(conn, tenant, query, after_seq, budget.rows, visit);
    conn.progress_handler(0, None::<fn() -> bool>);
    end
}

/// Visits every entity of a tenant, in creation order.
fn scan_tenant(
    conn: &Connection,
    tenant: &Tenant,
    mut visit: impl FnMut(Entity),
) -> Result<(), StoreError> {
    let all = EntityQuery::default();
    scan(conn, tenant, &all, None, None, |_, entity| {
        visit(entity);
        true
    })
    .map(drop)
}

/// The SQL (and its arguments) reading a tenant's candidate rows for `query` after
/// `after_seq`, in creation order: the rows in the tenant's range of row ids
/// (`tenant_rows`, see [`writer::TENANT_ROWS`]), narrowed by the conditions an index
/// answers (the box of its `geoQ`, [`geo_prefilter`], with the levels holding boxes);
/// the matcher decides the rest.
fn candidates_sql(
    tenant: &Tenant,
    tenant_rows: Range<i64>,
    query: &EntityQuery,
    geo: Option<(&BoundingBox, cells::Levels)>,
    after_seq: Option<i64>,
) -> (String, Vec<SqlValue>) {
    // Lists longer than a narrowing takes are left to the matcher.
    let ids =
        (!query.ids.is_empty() && query.ids.len() <= MAX_NARROWING_TERMS).then_some(&query.ids);
    // One index drives the scan; the other terms are marked (`+`) so that none does.
    // With a geo-query the rows are found by their row ids (`seq`) from the index of
    // cells, in order, so nothing is sorted; with a list of ids, by the index of
    // (tenant, id) (the few found are sorted); otherwise the tenant's range is read in
    // order. The range alone keeps tenants apart: a row id is only ever given within
    // its tenant's range (`writer::NewRowIds`, migration 18). Checking each row's
    // tenant name as well cost q queries a fifth of their throughput (wall clock, four
    // alternating rounds; callgrind saw no more instructions).
    let start = match after_seq {
        Some(seq) => tenant_rows.start.max(seq.saturating_add(1)),
        None => tenant_rows.start,
    };
    let mut args: Vec<SqlValue> =
        vec![SqlValue::Integer(start), SqlValue::Integer(tenant_rows.end)];
    let range = match (geo.is_some(), ids.is_some()) {
        (false, false) => "e.seq >= ? AND e.seq < ?",
        (false, true) => {
            args.push(SqlValue::Text(tenant.name().to_owned()));
            "+e.seq >= ? AND +e.seq < ? AND e.tenant = ?"
        }
        (true, _) => "+e.seq >= ? AND +e.seq < ?",
    };
    let mut sql =
        format!("SELECT e.seq, e.vals, e.doc, e.types, e.cell FROM entities e WHERE {range}");
    if let Some((b, coarse)) = geo {
        // The index of cells drives: few rows are near any one place.
        push_cell_ranges(&mut sql, &mut args, &cells::ranges_meeting(b, coarse));
    }
    if let Some(ids) = ids {
        sql.push_str(" AND e.id IN (");
        push_list(&mut sql, &mut args, ids.clone());
        sql.push(')');
    }
    sql.push_str(" ORDER BY e.seq");
    (sql, args)
}

/// Narrows to the entities in the cells of `ranges` (module `cells`), each range a
/// search of the index of cells. The list is padded with empty ranges to a power of
/// two, so that a few statements serve every query.
fn push_cell_ranges(sql: &mut String, args: &mut Vec<SqlValue>, ranges: &[(i64, i64)]) {
    let padded = ranges.len().next_power_of_two().max(4);
    sql.push_str(" AND e.seq IN (SELECT c.seq FROM (VALUES ");
    for i in 0..padded {
        sql.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
        let (low, high) = ranges.get(i).copied().unwrap_or((1, 0));
        args.extend([SqlValue::Integer(low), SqlValue::Integer(high)]);
    }
    sql.push_str(") r JOIN entities c ON c.cell BETWEEN r.column1 AND r.column2)");
}

fn scan_rows(
    conn: &Connection,
    tenant: &Tenant,
    query: &EntityQuery,
    after_seq: Option<i64>,
    max_rows: usize,
    mut visit: impl FnMut(i64, Entity) -> bool,
) -> Result<ScanEnd, StoreError> {
    let Some(tenant_rows) = writer::tenant_rows(conn, tenant)? else {
        // A named tenant never written to has no entities.
        return Ok(ScanEnd::Finished);
    };
    let geo_box = query.geo_q.as_ref().and_then(geo_prefilter);
    let geo = match &geo_box {
        Some(b) => Some((b, writer::cell_levels(conn).map_err(StoreError::backend)?)),
        None => None,
    };
    let (sql, args) = candidates_sql(tenant, tenant_rows, query, geo, after_seq);
    // A plain union of types narrows by each candidate's `types` column, before its
    // document is parsed; anything else is left to the matcher.
    let wanted_types: Option<Vec<String>> = query
        .types
        .as_ref()
        .and_then(type_union)
        .filter(|names| names.len() <= MAX_VALUE_TERMS)
        .map(|names| {
            names
                .iter()
                .map(|name| writer::types_text(std::slice::from_ref(name)))
                .collect()
        });
    // `attrs` and `q` narrow by the values in each candidate's row, before its
    // document is parsed (module `values`).
    let mut narrowing = Vec::new();
    if !query.attrs.is_empty() {
        narrowing.push(Prefilter::Or(
            query.attrs.iter().cloned().map(Prefilter::Has).collect(),
        ));
    }
    if let Some(q) = &query.q {
        narrowing.push(q_prefilter(q));
    }
    // Nothing to narrow by, or too much (see `MAX_VALUE_TERMS`): no values read.
    let narrowing = Prefilter::And(narrowing);
    let narrowing = (1..=MAX_VALUE_TERMS)
        .contains(&narrowing.term_count())
        .then_some(narrowing);
    let matcher = Matcher::new(query);
    let mut statement = conn.prepare_cached(&sql).map_err(StoreError::backend)?;
    let mut rows = statement
        .query(params_from_iter(args))
        .map_err(StoreError::backend)?;
    let mut last_seq = after_seq;
    let mut decoded = 0usize;
    loop {
        if decoded == max_rows {
            return Ok(ScanEnd::Paused { last_seq });
        }
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(ScanEnd::Finished),
            // Only a budget's progress handler interrupts a read.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                return Ok(ScanEnd::Paused { last_seq });
            }
            Err(e) => return Err(StoreError::backend(e)),
        };
        let seq: i64 = row.get(0).map_err(StoreError::backend)?;
        last_seq = Some(seq);
        // The ranges of cells admit whole cells around the box; a cell that misses
        // it holds no match (a point's cell is the point, to a few centimetres).
        if let Some(b) = &geo_box {
            let cell: Option<i64> = row.get(4).map_err(StoreError::backend)?;
            if !cell.is_some_and(|cell| cells::cell_meets(cell, b)) {
                continue;
            }
        }
        if let Some(wanted) = &wanted_types {
            let types = row.get_ref(3).and_then(|types| Ok(types.as_str_or_null()?));
            if !writer::may_have_type(types.map_err(StoreError::backend)?, wanted) {
                continue;
            }
        }
        if let Some(narrowing) = &narrowing {
            let vals = row
                .get_ref(1)
                .map_err(StoreError::backend)?
                .as_blob_or_null();
            if !values::admits(narrowing, vals.map_err(StoreError::backend)?) {
                continue;
            }
        }
        // Parsed where SQLite holds it, not copied out first.
        let doc = row.get_ref(2).and_then(|doc| Ok(doc.as_str()?));
        let entity = decode(doc.map_err(StoreError::backend)?)?;
        decoded += 1;
        if matcher.matches(&entity) && !visit(seq, entity) {
            return Ok(ScanEnd::Finished);
        }
    }
}

/// The most ids one narrowing renders as parameters: a statement stays far below
/// SQLite's 32766 parameters. A longer list is left to the evaluator, which decides
/// every query exactly anyway.
const MAX_NARROWING_TERMS: usize = 4000;

/// The most attribute conditions (or names of `attrs`) checked against a candidate's
/// values, and the most type names against its types. Each is a pass over them, so a
/// longer list would cost about what parsing the document and running the evaluator
/// costs, and is left to the evaluator.
const MAX_VALUE_TERMS: usize = 256;

fn push_list(sql: &mut String, args: &mut Vec<SqlValue>, items: Vec<String>) {
    for (i, item) in items.into_iter().enumerate() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
        args.push(SqlValue::Text(item));
    }
}

fn get_entity_in(
    conn: &Connection,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<Entity>, StoreError> {
    conn.prepare_cached("SELECT doc FROM entities WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.name(), id], |row| {
                Ok(decode(row.get_ref(0)?.as_str()?))
            })
            .optional()
        })
        .map_err(StoreError::backend)?
        .transpose()
}

fn row_to_context(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn to_context(
    (id, url, kind, body, created_at): (String, String, String, String, String),
) -> Result<StoredContext, StoreError> {
    Ok(StoredContext {
        id,
        url,
        kind: ContextKind::parse(&kind).unwrap_or(ContextKind::Cached),
        body: serde_json::from_str(&body).map_err(StoreError::backend)?,
        created_at: DateTime::parse_from_rfc3339(&created_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(StoreError::backend)?,
    })
}

#[async_trait]
impl EntityStore for SqliteStore {
    async fn tenant_exists(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        if tenant.is_default() {
            return Ok(true);
        }
        let name = tenant.name().to_owned();
        self.read(move |conn| {
            conn.query_row("SELECT 1 FROM tenants WHERE name = ?1", [name], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
                .map_err(StoreError::backend)
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare("SELECT name FROM tenants ORDER BY name")
                .map_err(StoreError::backend)?;
            let names = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(StoreError::backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::backend)?;
            let mut tenants = vec![Tenant::default_tenant()];
            tenants.extend(names.into_iter().map(Tenant::named));
            Ok(tenants)
        })
        .await
    }

    async fn create_entity(&self, tenant: &Tenant, entity: Entity) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let rows = writer::EntityRows::new(&entity);
        // The history is counted here, off the writer thread: a creation's is implied
        // by the entity's document (see `temporal`).
        let now = temporal::now();
        let head = temporal::Head::of(&entity, false);
        let history = temporal::HistoryRows::first(&entity);
        // Freed on this thread, which made it, not after the write on whichever
        // thread then resumes the task.
        drop(entity);
        let subscribed = self.writer.subscribed_tenants();
        self.writer
            .run_signalling(move |tx| {
                let mut writes = writer::EntityWrites::new(tx);
                let found = writer::look_up(&mut writes, &tenant, rows.id())?;
                if found.seq().is_some() {
                    return Err(StoreError::AlreadyExists(rows.id().to_owned()));
                }
                let documents = temporal::Documents {
                    before: None,
                    history: found.history(),
                    after: Some(rows.doc()),
                };
                let implied = temporal::record(tx, &tenant, &head, &history, now, documents)?;
                writer::put_entity(&mut writes, &tenant, &rows, None, implied.as_ref())?;
                let logged = subscribed.check(tx, &tenant)?;
                if logged {
                    writer::log_change(tx, &tenant, rows.id(), None, Some(rows.doc()))?;
                }
                Ok(((), logged))
            })
            .await
    }

    async fn get_entity(&self, tenant: &Tenant, id: &str) -> Result<Option<Entity>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read_by_key(move |conn| get_entity_in(conn, &tenant, &id))
            .await
    }

    async fn modify(
        &self,
        tenant: &Tenant,
        modifications: Vec<Modification>,
    ) -> Result<Vec<Result<Write, NgsiError>>, StoreError> {
        let tenant = tenant.clone();
        let subscribed = self.writer.subscribed_tenants();
        // The history a modification carries is encoded here, off the writer thread.
        let items: Vec<_> = modifications
            .into_iter()
            .map(|m| modify::Item {
                given: m.history.as_deref().map(temporal::HistoryRows::given),
                id: m.entity_id,
                apply: m.apply,
            })
            .collect();
        self.writer
            .run_signalling(move |tx| {
                let done = modify::run(tx, &tenant, &subscribed, items, temporal::now())?;
                if done.wrote {
                    writer::ensure_tenant(tx, &tenant)?;
                }
                Ok((done.results, done.logged))
            })
            .await
    }

    async fn query_entities(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
    ) -> Result<EntityPage, StoreError> {
        let mut page = PageBuilder::new(query);
        // A count reads every match, so it goes to a blocking thread at once.
        let inline = if query.count {
            None
        } else {
            self.try_warm_reader()
        };
        let Some((slot, conn)) = inline else {
            let (tenant, query) = (tenant.clone(), query.clone());
            return self
                .read(move |conn| {
                    scan(conn, &tenant, &query, None, None, |_, e| page.visit(e))?;
                    Ok(page.finish())
                })
                .await;
        };
        // The first part of the page is read here, within a budget: most pages are
        // done by then, and reading them on this thread saves handing the read to a
        // blocking thread, and the decoded entities from one thread's allocator to
        // another's (together a quarter of the CPU time of a query). A read that needs
        // more goes on on a blocking thread, in the same read transaction, so the page
        // comes from one snapshot.
        let first = scan_first_part(&conn, tenant, query, INLINE_BUDGET, |_, e| page.visit(e));
        let last_seq = match first {
            Ok(ScanEnd::Paused { last_seq }) => last_seq,
            done => {
                self.readers.end_read_and_put_back(conn);
                return done.map(|_| page.finish());
            }
        };
        let (tenant, query, readers) = (tenant.clone(), query.clone(), self.readers.clone());
        blocking(move || {
            let _slot = slot;
            let rest = scan(&conn, &tenant, &query, last_seq, None, |_, e| page.visit(e));
            readers.end_read_and_put_back(conn);
            rest.map(|_| page.finish())
        })
        .await
    }

    async fn delete_matching(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
    ) -> Result<u64, StoreError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        let subscribed = self.writer.subscribed_tenants();
        self.writer
            .run_signalling(move |tx| {
                let logged = subscribed.check(tx, &tenant)?;
                let now = temporal::now();
                // The entities are kept for their deletion records and the change log.
                let mut doomed = Vec::new();
                scan(tx, &tenant, &query, None, None, |seq, entity| {
                    doomed.push((seq, entity));
                    true
                })?;
                for (seq, entity) in &doomed {
                    let implied = temporal::implied_by_row(tx, *seq)?;
                    if logged {
                        let before = store::doc::entity_doc_text(entity);
                        writer::log_change(tx, &tenant, &entity.id, Some(&before), None)?;
                    }
                    let history =
                        temporal::HistoryRows::new(&instances_of_change(Some(entity), None, now));
                    let documents = temporal::Documents {
                        before: Some(temporal::Stored::Entity(entity)),
                        history: temporal::StoredHistory::of_stored(implied.as_ref()),
                        after: None,
                    };
                    temporal::record(
                        tx,
                        &tenant,
                        &temporal::Head::of(entity, true),
                        &history,
                        now,
                        documents,
                    )?;
                    writer::delete_seq(tx, *seq)?;
                }
                Ok((doomed.len() as u64, logged && !doomed.is_empty()))
            })
            .await
    }

    async fn type_stats(&self, tenant: &Tenant) -> Result<Vec<TypeStats>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |conn| {
            let mut by_type: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
            scan_tenant(conn, &tenant, |entity| {
                for t in &entity.types {
                    let (count, attrs) = by_type.entry(t.clone()).or_default();
                    *count += 1;
                    attrs.extend(entity.attributes.keys().cloned());
                }
            })?;
            Ok(by_type
                .into_iter()
                .map(|(type_iri, (entity_count, attrs))| TypeStats {
                    type_iri,
                    entity_count,
                    attributes: attrs.into_iter().collect(),
                })
                .collect())
        })
        .await
    }

    async fn attribute_stats(&self, tenant: &Tenant) -> Result<Vec<AttributeStats>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |conn| {
            let mut by_attr: BTreeMap<String, (u64, BTreeSet<String>, BTreeSet<String>)> =
                BTreeMap::new();
            scan_tenant(conn, &tenant, |entity| {
                for (name, instances) in &entity.attributes {
                    let (count, kinds, types) = by_attr.entry(name.clone()).or_default();
                    *count += 1;
                    kinds.extend(instances.iter().map(|a| a.value.kind_name().to_owned()));
                    types.extend(entity.types.iter().cloned());
                }
            })?;
            Ok(by_attr
                .into_iter()
                .map(
                    |(attribute_iri, (entity_count, kinds, types))| AttributeStats {
                        attribute_iri,
                        entity_count,
                        kinds: kinds.into_iter().collect(),
                        types: types.into_iter().collect(),
                    },
                )
                .collect())
        })
        .await
    }

    async fn put_context(&self, context: StoredContext) -> Result<(), StoreError> {
        self.writer
            .run(move |tx| writer::put_context(tx, &context))
            .await
    }

    async fn get_context(&self, id_or_url: &str) -> Result<Option<StoredContext>, StoreError> {
        let key = id_or_url.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT id, url, kind, body, created_at FROM contexts WHERE id = ?1 OR url = ?1",
                [key],
                row_to_context,
            )
            .optional()
            .map_err(StoreError::backend)?
            .map(to_context)
            .transpose()
        })
        .await
    }

    async fn list_contexts(&self) -> Result<Vec<StoredContext>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare(
                    "SELECT id, url, kind, body, created_at FROM contexts ORDER BY created_at, id",
                )
                .map_err(StoreError::backend)?;
            let rows = statement
                .query_map([], row_to_context)
                .map_err(StoreError::backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::backend)?;
            rows.into_iter().map(to_context).collect()
        })
        .await
    }

    async fn delete_context(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .run(move |tx| {
                tx.execute("DELETE FROM contexts WHERE id = ?1", [id])
                    .map(|n| n > 0)
                    .map_err(StoreError::backend)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    //! Pausing and resuming a scan (see [`Budget`]); the conformance suite checks the
    //! pages themselves.

    use super::*;
    use ngsi_ld::model::{Attribute, AttributeValue};
    use ngsi_ld::query::{AttrPath, QExpr, QOp, QTerm, QValue};

    const SHELTER: &str = "https://ex.org/Shelter";
    const CAPACITY: &str = "https://ex.org/capacity";

    /// A store holding `n` shelters, `urn:s:0` … in creation order, each with its
    /// number as `capacity`; and a read connection of its own.
    async fn store_of(n: usize) -> (SqliteStore, Connection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("renkei.db");
        let store = SqliteStore::open(&path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let shelters = (0..n).map(|i| {
            let id = format!("urn:s:{i}");
            let mut e = Entity::new(id.clone(), vec![SHELTER.to_owned()]);
            let capacity = AttributeValue::Property(serde_json::json!(i));
            e.attributes
                .insert(CAPACITY.to_owned(), vec![Attribute::new(capacity)]);
            Modification::new(id, move |_| Ok(Write::Put(e)))
        });
        let written = store
            .modify(&Tenant::default_tenant(), shelters.collect())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(written.iter().all(Result::is_ok), "{written:?}");
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        (store, conn, dir)
    }

    fn shelters() -> EntityQuery {
        EntityQuery {
            types: Some(TypeExpr::Type(SHELTER.to_owned())),
            limit: usize::MAX,
            ..EntityQuery::default()
        }
    }

    /// Runs one part of a scan, returning how it ended and the ids it visited.
    fn part(
        conn: &Connection,
        query: &EntityQuery,
        after_seq: Option<i64>,
        budget: Option<Budget>,
    ) -> (ScanEnd, Vec<String>) {
        let mut ids = Vec::new();
        let end = scan(
            conn,
            &Tenant::default_tenant(),
            query,
            after_seq,
            budget,
            |_, e| {
                ids.push(e.id);
                true
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (end, ids)
    }

    /// `q=attr>=n`.
    fn at_least(attr: &str, n: f64) -> QExpr {
        QExpr::Term(QTerm {
            path: AttrPath {
                attr: attr.to_owned(),
                sub_attrs: Vec::new(),
                trailing: Vec::new(),
            },
            comparison: Some((QOp::Ge, QValue::Number(n))),
        })
    }

    fn ids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("urn:s:{i}")).collect()
    }

    #[tokio::test]
    async fn a_scan_paused_by_its_row_budget_resumes_after_the_last_row_it_read() {
        let (_store, conn, _dir) = store_of(100).await;
        let budget = Budget {
            rows: 7,
            vm_ticks: u32::MAX,
        };
        let (end, first) = part(&conn, &shelters(), None, Some(budget));
        assert_eq!(first, ids(0..7));
        let ScanEnd::Paused { last_seq } = end else {
            panic!("a scan of 100 within a budget of 7 rows ended: {end:?}");
        };
        let (end, rest) = part(&conn, &shelters(), last_seq, None);
        assert_eq!(end, ScanEnd::Finished);
        assert_eq!(rest, ids(7..100));
    }

    #[tokio::test]
    async fn a_scan_interrupted_inside_sql_resumes_without_losing_a_match() {
        let (_store, conn, _dir) = store_of(2000).await;
        let last_five = EntityQuery {
            q: Some(at_least(CAPACITY, 1995.0)),
            ..shelters()
        };
        // SQL passes 1,995 candidates before the first match, far more than one tick.
        let budget = Budget {
            rows: 64,
            vm_ticks: 0,
        };
        let (end, first) = part(&conn, &last_five, None, Some(budget));
        let ScanEnd::Paused { last_seq } = end else {
            panic!("a scan with no instructions to spend ended: {end:?}");
        };
        // The budget's progress handler is gone: the rest runs to its end.
        let (end, rest) = part(&conn, &last_five, last_seq, None);
        assert_eq!(end, ScanEnd::Finished);
        assert_eq!([first, rest].concat(), ids(1995..2000));
    }

    #[tokio::test]
    async fn a_resumed_scan_reads_the_snapshot_its_first_part_read() {
        let (store, conn, _dir) = store_of(100).await;
        let tenant = Tenant::default_tenant();
        let budget = Budget {
            rows: 10,
            vm_ticks: u32::MAX,
        };
        let mut first = Vec::new();
        let end = scan_first_part(&conn, &tenant, &shelters(), budget, |_, e| {
            first.push(e.id);
            true
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let ScanEnd::Paused { last_seq } = end else {
            panic!("{end:?}");
        };
        // Between the parts: one entity after the pause deleted, one created.
        let gone = EntityQuery {
            ids: vec!["urn:s:50".to_owned()],
            ..shelters()
        };
        let deleted = store.delete_matching(&tenant, &gone).await;
        assert_eq!(deleted.unwrap_or_else(|e| panic!("{e}")), 1);
        let late = Entity::new("urn:s:late", vec![SHELTER.to_owned()]);
        store
            .create_entity(&tenant, late)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, rest) = part(&conn, &shelters(), last_seq, None);
        assert_eq!([first, rest].concat(), ids(0..100));
        let readers = ReaderPool::default();
        readers.end_read_and_put_back(conn);
        let conn = readers
            .take()
            .unwrap_or_else(|| panic!("the reader was not kept"));
        let (_, after) = part(&conn, &shelters(), None, None);
        let expected: Vec<String> = ids(0..50)
            .into_iter()
            .chain(ids(51..100))
            .chain(["urn:s:late".to_owned()])
            .collect();
        assert_eq!(after, expected);
    }

    /// The shelters within `metres` of a point.
    fn shelters_near(lon: f64, lat: f64, metres: f64) -> EntityQuery {
        use ngsi_ld::query::{GeoQuery, GeoRel, Geometry};
        let point = serde_json::json!({"type": "Point", "coordinates": [lon, lat]});
        EntityQuery {
            geo_q: Some(GeoQuery {
                rel: GeoRel::Near {
                    max_distance: Some(metres),
                    min_distance: None,
                },
                geometry: Geometry::from_geojson(&point).unwrap_or_else(|e| panic!("{e}")),
                property: ngsi_ld::model::iri::LOCATION.into(),
            }),
            ..shelters()
        }
    }

    /// Locations on the edges where cells split (the antimeridian, a pole, the
    /// equator and prime meridian) and a polygon across them, kept at the coarsest
    /// cell: each is found by a small query at a point of it, and by nothing away or
    /// in another tenant.
    #[tokio::test]
    async fn a_geo_query_finds_locations_on_the_edges_of_cells() {
        use ngsi_ld::model::iri;
        let (store, conn, _dir) = store_of(0).await;
        let places = [
            (
                "urn:east",
                serde_json::json!({"type": "Point", "coordinates": [180.0, 0.0]}),
            ),
            (
                "urn:west",
                serde_json::json!({"type": "Point", "coordinates": [-180.0, -90.0]}),
            ),
            (
                "urn:origin",
                serde_json::json!({"type": "Point", "coordinates": [0.0, 0.0]}),
            ),
            (
                "urn:across",
                serde_json::json!({"type": "Polygon", "coordinates": [[
                    [-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]
                ]]}),
            ),
        ];
        let located = |places: &[(&'static str, serde_json::Value)]| {
            places
                .iter()
                .map(|(id, geojson)| {
                    let mut e = Entity::new(*id, vec![SHELTER.to_owned()]);
                    let location = AttributeValue::GeoProperty(geojson.clone());
                    e.attributes
                        .insert(iri::LOCATION.to_owned(), vec![Attribute::new(location)]);
                    Modification::new(*id, move |_| Ok(Write::Put(e)))
                })
                .collect()
        };
        // Another tenant's place in the same cells is never a match.
        let other = [("urn:other", places[2].1.clone())];
        for (tenant, places) in [
            (Tenant::default_tenant(), &places[..]),
            (Tenant::named("other"), &other[..]),
        ] {
            let written = store
                .modify(&tenant, located(places))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(written.iter().all(Result::is_ok), "{written:?}");
        }
        let found = |lon, lat| part(&conn, &shelters_near(lon, lat, 100.0), None, None).1;
        assert_eq!(found(180.0, 0.0), ["urn:east"]);
        assert_eq!(found(-180.0, -90.0), ["urn:west"]);
        assert_eq!(found(0.0, 0.0), ["urn:origin", "urn:across"]);
        assert_eq!(found(0.4999, -0.4999), ["urn:across"]);
        assert_eq!(found(-0.3, 0.2), ["urn:across"]);
        assert!(found(1.0, 1.0).is_empty());
    }

    /// The steps of the plan reading the default tenant's candidates for `query`.
    fn plan_of(
        conn: &Connection,
        query: &EntityQuery,
        geo: Option<(&BoundingBox, cells::Levels)>,
    ) -> Vec<String> {
        let tenant = Tenant::default_tenant();
        let (sql, args) = candidates_sql(&tenant, 0..writer::TENANT_ROWS, query, geo, Some(10));
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .and_then(|mut s| {
                s.query_map(params_from_iter(args), |row| row.get(3))?
                    .collect()
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A tenant's candidates are one range of the table's row ids, read in order; a
    /// list of ids is looked up by the index of ids instead.
    #[tokio::test]
    async fn a_query_reads_its_tenants_range_of_rows_or_looks_its_ids_up() {
        let (_store, conn, _dir) = store_of(0).await;
        let plan = plan_of(&conn, &shelters(), None);
        assert_eq!(
            plan,
            ["SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"],
            "{plan:#?}"
        );
        let by_ids = EntityQuery {
            ids: ids(0..3),
            ..shelters()
        };
        let plan = plan_of(&conn, &by_ids, None);
        assert!(
            plan.starts_with(&[
                "SEARCH e USING INDEX sqlite_autoindex_entities_1 (tenant=? AND id=?)".to_owned()
            ]),
            "{plan:#?}"
        );
    }

    /// A geo-query's candidates come from searches of the index of cells, one per
    /// range, never from a scan of the tenant's rows, and are read by row id in
    /// order, never sorted.
    #[tokio::test]
    async fn a_geo_query_searches_the_index_of_cells() {
        let (_store, conn, _dir) = store_of(0).await;
        let near = shelters_near(138.389, 34.972, 1_000.0);
        let geo_box = near.geo_q.as_ref().and_then(geo_prefilter);
        let geo = geo_box.as_ref().map(|b| (b, cells::Levels::ALL));
        let plan = plan_of(&conn, &near, geo);
        assert!(
            plan.starts_with(&["SEARCH e USING INTEGER PRIMARY KEY (rowid=?)".to_owned()]),
            "{plan:#?}"
        );
        let index_search = "SEARCH c USING COVERING INDEX entities_by_cell (cell>? AND cell<?)";
        assert!(plan.iter().any(|step| step == index_search), "{plan:#?}");
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN e")),
            "{plan:#?}"
        );
        // In row id order as found: no sort, which would copy every candidate's row.
        assert!(
            !plan.iter().any(|step| step.contains("ORDER BY")),
            "{plan:#?}"
        );
    }

    /// Rows written before names were shortened (whole names in the document and the
    /// values) and rows written since answer queries and reads alike.
    #[tokio::test]
    async fn rows_with_whole_and_shortened_names_are_read_and_queried_alike() {
        let vocab = ngsi_ld::model::iri::DEFAULT_CONTEXT_VOCAB;
        let capacity = format!("{vocab}capacity");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("renkei.db");
        let store = SqliteStore::open(&path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let tenant = Tenant::default_tenant();
        let shelter = |i: usize| {
            let mut e = Entity::new(format!("urn:s:{i}"), vec![SHELTER.to_owned()]);
            let value = AttributeValue::Property(serde_json::json!(i));
            e.attributes
                .insert(capacity.clone(), vec![Attribute::new(value)]);
            e
        };
        let writes = (0..20).map(|i| {
            let e = shelter(i);
            Modification::new(e.id.clone(), move |_| Ok(Write::Put(e)))
        });
        let written = store
            .modify(&tenant, writes.collect())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(written.iter().all(Result::is_ok), "{written:?}");
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let doc_of = |id: &str| -> String {
            conn.query_row("SELECT doc FROM entities WHERE id = ?1", [id], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(doc_of("urn:s:1").contains(r#""\u0001capacity":"#));
        // Every even row as an earlier version wrote it: whole names, and values
        // tagged without a prefix (a number: tag 1, the name, eight bytes).
        for i in (0..20).step_by(2) {
            let id = format!("urn:s:{i}");
            let stored = decode(&doc_of(&id)).unwrap_or_else(|e| panic!("{e}"));
            let mut vals = vec![1, capacity.len() as u8];
            vals.extend_from_slice(capacity.as_bytes());
            vals.extend_from_slice(&(i as f64).to_le_bytes());
            conn.execute(
                "UPDATE entities SET doc = ?1, vals = ?2 WHERE id = ?3",
                params![store::doc::entity_doc_text(&stored), vals, id],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(doc_of("urn:s:0").contains(&format!(r#""{capacity}":"#)));
        let at_least_ten = EntityQuery {
            q: Some(at_least(&capacity, 10.0)),
            ..shelters()
        };
        let (_, found) = part(&conn, &at_least_ten, None, None);
        assert_eq!(found, ids(10..20));
        let having = EntityQuery {
            attrs: vec![capacity.clone()],
            ..shelters()
        };
        assert_eq!(part(&conn, &having, None, None).1, ids(0..20));
        for i in [0, 1] {
            let read = store
                .get_entity(&tenant, &format!("urn:s:{i}"))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("urn:s:{i} is gone"));
            assert_eq!(read.attributes, shelter(i).attributes, "urn:s:{i}");
        }
    }
}
