//! The behavioural suite every backend's [`ApplicationStore`] must pass: procedure
//! versions, applications guarded by their version with history, outbox and
//! documents written in the same transaction (and not at all when the write loses),
//! idempotent submission, listing with every filter and its order, counters that
//! never hand out a number twice, attachments, payments with deduplicated provider
//! events, issued documents, delegations, the leased outbox and anonymisation. A
//! backend runs it from a test file of its own:
//!
//! ```text
//! async fn new_store() -> store::applications_conformance::ApplicationsTestStore { /* … */ }
//! store::applications_conformance_suite!(new_store());
//! ```
//!
//! Every instant a case gives has whole microseconds, the precision both backends
//! keep.

use crate::applications::{
    ApplicationChange, ApplicationFilter, ApplicationRecord, ApplicationStore, AttachmentRecord,
    DelegationRecord, DocumentRecord, HistoryRecord, OutboxMessage, PaymentRecord, ProcedureRecord,
    SharedApplicationStore,
};
use crate::StoreError;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::Arc;

/// A store under test with whatever keeps its database alive (dropped last).
/// Dereferences to the [`ApplicationStore`].
pub struct ApplicationsTestStore {
    // Field order matters: fields drop in declaration order.
    applications: SharedApplicationStore,
    _keep_alive: Box<dyn Send + Sync>,
}

impl ApplicationsTestStore {
    pub fn new<S>(store: Arc<S>, keep_alive: impl Send + Sync + 'static) -> Self
    where
        S: ApplicationStore + 'static,
    {
        ApplicationsTestStore {
            applications: store,
            _keep_alive: Box::new(keep_alive),
        }
    }

    /// Another handle to the store, for work spawned onto other tasks.
    pub fn shared(&self) -> SharedApplicationStore {
        Arc::clone(&self.applications)
    }
}

impl Deref for ApplicationsTestStore {
    type Target = dyn ApplicationStore;

    fn deref(&self) -> &Self::Target {
        self.applications.as_ref()
    }
}

/// Expands to the applications suite as `#[tokio::test]` functions, each getting a
/// fresh store from `$new_store` (an async expression yielding an
/// [`ApplicationsTestStore`]).
#[macro_export]
macro_rules! applications_conformance_suite {
    ($new_store:expr) => {
        $crate::applications_conformance_suite!(@cases $new_store;
            procedures_are_read_at_their_latest_or_a_given_version,
            procedures_are_listed_with_or_without_shared_ones,
            a_taken_procedure_version_is_refused,
            an_inserted_application_is_stored_with_its_change,
            a_taken_application_id_is_refused,
            a_repeated_submission_returns_the_first_application,
            updates_bump_the_version_and_append_history_in_order,
            an_update_writes_its_outbox_and_documents,
            a_stale_update_conflicts_and_writes_nothing,
            updating_a_missing_application_is_not_found,
            concurrent_updates_of_one_version_have_one_winner,
            applications_are_filtered_by_every_field,
            applications_are_ordered_by_due_then_created_and_paged,
            procedure_history_covers_the_procedure_applications,
            sequences_count_from_one_per_name,
            concurrent_callers_never_get_the_same_number,
            attachments_are_stored_listed_and_deleted,
            payments_round_trip_and_are_found_by_reference_and_state,
            payment_updates_check_the_version_and_skip_repeated_events,
            issued_documents_are_found_by_code_and_application,
            delegations_are_kept_per_tenant,
            due_outbox_messages_are_claimed_in_queue_order_up_to_the_limit,
            a_leased_message_is_not_claimed_again_until_the_lease_ends,
            completed_messages_go_and_retried_ones_wait,
            concurrent_claims_never_share_a_message,
            anonymising_keeps_history_and_drops_answers_and_files,
        );
    };
    (@cases $new_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: $crate::applications_conformance::ApplicationsTestStore =
                    $new_store.await;
                $crate::applications_conformance::$case(&store).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------
// Fixtures.

/// 兵庫県姫路市 and 兵庫県神戸市.
const HIMEJI: &str = "222127";
const KOBE: &str = "220001";

fn at(minute: i64, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 4, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::minutes(minute)
        + chrono::Duration::microseconds(micros)
}

fn procedure(tenant: &str, id: &str, version: i64, shared: bool) -> ProcedureRecord {
    ProcedureRecord {
        tenant: tenant.to_owned(),
        id: id.to_owned(),
        version,
        shared,
        status: "published".to_owned(),
        created_at: at(version, 0),
        document: json!({"title": format!("{id} 第{version}版"), "steps": ["review", "approve"]}),
    }
}

fn application(id: &str, tenant: &str, procedure_id: &str, applicant: &str) -> ApplicationRecord {
    ApplicationRecord {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        procedure_id: procedure_id.to_owned(),
        procedure_version: 1,
        applicant: applicant.to_owned(),
        state: "submitted".to_owned(),
        reception_number: None,
        idempotency_key: None,
        due_at: None,
        created_at: at(0, 0),
        updated_at: at(0, 0),
        document: json!({"answers": format!("sealed:{id}")}),
        version: 1,
    }
}

fn message(tenant: &str, application_id: &str, channel: &str, due: DateTime<Utc>) -> OutboxMessage {
    OutboxMessage {
        id: 0,
        tenant: tenant.to_owned(),
        application_id: application_id.to_owned(),
        channel: channel.to_owned(),
        payload: json!({"to": application_id, "channel": channel, "due": due.to_rfc3339()}),
        attempts: 0,
        next_attempt_at: due,
    }
}

fn document(
    code: &str,
    tenant: &str,
    application_id: &str,
    issued: DateTime<Utc>,
) -> DocumentRecord {
    // Bytes that are not UTF-8, as in a real PDF.
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    pdf.extend_from_slice(code.as_bytes());
    pdf.push(0);
    DocumentRecord {
        code: code.to_owned(),
        tenant: tenant.to_owned(),
        application_id: application_id.to_owned(),
        kind: "receipt".to_owned(),
        reception_number: format!("R7-{code}"),
        digest: format!("{:0>64}", code.len()),
        issued_at: issued,
        pdf,
    }
}

fn attachment(id: &str, application_id: &str, created: DateTime<Utc>) -> AttachmentRecord {
    AttachmentRecord {
        id: id.to_owned(),
        application_id: application_id.to_owned(),
        requirement: "本人確認書類".to_owned(),
        file_name: format!("{id}.pdf"),
        media_type: "application/pdf".to_owned(),
        size: 12_345,
        digest: format!("{:a>64}", id),
        sealed_content: format!("sealed-v1:{id}"),
        created_at: created,
    }
}

fn payment(id: &str, application_id: &str, provider_ref: Option<&str>) -> PaymentRecord {
    PaymentRecord {
        id: id.to_owned(),
        tenant: HIMEJI.to_owned(),
        application_id: application_id.to_owned(),
        provider: "paypay".to_owned(),
        provider_ref: provider_ref.map(str::to_owned),
        state: "pending".to_owned(),
        amount_yen: 300,
        created_at: at(1, 0),
        updated_at: at(1, 0),
        expires_at: at(31, 0),
        document: json!({"items": [{"name": "住民票の写し", "yen": 300}]}),
        version: 1,
    }
}

fn expect<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

fn history_change(entry: Value) -> ApplicationChange {
    ApplicationChange {
        history: Some(entry),
        ..ApplicationChange::default()
    }
}

async fn insert_app(store: &ApplicationsTestStore, app: &ApplicationRecord) -> ApplicationRecord {
    let change = history_change(json!({"to": app.state, "command": "submit"}));
    expect(
        store.insert_application(app, &change).await,
        "insert_application",
    )
}

/// Every message due by a far-off time, leased briefly (so each case sees the queue).
async fn all_messages(store: &ApplicationsTestStore, now: DateTime<Utc>) -> Vec<OutboxMessage> {
    expect(
        store
            .claim_outbox(now, now + chrono::Duration::microseconds(1), 1000)
            .await,
        "claim_outbox",
    )
}

/// A message as queued: without the fields the store assigns.
fn queued(message: &OutboxMessage) -> (String, String, String, Value, DateTime<Utc>) {
    (
        message.tenant.clone(),
        message.application_id.clone(),
        message.channel.clone(),
        message.payload.clone(),
        message.next_attempt_at,
    )
}

fn ids(applications: &[ApplicationRecord]) -> Vec<&str> {
    applications.iter().map(|a| a.id.as_str()).collect()
}

fn history_entries(history: &[HistoryRecord]) -> Vec<(String, i64, Value)> {
    history
        .iter()
        .map(|h| (h.application_id.clone(), h.seq, h.entry.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------
// Procedures.

pub async fn procedures_are_read_at_their_latest_or_a_given_version(store: &ApplicationsTestStore) {
    let first = procedure(HIMEJI, "juminhyo", 1, false);
    let mut second = procedure(HIMEJI, "juminhyo", 2, true);
    second.status = "draft".to_owned();
    // Stored out of order: the latest is the highest version, not the last written.
    for p in [&second, &first] {
        expect(store.insert_procedure(p).await, "insert_procedure");
    }
    expect(
        store
            .insert_procedure(&procedure(KOBE, "juminhyo", 7, false))
            .await,
        "insert_procedure",
    );
    let latest = expect(
        store.get_procedure(HIMEJI, "juminhyo", None).await,
        "get_procedure",
    );
    assert_eq!(latest, Some(second.clone()));
    assert_eq!(
        expect(
            store.get_procedure(HIMEJI, "juminhyo", Some(1)).await,
            "get_procedure"
        ),
        Some(first)
    );
    assert_eq!(
        expect(
            store.get_procedure(HIMEJI, "juminhyo", Some(3)).await,
            "get_procedure"
        ),
        None
    );
    assert_eq!(
        expect(
            store.get_procedure(HIMEJI, "other", None).await,
            "get_procedure"
        ),
        None
    );
    // Procedures are the tenant's own: the same id elsewhere is another procedure.
    let kobe = expect(store.get_procedure(KOBE, "juminhyo", None).await, "get");
    assert_eq!(kobe.map(|p| p.version), Some(7));
}

pub async fn procedures_are_listed_with_or_without_shared_ones(store: &ApplicationsTestStore) {
    let own_old = procedure(HIMEJI, "a-juminhyo", 1, false);
    let own = procedure(HIMEJI, "a-juminhyo", 2, false);
    let own_other = procedure(HIMEJI, "b-inkan", 1, true);
    let shared_old = procedure(KOBE, "c-hoiku", 1, true);
    let shared = procedure(KOBE, "c-hoiku", 2, true);
    // Shared once, but its latest version is not: no longer offered.
    let withdrawn_old = procedure(KOBE, "d-gomi", 1, true);
    let withdrawn = procedure(KOBE, "d-gomi", 2, false);
    let private = procedure(KOBE, "e-zei", 1, false);
    let elsewhere = procedure("130001", "f-template", 1, true);
    for p in [
        &own_old,
        &own,
        &own_other,
        &shared_old,
        &shared,
        &withdrawn_old,
        &withdrawn,
        &private,
        &elsewhere,
    ] {
        expect(store.insert_procedure(p).await, "insert_procedure");
    }
    assert_eq!(
        expect(
            store.list_procedures(HIMEJI, false).await,
            "list_procedures"
        ),
        vec![own.clone(), own_other.clone()]
    );
    assert_eq!(
        expect(store.list_procedures(HIMEJI, true).await, "list_procedures"),
        vec![
            elsewhere.clone(),
            shared.clone(),
            own.clone(),
            own_other.clone()
        ]
    );
    // A tenant's own procedures are listed whether shared or not, and only once.
    assert_eq!(
        expect(store.list_procedures(KOBE, true).await, "list_procedures"),
        vec![elsewhere, shared, withdrawn, private, own_other]
    );
    assert!(expect(store.list_procedures("470007", false).await, "list").is_empty());
}

pub async fn a_taken_procedure_version_is_refused(store: &ApplicationsTestStore) {
    let first = procedure(HIMEJI, "juminhyo", 1, false);
    expect(store.insert_procedure(&first).await, "insert_procedure");
    let mut again = procedure(HIMEJI, "juminhyo", 1, true);
    again.document = json!({"title": "別物"});
    match store.insert_procedure(&again).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        expect(
            store.get_procedure(HIMEJI, "juminhyo", Some(1)).await,
            "get_procedure"
        ),
        Some(first)
    );
    // The same id and version in another tenant is not taken.
    expect(
        store
            .insert_procedure(&procedure(KOBE, "juminhyo", 1, false))
            .await,
        "insert_procedure",
    );
}

// ---------------------------------------------------------------------------------
// Applications.

pub async fn an_inserted_application_is_stored_with_its_change(store: &ApplicationsTestStore) {
    let mut app = application("app-1", HIMEJI, "juminhyo", "user-1");
    app.reception_number = Some("R7-000001".to_owned());
    app.idempotency_key = Some("key-1".to_owned());
    app.due_at = Some(at(60, 7));
    app.created_at = at(2, 1);
    app.updated_at = at(2, 1);
    // The store assigns the version.
    app.version = 42;
    let change = ApplicationChange {
        history: Some(json!({"from": null, "to": "submitted", "actor": "user-1"})),
        outbox: vec![message(HIMEJI, "app-1", "mail", at(2, 1))],
        documents: vec![document("RCPT-0001", HIMEJI, "app-1", at(2, 1))],
    };
    let stored = expect(
        store.insert_application(&app, &change).await,
        "insert_application",
    );
    let expected = ApplicationRecord {
        version: 1,
        ..app.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(
        expect(store.get_application("app-1").await, "get_application"),
        Some(expected)
    );
    assert_eq!(expect(store.get_application("nope").await, "get"), None);
    let history = expect(store.history("app-1").await, "history");
    assert_eq!(
        history,
        vec![HistoryRecord {
            application_id: "app-1".to_owned(),
            seq: 1,
            at: at(2, 1),
            entry: json!({"from": null, "to": "submitted", "actor": "user-1"}),
        }]
    );
    let messages = all_messages(store, at(100, 0)).await;
    assert_eq!(
        messages.iter().map(queued).collect::<Vec<_>>(),
        vec![queued(&message(HIMEJI, "app-1", "mail", at(2, 1)))]
    );
    assert_eq!(messages[0].attempts, 0);
    assert_eq!(
        expect(store.get_document("RCPT-0001").await, "get_document"),
        Some(document("RCPT-0001", HIMEJI, "app-1", at(2, 1)))
    );
}

pub async fn a_taken_application_id_is_refused(store: &ApplicationsTestStore) {
    let first = insert_app(store, &application("app-1", HIMEJI, "juminhyo", "user-1")).await;
    let mut other = application("app-1", KOBE, "hoiku", "user-2");
    other.idempotency_key = Some("k".to_owned());
    let change = ApplicationChange {
        history: Some(json!({"to": "submitted"})),
        outbox: vec![message(KOBE, "app-1", "mail", at(0, 0))],
        documents: vec![document("RCPT-X", KOBE, "app-1", at(0, 0))],
    };
    match store.insert_application(&other, &change).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        expect(store.get_application("app-1").await, "get"),
        Some(first)
    );
    // Nothing of the refused change was written.
    assert_eq!(expect(store.history("app-1").await, "history").len(), 1);
    assert_eq!(
        expect(store.get_document("RCPT-X").await, "get_document"),
        None
    );
    let messages = all_messages(store, at(100, 0)).await;
    assert!(messages.iter().all(|m| m.tenant == HIMEJI), "{messages:?}");
}

pub async fn a_repeated_submission_returns_the_first_application(store: &ApplicationsTestStore) {
    let mut first = application("app-1", HIMEJI, "juminhyo", "user-1");
    first.idempotency_key = Some("submit-abc".to_owned());
    let change = |id: &str| ApplicationChange {
        history: Some(json!({"to": "submitted", "attempt": id})),
        outbox: vec![message(HIMEJI, id, "mail", at(0, 0))],
        documents: vec![document(&format!("RCPT-{id}"), HIMEJI, id, at(0, 0))],
    };
    let stored = expect(
        store.insert_application(&first, &change("app-1")).await,
        "insert_application",
    );
    // The double submit: another id, same applicant and key.
    let mut again = application("app-2", HIMEJI, "juminhyo", "user-1");
    again.idempotency_key = Some("submit-abc".to_owned());
    again.document = json!({"answers": "different"});
    let returned = expect(
        store.insert_application(&again, &change("app-2")).await,
        "insert_application",
    );
    assert_eq!(returned, stored);
    assert_eq!(expect(store.get_application("app-2").await, "get"), None);
    assert!(expect(store.history("app-2").await, "history").is_empty());
    assert_eq!(expect(store.get_document("RCPT-app-2").await, "get"), None);
    assert_eq!(expect(store.history("app-1").await, "history").len(), 1);
    // Another applicant's key is theirs alone; no key never matches.
    let mut other = application("app-3", HIMEJI, "juminhyo", "user-2");
    other.idempotency_key = Some("submit-abc".to_owned());
    let third = expect(
        store.insert_application(&other, &change("app-3")).await,
        "insert_application",
    );
    assert_eq!(third.id, "app-3");
    let keyless_a = insert_app(store, &application("app-4", HIMEJI, "juminhyo", "user-1")).await;
    let keyless_b = insert_app(store, &application("app-5", HIMEJI, "juminhyo", "user-1")).await;
    assert_eq!(
        (keyless_a.id.as_str(), keyless_b.id.as_str()),
        ("app-4", "app-5")
    );
    let messages = all_messages(store, at(100, 0)).await;
    let for_apps: BTreeSet<&str> = messages.iter().map(|m| m.application_id.as_str()).collect();
    assert_eq!(for_apps, BTreeSet::from(["app-1", "app-3"]));
    assert_eq!(messages.len(), 2, "{messages:?}");
}

pub async fn updates_bump_the_version_and_append_history_in_order(store: &ApplicationsTestStore) {
    let mut app = application("app-1", HIMEJI, "juminhyo", "user-1");
    app.idempotency_key = Some("key-1".to_owned());
    let inserted = insert_app(store, &app).await;
    let mut current = inserted.clone();
    for (n, state) in [(2, "under_review"), (3, "approved")] {
        let next = ApplicationRecord {
            state: state.to_owned(),
            reception_number: Some("R7-000009".to_owned()),
            due_at: Some(at(n * 100, 3)),
            updated_at: at(n * 10, 5),
            document: json!({"answers": "sealed:app-1", "step": n}),
            // Columns an update does not write.
            tenant: KOBE.to_owned(),
            applicant: "someone-else".to_owned(),
            idempotency_key: Some("other-key".to_owned()),
            created_at: at(999, 0),
            procedure_id: "other".to_owned(),
            procedure_version: 9,
            ..current.clone()
        };
        let change = history_change(json!({"to": state, "n": n}));
        let stored = expect(
            store
                .update_application(&next, current.version, &change)
                .await,
            "update_application",
        );
        let expected = ApplicationRecord {
            state: state.to_owned(),
            reception_number: Some("R7-000009".to_owned()),
            due_at: Some(at(n * 100, 3)),
            updated_at: at(n * 10, 5),
            document: json!({"answers": "sealed:app-1", "step": n}),
            version: n,
            ..inserted.clone()
        };
        assert_eq!(stored, expected);
        assert_eq!(
            expect(store.get_application("app-1").await, "get"),
            Some(expected.clone())
        );
        current = expected;
    }
    // An update without a history entry (say, a new due date) adds none.
    let quiet = ApplicationRecord {
        due_at: None,
        ..current.clone()
    };
    let stored = expect(
        store
            .update_application(&quiet, 3, &ApplicationChange::default())
            .await,
        "update_application",
    );
    assert_eq!((stored.version, stored.due_at), (4, None));
    let history = expect(store.history("app-1").await, "history");
    assert_eq!(
        history.iter().map(|h| (h.seq, h.at)).collect::<Vec<_>>(),
        vec![(1, at(0, 0)), (2, at(20, 5)), (3, at(30, 5))]
    );
    assert_eq!(
        history.iter().map(|h| h.entry.clone()).collect::<Vec<_>>(),
        vec![
            json!({"to": "submitted", "command": "submit"}),
            json!({"to": "under_review", "n": 2}),
            json!({"to": "approved", "n": 3}),
        ]
    );
    // The key stayed the inserted one.
    let mut again = application("app-9", HIMEJI, "juminhyo", "user-1");
    again.idempotency_key = Some("key-1".to_owned());
    let returned = expect(
        store
            .insert_application(&again, &ApplicationChange::default())
            .await,
        "insert_application",
    );
    assert_eq!(returned.id, "app-1");
    assert!(expect(store.history("nope").await, "history").is_empty());
}

pub async fn an_update_writes_its_outbox_and_documents(store: &ApplicationsTestStore) {
    let app = insert_app(store, &application("app-1", HIMEJI, "juminhyo", "user-1")).await;
    let decided = ApplicationRecord {
        state: "approved".to_owned(),
        updated_at: at(5, 0),
        ..app.clone()
    };
    let change = ApplicationChange {
        history: Some(json!({"to": "approved"})),
        outbox: vec![
            message(HIMEJI, "app-1", "mail", at(5, 0)),
            message(HIMEJI, "app-1", "webhook", at(6, 0)),
        ],
        documents: vec![
            document("DEC-1", HIMEJI, "app-1", at(5, 0)),
            document("DEC-2", HIMEJI, "app-1", at(5, 1)),
        ],
    };
    expect(
        store.update_application(&decided, 1, &change).await,
        "update_application",
    );
    let messages = all_messages(store, at(100, 0)).await;
    assert_eq!(
        messages.iter().map(queued).collect::<Vec<_>>(),
        change.outbox.iter().map(queued).collect::<Vec<_>>()
    );
    assert_eq!(
        expect(store.documents_of("app-1").await, "documents_of"),
        change.documents
    );
}

pub async fn a_stale_update_conflicts_and_writes_nothing(store: &ApplicationsTestStore) {
    let app = insert_app(store, &application("app-1", HIMEJI, "juminhyo", "user-1")).await;
    let first = ApplicationRecord {
        state: "under_review".to_owned(),
        ..app.clone()
    };
    let winner = expect(
        store
            .update_application(&first, 1, &history_change(json!({"to": "under_review"})))
            .await,
        "update_application",
    );
    let loser = ApplicationRecord {
        state: "withdrawn".to_owned(),
        document: json!({"lost": true}),
        ..app.clone()
    };
    let change = ApplicationChange {
        history: Some(json!({"to": "withdrawn"})),
        outbox: vec![message(HIMEJI, "app-1", "mail", at(0, 0))],
        documents: vec![document("LOST-1", HIMEJI, "app-1", at(0, 0))],
    };
    for stale in [1, 5] {
        match store.update_application(&loser, stale, &change).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("expected Conflict at version {stale}, got {other:?}"),
        }
    }
    assert_eq!(
        expect(store.get_application("app-1").await, "get"),
        Some(winner)
    );
    assert_eq!(expect(store.history("app-1").await, "history").len(), 2);
    assert!(all_messages(store, at(100, 0)).await.is_empty());
    assert_eq!(
        expect(store.get_document("LOST-1").await, "get_document"),
        None
    );
    assert!(expect(store.documents_of("app-1").await, "documents_of").is_empty());
}

pub async fn updating_a_missing_application_is_not_found(store: &ApplicationsTestStore) {
    let ghost = application("ghost", HIMEJI, "juminhyo", "user-1");
    let change = ApplicationChange {
        history: Some(json!({"to": "submitted"})),
        outbox: vec![message(HIMEJI, "ghost", "mail", at(0, 0))],
        documents: vec![document("GHOST-1", HIMEJI, "ghost", at(0, 0))],
    };
    match store.update_application(&ghost, 1, &change).await {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "ghost"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(expect(store.history("ghost").await, "history").is_empty());
    assert!(all_messages(store, at(100, 0)).await.is_empty());
    assert_eq!(expect(store.get_document("GHOST-1").await, "get"), None);
}

pub async fn concurrent_updates_of_one_version_have_one_winner(store: &ApplicationsTestStore) {
    const WRITERS: usize = 8;
    let app = insert_app(store, &application("app-1", HIMEJI, "juminhyo", "user-1")).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = store.shared();
            let next = ApplicationRecord {
                state: format!("state-{n}"),
                ..app.clone()
            };
            tokio::spawn(async move {
                let change = ApplicationChange {
                    history: Some(json!({"writer": n})),
                    outbox: vec![message(HIMEJI, "app-1", &format!("mail-{n}"), at(0, 0))],
                    documents: Vec::new(),
                };
                store.update_application(&next, 1, &change).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task
            .await
            .unwrap_or_else(|e| panic!("a writer panicked: {e}"))
        {
            Ok(stored) => winners.push(stored),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("expected success or Conflict, got {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = &winners[0];
    assert_eq!(winner.version, 2);
    assert_eq!(
        expect(store.get_application("app-1").await, "get").as_ref(),
        Some(winner)
    );
    let history = expect(store.history("app-1").await, "history");
    let n = winner.state.trim_start_matches("state-");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].entry["writer"].to_string(), n);
    let messages = all_messages(store, at(100, 0)).await;
    assert_eq!(
        messages
            .iter()
            .map(|m| m.channel.clone())
            .collect::<Vec<_>>(),
        vec![format!("mail-{n}")]
    );
}

/// An application created at `created` minutes, due at `due` minutes.
fn listed(
    id: &str,
    tenant: &str,
    procedure_id: &str,
    applicant: &str,
    state: &str,
    due: Option<i64>,
    created: i64,
) -> ApplicationRecord {
    ApplicationRecord {
        state: state.to_owned(),
        due_at: due.map(|m| at(m, 0)),
        created_at: at(created, 0),
        updated_at: at(created, 0),
        ..application(id, tenant, procedure_id, applicant)
    }
}

async fn listed_ids(store: &ApplicationsTestStore, filter: &ApplicationFilter) -> Vec<String> {
    let found = expect(store.list_applications(filter).await, "list_applications");
    let count = expect(store.count_applications(filter).await, "count_applications");
    if filter.limit == 0 && filter.offset == 0 {
        assert_eq!(count, found.len() as u64, "count of {filter:?}");
    }
    ids(&found).into_iter().map(str::to_owned).collect()
}

pub async fn applications_are_filtered_by_every_field(store: &ApplicationsTestStore) {
    let a1 = listed("a1", HIMEJI, "juminhyo", "user-1", "submitted", Some(10), 1);
    let mut a2 = listed(
        "a2",
        HIMEJI,
        "juminhyo",
        "user-2",
        "under_review",
        Some(20),
        2,
    );
    a2.updated_at = at(50, 0);
    let a3 = listed("a3", HIMEJI, "inkan", "user-1", "draft", None, 3);
    let a4 = listed("a4", KOBE, "juminhyo", "user-3", "submitted", Some(5), 4);
    for app in [&a1, &a2, &a3, &a4] {
        insert_app(store, app).await;
    }
    let all = expect(
        store.list_applications(&ApplicationFilter::default()).await,
        "list_applications",
    );
    assert_eq!(all, vec![a4.clone(), a1.clone(), a2.clone(), a3.clone()]);
    let cases: Vec<(ApplicationFilter, Vec<&str>)> = vec![
        (
            ApplicationFilter {
                tenant: Some(HIMEJI.to_owned()),
                ..ApplicationFilter::default()
            },
            vec!["a1", "a2", "a3"],
        ),
        (
            ApplicationFilter {
                procedure_id: Some("juminhyo".to_owned()),
                ..ApplicationFilter::default()
            },
            vec!["a4", "a1", "a2"],
        ),
        (
            ApplicationFilter {
                tenant: Some(HIMEJI.to_owned()),
                procedure_id: Some("juminhyo".to_owned()),
                ..ApplicationFilter::default()
            },
            vec!["a1", "a2"],
        ),
        (
            ApplicationFilter {
                applicant: Some("user-1".to_owned()),
                ..ApplicationFilter::default()
            },
            vec!["a1", "a3"],
        ),
        (
            ApplicationFilter {
                states: vec!["submitted".to_owned(), "draft".to_owned()],
                ..ApplicationFilter::default()
            },
            vec!["a4", "a1", "a3"],
        ),
        (
            ApplicationFilter {
                states: vec!["under_review".to_owned()],
                ..ApplicationFilter::default()
            },
            vec!["a2"],
        ),
        (
            // At or before: a1 is due exactly then; a3 is never due.
            ApplicationFilter {
                due_before: Some(at(10, 0)),
                ..ApplicationFilter::default()
            },
            vec!["a4", "a1"],
        ),
        (
            // Strictly before: a4 was updated exactly then.
            ApplicationFilter {
                updated_before: Some(at(4, 0)),
                ..ApplicationFilter::default()
            },
            vec!["a1", "a3"],
        ),
        (
            ApplicationFilter {
                tenant: Some(HIMEJI.to_owned()),
                states: vec!["submitted".to_owned(), "under_review".to_owned()],
                due_before: Some(at(30, 0)),
                updated_before: Some(at(40, 0)),
                ..ApplicationFilter::default()
            },
            vec!["a1"],
        ),
        (
            ApplicationFilter {
                tenant: Some("130001".to_owned()),
                ..ApplicationFilter::default()
            },
            vec![],
        ),
        (
            ApplicationFilter {
                applicant: Some("user-3".to_owned()),
                states: vec!["draft".to_owned()],
                ..ApplicationFilter::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(listed_ids(store, &filter).await, expected, "{filter:?}");
    }
}

pub async fn applications_are_ordered_by_due_then_created_and_paged(store: &ApplicationsTestStore) {
    let apps = [
        listed("b1", HIMEJI, "juminhyo", "u", "submitted", None, 1),
        listed("b2", HIMEJI, "juminhyo", "u", "submitted", Some(30), 5),
        listed("b3", HIMEJI, "juminhyo", "u", "submitted", Some(10), 6),
        listed("b4", HIMEJI, "juminhyo", "u", "submitted", Some(10), 2),
        listed("b5", HIMEJI, "juminhyo", "u", "submitted", None, 0),
        listed("b6", HIMEJI, "juminhyo", "u", "submitted", Some(30), 5),
    ];
    for app in &apps {
        insert_app(store, app).await;
    }
    let page = |offset: usize, limit: usize| ApplicationFilter {
        tenant: Some(HIMEJI.to_owned()),
        offset,
        limit,
        ..ApplicationFilter::default()
    };
    let order = ["b4", "b3", "b2", "b6", "b5", "b1"];
    assert_eq!(listed_ids(store, &page(0, 0)).await, order);
    assert_eq!(listed_ids(store, &page(0, 2)).await, order[..2]);
    assert_eq!(listed_ids(store, &page(2, 2)).await, order[2..4]);
    assert_eq!(listed_ids(store, &page(4, 10)).await, order[4..]);
    assert_eq!(listed_ids(store, &page(3, 0)).await, order[3..]);
    assert!(listed_ids(store, &page(10, 5)).await.is_empty());
    for filter in [page(0, 1), page(5, 1), page(10, 1)] {
        assert_eq!(
            expect(store.count_applications(&filter).await, "count"),
            6,
            "{filter:?}"
        );
    }
}

pub async fn procedure_history_covers_the_procedure_applications(store: &ApplicationsTestStore) {
    let x1 = listed("x1", HIMEJI, "juminhyo", "u1", "submitted", None, 0);
    let x2 = listed("x2", HIMEJI, "juminhyo", "u2", "submitted", None, 1);
    let other_procedure = listed("y1", HIMEJI, "inkan", "u1", "submitted", None, 1);
    let other_tenant = listed("z1", KOBE, "juminhyo", "u3", "submitted", None, 1);
    for app in [&x2, &x1, &other_procedure, &other_tenant] {
        insert_app(store, app).await;
    }
    for app in [&x2, &x1] {
        let next = ApplicationRecord {
            state: "approved".to_owned(),
            updated_at: at(2, 0),
            ..app.clone()
        };
        expect(
            store
                .update_application(&next, 1, &history_change(json!({"to": "approved"})))
                .await,
            "update_application",
        );
    }
    let history = expect(
        store.procedure_history(HIMEJI, "juminhyo").await,
        "procedure_history",
    );
    let submitted = json!({"to": "submitted", "command": "submit"});
    let approved = json!({"to": "approved"});
    assert_eq!(
        history_entries(&history),
        vec![
            ("x1".to_owned(), 1, submitted.clone()),
            ("x2".to_owned(), 1, submitted),
            ("x1".to_owned(), 2, approved.clone()),
            ("x2".to_owned(), 2, approved),
        ]
    );
    assert_eq!(
        history.iter().map(|h| h.at).collect::<Vec<_>>(),
        vec![at(0, 0), at(1, 0), at(2, 0), at(2, 0)]
    );
    assert!(expect(store.procedure_history(KOBE, "inkan").await, "history").is_empty());
}

// ---------------------------------------------------------------------------------
// Sequences.

pub async fn sequences_count_from_one_per_name(store: &ApplicationsTestStore) {
    let next = |name: &'static str| {
        let store = store.shared();
        async move { expect(store.next_sequence(name).await, "next_sequence") }
    };
    assert_eq!(next("222127/R7").await, 1);
    assert_eq!(next("222127/R7").await, 2);
    assert_eq!(next("220001/R7").await, 1);
    assert_eq!(next("222127/R7").await, 3);
    assert_eq!(next("222127/R8").await, 1);
    assert_eq!(next("220001/R7").await, 2);
}

pub async fn concurrent_callers_never_get_the_same_number(store: &ApplicationsTestStore) {
    const TASKS: u64 = 24;
    const EACH: u64 = 5;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.shared();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..EACH {
                    got.push(store.next_sequence("222127/R7").await?);
                }
                Ok::<_, StoreError>(got)
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        let got = task
            .await
            .unwrap_or_else(|e| panic!("a task panicked: {e}"));
        let got = expect(got, "next_sequence");
        // Each caller's own numbers rise.
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        numbers.extend(got);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=TASKS * EACH).collect::<Vec<_>>());
    assert_eq!(
        expect(store.next_sequence("222127/R7").await, "next_sequence"),
        TASKS * EACH + 1
    );
}

// ---------------------------------------------------------------------------------
// Attachments, payments, documents, delegations.

pub async fn attachments_are_stored_listed_and_deleted(store: &ApplicationsTestStore) {
    insert_app(store, &application("app-1", HIMEJI, "juminhyo", "user-1")).await;
    insert_app(store, &application("app-2", HIMEJI, "juminhyo", "user-2")).await;
    let later = attachment("att-a", "app-1", at(5, 0));
    let earlier = attachment("att-b", "app-1", at(4, 999_999));
    let elsewhere = attachment("att-c", "app-2", at(1, 0));
    for a in [&later, &earlier, &elsewhere] {
        expect(store.insert_attachment(a).await, "insert_attachment");
    }
    assert_eq!(
        expect(store.get_attachment("att-a").await, "get_attachment"),
        Some(later.clone())
    );
    assert_eq!(expect(store.get_attachment("nope").await, "get"), None);
    assert_eq!(
        expect(store.list_attachments("app-1").await, "list_attachments"),
        vec![earlier.clone(), later.clone()]
    );
    match store
        .insert_attachment(&attachment("att-a", "app-2", at(9, 0)))
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    match store
        .insert_attachment(&attachment("att-x", "missing", at(9, 0)))
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(expect(store.get_attachment("att-x").await, "get"), None);
    assert!(expect(
        store.delete_attachment("att-b").await,
        "delete_attachment"
    ));
    assert!(!expect(
        store.delete_attachment("att-b").await,
        "delete_attachment"
    ));
    assert_eq!(
        expect(store.list_attachments("app-1").await, "list_attachments"),
        vec![later]
    );
    assert_eq!(
        expect(store.list_attachments("app-2").await, "list_attachments"),
        vec![elsewhere]
    );
}

pub async fn payments_round_trip_and_are_found_by_reference_and_state(
    store: &ApplicationsTestStore,
) {
    insert_app(store, &application("app-1", HIMEJI, "juminhyo", "user-1")).await;
    insert_app(store, &application("app-2", HIMEJI, "juminhyo", "user-2")).await;
    let mut first = payment("pay-1", "app-1", Some("ref-1"));
    first.created_at = at(3, 0);
    let mut second = payment("pay-2", "app-1", None);
    second.created_at = at(2, 0);
    second.state = "failed".to_owned();
    let mut third = payment("pay-3", "app-2", Some("ref-3"));
    third.created_at = at(10, 0);
    for p in [&first, &second, &third] {
        expect(store.insert_payment(p).await, "insert_payment");
    }
    assert_eq!(
        expect(store.get_payment("pay-1").await, "get_payment"),
        Some(first.clone())
    );
    assert_eq!(expect(store.get_payment("nope").await, "get_payment"), None);
    assert_eq!(
        expect(
            store.payment_by_provider_ref("paypay", "ref-3").await,
            "payment_by_provider_ref"
        ),
        Some(third.clone())
    );
    assert_eq!(
        expect(
            store
                .payment_by_provider_ref("other-provider", "ref-3")
                .await,
            "payment_by_provider_ref"
        ),
        None
    );
    assert_eq!(
        expect(store.payments_of("app-1").await, "payments_of"),
        vec![second.clone(), first.clone()]
    );
    let states = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        expect(
            store
                .payments_in_states(&states(&["pending", "failed"]), at(10, 0))
                .await,
            "payments_in_states"
        ),
        vec![second.clone(), first.clone()]
    );
    assert_eq!(
        expect(
            store
                .payments_in_states(&states(&["pending"]), at(10, 1))
                .await,
            "payments_in_states"
        ),
        vec![first.clone(), third.clone()]
    );
    assert!(expect(
        store
            .payments_in_states(&states(&["paid"]), at(100, 0))
            .await,
        "payments_in_states"
    )
    .is_empty());
    // Taken ids and provider references are refused; a payment needs its application.
    match store.insert_payment(&payment("pay-1", "app-2", None)).await {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    match store
        .insert_payment(&payment("pay-4", "app-2", Some("ref-1")))
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    match store
        .insert_payment(&payment("pay-5", "missing", None))
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(expect(store.get_payment("pay-4").await, "get"), None);
    assert_eq!(expect(store.get_payment("pay-5").await, "get"), None);
    // The same reference from another provider is another payment's.
    let mut other = payment("pay-6", "app-2", Some("ref-1"));
    other.provider = "credit".to_owned();
    expect(store.insert_payment(&other).await, "insert_payment");
}

pub async fn payment_updates_check_the_version_and_skip_repeated_events(
    store: &ApplicationsTestStore,
) {
    insert_app(store, &application("app-1", HIMEJI, "juminhyo", "user-1")).await;
    let inserted = payment("pay-1", "app-1", None);
    expect(store.insert_payment(&inserted).await, "insert_payment");
    let authorised = PaymentRecord {
        provider_ref: Some("ref-1".to_owned()),
        state: "authorized".to_owned(),
        updated_at: at(2, 0),
        expires_at: at(40, 0),
        document: json!({"callback": 1}),
        // Columns an update does not write.
        tenant: KOBE.to_owned(),
        application_id: "other".to_owned(),
        provider: "other".to_owned(),
        created_at: at(99, 0),
        ..inserted.clone()
    };
    let stored = expect(
        store.update_payment(&authorised, 1, Some("evt-1")).await,
        "update_payment",
    );
    let expected = PaymentRecord {
        provider_ref: Some("ref-1".to_owned()),
        state: "authorized".to_owned(),
        updated_at: at(2, 0),
        expires_at: at(40, 0),
        document: json!({"callback": 1}),
        version: 2,
        ..inserted.clone()
    };
    assert_eq!(stored, Some(expected.clone()));
    assert_eq!(
        expect(
            store.payment_by_provider_ref("paypay", "ref-1").await,
            "by ref"
        ),
        Some(expected.clone())
    );
    // The provider calls back again with the same event: nothing is written, even at
    // the current version.
    let repeated = PaymentRecord {
        state: "paid".to_owned(),
        ..expected.clone()
    };
    for version in [1, 2] {
        assert_eq!(
            expect(
                store
                    .update_payment(&repeated, version, Some("evt-1"))
                    .await,
                "update_payment"
            ),
            None
        );
    }
    assert_eq!(
        expect(store.get_payment("pay-1").await, "get_payment"),
        Some(expected.clone())
    );
    // A stale version conflicts, and its event is not recorded.
    match store.update_payment(&repeated, 1, Some("evt-2")).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    let paid = expect(
        store.update_payment(&repeated, 2, Some("evt-2")).await,
        "update_payment",
    );
    assert_eq!(
        paid.as_ref().map(|p| (p.state.as_str(), p.version)),
        Some(("paid", 3))
    );
    // Without an event id nothing is deduplicated.
    let refunded = PaymentRecord {
        state: "refunded".to_owned(),
        ..expected.clone()
    };
    let stored = expect(store.update_payment(&refunded, 3, None).await, "update");
    assert_eq!(stored.map(|p| p.version), Some(4));
    match store
        .update_payment(&payment("ghost", "app-1", None), 1, Some("e"))
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "ghost"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // Event ids are per payment.
    let second = payment("pay-2", "app-1", None);
    expect(store.insert_payment(&second).await, "insert_payment");
    let updated = expect(
        store.update_payment(&second, 1, Some("evt-1")).await,
        "update_payment",
    );
    assert_eq!(updated.map(|p| p.version), Some(2));
}

pub async fn issued_documents_are_found_by_code_and_application(store: &ApplicationsTestStore) {
    let app = application("app-1", HIMEJI, "juminhyo", "user-1");
    let receipt = document("RCPT-1", HIMEJI, "app-1", at(0, 0));
    let change = ApplicationChange {
        history: None,
        outbox: Vec::new(),
        documents: vec![receipt.clone()],
    };
    expect(
        store.insert_application(&app, &change).await,
        "insert_application",
    );
    insert_app(store, &application("app-2", HIMEJI, "juminhyo", "user-2")).await;
    let mut decision = document("DEC-1", HIMEJI, "app-1", at(7, 0));
    decision.kind = "decision".to_owned();
    let earlier = document("DEC-0", HIMEJI, "app-1", at(7, 0));
    let next = ApplicationRecord {
        state: "approved".to_owned(),
        version: 1,
        ..app.clone()
    };
    let change = ApplicationChange {
        history: Some(json!({"to": "approved"})),
        outbox: Vec::new(),
        documents: vec![decision.clone(), earlier.clone()],
    };
    expect(
        store.update_application(&next, 1, &change).await,
        "update_application",
    );
    assert_eq!(
        expect(store.get_document("DEC-1").await, "get_document"),
        Some(decision.clone())
    );
    assert_eq!(
        expect(store.get_document("nope").await, "get_document"),
        None
    );
    assert_eq!(
        expect(store.documents_of("app-1").await, "documents_of"),
        vec![receipt, earlier, decision]
    );
    assert!(expect(store.documents_of("app-2").await, "documents_of").is_empty());
    // The insert without a history entry recorded none.
    assert_eq!(
        expect(store.history("app-1").await, "history")
            .iter()
            .map(|h| h.seq)
            .collect::<Vec<_>>(),
        vec![1]
    );
}

pub async fn delegations_are_kept_per_tenant(store: &ApplicationsTestStore) {
    let delegation = |id: &str, tenant: &str, from: i64| DelegationRecord {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        principal: "kacho".to_owned(),
        delegate: "kakaricho".to_owned(),
        from: at(from, 0),
        until: at(from + 60 * 24, 0),
    };
    let later = delegation("d-1", HIMEJI, 30);
    let earlier = delegation("d-2", HIMEJI, 10);
    let kobe = delegation("d-3", KOBE, 0);
    for d in [&later, &earlier, &kobe] {
        expect(store.insert_delegation(d).await, "insert_delegation");
    }
    match store
        .insert_delegation(&delegation("d-1", HIMEJI, 99))
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        expect(store.delegations(HIMEJI).await, "delegations"),
        vec![earlier.clone(), later.clone()]
    );
    assert_eq!(
        expect(store.delegations(KOBE).await, "delegations"),
        vec![kobe.clone()]
    );
    // Another tenant cannot delete it.
    assert!(!expect(
        store.delete_delegation(KOBE, "d-1").await,
        "delete"
    ));
    assert!(expect(
        store.delete_delegation(HIMEJI, "d-1").await,
        "delete"
    ));
    assert!(!expect(
        store.delete_delegation(HIMEJI, "d-1").await,
        "delete"
    ));
    assert_eq!(
        expect(store.delegations(HIMEJI).await, "delegations"),
        vec![earlier]
    );
    assert_eq!(
        expect(store.delegations(KOBE).await, "delegations"),
        vec![kobe]
    );
}

// ---------------------------------------------------------------------------------
// Outbox.

/// Queues `messages` with a new application of their own, in order.
async fn queue(store: &ApplicationsTestStore, app_id: &str, messages: Vec<OutboxMessage>) {
    let change = ApplicationChange {
        history: None,
        outbox: messages,
        documents: Vec::new(),
    };
    let app = application(app_id, HIMEJI, "juminhyo", app_id);
    expect(
        store.insert_application(&app, &change).await,
        "insert_application",
    );
}

async fn claim(
    store: &ApplicationsTestStore,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Vec<String> {
    expect(
        store.claim_outbox(now, lease_until, limit).await,
        "claim_outbox",
    )
    .into_iter()
    .map(|m| m.channel)
    .collect()
}

pub async fn due_outbox_messages_are_claimed_in_queue_order_up_to_the_limit(
    store: &ApplicationsTestStore,
) {
    queue(
        store,
        "app-1",
        vec![
            message(HIMEJI, "app-1", "m1", at(5, 0)),
            message(HIMEJI, "app-1", "m2", at(1, 0)),
            message(HIMEJI, "app-1", "m3", at(50, 0)),
        ],
    )
    .await;
    queue(
        store,
        "app-2",
        vec![message(KOBE, "app-2", "m4", at(10, 0))],
    )
    .await;
    // Due at or before `now`, in the order queued, at most `limit`.
    let first = expect(
        store.claim_outbox(at(10, 0), at(20, 0), 2).await,
        "claim_outbox",
    );
    assert_eq!(
        first.iter().map(queued).collect::<Vec<_>>(),
        vec![
            queued(&message(HIMEJI, "app-1", "m1", at(5, 0))),
            queued(&message(HIMEJI, "app-1", "m2", at(1, 0))),
        ]
    );
    assert!(first.iter().all(|m| m.attempts == 0), "{first:?}");
    assert_ne!(first[0].id, first[1].id);
    assert_eq!(claim(store, at(10, 0), at(20, 0), 10).await, ["m4"]);
    assert!(claim(store, at(10, 0), at(20, 0), 10).await.is_empty());
    assert_eq!(
        claim(store, at(50, 0), at(60, 0), 0).await,
        Vec::<String>::new()
    );
    assert_eq!(
        claim(store, at(50, 0), at(60, 0), 10).await,
        ["m1", "m2", "m3", "m4"]
    );
}

pub async fn a_leased_message_is_not_claimed_again_until_the_lease_ends(
    store: &ApplicationsTestStore,
) {
    queue(
        store,
        "app-1",
        vec![
            message(HIMEJI, "app-1", "m1", at(0, 0)),
            message(HIMEJI, "app-1", "m2", at(0, 0)),
        ],
    )
    .await;
    assert_eq!(claim(store, at(1, 0), at(10, 0), 1).await, ["m1"]);
    // Another node asks while the lease is live, up to its very end.
    assert_eq!(claim(store, at(2, 0), at(12, 0), 10).await, ["m2"]);
    assert!(claim(store, at(10, 0), at(20, 0), 10).await.is_empty());
    // Past it, the message is claimed again (the node that had it is presumed gone).
    assert_eq!(claim(store, at(10, 1), at(20, 0), 10).await, ["m1"]);
    assert_eq!(claim(store, at(12, 1), at(20, 0), 10).await, ["m2"]);
}

pub async fn completed_messages_go_and_retried_ones_wait(store: &ApplicationsTestStore) {
    queue(
        store,
        "app-1",
        vec![
            message(HIMEJI, "app-1", "m1", at(0, 0)),
            message(HIMEJI, "app-1", "m2", at(0, 0)),
            message(HIMEJI, "app-1", "m3", at(0, 0)),
        ],
    )
    .await;
    let claimed = expect(store.claim_outbox(at(1, 0), at(100, 0), 3).await, "claim");
    let [m1, m2, m3] = [&claimed[0], &claimed[1], &claimed[2]];
    expect(store.complete_outbox(m1.id).await, "complete_outbox");
    // Completing again, or a message that never was, is no error.
    expect(store.complete_outbox(m1.id).await, "complete_outbox");
    expect(store.retry_outbox(m1.id, at(2, 0)).await, "retry_outbox");
    expect(store.retry_outbox(m2.id, at(40, 0)).await, "retry_outbox");
    expect(store.retry_outbox(m3.id, at(5, 0)).await, "retry_outbox");
    expect(store.retry_outbox(m3.id, at(6, 0)).await, "retry_outbox");
    // Retrying ended the leases (until 100): each is due at its next attempt.
    assert!(claim(store, at(4, 0), at(200, 0), 10).await.is_empty());
    let again = expect(store.claim_outbox(at(6, 0), at(7, 0), 10).await, "claim");
    assert_eq!(
        again
            .iter()
            .map(|m| (m.id, m.attempts, m.next_attempt_at))
            .collect::<Vec<_>>(),
        vec![(m3.id, 2, at(6, 0))]
    );
    let later = expect(store.claim_outbox(at(40, 0), at(41, 0), 10).await, "claim");
    assert_eq!(
        later
            .iter()
            .map(|m| (m.id, m.attempts, m.next_attempt_at))
            .collect::<Vec<_>>(),
        vec![(m2.id, 1, at(40, 0)), (m3.id, 2, at(6, 0))]
    );
    assert_eq!(later[0].payload, m2.payload);
    expect(store.complete_outbox(m2.id).await, "complete_outbox");
    expect(store.complete_outbox(m3.id).await, "complete_outbox");
    assert!(all_messages(store, at(1000, 0)).await.is_empty());
}

pub async fn concurrent_claims_never_share_a_message(store: &ApplicationsTestStore) {
    const MESSAGES: usize = 20;
    const CLAIMERS: usize = 8;
    queue(
        store,
        "app-1",
        (0..MESSAGES)
            .map(|n| message(HIMEJI, "app-1", &format!("m{n}"), at(0, n as i64)))
            .collect(),
    )
    .await;
    let now = at(1, 0);
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let store = store.shared();
            tokio::spawn(async move { store.claim_outbox(now, at(10, 0), 5).await })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        let got = task
            .await
            .unwrap_or_else(|e| panic!("a claimer panicked: {e}"));
        claimed.extend(expect(got, "claim_outbox").into_iter().map(|m| m.id));
    }
    // Whatever a claimer skipped is still there for the next one.
    claimed.extend(
        expect(store.claim_outbox(now, at(10, 0), MESSAGES).await, "claim")
            .into_iter()
            .map(|m| m.id),
    );
    let distinct: BTreeSet<i64> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), MESSAGES, "{claimed:?}");
    assert_eq!(distinct.len(), MESSAGES, "{claimed:?}");
}

// ---------------------------------------------------------------------------------
// Retention.

pub async fn anonymising_keeps_history_and_drops_answers_and_files(store: &ApplicationsTestStore) {
    let app = application("app-1", HIMEJI, "juminhyo", "user-1");
    let change = ApplicationChange {
        history: Some(json!({"to": "submitted"})),
        outbox: Vec::new(),
        documents: vec![document("RCPT-1", HIMEJI, "app-1", at(0, 0))],
    };
    expect(
        store.insert_application(&app, &change).await,
        "insert_application",
    );
    let decided = ApplicationRecord {
        state: "approved".to_owned(),
        updated_at: at(3, 0),
        ..app.clone()
    };
    let decided = expect(
        store
            .update_application(&decided, 1, &history_change(json!({"to": "approved"})))
            .await,
        "update_application",
    );
    let kept_app = insert_app(store, &application("app-2", HIMEJI, "juminhyo", "user-2")).await;
    let kept_attachment = attachment("att-2", "app-2", at(1, 0));
    let kept_document = document("RCPT-2", HIMEJI, "app-2", at(1, 0));
    for a in [
        attachment("att-1", "app-1", at(1, 0)),
        attachment("att-3", "app-1", at(2, 0)),
        kept_attachment.clone(),
    ] {
        expect(store.insert_attachment(&a).await, "insert_attachment");
    }
    expect(
        store
            .update_application(
                &kept_app,
                1,
                &ApplicationChange {
                    documents: vec![kept_document.clone()],
                    ..ApplicationChange::default()
                },
            )
            .await,
        "update_application",
    );
    let history = expect(store.history("app-1").await, "history");
    let anonymised = json!({"anonymised": true, "answers": null});
    assert!(expect(
        store.anonymise_application("app-1", &anonymised).await,
        "anonymise_application"
    ));
    let expected = ApplicationRecord {
        document: anonymised.clone(),
        version: 3,
        ..decided
    };
    assert_eq!(
        expect(store.get_application("app-1").await, "get"),
        Some(expected.clone())
    );
    assert!(expect(store.list_attachments("app-1").await, "attachments").is_empty());
    assert_eq!(expect(store.get_attachment("att-1").await, "get"), None);
    assert!(expect(store.documents_of("app-1").await, "documents_of").is_empty());
    assert_eq!(expect(store.get_document("RCPT-1").await, "get"), None);
    assert_eq!(expect(store.history("app-1").await, "history"), history);
    // The bumped version makes a write from before the anonymisation lose.
    match store
        .update_application(&expected, 2, &ApplicationChange::default())
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Other applications keep theirs.
    assert_eq!(
        expect(store.list_attachments("app-2").await, "attachments"),
        vec![kept_attachment]
    );
    assert_eq!(
        expect(store.documents_of("app-2").await, "documents_of"),
        vec![kept_document]
    );
    assert!(!expect(
        store.anonymise_application("missing", &anonymised).await,
        "anonymise_application"
    ));
}
