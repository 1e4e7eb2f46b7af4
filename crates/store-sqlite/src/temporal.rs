//! Entity history on SQLite ([`TemporalStore`]), in the tables of schema version 6 as
//! version 8 reshaped them.
//!
//! Entity writes record their history inside the writer job that writes the entity
//! ([`record`]), so the current entity and its history commit together. What can be
//! computed before the writer is (the encoded instances and their rollups,
//! [`HistoryRows`]), because the one writer thread is what bounds write throughput:
//! each instance then costs the writer one INSERT (one b-tree insert into the clustered
//! table, a second into the `observedAt` index if it has one) and, for each
//! series-hour it touches, one rollup upsert. Its recording number comes from the
//! head's upsert, which every write makes anyway. The history a modification carries
//! also costs one indexed DELETE per instance with an `observedAt` (the stored one it
//! replaces, if any), and a rollup recomputation only for each series-hour where that
//! deleted something.
//! Reads find the series (attribute and dataset id) of an entity by skipping through
//! the table's key, then read each series as one range (of the `observedAt` or
//! `deletedAt` index, or of the table itself for `createdAt`) in the time property's
//! order, newest first and limited for lastN, so that the last ten of a hundred
//! thousand instances read ten rows. `modifiedAt` reads, and finding an instance by
//! its id, range over the rows of the series or attribute instead: bounded by that
//! history, in exchange for no index entries written per instance. Edits of single
//! instances recompute the rollups of the series-hours they touch from the instances
//! that remain.
//!
//! A new history (an entity's creation) is not written out at all: its entity's
//! row implies it whole ([`Implied`], schema version 19). Its instances are the
//! attributes of the entity's stored document, recorded at the instant the row
//! keeps (`history_at`); their hourly rollups are those attributes' too; the row
//! keeps the UUID their ids derive from (`history_ids`, [`FirstWrite`]); its head is
//! the entity's id, types and scopes, created and modified at that instant. Rows for
//! the instances were two thirds of the writer's work in creating an entity (version
//! 16), and the head's row and index entry a third of what remained (version 19); an
//! entity written once (an observation, an imported record) never needs them. So the
//! document must not change while it stands for them: every write of the entity
//! records in its history ([`record`]) and, before the document changes, writes the
//! head and those instances out as the rows their recording would have made (the
//! same instances, ids and numbers) and merges their rollups, in the same
//! transaction; so does every edit of instances or series. A history is therefore
//! either implied whole by its entity's row or all in rows under a head, never
//! split; reads of an implied history make its head, instances and rollups from the
//! document and filter and order them in memory exactly as the statements below do
//! rows. Deleting an implied history clears the row's columns: the entity then has
//! none, as after deleting a history in rows.

use crate::columns::{opt_stamp, opt_time_at, parse_stamp, stamp, time_at, unreadable};
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use ngsi_ld::model::{Attribute, Entity};
use ngsi_ld::temporal::{
    hour_of, instances_of_change, HourlyRollup, TemporalInstance, TimeProperty, TimeRel,
};
use ngsi_ld::time::Rfc3339;
use rusqlite::{params, Connection, OptionalExtension, Row, Statement};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use store::temporal::{DatasetSelector, HistoryRead, TemporalHead, TemporalStore};
use store::{StoreError, Tenant};
use uuid::Uuid;

/// The instant a write is recorded at, in the microseconds stored timestamps keep.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The stored form of a dataset id: `''` for none.
fn dataset_key(dataset_id: Option<&str>) -> &str {
    dataset_id.unwrap_or("")
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The stored `createdAt` of an instance: `''` for none, since the column is part of
/// the clustered key (which admits no NULL). `''` sorts below every stamp and falls
/// outside every window ([`text_bounds`]), so such an instance is never read by
/// `createdAt`, as when the column held NULL.
fn stored_created_at(attribute: &Attribute) -> String {
    opt_stamp(attribute.created_at).unwrap_or_default()
}

/// One instance as the row that stores it.
struct InstanceRow {
    attr: String,
    dataset_id: String,
    instance_id: String,
    /// Stamps stay where the row is: an instance has up to four, and their heap
    /// allocations were a fifth of making its row.
    observed_at: Option<Rfc3339>,
    /// Stored as `''` when there is none: it is part of the table's key (see
    /// [`stored_created_at`]).
    created_at: Option<Rfc3339>,
    modified_at: Option<Rfc3339>,
    deleted_at: Option<Rfc3339>,
    doc: String,
    /// The hour its `observedAt` falls in: the series-hour whose rollup it counts in.
    hour: Option<DateTime<Utc>>,
}

impl InstanceRow {
    fn new(instance: &TemporalInstance) -> InstanceRow {
        let a = &instance.attribute;
        InstanceRow {
            attr: instance.name.clone(),
            dataset_id: dataset_key(a.dataset_id.as_deref()).to_owned(),
            instance_id: instance.instance_id.clone(),
            observed_at: a.observed_at.as_ref().map(Rfc3339::micros),
            created_at: a.created_at.as_ref().map(Rfc3339::micros),
            modified_at: a.modified_at.as_ref().map(Rfc3339::micros),
            deleted_at: instance.deleted_at.as_ref().map(Rfc3339::micros),
            doc: store::doc::instance_doc_text(a),
            hour: a.observed_at.map(hour_of),
        }
    }

    /// Its columns, borrowed.
    fn stored(&self) -> StoredInstance<'_> {
        StoredInstance {
            attr: Cow::Borrowed(&self.attr),
            dataset_id: Cow::Borrowed(&self.dataset_id),
            instance_id: Cow::Borrowed(&self.instance_id),
            observed_at: self.observed_at.as_ref().map(|t| Cow::Borrowed(t.as_str())),
            created_at: Cow::Borrowed(self.created_at.as_ref().map_or("", Rfc3339::as_str)),
            modified_at: self.modified_at.as_ref().map(|t| Cow::Borrowed(t.as_str())),
            deleted_at: self.deleted_at.as_ref().map(|t| Cow::Borrowed(t.as_str())),
            doc: Cow::Borrowed(&self.doc),
        }
    }
}

/// One instance as stored: the columns of its row in `temporal_instances` but the
/// `hid` and `seq` of its key, or one an [`InstanceRow`] would insert.
/// Text as in the columns: stamps in the stored form, `''` for no dataset id or
/// `createdAt`.
struct StoredInstance<'a> {
    attr: Cow<'a, str>,
    dataset_id: Cow<'a, str>,
    instance_id: Cow<'a, str>,
    observed_at: Option<Cow<'a, str>>,
    created_at: Cow<'a, str>,
    modified_at: Option<Cow<'a, str>>,
    deleted_at: Option<Cow<'a, str>>,
    doc: Cow<'a, str>,
}

impl StoredInstance<'_> {
    /// Its stamp of a time property, as stored.
    fn time(&self, property: TimeProperty) -> Option<&str> {
        match property {
            TimeProperty::ObservedAt => self.observed_at.as_deref(),
            TimeProperty::CreatedAt => Some(&self.created_at),
            TimeProperty::ModifiedAt => self.modified_at.as_deref(),
            TimeProperty::DeletedAt => self.deleted_at.as_deref(),
        }
    }

    /// Inserts it as the row `(hid, seq)` with [`INSERT_INSTANCE_SQL`].
    fn insert(&self, insert: &mut Statement<'_>, hid: i64, seq: i64) -> rusqlite::Result<()> {
        insert
            .execute(params![
                hid,
                self.attr,
                self.dataset_id,
                self.instance_id,
                self.observed_at,
                self.created_at,
                self.modified_at,
                self.deleted_at,
                self.doc,
                seq
            ])
            .map(drop)
    }

    /// The instance it stores. Its `datasetId`, `observedAt`, `createdAt` and
    /// `modifiedAt` come from their columns: documents written since 2026-11-28 leave
    /// them out ([`store::doc::instance_doc_text`]), older ones hold the same values.
    /// What cannot be read is an error of `column`, the one it was read from.
    fn into_instance(self, column: usize) -> rusqlite::Result<TemporalInstance> {
        let time = |text: &str| parse_stamp(text, column);
        let opt_time = |text: Option<&str>| text.map(time).transpose();
        let value: serde_json::Value =
            serde_json::from_str(&self.doc).map_err(|e| unreadable(column, e))?;
        let mut attribute =
            store::doc::doc_to_attribute(&value).map_err(|e| unreadable(column, e))?;
        attribute.dataset_id = (!self.dataset_id.is_empty()).then(|| self.dataset_id.into());
        attribute.observed_at = opt_time(self.observed_at.as_deref())?;
        // `''` is a missing `createdAt` (see `stored_created_at`).
        attribute.created_at = opt_time(Some(&*self.created_at).filter(|t| !t.is_empty()))?;
        attribute.modified_at = opt_time(self.modified_at.as_deref())?;
        Ok(TemporalInstance {
            name: self.attr.into(),
            instance_id: self.instance_id.into(),
            deleted_at: opt_time(self.deleted_at.as_deref())?,
            attribute,
        })
    }
}

/// A history's first write whose instances stand in the entity's stored document
/// (see the module documentation): the UUID their ids derive from, kept in the
/// entity row's `history_ids`.
#[derive(Clone, Copy)]
pub(crate) struct FirstWrite {
    ids: Uuid,
}

impl FirstWrite {
    /// The first write of a new history.
    fn new() -> FirstWrite {
        FirstWrite {
            ids: Uuid::new_v4(),
        }
    }

    /// The one a row keeps, read from `column`.
    fn parse(text: &str, column: usize) -> rusqlite::Result<FirstWrite> {
        Uuid::parse_str(text)
            .map(|ids| FirstWrite { ids })
            .map_err(|e| unreadable(column, e))
    }

    /// The id of its `n`th instance (from 1): its UUID with `n` XORed into the last
    /// 48 bits, which a version-4 UUID draws at random like the rest. Each id is
    /// then a version-4 UUID of its own, distinct from its siblings' and, as any
    /// random UUID, from every other history's.
    fn instance_id(self, n: u64) -> String {
        let uuid = Uuid::from_u128(self.ids.as_u128() ^ u128::from(n));
        format!("urn:ngsi-ld:AttributeInstance:{uuid}")
    }

    /// Its instances as the rows that recording them `at` would have written: those
    /// of `entity`'s creation ([`instances_of_change`]), numbered from 1 in that order
    /// and with their derived ids.
    fn rows(self, entity: &Entity, at: DateTime<Utc>) -> Vec<InstanceRow> {
        instances_of_change(None, Some(entity), at)
            .into_iter()
            .zip(1..)
            .map(|(mut instance, n)| {
                instance.instance_id = self.instance_id(n);
                InstanceRow::new(&instance)
            })
            .collect()
    }

    /// Writes it out into the history `hid`: its instances, recorded `at` from
    /// `entity` as stored, as rows numbered from `first_seq`, and their rollups
    /// merged into the stored ones (an implied history's rollups are implied too,
    /// see [`rollups_in`]).
    fn write_out(
        self,
        tx: &Connection,
        hid: i64,
        entity: &Entity,
        at: DateTime<Utc>,
        first_seq: i64,
    ) -> Result<(), StoreError> {
        insert_rows(tx, hid, &self.rows(entity, at), first_seq)?;
        for rollup in HourlyRollup::of_entity(&entity.attributes) {
            merge_rollup(tx, hid, &rollup)?;
        }
        Ok(())
    }
}

/// A history implied whole by its entity's row (see the module documentation): its
/// first write and the instant it was recorded at, kept in the row's `history_ids`
/// and `history_at`.
pub(crate) struct Implied {
    first: FirstWrite,
    at: DateTime<Utc>,
}

impl Implied {
    /// The one a row keeps in its `history_at` and `history_ids` (`None`: the row
    /// implies no history).
    pub(crate) fn of_columns(
        at: Option<&str>,
        ids: Option<&str>,
    ) -> Result<Option<Implied>, StoreError> {
        match (at, ids) {
            (Some(at), Some(ids)) => Implied::read(at, ids).map(Some),
            _ => Ok(None),
        }
    }

    /// The one a row keeps, from its `history_at` and `history_ids`.
    fn read(at: &str, ids: &str) -> Result<Implied, StoreError> {
        Ok(Implied {
            first: FirstWrite::parse(ids, 1).map_err(StoreError::backend)?,
            at: parse_stamp(at, 0).map_err(StoreError::backend)?,
        })
    }

    /// The row's `history_at` and `history_ids` for it.
    pub(crate) fn columns(&self) -> (String, String) {
        (stamp(self.at), self.first.ids.to_string())
    }

    /// Its head, from the `entity` it stands in.
    fn head(&self, entity: &Entity) -> TemporalHead {
        TemporalHead {
            id: entity.id.clone(),
            types: entity.types.clone(),
            scopes: entity.scopes.clone(),
            created_at: self.at,
            modified_at: self.at,
            deleted_at: None,
        }
    }

    /// Its instances, as rows, from the `entity` they stand in.
    fn rows(&self, entity: &Entity) -> Vec<InstanceRow> {
        self.first.rows(entity, self.at)
    }

    /// Writes it out from the `entity` it stands in: its head as a row (an insert,
    /// which fails if the entity already has one), its instances and rollups as
    /// [`FirstWrite::write_out`] does; the entity's row then implies nothing. The key
    /// of the new head.
    fn write_out(
        &self,
        tx: &Connection,
        tenant: &Tenant,
        entity: &Entity,
    ) -> Result<i64, StoreError> {
        let backend = StoreError::backend;
        let head = Head::of(entity, false);
        tx.prepare_cached(
            "INSERT INTO temporal_heads (tenant, id, types, scopes,
                 created_at, modified_at, last_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant.name(),
                head.id,
                head.types,
                head.scopes,
                stamp(self.at),
                instance_count(entity)
            ])
        })
        .map_err(backend)?;
        let hid = tx.last_insert_rowid();
        self.first.write_out(tx, hid, entity, self.at, 1)?;
        tx.prepare_cached(
            "UPDATE entities SET history_at = NULL, history_ids = NULL
             WHERE tenant = ?1 AND id = ?2",
        )
        .and_then(|mut s| s.execute(params![tenant.name(), head.id]))
        .map_err(backend)?;
        Ok(hid)
    }
}

/// How many instances a first write of `entity` records: one per attribute instance
/// ([`FirstWrite::rows`]).
fn instance_count(entity: &Entity) -> i64 {
    to_i64(entity.attributes.values().map(Vec::len).sum::<usize>() as u64)
}

/// An entity row implying a history whose document is not stored.
#[derive(Debug, thiserror::Error)]
#[error("the history of {0} is implied by an entity that is not stored")]
struct ImpliedWithoutEntity(String);

/// The entity `id` whose stored document is `doc`, which a first write stands in:
/// `None` (not stored) is an error.
fn stored_entity(id: &str, doc: Option<&str>) -> Result<Entity, StoreError> {
    crate::decode(doc.ok_or_else(|| without_entity(id))?)
}

/// The failure of a history of the entity `id` implied by no stored entity.
fn without_entity(id: &str) -> StoreError {
    StoreError::backend(ImpliedWithoutEntity(id.to_owned()))
}

/// The history one write adds, encoded for the writer: the instance rows, and their
/// rollups merged per series-hour.
pub(crate) struct HistoryRows {
    instances: Vec<InstanceRow>,
    rollups: Vec<HourlyRollup>,
    /// Whether its instances with an `observedAt` replace the stored ones of the same
    /// series and instant (the history a modification carries, see
    /// [`store::Modification::history`]).
    replaces: bool,
    /// For an entity's creation ([`HistoryRows::first`]): its first write, whose
    /// instances (this many) are not in `instances` but implied by the document.
    first_write: Option<(FirstWrite, i64)>,
}

impl HistoryRows {
    /// The history recorded from a diff: added to what is stored.
    pub(crate) fn new(instances: &[TemporalInstance]) -> HistoryRows {
        HistoryRows {
            instances: instances.iter().map(InstanceRow::new).collect(),
            rollups: HourlyRollup::of_all(instances),
            replaces: false,
            first_write: None,
        }
    }

    /// The history of an entity's creation: its attributes, recorded as a first
    /// write ([`FirstWrite`]) and only counted here; their rollups are implied with
    /// them. If the history is not new (an entity of the same id was deleted before),
    /// [`record`] writes them out from the stored document instead.
    pub(crate) fn first(entity: &Entity) -> HistoryRows {
        HistoryRows {
            instances: Vec::new(),
            rollups: Vec::new(),
            replaces: false,
            first_write: Some((FirstWrite::new(), instance_count(entity))),
        }
    }

    /// The history a modification carries: each instance with an `observedAt`
    /// replaces any stored one of its series and instant. Of two given instances of
    /// the same series and instant only the later is kept, here off the writer thread,
    /// so that the writer never replaces an instance of the same write.
    pub(crate) fn given(instances: &[TemporalInstance]) -> HistoryRows {
        let rows: Vec<InstanceRow> = instances.iter().map(InstanceRow::new).collect();
        let mut last: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            if let Some(observed_at) = &row.observed_at {
                last.insert((&row.attr, &row.dataset_id, observed_at.as_str()), i);
            }
        }
        let kept: Vec<bool> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| match &row.observed_at {
                Some(observed_at) => {
                    last.get(&(
                        row.attr.as_str(),
                        row.dataset_id.as_str(),
                        observed_at.as_str(),
                    )) == Some(&i)
                }
                None => true,
            })
            .collect();
        let rollups = HourlyRollup::of_all(
            instances
                .iter()
                .zip(&kept)
                .filter_map(|(instance, kept)| kept.then_some(instance)),
        );
        HistoryRows {
            instances: rows
                .into_iter()
                .zip(kept)
                .filter_map(|(row, kept)| kept.then_some(row))
                .collect(),
            rollups,
            replaces: true,
            first_write: None,
        }
    }

    /// How many instances it adds.
    fn count(&self) -> i64 {
        match self.first_write {
            Some((_, count)) => count,
            None => to_i64(self.instances.len() as u64),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

/// What a write tells the head of its entity's history.
pub(crate) struct Head {
    id: String,
    /// JSON lists, as stored.
    types: String,
    scopes: String,
    deleted: bool,
}

impl Head {
    /// The head after `entity` is written (`deleted` false) or deleted (true).
    pub(crate) fn of(entity: &Entity, deleted: bool) -> Head {
        Head {
            id: entity.id.clone(),
            types: serde_json::to_string(&entity.types).unwrap_or_default(),
            scopes: serde_json::to_string(&entity.scopes).unwrap_or_default(),
            deleted,
        }
    }
}

/// The entity a write records, as stored: before the write (`None`: not stored), how
/// its history was stored, and its document after it (`None`: deleted).
#[derive(Clone, Copy)]
pub(crate) struct Documents<'a> {
    pub(crate) before: Option<Stored<'a>>,
    pub(crate) history: StoredHistory<'a>,
    pub(crate) after: Option<&'a str>,
}

/// How the history of a write's entity was stored before the write.
#[derive(Clone, Copy)]
pub(crate) enum StoredHistory<'a> {
    /// Nowhere: the entity is not stored and no history of its id is.
    None,
    /// Implied by the stored entity's row.
    Implied(&'a Implied),
    /// In rows under a head, if anywhere.
    InRows,
}

impl<'a> StoredHistory<'a> {
    /// That of a stored entity whose row implies `implied`.
    pub(crate) fn of_stored(implied: Option<&'a Implied>) -> StoredHistory<'a> {
        implied.map_or(StoredHistory::InRows, StoredHistory::Implied)
    }
}

/// A stored entity as the writer has it: its document, or already decoded.
#[derive(Clone, Copy)]
pub(crate) enum Stored<'a> {
    Doc(&'a str),
    Entity(&'a Entity),
}

impl<'a> Stored<'a> {
    fn entity(self) -> Result<Cow<'a, Entity>, StoreError> {
        match self {
            Stored::Doc(doc) => crate::decode(doc).map(Cow::Owned),
            Stored::Entity(entity) => Ok(Cow::Borrowed(entity)),
        }
    }
}

/// Records a write in the entity's history: upserts the head (created on the first
/// write; `modifiedAt` moves when the history grows or the entity is deleted; a put
/// clears `deletedAt`, a deletion sets it), inserts the instances and merges their
/// rollups into the stored ones. The creation of an entity with no stored history
/// writes nothing: it returns the [`Implied`] history its new row is to keep. A
/// history the stored row implied is written out first, from `documents.before`. A given history ([`HistoryRows::given`]) first deletes the
/// stored instances each of its instances replaces; the rollups of the series-hours
/// where that deleted any are recomputed instead of merged into.
pub(crate) fn record(
    tx: &Connection,
    tenant: &Tenant,
    head: &Head,
    history: &HistoryRows,
    now: DateTime<Utc>,
    documents: Documents<'_>,
) -> Result<Option<Implied>, StoreError> {
    let backend = StoreError::backend;
    if let (Some((first, _)), StoredHistory::None) = (history.first_write, documents.history) {
        return Ok(Some(Implied { first, at: now }));
    }
    if let StoredHistory::Implied(implied) = documents.history {
        let before = documents.before.ok_or_else(|| without_entity(&head.id))?;
        let before = before.entity()?;
        implied.write_out(tx, tenant, &before)?;
    }
    let at = stamp(now);
    let grew = !history.is_empty() || head.deleted;
    let (hid, last_seq) = upsert_head(tx, tenant, head, &at, grew, history.count())?;
    let first_seq = last_seq - history.count() + 1;
    if let Some((first, _)) = history.first_write {
        // A creation on an older history (of a deleted entity of the same id): its
        // first write as rows.
        let after = stored_entity(&head.id, documents.after)?;
        first.write_out(tx, hid, &after, now, first_seq)?;
    }
    // The series-hours some stored instance was replaced in: their stored rollups
    // count it, so they are recomputed rather than merged into.
    let mut replaced: BTreeSet<(&str, &str, DateTime<Utc>)> = BTreeSet::new();
    if !history.instances.is_empty() {
        let mut insert = tx.prepare_cached(INSERT_INSTANCE_SQL).map_err(backend)?;
        for (row, seq) in history.instances.iter().zip(first_seq..) {
            if let (true, Some(observed_at), Some(hour)) =
                (history.replaces, &row.observed_at, row.hour)
            {
                // Before the insert, so that only stored instances go: the given ones
                // hold each series and instant once (`HistoryRows::given`).
                if replace_observed(tx, hid, &row.attr, &row.dataset_id, observed_at.as_str())? {
                    replaced.insert((&row.attr, &row.dataset_id, hour));
                }
            }
            row.stored()
                .insert(&mut insert, hid, seq)
                .map_err(backend)?;
        }
    }
    for rollup in &history.rollups {
        let key = (
            rollup.name.as_str(),
            dataset_key(rollup.dataset_id.as_deref()),
            rollup.hour,
        );
        if !replaced.contains(&key) {
            merge_rollup(tx, hid, rollup)?;
        }
    }
    // Every replaced series-hour, even one the given instances add nothing to (a
    // replacing instance may be a deleted one, which counts in no rollup).
    for (attr, dataset_id, hour) in replaced {
        recompute_rollup(tx, hid, attr, dataset_id, hour)?;
    }
    Ok(None)
}

const INSERT_INSTANCE_SQL: &str = "INSERT INTO temporal_instances (hid, attr, dataset_id,
         instance_id, observed_at, created_at, modified_at, deleted_at, doc, seq)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Inserts `rows` into the history `hid`, numbered from `first` in their order.
fn insert_rows(
    tx: &Connection,
    hid: i64,
    rows: &[InstanceRow],
    first: i64,
) -> Result<(), StoreError> {
    let backend = StoreError::backend;
    let mut insert = tx.prepare_cached(INSERT_INSTANCE_SQL).map_err(backend)?;
    for (row, seq) in rows.iter().zip(first..) {
        row.stored()
            .insert(&mut insert, hid, seq)
            .map_err(backend)?;
    }
    Ok(())
}

/// Creates or moves the head of a history for a write adding `count` instances: its
/// key and the last recording number handed out (the write's instances are
/// numbered up to it).
///
/// An insert that ignores an existing head, then an update by `hid`, rather than one
/// `INSERT … ON CONFLICT DO UPDATE … RETURNING`: SQLite runs such an upsert under a
/// statement journal, copying every page it touches first (16 KiB each), which cost
/// about a tenth of the writer's time in a batch of new entities. Neither statement
/// here can fail halfway, so neither needs one. (`UPDATE … RETURNING` in place of the
/// lookup and the update runs under a statement journal too, as a profile of PATCH
/// updates showed.)
fn upsert_head(
    tx: &Connection,
    tenant: &Tenant,
    head: &Head,
    at: &str,
    grew: bool,
    count: i64,
) -> Result<(i64, i64), StoreError> {
    let backend = StoreError::backend;
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO temporal_heads (tenant, id, types, scopes,
                 created_at, modified_at, deleted_at, last_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                tenant.name(),
                head.id,
                head.types,
                head.scopes,
                at,
                head.deleted.then_some(at),
                count
            ])
        })
        .map_err(backend)?;
    if inserted == 1 {
        return Ok((tx.last_insert_rowid(), count));
    }
    let (hid, last_seq): (i64, i64) = tx
        .prepare_cached("SELECT hid, last_seq FROM temporal_heads WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.name(), head.id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
        })
        .map_err(backend)?;
    tx.prepare_cached(
        "UPDATE temporal_heads SET
             types = ?2,
             scopes = ?3,
             modified_at = CASE WHEN ?4 THEN ?5 ELSE modified_at END,
             deleted_at = ?6,
             last_seq = ?7
         WHERE hid = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            hid,
            head.types,
            head.scopes,
            grew,
            at,
            head.deleted.then_some(at),
            last_seq + count
        ])
    })
    .map_err(backend)?;
    Ok((hid, last_seq + count))
}

/// Deletes the stored instances of one series observed at one instant (one search
/// of the `observedAt` index); whether there were any.
fn replace_observed(
    tx: &Connection,
    hid: i64,
    attr: &str,
    dataset_id: &str,
    observed_at: &str,
) -> Result<bool, StoreError> {
    tx.prepare_cached(REPLACE_OBSERVED_SQL)
        .and_then(|mut s| s.execute(params![hid, attr, dataset_id, observed_at]))
        .map(|deleted| deleted > 0)
        .map_err(StoreError::backend)
}

const REPLACE_OBSERVED_SQL: &str = "DELETE FROM temporal_instances
     WHERE hid = ?1 AND attr = ?2 AND dataset_id = ?3 AND observed_at = ?4";

/// Adds a rollup into the stored one of its series-hour (storing it if there is none),
/// in the order [`HourlyRollup::merge`] adds: stored, then new.
fn merge_rollup(tx: &Connection, hid: i64, rollup: &HourlyRollup) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO temporal_rollups (hid, attr, dataset_id, hour, count_all,
             count_numeric, sum_value, sum_sq, min_value, max_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (hid, attr, dataset_id, hour) DO UPDATE SET
             count_all = count_all + excluded.count_all,
             count_numeric = count_numeric + excluded.count_numeric,
             sum_value = sum_value + excluded.sum_value,
             sum_sq = sum_sq + excluded.sum_sq,
             min_value = min(coalesce(min_value, excluded.min_value),
                             coalesce(excluded.min_value, min_value)),
             max_value = max(coalesce(max_value, excluded.max_value),
                             coalesce(excluded.max_value, max_value))",
    )
    .and_then(|mut s| {
        s.execute(params![
            hid,
            rollup.name,
            dataset_key(rollup.dataset_id.as_deref()),
            stamp(rollup.hour),
            to_i64(rollup.count),
            to_i64(rollup.numeric_count),
            rollup.sum,
            rollup.sum_sq,
            rollup.min,
            rollup.max
        ])
    })
    .map(drop)
    .map_err(StoreError::backend)
}

/// Recomputes the stored rollup of one series-hour from the instances it holds:
/// exact after any edit, where subtracting could not undo a minimum or a rounding.
fn recompute_rollup(
    tx: &Connection,
    hid: i64,
    attr: &str,
    dataset_id: &str,
    hour: DateTime<Utc>,
) -> Result<(), StoreError> {
    let backend = StoreError::backend;
    let instances = {
        let mut select = tx
            .prepare_cached(&format!(
                "SELECT {INSTANCE_COLUMNS} FROM temporal_instances
                 WHERE hid = ?1 AND attr = ?2 AND dataset_id = ?3
                   AND observed_at IS NOT NULL AND observed_at >= ?4 AND observed_at < ?5
                   AND deleted_at IS NULL
                 ORDER BY observed_at, seq"
            ))
            .map_err(backend)?;
        let rows = select
            .query_map(
                params![
                    hid,
                    attr,
                    dataset_id,
                    stamp(hour),
                    stamp(hour + TimeDelta::hours(1))
                ],
                |row| row_to_instance(row, 0),
            )
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
    };
    tx.prepare_cached(
        "DELETE FROM temporal_rollups
         WHERE hid = ?1 AND attr = ?2 AND dataset_id = ?3 AND hour = ?4",
    )
    .and_then(|mut s| s.execute(params![hid, attr, dataset_id, stamp(hour)]))
    .map_err(backend)?;
    for rollup in HourlyRollup::of_all(&instances) {
        merge_rollup(tx, hid, &rollup)?;
    }
    Ok(())
}

/// The columns [`row_to_instance`] reads, in its order.
const INSTANCE_COLUMNS: &str =
    "attr, instance_id, deleted_at, doc, dataset_id, observed_at, created_at, modified_at";

/// An instance from the [`INSTANCE_COLUMNS`] starting at `first`.
fn row_to_instance(row: &Row<'_>, first: usize) -> rusqlite::Result<TemporalInstance> {
    let text = |i: usize| row.get::<_, String>(first + i).map(Cow::Owned);
    let opt_text = |i: usize| {
        row.get::<_, Option<String>>(first + i)
            .map(|t| t.map(Cow::Owned))
    };
    StoredInstance {
        attr: text(0)?,
        instance_id: text(1)?,
        deleted_at: opt_text(2)?,
        doc: text(3)?,
        dataset_id: text(4)?,
        observed_at: opt_text(5)?,
        created_at: text(6)?,
        modified_at: opt_text(7)?,
    }
    .into_instance(first + 3)
}

const HEAD_COLUMNS: &str = "id, types, scopes, created_at, modified_at, deleted_at";

fn row_to_head(row: &Row<'_>) -> rusqlite::Result<TemporalHead> {
    Ok(TemporalHead {
        id: row.get(0)?,
        types: crate::columns::json_at(row, 1)?,
        scopes: crate::columns::json_at(row, 2)?,
        created_at: time_at(row, 3)?,
        modified_at: time_at(row, 4)?,
        deleted_at: opt_time_at(row, 5)?,
    })
}

fn head_in(
    conn: &Connection,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<TemporalHead>, StoreError> {
    let in_row = conn
        .prepare_cached(&format!(
            "SELECT {HEAD_COLUMNS} FROM temporal_heads WHERE tenant = ?1 AND id = ?2"
        ))
        .and_then(|mut s| {
            s.query_row(params![tenant.name(), id], row_to_head)
                .optional()
        })
        .map_err(StoreError::backend)?;
    if in_row.is_some() {
        return Ok(in_row);
    }
    Ok(implied_by_entity(conn, tenant, id)?.map(|(implied, entity)| implied.head(&entity)))
}

/// The history the row of the stored entity `id` implies, if it does, and the entity.
fn implied_by_entity(
    conn: &Connection,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<(Implied, Entity)>, StoreError> {
    let found: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT doc, history_at, history_ids FROM entities
             WHERE tenant = ?1 AND id = ?2 AND history_ids IS NOT NULL",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant.name(), id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()
        })
        .map_err(StoreError::backend)?;
    let Some((doc, at, ids)) = found else {
        return Ok(None);
    };
    Ok(Some((Implied::read(&at, &ids)?, crate::decode(&doc)?)))
}

/// The history the entity row `seq` implies, if it does: for a write that has read
/// the entity otherwise.
pub(crate) fn implied_by_row(tx: &Connection, seq: i64) -> Result<Option<Implied>, StoreError> {
    let columns: Option<(Option<String>, Option<String>)> = tx
        .prepare_cached("SELECT history_at, history_ids FROM entities WHERE seq = ?1")
        .and_then(|mut s| {
            s.query_row([seq], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(StoreError::backend)?;
    match columns {
        Some((at, ids)) => Implied::of_columns(at.as_deref(), ids.as_deref()),
        None => Ok(None),
    }
}

/// Where an entity's history is.
enum HistoryAt {
    /// In rows, under the head of this key.
    Rows(i64),
    /// Implied whole by the row of the entity it stands in (then that is the whole
    /// history, rollups included).
    Implied(Implied, Entity),
}

/// Where an entity's history is, if it has one.
fn history_at(
    conn: &Connection,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<HistoryAt>, StoreError> {
    if let Some(hid) = hid_of(conn, tenant, id)? {
        return Ok(Some(HistoryAt::Rows(hid)));
    }
    Ok(implied_by_entity(conn, tenant, id)?
        .map(|(implied, entity)| HistoryAt::Implied(implied, entity)))
}

/// The key of an entity's history head, if it has one in a row.
fn hid_of(conn: &Connection, tenant: &Tenant, id: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT hid FROM temporal_heads WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.name(), id], |row| row.get(0))
                .optional()
        })
        .map_err(StoreError::backend)
}

/// The series (attribute, stored dataset id) of an entity's history, of the named
/// attributes or of all, in (attribute, dataset id) order. Each is found by one seek
/// past the one before in the table's `(hid, attr, dataset_id, …)` key, so an
/// attribute with a hundred thousand instances costs a seek, not a walk through them.
fn series_of(
    conn: &Connection,
    hid: i64,
    attrs: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let backend = StoreError::backend;
    let mut statements = SeriesStep::ALL
        .iter()
        .map(|step| conn.prepare_cached(&series_sql(*step)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let mut step = |step: SeriesStep, attr: &str, dataset: &str| {
        let statement = &mut statements[step as usize];
        let found = |row: &Row<'_>| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?));
        match step {
            SeriesStep::First => statement.query_row(params![hid], found),
            SeriesStep::FirstOf | SeriesStep::NextAttr => {
                statement.query_row(params![hid, attr], found)
            }
            SeriesStep::NextDataset => statement.query_row(params![hid, attr, dataset], found),
        }
        .optional()
        .map_err(backend)
    };
    let mut series = Vec::new();
    if attrs.is_empty() {
        let mut found = step(SeriesStep::First, "", "")?;
        while let Some((attr, dataset)) = found {
            found = match step(SeriesStep::NextDataset, &attr, &dataset)? {
                Some(next) => Some(next),
                None => step(SeriesStep::NextAttr, &attr, "")?,
            };
            series.push((attr, dataset));
        }
        return Ok(series);
    }
    let mut names: Vec<&str> = attrs.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let mut found = step(SeriesStep::FirstOf, name, "")?;
        while let Some((attr, dataset)) = found {
            found = step(SeriesStep::NextDataset, &attr, &dataset)?;
            series.push((attr, dataset));
        }
    }
    Ok(series)
}

/// The seeks that find the series of an entity one after another.
#[derive(Clone, Copy)]
enum SeriesStep {
    /// Its first series.
    First,
    /// The first series of an attribute (`?2`).
    FirstOf,
    /// The series of the same attribute after a dataset id (`?3`).
    NextDataset,
    /// The first series of the next attribute after one (`?2`).
    NextAttr,
}

impl SeriesStep {
    const ALL: [SeriesStep; 4] = [
        SeriesStep::First,
        SeriesStep::FirstOf,
        SeriesStep::NextDataset,
        SeriesStep::NextAttr,
    ];
}

/// The statement of a series step. Scalar comparisons only: for `column > x` SQLite
/// seeks past every entry equal to `x`, but for a row value `(a, b) > (x, y)` it seeks
/// to `(x, y)` and then steps through every entry equal to it (a whole series).
fn series_sql(step: SeriesStep) -> String {
    let condition = match step {
        SeriesStep::First => "",
        SeriesStep::FirstOf => "AND attr = ?2",
        SeriesStep::NextDataset => "AND attr = ?2 AND dataset_id > ?3",
        SeriesStep::NextAttr => "AND attr > ?2",
    };
    format!(
        "SELECT attr, dataset_id FROM temporal_instances
         WHERE hid = ?1 {condition}
         ORDER BY attr, dataset_id LIMIT 1"
    )
}

/// One series' instances in a window of `column`, newest first, at most `?6` of them:
/// one range of an index or of the table in that order, except for `modified_at`
/// (no index; the series' rows are sorted, see schema version 8).
fn history_sql(column: &str) -> String {
    format!(
        "SELECT {column}, seq, {INSTANCE_COLUMNS} FROM temporal_instances
         WHERE hid = ?1 AND attr = ?2 AND dataset_id = ?3
           AND {column} IS NOT NULL AND {column} >= ?4 AND {column} < ?5
         ORDER BY {column} DESC, seq DESC LIMIT ?6"
    )
}

fn time_column(property: TimeProperty) -> &'static str {
    match property {
        TimeProperty::ObservedAt => "observed_at",
        TimeProperty::CreatedAt => "created_at",
        TimeProperty::ModifiedAt => "modified_at",
        TimeProperty::DeletedAt => "deleted_at",
    }
}

/// Text bounds `from <= t < until` of a window. Stored stamps start with a digit of
/// the year, so `'0'` is at or below every one and `'~'` above: an open side still
/// gives the index a range, and one statement serves every window. `'0'` rather than
/// `''`: a missing `createdAt` is stored as `''` ([`stored_created_at`]) and belongs
/// in no window.
fn text_bounds(window: Option<&TimeRel>) -> (String, String) {
    let from = window
        .and_then(TimeRel::start)
        .map_or_else(|| "0".to_owned(), stamp);
    let until = window
        .and_then(TimeRel::end)
        .map_or_else(|| "~".to_owned(), stamp);
    (from, until)
}

fn history_in(
    conn: &Connection,
    tenant: &Tenant,
    id: &str,
    read: &HistoryRead,
) -> Result<Vec<TemporalInstance>, StoreError> {
    let backend = StoreError::backend;
    let (from, until) = text_bounds(read.window.as_ref());
    let hid = match history_at(conn, tenant, id)? {
        None => return Ok(Vec::new()),
        Some(HistoryAt::Implied(implied, entity)) => {
            return implied_history(&implied.rows(&entity), read, &from, &until).map_err(backend)
        }
        Some(HistoryAt::Rows(hid)) => hid,
    };
    let column = time_column(read.time_property);
    // Newest first, so that lastN is a LIMIT on each series' range.
    let limit = read
        .last_n
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut select = conn.prepare_cached(&history_sql(column)).map_err(backend)?;
    let mut found: Vec<(String, i64, TemporalInstance)> = Vec::new();
    for (attr, dataset) in series_of(conn, hid, &read.attrs)? {
        let rows = select
            .query_map(params![hid, attr, dataset, from, until, limit], |row| {
                Ok((row.get(0)?, row.get(1)?, row_to_instance(row, 2)?))
            })
            .map_err(backend)?;
        for row in rows {
            found.push(row.map_err(backend)?);
        }
    }
    // Series merged in time order, ties in recording order.
    found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(found.into_iter().map(|(_, _, instance)| instance).collect())
}

/// An implied instance in the window of a read: its stamp of the time property and
/// its place in the first write (its `seq` less one, so it orders as `seq` does).
type InWindow<'a> = (&'a str, usize);

/// [`history_in`] of an implied history (`rows`, see [`Implied`]): its
/// instances filtered, limited per series and ordered as the statements of
/// [`history_sql`] do rows (stamps compare as text there too).
fn implied_history(
    rows: &[InstanceRow],
    read: &HistoryRead,
    from: &str,
    until: &str,
) -> rusqlite::Result<Vec<TemporalInstance>> {
    let stored: Vec<StoredInstance<'_>> = rows.iter().map(InstanceRow::stored).collect();
    let mut series: BTreeMap<(&str, &str), Vec<InWindow<'_>>> = BTreeMap::new();
    for (index, instance) in stored.iter().enumerate() {
        let wanted = read.attrs.is_empty() || read.attrs.iter().any(|a| *a == instance.attr);
        match instance.time(read.time_property) {
            Some(at) if wanted && from <= at && at < until => series
                .entry((&instance.attr, &instance.dataset_id))
                .or_default()
                .push((at, index)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for mut instances in series.into_values() {
        // Newest first, so that lastN keeps the newest of each series.
        instances.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(n) = read.last_n {
            instances.truncate(n);
        }
        found.extend(instances);
    }
    // Series merged in time order, ties in recording order.
    found.sort_unstable();
    let order: Vec<usize> = found.into_iter().map(|(_, index)| index).collect();
    let mut stored: Vec<Option<StoredInstance<'_>>> = stored.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|index| stored[index].take())
        .map(|instance| instance.into_instance(0))
        .collect()
}

fn rollups_in(
    conn: &Connection,
    tenant: &Tenant,
    id: &str,
    attrs: &[String],
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<HourlyRollup>, StoreError> {
    let backend = StoreError::backend;
    let hid = match history_at(conn, tenant, id)? {
        None => return Ok(Vec::new()),
        Some(HistoryAt::Implied(_, entity)) => {
            // In (attribute, dataset id, hour) order, as the statements below give them.
            let mut rollups = HourlyRollup::of_entity(&entity.attributes);
            rollups.retain(|r| {
                (attrs.is_empty() || attrs.contains(&r.name))
                    && from.is_none_or(|from| r.hour >= from)
                    && until.is_none_or(|until| r.hour < until)
            });
            return Ok(rollups);
        }
        Some(HistoryAt::Rows(hid)) => hid,
    };
    let from = from.map_or_else(String::new, stamp);
    let until = until.map_or_else(|| "~".to_owned(), stamp);
    let columns = "attr, dataset_id, hour, count_all, count_numeric, sum_value, sum_sq, \
                   min_value, max_value";
    let to_rollup = |row: &Row<'_>| {
        let count = |i: usize| {
            row.get::<_, i64>(i)
                .and_then(|n| u64::try_from(n).map_err(|e| unreadable(i, e)))
        };
        let dataset: String = row.get(1)?;
        Ok(HourlyRollup {
            name: row.get(0)?,
            dataset_id: (!dataset.is_empty()).then_some(dataset),
            hour: time_at(row, 2)?,
            count: count(3)?,
            numeric_count: count(4)?,
            sum: row.get(5)?,
            sum_sq: row.get(6)?,
            min: row.get(7)?,
            max: row.get(8)?,
        })
    };
    let mut rollups = Vec::new();
    if attrs.is_empty() {
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {columns} FROM temporal_rollups
                 WHERE hid = ?1 AND hour >= ?2 AND hour < ?3
                 ORDER BY attr, dataset_id, hour"
            ))
            .map_err(backend)?;
        let rows = select
            .query_map(params![hid, from, until], to_rollup)
            .map_err(backend)?;
        for row in rows {
            rollups.push(row.map_err(backend)?);
        }
        return Ok(rollups);
    }
    let mut names: Vec<&str> = attrs.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut select = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM temporal_rollups
             WHERE hid = ?1 AND attr = ?2 AND hour >= ?3 AND hour < ?4
             ORDER BY dataset_id, hour"
        ))
        .map_err(backend)?;
    for name in names {
        let rows = select
            .query_map(params![hid, name, from, until], to_rollup)
            .map_err(backend)?;
        for row in rows {
            rollups.push(row.map_err(backend)?);
        }
    }
    Ok(rollups)
}

/// A stored instance found by its id: its key (history, stored dataset id and
/// `createdAt`, recording number; the attribute is the one looked up) and its
/// `observedAt`.
struct Found {
    hid: i64,
    dataset_id: String,
    created_at: String,
    seq: i64,
    observed_at: Option<DateTime<Utc>>,
}

/// The condition that picks one instance by its whole key, `?1` to `?5`: the hid,
/// attribute, stored dataset id, stored `createdAt` and `seq` of a [`Found`].
const BY_KEY: &str = "hid = ?1 AND attr = ?2 AND dataset_id = ?3 AND created_at = ?4 AND seq = ?5";

/// Finds an instance of the history `hid` in its rows.
fn find_instance(
    conn: &Connection,
    hid: i64,
    attr: &str,
    instance_id: &str,
) -> Result<Option<Found>, StoreError> {
    conn.prepare_cached(FIND_INSTANCE_SQL)
        .and_then(|mut s| {
            s.query_row(params![hid, attr, instance_id], |row| {
                Ok(Found {
                    hid,
                    dataset_id: row.get(0)?,
                    created_at: row.get(1)?,
                    seq: row.get(2)?,
                    observed_at: opt_time_at(row, 3)?,
                })
            })
            .optional()
        })
        .map_err(StoreError::backend)
}

/// The SQL of [`find_instance`]: a range over the attribute's rows in the table,
/// filtered by instance id, bounded by that attribute's history (no index of instance
/// ids: it cost every recorded instance an insert, for a rare read).
const FIND_INSTANCE_SQL: &str =
    "SELECT dataset_id, created_at, seq, observed_at FROM temporal_instances
     WHERE hid = ?1 AND attr = ?2 AND instance_id = ?3
     ORDER BY seq LIMIT 1";

/// Recomputes the rollup of the series-hour an instance observed at `observed_at`
/// counts in, if it has one.
fn recompute_at(
    tx: &Connection,
    hid: i64,
    attr: &str,
    dataset_id: &str,
    observed_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    match observed_at {
        Some(at) => recompute_rollup(tx, hid, attr, dataset_id, hour_of(at)),
        None => Ok(()),
    }
}

/// The key of an entity's history, all of it in rows, if it has one: for an edit. An
/// implied history is written out first.
fn hid_in_rows(tx: &Connection, tenant: &Tenant, id: &str) -> Result<Option<i64>, StoreError> {
    match history_at(tx, tenant, id)? {
        None => Ok(None),
        Some(HistoryAt::Rows(hid)) => Ok(Some(hid)),
        Some(HistoryAt::Implied(implied, entity)) => {
            implied.write_out(tx, tenant, &entity).map(Some)
        }
    }
}

/// Finds an instance for an edit, its history all in rows.
fn find_instance_in_rows(
    tx: &Connection,
    tenant: &Tenant,
    id: &str,
    attr: &str,
    instance_id: &str,
) -> Result<Option<Found>, StoreError> {
    match hid_in_rows(tx, tenant, id)? {
        Some(hid) => find_instance(tx, hid, attr, instance_id),
        None => Ok(None),
    }
}

fn replace_in(
    tx: &Connection,
    tenant: &Tenant,
    id: &str,
    attr: &str,
    instance_id: &str,
    attribute: &Attribute,
) -> Result<bool, StoreError> {
    let Some(old) = find_instance_in_rows(tx, tenant, id, attr, instance_id)? else {
        return Ok(false);
    };
    let dataset_id = dataset_key(attribute.dataset_id.as_deref());
    tx.prepare_cached(&format!(
        "UPDATE temporal_instances SET dataset_id = ?6, observed_at = ?7, created_at = ?8,
             modified_at = ?9, doc = ?10
         WHERE {BY_KEY}"
    ))
    .and_then(|mut s| {
        s.execute(params![
            old.hid,
            attr,
            old.dataset_id,
            old.created_at,
            old.seq,
            dataset_id,
            opt_stamp(attribute.observed_at),
            stored_created_at(attribute),
            opt_stamp(attribute.modified_at),
            store::doc::instance_doc_text(attribute)
        ])
    })
    .map_err(StoreError::backend)?;
    // The instance may have moved to another hour or dataset: both sides are redone.
    recompute_at(tx, old.hid, attr, &old.dataset_id, old.observed_at)?;
    let moved = old.dataset_id != dataset_id
        || old.observed_at.map(hour_of) != attribute.observed_at.map(hour_of);
    if moved {
        recompute_at(tx, old.hid, attr, dataset_id, attribute.observed_at)?;
    }
    Ok(true)
}

fn delete_instance_in(
    tx: &Connection,
    tenant: &Tenant,
    id: &str,
    attr: &str,
    instance_id: &str,
) -> Result<bool, StoreError> {
    let Some(old) = find_instance_in_rows(tx, tenant, id, attr, instance_id)? else {
        return Ok(false);
    };
    tx.prepare_cached(&format!("DELETE FROM temporal_instances WHERE {BY_KEY}"))
        .and_then(|mut s| {
            s.execute(params![
                old.hid,
                attr,
                old.dataset_id,
                old.created_at,
                old.seq
            ])
        })
        .map_err(StoreError::backend)?;
    recompute_at(tx, old.hid, attr, &old.dataset_id, old.observed_at)?;
    Ok(true)
}

/// Deletes whole series of one attribute, with their rollups (nothing remains of
/// them to recompute from).
fn delete_series_in(
    tx: &Connection,
    tenant: &Tenant,
    id: &str,
    attr: &str,
    dataset: &DatasetSelector,
) -> Result<bool, StoreError> {
    let backend = StoreError::backend;
    let Some(hid) = hid_in_rows(tx, tenant, id)? else {
        return Ok(false);
    };
    let dataset_id = match dataset {
        DatasetSelector::Default => Some(""),
        DatasetSelector::Id(d) => Some(d.as_str()),
        DatasetSelector::All => None,
    };
    let mut deleted = 0;
    for table in ["temporal_instances", "temporal_rollups"] {
        let n = match dataset_id {
            Some(dataset_id) => tx
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE hid = ?1 AND attr = ?2 AND dataset_id = ?3"
                ))
                .and_then(|mut s| s.execute(params![hid, attr, dataset_id])),
            None => tx
                .prepare_cached(&format!("DELETE FROM {table} WHERE hid = ?1 AND attr = ?2"))
                .and_then(|mut s| s.execute(params![hid, attr])),
        }
        .map_err(backend)?;
        if table == "temporal_instances" {
            deleted = n;
        }
    }
    Ok(deleted > 0)
}

/// Deletes an entity's history. An implied one goes with its row's columns; the
/// entity then has none, until its next write begins one.
fn delete_history_in(tx: &Connection, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
    let Some(hid) = hid_of(tx, tenant, id)? else {
        let cleared = tx
            .prepare_cached(
                "UPDATE entities SET history_at = NULL, history_ids = NULL
                 WHERE tenant = ?1 AND id = ?2 AND history_ids IS NOT NULL",
            )
            .and_then(|mut s| s.execute(params![tenant.name(), id]))
            .map_err(StoreError::backend)?;
        return Ok(cleared > 0);
    };
    for table in ["temporal_instances", "temporal_rollups", "temporal_heads"] {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE hid = ?1"))
            .and_then(|mut s| s.execute([hid]))
            .map_err(StoreError::backend)?;
    }
    Ok(true)
}

#[async_trait]
impl TemporalStore for SqliteStore {
    async fn temporal_head(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<TemporalHead>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |conn| head_in(conn, &tenant, &id)).await
    }

    async fn temporal_heads(
        &self,
        tenant: &Tenant,
        ids: &[String],
    ) -> Result<Vec<TemporalHead>, StoreError> {
        let (tenant, ids) = (tenant.clone(), ids.to_vec());
        self.read(move |conn| {
            if !ids.is_empty() {
                // One primary-key lookup per id: no statement grows with the list.
                let mut ids: Vec<&String> = ids.iter().collect();
                ids.sort_unstable();
                ids.dedup();
                let mut heads = Vec::new();
                for id in ids {
                    heads.extend(head_in(conn, &tenant, id)?);
                }
                return Ok(heads);
            }
            let backend = StoreError::backend;
            let mut heads = conn
                .prepare_cached(&format!(
                    "SELECT {HEAD_COLUMNS} FROM temporal_heads WHERE tenant = ?1"
                ))
                .and_then(|mut s| {
                    s.query_map([tenant.name()], row_to_head)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(backend)?;
            if let Some(rows) = crate::writer::tenant_rows(conn, &tenant)? {
                let mut select = conn
                    .prepare_cached(
                        "SELECT doc, history_at, history_ids FROM entities
                         WHERE seq >= ?1 AND seq < ?2 AND history_ids IS NOT NULL",
                    )
                    .map_err(backend)?;
                let implied = select
                    .query_map([rows.start, rows.end], |row| {
                        Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
                    })
                    .map_err(backend)?;
                for found in implied {
                    let (doc, at, ids): (String, String, String) = found.map_err(backend)?;
                    heads.push(Implied::read(&at, &ids)?.head(&crate::decode(&doc)?));
                }
            }
            heads.sort_unstable_by(|a, b| a.id.cmp(&b.id));
            Ok(heads)
        })
        .await
    }

    async fn history(
        &self,
        tenant: &Tenant,
        id: &str,
        read: &HistoryRead,
    ) -> Result<Vec<TemporalInstance>, StoreError> {
        let (tenant, id, read) = (tenant.clone(), id.to_owned(), read.clone());
        self.read(move |conn| history_in(conn, &tenant, &id, &read))
            .await
    }

    async fn hourly_rollups(
        &self,
        tenant: &Tenant,
        id: &str,
        attrs: &[String],
        from: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<HourlyRollup>, StoreError> {
        let (tenant, id, attrs) = (tenant.clone(), id.to_owned(), attrs.to_vec());
        self.read(move |conn| rollups_in(conn, &tenant, &id, &attrs, from, until))
            .await
    }

    async fn history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
    ) -> Result<Option<TemporalInstance>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        let (attr, instance_id) = (attr.to_owned(), instance_id.to_owned());
        self.read(move |conn| {
            let hid = match history_at(conn, &tenant, &id)? {
                None => return Ok(None),
                Some(HistoryAt::Implied(implied, entity)) => {
                    let rows = implied.rows(&entity);
                    let found = rows
                        .iter()
                        .find(|i| i.attr == attr && i.instance_id == instance_id);
                    return found
                        .map(|i| i.stored().into_instance(0))
                        .transpose()
                        .map_err(StoreError::backend);
                }
                Some(HistoryAt::Rows(hid)) => hid,
            };
            let Some(found) = find_instance(conn, hid, &attr, &instance_id)? else {
                return Ok(None);
            };
            conn.prepare_cached(&format!(
                "SELECT {INSTANCE_COLUMNS} FROM temporal_instances WHERE {BY_KEY}"
            ))
            .and_then(|mut s| {
                let key = params![
                    found.hid,
                    attr,
                    found.dataset_id,
                    found.created_at,
                    found.seq
                ];
                s.query_row(key, |row| row_to_instance(row, 0))
            })
            .map(Some)
            .map_err(StoreError::backend)
        })
        .await
    }

    async fn replace_history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
        attribute: Attribute,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        let (attr, instance_id) = (attr.to_owned(), instance_id.to_owned());
        self.writer
            .run(move |tx| replace_in(tx, &tenant, &id, &attr, &instance_id, &attribute))
            .await
    }

    async fn delete_history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        let (attr, instance_id) = (attr.to_owned(), instance_id.to_owned());
        self.writer
            .run(move |tx| delete_instance_in(tx, &tenant, &id, &attr, &instance_id))
            .await
    }

    async fn delete_attribute_history(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        dataset: &DatasetSelector,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        let (attr, dataset) = (attr.to_owned(), dataset.clone());
        self.writer
            .run(move |tx| delete_series_in(tx, &tenant, &id, &attr, &dataset))
            .await
    }

    async fn delete_history(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.writer
            .run(move |tx| delete_history_in(tx, &tenant, &id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan of `sql` (its parameters bound to NULL: SQLite plans without
    /// looking at them), one detail line per step.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; statement.parameter_count()];
        let rows = statement
            .query_map(rusqlite::params_from_iter(nulls), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// `sql` reads one range of `index` in the order asked for: no scan, no sort.
    fn assert_searches(conn: &Connection, sql: &str, index: &str) {
        let steps = plan(conn, sql);
        assert!(
            steps.len() == 1 && steps[0].starts_with("SEARCH") && steps[0].contains(index),
            "{sql}\n{steps:?}"
        );
    }

    #[test]
    fn history_reads_are_index_ranges_in_time_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        // observedAt (the default) and deletedAt: a range of their own index, in order.
        for column in ["observed_at", "deleted_at"] {
            let index = format!("temporal_instances_by_{}", column.trim_end_matches("_at"));
            assert_searches(&conn, &history_sql(column), &index);
        }
        // createdAt: a range of the clustered table itself, in order.
        assert_searches(
            &conn,
            &history_sql("created_at"),
            "PRIMARY KEY (hid=? AND attr=? AND dataset_id=? AND created_at>? AND created_at<?)",
        );
        // modifiedAt: the series' rows in the table, sorted: bounded by the series.
        let steps = plan(&conn, &history_sql("modified_at"));
        assert!(
            steps.len() == 2
                && steps[0].starts_with("SEARCH")
                && steps[0].contains("PRIMARY KEY (hid=? AND attr=? AND dataset_id=?)")
                && steps[1] == "USE TEMP B-TREE FOR ORDER BY",
            "{steps:?}"
        );
        for step in SeriesStep::ALL {
            assert_searches(&conn, &series_sql(step), "PRIMARY KEY (hid=?");
        }
    }

    #[test]
    fn instance_reads_and_edits_are_bounded_by_their_attribute() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        // Finding an instance by id: the attribute's rows, sorted by recording order.
        let steps = plan(&conn, FIND_INSTANCE_SQL);
        assert!(
            steps.len() == 2
                && steps[0].starts_with("SEARCH")
                && steps[0].contains("PRIMARY KEY (hid=? AND attr=?)"),
            "{steps:?}"
        );
        // Then it is read, replaced or deleted by its whole key.
        let whole = "PRIMARY KEY (hid=? AND attr=? AND dataset_id=? AND created_at=? AND seq=?)";
        for sql in [
            format!("SELECT doc FROM temporal_instances WHERE {BY_KEY}"),
            format!("UPDATE temporal_instances SET doc = ?6 WHERE {BY_KEY}"),
            format!("DELETE FROM temporal_instances WHERE {BY_KEY}"),
        ] {
            assert_searches(&conn, &sql, whole);
        }
    }

    #[test]
    fn replacing_an_observation_is_one_search_of_the_observed_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let steps = plan(&conn, REPLACE_OBSERVED_SQL);
        assert!(
            steps.len() == 1
                && steps[0].contains("temporal_instances_by_observed")
                && steps[0].contains("observed_at=?"),
            "{steps:?}"
        );
    }

    /// An instance's `datasetId`, `observedAt`, `createdAt` and `modifiedAt` are kept
    /// in its row's columns only, and read back from them, for rows written before
    /// (whose documents hold them too) as for new ones; a sub-attribute keeps its own.
    #[tokio::test]
    async fn instance_keys_live_in_columns_and_read_back_whole() {
        use chrono::TimeZone;
        use ngsi_ld::model::AttributeValue;
        use store::{EntityStore, Modification, Write};
        const LEVEL: &str = "https://ex.org/level";
        const ID: &str = "urn:ngsi-ld:RiverLevel:1";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renkei.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let tenant = Tenant::default_tenant();
        let observed = Utc.with_ymd_and_hms(2024, 6, 1, 9, 30, 0).unwrap();
        let mut reliability = Attribute::new(AttributeValue::Property(serde_json::json!(0.9)));
        reliability.observed_at = Some(observed);
        let mut level = Attribute::new(AttributeValue::Property(serde_json::json!(2.4)));
        level.dataset_id = Some("urn:ngsi-ld:Dataset:gauge-a".to_owned());
        level.observed_at = Some(observed);
        level.unit_code = Some("MTR".to_owned());
        level
            .sub_attributes
            .insert("https://ex.org/reliability".to_owned(), vec![reliability]);
        let mut entity = Entity::new(ID, vec!["https://ex.org/RiverLevel".to_owned()]);
        entity
            .attributes
            .insert(LEVEL.to_owned(), vec![level.clone()]);
        let put = Modification::new(ID, move |_| Ok(Write::Put(entity)));
        let results = store.modify(&tenant, vec![put]).await.unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        let read = || async {
            let history = store
                .history(&tenant, ID, &HistoryRead::default())
                .await
                .unwrap();
            assert_eq!(history.len(), 1, "{history:?}");
            history.into_iter().next().unwrap()
        };
        let stored = read().await;
        let mut expected = level;
        expected.created_at = stored.attribute.created_at;
        expected.modified_at = stored.attribute.modified_at;
        assert!(expected.created_at.is_some() && expected.modified_at.is_some());
        assert_eq!(stored.attribute, expected);

        // The creation is implied by the entity's document; its rows, once written
        // out, hold the same instance.
        let mut raw = Connection::open(&path).unwrap();
        expand_in(&mut raw, &tenant);
        assert_eq!(read().await, stored);
        let doc: String = raw
            .query_row("SELECT doc FROM temporal_instances", [], |row| row.get(0))
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        for key in ["datasetId", "observedAt", "createdAt", "modifiedAt"] {
            assert!(doc.get(key).is_none(), "{key} in {doc}");
        }
        assert_eq!(doc["unitCode"], "MTR");
        assert!(doc["sub"]["https://ex.org/reliability"][0]["observedAt"].is_string());

        // A row written before: its document holds the keys as well.
        raw.execute(
            "UPDATE temporal_instances SET doc = ?1",
            [store::doc::attribute_to_doc(&expected).to_string()],
        )
        .unwrap();
        assert_eq!(read().await.attribute, expected);
        assert_eq!(
            store
                .history_instance(&tenant, ID, LEVEL, &stored.instance_id)
                .await
                .unwrap()
                .map(|i| i.attribute),
            Some(expected)
        );
    }

    /// Writes out every implied history of `tenant` in the database at `raw` as rows.
    fn expand_in(raw: &mut Connection, tenant: &Tenant) {
        let tx = raw.transaction().unwrap();
        let ids: Vec<String> = {
            let mut select = tx
                .prepare("SELECT id FROM entities WHERE tenant = ?1 AND history_ids IS NOT NULL")
                .unwrap();
            let rows = select.query_map([tenant.name()], |row| row.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert!(!ids.is_empty(), "no implied history");
        for id in ids {
            assert!(hid_in_rows(&tx, tenant, &id).unwrap().is_some());
        }
        tx.commit().unwrap();
    }

    /// A creation's history is implied by its entity's document, and reads exactly as
    /// its rows do once written out: for every time property, window, lastN and
    /// attribute filter, and each instance by its id. Its attributes hold instances of several dataset ids,
    /// ties of `observedAt` and one without it. Decoding refuses two instances of one
    /// attribute and dataset id, but the store does not rely on it: "pressure" has
    /// three, so lastN has a series to cut.
    #[tokio::test]
    async fn an_implied_first_write_reads_as_its_rows() {
        use chrono::TimeZone;
        use ngsi_ld::model::AttributeValue;
        use store::EntityStore;
        const ID: &str = "urn:ngsi-ld:WeatherObserved:1";
        let name = |n: &str| format!("https://ex.org/{n}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renkei.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let tenant = Tenant::named("urn:tenant:implied");
        let t = |minute: u32| Utc.with_ymd_and_hms(2025, 7, 1, 6, minute, 0).unwrap();
        let attribute = |value: i64, dataset: Option<&str>, observed: Option<u32>| {
            let mut a = Attribute::new(AttributeValue::Property(serde_json::json!(value)));
            a.dataset_id = dataset.map(str::to_owned);
            a.observed_at = observed.map(t);
            a
        };
        let mut entity = Entity::new(ID, vec![name("WeatherObserved")]);
        let attributes = [
            (
                "temperature",
                vec![
                    attribute(21, None, Some(20)),
                    attribute(22, Some("urn:ngsi-ld:Dataset:a"), Some(10)),
                    attribute(23, Some("urn:ngsi-ld:Dataset:b"), Some(20)),
                ],
            ),
            ("humidity", vec![attribute(60, None, Some(10))]),
            ("station", vec![attribute(7, None, None)]),
            (
                "pressure",
                vec![
                    attribute(1013, None, Some(30)),
                    attribute(1012, None, Some(10)),
                    attribute(1011, None, Some(20)),
                ],
            ),
        ];
        for (n, instances) in attributes {
            entity.attributes.insert(name(n), instances);
        }
        store.create_entity(&tenant, entity).await.unwrap();

        let mut raw = Connection::open(&path).unwrap();
        let rows = |raw: &Connection| -> i64 {
            raw.query_row("SELECT count(*) FROM temporal_instances", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(&raw), 0);

        let everything = store
            .history(&tenant, ID, &HistoryRead::default())
            .await
            .unwrap();
        assert_eq!(
            everything.len(),
            7,
            "the one without observedAt is not read"
        );
        let created = everything[0].attribute.created_at.unwrap();
        let windows = [
            None,
            Some(TimeRel::Before(t(20))),
            Some(TimeRel::After(t(20))),
            Some(TimeRel::Between(t(10), t(30))),
            Some(TimeRel::Before(created)),
            Some(TimeRel::After(created)),
        ];
        let attr_sets = [
            vec![],
            vec![name("temperature")],
            vec![name("pressure"), name("station"), name("absent")],
        ];
        let mut reads = Vec::new();
        for time_property in [
            TimeProperty::ObservedAt,
            TimeProperty::CreatedAt,
            TimeProperty::ModifiedAt,
            TimeProperty::DeletedAt,
        ] {
            for window in &windows {
                for last_n in [None, Some(1), Some(2)] {
                    for attrs in &attr_sets {
                        reads.push(HistoryRead {
                            attrs: attrs.clone(),
                            time_property,
                            window: *window,
                            last_n,
                        });
                    }
                }
            }
        }
        let read_all = || async {
            let mut seen = Vec::new();
            for read in &reads {
                seen.push(store.history(&tenant, ID, read).await.unwrap());
            }
            let all = store
                .history(
                    &tenant,
                    ID,
                    &HistoryRead {
                        time_property: TimeProperty::CreatedAt,
                        ..HistoryRead::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(all.len(), 8);
            for instance in &all {
                let found = store
                    .history_instance(&tenant, ID, &instance.name, &instance.instance_id)
                    .await
                    .unwrap();
                assert_eq!(found.as_ref(), Some(instance));
            }
            seen.push(all);
            seen
        };
        let hour = |h: u32| Utc.with_ymd_and_hms(2025, 7, 1, h, 0, 0).unwrap();
        let rollups_all = || async {
            let mut seen = Vec::new();
            for attrs in &attr_sets {
                for (from, until) in [
                    (None, None),
                    (Some(hour(6)), None),
                    (None, Some(hour(6))),
                    (Some(hour(6)), Some(hour(7))),
                    (Some(hour(7)), None),
                ] {
                    let rollups = store.hourly_rollups(&tenant, ID, attrs, from, until);
                    seen.push(rollups.await.unwrap());
                }
            }
            seen
        };
        let stored_rollups = |raw: &Connection| -> i64 {
            raw.query_row("SELECT count(*) FROM temporal_rollups", [], |r| r.get(0))
                .unwrap()
        };
        let implied = read_all().await;
        assert!(implied.iter().any(Vec::is_empty) && implied.iter().any(|r| r.len() > 1));
        let implied_rollups = rollups_all().await;
        assert_eq!(implied_rollups[0].len(), 5, "{:?}", implied_rollups[0]);
        assert!(implied_rollups.iter().any(Vec::is_empty));
        assert_eq!(stored_rollups(&raw), 0);
        let ids: BTreeSet<&str> = implied
            .last()
            .unwrap()
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect();
        assert_eq!(ids.len(), 8, "{ids:?}");
        expand_in(&mut raw, &tenant);
        assert_eq!(rows(&raw), 8);
        assert_eq!(read_all().await, implied);
        assert_eq!(stored_rollups(&raw), 5);
        assert_eq!(rollups_all().await, implied_rollups);
    }

    /// An implied first write is written out, unchanged, before its entity's document
    /// changes (an update adds to the history) or goes (a deletion, after which the
    /// entity is created again on the same history; a purge).
    #[tokio::test]
    async fn an_implied_first_write_is_written_out_before_its_document_changes() {
        use ngsi_ld::model::AttributeValue;
        use store::{EntityStore, Modification, Write};
        const ID: &str = "urn:ngsi-ld:Shelter:9";
        const STATUS: &str = "https://ex.org/status";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renkei.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let tenant = Tenant::default_tenant();
        let shelter = |status: &str| {
            let mut entity = Entity::new(ID, vec!["https://ex.org/Shelter".to_owned()]);
            entity.attributes.insert(
                STATUS.to_owned(),
                vec![Attribute::new(AttributeValue::Property(serde_json::json!(
                    status
                )))],
            );
            entity.attributes.insert(
                "https://ex.org/capacity".to_owned(),
                vec![Attribute::new(AttributeValue::Property(serde_json::json!(
                    120
                )))],
            );
            entity
        };
        let all = HistoryRead {
            time_property: TimeProperty::CreatedAt,
            ..HistoryRead::default()
        };
        let history = || async { store.history(&tenant, ID, &all).await.unwrap() };
        let raw = Connection::open(&path).unwrap();
        let rows = || -> i64 {
            raw.query_row("SELECT count(*) FROM temporal_instances", [], |r| r.get(0))
                .unwrap()
        };

        store.create_entity(&tenant, shelter("open")).await.unwrap();
        let created = history().await;
        assert_eq!((created.len(), rows()), (2, 0));

        let full = shelter("full");
        let update = Modification::new(ID, move |_| Ok(Write::Put(full)));
        let results = store.modify(&tenant, vec![update]).await.unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let updated = history().await;
        assert_eq!(rows(), 3, "the two created and the changed status");
        assert_eq!(updated[..2], created[..]);
        assert_eq!(
            updated[2].attribute.value,
            AttributeValue::Property(serde_json::json!("full"))
        );

        let delete = Modification::new(ID, |_| Ok(Write::Delete));
        let results = store.modify(&tenant, vec![delete]).await.unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        store.create_entity(&tenant, shelter("open")).await.unwrap();
        let again = history().await;
        assert_eq!(rows(), 7, "and two deletion records, two created again");
        assert_eq!(again[..3], updated[..]);
        assert_eq!(again.len(), 7);
        assert!(again[3..5].iter().all(|i| i.deleted_at.is_some()));
        let ids: BTreeSet<&str> = again.iter().map(|i| i.instance_id.as_str()).collect();
        assert_eq!(ids.len(), 7, "{ids:?}");

        // A purge writes an implied first write out before it deletes: another
        // shelter's, never written again.
        let mut other = shelter("open");
        other.id = "urn:ngsi-ld:Shelter:10".to_owned();
        store.create_entity(&tenant, other).await.unwrap();
        let other_history = || async {
            store
                .history(&tenant, "urn:ngsi-ld:Shelter:10", &all)
                .await
                .unwrap()
        };
        let created = other_history().await;
        assert_eq!((created.len(), rows()), (2, 7));
        let purge = ngsi_ld::query::EntityQuery {
            ids: vec!["urn:ngsi-ld:Shelter:10".to_owned()],
            ..ngsi_ld::query::EntityQuery::default()
        };
        assert_eq!(store.delete_matching(&tenant, &purge).await.unwrap(), 1);
        let purged = other_history().await;
        assert_eq!(rows(), 11, "its two instances and two deletion records");
        assert_eq!(purged[..2], created[..]);
        assert!(purged[2..].iter().all(|i| i.deleted_at.is_some()));
        assert_eq!(purged.len(), 4);
    }

    /// What the conformance case leaves out: a given list holding one instant twice
    /// (the later wins), a replacing instance that is deleted (the replaced one leaves
    /// its rollup), and a diff-recorded instance at a stored instant (kept beside it).
    #[tokio::test]
    async fn given_duplicates_and_deleted_replacements_keep_rollups_exact() {
        use chrono::TimeZone;
        use ngsi_ld::model::AttributeValue;
        use store::{EntityStore, Modification, Write};
        const SPEED: &str = "https://ex.org/speed";
        const ID: &str = "urn:ngsi-ld:Vehicle:1";
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("renkei.db"))
            .await
            .unwrap();
        let tenant = Tenant::default_tenant();
        let at = |s: i64| Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, s as u32).unwrap();
        let speed = |v: i64, s: Option<i64>| {
            let mut a = Attribute::new(AttributeValue::Property(serde_json::json!(v)));
            a.observed_at = s.map(at);
            a
        };
        let observed = |v: i64, s: i64| TemporalInstance::new(SPEED, speed(v, Some(s)));
        let write = |m: Modification| {
            let store = &store;
            let tenant = &tenant;
            async move {
                let results = store.modify(tenant, vec![m]).await.unwrap();
                assert!(results.iter().all(Result::is_ok), "{results:?}");
            }
        };
        let put = |v: i64, s: Option<i64>| {
            let mut e = Entity::new(ID, vec!["https://ex.org/Vehicle".to_owned()]);
            e.attributes.insert(SPEED.to_owned(), vec![speed(v, s)]);
            Modification::new(ID, move |_| Ok(Write::Put(e)))
        };
        let check = |expected: Vec<(i64, i64)>| {
            let store = &store;
            let tenant = &tenant;
            async move {
                let history = store
                    .history(tenant, ID, &HistoryRead::default())
                    .await
                    .unwrap();
                let mut seen: Vec<(i64, i64)> = history
                    .iter()
                    .filter(|i| i.deleted_at.is_none())
                    .map(|i| match &i.attribute.value {
                        AttributeValue::Property(v) => (
                            i.attribute.observed_at.unwrap().timestamp() - at(0).timestamp(),
                            v.as_i64().unwrap(),
                        ),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, expected);
                let held = store
                    .hourly_rollups(tenant, ID, &[], None, None)
                    .await
                    .unwrap();
                assert_eq!(held, HourlyRollup::of_all(&history));
            }
        };
        let given = vec![observed(1, 1), observed(2, 2), observed(3, 1)];
        write(put(3, Some(1)).with_history(given)).await;
        check(vec![(1, 3), (2, 2)]).await;
        let mut gone = observed(0, 2);
        gone.deleted_at = Some(at(5));
        write(put(3, Some(1)).with_history(vec![gone])).await;
        check(vec![(1, 3)]).await;
        // Recorded from a diff: kept beside the stored instance of the same instant.
        write(put(4, Some(1))).await;
        check(vec![(1, 3), (1, 4)]).await;
    }
}
