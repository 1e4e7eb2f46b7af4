//! Publication of standard-dataset resources into the broker, end to end on both
//! storage backends: an uploaded file of 焼津市's evacuation sites and one of its
//! public toilets become NGSI-LD entities in tenant 222127, read back through
//! `/ngsi-ld/v1/entities` with the renkei context renkei itself serves; a changed
//! re-upload removes, changes and skips what it should and says so on the resource;
//! deleting the resource withdraws its entities and leaves the other resource's.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use identity::{Principal, Role};
use serde_json::{json, Value};
use server::admin::ops::{self, KeyRequest};

const YAIZU: &str = "222127";
const EVACUATION_SPACES: &str =
    include_str!("../../catalog/testdata/yaizu/222127_evacuation_space.csv");
const PUBLIC_TOILETS: &str = include_str!("../../catalog/testdata/yaizu/222127_public_toilet.csv");

struct World {
    server: TestServer,
    /// A data publisher of 焼津市, for the catalog and the broker alike.
    publisher: String,
}

async fn world(backend: Backend) -> World {
    let server = secured_server(backend).await;
    ops::create_tenant(&server.state.identity, &Principal::Operator, YAIZU)
        .await
        .unwrap();
    let request = KeyRequest {
        tenant: YAIZU.into(),
        role: Role::Publisher,
        scopes: None,
        label: "publish test".into(),
        expires_in_days: None,
    };
    let (_, publisher) = ops::create_key(&server.state.identity, &Principal::Operator, request)
        .await
        .unwrap();
    World { server, publisher }
}

/// A multipart Action API body with `fields` and one file.
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

impl World {
    async fn action(&self, action: &str, body: Value) -> Value {
        let reply = self
            .server
            .send(
                Method::POST,
                &format!("/api/3/action/{action}"),
                &[("Authorization", self.publisher.as_str())],
                Some(body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{action}: {}", reply.body);
        reply.body["result"].clone()
    }

    /// Uploads `text` as a resource file (`fields` say which resource) and gives
    /// the resource as the action answered.
    async fn upload(&self, action: &str, fields: &[(&str, &str)], name: &str, text: &str) -> Value {
        let (content_type, body) = multipart(fields, name, text.as_bytes());
        let reply = self
            .server
            .send_request(
                Request::builder()
                    .method(Method::POST)
                    .uri(format!("/api/3/action/{action}"))
                    .header("content-type", content_type)
                    .header("X-CKAN-API-Key", self.publisher.as_str())
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let resource = reply.body["result"].clone();
        assert_eq!(resource["datastore_active"], json!(true), "{resource}");
        resource
    }

    async fn dataset(&self, name: &str) -> String {
        let package = self
            .action(
                "package_create",
                json!({"name": name, "title": name, "owner_org": YAIZU}),
            )
            .await;
        package["id"].as_str().unwrap().to_owned()
    }

    fn context_link(&self) -> String {
        let url = catalog::publish::context_url(&self.server.state.config.public_url);
        format!(
            "<{url}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
        )
    }

    /// The entities of `entity_type` in 焼津市's tenant, read as a client of the
    /// renkei context reads them.
    async fn entities(&self, entity_type: &str) -> Vec<Value> {
        let link = self.context_link();
        let bearer = format!("Bearer {}", self.publisher);
        let reply = self
            .server
            .send(
                Method::GET,
                &format!("{NGSI}/entities?type={entity_type}&limit=1000"),
                &[
                    ("NGSILD-Tenant", YAIZU),
                    ("Link", link.as_str()),
                    ("Authorization", bearer.as_str()),
                ],
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body.as_array().cloned().unwrap_or_default()
    }
}

impl World {
    /// When the entity was last modified, as the broker tells it.
    async fn modified_at(&self, id: &str) -> Value {
        let bearer = format!("Bearer {}", self.publisher);
        let reply = self
            .server
            .send(
                Method::GET,
                &format!("{NGSI}/entities/{id}?options=sysAttrs"),
                &[("NGSILD-Tenant", YAIZU), ("Authorization", bearer.as_str())],
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["modifiedAt"].clone()
    }
}

fn by_id<'a>(entities: &'a [Value], id: &str) -> Option<&'a Value> {
    entities.iter().find(|e| e["id"] == json!(id))
}

/// The evacuation file with site 2 removed, site 1 renamed and moved, and site 3's
/// latitude left empty.
fn changed_evacuation_spaces() -> String {
    let mut lines: Vec<String> = EVACUATION_SPACES.lines().map(str::to_owned).collect();
    assert!(lines[1].starts_with("1,中港タワー,"));
    assert!(lines[2].starts_with("2,"));
    assert!(lines[3].starts_with("3,"));
    lines[1] = lines[1]
        .replacen("中港タワー", "中港タワー（改修）", 1)
        .replacen("34.87512688,138.3270609", "34.8760000,138.3280000", 1);
    let mut site3: Vec<String> = lines[3].split(',').map(str::to_owned).collect();
    site3[5] = String::new();
    lines[3] = site3.join(",");
    lines.remove(2);
    lines.join("\r\n") + "\r\n"
}

async fn a_standard_dataset_becomes_entities_and_follows_its_resource(backend: Backend) {
    let w = world(backend).await;

    // The context the entities name is served by renkei itself.
    let served = w.server.get(catalog::publish::CONTEXT_PATH).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.header("content-type"), Some("application/ld+json"));
    assert_eq!(
        served.body["@context"]["EvacuationSpace"],
        json!("urn:renkei:opendata:EvacuationSpace")
    );
    assert_eq!(
        served.body["@context"]["name"],
        json!("https://schema.org/name")
    );

    let shelters = w.dataset("evacuation").await;
    let resource = w
        .upload(
            "resource_create",
            &[("package_id", &shelters), ("format", "CSV")],
            "222127_evacuation_space.csv",
            EVACUATION_SPACES,
        )
        .await;
    let rid = resource["id"].as_str().unwrap().to_owned();
    let report = &resource["validation"]["publication"];
    assert_eq!(report["status"], json!("published"), "{resource}");
    assert_eq!(report["type"], json!("EvacuationSpace"));
    assert_eq!(report["published"], json!(31));
    assert_eq!(report["skipped_count"], json!(0));

    let toilets_dataset = w.dataset("toilets").await;
    let toilets = w
        .upload(
            "resource_create",
            &[("package_id", &toilets_dataset), ("format", "CSV")],
            "222127_public_toilet.csv",
            PUBLIC_TOILETS,
        )
        .await;
    assert_eq!(
        toilets["validation"]["publication"]["published"],
        json!(112)
    );

    let sites = w.entities("EvacuationSpace").await;
    assert_eq!(sites.len(), 31);
    let site1 = format!("urn:ngsi-ld:EvacuationSpace:{YAIZU}:{rid}:1");
    let site2 = format!("urn:ngsi-ld:EvacuationSpace:{YAIZU}:{rid}:2");
    let site3 = format!("urn:ngsi-ld:EvacuationSpace:{YAIZU}:{rid}:3");
    let first = by_id(&sites, &site1).expect("site 1");
    assert_eq!(
        first["type"],
        json!("EvacuationSpace"),
        "compacted by the context"
    );
    assert_eq!(first["name"]["value"], json!("中港タワー"));
    assert_eq!(
        first["location"]["value"],
        json!({"type": "Point", "coordinates": [138.3270609, 34.87512688]})
    );
    assert_eq!(
        first["hazardTypes"]["value"],
        json!(["earthquake", "tsunami"])
    );
    assert_eq!(first["source"]["value"], json!(rid));
    assert!(sites
        .iter()
        .all(|s| s["location"]["value"]["type"] == json!("Point")));
    let public_toilets = w.entities("PublicToilet").await;
    assert_eq!(public_toilets.len(), 112);

    // A changed file replaces the resource's entities: one gone, one changed, one
    // without coordinates withdrawn and reported. The rows that did not change are
    // left as they were (no new modification, history or notification).
    let site4 = format!("urn:ngsi-ld:EvacuationSpace:{YAIZU}:{rid}:4");
    let (site1_before, site4_before) = (w.modified_at(&site1).await, w.modified_at(&site4).await);
    assert!(site4_before.is_string(), "{site4_before}");
    let changed = changed_evacuation_spaces();
    let resource = w
        .upload(
            "resource_update",
            &[("id", &rid), ("format", "CSV")],
            "222127_evacuation_space.csv",
            &changed,
        )
        .await;
    let report = &resource["validation"]["publication"];
    assert_eq!(report["published"], json!(29), "{report}");
    assert_eq!(report["skipped_count"], json!(1));
    assert_eq!(report["skipped"][0]["row"], json!(2), "the second data row");
    assert_eq!(report["skipped"][0]["code"], json!("no-coordinates"));
    assert_eq!(report["removed"], json!(2));
    let sites = w.entities("EvacuationSpace").await;
    assert_eq!(sites.len(), 29);
    assert!(by_id(&sites, &site2).is_none());
    assert!(by_id(&sites, &site3).is_none());
    let first = by_id(&sites, &site1).expect("site 1 stays");
    assert_eq!(first["name"]["value"], json!("中港タワー（改修）"));
    assert_eq!(
        first["location"]["value"]["coordinates"],
        json!([138.328, 34.876])
    );
    assert_ne!(w.modified_at(&site1).await, site1_before);
    assert_eq!(w.modified_at(&site4).await, site4_before);

    // Rows written through the datastore API are published too, and rows deleted
    // through it are withdrawn.
    let site99 = format!("urn:ngsi-ld:EvacuationSpace:{YAIZU}:{rid}:99");
    w.action(
        "datastore_upsert",
        json!({
            "resource_id": rid,
            "method": "insert",
            "records": [{"NO": "99", "名称": "新しい避難場所", "緯度": 34.87, "経度": 138.32}],
        }),
    )
    .await;
    let sites = w.entities("EvacuationSpace").await;
    assert_eq!(sites.len(), 30);
    let added = by_id(&sites, &site99).expect("the inserted row is published");
    assert_eq!(added["name"]["value"], json!("新しい避難場所"));
    assert_eq!(w.modified_at(&site4).await, site4_before);
    w.action(
        "datastore_delete",
        json!({"resource_id": rid, "filters": {"NO": "99"}}),
    )
    .await;
    let sites = w.entities("EvacuationSpace").await;
    assert_eq!(sites.len(), 29);
    assert!(by_id(&sites, &site99).is_none());

    // Deleting the resource withdraws its entities, and only its.
    w.action("resource_delete", json!({"id": rid})).await;
    assert!(w.entities("EvacuationSpace").await.is_empty());
    assert_eq!(w.entities("PublicToilet").await.len(), 112);

    // Deleting a dataset withdraws what its resources published.
    w.action("package_delete", json!({"id": toilets_dataset}))
        .await;
    assert!(w.entities("PublicToilet").await.is_empty());
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

on_both_backends!(a_standard_dataset_becomes_entities_and_follows_its_resource);
