//! Entity history on PostgreSQL (the storage of the NGSI-LD temporal API): a head per
//! entity in `temporal_heads`, every attribute instance in `temporal_instances` (the
//! attribute as the document of [`store::doc::attribute_to_doc`], its time properties
//! in columns with a b-tree each, so that a window or lastN read of one attribute is
//! an index range scan), the series (attribute and dataset id) of each entity in
//! `temporal_series`, and the hourly rollups in `temporal_rollups`.
//!
//! The entity writes of `lib.rs` call [`record`] in their own transaction, one
//! statement per write however many instances and entities it records (given
//! instances that replace observations add one set-based delete, and a recount of
//! the series-hours that lost an instance). Rollups grow by upsert as instances are
//! recorded; the edits that remove or change instances recompute the series-hours
//! they touch from the instances left, in the edit's transaction, so the rollups
//! always equal [`HourlyRollup::of_all`] of the history.
//! A missing dataset id is stored as `''` in the key columns (the document keeps the
//! attribute as it was).

use crate::{backend, PostgresError, PostgresStore};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use ngsi_ld::model::Attribute;
use ngsi_ld::temporal::{hour_of, HourlyRollup, TemporalInstance, TimeProperty, TimeRel};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;
use store::doc::{attribute_to_doc, doc_to_attribute};
use store::temporal::{DatasetSelector, HistoryRead, TemporalHead, TemporalStore};
use store::{StoreError, Tenant};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

/// The time of a write, at the precision PostgreSQL keeps (microseconds), so that
/// what is read back equals what was recorded.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// What one entity write adds to the history of its entity.
pub(crate) struct Recorded {
    pub id: String,
    /// The types and scopes of the entity written (or deleted), for the head.
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    /// Whether the write deleted the entity.
    pub deleted: bool,
    pub instances: Vec<TemporalInstance>,
    /// Whether the instances were given by the write (`Modification::history`) rather
    /// than computed from a diff: then each of them with an `observedAt` replaces any
    /// instance of the same attribute, dataset id and `observedAt`.
    pub replaces: bool,
}

/// What a given instance replaces by: (entity id, attribute, dataset key, observedAt).
type ObservationKey = (String, String, String, DateTime<Utc>);

fn observation_key(id: &str, instance: &TemporalInstance) -> Option<ObservationKey> {
    instance.attribute.observed_at.map(|observed| {
        (
            id.to_owned(),
            instance.name.clone(),
            dataset_key(instance.attribute.dataset_id.as_deref()).to_owned(),
            observed,
        )
    })
}

/// The key column value of a dataset id.
fn dataset_key(dataset_id: Option<&str>) -> &str {
    dataset_id.unwrap_or("")
}

fn count_to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Rollup rows as the column arrays of [`UPSERT_ROLLUPS`]'s parameters.
#[derive(Default)]
struct RollupColumns {
    entity_ids: Vec<String>,
    attrs: Vec<String>,
    datasets: Vec<String>,
    hours: Vec<DateTime<Utc>>,
    counts: Vec<i64>,
    numeric_counts: Vec<i64>,
    sums: Vec<f64>,
    sums_sq: Vec<f64>,
    mins: Vec<Option<f64>>,
    maxes: Vec<Option<f64>>,
}

impl RollupColumns {
    fn push(&mut self, entity_id: &str, rollup: HourlyRollup) {
        self.entity_ids.push(entity_id.to_owned());
        self.datasets
            .push(dataset_key(rollup.dataset_id.as_deref()).to_owned());
        self.attrs.push(rollup.name);
        self.hours.push(rollup.hour);
        self.counts.push(count_to_i64(rollup.count));
        self.numeric_counts.push(count_to_i64(rollup.numeric_count));
        self.sums.push(rollup.sum);
        self.sums_sq.push(rollup.sum_sq);
        self.mins.push(rollup.min);
        self.maxes.push(rollup.max);
    }

    fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.entity_ids,
            &self.attrs,
            &self.datasets,
            &self.hours,
            &self.counts,
            &self.numeric_counts,
            &self.sums,
            &self.sums_sq,
            &self.mins,
            &self.maxes,
        ]
    }
}

/// Adds rollups (parameters from `$first`, the tenant is `$1`) to those stored,
/// merging as [`HourlyRollup::merge`] does (`LEAST`/`GREATEST` skip NULLs as `merge`
/// skips a missing extreme). The rows given have distinct keys.
fn upsert_rollups_sql(first: usize) -> String {
    let p = |k: usize| format!("${}", first + k);
    format!(
        "INSERT INTO temporal_rollups AS t (tenant, entity_id, attr, dataset_id, hour, count,
             numeric_count, sum, sum_sq, min, max)
         SELECT $1, r.* FROM unnest({}::text[], {}::text[], {}::text[], {}::timestamptz[],
             {}::int8[], {}::int8[], {}::float8[], {}::float8[], {}::float8[], {}::float8[])
             AS r (entity_id, attr, dataset_id, hour, count, numeric_count, sum, sum_sq, min, max)
         ON CONFLICT (tenant, entity_id, attr, dataset_id, hour) DO UPDATE SET
             count = t.count + EXCLUDED.count,
             numeric_count = t.numeric_count + EXCLUDED.numeric_count,
             sum = t.sum + EXCLUDED.sum,
             sum_sq = t.sum_sq + EXCLUDED.sum_sq,
             min = LEAST(t.min, EXCLUDED.min),
             max = GREATEST(t.max, EXCLUDED.max)",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9)
    )
}

/// The statement [`record`] runs: fixed text, built once, so that it is prepared
/// once per connection.
fn record_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH instances AS (
                 INSERT INTO temporal_instances (tenant, entity_id, attr, dataset_id, instance_id,
                     observed_at, created_at, modified_at, deleted_at, doc)
                 SELECT $1, u.entity_id, u.attr, u.dataset_id, u.instance_id, u.observed_at,
                     u.created_at, u.modified_at, u.deleted_at, u.doc
                 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                     $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::jsonb[])
                     WITH ORDINALITY AS u (entity_id, attr, dataset_id, instance_id, observed_at,
                         created_at, modified_at, deleted_at, doc, ord)
                 ORDER BY u.ord
             ), series AS (
                 INSERT INTO temporal_series (tenant, entity_id, attr, dataset_id)
                 SELECT DISTINCT $1, u.entity_id, u.attr, u.dataset_id
                 FROM unnest($2::text[], $3::text[], $4::text[]) AS u (entity_id, attr, dataset_id)
                 ON CONFLICT DO NOTHING
             ), rollups AS (
                 {}
             )
             INSERT INTO temporal_heads AS h (tenant, id, types, scopes, created_at, modified_at,
                 deleted_at)
             SELECT $1, w.id, ARRAY(SELECT jsonb_array_elements_text(w.types)),
                 ARRAY(SELECT jsonb_array_elements_text(w.scopes)), $21, $21,
                 CASE WHEN w.deleted THEN $21::timestamptz END
             FROM unnest($22::text[], $23::jsonb[], $24::jsonb[], $25::bool[])
                 AS w (id, types, scopes, deleted)
             ON CONFLICT (tenant, id) DO UPDATE SET
                 types = EXCLUDED.types,
                 scopes = EXCLUDED.scopes,
                 deleted_at = EXCLUDED.deleted_at,
                 modified_at = CASE WHEN EXCLUDED.id = ANY ($26::text[])
                     THEN EXCLUDED.modified_at ELSE h.modified_at END",
            upsert_rollups_sql(11)
        )
    });
    &SQL
}

/// Records the history of entity writes: the instances (in the order given), their
/// series, their rollups and each entity's head (created on its first write, its
/// types, scopes and `deletedAt` those of the latest write, its `modifiedAt` moved
/// only when the write recorded instances), all in one statement. Given instances
/// (see [`Recorded::replaces`]) first remove those they replace, stored or earlier in
/// `writes`, in one more statement; the series-hours that lost an instance are then
/// recomputed from what is held.
pub(crate) async fn record(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &Tenant,
    now: DateTime<Utc>,
    writes: Vec<Recorded>,
) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    // Key bookkeeping only when some write gives its instances: diff-recorded
    // batches (most entity writes) pay nothing for replacement.
    let any_given = writes.iter().any(|w| w.replaces);
    // One head per entity (the latest write's); the instances in write order, with
    // those replaced by a later given instance of the same batch marked dead.
    let mut heads: BTreeMap<String, (Vec<String>, Vec<String>, bool)> = BTreeMap::new();
    let mut pending: Vec<(String, TemporalInstance, bool)> = Vec::new();
    let mut by_key: HashMap<ObservationKey, Vec<usize>> = HashMap::new();
    let mut replacing: BTreeSet<ObservationKey> = BTreeSet::new();
    let mut grown: BTreeSet<String> = BTreeSet::new();
    for write in writes {
        if !write.instances.is_empty() {
            grown.insert(write.id.clone());
        }
        for instance in write.instances {
            if any_given {
                if let Some(key) = observation_key(&write.id, &instance) {
                    let earlier = by_key.entry(key.clone()).or_default();
                    if write.replaces {
                        for k in earlier.drain(..) {
                            if let Some(dead) = pending.get_mut(k) {
                                dead.2 = false;
                            }
                        }
                        replacing.insert(key);
                    }
                    earlier.push(pending.len());
                }
            }
            pending.push((write.id.clone(), instance, true));
        }
        heads.insert(write.id, (write.types, write.scopes, write.deleted));
    }
    // Before the insert, so that only instances stored before this write go.
    let touched = delete_replaced(tx, tenant, replacing).await?;
    // Each entity's instances together: an upsert may not touch one row twice, and
    // rollups of one entity merge first.
    let mut per_entity: BTreeMap<String, Vec<TemporalInstance>> = BTreeMap::new();
    let (mut entity_ids, mut attrs, mut datasets, mut instance_ids) =
        (vec![], vec![], vec![], vec![]);
    let (mut observed, mut created, mut modified, mut deleted, mut docs) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (id, instance, alive) in pending {
        if !alive {
            continue;
        }
        let a = &instance.attribute;
        entity_ids.push(id.clone());
        attrs.push(instance.name.clone());
        datasets.push(dataset_key(a.dataset_id.as_deref()).to_owned());
        instance_ids.push(instance.instance_id.clone());
        observed.push(a.observed_at);
        created.push(a.created_at);
        modified.push(a.modified_at);
        deleted.push(instance.deleted_at);
        docs.push(attribute_to_doc(a));
        per_entity.entry(id).or_default().push(instance);
    }
    let mut rollups = RollupColumns::default();
    for (id, instances) in &per_entity {
        for rollup in HourlyRollup::of_all(instances) {
            rollups.push(id, rollup);
        }
    }
    let grown: Vec<String> = grown.into_iter().collect();
    let mut head_ids = Vec::with_capacity(heads.len());
    let mut head_types = Vec::with_capacity(heads.len());
    let mut head_scopes = Vec::with_capacity(heads.len());
    let mut head_deleted = Vec::with_capacity(heads.len());
    for (id, (types, scopes, gone)) in heads {
        head_ids.push(id);
        head_types.push(serde_json::json!(types));
        head_scopes.push(serde_json::json!(scopes));
        head_deleted.push(gone);
    }
    let name = tenant.name();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &name,
        &entity_ids,
        &attrs,
        &datasets,
        &instance_ids,
        &observed,
        &created,
        &modified,
        &deleted,
        &docs,
    ];
    params.extend(rollups.params());
    params.push(&now);
    params.push(&head_ids);
    params.push(&head_types);
    params.push(&head_scopes);
    params.push(&head_deleted);
    params.push(&grown);
    // Prepared once per connection: planning this statement anew cost PostgreSQL
    // more than running it for a single entity.
    let statement = tx.prepare_cached(record_sql()).await.map_err(backend)?;
    tx.execute(&statement, &params).await.map_err(backend)?;
    // After the insert: the hours recomputed count the replacing instances too, in
    // time order as `of_all` sums them.
    recompute_rollups(tx, tenant, touched).await
}

/// Deletes the stored instances that given instances replace (one statement for the
/// whole write) and returns the series-hours whose rollups counted them.
async fn delete_replaced(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    keys: BTreeSet<ObservationKey>,
) -> Result<BTreeSet<SeriesHour>, StoreError> {
    let mut touched = BTreeSet::new();
    if keys.is_empty() {
        return Ok(touched);
    }
    let mut entity_ids = Vec::with_capacity(keys.len());
    let mut attrs = Vec::with_capacity(keys.len());
    let mut datasets = Vec::with_capacity(keys.len());
    let mut observed = Vec::with_capacity(keys.len());
    for (id, attr, dataset, at) in keys {
        entity_ids.push(id);
        attrs.push(attr);
        datasets.push(dataset);
        observed.push(at);
    }
    // Each key is a range probe of the (tenant, entity_id, attr, observed_at) index.
    let rows = tx
        .query(
            "DELETE FROM temporal_instances i
             USING unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
                 AS k (entity_id, attr, dataset_id, observed_at)
             WHERE i.tenant = $1 AND i.entity_id = k.entity_id AND i.attr = k.attr
                 AND i.observed_at = k.observed_at AND i.dataset_id = k.dataset_id
             RETURNING i.entity_id, i.attr, i.dataset_id, i.observed_at, i.deleted_at",
            &[&tenant.name(), &entity_ids, &attrs, &datasets, &observed],
        )
        .await
        .map_err(backend)?;
    for row in &rows {
        let id: String = row.try_get("entity_id").map_err(backend)?;
        let attr: String = row.try_get("attr").map_err(backend)?;
        touched.extend(series_hour(
            &id,
            &attr,
            row.try_get("dataset_id").map_err(backend)?,
            row.try_get("observed_at").map_err(backend)?,
            row.try_get("deleted_at").map_err(backend)?,
        ));
    }
    Ok(touched)
}

/// The column of a time property.
fn time_column(property: TimeProperty) -> &'static str {
    match property {
        TimeProperty::ObservedAt => "observed_at",
        TimeProperty::CreatedAt => "created_at",
        TimeProperty::ModifiedAt => "modified_at",
        TimeProperty::DeletedAt => "deleted_at",
    }
}

/// An instance from a row with the columns `attr`, `instance_id`, `deleted_at`, `doc`.
fn instance_of(tenant: &Tenant, id: &str, row: &Row) -> Result<TemporalInstance, StoreError> {
    let doc: serde_json::Value = row.try_get("doc").map_err(backend)?;
    let attribute = doc_to_attribute(&doc).map_err(|e| {
        StoreError::backend(PostgresError::CorruptHistory {
            tenant: tenant.name().to_owned(),
            id: id.to_owned(),
            reason: e.to_string(),
        })
    })?;
    Ok(TemporalInstance {
        name: row.try_get("attr").map_err(backend)?,
        instance_id: row.try_get("instance_id").map_err(backend)?,
        attribute,
        deleted_at: row.try_get("deleted_at").map_err(backend)?,
    })
}

fn head_of(row: &Row) -> Result<TemporalHead, StoreError> {
    Ok(TemporalHead {
        id: row.try_get("id").map_err(backend)?,
        types: row.try_get("types").map_err(backend)?,
        scopes: row.try_get("scopes").map_err(backend)?,
        created_at: row.try_get("created_at").map_err(backend)?,
        modified_at: row.try_get("modified_at").map_err(backend)?,
        deleted_at: row.try_get("deleted_at").map_err(backend)?,
    })
}

/// A series-hour whose rollup an edit must recompute: (entity id, attribute, dataset
/// key, hour).
type SeriesHour = (String, String, String, DateTime<Utc>);

/// The series-hour an instance counts in, if it counts in any (see
/// [`HourlyRollup::of`]): given its entity, attribute, dataset key, `observedAt` and
/// `deletedAt`.
fn series_hour(
    id: &str,
    attr: &str,
    dataset: String,
    observed_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
) -> Option<SeriesHour> {
    match (observed_at, deleted_at) {
        (Some(observed), None) => {
            Some((id.to_owned(), attr.to_owned(), dataset, hour_of(observed)))
        }
        _ => None,
    }
}

/// Serialises an edit of an entity's history with the writes of the entity, which
/// lock its row before recording: a write's rollup upsert then never lands between
/// an edit's recount and its commit. (While the entity does not exist there is no
/// row to lock; its history is then only edited, not written.)
async fn lock_entity(tx: &Transaction<'_>, tenant: &Tenant, id: &str) -> Result<(), StoreError> {
    tx.query(
        "SELECT 1 FROM entities WHERE tenant = $1 AND id = $2 FOR UPDATE",
        &[&tenant.name(), &id],
    )
    .await
    .map(drop)
    .map_err(backend)
}

/// Recomputes the rollups of the given series-hours (of any entities) from the
/// instances left, in time order as [`HourlyRollup::of_all`] sums them over each
/// entity's history.
async fn recompute_rollups(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    keys: BTreeSet<SeriesHour>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut entity_ids = Vec::with_capacity(keys.len());
    let mut attrs = Vec::with_capacity(keys.len());
    let mut datasets = Vec::with_capacity(keys.len());
    let mut hours = Vec::with_capacity(keys.len());
    for (id, attr, dataset, hour) in keys {
        entity_ids.push(id);
        attrs.push(attr);
        datasets.push(dataset);
        hours.push(hour);
    }
    let name = tenant.name();
    let key_params: [&(dyn ToSql + Sync); 5] = [&name, &entity_ids, &attrs, &datasets, &hours];
    tx.execute(
        "DELETE FROM temporal_rollups r
         USING unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
             AS k (entity_id, attr, dataset_id, hour)
         WHERE r.tenant = $1 AND r.entity_id = k.entity_id AND r.attr = k.attr
             AND r.dataset_id = k.dataset_id AND r.hour = k.hour",
        &key_params,
    )
    .await
    .map_err(backend)?;
    // Grouped by entity (the keys are distinct, so no instance comes twice).
    let rows = tx
        .query(
            "SELECT i.entity_id, i.attr, i.instance_id, i.deleted_at, i.doc
             FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
                 AS k (entity_id, attr, dataset_id, hour)
             JOIN temporal_instances i ON i.tenant = $1 AND i.entity_id = k.entity_id
                 AND i.attr = k.attr AND i.dataset_id = k.dataset_id
                 AND i.observed_at >= k.hour AND i.observed_at < k.hour + interval '1 hour'
             WHERE i.deleted_at IS NULL
             ORDER BY i.entity_id, i.observed_at, i.seq",
            &key_params,
        )
        .await
        .map_err(backend)?;
    let mut per_entity: BTreeMap<String, Vec<TemporalInstance>> = BTreeMap::new();
    for row in &rows {
        let id: String = row.try_get("entity_id").map_err(backend)?;
        let instance = instance_of(tenant, &id, row)?;
        per_entity.entry(id).or_default().push(instance);
    }
    let mut rollups = RollupColumns::default();
    for (id, instances) in &per_entity {
        for rollup in HourlyRollup::of_all(instances) {
            rollups.push(id, rollup);
        }
    }
    if rollups.is_empty() {
        return Ok(());
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name];
    params.extend(rollups.params());
    tx.execute(&upsert_rollups_sql(2), &params)
        .await
        .map_err(backend)?;
    Ok(())
}

fn rollup_of(row: &Row) -> Result<HourlyRollup, StoreError> {
    let dataset: String = row.try_get("dataset_id").map_err(backend)?;
    let count = |column: &str| {
        row.try_get::<_, i64>(column)
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(backend)
    };
    Ok(HourlyRollup {
        name: row.try_get("attr").map_err(backend)?,
        dataset_id: (!dataset.is_empty()).then_some(dataset),
        hour: row.try_get("hour").map_err(backend)?,
        count: count("count")?,
        numeric_count: count("numeric_count")?,
        sum: row.try_get("sum").map_err(backend)?,
        sum_sq: row.try_get("sum_sq").map_err(backend)?,
        min: row.try_get("min").map_err(backend)?,
        max: row.try_get("max").map_err(backend)?,
    })
}

/// The bounds of a window (`start <= t < end`, each bound open when absent).
fn bounds(window: Option<&TimeRel>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    window.map_or((None, None), |w| (w.start(), w.end()))
}

const INSTANCE_COLUMNS: &str = "i.attr, i.instance_id, i.deleted_at, i.doc";

#[async_trait]
impl TemporalStore for PostgresStore {
    async fn temporal_head(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<TemporalHead>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT id, types, scopes, created_at, modified_at, deleted_at
                 FROM temporal_heads WHERE tenant = $1 AND id = $2",
                &[&tenant.name(), &id],
            )
            .await
            .map_err(backend)?
            .map(|row| head_of(&row))
            .transpose()
    }

    async fn temporal_heads(
        &self,
        tenant: &Tenant,
        ids: &[String],
    ) -> Result<Vec<TemporalHead>, StoreError> {
        let client = self.client().await?;
        let name = tenant.name();
        // Byte order, as every backend lists ids.
        let rows = if ids.is_empty() {
            client
                .query(
                    "SELECT id, types, scopes, created_at, modified_at, deleted_at
                     FROM temporal_heads WHERE tenant = $1 ORDER BY id COLLATE \"C\"",
                    &[&name],
                )
                .await
        } else {
            client
                .query(
                    "SELECT id, types, scopes, created_at, modified_at, deleted_at
                     FROM temporal_heads WHERE tenant = $1 AND id = ANY ($2)
                     ORDER BY id COLLATE \"C\"",
                    &[&name, &ids],
                )
                .await
        }
        .map_err(backend)?;
        rows.iter().map(head_of).collect()
    }

    async fn history(
        &self,
        tenant: &Tenant,
        id: &str,
        read: &HistoryRead,
    ) -> Result<Vec<TemporalInstance>, StoreError> {
        let client = self.client().await?;
        let name = tenant.name();
        let column = time_column(read.time_property);
        let (start, end) = bounds(read.window.as_ref());
        let last_n = read.last_n.map(crate::to_i64);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name, &id];
        let mut window = String::new();
        if let Some(start) = &start {
            params.push(start);
            window.push_str(&format!(" AND i.{column} >= ${}", params.len()));
        }
        if let Some(end) = &end {
            params.push(end);
            window.push_str(&format!(" AND i.{column} < ${}", params.len()));
        }
        let attrs_param = (!read.attrs.is_empty()).then(|| {
            params.push(&read.attrs);
            params.len()
        });
        let attr_filter = |alias: &str| {
            attrs_param.map_or_else(String::new, |k| format!(" AND {alias}.attr = ANY (${k})"))
        };
        let sql = match &last_n {
            None => {
                let attrs = attr_filter("i");
                format!(
                    "SELECT {INSTANCE_COLUMNS} FROM temporal_instances i
                     WHERE i.tenant = $1 AND i.entity_id = $2{attrs}
                         AND i.{column} IS NOT NULL{window}
                     ORDER BY i.{column}, i.seq"
                )
            }
            // The last N of each series, each read backwards on the time index of its
            // attribute and stopped after N, rather than sorting the whole window.
            Some(n) => {
                let attrs = attr_filter("s");
                params.push(n);
                let limit = params.len();
                format!(
                    "SELECT i.attr, i.instance_id, i.deleted_at, i.doc
                     FROM temporal_series s CROSS JOIN LATERAL (
                         SELECT {INSTANCE_COLUMNS}, i.{column} AS t, i.seq
                         FROM temporal_instances i
                         WHERE i.tenant = $1 AND i.entity_id = $2 AND i.attr = s.attr
                             AND i.dataset_id = s.dataset_id
                             AND i.{column} IS NOT NULL{window}
                         ORDER BY i.{column} DESC, i.seq DESC
                         LIMIT ${limit}
                     ) i
                     WHERE s.tenant = $1 AND s.entity_id = $2{attrs}
                     ORDER BY i.t, i.seq"
                )
            }
        };
        let rows = client.query(&sql, &params).await.map_err(backend)?;
        rows.iter()
            .map(|row| instance_of(tenant, id, row))
            .collect()
    }

    async fn hourly_rollups(
        &self,
        tenant: &Tenant,
        id: &str,
        attrs: &[String],
        from: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<HourlyRollup>, StoreError> {
        let client = self.client().await?;
        let name = tenant.name();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name, &id];
        let mut conditions = String::new();
        if !attrs.is_empty() {
            params.push(&attrs);
            conditions.push_str(&format!(" AND attr = ANY (${})", params.len()));
        }
        if let Some(from) = &from {
            params.push(from);
            conditions.push_str(&format!(" AND hour >= ${}", params.len()));
        }
        if let Some(until) = &until {
            params.push(until);
            conditions.push_str(&format!(" AND hour < ${}", params.len()));
        }
        // (name, dataset id, hour) in byte order, '' (no dataset id) first as None is.
        let sql = format!(
            "SELECT attr, dataset_id, hour, count, numeric_count, sum, sum_sq, min, max
             FROM temporal_rollups WHERE tenant = $1 AND entity_id = $2{conditions}
             ORDER BY attr COLLATE \"C\", dataset_id COLLATE \"C\", hour"
        );
        let rows = client.query(&sql, &params).await.map_err(backend)?;
        rows.iter().map(rollup_of).collect()
    }

    async fn history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
    ) -> Result<Option<TemporalInstance>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM temporal_instances i
             WHERE i.tenant = $1 AND i.entity_id = $2 AND i.attr = $3 AND i.instance_id = $4
             ORDER BY i.seq LIMIT 1"
        );
        client
            .query_opt(&sql, &[&tenant.name(), &id, &attr, &instance_id])
            .await
            .map_err(backend)?
            .map(|row| instance_of(tenant, id, &row))
            .transpose()
    }

    async fn replace_history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
        attribute: Attribute,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        lock_entity(&tx, tenant, id).await?;
        let name = tenant.name();
        let dataset = dataset_key(attribute.dataset_id.as_deref()).to_owned();
        let doc = attribute_to_doc(&attribute);
        // The old and the new placement of the instance, both of whose hours change.
        let rows = tx
            .query(
                "UPDATE temporal_instances n SET dataset_id = $5, observed_at = $6,
                     created_at = $7, modified_at = $8, doc = $9
                 FROM (SELECT seq, dataset_id, observed_at FROM temporal_instances
                       WHERE tenant = $1 AND entity_id = $2 AND attr = $3 AND instance_id = $4
                       FOR UPDATE) o
                 WHERE n.seq = o.seq
                 RETURNING o.dataset_id AS old_dataset, o.observed_at AS old_observed,
                     n.deleted_at",
                &[
                    &name,
                    &id,
                    &attr,
                    &instance_id,
                    &dataset,
                    &attribute.observed_at,
                    &attribute.created_at,
                    &attribute.modified_at,
                    &doc,
                ],
            )
            .await
            .map_err(backend)?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut keys = BTreeSet::new();
        for row in &rows {
            let deleted_at: Option<DateTime<Utc>> = row.try_get("deleted_at").map_err(backend)?;
            let old_dataset: String = row.try_get("old_dataset").map_err(backend)?;
            let old_observed = row.try_get("old_observed").map_err(backend)?;
            keys.extend(series_hour(id, attr, old_dataset, old_observed, deleted_at));
            keys.extend(series_hour(
                id,
                attr,
                dataset.clone(),
                attribute.observed_at,
                deleted_at,
            ));
        }
        // The instance may now belong to a series the entity did not have.
        tx.execute(
            "INSERT INTO temporal_series (tenant, entity_id, attr, dataset_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&name, &id, &attr, &dataset],
        )
        .await
        .map_err(backend)?;
        recompute_rollups(&tx, tenant, keys).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn delete_history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        lock_entity(&tx, tenant, id).await?;
        let rows = tx
            .query(
                "DELETE FROM temporal_instances
                 WHERE tenant = $1 AND entity_id = $2 AND attr = $3 AND instance_id = $4
                 RETURNING dataset_id, observed_at, deleted_at",
                &[&tenant.name(), &id, &attr, &instance_id],
            )
            .await
            .map_err(backend)?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut keys = BTreeSet::new();
        for row in &rows {
            keys.extend(series_hour(
                id,
                attr,
                row.try_get("dataset_id").map_err(backend)?,
                row.try_get("observed_at").map_err(backend)?,
                row.try_get("deleted_at").map_err(backend)?,
            ));
        }
        recompute_rollups(&tx, tenant, keys).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn delete_attribute_history(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        dataset: &DatasetSelector,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        lock_entity(&tx, tenant, id).await?;
        let name = tenant.name();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name, &id, &attr];
        // Whole series go, so their rollups go with them: nothing to recompute.
        let condition = match dataset {
            DatasetSelector::Default => " AND dataset_id = ''",
            DatasetSelector::Id(dataset_id) => {
                params.push(dataset_id);
                " AND dataset_id = $4"
            }
            DatasetSelector::All => "",
        };
        let mut deleted = 0;
        for table in ["temporal_instances", "temporal_rollups", "temporal_series"] {
            let sql = format!(
                "DELETE FROM {table} WHERE tenant = $1 AND entity_id = $2 AND attr = $3{condition}"
            );
            let n = tx.execute(&sql, &params).await.map_err(backend)?;
            if table == "temporal_instances" {
                deleted = n;
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn delete_history(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        lock_entity(&tx, tenant, id).await?;
        let name = tenant.name();
        let heads = tx
            .execute(
                "DELETE FROM temporal_heads WHERE tenant = $1 AND id = $2",
                &[&name, &id],
            )
            .await
            .map_err(backend)?;
        let mut instances = 0;
        for table in ["temporal_instances", "temporal_rollups", "temporal_series"] {
            let sql = format!("DELETE FROM {table} WHERE tenant = $1 AND entity_id = $2");
            let n = tx.execute(&sql, &[&name, &id]).await.map_err(backend)?;
            if table == "temporal_instances" {
                instances = n;
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(heads > 0 || instances > 0)
    }
}
