//! The OpenAPI document of the back-office API (`docs/openapi/procedures.yaml`) checked
//! against the real binary: a `renkei serve` process on SQLite gets a published
//! procedure and applications in several states through the API, then Schemathesis
//! (from PyPI, in the virtualenv `scripts/ensure-python-tools` keeps) generates
//! requests from the document — valid and invalid ones, and sequences of calls — and
//! checks every answer against it: status codes, media types, bodies,
//! headers, refusals without credentials, and that no answer is a server error.

mod common;

use std::process::{Command, Stdio};

use common::process::{
    api_key, python_tools, renkei, run, serve, sqlite_url, workspace_root, Served,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const YAIZU: &str = "222127";

/// One running renkei with 焼津市 registered and an API key per role.
struct Instance {
    served: Served,
    admin: String,
    resident: String,
    reviewer: String,
    approver: String,
    dir: tempfile::TempDir,
}

fn start() -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(dir.path());
    run(renkei(dir.path(), &database, &["tenant", "add", YAIZU]).stdout(Stdio::null()));
    let key = |role: &str| api_key(dir.path(), &database, YAIZU, role);
    let (admin, resident) = (key("tenant_admin"), key("resident"));
    let (reviewer, approver) = (key("reviewer"), key("approver"));
    let mut command = renkei(dir.path(), &database, &["serve"]);
    // Schemathesis sends many writes in a burst; the write limit (and its 429) is
    // another test's concern.
    command.env("RENKEI_RATE_LIMIT_WRITES_PER_SECOND", "0");
    Instance {
        served: serve(command),
        admin,
        resident,
        reviewer,
        approver,
        dir,
    }
}

/// One call with an API key; the status and the JSON body (null when there is none).
async fn call(
    http: &reqwest::Client,
    at: &Instance,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http
        .request(method, format!("{}/api/v1/procedures{path}", at.served.url))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("renkei answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// 犬の登録: no fee, a two-step chain any approver decides.
fn procedure() -> Value {
    json!({
        "id": "inu-toroku",
        "title": {"ja": "犬の登録申請", "en": "Dog registration", "easy": "いぬの とうろく"},
        "form": {"schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 50},
                "dog_name": {"type": "string", "minLength": 1, "maxLength": 50}
            },
            "required": ["name", "dog_name"]
        }},
        "chain": {"steps": [
            {"name_ja": "係長決裁", "name_en": "Chief", "kind": "sequential", "approver": {"role": "approver"}, "due_days": 5},
            {"name_ja": "課長決裁", "name_en": "Section chief", "kind": "sequential", "approver": {"role": "approver"}}
        ]},
        "retention_days": 365,
        "applicant_name_field": "/name",
        "status": "published"
    })
}

/// What Schemathesis is given to reach real data: application ids and the
/// verification codes of their documents.
struct Data {
    applications: Vec<String>,
    codes: Vec<String>,
}

/// A published procedure and applications in most states: a draft, submitted,
/// returned for correction, in review half-way up the chain, rejected, completed.
async fn fill(at: &Instance) -> Data {
    let http = reqwest::Client::new();
    let tenant = format!("/tenants/{YAIZU}");
    let (status, defined) = call(
        &http,
        at,
        &at.admin,
        Method::POST,
        &format!("{tenant}/procedures"),
        Some(procedure()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{defined}");
    let (reviewer, approver) = (at.reviewer.as_str(), at.approver.as_str());
    let receive = [
        (reviewer, json!({"command": "receive"})),
        (reviewer, json!({"command": "start_review"})),
    ];
    let approve = (
        approver,
        json!({"command": "decide", "decision": "approve"}),
    );
    // Whether it is submitted, then the commands given and by whom.
    let plans: Vec<(bool, Vec<(&str, Value)>)> = vec![
        (false, vec![]),
        (true, vec![]),
        (
            true,
            [
                &receive[..],
                &[(
                    reviewer,
                    json!({"command": "return_for_correction", "reasons": ["写真が不鮮明です"]}),
                )],
            ]
            .concat(),
        ),
        (true, [&receive[..], std::slice::from_ref(&approve)].concat()),
        (
            true,
            [
                &receive[..],
                &[(
                    approver,
                    json!({"command": "decide", "decision": "reject", "reason": "登録の要件を満たしていません"}),
                )],
            ]
            .concat(),
        ),
        (
            true,
            [
                &receive[..],
                &[approve.clone(), approve.clone()],
                &[(reviewer, json!({"command": "complete"}))],
            ]
            .concat(),
        ),
    ];
    let mut applications = Vec::new();
    let mut codes = Vec::new();
    for (n, (submit, commands)) in plans.into_iter().enumerate() {
        let answers = json!({"answers": {"name": format!("焼津 太郎{n}"), "dog_name": "ポチ"}});
        let (status, started) = call(
            &http,
            at,
            &at.resident,
            Method::POST,
            &format!("{tenant}/procedures/inu-toroku/applications"),
            Some(answers),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let id = started["application"]["id"].as_str().unwrap().to_owned();
        let app = format!("/applications/{id}");
        if submit {
            let (status, body) = call(
                &http,
                at,
                &at.resident,
                Method::POST,
                &format!("{app}/submit"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        for (key, command) in commands {
            let (status, body) = call(
                &http,
                at,
                key,
                Method::POST,
                &format!("{app}/commands"),
                Some(command.clone()),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{command}: {body}");
        }
        // Staff never see a draft: it is the resident's own until submitted.
        let viewer = if submit { &at.approver } else { &at.resident };
        let (status, shown) = call(&http, at, viewer, Method::GET, &app, None).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        for document in shown["documents"].as_array().unwrap() {
            codes.push(document["verification_code"].as_str().unwrap().to_owned());
        }
        applications.push(id);
    }
    let (status, queue) = call(
        &http,
        at,
        &at.reviewer,
        Method::GET,
        &format!("{tenant}/applications"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let states: Vec<&str> = queue["applications"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["state"].as_str())
        .collect();
    assert!(!states.contains(&"draft"), "{states:?}");
    for state in [
        "submitted",
        "returned",
        "in_review",
        "rejected",
        "completed",
    ] {
        assert!(states.contains(&state), "{state} missing from {states:?}");
    }
    Data {
        applications,
        codes,
    }
}

fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Schemathesis's configuration: the real tenant, procedure, applications and codes
/// are drawn most of the time, generated values the rest, so that both the answers
/// about real data and the refusals of made-up data are checked.
fn schemathesis_config(data: &Data) -> String {
    format!(
        r#"[dictionaries.tenants]
values = ["{YAIZU}"]
[dictionaries.procedures]
values = ["inu-toroku"]
[dictionaries.applications]
values = {applications}
[dictionaries.codes]
values = {codes}

[parameters]
"path.tenant" = {{ dictionary = "tenants", probability = 0.8 }}
"path.code" = {{ dictionary = "codes", probability = 0.7 }}

[[operations]]
include-operation-id = ["getApplication", "getApplicationHistory", "commandApplication"]
parameters = {{ "path.id" = {{ dictionary = "applications", probability = 0.8 }} }}

[[operations]]
include-operation-id = ["showProcedure", "reviseProcedure"]
parameters = {{ "path.id" = {{ dictionary = "procedures", probability = 0.7 }} }}
"#,
        applications = toml_list(&data.applications),
        codes = toml_list(&data.codes),
    )
}

#[tokio::test]
async fn the_openapi_document_matches_the_running_server() {
    let bin = python_tools();
    let at = start();
    let data = fill(&at).await;
    let work = at.dir.path().join("schemathesis");
    std::fs::create_dir_all(&work).unwrap();
    let config = work.join("schemathesis.toml");
    std::fs::write(&config, schemathesis_config(&data)).unwrap();
    let document = workspace_root().join("docs/openapi/procedures.yaml");
    // Every check Schemathesis has, in all four phases: the document's examples,
    // the coverage of each parameter's edges (valid and not), random fuzzing, and
    // stateful sequences of calls. Commands really move the applications on, so
    // the answers of every state are met.
    let out = Command::new(bin.join("schemathesis"))
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(&document)
        .args(["--url", &at.served.url])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", at.approver),
        ])
        .args(["--checks", "all"])
        .args(["--max-examples", "25"])
        .args(["--request-timeout", "30"])
        .args(["--workers", "1"])
        // Its example database and any report stay out of the checkout.
        .current_dir(&work)
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found the server and docs/openapi/procedures.yaml disagreeing \
         ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Schemathesis exits 0 when it tested nothing too; make sure it tested every
    // operation of the document.
    let count = |label: &str| -> usize {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().split(['/', ' ']).next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"))
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    assert!(
        selected > 0 && tested == selected,
        "{tested} of {selected} operations tested:\n{stdout}"
    );
}
