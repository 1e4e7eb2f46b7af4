//! Harvesting: an organisation registers another CKAN catalog (a municipality's own
//! CKAN, another renkei) as a harvest source, and a run imports that catalog's
//! datasets into the organisation, creating or updating a local copy of each, as
//! ckanext-harvest's CKAN harvester does.
//!
//! A run reads the remote `package_search` a page of [`PAGE_ROWS`] at a time (only
//! the remote organisation's datasets when the source names one) and writes through
//! the [`Catalog`] service with an [`Access`] that may write exactly the source's
//! organisation, recorded as creator `harvest:<source id>`. Each local copy carries
//! extras naming its source and remote dataset ([`EXTRA_SOURCE_ID`],
//! [`EXTRA_REMOTE_ID`], …), so a later run finds and updates it instead of making a
//! second one, and never touches a dataset it did not create. A copy whose remote
//! `metadata_modified` is the one recorded in [`EXTRA_REMOTE_MODIFIED`] is counted
//! unchanged and not written. The remote dataset id becomes the local id when no
//! local dataset has it. Resources are imported as links to the remote URLs; no
//! file is downloaded. A remote licence or category renkei does not know is kept in
//! an extra rather than refused or dropped.
//!
//! One bad remote dataset is an error of the run and the others go on; a remote
//! that cannot be read fails the run with the reason. When the whole listing was
//! read and did not change while it was read, local copies whose remote dataset is
//! gone are deleted (marked deleted, as `package_delete` does).
//!
//! Several nodes may share the database: a run first claims its source's lease
//! ([`store::harvest::HarvestStore::claim_source`]), renews it after every page and releases it at
//! the end, setting the next scheduled run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Map, Value};
use store::harvest::{
    HarvestCounts, HarvestError, HarvestRun, HarvestSource, RunStatus, SharedHarvestStore,
};
use store::StoreError;
use tokio::sync::Notify;

use crate::package::{FieldErrors, Package, State};
use crate::service::{Access, Catalog, CatalogError};
use crate::vocabulary;

/// Remote datasets read per `package_search` call (CKAN's default maximum).
pub const PAGE_ROWS: usize = 1000;
/// The longest one request to the remote may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a claimed source stays ours without renewal: longer than reading and
/// writing one page takes; a run renews it after every page.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(30);
/// How many of a source's runs the store is asked for when looking for runs left
/// running by a node that stopped.
const RECENT_RUNS: usize = 20;

/// The extra naming the harvest source a dataset came from.
pub const EXTRA_SOURCE_ID: &str = "harvest_source_id";
/// The extra with the URL of the remote catalog.
pub const EXTRA_SOURCE_URL: &str = "harvest_source_url";
/// The extra with the remote dataset's id.
pub const EXTRA_REMOTE_ID: &str = "harvest_remote_id";
/// The extra with the remote dataset's `metadata_modified` when it was last copied.
pub const EXTRA_REMOTE_MODIFIED: &str = "harvest_remote_modified";
/// The extra keeping a remote licence id that renkei does not know.
pub const EXTRA_REMOTE_LICENSE: &str = "harvest_remote_license_id";
/// The extra keeping remote group names that are not among the 17 categories.
pub const EXTRA_REMOTE_GROUPS: &str = "harvest_remote_groups";
/// The resource key keeping the remote resource's id.
pub const RESOURCE_REMOTE_ID: &str = "harvest_remote_id";

/// The remote dataset fields copied as they are.
const COPIED_FIELDS: &[&str] = &[
    "name",
    "title",
    "notes",
    "url",
    "version",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
];

/// The remote resource fields copied as they are (the id is mapped, `url_type` is
/// left out: a remote upload is a link here).
const COPIED_RESOURCE_FIELDS: &[&str] = &[
    "url",
    "name",
    "description",
    "format",
    "mimetype",
    "size",
    "hash",
    "last_modified",
];

/// Why a harvest operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HarvestFailure {
    #[error("harvest source {0} not found")]
    SourceNotFound(String),
    #[error("harvest source {0} is being harvested already")]
    Busy(String),
    #[error("invalid harvest source: {0:?}")]
    Invalid(FieldErrors),
    #[error("not authorised: {0}")]
    NotAuthorized(String),
    #[error("cannot make the HTTP client: {0}")]
    Client(String),
    #[error("the harvest task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a client sends to register a source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceInput {
    pub organization: String,
    pub url: String,
    pub title: Option<String>,
    pub remote_organization: Option<String>,
    pub interval_minutes: Option<u32>,
    pub enabled: bool,
}

impl SourceInput {
    /// The source these settings describe, with its checked `url` and what the
    /// caller does not choose. A missing or blank title is the URL (CKAN sources
    /// have one).
    fn into_source(
        self,
        id: String,
        url: String,
        created_at: chrono::DateTime<Utc>,
        next_run_at: Option<chrono::DateTime<Utc>>,
    ) -> HarvestSource {
        HarvestSource {
            id,
            organization: self.organization,
            title: self
                .title
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| url.clone()),
            url,
            remote_organization: self.remote_organization,
            interval_minutes: self.interval_minutes,
            enabled: self.enabled,
            created_at,
            next_run_at,
        }
    }
}

/// The base URL of a remote CKAN: http or https, without a trailing slash or the
/// Action API's path (`https://ckan.example.jp/api/3/action/` → `https://ckan.example.jp`).
pub fn normalize_base_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("must be an http or https URL of a CKAN site".to_owned());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    let mut base = parsed.as_str().trim_end_matches('/').to_owned();
    for suffix in ["/api/3/action", "/api/action", "/api/3", "/api"] {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped.to_owned();
            break;
        }
    }
    Ok(base)
}

/// The harvester's rights: writing exactly the source's organisation.
struct HarvestAccess {
    organization: String,
    creator: String,
}

impl HarvestAccess {
    fn of(source: &HarvestSource) -> HarvestAccess {
        HarvestAccess {
            organization: source.organization.clone(),
            creator: format!("harvest:{}", source.id),
        }
    }
}

impl Access for HarvestAccess {
    fn can_read_private(&self, org: &str) -> bool {
        org == self.organization
    }
    fn can_write(&self, org: &str) -> bool {
        org == self.organization
    }
    fn can_purge(&self) -> bool {
        false
    }
    fn user_id(&self) -> Option<String> {
        Some(self.creator.clone())
    }
}

/// A local copy made by an earlier run of the source.
#[derive(Debug, Clone, PartialEq)]
struct LocalCopy {
    id: String,
    remote_modified: Option<String>,
    deleted: bool,
    /// Remote resource id → local resource id.
    resources: HashMap<String, String>,
}

fn extra<'a>(package: &'a Package, key: &str) -> Option<&'a str> {
    package
        .extras
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The source's local copies by remote dataset id.
fn copies_of(package: &Package, source_id: &str) -> Option<(String, LocalCopy)> {
    if extra(package, EXTRA_SOURCE_ID) != Some(source_id) {
        return None;
    }
    let remote_id = extra(package, EXTRA_REMOTE_ID)?.to_owned();
    let resources = package
        .resources
        .iter()
        .filter_map(|r| {
            let remote = r.extras.get(RESOURCE_REMOTE_ID)?.as_str()?;
            Some((remote.to_owned(), r.id.clone()))
        })
        .collect();
    Some((
        remote_id,
        LocalCopy {
            id: package.id.clone(),
            remote_modified: extra(package, EXTRA_REMOTE_MODIFIED).map(str::to_owned),
            deleted: package.state == State::Deleted,
            resources,
        },
    ))
}

/// A catalog error as one line for a run's record.
fn describe(error: &CatalogError) -> String {
    match error {
        CatalogError::Validation(fields) => fields
            .iter()
            .map(|(field, messages)| format!("{field}: {}", messages.join(" / ")))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// An error with its causes, for a run's record (reqwest's own text leaves out
/// why a connection failed).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}

/// The `package_create` / `package_update` dictionary of the local copy of the
/// remote dataset `remote`: its metadata, in the source's organisation, marked as
/// harvested, with `package_id` as its id when given and each remote resource's id
/// mapped by `resource_id` (a new id where that gives none).
fn local_dict(
    remote: &Map<String, Value>,
    source: &HarvestSource,
    remote_id: &str,
    package_id: Option<&str>,
    resource_id: impl Fn(&str) -> Option<String>,
) -> Map<String, Value> {
    let mut dict = Map::new();
    if let Some(id) = package_id {
        dict.insert("id".into(), json!(id));
    }
    for field in COPIED_FIELDS {
        if let Some(value) = remote.get(*field).filter(|v| !v.is_null()) {
            dict.insert((*field).into(), value.clone());
        }
    }
    dict.insert("owner_org".into(), json!(source.organization));
    dict.insert("private".into(), json!(false));
    dict.insert("state".into(), json!("active"));
    // The remote's own harvest marks (it may harvest others) give way to ours.
    let mut extras: Vec<Value> = match remote.get("extras") {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|item| {
                !item
                    .get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|key| key.starts_with("harvest_"))
            })
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let license = remote
        .get("license_id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty());
    match license {
        Some(id) if vocabulary::license(id).is_some() => {
            dict.insert("license_id".into(), json!(id));
        }
        Some(id) => extras.push(json!({"key": EXTRA_REMOTE_LICENSE, "value": id})),
        None => {}
    }
    if let Some(Value::Array(tags)) = remote.get("tags") {
        dict.insert("tags".into(), Value::Array(tags.clone()));
    }
    if let Some(Value::Array(groups)) = remote.get("groups") {
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for group in groups {
            let name = group
                .get("name")
                .or_else(|| group.get("id"))
                .and_then(Value::as_str)
                .or_else(|| group.as_str());
            // A category is known by its name or by its Japanese title.
            let category = name.and_then(vocabulary::category).or_else(|| {
                group
                    .get("title")
                    .and_then(Value::as_str)
                    .and_then(vocabulary::category)
            });
            match (category, name) {
                (Some(category), _) => known.push(json!({"name": category.name})),
                (None, Some(name)) => unknown.push(name.to_owned()),
                (None, None) => {}
            }
        }
        dict.insert("groups".into(), Value::Array(known));
        if !unknown.is_empty() {
            extras.push(json!({"key": EXTRA_REMOTE_GROUPS, "value": unknown.join(",")}));
        }
    }
    let modified = remote
        .get("metadata_modified")
        .and_then(Value::as_str)
        .unwrap_or_default();
    extras.push(json!({"key": EXTRA_SOURCE_ID, "value": source.id}));
    extras.push(json!({"key": EXTRA_SOURCE_URL, "value": source.url}));
    extras.push(json!({"key": EXTRA_REMOTE_ID, "value": remote_id}));
    extras.push(json!({"key": EXTRA_REMOTE_MODIFIED, "value": modified}));
    dict.insert("extras".into(), Value::Array(extras));
    let resources: Vec<Value> = match remote.get("resources") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Object(remote_resource) => {
                    let mut resource = Map::new();
                    let remote_rid = remote_resource.get("id").and_then(Value::as_str);
                    if let Some(local) = remote_rid.and_then(&resource_id) {
                        resource.insert("id".into(), json!(local));
                    }
                    for field in COPIED_RESOURCE_FIELDS {
                        if let Some(value) = remote_resource.get(*field).filter(|v| !v.is_null()) {
                            resource.insert((*field).into(), value.clone());
                        }
                    }
                    if let Some(rid) = remote_rid {
                        resource.insert(RESOURCE_REMOTE_ID.into(), json!(rid));
                    }
                    Value::Object(resource)
                }
                // Not a resource: the catalog's validation names it.
                other => other.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    dict.insert("resources".into(), Value::Array(resources));
    dict
}

/// What became of one remote dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// One page of the remote's `package_search`.
struct RemotePage {
    count: usize,
    datasets: Vec<Value>,
}

/// Reads one page of the remote catalog's datasets.
async fn remote_page(
    http: &reqwest::Client,
    source: &HarvestSource,
    start: usize,
) -> Result<RemotePage, String> {
    let endpoint = format!("{}/api/3/action/package_search", source.url);
    let mut url = reqwest::Url::parse(&endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("rows", &PAGE_ROWS.to_string())
            .append_pair("start", &start.to_string())
            // Oldest first: datasets created during the run come last, not in
            // between pages already read.
            .append_pair("sort", "metadata_created asc, name asc");
        if let Some(org) = &source.remote_organization {
            query.append_pair("fq", &format!("organization:\"{org}\""));
        }
    }
    let cannot = |why: String| format!("cannot read the remote catalog at {endpoint}: {why}");
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| cannot(with_causes(&e)))?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| {
        cannot(format!(
            "HTTP {status}, not a CKAN answer ({})",
            with_causes(&e)
        ))
    })?;
    if !status.is_success() || body.get("success") != Some(&Value::Bool(true)) {
        let message = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| body.get("error").map(Value::to_string).unwrap_or_default());
        return Err(cannot(format!("HTTP {status}: {message}")));
    }
    let result = body.get("result");
    let count = result
        .and_then(|r| r.get("count"))
        .and_then(Value::as_u64)
        .ok_or_else(|| cannot("the answer has no result count".to_owned()))?;
    let datasets = match result.and_then(|r| r.get("results")) {
        Some(Value::Array(items)) => items.clone(),
        _ => return Err(cannot("the answer has no results list".to_owned())),
    };
    Ok(RemotePage {
        count: usize::try_from(count).unwrap_or(usize::MAX),
        datasets,
    })
}

/// Registers sources and runs harvests; cheap to clone.
#[derive(Clone)]
pub struct Harvester {
    catalog: Catalog,
    store: SharedHarvestStore,
    http: reqwest::Client,
    /// Told when a scheduled source is registered, so that this node's scheduler
    /// runs it at once rather than at its next round.
    schedule_changed: Arc<Notify>,
}

impl Harvester {
    pub fn new(catalog: Catalog, store: SharedHarvestStore) -> Result<Harvester, HarvestFailure> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("renkei-harvester/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HarvestFailure::Client(e.to_string()))?;
        Ok(Harvester {
            catalog,
            store,
            http,
            schedule_changed: Arc::new(Notify::new()),
        })
    }

    pub fn store(&self) -> &SharedHarvestStore {
        &self.store
    }

    /// Notified when a scheduled source is registered on this node (the scheduler
    /// waits on it between rounds).
    pub fn schedule_changed(&self) -> Arc<Notify> {
        self.schedule_changed.clone()
    }

    /// Registers a source for an organisation the caller may write.
    pub async fn create_source(
        &self,
        input: SourceInput,
        access: &dyn Access,
    ) -> Result<HarvestSource, HarvestFailure> {
        let url = self.check_input(&input, access).await?;
        let now = Utc::now();
        // A scheduled source is first harvested at the scheduler's next round.
        let next_run_at = input.interval_minutes.map(|_| now);
        let id = uuid::Uuid::new_v4().to_string();
        let source = input.into_source(id, url, now, next_run_at);
        self.store.insert_source(&source).await?;
        if source.next_run_at.is_some() {
            self.schedule_changed.notify_one();
        }
        Ok(source)
    }

    /// Replaces a source's settings with `input`, for a caller who may write both
    /// the organisation it harvests into now and the one it is moved to. Its id,
    /// creation time and runs stay. A schedule that is kept keeps its next run; a
    /// source given a schedule is harvested at the scheduler's next round, as a new
    /// one is; a changed interval counts from now.
    pub async fn update_source(
        &self,
        id: &str,
        input: SourceInput,
        access: &dyn Access,
    ) -> Result<HarvestSource, HarvestFailure> {
        let current = self.source(id).await?;
        writable(&current, access)?;
        let url = self.check_input(&input, access).await?;
        let now = Utc::now();
        let next_run_at = match (current.interval_minutes, input.interval_minutes) {
            (_, None) => None,
            (Some(before), Some(after)) if before == after => current.next_run_at.or(Some(now)),
            (None, Some(_)) => Some(now),
            (Some(_), Some(after)) => Some(now + chrono::Duration::minutes(i64::from(after))),
        };
        let source = input.into_source(current.id, url, current.created_at, next_run_at);
        self.store
            .update_source(&source)
            .await
            .map_err(|e| match e {
                // Deleted since it was read.
                StoreError::NotFound(_) => HarvestFailure::SourceNotFound(id.to_owned()),
                other => other.into(),
            })?;
        if source.next_run_at.is_some() {
            self.schedule_changed.notify_one();
        }
        Ok(source)
    }

    /// Checks what a source is registered or changed with (URL, organisation,
    /// interval, remote organisation: every problem named by its field), and that
    /// the caller may write the organisation it names. Gives the URL normalised.
    async fn check_input(
        &self,
        input: &SourceInput,
        access: &dyn Access,
    ) -> Result<String, HarvestFailure> {
        let mut errors = FieldErrors::new();
        let mut refuse = |field: &str, message: String| {
            errors.entry(field.to_owned()).or_default().push(message);
        };
        let url = normalize_base_url(&input.url).unwrap_or_else(|why| {
            refuse(
                "url",
                format!("{why} / CKAN サイトの URL を指定してください"),
            );
            String::new()
        });
        if input.organization.is_empty() {
            refuse("owner_org", "Missing value / 必須項目です".to_owned());
        } else if self
            .catalog
            .organization(&input.organization)
            .await?
            .is_none()
        {
            refuse(
                "owner_org",
                format!(
                    "Organization {:?} does not exist / 組織が登録されていません",
                    input.organization
                ),
            );
        }
        if input.interval_minutes == Some(0) {
            refuse(
                "frequency",
                "The interval must be at least one minute".to_owned(),
            );
        }
        if input
            .remote_organization
            .as_deref()
            .is_some_and(|org| org.trim().is_empty() || org.contains('"'))
        {
            refuse(
                "remote_organization",
                "Must be the name of an organization of the remote catalog".to_owned(),
            );
        }
        if !errors.is_empty() {
            return Err(HarvestFailure::Invalid(errors));
        }
        if !access.can_write(&input.organization) {
            return Err(HarvestFailure::NotAuthorized(format!(
                "User not authorized to add harvest sources to organization {}",
                input.organization
            )));
        }
        Ok(url)
    }

    pub async fn source(&self, id: &str) -> Result<HarvestSource, HarvestFailure> {
        self.store
            .get_source(id)
            .await?
            .ok_or_else(|| HarvestFailure::SourceNotFound(id.to_owned()))
    }

    /// Removes a source and its runs; the datasets it harvested stay.
    pub async fn delete_source(&self, id: &str, access: &dyn Access) -> Result<(), HarvestFailure> {
        let source = self.source(id).await?;
        writable(&source, access)?;
        self.store.delete_source(id).await?;
        Ok(())
    }

    /// Runs a source now, for a caller who may write its organisation; returns the
    /// finished run. `Busy` while another run of it is under way.
    pub async fn run_now(
        &self,
        id: &str,
        access: &dyn Access,
    ) -> Result<HarvestRun, HarvestFailure> {
        let source = self.source(id).await?;
        writable(&source, access)?;
        let run_id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        if !self
            .store
            .claim_source(&source.id, now, &run_id, now + LEASE)
            .await?
        {
            return Err(HarvestFailure::Busy(source.id));
        }
        // On a task of its own, so that a caller who stops waiting (a client that
        // hangs up) does not cut the run short.
        let harvester = self.clone();
        tokio::spawn(async move { harvester.run_claimed(&source, run_id).await })
            .await
            .map_err(|e| HarvestFailure::Task(e.to_string()))?
    }

    /// Runs every enabled source whose time has come, one after the other, and
    /// returns the runs. Sources another node has claimed are left to it.
    pub async fn run_due(&self) -> Result<Vec<HarvestRun>, HarvestFailure> {
        let mut ran = Vec::new();
        loop {
            let run_id = uuid::Uuid::new_v4().to_string();
            let now = Utc::now();
            let Some(source) = self
                .store
                .claim_due_source(now, &run_id, now + LEASE)
                .await?
            else {
                return Ok(ran);
            };
            ran.push(self.run_claimed(&source, run_id).await?);
        }
    }

    /// Runs a source whose lease `run_id` holds, records the run, and releases the
    /// lease with the next scheduled time.
    async fn run_claimed(
        &self,
        source: &HarvestSource,
        run_id: String,
    ) -> Result<HarvestRun, HarvestFailure> {
        let mut run = HarvestRun {
            id: run_id,
            source_id: source.id.clone(),
            started_at: Utc::now(),
            finished_at: None,
            status: RunStatus::Running,
            counts: HarvestCounts::default(),
            errors: Vec::new(),
        };
        let harvested = async {
            self.store.insert_run(&run).await?;
            self.close_interrupted_runs(source, &run.id).await?;
            self.harvest(source, &mut run).await
        }
        .await;
        if harvested.is_err() {
            // The cause is the caller's to log; the record says only that it failed.
            run.status = RunStatus::Failed;
            run.finished_at = Some(Utc::now());
            run.errors.push(HarvestError {
                dataset: None,
                message: "the run stopped on a storage failure".to_owned(),
            });
            // Best effort: the store just failed, and the failure is returned.
            let _ = self.store.update_run(&run).await;
        }
        let finished = Utc::now();
        let next = source
            .interval_minutes
            .map(|minutes| finished + chrono::Duration::minutes(i64::from(minutes)));
        let released = self.store.release_source(&source.id, &run.id, next).await;
        harvested?;
        released?;
        Ok(run)
    }

    /// Marks failed the runs of the source still recorded as running: the lease is
    /// ours, so whoever ran them stopped before finishing.
    async fn close_interrupted_runs(
        &self,
        source: &HarvestSource,
        current: &str,
    ) -> Result<(), StoreError> {
        for mut stale in self.store.list_runs(&source.id, RECENT_RUNS).await? {
            if stale.status == RunStatus::Running && stale.id != current {
                stale.status = RunStatus::Failed;
                stale.finished_at = Some(Utc::now());
                stale.errors.push(HarvestError {
                    dataset: None,
                    message: "the run stopped before it finished (its node was stopped)".to_owned(),
                });
                self.store.update_run(&stale).await?;
            }
        }
        Ok(())
    }
}

/// Refuses a caller who may not write the source's organisation.
fn writable(source: &HarvestSource, access: &dyn Access) -> Result<(), HarvestFailure> {
    if access.can_write(&source.organization) {
        Ok(())
    } else {
        Err(HarvestFailure::NotAuthorized(format!(
            "User not authorized to harvest into organization {}",
            source.organization
        )))
    }
}

/// What a run knows of the local catalog while it imports.
struct Local {
    access: HarvestAccess,
    /// The source's copies by remote dataset id.
    copies: HashMap<String, LocalCopy>,
    /// Every package and resource id in the catalog, so that a remote id is kept
    /// only when it is free.
    taken: HashSet<String>,
    /// The remote ids read in this run.
    seen: HashSet<String>,
}

impl Harvester {
    /// Reads the remote catalog page by page and imports each dataset; records the
    /// outcome in `run` and in the store.
    async fn harvest(
        &self,
        source: &HarvestSource,
        run: &mut HarvestRun,
    ) -> Result<(), HarvestFailure> {
        let (copies, taken) = self
            .catalog
            .with_index(|index| {
                let mut copies = HashMap::new();
                let mut taken = HashSet::new();
                for package in index.packages() {
                    taken.insert(package.id.clone());
                    taken.extend(package.resources.iter().map(|r| r.id.clone()));
                    if let Some((remote_id, copy)) = copies_of(package, &source.id) {
                        copies.insert(remote_id, copy);
                    }
                }
                (copies, taken)
            })
            .await?;
        let mut local = Local {
            access: HarvestAccess::of(source),
            copies,
            taken,
            seen: HashSet::new(),
        };
        let mut start = 0;
        let mut first_count = None;
        let mut listing_changed = false;
        let listed = loop {
            let page = match remote_page(&self.http, source, start).await {
                Ok(page) => page,
                Err(message) => {
                    run.errors.push(HarvestError {
                        dataset: None,
                        message,
                    });
                    break false;
                }
            };
            match first_count {
                None => first_count = Some(page.count),
                Some(count) if count != page.count => listing_changed = true,
                Some(_) => {}
            }
            let read = page.datasets.len();
            for dataset in page.datasets {
                self.import(source, dataset, &mut local, run).await?;
            }
            start += read;
            if read == 0 || start >= page.count {
                break true;
            }
            let now = Utc::now();
            if !self
                .store
                .claim_source(&source.id, now, &run.id, now + LEASE)
                .await?
            {
                run.errors.push(HarvestError {
                    dataset: None,
                    message: "the run outlasted its claim on the source and another run took \
                              it over"
                        .to_owned(),
                });
                break false;
            }
        };
        if listed && listing_changed {
            run.errors.push(HarvestError {
                dataset: None,
                message: "the remote catalog changed while it was read; datasets gone from \
                          it are deleted by the next run"
                    .to_owned(),
            });
        } else if listed {
            self.delete_gone(&mut local, run).await?;
        }
        run.status = if listed {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        run.finished_at = Some(Utc::now());
        self.store.update_run(run).await?;
        Ok(())
    }

    /// Creates, updates or leaves alone the local copy of one remote dataset; a
    /// dataset that cannot be imported is an error of the run.
    async fn import(
        &self,
        source: &HarvestSource,
        dataset: Value,
        local: &mut Local,
        run: &mut HarvestRun,
    ) -> Result<(), HarvestFailure> {
        let name = dataset
            .get("name")
            .or_else(|| dataset.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_owned();
        let outcome = match dataset {
            Value::Object(remote) => self.import_one(source, &remote, local).await?,
            _ => Err("the remote dataset is not a JSON object".to_owned()),
        };
        match outcome {
            Ok(Some(Outcome::Created)) => run.counts.created += 1,
            Ok(Some(Outcome::Updated)) => run.counts.updated += 1,
            Ok(Some(Outcome::Unchanged)) => run.counts.unchanged += 1,
            // Listed twice (the remote changed between pages): done already.
            Ok(None) => {}
            Err(message) => {
                run.counts.errored += 1;
                run.errors.push(HarvestError {
                    dataset: Some(name),
                    message,
                });
            }
        }
        Ok(())
    }

    /// [`import`](Self::import) of a dataset object: the outcome, `None` for a
    /// dataset seen before in this run, or the reason it was not imported; a
    /// storage failure stops the run.
    async fn import_one(
        &self,
        source: &HarvestSource,
        remote: &Map<String, Value>,
        local: &mut Local,
    ) -> Result<Result<Option<Outcome>, String>, HarvestFailure> {
        let Some(remote_id) = remote
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
        else {
            return Ok(Err("the remote dataset has no id".to_owned()));
        };
        if !local.seen.insert(remote_id.clone()) {
            return Ok(Ok(None));
        }
        let modified = remote.get("metadata_modified").and_then(Value::as_str);
        if let Some(copy) = local.copies.get(&remote_id) {
            if !copy.deleted && modified.is_some() && copy.remote_modified.as_deref() == modified {
                return Ok(Ok(Some(Outcome::Unchanged)));
            }
            let dict = local_dict(remote, source, &remote_id, Some(&copy.id), |rid| {
                copy.resources.get(rid).cloned()
            });
            return match self
                .catalog
                .package_update(&dict, false, &local.access)
                .await
            {
                Ok(_) => Ok(Ok(Some(Outcome::Updated))),
                Err(CatalogError::Store(e)) => Err(e.into()),
                Err(e) => Ok(Err(describe(&e))),
            };
        }
        let package_id = (!local.taken.contains(&remote_id)).then_some(remote_id.as_str());
        let dict = local_dict(remote, source, &remote_id, package_id, |rid| {
            (!local.taken.contains(rid)).then(|| rid.to_owned())
        });
        let package = match self.catalog.package_create(&dict, &local.access).await {
            Ok(package) => package,
            Err(CatalogError::Store(e)) => return Err(e.into()),
            Err(e) => return Ok(Err(describe(&e))),
        };
        local.taken.insert(package.id.clone());
        local
            .taken
            .extend(package.resources.iter().map(|r| r.id.clone()));
        if let Some((remote_id, copy)) = copies_of(&package, &source.id) {
            local.copies.insert(remote_id, copy);
        }
        Ok(Ok(Some(Outcome::Created)))
    }

    /// Deletes the local copies whose remote dataset was not listed.
    async fn delete_gone(
        &self,
        local: &mut Local,
        run: &mut HarvestRun,
    ) -> Result<(), HarvestFailure> {
        let mut gone: Vec<(&String, &LocalCopy)> = local
            .copies
            .iter()
            .filter(|(remote_id, copy)| !copy.deleted && !local.seen.contains(*remote_id))
            .collect();
        gone.sort_by(|a, b| a.0.cmp(b.0));
        for (remote_id, copy) in gone {
            match self.catalog.package_delete(&copy.id, &local.access).await {
                Ok(_) => run.counts.deleted += 1,
                Err(CatalogError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    run.counts.errored += 1;
                    run.errors.push(HarvestError {
                        dataset: Some(remote_id.clone()),
                        message: format!("deleting the local copy failed: {}", describe(&e)),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageInput;

    fn source() -> HarvestSource {
        HarvestSource {
            id: "src-1".into(),
            organization: "372013".into(),
            url: "https://ckan.city.example.jp".into(),
            title: "市のカタログ".into(),
            remote_organization: Some("kikikanri".into()),
            interval_minutes: None,
            enabled: true,
            created_at: Utc::now(),
            next_run_at: None,
        }
    }

    /// A dataset as CKAN 2.10's `package_search` gives it.
    fn remote() -> Map<String, Value> {
        match json!({
            "id": "6f1c0c51-remote",
            "name": "hinanjo",
            "title": "指定緊急避難場所一覧",
            "notes": null,
            "owner_org": "their-org-uuid",
            "license_id": "odc-by",
            "metadata_modified": "2024-04-01T09:30:00.123456",
            "tags": [{"name": "防災", "display_name": "防災"}],
            "groups": [
                {"name": "bousai", "title": "司法・安全・環境"},
                {"name": "their-own-group", "title": "独自分類"}
            ],
            "extras": [
                {"key": "spatial", "value": "POINT(134 34)"},
                {"key": "harvest_source_id", "value": "their-harvest"}
            ],
            "resources": [{
                "id": "res-remote-1",
                "package_id": "6f1c0c51-remote",
                "url": "https://ckan.city.example.jp/dataset/x/resource/res-remote-1/download/a.csv",
                "url_type": "upload",
                "format": "CSV",
                "name": "一覧",
                "datastore_active": true,
                "created": "2024-04-01T09:00:00"
            }]
        }) {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    }

    fn extras_of(dict: &Map<String, Value>) -> Vec<(String, String)> {
        dict["extras"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["key"].as_str().unwrap_or_default().to_owned(),
                    e["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn base_urls_lose_the_action_api_path() {
        for url in [
            "https://ckan.example.jp",
            "https://ckan.example.jp/",
            "https://ckan.example.jp/api/3/action/",
            "https://ckan.example.jp/api/3",
        ] {
            assert_eq!(
                normalize_base_url(url).as_deref(),
                Ok("https://ckan.example.jp")
            );
        }
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080/catalog/").as_deref(),
            Ok("http://127.0.0.1:8080/catalog")
        );
        assert!(normalize_base_url("ftp://ckan.example.jp").is_err());
        assert!(normalize_base_url("ckan.example.jp").is_err());
        assert!(normalize_base_url("https://ckan.example.jp/?q=1").is_err());
    }

    #[test]
    fn a_remote_dataset_becomes_a_marked_copy_in_the_sources_organisation() {
        let dict = local_dict(
            &remote(),
            &source(),
            "6f1c0c51-remote",
            Some("6f1c0c51-remote"),
            |rid| Some(format!("local-{rid}")),
        );
        assert_eq!(dict["id"], "6f1c0c51-remote");
        assert_eq!(dict["owner_org"], "372013");
        assert_eq!(dict["state"], "active");
        assert!(!dict.contains_key("notes"), "null fields are left out");
        // Known licence and category kept; the unknown ones kept in extras.
        assert!(!dict.contains_key("license_id"));
        assert_eq!(
            dict["groups"],
            json!([{"name": "justice-safety-environment"}])
        );
        let extras = extras_of(&dict);
        let expected: Vec<(String, String)> = [
            ("spatial", "POINT(134 34)"),
            (EXTRA_REMOTE_LICENSE, "odc-by"),
            (EXTRA_REMOTE_GROUPS, "their-own-group"),
            (EXTRA_SOURCE_ID, "src-1"),
            (EXTRA_SOURCE_URL, "https://ckan.city.example.jp"),
            (EXTRA_REMOTE_ID, "6f1c0c51-remote"),
            (EXTRA_REMOTE_MODIFIED, "2024-04-01T09:30:00.123456"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(extras, expected, "the remote's own harvest marks give way");
        let resource = &dict["resources"][0];
        assert_eq!(resource["id"], "local-res-remote-1");
        assert_eq!(resource[RESOURCE_REMOTE_ID], "res-remote-1");
        assert_eq!(resource["format"], "CSV");
        assert!(
            resource.get("url_type").is_none(),
            "a remote upload is a link here"
        );
        assert!(resource.get("datastore_active").is_none());
        // What the catalog reads from it.
        let input = PackageInput::parse(&dict).expect("the copy is a valid package");
        assert_eq!(input.name, "hinanjo");
        assert_eq!(input.tags, ["防災"]);
        let resources = input.resources.expect("resources are given");
        assert_eq!(resources[0].url_type, None);
        assert_eq!(
            resources[0].extras.get(RESOURCE_REMOTE_ID),
            Some(&json!("res-remote-1"))
        );
    }

    #[test]
    fn a_known_licence_is_kept_and_taken_ids_are_not_reused() {
        let mut remote = remote();
        remote.insert("license_id".into(), json!("CC-BY-4.0"));
        let dict = local_dict(&remote, &source(), "6f1c0c51-remote", None, |_| None);
        assert!(!dict.contains_key("id"));
        assert!(dict["resources"][0].get("id").is_none());
        let input = PackageInput::parse(&dict).expect("the copy is a valid package");
        assert!(input.license_id.is_some());
        assert!(!extras_of(&dict)
            .iter()
            .any(|(k, _)| k == EXTRA_REMOTE_LICENSE));
    }

    #[test]
    fn copies_are_recognised_by_their_source_only() {
        let dict = local_dict(&remote(), &source(), "6f1c0c51-remote", None, |_| None);
        let input = PackageInput::parse(&dict).expect("valid");
        let mut counter = 0;
        let package = Package::create(input, "372013".into(), None, Utc::now(), || {
            counter += 1;
            format!("new-{counter}")
        });
        let (remote_id, copy) = copies_of(&package, "src-1").expect("a copy of src-1");
        assert_eq!(remote_id, "6f1c0c51-remote");
        assert_eq!(copy.id, package.id);
        assert_eq!(
            copy.remote_modified.as_deref(),
            Some("2024-04-01T09:30:00.123456")
        );
        assert_eq!(
            copy.resources.get("res-remote-1"),
            Some(&package.resources[0].id)
        );
        assert_eq!(copies_of(&package, "another-source"), None);
    }

    #[test]
    fn the_harvester_writes_exactly_its_organisation() {
        let access = HarvestAccess::of(&source());
        assert!(access.can_write("372013"));
        assert!(access.can_read_private("372013"));
        assert!(!access.can_write("372021"));
        assert!(!access.can_read_private("372021"));
        assert!(!access.can_purge());
        assert_eq!(access.user_id().as_deref(), Some("harvest:src-1"));
    }
}
