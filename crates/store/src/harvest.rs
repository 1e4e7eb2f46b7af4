//! Storage of harvest sources (another CKAN catalog whose datasets an organisation
//! imports, such as a municipality's own CKAN) and of the record of each harvest run.
//!
//! Several nodes sharing one database must never run one source twice at once, so a
//! run first *claims* its source: a lease (holder and expiry) written by a
//! conditional update that succeeds only when no live lease is held by another
//! holder. The scheduler claims due sources with [`HarvestStore::claim_due_source`]
//! (enabled, `next_run_at` reached, not leased); an on-demand run claims its source
//! by id with [`HarvestStore::claim_source`]. A holder renews its lease by claiming
//! again, and gives it up with [`HarvestStore::release_source`], which also sets when
//! the source is due next. A node that dies mid-run leaves a lease that simply
//! expires.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// A registered harvest source.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestSource {
    pub id: String,
    /// The organisation the harvested datasets belong to: a tenant's code.
    pub organization: String,
    /// The base URL of the remote CKAN (its Action API is under `/api/3/action/`).
    pub url: String,
    /// A display title (CKAN harvest sources have one).
    pub title: String,
    /// Only the remote datasets of this remote organisation, when set.
    pub remote_organization: Option<String>,
    /// Minutes between scheduled runs; `None` runs on demand only.
    pub interval_minutes: Option<u32>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    /// When the scheduler runs the source next; `None` when it has no schedule.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        match text {
            "running" => Some(RunStatus::Running),
            "succeeded" => Some(RunStatus::Succeeded),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }
}

/// How many datasets a run created, updated, left unchanged, deleted (gone from the
/// remote) and failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HarvestCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub errored: u64,
}

/// One problem of a run: with the remote dataset it concerns, or `None` for the run
/// as a whole (the remote could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarvestError {
    pub dataset: Option<String>,
    pub message: String,
}

impl HarvestError {
    /// The errors of a run as backends store them: a JSON list of
    /// `{"dataset": …, "message": …}`.
    pub fn list_to_json(errors: &[HarvestError]) -> Value {
        Value::Array(
            errors
                .iter()
                .map(|e| json!({"dataset": e.dataset, "message": e.message}))
                .collect(),
        )
    }

    /// Reads back what [`list_to_json`](Self::list_to_json) wrote; `None` if the
    /// value is not such a list.
    pub fn list_from_json(value: &Value) -> Option<Vec<HarvestError>> {
        value
            .as_array()?
            .iter()
            .map(|item| {
                let dataset = match item.get("dataset")? {
                    Value::Null => None,
                    Value::String(name) => Some(name.clone()),
                    _ => return None,
                };
                let message = item.get("message")?.as_str()?.to_owned();
                Some(HarvestError { dataset, message })
            })
            .collect()
    }
}

/// One run of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestRun {
    pub id: String,
    pub source_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub counts: HarvestCounts,
    pub errors: Vec<HarvestError>,
}

/// Storage of harvest sources and runs.
#[async_trait]
pub trait HarvestStore: Send + Sync {
    /// Registers a source. `AlreadyExists` names the id if it is taken.
    async fn insert_source(&self, source: &HarvestSource) -> Result<(), StoreError>;

    async fn get_source(&self, id: &str) -> Result<Option<HarvestSource>, StoreError>;

    /// The sources, of one organisation when given, oldest first.
    async fn list_sources(
        &self,
        organization: Option<&str>,
    ) -> Result<Vec<HarvestSource>, StoreError>;

    /// Replaces a source's settings (organisation, URL, title, remote organisation,
    /// interval, enabled, next run) with those of `source`; its id names it, and its
    /// creation time, runs and any lease are kept. `NotFound` if there is none.
    async fn update_source(&self, source: &HarvestSource) -> Result<(), StoreError>;

    /// Removes a source and its runs; false if there was none.
    async fn delete_source(&self, id: &str) -> Result<bool, StoreError>;

    /// Claims the source due longest (enabled, `next_run_at` at or before `now`, no
    /// live lease) for `holder` until `lease_until`, and returns it; `None` when no
    /// source is due. Of several nodes asking at once, each source goes to one.
    async fn claim_due_source(
        &self,
        now: DateTime<Utc>,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<HarvestSource>, StoreError>;

    /// Claims one source for `holder` until `lease_until`, whether due or not:
    /// true when it was free, its lease had expired by `now`, or `holder` held it
    /// already (which renews the lease); false when another holder's lease is live.
    /// `NotFound` if there is no such source.
    async fn claim_source(
        &self,
        id: &str,
        now: DateTime<Utc>,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease on the source (nothing if another holds it) and sets
    /// when it is due next.
    async fn release_source(
        &self,
        id: &str,
        holder: &str,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Records a new run. `AlreadyExists` if its id is taken; `NotFound` if its
    /// source is missing.
    async fn insert_run(&self, run: &HarvestRun) -> Result<(), StoreError>;

    /// Replaces a recorded run (its end, status, counts and errors); `NotFound` if
    /// there is none (its source was deleted meanwhile).
    async fn update_run(&self, run: &HarvestRun) -> Result<(), StoreError>;

    async fn get_run(&self, id: &str) -> Result<Option<HarvestRun>, StoreError>;

    /// The source's runs, newest first, at most `limit` of them.
    async fn list_runs(&self, source_id: &str, limit: usize)
        -> Result<Vec<HarvestRun>, StoreError>;
}

pub type SharedHarvestStore = Arc<dyn HarvestStore>;
