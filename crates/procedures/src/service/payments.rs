//! Fees: starting a payment with the provider, the provider's signed callbacks (applied
//! once however often they come, in whatever order, before or after the resident's
//! return), the resident's return (which only reads), and reconciliation of payments
//! whose callback never came. A captured payment settles its application: one paid
//! before review is received by the system; one paid after approval completes it.

use super::lifecycle::Loaded;
use super::{new_id, Applications, Person, ServiceError};
use crate::application::{self, ActorKind, ApplicationState, Command, Guards};
use crate::payment::{
    self, Payment, PaymentEvent, PaymentState, ResidentView, StartRequest, Transition,
};
use chrono::{Duration, Utc};
use serde::Serialize;
use store::applications::PaymentRecord;

/// Where to send the resident to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentStart {
    pub payment_id: String,
    pub amount_yen: u64,
    pub redirect_url: String,
}

fn to_record(tenant: &str, payment: &Payment, version: i64) -> Result<PaymentRecord, ServiceError> {
    Ok(PaymentRecord {
        id: payment.id.clone(),
        tenant: tenant.to_owned(),
        application_id: payment.application_id.clone(),
        provider: payment.provider.clone(),
        provider_ref: payment.provider_ref.clone(),
        state: payment.state.as_str().to_owned(),
        amount_yen: payment.amount_yen as i64,
        created_at: payment.created_at,
        updated_at: payment.updated_at,
        expires_at: payment.expires_at,
        document: serde_json::to_value(payment).map_err(ServiceError::internal)?,
        version,
    })
}

fn from_record(record: &PaymentRecord) -> Result<Payment, ServiceError> {
    serde_json::from_value(record.document.clone())
        .map_err(|e| ServiceError::internal(format!("stored payment {}: {e}", record.id)))
}

impl Applications {
    fn provider(&self) -> Result<&std::sync::Arc<dyn payment::PaymentProvider>, ServiceError> {
        self.provider.as_ref().ok_or_else(|| {
            ServiceError::conflict(
                "PaymentsNotConfigured",
                "オンライン決済が設定されていません",
                "online payment is not configured on this platform",
            )
        })
    }

    /// Starts paying an application's fee and returns where to send the resident.
    pub async fn start_payment(
        &self,
        id: &str,
        applicant: &Person,
    ) -> Result<PaymentStart, ServiceError> {
        let loaded = self.load_own(id, applicant).await?;
        let provider = self.provider()?;
        let Some(amount) = loaded.stored.fee_yen else {
            return Err(ServiceError::conflict(
                "NoFee",
                "この申請に手数料はありません",
                "this application has no fee",
            ));
        };
        let payable = if loaded.procedure.procedure.pays_after_approval() {
            loaded.state == ApplicationState::Approved
        } else {
            matches!(
                loaded.state,
                ApplicationState::Submitted | ApplicationState::Received
            )
        };
        if loaded.stored.payment_settled || !payable {
            return Err(ServiceError::conflict(
                "NotPayable",
                format!(
                    "「{}」の申請は今は支払えません（支払済みまたは支払時期外）",
                    loaded.state.label_ja()
                ),
                format!(
                    "an application that is {} cannot be paid now (paid, or not yet due)",
                    loaded.state.label_en()
                ),
            ));
        }
        let now = Utc::now();
        let mut payment = Payment::new(
            new_id(),
            id,
            amount,
            provider.name(),
            now,
            self.settings.payment_ttl,
        );
        self.store
            .insert_payment(&to_record(&loaded.record.tenant, &payment, 0)?)
            .await?;
        let base = self.settings.public_url.trim_end_matches('/');
        let started = provider
            .start(&StartRequest {
                payment_id: payment.id.clone(),
                amount_yen: amount,
                description: format!(
                    "{} {}",
                    loaded.procedure.procedure.title.ja,
                    loaded.record.reception_number.clone().unwrap_or_default()
                ),
                return_url: format!("{base}/api/v1/procedures/payments/{}/return", payment.id),
                callback_url: format!("{base}/api/v1/procedures/payments/callback"),
            })
            .await
            .map_err(|e| ServiceError::Provider(e.to_string()))?;
        payment.provider_ref = Some(started.provider_ref.clone());
        payment.updated_at = Utc::now();
        // Callbacks find a payment by its provider ref, so none can have moved this one
        // before the ref is stored; one that comes meanwhile is refused as unknown and
        // redelivered by the provider (or found later by reconciliation).
        let record = to_record(&loaded.record.tenant, &payment, 1)?;
        self.store.update_payment(&record, 1, None).await?;
        Ok(PaymentStart {
            payment_id: payment.id,
            amount_yen: amount,
            redirect_url: started.redirect_url,
        })
    }

    /// A callback from the provider: verified, applied once, and its application settled.
    pub async fn payment_callback(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), ServiceError> {
        let provider = self.provider()?;
        let callback = provider
            .verify_callback(headers, body, Utc::now())
            .map_err(|e| ServiceError::Callback(e.to_string()))?;
        let record = self
            .store
            .payment_by_provider_ref(provider.name(), &callback.provider_ref)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("payment {}", callback.provider_ref)))?;
        self.apply_payment_event(record, Some(&callback.provider_event_id), &callback.event)
            .await
    }

    async fn apply_payment_event(
        &self,
        record: PaymentRecord,
        event_id: Option<&str>,
        event: &PaymentEvent,
    ) -> Result<(), ServiceError> {
        let mut payment = from_record(&record)?;
        let outcome = payment.apply(event_id, event, Utc::now()).map_err(|e| {
            ServiceError::conflict("PaymentTransition", e.to_string(), e.to_string())
        })?;
        if outcome == Transition::Unchanged {
            return Ok(());
        }
        let updated = to_record(&record.tenant, &payment, record.version)?;
        if self
            .store
            .update_payment(&updated, record.version, event_id)
            .await?
            .is_none()
        {
            return Ok(()); // the same event was applied by another delivery
        }
        if payment.state == PaymentState::Captured {
            self.settle(&payment.application_id).await?;
        }
        Ok(())
    }

    /// Marks the application paid and moves it on as the procedure says. Retried when
    /// a concurrent write came first.
    async fn settle(&self, application_id: &str) -> Result<(), ServiceError> {
        for _ in 0..5 {
            let mut loaded = self.load(application_id).await?;
            if loaded.stored.payment_settled {
                return Ok(());
            }
            loaded.stored.payment_settled = true;
            let result = self.settle_once(&mut loaded).await;
            match result {
                Err(ServiceError::Conflict {
                    code: "ChangedMeanwhile",
                    ..
                }) => continue,
                other => return other,
            }
        }
        Err(ServiceError::internal(format!(
            "could not settle {application_id}: too many concurrent writes"
        )))
    }

    async fn settle_once(&self, loaded: &mut Loaded) -> Result<(), ServiceError> {
        let now = Utc::now();
        let command = match loaded.state {
            ApplicationState::Submitted if loaded.procedure.procedure.pays_before_review() => {
                Some(Command::Receive)
            }
            ApplicationState::Approved if loaded.procedure.procedure.pays_after_approval() => {
                Some(Command::Complete)
            }
            _ => None,
        };
        let Some(command) = command else {
            self.write(loaded, loaded.state, now, Default::default())
                .await?;
            return Ok(());
        };
        let guards = Guards {
            payment_required_before_review: loaded.procedure.procedure.pays_before_review(),
            payment_required_after_approval: loaded.procedure.procedure.pays_after_approval(),
            payment_settled: true,
            chain_complete: false,
        };
        let entry = application::apply(
            loaded.state,
            &command,
            ActorKind::System,
            "payment",
            &guards,
            now,
        )?;
        if entry.to.is_terminal() {
            loaded.stored.finished_at = Some(now);
        }
        let answers = self.open_answers(loaded)?;
        let change = self.change_for(loaded, &entry, &answers)?;
        self.write(loaded, entry.to, now, change).await?;
        Ok(())
    }

    /// What the resident sees on coming back from the provider: read only, never a
    /// decision (the callback or reconciliation decides).
    pub async fn payment_return(
        &self,
        payment_id: &str,
    ) -> Result<(ResidentView, String), ServiceError> {
        let record = self
            .store
            .get_payment(payment_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("payment {payment_id}")))?;
        Ok((from_record(&record)?.resident_view(), record.application_id))
    }

    /// Asks the provider about open payments whose callback has not come within
    /// `grace`, and applies what it says; expires those past their deadline.
    /// Returns how many payments changed.
    pub async fn reconcile_payments(&self, grace: Duration) -> Result<usize, ServiceError> {
        let provider = self.provider()?;
        let now = Utc::now();
        // Failed and expired payments too: a resident may retry at the gateway, and a
        // capture whose callback was lost must still be found.
        let states: Vec<String> = PaymentState::ALL
            .into_iter()
            .filter(|s| s.may_still_be_paid())
            .map(|s| s.as_str().to_owned())
            .collect();
        let records = self.store.payments_in_states(&states, now - grace).await?;
        let payments: Vec<Payment> = records.iter().map(from_record).collect::<Result<_, _>>()?;
        let report = payment::reconcile(provider.as_ref(), &payments, now, grace).await;
        for (id, error) in &report.failures {
            tracing::warn!(payment = %id, %error, "reconciliation could not ask the provider");
        }
        let mut changed = 0;
        for (id, event) in report.events {
            if let Some(record) = records.iter().find(|r| r.id == id) {
                self.apply_payment_event(record.clone(), None, &event)
                    .await?;
                changed += 1;
            }
        }
        Ok(changed)
    }
}
