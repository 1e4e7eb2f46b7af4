//! Subscriptions through the HTTP face, with notifications delivered for real: to an
//! HTTP receiver the test runs, and to the Mosquitto broker on 127.0.0.1:1883
//! (`scripts/ensure-mosquitto` starts it). Tests wait for notifications with a
//! deadline and assert on what arrived, never on how long it took.

mod common;

use axum::http::{Method, StatusCode};
use common::receiver::Receiver;
use common::*;
use serde_json::{json, Value};

const TENANT: &str = "222127";

fn river(id: &str, level: f64) -> Value {
    json!({"id": id, "type": "RiverLevel", "level": {"type": "Property", "value": level}})
}

async fn subscribe(s: &TestServer, body: Value) -> String {
    let reply = s
        .send(
            Method::POST,
            &format!("{NGSI}/subscriptions"),
            &[("NGSILD-Tenant", TENANT)],
            Some(body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn write(s: &TestServer, method: Method, path: &str, body: Option<Value>) {
    let reply = s
        .send(
            method,
            &format!("{NGSI}{path}"),
            &[("NGSILD-Tenant", TENANT)],
            body,
        )
        .await;
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);
}

#[tokio::test]
async fn subscriptions_are_created_read_updated_listed_and_deleted() {
    let s = server().await;
    let body = json!({
        "id": "urn:ngsi-ld:Subscription:rivers",
        "type": "Subscription",
        "entities": [{"type": "RiverLevel"}],
        "watchedAttributes": ["level"],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}}
    });
    let id = subscribe(&s, body.clone()).await;
    assert_eq!(id, "urn:ngsi-ld:Subscription:rivers");
    let again = s
        .send(
            Method::POST,
            &format!("{NGSI}/subscriptions"),
            &[("NGSILD-Tenant", TENANT)],
            Some(body),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let path = format!("{NGSI}/subscriptions/{id}");
    let got = s
        .send(Method::GET, &path, &[("NGSILD-Tenant", TENANT)], None)
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["id"], id);
    assert_eq!(got.body["entities"][0]["type"], "RiverLevel");
    assert_eq!(got.body["watchedAttributes"][0], "level");
    // ETSI's suite expects isActive shown only when false; the status says it.
    assert_eq!(got.body["status"], "active", "{}", got.body);

    let paused = s
        .send(
            Method::PATCH,
            &path,
            &[("NGSILD-Tenant", TENANT)],
            Some(json!({"isActive": false})),
        )
        .await;
    assert_eq!(paused.status, StatusCode::NO_CONTENT, "{}", paused.body);
    let got = s
        .send(Method::GET, &path, &[("NGSILD-Tenant", TENANT)], None)
        .await;
    assert_eq!(got.body["isActive"], false);
    assert_eq!(got.body["status"], "paused");

    let listed = s
        .send(
            Method::GET,
            &format!("{NGSI}/subscriptions?count=true"),
            &[("NGSILD-Tenant", TENANT)],
            None,
        )
        .await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
    assert_eq!(listed.header("NGSILD-Results-Count"), Some("1"));
    // Another tenant sees none of them.
    let other = s
        .send(
            Method::GET,
            &format!("{NGSI}/subscriptions"),
            &[("NGSILD-Tenant", "221309")],
            None,
        )
        .await;
    assert_eq!(other.body, json!([]));

    assert_eq!(
        s.send(Method::DELETE, &path, &[("NGSILD-Tenant", TENANT)], None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.send(Method::GET, &path, &[("NGSILD-Tenant", TENANT)], None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.send(Method::DELETE, &path, &[("NGSILD-Tenant", TENANT)], None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_malformed_subscription_is_refused_with_the_member_named() {
    let s = server().await;
    for (body, member) in [
        (
            json!({"type": "Subscription", "entities": [{"type": "RiverLevel"}]}),
            "notification",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "RiverLevel"}], "notification": {"endpoint": {"uri": "not a uri"}}}),
            "uri",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "RiverLevel"}], "throttling": -1, "notification": {"endpoint": {"uri": "http://x/"}}}),
            "throttling",
        ),
    ] {
        let reply = s
            .send(
                Method::POST,
                &format!("{NGSI}/subscriptions"),
                &[("NGSILD-Tenant", TENANT)],
                Some(body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert!(
            reply.body["detail"].as_str().unwrap_or("").contains(member),
            "{member}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn changes_are_notified_over_http_in_order_with_link_and_tenant() {
    let s = server().await.deliver();
    let receiver = Receiver::start().await;
    let id = subscribe(&s, json!({
        "type": "Subscription",
        "entities": [{"type": "RiverLevel"}],
        "watchedAttributes": ["level"],
        "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json", "receiverInfo": [{"key": "X-Auth-Token", "value": "river-app"}]}}
    }))
    .await;
    write(
        &s,
        Method::POST,
        "/entities",
        Some(river("urn:ngsi-ld:RiverLevel:oi", 1.0)),
    )
    .await;
    for level in [2.0, 3.0, 4.0] {
        write(
            &s,
            Method::PATCH,
            "/entities/urn:ngsi-ld:RiverLevel:oi/attrs",
            Some(json!({"level": {"type": "Property", "value": level}})),
        )
        .await;
    }
    let received = receiver.wait_for(4).await;
    assert_eq!(received.len(), 4, "{received:?}");
    let levels: Vec<f64> = received
        .iter()
        .map(|(_, body)| body["data"][0]["level"]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(levels, [1.0, 2.0, 3.0, 4.0]);
    let (headers, body) = &received[0];
    assert_eq!(body["subscriptionId"], id);
    assert_eq!(body["type"], "Notification");
    assert_eq!(headers["ngsild-tenant"], TENANT);
    assert_eq!(headers["x-auth-token"], "river-app");
    assert!(headers["link"]
        .to_str()
        .unwrap()
        .contains("json-ld#context"));
    let got = s
        .send(
            Method::GET,
            &format!("{NGSI}/subscriptions/{id}"),
            &[("NGSILD-Tenant", TENANT)],
            None,
        )
        .await;
    assert_eq!(got.body["notification"]["timesSent"], 4, "{}", got.body);
}

#[tokio::test]
async fn a_receiver_that_is_down_for_a_while_gets_everything_in_order() {
    let s = server().await.deliver();
    let receiver = Receiver::start().await;
    receiver.fail_next(3);
    subscribe(
        &s,
        json!({
            "type": "Subscription",
            "entities": [{"type": "RiverLevel"}],
            "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}}
        }),
    )
    .await;
    write(
        &s,
        Method::POST,
        "/entities",
        Some(river("urn:ngsi-ld:RiverLevel:seto", 1.0)),
    )
    .await;
    for level in [2.0, 3.0] {
        write(
            &s,
            Method::PATCH,
            "/entities/urn:ngsi-ld:RiverLevel:seto/attrs",
            Some(json!({"level": {"type": "Property", "value": level}})),
        )
        .await;
    }
    let received = receiver.wait_for(3).await;
    assert_eq!(receiver.refused(), 3);
    let levels: Vec<f64> = received
        .iter()
        .map(|(_, body)| body["data"][0]["level"]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(levels, [1.0, 2.0, 3.0]);
}

#[tokio::test]
async fn a_dead_endpoint_never_holds_up_another_subscription() {
    let s = server().await.deliver();
    let receiver = Receiver::start().await;
    // Nothing listens on port 9 of loopback: every attempt fails at once and is retried.
    for uri in ["http://127.0.0.1:9/notify", receiver.url.as_str()] {
        subscribe(
            &s,
            json!({
                "type": "Subscription",
                "entities": [{"type": "RiverLevel"}],
                "notification": {"endpoint": {"uri": uri, "accept": "application/json"}}
            }),
        )
        .await;
    }
    for n in 0..5 {
        write(
            &s,
            Method::POST,
            "/entities",
            Some(river(&format!("urn:ngsi-ld:RiverLevel:{n}"), 1.0)),
        )
        .await;
    }
    assert_eq!(receiver.wait_for(5).await.len(), 5);
}

#[tokio::test]
async fn changes_are_published_to_mqtt() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let s = server().await.deliver();
    let topic = format!("renkei/test/{}", uuid::Uuid::new_v4().simple());
    let mut options = MqttOptions::new(
        format!("renkei-test-{}", uuid::Uuid::new_v4().simple()),
        "127.0.0.1",
        1883,
    );
    options.set_keep_alive(std::time::Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 10);
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    // Wait for the broker to confirm the subscription before anything is published.
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
            break;
        }
    }
    subscribe(&s, json!({
        "type": "Subscription",
        "entities": [{"type": "RiverLevel"}],
        "notification": {"endpoint": {"uri": format!("mqtt://127.0.0.1:1883/{topic}"), "accept": "application/json",
            "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}]}}
    }))
    .await;
    write(
        &s,
        Method::POST,
        "/entities",
        Some(river("urn:ngsi-ld:RiverLevel:abe", 7.5)),
    )
    .await;
    let message = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            if let Event::Incoming(Packet::Publish(publish)) = events.poll().await.unwrap() {
                return publish;
            }
        }
    })
    .await
    .expect("a notification arrives over MQTT");
    assert_eq!(message.topic, topic);
    let payload: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(
        payload["body"]["data"][0]["level"]["value"], 7.5,
        "{payload}"
    );
    assert_eq!(payload["metadata"]["NGSILD-Tenant"], TENANT, "{payload}");
}

/// Two nodes on one PostgreSQL, both dispatching and delivering: every change is
/// notified, each notification once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_deliver_each_notification_once_in_order() {
    let mut config = server::config::Config {
        allow_anonymous_writes: true,
        ..Default::default()
    };
    config.rate_limits.writes_per_second = 0;
    let first = server_on(Backend::Postgres, config).await;
    let second = first.another_node().await.deliver();
    let first = first.deliver();
    let receiver = Receiver::start().await;
    subscribe(
        &first,
        json!({
            "type": "Subscription",
            "entities": [{"type": "RiverLevel"}],
            "watchedAttributes": ["level"],
            "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}}
        }),
    )
    .await;
    write(
        &first,
        Method::POST,
        "/entities",
        Some(river("urn:ngsi-ld:RiverLevel:fuji", 0.0)),
    )
    .await;
    // Changes arrive through both nodes, alternating.
    for n in 1..=40 {
        let node = if n % 2 == 0 { &first } else { &second };
        let patch = json!({"level": {"type": "Property", "value": n as f64}});
        write(
            node,
            Method::PATCH,
            "/entities/urn:ngsi-ld:RiverLevel:fuji/attrs",
            Some(patch),
        )
        .await;
    }
    let received = receiver.wait_for(41).await;
    // Give a duplicate, if any, the time to arrive before counting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let levels: Vec<f64> = receiver
        .received()
        .iter()
        .map(|(_, body)| body["data"][0]["level"]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(received.len(), 41);
    assert_eq!(levels, (0..=40).map(f64::from).collect::<Vec<_>>());
}

/// `timeInterval`: the covered entities are notified periodically, without changes.
#[tokio::test]
async fn periodic_subscriptions_notify_every_interval_without_changes() {
    let s = server().await.deliver();
    let receiver = Receiver::start().await;
    write(
        &s,
        Method::POST,
        "/entities",
        Some(river("urn:ngsi-ld:RiverLevel:tenryu", 2.5)),
    )
    .await;
    write(
        &s,
        Method::POST,
        "/entities",
        Some(json!({"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter"})),
    )
    .await;
    subscribe(
        &s,
        json!({
            "type": "Subscription",
            "entities": [{"type": "RiverLevel"}],
            "timeInterval": 1,
            "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}}
        }),
    )
    .await;
    let received = receiver.wait_for(2).await;
    assert!(received.len() >= 2, "{received:?}");
    for (_, body) in &received[..2] {
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "only the river, not the shelter: {body}");
        assert_eq!(data[0]["level"]["value"], 2.5);
    }
}

/// `notification.join`: linked entities flat beside the notified one, or inline in the
/// Relationship that names them.
#[tokio::test]
async fn joins_put_linked_entities_into_notifications() {
    let s = server().await.deliver();
    let flat = Receiver::start().await;
    let inline = Receiver::start().await;
    write(&s, Method::POST, "/entities", Some(json!({"id": "urn:ngsi-ld:River:oi", "type": "River", "name": {"type": "Property", "value": "大井川"}}))).await;
    let gauge = json!({"id": "urn:ngsi-ld:RiverLevel:g1", "type": "RiverLevel",
        "level": {"type": "Property", "value": 1.0},
        "river": {"type": "Relationship", "object": "urn:ngsi-ld:River:oi"}});
    for (receiver, join) in [(&flat, "flat"), (&inline, "inline")] {
        subscribe(&s, json!({
            "type": "Subscription",
            "entities": [{"type": "RiverLevel"}],
            "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}, "join": join}
        }))
        .await;
    }
    write(&s, Method::POST, "/entities", Some(gauge)).await;
    let got = flat.wait_for(1).await;
    let data = got[0].1["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{data:?}");
    assert_eq!(data[1]["id"], "urn:ngsi-ld:River:oi");
    let got = inline.wait_for(1).await;
    let data = got[0].1["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["river"]["entity"]["name"]["value"], "大井川");
}
