//! The `notify` scenario (issue 4): renkei with its subscription loops running, a
//! thousand subscriptions whose endpoint is an HTTP receiver in this process, and a
//! sustained stream of attribute updates. Each update carries a sequence number in
//! its attribute value, and the client notes the instant its PATCH was acknowledged
//! (the 2xx arrived); the receiver notes the instant each notification arrived and
//! which (subscription, sequence number) it reports. Because every update of an entity
//! triggers exactly the subscriptions watching that entity, the expected notifications
//! are known exactly, so lost ones and duplicates are counted, not guessed. The
//! baseline is the same receiver fed the same notification bodies by the bench client
//! directly: what loopback HTTP and the receiver cost without renkei in between.

use crate::error::BenchError;
use crate::goals::Goal;
use crate::load;
use crate::scenarios::{Outcome, Settings};
use crate::stats::{Measurement, Ratio};
use crate::targets;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const NGSI: &str = "/ngsi-ld/v1";
const ENTITY_TYPE: &str = "BenchSensor";
/// The attribute every update changes and every subscription watches.
const ATTRIBUTE: &str = "seq";
/// After the last update, how long the receiver may go without a new notification
/// before the missing ones are declared lost.
const DRAIN_QUIET: Duration = Duration::from_secs(10);
/// And the longest the drain may take in all, however slowly notifications trickle.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Issue 4's targets.
const TARGET_RATE: f64 = 5_000.0;
const TARGET_P99_MS: f64 = 50.0;

/// Who watches what: `subscriptions` subscriptions over `subscriptions / fanout`
/// entities, subscription `s` watching entity `s % entities`, so each entity has
/// exactly `fanout` watchers; update `seq` (1-based) changes entity `(seq-1) %
/// entities`, so it must produce exactly `fanout` notifications.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub subscriptions: usize,
    pub fanout: usize,
    pub updates: usize,
}

impl Plan {
    /// A plan, refused unless the subscriptions split evenly over the entities.
    pub fn new(subscriptions: usize, fanout: usize, updates: usize) -> Result<Plan, BenchError> {
        if fanout == 0 || subscriptions == 0 || !subscriptions.is_multiple_of(fanout) {
            return Err(BenchError::Usage(format!(
                "--subscriptions ({subscriptions}) must be a positive multiple of --fanout ({fanout})"
            )));
        }
        Ok(Plan {
            subscriptions,
            fanout,
            updates,
        })
    }

    pub fn entities(&self) -> usize {
        self.subscriptions / self.fanout
    }

    /// The entity update `seq` changes.
    pub fn entity_of(&self, seq: u64) -> usize {
        (seq.saturating_sub(1) % self.entities() as u64) as usize
    }

    /// The entity subscription `sub` watches.
    pub fn watched_by(&self, sub: usize) -> usize {
        sub % self.entities()
    }

    /// Whether update `seq` must be notified to subscription `sub`.
    pub fn expects(&self, sub: usize, seq: u64) -> bool {
        sub < self.subscriptions
            && (1..=self.updates as u64).contains(&seq)
            && self.watched_by(sub) == self.entity_of(seq)
    }

    /// Notifications the whole stream of updates must produce.
    pub fn expected(&self) -> usize {
        self.updates * self.fanout
    }
}

/// One notification as the receiver saw it.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    pub subscription: usize,
    pub seq: u64,
    pub at: Instant,
}

#[derive(Default)]
struct Log {
    receipts: Vec<Receipt>,
    distinct: HashSet<(usize, u64)>,
    /// Bodies that were not a notification carrying a sequence number.
    malformed: usize,
}

/// The notification endpoint: `POST /notify/{subscription index}` records the
/// arrival instant and the sequence number of every entity in `data`, answers 204.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sequence number an entity of a notification (or of a baseline body) carries,
/// in normalized form (`{"seq": {"type": "Property", "value": {"seq": n, …}}}`) or
/// key-values (`{"seq": {"seq": n, …}}`), or as a bare number.
pub fn seq_of(entity: &Value) -> Option<u64> {
    let attribute = entity.get(ATTRIBUTE)?;
    let value = attribute.get("value").unwrap_or(attribute);
    value
        .get(ATTRIBUTE)
        .and_then(Value::as_u64)
        .or_else(|| value.as_u64())
}

async fn record(
    Path(sub): Path<usize>,
    State(log): State<Arc<Mutex<Log>>>,
    body: Bytes,
) -> StatusCode {
    // First, so that parsing is not part of the measured delay.
    let at = Instant::now();
    let seqs: Option<Vec<u64>> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
        .map(|data| data.iter().filter_map(seq_of).collect());
    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
    match seqs {
        Some(seqs) if !seqs.is_empty() => {
            for seq in seqs {
                log.receipts.push(Receipt {
                    subscription: sub,
                    seq,
                    at,
                });
                log.distinct.insert((sub, seq));
            }
        }
        _ => log.malformed += 1,
    }
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Result<Receiver, BenchError> {
        let log = Arc::new(Mutex::new(Log::default()));
        let router = Router::new()
            .route("/notify/{sub}", post(record))
            .with_state(Arc::clone(&log));
        let (base, task) = targets::serve(router, "notification receiver").await?;
        Ok(Receiver { base, log, task })
    }

    /// The endpoint URI of subscription `sub`.
    pub fn endpoint(&self, sub: usize) -> String {
        format!("{}/notify/{sub}", self.base)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Distinct (subscription, sequence number) pairs received so far.
    pub fn distinct(&self) -> usize {
        self.lock().distinct.len()
    }

    /// Waits until `expected` distinct notifications arrived, or none arrived for
    /// `DRAIN_QUIET`, or `DRAIN_LIMIT` passed; then hands over what was received.
    pub async fn drain(&self, expected: usize) -> (Vec<Receipt>, usize) {
        let started = Instant::now();
        let (mut seen, mut progress) = (self.distinct(), Instant::now());
        while seen < expected && progress.elapsed() < DRAIN_QUIET && started.elapsed() < DRAIN_LIMIT
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.distinct();
            if now != seen {
                (seen, progress) = (now, Instant::now());
            }
        }
        let mut log = self.lock();
        (std::mem::take(&mut log.receipts), log.malformed)
    }
}

/// What a stream of receipts amounts to against the plan.
#[derive(Debug, Default)]
pub struct Tally {
    pub expected: usize,
    /// Every (subscription, sequence number) received, duplicates included.
    pub received: usize,
    /// Expected pairs received at least once.
    pub distinct: usize,
    /// Receipts of an expected pair already received.
    pub duplicates: usize,
    /// Receipts of a pair the plan does not expect (a wrong subscription, an update
    /// never made, or one whose acknowledgement was not recorded).
    pub unexpected: usize,
    /// `expected - distinct`.
    pub lost: usize,
    /// First receipts that arrived before their change was acknowledged (their delay
    /// counts as zero).
    pub before_ack: usize,
    /// From acknowledgement to first receipt, one per distinct pair.
    pub delays: Vec<Duration>,
    /// The latest first receipt: the end of the delivery window.
    pub last: Option<Instant>,
}

/// Counts `receipts` against `plan`; `acked(sub, seq)` is the instant the change
/// notified to `sub` as `seq` was acknowledged (or, for the baseline, sent).
pub fn tally(
    plan: &Plan,
    receipts: &[Receipt],
    acked: impl Fn(usize, u64) -> Option<Instant>,
) -> Tally {
    let mut t = Tally {
        expected: plan.expected(),
        received: receipts.len(),
        ..Tally::default()
    };
    let mut seen = HashSet::with_capacity(receipts.len());
    for r in receipts {
        let ack = match acked(r.subscription, r.seq) {
            Some(ack) if plan.expects(r.subscription, r.seq) => ack,
            _ => {
                t.unexpected += 1;
                continue;
            }
        };
        if !seen.insert((r.subscription, r.seq)) {
            t.duplicates += 1;
            continue;
        }
        if r.at < ack {
            t.before_ack += 1;
        }
        t.delays.push(r.at.saturating_duration_since(ack));
        t.last = Some(t.last.map_or(r.at, |l| l.max(r.at)));
    }
    t.distinct = seen.len();
    t.lost = t.expected.saturating_sub(t.distinct);
    t
}

impl Tally {
    /// The table row: throughput is distinct notifications over the window from the
    /// first update (or send) to the last first receipt; percentiles are the delays.
    fn measurement(self, target: &str, started: Instant) -> Measurement {
        let window = self
            .last
            .map_or(Duration::ZERO, |l| l.saturating_duration_since(started));
        Measurement::from_durations("notify", target, self.delays, window, 1, "notif")
    }

    fn counts(&self) -> String {
        format!(
            "expected {}, received {} ({} distinct), lost {}, duplicates {}, unexpected {}, \
             before their acknowledgement {}",
            self.expected,
            self.received,
            self.distinct,
            self.lost,
            self.duplicates,
            self.unexpected,
            self.before_ack
        )
    }
}

fn entity_id(e: usize) -> String {
    format!("urn:ngsi-ld:{ENTITY_TYPE}:n{e}")
}

fn subscription_id(sub: usize) -> String {
    format!("urn:ngsi-ld:Subscription:bench-notify-{sub}")
}

/// The attribute as an update sends it: the sequence number and the send instant
/// (microseconds since the stream started, for whoever reads the notifications).
fn attribute(seq: u64, sent_us: u64) -> Value {
    json!({"type": "Property", "value": {"seq": seq, "sentUs": sent_us}})
}

fn micros_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The notification renkei would send subscription `sub` for update `seq`, as the
/// baseline sends it.
fn notification_body(plan: &Plan, sub: usize, seq: u64, sent_us: u64) -> Bytes {
    let body = json!({
        "id": format!("urn:ngsi-ld:Notification:{sub}-{seq}"),
        "type": "Notification",
        "subscriptionId": subscription_id(sub),
        "notifiedAt": "2024-08-01T00:00:00.000Z",
        "data": [{
            "id": entity_id(plan.entity_of(seq)),
            "type": ENTITY_TYPE,
            ATTRIBUTE: attribute(seq, sent_us)
        }]
    });
    Bytes::from(body.to_string())
}

impl Receiver {
    /// Forgets everything received (the warm-up's notifications).
    fn clear(&self) {
        let mut log = self.lock();
        *log = Log::default();
    }
}

/// From each send to its acknowledgement, for the operations that have both.
fn patch_durations(sent: &[OnceLock<Instant>], acked: &[OnceLock<Instant>]) -> Vec<Duration> {
    sent.iter()
        .zip(acked)
        .filter_map(|(s, a)| Some(a.get()?.saturating_duration_since(*s.get()?)))
        .collect()
}

/// One `OnceLock` per operation, set when it was acknowledged (or sent).
fn instants(n: usize) -> Arc<Vec<OnceLock<Instant>>> {
    Arc::new((0..n).map(|_| OnceLock::new()).collect())
}

/// Creates the plan's entities (the attribute at sequence number 0), then its
/// subscriptions, each pointing at its own path of `receiver`. The entities come
/// first, so that their creation is older than every subscription and notifies none.
async fn prepare(
    s: &Settings,
    plan: &Plan,
    base: &str,
    receiver: &Receiver,
) -> Result<(), BenchError> {
    let url = Arc::new(format!("{base}{NGSI}/entities"));
    let client = s.client.clone();
    load::run(plan.entities(), s.concurrency, move |e| {
        let (client, url) = (client.clone(), Arc::clone(&url));
        async move {
            let body = json!({"id": entity_id(e), "type": ENTITY_TYPE, ATTRIBUTE: attribute(0, 0)});
            load::post_json(&client, &url, Bytes::from(body.to_string()), &[201])
                .await
                .map(drop)
        }
    })
    .await?;
    let url = Arc::new(format!("{base}{NGSI}/subscriptions"));
    let endpoints: Arc<Vec<String>> = Arc::new(
        (0..plan.subscriptions)
            .map(|sub| receiver.endpoint(sub))
            .collect(),
    );
    let (client, plan) = (s.client.clone(), *plan);
    load::run(plan.subscriptions, s.concurrency, move |sub| {
        let (client, url, endpoints) = (client.clone(), Arc::clone(&url), Arc::clone(&endpoints));
        async move {
            let body = json!({
                "id": subscription_id(sub),
                "type": "Subscription",
                "entities": [{"id": entity_id(plan.watched_by(sub)), "type": ENTITY_TYPE}],
                "watchedAttributes": [ATTRIBUTE],
                "notification": {
                    "endpoint": {
                        "uri": endpoints.get(sub).map_or("", String::as_str),
                        "accept": "application/json"
                    }
                }
            });
            load::post_json(&client, &url, Bytes::from(body.to_string()), &[201])
                .await
                .map(drop)
        }
    })
    .await?;
    Ok(())
}

/// `notify`: see the module comment. Rows: `renkei` (acknowledged change → receipt,
/// throughput in delivered notifications per second), `renkei-patch` (the updates
/// themselves) and `bare-receiver` (sent → receipt, the client posting the same
/// notifications straight to the receiver).
///
/// `update_rate` paces the updates (update `k` is not sent before `k / rate` seconds
/// into the stream), so that delays can be read at a load renkei keeps up with; 0
/// sends them as fast as the workers go, and delays then include the backlog.
pub async fn notify(s: &Settings, plan: Plan, update_rate: f64) -> Result<Outcome, BenchError> {
    let receiver = Receiver::start().await?;
    let renkei = targets::start_renkei_delivering(&s.backend).await?;
    let prepared = Instant::now();
    prepare(s, &plan, &renkei.base, &receiver).await?;
    let prepare_took = prepared.elapsed();

    let acks = instants(plan.updates);
    // The PATCHes' own durations: the load driver's would include the pacing waits.
    let patch_sent = instants(plan.updates);
    let urls: Arc<Vec<String>> = Arc::new(
        (0..plan.entities())
            .map(|e| format!("{}{NGSI}/entities/{}/attrs", renkei.base, entity_id(e)))
            .collect(),
    );
    let client = s.client.clone();
    let started = Instant::now();
    let (stream_acks, stream_sent) = (Arc::clone(&acks), Arc::clone(&patch_sent));
    let updates = load::run(plan.updates, s.concurrency, move |k| {
        let (client, urls, acks, sent) = (
            client.clone(),
            Arc::clone(&urls),
            Arc::clone(&stream_acks),
            Arc::clone(&stream_sent),
        );
        async move {
            if update_rate > 0.0 {
                let due = started + Duration::from_secs_f64(k as f64 / update_rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let seq = k as u64 + 1;
            let url = urls.get(plan.entity_of(seq)).map_or("", String::as_str);
            let body = json!({ATTRIBUTE: attribute(seq, micros_since(started))});
            if let Some(slot) = sent.get(k) {
                let _ = slot.set(Instant::now());
            }
            load::patch_json(&client, url, Bytes::from(body.to_string()), &[204]).await?;
            if let Some(slot) = acks.get(k) {
                let _ = slot.set(Instant::now());
            }
            Ok(())
        }
    })
    .await?;
    let (receipts, malformed) = receiver.drain(plan.expected()).await;
    drop(renkei);
    drop(receiver);
    let acked = |_sub: usize, seq: u64| {
        let k = usize::try_from(seq.checked_sub(1)?).ok()?;
        acks.get(k)?.get().copied()
    };
    let r_tally = tally(&plan, &receipts, acked);
    let r_counts = r_tally.counts();
    let (lost, before_ack) = (r_tally.lost, r_tally.before_ack);
    let achieved_rate = plan.updates as f64 / updates.elapsed.as_secs_f64().max(f64::EPSILON);
    let patch = Measurement::from_durations(
        "notify",
        "renkei-patch",
        patch_durations(&patch_sent, &acks),
        updates.elapsed,
        1,
        "update",
    );
    let r = r_tally.measurement("renkei", started);

    let (b, b_counts) = baseline(s, &plan).await?;
    let vs_bare = Ratio::between(&r, &b);
    let goals = vec![
        Goal::at_least(
            "notify delivered throughput",
            r.throughput,
            TARGET_RATE,
            "notif/s",
        ),
        Goal::at_most("notify p99 ack→receipt", r.p99_ms, TARGET_P99_MS, "ms"),
        Goal::at_most("notify lost", lost as f64, 0.0, "notif"),
    ];
    let notes = vec![
        format!(
            "notify (issue 4): {} subscriptions, each watching 1 of {} entities ({} per \
             entity), set up in {:.1} s; {} PATCH updates at concurrency {}{} in {:.1} s \
             ({achieved_rate:.0} updates/s); renkei: {r_counts}; {malformed} malformed bodies",
            plan.subscriptions,
            plan.entities(),
            plan.fanout,
            prepare_took.as_secs_f64(),
            plan.updates,
            s.concurrency,
            if update_rate > 0.0 {
                format!(", paced at {update_rate:.0}/s")
            } else {
                String::new()
            },
            updates.elapsed.as_secs_f64(),
        ),
        format!(
            "notify: renkei row = delay from the PATCH's 2xx to receipt ({before_ack} arrived \
             before it and count as 0), throughput = distinct notifications over the window \
             from the first update to the last receipt; bare-receiver = the client posting \
             the same notifications to the receiver ({b_counts}); target {}, p99 {}, {} lost",
            goals[0].describe_target(),
            goals[1].describe_target(),
            goals[2].describe_target(),
        ),
    ];
    Ok(Outcome {
        measurements: vec![r, patch, b],
        ratios: vec![vs_bare],
        goals,
        notes,
        memory: None,
    })
}

/// The baseline: every notification the plan expects, posted by the client straight
/// to a fresh receiver at the bench's concurrency, timed from just before each send.
async fn baseline(s: &Settings, plan: &Plan) -> Result<(Measurement, String), BenchError> {
    let receiver = Arc::new(Receiver::start().await?);
    let plan = *plan;
    let total = plan.expected();
    let sends = instants(total);
    let post = {
        let (client, receiver, sends) =
            (s.client.clone(), Arc::clone(&receiver), Arc::clone(&sends));
        move |i: usize, started: Instant, warm: bool| {
            let (client, receiver, sends) =
                (client.clone(), Arc::clone(&receiver), Arc::clone(&sends));
            async move {
                // Operation i is the (i % fanout)-th watcher of update i / fanout + 1.
                let seq = (i / plan.fanout) as u64 + 1;
                let sub = (i % plan.fanout) * plan.entities() + plan.entity_of(seq);
                let body = notification_body(&plan, sub, seq, micros_since(started));
                if !warm {
                    if let Some(slot) = sends.get(i) {
                        let _ = slot.set(Instant::now());
                    }
                }
                load::post_json(&client, &receiver.endpoint(sub), body, &[204])
                    .await
                    .map(drop)
            }
        }
    };
    // Opens the pool's connections to the receiver; what it receives is forgotten.
    let warm_post = post.clone();
    let warm = Instant::now();
    load::run(s.concurrency.min(total), s.concurrency, move |i| {
        warm_post(i, warm, true)
    })
    .await?;
    receiver.clear();
    let started = Instant::now();
    load::run(total, s.concurrency, move |i| post(i, started, false)).await?;
    let (receipts, _) = receiver.drain(total).await;
    let acked = |sub: usize, seq: u64| {
        let update = usize::try_from(seq.checked_sub(1)?).ok()?;
        sends
            .get(update * plan.fanout + sub / plan.entities())?
            .get()
            .copied()
    };
    let t = tally(&plan, &receipts, acked);
    let counts = t.counts();
    Ok((t.measurement("bare-receiver", started), counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_update_is_expected_by_exactly_its_entitys_watchers() {
        let plan = Plan::new(6, 2, 7).unwrap();
        assert_eq!(plan.entities(), 3);
        assert_eq!(plan.expected(), 14);
        for seq in 1..=7u64 {
            let watchers = (0..10).filter(|&sub| plan.expects(sub, seq)).count();
            assert_eq!(watchers, 2, "update {seq}");
        }
        assert!(plan.expects(0, 1) && plan.expects(3, 1) && !plan.expects(1, 1));
        assert!(!plan.expects(0, 0) && !plan.expects(0, 8) && !plan.expects(6, 1));
        assert!(Plan::new(10, 3, 1).is_err());
        assert!(Plan::new(10, 0, 1).is_err());
    }

    #[test]
    fn tally_counts_lost_duplicates_unexpected_and_early_receipts() {
        let plan = Plan::new(2, 1, 3).unwrap();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let receipt = |subscription, seq, ms| Receipt {
            subscription,
            seq,
            at: at(ms),
        };
        // Updates 1 and 3 change entity 0 (subscription 0), update 2 entity 1.
        let receipts = [
            receipt(0, 1, 15),
            receipt(0, 1, 16), // duplicate
            receipt(1, 2, 20),
            receipt(1, 1, 21), // wrong subscription
            receipt(0, 9, 22), // no such update
                               // update 3 never arrives
        ];
        let acked = |_: usize, seq: u64| match seq {
            1 => Some(at(10)),
            2 => Some(at(25)), // the notification beat the acknowledgement
            3 => Some(at(30)),
            _ => None,
        };
        let t = tally(&plan, &receipts, acked);
        assert_eq!(t.expected, 3);
        assert_eq!(t.received, 5);
        assert_eq!(t.distinct, 2);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.unexpected, 2);
        assert_eq!(t.lost, 1);
        assert_eq!(t.before_ack, 1);
        assert_eq!(t.delays, [Duration::from_millis(5), Duration::ZERO]);
        assert_eq!(t.last, Some(at(20)));
        let m = t.measurement("renkei", t0);
        assert_eq!(m.operations, 2);
        assert!((m.throughput - 100.0).abs() < 1e-6, "{}", m.throughput);
    }

    #[test]
    fn sequence_numbers_are_read_from_normalized_and_key_value_entities() {
        assert_eq!(seq_of(&json!({"seq": attribute(42, 7)})), Some(42));
        assert_eq!(seq_of(&json!({"seq": {"seq": 5, "sentUs": 1}})), Some(5));
        assert_eq!(
            seq_of(&json!({"seq": {"type": "Property", "value": 3}})),
            Some(3)
        );
        assert_eq!(seq_of(&json!({"other": 1})), None);
        let plan = Plan::new(4, 2, 10).unwrap();
        let body: Value = serde_json::from_slice(&notification_body(&plan, 3, 6, 0)).unwrap();
        assert_eq!(seq_of(&body["data"][0]), Some(6));
        assert_eq!(body["data"][0]["id"], entity_id(plan.entity_of(6)));
        assert!(plan.expects(3, 6));
    }
}
