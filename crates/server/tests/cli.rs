//! The administrative command line, run as the real `renkei` binary against a SQLite
//! file that an in-process server also serves: tenants are added and suspended and
//! keys created with no restart, a key is printed alone on standard output, there is
//! no default password, and `renkei audit verify` finds a record changed behind the
//! log's back.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tower::ServiceExt;

fn renkei(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_renkei"));
    command
        .args(args)
        .env("RENKEI_DATABASE_URL", format!("sqlite://{}", db.display()))
        // Beside the database: nothing is written into the working directory.
        .env("RENKEI_FILES_DIR", db.with_file_name("files"))
        .env("RENKEI_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the renkei binary runs");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn status_of(app: &server::HttpService, key: &str, tenant: &str, id: &str) -> StatusCode {
    let body = json!({"id": id, "type": "RiverLevel"}).to_string();
    let request = Request::post("/ngsi-ld/v1/entities")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .header("NGSILD-Tenant", tenant)
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_keys_and_admins_from_the_command_line_take_effect_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("renkei.db");
    let config = server::config::Config {
        database_url: format!("sqlite://{}", db.display()),
        // Beside the database, as the binary's runs: the generated key file too.
        files_dir: dir.path().join("files"),
        remote_contexts: false,
        ..Default::default()
    };
    let stores = server::storage::Backend::from_url(&config.database_url)
        .unwrap()
        .open()
        .await
        .unwrap();
    let app = server::service(server::AppState::new(stores, config).unwrap());

    let added = renkei(&db, &["tenant", "add", "222127"], None);
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stderr).contains("焼津市"));
    for bad in ["222128", "22212", "999999", "abc"] {
        let refused = renkei(&db, &["tenant", "add", bad], None);
        assert!(!refused.status.success(), "{bad} was accepted");
    }

    let created = renkei(
        &db,
        &[
            "key",
            "create",
            "--tenant",
            "222127",
            "--role",
            "publisher",
            "--label",
            "river gauges",
        ],
        None,
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let stdout = text(&created.stdout);
    let key = stdout.trim_end();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the key on standard output: {stdout:?}"
    );
    assert!(key.starts_with("rk_") && key.len() > 40, "{key}");
    assert_eq!(
        status_of(&app, key, "222127", "urn:ngsi-ld:RiverLevel:1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        status_of(&app, key, "221309", "urn:ngsi-ld:RiverLevel:1").await,
        StatusCode::FORBIDDEN
    );

    // Suspension applies to the running server at once, and lifts as quickly.
    assert!(renkei(&db, &["tenant", "suspend", "222127"], None)
        .status
        .success());
    assert_eq!(
        status_of(&app, key, "222127", "urn:ngsi-ld:RiverLevel:2").await,
        StatusCode::FORBIDDEN
    );
    assert!(renkei(&db, &["tenant", "resume", "222127"], None)
        .status
        .success());
    assert_eq!(
        status_of(&app, key, "222127", "urn:ngsi-ld:RiverLevel:2").await,
        StatusCode::CREATED
    );

    // No default password: a weak one is refused, a good one creates the account.
    let weak = renkei(
        &db,
        &["admin", "create", "--username", "root-admin"],
        Some("password\n"),
    );
    assert!(!weak.status.success());
    assert!(text(&weak.stderr).contains("12"), "{}", text(&weak.stderr));
    let admin = renkei(
        &db,
        &["admin", "create", "--username", "root-admin"],
        Some("静岡県の防災を担う管理者です\n"),
    );
    assert!(admin.status.success(), "{}", text(&admin.stderr));

    let listed = renkei(&db, &["tenant", "list"], None);
    assert_eq!(text(&listed.stdout).trim(), "222127\t焼津市\tactive");

    let verified = renkei(&db, &["audit", "verify"], None);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(
        text(&verified.stdout).starts_with("audit log intact: 5 records"),
        "{}",
        text(&verified.stdout)
    );
}

#[tokio::test]
async fn audit_verify_finds_a_record_changed_or_removed_behind_the_logs_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("renkei.db");
    for code in ["222127", "221309", "220001"] {
        assert!(renkei(&db, &["tenant", "add", code], None).status.success());
    }
    assert!(renkei(&db, &["audit", "verify"], None).status.success());

    // The log refuses changes itself…
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert!(conn
        .execute(
            "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2",
            []
        )
        .is_err());
    assert!(conn
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .is_err());
    // …so someone with the file drops the guard and rewrites a record.
    conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    conn.execute(
        "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2",
        [],
    )
    .unwrap();
    let altered = renkei(&db, &["audit", "verify"], None);
    assert!(!altered.status.success());
    let message = text(&altered.stderr);
    assert!(
        message.contains("BROKEN") && message.contains("record 2"),
        "{message}"
    );

    // A deleted record is found as well.
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = dir2.path().join("renkei.db");
    for code in ["222127", "221309", "220001"] {
        assert!(renkei(&db2, &["tenant", "add", code], None)
            .status
            .success());
    }
    let conn = rusqlite::Connection::open(&db2).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2;")
        .unwrap();
    let removed = renkei(&db2, &["audit", "verify"], None);
    assert!(!removed.status.success());
    assert!(
        text(&removed.stderr).contains("missing"),
        "{}",
        text(&removed.stderr)
    );
}
