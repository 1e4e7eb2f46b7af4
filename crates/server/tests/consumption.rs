//! HTTP tests of the consumption operations (Retrieve Entity, Query Entities and the
//! POST query) on the rules that are easy to get wrong: linked entity retrieval with
//! `join` and `joinLevel`, `pick`/`omit` on core members and on linked entities,
//! `datasetId` filtering, GeoJSON answers carrying their `@context`, and which
//! malformed requests are refused with which problem type. The router is called
//! in-process over a real SQLite store in a temporary directory.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{json, Value};

/// Every request here names the representation it accepts, plain JSON unless a test
/// asks for another, so the answers checked are exactly those such a client gets.
const JSON: &str = "application/json";

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    accept: &str,
    body: Option<Value>,
) -> Reply {
    server.send(method, path, &[("accept", accept)], body).await
}

async fn get(server: &TestServer, path: &str) -> Reply {
    send(server, Method::GET, path, JSON, None).await
}

async fn create(server: &TestServer, entity: Value) {
    let reply = send(
        server,
        Method::POST,
        &format!("{NGSI}/entities"),
        JSON,
        Some(entity),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

fn relationship(object: &str) -> Value {
    json!({"type": "Relationship", "object": object})
}

fn property(value: Value) -> Value {
    json!({"type": "Property", "value": value})
}

/// Two shelters in Yaizu, the city, and the prefecture the city lies in.
async fn linked_server() -> TestServer {
    let server = server().await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Prefecture:22", "type": "Prefecture",
            "name": property(json!("静岡県"))}),
    )
    .await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:City:222127", "type": "City",
            "name": property(json!("焼津市")), "inPrefecture": relationship("urn:ngsi-ld:Prefecture:22")}),
    )
    .await;
    for n in 1..=2 {
        create(
            &server,
            json!({"id": format!("urn:ngsi-ld:Shelter:{n}"), "type": "Shelter",
                "capacity": property(json!(100 * n)), "inCity": relationship("urn:ngsi-ld:City:222127")}),
        )
        .await;
    }
    server
}

#[tokio::test]
async fn inline_joins_put_linked_entities_inside_relationships_level_by_level() {
    let server = linked_server().await;
    let one = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1?join=inline"),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let city = &one.body["inCity"]["entity"];
    assert_eq!(city["id"], "urn:ngsi-ld:City:222127");
    assert_eq!(city["name"]["value"], "焼津市");
    // One level by default: the city's own relationship is not followed.
    assert!(city["inPrefecture"].get("entity").is_none(), "{city}");

    let two = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1?join=inline&joinLevel=2&options=keyValues"),
    )
    .await;
    assert_eq!(
        two.body["inCity"]["inPrefecture"],
        json!({"id": "urn:ngsi-ld:Prefecture:22", "type": "Prefecture", "name": "静岡県"})
    );
}

#[tokio::test]
async fn flat_joins_append_each_linked_entity_once() {
    let server = linked_server().await;
    let retrieved = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1?join=flat&joinLevel=2"),
    )
    .await;
    let ids: Vec<&str> = retrieved
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "urn:ngsi-ld:Shelter:1",
            "urn:ngsi-ld:City:222127",
            "urn:ngsi-ld:Prefecture:22"
        ]
    );
    // Both shelters link to the same city: it is listed once, after the results.
    let queried = get(&server, &format!("{NGSI}/entities?type=Shelter&join=flat")).await;
    let ids: Vec<&str> = queried
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "urn:ngsi-ld:Shelter:1",
            "urn:ngsi-ld:Shelter:2",
            "urn:ngsi-ld:City:222127"
        ]
    );
    // A link to nothing leaves the entity alone, not in a list.
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Shelter:9", "type": "Shelter",
            "inCity": relationship("urn:ngsi-ld:City:nowhere")}),
    )
    .await;
    let alone = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:9?join=flat"),
    )
    .await;
    assert_eq!(alone.body["id"], "urn:ngsi-ld:Shelter:9");
    let bad = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:9?join=deep"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn pick_and_omit_reach_core_members_and_linked_entities() {
    let server = linked_server().await;
    let picked = get(
        &server,
        &format!(
            "{NGSI}/entities/urn:ngsi-ld:Shelter:1?join=inline&joinLevel=2&pick=id,inCity{{name,inPrefecture{{id}}}}"
        ),
    )
    .await;
    assert_eq!(picked.status, StatusCode::OK, "{}", picked.body);
    assert_eq!(
        picked.body,
        json!({
            "id": "urn:ngsi-ld:Shelter:1",
            "inCity": {"type": "Relationship", "object": "urn:ngsi-ld:City:222127", "entity": {
                "name": {"type": "Property", "value": "焼津市"},
                "inPrefecture": {"type": "Relationship", "object": "urn:ngsi-ld:Prefecture:22",
                    "entity": {"id": "urn:ngsi-ld:Prefecture:22"}}
            }}
        })
    );
    let omitted = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1?join=inline&omit=type,inCity{{name}}"),
    )
    .await;
    assert!(omitted.body.get("type").is_none());
    assert_eq!(omitted.body["id"], "urn:ngsi-ld:Shelter:1");
    let city = &omitted.body["inCity"]["entity"];
    assert!(
        city.get("name").is_none() && city["type"] == "City",
        "{city}"
    );
    // In a query, an entity that pick leaves empty is not listed.
    let queried = get(
        &server,
        &format!("{NGSI}/entities?type=City,Shelter&pick=name"),
    )
    .await;
    assert_eq!(
        queried.body,
        json!([{"name": {"type": "Property", "value": "焼津市"}}])
    );
}

#[tokio::test]
async fn a_retrieve_that_leaves_nothing_to_show_is_not_found() {
    let server = linked_server().await;
    for query in [
        "pick=unknown",
        "omit=id,type,capacity,inCity",
        "attrs=unknown",
    ] {
        let reply = get(
            &server,
            &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1?{query}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{query}");
        assert_eq!(reply.body["type"], RESOURCE_NOT_FOUND, "{query}");
    }
    let ids_only = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1?pick=id"),
    )
    .await;
    assert_eq!(ids_only.body, json!({"id": "urn:ngsi-ld:Shelter:1"}));
}

#[tokio::test]
async fn dataset_ids_choose_the_instances_shown() {
    let server = server().await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Sign:1", "type": "Sign", "name": [
            property(json!("焼津")),
            {"type": "Property", "value": "Yaizu", "datasetId": "urn:ngsi-ld:Dataset:en"},
            {"type": "Property", "value": "Yaizu-shi", "datasetId": "urn:ngsi-ld:Dataset:romaji"}
        ]}),
    )
    .await;
    let names = |reply: &Reply| -> Vec<Value> {
        match &reply.body[0]["name"] {
            Value::Array(items) => items.iter().map(|i| i["value"].clone()).collect(),
            Value::Null => vec![],
            one => vec![one["value"].clone()],
        }
    };
    let base = format!("{NGSI}/entities?type=Sign");
    let english = get(&server, &format!("{base}&datasetId=urn:ngsi-ld:Dataset:en")).await;
    assert_eq!(names(&english), [json!("Yaizu")]);
    let default = get(&server, &format!("{base}&datasetId=@none")).await;
    assert_eq!(names(&default), [json!("焼津")]);
    let two = get(
        &server,
        &format!("{base}&datasetId=urn:ngsi-ld:Dataset:en,urn:ngsi-ld:Dataset:romaji"),
    )
    .await;
    assert_eq!(names(&two), [json!("Yaizu"), json!("Yaizu-shi")]);
    // No instance left: the entity is still listed, without the attribute.
    let none = get(
        &server,
        &format!("{base}&attrs=name&datasetId=urn:ngsi-ld:Dataset:fr"),
    )
    .await;
    assert_eq!(
        none.body,
        json!([{"id": "urn:ngsi-ld:Sign:1", "type": "Sign"}])
    );
}

#[tokio::test]
async fn geojson_answers_carry_their_context_in_the_body() {
    let server = server().await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter",
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [138.3, 34.8]}}}),
    )
    .await;
    let geo = "application/geo+json";
    let one = send(
        &server,
        Method::GET,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1"),
        geo,
        None,
    )
    .await;
    assert_eq!(one.body["type"], "Feature");
    assert_eq!(one.body["@context"], CORE_CONTEXT);
    let many = send(
        &server,
        Method::GET,
        &format!("{NGSI}/entities?type=Shelter"),
        geo,
        None,
    )
    .await;
    assert_eq!(many.body["type"], "FeatureCollection");
    assert_eq!(many.body["@context"], CORE_CONTEXT);
    let posted = send(
        &server,
        Method::POST,
        &format!("{NGSI}/entityOperations/query"),
        geo,
        Some(json!({"type": "Query", "entities": [{"type": "Shelter"}]})),
    )
    .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    assert_eq!(posted.body["features"][0]["geometry"]["type"], "Point");
    assert_eq!(posted.body["@context"], CORE_CONTEXT);
}

#[tokio::test]
async fn query_documents_join_and_need_a_selector() {
    let server = linked_server().await;
    let joined = send(
        &server,
        Method::POST,
        &format!("{NGSI}/entityOperations/query"),
        JSON,
        Some(json!({"type": "Query", "entities": [{"type": "Shelter"}],
            "join": "inline", "joinLevel": 1})),
    )
    .await;
    assert_eq!(
        joined.body[0]["inCity"]["entity"]["id"],
        "urn:ngsi-ld:City:222127"
    );
    let empty = send(
        &server,
        Method::POST,
        &format!("{NGSI}/entityOperations/query"),
        JSON,
        Some(json!({"type": "Query"})),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.body["type"], BAD_REQUEST_DATA);
}

#[tokio::test]
async fn any_language_shows_one_text_as_a_property() {
    let server = server().await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter",
            "label": {"type": "LanguageProperty", "languageMap": {"ja": "中港タワー", "en": "Nakaminato Tower"}}}),
    )
    .await;
    let any = get(
        &server,
        &format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1?lang=*"),
    )
    .await;
    assert_eq!(any.body["label"]["type"], "Property");
    assert!(any.body["label"]["lang"].is_string(), "{}", any.body);
}

#[tokio::test]
async fn malformed_consumption_requests_are_refused_with_the_right_problem() {
    let server = linked_server().await;
    let entity = format!("{NGSI}/entities/urn:ngsi-ld:Shelter:1");
    for (path, problem) in [
        (format!("{entity}?pick=id;name"), BAD_REQUEST_DATA),
        (format!("{entity}?pick=id,inCity{{name"), BAD_REQUEST_DATA),
        (
            format!("{entity}?pick=id,inCity{{{{name}}"),
            BAD_REQUEST_DATA,
        ),
        (format!("{entity}?pick=id,,name"), BAD_REQUEST_DATA),
        (format!("{entity}?pick=id,inCity{{}}"), BAD_REQUEST_DATA),
        (
            format!("{entity}?pick=name&attrs=capacity"),
            BAD_REQUEST_DATA,
        ),
        (
            format!("{entity}?omit=name&attrs=capacity"),
            BAD_REQUEST_DATA,
        ),
        (format!("{entity}?pick=name&omit=name"), BAD_REQUEST_DATA),
        (format!("{entity}?format=fancy"), INVALID_REQUEST),
        (format!("{entity}?options=keyValues,fancy"), INVALID_REQUEST),
        (format!("{NGSI}/entities?attrs=id,type"), BAD_REQUEST_DATA),
        (
            format!("{NGSI}/entities?type=Shelter&idPattern=shelter**"),
            BAD_REQUEST_DATA,
        ),
        (
            format!("{NGSI}/entities?id=urn:ngsi-ld:Shelter:1"),
            BAD_REQUEST_DATA,
        ),
    ] {
        let reply = get(&server, &path).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.body["type"], problem, "{path}");
    }
    // A lazy quantifier is a valid pattern; a local query needs no selector.
    let lazy = get(
        &server,
        &format!("{NGSI}/entities?type=Shelter&idPattern=Shelter.*?1"),
    )
    .await;
    assert_eq!(lazy.body.as_array().map(Vec::len), Some(1));
    let local = get(&server, &format!("{NGSI}/entities?local=true")).await;
    assert_eq!(local.body.as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn form_encoded_spaces_in_coordinates_are_understood() {
    let server = server().await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter",
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [138.3, 34.8]}}}),
    )
    .await;
    let reply = get(
        &server,
        &format!(
            "{NGSI}/entities?type=Shelter&georel=equals&geometry=Point&coordinates=%5B138.3%2C+34.8%5D"
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn form_encoded_spaces_in_quoted_q_strings_are_understood() {
    let server = server().await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter",
            "name": property(json!("Nakaminato Tower"))}),
    )
    .await;
    create(
        &server,
        json!({"id": "urn:ngsi-ld:Shelter:2", "type": "Shelter",
            "name": property(json!("C++ Hall"))}),
    )
    .await;
    let spaced = get(
        &server,
        &format!("{NGSI}/entities?q=name%3D%3D%22Nakaminato+Tower%22"),
    )
    .await;
    assert_eq!(
        spaced.body[0]["id"], "urn:ngsi-ld:Shelter:1",
        "{}",
        spaced.body
    );
    // A plus written %2B is still a plus.
    let plus = get(
        &server,
        &format!("{NGSI}/entities?q=name%3D%3D%22C%2B%2B+Hall%22"),
    )
    .await;
    assert_eq!(plus.body[0]["id"], "urn:ngsi-ld:Shelter:2", "{}", plus.body);
}
