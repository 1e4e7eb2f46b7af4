//! The behavioural suite every backend's [`RegistrationStore`] must pass: documents
//! read back as written, taken ids refused without changing anything, tenants kept
//! apart, listing in creation order, replacement of present registrations only, and
//! deletion that says whether there was something to delete. A backend runs it from
//! a test file of its own:
//!
//! ```text
//! async fn new_store() -> store::registrations_conformance::RegistrationsTestStore { /* … */ }
//! store::registrations_conformance_suite!(new_store());
//! ```

use crate::registrations::{RegistrationStore, SharedRegistrationStore, StoredRegistration};
use crate::{StoreError, Tenant};
use serde_json::{json, Value};
use std::ops::Deref;
use std::sync::Arc;

/// A store under test with whatever keeps its database alive (dropped last).
/// Dereferences to the [`RegistrationStore`].
pub struct RegistrationsTestStore {
    // Field order matters: fields drop in declaration order.
    registrations: SharedRegistrationStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl RegistrationsTestStore {
    pub fn new<S>(store: Arc<S>, keep_alive: impl Send + Sync + 'static) -> Self
    where
        S: RegistrationStore + 'static,
    {
        RegistrationsTestStore {
            registrations: store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    /// Another handle to the store, for work spawned onto other tasks.
    pub fn shared(&self) -> SharedRegistrationStore {
        Arc::clone(&self.registrations)
    }
}

impl Deref for RegistrationsTestStore {
    type Target = dyn RegistrationStore;

    fn deref(&self) -> &Self::Target {
        self.registrations.as_ref()
    }
}

/// Expands to the registrations suite as `#[tokio::test]` functions, each getting a
/// fresh store from `$new_store` (an async expression yielding a
/// [`RegistrationsTestStore`]).
#[macro_export]
macro_rules! registrations_conformance_suite {
    ($new_store:expr) => {
        $crate::registrations_conformance_suite!(@cases $new_store;
            a_created_registration_is_read_back,
            a_taken_id_is_refused_and_changes_nothing,
            tenants_keep_their_registrations_apart,
            registrations_are_listed_oldest_first,
            replacing_changes_the_document_of_present_registrations_only,
            deleting_says_whether_there_was_one_and_removes_it,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: $crate::registrations_conformance::RegistrationsTestStore =
                    $new_store.await;
                $crate::registrations_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

const NGSI_LD: &str = "https://uri.etsi.org/ngsi-ld/";

fn himeji() -> Tenant {
    Tenant::named("himeji")
}

fn kobe() -> Tenant {
    Tenant::named("kobe")
}

fn registration_id(name: &str) -> String {
    format!("urn:ngsi-ld:ContextSourceRegistration:{name}")
}

/// A registration document as `ngsi_ld` decodes one: terms expanded.
fn registration(name: &str, endpoint: &str) -> Value {
    json!({
        "id": registration_id(name),
        "type": "ContextSourceRegistration",
        format!("{NGSI_LD}information"): [{
            format!("{NGSI_LD}entities"): [{
                "type": "https://smartdatamodels.org/dataModel.Parking/OffStreetParking"
            }],
            format!("{NGSI_LD}propertyNames"): [
                "https://smartdatamodels.org/availableSpotNumber"
            ]
        }],
        format!("{NGSI_LD}endpoint"): endpoint,
        format!("{NGSI_LD}registrationName"): format!("{name} 駐車場センサー"),
        format!("{NGSI_LD}expiresAt"): "2030-03-31T23:59:59Z",
        "https://example.org/priority": 3,
        "https://example.org/ratio": 0.25,
        "https://example.org/active": true,
        "https://example.org/notes": null
    })
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

async fn create(store: &RegistrationsTestStore, tenant: &Tenant, name: &str, doc: &Value) {
    expect(
        store
            .create_registration(tenant, &registration_id(name), doc)
            .await,
        "create_registration",
    );
}

async fn get(store: &RegistrationsTestStore, tenant: &Tenant, name: &str) -> Option<Value> {
    expect(
        store.get_registration(tenant, &registration_id(name)).await,
        "get_registration",
    )
}

async fn list(store: &RegistrationsTestStore, tenant: &Tenant) -> Vec<StoredRegistration> {
    expect(store.list_registrations(tenant).await, "list_registrations")
}

fn ids(registrations: &[StoredRegistration]) -> Vec<String> {
    registrations.iter().map(|r| r.id.clone()).collect()
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| registration_id(name)).collect()
}

// ---------------------------------------------------------------------------------
// Cases.

pub async fn a_created_registration_is_read_back(store: &RegistrationsTestStore) {
    let doc = registration("a", "https://sensors.example.org/ngsi-ld");
    assert_eq!(get(store, &himeji(), "a").await, None);
    create(store, &himeji(), "a", &doc).await;
    assert_eq!(get(store, &himeji(), "a").await, Some(doc.clone()));
    assert_eq!(get(store, &himeji(), "b").await, None);
    assert_eq!(
        list(store, &himeji()).await,
        vec![StoredRegistration {
            id: registration_id("a"),
            doc,
        }]
    );
    // The default tenant is a tenant like any other.
    let default = Tenant::default_tenant();
    let other = registration("a", "https://default.example.org/ngsi-ld");
    create(store, &default, "a", &other).await;
    assert_eq!(get(store, &default, "a").await, Some(other));
}

pub async fn a_taken_id_is_refused_and_changes_nothing(store: &RegistrationsTestStore) {
    let first = registration("a", "https://first.example.org/ngsi-ld");
    create(store, &himeji(), "a", &first).await;
    let second = registration("a", "https://second.example.org/ngsi-ld");
    match store
        .create_registration(&himeji(), &registration_id("a"), &second)
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(get(store, &himeji(), "a").await, Some(first.clone()));
    assert_eq!(
        list(store, &himeji()).await,
        vec![StoredRegistration {
            id: registration_id("a"),
            doc: first,
        }]
    );
    // The store still takes new registrations after a refusal.
    create(store, &himeji(), "b", &second).await;
    assert_eq!(ids(&list(store, &himeji()).await), names(&["a", "b"]));
}

pub async fn tenants_keep_their_registrations_apart(store: &RegistrationsTestStore) {
    let in_himeji = registration("shared", "https://himeji.example.org/ngsi-ld");
    let in_kobe = registration("shared", "https://kobe.example.org/ngsi-ld");
    create(store, &himeji(), "shared", &in_himeji).await;
    // The same id in another tenant is another registration, not a taken id.
    create(store, &kobe(), "shared", &in_kobe).await;
    create(
        store,
        &kobe(),
        "kobe-only",
        &registration("kobe-only", "https://k"),
    )
    .await;
    assert_eq!(
        get(store, &himeji(), "shared").await,
        Some(in_himeji.clone())
    );
    assert_eq!(get(store, &kobe(), "shared").await, Some(in_kobe.clone()));
    assert_eq!(get(store, &himeji(), "kobe-only").await, None);
    assert_eq!(ids(&list(store, &himeji()).await), names(&["shared"]));
    assert_eq!(
        ids(&list(store, &kobe()).await),
        names(&["shared", "kobe-only"])
    );
    assert!(list(store, &Tenant::named("osaka")).await.is_empty());
    assert!(list(store, &Tenant::default_tenant()).await.is_empty());

    // Replacing in one tenant leaves the other's document alone.
    let replaced = registration("shared", "https://himeji.example.org/v2");
    expect(
        store
            .replace_registration(&himeji(), &registration_id("shared"), &replaced)
            .await,
        "replace_registration",
    );
    assert_eq!(get(store, &kobe(), "shared").await, Some(in_kobe.clone()));
    // Replacing what only another tenant has is not found.
    match store
        .replace_registration(&himeji(), &registration_id("kobe-only"), &replaced)
        .await
    {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        get(store, &kobe(), "kobe-only").await,
        Some(registration("kobe-only", "https://k"))
    );

    // Deleting in one tenant neither sees nor removes the other's.
    assert!(!expect(
        store
            .delete_registration(&himeji(), &registration_id("kobe-only"))
            .await,
        "delete_registration",
    ));
    assert!(expect(
        store
            .delete_registration(&himeji(), &registration_id("shared"))
            .await,
        "delete_registration",
    ));
    assert_eq!(get(store, &himeji(), "shared").await, None);
    assert_eq!(get(store, &kobe(), "shared").await, Some(in_kobe));
    assert_eq!(
        ids(&list(store, &kobe()).await),
        names(&["shared", "kobe-only"])
    );
}

pub async fn registrations_are_listed_oldest_first(store: &RegistrationsTestStore) {
    // Ids out of alphabetical order, and another tenant's written in between.
    let order = ["m", "c", "x", "a", "k"];
    for (i, name) in order.iter().enumerate() {
        create(store, &himeji(), name, &registration(name, "https://h")).await;
        if i == 2 {
            create(store, &kobe(), "b", &registration("b", "https://k")).await;
        }
    }
    let listed = list(store, &himeji()).await;
    assert_eq!(ids(&listed), names(&order));
    for entry in &listed {
        let name = entry.id.rsplit(':').next().unwrap_or_default();
        assert_eq!(entry.doc, registration(name, "https://h"));
    }
    // Replacing keeps a registration's place; deleting one and creating another
    // puts the new one last, after every older one.
    let replaced = registration("c", "https://h/v2");
    expect(
        store
            .replace_registration(&himeji(), &registration_id("c"), &replaced)
            .await,
        "replace_registration",
    );
    assert!(expect(
        store
            .delete_registration(&himeji(), &registration_id("k"))
            .await,
        "delete_registration",
    ));
    create(store, &himeji(), "b", &registration("b", "https://h")).await;
    let listed = list(store, &himeji()).await;
    assert_eq!(ids(&listed), names(&["m", "c", "x", "a", "b"]));
    assert_eq!(listed[1].doc, replaced);
}

pub async fn replacing_changes_the_document_of_present_registrations_only(
    store: &RegistrationsTestStore,
) {
    create(store, &himeji(), "a", &registration("a", "https://old")).await;
    create(store, &himeji(), "b", &registration("b", "https://b")).await;
    let new = registration("a", "https://new.example.org/ngsi-ld");
    expect(
        store
            .replace_registration(&himeji(), &registration_id("a"), &new)
            .await,
        "replace_registration",
    );
    assert_eq!(get(store, &himeji(), "a").await, Some(new.clone()));
    // Only that registration changed.
    assert_eq!(
        get(store, &himeji(), "b").await,
        Some(registration("b", "https://b"))
    );
    assert_eq!(
        list(store, &himeji()).await,
        vec![
            StoredRegistration {
                id: registration_id("a"),
                doc: new.clone(),
            },
            StoredRegistration {
                id: registration_id("b"),
                doc: registration("b", "https://b"),
            },
        ]
    );
    match store
        .replace_registration(&himeji(), &registration_id("missing"), &new)
        .await
    {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    // Replacing a missing one does not create it.
    assert_eq!(get(store, &himeji(), "missing").await, None);
    assert_eq!(ids(&list(store, &himeji()).await), names(&["a", "b"]));
}

pub async fn deleting_says_whether_there_was_one_and_removes_it(store: &RegistrationsTestStore) {
    create(store, &himeji(), "a", &registration("a", "https://a")).await;
    create(store, &himeji(), "b", &registration("b", "https://b")).await;
    assert!(expect(
        store
            .delete_registration(&himeji(), &registration_id("a"))
            .await,
        "delete_registration",
    ));
    assert_eq!(get(store, &himeji(), "a").await, None);
    assert_eq!(ids(&list(store, &himeji()).await), names(&["b"]));
    assert!(!expect(
        store
            .delete_registration(&himeji(), &registration_id("a"))
            .await,
        "delete_registration",
    ));
    assert!(!expect(
        store
            .delete_registration(&himeji(), &registration_id("never"))
            .await,
        "delete_registration",
    ));
    assert_eq!(
        get(store, &himeji(), "b").await,
        Some(registration("b", "https://b"))
    );
    // A deleted id is free again.
    let again = registration("a", "https://again");
    create(store, &himeji(), "a", &again).await;
    assert_eq!(get(store, &himeji(), "a").await, Some(again));
    assert_eq!(ids(&list(store, &himeji()).await), names(&["b", "a"]));
}
