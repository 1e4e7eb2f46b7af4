//! The real CKAN client against the real binary: the `ckanapi` Python package
//! (from PyPI, in the virtualenv `scripts/ensure-python-tools` keeps) drives two
//! `renkei serve` processes over HTTP. Action calls work unchanged, and
//! `ckanapi dump datasets` from one renkei loaded with `ckanapi load datasets`
//! into the other gives the same datasets.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtualenv's bin directory, installing the tools when missing. A machine
/// that cannot have them fails this test rather than skipping it.
fn python_tools() -> PathBuf {
    let out = Command::new(workspace_root().join("scripts/ensure-python-tools"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/ensure-python-tools runs");
    assert!(out.status.success(), "ensure-python-tools failed");
    let text = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(text.lines().last().expect("the bin directory").trim())
}

fn renkei(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_renkei"));
    command
        .args(args)
        .env(
            "RENKEI_DATABASE_URL",
            format!("sqlite://{}", dir.join("renkei.db").display()),
        )
        .env("RENKEI_FILES_DIR", dir.join("files"))
        .env("RENKEI_REMOTE_CONTEXTS", "false")
        .env("RENKEI_LOG", "warn");
    command
}

fn run(command: &mut Command) -> Output {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One running renkei with a registered 焼津市 and a publisher's key.
struct Instance {
    url: String,
    key: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Instance {
    let dir = tempfile::tempdir().unwrap();
    run(renkei(dir.path(), &["tenant", "add", "222127"]).stdout(Stdio::null()));
    let key = run(&mut renkei(
        dir.path(),
        &["key", "create", "--tenant", "222127", "--role", "publisher"],
    ));
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let child = renkei(dir.path(), &["serve"])
        .env("RENKEI_LISTEN", format!("127.0.0.1:{port}"))
        .env("RENKEI_PUBLIC_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let instance = Instance {
        url,
        key,
        child,
        _dir: dir,
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return instance;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("renkei did not start listening on {port}");
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
    all.extend_from_slice(&["-r", &at.url, "-a", &at.key]);
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
            &source.url,
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
            &target.url,
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
            &target.url,
            "-a",
            &target.key,
            "-q",
        ],
    );
    let listed = action(&bin, &target, &["package_list"]);
    assert_eq!(listed, serde_json::json!(["toilets", "yaizu-shelters"]));
}
