//! The behavioural suite every backend's [`HarvestStore`] must pass: sources are
//! stored, listed by organisation and deleted with their runs; a due source is
//! claimed by one holder at a time, and a live lease keeps every other holder out
//! until it is released or expires; runs round-trip with their counts and errors and
//! are listed newest first. A backend runs it from a test file of its own:
//!
//! ```text
//! async fn new_store() -> store::harvest_conformance::HarvestTestStore { /* … */ }
//! store::harvest_conformance_suite!(new_store());
//! ```
//!
//! Every instant a case gives has whole microseconds, the precision both backends
//! keep.

use crate::harvest::{
    HarvestCounts, HarvestError, HarvestRun, HarvestSource, HarvestStore, RunStatus,
    SharedHarvestStore,
};
use crate::StoreError;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::Arc;

/// A store under test with whatever keeps its database alive (dropped last).
/// Dereferences to the [`HarvestStore`].
pub struct HarvestTestStore {
    // Field order matters: fields drop in declaration order.
    harvest: SharedHarvestStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl HarvestTestStore {
    pub fn new<S>(store: Arc<S>, keep_alive: impl Send + Sync + 'static) -> Self
    where
        S: HarvestStore + 'static,
    {
        HarvestTestStore {
            harvest: store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    /// Another handle to the store, for work spawned onto other tasks.
    pub fn shared(&self) -> SharedHarvestStore {
        Arc::clone(&self.harvest)
    }
}

impl Deref for HarvestTestStore {
    type Target = dyn HarvestStore;

    fn deref(&self) -> &Self::Target {
        self.harvest.as_ref()
    }
}

/// Expands to the harvest suite as `#[tokio::test]` functions, each getting a fresh
/// store from `$new_store` (an async expression yielding a [`HarvestTestStore`]).
#[macro_export]
macro_rules! harvest_conformance_suite {
    ($new_store:expr) => {
        $crate::harvest_conformance_suite!(@cases $new_store;
            sources_round_trip_and_are_listed_by_organization,
            taken_source_ids_are_refused,
            updating_a_source_keeps_its_creation_lease_and_runs,
            deleting_a_source_removes_its_runs,
            only_enabled_due_unleased_sources_are_claimed,
            a_live_lease_keeps_other_holders_out_until_released_or_expired,
            releasing_sets_the_next_run,
            runs_round_trip_and_are_listed_newest_first,
            runs_need_their_source,
            concurrent_claims_give_each_due_source_to_one_holder,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: $crate::harvest_conformance::HarvestTestStore = $new_store.await;
                $crate::harvest_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

/// 香川県高松市 and 香川県丸亀市.
const TAKAMATSU: &str = "372013";
const MARUGAME: &str = "372021";

fn at(minute: i64, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::minutes(minute)
        + chrono::Duration::microseconds(micros)
}

fn source(id: &str, organization: &str, next_run_at: Option<DateTime<Utc>>) -> HarvestSource {
    HarvestSource {
        id: id.to_owned(),
        organization: organization.to_owned(),
        url: format!("https://opendata.example.jp/{id}"),
        title: format!("市のカタログ {id}"),
        remote_organization: None,
        interval_minutes: next_run_at.map(|_| 60),
        enabled: true,
        created_at: at(0, 0),
        next_run_at,
    }
}

fn run(id: &str, source_id: &str, started_minute: i64) -> HarvestRun {
    HarvestRun {
        id: id.to_owned(),
        source_id: source_id.to_owned(),
        started_at: at(started_minute, 0),
        finished_at: None,
        status: RunStatus::Running,
        counts: HarvestCounts::default(),
        errors: Vec::new(),
    }
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

async fn insert(store: &HarvestTestStore, source: &HarvestSource) {
    expect(store.insert_source(source).await, "insert_source");
}

async fn claim_due(store: &HarvestTestStore, now: DateTime<Utc>, holder: &str) -> Option<String> {
    expect(
        store
            .claim_due_source(now, holder, now + chrono::Duration::minutes(10))
            .await,
        "claim_due_source",
    )
    .map(|s| s.id)
}

// ---------------------------------------------------------------------------------
// Cases.

pub async fn sources_round_trip_and_are_listed_by_organization(store: &HarvestTestStore) {
    let mut first = source("s-1", TAKAMATSU, Some(at(5, 123_456)));
    first.remote_organization = Some("takamatsu-city".to_owned());
    first.interval_minutes = Some(1440);
    let mut second = source("s-2", MARUGAME, None);
    second.enabled = false;
    second.created_at = at(1, 7);
    let mut third = source("s-3", TAKAMATSU, None);
    third.created_at = at(2, 0);
    for s in [&first, &second, &third] {
        insert(store, s).await;
    }
    assert_eq!(
        expect(store.get_source("s-1").await, "get_source"),
        Some(first.clone())
    );
    assert_eq!(
        expect(store.get_source("s-2").await, "get_source"),
        Some(second.clone())
    );
    assert_eq!(expect(store.get_source("nope").await, "get_source"), None);
    let all = expect(store.list_sources(None).await, "list_sources");
    assert_eq!(all, vec![first.clone(), second.clone(), third.clone()]);
    let takamatsu = expect(store.list_sources(Some(TAKAMATSU)).await, "list_sources");
    assert_eq!(takamatsu, vec![first, third]);
    let none = expect(store.list_sources(Some("131016")).await, "list_sources");
    assert!(none.is_empty());
}

pub async fn taken_source_ids_are_refused(store: &HarvestTestStore) {
    insert(store, &source("s-1", TAKAMATSU, None)).await;
    match store.insert_source(&source("s-1", MARUGAME, None)).await {
        Err(StoreError::AlreadyExists(id)) => assert_eq!(id, "s-1"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let kept = expect(store.get_source("s-1").await, "get_source");
    assert_eq!(kept.map(|s| s.organization), Some(TAKAMATSU.to_owned()));
}

pub async fn updating_a_source_keeps_its_creation_lease_and_runs(store: &HarvestTestStore) {
    let original = source("s-1", TAKAMATSU, Some(at(5, 0)));
    insert(store, &original).await;
    insert(store, &source("s-2", TAKAMATSU, None)).await;
    expect(store.insert_run(&run("r-1", "s-1", 1)).await, "insert_run");
    assert_eq!(
        claim_due(store, at(6, 0), "holder-1").await,
        Some("s-1".into())
    );
    let changed = HarvestSource {
        organization: MARUGAME.to_owned(),
        url: "https://data.example.jp/ckan".to_owned(),
        title: "新しい名前".to_owned(),
        remote_organization: Some("marugame-city".to_owned()),
        interval_minutes: Some(1440),
        enabled: false,
        // Neither is the caller's to change.
        created_at: at(30, 0),
        next_run_at: Some(at(9, 654_321)),
        ..original.clone()
    };
    expect(store.update_source(&changed).await, "update_source");
    let stored = expect(store.get_source("s-1").await, "get_source");
    assert_eq!(
        stored,
        Some(HarvestSource {
            created_at: original.created_at,
            ..changed.clone()
        })
    );
    // The other source is untouched, the lease still keeps others out, the run stays.
    assert_eq!(
        expect(store.get_source("s-2").await, "get_source"),
        Some(source("s-2", TAKAMATSU, None))
    );
    let lease_until = at(20, 0);
    assert!(!expect(
        store
            .claim_source("s-1", at(7, 0), "holder-2", lease_until)
            .await,
        "claim_source"
    ));
    assert!(expect(store.get_run("r-1").await, "get_run").is_some());
    let missing = HarvestSource {
        id: "nope".to_owned(),
        ..changed
    };
    match store.update_source(&missing).await {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "nope"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(expect(store.get_source("nope").await, "get_source"), None);
}

pub async fn deleting_a_source_removes_its_runs(store: &HarvestTestStore) {
    insert(store, &source("s-1", TAKAMATSU, None)).await;
    insert(store, &source("s-2", TAKAMATSU, None)).await;
    expect(store.insert_run(&run("r-1", "s-1", 1)).await, "insert_run");
    expect(store.insert_run(&run("r-2", "s-2", 1)).await, "insert_run");
    assert!(expect(store.delete_source("s-1").await, "delete_source"));
    assert!(!expect(store.delete_source("s-1").await, "delete_source"));
    assert_eq!(expect(store.get_source("s-1").await, "get_source"), None);
    assert_eq!(expect(store.get_run("r-1").await, "get_run"), None);
    assert!(expect(store.list_runs("s-1", 10).await, "list_runs").is_empty());
    // The other source and its run stay.
    assert!(expect(store.get_run("r-2").await, "get_run").is_some());
    match store.update_run(&run("r-1", "s-1", 1)).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

pub async fn only_enabled_due_unleased_sources_are_claimed(store: &HarvestTestStore) {
    let mut disabled = source("disabled", TAKAMATSU, Some(at(0, 0)));
    disabled.enabled = false;
    insert(store, &disabled).await;
    insert(store, &source("on-demand", TAKAMATSU, None)).await;
    insert(store, &source("later", TAKAMATSU, Some(at(30, 0)))).await;
    insert(store, &source("due-second", MARUGAME, Some(at(10, 1)))).await;
    insert(store, &source("due-first", TAKAMATSU, Some(at(10, 0)))).await;

    let now = at(20, 0);
    // The one due longest comes first, then the next; nothing else is due.
    assert_eq!(
        claim_due(store, now, "node-a").await.as_deref(),
        Some("due-first")
    );
    assert_eq!(
        claim_due(store, now, "node-b").await.as_deref(),
        Some("due-second")
    );
    assert_eq!(claim_due(store, now, "node-c").await, None);
    // Past its time, the later one is due; the leased ones are not, even to their
    // own holders.
    assert_eq!(claim_due(store, at(29, 0), "node-a").await, None);
    assert_eq!(
        claim_due(store, at(30, 0), "node-a").await.as_deref(),
        Some("later")
    );
    // A lease that expired (10 minutes from 20) frees its source.
    assert_eq!(
        claim_due(store, at(30, 1), "node-c").await.as_deref(),
        Some("due-first")
    );
}

pub async fn a_live_lease_keeps_other_holders_out_until_released_or_expired(
    store: &HarvestTestStore,
) {
    insert(store, &source("s-1", TAKAMATSU, None)).await;
    let claim = |holder: &'static str, now: DateTime<Utc>, until: DateTime<Utc>| {
        let store = store.shared();
        async move { expect(store.claim_source("s-1", now, holder, until).await, "claim") }
    };
    assert!(claim("run-1", at(0, 0), at(10, 0)).await);
    assert!(!claim("run-2", at(5, 0), at(15, 0)).await);
    // The holder renews its own lease.
    assert!(claim("run-1", at(9, 0), at(19, 0)).await);
    assert!(!claim("run-2", at(12, 0), at(22, 0)).await);
    // Releasing by another holder changes nothing.
    expect(store.release_source("s-1", "run-2", None).await, "release");
    assert!(!claim("run-2", at(13, 0), at(23, 0)).await);
    expect(store.release_source("s-1", "run-1", None).await, "release");
    assert!(claim("run-2", at(13, 0), at(23, 0)).await);
    // Expired: anyone may take it.
    assert!(claim("run-3", at(23, 1), at(33, 0)).await);
    match store
        .claim_source("missing", at(0, 0), "run-1", at(1, 0))
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

pub async fn releasing_sets_the_next_run(store: &HarvestTestStore) {
    insert(store, &source("s-1", TAKAMATSU, Some(at(0, 0)))).await;
    assert_eq!(
        claim_due(store, at(1, 0), "run-1").await.as_deref(),
        Some("s-1")
    );
    expect(
        store.release_source("s-1", "run-1", Some(at(61, 5))).await,
        "release",
    );
    let stored = expect(store.get_source("s-1").await, "get_source");
    assert_eq!(stored.and_then(|s| s.next_run_at), Some(at(61, 5)));
    // Released, but not due until its next run.
    assert_eq!(claim_due(store, at(2, 0), "run-2").await, None);
    assert_eq!(
        claim_due(store, at(61, 5), "run-2").await.as_deref(),
        Some("s-1")
    );
    // Released with no next run, it is never due again.
    expect(store.release_source("s-1", "run-2", None).await, "release");
    assert_eq!(claim_due(store, at(10_000, 0), "run-3").await, None);
}

pub async fn runs_round_trip_and_are_listed_newest_first(store: &HarvestTestStore) {
    insert(store, &source("s-1", TAKAMATSU, None)).await;
    insert(store, &source("s-2", TAKAMATSU, None)).await;
    let first = run("r-1", "s-1", 1);
    expect(store.insert_run(&first).await, "insert_run");
    assert_eq!(
        expect(store.get_run("r-1").await, "get_run"),
        Some(first.clone())
    );
    match store.insert_run(&first).await {
        Err(StoreError::AlreadyExists(id)) => assert_eq!(id, "r-1"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let finished = HarvestRun {
        finished_at: Some(at(2, 999_999)),
        status: RunStatus::Succeeded,
        counts: HarvestCounts {
            created: 3,
            updated: 2,
            unchanged: 40,
            deleted: 1,
            errored: 2,
        },
        errors: vec![
            HarvestError {
                dataset: Some("hinanjo-ichiran".to_owned()),
                message: "license_id: ライセンス \"x\" は登録されていません".to_owned(),
            },
            HarvestError {
                dataset: None,
                message: "page 2: timed out".to_owned(),
            },
        ],
        ..first.clone()
    };
    expect(store.update_run(&finished).await, "update_run");
    assert_eq!(
        expect(store.get_run("r-1").await, "get_run"),
        Some(finished.clone())
    );
    let mut failed = run("r-2", "s-1", 3);
    failed.status = RunStatus::Failed;
    failed.finished_at = Some(at(3, 1));
    expect(store.insert_run(&failed).await, "insert_run");
    let running = run("r-3", "s-1", 5);
    expect(store.insert_run(&running).await, "insert_run");
    expect(store.insert_run(&run("r-4", "s-2", 9)).await, "insert_run");
    assert_eq!(
        expect(store.list_runs("s-1", 10).await, "list_runs"),
        vec![running.clone(), failed.clone(), finished]
    );
    assert_eq!(
        expect(store.list_runs("s-1", 2).await, "list_runs"),
        vec![running, failed]
    );
}

pub async fn runs_need_their_source(store: &HarvestTestStore) {
    match store.insert_run(&run("r-1", "missing", 1)).await {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match store.update_run(&run("r-1", "missing", 1)).await {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "r-1"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

pub async fn concurrent_claims_give_each_due_source_to_one_holder(store: &HarvestTestStore) {
    const SOURCES: usize = 3;
    const CLAIMERS: usize = 12;
    for n in 0..SOURCES {
        insert(
            store,
            &source(&format!("s-{n}"), TAKAMATSU, Some(at(0, n as i64))),
        )
        .await;
    }
    let now = at(1, 0);
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|n| {
            let store = store.shared();
            tokio::spawn(async move {
                let holder = format!("node-{n}");
                store
                    .claim_due_source(now, &holder, now + chrono::Duration::minutes(10))
                    .await
                    .map(|claimed| claimed.map(|s| s.id))
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        let result = task
            .await
            .unwrap_or_else(|e| panic!("a claiming task panicked: {e}"));
        if let Some(id) = expect(result, "claim_due_source") {
            claimed.push(id);
        }
    }
    let distinct: BTreeSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), SOURCES, "claimed: {claimed:?}");
    assert_eq!(distinct.len(), SOURCES, "claimed: {claimed:?}");
}
