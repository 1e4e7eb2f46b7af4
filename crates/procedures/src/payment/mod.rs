//! Cashless payment of fees (キャッシュレス決済): the payment state machine, the record kept
//! for each payment, the interface every payment provider implements, one generic provider a
//! real gateway can be adapted to, and reconciliation for callbacks that never came.
//!
//! # States
//!
//! What each event does in each state (`=`: `Unchanged`; `late`: applied and flagged):
//!
//! | state, event | `ProviderAuthorised` | `ProviderCaptured` | `ProviderFailed` | `ProviderRefunded` | `Expire` |
//! |---|---|---|---|---|---|
//! | `Pending`    | `Authorised` | `Captured` | `Failed` | `Refunded` | `Expired` |
//! | `Authorised` | = | `Captured` | `Failed` | `Refunded` | `Expired` |
//! | `Captured`   | = | = | refused | `Refunded` | = |
//! | `Refunded`   | = | = | refused | = | = |
//! | `Failed`     | `Authorised` | `Captured` | = | `Refunded` | = |
//! | `Expired`    | `Authorised`, late | `Captured`, late | `Failed` | `Refunded`, late | = |
//!
//! The rules that are decisions rather than obvious (each one is tested):
//!
//! * **The provider's facts win over our own timeout.** `Expire` is our guess that the resident
//!   gave up. If the provider later reports an authorisation, capture, failure or refund, the
//!   payment moves there; when money moved (authorised, captured, refunded) the transition
//!   is flagged `late`, so staff can look at an application whose payment arrived after we
//!   stopped waiting. Money is never ignored.
//! * **The redirect return only reads.** The resident's browser coming back from the provider
//!   proves nothing (anyone can open the return URL), so it never changes state; it only shows
//!   [`Payment::resident_view`]. A callback that arrives before the resident returns has
//!   therefore already done its work, and one that arrives after is no different.
//! * **A capture is never lost.** Once `ProviderCaptured` has been applied, the payment is
//!   `Captured` or `Refunded` for ever: `Captured → Failed` is refused as an error (a
//!   provider contradicting itself needs a human), and stale news (an authorisation or an
//!   expiry arriving after the capture) is `Unchanged`.
//! * **`Failed` is not final.** Gateways let a resident retry on their page after a declined
//!   card, then report the retry's success for the same payment, so `Failed` may still move
//!   to `Authorised` or `Captured`.
//! * **`Refunded` is terminal.** A refund implies the capture before it, so late capture or
//!   authorisation news is `Unchanged`; a failure report after a refund is refused.
//! * **Repeats are harmless.** Applying the event that led to the current state again is
//!   `Unchanged`, and [`Payment::apply`] also remembers each provider event id, so a callback
//!   delivered twice, or replayed, is recognised even when it is no longer the latest news.

pub mod generic;
pub mod provider;
pub mod reconcile;

pub use generic::{
    sign, verify_signature, GenericRedirectConfig, GenericRedirectProvider, SIGNATURE_HEADER,
};
pub use provider::{
    CallbackError, CallbackEvent, PaymentProvider, ProviderError, ProviderStatus, StartRequest,
    Started,
};
pub use reconcile::{reconcile, ReconcileReport};

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Started; the resident has not finished at the provider, or we have not heard yet.
    Pending,
    /// The provider holds the money but has not taken it yet.
    Authorised,
    /// Paid.
    Captured,
    /// Paid and given back. Terminal.
    Refunded,
    /// The provider refused or cancelled the payment (a retry at the provider may still
    /// succeed).
    Failed,
    /// We stopped waiting (our own timeout, not the provider's word).
    Expired,
}

impl PaymentState {
    pub const ALL: [PaymentState; 6] = [
        PaymentState::Pending,
        PaymentState::Authorised,
        PaymentState::Captured,
        PaymentState::Refunded,
        PaymentState::Failed,
        PaymentState::Expired,
    ];

    /// Still waiting for the provider: reconciliation polls these.
    pub fn is_open(self) -> bool {
        matches!(self, PaymentState::Pending | PaymentState::Authorised)
    }

    /// The provider might still report money for it: open, failed (the resident may retry
    /// at the provider) or expired by us. Reconciliation polls these.
    pub fn may_still_be_paid(self) -> bool {
        !matches!(self, PaymentState::Captured | PaymentState::Refunded)
    }

    /// The fee has been paid (and not given back).
    pub fn is_paid(self) -> bool {
        self == PaymentState::Captured
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Authorised => "authorised",
            PaymentState::Captured => "captured",
            PaymentState::Refunded => "refunded",
            PaymentState::Failed => "failed",
            PaymentState::Expired => "expired",
        }
    }
}

/// Something that happened to a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentEvent {
    ProviderAuthorised,
    ProviderCaptured,
    ProviderFailed {
        reason: String,
    },
    ProviderRefunded,
    /// Our own timeout: the payment passed `expires_at` and the provider does not report it
    /// paid.
    Expire,
}

impl PaymentEvent {
    /// Whether the event is the provider's word (as opposed to our own timeout).
    pub fn is_from_provider(&self) -> bool {
        !matches!(self, PaymentEvent::Expire)
    }
}

/// The result of applying an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transition {
    Applied {
        from: PaymentState,
        to: PaymentState,
        /// The provider's word arrived after we had expired the payment: staff should look.
        late: bool,
    },
    /// Nothing to do: a repeat, or news already superseded.
    Unchanged,
}

/// An event that cannot apply to the payment's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError {
    pub from: PaymentState,
    /// The event's kind, e.g. `provider_failed`.
    pub event: String,
}

impl TransitionError {
    pub fn message_ja(&self) -> String {
        format!(
            "決済の状態 {} に {} は適用できません",
            self.from.as_str(),
            self.event
        )
    }

    pub fn message_en(&self) -> String {
        format!(
            "{} cannot apply to a payment in state {}",
            self.event,
            self.from.as_str()
        )
    }
}

impl std::fmt::Display for TransitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.message_ja(), self.message_en())
    }
}

impl std::error::Error for TransitionError {}

/// The state machine: what `event` does to a payment in state `from`. Pure and total.
pub fn transition(from: PaymentState, event: &PaymentEvent) -> Result<Transition, TransitionError> {
    use PaymentEvent as E;
    use PaymentState as S;
    let to = match (from, event) {
        (S::Refunded, E::ProviderRefunded) => None,
        // A refund implies the capture before it; our timeout no longer matters.
        (S::Refunded, E::ProviderCaptured | E::ProviderAuthorised | E::Expire) => None,
        (S::Refunded, E::ProviderFailed { .. }) => return Err(refused(from, event)),

        (S::Captured, E::ProviderCaptured | E::ProviderAuthorised | E::Expire) => None,
        (S::Captured, E::ProviderRefunded) => Some(S::Refunded),
        (S::Captured, E::ProviderFailed { .. }) => return Err(refused(from, event)),

        (S::Authorised, E::ProviderAuthorised) => None,
        (S::Pending, E::ProviderAuthorised)
        | (S::Failed, E::ProviderAuthorised)
        | (S::Expired, E::ProviderAuthorised) => Some(S::Authorised),

        (S::Pending | S::Authorised | S::Failed | S::Expired, E::ProviderCaptured) => {
            Some(S::Captured)
        }
        (S::Pending | S::Authorised | S::Failed | S::Expired, E::ProviderRefunded) => {
            Some(S::Refunded)
        }

        (S::Failed, E::ProviderFailed { .. }) => None,
        (S::Pending | S::Authorised | S::Expired, E::ProviderFailed { .. }) => Some(S::Failed),

        (S::Pending | S::Authorised, E::Expire) => Some(S::Expired),
        // Already over, one way or the other: our timeout adds nothing.
        (S::Failed | S::Expired, E::Expire) => None,
    };
    Ok(match to {
        None => Transition::Unchanged,
        Some(to) => Transition::Applied {
            from,
            to,
            // Only money moving after we gave up needs a person; a failure report does not.
            late: from == S::Expired && matches!(to, S::Authorised | S::Captured | S::Refunded),
        },
    })
}

fn refused(from: PaymentState, event: &PaymentEvent) -> TransitionError {
    let event = match event {
        PaymentEvent::ProviderAuthorised => "provider_authorised",
        PaymentEvent::ProviderCaptured => "provider_captured",
        PaymentEvent::ProviderFailed { .. } => "provider_failed",
        PaymentEvent::ProviderRefunded => "provider_refunded",
        PaymentEvent::Expire => "expire",
    };
    TransitionError {
        from,
        event: event.to_owned(),
    }
}

/// One attempt to pay one application's fee. An application may have several (a new one
/// after a failure or an expiry); at most one of them should end up captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub application_id: String,
    pub amount_yen: u64,
    pub state: PaymentState,
    /// [`PaymentProvider::name`] of the provider that handles it.
    pub provider: String,
    /// The provider's id for the payment, once [`PaymentProvider::start`] returned.
    pub provider_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Provider event ids already applied, so a repeated callback is recognised even after
    /// later news has moved the state on.
    #[serde(default)]
    pub seen_event_ids: BTreeSet<String>,
    /// Set when the provider's word arrived after we had expired the payment.
    #[serde(default)]
    pub late: bool,
    /// The provider's reason for the latest failure, shown to staff.
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// What the resident sees on returning from the provider's page. Derived from the state
/// only: the return itself is never evidence of payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidentView {
    /// Paid.
    Paid,
    /// We have not heard from the provider yet; the page should offer to reload.
    Processing,
    /// The payment did not go through; the resident may start a new one.
    NotPaid,
    /// The fee was paid and given back.
    Refunded,
}

impl Payment {
    /// A new pending payment that we stop waiting for after `ttl`.
    pub fn new(
        id: impl Into<String>,
        application_id: impl Into<String>,
        amount_yen: u64,
        provider: impl Into<String>,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Self {
        Payment {
            id: id.into(),
            application_id: application_id.into(),
            amount_yen,
            state: PaymentState::Pending,
            provider: provider.into(),
            provider_ref: None,
            created_at: now,
            updated_at: now,
            expires_at: now + ttl,
            seen_event_ids: BTreeSet::new(),
            late: false,
            failure_reason: None,
        }
    }

    /// Applies an event. `provider_event_id` is the provider's id for a callback (`None` for
    /// our own timeout and for facts learnt by polling): an id already seen is `Unchanged`
    /// whatever it says. A refused event is neither applied nor remembered, so it stays
    /// visible on every redelivery.
    pub fn apply(
        &mut self,
        provider_event_id: Option<&str>,
        event: &PaymentEvent,
        now: DateTime<Utc>,
    ) -> Result<Transition, TransitionError> {
        if let Some(id) = provider_event_id {
            if self.seen_event_ids.contains(id) {
                return Ok(Transition::Unchanged);
            }
        }
        let outcome = transition(self.state, event)?;
        if let Some(id) = provider_event_id {
            self.seen_event_ids.insert(id.to_owned());
        }
        if let Transition::Applied { to, late, .. } = outcome {
            self.state = to;
            self.updated_at = now;
            self.late |= late;
            if let PaymentEvent::ProviderFailed { reason } = event {
                self.failure_reason = Some(reason.clone());
            }
        }
        Ok(outcome)
    }

    pub fn resident_view(&self) -> ResidentView {
        match self.state {
            PaymentState::Captured => ResidentView::Paid,
            PaymentState::Pending | PaymentState::Authorised => ResidentView::Processing,
            PaymentState::Failed | PaymentState::Expired => ResidentView::NotPaid,
            PaymentState::Refunded => ResidentView::Refunded,
        }
    }
}
