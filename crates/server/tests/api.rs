//! HTTP tests of the NGSI-LD face: the router is called in-process (no network) over a
//! real SQLite store in a temporary directory, so each test sees the full stack from
//! request parsing to storage and back.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use serde_json::{json, Value};
use server::config::Config;

fn shelter(id: &str, capacity: i64, lng: f64, lat: f64) -> Value {
    json!({
        "id": id,
        "type": "Shelter",
        "name": {"type": "Property", "value": "中港タワー"},
        "capacity": {"type": "Property", "value": capacity, "unitCode": "C62"},
        "status": {"type": "Property", "value": "open", "observedAt": "2024-09-01T09:00:00Z"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lng, lat]}},
        "managedBy": {"type": "Relationship", "object": "urn:ngsi-ld:LocalGovernment:222127"}
    })
}

#[tokio::test]
async fn create_retrieve_and_delete_an_entity() {
    let s = server().await;
    let created = s
        .post(
            &format!("{NGSI}/entities"),
            shelter("urn:ngsi-ld:Shelter:1", 120, 138.32, 34.87),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        created.header("location"),
        Some("/ngsi-ld/v1/entities/urn:ngsi-ld:Shelter:1")
    );

    let got = s
        .get(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1"))
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["id"], "urn:ngsi-ld:Shelter:1");
    assert_eq!(got.body["type"], "Shelter");
    assert_eq!(got.body["capacity"]["value"], 120);
    assert_eq!(got.body["capacity"]["unitCode"], "C62");
    assert_eq!(
        got.body["managedBy"]["object"],
        "urn:ngsi-ld:LocalGovernment:222127"
    );
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("link"), Some(CORE_LINK));
    assert!(
        got.body.get("createdAt").is_none(),
        "system attributes only with options=sysAttrs"
    );

    let with_sys = s
        .get(&format!(
            "{NGSI}/entities/urn:ngsi-ld:Shelter:1?options=sysAttrs"
        ))
        .await;
    assert!(with_sys.body["createdAt"].is_string());
    assert!(with_sys.body["capacity"]["modifiedAt"].is_string());

    let key_values = s
        .get(&format!(
            "{NGSI}/entities/urn:ngsi-ld:Shelter:1?options=keyValues"
        ))
        .await;
    assert_eq!(key_values.body["capacity"], 120);
    assert_eq!(key_values.body["location"]["type"], "Point");

    let duplicate = s
        .post(
            &format!("{NGSI}/entities"),
            shelter("urn:ngsi-ld:Shelter:1", 1, 0.0, 0.0),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(duplicate.problem_type(), ALREADY_EXISTS);
    assert_eq!(
        duplicate.header("content-type"),
        Some("application/problem+json")
    );

    assert_eq!(
        s.delete(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gone = s
        .get(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1"))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.problem_type(), RESOURCE_NOT_FOUND);
}

#[tokio::test]
async fn json_ld_bodies_carry_their_context_and_answers_follow_accept() {
    let s = server().await;
    let mut entity = shelter("urn:ngsi-ld:Shelter:ld", 5, 138.0, 34.0);
    entity["@context"] = json!([{"Shelter": "https://example.org/jp/Shelter", "capacity": "https://example.org/jp/capacity"}, CORE_CONTEXT]);
    let created = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[("content-type", "application/ld+json")],
            Some(entity.clone()),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);

    // Without the user context the terms come back as full IRIs.
    let got = s
        .get(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:ld"))
        .await;
    assert_eq!(got.body["type"], "https://example.org/jp/Shelter");
    assert_eq!(got.body["https://example.org/jp/capacity"]["value"], 5);

    let ld = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:ld"),
            &[("accept", "application/ld+json")],
            None,
        )
        .await;
    assert_eq!(ld.header("content-type"), Some("application/ld+json"));
    assert!(ld.body["@context"].is_string() || ld.body["@context"].is_array());

    // application/json with an inline @context is refused; ld+json without one too.
    let bad = s.post(&format!("{NGSI}/entities"), entity).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[("content-type", "application/ld+json")],
            Some(shelter("urn:x:1", 1, 0.0, 0.0)),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unsupported = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[("content-type", "text/plain")],
            Some(json!({})),
        )
        .await;
    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let not_acceptable = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:ld"),
            &[("accept", "text/html")],
            None,
        )
        .await;
    assert_eq!(not_acceptable.status, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn queries_filter_by_type_q_and_geo_with_counts_and_pages() {
    let s = server().await;
    for i in 0..30 {
        let r = s
            .post(
                &format!("{NGSI}/entities"),
                shelter(
                    &format!("urn:ngsi-ld:Shelter:{i}"),
                    i * 10,
                    138.30 + i as f64 * 0.001,
                    34.85,
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let page = s
        .get(&format!(
            "{NGSI}/entities?type=Shelter&q=capacity%3E=100&limit=5&count=true"
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    assert_eq!(page.body.as_array().unwrap().len(), 5);
    assert_eq!(page.header("NGSILD-Results-Count"), Some("20"));
    assert_eq!(
        page.body[0]["id"], "urn:ngsi-ld:Shelter:10",
        "creation order"
    );

    let range = s
        .get(&format!(
            "{NGSI}/entities?type=Shelter&q=capacity==100..120"
        ))
        .await;
    let ids: Vec<_> = range
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        vec![
            "urn:ngsi-ld:Shelter:10",
            "urn:ngsi-ld:Shelter:11",
            "urn:ngsi-ld:Shelter:12"
        ]
    );

    // Within 300 m of the first shelter: ~0.001° of longitude is ~91 m at 34.85°N.
    let near = s.get(&format!("{NGSI}/entities?type=Shelter&georel=near;maxDistance==300&geometry=Point&coordinates=[138.30,34.85]&limit=100")).await;
    assert_eq!(near.status, StatusCode::OK, "{:?}", near.body);
    assert_eq!(near.body.as_array().unwrap().len(), 4);

    let geo = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities?type=Shelter&limit=2"),
            &[("accept", "application/geo+json")],
            None,
        )
        .await;
    assert_eq!(geo.body["type"], "FeatureCollection");
    assert_eq!(geo.body["features"][0]["geometry"]["type"], "Point");

    let picked = s
        .get(&format!(
            "{NGSI}/entities?type=Shelter&attrs=capacity&limit=1"
        ))
        .await;
    let first = picked.body[0].as_object().unwrap();
    assert!(first.contains_key("capacity") && !first.contains_key("name"));
}

#[tokio::test]
async fn bad_queries_are_400_problems_naming_what_was_wrong() {
    let s = server().await;
    for (query, fragment) in [
        ("type=Shelter&q=capacity%3E%3E3", "q"),
        (
            "type=Shelter&georel=near;maxDistance==10&geometry=Point&coordinates=[200,10]",
            "coordinates",
        ),
        (
            "type=Shelter&georel=near;maxDistance==10&geometry=Point",
            "geo",
        ),
        ("type=Shelter&limit=abc", "limit"),
        ("type=Shelter&unknownParameter=1", "unknownParameter"),
        ("", "at least one"),
        ("type=Shelter&idPattern=(", "idPattern"),
    ] {
        let r = s.get(&format!("{NGSI}/entities?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        assert!(
            r.problem_type().ends_with("BadRequestData")
                || r.problem_type().ends_with("InvalidRequest"),
            "{query}"
        );
        let detail = r.body["detail"].as_str().unwrap_or("").to_lowercase();
        assert!(
            detail.contains(&fragment.to_lowercase()),
            "{query}: detail {detail:?} should mention {fragment}"
        );
    }
    let too_many = s
        .get(&format!("{NGSI}/entities?type=Shelter&limit=100000"))
        .await;
    assert_eq!(too_many.status, StatusCode::FORBIDDEN);
    assert_eq!(too_many.problem_type(), TOO_MANY_RESULTS);
}

#[tokio::test]
async fn malformed_bodies_and_invalid_entities_never_get_stored() {
    let s = server().await;
    let r = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[("content-type", "application/json")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let broken = Request::builder()
        .method(Method::POST)
        .uri(format!("{NGSI}/entities"))
        .header("content-type", "application/json")
        .body(Body::from("{\"id\": \"urn:a\", "))
        .unwrap();
    let response = s.send_request(broken).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.problem_type(), INVALID_REQUEST);
    // JSON that is no object is an InvalidRequest under either media type, even
    // where the context rules would refuse it first (JSON-LD without @context).
    for (media, body) in [
        ("application/json", "[]"),
        ("application/ld+json", "[]"),
        ("application/ld+json", "42"),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{NGSI}/entities"))
            .header("content-type", media)
            .body(Body::from(body))
            .unwrap();
        let response = s.send_request(request).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{media} {body}");
        assert_eq!(response.problem_type(), INVALID_REQUEST, "{media} {body}");
    }

    let no_type = s
        .post(
            &format!("{NGSI}/entities"),
            json!({"id": "urn:ngsi-ld:X:1"}),
        )
        .await;
    assert_eq!(no_type.status, StatusCode::BAD_REQUEST);
    let bad_geo = s.post(&format!("{NGSI}/entities"), json!({"id": "urn:ngsi-ld:X:2", "type": "X", "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}})).await;
    assert_eq!(bad_geo.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_geo.body["detail"]
            .as_str()
            .unwrap()
            .contains("location"),
        "{:?}",
        bad_geo.body
    );
    assert_eq!(
        s.get(&format!("{NGSI}/entities/urn:ngsi-ld:X:2"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let small = server_with(Config {
        max_body_bytes: 64,
        ..Config::default()
    })
    .await;
    let big = small
        .post(
            &format!("{NGSI}/entities"),
            shelter("urn:ngsi-ld:Shelter:big", 1, 0.0, 0.0),
        )
        .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn attribute_operations_report_what_they_did() {
    let s = server().await;
    s.post(
        &format!("{NGSI}/entities"),
        shelter("urn:ngsi-ld:Shelter:a", 10, 138.0, 34.0),
    )
    .await;
    let path = format!("{NGSI}/entities/urn:ngsi-ld:Shelter:a");

    let appended = s
        .post(
            &format!("{path}/attrs"),
            json!({"open": {"type": "Property", "value": true}}),
        )
        .await;
    assert_eq!(appended.status, StatusCode::NO_CONTENT);
    let no_overwrite = s
        .post(
            &format!("{path}/attrs?options=noOverwrite"),
            json!({"open": {"type": "Property", "value": false}}),
        )
        .await;
    assert_eq!(no_overwrite.status, StatusCode::MULTI_STATUS);
    assert_eq!(no_overwrite.body["notUpdated"][0]["attributeName"], "open");

    // Update replaces what exists and appends what does not (ETSI 011_01_03); only a
    // Null for an absent attribute is reported.
    let updated = s.patch(&format!("{path}/attrs"), json!({"capacity": {"type": "Property", "value": 11}, "ghost": {"type": "Property", "value": 1}})).await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT, "{}", updated.body);
    assert_eq!(s.get(&path).await.body["ghost"]["value"], 1);
    let nulled = s
        .patch(
            &format!("{path}/attrs"),
            json!({"phantom": "urn:ngsi-ld:null"}),
        )
        .await;
    assert_eq!(nulled.status, StatusCode::MULTI_STATUS, "{}", nulled.body);
    assert_eq!(nulled.body["notUpdated"][0]["attributeName"], "phantom");

    let partial = s
        .patch(&format!("{path}/attrs/capacity"), json!({"value": 12}))
        .await;
    assert_eq!(partial.status, StatusCode::NO_CONTENT, "{:?}", partial.body);
    let got = s.get(&path).await;
    assert_eq!(got.body["capacity"]["value"], 12);

    // A second instance told apart by datasetId, then deleted alone.
    s.post(&format!("{path}/attrs"), json!({"capacity": {"type": "Property", "value": 99, "datasetId": "urn:ngsi-ld:Dataset:estimate"}})).await;
    assert_eq!(
        s.get(&path).await.body["capacity"].as_array().map(Vec::len),
        Some(2)
    );
    let deleted = s
        .delete(&format!(
            "{path}/attrs/capacity?datasetId=urn:ngsi-ld:Dataset:estimate"
        ))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&path).await.body["capacity"]["value"], 12);
    assert_eq!(
        s.delete(&format!("{path}/attrs/nothing")).await.status,
        StatusCode::NOT_FOUND
    );

    let merged = s.patch(&path, json!({"open": {"type": "Property", "value": "urn:ngsi-ld:null"}, "floors": {"type": "Property", "value": 3}})).await;
    assert_eq!(merged.status, StatusCode::NO_CONTENT, "{:?}", merged.body);
    let got = s.get(&path).await;
    assert!(got.body.get("open").is_none());
    assert_eq!(got.body["floors"]["value"], 3);
}

#[tokio::test]
async fn batch_operations_answer_201_204_and_207_as_the_spec_says() {
    let s = server().await;
    let batch = json!([
        shelter("urn:ngsi-ld:Shelter:b1", 1, 138.0, 34.0),
        shelter("urn:ngsi-ld:Shelter:b2", 2, 138.0, 34.0)
    ]);
    let created = s
        .post(&format!("{NGSI}/entityOperations/create"), batch.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        created.body,
        json!(["urn:ngsi-ld:Shelter:b1", "urn:ngsi-ld:Shelter:b2"])
    );

    let mixed = s.post(&format!("{NGSI}/entityOperations/create"), json!([shelter("urn:ngsi-ld:Shelter:b3", 3, 138.0, 34.0), shelter("urn:ngsi-ld:Shelter:b1", 1, 138.0, 34.0), {"id": "urn:ngsi-ld:Shelter:b4"}])).await;
    assert_eq!(mixed.status, StatusCode::MULTI_STATUS);
    assert_eq!(mixed.body["success"], json!(["urn:ngsi-ld:Shelter:b3"]));
    assert_eq!(mixed.body["errors"].as_array().unwrap().len(), 2);
    assert_eq!(
        mixed.body["errors"][0]["entityId"],
        "urn:ngsi-ld:Shelter:b1"
    );
    assert_eq!(mixed.body["errors"][0]["error"]["type"], ALREADY_EXISTS);
    assert_eq!(
        s.get(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:b4"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let upsert_existing = s
        .post(&format!("{NGSI}/entityOperations/upsert"), batch.clone())
        .await;
    assert_eq!(upsert_existing.status, StatusCode::NO_CONTENT);
    let upsert_new = s
        .post(
            &format!("{NGSI}/entityOperations/upsert?options=update"),
            json!([shelter("urn:ngsi-ld:Shelter:b5", 5, 138.0, 34.0)]),
        )
        .await;
    assert_eq!(upsert_new.status, StatusCode::CREATED);
    assert_eq!(upsert_new.body, json!(["urn:ngsi-ld:Shelter:b5"]));

    let update = s.post(&format!("{NGSI}/entityOperations/update"), json!([{"id": "urn:ngsi-ld:Shelter:b1", "type": "Shelter", "open": {"type": "Property", "value": true}}, {"id": "urn:ngsi-ld:Shelter:none", "type": "Shelter", "open": {"type": "Property", "value": true}}])).await;
    assert_eq!(update.status, StatusCode::MULTI_STATUS);
    assert_eq!(update.body["success"], json!(["urn:ngsi-ld:Shelter:b1"]));

    let deleted = s
        .post(
            &format!("{NGSI}/entityOperations/delete"),
            json!(["urn:ngsi-ld:Shelter:b1", "urn:ngsi-ld:Shelter:b2"]),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = s
        .post(
            &format!("{NGSI}/entityOperations/delete"),
            json!(["urn:ngsi-ld:Shelter:b1"]),
        )
        .await;
    assert_eq!(again.status, StatusCode::MULTI_STATUS);

    let not_array = s
        .post(
            &format!("{NGSI}/entityOperations/create"),
            json!({"id": "urn:x:1"}),
        )
        .await;
    assert_eq!(not_array.status, StatusCode::BAD_REQUEST);

    let queried = s
        .post(
            &format!("{NGSI}/entityOperations/query"),
            json!({"type": "Query", "entities": [{"type": "Shelter"}], "q": "capacity>2"}),
        )
        .await;
    assert_eq!(queried.status, StatusCode::OK, "{:?}", queried.body);
    let ids: Vec<_> = queried
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![
            json!("urn:ngsi-ld:Shelter:b3"),
            json!("urn:ngsi-ld:Shelter:b5")
        ]
    );
}

#[tokio::test]
async fn tenants_are_isolated_and_unknown_tenants_are_404_on_read() {
    let s = server().await;
    let yaizu = [("NGSILD-Tenant", "222127")];
    let r = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &yaizu,
            Some(shelter("urn:ngsi-ld:Shelter:t", 1, 138.0, 34.0)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let own = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:t"),
            &yaizu,
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.header("NGSILD-Tenant"), Some("222127"));
    assert_eq!(
        s.get(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:t"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let other = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities?type=Shelter"),
            &[("NGSILD-Tenant", "221309")],
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.problem_type(), NONEXISTENT_TENANT);
}

#[tokio::test]
async fn types_and_attributes_are_discoverable() {
    let s = server().await;
    s.post(
        &format!("{NGSI}/entities"),
        shelter("urn:ngsi-ld:Shelter:d1", 1, 138.0, 34.0),
    )
    .await;
    s.post(&format!("{NGSI}/entities"), json!({"id": "urn:ngsi-ld:River:1", "type": "River", "waterLevel": {"type": "Property", "value": 1.5}})).await;
    let types = s.get(&format!("{NGSI}/types")).await;
    assert_eq!(types.body["type"], "EntityTypeList");
    let mut list: Vec<_> = types.body["typeList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    list.sort();
    assert_eq!(list, vec!["River", "Shelter"]);
    let shelter_type = s.get(&format!("{NGSI}/types/Shelter")).await;
    assert_eq!(shelter_type.body["entityCount"], 1);
    assert_eq!(shelter_type.body["typeName"], "Shelter");
    let attribute = s.get(&format!("{NGSI}/attributes/waterLevel")).await;
    assert_eq!(attribute.body["attributeCount"], 1);
    assert_eq!(attribute.body["attributeTypes"], json!(["Property"]));
    assert_eq!(attribute.body["typeNames"], json!(["River"]));
    assert_eq!(
        s.get(&format!("{NGSI}/types/Nothing")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn hosted_contexts_are_served_and_used() {
    let s = server().await;
    let added = s
        .send(
            Method::POST,
            &format!("{NGSI}/jsonldContexts"),
            &[],
            Some(json!({"@context": {"Shelter": "https://example.org/jp/Shelter"}})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let location = added.header("location").unwrap().to_owned();
    let served = s.get(&location).await;
    assert_eq!(
        served.body["@context"]["Shelter"],
        "https://example.org/jp/Shelter"
    );
    let listed = s
        .get(&format!("{NGSI}/jsonldContexts?details=true&kind=Hosted"))
        .await;
    let url = listed.body[0]["URL"].as_str().unwrap().to_owned();
    assert_eq!(listed.body[0]["kind"], "Hosted");

    // Using the hosted context by Link header needs no network.
    let link = format!(
        "<{url}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
    );
    let created = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[("link", &link)],
            Some(json!({"id": "urn:ngsi-ld:Shelter:h", "type": "Shelter"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        s.get(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:h"))
            .await
            .body["type"],
        "https://example.org/jp/Shelter"
    );

    // An unknown remote context with remote fetching off is 503 LdContextNotAvailable.
    let missing = "<https://example.invalid/ctx.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";
    let r = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:h"),
            &[("link", missing)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.problem_type(), LD_CONTEXT_NOT_AVAILABLE);

    assert_eq!(s.delete(&location).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&location).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_demo_loads_yaizu_shelters_and_shizuoka_tenants_idempotently() {
    // Secured, as `serve --demo` runs: the shelters are public, so a resident who is
    // not signed in finds them.
    let s = secured_server(Backend::Sqlite).await;
    let first = server::demo::load(&s.state).await.unwrap();
    let second = server::demo::load(&s.state).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.shelters, 31);
    // And one procedure residents can apply for, listed without signing in.
    assert_eq!(first.procedures, 1);
    let offered = s.get("/api/v1/procedures/tenants/222127/procedures").await;
    assert_eq!(offered.body[0]["id"], "juminhyo", "{}", offered.body);
    let reply = s
        .send(
            Method::GET,
            &format!("{NGSI}/entities?type=EvacuationSpace&count=true&limit=1"),
            &[("NGSILD-Tenant", "222127")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("NGSILD-Results-Count"), Some("31"));
    let tenants = s
        .state
        .identity
        .store()
        .list_registered_tenants()
        .await
        .unwrap();
    assert!(tenants
        .iter()
        .any(|t| t.code == "222127" && t.name == "焼津市"));
}

#[tokio::test]
async fn the_core_context_is_listed_kept_and_context_use_is_counted() {
    let s = server().await;
    let core = CORE_CONTEXT;
    let encoded = core.replace(':', "%3A").replace('/', "%2F");
    let listed = s.get(&format!("{NGSI}/jsonldContexts?details=true")).await;
    assert_eq!(listed.body[0]["URL"], core);
    assert_eq!(listed.body[0]["kind"], "Cached");
    let served = s.get(&format!("{NGSI}/jsonldContexts/{encoded}")).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body["@context"]["location"], "ngsi-ld:location");
    let refused = s.delete(&format!("{NGSI}/jsonldContexts/{encoded}")).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    let reloaded = s
        .delete(&format!("{NGSI}/jsonldContexts/{encoded}?reload=true"))
        .await;
    assert_eq!(reloaded.status, StatusCode::NO_CONTENT);
    let nothing_to_reload = s
        .delete(&format!(
            "{NGSI}/jsonldContexts/no-such-context?reload=true"
        ))
        .await;
    assert_eq!(nothing_to_reload.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.delete(&format!("{NGSI}/jsonldContexts/no-such-context"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // A hosted context counts its uses by requests, not its own creation.
    let added = s
        .post(
            &format!("{NGSI}/jsonldContexts"),
            json!({"@context": {"Shelter": "https://example.org/jp/Shelter"}}),
        )
        .await;
    let location = added.header("location").unwrap().to_owned();
    let details = s.get(&format!("{location}?details=true")).await;
    assert_eq!(details.body["numberOfHits"], 0);
    let url = details.body["URL"].as_str().unwrap().to_owned();
    let link = format!(
        "<{url}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
    );
    s.send(
        Method::POST,
        &format!("{NGSI}/entities/"),
        &[("link", &link)],
        Some(json!({"id": "urn:ngsi-ld:Shelter:hits", "type": "Shelter"})),
    )
    .await;
    let details = s.get(&format!("{location}?details=true")).await;
    assert_eq!(details.body["numberOfHits"], 1);
    assert!(details.body["lastUsage"].is_string());

    // A body that is not a context is an invalid request; so is an unknown parameter.
    let bad = s
        .post(&format!("{NGSI}/jsonldContexts"), json!({"A1": "urn:a:b"}))
        .await;
    assert_eq!(bad.problem_type(), INVALID_REQUEST);
    let unknown = s.get(&format!("{NGSI}/types?colour=red")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.problem_type(), INVALID_REQUEST);
}

/// A subscription whose `@context` is an array of several contexts (or an object) and
/// that names no `jsonldContext` gets one: an ImplicitlyCreated context holding the
/// request's context, which notification receivers can dereference. The same context
/// again is the same implicit context; it cannot be reloaded, can be deleted, and a
/// context deleted and added again counts its uses afresh.
#[tokio::test]
async fn an_array_context_of_a_subscription_becomes_an_implicitly_created_context() {
    let s = server().await;
    let hosted = s
        .post(
            &format!("{NGSI}/jsonldContexts"),
            json!({"@context": {"Shelter": "https://example.org/jp/Shelter"}}),
        )
        .await;
    let hosted_url = s
        .get(&format!(
            "{}?details=true",
            hosted.header("location").unwrap()
        ))
        .await
        .body["URL"]
        .as_str()
        .unwrap()
        .to_owned();
    let context = json!([hosted_url, CORE_CONTEXT]);
    let subscribe = |id: &str| {
        json!({
            "id": id,
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
            "@context": context,
        })
    };
    let mut implicit = Vec::new();
    for id in ["urn:ngsi-ld:Subscription:a", "urn:ngsi-ld:Subscription:b"] {
        let created = s
            .send(
                Method::POST,
                &format!("{NGSI}/subscriptions"),
                &[("content-type", "application/ld+json")],
                Some(subscribe(id)),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let read = s.get(&format!("{NGSI}/subscriptions/{id}")).await;
        implicit.push(read.body["jsonldContext"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        implicit[0], implicit[1],
        "one implicit context per distinct context"
    );
    let listed = s
        .get(&format!(
            "{NGSI}/jsonldContexts?details=true&kind=ImplicitlyCreated"
        ))
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.body);
    assert_eq!(listed.body[0]["URL"], implicit[0]);
    let local_id = listed.body[0]["localId"].as_str().unwrap().to_owned();
    let served = s.get(&format!("{NGSI}/jsonldContexts/{local_id}")).await;
    assert_eq!(served.body["@context"], context);
    // The implicit context works as a context: named by Link, it compacts.
    let implicit_link = format!(
        "<{}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
        implicit[0]
    );
    let read = s
        .send(
            Method::GET,
            &format!("{NGSI}/subscriptions/urn:ngsi-ld:Subscription:a"),
            &[("link", &implicit_link)],
            None,
        )
        .await;
    assert_eq!(read.body["entities"][0]["type"], "Shelter", "{}", read.body);

    // A single context URL needs no implicit context.
    let single = s
        .send(
            Method::POST,
            &format!("{NGSI}/subscriptions"),
            &[("content-type", "application/ld+json")],
            Some(json!({
                "id": "urn:ngsi-ld:Subscription:c",
                "type": "Subscription",
                "entities": [{"type": "Shelter"}],
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
                "@context": hosted_url,
            })),
        )
        .await;
    assert_eq!(single.status, StatusCode::CREATED, "{:?}", single.body);
    let read = s
        .get(&format!("{NGSI}/subscriptions/urn:ngsi-ld:Subscription:c"))
        .await;
    assert!(read.body.get("jsonldContext").is_none(), "{}", read.body);

    let reload = s
        .delete(&format!("{NGSI}/jsonldContexts/{local_id}?reload=true"))
        .await;
    assert_eq!(reload.status, StatusCode::BAD_REQUEST);
    assert_eq!(reload.problem_type(), BAD_REQUEST_DATA);

    // Each subscription made with it, and each request naming it, is a use; deleting
    // the context and making it again starts the count afresh.
    let hits = |body: &Value| body["numberOfHits"].as_u64().unwrap();
    let details = format!("{NGSI}/jsonldContexts/{local_id}?details=true");
    assert_eq!(hits(&s.get(&details).await.body), 3);
    let created = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[("link", &implicit_link)],
            Some(json!({"id": "urn:ngsi-ld:Shelter:u1", "type": "Shelter"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(hits(&s.get(&details).await.body), 4);
    assert_eq!(
        s.delete(&format!("{NGSI}/jsonldContexts/{local_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let again = s
        .send(
            Method::POST,
            &format!("{NGSI}/subscriptions"),
            &[("content-type", "application/ld+json")],
            Some(subscribe("urn:ngsi-ld:Subscription:d")),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    let fresh = s.get(&details).await;
    assert_eq!(fresh.body["kind"], "ImplicitlyCreated");
    assert_eq!(hits(&fresh.body), 1, "{}", fresh.body);
}

/// Context source registrations are kept per tenant and discovered by type, id and
/// attribute in the reader's terms; malformed ones are refused naming the member, and
/// answers negotiate as the other NGSI-LD resources do.
#[tokio::test]
async fn context_source_registrations_are_kept_and_discovered() {
    let s = server().await;
    let context =
        json!({"Vehicle": "https://example.org/Vehicle", "speed": "https://example.org/speed"});
    let link = |ctx_url: &str| {
        format!("<{ctx_url}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"")
    };
    let hosted = s
        .post(
            &format!("{NGSI}/jsonldContexts"),
            json!({"@context": context}),
        )
        .await;
    let ctx_url = s
        .get(&format!(
            "{}?details=true",
            hosted.header("location").unwrap()
        ))
        .await
        .body["URL"]
        .as_str()
        .unwrap()
        .to_owned();
    let registration = json!({
        "id": "urn:ngsi-ld:ContextSourceRegistration:r1",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}],
        "endpoint": "http://source.example:1026",
        "@context": ctx_url,
    });
    let register = |body: Value, tenant: &'static str| {
        let s = &s;
        async move {
            s.send(
                Method::POST,
                &format!("{NGSI}/csourceRegistrations"),
                &[
                    ("content-type", "application/ld+json"),
                    ("NGSILD-Tenant", tenant),
                ],
                Some(body),
            )
            .await
        }
    };
    let created = register(registration.clone(), "reg").await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        created.header("location"),
        Some("/ngsi-ld/v1/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:r1")
    );
    let again = register(registration.clone(), "reg").await;
    assert_eq!(again.problem_type(), ALREADY_EXISTS);

    let get = |path: String, headers: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let mut all: Vec<(&str, &str)> = vec![("NGSILD-Tenant", "reg")];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            s.send(Method::GET, &path, &all, None).await
        }
    };
    let query = format!("{NGSI}/csourceRegistrations?type=Vehicle&attrs=speed");
    let found = get(query.clone(), vec![("link", link(&ctx_url))]).await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    assert_eq!(found.body.as_array().unwrap().len(), 1, "{}", found.body);
    assert_eq!(
        found.body[0]["information"][0]["entities"][0]["type"],
        "Vehicle"
    );
    // Without the context, "Vehicle" is another type: nothing is found, and what is
    // shown is the expanded IRI.
    assert_eq!(get(query.clone(), vec![]).await.body, json!([]));
    let by_id = get(
        format!("{NGSI}/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:r1"),
        vec![],
    )
    .await;
    assert_eq!(
        by_id.body["information"][0]["propertyNames"][0],
        "https://example.org/speed"
    );
    for accept in ["application/geo+json", "text/csv"] {
        let refused = get(query.clone(), vec![("accept", accept.to_owned())]).await;
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE, "{accept}");
    }

    let patched = s
        .send(
            Method::PATCH,
            &format!("{NGSI}/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:r1"),
            &[("NGSILD-Tenant", "reg")],
            Some(json!({"endpoint": "http://other.example:1026"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT, "{:?}", patched.body);
    let by_id = get(
        format!("{NGSI}/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:r1"),
        vec![],
    )
    .await;
    assert_eq!(by_id.body["endpoint"], "http://other.example:1026");

    let mut broken = registration.clone();
    broken["information"] = json!([{"entities": [{"id": "urn:a:b"}]}]);
    broken["id"] = json!("urn:ngsi-ld:ContextSourceRegistration:r2");
    let refused = register(broken, "reg").await;
    assert_eq!(refused.problem_type(), BAD_REQUEST_DATA);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("information"));

    // Tenants are apart; an unknown one is a nonexistent tenant.
    let elsewhere = s
        .send(
            Method::GET,
            &format!("{NGSI}/csourceRegistrations?type=Vehicle"),
            &[("NGSILD-Tenant", "nobody")],
            None,
        )
        .await;
    assert_eq!(elsewhere.problem_type(), NONEXISTENT_TENANT);

    let path = format!("{NGSI}/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:r1");
    let delete = || s.send(Method::DELETE, &path, &[("NGSILD-Tenant", "reg")], None);
    assert_eq!(delete().await.status, StatusCode::NO_CONTENT);
    assert_eq!(delete().await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replace_or_merge_without_an_id_is_bad_request_data() {
    let s = server().await;
    for method in [Method::PUT, Method::PATCH] {
        let r = s
            .send(
                method.clone(),
                &format!("{NGSI}/entities/"),
                &[],
                Some(json!({"type": "Shelter"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method}");
        assert_eq!(r.problem_type(), BAD_REQUEST_DATA);
    }
}
