//! The behavioural suite every backend's [`CatalogStore`] must pass: packages are
//! found by id, name and resource; ids, names and resource ids stay unique; replaces
//! are optimistic (guarded by the change number they expect); every write takes the
//! next change number, and [`CatalogStore::package_changes`] gives each package once,
//! at its latest version, in change order; purges remove everything of a package and
//! are counted. A backend runs it from a test file of its own:
//!
//! ```text
//! async fn new_store() -> store::catalog_conformance::CatalogTestStore { /* … */ }
//! store::catalog_conformance_suite!(new_store());
//! ```
//!
//! Every instant a case gives has whole microseconds, the precision both backends
//! keep. Documents are compared as [`serde_json::Value`]s, whose object equality
//! ignores key order (PostgreSQL's `jsonb` does not keep it).

use crate::catalog::{CatalogState, CatalogStore, PackageRecord, SharedCatalogStore};
use crate::StoreError;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use std::ops::Deref;
use std::sync::Arc;

/// A store under test with whatever keeps its database alive (dropped last).
/// Dereferences to the [`CatalogStore`].
pub struct CatalogTestStore {
    // Field order matters: fields drop in declaration order.
    catalog: SharedCatalogStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl CatalogTestStore {
    pub fn new<S>(store: Arc<S>, keep_alive: impl Send + Sync + 'static) -> Self
    where
        S: CatalogStore + 'static,
    {
        CatalogTestStore {
            catalog: store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    /// Another handle to the store, for work spawned onto other tasks.
    pub fn shared(&self) -> SharedCatalogStore {
        Arc::clone(&self.catalog)
    }
}

impl Deref for CatalogTestStore {
    type Target = dyn CatalogStore;

    fn deref(&self) -> &Self::Target {
        self.catalog.as_ref()
    }
}

/// Expands to the catalog suite as `#[tokio::test]` functions, each getting a fresh
/// store from `$new_store` (an async expression yielding a [`CatalogTestStore`]).
#[macro_export]
macro_rules! catalog_conformance_suite {
    ($new_store:expr) => {
        $crate::catalog_conformance_suite!(@cases $new_store;
            inserted_packages_are_found_by_id_and_by_name,
            documents_and_times_round_trip_exactly,
            taken_ids_and_names_are_refused,
            replaces_are_guarded_by_the_expected_change,
            renaming_onto_another_name_is_refused,
            resource_lookup_follows_replaces,
            a_resource_of_another_package_is_refused,
            resource_ids_are_read_back_in_ascending_order,
            changes_give_each_package_once_at_its_latest_version,
            purges_remove_the_package_and_are_counted,
            concurrent_inserts_take_distinct_change_numbers,
            of_concurrent_replaces_at_one_change_one_wins,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: $crate::catalog_conformance::CatalogTestStore = $new_store.await;
                $crate::catalog_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

/// 香川県高松市.
const TAKAMATSU: &str = "372013";

fn at(second: i64, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(second)
        + chrono::Duration::microseconds(micros)
}

/// A package as the catalog would write it, its document naming its resources.
fn package(id: &str, name: &str, resource_ids: &[&str]) -> PackageRecord {
    let resources: Vec<Value> = resource_ids
        .iter()
        .map(|rid| json!({"id": rid, "package_id": id, "format": "CSV"}))
        .collect();
    PackageRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        owner_org: TAKAMATSU.to_owned(),
        private: false,
        state: "active".to_owned(),
        resource_ids: resource_ids.iter().map(|rid| (*rid).to_owned()).collect(),
        metadata_modified: at(0, 0),
        document: json!({
            "id": id,
            "name": name,
            "title": "指定緊急避難場所一覧",
            "owner_org": TAKAMATSU,
            "resources": resources,
        }),
        change: 0,
    }
}

/// What reading `written` back should give: stored at change `change`.
fn stored(written: &PackageRecord, change: i64) -> PackageRecord {
    PackageRecord {
        change,
        ..written.clone()
    }
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

async fn insert(store: &CatalogTestStore, record: &PackageRecord) -> i64 {
    expect(store.insert_package(record).await, "insert_package")
}

async fn replace(store: &CatalogTestStore, record: &PackageRecord, expected: i64) -> i64 {
    expect(
        store.replace_package(record, expected).await,
        "replace_package",
    )
}

async fn get(store: &CatalogTestStore, id_or_name: &str) -> Option<PackageRecord> {
    expect(store.get_package(id_or_name).await, "get_package")
}

async fn holder(store: &CatalogTestStore, resource_id: &str) -> Option<String> {
    expect(
        store.package_of_resource(resource_id).await,
        "package_of_resource",
    )
    .map(|record| record.id)
}

async fn state(store: &CatalogTestStore) -> CatalogState {
    expect(store.catalog_state().await, "catalog_state")
}

async fn changes(store: &CatalogTestStore, after: i64, limit: usize) -> Vec<(String, i64)> {
    expect(store.package_changes(after, limit).await, "package_changes")
        .into_iter()
        .map(|record| (record.id, record.change))
        .collect()
}

fn already_exists(result: Result<i64, StoreError>, taken: &str) {
    match result {
        Err(StoreError::AlreadyExists(what)) => assert_eq!(what, taken),
        other => panic!("expected AlreadyExists({taken}), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Cases.

pub async fn inserted_packages_are_found_by_id_and_by_name(store: &CatalogTestStore) {
    assert_eq!(state(store).await, CatalogState::default());
    assert_eq!(get(store, "p-1").await, None);
    let mut written = package("p-1", "shelters", &["r-1"]);
    // The change a record carries is the store's to assign.
    written.change = 999;
    assert_eq!(insert(store, &written).await, 1);
    let expected = stored(&written, 1);
    assert_eq!(get(store, "p-1").await, Some(expected.clone()));
    assert_eq!(get(store, "shelters").await, Some(expected.clone()));
    assert_eq!(
        expect(
            store.package_of_resource("r-1").await,
            "package_of_resource"
        ),
        Some(expected)
    );
    assert_eq!(holder(store, "r-2").await, None);
    assert_eq!(get(store, "unknown").await, None);
    assert_eq!(
        state(store).await,
        CatalogState {
            last_change: 1,
            purges: 0
        }
    );
}

pub async fn documents_and_times_round_trip_exactly(store: &CatalogTestStore) {
    let mut written = package("p-doc", "doc", &[]);
    written.private = true;
    written.state = "draft".to_owned();
    written.metadata_modified = at(3600, 123_456);
    written.document = json!({
        "zeta": [1, 2.5, -3, 12345678901234i64, null, true, false],
        "alpha": {"nested": {"deep": ["令和6年4月1日", "ｶﾀｶﾅ", "a\"b\\c\n"]}},
        "empty_object": {},
        "empty_array": [],
        "middle": "",
        "extras": [{"key": "更新頻度", "value": "毎月"}],
    });
    let change = insert(store, &written).await;
    assert_eq!(get(store, "p-doc").await, Some(stored(&written, change)));
    // Order of keys aside, the same document: this comparison must see a difference.
    let mut other = written.document.clone();
    other["alpha"]["nested"]["deep"][1] = json!("カタカナ");
    assert_ne!(get(store, "p-doc").await.map(|r| r.document), Some(other));
}

pub async fn taken_ids_and_names_are_refused(store: &CatalogTestStore) {
    let first = package("p-1", "shelters", &[]);
    insert(store, &first).await;
    already_exists(
        store
            .insert_package(&package("p-1", "another-name", &[]))
            .await,
        "p-1",
    );
    already_exists(
        store.insert_package(&package("p-2", "shelters", &[])).await,
        "shelters",
    );
    // A deleted package keeps its name until purged.
    let mut deleted = package("p-3", "old", &[]);
    deleted.state = "deleted".to_owned();
    insert(store, &deleted).await;
    already_exists(
        store.insert_package(&package("p-4", "old", &[])).await,
        "old",
    );
    // Refusals take no change number and leave the stored packages alone.
    assert_eq!(state(store).await.last_change, 2);
    assert_eq!(get(store, "p-1").await, Some(stored(&first, 1)));
    assert_eq!(get(store, "p-2").await, None);
    assert_eq!(get(store, "p-4").await, None);
}

pub async fn replaces_are_guarded_by_the_expected_change(store: &CatalogTestStore) {
    let first = package("p-1", "shelters", &[]);
    let inserted = insert(store, &first).await;
    insert(store, &package("p-2", "parks", &[])).await;
    let mut second = first.clone();
    second.document["title"] = json!("避難所一覧（更新）");
    second.metadata_modified = at(60, 1);
    let replaced = replace(store, &second, inserted).await;
    assert_eq!(replaced, 3);
    assert_eq!(get(store, "p-1").await, Some(stored(&second, replaced)));
    // A writer still holding the first version lost the race.
    let mut stale = first.clone();
    stale.private = true;
    match store.replace_package(&stale, inserted).await {
        Err(StoreError::Conflict(id)) => assert_eq!(id, "p-1"),
        other => panic!("expected Conflict(p-1), got {other:?}"),
    }
    match store
        .replace_package(&package("p-9", "nowhere", &[]), 1)
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "p-9"),
        other => panic!("expected NotFound(p-9), got {other:?}"),
    }
    assert_eq!(get(store, "p-1").await, Some(stored(&second, replaced)));
    assert_eq!(get(store, "nowhere").await, None);
    assert_eq!(state(store).await.last_change, 3);
}

pub async fn renaming_onto_another_name_is_refused(store: &CatalogTestStore) {
    let shelters = package("p-1", "shelters", &[]);
    let parks = package("p-2", "parks", &[]);
    insert(store, &shelters).await;
    let parks_change = insert(store, &parks).await;
    let mut clash = parks.clone();
    clash.name = "shelters".to_owned();
    already_exists(
        store.replace_package(&clash, parks_change).await,
        "shelters",
    );
    assert_eq!(
        get(store, "shelters").await.map(|r| r.id),
        Some("p-1".into())
    );
    assert_eq!(get(store, "p-2").await, Some(stored(&parks, parks_change)));
    // A free name is taken, and the old one is let go.
    let mut renamed = parks.clone();
    renamed.name = "city-parks".to_owned();
    let change = replace(store, &renamed, parks_change).await;
    assert_eq!(
        get(store, "city-parks").await,
        Some(stored(&renamed, change))
    );
    assert_eq!(get(store, "parks").await, None);
    // Keeping one's own name is no clash.
    let mut same_name = renamed.clone();
    same_name.private = true;
    let change = replace(store, &same_name, change).await;
    assert_eq!(
        get(store, "city-parks").await,
        Some(stored(&same_name, change))
    );
}

pub async fn resource_lookup_follows_replaces(store: &CatalogTestStore) {
    let first = package("p-1", "shelters", &["r-1", "r-2"]);
    let change = insert(store, &first).await;
    assert_eq!(holder(store, "r-1").await, Some("p-1".into()));
    assert_eq!(holder(store, "r-2").await, Some("p-1".into()));
    let second = package("p-1", "shelters", &["r-2", "r-3"]);
    let change = replace(store, &second, change).await;
    assert_eq!(holder(store, "r-1").await, None);
    assert_eq!(holder(store, "r-2").await, Some("p-1".into()));
    assert_eq!(holder(store, "r-3").await, Some("p-1".into()));
    assert_eq!(
        expect(
            store.package_of_resource("r-3").await,
            "package_of_resource"
        ),
        Some(stored(&second, change))
    );
    // A removed resource's id is free for another package.
    insert(store, &package("p-2", "parks", &["r-1"])).await;
    assert_eq!(holder(store, "r-1").await, Some("p-2".into()));
    replace(store, &package("p-1", "shelters", &[]), change).await;
    assert_eq!(holder(store, "r-2").await, None);
    assert_eq!(holder(store, "r-3").await, None);
    assert_eq!(
        get(store, "p-1").await.map(|r| r.resource_ids),
        Some(Vec::new())
    );
}

pub async fn a_resource_of_another_package_is_refused(store: &CatalogTestStore) {
    let shelters = package("p-1", "shelters", &["r-1"]);
    insert(store, &shelters).await;
    already_exists(
        store
            .insert_package(&package("p-2", "parks", &["r-2", "r-1"]))
            .await,
        "r-1",
    );
    assert_eq!(get(store, "p-2").await, None);
    assert_eq!(holder(store, "r-2").await, None);
    let parks = package("p-2", "parks", &["r-2"]);
    let parks_change = insert(store, &parks).await;
    already_exists(
        store
            .replace_package(&package("p-2", "parks", &["r-2", "r-1"]), parks_change)
            .await,
        "r-1",
    );
    assert_eq!(holder(store, "r-1").await, Some("p-1".into()));
    assert_eq!(get(store, "p-2").await, Some(stored(&parks, parks_change)));
    assert_eq!(state(store).await.last_change, parks_change);
}

pub async fn resource_ids_are_read_back_in_ascending_order(store: &CatalogTestStore) {
    // The document keeps the resources' order; the id list is a set, read back sorted.
    let written = package("p-1", "shelters", &["r-c", "r-a", "r-b"]);
    let change = insert(store, &written).await;
    let read = get(store, "p-1").await;
    assert_eq!(
        read.as_ref().map(|r| r.resource_ids.clone()),
        Some(vec!["r-a".to_owned(), "r-b".to_owned(), "r-c".to_owned()])
    );
    assert_eq!(read.map(|r| r.document), Some(written.document.clone()));
    let replaced = package("p-1", "shelters", &["r-z", "r-b"]);
    replace(store, &replaced, change).await;
    assert_eq!(
        get(store, "shelters").await.map(|r| r.resource_ids),
        Some(vec!["r-b".to_owned(), "r-z".to_owned()])
    );
}

pub async fn changes_give_each_package_once_at_its_latest_version(store: &CatalogTestStore) {
    assert_eq!(changes(store, 0, 10).await, Vec::new());
    let a = package("p-a", "a", &[]);
    let a1 = insert(store, &a).await;
    insert(store, &package("p-b", "b", &["r-b"])).await;
    insert(store, &package("p-c", "c", &[])).await;
    let mut a_again = a.clone();
    a_again.document["title"] = json!("second version");
    let a2 = replace(store, &a_again, a1).await;
    assert_eq!((a1, a2), (1, 4));
    let pairs = |list: &[(&str, i64)]| -> Vec<(String, i64)> {
        list.iter().map(|(id, c)| ((*id).to_owned(), *c)).collect()
    };
    assert_eq!(
        changes(store, 0, 10).await,
        pairs(&[("p-b", 2), ("p-c", 3), ("p-a", 4)])
    );
    assert_eq!(
        changes(store, 2, 10).await,
        pairs(&[("p-c", 3), ("p-a", 4)])
    );
    assert_eq!(changes(store, 0, 2).await, pairs(&[("p-b", 2), ("p-c", 3)]));
    assert_eq!(changes(store, 3, 1).await, pairs(&[("p-a", 4)]));
    assert_eq!(changes(store, 4, 10).await, Vec::new());
    assert_eq!(changes(store, 0, 0).await, Vec::new());
    // Each one whole, at its latest version.
    let listed = expect(store.package_changes(0, 10).await, "package_changes");
    assert_eq!(listed.last(), Some(&stored(&a_again, a2)));
    assert_eq!(
        listed.first().map(|r| r.resource_ids.clone()),
        Some(vec!["r-b".to_owned()])
    );
    assert_eq!(
        state(store).await,
        CatalogState {
            last_change: 4,
            purges: 0
        }
    );
}

pub async fn purges_remove_the_package_and_are_counted(store: &CatalogTestStore) {
    insert(store, &package("p-1", "shelters", &["r-1", "r-2"])).await;
    let parks = package("p-2", "parks", &["r-3"]);
    let parks_change = insert(store, &parks).await;
    assert!(expect(store.purge_package("p-1").await, "purge_package"));
    assert_eq!(get(store, "p-1").await, None);
    assert_eq!(get(store, "shelters").await, None);
    assert_eq!(holder(store, "r-1").await, None);
    assert_eq!(holder(store, "r-2").await, None);
    assert_eq!(
        state(store).await,
        CatalogState {
            last_change: 2,
            purges: 1
        }
    );
    assert!(!expect(store.purge_package("p-1").await, "purge_package"));
    // Purging by name is not a thing: the id is asked for.
    assert!(!expect(store.purge_package("parks").await, "purge_package"));
    assert_eq!(state(store).await.purges, 1);
    assert_eq!(get(store, "p-2").await, Some(stored(&parks, parks_change)));
    assert_eq!(changes(store, 0, 10).await, vec![("p-2".to_owned(), 2)]);
    // The id, name and resource ids are free again; numbering goes on.
    let again = package("p-1", "shelters", &["r-1"]);
    assert_eq!(insert(store, &again).await, 3);
    assert_eq!(holder(store, "r-1").await, Some("p-1".into()));
}

pub async fn concurrent_inserts_take_distinct_change_numbers(store: &CatalogTestStore) {
    const WRITERS: i64 = 20;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let catalog = store.shared();
            tokio::spawn(async move {
                let record = package(
                    &format!("p-{n}"),
                    &format!("dataset-{n}"),
                    &[&format!("r-{n}")],
                );
                catalog.insert_package(&record).await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        let joined = task.await.unwrap_or_else(|e| panic!("insert task: {e}"));
        numbers.push(expect(joined, "concurrent insert_package"));
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=WRITERS).collect::<Vec<_>>());
    assert_eq!(
        state(store).await,
        CatalogState {
            last_change: WRITERS,
            purges: 0
        }
    );
    let listed = changes(store, 0, 100).await;
    assert_eq!(
        listed.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        (1..=WRITERS).collect::<Vec<_>>()
    );
    for (id, change) in listed {
        let record = get(store, &id).await;
        assert_eq!(record.map(|r| r.change), Some(change), "{id}");
    }
}

pub async fn of_concurrent_replaces_at_one_change_one_wins(store: &CatalogTestStore) {
    const WRITERS: usize = 10;
    let first = package("p-1", "shelters", &[]);
    let inserted = insert(store, &first).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let catalog = store.shared();
            let mut version = first.clone();
            version.document["title"] = json!(format!("version {n}"));
            tokio::spawn(async move {
                let outcome = catalog.replace_package(&version, inserted).await;
                (version, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (version, outcome) = task.await.unwrap_or_else(|e| panic!("replace task: {e}"));
        match outcome {
            Ok(change) => winners.push(stored(&version, change)),
            Err(StoreError::Conflict(id)) => assert_eq!(id, "p-1"),
            Err(other) => panic!("expected Conflict(p-1), got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners.first().map(|w| w.change), Some(inserted + 1));
    assert_eq!(get(store, "p-1").await.as_ref(), winners.first());
    assert_eq!(state(store).await.last_change, inserted + 1);
}
