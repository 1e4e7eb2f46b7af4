//! A generic redirect-and-webhook payment provider: the small HTTP protocol below is what
//! renkei speaks, so a real payment gateway (決済代行事業者) is connected either directly, if it
//! already speaks something this close, or through a thin adapter that translates.
//!
//! # Protocol
//!
//! renkei → gateway, JSON over HTTPS. If an API key is configured, every request carries
//! `Authorization: Bearer <api key>`.
//!
//! * `POST {base}/payments` with header `Idempotency-Key: <reference>` and body
//!   `{"reference": "<renkei payment id>", "amount": 300, "currency": "JPY",
//!   "description": "…", "return_url": "…", "callback_url": "…"}`.
//!   Answer 200 or 201 `{"id": "<gateway payment id>", "redirect_url": "https://…"}`.
//!   A repeated request with the same `Idempotency-Key` must answer the same `id`.
//! * `GET {base}/payments/{id}` answers 200 `{"id": "…", "status": "<status>", "reason": "…"}`
//!   (`reason` optional, for failures) or 404 if the id is unknown.
//! * `POST {base}/payments/{id}/refund` with body `{"amount": 300}` (always the whole
//!   amount) answers 200 with the same shape as `GET`, giving the status after the refund
//!   (`refunded`, or still `captured` if the refund completes later and will be called back);
//!   404 if unknown, 409 if the payment cannot be refunded.
//!
//! `<status>` is one of `pending`, `authorised` (or `authorized`), `captured`, `refunded`,
//! `failed`, `cancelled` (or `canceled`), `expired`; the last three all mean the payment did
//! not go through.
//!
//! gateway → renkei: each change of status is POSTed to the `callback_url` given at start,
//! with body `{"event_id": "<unique per notification>", "payment_id": "<gateway payment id>",
//! "status": "<status other than pending>", "reason": "…"}` and header
//!
//! ```text
//! X-Payment-Signature: t=<unix seconds>,v1=<lowercase hex of HMAC-SHA256(secret, "<t>.<body>")>
//! ```
//!
//! where `<body>` is the exact bytes sent. Several `v1=` entries may be given (while a
//! secret is being rotated); unknown keys are ignored. renkei refuses a callback whose `t` is
//! further than the configured tolerance from its clock (either way), which bounds replays;
//! replays inside the tolerance are harmless because `event_id`s are remembered. renkei
//! answers 2xx once the callback is recorded (including a duplicate), and the gateway should
//! retry anything else with backoff. Callbacks may arrive in any order, more than once,
//! before the resident is redirected back, or never: renkei polls `GET` for payments it has
//! not heard about.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use url::Url;

use super::provider::{
    CallbackError, CallbackEvent, PaymentProvider, ProviderError, ProviderStatus, StartRequest,
    Started,
};

/// The callback signature header.
pub const SIGNATURE_HEADER: &str = "X-Payment-Signature";

/// Answers larger than this are not a payment status; refusing them keeps a broken gateway
/// from filling memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// How to reach one gateway.
#[derive(Clone)]
pub struct GenericRedirectConfig {
    /// Stored as [`crate::payment::Payment::provider`]; one per configured gateway.
    pub name: String,
    /// e.g. `https://pay.example.jp/api/v1` (a trailing slash is optional).
    pub base_url: String,
    /// The shared secret that signs callbacks.
    pub secret: Vec<u8>,
    /// Sent as a bearer token on calls to the gateway, if set.
    pub api_key: Option<String>,
    /// How far a callback's timestamp may be from our clock.
    pub tolerance_seconds: u64,
    /// Per request to the gateway.
    pub request_timeout: Duration,
}

impl GenericRedirectConfig {
    /// A configuration with a five-minute callback tolerance, a ten-second request
    /// timeout and no API key.
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        GenericRedirectConfig {
            name: name.into(),
            base_url: base_url.into(),
            secret: secret.into(),
            api_key: None,
            tolerance_seconds: 300,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for GenericRedirectConfig {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericRedirectConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("tolerance_seconds", &self.tolerance_seconds)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// The provider speaking the protocol in this module's documentation.
#[derive(Debug, Clone)]
pub struct GenericRedirectProvider {
    config: GenericRedirectConfig,
    base: Url,
    client: reqwest::Client,
}

/// The `X-Payment-Signature` value for `body` signed at unix time `t`. Gateways and test
/// gateways use this to sign; renkei uses it to check.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        to_hex(&mac(secret, t, body).finalize().into_bytes())
    )
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks an `X-Payment-Signature` value against `body`.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance_seconds: u64,
) -> Result<(), CallbackError> {
    let (t, candidates) = parse_signature(header)?;
    let age = now.timestamp().saturating_sub(t);
    if age.unsigned_abs() > tolerance_seconds {
        return Err(CallbackError::StaleTimestamp { age_seconds: age });
    }
    // verify_slice compares in constant time.
    if candidates
        .iter()
        .any(|sig| mac(secret, t, body).verify_slice(sig).is_ok())
    {
        Ok(())
    } else {
        Err(CallbackError::BadSignature)
    }
}

fn parse_signature(header: &str) -> Result<(i64, Vec<Vec<u8>>), CallbackError> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(CallbackError::MalformedSignature)?;
        match key {
            "t" => {
                if t.is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CallbackError::MalformedSignature);
                }
                t = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| CallbackError::MalformedSignature)?,
                );
            }
            "v1" => {
                let bytes = from_hex(value).ok_or(CallbackError::MalformedSignature)?;
                if bytes.len() != 32 {
                    return Err(CallbackError::MalformedSignature);
                }
                candidates.push(bytes);
            }
            _ => {}
        }
    }
    match t {
        Some(t) if !candidates.is_empty() => Ok((t, candidates)),
        _ => Err(CallbackError::MalformedSignature),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[derive(Deserialize)]
struct StartAnswer {
    id: String,
    redirect_url: String,
}

#[derive(Deserialize)]
struct StatusAnswer {
    #[serde(default)]
    id: Option<String>,
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct CallbackBody {
    event_id: String,
    payment_id: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Reads a protocol status word.
fn parse_status(status: &str, reason: Option<String>) -> Option<ProviderStatus> {
    Some(match status {
        "pending" => ProviderStatus::Pending,
        "authorised" | "authorized" => ProviderStatus::Authorised,
        "captured" => ProviderStatus::Captured,
        "refunded" => ProviderStatus::Refunded,
        "failed" | "cancelled" | "canceled" | "expired" => ProviderStatus::Failed {
            reason: reason.unwrap_or_else(|| status.to_owned()),
        },
        _ => return None,
    })
}

impl GenericRedirectProvider {
    pub fn new(config: GenericRedirectConfig) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            // A gateway answers; it never sends renkei elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        Self::with_client(config, client)
    }

    /// With a client shared with other outbound HTTP (proxy settings, connection pool).
    pub fn with_client(
        config: GenericRedirectConfig,
        client: reqwest::Client,
    ) -> Result<Self, ProviderError> {
        let mut base = Url::parse(&config.base_url)
            .map_err(|e| ProviderError::Config(format!("base_url: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ProviderError::Config(
                "base_url must be an http(s) URL".into(),
            ));
        }
        if config.secret.is_empty() {
            return Err(ProviderError::Config("the callback secret is empty".into()));
        }
        // Path segments are appended below, so the base must not end in an empty one.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        Ok(GenericRedirectProvider {
            config,
            base,
            client,
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Percent-encodes each segment, so a gateway id cannot change the path.
            path.extend(segments);
        }
        url
    }

    fn authorised(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        provider_ref: Option<&str>,
    ) -> Result<T, ProviderError> {
        let mut resp = self
            .authorised(req)
            .send()
            .await
            .map_err(|e| ProviderError::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            if let Some(r) = provider_ref {
                return Err(ProviderError::NotFound(r.to_owned()));
            }
        }
        if !status.is_success() {
            return Err(ProviderError::Status {
                status: status.as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ProviderError::Transport(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ProviderError::Protocol("answer too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| ProviderError::Protocol(e.to_string()))
    }

    fn read_status(
        answer: StatusAnswer,
        provider_ref: &str,
    ) -> Result<ProviderStatus, ProviderError> {
        // An answer about another payment must never settle this one.
        if answer.id.as_deref().is_some_and(|id| id != provider_ref) {
            return Err(ProviderError::Protocol(
                "answer is about another payment".into(),
            ));
        }
        parse_status(&answer.status, answer.reason)
            .ok_or_else(|| ProviderError::Protocol(format!("unknown status {:?}", answer.status)))
    }
}

#[async_trait]
impl PaymentProvider for GenericRedirectProvider {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn start(&self, req: &StartRequest) -> Result<Started, ProviderError> {
        let body = serde_json::json!({
            "reference": req.payment_id,
            "amount": req.amount_yen,
            "currency": "JPY",
            "description": req.description,
            "return_url": req.return_url,
            "callback_url": req.callback_url,
        });
        let request = self
            .client
            .post(self.url(&["payments"]))
            .header("Idempotency-Key", &req.payment_id)
            .json(&body);
        let answer: StartAnswer = self.send(request, None).await?;
        // The resident's browser goes wherever this says, so only web pages are accepted.
        let redirect = Url::parse(&answer.redirect_url)
            .map_err(|e| ProviderError::Protocol(format!("redirect_url: {e}")))?;
        if !matches!(redirect.scheme(), "http" | "https") {
            return Err(ProviderError::Protocol(
                "redirect_url is not an http(s) URL".into(),
            ));
        }
        if answer.id.is_empty() {
            return Err(ProviderError::Protocol("empty payment id".into()));
        }
        Ok(Started {
            provider_ref: answer.id,
            redirect_url: redirect.into(),
        })
    }

    async fn status(&self, provider_ref: &str) -> Result<ProviderStatus, ProviderError> {
        let request = self.client.get(self.url(&["payments", provider_ref]));
        Self::read_status(self.send(request, Some(provider_ref)).await?, provider_ref)
    }

    fn verify_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CallbackEvent, CallbackError> {
        let header = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
            .map(|(_, value)| value.as_str())
            .ok_or(CallbackError::MissingSignature)?;
        verify_signature(
            &self.config.secret,
            header,
            body,
            now,
            self.config.tolerance_seconds,
        )?;
        // Only a body the gateway signed is read at all.
        let parsed: CallbackBody = serde_json::from_slice(body)
            .map_err(|e| CallbackError::MalformedBody(e.to_string()))?;
        if parsed.event_id.is_empty() || parsed.payment_id.is_empty() {
            return Err(CallbackError::MalformedBody(
                "empty event_id or payment_id".into(),
            ));
        }
        let event = parse_status(&parsed.status, parsed.reason)
            .and_then(|s| s.event())
            .ok_or_else(|| {
                CallbackError::MalformedBody(format!("status {:?} is not an event", parsed.status))
            })?;
        Ok(CallbackEvent {
            provider_event_id: parsed.event_id,
            provider_ref: parsed.payment_id,
            event,
        })
    }

    async fn refund(
        &self,
        provider_ref: &str,
        amount_yen: u64,
    ) -> Result<ProviderStatus, ProviderError> {
        let request = self
            .client
            .post(self.url(&["payments", provider_ref, "refund"]))
            .json(&serde_json::json!({ "amount": amount_yen }));
        Self::read_status(self.send(request, Some(provider_ref)).await?, provider_ref)
    }
}
