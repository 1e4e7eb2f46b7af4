//! A batch of modifications on the writer thread. Each item is looked up and applied
//! in the writer's transaction, in order. What it then writes (the stored document,
//! its index rows and its history) is encoded on a helper thread while the writer
//! looks up and applies the next items, so that a large batch keeps two cores busy
//! instead of one. Items are written in their order; an item whose entity an earlier
//! item of the batch is still having encoded waits until that one is written, so it
//! sees what the earlier one wrote.

use std::collections::{HashSet, VecDeque};
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use ngsi_ld::model::Entity;
use ngsi_ld::temporal::instances_of_change;
use ngsi_ld::NgsiError;
use rusqlite::Transaction;
use store::{ModifyFn, StoreError, Tenant, Write};

use crate::temporal::{self, Head, HistoryRows};
use crate::writer::{self, EntityRows, SubscribedTenants};

/// Batches smaller than this are encoded on the writer thread itself: starting a
/// helper costs more than it saves on a few items.
const PIPELINE_MIN: usize = 16;

/// Items applied and handed to the helper but not yet written, at most: enough to
/// keep the helper busy, few enough that a batch's encoded rows never pile up.
const IN_FLIGHT: usize = 64;

/// One modification as the writer receives it.
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) apply: ModifyFn,
    /// The history it carries, encoded beforehand (see [`HistoryRows::given`]).
    pub(crate) given: Option<HistoryRows>,
}

/// What a batch did: each item's outcome in order, whether anything was written, and
/// whether a change row was logged (the dispatcher is then woken).
pub(crate) struct Done {
    pub(crate) results: Vec<Result<Write, NgsiError>>,
    pub(crate) wrote: bool,
    pub(crate) logged: bool,
}

/// An item applied to what is stored.
struct Applied {
    id: String,
    /// Row id and stored text, if the entity was stored. The text becomes the
    /// change log's `before`.
    seq: Option<i64>,
    stored: Option<String>,
    /// The stored entity, kept when the change must be computed from it (the item
    /// carries no history of its own).
    before: Option<Entity>,
    given: Option<HistoryRows>,
    outcome: Result<Write, NgsiError>,
}

/// An item ready to be written.
struct Encoded {
    id: String,
    seq: Option<i64>,
    stored: Option<String>,
    outcome: Result<Write, NgsiError>,
    /// The rows of an entity put.
    rows: Option<EntityRows>,
    /// The history a put, or the deletion of a stored entity, records.
    history: Option<(Head, HistoryRows)>,
}

/// Applies and writes `items` in `tx`, in order, at the instant `now`.
pub(crate) fn run(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    subscribed: &SubscribedTenants,
    items: Vec<Item>,
    now: DateTime<Utc>,
) -> Result<Done, StoreError> {
    let mut done = Done {
        results: Vec::with_capacity(items.len()),
        wrote: false,
        logged: false,
    };
    let mut write_one = |encoded| write(tx, tenant, subscribed, encoded, now, &mut done);
    if items.len() < PIPELINE_MIN {
        for item in items {
            write_one(encode(apply(tx, tenant, item)?, now)?)?;
        }
    } else {
        std::thread::scope(|scope| {
            let (to_helper, applied) = mpsc::channel::<Applied>();
            let (encoded_tx, encoded) = mpsc::channel::<Result<Encoded, StoreError>>();
            scope.spawn(move || {
                for item in applied {
                    if encoded_tx.send(encode(item, now)).is_err() {
                        break;
                    }
                }
            });
            // The ids handed to the helper and not yet written, oldest first (the
            // helper keeps their order).
            let mut in_flight: VecDeque<String> = VecDeque::new();
            let mut pending: HashSet<String> = HashSet::new();
            let mut write_next = |in_flight: &mut VecDeque<String>,
                                  pending: &mut HashSet<String>,
                                  next: Result<Encoded, StoreError>|
             -> Result<(), StoreError> {
                if let Some(id) = in_flight.pop_front() {
                    pending.remove(&id);
                }
                write_one(next?)
            };
            for item in items {
                while pending.contains(&item.id) || in_flight.len() >= IN_FLIGHT {
                    let next = encoded.recv().map_err(|_| helper_stopped())?;
                    write_next(&mut in_flight, &mut pending, next)?;
                }
                let applied = apply(tx, tenant, item)?;
                pending.insert(applied.id.clone());
                in_flight.push_back(applied.id.clone());
                to_helper.send(applied).map_err(|_| helper_stopped())?;
                while let Ok(next) = encoded.try_recv() {
                    write_next(&mut in_flight, &mut pending, next)?;
                }
            }
            drop(to_helper);
            while !in_flight.is_empty() {
                let next = encoded.recv().map_err(|_| helper_stopped())?;
                write_next(&mut in_flight, &mut pending, next)?;
            }
            Ok(())
        })?;
    }
    Ok(done)
}

#[derive(Debug, thiserror::Error)]
#[error("the thread encoding a batch's rows stopped")]
struct HelperStopped;

fn helper_stopped() -> StoreError {
    StoreError::backend(HelperStopped)
}

/// Looks the item's entity up in `tx` and applies the item to it.
fn apply(tx: &Transaction<'_>, tenant: &Tenant, item: Item) -> Result<Applied, StoreError> {
    let (seq, stored) = writer::stored(tx, tenant, &item.id)?.unzip();
    let current = stored.as_deref().map(crate::decode).transpose()?;
    // `apply` consumes the entity: a copy is kept only to compute the change when
    // the item carries no history of its own.
    let before = if item.given.is_none() {
        current.clone()
    } else {
        None
    };
    Ok(Applied {
        outcome: (item.apply)(current),
        id: item.id,
        seq,
        stored,
        before,
        given: item.given,
    })
}

/// Encodes what an applied item writes; touches no database, so any thread may run it.
fn encode(applied: Applied, now: DateTime<Utc>) -> Result<Encoded, StoreError> {
    let Applied {
        id,
        seq,
        stored,
        before,
        given,
        outcome,
    } = applied;
    let history_of = |before: Option<&Entity>, after: Option<&Entity>| {
        given.unwrap_or_else(|| HistoryRows::new(&instances_of_change(before, after, now)))
    };
    let (rows, history) = match &outcome {
        Ok(Write::Put(entity)) => {
            let history = history_of(before.as_ref(), Some(entity));
            (
                Some(EntityRows::new(entity)),
                Some((Head::of(entity, false), history)),
            )
        }
        Ok(Write::Delete) if seq.is_some() => {
            // Deleted, so it was stored: `before` is it, unless a carried history
            // made the copy needless.
            let before = match before {
                Some(before) => before,
                None => stored
                    .as_deref()
                    .map(crate::decode)
                    .transpose()?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?,
            };
            let history = history_of(Some(&before), None);
            (None, Some((Head::of(&before, true), history)))
        }
        Ok(Write::Delete | Write::Unchanged) | Err(_) => (None, None),
    };
    Ok(Encoded {
        id,
        seq,
        stored,
        outcome,
        rows,
        history,
    })
}

/// Writes an encoded item in `tx` and adds its outcome to `done`.
fn write(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    subscribed: &SubscribedTenants,
    encoded: Encoded,
    now: DateTime<Utc>,
    done: &mut Done,
) -> Result<(), StoreError> {
    let Encoded {
        id,
        seq,
        stored,
        outcome,
        rows,
        history,
    } = encoded;
    match (&outcome, seq) {
        (Ok(Write::Put(_)), _) => {
            done.wrote = true;
            if let Some(rows) = &rows {
                writer::put_entity(tx, tenant, rows, seq)?;
                if subscribed.check(tx, tenant)? {
                    done.logged = true;
                    writer::log_change(tx, tenant, &id, stored.as_deref(), Some(rows.doc()))?;
                }
            }
        }
        (Ok(Write::Delete), Some(seq)) => {
            done.wrote = true;
            writer::delete_seq(tx, seq)?;
            if subscribed.check(tx, tenant)? {
                done.logged = true;
                writer::log_change(tx, tenant, &id, stored.as_deref(), None)?;
            }
        }
        (Ok(Write::Delete), None) => done.wrote = true,
        (Ok(Write::Unchanged) | Err(_), _) => {}
    }
    if let Some((head, history)) = &history {
        temporal::record(tx, tenant, head, history, now)?;
    }
    done.results.push(outcome);
    Ok(())
}
