//! The applications worker that `renkei serve` runs: it delivers the outbox (mail to
//! applicants over SMTP, back-office webhooks, and each application's NGSI-LD entity),
//! asks the payment gateway about payments whose callback never came, and runs the
//! retention job. Messages are claimed with a lease, so several nodes share the work and
//! a node that dies mid-delivery leaves its messages to be claimed again (at least once).

use crate::AppState;
use broker::{BatchItem, UpsertMode};
use chrono::{DateTime, Duration, Utc};
use ngsi_ld::context as codec;
use notifier::smtp::{Mail, Mailer};
use serde_json::{json, Value};
use std::time::Duration as StdDuration;
use store::applications::OutboxMessage;
use store::Tenant;

/// After this many failed attempts a message is dropped (and the drop logged).
const MAX_ATTEMPTS: i32 = 12;
/// How long a claimed message is reserved for the node that claimed it.
const LEASE_SECONDS: i64 = 120;
/// Callbacks get this long to arrive before the gateway is asked.
const RECONCILE_GRACE_MINUTES: i64 = 10;
const RETENTION_EVERY: StdDuration = StdDuration::from_secs(3600);

/// The entity type of an application's status in the broker (no personal data).
pub const APPLICATION_TYPE: &str = "urn:renkei:procedures:Application";

/// Runs until dropped.
pub struct Worker {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn start(state: &AppState) -> anyhow::Result<Worker> {
    let mailer = match &state.config.smtp {
        Some(config) => Some(Mailer::new(config)?),
        None => None,
    };
    let state = state.clone();
    let task = tokio::spawn(async move {
        let tick = state.config.applications_tick;
        let mut last_retention: Option<std::time::Instant> = None;
        loop {
            if let Err(error) = deliver_due(&state, mailer.as_ref()).await {
                tracing::error!(%error, "delivering application notifications failed; retrying");
            }
            if state.config.payment.is_some() {
                match state
                    .applications
                    .reconcile_payments(Duration::minutes(RECONCILE_GRACE_MINUTES))
                    .await
                {
                    Ok(0) => {}
                    Ok(changed) => tracing::info!(changed, "payments reconciled with the gateway"),
                    Err(error) => tracing::error!(%error, "payment reconciliation failed"),
                }
            }
            if last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
                match state.applications.run_retention(Utc::now()).await {
                    Ok(report) => {
                        if report.anonymised + report.expired_drafts > 0 {
                            tracing::info!(
                                anonymised = report.anonymised,
                                expired_drafts = report.expired_drafts,
                                "retention run"
                            );
                        }
                        last_retention = Some(std::time::Instant::now());
                    }
                    Err(error) => tracing::error!(%error, "retention run failed"),
                }
            }
            tokio::time::sleep(tick).await;
        }
    });
    Ok(Worker { task })
}

/// Delivers every message due now; returns how many were delivered.
pub async fn deliver_due(state: &AppState, mailer: Option<&Mailer>) -> anyhow::Result<usize> {
    let store = state.applications.store().clone();
    let mut delivered = 0;
    loop {
        let now = Utc::now();
        let batch = store
            .claim_outbox(now, now + Duration::seconds(LEASE_SECONDS), 50)
            .await?;
        if batch.is_empty() {
            return Ok(delivered);
        }
        for message in batch {
            match deliver(state, mailer, &message).await {
                Ok(()) => {
                    store.complete_outbox(message.id).await?;
                    delivered += 1;
                }
                Err(Failure::Permanent(reason)) => {
                    tracing::error!(id = message.id, channel = %message.channel, %reason, "notification dropped: it cannot be delivered");
                    store.complete_outbox(message.id).await?;
                }
                Err(Failure::Transient(reason)) if message.attempts + 1 >= MAX_ATTEMPTS => {
                    tracing::error!(id = message.id, channel = %message.channel, %reason, "notification dropped after {MAX_ATTEMPTS} attempts");
                    store.complete_outbox(message.id).await?;
                }
                Err(Failure::Transient(reason)) => {
                    tracing::warn!(id = message.id, channel = %message.channel, %reason, "notification failed; will retry");
                    store
                        .retry_outbox(message.id, backoff(now, message.attempts))
                        .await?;
                }
            }
        }
    }
}

/// 5 s, 10 s, 20 s … at most an hour.
fn backoff(now: DateTime<Utc>, attempts: i32) -> DateTime<Utc> {
    let seconds = 5i64.saturating_mul(1 << attempts.clamp(0, 10)).min(3600);
    now + Duration::seconds(seconds)
}

enum Failure {
    Permanent(String),
    Transient(String),
}

async fn deliver(
    state: &AppState,
    mailer: Option<&Mailer>,
    message: &OutboxMessage,
) -> Result<(), Failure> {
    let payload = &message.payload;
    match message.channel.as_str() {
        "mail" => {
            let Some(mailer) = mailer else {
                tracing::debug!(id = message.id, "no SMTP relay configured; mail not sent");
                return Ok(());
            };
            let sealed = payload["to_sealed"].as_str().unwrap_or_default();
            let to = state
                .applications
                .open_mail_address(sealed)
                .map_err(|e| Failure::Permanent(e.to_string()))?;
            let mail = Mail {
                to,
                subject: payload["subject"].as_str().unwrap_or_default().to_owned(),
                text_body: payload["body"].as_str().unwrap_or_default().to_owned(),
            };
            mailer.send(&mail).await.map_err(|e| {
                if e.is_permanent() {
                    Failure::Permanent(e.to_string())
                } else {
                    Failure::Transient(e.to_string())
                }
            })
        }
        "webhook" => {
            let url = payload["url"].as_str().unwrap_or_default();
            let response = reqwest::Client::new()
                .post(url)
                .timeout(StdDuration::from_secs(10))
                .json(&payload["body"])
                .send()
                .await
                .map_err(|e| Failure::Transient(e.to_string()))?;
            match response.status() {
                s if s.is_success() => Ok(()),
                s if s.is_client_error() && s.as_u16() != 429 => {
                    Err(Failure::Permanent(format!("the webhook answered {s}")))
                }
                s => Err(Failure::Transient(format!("the webhook answered {s}"))),
            }
        }
        "entity" => upsert_entity(state, &message.tenant, payload).await,
        other => Err(Failure::Permanent(format!("unknown channel {other}"))),
    }
}

/// Keeps `urn:ngsi-ld:Application:{id}` in the tenant current: state, reception number
/// and procedure, never answers.
async fn upsert_entity(state: &AppState, tenant: &str, event: &Value) -> Result<(), Failure> {
    let id = event["application_id"].as_str().unwrap_or_default();
    let property = |value: &Value| json!({"type": "Property", "value": value});
    let entity = json!({
        "id": format!("urn:ngsi-ld:Application:{id}"),
        "type": APPLICATION_TYPE,
        "urn:renkei:procedures:state": property(&event["state"]),
        "urn:renkei:procedures:receptionNumber": property(&event["reception_number"]),
        "urn:renkei:procedures:procedure": property(&event["procedure_id"]),
        "urn:renkei:procedures:changedAt": property(&event["at"]),
    });
    let ctx = state
        .broker
        .contexts()
        .resolve(None)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    let decoded =
        codec::decode_entity(&entity, &ctx).map_err(|e| Failure::Permanent(e.to_string()))?;
    let report = state
        .broker
        .batch_upsert(
            &Tenant::named(tenant),
            vec![BatchItem::Valid(decoded)],
            UpsertMode::Replace,
        )
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    match report.errors.first() {
        None => Ok(()),
        Some((_, error)) => Err(Failure::Transient(error.to_string())),
    }
}
