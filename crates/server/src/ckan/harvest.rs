//! The harvesting actions of the Action API, in the shape of ckanext-harvest's:
//! `harvest_source_create` / `_update` / `_patch` / `_list` / `_show` / `_delete`,
//! `harvest_job_create`
//! (renkei runs the job at once and answers with it finished) and
//! `harvest_job_list` / `_show`; and the scheduler that `renkei serve` starts,
//! which runs due sources every minute (see `catalog::harvest`).
//!
//! Registering, running and deleting a source is for the writers of its
//! organisation; sources and their runs are readable by anyone, as ckanext-harvest
//! shows them.

use catalog::harvest::{HarvestFailure, SourceInput};
use catalog::package::format_timestamp;
use serde_json::{json, Map, Value};
use std::time::Duration;
use store::harvest::{HarvestRun, HarvestSource};
use tokio::task::JoinHandle;

use super::{ActionResult, CallerAccess, CkanError, Params};
use crate::AppState;

/// How often the scheduler looks for due sources without being told of one.
const SCHEDULE_POLL: Duration = Duration::from_secs(60);
/// The runs `harvest_job_list` gives at most.
const JOBS_LISTED: usize = 100;

/// ckanext-harvest's frequencies, in minutes (`MANUAL` has none).
const FREQUENCIES: &[(&str, u32)] = &[
    ("HOURLY", 60),
    ("DAILY", 24 * 60),
    ("WEEKLY", 7 * 24 * 60),
    ("BIWEEKLY", 14 * 24 * 60),
    ("MONTHLY", 30 * 24 * 60),
];

pub async fn run(
    state: &AppState,
    action: &str,
    params: Params,
    access: &CallerAccess,
) -> ActionResult {
    let harvester = &state.harvester;
    match action {
        "harvest_source_create" => {
            let input = source_input(&params)?;
            let source = harvester.create_source(input, access).await?;
            Ok(source_dict(&source, None))
        }
        "harvest_source_update" => {
            let id = source_id(&params, "id")?;
            let source = harvester
                .update_source(id, source_input(&params)?, access)
                .await?;
            Ok(source_dict(&source, None))
        }
        "harvest_source_patch" => {
            let current = harvester.source(source_id(&params, "id")?).await?;
            let input = source_input(&patched(&current, params))?;
            let source = harvester.update_source(&current.id, input, access).await?;
            Ok(source_dict(&source, None))
        }
        "harvest_source_list" => {
            let organization = params.str("owner_org").or(params.str("organization_id"));
            let sources = harvester
                .store()
                .list_sources(organization.filter(|o| !o.is_empty()))
                .await
                .map_err(internal)?;
            Ok(Value::Array(
                sources.iter().map(|s| source_dict(s, None)).collect(),
            ))
        }
        "harvest_source_show" => {
            let source = harvester.source(source_id(&params, "id")?).await?;
            let last = harvester
                .store()
                .list_runs(&source.id, 1)
                .await
                .map_err(internal)?;
            Ok(source_dict(&source, Some(last.first())))
        }
        "harvest_source_delete" => {
            harvester
                .delete_source(source_id(&params, "id")?, access)
                .await?;
            Ok(Value::Null)
        }
        "harvest_job_create" => {
            let run = harvester
                .run_now(source_id(&params, "source_id")?, access)
                .await?;
            Ok(job_dict(&run))
        }
        "harvest_job_list" => {
            let source = harvester.source(source_id(&params, "source_id")?).await?;
            let limit = params
                .usize("limit")?
                .unwrap_or(JOBS_LISTED)
                .min(JOBS_LISTED);
            let runs = harvester
                .store()
                .list_runs(&source.id, limit)
                .await
                .map_err(internal)?;
            Ok(Value::Array(runs.iter().map(job_dict).collect()))
        }
        "harvest_job_show" => {
            let id = params.required("id")?;
            let run = harvester
                .store()
                .get_run(id)
                .await
                .map_err(internal)?
                .ok_or_else(|| CkanError::NotFound(format!("Harvest job not found: {id}")))?;
            Ok(job_dict(&run))
        }
        other => Err(CkanError::BadRequest(format!(
            "Bad request - Action name not known: {other}"
        ))),
    }
}

fn internal(e: impl std::fmt::Display) -> CkanError {
    CkanError::Internal(e.to_string())
}

impl From<HarvestFailure> for CkanError {
    fn from(failure: HarvestFailure) -> Self {
        match failure {
            HarvestFailure::SourceNotFound(id) => {
                CkanError::NotFound(format!("Harvest source not found: {id}"))
            }
            HarvestFailure::Busy(_) => CkanError::field(
                "source_id",
                "A harvest job of this source is running already / このソースは収集中です",
            ),
            HarvestFailure::Invalid(fields) => {
                CkanError::Validation(fields.into_iter().map(|(k, v)| (k, json!(v))).collect())
            }
            HarvestFailure::NotAuthorized(why) => CkanError::NotAuthorized(why),
            HarvestFailure::Catalog(e) => e.into(),
            HarvestFailure::Client(e) | HarvestFailure::Task(e) => CkanError::Internal(e),
            HarvestFailure::Store(e) => CkanError::Internal(e.to_string()),
        }
    }
}

/// The source named by `key` (or `id`, as ckanext-harvest accepts both).
fn source_id<'a>(params: &'a Params, key: &str) -> Result<&'a str, CkanError> {
    params
        .str(key)
        .or(params.str("id"))
        .or(params.str("source_id"))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| CkanError::field(key, "Missing value"))
}

/// What `harvest_source_create` was sent: ckanext-harvest's fields (`url`,
/// `owner_org`, `title`, `source_type` = `ckan`, `frequency`, `config` with
/// `organizations_filter_include`, `active`) and renkei's `interval_minutes` and
/// `remote_organization`.
fn source_input(params: &Params) -> Result<SourceInput, CkanError> {
    if let Some(kind) = params.str("source_type").filter(|t| !t.is_empty()) {
        if kind != "ckan" {
            return Err(CkanError::field(
                "source_type",
                format!("Unknown harvester type {kind:?}: renkei harvests CKAN sites (ckan)"),
            ));
        }
    }
    let frequency_minutes = match params.str("frequency").map(str::to_ascii_uppercase) {
        None => None,
        Some(f) if f.is_empty() || f == "MANUAL" => None,
        Some(f) => Some(
            FREQUENCIES
                .iter()
                .find(|(name, _)| *name == f)
                .map(|(_, minutes)| *minutes)
                .ok_or_else(|| {
                    CkanError::field(
                        "frequency",
                        format!("Unknown frequency {f:?}: MANUAL, HOURLY, DAILY, WEEKLY, BIWEEKLY or MONTHLY"),
                    )
                })?,
        ),
    };
    let interval_minutes = match params.usize("interval_minutes")? {
        Some(minutes) => Some(
            u32::try_from(minutes)
                .map_err(|_| CkanError::field("interval_minutes", "Must be a number of minutes"))?,
        ),
        None => frequency_minutes,
    };
    let remote_organization = match params.str("remote_organization").filter(|o| !o.is_empty()) {
        Some(org) => Some(org.to_owned()),
        None => filter_of_config(params.map.get("config"))?,
    };
    Ok(SourceInput {
        organization: params.str("owner_org").unwrap_or_default().to_owned(),
        url: params.required("url")?.to_owned(),
        title: params.str("title").map(str::to_owned),
        remote_organization,
        interval_minutes,
        enabled: params.bool("active")?.unwrap_or(true),
    })
}

/// The parameters of `harvest_source_update` that `harvest_source_patch` means: the
/// source's settings, overridden by those given. A schedule given either way
/// (`frequency` or `interval_minutes`) replaces the stored one, as does a remote
/// organisation given either way (`remote_organization` or `config`).
fn patched(source: &HarvestSource, given: Params) -> Params {
    let mut map = Map::new();
    map.insert("url".into(), json!(source.url));
    map.insert("owner_org".into(), json!(source.organization));
    map.insert("title".into(), json!(source.title));
    map.insert("active".into(), json!(source.enabled));
    if !given.map.contains_key("frequency") {
        map.insert("interval_minutes".into(), json!(source.interval_minutes));
    }
    if !given.map.contains_key("config") {
        map.insert(
            "remote_organization".into(),
            json!(source.remote_organization),
        );
    }
    map.extend(given.map);
    Params {
        map,
        upload: given.upload,
    }
}

/// The remote organisation of a ckanext-harvest `config` (a JSON object or its
/// text): `organizations_filter_include` with exactly one name.
fn filter_of_config(config: Option<&Value>) -> Result<Option<String>, CkanError> {
    let invalid = |why: &str| CkanError::field("config", why.to_owned());
    let config = match config {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => return Ok(None),
        Some(Value::String(text)) => {
            serde_json::from_str::<Value>(text).map_err(|_| invalid("Must be a JSON object"))?
        }
        Some(other) => other.clone(),
    };
    let Value::Object(config) = config else {
        return Err(invalid("Must be a JSON object"));
    };
    match config.get("organizations_filter_include") {
        None => Ok(None),
        Some(Value::Array(names)) => match names.as_slice() {
            [] => Ok(None),
            [Value::String(name)] => Ok(Some(name.clone())),
            _ => Err(invalid(
                "organizations_filter_include: renkei harvests one remote organization per source",
            )),
        },
        Some(_) => Err(invalid("organizations_filter_include must be a list")),
    }
}

/// A source as ckanext-harvest shows it; `last_run` given adds its `status`.
fn source_dict(source: &HarvestSource, last_run: Option<Option<&HarvestRun>>) -> Value {
    let frequency = match source.interval_minutes {
        None => "MANUAL".to_owned(),
        Some(minutes) => FREQUENCIES
            .iter()
            .find(|(_, m)| *m == minutes)
            .map(|(name, _)| (*name).to_owned())
            .unwrap_or_else(|| format!("EVERY {minutes} MINUTES")),
    };
    let config = match &source.remote_organization {
        Some(org) => json!({"organizations_filter_include": [org]}).to_string(),
        None => String::new(),
    };
    let mut dict = Map::new();
    dict.insert("id".into(), json!(source.id));
    dict.insert("name".into(), json!(source.id));
    dict.insert("title".into(), json!(source.title));
    dict.insert("type".into(), json!("harvest"));
    dict.insert("source_type".into(), json!("ckan"));
    dict.insert("url".into(), json!(source.url));
    dict.insert("owner_org".into(), json!(source.organization));
    dict.insert(
        "remote_organization".into(),
        json!(source.remote_organization),
    );
    dict.insert("config".into(), json!(config));
    dict.insert("frequency".into(), json!(frequency));
    dict.insert("interval_minutes".into(), json!(source.interval_minutes));
    dict.insert("active".into(), json!(source.enabled));
    dict.insert("state".into(), json!("active"));
    dict.insert(
        "metadata_created".into(),
        json!(format_timestamp(&source.created_at)),
    );
    dict.insert(
        "next_run".into(),
        json!(source.next_run_at.as_ref().map(format_timestamp)),
    );
    if let Some(last) = last_run {
        dict.insert("status".into(), json!({"last_job": last.map(job_dict)}));
    }
    Value::Object(dict)
}

/// A run as a ckanext-harvest job, with renkei's status and errors.
fn job_dict(run: &HarvestRun) -> Value {
    let counts = run.counts;
    let errors: Vec<Value> = run
        .errors
        .iter()
        .map(|e| json!({"dataset": e.dataset, "message": e.message}))
        .collect();
    json!({
        "id": run.id,
        "source_id": run.source_id,
        "created": format_timestamp(&run.started_at),
        "gather_started": format_timestamp(&run.started_at),
        "finished": run.finished_at.as_ref().map(format_timestamp),
        "status": run.status.as_str(),
        "stats": {
            "added": counts.created,
            "updated": counts.updated,
            "not modified": counts.unchanged,
            "deleted": counts.deleted,
            "errored": counts.errored,
        },
        "errors": errors,
    })
}

/// The scheduler's task; dropping this value stops it.
pub struct Scheduler {
    task: JoinHandle<()>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts running due harvest sources, every minute and whenever a scheduled
/// source is registered on this node, for as long as the returned value lives.
pub fn start_scheduler(state: &AppState) -> Scheduler {
    let harvester = state.harvester.clone();
    let task = tokio::spawn(async move {
        let wake = harvester.schedule_changed();
        loop {
            match harvester.run_due().await {
                Ok(runs) => {
                    for run in runs {
                        tracing::info!(
                            source = %run.source_id,
                            run = %run.id,
                            status = run.status.as_str(),
                            created = run.counts.created,
                            updated = run.counts.updated,
                            unchanged = run.counts.unchanged,
                            deleted = run.counts.deleted,
                            errored = run.counts.errored,
                            "scheduled harvest finished"
                        );
                    }
                }
                Err(error) => tracing::error!(%error, "scheduled harvesting failed; retrying"),
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(SCHEDULE_POLL) => {}
            }
        }
    });
    Scheduler { task }
}
