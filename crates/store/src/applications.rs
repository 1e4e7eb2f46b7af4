//! Storage of online applications: procedure definitions (versioned), applications
//! with their history, attachments, payments, issued documents, delegations of
//! approval (代決) and the outbox of notifications.
//!
//! The `procedures` crate decides every rule; this store only keeps what it decided,
//! atomically. An application is one row (its few looked-up columns plus the document
//! the service writes) guarded by a version number: [`ApplicationStore::update_application`]
//! writes the new row, appends its history entry and queues its notifications in one
//! transaction, and only if nobody wrote the application since it was read. So a crash
//! mid-transition leaves the last committed state, and two staff acting at once cannot
//! both win. Answers and attachments arrive already sealed by `field-crypto`; the store
//! never sees personal data in clear.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;

/// One version of a procedure (手続) definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcedureRecord {
    pub tenant: String,
    pub id: String,
    /// 1, 2, …: every change is a new version; applications keep theirs.
    pub version: i64,
    /// Offered to the tenant's municipalities as a template (共同利用).
    pub shared: bool,
    /// `published` procedures take applications; `draft` and `retired` do not.
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// The whole definition as the `procedures` crate serialises it.
    pub document: Value,
}

/// An application as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationRecord {
    pub id: String,
    pub tenant: String,
    pub procedure_id: String,
    pub procedure_version: i64,
    /// The applicant's user id.
    pub applicant: String,
    /// `procedures::application::ApplicationState` as text.
    pub state: String,
    /// 受付番号, set on first submission.
    pub reception_number: Option<String>,
    /// The client's key for the submission, so that a double submit creates one
    /// application: unique per applicant.
    pub idempotency_key: Option<String>,
    /// When the current review step is due (for the reviewer's queue).
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Answers (sealed), chain progress, payment summary… as the service writes them.
    pub document: Value,
    /// Optimistic concurrency: 1 on insert, +1 on every update (assigned by the store).
    pub version: i64,
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    pub application_id: String,
    /// 1, 2, … per application (assigned by the store).
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The entry as the `procedures` crate serialises it (from, to, command, actor, reason).
    pub entry: Value,
}

/// A notification to deliver after the change that caused it has committed.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// Assigned by the store.
    pub id: i64,
    pub tenant: String,
    pub application_id: String,
    /// `mail`, `webhook`, `entity`: which worker delivers it.
    pub channel: String,
    pub payload: Value,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
}

/// An uploaded attachment, sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRecord {
    pub id: String,
    pub application_id: String,
    /// The form's attachment requirement this file answers.
    pub requirement: String,
    pub file_name: String,
    pub media_type: String,
    pub size: i64,
    /// SHA-256 of the clear content, hex.
    pub digest: String,
    /// The content sealed by `field-crypto` (text).
    pub sealed_content: String,
    pub created_at: DateTime<Utc>,
}

/// A fee payment.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRecord {
    pub id: String,
    pub tenant: String,
    pub application_id: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    /// `procedures::payment::PaymentState` as text.
    pub state: String,
    pub amount_yen: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub document: Value,
    /// Optimistic concurrency, as for applications.
    pub version: i64,
}

/// A PDF the platform issued (受付票, 決定通知書), verifiable by its code.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRecord {
    /// The verification code, canonical form.
    pub code: String,
    pub tenant: String,
    pub application_id: String,
    /// `receipt` or `decision`.
    pub kind: String,
    pub reception_number: String,
    /// SHA-256 of the PDF, hex.
    pub digest: String,
    pub issued_at: DateTime<Utc>,
    /// The PDF, sealed by the service (it names the applicant).
    pub pdf: Vec<u8>,
}

/// An approver's delegation while absent (代決).
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationRecord {
    pub id: String,
    pub tenant: String,
    pub principal: String,
    pub delegate: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Which applications to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplicationFilter {
    pub tenant: Option<String>,
    pub procedure_id: Option<String>,
    pub applicant: Option<String>,
    pub states: Vec<String>,
    /// Only those due at or before.
    pub due_before: Option<DateTime<Utc>>,
    /// Only those last updated before (retention, abandoned drafts).
    pub updated_before: Option<DateTime<Utc>>,
    /// Oldest due first (none due last), then oldest created, then by id; 0 is no
    /// limit. [`ApplicationStore::count_applications`] ignores `limit` and `offset`.
    pub limit: usize,
    pub offset: usize,
}

/// What an update writes besides the application row itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplicationChange {
    /// The transition's history entry, if the state changed.
    pub history: Option<Value>,
    /// Notifications to queue (their `id`, `attempts` are ignored).
    pub outbox: Vec<OutboxMessage>,
    /// Documents issued with this change.
    pub documents: Vec<DocumentRecord>,
}

#[async_trait]
pub trait ApplicationStore: Send + Sync {
    /// Stores a new version of a procedure. `AlreadyExists` if that version exists.
    async fn insert_procedure(&self, procedure: &ProcedureRecord) -> Result<(), StoreError>;
    /// A procedure at a version, or its latest version when `version` is `None`.
    async fn get_procedure(
        &self,
        tenant: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Option<ProcedureRecord>, StoreError>;
    /// The latest version of each procedure of a tenant, plus (when `with_shared`) the
    /// latest version of every procedure of other tenants whose latest version is
    /// shared; ordered by tenant, then id.
    async fn list_procedures(
        &self,
        tenant: &str,
        with_shared: bool,
    ) -> Result<Vec<ProcedureRecord>, StoreError>;

    /// Stores a new application (version 1) with its first history entry, outbox
    /// messages and documents; returns the stored row. When the applicant already has
    /// an application with the same idempotency key, nothing is written and that
    /// application is returned instead. `AlreadyExists` if the id is taken.
    /// History entries are stamped with the application's `updated_at`.
    async fn insert_application(
        &self,
        application: &ApplicationRecord,
        change: &ApplicationChange,
    ) -> Result<ApplicationRecord, StoreError>;
    async fn get_application(&self, id: &str) -> Result<Option<ApplicationRecord>, StoreError>;
    /// Writes the application if it is still at `expected_version`, with its history
    /// entry, notifications and documents, in one transaction; returns the stored row.
    /// `NotFound`, or `Conflict` if another write came first (then nothing is written).
    /// Writes `state`, `reception_number`, `due_at`, `updated_at` and `document`; the
    /// other columns keep what was inserted, and `version` becomes `expected_version + 1`.
    async fn update_application(
        &self,
        application: &ApplicationRecord,
        expected_version: i64,
        change: &ApplicationChange,
    ) -> Result<ApplicationRecord, StoreError>;
    async fn list_applications(
        &self,
        filter: &ApplicationFilter,
    ) -> Result<Vec<ApplicationRecord>, StoreError>;
    async fn count_applications(&self, filter: &ApplicationFilter) -> Result<u64, StoreError>;
    async fn history(&self, application_id: &str) -> Result<Vec<HistoryRecord>, StoreError>;
    /// Every history entry of a procedure's applications, for statistics; ordered by
    /// time, then application id and seq.
    async fn procedure_history(
        &self,
        tenant: &str,
        procedure_id: &str,
    ) -> Result<Vec<HistoryRecord>, StoreError>;
    /// The next number of a named counter (e.g. a tenant's 受付番号 for a year), from 1.
    async fn next_sequence(&self, name: &str) -> Result<u64, StoreError>;

    /// `NotFound` without the application, `AlreadyExists` if the id is taken.
    async fn insert_attachment(&self, attachment: &AttachmentRecord) -> Result<(), StoreError>;
    async fn get_attachment(&self, id: &str) -> Result<Option<AttachmentRecord>, StoreError>;
    /// Oldest first (then by id).
    async fn list_attachments(
        &self,
        application_id: &str,
    ) -> Result<Vec<AttachmentRecord>, StoreError>;
    /// Removes an attachment; false if there was none.
    async fn delete_attachment(&self, id: &str) -> Result<bool, StoreError>;

    /// `NotFound` without the application, `AlreadyExists` if the id (or the
    /// provider's reference) is taken.
    async fn insert_payment(&self, payment: &PaymentRecord) -> Result<(), StoreError>;
    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError>;
    async fn payment_by_provider_ref(
        &self,
        provider: &str,
        provider_ref: &str,
    ) -> Result<Option<PaymentRecord>, StoreError>;
    /// Oldest first (then by id), as is `payments_in_states`.
    async fn payments_of(&self, application_id: &str) -> Result<Vec<PaymentRecord>, StoreError>;
    /// Payments in any of `states` created before `created_before` (reconciliation).
    async fn payments_in_states(
        &self,
        states: &[String],
        created_before: DateTime<Utc>,
    ) -> Result<Vec<PaymentRecord>, StoreError>;
    /// Writes the payment if still at `expected_version`, recording the provider's
    /// event id so that a repeated callback is recognised: returns `Ok(None)` without
    /// writing when `event_id` was recorded before for this payment (checked before the
    /// version). `NotFound`, or `Conflict` if another write came first. Writes every
    /// column but `id`, `tenant`, `application_id`, `provider` and `created_at`.
    async fn update_payment(
        &self,
        payment: &PaymentRecord,
        expected_version: i64,
        event_id: Option<&str>,
    ) -> Result<Option<PaymentRecord>, StoreError>;

    async fn get_document(&self, code: &str) -> Result<Option<DocumentRecord>, StoreError>;
    /// Oldest first (then by code).
    async fn documents_of(&self, application_id: &str) -> Result<Vec<DocumentRecord>, StoreError>;

    /// `AlreadyExists` if the id is taken.
    async fn insert_delegation(&self, delegation: &DelegationRecord) -> Result<(), StoreError>;
    /// Ordered by `from`, then id.
    async fn delegations(&self, tenant: &str) -> Result<Vec<DelegationRecord>, StoreError>;
    async fn delete_delegation(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// Up to `limit` messages due by `now` (`next_attempt_at <= now`), in the order
    /// they were queued, leased to the caller until `lease_until` (another claim does
    /// not take them until a claim's `now` is past it).
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Delivered: removes the message (one already gone is no error).
    async fn complete_outbox(&self, id: i64) -> Result<(), StoreError>;
    /// Failed: counts the attempt, sets when to try again and ends the lease (one
    /// already gone is no error).
    async fn retry_outbox(&self, id: i64, next_attempt_at: DateTime<Utc>)
        -> Result<(), StoreError>;

    /// Retention: removes the application's attachments and documents and replaces
    /// its document by `anonymised` (history is kept, it holds no answers), adding 1
    /// to its version; false if there is no such application.
    async fn anonymise_application(&self, id: &str, anonymised: &Value)
        -> Result<bool, StoreError>;
}

pub type SharedApplicationStore = Arc<dyn ApplicationStore>;
