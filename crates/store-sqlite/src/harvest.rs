//! [`HarvestStore`] on SQLite, in the harvest tables of schema version 10.
//!
//! Claims are writes, and every write runs on the one writer thread, so a claim's
//! check of the lease and its update of it never interleave with another claim:
//! the conditional update is all the coordination one process needs (SQLite is
//! never shared by several nodes).

use crate::columns::{opt_stamp, opt_time_at, stamp, time_at, unreadable};
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use store::harvest::{
    HarvestCounts, HarvestError, HarvestRun, HarvestSource, HarvestStore, RunStatus,
};
use store::StoreError;

const SOURCE_COLUMNS: &str = "id, organization, url, title, remote_organization, \
     interval_minutes, enabled, created_at, next_run_at";

const RUN_COLUMNS: &str = "id, source_id, started_at, finished_at, status, created, updated, \
     unchanged, deleted, errored, errors";

#[derive(Debug, thiserror::Error)]
#[error("unknown harvest run status {0:?}")]
struct UnknownStatus(String);

#[derive(Debug, thiserror::Error)]
#[error("unreadable harvest run errors")]
struct UnreadableErrors;

fn row_to_source(row: &Row<'_>) -> rusqlite::Result<HarvestSource> {
    let interval: Option<i64> = row.get(5)?;
    Ok(HarvestSource {
        id: row.get(0)?,
        organization: row.get(1)?,
        url: row.get(2)?,
        title: row.get(3)?,
        remote_organization: row.get(4)?,
        interval_minutes: interval
            .map(|minutes| u32::try_from(minutes).map_err(|e| unreadable(5, e)))
            .transpose()?,
        enabled: row.get(6)?,
        created_at: time_at(row, 7)?,
        next_run_at: opt_time_at(row, 8)?,
    })
}

fn count_at(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let count: i64 = row.get(index)?;
    u64::try_from(count).map_err(|e| unreadable(index, e))
}

fn row_to_run(row: &Row<'_>) -> rusqlite::Result<HarvestRun> {
    let status: String = row.get(4)?;
    let errors: String = row.get(10)?;
    let errors = serde_json::from_str(&errors)
        .ok()
        .and_then(|value| HarvestError::list_from_json(&value))
        .ok_or_else(|| unreadable(10, UnreadableErrors))?;
    Ok(HarvestRun {
        id: row.get(0)?,
        source_id: row.get(1)?,
        started_at: time_at(row, 2)?,
        finished_at: opt_time_at(row, 3)?,
        status: RunStatus::parse(&status).ok_or_else(|| unreadable(4, UnknownStatus(status)))?,
        counts: HarvestCounts {
            created: count_at(row, 5)?,
            updated: count_at(row, 6)?,
            unchanged: count_at(row, 7)?,
            deleted: count_at(row, 8)?,
            errored: count_at(row, 9)?,
        },
        errors,
    })
}

fn source_by_id(conn: &Connection, id: &str) -> Result<Option<HarvestSource>, StoreError> {
    let sql = format!("SELECT {SOURCE_COLUMNS} FROM harvest_sources WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut statement| statement.query_row([id], row_to_source).optional())
        .map_err(StoreError::backend)
}

fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(StoreError::backend)
}

fn exists(conn: &Connection, sql: &str, key: &str) -> Result<bool, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.exists([key]))
        .map_err(StoreError::backend)
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A run's columns as stored.
struct RunRow {
    id: String,
    source_id: String,
    started_at: String,
    finished_at: Option<String>,
    status: &'static str,
    counts: [i64; 5],
    errors: String,
}

impl RunRow {
    fn new(run: &HarvestRun) -> RunRow {
        let c = run.counts;
        RunRow {
            id: run.id.clone(),
            source_id: run.source_id.clone(),
            started_at: stamp(run.started_at),
            finished_at: opt_stamp(run.finished_at),
            status: run.status.as_str(),
            counts: [c.created, c.updated, c.unchanged, c.deleted, c.errored].map(count),
            errors: HarvestError::list_to_json(&run.errors).to_string(),
        }
    }
}

fn insert_run_in(conn: &Connection, row: &RunRow) -> Result<(), StoreError> {
    if !exists(
        conn,
        "SELECT 1 FROM harvest_sources WHERE id = ?1",
        &row.source_id,
    )? {
        return Err(StoreError::NotFound(row.source_id.clone()));
    }
    if exists(conn, "SELECT 1 FROM harvest_runs WHERE id = ?1", &row.id)? {
        return Err(StoreError::AlreadyExists(row.id.clone()));
    }
    let [created, updated, unchanged, deleted, errored] = row.counts;
    execute(
        conn,
        "INSERT INTO harvest_runs (id, source_id, started_at, finished_at, status, created,
             updated, unchanged, deleted, errored, errors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            row.id,
            row.source_id,
            row.started_at,
            row.finished_at,
            row.status,
            created,
            updated,
            unchanged,
            deleted,
            errored,
            row.errors
        ],
    )
    .map(drop)
}

/// Claims the source `id` if it has no live lease of another holder.
fn claim_in(
    conn: &Connection,
    id: &str,
    now: &str,
    holder: &str,
    until: &str,
) -> Result<usize, StoreError> {
    execute(
        conn,
        "UPDATE harvest_sources SET lease_holder = ?3, lease_until = ?4
         WHERE id = ?1 AND (lease_until IS NULL OR lease_until < ?2 OR lease_holder = ?3)",
        params![id, now, holder, until],
    )
}

fn claim_due_in(
    conn: &Connection,
    now: &str,
    holder: &str,
    until: &str,
) -> Result<Option<HarvestSource>, StoreError> {
    let due: Option<String> = conn
        .prepare_cached(
            "SELECT id FROM harvest_sources
             WHERE enabled AND next_run_at IS NOT NULL AND next_run_at <= ?1
                 AND (lease_until IS NULL OR lease_until < ?1)
             ORDER BY next_run_at, id LIMIT 1",
        )
        .and_then(|mut statement| statement.query_row([now], |row| row.get(0)).optional())
        .map_err(StoreError::backend)?;
    let Some(id) = due else { return Ok(None) };
    execute(
        conn,
        "UPDATE harvest_sources SET lease_holder = ?2, lease_until = ?3 WHERE id = ?1",
        params![id, holder, until],
    )?;
    source_by_id(conn, &id)
}

#[async_trait]
impl HarvestStore for SqliteStore {
    async fn insert_source(&self, source: &HarvestSource) -> Result<(), StoreError> {
        let source = source.clone();
        self.writer
            .run(move |tx| {
                if exists(
                    tx,
                    "SELECT 1 FROM harvest_sources WHERE id = ?1",
                    &source.id,
                )? {
                    return Err(StoreError::AlreadyExists(source.id.clone()));
                }
                execute(
                    tx,
                    "INSERT INTO harvest_sources (id, organization, url, title,
                         remote_organization, interval_minutes, enabled, created_at,
                         next_run_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        source.id,
                        source.organization,
                        source.url,
                        source.title,
                        source.remote_organization,
                        source.interval_minutes.map(i64::from),
                        source.enabled,
                        stamp(source.created_at),
                        opt_stamp(source.next_run_at)
                    ],
                )
                .map(drop)
            })
            .await
    }

    async fn update_source(&self, source: &HarvestSource) -> Result<(), StoreError> {
        let source = source.clone();
        self.writer
            .run(move |tx| {
                let changed = execute(
                    tx,
                    "UPDATE harvest_sources
                     SET organization = ?2, url = ?3, title = ?4, remote_organization = ?5,
                         interval_minutes = ?6, enabled = ?7, next_run_at = ?8
                     WHERE id = ?1",
                    params![
                        source.id,
                        source.organization,
                        source.url,
                        source.title,
                        source.remote_organization,
                        source.interval_minutes.map(i64::from),
                        source.enabled,
                        opt_stamp(source.next_run_at)
                    ],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound(source.id.clone()));
                }
                Ok(())
            })
            .await
    }

    async fn get_source(&self, id: &str) -> Result<Option<HarvestSource>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| source_by_id(conn, &id)).await
    }

    async fn list_sources(
        &self,
        organization: Option<&str>,
    ) -> Result<Vec<HarvestSource>, StoreError> {
        let organization = organization.map(str::to_owned);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SOURCE_COLUMNS} FROM harvest_sources
                 WHERE ?1 IS NULL OR organization = ?1
                 ORDER BY created_at, id"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut statement| {
                    statement
                        .query_map([organization], row_to_source)?
                        .collect()
                })
                .map_err(StoreError::backend)
        })
        .await
    }

    async fn delete_source(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .run(move |tx| {
                // The foreign key would cascade; deleting explicitly does not depend on it.
                execute(tx, "DELETE FROM harvest_runs WHERE source_id = ?1", [&id])?;
                Ok(execute(tx, "DELETE FROM harvest_sources WHERE id = ?1", [&id])? > 0)
            })
            .await
    }

    async fn claim_due_source(
        &self,
        now: DateTime<Utc>,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<HarvestSource>, StoreError> {
        let (now, holder, until) = (stamp(now), holder.to_owned(), stamp(lease_until));
        self.writer
            .run(move |tx| claim_due_in(tx, &now, &holder, &until))
            .await
    }

    async fn claim_source(
        &self,
        id: &str,
        now: DateTime<Utc>,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (id, holder) = (id.to_owned(), holder.to_owned());
        let (now, until) = (stamp(now), stamp(lease_until));
        self.writer
            .run(move |tx| {
                if claim_in(tx, &id, &now, &holder, &until)? > 0 {
                    return Ok(true);
                }
                if exists(tx, "SELECT 1 FROM harvest_sources WHERE id = ?1", &id)? {
                    Ok(false)
                } else {
                    Err(StoreError::NotFound(id))
                }
            })
            .await
    }

    async fn release_source(
        &self,
        id: &str,
        holder: &str,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let (id, holder, next) = (id.to_owned(), holder.to_owned(), opt_stamp(next_run_at));
        self.writer
            .run(move |tx| {
                execute(
                    tx,
                    "UPDATE harvest_sources
                     SET lease_holder = NULL, lease_until = NULL, next_run_at = ?3
                     WHERE id = ?1 AND lease_holder = ?2",
                    params![id, holder, next],
                )
                .map(drop)
            })
            .await
    }

    async fn insert_run(&self, run: &HarvestRun) -> Result<(), StoreError> {
        let row = RunRow::new(run);
        self.writer.run(move |tx| insert_run_in(tx, &row)).await
    }

    async fn update_run(&self, run: &HarvestRun) -> Result<(), StoreError> {
        let row = RunRow::new(run);
        self.writer
            .run(move |tx| {
                let [created, updated, unchanged, deleted, errored] = row.counts;
                let changed = execute(
                    tx,
                    "UPDATE harvest_runs SET finished_at = ?2, status = ?3, created = ?4,
                         updated = ?5, unchanged = ?6, deleted = ?7, errored = ?8, errors = ?9
                     WHERE id = ?1",
                    params![
                        row.id,
                        row.finished_at,
                        row.status,
                        created,
                        updated,
                        unchanged,
                        deleted,
                        errored,
                        row.errors
                    ],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound(row.id));
                }
                Ok(())
            })
            .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<HarvestRun>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {RUN_COLUMNS} FROM harvest_runs WHERE id = ?1");
            conn.prepare_cached(&sql)
                .and_then(|mut statement| statement.query_row([&id], row_to_run).optional())
                .map_err(StoreError::backend)
        })
        .await
    }

    async fn list_runs(
        &self,
        source_id: &str,
        limit: usize,
    ) -> Result<Vec<HarvestRun>, StoreError> {
        let source_id = source_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM harvest_runs WHERE source_id = ?1
                 ORDER BY started_at DESC, id DESC LIMIT ?2"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut statement| {
                    statement
                        .query_map(params![source_id, limit], row_to_run)?
                        .collect()
                })
                .map_err(StoreError::backend)
        })
        .await
    }
}
