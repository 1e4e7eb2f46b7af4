//! Keeping the planner's statistics in step with bulk writes. Whether a prefiltered
//! query walks `entities` in `seq` order probing `entity_values`, or reads a value
//! range from `entity_values` first, is the planner's choice by table statistics; on
//! tables that were never analysed (just after a bulk load, before autovacuum's next
//! round or where it is off) it guesses a handful of rows and picks plans a hundred
//! times slower. So each node counts the entities it writes and, once they amount to
//! a good share of the table, runs `VACUUM (ANALYZE)` in the background (the vacuum
//! also marks pages all-visible, which lets the index-only scans skip the heap).

use deadpool_postgres::Pool;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Writes that always justify fresh statistics, however small the table.
const MIN_WRITES: u64 = 1000;
/// Beyond that, the share of the table (as a divisor) written since the last run.
const TABLE_SHARE_DIVISOR: u64 = 5;

#[derive(Debug)]
pub(crate) struct Upkeep {
    written: AtomicU64,
    threshold: AtomicU64,
    running: AtomicBool,
}

impl Upkeep {
    pub(crate) fn new() -> Arc<Upkeep> {
        Arc::new(Upkeep {
            written: AtomicU64::new(0),
            threshold: AtomicU64::new(MIN_WRITES),
            running: AtomicBool::new(false),
        })
    }

    /// Counts `entities` written (and committed); starts a background run when they
    /// reach the threshold and none is running.
    pub(crate) fn note_writes(self: &Arc<Self>, pool: &Pool, entities: u64) {
        if entities == 0 {
            return;
        }
        let total = self.written.fetch_add(entities, Ordering::Relaxed) + entities;
        if total < self.threshold.load(Ordering::Relaxed)
            || self.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.written.store(0, Ordering::Relaxed);
        let upkeep = Arc::clone(self);
        let pool = pool.clone();
        tokio::spawn(async move {
            match refresh(&pool).await {
                Ok(rows) => {
                    let threshold = (rows / TABLE_SHARE_DIVISOR).max(MIN_WRITES);
                    upkeep.threshold.store(threshold, Ordering::Relaxed);
                }
                // Only plans suffer (and autovacuum may still do it): not the writer's
                // failure.
                Err(e) => tracing::warn!(error = %e, "refreshing table statistics failed"),
            }
            upkeep.running.store(false, Ordering::Release);
        });
    }
}

/// Vacuums and analyses the entity tables; returns the entity count estimate.
async fn refresh(pool: &Pool) -> Result<u64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .batch_execute("VACUUM (ANALYZE) entities, entity_values")
        .await
        .map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT reltuples::float8 FROM pg_class WHERE oid = 'entities'::regclass",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let rows: f64 = row.try_get(0).map_err(|e| e.to_string())?;
    // reltuples is -1 for a table never analysed, and an estimate otherwise.
    Ok(if rows.is_finite() && rows > 0.0 {
        rows as u64
    } else {
        0
    })
}
