//! The interface between renkei and a payment provider (決済代行事業者): start a payment and
//! send the resident to the provider's page, ask where a payment stands, check a callback
//! really came from the provider, and refund.
//!
//! Providers report facts; the state machine in [`crate::payment`] decides what they mean.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PaymentEvent;

/// What renkei asks a provider to collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    /// Our payment id; providers use it as the idempotency key, so a retried start never
    /// creates a second charge.
    pub payment_id: String,
    pub amount_yen: u64,
    /// Shown to the resident on the provider's page, e.g. 住民票の写し 2通.
    pub description: String,
    /// Where the provider sends the resident's browser afterwards.
    pub return_url: String,
    /// Where the provider POSTs signed callbacks.
    pub callback_url: String,
}

/// A payment the provider has accepted to collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub provider_ref: String,
    /// The provider's page to send the resident to (always `http` or `https`).
    pub redirect_url: String,
}

/// Where a payment stands according to the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProviderStatus {
    Pending,
    Authorised,
    Captured,
    Refunded,
    /// Declined, cancelled, or expired at the provider.
    Failed {
        reason: String,
    },
}

impl ProviderStatus {
    /// The event this status reports, if any (`Pending` reports nothing new).
    pub fn event(&self) -> Option<PaymentEvent> {
        match self {
            ProviderStatus::Pending => None,
            ProviderStatus::Authorised => Some(PaymentEvent::ProviderAuthorised),
            ProviderStatus::Captured => Some(PaymentEvent::ProviderCaptured),
            ProviderStatus::Refunded => Some(PaymentEvent::ProviderRefunded),
            ProviderStatus::Failed { reason } => Some(PaymentEvent::ProviderFailed {
                reason: reason.clone(),
            }),
        }
    }
}

/// A verified callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackEvent {
    /// The provider's id for this notification; the same notification delivered twice has
    /// the same id.
    pub provider_event_id: String,
    pub provider_ref: String,
    pub event: PaymentEvent,
}

/// A call to the provider failed. Nothing about the payment's state follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    Config(String),
    Transport(String),
    NotFound(String),
    Status { status: u16 },
    Protocol(String),
}

impl ProviderError {
    pub fn message_ja(&self) -> String {
        match self {
            ProviderError::Config(d) => format!("決済事業者の設定が正しくありません: {d}"),
            ProviderError::Transport(d) => format!("決済事業者に接続できません: {d}"),
            ProviderError::NotFound(r) => format!("決済事業者が決済 {r} を知りません"),
            ProviderError::Status { status } => {
                format!("決済事業者がエラー {status} を返しました")
            }
            ProviderError::Protocol(d) => format!("決済事業者の応答が読めません: {d}"),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            ProviderError::Config(d) => format!("the payment provider is misconfigured: {d}"),
            ProviderError::Transport(d) => format!("cannot reach the payment provider: {d}"),
            ProviderError::NotFound(r) => {
                format!("the payment provider does not know payment {r}")
            }
            ProviderError::Status { status } => {
                format!("the payment provider answered with status {status}")
            }
            ProviderError::Protocol(d) => {
                format!("the payment provider's answer cannot be read: {d}")
            }
        }
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.message_ja(), self.message_en())
    }
}

impl std::error::Error for ProviderError {}

/// A callback was refused. Each cause is distinct so that logs tell an attack (bad
/// signature), a replay or clock skew (stale) and a broken integration (malformed) apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    MissingSignature,
    MalformedSignature,
    /// `age_seconds` is our clock minus the signature's (negative: from the future).
    StaleTimestamp {
        age_seconds: i64,
    },
    BadSignature,
    MalformedBody(String),
}

impl CallbackError {
    pub fn message_ja(&self) -> String {
        match self {
            CallbackError::MissingSignature => "署名ヘッダがありません".to_owned(),
            CallbackError::MalformedSignature => "署名ヘッダの形式が正しくありません".to_owned(),
            CallbackError::StaleTimestamp { age_seconds } => {
                format!("署名の時刻が許容範囲外です（{age_seconds}秒）")
            }
            CallbackError::BadSignature => "署名が一致しません".to_owned(),
            CallbackError::MalformedBody(d) => format!("通知の本文が読めません: {d}"),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            CallbackError::MissingSignature => "the signature header is missing".to_owned(),
            CallbackError::MalformedSignature => "the signature header is malformed".to_owned(),
            CallbackError::StaleTimestamp { age_seconds } => {
                format!("the signature timestamp is outside the tolerance ({age_seconds} s)")
            }
            CallbackError::BadSignature => "the signature does not match".to_owned(),
            CallbackError::MalformedBody(d) => format!("the callback body cannot be read: {d}"),
        }
    }
}

impl std::fmt::Display for CallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.message_ja(), self.message_en())
    }
}

impl std::error::Error for CallbackError {}

/// A payment provider. Implementations talk to one gateway; everything they return is the
/// gateway's word, to be fed to the state machine.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Stable name stored in [`super::Payment::provider`].
    fn name(&self) -> &str;

    /// Asks the provider to collect a payment. Safe to retry with the same request.
    async fn start(&self, req: &StartRequest) -> Result<Started, ProviderError>;

    /// Asks the provider where a payment stands (used by reconciliation).
    async fn status(&self, provider_ref: &str) -> Result<ProviderStatus, ProviderError>;

    /// Checks that a callback came from the provider and is recent, and reads it.
    /// `headers` are (name, value) pairs as received; names compare case-insensitively.
    fn verify_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CallbackEvent, CallbackError>;

    /// Asks the provider to give the whole amount back. Returns the provider's status
    /// afterwards: `Refunded` when the refund is immediate, otherwise the refund is
    /// confirmed later by callback or reconciliation.
    async fn refund(
        &self,
        provider_ref: &str,
        amount_yen: u64,
    ) -> Result<ProviderStatus, ProviderError>;
}
