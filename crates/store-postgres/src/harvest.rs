//! [`HarvestStore`] on PostgreSQL, in the harvest tables of migration 9.
//!
//! Several nodes share the database, so a claim is one conditional `UPDATE`: it
//! takes the lease only where no other holder's lease is live, and the scheduler's
//! claim picks its due source with `FOR UPDATE SKIP LOCKED`, so nodes asking at
//! once each get a different source (or none) instead of waiting on one another.
//! Under READ COMMITTED an update re-checks its condition on the newest version of
//! a row it waited for, so of two claims on one source, the second finds the first's
//! lease and takes nothing.

use crate::{backend, PostgresStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use store::harvest::{
    HarvestCounts, HarvestError, HarvestRun, HarvestSource, HarvestStore, RunStatus,
};
use store::StoreError;
use tokio_postgres::Row;

const SOURCE_COLUMNS: &str = "id, organization, url, title, remote_organization, \
     interval_minutes, enabled, created_at, next_run_at";

const RUN_COLUMNS: &str = "id, source_id, started_at, finished_at, status, created, updated, \
     unchanged, deleted, errored, errors";

/// A stored row this backend cannot read back.
#[derive(Debug, thiserror::Error)]
#[error("stored harvest {what} is unreadable: {reason}")]
struct Unreadable {
    what: String,
    reason: String,
}

fn unreadable(what: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::backend(Unreadable {
        what: what.to_owned(),
        reason: reason.to_string(),
    })
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(backend)
}

fn read_source(row: &Row) -> Result<HarvestSource, StoreError> {
    let id: String = get(row, "id")?;
    let interval: Option<i32> = get(row, "interval_minutes")?;
    Ok(HarvestSource {
        interval_minutes: interval
            .map(|minutes| u32::try_from(minutes).map_err(|e| unreadable(&id, e)))
            .transpose()?,
        organization: get(row, "organization")?,
        url: get(row, "url")?,
        title: get(row, "title")?,
        remote_organization: get(row, "remote_organization")?,
        enabled: get(row, "enabled")?,
        created_at: get(row, "created_at")?,
        next_run_at: get(row, "next_run_at")?,
        id,
    })
}

fn read_run(row: &Row) -> Result<HarvestRun, StoreError> {
    let id: String = get(row, "id")?;
    let count = |column: &str| -> Result<u64, StoreError> {
        u64::try_from(get::<i64>(row, column)?).map_err(|e| unreadable(&id, e))
    };
    let status: String = get(row, "status")?;
    let errors: serde_json::Value = get(row, "errors")?;
    Ok(HarvestRun {
        source_id: get(row, "source_id")?,
        started_at: get(row, "started_at")?,
        finished_at: get(row, "finished_at")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| unreadable(&id, format!("status {status:?}")))?,
        counts: HarvestCounts {
            created: count("created")?,
            updated: count("updated")?,
            unchanged: count("unchanged")?,
            deleted: count("deleted")?,
            errored: count("errored")?,
        },
        errors: HarvestError::list_from_json(&errors)
            .ok_or_else(|| unreadable(&id, "errors are not a list"))?,
        id,
    })
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn counts(run: &HarvestRun) -> [i64; 5] {
    let c = run.counts;
    [c.created, c.updated, c.unchanged, c.deleted, c.errored].map(count)
}

#[async_trait]
impl HarvestStore for PostgresStore {
    async fn insert_source(&self, source: &HarvestSource) -> Result<(), StoreError> {
        let inserted = self
            .client()
            .await?
            .execute(
                "INSERT INTO harvest_sources (id, organization, url, title, remote_organization,
                     interval_minutes, enabled, created_at, next_run_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &source.id,
                    &source.organization,
                    &source.url,
                    &source.title,
                    &source.remote_organization,
                    &source
                        .interval_minutes
                        .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
                    &source.enabled,
                    &source.created_at,
                    &source.next_run_at,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(source.id.clone()));
        }
        Ok(())
    }

    async fn update_source(&self, source: &HarvestSource) -> Result<(), StoreError> {
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE harvest_sources
                 SET organization = $2, url = $3, title = $4, remote_organization = $5,
                     interval_minutes = $6, enabled = $7, next_run_at = $8
                 WHERE id = $1",
                &[
                    &source.id,
                    &source.organization,
                    &source.url,
                    &source.title,
                    &source.remote_organization,
                    &source
                        .interval_minutes
                        .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
                    &source.enabled,
                    &source.next_run_at,
                ],
            )
            .await
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound(source.id.clone()));
        }
        Ok(())
    }

    async fn get_source(&self, id: &str) -> Result<Option<HarvestSource>, StoreError> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM harvest_sources WHERE id = $1");
        self.client()
            .await?
            .query_opt(&sql, &[&id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_source)
            .transpose()
    }

    async fn list_sources(
        &self,
        organization: Option<&str>,
    ) -> Result<Vec<HarvestSource>, StoreError> {
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM harvest_sources
             WHERE $1::text IS NULL OR organization = $1
             ORDER BY created_at, id COLLATE \"C\""
        );
        self.client()
            .await?
            .query(&sql, &[&organization])
            .await
            .map_err(backend)?
            .iter()
            .map(read_source)
            .collect()
    }

    async fn delete_source(&self, id: &str) -> Result<bool, StoreError> {
        // The runs go with the source (ON DELETE CASCADE).
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM harvest_sources WHERE id = $1", &[&id])
            .await
            .map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn claim_due_source(
        &self,
        now: DateTime<Utc>,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<HarvestSource>, StoreError> {
        let sql = format!(
            "UPDATE harvest_sources SET lease_holder = $2, lease_until = $3
             WHERE id = (
                 SELECT id FROM harvest_sources
                 WHERE enabled AND next_run_at IS NOT NULL AND next_run_at <= $1
                     AND (lease_until IS NULL OR lease_until < $1)
                 ORDER BY next_run_at, id COLLATE \"C\" LIMIT 1
                 FOR UPDATE SKIP LOCKED)
               AND (lease_until IS NULL OR lease_until < $1)
             RETURNING {SOURCE_COLUMNS}"
        );
        self.client()
            .await?
            .query_opt(&sql, &[&now, &holder, &lease_until])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_source)
            .transpose()
    }

    async fn claim_source(
        &self,
        id: &str,
        now: DateTime<Utc>,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let claimed = client
            .execute(
                "UPDATE harvest_sources SET lease_holder = $3, lease_until = $4
                 WHERE id = $1
                   AND (lease_until IS NULL OR lease_until < $2 OR lease_holder = $3)",
                &[&id, &now, &holder, &lease_until],
            )
            .await
            .map_err(backend)?;
        if claimed > 0 {
            return Ok(true);
        }
        let exists = client
            .query_opt("SELECT 1 FROM harvest_sources WHERE id = $1", &[&id])
            .await
            .map_err(backend)?
            .is_some();
        if exists {
            Ok(false)
        } else {
            Err(StoreError::NotFound(id.to_owned()))
        }
    }

    async fn release_source(
        &self,
        id: &str,
        holder: &str,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE harvest_sources
                 SET lease_holder = NULL, lease_until = NULL, next_run_at = $3
                 WHERE id = $1 AND lease_holder = $2",
                &[&id, &holder, &next_run_at],
            )
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn insert_run(&self, run: &HarvestRun) -> Result<(), StoreError> {
        let [created, updated, unchanged, deleted, errored] = counts(run);
        let errors = HarvestError::list_to_json(&run.errors);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The source row stays until this commits, so the run never outlives it.
        let source = tx
            .query_opt(
                "SELECT 1 FROM harvest_sources WHERE id = $1 FOR SHARE",
                &[&run.source_id],
            )
            .await
            .map_err(backend)?;
        if source.is_none() {
            return Err(StoreError::NotFound(run.source_id.clone()));
        }
        let inserted = tx
            .execute(
                "INSERT INTO harvest_runs (id, source_id, started_at, finished_at, status,
                     created, updated, unchanged, deleted, errored, errors)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &run.id,
                    &run.source_id,
                    &run.started_at,
                    &run.finished_at,
                    &run.status.as_str(),
                    &created,
                    &updated,
                    &unchanged,
                    &deleted,
                    &errored,
                    &errors,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(run.id.clone()));
        }
        tx.commit().await.map_err(backend)
    }

    async fn update_run(&self, run: &HarvestRun) -> Result<(), StoreError> {
        let [created, updated, unchanged, deleted, errored] = counts(run);
        let errors = HarvestError::list_to_json(&run.errors);
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE harvest_runs SET finished_at = $2, status = $3, created = $4,
                     updated = $5, unchanged = $6, deleted = $7, errored = $8, errors = $9
                 WHERE id = $1",
                &[
                    &run.id,
                    &run.finished_at,
                    &run.status.as_str(),
                    &created,
                    &updated,
                    &unchanged,
                    &deleted,
                    &errored,
                    &errors,
                ],
            )
            .await
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound(run.id.clone()));
        }
        Ok(())
    }

    async fn get_run(&self, id: &str) -> Result<Option<HarvestRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM harvest_runs WHERE id = $1");
        self.client()
            .await?
            .query_opt(&sql, &[&id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_run)
            .transpose()
    }

    async fn list_runs(
        &self,
        source_id: &str,
        limit: usize,
    ) -> Result<Vec<HarvestRun>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM harvest_runs WHERE source_id = $1
             ORDER BY started_at DESC, id COLLATE \"C\" DESC LIMIT $2"
        );
        self.client()
            .await?
            .query(&sql, &[&source_id, &limit])
            .await
            .map_err(backend)?
            .iter()
            .map(read_run)
            .collect()
    }
}
