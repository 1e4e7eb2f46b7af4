//! The application service: the one place where the rules of this crate meet storage,
//! encryption and the payment provider. HTTP handlers call it with who is acting and what
//! they asked; it loads what it needs, asks the pure rules ([`crate::application`],
//! [`crate::approval`], [`crate::form`], [`crate::payment`]), and writes the outcome with
//! its history, documents and notifications in one storage transaction.
//!
//! Personal data never leaves this module in clear except to the person entitled to it:
//! answers, sensitive fields (マイナンバー) and attachments are sealed with the
//! `field-crypto` keyring under a context that names the application and the field, and
//! notifications carry no answers (the mail address they go to is sealed too).

mod definitions;
mod lifecycle;
mod payments;
mod reports;
mod review;
mod submission;
mod view;

pub use definitions::ProcedureView;
pub use lifecycle::{StaffCommand, MAIL_CONTEXT};
pub use payments::PaymentStart;
pub use reports::{ProcedureStatistics, RetentionReport, StatisticsMonth};
pub use view::{ApplicationView, AttachmentView, DocumentView, HistoryView, Viewer};

use crate::application::TransitionError;
use crate::approval::ChainError;
use crate::form::FieldError;
use crate::payment::PaymentProvider;
use crate::procedure::ProcedureProblem;
use field_crypto::Keyring;
use std::sync::Arc;
use store::applications::SharedApplicationStore;
use store::StoreError;

/// Who is acting, as the server authenticated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user_id: String,
    /// A name for documents and history (the user name).
    pub display_name: String,
    /// The person's roles in the tenant concerned (`reviewer`, `approver`, …).
    pub roles: Vec<String>,
}

/// Why the service refused. The server maps each variant to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such procedure, application, attachment, document (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The answers (or an attachment) are not valid; the draft keeps what was sent (422).
    #[error("the answers are not valid")]
    Invalid(Vec<FieldError>),
    /// The procedure definition is not valid (422).
    #[error("the procedure definition is not valid")]
    InvalidProcedure(Vec<ProcedureProblem>),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The request conflicts with where things stand (409).
    #[error("{en}")]
    Conflict {
        code: &'static str,
        ja: String,
        en: String,
    },
    /// The request itself is malformed (400).
    #[error("{en}")]
    BadRequest {
        code: &'static str,
        ja: String,
        en: String,
    },
    /// The payment provider failed or refused (502); nothing was changed.
    #[error("payment provider: {0}")]
    Provider(String),
    /// A callback that is not the provider's (401): bad signature, stale, unreadable.
    #[error("payment callback refused: {0}")]
    Callback(String),
    /// Storage, encryption or document rendering failed (500, logged).
    #[error("internal: {0}")]
    Internal(String),
}

impl ServiceError {
    pub(crate) fn conflict(
        code: &'static str,
        ja: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        ServiceError::Conflict {
            code,
            ja: ja.into(),
            en: en.into(),
        }
    }

    pub(crate) fn bad_request(
        code: &'static str,
        ja: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        ServiceError::BadRequest {
            code,
            ja: ja.into(),
            en: en.into(),
        }
    }

    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        ServiceError::Internal(what.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(_) => ServiceError::conflict(
                "ChangedMeanwhile",
                "他の操作で内容が変更されました。読み込み直してからやり直してください",
                "someone else changed this meanwhile; reload and try again",
            ),
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The public base URL of renkei (`https://renkei.example.lg.jp`), for the links in
    /// documents and mails and the payment provider's return and callback URLs.
    pub public_url: String,
    /// How long a started payment waits for the provider before it expires.
    pub payment_ttl: chrono::Duration,
}

/// The application service, shared by every handler.
#[derive(Clone)]
pub struct Applications {
    store: SharedApplicationStore,
    keys: Arc<Keyring>,
    provider: Option<Arc<dyn PaymentProvider>>,
    settings: Arc<Settings>,
}

impl Applications {
    pub fn new(
        store: SharedApplicationStore,
        keys: Arc<Keyring>,
        provider: Option<Arc<dyn PaymentProvider>>,
        settings: Settings,
    ) -> Applications {
        Applications {
            store,
            keys,
            provider,
            settings: Arc::new(settings),
        }
    }

    pub fn store(&self) -> &SharedApplicationStore {
        &self.store
    }

    /// Opens the sealed address of a mail in the outbox (see [`MAIL_CONTEXT`]).
    pub fn open_mail_address(&self, sealed: &str) -> Result<String, ServiceError> {
        self.keys
            .open_str(sealed, MAIL_CONTEXT)
            .map_err(ServiceError::internal)
    }

    /// The public URL where anyone checks a document's verification code.
    pub fn verify_url(&self, code: &str) -> String {
        format!(
            "{}/api/v1/procedures/verify/{code}",
            self.settings.public_url.trim_end_matches('/')
        )
    }
}

/// A new random id (UUID v4).
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
