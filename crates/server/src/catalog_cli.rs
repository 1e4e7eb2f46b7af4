//! `renkei catalog import <folder>` (issue 5, item 8): loads a folder of municipal
//! files into the catalog of one organisation, as the operator at the console. Each
//! CSV, TSV, xlsx or xls file becomes a dataset named after the file (updated when a
//! dataset of that name exists), with the file as a resource that goes through the
//! very path of an HTTP upload (`ckan::write_resource_from_file`): kept, loaded into
//! the datastore with its validation report, published into the broker when it is a
//! standard dataset with coordinates. Other files are reported as skipped.
//!
//! A progress bar on standard error counts the rows loaded into each file's table
//! (read from the table while it fills); a summary table on standard output says,
//! per file, the dataset, the standard schema recognised, rows, errors, warnings and
//! what happened. The command fails (exit status 1) only when a file could not be
//! handled at all; a file the ingest rejects is a finding about the file, shown in
//! the table like its validation errors.

use crate::ckan::{self, CallerAccess, CkanError};
use crate::config::Config;
use crate::storage::Backend;
use crate::AppState;
use anyhow::{bail, Context as _};
use identity::Principal;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::datastore::RowQuery;

/// What to import and where.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub folder: PathBuf,
    /// The organisation (tenant code) the datasets belong to.
    pub organization: String,
    /// Put before every dataset name (`yaizu-` gives `yaizu-222127-aed`).
    pub dataset_prefix: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A new dataset with the file loaded.
    Created,
    /// The existing dataset of that name, its resource replaced and reloaded.
    Updated,
    /// The dataset and file are kept, but the ingest refused the file (why).
    Rejected(String),
    /// Not a table file (why).
    Skipped(String),
    /// Could not be handled (why).
    Failed(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Created => write!(f, "created"),
            Status::Updated => write!(f, "updated"),
            Status::Rejected(why) => write!(f, "rejected: {why}"),
            Status::Skipped(why) => write!(f, "skipped: {why}"),
            Status::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    pub file: String,
    pub dataset: Option<String>,
    /// The standard schema's id, when the header was recognised.
    pub schema: Option<String>,
    pub rows: u64,
    pub errors: u64,
    pub warnings: u64,
    pub status: Status,
}

impl FileOutcome {
    fn new(file: &str, status: Status) -> FileOutcome {
        FileOutcome {
            file: file.to_owned(),
            dataset: None,
            schema: None,
            rows: 0,
            errors: 0,
            warnings: 0,
            status,
        }
    }
}

/// The CKAN format of a file loaded into the datastore, by its extension.
fn table_format(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some("CSV"),
        "tsv" => Some("TSV"),
        "xlsx" => Some("XLSX"),
        "xls" => Some("XLS"),
        _ => None,
    }
}

/// A valid CKAN dataset name (2 to 100 of `a-z 0-9 - _`) from a file name: the stem
/// lowercased, every other character a hyphen (runs of them one), after `prefix`.
/// A name with nothing of the file left (a Japanese-only file name) takes a short
/// digest of it, so that distinct files keep distinct datasets.
pub fn dataset_name(prefix: Option<&str>, file_name: &str) -> String {
    let stem = Path::new(file_name).file_stem().map_or_else(
        || file_name.to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    let slug = |text: &str| {
        let mut out = String::new();
        for c in text.chars().flat_map(char::to_lowercase) {
            let keep = c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
            if keep {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_owned()
    };
    let mut stem_slug = slug(&stem);
    if stem_slug.is_empty() {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(stem.as_bytes());
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        stem_slug = format!("file-{hex}");
    }
    let prefix = prefix.map(slug).unwrap_or_default();
    let mut name = if prefix.is_empty() {
        stem_slug
    } else {
        format!("{prefix}-{stem_slug}")
    };
    name.truncate(100);
    let name = name.trim_end_matches('-').to_owned();
    if name.len() < 2 {
        format!("{name}-dataset")
    } else {
        name
    }
}

/// The table files and the others in `folder`, by name.
fn folder_files(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)
        .with_context(|| format!("reading the folder {}", folder.display()))?
    {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn ckan_failure(error: CkanError) -> String {
    match error {
        CkanError::Validation(fields) => Value::Object(fields).to_string(),
        CkanError::BadRequest(m) | CkanError::NotFound(m) | CkanError::NotAuthorized(m) => m,
        CkanError::Internal(detail) => format!("internal error: {detail}"),
    }
}

/// Counts the rows of `resource_id`'s table on `bar` while it fills.
fn watch_rows(
    state: &AppState,
    resource_id: &str,
    bar: ProgressBar,
) -> tokio::task::JoinHandle<()> {
    let datastore = state.datastore.clone();
    let resource_id = resource_id.to_owned();
    let query = RowQuery {
        limit: 0,
        include_total: true,
        ..RowQuery::default()
    };
    tokio::spawn(async move {
        loop {
            // Before the table exists (or while it is replaced) there is nothing to count.
            if let Ok(page) = datastore.search_rows(&resource_id, &query).await {
                bar.set_position(page.total.unwrap_or(0));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Creates or updates the dataset of one file and loads the file into it.
async fn import_file(
    state: &AppState,
    access: &CallerAccess,
    request: &ImportRequest,
    path: &Path,
    bar: &ProgressBar,
) -> FileOutcome {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(format) = table_format(path) else {
        return FileOutcome::new(
            &file_name,
            Status::Skipped("not CSV, TSV, XLSX or XLS".into()),
        );
    };
    let name = dataset_name(request.dataset_prefix.as_deref(), &file_name);
    let mut outcome = FileOutcome::new(&file_name, Status::Created);
    outcome.dataset = Some(name.clone());
    let failed = |mut outcome: FileOutcome, why: String| {
        outcome.status = Status::Failed(why);
        outcome
    };
    let existing = match state.catalog.package_show(&name, access).await {
        Ok(package) => Some(package),
        Err(catalog::service::CatalogError::NotFound(_)) => None,
        Err(e) => return failed(outcome, ckan_failure(e.into())),
    };
    let package = match existing {
        Some(package) if package.owner_org != request.organization => {
            let why = format!(
                "the dataset {name} belongs to organisation {}",
                package.owner_org
            );
            return failed(outcome, why);
        }
        Some(package) => {
            outcome.status = Status::Updated;
            package
        }
        None => {
            let mut dict = Map::new();
            dict.insert("name".into(), json!(name));
            dict.insert("title".into(), json!(file_name));
            dict.insert("owner_org".into(), json!(request.organization));
            dict.insert(
                "notes".into(),
                json!(format!("renkei catalog import: {file_name}")),
            );
            match state.catalog.package_create(&dict, access).await {
                Ok(package) => package,
                Err(e) => return failed(outcome, ckan_failure(e.into())),
            }
        }
    };
    let mut resource = Map::new();
    resource.insert("name".into(), json!(file_name));
    resource.insert("format".into(), json!(format));
    let (action, resource_id) = match package
        .resources
        .iter()
        .find(|r| r.name.as_deref() == Some(file_name.as_str()))
    {
        Some(existing) => ("resource_patch", existing.id.clone()),
        None => {
            resource.insert("package_id".into(), json!(package.id));
            ("resource_create", uuid::Uuid::new_v4().to_string())
        }
    };
    resource.insert("id".into(), json!(resource_id));
    let watcher = watch_rows(state, &resource_id, bar.clone());
    let written = ckan::write_resource_from_file(state, action, resource, path, access).await;
    watcher.abort();
    let written = match written {
        Ok(written) => written,
        Err(e) => return failed(outcome, ckan_failure(e)),
    };
    let validation = &written["validation"];
    let report = &validation["report"];
    outcome.rows = report["rows"].as_u64().unwrap_or(0);
    outcome.errors = report["errors"].as_u64().unwrap_or(0);
    outcome.warnings = report["warnings"].as_u64().unwrap_or(0);
    bar.set_position(outcome.rows);
    outcome.schema = report["schema"]["id"].as_str().map(str::to_owned);
    match validation["status"].as_str() {
        Some("loaded") => {}
        Some("rejected") => {
            let why = validation["rejected"]["message_en"]
                .as_str()
                .unwrap_or("refused");
            outcome.status = Status::Rejected(why.to_owned());
        }
        other => {
            let why = format!("not loaded ({})", other.unwrap_or("no report"));
            return failed(outcome, why);
        }
    }
    // A new dataset is titled after the standard it was recognised as.
    let title = report["schema"]["name_ja"].as_str();
    if let (Status::Created, Some(title)) = (&outcome.status, title) {
        let mut patch = Map::new();
        patch.insert("id".into(), json!(package.id));
        patch.insert("title".into(), json!(title));
        if let Err(e) = state.catalog.package_update(&patch, true, access).await {
            return failed(outcome, ckan_failure(e.into()));
        }
    }
    outcome
}

/// Imports every file of the folder; one outcome per file, in name order.
pub async fn import(config: &Config, request: &ImportRequest) -> anyhow::Result<Vec<FileOutcome>> {
    let files = folder_files(&request.folder)?;
    let stores = Backend::from_url(&config.database_url)?.open().await?;
    let state = AppState::new(stores, config.clone())?;
    let access = CallerAccess::new(&state, Principal::Operator)
        .await
        .map_err(|e| anyhow::anyhow!(ckan_failure(e)))?;
    if state
        .catalog
        .organization(&request.organization)
        .await?
        .is_none()
    {
        bail!(
            "organisation {} is not registered (renkei tenant add {0}) / 組織 {0} は登録されていません",
            request.organization
        );
    }
    let progress = MultiProgress::new();
    let overall = progress.add(ProgressBar::new(files.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} files")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    overall.set_prefix("import");
    let row_style = ProgressStyle::with_template("  {spinner} {msg}: {human_pos} rows ({per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut outcomes = Vec::with_capacity(files.len());
    for path in &files {
        let bar = progress.insert_before(&overall, ProgressBar::new_spinner());
        bar.set_style(row_style.clone());
        bar.set_message(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        let outcome = import_file(&state, &access, request, path, &bar).await;
        bar.finish_with_message(format!("{} — {}", outcome.file, outcome.status));
        overall.inc(1);
        outcomes.push(outcome);
    }
    overall.finish();
    Ok(outcomes)
}

/// Columns a terminal gives `text`: East Asian wide characters take two.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

/// The summary as an aligned text table with a header row and a totals line.
pub fn summary_table(outcomes: &[FileOutcome]) -> String {
    let header = [
        "file", "dataset", "schema", "rows", "errors", "warnings", "status",
    ];
    let rows: Vec<[String; 7]> = outcomes
        .iter()
        .map(|o| {
            [
                o.file.clone(),
                o.dataset.clone().unwrap_or_else(|| "-".into()),
                o.schema.clone().unwrap_or_else(|| "-".into()),
                o.rows.to_string(),
                o.errors.to_string(),
                o.warnings.to_string(),
                o.status.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(display_width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    let line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width.saturating_sub(display_width(cell)));
            // Counts align right, names left; the last column is not padded.
            match i {
                3..=5 => text.push_str(&format!("{pad}{cell}  ")),
                6 => text.push_str(cell),
                _ => text.push_str(&format!("{cell}{pad}  ")),
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    let count = |f: fn(&Status) -> bool| outcomes.iter().filter(|o| f(&o.status)).count();
    out.push_str(&format!(
        "{} files: {} created, {} updated, {} rejected, {} skipped, {} failed; {} rows loaded\n",
        outcomes.len(),
        count(|s| *s == Status::Created),
        count(|s| *s == Status::Updated),
        count(|s| matches!(s, Status::Rejected(_))),
        count(|s| matches!(s, Status::Skipped(_))),
        count(|s| matches!(s, Status::Failed(_))),
        outcomes.iter().map(|o| o.rows).sum::<u64>()
    ));
    out
}

/// `renkei catalog import`: imports, prints the summary, and fails when a file could
/// not be handled.
pub async fn import_command(config: &Config, request: &ImportRequest) -> anyhow::Result<()> {
    let outcomes = import(config, request).await?;
    print!("{}", summary_table(&outcomes));
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Failed(_)))
        .count();
    if failed > 0 {
        bail!("{failed} of {} files could not be imported", outcomes.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_are_valid_ckan_names_derived_from_the_file() {
        assert_eq!(dataset_name(None, "222127_AED.csv"), "222127_aed");
        assert_eq!(
            dataset_name(Some("Yaizu City"), "222127 evacuation space.xlsx"),
            "yaizu-city-222127-evacuation-space"
        );
        let japanese = dataset_name(None, "避難所一覧.csv");
        assert!(
            japanese.starts_with("file-") && japanese.len() == 13,
            "{japanese}"
        );
        assert_ne!(japanese, dataset_name(None, "公衆トイレ.csv"));
        assert_eq!(dataset_name(Some("焼津"), "x.csv"), "x-dataset");
        let long = dataset_name(None, &format!("{}.csv", "a".repeat(300)));
        assert_eq!(long.len(), 100);
    }

    #[test]
    fn only_table_files_are_loaded() {
        assert_eq!(table_format(Path::new("a/B.CSV")), Some("CSV"));
        assert_eq!(table_format(Path::new("b.xls")), Some("XLS"));
        assert_eq!(table_format(Path::new("README.md")), None);
        assert_eq!(table_format(Path::new("noextension")), None);
    }

    #[test]
    fn the_summary_aligns_japanese_and_counts_outcomes() {
        let mut loaded = FileOutcome::new("避難所.csv", Status::Created);
        loaded.schema = Some("v1-10-emergency-evacuation-sites".into());
        loaded.rows = 31;
        loaded.warnings = 2;
        let skipped = FileOutcome::new("README.md", Status::Skipped("not a table".into()));
        let table = summary_table(&[loaded, skipped]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("file        dataset"), "{table}");
        // 避難所.csv is 10 columns wide, like README.md plus one space.
        assert!(lines[1].starts_with("避難所.csv  -"), "{table}");
        assert!(lines[2].starts_with("README.md   -"), "{table}");
        assert!(lines[1].ends_with("created"));
        assert_eq!(
            lines[3],
            "2 files: 1 created, 0 updated, 0 rejected, 1 skipped, 0 failed; 31 rows loaded"
        );
    }
}
