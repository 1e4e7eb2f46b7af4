//! The PostgreSQL (with PostGIS) backend of renkei's storage interface, for
//! deployments with several broker nodes sharing one database. Entities are kept as
//! the JSON document of [`store::doc`] in a `jsonb` column, with the columns SQL
//! filters on (types, scopes, the `location` geometry) beside it, and the comparable
//! attribute values in `entity_values` (see `index`). Filtering that SQL can decide
//! exactly runs in the database on its indexes; `q` and geo-queries are narrowed there
//! by prefilters that may let through non-matches, and `ngsi_ld::query::eval` has the
//! last word on the rows SQL let through, read in `seq` order a chunk at a time.
//!
//! Read-modify-write runs under `SELECT … FOR UPDATE`, so concurrent modifications of
//! one entity from any number of nodes serialise instead of losing updates.

mod applications;
mod catalog;
mod datastore;
mod filter;
mod harvest;
mod identity;
mod index;
mod migrations;
mod registrations;
mod subscriptions;
mod temporal;
pub mod testing;
mod upkeep;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use filter::Narrowing;
use futures_util::{pin_mut, TryStreamExt};
use index::EntityIndex;
use ngsi_ld::model::Entity;
use ngsi_ld::query::eval::Matcher;
use ngsi_ld::query::EntityQuery;
use ngsi_ld::temporal::instances_of_change;
use ngsi_ld::NgsiError;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};
use store::doc::{doc_to_entity, entity_to_doc};
use store::{
    AttributeStats, ContextKind, EntityPage, EntityStore, Modification, StoreError, StoredContext,
    Tenant, TypeStats, Write,
};
use temporal::Recorded;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

/// How many connections one node keeps open at most.
const POOL_SIZE: usize = 16;

/// How many candidate rows the first round trip of an inexact query reads at most; each
/// further one reads four times as many, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 64;
const MAX_CHUNK: usize = 4096;

/// A storage backend on a PostgreSQL database with the PostGIS extension.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    upkeep: Arc<upkeep::Upkeep>,
    /// Woken after a commit that logged entity changes or queued notifications
    /// (`SubscriptionStore::activity`); shared by every clone of the store.
    activity: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's configuration holds the password; never print it.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// What the backend found wrong outside the driver: a URL it cannot use, a stored
/// row it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("invalid PostgreSQL URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("stored entity {id} in tenant {tenant:?} is unreadable: {reason}")]
    CorruptEntity {
        tenant: String,
        id: String,
        reason: String,
    },
    #[error("stored history of {id} in tenant {tenant:?} is unreadable: {reason}")]
    CorruptHistory {
        tenant: String,
        id: String,
        reason: String,
    },
    #[error("stored context {id} has unknown kind {kind:?}")]
    UnknownContextKind { id: String, kind: String },
}

fn backend(err: tokio_postgres::Error) -> StoreError {
    StoreError::backend(err)
}

fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StoreError::backend(PostgresError::InvalidUrl(e)))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and brings
    /// its schema up to date.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Self::connect_config(parse_url(url)?).await
    }

    /// [`connect`](Self::connect) with an already parsed configuration.
    pub async fn connect_config(
        config: tokio_postgres::Config,
    ) -> Result<PostgresStore, StoreError> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::backend(PostgresError::Connect(e.to_string())))?;
        let store = PostgresStore {
            pool,
            upkeep: upkeep::Upkeep::new(),
            activity: Arc::new(tokio::sync::Notify::new()),
        };
        let mut client = store.client().await?;
        migrations::run(&mut client).await?;
        Ok(store)
    }

    /// Brings the schema of the database at `url` up to date without keeping a pool
    /// (for a deployment step run before the nodes start).
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let config = parse_url(url)?;
        let (mut client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::backend(PostgresError::Connect(e.to_string())))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL migration connection failed");
            }
        });
        let result = migrations::run(&mut client).await;
        drop(client);
        // The connection task ends once the client is gone; a failure there was
        // already reported through the migration's own result.
        let _ = driver.await;
        result
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::backend(PostgresError::Connect(e.to_string())))
    }
}

/// The stored row of an entity: its document, the columns SQL filters on, and its
/// query index rows.
struct EntityRow {
    types: Vec<String>,
    scopes: Vec<String>,
    doc: serde_json::Value,
    index: EntityIndex,
}

impl EntityRow {
    fn of(entity: &Entity) -> EntityRow {
        EntityRow {
            types: entity.types.clone(),
            scopes: entity.scopes.clone(),
            doc: entity_to_doc(entity),
            index: EntityIndex::of(entity),
        }
    }
}

/// The entity a row's `doc` column holds, decoded in one pass from the JSON text.
fn read_entity(tenant: &Tenant, row: &Row) -> Result<Entity, StoreError> {
    let JsonText(text) = row.try_get("doc").map_err(backend)?;
    store::doc::decode_entity(text).map_err(|e| {
        let doc = serde_json::from_str(text).ok();
        corrupt_entity(tenant, doc.as_ref(), e)
    })
}

/// The stored document of an entity and the entity it encodes (the document is what
/// the change log keeps).
fn read_doc(tenant: &Tenant, row: &Row) -> Result<(serde_json::Value, Entity), StoreError> {
    let doc: serde_json::Value = row.try_get("doc").map_err(backend)?;
    let entity = doc_to_entity(&doc).map_err(|e| corrupt_entity(tenant, Some(&doc), e))?;
    Ok((doc, entity))
}

fn corrupt_entity(
    tenant: &Tenant,
    doc: Option<&serde_json::Value>,
    reason: impl std::fmt::Display,
) -> StoreError {
    let id = doc
        .and_then(|doc| doc.get("id"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("(no id)")
        .to_owned();
    StoreError::backend(PostgresError::CorruptEntity {
        tenant: tenant.name().to_owned(),
        id,
        reason: reason.to_string(),
    })
}

/// A `json` or `jsonb` column as the JSON text it holds, borrowed from the row, for
/// the one-pass decoder ([`store::doc::decode_entity`]): reading it as a
/// `serde_json::Value` first and converting that cost as much again.
struct JsonText<'a>(&'a str);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText<'a> {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary form is a version byte (1) followed by the text.
        let text = if *ty == tokio_postgres::types::Type::JSONB {
            match raw.split_first() {
                Some((1, text)) => text,
                _ => return Err("unsupported jsonb binary format version".into()),
            }
        } else {
            raw
        };
        Ok(JsonText(std::str::from_utf8(text)?))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        matches!(
            *ty,
            tokio_postgres::types::Type::JSON | tokio_postgres::types::Type::JSONB
        )
    }
}

async fn ensure_tenant(
    client: &tokio_postgres::Transaction<'_>,
    tenant: &Tenant,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO tenants (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            &[&tenant.name()],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// How an entity row is written: created (failing if the id is taken) or created or
/// replaced.
#[derive(Clone, Copy)]
enum WriteMode {
    Insert,
    Upsert,
}

/// One statement writing an entity's row and its `entity_values` rows (parameters
/// in the order of [`write_params`]): the data-modifying parts all see the snapshot
/// from before it, so the `DELETE` removes only a replaced entity's old index rows,
/// and the foreign key is checked at its end, when the entity row exists. Fixed text,
/// built once per mode, so that it is prepared once per connection.
fn write_sql(mode: WriteMode) -> &'static str {
    static INSERT: LazyLock<String> = LazyLock::new(|| build_write_sql(WriteMode::Insert));
    static UPSERT: LazyLock<String> = LazyLock::new(|| build_write_sql(WriteMode::Upsert));
    match mode {
        WriteMode::Insert => &INSERT,
        WriteMode::Upsert => &UPSERT,
    }
}

fn build_write_sql(mode: WriteMode) -> String {
    let location = index::location_sql(6, 7);
    let conflict = match mode {
        WriteMode::Insert => "",
        // A replaced entity keeps its place in creation order (`seq`).
        WriteMode::Upsert => {
            "ON CONFLICT (tenant, id) DO UPDATE SET types = EXCLUDED.types,
                 scopes = EXCLUDED.scopes, doc = EXCLUDED.doc, location = EXCLUDED.location,
                 modified_at = now()"
        }
    };
    format!(
        "WITH written AS (
             INSERT INTO entities (tenant, id, types, scopes, doc, location)
             VALUES ($1, $2, $3, $4, $5, {location})
             {conflict}
             RETURNING seq
         ), cleared AS (
             DELETE FROM entity_values WHERE seq IN (SELECT seq FROM written)
         )
         INSERT INTO entity_values (seq, attr, num, txt)
         SELECT written.seq, u.attr, u.num, u.txt
         FROM written, unnest($11::text[], $12::float8[], $13::text[]) AS u (attr, num, txt)"
    )
}

async fn write_entity(
    tx: &deadpool_postgres::Transaction<'_>,
    mode: WriteMode,
    tenant: &Tenant,
    entity: &Entity,
) -> Result<(), tokio_postgres::Error> {
    let row = EntityRow::of(entity);
    let name = tenant.name();
    let statement = tx.prepare_cached(write_sql(mode)).await?;
    tx.execute(&statement, &write_params(&name, &entity.id, &row))
        .await
        .map(|_| ())
}

/// Sends the writes of a batch at once, pipelined in their order: `written` names,
/// by result index, every entity put (its row and index rows are written) or
/// deleted.
async fn write_in_order(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &Tenant,
    results: &[Result<Write, NgsiError>],
    written: &[(String, Option<serde_json::Value>, usize)],
) -> Result<(), StoreError> {
    let rows: Vec<Option<EntityRow>> = written
        .iter()
        .map(|(_, _, index)| match results.get(*index) {
            Some(Ok(Write::Put(entity))) => Some(EntityRow::of(entity)),
            _ => None,
        })
        .collect();
    if rows.iter().any(Option::is_some) {
        ensure_tenant(tx, tenant).await?;
    }
    let upsert = tx
        .prepare_cached(write_sql(WriteMode::Upsert))
        .await
        .map_err(backend)?;
    let delete = tx
        .prepare_cached("DELETE FROM entities WHERE tenant = $1 AND id = $2")
        .await
        .map_err(backend)?;
    let name = tenant.name();
    let params: Vec<Vec<SqlParam<'_>>> = written
        .iter()
        .zip(&rows)
        .map(|((id, _, _), row)| match row {
            Some(row) => write_params(&name, id, row).to_vec(),
            None => vec![&name as SqlParam<'_>, id],
        })
        .collect();
    let writes = rows.iter().zip(&params).map(|(row, params)| {
        let statement = if row.is_some() { &upsert } else { &delete };
        tx.execute(statement, params)
    });
    futures_util::future::try_join_all(writes)
        .await
        .map_err(backend)?;
    Ok(())
}

type SqlParam<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// The parameters of [`write_sql`] for an entity's row.
fn write_params<'a>(tenant: &'a &'a str, id: &'a String, row: &'a EntityRow) -> [SqlParam<'a>; 13] {
    let [min_lon, min_lat, max_lon, max_lat] = &row.index.bbox;
    [
        tenant,
        id,
        &row.types,
        &row.scopes,
        &row.doc,
        &row.index.geojson,
        min_lon,
        min_lat,
        max_lon,
        max_lat,
        &row.index.attrs,
        &row.index.nums,
        &row.index.txts,
    ]
}

/// Records the deletion of each of `gone` (deleted in `tx`) in its history.
async fn record_deletions(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &Tenant,
    gone: &[Entity],
) -> Result<(), StoreError> {
    let now = temporal::now();
    let history = gone
        .iter()
        .map(|entity| Recorded {
            id: entity.id.clone(),
            types: entity.types.clone(),
            scopes: entity.scopes.clone(),
            deleted: true,
            instances: instances_of_change(Some(entity), None, now),
            replaces: false,
        })
        .collect();
    temporal::record(tx, tenant, now, history).await
}

fn context_from_row(row: &Row) -> Result<StoredContext, StoreError> {
    let id: String = row.try_get("id").map_err(backend)?;
    let kind_text: String = row.try_get("kind").map_err(backend)?;
    let kind = ContextKind::parse(&kind_text).ok_or_else(|| {
        StoreError::backend(PostgresError::UnknownContextKind {
            id: id.clone(),
            kind: kind_text.clone(),
        })
    })?;
    Ok(StoredContext {
        url: row.try_get("url").map_err(backend)?,
        kind,
        body: row.try_get("body").map_err(backend)?,
        created_at: row
            .try_get::<_, DateTime<Utc>>("created_at")
            .map_err(backend)?,
        id,
    })
}

/// Sorted, without duplicates, in Rust's (byte) order rather than the database
/// collation's, so that every backend lists names the same way.
fn sorted(names: Vec<Option<String>>) -> Vec<String> {
    names
        .into_iter()
        .flatten()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn count(row: &Row, column: &str) -> Result<u64, StoreError> {
    let n: i64 = row.try_get(column).map_err(backend)?;
    // A count is never negative; a negative one would be a driver bug, read as 0.
    Ok(u64::try_from(n).unwrap_or(0))
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl EntityStore for PostgresStore {
    async fn tenant_exists(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        if tenant.is_default() {
            return Ok(true);
        }
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = $1)",
                &[&tenant.name()],
            )
            .await
            .map_err(backend)?;
        row.try_get(0).map_err(backend)
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT name FROM tenants", &[])
            .await
            .map_err(backend)?;
        let mut names = rows
            .iter()
            .map(|row| row.try_get::<_, String>(0).map(Some))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        // The default tenant exists whether or not its row does.
        names.push(Some(Tenant::DEFAULT_NAME.to_owned()));
        Ok(sorted(names).into_iter().map(Tenant::named).collect())
    }

    async fn create_entity(&self, tenant: &Tenant, entity: Entity) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        ensure_tenant(&tx, tenant).await?;
        match write_entity(&tx, WriteMode::Insert, tenant, &entity).await {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(StoreError::AlreadyExists(entity.id));
            }
            other => other.map_err(backend)?,
        }
        let now = temporal::now();
        let history = Recorded {
            id: entity.id.clone(),
            types: entity.types.clone(),
            scopes: entity.scopes.clone(),
            deleted: false,
            instances: instances_of_change(None, Some(&entity), now),
            replaces: false,
        };
        temporal::record(&tx, tenant, now, vec![history]).await?;
        let logged = subscriptions::tenant_has_subscriptions(&*tx, tenant).await?;
        if logged {
            let change = (entity.id.clone(), None, Some(entity_to_doc(&entity)));
            subscriptions::log_changes(&tx, tenant, vec![change]).await?;
        }
        tx.commit().await.map_err(backend)?;
        // Only once committed: a woken dispatcher must find the change.
        if logged {
            self.activity.notify_one();
        }
        self.upkeep.note_writes(&self.pool, 1);
        Ok(())
    }

    async fn get_entity(&self, tenant: &Tenant, id: &str) -> Result<Option<Entity>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT doc FROM entities WHERE tenant = $1 AND id = $2",
                &[&tenant.name(), &id],
            )
            .await
            .map_err(backend)?
            .map(|row| read_entity(tenant, &row))
            .transpose()
    }

    /// Reads every entity the batch names in one statement (locking their rows),
    /// applies the modifications in order in memory (a later item on the same entity
    /// sees what an earlier one made of it), then sends every write at once
    /// (pipelined, in order), so that a batch of 1,000 costs a few round trips rather
    /// than several per entity. A refusal writes nothing, so items need no savepoint
    /// of their own; a failing write fails the whole batch, and nothing of it is
    /// committed.
    async fn modify(
        &self,
        tenant: &Tenant,
        modifications: Vec<Modification>,
    ) -> Result<Vec<Result<Write, NgsiError>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let ids: Vec<&str> = modifications.iter().map(|m| m.entity_id.as_str()).collect();
        // Each named entity as stored (document and entity), or as an earlier item
        // of this batch left it; absent when there is none.
        let mut stored = HashMap::new();
        for row in tx
            .query(
                "SELECT doc FROM entities WHERE tenant = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
                &[&tenant.name(), &ids],
            )
            .await
            .map_err(backend)?
        {
            let (doc, entity) = read_doc(tenant, &row)?;
            stored.insert(entity.id.clone(), (doc, entity));
        }
        // How many items of the batch are still to come for each entity: only those
        // still named need what this one writes kept in `stored`.
        let mut pending: HashMap<String, usize> = HashMap::new();
        for id in &ids {
            *pending.entry((*id).to_owned()).or_default() += 1;
        }
        let mut results = Vec::with_capacity(modifications.len());
        // For the change log, should the tenant have subscriptions: each written
        // entity's id, stored document and the index of its result (the new entity).
        let mut written: Vec<(String, Option<serde_json::Value>, usize)> = Vec::new();
        // The history of the items written, recorded together at the end (one
        // statement) at one instant.
        let now = temporal::now();
        let mut history: Vec<Recorded> = Vec::new();
        for modification in modifications {
            let id = modification.entity_id;
            let later = pending.get_mut(&id).map_or(0, |n| {
                *n -= 1;
                *n
            });
            let (before, current) = match stored.remove(&id) {
                Some((doc, entity)) => (Some(doc), Some(entity)),
                None => (None, None),
            };
            // `apply` consumes the stored entity: the copy gives what changed, the
            // deleted entity's types and scopes, and what later items see when this
            // one writes nothing.
            let previous = current.clone();
            // Given instances replace those observed at the same instant.
            let replaces = modification.history.is_some();
            let write = match (modification.apply)(current) {
                Ok(write) => write,
                Err(refusal) => {
                    if let (Some(doc), Some(entity)) = (before, previous) {
                        stored.insert(id, (doc, entity));
                    }
                    results.push(Err(refusal));
                    continue;
                }
            };
            match (&write, previous) {
                (Write::Put(entity), previous) => {
                    history.push(Recorded {
                        id: entity.id.clone(),
                        types: entity.types.clone(),
                        scopes: entity.scopes.clone(),
                        deleted: false,
                        instances: modification.history.unwrap_or_else(|| {
                            instances_of_change(previous.as_ref(), Some(entity), now)
                        }),
                        replaces,
                    });
                    if later > 0 {
                        stored.insert(id.clone(), (entity_to_doc(entity), entity.clone()));
                    }
                    written.push((id, before, results.len()));
                }
                (Write::Delete, Some(gone)) => {
                    history.push(Recorded {
                        id: id.clone(),
                        types: gone.types.clone(),
                        scopes: gone.scopes.clone(),
                        deleted: true,
                        instances: modification
                            .history
                            .unwrap_or_else(|| instances_of_change(Some(&gone), None, now)),
                        replaces,
                    });
                    written.push((id, before, results.len()));
                }
                // Nothing to delete.
                (Write::Delete, None) => {}
                (Write::Unchanged, previous) => {
                    if let (Some(doc), Some(entity)) = (before, previous) {
                        stored.insert(id, (doc, entity));
                    }
                }
            }
            results.push(Ok(write));
        }
        write_in_order(&tx, tenant, &results, &written).await?;
        temporal::record(&tx, tenant, now, history).await?;
        let logged =
            !written.is_empty() && subscriptions::tenant_has_subscriptions(&*tx, tenant).await?;
        if logged {
            let changes = written
                .into_iter()
                .map(|(id, before, index)| {
                    let after = match results.get(index) {
                        Some(Ok(Write::Put(entity))) => Some(entity_to_doc(entity)),
                        _ => None,
                    };
                    (id, before, after)
                })
                .collect();
            subscriptions::log_changes(&tx, tenant, changes).await?;
        }
        tx.commit().await.map_err(backend)?;
        if logged {
            self.activity.notify_one();
        }
        let written = results
            .iter()
            .filter(|r| matches!(r, Ok(Write::Put(_))))
            .count();
        self.upkeep
            .note_writes(&self.pool, u64::try_from(written).unwrap_or(u64::MAX));
        Ok(results)
    }

    async fn query_entities(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
    ) -> Result<EntityPage, StoreError> {
        let client = self.client().await?;
        let mut narrowing = Narrowing::new(tenant.name(), query);
        if narrowing.exact {
            // SQL selects exactly the matches: count and page there, on the indexes.
            let total = if query.count {
                let sql = format!(
                    "SELECT count(*) AS n FROM entities e WHERE {}",
                    narrowing.condition
                );
                let row = client
                    .query_one(&sql, &narrowing.param_refs())
                    .await
                    .map_err(backend)?;
                Some(count(&row, "n")?)
            } else {
                None
            };
            let mut entities = Vec::new();
            if query.limit > 0 {
                let limit = narrowing.bind(Box::new(to_i64(query.limit)));
                let offset = narrowing.bind(Box::new(to_i64(query.offset)));
                let sql = format!(
                    "SELECT e.doc FROM entities e WHERE {} ORDER BY e.seq LIMIT {limit} OFFSET {offset}",
                    narrowing.condition
                );
                for row in client
                    .query(&sql, &narrowing.param_refs())
                    .await
                    .map_err(backend)?
                {
                    entities.push(read_entity(tenant, &row)?);
                }
            }
            return Ok(EntityPage { entities, total });
        }
        // The candidates in creation order, a chunk at a time: with a LIMIT the planner
        // can walk `seq` and stop early instead of sorting every candidate, which
        // matters when a page is all that is wanted of a common match.
        let after = narrowing.param_count() + 1;
        let chunk_size = after + 1;
        let sql = format!(
            "SELECT e.seq, e.doc FROM entities e WHERE {} AND e.seq > ${after}
             ORDER BY e.seq LIMIT ${chunk_size}",
            narrowing.condition
        );
        let matcher = Matcher::new(query);
        let end = query.offset.saturating_add(query.limit);
        let mut matched = 0usize;
        let mut entities = Vec::new();
        let mut last_seq = 0i64;
        // Without a count, the first chunk need hold no more than the page: a prefilter
        // that lets through only matches then fetches (and decodes) nothing more.
        let mut chunk = if query.count {
            FIRST_CHUNK
        } else {
            end.clamp(1, FIRST_CHUNK)
        };
        'chunks: loop {
            let fetched = {
                let limit = to_i64(chunk);
                let mut params = narrowing.param_refs();
                params.push(&last_seq);
                params.push(&limit);
                client.query(&sql, &params).await.map_err(backend)?
            };
            for row in &fetched {
                last_seq = row.try_get("seq").map_err(backend)?;
                let entity = read_entity(tenant, row)?;
                if !matcher.matches(&entity) {
                    continue;
                }
                if matched >= query.offset && matched < end {
                    entities.push(entity);
                }
                matched += 1;
                if !query.count && matched >= end {
                    // The page is full and nobody asked how many more there are.
                    break 'chunks;
                }
            }
            if fetched.len() < chunk {
                break;
            }
            chunk = chunk.saturating_mul(4).min(MAX_CHUNK);
        }
        let total = query
            .count
            .then(|| u64::try_from(matched).unwrap_or(u64::MAX));
        Ok(EntityPage { entities, total })
    }

    async fn delete_matching(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let narrowing = Narrowing::new(tenant.name(), query);
        if narrowing.exact {
            let logged = subscriptions::tenant_has_subscriptions(&**client, tenant).await?;
            let tx = client.transaction().await.map_err(backend)?;
            // The deleted documents come back for the deletion records of the history
            // (and, should the tenant have subscriptions, are logged in the same
            // statement, under the change log's lock).
            let sql = if logged {
                subscriptions::lock_change_log(&tx).await?;
                format!(
                    "WITH gone AS (
                         DELETE FROM entities e WHERE {} RETURNING e.tenant, e.id, e.doc, e.seq
                     ), logged AS (
                         INSERT INTO entity_changes (tenant, entity_id, before)
                         SELECT tenant, id, doc FROM gone ORDER BY seq
                     )
                     SELECT doc FROM gone ORDER BY seq",
                    narrowing.condition
                )
            } else {
                format!(
                    "DELETE FROM entities e WHERE {} RETURNING e.doc",
                    narrowing.condition
                )
            };
            let rows = tx
                .query(&sql, &narrowing.param_refs())
                .await
                .map_err(backend)?;
            let mut gone = Vec::with_capacity(rows.len());
            for row in &rows {
                gone.push(read_entity(tenant, row)?);
            }
            record_deletions(&tx, tenant, &gone).await?;
            tx.commit().await.map_err(backend)?;
            if logged && !gone.is_empty() {
                self.activity.notify_one();
            }
            return Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX));
        }
        // Lock the candidates while deciding, so what is deleted is what matched.
        let tx = client.transaction().await.map_err(backend)?;
        let sql = format!(
            "SELECT e.doc FROM entities e WHERE {} ORDER BY e.seq FOR UPDATE",
            narrowing.condition
        );
        let matcher = Matcher::new(query);
        let mut doomed = Vec::new();
        {
            let rows = tx
                .query_raw(&sql, narrowing.param_refs())
                .await
                .map_err(backend)?;
            pin_mut!(rows);
            while let Some(row) = rows.try_next().await.map_err(backend)? {
                let (doc, entity) = read_doc(tenant, &row)?;
                if matcher.matches(&entity) {
                    doomed.push((entity, doc));
                }
            }
        }
        let ids: Vec<&str> = doomed
            .iter()
            .map(|(entity, _)| entity.id.as_str())
            .collect();
        let deleted = tx
            .execute(
                "DELETE FROM entities WHERE tenant = $1 AND id = ANY ($2)",
                &[&tenant.name(), &ids],
            )
            .await
            .map_err(backend)?;
        let (entities, docs): (Vec<Entity>, Vec<serde_json::Value>) = doomed.into_iter().unzip();
        record_deletions(&tx, tenant, &entities).await?;
        let logged =
            !entities.is_empty() && subscriptions::tenant_has_subscriptions(&*tx, tenant).await?;
        if logged {
            let changes = entities
                .into_iter()
                .zip(docs)
                .map(|(entity, doc)| (entity.id, Some(doc), None))
                .collect();
            subscriptions::log_changes(&tx, tenant, changes).await?;
        }
        tx.commit().await.map_err(backend)?;
        if logged {
            self.activity.notify_one();
        }
        Ok(deleted)
    }

    async fn type_stats(&self, tenant: &Tenant) -> Result<Vec<TypeStats>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT t.type_iri, count(DISTINCT e.id) AS n, array_agg(DISTINCT a.attr) AS attrs
                 FROM entities e
                 CROSS JOIN LATERAL unnest(e.types) AS t (type_iri)
                 LEFT JOIN LATERAL jsonb_object_keys(e.doc -> 'attrs') AS a (attr) ON true
                 WHERE e.tenant = $1
                 GROUP BY t.type_iri",
                &[&tenant.name()],
            )
            .await
            .map_err(backend)?;
        let mut stats = rows
            .iter()
            .map(|row| {
                Ok(TypeStats {
                    type_iri: row.try_get("type_iri").map_err(backend)?,
                    entity_count: count(row, "n")?,
                    attributes: sorted(row.try_get("attrs").map_err(backend)?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        stats.sort_by(|a, b| a.type_iri.cmp(&b.type_iri));
        Ok(stats)
    }

    async fn attribute_stats(&self, tenant: &Tenant) -> Result<Vec<AttributeStats>, StoreError> {
        let client = self.client().await?;
        // An instance without `type` is a Property, as `store::doc` reads it.
        let rows = client
            .query(
                "SELECT a.attr, count(DISTINCT e.id) AS n,
                        array_agg(DISTINCT coalesce(i.instance ->> 'type', 'Property')) AS kinds,
                        array_agg(DISTINCT t.type_iri) AS types
                 FROM entities e
                 CROSS JOIN LATERAL jsonb_each(e.doc -> 'attrs') AS a (attr, instances)
                 CROSS JOIN LATERAL jsonb_array_elements(
                     CASE jsonb_typeof(a.instances) WHEN 'array' THEN a.instances ELSE '[]' END
                 ) AS i (instance)
                 LEFT JOIN LATERAL unnest(e.types) AS t (type_iri) ON true
                 WHERE e.tenant = $1
                 GROUP BY a.attr",
                &[&tenant.name()],
            )
            .await
            .map_err(backend)?;
        let mut stats = rows
            .iter()
            .map(|row| {
                Ok(AttributeStats {
                    attribute_iri: row.try_get("attr").map_err(backend)?,
                    entity_count: count(row, "n")?,
                    kinds: sorted(row.try_get("kinds").map_err(backend)?),
                    types: sorted(row.try_get("types").map_err(backend)?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        stats.sort_by(|a, b| a.attribute_iri.cmp(&b.attribute_iri));
        Ok(stats)
    }

    async fn put_context(&self, context: StoredContext) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO contexts (id, url, kind, body, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, kind = EXCLUDED.kind,
                     body = EXCLUDED.body, created_at = EXCLUDED.created_at",
                &[
                    &context.id,
                    &context.url,
                    &context.kind.as_str(),
                    &context.body,
                    &context.created_at,
                ],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_context(&self, id_or_url: &str) -> Result<Option<StoredContext>, StoreError> {
        let client = self.client().await?;
        // An id match wins over a URL match, should one context's id be another's URL.
        client
            .query_opt(
                "SELECT id, url, kind, body, created_at FROM contexts
                 WHERE id = $1 OR url = $1 ORDER BY (id = $1) DESC LIMIT 1",
                &[&id_or_url],
            )
            .await
            .map_err(backend)?
            .map(|row| context_from_row(&row))
            .transpose()
    }

    async fn list_contexts(&self) -> Result<Vec<StoredContext>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id, url, kind, body, created_at FROM contexts ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(context_from_row)
            .collect()
    }

    async fn delete_context(&self, id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM contexts WHERE id = $1", &[&id])
            .await
            .map_err(backend)?;
        Ok(deleted > 0)
    }
}
