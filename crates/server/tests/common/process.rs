//! The real `renkei` binary for tests that drive it as a process (a Python client
//! against it, or two instances talking over HTTP): its command over a throwaway data
//! directory, a command that must succeed, API keys made with the CLI, and a served
//! process that is killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtualenv's bin directory, installing the tools when missing. A machine
/// that cannot have them fails the test rather than skipping it.
pub fn python_tools() -> PathBuf {
    let out = Command::new(workspace_root().join("scripts/ensure-python-tools"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/ensure-python-tools runs");
    assert!(out.status.success(), "ensure-python-tools failed");
    let text = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(text.lines().last().expect("the bin directory").trim())
}

/// The SQLite database of a test directory.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("renkei.db").display())
}

/// `renkei ARGS` on `database_url`, keeping its files (and generated keys) in `dir`.
pub fn renkei(dir: &Path, database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_renkei"));
    command
        .args(args)
        .env("RENKEI_DATABASE_URL", database_url)
        .env("RENKEI_FILES_DIR", dir.join("files"))
        .env("RENKEI_REMOTE_CONTEXTS", "false")
        .env("RENKEI_LOG", "warn");
    command
}

/// Runs a command that must succeed, showing its output when it does not.
pub fn run(command: &mut Command) -> Output {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A new API key of `role` in `tenant`, made with `renkei key create`.
pub fn api_key(dir: &Path, database_url: &str, tenant: &str, role: &str) -> String {
    let args = ["key", "create", "--tenant", tenant, "--role", role];
    let out = run(&mut renkei(dir, database_url, &args));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A `renkei serve` listening on a free port; killed when dropped.
pub struct Served {
    pub url: String,
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` (a [`renkei`] `serve` command, with any settings of its own) on a
/// free port and waits until it listens.
pub fn serve(mut command: Command) -> Served {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = command
        .env("RENKEI_LISTEN", format!("127.0.0.1:{port}"))
        .env("RENKEI_PUBLIC_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let served = Served { url, child };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return served;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("renkei did not start listening on {port}");
}
