//! A batch of modifications on the writer thread. Each item is looked up and applied
//! in the writer's transaction, in order. What it then writes (the stored document
//! with its values and types, its location box and its history) is encoded on a
//! helper thread while the writer looks up and applies the next items, so that a
//! large batch keeps two cores busy instead of one. Items are written in their order;
//! an item whose entity an earlier item of the batch is still having encoded waits
//! until that one is written, so it sees what the earlier one wrote.

use std::collections::VecDeque;
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use ngsi_ld::model::Entity;
use ngsi_ld::temporal::instances_of_change;
use ngsi_ld::NgsiError;
use rusqlite::Transaction;
use store::{ModifyFn, StoreError, Tenant, Write};

use crate::temporal::{self, Documents, Head, HistoryRows, Stored};
use crate::writer::{self, EntityRows, EntityWrites, Lookup, SubscribedTenants};

/// Batches smaller than this are encoded on the writer thread itself: starting a
/// helper costs more than it saves on a few items.
const PIPELINE_MIN: usize = 16;

/// Items applied and handed to the helper but not yet written, at most: enough to
/// keep the helper busy, few enough that a batch's encoded rows never pile up.
const IN_FLIGHT: usize = 64;

/// Applied items handed to the helper at once (see `run`); well under `IN_FLIGHT`, so
/// the helper has the next chunk while the writer writes the last.
const CHUNK: usize = 8;

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
    /// What was found of the entity. A stored row's text becomes the change log's
    /// `before`.
    found: Lookup,
    /// The stored entity, kept when the change must be computed from it (the item
    /// carries no history of its own).
    before: Option<Entity>,
    given: Option<HistoryRows>,
    outcome: Result<Write, NgsiError>,
}

/// An item ready to be written.
struct Encoded {
    id: String,
    found: Lookup,
    outcome: Result<Write, NgsiError>,
    effect: Effect,
}

/// What an item writes, encoded.
enum Effect {
    /// The entity's rows, replacing those of row `seq` if it was stored, and the
    /// history the write records.
    Put {
        seq: Option<i64>,
        rows: EntityRows,
        head: Head,
        history: HistoryRows,
    },
    /// The stored entity at row `seq` goes, and its history records the deletion.
    Delete {
        seq: i64,
        head: Head,
        history: HistoryRows,
    },
    /// Nothing: the item was refused, left the entity unchanged, or deleted an
    /// entity that was not stored.
    Nothing,
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
    let mut writes = EntityWrites::new(tx);
    let mut write_one = |writes: &mut EntityWrites<'_>, encoded| {
        write(tx, writes, tenant, subscribed, encoded, now, &mut done)
    };
    if items.len() < PIPELINE_MIN {
        for item in items {
            let applied = apply(&mut writes, tenant, item)?;
            write_one(&mut writes, encode(applied, now)?)?;
        }
    } else {
        std::thread::scope(|scope| {
            let (to_helper, applied) = mpsc::channel::<Vec<Applied>>();
            let (encoded_tx, encoded) = mpsc::channel::<Result<Encoded, StoreError>>();
            // Named, so that a profile tells its time from the writer's.
            std::thread::Builder::new()
                .name("renkei-sqlite-encoder".into())
                .spawn_scoped(scope, move || {
                    for chunk in applied {
                        for item in chunk {
                            if encoded_tx.send(encode(item, now)).is_err() {
                                return;
                            }
                        }
                    }
                })
                .map_err(StoreError::backend)?;
            // The ids handed to the helper and not yet written, oldest first (the
            // helper keeps their order). At most `IN_FLIGHT`, so a linear search
            // costs less than keeping a set beside them.
            let mut in_flight: VecDeque<String> = VecDeque::new();
            // Applied items not yet handed over: they go `CHUNK` at a time, since
            // each hand-off wakes the helper, and on two cores the woken helper
            // takes the writer's core from it.
            let mut chunk: Vec<Applied> = Vec::with_capacity(CHUNK);
            let hand_over = |chunk: &mut Vec<Applied>| {
                if chunk.is_empty() {
                    return Ok(());
                }
                to_helper
                    .send(std::mem::replace(chunk, Vec::with_capacity(CHUNK)))
                    .map_err(|_| helper_stopped())
            };
            let mut write_next =
                |writes: &mut EntityWrites<'_>,
                 in_flight: &mut VecDeque<String>,
                 next: Result<Encoded, StoreError>| {
                    in_flight.pop_front();
                    write_one(writes, next?)
                };
            for item in items {
                if in_flight.contains(&item.id) || in_flight.len() >= IN_FLIGHT {
                    // What is waited for may still be in the chunk.
                    hand_over(&mut chunk)?;
                    while in_flight.contains(&item.id) || in_flight.len() >= IN_FLIGHT {
                        let next = encoded.recv().map_err(|_| helper_stopped())?;
                        write_next(&mut writes, &mut in_flight, next)?;
                    }
                }
                let applied = apply(&mut writes, tenant, item)?;
                in_flight.push_back(applied.id.clone());
                chunk.push(applied);
                if chunk.len() >= CHUNK {
                    hand_over(&mut chunk)?;
                }
                while let Ok(next) = encoded.try_recv() {
                    write_next(&mut writes, &mut in_flight, next)?;
                }
            }
            hand_over(&mut chunk)?;
            drop(to_helper);
            while !in_flight.is_empty() {
                let next = encoded.recv().map_err(|_| helper_stopped())?;
                write_next(&mut writes, &mut in_flight, next)?;
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

/// Looks the item's entity up and applies the item to it.
fn apply(
    writes: &mut EntityWrites<'_>,
    tenant: &Tenant,
    item: Item,
) -> Result<Applied, StoreError> {
    let found = writer::look_up(writes, tenant, &item.id)?;
    let current = found.doc().map(crate::decode).transpose()?;
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
        found,
        before,
        given: item.given,
    })
}

/// Encodes what an applied item writes; touches no database, so any thread may run it.
fn encode(applied: Applied, now: DateTime<Utc>) -> Result<Encoded, StoreError> {
    let Applied {
        id,
        found,
        before,
        given,
        outcome,
    } = applied;
    let seq = found.seq();
    let history_of = |before: Option<&Entity>, after: Option<&Entity>| match (given, before, after)
    {
        (Some(given), _, _) => given,
        // A creation: its history's first write, if no entity of its id was before.
        (None, None, Some(created)) => HistoryRows::first(created),
        (None, before, after) => HistoryRows::new(&instances_of_change(before, after, now)),
    };
    let effect = match &outcome {
        Ok(Write::Put(entity)) => Effect::Put {
            seq,
            rows: EntityRows::replacing(entity, before.as_ref()),
            head: Head::of(entity, false),
            history: history_of(before.as_ref(), Some(entity)),
        },
        Ok(Write::Delete) => match seq {
            Some(seq) => {
                // Deleted, so it was stored: `before` is it, unless a carried
                // history made the copy needless.
                let before = match before {
                    Some(before) => before,
                    None => found
                        .doc()
                        .map(crate::decode)
                        .transpose()?
                        .ok_or_else(|| StoreError::NotFound(id.clone()))?,
                };
                Effect::Delete {
                    seq,
                    head: Head::of(&before, true),
                    history: history_of(Some(&before), None),
                }
            }
            None => Effect::Nothing,
        },
        Ok(Write::Unchanged) | Err(_) => Effect::Nothing,
    };
    Ok(Encoded {
        id,
        found,
        outcome,
        effect,
    })
}

/// Writes an encoded item in `tx` and adds its outcome to `done`.
fn write(
    tx: &Transaction<'_>,
    writes: &mut EntityWrites<'_>,
    tenant: &Tenant,
    subscribed: &SubscribedTenants,
    encoded: Encoded,
    now: DateTime<Utc>,
    done: &mut Done,
) -> Result<(), StoreError> {
    let mut log_change = |after: Option<&str>| -> Result<(), StoreError> {
        if subscribed.check(tx, tenant)? {
            done.logged = true;
            writer::log_change(tx, tenant, &encoded.id, encoded.found.doc(), after)?;
        }
        Ok(())
    };
    let before = encoded.found.doc().map(Stored::Doc);
    let history = encoded.found.history();
    match &encoded.effect {
        Effect::Put {
            seq,
            rows,
            head,
            history: added,
        } => {
            let documents = Documents {
                before,
                history,
                after: Some(rows.doc()),
            };
            let implied = temporal::record(tx, tenant, head, added, now, documents)?;
            writer::put_entity(writes, tenant, rows, *seq, implied.as_ref())?;
            log_change(Some(rows.doc()))?;
        }
        Effect::Delete {
            seq,
            head,
            history: added,
        } => {
            let documents = Documents {
                before,
                history,
                after: None,
            };
            temporal::record(tx, tenant, head, added, now, documents)?;
            writer::delete_seq(tx, *seq)?;
            log_change(None)?;
        }
        Effect::Nothing => {}
    }
    // Every put or delete counts as a write, even the deletion of an entity that
    // was not stored: the tenant is then created.
    done.wrote |= matches!(encoded.outcome, Ok(Write::Put(_) | Write::Delete));
    done.results.push(encoded.outcome);
    Ok(())
}
