//! The temporal API through the HTTP face, on SQLite and on PostgreSQL: history
//! recorded by ordinary entity writes, temporal entities created and edited, the
//! normalized, simplified and aggregated forms, pagination with Content-Range, and
//! temporal queries.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{json, Value};

const TENANT: &str = "222127";
const RIVER: &str = "urn:ngsi-ld:RiverLevel:oigawa";

async fn call(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
    s.send(
        method,
        &format!("{NGSI}{path}"),
        &[("NGSILD-Tenant", TENANT)],
        body,
    )
    .await
}

async fn ok(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
    let reply = call(s, method, path, body).await;
    assert!(
        reply.status.is_success(),
        "{path}: {} {}",
        reply.status,
        reply.body
    );
    reply
}

fn level(value: f64, observed: &str) -> Value {
    json!({"type": "Property", "value": value, "observedAt": observed})
}

/// A temporal entity with `levels` observed at the given times.
fn river_history(levels: &[(f64, &str)]) -> Value {
    let instances: Vec<Value> = levels.iter().map(|(v, t)| level(*v, t)).collect();
    json!({"id": RIVER, "type": "RiverLevel", "level": instances})
}

fn values(body: &Value) -> Vec<f64> {
    body["level"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["value"].as_f64()).collect())
        .unwrap_or_default()
}

async fn on_both(scenario: impl AsyncFn(TestServer)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut config = server::config::Config {
            allow_anonymous_writes: true,
            temporal_instance_limit: 5,
            ..Default::default()
        };
        config.rate_limits.writes_per_second = 0;
        scenario(server_on(backend, config).await).await;
    }
}

#[tokio::test]
async fn entity_writes_are_kept_as_history() {
    on_both(async |s| {
        let entity = json!({"id": RIVER, "type": "RiverLevel", "level": level(1.0, "2026-06-01T00:00:00Z")});
        ok(&s, Method::POST, "/entities", Some(entity)).await;
        for (value, at) in [(2.5, "2026-06-01T01:00:00Z"), (3.5, "2026-06-01T02:00:00Z")] {
            let patch = json!({"level": level(value, at)});
            ok(&s, Method::PATCH, &format!("/entities/{RIVER}/attrs"), Some(patch)).await;
        }
        let history = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}"), None).await;
        assert_eq!(values(&history.body), vec![1.0, 2.5, 3.5]);
        assert_eq!(history.body["type"], "RiverLevel");
        let ids: Vec<&str> = history.body["level"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["instanceId"].as_str())
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|id| id.starts_with("urn:ngsi-ld:AttributeInstance:")));

        let last = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}?lastN=1"), None).await;
        assert_eq!(values(&last.body), vec![3.5]);
        let simplified = ok(
            &s,
            Method::GET,
            &format!("/temporal/entities/{RIVER}?options=temporalValues&timerel=after&timeAt=2026-06-01T01:00:00Z"),
            None,
        )
        .await;
        assert_eq!(
            simplified.body["level"]["values"],
            json!([[2.5, "2026-06-01T01:00:00Z"], [3.5, "2026-06-01T02:00:00Z"]])
        );
        // A deleted attribute leaves a record with deletedAt.
        ok(&s, Method::DELETE, &format!("/entities/{RIVER}/attrs/level"), None).await;
        let deleted = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}?timeproperty=deletedAt"), None).await;
        let records = deleted.body["level"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{}", deleted.body);
        assert_eq!(records[0]["value"], "urn:ngsi-ld:null");
        assert!(records[0]["deletedAt"].is_string());
    })
    .await;
}

#[tokio::test]
async fn temporal_entities_are_created_edited_and_deleted() {
    on_both(async |s| {
        let body = river_history(&[(3.0, "2026-06-01T02:00:00Z"), (1.0, "2026-06-01T00:00:00Z")]);
        let created = ok(&s, Method::POST, "/temporal/entities", Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert_eq!(created.header("location"), Some(&*format!("/ngsi-ld/v1/temporal/entities/{RIVER}")));
        // The entity holds the latest observation.
        let current = ok(&s, Method::GET, &format!("/entities/{RIVER}"), None).await;
        assert_eq!(current.body["level"]["value"], 3.0);
        let again = river_history(&[(2.0, "2026-06-01T01:00:00Z")]);
        let updated = ok(&s, Method::POST, "/temporal/entities", Some(again)).await;
        assert_eq!(updated.status, StatusCode::NO_CONTENT);
        let added = json!({"flow": {"type": "Property", "value": 40, "observedAt": "2026-06-01T01:30:00Z"}});
        ok(&s, Method::POST, &format!("/temporal/entities/{RIVER}/attrs"), Some(added)).await;

        let history = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}"), None).await;
        assert_eq!(values(&history.body), vec![1.0, 2.0, 3.0]);
        assert_eq!(history.body["flow"][0]["value"], 40);
        let middle = history.body["level"][1]["instanceId"].as_str().unwrap().to_owned();
        let change = json!({"level": {"type": "Property", "value": 2.25, "observedAt": "2026-06-01T01:00:00Z"}});
        let instance = format!("/temporal/entities/{RIVER}/attrs/level/{middle}");
        ok(&s, Method::PATCH, &instance, Some(change)).await;
        let history = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}"), None).await;
        assert_eq!(values(&history.body), vec![1.0, 2.25, 3.0]);
        // The instance may also be sent bare, without the attribute's name around it.
        let bare = json!({"type": "Property", "value": 2.5, "observedAt": "2026-06-01T01:00:00Z"});
        ok(&s, Method::PATCH, &instance, Some(bare)).await;
        let history = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}"), None).await;
        assert_eq!(values(&history.body), vec![1.0, 2.5, 3.0]);
        // What a patch leaves out stays: here the observation time.
        let value_only = json!({"type": "Property", "value": 2.75});
        ok(&s, Method::PATCH, &instance, Some(value_only)).await;
        let history = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}"), None).await;
        assert_eq!(values(&history.body), vec![1.0, 2.75, 3.0]);
        assert_eq!(history.body["level"][1]["observedAt"], "2026-06-01T01:00:00Z");
        ok(&s, Method::DELETE, &instance, None).await;
        assert_eq!(call(&s, Method::DELETE, &instance, None).await.status, StatusCode::NOT_FOUND);
        ok(&s, Method::DELETE, &format!("/temporal/entities/{RIVER}/attrs/flow"), None).await;
        let history = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}"), None).await;
        assert_eq!(values(&history.body), vec![1.0, 3.0]);
        assert!(history.body.get("flow").is_none(), "{}", history.body);

        ok(&s, Method::DELETE, &format!("/temporal/entities/{RIVER}"), None).await;
        for path in [format!("/temporal/entities/{RIVER}"), format!("/entities/{RIVER}")] {
            let gone = call(&s, Method::GET, &path, None).await;
            assert_eq!(gone.status, StatusCode::NOT_FOUND, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn aggregations_give_the_same_answer_from_rollups_and_from_instances() {
    on_both(async |s| {
        let observations = [
            (1.0, "2026-06-01T00:10:00Z"),
            (3.0, "2026-06-01T00:50:00Z"),
            (10.0, "2026-06-01T01:20:00Z"),
            (7.0, "2026-06-01T03:05:00Z"),
        ];
        ok(&s, Method::POST, "/temporal/entities", Some(river_history(&observations))).await;
        let ask = |start: &str| {
            format!(
                "/temporal/entities/{RIVER}?options=aggregatedValues&aggrMethods=totalCount,sum,avg,min,max&aggrPeriodDuration=PT1H&timerel=between&timeAt={start}&endTimeAt=2026-06-02T00:00:00Z"
            )
        };
        // A window on a whole hour is answered from the hourly rollups.
        let hourly = ok(&s, Method::GET, &ask("2026-06-01T00:00:00Z"), None).await;
        let level = &hourly.body["level"];
        assert_eq!(level["type"], "Property");
        assert_eq!(
            level["sum"],
            json!([
                [4.0, "2026-06-01T00:00:00Z", "2026-06-01T01:00:00Z"],
                [10.0, "2026-06-01T01:00:00Z", "2026-06-01T02:00:00Z"],
                [7.0, "2026-06-01T03:00:00Z", "2026-06-01T04:00:00Z"]
            ])
        );
        assert_eq!(level["avg"][0][0], 2.0);
        assert_eq!(level["totalCount"][0][0], 2);
        assert_eq!((level["min"][0][0].clone(), level["max"][0][0].clone()), (json!(1.0), json!(3.0)));
        // A window starting mid-hour is aggregated from the instances.
        let shifted = ok(&s, Method::GET, &ask("2026-06-01T00:30:00Z"), None).await;
        assert_eq!(
            shifted.body["level"]["sum"],
            json!([
                [13.0, "2026-06-01T00:30:00Z", "2026-06-01T01:30:00Z"],
                [7.0, "2026-06-01T02:30:00Z", "2026-06-01T03:30:00Z"]
            ])
        );
    })
    .await;
}

#[tokio::test]
async fn long_histories_come_in_pages_with_content_range() {
    on_both(async |s| {
        let times: Vec<String> = (0..12)
            .map(|h| format!("2026-06-01T{h:02}:00:00Z"))
            .collect();
        let observations: Vec<(f64, &str)> = times
            .iter()
            .enumerate()
            .map(|(i, t)| (i as f64, t.as_str()))
            .collect();
        ok(
            &s,
            Method::POST,
            "/temporal/entities",
            Some(river_history(&observations)),
        )
        .await;
        // The server cuts at 5 instances per series.
        let first = ok(
            &s,
            Method::GET,
            &format!("/temporal/entities/{RIVER}"),
            None,
        )
        .await;
        assert_eq!(first.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(values(&first.body), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            first.header("content-range"),
            Some("date-time 2026-06-01T00:00:00Z-2026-06-01T04:00:00Z/*")
        );
        let next = ok(
            &s,
            Method::GET,
            &format!("/temporal/entities/{RIVER}?timerel=after&timeAt=2026-06-01T05:00:00Z"),
            None,
        )
        .await;
        assert_eq!(values(&next.body), vec![5.0, 6.0, 7.0, 8.0, 9.0]);
        let last = ok(
            &s,
            Method::GET,
            &format!("/temporal/entities/{RIVER}?lastN=8"),
            None,
        )
        .await;
        assert_eq!(last.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(values(&last.body), vec![7.0, 8.0, 9.0, 10.0, 11.0]);
        assert_eq!(
            last.header("content-range"),
            Some("date-time 2026-06-01T11:00:00Z-2026-06-01T07:00:00Z/8")
        );
        // An aggregation is never cut, however many instances it reads.
        let path = format!("/temporal/entities/{RIVER}?options=aggregatedValues&aggrMethods=totalCount");
        let aggregated = ok(&s, Method::GET, &path, None).await;
        assert_eq!(aggregated.status, StatusCode::OK);
        assert_eq!(aggregated.body["level"]["totalCount"][0][0], 12);
        // A series entirely beyond the cut is shown empty, not left out.
        let late = json!({"flow": [{"type": "Property", "value": 1, "observedAt": "2026-06-02T00:00:00Z"}]});
        ok(&s, Method::POST, &format!("/temporal/entities/{RIVER}/attrs"), Some(late)).await;
        let cut = ok(&s, Method::GET, &format!("/temporal/entities/{RIVER}"), None).await;
        assert_eq!(cut.body["flow"], json!([]), "{}", cut.body);
        let path = format!("/temporal/entities/{RIVER}?options=temporalValues");
        let simplified = ok(&s, Method::GET, &path, None).await;
        assert_eq!(simplified.body["flow"], json!({"type": "Property", "values": []}));
        // In a query the cut holds for every entity: one whose history lies beyond it
        // is listed with its attributes empty.
        let later = json!({"id": "urn:ngsi-ld:RiverLevel:later", "type": "RiverLevel", "level": [level(9.0, "2026-06-03T00:00:00Z")]});
        ok(&s, Method::POST, "/temporal/entities", Some(later)).await;
        let both = ok(&s, Method::GET, "/temporal/entities?type=RiverLevel", None).await;
        assert_eq!(both.status, StatusCode::PARTIAL_CONTENT);
        let listed = both.body.as_array().unwrap();
        assert_eq!(listed.len(), 2, "{}", both.body);
        assert_eq!(listed[0]["level"], json!([]), "{}", both.body);
        assert_eq!(values(&listed[1]), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        let whole = ok(
            &s,
            Method::GET,
            &format!("/temporal/entities/{RIVER}?lastN=3"),
            None,
        )
        .await;
        assert_eq!(whole.status, StatusCode::OK);
        assert_eq!(whole.header("content-range"), None);
    })
    .await;
}

#[tokio::test]
async fn temporal_queries_select_entities_by_type_id_and_q() {
    on_both(async |s| {
        for (id, value) in [("urn:ngsi-ld:RiverLevel:a", 1.0), ("urn:ngsi-ld:RiverLevel:b", 5.0)] {
            let body = json!({"id": id, "type": "RiverLevel", "level": [level(value, "2026-06-01T00:00:00Z")]});
            ok(&s, Method::POST, "/temporal/entities", Some(body)).await;
        }
        let other = json!({"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter", "open": [{"type": "Property", "value": true, "observedAt": "2026-06-01T00:00:00Z"}]});
        ok(&s, Method::POST, "/temporal/entities", Some(other)).await;
        let ids = |reply: &Reply| -> Vec<String> {
            reply.body.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
        };
        let rivers = ok(&s, Method::GET, "/temporal/entities?type=RiverLevel&count=true", None).await;
        assert_eq!(ids(&rivers), vec!["urn:ngsi-ld:RiverLevel:a", "urn:ngsi-ld:RiverLevel:b"]);
        assert_eq!(rivers.header("NGSILD-Results-Count"), Some("2"));
        let high = ok(&s, Method::GET, "/temporal/entities?type=RiverLevel&q=level%3E3", None).await;
        assert_eq!(ids(&high), vec!["urn:ngsi-ld:RiverLevel:b"]);
        let query = json!({"type": "Query", "entities": [{"type": "Shelter"}], "temporalQ": {"timerel": "before", "timeAt": "2026-07-01T00:00:00Z"}});
        let shelters = ok(&s, Method::POST, "/temporal/entityOperations/query", Some(query)).await;
        assert_eq!(ids(&shelters), vec!["urn:ngsi-ld:Shelter:1"]);
        // Entities without history in the window are not listed.
        let later = ok(&s, Method::GET, "/temporal/entities?type=RiverLevel,Shelter&timerel=after&timeAt=2026-06-02T00:00:00Z", None).await;
        assert_eq!(ids(&later), Vec::<String>::new());
        // Ids only narrow a query; alone they select nothing (as for /entities).
        for path in ["/temporal/entities", "/temporal/entities?id=urn:ngsi-ld:RiverLevel:a"] {
            let unselective = call(&s, Method::GET, path, None).await;
            assert_eq!(unselective.status, StatusCode::BAD_REQUEST, "{path}");
        }
        // `format` names the form and wins over `options`, aggregation parameters and all.
        let simplified = ok(&s, Method::GET, "/temporal/entities?type=RiverLevel&format=temporalValues&options=aggregatedValues&aggrMethods=sum", None).await;
        assert_eq!(simplified.body[0]["level"]["values"], json!([[1.0, "2026-06-01T00:00:00Z"]]));
    })
    .await;
}

#[tokio::test]
async fn bad_temporal_requests_are_refused_with_the_reason() {
    let s = server().await;
    ok(
        &s,
        Method::POST,
        "/temporal/entities",
        Some(river_history(&[(1.0, "2026-06-01T00:00:00Z")])),
    )
    .await;
    let cases = [
        (
            format!("/temporal/entities/{RIVER}?timerel=during&timeAt=2026-06-01T00:00:00Z"),
            StatusCode::BAD_REQUEST,
            "timerel",
        ),
        (
            format!("/temporal/entities/{RIVER}?timerel=after"),
            StatusCode::BAD_REQUEST,
            "timeAt",
        ),
        (
            format!("/temporal/entities/{RIVER}?lastN=0"),
            StatusCode::BAD_REQUEST,
            "lastN",
        ),
        (
            format!("/temporal/entities/{RIVER}?options=aggregatedValues"),
            StatusCode::BAD_REQUEST,
            "aggrMethods",
        ),
        (
            format!("/temporal/entities/{RIVER}?options=colourful"),
            StatusCode::BAD_REQUEST,
            "colourful",
        ),
        (
            "/temporal/entities/urn:ngsi-ld:RiverLevel:none".to_owned(),
            StatusCode::NOT_FOUND,
            "none",
        ),
        (
            "/temporal/entities/not-an-iri".to_owned(),
            StatusCode::BAD_REQUEST,
            "not-an-iri",
        ),
    ];
    for (path, status, named) in cases {
        let reply = call(&s, Method::GET, &path, None).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(named), "{path}: {detail}");
    }
    let no_id = json!({"type": "RiverLevel", "level": [level(1.0, "2026-06-01T00:00:00Z")]});
    let reply = call(&s, Method::POST, "/temporal/entities", Some(no_id)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let empty = json!({"id": RIVER, "type": "RiverLevel", "level": []});
    let reply = call(&s, Method::POST, "/temporal/entities", Some(empty)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    // Refused writes left the stored history as it was.
    let history = ok(
        &s,
        Method::GET,
        &format!("/temporal/entities/{RIVER}"),
        None,
    )
    .await;
    assert_eq!(values(&history.body), vec![1.0]);
}
