//! Delivery of NGSI-LD notifications (ETSI GS CIM 009 V1.8.1, clauses 5.8 and 5.11) to the
//! endpoints subscribers name: HTTP(S) receivers (HTTP binding, clause 7.2) and MQTT brokers
//! (MQTT binding, clause 7.3). This crate knows nothing of subscriptions or of matching: it is
//! handed an [`Endpoint`] and a ready, compacted notification and gets it there, or says
//! precisely why not ([`DeliveryError`]), without ever echoing the payload in an error.
//!
//! A [`Notifier`] is cheap to clone; clones share one HTTP client and one cache of MQTT
//! connections, so it can be handed to every task that sends notifications.

mod headers;
mod http;
mod mqtt;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

pub use mqtt::{MqttQos, MqttVersion, MQTT_QOS_KEY, MQTT_VERSION_KEY};

/// The media type a subscriber asked for in `endpoint.accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accept {
    /// `application/json`: the context travels in a `Link` header (or MQTT metadata).
    #[default]
    Json,
    /// `application/ld+json`: the context travels as `@context` inside the body.
    JsonLd,
}

impl Accept {
    /// Reads the `accept` member of a subscription's endpoint; `None` for media types
    /// notifications cannot be sent as.
    pub fn from_media_type(media_type: &str) -> Option<Accept> {
        match media_type.trim() {
            "application/json" => Some(Accept::Json),
            "application/ld+json" => Some(Accept::JsonLd),
            _ => None,
        }
    }

    /// The `Content-Type` a notification sent this way carries.
    pub fn content_type(self) -> &'static str {
        match self {
            Accept::Json => "application/json",
            Accept::JsonLd => "application/ld+json",
        }
    }
}

/// Where a notification goes: the `endpoint` member of a subscription's notification
/// parameters (clause 5.2.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http`, `https`, `mqtt` or `mqtts` URI.
    pub uri: url::Url,
    pub accept: Accept,
    /// `receiverInfo`: sent as HTTP headers, or as MQTT metadata entries.
    pub receiver_info: Vec<(String, String)>,
    /// `notifierInfo`: settings for the notifier itself (`MQTT-Version`, `MQTT-QoS`).
    pub notifier_info: Vec<(String, String)>,
}

/// One notification ready to go.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// `{id, type: "Notification", subscriptionId, notifiedAt, data: [...]}`, already
    /// compacted and without `@context`.
    pub notification: &'a serde_json::Value,
    /// The JSON-LD context the notification was compacted with.
    pub context_url: &'a str,
    /// The tenant the subscription belongs to; `None` for the default tenant.
    pub tenant: Option<&'a str>,
}

/// Why a notification did not get delivered. Messages name the endpoint's problem, never
/// the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Could not connect, the connection broke, or the receiver did not answer in time.
    #[error("endpoint unreachable: {0}")]
    Unreachable(String),
    /// The HTTP receiver answered with a status other than 2xx.
    #[error("endpoint answered with HTTP status {0}")]
    Status(u16),
    /// The MQTT broker refused the connection or the publication.
    #[error("MQTT delivery failed: {0}")]
    Mqtt(String),
    /// The endpoint cannot be delivered to as given (scheme, topic, header, notifierInfo).
    #[error("invalid endpoint: {0}")]
    InvalidEndpoint(String),
}

/// Settings of a [`Notifier`].
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Upper bound for one HTTP delivery: connecting, sending and the answer.
    pub http_timeout: Duration,
    /// Upper bound for one MQTT delivery: connecting (if needed), publishing and, for
    /// QoS 1 and 2, the broker's acknowledgement.
    pub mqtt_timeout: Duration,
    /// MQTT keep-alive interval of cached broker connections.
    pub mqtt_keep_alive: Duration,
    /// Largest MQTT packet sent or accepted, in bytes.
    pub mqtt_max_packet_size: usize,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            http_timeout: Duration::from_secs(10),
            mqtt_timeout: Duration::from_secs(10),
            mqtt_keep_alive: Duration::from_secs(30),
            mqtt_max_packet_size: 16 * 1024 * 1024,
        }
    }
}

/// Errors building a [`Notifier`].
#[derive(Debug, thiserror::Error)]
pub enum NotifierInitError {
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
    #[error("could not build the TLS configuration for MQTT: {0}")]
    Tls(String),
}

/// Sends notifications; clones share their HTTP client and MQTT connections.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    http: http::HttpSender,
    mqtt: mqtt::MqttSender,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(config: NotifierConfig) -> Result<Notifier, NotifierInitError> {
        Ok(Notifier {
            inner: Arc::new(Inner {
                http: http::HttpSender::new(&config)?,
                mqtt: mqtt::MqttSender::new(&config)?,
            }),
        })
    }

    /// Delivers one notification to one endpoint. For HTTP(S), success is a 2xx answer;
    /// for MQTT, the broker's PUBACK (QoS 1) or PUBCOMP (QoS 2), or for QoS 0 the
    /// publication having been handed to the connection.
    pub async fn deliver(
        &self,
        endpoint: &Endpoint,
        outgoing: Outgoing<'_>,
    ) -> Result<(), DeliveryError> {
        match endpoint.uri.scheme() {
            "http" | "https" => self.inner.http.deliver(endpoint, outgoing).await,
            "mqtt" | "mqtts" => self.inner.mqtt.deliver(endpoint, outgoing).await,
            other => Err(DeliveryError::InvalidEndpoint(format!(
                "unsupported URI scheme {other:?} (expected http, https, mqtt or mqtts)"
            ))),
        }
    }

    /// How many MQTT broker connections are currently cached (open or opening).
    pub fn cached_mqtt_connections(&self) -> usize {
        self.inner.mqtt.cached_connections()
    }
}
