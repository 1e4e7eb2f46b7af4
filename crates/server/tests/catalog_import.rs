//! `renkei catalog import`, run as the real binary on a copy of 焼津市's seven files
//! (and the folder's README, which is skipped): the summary names every file with the
//! standard schema it was recognised as and the rows loaded; afterwards the database,
//! opened in-process, holds one dataset per file with its file loaded into the
//! datastore; a second run updates the same datasets instead of adding new ones.

use identity::Principal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use store::datastore::RowQuery;

const YAIZU: &str = "222127";

/// The seven files and the schema each must be recognised as.
const FILES: [(&str, Option<&str>, &str); 7] = [
    ("222127_aed.csv", Some("v1-01-aed"), "AED設置箇所一覧"),
    (
        "222127_evacuation_space.csv",
        Some("v1-10-emergency-evacuation-sites"),
        "指定緊急避難場所一覧",
    ),
    (
        "222127_fire_hydrant.csv",
        Some("current-14-fire-water-supplies"),
        "消防水利施設一覧",
    ),
    ("222127_hinannjo.csv", None, "222127_hinannjo.csv"),
    (
        "222127_preschool.csv",
        Some("v1-13-childcare-facilities"),
        "子育て施設一覧",
    ),
    (
        "222127_public_toilet.csv",
        Some("current-13-public-toilets"),
        "公衆トイレ一覧",
    ),
    (
        "222127_public_wireless_lan.csv",
        Some("v1-07-public-wireless-lan"),
        "公衆無線LANアクセスポイント一覧",
    ),
];

struct Place {
    _dir: tempfile::TempDir,
    db: PathBuf,
    files: PathBuf,
    folder: PathBuf,
}

fn place() -> Place {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("yaizu");
    std::fs::create_dir(&folder).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog/testdata/yaizu");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, folder.join(path.file_name().unwrap())).unwrap();
    }
    Place {
        db: dir.path().join("renkei.db"),
        files: dir.path().join("files"),
        folder,
        _dir: dir,
    }
}

fn renkei(place: &Place, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(args)
        .env(
            "RENKEI_DATABASE_URL",
            format!("sqlite://{}", place.db.display()),
        )
        .env("RENKEI_FILES_DIR", &place.files)
        .env("RENKEI_REMOTE_CONTEXTS", "false")
        .env("RENKEI_LOG", "warn")
        .output()
        .expect("the renkei binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A summary line: dataset, schema, rows, errors, warnings, status.
#[derive(Debug)]
struct Line {
    dataset: String,
    schema: String,
    rows: u64,
    status: String,
}

/// The summary's lines by file (the header and totals left out).
fn summary(stdout: &str) -> BTreeMap<String, Line> {
    let mut lines = BTreeMap::new();
    for line in stdout.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() < 7 || cells[0] == "file" {
            continue;
        }
        let Ok(rows) = cells[3].parse() else { continue };
        lines.insert(
            cells[0].to_owned(),
            Line {
                dataset: cells[1].to_owned(),
                schema: cells[2].to_owned(),
                rows,
                status: cells[6..].join(" "),
            },
        );
    }
    lines
}

/// The data rows of a CSV file, as the `csv` crate reads them.
fn csv_rows(path: &Path) -> u64 {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let mut rows = 0;
    for record in reader.byte_records() {
        record.expect("the file reads as CSV");
        rows += 1;
    }
    rows
}

fn import(place: &Place) -> (BTreeMap<String, Line>, String) {
    let folder = place.folder.to_str().unwrap();
    let args = [
        "catalog",
        "import",
        folder,
        "--organization",
        YAIZU,
        "--dataset-prefix",
        "yaizu",
    ];
    let run = renkei(place, &args);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    (summary(&stdout), stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_municipal_files_becomes_one_loaded_dataset_per_file() {
    let place = place();
    let refused = renkei(
        &place,
        &[
            "catalog",
            "import",
            place.folder.to_str().unwrap(),
            "--organization",
            YAIZU,
        ],
    );
    assert!(
        !refused.status.success(),
        "an unregistered organisation is refused"
    );
    assert!(
        text(&refused.stderr).contains("not registered"),
        "{}",
        text(&refused.stderr)
    );
    let added = renkei(&place, &["tenant", "add", YAIZU]);
    assert!(added.status.success(), "{}", text(&added.stderr));

    let (lines, stdout) = import(&place);
    assert_eq!(lines.len(), 8, "seven files and the README:\n{stdout}");
    let readme = &lines["README.md"];
    assert!(readme.status.starts_with("skipped"), "{stdout}");
    for (file, schema, _) in FILES {
        let line = &lines[file];
        assert_eq!(line.schema, schema.unwrap_or("-"), "{file}:\n{stdout}");
        assert_eq!(line.status, "created", "{file}:\n{stdout}");
        assert_eq!(line.rows, csv_rows(&place.folder.join(file)), "{file}");
        assert!(line.rows > 0, "{file}");
        let stem = file.trim_end_matches(".csv");
        assert_eq!(line.dataset, format!("yaizu-{stem}"));
    }
    assert!(
        stdout.contains("8 files: 7 created, 0 updated, 0 rejected, 1 skipped, 0 failed"),
        "{stdout}"
    );

    // The datasets, as the server sees them.
    let config = server::config::Config {
        database_url: format!("sqlite://{}", place.db.display()),
        files_dir: place.files.clone(),
        remote_contexts: false,
        ..Default::default()
    };
    let stores = server::storage::Backend::from_url(&config.database_url)
        .unwrap()
        .open()
        .await
        .unwrap();
    let state = server::AppState::new(stores, config).unwrap();
    let access = server::ckan::CallerAccess::new(&state, Principal::Operator)
        .await
        .unwrap();
    let mut resource_ids = BTreeMap::new();
    for (file, _, title) in FILES {
        let line = &lines[file];
        let package = state
            .catalog
            .package_show(&line.dataset, &access)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", line.dataset));
        assert_eq!(package.owner_org, YAIZU);
        assert_eq!(package.title, title, "{file}");
        assert_eq!(package.resources.len(), 1, "{file}");
        let resource = &package.resources[0];
        assert_eq!(resource.name.as_deref(), Some(file));
        assert_eq!(resource.format, "CSV");
        assert!(resource.datastore_active, "{file}");
        let stored = place.files.join("resources").join(&resource.id).join(file);
        assert_eq!(
            std::fs::read(&stored).unwrap_or_default(),
            std::fs::read(place.folder.join(file)).unwrap(),
            "{file} is kept as uploaded at {}",
            stored.display()
        );
        let query = RowQuery {
            limit: 0,
            include_total: true,
            ..RowQuery::default()
        };
        let page = state
            .datastore
            .search_rows(&resource.id, &query)
            .await
            .unwrap();
        assert_eq!(page.total, Some(line.rows), "{file}");
        resource_ids.insert(file, resource.id.clone());
    }

    // Again: the same datasets and resources, reloaded.
    let (again, stdout) = import(&place);
    for (file, _, _) in FILES {
        assert_eq!(again[file].status, "updated", "{file}:\n{stdout}");
        assert_eq!(again[file].rows, lines[file].rows);
        let package = state
            .catalog
            .package_show(&again[file].dataset, &access)
            .await
            .unwrap();
        assert_eq!(package.resources.len(), 1, "{file}");
        assert_eq!(package.resources[0].id, resource_ids[file]);
    }
    let names = state.catalog.package_list(None, 0).await.unwrap();
    assert_eq!(names.len(), 7, "{names:?}");
}
