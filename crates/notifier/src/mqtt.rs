//! The MQTT binding of notifications (clause 7.3): the endpoint URI
//! `mqtt[s]://[user[:password]@]host[:port]/topic` names a broker and a topic; each
//! notification is published there as `{"metadata": {...}, "body": notification}`, the
//! metadata holding what HTTP would send as headers. `notifierInfo` chooses the protocol
//! (`MQTT-Version`: `mqtt3.1.1` or `mqtt5.0`) and the quality of service (`MQTT-QoS`).
//!
//! Connections are cached per broker, protocol and credentials, each driven by its own task.
//! Acknowledgements are matched to publications in order: rumqttc reports an
//! `Outgoing::Publish(pkid)` event for every publication in the order it takes them off its
//! request queue, so waiters are queued in the same order as publications (both under one
//! short lock) and get their packet id from that event. A connection that breaks fails its
//! waiters, is marked closed, and is replaced on the next delivery.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumqttc::tokio_rustls::rustls;
use tokio::sync::oneshot;
use url::Host;

use crate::headers::{notification_body, notification_headers};
use crate::{DeliveryError, Endpoint, NotifierConfig, NotifierInitError, Outgoing};

/// `notifierInfo` key choosing the MQTT protocol version.
pub const MQTT_VERSION_KEY: &str = "MQTT-Version";
/// `notifierInfo` key choosing the MQTT quality of service.
pub const MQTT_QOS_KEY: &str = "MQTT-QoS";

const DEFAULT_MQTT_PORT: u16 = 1883;
const DEFAULT_MQTTS_PORT: u16 = 8883;
/// Publications one connection may have queued before deliveries are refused.
const REQUEST_QUEUE_CAPACITY: usize = 1024;

/// The MQTT protocol a notification is published with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MqttVersion {
    /// `mqtt3.1.1`, the default.
    #[default]
    V3_1_1,
    /// `mqtt5.0`.
    V5,
}

impl MqttVersion {
    pub fn from_notifier_info(value: &str) -> Option<MqttVersion> {
        match value.trim() {
            "mqtt3.1.1" => Some(MqttVersion::V3_1_1),
            "mqtt5.0" => Some(MqttVersion::V5),
            _ => None,
        }
    }
}

/// The quality of service a notification is published with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MqttQos {
    /// 0, the default: delivered once handed to the connection.
    #[default]
    AtMostOnce,
    /// 1: delivered once the broker sent PUBACK.
    AtLeastOnce,
    /// 2: delivered once the broker sent PUBCOMP.
    ExactlyOnce,
}

impl MqttQos {
    pub fn from_notifier_info(value: &str) -> Option<MqttQos> {
        match value.trim() {
            "0" => Some(MqttQos::AtMostOnce),
            "1" => Some(MqttQos::AtLeastOnce),
            "2" => Some(MqttQos::ExactlyOnce),
            _ => None,
        }
    }

    fn v4(self) -> rumqttc::QoS {
        match self {
            MqttQos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            MqttQos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
            MqttQos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
        }
    }

    fn v5(self) -> rumqttc::v5::mqttbytes::QoS {
        use rumqttc::v5::mqttbytes::QoS;
        match self {
            MqttQos::AtMostOnce => QoS::AtMostOnce,
            MqttQos::AtLeastOnce => QoS::AtLeastOnce,
            MqttQos::ExactlyOnce => QoS::ExactlyOnce,
        }
    }
}

/// What identifies a reusable broker connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConnectionKey {
    tls: bool,
    host: String,
    port: u16,
    version: MqttVersion,
    username: Option<String>,
    password: Option<String>,
}

/// One publication as the endpoint describes it.
#[derive(Debug)]
struct Target {
    connection: ConnectionKey,
    topic: String,
    qos: MqttQos,
}

fn parse_target(endpoint: &Endpoint) -> Result<Target, DeliveryError> {
    let uri = &endpoint.uri;
    let tls = match uri.scheme() {
        "mqtt" => false,
        "mqtts" => true,
        other => {
            return Err(DeliveryError::InvalidEndpoint(format!(
                "{other:?} is not an MQTT scheme"
            )))
        }
    };
    let host = match uri.host() {
        Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
        Some(Host::Ipv4(address)) => address.to_string(),
        Some(Host::Ipv6(address)) => address.to_string(),
        _ => {
            return Err(DeliveryError::InvalidEndpoint(
                "MQTT endpoint without a broker host".to_owned(),
            ))
        }
    };
    let port = uri.port().unwrap_or(if tls {
        DEFAULT_MQTTS_PORT
    } else {
        DEFAULT_MQTT_PORT
    });
    let topic = percent_decode(uri.path().strip_prefix('/').unwrap_or(uri.path()), "topic")?;
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(DeliveryError::InvalidEndpoint(format!(
            "{topic:?} is not a topic one can publish to"
        )));
    }
    let username = match uri.username() {
        "" => None,
        name => Some(percent_decode(name, "user name")?),
    };
    let password = uri
        .password()
        .map(|password| percent_decode(password, "password"))
        .transpose()?;

    let mut version = MqttVersion::default();
    let mut qos = MqttQos::default();
    for (key, value) in &endpoint.notifier_info {
        if key.eq_ignore_ascii_case(MQTT_VERSION_KEY) {
            version = MqttVersion::from_notifier_info(value).ok_or_else(|| {
                DeliveryError::InvalidEndpoint(format!(
                    "{MQTT_VERSION_KEY} {value:?} (expected \"mqtt3.1.1\" or \"mqtt5.0\")"
                ))
            })?;
        } else if key.eq_ignore_ascii_case(MQTT_QOS_KEY) {
            qos = MqttQos::from_notifier_info(value).ok_or_else(|| {
                DeliveryError::InvalidEndpoint(format!(
                    "{MQTT_QOS_KEY} {value:?} (expected 0, 1 or 2)"
                ))
            })?;
        }
    }
    Ok(Target {
        connection: ConnectionKey {
            tls,
            host,
            port,
            version,
            username,
            password,
        },
        topic,
        qos,
    })
}

fn percent_decode(encoded: &str, what: &str) -> Result<String, DeliveryError> {
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| DeliveryError::InvalidEndpoint(format!("{what} in the URI is not UTF-8")))
}

/// The MQTT message: the headers HTTP would carry, as `metadata`, and the notification.
fn mqtt_payload(endpoint: &Endpoint, outgoing: &Outgoing<'_>) -> Result<Vec<u8>, DeliveryError> {
    let metadata: serde_json::Map<String, serde_json::Value> =
        notification_headers(endpoint, outgoing)
            .into_iter()
            .map(|(name, value)| (name, serde_json::Value::String(value)))
            .collect();
    let message = serde_json::json!({
        "metadata": metadata,
        "body": notification_body(endpoint, outgoing),
    });
    serde_json::to_vec(&message).map_err(|err| {
        DeliveryError::InvalidEndpoint(format!("notification not serialisable: {err}"))
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing holding these locks can leave the data half-updated, so a poisoned lock
    // (a panic elsewhere) is still safe to use.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Completion = oneshot::Sender<Result<(), DeliveryError>>;

/// A publication handed to rumqttc whose packet id is not known yet.
struct Waiter {
    qos: MqttQos,
    done: Completion,
}

/// Who waits for what on one connection.
#[derive(Default)]
struct Ledger {
    /// Set once the connection broke; the reason fails every later publication on it.
    closed: Option<DeliveryError>,
    /// Publications queued to rumqttc, in queue order.
    awaiting_send: VecDeque<Waiter>,
    /// QoS 1 and 2 publications sent, by packet id, awaiting PUBACK or PUBCOMP.
    awaiting_ack: HashMap<u16, Completion>,
}

impl Ledger {
    fn publication_sent(&mut self, pkid: u16) {
        let Some(waiter) = self.awaiting_send.pop_front() else {
            tracing::warn!(pkid, "MQTT publication sent that nobody waits for");
            return;
        };
        if waiter.qos == MqttQos::AtMostOnce {
            let _ = waiter.done.send(Ok(()));
        } else {
            self.awaiting_ack.insert(pkid, waiter.done);
        }
    }

    fn publication_done(&mut self, pkid: u16, outcome: Result<(), DeliveryError>) {
        if let Some(done) = self.awaiting_ack.remove(&pkid) {
            // The receiver is gone when the delivery timed out; nothing left to tell.
            let _ = done.send(outcome);
        }
    }

    fn close(&mut self, reason: DeliveryError) {
        for waiter in self.awaiting_send.drain(..) {
            let _ = waiter.done.send(Err(reason.clone()));
        }
        for (_, done) in self.awaiting_ack.drain() {
            let _ = done.send(Err(reason.clone()));
        }
        self.closed = Some(reason);
    }
}

enum Client {
    V3_1_1(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// One cached broker connection. Dropping it stops its driving task.
struct Connection {
    client: Client,
    ledger: Arc<Mutex<Ledger>>,
    _stop_driver: oneshot::Sender<()>,
}

impl Connection {
    fn is_closed(&self) -> bool {
        lock(&self.ledger).closed.is_some()
    }

    /// Queues a publication; the receiver tells how it ended.
    fn enqueue(
        &self,
        topic: &str,
        qos: MqttQos,
        payload: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<(), DeliveryError>>, Refusal> {
        let mut ledger = lock(&self.ledger);
        if let Some(reason) = &ledger.closed {
            return Err(Refusal::Closed(reason.clone()));
        }
        let (done, outcome) = oneshot::channel();
        // The waiter goes in before the request so the driver always finds it, and both
        // happen under the lock so waiters stay in request order.
        ledger.awaiting_send.push_back(Waiter { qos, done });
        let refused = match &self.client {
            Client::V3_1_1(client) => client.try_publish(topic, qos.v4(), false, payload).is_err(),
            Client::V5(client) => client.try_publish(topic, qos.v5(), false, payload).is_err(),
        };
        if refused {
            // rumqttc refuses only when its request queue is full or its event loop is gone.
            ledger.awaiting_send.pop_back();
            return Err(Refusal::QueueFull);
        }
        Ok(outcome)
    }
}

enum Refusal {
    Closed(DeliveryError),
    QueueFull,
}

pub(crate) struct MqttSender {
    connections: Mutex<HashMap<ConnectionKey, Arc<Connection>>>,
    timeout: Duration,
    keep_alive: Duration,
    max_packet_size: usize,
    tls: Arc<rustls::ClientConfig>,
}

impl MqttSender {
    pub(crate) fn new(config: &NotifierConfig) -> Result<MqttSender, NotifierInitError> {
        Ok(MqttSender {
            connections: Mutex::new(HashMap::new()),
            timeout: config.mqtt_timeout,
            keep_alive: config.mqtt_keep_alive,
            max_packet_size: config.mqtt_max_packet_size,
            tls: Arc::new(tls_client_config()?),
        })
    }

    pub(crate) fn cached_connections(&self) -> usize {
        lock(&self.connections).len()
    }

    pub(crate) async fn deliver(
        &self,
        endpoint: &Endpoint,
        outgoing: Outgoing<'_>,
    ) -> Result<(), DeliveryError> {
        let target = parse_target(endpoint)?;
        let payload = mqtt_payload(endpoint, &outgoing)?;
        match tokio::time::timeout(self.timeout, self.publish(&target, payload)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // A broker that does not confirm in time is treated as hung: its connection
                // is dropped (failing what else waits on it) and the next delivery reconnects.
                lock(&self.connections).remove(&target.connection);
                Err(DeliveryError::Unreachable(format!(
                    "MQTT broker {}:{} did not confirm within {:?}",
                    target.connection.host, target.connection.port, self.timeout
                )))
            }
        }
    }

    async fn publish(&self, target: &Target, payload: Vec<u8>) -> Result<(), DeliveryError> {
        // A connection may break between being looked up and being used; one fresh
        // connection is tried then.
        let mut attempts_left = 2;
        loop {
            attempts_left -= 1;
            let connection = self.connection_for(&target.connection);
            match connection.enqueue(&target.topic, target.qos, payload.clone()) {
                Ok(outcome) => {
                    return outcome.await.unwrap_or_else(|_| {
                        Err(DeliveryError::Unreachable(
                            "MQTT connection closed before the publication completed".to_owned(),
                        ))
                    })
                }
                Err(Refusal::Closed(reason)) if attempts_left == 0 => return Err(reason),
                Err(Refusal::Closed(_)) => continue,
                Err(Refusal::QueueFull) => {
                    return Err(DeliveryError::Mqtt(
                        "could not queue the publication (too many waiting for this broker)"
                            .to_owned(),
                    ))
                }
            }
        }
    }

    /// The cached connection for `key`, or a new one when there is none or it broke.
    fn connection_for(&self, key: &ConnectionKey) -> Arc<Connection> {
        let mut connections = lock(&self.connections);
        connections.retain(|_, connection| !connection.is_closed());
        if let Some(connection) = connections.get(key) {
            return Arc::clone(connection);
        }
        let connection = Arc::new(self.open(key));
        connections.insert(key.clone(), Arc::clone(&connection));
        connection
    }

    /// Creates the client and spawns the task driving it; the TCP (and TLS) connection is
    /// made by that task, so this never waits.
    fn open(&self, key: &ConnectionKey) -> Connection {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let (stop_driver, stopped) = oneshot::channel();
        let client_id = format!(
            "renkei-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let transport = if key.tls {
            rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::clone(
                &self.tls,
            )))
        } else {
            rumqttc::Transport::Tcp
        };
        let connect_timeout_secs = self.timeout.as_secs().max(1);
        let username = key.username.clone().unwrap_or_default();
        let password = key.password.clone().unwrap_or_default();
        let has_credentials = key.username.is_some() || key.password.is_some();
        let client = match key.version {
            MqttVersion::V3_1_1 => {
                let mut options = rumqttc::MqttOptions::new(client_id, key.host.clone(), key.port);
                options
                    .set_keep_alive(self.keep_alive)
                    .set_clean_session(true)
                    .set_max_packet_size(self.max_packet_size, self.max_packet_size)
                    .set_transport(transport);
                if has_credentials {
                    options.set_credentials(username, password);
                }
                let (client, mut eventloop) =
                    rumqttc::AsyncClient::new(options, REQUEST_QUEUE_CAPACITY);
                let mut network = eventloop.network_options();
                network.set_connection_timeout(connect_timeout_secs);
                eventloop.set_network_options(network);
                tokio::spawn(drive_v3_1_1(eventloop, Arc::clone(&ledger), stopped));
                Client::V3_1_1(client)
            }
            MqttVersion::V5 => {
                let mut options =
                    rumqttc::v5::MqttOptions::new(client_id, key.host.clone(), key.port);
                options
                    .set_keep_alive(self.keep_alive)
                    .set_clean_start(true)
                    .set_connection_timeout(connect_timeout_secs)
                    .set_max_packet_size(u32::try_from(self.max_packet_size).ok())
                    .set_transport(transport);
                if has_credentials {
                    options.set_credentials(username, password);
                }
                let (client, eventloop) =
                    rumqttc::v5::AsyncClient::new(options, REQUEST_QUEUE_CAPACITY);
                tokio::spawn(drive_v5(eventloop, Arc::clone(&ledger), stopped));
                Client::V5(client)
            }
        };
        Connection {
            client,
            ledger,
            _stop_driver: stop_driver,
        }
    }
}

/// Drives an MQTT 3.1.1 connection until it breaks or its [`Connection`] is dropped.
async fn drive_v3_1_1(
    mut eventloop: rumqttc::EventLoop,
    ledger: Arc<Mutex<Ledger>>,
    mut stopped: oneshot::Receiver<()>,
) {
    use rumqttc::{Event, Outgoing, Packet};
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            _ = &mut stopped => return,
        };
        match event {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lock(&ledger).publication_sent(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                lock(&ledger).publication_done(ack.pkid, Ok(()))
            }
            Ok(Event::Incoming(Packet::PubComp(comp))) => {
                lock(&ledger).publication_done(comp.pkid, Ok(()))
            }
            Ok(_) => {}
            Err(err) => {
                let reason = describe_v3_1_1_error(&err);
                tracing::debug!(error = %err, "MQTT 3.1.1 connection closed");
                lock(&ledger).close(reason);
                return;
            }
        }
    }
}

fn describe_v3_1_1_error(err: &rumqttc::ConnectionError) -> DeliveryError {
    use rumqttc::{ConnectionError, StateError};
    match err {
        ConnectionError::Io(io) => DeliveryError::Unreachable(format!("MQTT broker: {io}")),
        ConnectionError::MqttState(StateError::Io(io)) => {
            DeliveryError::Unreachable(format!("MQTT broker connection lost: {io}"))
        }
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => {
            DeliveryError::Unreachable("MQTT broker did not answer in time".to_owned())
        }
        ConnectionError::Tls(tls) => DeliveryError::Unreachable(format!("MQTT broker TLS: {tls}")),
        ConnectionError::ConnectionRefused(code) => {
            DeliveryError::Mqtt(format!("broker refused the connection: {code:?}"))
        }
        other => DeliveryError::Mqtt(other.to_string()),
    }
}

/// Drives an MQTT 5 connection until it breaks or its [`Connection`] is dropped.
async fn drive_v5(
    mut eventloop: rumqttc::v5::EventLoop,
    ledger: Arc<Mutex<Ledger>>,
    mut stopped: oneshot::Receiver<()>,
) {
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PubCompReason, PubRecReason};
    use rumqttc::v5::Event;
    use rumqttc::Outgoing;
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            _ = &mut stopped => return,
        };
        match event {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lock(&ledger).publication_sent(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let outcome = match ack.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                    reason => Err(DeliveryError::Mqtt(format!("broker refused: {reason:?}"))),
                };
                lock(&ledger).publication_done(ack.pkid, outcome);
            }
            Ok(Event::Incoming(Packet::PubRec(rec))) => {
                // A failed PUBREC ends the exchange: no PUBCOMP will follow.
                if !matches!(
                    rec.reason,
                    PubRecReason::Success | PubRecReason::NoMatchingSubscribers
                ) {
                    let reason = format!("broker refused: {:?}", rec.reason);
                    lock(&ledger).publication_done(rec.pkid, Err(DeliveryError::Mqtt(reason)));
                }
            }
            Ok(Event::Incoming(Packet::PubComp(comp))) => {
                let outcome = match comp.reason {
                    PubCompReason::Success => Ok(()),
                    reason => Err(DeliveryError::Mqtt(format!("broker refused: {reason:?}"))),
                };
                lock(&ledger).publication_done(comp.pkid, outcome);
            }
            Ok(_) => {}
            Err(err) => {
                let reason = describe_v5_error(&err);
                tracing::debug!(error = %err, "MQTT 5 connection closed");
                lock(&ledger).close(reason);
                return;
            }
        }
    }
}

fn describe_v5_error(err: &rumqttc::v5::ConnectionError) -> DeliveryError {
    use rumqttc::v5::{ConnectionError, StateError};
    match err {
        ConnectionError::Io(io) => DeliveryError::Unreachable(format!("MQTT broker: {io}")),
        ConnectionError::MqttState(StateError::Io(io)) => {
            DeliveryError::Unreachable(format!("MQTT broker connection lost: {io}"))
        }
        ConnectionError::MqttState(StateError::ConnectionAborted) => {
            DeliveryError::Unreachable("MQTT broker closed the connection".to_owned())
        }
        ConnectionError::Timeout(_) => {
            DeliveryError::Unreachable("MQTT broker did not answer in time".to_owned())
        }
        ConnectionError::Tls(tls) => DeliveryError::Unreachable(format!("MQTT broker TLS: {tls}")),
        ConnectionError::ConnectionRefused(code) => {
            DeliveryError::Mqtt(format!("broker refused the connection: {code:?}"))
        }
        other => DeliveryError::Mqtt(other.to_string()),
    }
}

/// TLS for `mqtts://`: the Mozilla roots plus whatever the system trusts (so brokers with
/// a private CA installed on this machine work), with the ring provider reqwest uses too.
fn tls_client_config() -> Result<rustls::ClientConfig, NotifierInitError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let native = rustls_native_certs::load_native_certs();
    for certificate in native.certs {
        // One unusable system certificate must not take TLS away for all brokers.
        let _ = roots.add(certificate);
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|err| NotifierInitError::Tls(err.to_string()))
}
