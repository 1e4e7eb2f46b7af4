//! HTTP tests of the provision operations (create, batch, merge, update, partial update,
//! replace and delete of attributes) on the rules that are easy to get wrong: where a
//! batch's `@context` goes, NGSI-LD Null deleting every kind of attribute, types and
//! scopes in attribute fragments, and the status of malformed requests. The router is
//! called in-process over a real SQLite store in a temporary directory.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{json, Value};

const LD: (&str, &str) = ("content-type", "application/ld+json");
const ID: &str = "urn:ngsi-ld:Shelter:1";

fn shelter() -> Value {
    json!({
        "id": ID,
        "type": "Shelter",
        "name": [
            {"type": "Property", "value": "中港", "datasetId": "urn:ngsi-ld:Dataset:01"},
            {"type": "Property", "value": "Nakaminato", "datasetId": "urn:ngsi-ld:Dataset:02"}
        ],
        "street": {"type": "LanguageProperty", "languageMap": {"ja": "本町", "en": "Honcho"}},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [140.6, 36.3]}},
        "managedBy": {"type": "Relationship", "object": "urn:ngsi-ld:LocalGovernment:08202"}
    })
}

#[tokio::test]
async fn batch_items_bring_their_own_context_and_are_judged_one_by_one() {
    let s = server().await;
    let with_context =
        json!({"id": "urn:ngsi-ld:Shelter:a", "type": "Shelter", "@context": CORE_CONTEXT});
    let without = json!({"id": "urn:ngsi-ld:Shelter:b", "type": "Shelter"});
    let reply = s
        .send(
            Method::POST,
            &format!("{NGSI}/entityOperations/create"),
            &[LD],
            Some(json!([with_context, without])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    assert_eq!(reply.body["success"], json!(["urn:ngsi-ld:Shelter:a"]));
    assert_eq!(reply.body["errors"][0]["entityId"], "urn:ngsi-ld:Shelter:b");
    assert_eq!(reply.body["errors"][0]["error"]["type"], BAD_REQUEST_DATA);

    // In plain JSON an inline @context is the item's fault, not the request's.
    let reply = s
        .post(
            &format!("{NGSI}/entityOperations/create"),
            json!([{"id": "urn:ngsi-ld:Shelter:c", "type": "Shelter", "@context": CORE_CONTEXT},
                   {"id": "urn:ngsi-ld:Shelter:d", "type": "Shelter"}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    assert_eq!(reply.body["success"], json!(["urn:ngsi-ld:Shelter:d"]));

    // Ids need no @context, whatever the content type.
    let reply = s
        .send(
            Method::POST,
            &format!("{NGSI}/entityOperations/delete"),
            &[LD],
            Some(json!(["urn:ngsi-ld:Shelter:a", "urn:ngsi-ld:Shelter:d"])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
}

#[tokio::test]
async fn ngsi_ld_null_deletes_every_kind_of_attribute() {
    let s = server().await;
    s.create(shelter()).await;
    let path = format!("{NGSI}/entities/{ID}");
    let reply = s
        .patch(
            &path,
            json!({
                "location": {"type": "GeoProperty", "value": "urn:ngsi-ld:null"},
                "street": {"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"}}
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let reply = s
        .patch(
            &format!("{path}/attrs"),
            json!({"managedBy": {"type": "Relationship", "object": "urn:ngsi-ld:null"},
                   "name": {"type": "Property", "value": "urn:ngsi-ld:null",
                            "datasetId": "urn:ngsi-ld:Dataset:01"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let entity = s.get(&path).await.body;
    for gone in ["location", "street", "managedBy"] {
        assert!(entity.get(gone).is_none(), "{gone} left in {entity}");
    }
    // One instance left: an object, no longer a list.
    assert_eq!(entity["name"]["value"], "Nakaminato", "{entity}");

    let reply = s
        .patch(
            &format!("{path}/attrs/name"),
            json!({"type": "Property", "value": "urn:ngsi-ld:null",
                   "datasetId": "urn:ngsi-ld:Dataset:02"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert!(s.get(&path).await.body.get("name").is_none());
}

/// NGSI-LD Null only deletes in an update: a batch create, and an upsert that replaces
/// (its default), refuse the item whether or not the entity exists, and write nothing
/// of it; an updating upsert deletes the attribute of an entity that exists.
#[tokio::test]
async fn batch_writes_refuse_ngsi_ld_null_except_where_they_update() {
    let s = server().await;
    s.create(shelter()).await;
    let path = format!("{NGSI}/entities/{ID}");
    let with_null = |id: &str| {
        json!({"id": id, "type": "Shelter",
               "managedBy": {"type": "Relationship", "object": "urn:ngsi-ld:null"}})
    };
    let error_of = |body: &Value, id: &str| {
        body["errors"]
            .as_array()
            .and_then(|errors| errors.iter().find(|e| e["entityId"] == id))
            .map(|e| e["error"]["type"].clone())
    };
    let stored = s.get(&path).await.body;

    let reply = s
        .post(
            &format!("{NGSI}/entityOperations/upsert"),
            json!([with_null(ID), with_null("urn:ngsi-ld:Shelter:new"), {"id": "urn:ngsi-ld:Shelter:ok", "type": "Shelter"}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    assert_eq!(reply.body["success"], json!(["urn:ngsi-ld:Shelter:ok"]));
    for id in [ID, "urn:ngsi-ld:Shelter:new"] {
        assert_eq!(
            error_of(&reply.body, id),
            Some(json!(BAD_REQUEST_DATA)),
            "{}",
            reply.body
        );
    }
    assert_eq!(s.get(&path).await.body, stored);
    let missing = s
        .get(&format!("{NGSI}/entities/urn:ngsi-ld:Shelter:new"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let reply = s
        .post(
            &format!("{NGSI}/entityOperations/create"),
            json!([with_null("urn:ngsi-ld:Shelter:new"), {"id": ID, "type": "Shelter"}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    let bad = error_of(&reply.body, "urn:ngsi-ld:Shelter:new");
    assert_eq!(bad, Some(json!(BAD_REQUEST_DATA)), "{}", reply.body);
    assert_eq!(
        error_of(&reply.body, ID),
        Some(json!(ALREADY_EXISTS)),
        "{}",
        reply.body
    );

    let reply = s
        .post(
            &format!("{NGSI}/entityOperations/upsert?options=update"),
            json!([with_null(ID), with_null("urn:ngsi-ld:Shelter:new")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    assert_eq!(reply.body["success"], json!([ID]), "{}", reply.body);
    let bad = error_of(&reply.body, "urn:ngsi-ld:Shelter:new");
    assert_eq!(bad, Some(json!(BAD_REQUEST_DATA)), "{}", reply.body);
    let entity = s.get(&path).await.body;
    assert!(entity.get("managedBy").is_none(), "{entity}");
    assert_eq!(entity["street"], stored["street"], "{entity}");
}

#[tokio::test]
async fn attribute_fragments_add_types_and_handle_scopes() {
    let s = server().await;
    s.create(shelter()).await;
    let path = format!("{NGSI}/entities/{ID}");
    let reply = s
        .patch(&format!("{path}/attrs"), json!({"type": "Building"}))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        s.get(&path).await.body["type"],
        json!(["Shelter", "Building"])
    );

    // Update only replaces a scope the entity has.
    let reply = s
        .patch(&format!("{path}/attrs"), json!({"scope": "/Ibaraki"}))
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    assert_eq!(reply.body["notUpdated"][0]["attributeName"], "scope");

    s.post(&format!("{path}/attrs"), json!({"scope": "/Ibaraki"}))
        .await;
    let reply = s
        .post(
            &format!("{path}/attrs?options=noOverwrite"),
            json!({"scope": "/Mito"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        s.get(&path).await.body["scope"],
        json!(["/Ibaraki", "/Mito"])
    );

    let reply = s.put(&format!("{path}/attrs/scope"), json!("/Tokyo")).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "scope is no attribute"
    );
    let reply = s.delete(&format!("{path}/attrs/scope")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert!(s.get(&path).await.body.get("scope").is_none());
    assert_eq!(
        s.delete(&format!("{path}/attrs/scope")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn partial_update_keeps_the_kind_of_the_attribute() {
    let s = server().await;
    s.create(shelter()).await;
    let path = format!("{NGSI}/entities/{ID}");
    // A fragment with only a sub-attribute leaves the relationship as it is.
    let reply = s
        .patch(
            &format!("{path}/attrs/managedBy"),
            json!({"providedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let managed_by = &s.get(&path).await.body["managedBy"];
    assert_eq!(managed_by["type"], "Relationship", "{managed_by}");
    assert_eq!(managed_by["object"], "urn:ngsi-ld:LocalGovernment:08202");
    assert_eq!(managed_by["providedBy"]["object"], "urn:ngsi-ld:Person:1");

    let reply = s
        .patch(
            &format!("{path}/attrs/street"),
            json!({"type": "Relationship", "object": "urn:ngsi-ld:Street:1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}

#[tokio::test]
async fn malformed_provision_requests_are_refused() {
    let s = server().await;
    let reply = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[LD],
            Some(json!([])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["type"], INVALID_REQUEST);
    // `type` is the core context's alias of @type: no type name.
    let reply = s
        .send(
            Method::POST,
            &format!("{NGSI}/entities"),
            &[LD],
            Some(json!({"id": ID, "type": "type", "@context": CORE_CONTEXT})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    // NGSI-LD Null deletes; a new entity has nothing to delete.
    let mut with_null = shelter();
    with_null["open"] = json!({"type": "Property", "value": "urn:ngsi-ld:null"});
    let reply = s.post(&format!("{NGSI}/entities"), with_null).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    s.create(shelter()).await;
    let reply = s
        .put(
            &format!("{NGSI}/entities/{ID}/attrs/@invalid"),
            json!({"type": "Property", "value": 1}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}

#[tokio::test]
async fn batch_update_without_overwrite_writes_the_new_attributes() {
    let s = server().await;
    s.create(shelter()).await;
    let reply = s
        .post(
            &format!("{NGSI}/entityOperations/update?options=noOverwrite"),
            json!([{"id": ID, "type": "Shelter",
                    "street": {"type": "Property", "value": "changed"},
                    "capacity": {"type": "Property", "value": 120}}]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["entityId"], ID);
    let entity = s.get(&format!("{NGSI}/entities/{ID}")).await.body;
    assert_eq!(entity["capacity"]["value"], 120);
    assert_eq!(
        entity["street"]["type"], "LanguageProperty",
        "kept: {entity}"
    );
}

/// Under a budget of batches in flight smaller than any one body, concurrent batches
/// are decoded one at a time: each is still admitted (alone), answered and stored
/// whole, and none waits forever for room the others hold.
#[tokio::test]
async fn batches_larger_than_the_budget_in_flight_are_each_written_whole() {
    let s = server_with(server::config::Config {
        batch_bytes_in_flight: 64,
        ..Default::default()
    })
    .await;
    let batch = |family: &str| {
        Value::Array(
            (0..25)
                .map(|n| {
                    json!({"id": format!("urn:ngsi-ld:Shelter:{family}{n}"), "type": "Shelter",
                                "capacity": {"type": "Property", "value": n}})
                })
                .collect(),
        )
    };
    let (upsert, create) = (
        format!("{NGSI}/entityOperations/upsert"),
        format!("{NGSI}/entityOperations/create"),
    );
    // A deadlock guard, not a timing: the four take milliseconds, or forever.
    let (a, b, c, d) = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        tokio::join!(
            s.post(&upsert, batch("a")),
            s.post(&create, batch("b")),
            s.post(&upsert, batch("c")),
            s.post(&upsert, batch("a")),
        )
    })
    .await
    .unwrap_or_else(|_| panic!("a batch never got its place in the budget"));
    for reply in [&a, &b, &c] {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    // The repeated batch finds its entities stored (204) or stores them first (201).
    assert!(
        [StatusCode::CREATED, StatusCode::NO_CONTENT].contains(&d.status),
        "{}",
        d.body
    );
    let listed = s
        .get(&format!("{NGSI}/entities?type=Shelter&count=true&limit=1"))
        .await;
    assert_eq!(listed.header("NGSILD-Results-Count"), Some("75"));
}
