//! An application's life: the draft and its resume link, attachments, submission
//! (受付番号 and the receipt), the staff's commands, the approval chain's decisions (and
//! the notice of decision), and withdrawal. Each change is one conditional write of the
//! application with its history entry, documents and notifications.

use super::submission::hex;
use super::{new_id, Applications, Person, ServiceError};
use crate::application::ApplicationState;
use crate::approval::{ChainProgress, Decision};
use crate::form::{self, FieldError, Scope};
use crate::procedure::ProcedureStatus;
use crate::service::definitions::ProcedureView;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use store::applications::{ApplicationChange, ApplicationRecord};

/// What the service keeps in an application's stored document, besides its columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Stored {
    /// The answers, sealed: as sent while a draft, normalised once submitted.
    #[serde(default)]
    pub answers: Option<String>,
    /// Sensitive answers (マイナンバー …), each sealed on its own: pointer → sealed.
    #[serde(default)]
    pub sensitive: BTreeMap<String, String>,
    #[serde(default)]
    pub resume_hash: Option<String>,
    #[serde(default)]
    pub resume_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub fee_yen: Option<u64>,
    #[serde(default)]
    pub payment_settled: bool,
    #[serde(default)]
    pub chain: ChainProgress,
    #[serde(default)]
    pub return_reasons: Vec<String>,
    #[serde(default)]
    pub decision_reasons: Vec<String>,
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub anonymised: bool,
}

/// A command staff give to an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum StaffCommand {
    /// 受付.
    Receive,
    /// 審査開始.
    StartReview,
    /// 補正要求, with the reasons shown to the applicant.
    ReturnForCorrection { reasons: Vec<String> },
    /// A decision at the current step of the approval chain.
    Decide {
        #[serde(flatten)]
        decision: Decision,
    },
    /// 完了 (after approval, and payment when it comes after approval).
    Complete,
}

/// An application loaded with what the rules need.
pub(crate) struct Loaded {
    pub record: ApplicationRecord,
    pub stored: Stored,
    pub state: ApplicationState,
    pub procedure: ProcedureView,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn random_token() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(ServiceError::internal)?;
    Ok(hex(&bytes))
}

fn answers_context(id: &str) -> String {
    format!("application:{id}:answers")
}

fn sensitive_context(id: &str, pointer: &str) -> String {
    format!("application:{id}:sensitive:{pointer}")
}

pub(crate) fn attachment_context(id: &str, attachment: &str) -> String {
    format!("application:{id}:attachment:{attachment}")
}

/// The context a sealed mail address in the outbox is sealed under.
pub const MAIL_CONTEXT: &str = "outbox:mail:to";

impl Applications {
    pub(crate) async fn load(&self, id: &str) -> Result<Loaded, ServiceError> {
        let record = self
            .store
            .get_application(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("application {id}")))?;
        self.loaded(record).await
    }

    /// An application already read from the store, with what the rules need.
    pub(crate) async fn loaded(&self, record: ApplicationRecord) -> Result<Loaded, ServiceError> {
        let id = &record.id;
        let stored: Stored = serde_json::from_value(record.document.clone())
            .map_err(|e| ServiceError::internal(format!("stored application {id}: {e}")))?;
        let state: ApplicationState = record
            .state
            .parse()
            .map_err(|_| ServiceError::internal(format!("application {id}: bad state")))?;
        let procedure = self
            .procedure(
                &record.tenant,
                &record.procedure_id,
                Some(record.procedure_version),
            )
            .await?;
        Ok(Loaded {
            record,
            stored,
            state,
            procedure,
        })
    }

    /// Loads an application its applicant acts on; anyone else is told it does not exist.
    pub(crate) async fn load_own(
        &self,
        id: &str,
        applicant: &Person,
    ) -> Result<Loaded, ServiceError> {
        let loaded = self.load(id).await?;
        if loaded.record.applicant != applicant.user_id {
            return Err(ServiceError::NotFound(format!("application {id}")));
        }
        Ok(loaded)
    }

    pub(crate) fn open_answers(&self, loaded: &Loaded) -> Result<Value, ServiceError> {
        match &loaded.stored.answers {
            None => Ok(json!({})),
            Some(sealed) => {
                let text = self
                    .keys
                    .open_str(sealed, &answers_context(&loaded.record.id))
                    .map_err(ServiceError::internal)?;
                serde_json::from_str(&text).map_err(ServiceError::internal)
            }
        }
    }

    /// The answers with sensitive fields opened too: for the form's own validation and
    /// for roles allowed to see them.
    pub(crate) fn open_answers_with_sensitive(
        &self,
        loaded: &Loaded,
    ) -> Result<Value, ServiceError> {
        let mut answers = self.open_answers(loaded)?;
        for (pointer, sealed) in &loaded.stored.sensitive {
            let clear = self
                .keys
                .open_str(sealed, &sensitive_context(&loaded.record.id, pointer))
                .map_err(ServiceError::internal)?;
            if let Some(slot) = answers.pointer_mut(pointer) {
                *slot = Value::String(clear);
            }
        }
        Ok(answers)
    }

    fn seal_answers(&self, id: &str, answers: &Value) -> String {
        self.keys
            .seal_str(&answers.to_string(), &answers_context(id))
    }

    /// Starts a draft of `procedure_id` for `applicant`, keeping `answers` as sent. A
    /// repeated start with the same idempotency key returns the first draft. Returns the
    /// application and its resume token (shown once: the resume link is
    /// `…/applications/{id}/resume?token=…`).
    pub async fn start_application(
        &self,
        tenant: &str,
        procedure_id: &str,
        applicant: &Person,
        answers: Value,
        idempotency_key: Option<String>,
    ) -> Result<(ApplicationRecord, Option<String>), ServiceError> {
        let procedure = self.procedure(tenant, procedure_id, None).await?;
        if procedure.procedure.status != ProcedureStatus::Published {
            return Err(ServiceError::conflict(
                "ProcedureNotOpen",
                "この手続は現在申請を受け付けていません",
                "this procedure does not take applications now",
            ));
        }
        check_object(&answers)?;
        let id = new_id();
        let now = Utc::now();
        let token = random_token()?;
        let stored = Stored {
            answers: Some(self.seal_answers(&id, &answers)),
            resume_hash: Some(sha256_hex(token.as_bytes())),
            resume_expires_at: Some(now + Duration::days(procedure.procedure.draft_days.into())),
            ..Stored::default()
        };
        let record = ApplicationRecord {
            id,
            tenant: tenant.to_owned(),
            procedure_id: procedure.id.clone(),
            procedure_version: procedure.version,
            applicant: applicant.user_id.clone(),
            state: ApplicationState::Draft.as_str().to_owned(),
            reception_number: None,
            idempotency_key,
            due_at: None,
            created_at: now,
            updated_at: now,
            document: serde_json::to_value(&stored).map_err(ServiceError::internal)?,
            version: 0,
        };
        let saved = self
            .store
            .insert_application(&record, &ApplicationChange::default())
            .await?;
        // A repeated start gets the first draft, whose token was shown to the first call.
        let token = (saved.id == record.id).then_some(token);
        Ok((saved, token))
    }

    /// Replaces a draft's answers with those sent, always keeping them, and says what is
    /// wrong with them: in the step named, or in the whole form when `step` is `None`.
    pub async fn save_draft(
        &self,
        id: &str,
        applicant: &Person,
        answers: Value,
        step: Option<&str>,
    ) -> Result<(ApplicationRecord, Vec<FieldError>), ServiceError> {
        let mut loaded = self.load_own(id, applicant).await?;
        ensure_editable(loaded.state)?;
        check_object(&answers)?;
        let scope = match step {
            Some(step) => Scope::Step(step.to_owned()),
            None => Scope::Full,
        };
        let validated = form::validate(&loaded.procedure.procedure.form, &answers, &scope)
            .map_err(|e| ServiceError::bad_request("InvalidStep", e.to_string(), e.to_string()))?;
        let now = Utc::now();
        loaded.stored.answers = Some(self.seal_answers(id, &answers));
        loaded.stored.sensitive.clear();
        loaded.stored.resume_expires_at =
            Some(now + Duration::days(loaded.procedure.procedure.draft_days.into()));
        let record = self
            .write(&loaded, loaded.state, now, ApplicationChange::default())
            .await?;
        Ok((record, validated.errors))
    }

    /// Opens a draft by its resume link for the applicant now signed in.
    pub async fn resume(
        &self,
        id: &str,
        token: &str,
        applicant: &Person,
    ) -> Result<ApplicationRecord, ServiceError> {
        let loaded = self.load_own(id, applicant).await?;
        let live = loaded.stored.resume_hash.as_deref() == Some(&sha256_hex(token.as_bytes()))
            && loaded
                .stored
                .resume_expires_at
                .is_some_and(|until| Utc::now() < until);
        if !live
            || !matches!(
                loaded.state,
                ApplicationState::Draft | ApplicationState::Returned
            )
        {
            return Err(ServiceError::NotFound(
                "resume link (it may have expired with its draft)".into(),
            ));
        }
        Ok(loaded.record)
    }

    /// Writes the application at its new state with `change`, if nobody wrote it since
    /// it was loaded.
    pub(crate) async fn write(
        &self,
        loaded: &Loaded,
        state: ApplicationState,
        now: DateTime<Utc>,
        change: ApplicationChange,
    ) -> Result<ApplicationRecord, ServiceError> {
        let mut record = loaded.record.clone();
        record.state = state.as_str().to_owned();
        record.updated_at = now;
        record.document = serde_json::to_value(&loaded.stored).map_err(ServiceError::internal)?;
        Ok(self
            .store
            .update_application(&record, loaded.record.version, &change)
            .await?)
    }
}

fn check_object(answers: &Value) -> Result<(), ServiceError> {
    if answers.is_object() {
        Ok(())
    } else {
        Err(ServiceError::bad_request(
            "AnswersNotObject",
            "回答はJSONオブジェクトで送ってください",
            "answers must be a JSON object",
        ))
    }
}

pub(crate) fn ensure_editable(state: ApplicationState) -> Result<(), ServiceError> {
    if matches!(state, ApplicationState::Draft | ApplicationState::Returned) {
        Ok(())
    } else {
        Err(ServiceError::conflict(
            "NotEditable",
            format!("「{}」の申請は変更できません", state.label_ja()),
            format!(
                "an application that is {} cannot be changed",
                state.label_en()
            ),
        ))
    }
}
