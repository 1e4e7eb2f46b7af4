//! The CKAN Action API of the catalog, end to end through the router, on both
//! storage backends: datasets and resources through their life, search with
//! Japanese partial words and facets, visibility of private datasets, CKAN's
//! error envelope, tokens, uploads loaded into the datastore with their
//! validation report, datastore actions, `datastore_search_sql` refusing what
//! could escape it, and the dump.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use identity::{Principal, Role};
use serde_json::{json, Value};
use server::admin::ops::{self, KeyRequest};

const YAIZU: &str = "222127";
const HAMAMATSU: &str = "221309";

struct World {
    server: TestServer,
    /// A data publisher of 焼津市.
    publisher: String,
    /// A data publisher of 浜松市.
    other: String,
}

async fn key(s: &TestServer, tenant: &str, role: Role) -> String {
    let request = KeyRequest {
        tenant: tenant.into(),
        role,
        scopes: None,
        label: "ckan test".into(),
        expires_in_days: None,
    };
    let (_, token) = ops::create_key(&s.state.identity, &Principal::Operator, request)
        .await
        .unwrap();
    token
}

async fn world(backend: Backend) -> World {
    let server = secured_server(backend).await;
    for code in [YAIZU, HAMAMATSU] {
        ops::create_tenant(&server.state.identity, &Principal::Operator, code)
            .await
            .unwrap();
    }
    let publisher = key(&server, YAIZU, Role::Publisher).await;
    let other = key(&server, HAMAMATSU, Role::Publisher).await;
    World {
        server,
        publisher,
        other,
    }
}

impl World {
    /// Calls an action by POST with a JSON body, authenticated with `token`
    /// sent the way CKAN clients send it (bare `Authorization`).
    async fn call(&self, action: &str, token: Option<&str>, body: Value) -> Reply {
        let mut headers = vec![];
        if let Some(token) = token {
            headers.push(("Authorization", token));
        }
        self.server
            .send(
                Method::POST,
                &format!("/api/3/action/{action}"),
                &headers,
                Some(body),
            )
            .await
    }

    async fn ok(&self, action: &str, token: Option<&str>, body: Value) -> Value {
        let reply = self.call(action, token, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{action}: {}", reply.body);
        assert_eq!(reply.body["success"], json!(true), "{}", reply.body);
        reply.body["result"].clone()
    }

    async fn get(&self, path: &str) -> Reply {
        self.server.get(path).await
    }
}

fn shelters() -> Value {
    json!({
        "name": "yaizu-shelters",
        "title": "指定緊急避難場所一覧",
        "notes": "焼津市の指定緊急避難場所",
        "owner_org": YAIZU,
        "license_id": "CC-BY-4.0",
        "tags": [{"name": "防災"}, {"name": "避難所"}],
        "groups": [{"name": "justice-safety-environment"}],
        "extras": [{"key": "spatial", "value": "222127"}],
        "resources": [{"url": "https://example.jp/shelters.csv", "name": "一覧"}]
    })
}

async fn datasets_live_their_whole_life(backend: Backend) {
    let w = world(backend).await;
    let created = w.ok("package_create", Some(&w.publisher), shelters()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["organization"]["title"], json!("焼津市"));
    assert_eq!(
        created["resources"][0]["format"],
        json!("CSV"),
        "format guessed from the URL"
    );
    assert_eq!(
        created["license_url"],
        json!("https://creativecommons.org/licenses/by/4.0/")
    );
    assert_eq!(created["isopen"], json!(true));

    // Anyone reads it, by name or id, with GET as ckanapi does.
    let shown = w.get("/api/3/action/package_show?id=yaizu-shelters").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["result"]["id"], json!(id));
    assert_eq!(
        w.get("/api/action/package_list").await.body["result"],
        json!(["yaizu-shelters"])
    );

    // The same name again is CKAN's validation error.
    let again = w
        .call("package_create", Some(&w.publisher), shelters())
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["success"], json!(false));
    assert_eq!(again.body["error"]["__type"], json!("Validation Error"));
    assert!(again.body["error"]["name"][0]
        .as_str()
        .unwrap()
        .contains("already in use"));

    // Another municipality cannot change it; anonymous cannot create.
    let refused = w
        .call(
            "package_patch",
            Some(&w.other),
            json!({"id": id, "title": "x"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["__type"],
        json!("Authorization Error")
    );
    let anonymous = w
        .call(
            "package_create",
            None,
            json!({"name": "anon", "owner_org": YAIZU}),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);

    // Patch keeps what it does not name; update replaces, but keeps resources
    // when the key is absent.
    let patched = w
        .ok(
            "package_patch",
            Some(&w.publisher),
            json!({"id": id, "notes": "更新"}),
        )
        .await;
    assert_eq!(patched["title"], json!("指定緊急避難場所一覧"));
    assert_eq!(patched["notes"], json!("更新"));
    let updated = w
        .ok(
            "package_update",
            Some(&w.publisher),
            json!({"id": id, "name": "yaizu-shelters", "title": "避難場所", "owner_org": YAIZU}),
        )
        .await;
    assert_eq!(updated["notes"], Value::Null);
    assert_eq!(updated["tags"], json!([]));
    assert_eq!(updated["num_resources"], json!(1));

    // Resources: create, patch, show, delete.
    let resource = w
        .ok(
            "resource_create",
            Some(&w.publisher),
            json!({"package_id": id, "url": "https://example.jp/a.pdf", "custom": "kept"}),
        )
        .await;
    let rid = resource["id"].as_str().unwrap().to_owned();
    assert_eq!(resource["format"], json!("PDF"));
    assert_eq!(
        resource["custom"],
        json!("kept"),
        "unknown resource keys are kept"
    );
    let patched = w
        .ok(
            "resource_patch",
            Some(&w.publisher),
            json!({"id": rid, "name": "地図"}),
        )
        .await;
    assert_eq!(patched["custom"], json!("kept"));
    assert_eq!(patched["name"], json!("地図"));
    w.ok("resource_delete", Some(&w.publisher), json!({"id": rid}))
        .await;
    let gone = w
        .get(&format!("/api/3/action/resource_show?id={rid}"))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["error"]["__type"], json!("Not Found Error"));

    // Delete hides it from everyone but its organisation's writers.
    w.ok("package_delete", Some(&w.publisher), json!({"id": id}))
        .await;
    assert_eq!(
        w.get("/api/3/action/package_show?id=yaizu-shelters")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let own = w
        .ok("package_show", Some(&w.publisher), json!({"id": id}))
        .await;
    assert_eq!(own["state"], json!("deleted"));
    assert_eq!(
        w.get("/api/3/action/package_list").await.body["result"],
        json!([])
    );

    // Unknown actions and broken bodies get CKAN's answers.
    let unknown = w.call("no_such_action", None, json!({})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let broken = w
        .server
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/api/3/action/package_create")
                .header("content-type", "application/json")
                .header("Authorization", w.publisher.as_str())
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert!(broken.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("JSON"));
}

async fn search_finds_japanese_partial_words_and_counts_facets(backend: Backend) {
    let w = world(backend).await;
    w.ok("package_create", Some(&w.publisher), shelters()).await;
    w.ok(
        "package_create",
        Some(&w.publisher),
        json!({"name": "toilets", "title": "公衆トイレ一覧", "owner_org": YAIZU,
               "resources": [{"url": "https://example.jp/t.csv"}, {"url": "https://example.jp/t.pdf"}]}),
    )
    .await;
    w.ok(
        "package_create",
        Some(&w.other),
        json!({"name": "hamamatsu-hinan", "title": "避難所の運営", "notes": "浜松市",
               "owner_org": HAMAMATSU, "private": true}),
    )
    .await;
    w.ok(
        "package_create",
        Some(&w.other),
        json!({"name": "hamamatsu-notes", "title": "防災計画", "notes": "避難の手引き", "owner_org": HAMAMATSU}),
    )
    .await;

    let search = |q: &str| format!("/api/3/action/package_search?q={}", urlencode(q));
    let found = w.get(&search("避難")).await.body["result"].clone();
    let names: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["yaizu-shelters", "hamamatsu-notes"],
        "title match first; private left out"
    );
    assert_eq!(found["count"], json!(2));

    let toilets = w.get(&search("ﾄｲﾚ")).await.body["result"].clone();
    assert_eq!(
        toilets["results"][0]["name"],
        json!("toilets"),
        "half-width kana finds トイレ"
    );

    // Facets count datasets once per value, with organisation titles shown.
    let faceted = w
        .get(&format!(
            "/api/3/action/package_search?facet.field={}&rows=0",
            urlencode(r#"["organization","res_format"]"#)
        ))
        .await
        .body["result"]
        .clone();
    assert_eq!(faceted["count"], json!(3));
    assert_eq!(faceted["results"], json!([]));
    let orgs = &faceted["search_facets"]["organization"]["items"];
    assert_eq!(
        orgs[0],
        json!({"name": YAIZU, "display_name": "焼津市", "count": 2})
    );
    assert_eq!(orgs[1]["count"], json!(1));
    let formats = &faceted["search_facets"]["res_format"]["items"];
    assert_eq!(
        formats[0],
        json!({"name": "CSV", "display_name": "CSV", "count": 2})
    );

    // fq narrows exactly as facet items promise.
    let filtered = w
        .get(&format!(
            "/api/3/action/package_search?fq={}",
            urlencode("res_format:PDF")
        ))
        .await
        .body["result"]
        .clone();
    assert_eq!(filtered["count"], json!(1));

    // Private datasets: only with include_private and only for their organisation.
    let private = json!({"q": "避難", "include_private": true});
    let own = w
        .ok("package_search", Some(&w.other), private.clone())
        .await;
    assert_eq!(own["count"], json!(3));
    let foreign = w.ok("package_search", Some(&w.publisher), private).await;
    assert_eq!(foreign["count"], json!(2));
    assert_eq!(
        w.get("/api/3/action/package_show?id=hamamatsu-hinan")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // rows is capped as CKAN caps it; a bad sort is a validation error.
    assert_eq!(
        w.get("/api/3/action/package_search?rows=1001").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        w.get("/api/3/action/package_search?sort=bogus%20asc")
            .await
            .status,
        StatusCode::CONFLICT
    );

    // Organisations, groups, tags, licences.
    let orgs = w
        .get("/api/3/action/organization_list?all_fields=true")
        .await
        .body["result"]
        .clone();
    assert_eq!(orgs.as_array().unwrap().len(), 2);
    let yaizu = w
        .get(&format!("/api/3/action/organization_show?id={YAIZU}"))
        .await
        .body["result"]
        .clone();
    assert_eq!(yaizu["title"], json!("焼津市"));
    assert_eq!(yaizu["package_count"], json!(2));
    let groups = w.get("/api/3/action/group_list").await.body["result"].clone();
    assert_eq!(groups.as_array().unwrap().len(), 17);
    let group = w
        .get("/api/3/action/group_show?id=justice-safety-environment")
        .await
        .body["result"]
        .clone();
    assert_eq!(group["title"], json!("司法・安全・環境"));
    assert_eq!(group["package_count"], json!(1));
    assert_eq!(
        w.get("/api/3/action/tag_list").await.body["result"],
        json!(["避難所", "防災"])
    );
    let licenses = w.get("/api/3/action/license_list").await.body["result"].clone();
    assert!(licenses
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["id"] == json!("PDL-1.0")));
}

/// A multipart `resource_create` body with `fields` and one file.
fn multipart(fields: &[(&str, &str)], file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "renkei-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const EVACUATION_SPACES: &str =
    include_str!("../../catalog/testdata/yaizu/222127_evacuation_space.csv");

async fn uploads_load_into_the_datastore_with_their_report(backend: Backend) {
    let w = world(backend).await;
    let package = w
        .ok(
            "package_create",
            Some(&w.publisher),
            json!({"name": "evacuation", "title": "指定緊急避難場所", "owner_org": YAIZU}),
        )
        .await;
    // The city's real file, as Shift_JIS (how many municipalities publish).
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(EVACUATION_SPACES);
    assert!(!unmappable);
    let (content_type, body) = multipart(
        &[
            ("package_id", package["id"].as_str().unwrap()),
            ("format", "CSV"),
        ],
        "222127_evacuation_space.csv",
        &sjis,
    );
    let reply = w
        .server
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/api/3/action/resource_create")
                .header("content-type", content_type)
                .header("X-CKAN-API-Key", w.publisher.as_str())
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let resource = reply.body["result"].clone();
    let rid = resource["id"].as_str().unwrap().to_owned();
    assert_eq!(resource["datastore_active"], json!(true), "{resource}");
    assert_eq!(resource["url_type"], json!("upload"));
    assert_eq!(resource["size"], json!(sjis.len()));
    let report = &resource["validation"];
    assert_eq!(report["status"], json!("loaded"), "{report}");
    let text = report.to_string();
    assert!(text.contains("v1-10-emergency-evacuation-sites"), "{text}");
    assert!(
        text.contains("災害種別_地震"),
        "the report names columns: {text}"
    );

    // The file comes back byte for byte at the resource's URL.
    let url = resource["url"].as_str().unwrap();
    let path = &url[url.find("/dataset/").unwrap()..];
    let download = w.server.send(Method::GET, path, &[], None).await;
    assert_eq!(download.status, StatusCode::OK);

    // Rows are searchable by filters and text.
    let found = w
        .ok(
            "datastore_search",
            None,
            json!({"resource_id": rid, "filters": {"名称": "中港タワー"}}),
        )
        .await;
    assert_eq!(found["total"], json!(1), "{found}");
    assert_eq!(found["records"][0]["住所"], json!("焼津市中港5-463"));
    let all = w
        .ok(
            "datastore_search",
            None,
            json!({"resource_id": rid, "limit": 5}),
        )
        .await;
    assert_eq!(all["total"], json!(31));
    assert_eq!(all["records"].as_array().unwrap().len(), 5);
    let by_text = w
        .ok(
            "datastore_search",
            None,
            json!({"resource_id": rid, "q": "タワー"}),
        )
        .await;
    assert!(by_text["total"].as_u64().unwrap() >= 2, "{by_text}");

    // SQL over the table, and every escape refused.
    let sql = format!("SELECT count(*) AS n FROM \"{rid}\" WHERE \"市区町村名\" = '焼津市'");
    let counted = w
        .ok("datastore_search_sql", None, json!({"sql": sql}))
        .await;
    assert_eq!(counted["records"][0]["n"], json!(31), "{counted}");
    for escape in [
        format!("DELETE FROM \"{rid}\""),
        format!("SELECT 1 FROM \"{rid}\"; DROP TABLE \"{rid}\""),
        "SELECT * FROM catalog_packages".to_owned(),
        "SELECT * FROM sqlite_master".to_owned(),
        "SELECT * FROM pg_catalog.pg_tables".to_owned(),
        "SELECT pg_sleep(10)".to_owned(),
        format!("WITH d AS (DELETE FROM \"{rid}\" RETURNING *) SELECT * FROM d"),
        "SELECT * FROM datastore_tables".to_owned(),
    ] {
        let refused = w
            .call("datastore_search_sql", None, json!({"sql": escape}))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{escape}: {}",
            refused.body
        );
        assert_eq!(refused.body["error"]["__type"], json!("Validation Error"));
    }
    let still = w
        .ok(
            "datastore_search",
            None,
            json!({"resource_id": rid, "limit": 0}),
        )
        .await;
    assert_eq!(still["total"], json!(31), "nothing was deleted");

    // The dump gives the header and every row.
    let dump = w
        .server
        .get(&format!("/datastore/dump/{rid}?format=csv"))
        .await;
    assert_eq!(dump.status, StatusCode::OK);
    let csv = dump.body.as_str().unwrap();
    assert!(
        csv.starts_with("_id,NO,名称"),
        "{}",
        &csv[..80.min(csv.len())]
    );
    assert_eq!(csv.lines().count(), 32);

    // Another municipality cannot write to it.
    let refused = w
        .call(
            "datastore_upsert",
            Some(&w.other),
            json!({"resource_id": rid, "records": [], "method": "insert"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}

async fn datastore_tables_are_created_upserted_and_deleted(backend: Backend) {
    let w = world(backend).await;
    let package = w
        .ok(
            "package_create",
            Some(&w.publisher),
            json!({"name": "river", "owner_org": YAIZU,
                   "resources": [{"url": "https://example.jp/river", "format": "API"}]}),
        )
        .await;
    let rid = package["resources"][0]["id"].as_str().unwrap().to_owned();
    let created = w
        .ok(
            "datastore_create",
            Some(&w.publisher),
            json!({"resource_id": rid, "primary_key": "station",
                   "fields": [{"id": "station", "type": "text"}, {"id": "level", "type": "numeric"},
                              {"id": "observed", "type": "timestamp"}],
                   "records": [{"station": "瀬戸川", "level": 1.25, "observed": "2026-11-26T09:00:00+09:00"}]}),
        )
        .await;
    assert_eq!(created["primary_key"], json!(["station"]));
    let shown = w.ok("resource_show", None, json!({"id": rid})).await;
    assert_eq!(shown["datastore_active"], json!(true));

    w.ok(
        "datastore_upsert",
        Some(&w.publisher),
        json!({"resource_id": rid, "method": "upsert",
               "records": [{"station": "瀬戸川", "level": 1.5}, {"station": "黒石川", "level": 0.5}]}),
    )
    .await;
    let rows = w
        .ok(
            "datastore_search",
            None,
            json!({"resource_id": rid, "sort": "level desc"}),
        )
        .await;
    assert_eq!(rows["total"], json!(2));
    assert_eq!(rows["records"][0]["station"], json!("瀬戸川"));
    assert_eq!(rows["records"][0]["level"], json!(1.5));
    assert_eq!(
        rows["records"][0]["observed"],
        json!("2026-11-26T00:00:00"),
        "kept, in UTC"
    );

    // A bad value names the record and column; nothing of the call is written.
    let bad = w
        .call(
            "datastore_upsert",
            Some(&w.publisher),
            json!({"resource_id": rid, "method": "insert",
                   "records": [{"station": "new", "level": 1}, {"station": "x", "level": "high"}]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::CONFLICT, "{}", bad.body);
    assert!(
        bad.body["error"]["records"][0]
            .as_str()
            .unwrap()
            .contains("records[1].level"),
        "{}",
        bad.body
    );
    let duplicate = w
        .call(
            "datastore_upsert",
            Some(&w.publisher),
            json!({"resource_id": rid, "method": "insert", "records": [{"station": "黒石川"}]}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    let rows = w
        .ok("datastore_search", None, json!({"resource_id": rid}))
        .await;
    assert_eq!(rows["total"], json!(2));

    w.ok(
        "datastore_delete",
        Some(&w.publisher),
        json!({"resource_id": rid, "filters": {"station": "黒石川"}}),
    )
    .await;
    let rows = w
        .ok("datastore_search", None, json!({"resource_id": rid}))
        .await;
    assert_eq!(rows["total"], json!(1));
    w.ok(
        "datastore_delete",
        Some(&w.publisher),
        json!({"resource_id": rid}),
    )
    .await;
    let gone = w
        .call("datastore_search", None, json!({"resource_id": rid}))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let shown = w.ok("resource_show", None, json!({"id": rid})).await;
    assert_eq!(shown["datastore_active"], json!(false));
}

/// The DCAT documents renkei serves parse and validate against the DCAT-AP 3
/// SHACL shapes (rdflib and pySHACL through `scripts/check-dcat`); private
/// datasets are never described. The documents come from the index, the same
/// on both backends, so SQLite serves them here.
#[tokio::test]
async fn dcat_documents_validate_against_dcat_ap_3() {
    let w = world(Backend::Sqlite).await;
    w.ok("package_create", Some(&w.publisher), shelters()).await;
    w.ok(
        "package_create",
        Some(&w.publisher),
        json!({"name": "hidden", "owner_org": YAIZU, "private": true}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for path in [
        "/catalog.ttl",
        "/catalog.jsonld",
        "/catalog.xml",
        "/dataset/yaizu-shelters.ttl",
        "/dataset/yaizu-shelters.jsonld",
        "/dataset/yaizu-shelters.xml",
    ] {
        let reply = w.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let text = match &reply.body {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        assert!(!text.contains("hidden"), "{path} names a private dataset");
        let file = dir
            .path()
            .join(path.trim_start_matches('/').replace('/', "-"));
        std::fs::write(&file, text).unwrap();
        files.push(file);
    }
    assert_eq!(
        w.get("/dataset/hidden.ttl").await.status,
        StatusCode::NOT_FOUND
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checked = std::process::Command::new(root.join("scripts/check-dcat"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// A file larger than axum's default 2 MB body limit loads whole: uploads are
/// limited only by `max_upload_bytes` (a bug: the default limit refused them).
#[tokio::test]
async fn large_uploads_pass_the_default_body_limit() {
    let w = world(Backend::Sqlite).await;
    let package = w
        .ok(
            "package_create",
            Some(&w.publisher),
            json!({"name": "counts", "owner_org": YAIZU}),
        )
        .await;
    let mut csv = String::from("地区,年,人口,世帯数,備考\n");
    let rows = 90_000;
    for n in 0..rows {
        csv.push_str(&format!("地区{n},2026,{},{},特記事項なし\n", n * 3, n));
    }
    assert!(csv.len() > 3 * 1024 * 1024, "{} bytes", csv.len());
    let (content_type, body) = multipart(
        &[
            ("package_id", package["id"].as_str().unwrap()),
            ("format", "CSV"),
        ],
        "counts.csv",
        csv.as_bytes(),
    );
    let reply = w
        .server
        .send_request(
            Request::builder()
                .method(Method::POST)
                .uri("/api/3/action/resource_create")
                .header("content-type", content_type)
                .header("Authorization", w.publisher.as_str())
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rid = reply.body["result"]["id"].as_str().unwrap().to_owned();
    let all = w
        .ok(
            "datastore_search",
            None,
            json!({"resource_id": rid, "limit": 1}),
        )
        .await;
    assert_eq!(all["total"], json!(rows));
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(
    datasets_live_their_whole_life,
    search_finds_japanese_partial_words_and_counts_facets,
    uploads_load_into_the_datastore_with_their_report,
    datastore_tables_are_created_upserted_and_deleted,
);
