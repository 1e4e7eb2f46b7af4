//! Harvesting between two real renkei processes over HTTP: one is a municipality's
//! catalog (焼津市), the other the prefecture's platform whose organisation
//! (高松市 here) registers it as a harvest source, runs jobs on demand and by
//! schedule, and gets the datasets; changes, deletions, name clashes and an
//! unreachable source are recorded in the runs. The harvesting instance runs on
//! SQLite and, in a second case, on PostgreSQL (a database of its own on the test
//! server, `RENKEI_TEST_PG_URL`).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::process::{api_key, free_port, renkei, run, serve, sqlite_url, Served};
use serde_json::{json, Value};

const YAIZU: &str = "222127";
const TAKAMATSU: &str = "372013";

/// One running renkei with one registered organisation and its publisher's key.
/// Fields drop in order: the process is killed before its database is dropped.
struct Instance {
    served: Served,
    key: String,
    _dir: tempfile::TempDir,
    _database: Option<store_postgres::testing::TestDatabase>,
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn start(tenant: &str, backend: Backend) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, database) = match backend {
        Backend::Sqlite => (sqlite_url(dir.path()), None),
        Backend::Postgres => {
            let server_url = store_postgres::testing::test_server_url();
            let database = store_postgres::testing::TestDatabase::create(&server_url)
                .await
                .unwrap_or_else(|e| panic!("no PostgreSQL test server at {server_url}: {e}"));
            let base = server_url
                .rsplit_once('/')
                .map(|(base, _)| base)
                .unwrap_or(&server_url);
            (format!("{base}/{}", database.name()), Some(database))
        }
    };
    run(renkei(dir.path(), &database_url, &["tenant", "add", tenant]).stdout(Stdio::null()));
    let key = api_key(dir.path(), &database_url, tenant, "publisher");
    Instance {
        served: serve(renkei(dir.path(), &database_url, &["serve"])),
        key,
        _dir: dir,
        _database: database,
    }
}

/// Calls an action with the instance's key (or anonymously) and gives the status
/// and the envelope.
async fn call(at: &Instance, action: &str, body: Value, with_key: bool) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/3/action/{action}", at.served.url))
        .json(&body);
    if with_key {
        request = request.header("Authorization", &at.key);
    }
    let response = request.send().await.expect("the instance answers");
    let status = response.status().as_u16();
    let envelope: Value = response.json().await.expect("a JSON envelope");
    (status, envelope)
}

/// The result of an action that must succeed.
async fn ok(at: &Instance, action: &str, body: Value) -> Value {
    let (status, envelope) = call(at, action, body, true).await;
    assert_eq!(status, 200, "{action}: {envelope}");
    assert_eq!(envelope["success"], true, "{action}: {envelope}");
    envelope["result"].clone()
}

fn stats(job: &Value) -> [u64; 5] {
    ["added", "updated", "not modified", "deleted", "errored"]
        .map(|key| job["stats"][key].as_u64().unwrap_or(u64::MAX))
}

fn extra<'a>(package: &'a Value, key: &str) -> Option<&'a str> {
    package["extras"]
        .as_array()?
        .iter()
        .find(|e| e["key"] == key)
        .and_then(|e| e["value"].as_str())
}

async fn publish_at_source(source: &Instance) {
    ok(
        source,
        "package_create",
        json!({
            "name": "yaizu-shelters",
            "title": "指定緊急避難場所一覧",
            "owner_org": YAIZU,
            "license_id": "CC-BY-4.0",
            "tags": [{"name": "防災"}],
            "resources": [{"url": "https://www.city.yaizu.lg.jp/opendata/shelters.csv", "name": "一覧"}],
        }),
    )
    .await;
    for (name, title) in [
        ("yaizu-toilets", "公衆トイレ一覧"),
        ("yaizu-parks", "都市公園一覧"),
        ("clash-name", "名前が重なるデータ"),
    ] {
        ok(
            source,
            "package_create",
            json!({"name": name, "title": title, "owner_org": YAIZU}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvest_source_is_imported_updated_and_recorded_over_http() {
    harvest_import_update_and_record(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harvesting_into_postgresql_imports_updates_and_records_alike() {
    harvest_import_update_and_record(Backend::Postgres).await;
}

/// The whole story, with the harvesting instance on `backend`.
async fn harvest_import_update_and_record(backend: Backend) {
    let source = start(YAIZU, Backend::Sqlite).await;
    let target = start(TAKAMATSU, backend).await;
    publish_at_source(&source).await;
    // The target's own datasets, one of them with a name the source also uses.
    let local = ok(
        &target,
        "package_create",
        json!({"name": "takamatsu-parks", "title": "高松市の公園", "owner_org": TAKAMATSU}),
    )
    .await;
    let clash = ok(
        &target,
        "package_create",
        json!({"name": "clash-name", "title": "高松市のデータ", "owner_org": TAKAMATSU}),
    )
    .await;

    let registration = json!({
        "url": format!("{}/api/3/action/", source.served.url),
        "owner_org": TAKAMATSU,
        "title": "焼津市オープンデータ",
        "source_type": "ckan",
        "config": "{\"organizations_filter_include\": [\"222127\"]}",
    });
    let (status, refused) = call(
        &target,
        "harvest_source_create",
        registration.clone(),
        false,
    )
    .await;
    assert_eq!(
        status, 403,
        "anonymous callers may not register sources: {refused}"
    );
    let harvest_source = ok(&target, "harvest_source_create", registration).await;
    let source_id = harvest_source["id"].as_str().unwrap().to_owned();
    assert_eq!(
        harvest_source["url"], source.served.url,
        "the Action API path is dropped"
    );
    assert_eq!(harvest_source["frequency"], "MANUAL");
    assert_eq!(harvest_source["remote_organization"], YAIZU);

    // First run: everything is new, except the dataset whose name is taken.
    let first = ok(
        &target,
        "harvest_job_create",
        json!({"source_id": source_id}),
    )
    .await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(stats(&first), [3, 0, 0, 0, 1], "{first}");
    assert_eq!(first["errors"][0]["dataset"], "clash-name", "{first}");
    let message = first["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("name"), "{message}");

    let remote = ok(&source, "package_show", json!({"id": "yaizu-shelters"})).await;
    let copy = ok(&target, "package_show", json!({"id": "yaizu-shelters"})).await;
    assert_eq!(copy["id"], remote["id"], "the remote id is kept when free");
    assert_eq!(copy["owner_org"], TAKAMATSU);
    assert_eq!(copy["title"], "指定緊急避難場所一覧");
    assert_eq!(copy["license_id"], remote["license_id"]);
    assert_eq!(copy["tags"][0]["name"], "防災");
    assert_eq!(copy["creator_user_id"], format!("harvest:{source_id}"));
    assert_eq!(extra(&copy, "harvest_source_id"), Some(source_id.as_str()));
    assert_eq!(
        extra(&copy, "harvest_source_url"),
        Some(source.served.url.as_str())
    );
    assert_eq!(
        extra(&copy, "harvest_remote_modified"),
        remote["metadata_modified"].as_str()
    );
    assert_eq!(copy["resources"][0]["url"], remote["resources"][0]["url"]);
    assert_eq!(copy["resources"][0]["format"], "CSV");
    let found = ok(
        &target,
        "package_search",
        json!({"fq": format!("organization:{TAKAMATSU}"), "rows": 100}),
    )
    .await;
    assert_eq!(found["count"], 5, "3 harvested and 2 local: {found}");

    // One change at the source: one update, the rest unchanged.
    ok(
        &source,
        "package_patch",
        json!({"id": "yaizu-toilets", "title": "公衆トイレ一覧（令和6年度）"}),
    )
    .await;
    let second = ok(
        &target,
        "harvest_job_create",
        json!({"source_id": source_id}),
    )
    .await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(stats(&second), [0, 1, 2, 0, 1], "{second}");
    let toilets = ok(&target, "package_show", json!({"id": "yaizu-toilets"})).await;
    assert_eq!(toilets["title"], "公衆トイレ一覧（令和6年度）");

    // A dataset gone from the source is deleted here too.
    ok(&source, "package_delete", json!({"id": "yaizu-parks"})).await;
    let third = ok(
        &target,
        "harvest_job_create",
        json!({"source_id": source_id}),
    )
    .await;
    assert_eq!(stats(&third), [0, 0, 2, 1, 1], "{third}");
    let parks = ok(&target, "package_show", json!({"id": "yaizu-parks"})).await;
    assert_eq!(parks["state"], "deleted");
    let (status, _) = call(&target, "package_show", json!({"id": "yaizu-parks"}), false).await;
    assert_eq!(status, 404, "a deleted copy is gone for the public");

    // The target's own datasets were never touched.
    for before in [&local, &clash] {
        let after = ok(&target, "package_show", json!({"id": before["id"]})).await;
        assert_eq!(after["metadata_modified"], before["metadata_modified"]);
        assert_eq!(after["title"], before["title"]);
        assert_eq!(extra(&after, "harvest_source_id"), None);
    }

    // The runs are recorded, newest first, and the source shows the last one.
    let jobs = ok(&target, "harvest_job_list", json!({"source_id": source_id})).await;
    let ids: Vec<&Value> = jobs.as_array().unwrap().iter().map(|j| &j["id"]).collect();
    assert_eq!(ids, [&third["id"], &second["id"], &first["id"]]);
    assert!(jobs[0]["finished"].is_string());
    let shown = ok(&target, "harvest_source_show", json!({"id": source_id})).await;
    assert_eq!(shown["status"]["last_job"]["id"], third["id"]);
    let listed = ok(
        &target,
        "harvest_source_list",
        json!({"owner_org": TAKAMATSU}),
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let (status, _) = call(
        &target,
        "harvest_job_create",
        json!({"source_id": source_id}),
        false,
    )
    .await;
    assert_eq!(status, 403, "anonymous callers may not run jobs");

    // Deleting the source keeps what it harvested.
    ok(&target, "harvest_source_delete", json!({"id": source_id})).await;
    let (status, _) = call(
        &target,
        "harvest_source_show",
        json!({"id": source_id}),
        true,
    )
    .await;
    assert_eq!(status, 404);
    ok(&target, "package_show", json!({"id": "yaizu-shelters"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_source_gives_a_failed_run_with_its_reason() {
    let target = start(TAKAMATSU, Backend::Sqlite).await;
    // A port nobody listens on.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let harvest_source = ok(
        &target,
        "harvest_source_create",
        json!({"url": nowhere, "owner_org": TAKAMATSU}),
    )
    .await;
    let job = ok(
        &target,
        "harvest_job_create",
        json!({"source_id": harvest_source["id"]}),
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(stats(&job), [0, 0, 0, 0, 0], "{job}");
    let error = &job["errors"][0];
    assert_eq!(error["dataset"], Value::Null, "{job}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot read the remote catalog") && message.contains(&nowhere),
        "{message}"
    );
    let jobs = ok(
        &target,
        "harvest_job_list",
        json!({"source_id": harvest_source["id"]}),
    )
    .await;
    assert_eq!(jobs[0]["id"], job["id"]);
    assert_eq!(jobs[0]["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_source_is_harvested_without_being_asked() {
    let source = start(YAIZU, Backend::Sqlite).await;
    let target = start(TAKAMATSU, Backend::Sqlite).await;
    publish_at_source(&source).await;
    let harvest_source = ok(
        &target,
        "harvest_source_create",
        json!({"url": source.served.url, "owner_org": TAKAMATSU, "frequency": "HOURLY"}),
    )
    .await;
    assert_eq!(harvest_source["frequency"], "HOURLY");
    let source_id = harvest_source["id"].clone();
    // The scheduler runs a newly scheduled source at once; wait for its run.
    let mut finished = None;
    for _ in 0..300 {
        let jobs = ok(&target, "harvest_job_list", json!({"source_id": source_id})).await;
        if let Some(job) = jobs
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["status"] != "running"))
        {
            finished = Some(job.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = finished.expect("the scheduler ran the source");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(stats(&job), [4, 0, 0, 0, 0], "{job}");
    ok(&target, "package_show", json!({"id": "yaizu-shelters"})).await;
    let shown = ok(&target, "harvest_source_show", json!({"id": source_id})).await;
    let next = shown["next_run"].as_str().unwrap_or_default();
    let finished_at = job["finished"].as_str().unwrap_or_default();
    assert!(
        next > finished_at,
        "the next run comes after this one: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_is_corrected_by_update_and_patch_and_keeps_its_runs() {
    let source = start(YAIZU, Backend::Sqlite).await;
    let target = start(TAKAMATSU, Backend::Sqlite).await;
    publish_at_source(&source).await;
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let created = ok(
        &target,
        "harvest_source_create",
        json!({"url": nowhere, "owner_org": TAKAMATSU, "title": "間違い"}),
    )
    .await;
    let id = created["id"].clone();
    let failed = ok(&target, "harvest_job_create", json!({"source_id": id})).await;
    assert_eq!(failed["status"], "failed", "{failed}");

    // Refused, and nothing changes: an anonymous caller, a URL that is no CKAN
    // site's (the error names the field), a source that does not exist.
    let correction = json!({"id": id, "url": source.served.url, "owner_org": TAKAMATSU});
    let (status, _) = call(&target, "harvest_source_update", correction.clone(), false).await;
    assert_eq!(status, 403);
    let (status, envelope) = call(
        &target,
        "harvest_source_update",
        json!({"id": id, "url": "ftp://example.jp", "owner_org": TAKAMATSU}),
        true,
    )
    .await;
    assert_eq!(status, 409, "{envelope}");
    assert!(envelope["error"]["url"].is_array(), "{envelope}");
    let (status, _) = call(
        &target,
        "harvest_source_patch",
        json!({"id": "no-such-source", "title": "x"}),
        true,
    )
    .await;
    assert_eq!(status, 404);
    let shown = ok(&target, "harvest_source_show", json!({"id": id})).await;
    assert_eq!(
        (&shown["url"], &shown["title"]),
        (&json!(nowhere), &json!("間違い"))
    );

    // An update replaces the registration; the id and creation time stay.
    let mut update = correction;
    update["title"] = json!("焼津市オープンデータ");
    let updated = ok(&target, "harvest_source_update", update).await;
    assert_eq!(updated["id"], id);
    assert_eq!(updated["url"], json!(source.served.url));
    assert_eq!(updated["title"], "焼津市オープンデータ");
    assert_eq!(updated["frequency"], "MANUAL");
    assert_eq!(updated["metadata_created"], created["metadata_created"]);

    // A patch changes only what it names (inactive, so the scheduler leaves it be).
    let patched = ok(
        &target,
        "harvest_source_patch",
        json!({"id": id, "frequency": "DAILY", "active": false}),
    )
    .await;
    assert_eq!(patched["frequency"], "DAILY", "{patched}");
    assert_eq!(patched["active"], false);
    assert!(patched["next_run"].is_string(), "{patched}");
    assert_eq!(
        (&patched["url"], &patched["title"]),
        (&updated["url"], &updated["title"])
    );
    let patched = ok(
        &target,
        "harvest_source_patch",
        json!({"id": id, "title": "焼津市"}),
    )
    .await;
    assert_eq!(
        (&patched["frequency"], &patched["active"], &patched["title"]),
        (&json!("DAILY"), &json!(false), &json!("焼津市"))
    );

    // The corrected source harvests, and the failed run is still on record.
    let job = ok(&target, "harvest_job_create", json!({"source_id": id})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(stats(&job), [4, 0, 0, 0, 0], "{job}");
    let jobs = ok(&target, "harvest_job_list", json!({"source_id": id})).await;
    let statuses: Vec<&Value> = jobs
        .as_array()
        .map(|jobs| jobs.iter().map(|j| &j["status"]).collect())
        .unwrap_or_default();
    assert_eq!(statuses, [&json!("succeeded"), &json!("failed")]);
}
