//! The behavioural suite every backend's [`IdentityStore`]
//! must pass, so that tenants, accounts, keys, sessions and the audit chain behave the
//! same on SQLite and on PostgreSQL. A backend runs it from a test file of its own:
//!
//! ```text
//! async fn new_store() -> store::identity_conformance::IdentityTestStore { /* … */ }
//! store::identity_conformance_suite!(new_store());
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case (the public async functions of
//! this module), so the calling crate needs `tokio` (features `macros`,
//! `rt-multi-thread`) among its dev-dependencies. Every timestamp a case stores has
//! whole microseconds: that is the precision both backends keep.

use crate::identity::{IdentityStore, SharedIdentityStore};
use crate::StoreError;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use identity::account::User;
use identity::audit::{chain_hash, AuditEvent, AuditFilter, AuditRecord, ChainCursor, GENESIS};
use identity::secret::{ApiKeyRecord, SessionRecord};
use identity::{Grant, Role, Scope, TenantRecord};
use serde_json::json;
use std::ops::Deref;

/// An identity store under test together with whatever keeps its database alive. The
/// store is dropped before the guard, so a guard whose `Drop` removes the database
/// finds no connection of its own left.
pub struct IdentityTestStore {
    // Field order matters: fields drop in declaration order.
    store: SharedIdentityStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl IdentityTestStore {
    /// `keep_alive` is dropped when the test is done with the store; its `Drop`
    /// should remove the database.
    pub fn new(store: SharedIdentityStore, keep_alive: impl Send + Sync + 'static) -> Self {
        IdentityTestStore {
            store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    /// Another handle to the store, for tasks spawned by a test.
    pub fn shared(&self) -> SharedIdentityStore {
        SharedIdentityStore::clone(&self.store)
    }
}

impl Deref for IdentityTestStore {
    type Target = dyn IdentityStore;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

/// Expands to the identity suite as `#[tokio::test]` functions, each getting a fresh
/// store from `$new_store` (an async expression yielding an [`IdentityTestStore`]).
/// Invoke it once, in a test file or module of its own.
#[macro_export]
macro_rules! identity_conformance_suite {
    ($new_store:expr) => {
        $crate::identity_conformance_suite!(@cases $new_store;
            tenants_are_registered_updated_and_listed_by_code,
            users_are_found_by_name_and_by_oidc_identity,
            user_names_and_oidc_identities_are_unique,
            grants_are_idempotent_sorted_and_found_by_holder,
            api_keys_are_listed_per_tenant_newest_first_and_revoked_once,
            sessions_are_found_and_ended,
            pending_sign_ins_are_taken_once_and_not_after_expiry,
            audit_appends_chain_from_genesis_and_verify,
            audit_search_filters_newest_first,
            audit_chain_reads_in_pages,
            concurrent_audit_appends_form_one_gap_free_chain,
            audit_detail_round_trips_and_still_verifies,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: $crate::identity_conformance::IdentityTestStore = $new_store.await;
                $crate::identity_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

const YAIZU: &str = "222127";
const SHIZUOKA: &str = "220001";
const HAMAMATSU: &str = "221309";

/// Now, with whole microseconds (what both backends keep) and a sub-second part, so
/// that a backend dropping microseconds fails the round trips.
fn now() -> DateTime<Utc> {
    let now = Utc::now().trunc_subsecs(6);
    if now.timestamp_subsec_micros().is_multiple_of(1000) {
        now + Duration::microseconds(123)
    } else {
        now
    }
}

fn tenant(code: &str, name: &str, created_at: DateTime<Utc>) -> TenantRecord {
    TenantRecord::new(code, name, created_at)
        .unwrap_or_else(|e| panic!("fixture tenant {code} is invalid: {e}"))
}

fn user(username: &str, created_at: DateTime<Utc>) -> User {
    User::new(username, format!("{username} (表示名)"), created_at)
}

fn audit_event(tenant: Option<&str>, actor: &str, action: &str, target: &str) -> AuditEvent {
    AuditEvent::new(tenant, actor, action, target, json!({"note": "fixture"}))
}

async fn append(store: &IdentityTestStore, event: AuditEvent) -> AuditRecord {
    store
        .append_audit(event)
        .await
        .unwrap_or_else(|e| panic!("append_audit failed: {e}"))
}

async fn whole_chain(store: &IdentityTestStore) -> Vec<AuditRecord> {
    store
        .audit_chain(1, 10_000)
        .await
        .unwrap_or_else(|e| panic!("audit_chain failed: {e}"))
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

// ---------------------------------------------------------------------------------
// Tenants and users.

pub async fn tenants_are_registered_updated_and_listed_by_code(store: &IdentityTestStore) {
    let created = now();
    let mut yaizu = tenant(YAIZU, "焼津市", created);
    let shizuoka = tenant(SHIZUOKA, "静岡県", created);
    let hamamatsu = tenant(HAMAMATSU, "浜松市", created - Duration::days(1));
    for record in [&yaizu, &shizuoka, &hamamatsu] {
        expect(store.create_tenant(record).await, "create_tenant");
    }
    assert!(matches!(
        store.create_tenant(&tenant(YAIZU, "別名", created)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        expect(store.get_tenant(YAIZU).await, "get_tenant"),
        Some(yaizu.clone())
    );
    assert_eq!(expect(store.get_tenant("999999").await, "get_tenant"), None);

    yaizu.suspended = true;
    yaizu.shared_with_prefecture = true;
    yaizu.public_types = vec![
        "https://smartdatamodels.org/dataModel.Weather/WeatherObserved".into(),
        "https://ex.org/Shelter".into(),
    ];
    yaizu.name = "焼津市役所".into();
    expect(store.update_tenant(&yaizu).await, "update_tenant");
    assert_eq!(
        expect(store.get_tenant(YAIZU).await, "get_tenant"),
        Some(yaizu.clone())
    );

    let unknown = tenant("011002", "札幌市", created);
    assert!(matches!(
        store.update_tenant(&unknown).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(expect(store.get_tenant("011002").await, "get_tenant"), None);

    let listed = expect(
        store.list_registered_tenants().await,
        "list_registered_tenants",
    );
    assert_eq!(listed, vec![shizuoka, hamamatsu, yaizu]);
}

pub async fn users_are_found_by_name_and_by_oidc_identity(store: &IdentityTestStore) {
    let created = now();
    let mut suzuki = user("suzuki", created);
    suzuki.email = Some("suzuki@city.yaizu.lg.jp".into());
    suzuki.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    let mut resident = user("resident-1", created);
    resident.oidc_issuer = Some("https://id.example.jp".into());
    resident.oidc_subject = Some("sub-0001".into());
    let admin = user("admin", created);
    for record in [&suzuki, &resident, &admin] {
        expect(store.create_user(record).await, "create_user");
    }

    assert_eq!(
        expect(store.get_user(&suzuki.id).await, "get_user"),
        Some(suzuki.clone())
    );
    assert_eq!(expect(store.get_user("no-such-id").await, "get_user"), None);
    assert_eq!(
        expect(
            store.find_user_by_username("suzuki").await,
            "find_user_by_username"
        ),
        Some(suzuki.clone())
    );
    assert_eq!(
        expect(
            store.find_user_by_username("nobody").await,
            "find_user_by_username"
        ),
        None
    );
    assert_eq!(
        expect(
            store
                .find_user_by_oidc("https://id.example.jp", "sub-0001")
                .await,
            "find_user_by_oidc"
        ),
        Some(resident.clone())
    );
    assert_eq!(
        expect(
            store
                .find_user_by_oidc("https://other.example.jp", "sub-0001")
                .await,
            "find_user_by_oidc"
        ),
        None
    );

    // What a failed sign-in and a lockout save.
    suzuki.failed_sign_ins = 3;
    suzuki.locked_until = Some(created + Duration::minutes(15));
    suzuki.display_name = "鈴木 太郎".into();
    suzuki.disabled = true;
    suzuki.password_hash = None;
    expect(store.update_user(&suzuki).await, "update_user");
    assert_eq!(
        expect(store.get_user(&suzuki.id).await, "get_user"),
        Some(suzuki.clone())
    );

    let ghost = user("ghost", created);
    assert!(matches!(
        store.update_user(&ghost).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(expect(store.get_user(&ghost.id).await, "get_user"), None);

    let listed = expect(store.list_users().await, "list_users");
    assert_eq!(listed, vec![admin, resident, suzuki]);
}

pub async fn user_names_and_oidc_identities_are_unique(store: &IdentityTestStore) {
    let created = now();
    let mut first = user("tanaka", created);
    first.oidc_issuer = Some("https://id.example.jp".into());
    first.oidc_subject = Some("sub-1".into());
    expect(store.create_user(&first).await, "create_user");

    let same_name = user("tanaka", created);
    assert!(matches!(
        store.create_user(&same_name).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let mut same_identity = user("tanaka2", created);
    same_identity.oidc_issuer = first.oidc_issuer.clone();
    same_identity.oidc_subject = first.oidc_subject.clone();
    assert!(matches!(
        store.create_user(&same_identity).await,
        Err(StoreError::AlreadyExists(_))
    ));
    // Accounts without an OIDC identity do not collide with each other.
    expect(
        store.create_user(&user("sato", created)).await,
        "create_user",
    );
    expect(
        store.create_user(&user("ito", created)).await,
        "create_user",
    );

    // Renaming onto a taken name is refused and changes nothing.
    let mut sato = expect(store.find_user_by_username("sato").await, "find")
        .unwrap_or_else(|| panic!("sato was just created"));
    let before = sato.clone();
    sato.username = "tanaka".into();
    assert!(matches!(
        store.update_user(&sato).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        expect(store.get_user(&sato.id).await, "get_user"),
        Some(before)
    );
    assert_eq!(expect(store.list_users().await, "list_users").len(), 3);
}

// ---------------------------------------------------------------------------------
// Grants, keys, sessions and pending sign-ins.

pub async fn grants_are_idempotent_sorted_and_found_by_holder(store: &IdentityTestStore) {
    let created = now();
    let alice = user("alice", created);
    let bob = user("bob", created);
    expect(store.create_user(&alice).await, "create_user");
    expect(store.create_user(&bob).await, "create_user");

    let publisher = Grant::in_tenant(YAIZU, Role::Publisher);
    let reviewer = Grant::in_tenant(YAIZU, Role::Reviewer);
    let prefecture_admin = Grant::in_tenant(SHIZUOKA, Role::TenantAdmin);
    for grant in [
        &reviewer,
        &publisher,
        &prefecture_admin,
        &Grant::platform_admin(),
    ] {
        expect(store.add_grant(&alice.id, grant).await, "add_grant");
    }
    // Granting a role already held changes nothing.
    expect(store.add_grant(&alice.id, &publisher).await, "add_grant");
    expect(store.add_grant(&bob.id, &publisher).await, "add_grant");

    let mut expected = vec![
        Grant::platform_admin(),
        publisher.clone(),
        reviewer.clone(),
        prefecture_admin.clone(),
    ];
    expected.sort();
    assert_eq!(
        expect(store.grants_of(&alice.id).await, "grants_of"),
        expected
    );
    assert_eq!(expect(store.grants_of("nobody").await, "grants_of"), vec![]);

    let mut both = vec![alice.id.clone(), bob.id.clone()];
    both.sort();
    let mut holders = expect(store.holders_of(&publisher).await, "holders_of");
    holders.sort();
    assert_eq!(holders, both);
    assert_eq!(
        expect(
            store.holders_of(&Grant::platform_admin()).await,
            "holders_of"
        ),
        vec![alice.id.clone()]
    );
    // The same role in another tenant is another grant.
    assert_eq!(
        expect(
            store
                .holders_of(&Grant::in_tenant(SHIZUOKA, Role::Publisher))
                .await,
            "holders_of"
        ),
        Vec::<String>::new()
    );

    assert!(expect(
        store.remove_grant(&alice.id, &publisher).await,
        "remove_grant"
    ));
    assert!(!expect(
        store.remove_grant(&alice.id, &publisher).await,
        "remove_grant"
    ));
    assert!(expect(
        store
            .remove_grant(&alice.id, &Grant::platform_admin())
            .await,
        "remove_grant"
    ));
    assert_eq!(
        expect(store.grants_of(&alice.id).await, "grants_of"),
        // Sorted: by tenant, then role.
        vec![prefecture_admin, reviewer]
    );
    assert_eq!(
        expect(store.holders_of(&publisher).await, "holders_of"),
        vec![bob.id.clone()]
    );
    assert_eq!(
        expect(
            store.holders_of(&Grant::platform_admin()).await,
            "holders_of"
        ),
        Vec::<String>::new()
    );
}

pub async fn api_keys_are_listed_per_tenant_newest_first_and_revoked_once(
    store: &IdentityTestStore,
) {
    let start = now();
    let key = |grant: Grant, label: &str, minutes: i64, expires: Option<DateTime<Utc>>| {
        let role = grant.role;
        ApiKeyRecord::generate(
            grant,
            Scope::defaults_for(role),
            label,
            "user:admin",
            expires,
            start + Duration::minutes(minutes),
        )
        .0
    };
    let older = key(
        Grant::in_tenant(YAIZU, Role::Publisher),
        "河川水位センサー",
        0,
        None,
    );
    let newer = key(
        Grant::in_tenant(YAIZU, Role::Reviewer),
        "審査ツール",
        5,
        Some(start + Duration::days(30)),
    );
    let other_tenant = key(Grant::in_tenant(SHIZUOKA, Role::Publisher), "県", 1, None);
    let platform = key(Grant::platform_admin(), "運用", 2, None);
    for record in [&older, &newer, &other_tenant, &platform] {
        expect(store.create_api_key(record).await, "create_api_key");
    }

    assert_eq!(
        expect(store.get_api_key(&newer.id).await, "get_api_key"),
        Some(newer.clone())
    );
    assert_eq!(
        expect(store.get_api_key("0000000000000000").await, "get_api_key"),
        None
    );
    assert_eq!(
        expect(store.list_api_keys(Some(YAIZU)).await, "list_api_keys"),
        vec![newer.clone(), older.clone()]
    );
    assert_eq!(
        expect(store.list_api_keys(Some(SHIZUOKA)).await, "list_api_keys"),
        vec![other_tenant]
    );
    assert_eq!(
        expect(store.list_api_keys(None).await, "list_api_keys"),
        vec![platform.clone()]
    );
    assert_eq!(
        expect(store.list_api_keys(Some(HAMAMATSU)).await, "list_api_keys"),
        vec![]
    );

    let revoked_at = start + Duration::minutes(10);
    assert!(expect(
        store.revoke_api_key(&older.id, revoked_at).await,
        "revoke_api_key"
    ));
    assert!(!expect(
        store
            .revoke_api_key(&older.id, revoked_at + Duration::minutes(1))
            .await,
        "revoke_api_key"
    ));
    assert!(!expect(
        store.revoke_api_key("0000000000000000", revoked_at).await,
        "revoke_api_key"
    ));
    let mut expected = older.clone();
    expected.revoked_at = Some(revoked_at);
    assert_eq!(
        expect(store.get_api_key(&older.id).await, "get_api_key"),
        Some(expected.clone())
    );
    // Revoked keys are still listed.
    assert_eq!(
        expect(store.list_api_keys(Some(YAIZU)).await, "list_api_keys"),
        vec![newer, expected]
    );
}

pub async fn sessions_are_found_and_ended(store: &IdentityTestStore) {
    let start = now();
    let (first, _) = SessionRecord::start("user-a", start, Duration::hours(8));
    let (second, _) = SessionRecord::start("user-a", start, Duration::hours(8));
    let (other, _) = SessionRecord::start("user-b", start, Duration::hours(8));
    for record in [&first, &second, &other] {
        expect(store.create_session(record).await, "create_session");
    }
    assert_eq!(
        expect(store.get_session(&first.token_hash).await, "get_session"),
        Some(first.clone())
    );
    assert_eq!(
        expect(store.get_session("unknown").await, "get_session"),
        None
    );

    expect(
        store.delete_session(&first.token_hash).await,
        "delete_session",
    );
    assert_eq!(
        expect(store.get_session(&first.token_hash).await, "get_session"),
        None
    );
    // Deleting what is gone is no error.
    expect(
        store.delete_session(&first.token_hash).await,
        "delete_session",
    );
    assert_eq!(
        expect(store.get_session(&second.token_hash).await, "get_session"),
        Some(second.clone())
    );

    expect(
        store.delete_sessions_of("user-a").await,
        "delete_sessions_of",
    );
    assert_eq!(
        expect(store.get_session(&second.token_hash).await, "get_session"),
        None
    );
    assert_eq!(
        expect(store.get_session(&other.token_hash).await, "get_session"),
        Some(other)
    );
}

pub async fn pending_sign_ins_are_taken_once_and_not_after_expiry(store: &IdentityTestStore) {
    let start = Utc::now();
    let data = r#"{"nonce":"n-1","verifier":"v-1","return_to":"/admin"}"#;
    expect(
        store
            .put_pending_sign_in("state-1", data, start + Duration::minutes(10))
            .await,
        "put_pending_sign_in",
    );
    expect(
        store
            .put_pending_sign_in("state-2", "other", start + Duration::minutes(10))
            .await,
        "put_pending_sign_in",
    );
    expect(
        store
            .put_pending_sign_in("state-old", "stale", start - Duration::seconds(1))
            .await,
        "put_pending_sign_in",
    );
    assert_eq!(
        expect(
            store.take_pending_sign_in("state-1").await,
            "take_pending_sign_in"
        ),
        Some(data.to_owned())
    );
    assert_eq!(
        expect(
            store.take_pending_sign_in("state-1").await,
            "take_pending_sign_in"
        ),
        None
    );
    assert_eq!(
        expect(
            store.take_pending_sign_in("state-old").await,
            "take_pending_sign_in"
        ),
        None
    );
    assert_eq!(
        expect(
            store.take_pending_sign_in("never-put").await,
            "take_pending_sign_in"
        ),
        None
    );
    assert_eq!(
        expect(
            store.take_pending_sign_in("state-2").await,
            "take_pending_sign_in"
        ),
        Some("other".to_owned())
    );
}

// ---------------------------------------------------------------------------------
// The audit log.

fn seqs(records: &[AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.seq).collect()
}

pub async fn audit_appends_chain_from_genesis_and_verify(store: &IdentityTestStore) {
    assert_eq!(whole_chain(store).await, vec![]);
    let events = [
        audit_event(None, "cli", "tenant.create", "tenant:222127"),
        audit_event(Some(YAIZU), "user:u1", "key.create", "key:0123456789abcdef"),
        audit_event(Some(YAIZU), "user:u1", "role.grant", "user:u2"),
    ];
    let mut appended = Vec::new();
    let mut prev_hash = GENESIS.to_owned();
    for (index, event) in events.iter().enumerate() {
        let record = append(store, event.clone()).await;
        assert_eq!(record.seq, index as i64 + 1);
        assert_eq!(record.prev_hash, prev_hash);
        assert_eq!(&record.event, event);
        assert_eq!(
            record.hash,
            chain_hash(record.seq, &record.prev_hash, event)
        );
        prev_hash = record.hash.clone();
        appended.push(record);
    }
    let stored = whole_chain(store).await;
    assert_eq!(stored, appended);
    let mut cursor = ChainCursor::default();
    assert_eq!(cursor.verify(&stored), Ok(()));
    assert_eq!(cursor.verified, 3);
    assert_eq!(cursor.prev_hash, appended[2].hash);
}

pub async fn audit_search_filters_newest_first(store: &IdentityTestStore) {
    let at = |second: u32, micros: i64| {
        Utc.with_ymd_and_hms(2025, 4, 1, 9, 0, second)
            .single()
            .unwrap_or_default()
            + Duration::microseconds(micros)
    };
    let fixtures = [
        (Some(YAIZU), "user:a", "key.create", "key:1", at(0, 1)),
        (Some(YAIZU), "user:b", "role.grant", "user:x", at(1, 2)),
        (Some(SHIZUOKA), "user:a", "key.create", "key:2", at(2, 3)),
        (None, "cli", "tenant.create", "tenant:222127", at(3, 4)),
        (Some(YAIZU), "user:a", "key.revoke", "key:1", at(4, 5)),
        (Some(YAIZU), "user:a", "key.create", "key:3", at(5, 6)),
    ];
    for (tenant, actor, action, target, when) in fixtures {
        let mut event = audit_event(tenant, actor, action, target);
        event.at = when;
        append(store, event).await;
    }
    let all = whole_chain(store).await;
    assert_eq!(all.len(), 6);

    let filter = |edit: &dyn Fn(&mut AuditFilter)| {
        let mut filter = AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        };
        edit(&mut filter);
        filter
    };
    let cases: Vec<(AuditFilter, Vec<i64>)> = vec![
        (filter(&|f| f.tenant = Some(YAIZU.into())), vec![6, 5, 2, 1]),
        (
            filter(&|f| f.actor = Some("user:a".into())),
            vec![6, 5, 3, 1],
        ),
        (filter(&|f| f.target = Some("key:1".into())), vec![5, 1]),
        (
            filter(&|f| f.action = Some("key.create".into())),
            vec![6, 3, 1],
        ),
        // From is inclusive, to exclusive.
        (
            filter(&|f| {
                f.from = Some(at(1, 2));
                f.to = Some(at(4, 5));
            }),
            vec![4, 3, 2],
        ),
        (
            filter(&|f| {
                f.before_seq = Some(5);
                f.limit = 2;
            }),
            vec![4, 3],
        ),
        (
            filter(&|f| {
                f.tenant = Some(YAIZU.into());
                f.action = Some("key.create".into());
                f.limit = 1;
            }),
            vec![6],
        ),
        (filter(&|f| f.limit = 3), vec![6, 5, 4]),
        (filter(&|f| f.tenant = Some(HAMAMATSU.into())), vec![]),
    ];
    for (filter, expected) in cases {
        let found = expect(store.search_audit(&filter).await, "search_audit");
        assert_eq!(seqs(&found), expected, "{filter:?}");
        // The records come back whole, and agree with the filter's own definition.
        let by_definition: Vec<AuditRecord> = all
            .iter()
            .rev()
            .filter(|record| filter.matches(record))
            .take(filter.limit)
            .cloned()
            .collect();
        assert_eq!(found, by_definition, "{filter:?}");
    }
}

pub async fn audit_chain_reads_in_pages(store: &IdentityTestStore) {
    for n in 1..=7 {
        append(
            store,
            audit_event(Some(YAIZU), "cli", "test.page", &format!("item:{n}")),
        )
        .await;
    }
    let mut cursor = ChainCursor::default();
    let mut from = 1;
    let mut pages = Vec::new();
    loop {
        let page = expect(store.audit_chain(from, 3).await, "audit_chain");
        if page.is_empty() {
            break;
        }
        assert_eq!(cursor.verify(&page), Ok(()));
        from = page[page.len() - 1].seq + 1;
        pages.push(seqs(&page));
    }
    assert_eq!(pages, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    assert_eq!(cursor.verified, 7);
    assert_eq!(
        seqs(&expect(store.audit_chain(6, 100).await, "audit_chain")),
        vec![6, 7]
    );
    assert_eq!(
        expect(store.audit_chain(8, 100).await, "audit_chain"),
        vec![]
    );
}

pub async fn concurrent_audit_appends_form_one_gap_free_chain(store: &IdentityTestStore) {
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let shared = store.shared();
            tokio::spawn(async move {
                let event = audit_event(Some(YAIZU), &format!("user:{n}"), "test.concurrent", "x");
                shared.append_audit(event).await
            })
        })
        .collect();
    let mut appended = Vec::new();
    for task in tasks {
        let outcome = task
            .await
            .unwrap_or_else(|e| panic!("append task panicked: {e}"));
        appended.push(expect(outcome, "append_audit").seq);
    }
    appended.sort_unstable();
    assert_eq!(appended, (1..=20).collect::<Vec<i64>>());
    let chain = whole_chain(store).await;
    assert_eq!(seqs(&chain), (1..=20).collect::<Vec<i64>>());
    let mut cursor = ChainCursor::default();
    assert_eq!(cursor.verify(&chain), Ok(()));
    assert_eq!(cursor.verified, 20);
}

pub async fn audit_detail_round_trips_and_still_verifies(store: &IdentityTestStore) {
    // Keys out of order at every level: PostgreSQL's jsonb stores them reordered.
    let detail = json!({
        "zeta": 1,
        "alpha": {"y": [1, {"b": true, "a": null}], "x": "焼津市"},
        "mid": 2.5,
        "list": ["c", "a", "b"],
        "empty": {},
    });
    let event = AuditEvent::new(
        Some(YAIZU),
        "user:u1",
        "tenant.update",
        "tenant:222127",
        detail,
    );
    let appended = append(store, event.clone()).await;
    let plain = append(
        store,
        AuditEvent::new(
            None,
            "anonymous",
            "sign_in.fail",
            "user:unknown",
            json!(null),
        ),
    )
    .await;

    let chain = whole_chain(store).await;
    assert_eq!(chain, vec![appended.clone(), plain]);
    assert_eq!(chain[0].event, event);
    assert_eq!(
        chain[0].event.at, event.at,
        "timestamps keep their microseconds"
    );
    assert_eq!(ChainCursor::default().verify(&chain), Ok(()));

    let found = expect(
        store
            .search_audit(&AuditFilter {
                tenant: Some(YAIZU.into()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await,
        "search_audit",
    );
    assert_eq!(found, vec![appended]);
}
