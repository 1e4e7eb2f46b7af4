//! Online applications beyond the one end-to-end journey of `applications.rs`, through
//! the HTTP API with the real pieces around it (a payment gateway on a real port, a
//! webhook receiver, the applications worker): the retention job, personal data at rest
//! in the SQLite file, the staff CSV export, statistics, webhooks with retries, a double
//! submit under concurrency, and payment callbacks that are forged or come early.

mod common;

#[path = "support/test_gateway.rs"]
mod test_gateway;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::receiver::Receiver;
use common::{Backend, Reply};
use http_body_util::BodyExt;
use identity::Role;
use serde_json::{json, Value};
use server::config::{Config, EncryptionKeys, PaymentConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use test_gateway::{CallbackMode, Outcome, TestGateway};
use tower::ServiceExt;

const YAIZU: &str = "222127";
const PASSWORD: &str = "焼津の港で朝市を見る職員です";
const SECRET: &[u8] = b"a shared secret between renkei and the gateway";
const API: &str = "/api/v1/procedures";

const NAME: &str = "焼津 花子";
const ADDRESS: &str = "静岡県焼津市本町二丁目16番32号";
const EMAIL: &str = "hanako.yaizu@example.jp";

/// A tiny but real PDF with a marker that must never be found in clear at rest.
const PDF: &[u8] = b"%PDF-1.4\n% renkei-attachment-marker-7f3a9c\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// A valid マイナンバー: eleven digits and the check digit the law defines.
fn my_number() -> String {
    let body = "20231104567";
    let check = procedures::form::my_number_check_digit(body).unwrap();
    format!("{body}{check}")
}

/// renkei on a real port with the gateway configured, its database kept where the test
/// can read the file, and the people of the tests signed up.
struct World {
    state: server::AppState,
    app: server::HttpService,
    gateway: TestGateway,
    /// The directory of the SQLite database (`renkei.db` and its WAL), when on SQLite.
    db_dir: Option<PathBuf>,
    _serving: tokio::task::JoinHandle<()>,
    _keep_alive: Box<dyn Send + Sync>,
}

/// A signed-in person: the session cookie and its CSRF token.
struct Session(Vec<(String, String)>);

impl World {
    async fn start(backend: Backend, tick: Duration) -> World {
        let gateway = TestGateway::start(SECRET, None).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let files = tempfile::tempdir().unwrap();
        let mut config = Config {
            remote_contexts: false,
            files_dir: files.path().join("files"),
            public_url: format!("http://{}", listener.local_addr().unwrap()),
            payment: Some(PaymentConfig {
                base_url: gateway.base_url(),
                secret: String::from_utf8(SECRET.to_vec()).unwrap(),
            }),
            encryption_keys: Some(EncryptionKeys::Inline(
                field_crypto::Keyring::generate_key_entry("k1").unwrap(),
            )),
            applications_tick: tick,
            ..Config::default()
        };
        config.rate_limits.writes_per_second = 0;
        let mut db_dir = None;
        let (stores, keep_alive): (server::storage::Stores, Box<dyn Send + Sync>) = match backend {
            Backend::Sqlite => {
                let dir = files.path().join("db");
                std::fs::create_dir_all(&dir).unwrap();
                let store = store_sqlite::SqliteStore::open(&dir.join("renkei.db"))
                    .await
                    .unwrap();
                db_dir = Some(dir);
                (Arc::new(store).into(), Box::new(()))
            }
            Backend::Postgres => {
                let database = store_postgres::testing::TestDatabase::create(
                    &store_postgres::testing::test_server_url(),
                )
                .await
                .unwrap();
                let store = store_postgres::PostgresStore::connect_config(database.config())
                    .await
                    .unwrap();
                (Arc::new(store).into(), Box::new(database))
            }
        };
        let state = server::AppState::new(stores, config).unwrap();
        let served = server::service(state.clone());
        let serving = tokio::spawn(async move {
            axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                    std::net::SocketAddr,
                >(served),
            )
            .await
            .unwrap();
        });
        let users = [
            ("admin", Role::TenantAdmin),
            ("taro", Role::Resident),
            ("jiro", Role::Resident),
            ("hanako", Role::Reviewer),
            ("kacho", Role::Approver),
        ];
        common::tenant_with_users(&state.identity, YAIZU, &users, PASSWORD).await;
        World {
            app: server::service(state.clone()),
            state,
            gateway,
            db_dir,
            _serving: serving,
            _keep_alive: Box::new((keep_alive, files)),
        }
    }

    async fn request(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }

    /// Sends a request with `who`'s session (anonymous when `None`); the path is under
    /// the procedures API.
    async fn call(
        &self,
        who: Option<&Session>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{API}{path}"));
        for (name, value) in who.map(|s| s.0.as_slice()).unwrap_or_default() {
            request = request.header(name, value);
        }
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let (status, headers, bytes) = self.request(request.body(body).unwrap()).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn sign_in(&self, username: &str) -> Session {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"username": username, "password": PASSWORD}).to_string(),
            ))
            .unwrap();
        let (status, headers, bytes) = self.request(request).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let cookie = headers["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let csrf = body["csrfToken"].as_str().unwrap().to_owned();
        Session(vec![
            ("Cookie".into(), cookie),
            ("X-CSRF-Token".into(), csrf),
        ])
    }

    async fn attach(&self, who: &Session, id: &str, content: &[u8]) -> Reply {
        let boundary = "renkei-test-boundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"requirement\"\r\n\r\nidentity_document\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"免許証.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{API}/applications/{id}/attachments"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            );
        for (name, value) in &who.0 {
            request = request.header(name, value);
        }
        let (status, headers, bytes) = self.request(request.body(Body::from(body)).unwrap()).await;
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }
}

/// The 住民票 form of the fixtures with a マイナンバー field added to its second step.
fn form() -> Value {
    let mut form: Value = serde_json::from_str(include_str!(
        "../../procedures/tests/fixtures/juminhyo_form.json"
    ))
    .unwrap();
    form["schema"]["properties"]["my_number"] = json!({"type": "string", "format": "my-number"});
    form["ui"]["steps"][1]["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!("/my_number"));
    form["ui"]["fields"]["/my_number"] =
        json!({"label": {"ja": "個人番号", "en": "Individual number"}, "widget": "text"});
    form
}

/// A published procedure decided in one step by kacho, free unless `fee` says otherwise.
fn procedure(id: &str, fee: Value, webhook: Option<&str>) -> Value {
    let mut procedure = json!({
        "id": id,
        "title": {"ja": "住民票の写しの交付申請", "en": "Certificate of residence"},
        "form": form(),
        "fee": fee,
        "payment_timing": "before_review",
        "chain": {"steps": [
            {"name_ja": "課長決裁", "name_en": "Section chief", "kind": "sequential", "approver": {"user": "kacho"}, "due_days": 5}
        ]},
        "retention_days": 30,
        "draft_days": 7,
        "applicant_name_field": "/applicant/name",
        "contact_email_field": "/applicant/email",
        "status": "published"
    });
    if let Some(url) = webhook {
        procedure["webhook_url"] = json!(url);
    }
    procedure
}

fn free() -> Value {
    json!({"kind": "none"})
}

fn answers(name: &str) -> Value {
    json!({
        "applicant": {
            "name": name, "name_kana": "やいづ はなこ", "birth_date": "昭和60年4月1日",
            "postal_code": "425-0022", "address": ADDRESS,
            "phone": "054-626-1111", "email": EMAIL
        },
        "relationship": "self", "copies": 1, "purpose": "employment", "delivery": "counter",
        "my_number": my_number()
    })
}

async fn define(w: &World, procedure: Value) {
    let admin = w.sign_in("admin").await;
    let defined = w
        .call(
            Some(&admin),
            Method::POST,
            &format!("/tenants/{YAIZU}/procedures"),
            Some(procedure),
        )
        .await;
    assert_eq!(defined.status, StatusCode::CREATED, "{}", defined.body);
}

/// A draft of `procedure` with complete answers and the identity document attached.
async fn draft(w: &World, who: &Session, procedure: &str, name: &str) -> String {
    let started = w
        .call(
            Some(who),
            Method::POST,
            &format!("/tenants/{YAIZU}/procedures/{procedure}/applications"),
            Some(json!({"answers": {}})),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let id = started.body["application"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attached = w.attach(who, &id, PDF).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.body);
    let saved = w
        .call(
            Some(who),
            Method::PUT,
            &format!("/applications/{id}/answers"),
            Some(json!({"answers": answers(name)})),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["errors"], json!([]), "{}", saved.body);
    id
}

/// A submitted application; returns its id and the applicant's view.
async fn submitted(w: &World, who: &Session, procedure: &str, name: &str) -> (String, Value) {
    let id = draft(w, who, procedure, name).await;
    let done = w
        .call(
            Some(who),
            Method::POST,
            &format!("/applications/{id}/submit"),
            None,
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["state"], "submitted", "{}", done.body);
    (id, done.body)
}

/// Gives staff commands in order, each of which must succeed.
async fn commands(w: &World, who: &Session, id: &str, list: &[Value]) -> Value {
    let mut last = Value::Null;
    for command in list {
        let done = w
            .call(
                Some(who),
                Method::POST,
                &format!("/applications/{id}/commands"),
                Some(command.clone()),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{command}: {}", done.body);
        last = done.body;
    }
    last
}

fn receive_and_review() -> Vec<Value> {
    vec![
        json!({"command": "receive"}),
        json!({"command": "start_review"}),
    ]
}

fn approve() -> Value {
    json!({"command": "decide", "decision": "approve"})
}

fn reject() -> Value {
    json!({"command": "decide", "decision": "reject", "reason": "要件を満たしていません"})
}

/// Submitted, reviewed, approved and completed.
async fn completed(w: &World, who: &Session, procedure: &str, name: &str) -> String {
    let (id, _) = submitted(w, who, procedure, name).await;
    let hanako = w.sign_in("hanako").await;
    let kacho = w.sign_in("kacho").await;
    commands(w, &hanako, &id, &receive_and_review()).await;
    let approved = commands(w, &kacho, &id, &[approve()]).await;
    assert_eq!(approved.state_of(), "approved");
    let done = commands(w, &hanako, &id, &[json!({"command": "complete"})]).await;
    assert_eq!(done.state_of(), "completed");
    id
}

/// Submitted, reviewed and rejected.
async fn rejected(w: &World, who: &Session, procedure: &str, name: &str) -> String {
    let (id, _) = submitted(w, who, procedure, name).await;
    let hanako = w.sign_in("hanako").await;
    let kacho = w.sign_in("kacho").await;
    commands(w, &hanako, &id, &receive_and_review()).await;
    let done = commands(w, &kacho, &id, &[reject()]).await;
    assert_eq!(done.state_of(), "rejected");
    id
}

/// Submitted and withdrawn by its applicant.
async fn withdrawn(w: &World, who: &Session, procedure: &str, name: &str) -> String {
    let (id, _) = submitted(w, who, procedure, name).await;
    let done = w
        .call(
            Some(who),
            Method::POST,
            &format!("/applications/{id}/withdraw"),
            Some(json!({"reason": "不要になりました"})),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body.state_of(), "withdrawn");
    id
}

trait StateOf {
    fn state_of(&self) -> &str;
}

impl StateOf for Value {
    fn state_of(&self) -> &str {
        self["state"].as_str().unwrap_or("")
    }
}

async fn view(w: &World, who: &Session, id: &str) -> Value {
    let shown = w
        .call(Some(who), Method::GET, &format!("/applications/{id}"), None)
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    shown.body
}

async fn history(w: &World, who: &Session, id: &str) -> Value {
    let shown = w
        .call(
            Some(who),
            Method::GET,
            &format!("/applications/{id}/history"),
            None,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    shown.body
}

// ---------------------------------------------------------------------------------------
// 1. Retention

async fn retention(backend: Backend) {
    let w = World::start(backend, Duration::from_secs(3600)).await;
    define(&w, procedure("kept", free(), None)).await;
    let taro = w.sign_in("taro").await;
    let hanako = w.sign_in("hanako").await;
    let done = completed(&w, &taro, "kept", NAME).await;
    let refused = rejected(&w, &taro, "kept", NAME).await;
    let taken_back = withdrawn(&w, &taro, "kept", NAME).await;
    let open = submitted(&w, &taro, "kept", NAME).await.0;
    let abandoned = draft(&w, &taro, "kept", NAME).await;
    let finished = [done.clone(), refused.clone(), taken_back.clone()];
    let everyone = [
        done.clone(),
        refused.clone(),
        taken_back.clone(),
        open.clone(),
        abandoned.clone(),
    ];
    let mut histories = Vec::new();
    let mut codes = Vec::new();
    for id in &everyone {
        histories.push(history(&w, &taro, id).await);
        let shown = view(&w, &taro, id).await;
        assert_eq!(shown["answers"]["applicant"]["name"], NAME, "{shown}");
        assert_eq!(shown["attachments"].as_array().unwrap().len(), 1);
        for document in shown["documents"].as_array().unwrap() {
            codes.push(document["verification_code"].as_str().unwrap().to_owned());
        }
    }
    assert!(!codes.is_empty());
    let service = &w.state.applications;
    let now = chrono::Utc::now();

    // Ten days on, the draft (kept 7 days) has expired; the finished ones (kept 30) have not.
    let early = service
        .run_retention(now + chrono::Duration::days(10))
        .await
        .unwrap();
    assert_eq!(early.expired_drafts, 1, "{early:?}");
    assert_eq!(early.anonymised, 0, "{early:?}");
    for id in finished.iter().chain([&open]) {
        let shown = view(&w, &taro, id).await;
        assert_eq!(shown["answers"]["applicant"]["name"], NAME, "{shown}");
        assert_eq!(shown["anonymised"], false);
        assert_eq!(shown["attachments"].as_array().unwrap().len(), 1);
    }
    let gone = view(&w, &taro, &abandoned).await;
    assert_eq!(gone["anonymised"], true, "{gone}");
    assert_eq!(gone["answers"], Value::Null, "{gone}");
    assert_eq!(gone["attachments"], json!([]), "{gone}");

    // Past the retention period: answers, attachments and documents of the finished
    // applications go; the one still open is untouched; every history stays.
    let late = service
        .run_retention(now + chrono::Duration::days(31))
        .await
        .unwrap();
    assert_eq!(late.anonymised, 3, "{late:?}");
    assert_eq!(late.expired_drafts, 0, "{late:?}");
    let kacho = w.sign_in("kacho").await;
    for id in finished.iter().chain([&abandoned]) {
        let shown = view(&w, &taro, id).await;
        assert_eq!(shown["anonymised"], true, "{shown}");
        assert_eq!(shown["answers"], Value::Null, "{shown}");
        assert_eq!(shown["attachments"], json!([]), "{shown}");
        assert_eq!(shown["documents"], json!([]), "{shown}");
        // Staff who may see sensitive fields see nothing either (and no draft at all:
        // a draft is the resident's own).
        if *id == abandoned {
            let hidden = w
                .call(
                    Some(&kacho),
                    Method::GET,
                    &format!("/applications/{id}"),
                    None,
                )
                .await;
            assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
        } else {
            let staff = view(&w, &kacho, id).await;
            assert_eq!(staff["answers"], Value::Null, "{staff}");
            assert!(!staff.to_string().contains(NAME), "{staff}");
        }
        assert!(
            service
                .store()
                .list_attachments(id)
                .await
                .unwrap()
                .is_empty()
                && service.store().documents_of(id).await.unwrap().is_empty()
        );
    }
    let still = view(&w, &taro, &open).await;
    assert_eq!(still["anonymised"], false);
    assert_eq!(still["answers"]["applicant"]["address"], ADDRESS);
    assert_eq!(still["attachments"].as_array().unwrap().len(), 1);
    let attachment = still["attachments"][0]["id"].as_str().unwrap();
    let file = w
        .call(
            Some(&hanako),
            Method::GET,
            &format!("/applications/{open}/attachments/{attachment}"),
            None,
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    for (id, before) in everyone.iter().zip(&histories) {
        assert_eq!(&history(&w, &taro, id).await, before, "history of {id}");
    }
    // The documents of the anonymised applications no longer verify; the open one's do.
    let open_codes: Vec<String> = still["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verification_code"].as_str().unwrap().to_owned())
        .collect();
    for code in &codes {
        let verified = w
            .call(None, Method::GET, &format!("/verify/{code}"), None)
            .await;
        let expected = if open_codes.contains(code) {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(verified.status, expected, "{code}: {}", verified.body);
    }

    // A second run finds nothing left to do and changes nothing.
    let mut versions = Vec::new();
    for id in &everyone {
        versions.push(service.store().get_application(id).await.unwrap().unwrap());
    }
    let again = service
        .run_retention(now + chrono::Duration::days(31))
        .await
        .unwrap();
    assert_eq!(again, Default::default());
    for (id, before) in everyone.iter().zip(&versions) {
        let after = service.store().get_application(id).await.unwrap().unwrap();
        assert_eq!(after.version, before.version, "{id}");
        assert_eq!(after.document, before.document, "{id}");
    }
}

#[tokio::test]
async fn retention_anonymises_what_is_due_and_only_that_on_sqlite() {
    retention(Backend::Sqlite).await;
}

#[tokio::test]
async fn retention_anonymises_what_is_due_and_only_that_on_postgres() {
    retention(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 2. Personal data at rest

/// Every file under `dir` (the database, its WAL and shared memory), whole.
fn files_under(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every cell of every table of the SQLite database, as bytes.
fn every_cell(db: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use rusqlite::types::ValueRef;
    let connection =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut cells = Vec::new();
    for table in tables {
        let mut statement = connection
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .unwrap();
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                let bytes = match row.get_ref(i).unwrap() {
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
                    _ => continue,
                };
                cells.push((table.clone(), bytes));
            }
        }
    }
    cells
}

#[tokio::test]
async fn personal_data_is_sealed_at_rest_on_sqlite() {
    let w = World::start(Backend::Sqlite, Duration::from_secs(3600)).await;
    define(&w, procedure("sealed", free(), None)).await;
    let taro = w.sign_in("taro").await;
    let (id, submitted_view) = submitted(&w, &taro, "sealed", NAME).await;
    let number = my_number();

    // The applicant sees their answers, the マイナンバー masked to its last four digits.
    let mine = view(&w, &taro, &id).await;
    assert_eq!(mine, submitted_view);
    assert_eq!(mine["answers"]["applicant"]["name"], NAME);
    assert_eq!(mine["answers"]["applicant"]["address"], ADDRESS);
    assert_eq!(
        mine["answers"]["my_number"],
        format!("********{}", &number[8..])
    );
    assert!(!mine.to_string().contains(&number));
    // The approver, who may see sensitive fields, sees the number; the file opens.
    let kacho = w.sign_in("kacho").await;
    let staff = view(&w, &kacho, &id).await;
    assert_eq!(staff["answers"]["my_number"], number.as_str(), "{staff}");
    let attachment = mine["attachments"][0]["id"].as_str().unwrap();
    let (status, _, file) = w
        .request(
            taro.0
                .iter()
                .fold(
                    Request::builder()
                        .uri(format!("{API}/applications/{id}/attachments/{attachment}")),
                    |r, (n, v)| r.header(n, v),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file, PDF);

    // Nothing of it is in the database in clear: not in any file, not in any cell.
    let dir = w.db_dir.clone().unwrap();
    let files = files_under(&dir);
    assert!(files
        .iter()
        .any(|(p, b)| p.ends_with("renkei.db") && !b.is_empty()));
    let secrets: [(&str, &[u8]); 5] = [
        ("name", NAME.as_bytes()),
        ("address", ADDRESS.as_bytes()),
        ("e-mail", EMAIL.as_bytes()),
        ("マイナンバー", number.as_bytes()),
        ("attachment", b"renkei-attachment-marker-7f3a9c"),
    ];
    // The check can fail: the application's id and reception number are there in clear.
    let reception = mine["reception_number"].as_str().unwrap();
    assert!(files.iter().any(|(_, b)| contains(b, id.as_bytes())));
    assert!(files.iter().any(|(_, b)| contains(b, reception.as_bytes())));
    for (what, secret) in secrets {
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, secret),
                "the {what} is in clear in {}",
                path.display()
            );
        }
    }
    let cells = every_cell(&dir.join("renkei.db"));
    assert!(cells.iter().any(|(_, b)| contains(b, id.as_bytes())));
    for (what, secret) in secrets {
        for (table, bytes) in &cells {
            assert!(
                !contains(bytes, secret),
                "the {what} is in clear in {table}"
            );
        }
    }
    assert!(!cells.iter().any(|(_, b)| contains(b, PDF)));
}

// ---------------------------------------------------------------------------------------
// 3. The staff's CSV export

async fn export(w: &World, who: &Session, procedure: &str) -> (StatusCode, String, String) {
    let mut request = Request::builder().uri(format!(
        "{API}/tenants/{YAIZU}/procedures/{procedure}/applications.csv"
    ));
    for (name, value) in &who.0 {
        request = request.header(name, value);
    }
    let (status, headers, bytes) = w.request(request.body(Body::empty()).unwrap()).await;
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, String::from_utf8(bytes).unwrap())
}

async fn csv_export(backend: Backend) {
    let w = World::start(backend, Duration::from_secs(3600)).await;
    define(&w, procedure("csv", free(), None)).await;
    let taro = w.sign_in("taro").await;
    let jiro = w.sign_in("jiro").await;
    let formula = "=HYPERLINK(\"http://evil.example/\",\"開く\")";
    let (plain, _) = submitted(&w, &taro, "csv", NAME).await;
    let (tricky, _) = submitted(&w, &jiro, "csv", formula).await;
    // A draft has no reception number and is not exported.
    let unsent = draft(&w, &taro, "csv", "下書き 次郎").await;
    let number = my_number();
    let masked = format!("********{}", &number[8..]);

    // A reviewer's export: no マイナンバー column, neither the number nor its mask.
    let hanako = w.sign_in("hanako").await;
    let (status, content_type, reviewer) = export(&w, &hanako, "csv").await;
    assert_eq!(status, StatusCode::OK, "{reviewer}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(reviewer.starts_with('\u{feff}'), "a BOM for Excel");
    let lines: Vec<&str> = reviewer.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "a header and two applications: {reviewer}");
    assert!(lines[0].contains("\"/applicant/name\""), "{}", lines[0]);
    assert!(lines[0].contains("\"/applicant/address\""), "{}", lines[0]);
    assert!(!lines[0].contains("my_number"), "{}", lines[0]);
    assert!(!reviewer.contains(&number) && !reviewer.contains(&masked));
    assert!(reviewer.contains(ADDRESS));
    assert!(!reviewer.contains(&unsent) && !reviewer.contains("下書き 次郎"));
    for id in [&plain, &tricky] {
        let shown = view(&w, &hanako, id).await;
        let reception = shown["reception_number"].as_str().unwrap();
        assert!(reviewer.contains(&format!("\"{reception}\"")), "{reviewer}");
    }
    // The formula is defused by a leading quote, and never starts a cell as is.
    let quoted = format!("\"'{}\"", formula.replace('"', "\"\""));
    assert!(reviewer.contains(&quoted), "{reviewer}");
    assert!(!reviewer.contains(",\"=") && !reviewer.contains("\n\"="));

    // An approver's export has the column and the numbers.
    let kacho = w.sign_in("kacho").await;
    let (status, _, approver) = export(&w, &kacho, "csv").await;
    assert_eq!(status, StatusCode::OK, "{approver}");
    assert!(approver.starts_with('\u{feff}'));
    let lines: Vec<&str> = approver.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{approver}");
    assert!(lines[0].contains("\"/my_number\""), "{}", lines[0]);
    assert_eq!(
        approver.matches(&format!("\"{number}\"")).count(),
        2,
        "{approver}"
    );
    assert!(approver.contains(&quoted));

    // A resident may not export.
    let (status, _, _) = export(&w, &taro, "csv").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn csv_export_hides_my_number_from_reviewers_and_defuses_formulas_on_sqlite() {
    csv_export(Backend::Sqlite).await;
}

#[tokio::test]
async fn csv_export_hides_my_number_from_reviewers_and_defuses_formulas_on_postgres() {
    csv_export(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 4. Statistics

const JST: i32 = 9 * 3600;

fn month_of(at: &Value) -> String {
    let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(at.clone()).unwrap();
    at.with_timezone(&chrono::FixedOffset::east_opt(JST).unwrap())
        .format("%Y-%m")
        .to_string()
}

async fn statistics(w: &World, who: &Session, procedure: &str) -> Reply {
    w.call(
        Some(who),
        Method::GET,
        &format!("/tenants/{YAIZU}/procedures/{procedure}/statistics"),
        None,
    )
    .await
}

fn total(stats: &Value, field: &str) -> u64 {
    stats["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_u64().unwrap())
        .sum()
}

async fn statistics_count(backend: Backend) {
    let w = World::start(backend, Duration::from_secs(3600)).await;
    define(&w, procedure("stats", free(), None)).await;
    define(&w, procedure("undecided", free(), None)).await;
    let taro = w.sign_in("taro").await;
    let hanako = w.sign_in("hanako").await;
    let done = completed(&w, &taro, "stats", NAME).await;
    let refused = rejected(&w, &taro, "stats", NAME).await;
    submitted(&w, &taro, "stats", NAME).await;
    draft(&w, &taro, "stats", NAME).await;
    submitted(&w, &taro, "undecided", NAME).await;

    let stats = statistics(&w, &hanako, "stats").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert_eq!(stats.body["procedure_id"], "stats");
    assert_eq!(total(&stats.body, "started"), 4, "{}", stats.body);
    assert_eq!(total(&stats.body, "submitted"), 3, "{}", stats.body);
    assert_eq!(total(&stats.body, "decided"), 2, "{}", stats.body);
    assert_eq!(total(&stats.body, "completed"), 1, "{}", stats.body);
    assert_eq!(total(&stats.body, "abandoned"), 0, "{}", stats.body);
    // Each count sits in the month (in Japan) of what it counts.
    let months = stats.body["months"].as_array().unwrap();
    let month = |key: &str| {
        months
            .iter()
            .find(|m| m["month"] == key)
            .unwrap_or_else(|| panic!("no month {key}: {}", stats.body))
    };
    for id in [&done, &refused] {
        let shown = view(&w, &hanako, id).await;
        let decided = month(&month_of(&shown["decided_at"]));
        assert!(decided["decided"].as_u64().unwrap() >= 1);
        // Decided within the test: a median is there, of a fraction of a day.
        let median = decided["median_days_to_decision"].as_f64().unwrap();
        assert!((0.0..1.0).contains(&median), "{median}");
        assert!(
            month(&month_of(&shown["created_at"]))["started"]
                .as_u64()
                .unwrap()
                >= 1
        );
        assert!(
            month(&month_of(&shown["submitted_at"]))["submitted"]
                .as_u64()
                .unwrap()
                >= 1
        );
    }

    // Nothing decided: no median.
    let none = statistics(&w, &hanako, "undecided").await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(total(&none.body, "submitted"), 1, "{}", none.body);
    assert_eq!(total(&none.body, "decided"), 0);
    assert!(none.body["months"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["median_days_to_decision"].is_null()));
    // Residents do not see them.
    assert_eq!(
        statistics(&w, &taro, "stats").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn statistics_count_per_month_with_a_median_on_sqlite() {
    statistics_count(Backend::Sqlite).await;
}

#[tokio::test]
async fn statistics_count_per_month_with_a_median_on_postgres() {
    statistics_count(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 5. Webhooks

async fn webhooks(backend: Backend) {
    let receiver = Receiver::start().await;
    let w = World::start(backend, Duration::from_millis(50)).await;
    let _worker = server::applications::worker::start(&w.state).unwrap();
    define(&w, procedure("hooked", free(), Some(&receiver.url))).await;
    let taro = w.sign_in("taro").await;
    let hanako = w.sign_in("hanako").await;
    let kacho = w.sign_in("kacho").await;
    // The receiver is down for the first notification: it must come again later.
    receiver.fail_next(1);
    let (id, first) = submitted(&w, &taro, "hooked", NAME).await;
    let reception = first["reception_number"].as_str().unwrap().to_owned();
    commands(&w, &hanako, &id, &receive_and_review()).await;
    commands(&w, &kacho, &id, &[approve()]).await;
    commands(&w, &hanako, &id, &[json!({"command": "complete"})]).await;

    let expected = [
        "submitted",
        "received",
        "in_review",
        "approved",
        "completed",
    ];
    let received = receiver.wait_for(expected.len()).await;
    assert_eq!(receiver.refused(), 1, "the first POST was answered 500");
    let mut states: Vec<&str> = received
        .iter()
        .map(|(_, body)| body["state"].as_str().unwrap_or("?"))
        .collect();
    states.sort_unstable();
    let mut wanted = expected.to_vec();
    wanted.sort_unstable();
    assert_eq!(
        states, wanted,
        "one POST per state change, the refused one retried"
    );
    for (headers, body) in &received {
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(body["event"], "application.state_changed", "{body}");
        assert_eq!(body["application_id"], id.as_str(), "{body}");
        assert_eq!(body["reception_number"], reception.as_str(), "{body}");
        assert_eq!(body["procedure_id"], "hooked", "{body}");
        assert!(body.get("answers").is_none(), "{body}");
        let text = body.to_string();
        for secret in [NAME, ADDRESS, EMAIL, &my_number()] {
            assert!(!text.contains(secret), "{body}");
        }
    }
    let submitted_event = received
        .iter()
        .find(|(_, b)| b["state"] == "submitted")
        .unwrap();
    assert_eq!(submitted_event.1["from"], "draft");
}

#[tokio::test]
async fn webhooks_get_each_state_change_without_answers_and_are_retried_on_sqlite() {
    webhooks(Backend::Sqlite).await;
}

#[tokio::test]
async fn webhooks_get_each_state_change_without_answers_and_are_retried_on_postgres() {
    webhooks(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 6. A double submit under concurrency

async fn double_submit(backend: Backend) {
    let w = World::start(backend, Duration::from_secs(3600)).await;
    define(&w, procedure("twice", free(), None)).await;
    let taro = w.sign_in("taro").await;
    for _ in 0..3 {
        let id = draft(&w, &taro, "twice", NAME).await;
        let path = format!("/applications/{id}/submit");
        let (a, b) = tokio::join!(
            w.call(Some(&taro), Method::POST, &path, None),
            w.call(Some(&taro), Method::POST, &path, None)
        );
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(b.status, StatusCode::OK, "{}", b.body);
        assert_eq!(a.body["state"], "submitted");
        assert_eq!(b.body["state"], "submitted");
        assert!(a.body["reception_number"].is_string(), "{}", a.body);
        assert_eq!(a.body["reception_number"], b.body["reception_number"]);
        let entries = history(&w, &taro, &id).await;
        let submits = entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["command"] == "submit")
            .count();
        assert_eq!(submits, 1, "{entries}");
        assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
        let receipts = view(&w, &taro, &id).await["documents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "receipt")
            .count();
        assert_eq!(receipts, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_double_submit_is_one_submission_on_sqlite() {
    double_submit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_double_submit_is_one_submission_on_postgres() {
    double_submit(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// 7. Payment callbacks: forged, and before the resident comes back

async fn post_callback(w: &World, body: &[u8], signature: Option<String>) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("{API}/payments/callback"))
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header(procedures::payment::SIGNATURE_HEADER, signature);
    }
    let (status, headers, bytes) = w
        .request(request.body(Body::from(body.to_vec())).unwrap())
        .await;
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn payment_callbacks(backend: Backend) {
    let w = World::start(backend, Duration::from_secs(3600)).await;
    define(
        &w,
        procedure("paid", json!({"kind": "fixed", "yen": 300}), None),
    )
    .await;
    let taro = w.sign_in("taro").await;
    let (id, _) = submitted(&w, &taro, "paid", NAME).await;
    let pay = w
        .call(
            Some(&taro),
            Method::POST,
            &format!("/applications/{id}/payment"),
            None,
        )
        .await;
    assert_eq!(pay.status, StatusCode::CREATED, "{}", pay.body);
    let payment = pay.body["payment_id"].as_str().unwrap().to_owned();
    let gateway_id = pay.body["redirect_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let return_path = format!("/payments/{payment}/return");

    // The resident pays; the gateway's callback is held back for now.
    w.gateway.set_mode(CallbackMode::Deferred);
    assert_eq!(
        w.gateway.complete(&gateway_id, Outcome::Capture).await,
        None
    );
    let callback = w.gateway.pending()[0].clone();
    let before = view(&w, &taro, &id).await;
    let history_before = history(&w, &taro, &id).await;
    assert_eq!(before["payment_settled"], false);
    assert_eq!(before["state"], "submitted");

    // Forged callbacks are refused as problems, and change nothing.
    let now = chrono::Utc::now().timestamp();
    let mut tampered: Value = serde_json::from_slice(&callback.body).unwrap();
    tampered["event_id"] = json!("evt_forged");
    let tampered = serde_json::to_vec(&tampered).unwrap();
    for (what, body, signature) in [
        (
            "signed with another secret",
            callback.body.clone(),
            Some(procedures::payment::sign(
                b"not the shared secret",
                now,
                &callback.body,
            )),
        ),
        (
            "signature of another body",
            tampered,
            Some(procedures::payment::sign(SECRET, now, &callback.body)),
        ),
        ("unsigned", callback.body.clone(), None),
        (
            "signature an hour old",
            callback.body.clone(),
            Some(procedures::payment::sign(
                SECRET,
                now - 3600,
                &callback.body,
            )),
        ),
    ] {
        let refused = post_callback(&w, &body, signature).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            refused.body
        );
        assert_eq!(
            refused.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(
            refused.body["type"], "urn:renkei:problem:CallbackRefused",
            "{what}"
        );
        assert_eq!(refused.body["status"], 401, "{what}");
    }
    assert_eq!(view(&w, &taro, &id).await, before);
    assert_eq!(history(&w, &taro, &id).await, history_before);
    let waiting = w.call(None, Method::GET, &return_path, None).await;
    assert_eq!(waiting.status, StatusCode::OK, "{}", waiting.body);
    assert_eq!(waiting.body["status"], "processing", "{}", waiting.body);
    assert_eq!(view(&w, &taro, &id).await, before, "the return only reads");

    // The real callback arrives before the resident is back: the fee is settled once and
    // the application received; the return then shows it paid and changes nothing.
    assert_eq!(w.gateway.flush(None).await, vec![Some(204)]);
    let paid = view(&w, &taro, &id).await;
    assert_eq!(paid["payment_settled"], true, "{paid}");
    assert_eq!(paid["state"], "received", "{paid}");
    for _ in 0..2 {
        let back = w.call(None, Method::GET, &return_path, None).await;
        assert_eq!(back.status, StatusCode::OK, "{}", back.body);
        assert_eq!(back.body["status"], "paid", "{}", back.body);
        assert_eq!(back.body["application_id"], id.as_str());
    }
    assert_eq!(view(&w, &taro, &id).await, paid);
    let moves: Vec<Value> = history(&w, &taro, &id).await.as_array().unwrap().clone();
    assert_eq!(moves.len(), history_before.as_array().unwrap().len() + 1);
    assert_eq!(moves.last().unwrap()["command"], "receive");
    // A forged copy of the callback after the fact is still refused.
    let late = post_callback(
        &w,
        &callback.body,
        Some(procedures::payment::sign(
            b"not the shared secret",
            now,
            &callback.body,
        )),
    )
    .await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn payment_callbacks_forged_are_refused_and_early_ones_are_fine_on_sqlite() {
    payment_callbacks(Backend::Sqlite).await;
}

#[tokio::test]
async fn payment_callbacks_forged_are_refused_and_early_ones_are_fine_on_postgres() {
    payment_callbacks(Backend::Postgres).await;
}
