//! The real CKAN client against the real binary: the `ckanapi` Python package
//! (from PyPI, in the virtualenv `scripts/ensure-python-tools` keeps) drives two
//! `renkei serve` processes over HTTP. Action calls work unchanged, and
//! `ckanapi dump datasets` from one renkei loaded with `ckanapi load datasets`
//! into the other gives the same datasets.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::process::{api_key, python_tools, renkei, run, serve, sqlite_url, Served};
use serde_json::Value;

/// One running renkei with a registered 焼津市 and a publisher's key.
struct Instance {
    served: Served,
    key: String,
    _dir: tempfile::TempDir,
}

fn start() -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    run(renkei(dir.path(), &database, &["tenant", "add", "222127"]).stdout(Stdio::null()));
    let key = api_key(dir.path(), &database, "222127", "publisher");
    let served = serve(renkei(dir.path(), &database, &["serve"]));
    Instance {
        served,
        key,
        _dir: dir,
    }
}

fn ckanapi(bin: &Path, args: &[&str]) -> String {
    // ckanapi's dump and load start worker processes by the name `ckanapi`.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new(bin.join("ckanapi"))
        .args(args)
        .env("PATH", path));
    String::from_utf8(out.stdout).unwrap()
}

fn action(bin: &Path, at: &Instance, args: &[&str]) -> Value {
    let mut all = vec!["action"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-r", &at.served.url, "-a", &at.key]);
    serde_json::from_str(&ckanapi(bin, &all)).expect("ckanapi prints JSON")
}

#[test]
fn ckanapi_calls_dumps_and_loads_datasets_unchanged() {
    let bin = python_tools();
    let source = start();
    let target = start();

    let created = action(
        &bin,
        &source,
        &[
            "package_create",
            "name=yaizu-shelters",
            "title=指定緊急避難場所一覧",
            "owner_org=222127",
            "license_id=CC-BY-4.0",
            "tags:[{\"name\": \"防災\"}]",
            "resources:[{\"url\": \"https://example.jp/shelters.csv\", \"name\": \"一覧\"}]",
        ],
    );
    assert_eq!(created["name"], "yaizu-shelters");
    action(
        &bin,
        &source,
        &[
            "package_create",
            "name=toilets",
            "title=公衆トイレ一覧",
            "owner_org=222127",
        ],
    );
    let found = action(&bin, &source, &["package_search", "q=避難"]);
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["results"][0]["name"], "yaizu-shelters");
    let status = action(&bin, &source, &["status_show"]);
    assert_eq!(status["api_version"], 3);

    // Dump every dataset of one renkei and load them into the other.
    let dump_dir = tempfile::tempdir().unwrap();
    let dump = dump_dir.path().join("datasets.jsonl");
    let dump_arg = dump.to_str().unwrap();
    ckanapi(
        &bin,
        &[
            "dump",
            "datasets",
            "--all",
            "-O",
            dump_arg,
            "-r",
            &source.served.url,
            "-q",
        ],
    );
    let lines = std::fs::read_to_string(&dump).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    ckanapi(
        &bin,
        &[
            "load",
            "datasets",
            "-I",
            dump_arg,
            "-r",
            &target.served.url,
            "-a",
            &target.key,
            "-q",
        ],
    );
    for name in ["yaizu-shelters", "toilets"] {
        let from = action(&bin, &source, &["package_show", &format!("id={name}")]);
        let to = action(&bin, &target, &["package_show", &format!("id={name}")]);
        for key in [
            "id",
            "name",
            "title",
            "license_id",
            "owner_org",
            "tags",
            "num_resources",
        ] {
            assert_eq!(from[key], to[key], "{name}.{key}");
        }
        assert_eq!(from["resources"][0]["id"], to["resources"][0]["id"]);
    }
    // Loading again updates rather than duplicates.
    ckanapi(
        &bin,
        &[
            "load",
            "datasets",
            "-I",
            dump_arg,
            "-r",
            &target.served.url,
            "-a",
            &target.key,
            "-q",
        ],
    );
    let listed = action(&bin, &target, &["package_list"]);
    assert_eq!(listed, serde_json::json!(["toilets", "yaizu-shelters"]));
}
