//! Delivers notifications through the real Mosquitto on 127.0.0.1:1883 (started by
//! scripts/ensure-mosquitto) to a test subscriber on a topic of its own, for both protocol
//! versions and all QoS levels, and checks what deliver() says when no broker answers or
//! the connection to the broker breaks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use notifier::{Accept, DeliveryError, Endpoint, Notifier, NotifierConfig, Outgoing};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const BROKER_HOST: &str = "127.0.0.1";
const BROKER_PORT: u16 = 1883;
const CONTEXT: &str = "https://example.org/ngsi-ld/context.jsonld";
/// Guards against hangs only; nothing asserts on how long anything took.
const PATIENCE: Duration = Duration::from_secs(20);

/// Subscribes to a fresh topic; returns it and the payloads that arrive on it.
async fn subscriber() -> (String, mpsc::UnboundedReceiver<Value>) {
    let topic = format!("renkei-test/{}", uuid::Uuid::new_v4().simple());
    let client_id = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let mut options = MqttOptions::new(client_id, BROKER_HOST, BROKER_PORT);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    client
        .subscribe(topic.clone(), QoS::ExactlyOnce)
        .await
        .expect("queue subscribe");
    let (sender, received) = mpsc::unbounded_channel();
    let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        // Keeps the client alive for as long as the loop runs.
        let _client = client;
        let mut subscribed = Some(subscribed);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let payload = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
                    if sender.send(payload).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(err) => panic!("test subscriber lost Mosquitto on {BROKER_HOST}:{BROKER_PORT} (run scripts/ensure-mosquitto): {err}"),
            }
        }
    });
    tokio::time::timeout(PATIENCE, is_subscribed)
        .await
        .expect("SUBACK from Mosquitto (run scripts/ensure-mosquitto)")
        .expect("subscriber running");
    (topic, received)
}

async fn next_message(received: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(PATIENCE, received.recv())
        .await
        .expect("a message on the topic")
        .expect("subscriber running")
}

fn notifier() -> Notifier {
    Notifier::new(NotifierConfig {
        mqtt_timeout: Duration::from_secs(5),
        ..NotifierConfig::default()
    })
    .expect("notifier")
}

fn endpoint(uri: &str, accept: Accept, notifier_info: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        uri: uri.parse().expect("endpoint URI"),
        accept,
        receiver_info: vec![(
            "test-receiver-key".to_owned(),
            "test-receiver-info".to_owned(),
        )],
        notifier_info: notifier_info
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

fn notification(n: u32) -> Value {
    json!({
        "id": format!("urn:ngsi-ld:Notification:{n}"),
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:1",
        "notifiedAt": "2026-01-01T00:00:00.000Z",
        "data": [{"id": "urn:ngsi-ld:Building:1", "type": "Building"}]
    })
}

/// Delivers one JSON notification with the given notifierInfo and checks the message shape.
async fn delivers_with(notifier_info: &[(&str, &str)]) {
    let (topic, mut received) = subscriber().await;
    let notification = notification(1);
    let endpoint = endpoint(
        &format!("mqtt://{BROKER_HOST}/{topic}"),
        Accept::Json,
        notifier_info,
    );
    notifier()
        .deliver(
            &endpoint,
            Outgoing {
                notification: &notification,
                context_url: CONTEXT,
                tenant: Some("kyoto"),
            },
        )
        .await
        .expect("delivered");

    let message = next_message(&mut received).await;
    let metadata = &message["metadata"];
    assert_eq!(metadata["Content-Type"], json!("application/json"));
    assert_eq!(
        metadata["Link"],
        json!(format!(
            "<{CONTEXT}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
        ))
    );
    assert_eq!(metadata["NGSILD-Tenant"], json!("kyoto"));
    assert_eq!(metadata["test-receiver-key"], json!("test-receiver-info"));
    assert_eq!(message["body"], notification);
    assert_eq!(message.as_object().map(|members| members.len()), Some(2));
}

#[tokio::test]
async fn mqtt_3_1_1_qos_0_by_default() {
    delivers_with(&[]).await;
}

#[tokio::test]
async fn mqtt_3_1_1_qos_1() {
    delivers_with(&[("MQTT-Version", "mqtt3.1.1"), ("MQTT-QoS", "1")]).await;
}

#[tokio::test]
async fn mqtt_3_1_1_qos_2() {
    delivers_with(&[("MQTT-QoS", "2")]).await;
}

#[tokio::test]
async fn mqtt_5_qos_0() {
    delivers_with(&[("MQTT-Version", "mqtt5.0")]).await;
}

#[tokio::test]
async fn mqtt_5_qos_1() {
    delivers_with(&[("MQTT-Version", "mqtt5.0"), ("MQTT-QoS", "1")]).await;
}

#[tokio::test]
async fn mqtt_5_qos_2() {
    delivers_with(&[("MQTT-Version", "mqtt5.0"), ("MQTT-QoS", "2")]).await;
}

#[tokio::test]
async fn json_ld_message_carries_the_context_in_the_body_and_no_link() {
    let (topic, mut received) = subscriber().await;
    let notification = notification(1);
    let endpoint = endpoint(
        &format!("mqtt://{BROKER_HOST}:{BROKER_PORT}/{topic}"),
        Accept::JsonLd,
        &[("MQTT-QoS", "1")],
    );
    notifier()
        .deliver(
            &endpoint,
            Outgoing {
                notification: &notification,
                context_url: CONTEXT,
                tenant: None,
            },
        )
        .await
        .expect("delivered");
    let message = next_message(&mut received).await;
    assert_eq!(
        message["metadata"]["Content-Type"],
        json!("application/ld+json")
    );
    assert!(message["metadata"].get("Link").is_none());
    assert!(message["metadata"].get("NGSILD-Tenant").is_none());
    assert_eq!(message["body"]["@context"], json!(CONTEXT));
    assert_eq!(message["body"]["data"][0]["@context"], json!(CONTEXT));
    assert_eq!(message["body"]["id"], notification["id"]);
}

#[tokio::test]
async fn concurrent_deliveries_share_one_connection_and_all_arrive() {
    let (topic, mut received) = subscriber().await;
    let notifier = notifier();
    for version in ["mqtt3.1.1", "mqtt5.0"] {
        let endpoint = endpoint(
            &format!("mqtt://{BROKER_HOST}/{topic}"),
            Accept::Json,
            &[("MQTT-Version", version), ("MQTT-QoS", "1")],
        );
        let notifications: Vec<Value> = (0..50).map(notification).collect();
        let mut deliveries = tokio::task::JoinSet::new();
        for notification in notifications.clone() {
            let notifier = notifier.clone();
            let endpoint = endpoint.clone();
            deliveries.spawn(async move {
                notifier
                    .deliver(
                        &endpoint,
                        Outgoing {
                            notification: &notification,
                            context_url: CONTEXT,
                            tenant: None,
                        },
                    )
                    .await
            });
        }
        while let Some(outcome) = deliveries.join_next().await {
            outcome.expect("delivery task").expect("delivered");
        }
        let mut ids = Vec::new();
        for _ in 0..notifications.len() {
            let message = next_message(&mut received).await;
            ids.push(
                message["body"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        ids.sort();
        let mut expected: Vec<String> = notifications
            .iter()
            .map(|notification| notification["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        expected.sort();
        assert_eq!(ids, expected, "{version}");
    }
    // One connection per protocol version.
    assert_eq!(notifier.cached_mqtt_connections(), 2);
}

#[tokio::test]
async fn unreachable_broker_is_an_error_not_a_hang() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let notification = notification(1);
    for version in ["mqtt3.1.1", "mqtt5.0"] {
        let endpoint = endpoint(
            &format!("mqtt://127.0.0.1:{port}/renkei-test/nowhere"),
            Accept::Json,
            &[("MQTT-Version", version), ("MQTT-QoS", "1")],
        );
        let outcome = notifier()
            .deliver(
                &endpoint,
                Outgoing {
                    notification: &notification,
                    context_url: CONTEXT,
                    tenant: None,
                },
            )
            .await;
        assert!(
            matches!(outcome, Err(DeliveryError::Unreachable(_))),
            "{version}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn bad_notifier_info_or_topic_is_an_invalid_endpoint() {
    let notification = notification(1);
    let outgoing = Outgoing {
        notification: &notification,
        context_url: CONTEXT,
        tenant: None,
    };
    let notifier = notifier();
    for (uri, info) in [
        ("mqtt://127.0.0.1/topic", ("MQTT-QoS", "3")),
        ("mqtt://127.0.0.1/topic", ("MQTT-Version", "mqtt4")),
        ("mqtt://127.0.0.1/", ("MQTT-QoS", "0")),
        ("mqtt://127.0.0.1/a/%23", ("MQTT-QoS", "0")),
    ] {
        let outcome = notifier
            .deliver(&endpoint(uri, Accept::Json, &[info]), outgoing)
            .await;
        assert!(
            matches!(outcome, Err(DeliveryError::InvalidEndpoint(_))),
            "{uri} {info:?}: {outcome:?}"
        );
    }
    assert_eq!(notifier.cached_mqtt_connections(), 0);
}

/// A TCP relay to Mosquitto whose connections can be cut, standing in for a broker that
/// goes away and comes back.
struct Relay {
    port: u16,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let tracked = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relayed = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect((BROKER_HOST, BROKER_PORT)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked
                    .lock()
                    .expect("relay lock")
                    .push(relayed.abort_handle());
            }
        });
        Relay { port, connections }
    }

    /// Drops every relayed connection (both sockets close), as a broker restart would.
    fn cut(&self) {
        for connection in self.connections.lock().expect("relay lock").drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test]
async fn broken_connection_is_reopened_on_a_later_delivery() {
    let relay = Relay::start().await;
    let notifier = notifier();
    for version in ["mqtt3.1.1", "mqtt5.0"] {
        let (topic, mut received) = subscriber().await;
        let endpoint = endpoint(
            &format!("mqtt://127.0.0.1:{}/{topic}", relay.port),
            Accept::Json,
            &[("MQTT-Version", version), ("MQTT-QoS", "1")],
        );
        let first = notification(1);
        let outgoing = |notification| Outgoing {
            notification,
            context_url: CONTEXT,
            tenant: None,
        };
        notifier
            .deliver(&endpoint, outgoing(&first))
            .await
            .expect("delivered before the cut");
        assert_eq!(next_message(&mut received).await["body"], first);

        relay.cut();

        // A delivery racing the cut may fail (the connection is found broken while in
        // use); one of a few later ones must get through on a new connection.
        let second = notification(2);
        let mut outcomes = Vec::new();
        for _ in 0..5 {
            let outcome = notifier.deliver(&endpoint, outgoing(&second)).await;
            let delivered = outcome.is_ok();
            outcomes.push(outcome);
            if delivered {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            outcomes.last().is_some_and(Result::is_ok),
            "{version}: {outcomes:?}"
        );
        assert_eq!(next_message(&mut received).await["body"], second);
    }
}

/// A broker that accepts MQTT 3.1.1 connections and swallows everything after, never
/// acknowledging a publication.
async fn silent_broker() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind silent broker");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0_u8; 4096];
                // The CONNECT packet (small enough to come in one read here).
                if socket.read(&mut buffer).await.unwrap_or(0) == 0 {
                    return;
                }
                // CONNACK: session not present, connection accepted.
                if socket.write_all(&[0x20, 0x02, 0x00, 0x00]).await.is_err() {
                    return;
                }
                while socket.read(&mut buffer).await.unwrap_or(0) > 0 {}
            });
        }
    });
    port
}

#[tokio::test]
async fn qos_1_waits_for_the_brokers_acknowledgement() {
    let port = silent_broker().await;
    let notifier = Notifier::new(NotifierConfig {
        mqtt_timeout: Duration::from_secs(1),
        ..NotifierConfig::default()
    })
    .expect("notifier");
    let notification = notification(1);
    let outgoing = Outgoing {
        notification: &notification,
        context_url: CONTEXT,
        tenant: None,
    };
    let uri = format!("mqtt://127.0.0.1:{port}/renkei-test/silent");

    let at_most_once = endpoint(&uri, Accept::Json, &[("MQTT-QoS", "0")]);
    notifier
        .deliver(&at_most_once, outgoing)
        .await
        .expect("QoS 0 needs no acknowledgement");

    let at_least_once = endpoint(&uri, Accept::Json, &[("MQTT-QoS", "1")]);
    let outcome = notifier.deliver(&at_least_once, outgoing).await;
    assert!(
        matches!(outcome, Err(DeliveryError::Unreachable(_))),
        "{outcome:?}"
    );
    // The unresponsive connection is not kept for later deliveries.
    assert_eq!(notifier.cached_mqtt_connections(), 0);
}
