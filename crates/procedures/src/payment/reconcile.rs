//! Reconciliation (突合): finds what callbacks failed to tell us. A gateway's callback can be
//! lost (our node was restarting, a firewall dropped it, the gateway gave up retrying), so a
//! periodic job asks the provider about every payment that is still open and quiet for longer
//! than a grace period, and expires those past their deadline that the provider confirms are
//! unpaid.
//!
//! The function only proposes events; the caller applies each with
//! [`Payment::apply`](super::Payment::apply) (with no provider event id) inside its own
//! transaction, so a callback that races the poll is handled by the state machine like any
//! other repeat.

use chrono::{DateTime, Duration, Utc};

use super::provider::{PaymentProvider, ProviderError, ProviderStatus};
use super::{transition, Payment, PaymentEvent, Transition};

/// What one reconciliation pass found.
#[derive(Debug, Default)]
pub struct ReconcileReport {
    /// (payment id, event to apply), only events that would change the payment.
    pub events: Vec<(String, PaymentEvent)>,
    /// (payment id, why the provider could not be asked); retried on the next pass.
    pub failures: Vec<(String, ProviderError)>,
}

/// Polls `provider` for the payments among `payments` that belong to it, could still turn
/// into money ([`PaymentState::may_still_be_paid`](super::PaymentState::may_still_be_paid)) and have not changed for `grace`.
///
/// Callers pass the open payments (`Pending`, `Authorised`) and, for as long as the gateway
/// may still take money for them (its own session lifetime, typically a day), the `Failed`
/// and `Expired` ones too: a resident who retries at the gateway after a decline, or pays
/// after we expired the payment, and whose callback is lost, is found only this way.
///
/// * The provider's answer is turned into the event it reports, if that would change the
///   payment (a capture found this way is exactly a lost callback).
/// * A payment past `expires_at` that the provider reports `pending` gets `Expire`. One the
///   provider reports `authorised` is not expired: the money is held, and the gateway will
///   capture or release it and say so.
/// * A payment that never got a `provider_ref` (the start call failed) is expired once past
///   `expires_at` without asking anyone: the provider never heard of it.
///
/// Payments are polled one after another, which keeps the load on the gateway predictable.
pub async fn reconcile(
    provider: &dyn PaymentProvider,
    payments: &[Payment],
    now: DateTime<Utc>,
    grace: Duration,
) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    for payment in payments {
        if payment.provider != provider.name()
            || !payment.state.may_still_be_paid()
            || payment.updated_at + grace > now
        {
            continue;
        }
        let past_deadline = now >= payment.expires_at;
        let event = match &payment.provider_ref {
            None => past_deadline.then_some(PaymentEvent::Expire),
            Some(provider_ref) => match provider.status(provider_ref).await {
                Err(e) => {
                    report.failures.push((payment.id.clone(), e));
                    continue;
                }
                Ok(ProviderStatus::Pending) => past_deadline.then_some(PaymentEvent::Expire),
                Ok(status) => status.event(),
            },
        };
        if let Some(event) = event {
            if matches!(
                transition(payment.state, &event),
                Ok(Transition::Applied { .. })
            ) {
                report.events.push((payment.id.clone(), event));
            }
        }
    }
    report
}
