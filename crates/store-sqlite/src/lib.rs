//! The embedded SQLite backend: renkei's default, a single file under `./data/` that a
//! small municipality can run and back up without a database server.
//!
//! Writes go through one writer thread with group commit (see [`writer`]); reads run on
//! a small pool of their own connections, which WAL lets proceed while the writer
//! works. Queries narrow candidates with indexes (tenant, type, id) in SQL and decide
//! the rest (`q`, `scopeQ`, `geoQ`, `idPattern`) with `ngsi-ld`'s evaluator, the same
//! one the PostgreSQL backend uses, so both answer alike.

mod applications;
mod catalog;
mod columns;
mod datastore;
mod harvest;
mod identity;
mod registrations;
mod schema;
mod subscriptions;
mod temporal;
pub mod writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ngsi_ld::model::Entity;
use ngsi_ld::query::eval::Matcher;
use ngsi_ld::query::index::{geo_prefilter, q_prefilter, Comparison, Prefilter};
use ngsi_ld::query::{EntityQuery, TypeExpr};
use ngsi_ld::temporal::instances_of_change;
use ngsi_ld::NgsiError;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet};
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
    /// come here: they may take long enough to hold up the other tasks of this thread.
    async fn read_by_key<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Ok(_slot) = self.read_slots.try_acquire() {
            if let Some(conn) = self.readers.take() {
                let result = work(&conn);
                self.readers.put_back(conn);
                return result;
            }
        }
        self.read(work).await
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

/// The type names of an expression that is a plain union of types (`A,B`), which SQL
/// can look up in the type index; `None` for anything needing evaluation.
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

/// Streams the tenant's candidate entities for a query in creation order, calling
/// `visit` with each one that matches; `visit` returns false to stop.
fn scan(
    conn: &Connection,
    tenant: &Tenant,
    query: &EntityQuery,
    mut visit: impl FnMut(i64, Entity) -> bool,
) -> Result<(), StoreError> {
    let mut sql = String::from("SELECT e.seq, e.doc FROM entities e WHERE e.tenant = ?");
    let mut args: Vec<SqlValue> = vec![SqlValue::Text(tenant.name().to_owned())];
    // Narrowing conditions first, each answered by an index; the matcher decides.
    if let Some(b) = query.geo_q.as_ref().and_then(geo_prefilter) {
        // The R*Tree drives: few rows are near any one place.
        sql.push_str(
            " AND e.seq IN (SELECT seq FROM entity_location \
             WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?)",
        );
        args.extend([b.min_lon, b.max_lon, b.min_lat, b.max_lat].map(SqlValue::Real));
    }
    // Lists longer than a narrowing takes are left to the matcher.
    if !query.ids.is_empty() && query.ids.len() <= MAX_NARROWING_TERMS {
        sql.push_str(" AND e.id IN (");
        push_list(&mut sql, &mut args, query.ids.clone());
        sql.push(')');
    }
    if let Some(names) = query
        .types
        .as_ref()
        .and_then(type_union)
        .filter(|names| names.len() <= MAX_NARROWING_TERMS)
    {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM entity_types t WHERE t.seq = e.seq AND t.type IN (",
        );
        push_list(&mut sql, &mut args, names);
        sql.push_str("))");
    }
    if !query.attrs.is_empty() {
        push_prefilter(
            &mut sql,
            &mut args,
            &Prefilter::Or(query.attrs.iter().cloned().map(Prefilter::Has).collect()),
        );
    }
    if let Some(q) = &query.q {
        push_prefilter(&mut sql, &mut args, &q_prefilter(q));
    }
    sql.push_str(" ORDER BY e.seq");
    let matcher = Matcher::new(query);
    let mut statement = conn.prepare_cached(&sql).map_err(StoreError::backend)?;
    let mut rows = statement
        .query(params_from_iter(args))
        .map_err(StoreError::backend)?;
    while let Some(row) = rows.next().map_err(StoreError::backend)? {
        let seq: i64 = row.get(0).map_err(StoreError::backend)?;
        let doc: String = row.get(1).map_err(StoreError::backend)?;
        let entity = decode(&doc)?;
        if matcher.matches(&entity) && !visit(seq, entity) {
            break;
        }
    }
    Ok(())
}

/// The most attribute conditions (or names of `attrs`) one narrowing renders, two
/// parameters each at most: with the other lists (ids and types, each under the same
/// bound) a statement stays far below SQLite's 32766 parameters. A longer list is left
/// to the evaluator, which decides every query exactly anyway.
const MAX_NARROWING_TERMS: usize = 4000;

/// Appends ` AND (condition)` for a prefilter over `entity_values`, unless it is too
/// big to be worth it (see [`MAX_NARROWING_TERMS`]).
fn push_prefilter(sql: &mut String, args: &mut Vec<SqlValue>, filter: &Prefilter) {
    if *filter == Prefilter::All || filter.term_count() > MAX_NARROWING_TERMS {
        return;
    }
    sql.push_str(" AND ");
    prefilter_sql(sql, args, filter);
}

/// One operand of an `AND`/`OR` in a rendered prefilter.
enum Operand<'a> {
    Filter(&'a Prefilter),
    /// The entity has one of these attributes: one `EXISTS` with `attr IN (…)`, which
    /// is how `attrs` and the presence terms of a `q` alternative render.
    HasAny(Vec<&'a str>),
}

fn prefilter_sql(sql: &mut String, args: &mut Vec<SqlValue>, filter: &Prefilter) {
    let op = |c: Comparison| match c {
        Comparison::Eq => "=",
        Comparison::Gt => ">",
        Comparison::Ge => ">=",
        Comparison::Lt => "<",
        Comparison::Le => "<=",
    };
    let exists = "EXISTS (SELECT 1 FROM entity_values v WHERE v.seq = e.seq AND v.attr = ?";
    match filter {
        Prefilter::All => sql.push('1'),
        Prefilter::Has(attr) => has_any_sql(sql, args, &[attr]),
        Prefilter::Number(attr, c, n) => {
            // Numbers sort before text in SQLite, so a range on `val` needs the type.
            sql.push_str(&format!(
                "{exists} AND v.val {} ? AND typeof(v.val) = 'real')",
                op(*c)
            ));
            args.push(SqlValue::Text(attr.clone()));
            args.push(SqlValue::Real(*n));
        }
        Prefilter::Text(attr, c, t) => {
            sql.push_str(&format!(
                "{exists} AND v.val {} ? AND typeof(v.val) = 'text')",
                op(*c)
            ));
            args.push(SqlValue::Text(attr.clone()));
            args.push(SqlValue::Text(t.clone()));
        }
        Prefilter::And(parts) | Prefilter::Or(parts) => {
            let and = matches!(filter, Prefilter::And(_));
            let mut operands = Vec::new();
            let mut has_any = Vec::new();
            for part in parts {
                match part {
                    Prefilter::Has(attr) if !and => has_any.push(attr.as_str()),
                    other => operands.push(Operand::Filter(other)),
                }
            }
            if !has_any.is_empty() {
                operands.push(Operand::HasAny(has_any));
            }
            if operands.is_empty() {
                sql.push_str(if and { "1" } else { "0" });
                return;
            }
            balanced_sql(sql, args, &operands, if and { " AND " } else { " OR " });
        }
    }
}

/// Renders operands joined by `joiner` as a balanced tree of parentheses: SQLite
/// parses `a OR b OR c …` into a chain as deep as it is long, and refuses expressions
/// deeper than 1000, while a balanced tree of thousands is a dozen levels deep.
fn balanced_sql(
    sql: &mut String,
    args: &mut Vec<SqlValue>,
    operands: &[Operand<'_>],
    joiner: &str,
) {
    match operands {
        [] => {}
        [Operand::Filter(filter)] => prefilter_sql(sql, args, filter),
        [Operand::HasAny(attrs)] => has_any_sql(sql, args, attrs),
        _ => {
            let (left, right) = operands.split_at(operands.len() / 2);
            sql.push('(');
            balanced_sql(sql, args, left, joiner);
            sql.push_str(joiner);
            balanced_sql(sql, args, right, joiner);
            sql.push(')');
        }
    }
}

/// The entity has one of the attributes: one probe of its own `entity_values` rows.
fn has_any_sql(sql: &mut String, args: &mut Vec<SqlValue>, attrs: &[&str]) {
    sql.push_str("EXISTS (SELECT 1 FROM entity_values v WHERE v.seq = e.seq AND v.attr ");
    if let [attr] = attrs {
        sql.push_str("= ?)");
        args.push(SqlValue::Text((*attr).to_owned()));
    } else {
        sql.push_str("IN (");
        push_list(sql, args, attrs.iter().map(|a| (*a).to_owned()).collect());
        sql.push_str("))");
    }
}

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
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM entities WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.name(), id], |row| row.get(0))
                .optional()
        })
        .map_err(StoreError::backend)?;
    doc.as_deref().map(decode).transpose()
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
        // The history is encoded here too, off the writer thread.
        let now = temporal::now();
        let head = temporal::Head::of(&entity, false);
        let history = temporal::HistoryRows::new(&instances_of_change(None, Some(&entity), now));
        let subscribed = self.writer.subscribed_tenants();
        self.writer
            .run_signalling(move |tx| {
                if writer::seq_of(tx, &tenant, rows.id())?.is_some() {
                    return Err(StoreError::AlreadyExists(rows.id().to_owned()));
                }
                writer::ensure_tenant(tx, &tenant)?;
                writer::put_entity(tx, &tenant, &rows, None)?;
                temporal::record(tx, &tenant, &head, &history, now)?;
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
        let modifications: Vec<_> = modifications
            .into_iter()
            .map(|m| {
                let given = m.history.as_deref().map(temporal::HistoryRows::given);
                (m.entity_id, m.apply, given)
            })
            .collect();
        self.writer
            .run_signalling(move |tx| {
                let now = temporal::now();
                let mut results = Vec::with_capacity(modifications.len());
                let mut wrote = false;
                // Whether a change row was logged: the dispatcher is then woken.
                let mut logged = false;
                for (id, apply, given) in modifications {
                    let id = &id;
                    // The stored text is kept as the change log's `before`.
                    let (seq, stored) = writer::stored(tx, &tenant, id)?.unzip();
                    let current = stored.as_deref().map(decode).transpose()?;
                    // `apply` consumes the entity: a copy is kept only to compute the
                    // change when the modification carries no history of its own.
                    let before = if given.is_none() {
                        current.clone()
                    } else {
                        None
                    };
                    let outcome = apply(current);
                    match &outcome {
                        Ok(Write::Put(entity)) => {
                            wrote = true;
                            let rows = writer::EntityRows::new(entity);
                            writer::put_entity(tx, &tenant, &rows, seq)?;
                            if subscribed.check(tx, &tenant)? {
                                logged = true;
                                let before = stored.as_deref();
                                writer::log_change(tx, &tenant, id, before, Some(rows.doc()))?;
                            }
                            let history = given.unwrap_or_else(|| {
                                let change =
                                    instances_of_change(before.as_ref(), Some(entity), now);
                                temporal::HistoryRows::new(&change)
                            });
                            let head = temporal::Head::of(entity, false);
                            temporal::record(tx, &tenant, &head, &history, now)?;
                        }
                        Ok(Write::Delete) => {
                            wrote = true;
                            if let Some(seq) = seq {
                                writer::delete_seq(tx, seq)?;
                                if subscribed.check(tx, &tenant)? {
                                    logged = true;
                                    writer::log_change(tx, &tenant, id, stored.as_deref(), None)?;
                                }
                                // Deleted, so it was stored: `before` is it, unless a
                                // carried history made the copy needless.
                                let before = match before {
                                    Some(before) => before,
                                    None => stored
                                        .as_deref()
                                        .map(decode)
                                        .transpose()?
                                        .ok_or_else(|| StoreError::NotFound(id.clone()))?,
                                };
                                let history = given.unwrap_or_else(|| {
                                    let change = instances_of_change(Some(&before), None, now);
                                    temporal::HistoryRows::new(&change)
                                });
                                let head = temporal::Head::of(&before, true);
                                temporal::record(tx, &tenant, &head, &history, now)?;
                            }
                        }
                        Ok(Write::Unchanged) | Err(_) => {}
                    }
                    results.push(outcome);
                }
                if wrote {
                    writer::ensure_tenant(tx, &tenant)?;
                }
                Ok((results, logged))
            })
            .await
    }

    async fn query_entities(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
    ) -> Result<EntityPage, StoreError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.read(move |conn| {
            let mut page = EntityPage::default();
            let mut seen = 0usize;
            let end = query.offset.saturating_add(query.limit);
            scan(conn, &tenant, &query, |_, entity| {
                if seen >= query.offset && seen < end {
                    page.entities.push(entity);
                }
                seen += 1;
                // Without a count, there is no need to read past the page.
                query.count || seen < end
            })?;
            if query.count {
                page.total = Some(seen as u64);
            }
            Ok(page)
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
                scan(tx, &tenant, &query, |seq, entity| {
                    doomed.push((seq, entity));
                    true
                })?;
                for (seq, entity) in &doomed {
                    writer::delete_seq(tx, *seq)?;
                    if logged {
                        let before = store::doc::entity_doc_text(entity);
                        writer::log_change(tx, &tenant, &entity.id, Some(&before), None)?;
                    }
                    let history =
                        temporal::HistoryRows::new(&instances_of_change(Some(entity), None, now));
                    temporal::record(
                        tx,
                        &tenant,
                        &temporal::Head::of(entity, true),
                        &history,
                        now,
                    )?;
                }
                Ok((doomed.len() as u64, logged && !doomed.is_empty()))
            })
            .await
    }

    async fn type_stats(&self, tenant: &Tenant) -> Result<Vec<TypeStats>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |conn| {
            let mut by_type: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
            scan(conn, &tenant, &EntityQuery::default(), |_, entity| {
                for t in &entity.types {
                    let (count, attrs) = by_type.entry(t.clone()).or_default();
                    *count += 1;
                    attrs.extend(entity.attributes.keys().cloned());
                }
                true
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
            scan(conn, &tenant, &EntityQuery::default(), |_, entity| {
                for (name, instances) in &entity.attributes {
                    let (count, kinds, types) = by_attr.entry(name.clone()).or_default();
                    *count += 1;
                    kinds.extend(instances.iter().map(|a| a.value.kind_name().to_owned()));
                    types.extend(entity.types.iter().cloned());
                }
                true
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
