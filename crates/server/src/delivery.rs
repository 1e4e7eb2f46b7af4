//! The background work of subscriptions: the dispatcher loop (changes → queued
//! notifications, see `broker::notifications`), the delivery loop, which claims the
//! oldest due notifications of each subscription and sends them in order on a task of
//! the subscription's own, so one slow or dead endpoint never delays another
//! subscription's notifications, and the recorder, which writes the outcomes in
//! batches. A failed attempt is retried with exponential backoff; the queue is in the
//! database, so a restart resumes where the last node stopped. A loop that panics is
//! started again, so one fault does not end notifications until a restart.

use crate::AppState;
use broker::notifications::Dispatcher;
use chrono::{DateTime, Utc};
use ngsi_ld::subscription::Subscription;
use notifier::{Accept, Endpoint, Notifier, Outgoing};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::subscriptions::{DeliveryOutcome, QueuedNotification, SharedSubscriptionStore};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// How often an idle loop looks for work that this process was not told of (changes
/// committed by other nodes, retries coming due). Work done here wakes the loops at
/// once: a committed change wakes the dispatcher, queued notifications and recorded
/// outcomes wake the delivery loop.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How long a claimed notification stays ours: longer than any attempt (the HTTP and
/// MQTT time-outs are 10 s), and the longest a notification in flight when a node
/// dies waits before another node (or the restarted one) sends it again. A claim
/// still unsent when half of it is gone is released rather than sent late.
const LEASE: Duration = Duration::from_secs(20);
/// Subscriptions being delivered to at once.
const MAX_IN_FLIGHT: usize = 256;
/// Notifications of one subscription claimed and sent together, in order: a backlog
/// drains in few claims instead of one claim per notification.
const PER_SUBSCRIPTION: usize = 32;
/// After this many failed attempts (about a day of backoff) a notification is dropped.
const MAX_ATTEMPTS: u32 = 20;
/// Outcomes recorded in one transaction at most.
const FINISH_BATCH: usize = 2048;

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
    let wake = Arc::new(Notify::new());
    let (outcomes, finished) = mpsc::unbounded_channel();
    let deliveries = Deliveries {
        store: state.subscriptions.clone(),
        notifier: Notifier::new(Default::default())?,
        node: format!("renkei-{}", uuid::Uuid::new_v4()),
        slots: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        outcomes,
        wake: wake.clone(),
    };
    let activity = state.subscriptions.activity();
    let recorder_wake = wake.clone();
    let store = state.subscriptions.clone();
    // The recorder's loop may be started again; each run takes the receiver for as
    // long as it lives (a tokio lock is released, not poisoned, by a panic).
    let finished = Arc::new(tokio::sync::Mutex::new(finished));
    Ok(Background {
        tasks: vec![
            tokio::spawn(supervise("dispatcher", RESTART_DELAY, move || {
                dispatch_loop(dispatcher.clone(), activity.clone(), wake.clone())
            })),
            tokio::spawn(supervise("outcome recorder", RESTART_DELAY, move || {
                let (store, finished, wake) =
                    (store.clone(), finished.clone(), recorder_wake.clone());
                async move { record_outcomes(store, &mut *finished.lock().await, wake).await }
            })),
            tokio::spawn(supervise("delivery loop", RESTART_DELAY, move || {
                deliveries.clone().run()
            })),
        ],
    })
}

/// How long a loop that panicked waits before it is started again, so that a fault
/// that recurs at once does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Aborts the task it holds when dropped: the loop a stopped supervisor ran must stop
/// with it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the loop `start` makes on a task of its own and, when it panics, logs it and
/// starts a new one after `delay`. A loop that panics over one change or one
/// notification (a fault in renkei, not in the data) must not stop every later
/// notification until the process restarts; what the dead run had claimed comes back
/// when its leases run out. A loop that returns is not restarted.
async fn supervise<F, Fut>(name: &'static str, delay: Duration, start: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let mut run = AbortOnDrop(tokio::spawn(start()));
        match (&mut run.0).await {
            Ok(()) => return,
            Err(error) if error.is_panic() => {
                tracing::error!(
                    task = name,
                    "a notification loop panicked; starting it again"
                );
                tokio::time::sleep(delay).await;
            }
            // Cancelled: only by the runtime shutting down.
            Err(_) => return,
        }
    }
}

/// Sleeps until `signal` is given or the idle poll comes round.
async fn idle(signal: &Notify) {
    tokio::select! {
        () = signal.notified() => {}
        () = tokio::time::sleep(IDLE_POLL) => {}
    }
}

async fn dispatch_loop(dispatcher: Arc<Dispatcher>, activity: Arc<Notify>, wake: Arc<Notify>) {
    let mut next_periodic = Utc::now();
    loop {
        if Utc::now() >= next_periodic {
            if let Err(error) = dispatcher.notify_periodic(Utc::now()).await {
                tracing::error!(%error, "periodic notifications failed; retrying");
            }
            next_periodic = Utc::now() + chrono::Duration::seconds(1);
        }
        match dispatcher.dispatch_once(Utc::now()).await {
            Ok(0) => idle(&activity).await,
            Ok(_) => wake.notify_one(),
            Err(error) => {
                tracing::error!(%error, "dispatching notifications failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Records delivery outcomes in batches, one transaction for all that are waiting,
/// and wakes the delivery loop: the subscriptions they free have more to send.
async fn record_outcomes(
    store: SharedSubscriptionStore,
    finished: &mut mpsc::UnboundedReceiver<(i64, DeliveryOutcome)>,
    wake: Arc<Notify>,
) {
    while let Some(first) = finished.recv().await {
        let mut batch = vec![first];
        while batch.len() < FINISH_BATCH {
            match finished.try_recv() {
                Ok(outcome) => batch.push(outcome),
                Err(_) => break,
            }
        }
        if let Err(error) = store.finish_notifications(batch).await {
            // The leases run out and another round delivers them again (at least once).
            tracing::error!(%error, "recording delivery outcomes failed");
        }
        wake.notify_one();
    }
}

#[derive(Clone)]
struct Deliveries {
    store: SharedSubscriptionStore,
    notifier: Notifier,
    node: String,
    slots: Arc<tokio::sync::Semaphore>,
    outcomes: mpsc::UnboundedSender<(i64, DeliveryOutcome)>,
    wake: Arc<Notify>,
}

impl Deliveries {
    async fn run(self) {
        loop {
            let free = self.slots.available_permits();
            if free == 0 {
                idle(&self.wake).await;
                continue;
            }
            let claimed = self
                .store
                .claim_due_notifications(&self.node, Utc::now(), LEASE, free, PER_SUBSCRIPTION)
                .await;
            let due = match claimed {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "claiming notifications failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if due.is_empty() {
                idle(&self.wake).await;
                continue;
            }
            for claim in by_subscription(due) {
                let Ok(slot) = self.slots.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    for outcome in this.deliver(claim).await {
                        // The recorder outlives the loops; if it is gone, so are we.
                        let _ = this.outcomes.send(outcome);
                    }
                    drop(slot);
                });
            }
        }
    }

    /// Sends one subscription's claim in order, stopping at the first failure (the
    /// rest are released to wait behind the failed one, so the order holds) or when
    /// half the lease is spent (so that a slow endpoint never has its notifications
    /// claimed by another node while this one still sends them).
    async fn deliver(&self, claim: Vec<QueuedNotification>) -> Vec<(i64, DeliveryOutcome)> {
        let Some(first) = claim.first() else {
            return Vec::new();
        };
        let target = match self.target(first).await {
            Ok(target) => target,
            Err(failure) => {
                let mut outcomes = vec![(first.id, self.failed(first, failure))];
                outcomes.extend(claim[1..].iter().map(|q| (q.id, DeliveryOutcome::Released)));
                return outcomes;
            }
        };
        let mut outcomes = Vec::with_capacity(claim.len());
        let mut failed = false;
        let deadline = tokio::time::Instant::now() + LEASE / 2;
        for queued in &claim {
            if failed || tokio::time::Instant::now() >= deadline {
                outcomes.push((queued.id, DeliveryOutcome::Released));
                continue;
            }
            let outcome = match self.send(&target, queued).await {
                Ok(()) => DeliveryOutcome::Delivered { at: Utc::now() },
                Err(failure) => {
                    failed = true;
                    self.failed(queued, failure)
                }
            };
            outcomes.push((queued.id, outcome));
        }
        outcomes
    }

    fn failed(&self, queued: &QueuedNotification, failure: Failure) -> DeliveryOutcome {
        let now = Utc::now();
        match failure {
            Failure::Gone => DeliveryOutcome::Failed {
                at: now,
                retry_at: None,
            },
            Failure::Retry(reason) => {
                tracing::info!(subscription = %queued.subscription_id, attempt = queued.attempts + 1, %reason, "notification not delivered");
                let retry_at =
                    (queued.attempts + 1 < MAX_ATTEMPTS).then(|| retry_time(now, queued.attempts));
                DeliveryOutcome::Failed { at: now, retry_at }
            }
        }
    }

    /// Where and how a subscription's notifications go, read once per claim.
    async fn target(&self, queued: &QueuedNotification) -> Result<Target, Failure> {
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
        Ok(Target { endpoint, context })
    }

    async fn send(&self, target: &Target, queued: &QueuedNotification) -> Result<(), Failure> {
        let tenant = (!queued.tenant.is_default()).then(|| queued.tenant.name());
        let outgoing = Outgoing {
            notification: &queued.payload,
            context_url: &target.context,
            tenant,
        };
        self.notifier
            .deliver(&target.endpoint, outgoing)
            .await
            .map_err(|e| Failure::Retry(e.to_string()))
    }
}

struct Target {
    endpoint: Endpoint,
    context: String,
}

/// A claim split per subscription, each part in id order (the claim's own order).
fn by_subscription(claimed: Vec<QueuedNotification>) -> Vec<Vec<QueuedNotification>> {
    let mut groups: Vec<Vec<QueuedNotification>> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for queued in claimed {
        let key = (
            queued.tenant.name().to_owned(),
            queued.subscription_id.clone(),
        );
        match index.get(&key) {
            Some(&i) => groups[i].push(queued),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![queued]);
            }
        }
    }
    groups
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_loop_that_panics_is_started_again_and_one_that_returns_is_not() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let supervised = supervise("test loop", Duration::from_millis(1), move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run < 2 {
                    panic!("run {run} fails");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), supervised)
            .await
            .unwrap_or_else(|_| panic!("the supervisor did not return"));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn stopping_the_supervisor_stops_its_loop() {
        let alive = Arc::new(());
        let held = alive.clone();
        let supervisor = tokio::spawn(supervise("test loop", Duration::ZERO, move || {
            let held = held.clone();
            async move {
                let _held = held;
                std::future::pending::<()>().await;
            }
        }));
        while Arc::strong_count(&alive) < 3 {
            tokio::task::yield_now().await;
        }
        supervisor.abort();
        let _ = supervisor.await;
        // The supervisor took its factory's clone with it; the aborted loop lets go of
        // its own once the runtime drops it.
        for _ in 0..1000 {
            if Arc::strong_count(&alive) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(Arc::strong_count(&alive), 1);
    }

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
