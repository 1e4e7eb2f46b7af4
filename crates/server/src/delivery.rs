//! The background work of subscriptions: the dispatcher loop (changes → queued
//! notifications, see `broker::notifications`) and the delivery loop, which claims the
//! oldest due notification of each subscription and sends it on a task of its own, so
//! one slow or dead endpoint never delays another subscription's notifications. A
//! failed attempt is retried with exponential backoff; the queue is in the database,
//! so a restart resumes where the last node stopped.

use crate::AppState;
use broker::notifications::Dispatcher;
use chrono::{DateTime, Utc};
use ngsi_ld::subscription::Subscription;
use notifier::{Accept, Endpoint, Notifier, Outgoing};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::subscriptions::{DeliveryOutcome, QueuedNotification, SharedSubscriptionStore};
use tokio::task::JoinHandle;

/// How often an idle loop looks for work: the delay a quiet system adds to a
/// notification, twice (dispatch, then delivery). Measured: 10 ms made things worse
/// (each dispatch round reads every subscription, so more, smaller rounds cost more);
/// caching the decoded subscriptions, then waking the loops on commit, come first.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How long a claimed notification stays ours: longer than any delivery attempt (the
/// HTTP and MQTT time-outs are 10 s), and the longest a notification in flight when a
/// node dies waits before another node (or the restarted one) sends it again.
const LEASE: Duration = Duration::from_secs(20);
/// Deliveries in flight at once, over all subscriptions.
const MAX_IN_FLIGHT: usize = 256;
/// After this many failed attempts (about a day of backoff) a notification is dropped.
const MAX_ATTEMPTS: u32 = 20;

/// The running loops; dropping this value stops them.
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts dispatching and delivering for `state`'s database.
pub fn start(state: &AppState) -> anyhow::Result<Background> {
    let dispatcher = Arc::new(Dispatcher::new(
        state.subscriptions.clone(),
        state.broker.store().clone(),
        state.broker.contexts_handle(),
    ));
    let node = format!("renkei-{}", uuid::Uuid::new_v4());
    let deliveries = Deliveries {
        store: state.subscriptions.clone(),
        notifier: Notifier::new(Default::default())?,
        node,
        in_flight: Arc::new(Mutex::new(HashSet::new())),
        slots: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
    };
    Ok(Background {
        tasks: vec![
            tokio::spawn(dispatch_loop(dispatcher)),
            tokio::spawn(deliveries.run()),
        ],
    })
}

async fn dispatch_loop(dispatcher: Arc<Dispatcher>) {
    let mut next_periodic = Utc::now();
    loop {
        if Utc::now() >= next_periodic {
            if let Err(error) = dispatcher.notify_periodic(Utc::now()).await {
                tracing::error!(%error, "periodic notifications failed; retrying");
            }
            next_periodic = Utc::now() + chrono::Duration::seconds(1);
        }
        match dispatcher.dispatch_once(Utc::now()).await {
            Ok(0) => tokio::time::sleep(IDLE_POLL).await,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "dispatching notifications failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[derive(Clone)]
struct Deliveries {
    store: SharedSubscriptionStore,
    notifier: Notifier,
    node: String,
    /// Notifications this node is sending now, so a claim round never starts them twice.
    in_flight: Arc<Mutex<HashSet<i64>>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Deliveries {
    async fn run(self) {
        loop {
            let claimed = self
                .store
                .claim_due_notifications(&self.node, Utc::now(), LEASE, MAX_IN_FLIGHT)
                .await;
            let due = match claimed {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "claiming notifications failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut started = 0;
            for queued in due {
                if !self.lock().insert(queued.id) {
                    continue;
                }
                let Ok(slot) = self.slots.clone().acquire_owned().await else {
                    return;
                };
                started += 1;
                let this = self.clone();
                tokio::spawn(async move {
                    let id = queued.id;
                    this.deliver(queued).await;
                    this.lock().remove(&id);
                    drop(slot);
                });
            }
            if started == 0 {
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn deliver(&self, queued: QueuedNotification) {
        let outcome = match self.attempt(&queued).await {
            Ok(()) => DeliveryOutcome::Delivered { at: Utc::now() },
            Err(Failure::Gone) => DeliveryOutcome::Failed {
                at: Utc::now(),
                retry_at: None,
            },
            Err(Failure::Retry(reason)) => {
                tracing::info!(subscription = %queued.subscription_id, attempt = queued.attempts + 1, %reason, "notification not delivered");
                let now = Utc::now();
                let retry_at =
                    (queued.attempts + 1 < MAX_ATTEMPTS).then(|| retry_time(now, queued.attempts));
                DeliveryOutcome::Failed { at: now, retry_at }
            }
        };
        if let Err(error) = self.store.finish_notification(queued.id, outcome).await {
            // The lease runs out and another round delivers it again (at least once).
            tracing::error!(%error, "recording a delivery failed");
        }
    }

    async fn attempt(&self, queued: &QueuedNotification) -> Result<(), Failure> {
        let stored = self
            .store
            .get_subscription(&queued.tenant, &queued.subscription_id)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))?
            .ok_or(Failure::Gone)?;
        let subscription = Subscription::from_document(&stored.doc).map_err(|_| Failure::Gone)?;
        let endpoint = endpoint_of(&subscription).map_err(Failure::Retry)?;
        let context = match &subscription.jsonld_context {
            Some(url) => url.clone(),
            None => context_url(&subscription.context),
        };
        let tenant = (!queued.tenant.is_default()).then(|| queued.tenant.name());
        let outgoing = Outgoing {
            notification: &queued.payload,
            context_url: &context,
            tenant,
        };
        self.notifier
            .deliver(&endpoint, outgoing)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))
    }
}

enum Failure {
    /// The subscription is gone: drop the notification.
    Gone,
    Retry(String),
}

/// 1 s, 2 s, 4 s, … at most 10 minutes between attempts.
fn retry_time(now: DateTime<Utc>, attempts: u32) -> DateTime<Utc> {
    let seconds = 1u64 << attempts.min(10);
    now + chrono::Duration::seconds(seconds.min(600) as i64)
}

fn endpoint_of(subscription: &Subscription) -> Result<Endpoint, String> {
    let endpoint = &subscription.notification.endpoint;
    Ok(Endpoint {
        uri: url::Url::parse(&endpoint.uri).map_err(|e| format!("endpoint URI: {e}"))?,
        accept: if endpoint.accept == "application/ld+json" {
            Accept::JsonLd
        } else {
            Accept::Json
        },
        receiver_info: endpoint.receiver_info.clone(),
        notifier_info: endpoint.notifier_info.clone(),
    })
}

/// The context a notification names: the subscription's own when it is a URL (or a
/// list holding one), the core context otherwise.
fn context_url(context: &Value) -> String {
    let core = ngsi_ld::context::CORE_CONTEXT_URL;
    match context {
        Value::String(url) => url.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .find(|url| !ngsi_ld::context::is_core_context_url(url))
            .unwrap_or(core)
            .to_owned(),
        _ => core.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_ten_minutes() {
        let now = Utc::now();
        assert_eq!(retry_time(now, 0) - now, chrono::Duration::seconds(1));
        assert_eq!(retry_time(now, 3) - now, chrono::Duration::seconds(8));
        assert_eq!(retry_time(now, 15) - now, chrono::Duration::seconds(600));
    }

    #[test]
    fn notifications_name_the_subscriptions_context() {
        assert_eq!(
            context_url(&Value::String("https://ex.org/c.jsonld".into())),
            "https://ex.org/c.jsonld"
        );
        let list = serde_json::json!([
            "https://ex.org/c.jsonld",
            ngsi_ld::context::CORE_CONTEXT_URL
        ]);
        assert_eq!(context_url(&list), "https://ex.org/c.jsonld");
        assert_eq!(
            context_url(&serde_json::json!({"a": "b"})),
            ngsi_ld::context::CORE_CONTEXT_URL
        );
    }
}
