//! What the API shows of an application: to its applicant, their own answers; to staff,
//! the answers with sensitive fields masked unless their role may see them, the chain's
//! progress and who may act now. Also the history, the review queue, attachments and
//! the issued documents, and the public verification of a document's code.

use super::lifecycle::{attachment_context, Loaded};
use super::{Applications, Person, ServiceError};
use crate::application::{self, ActorKind, ApplicationState, CommandKind};
use crate::approval::{self, Assignee, ChainProgress};
use crate::document::VerificationCode;
use crate::form::Text;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use store::applications::{ApplicationFilter, DocumentRecord};

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    pub id: String,
    pub requirement: String,
    pub file_name: String,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    pub kind: String,
    pub verification_code: String,
    pub issued_at: DateTime<Utc>,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplicationView {
    pub id: String,
    pub tenant: String,
    pub procedure_id: String,
    pub procedure_version: i64,
    pub procedure_title: Text,
    pub state: ApplicationState,
    pub state_label_ja: String,
    pub state_label_en: String,
    pub reception_number: Option<String>,
    pub applicant: String,
    pub answers: Value,
    pub fee_yen: Option<u64>,
    pub payment_settled: bool,
    pub return_reasons: Vec<String>,
    pub decision_reasons: Vec<String>,
    /// What the viewer may do now (guards aside).
    pub available_commands: Vec<CommandKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainProgress>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub may_decide: Vec<Assignee>,
    pub attachments: Vec<AttachmentView>,
    pub documents: Vec<DocumentView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub anonymised: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: Value,
}

/// How the viewer relates to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Applicant,
    /// Staff of the tenant; `sensitive` when their role may see sensitive answers.
    Staff {
        sensitive: bool,
    },
}

fn document_view(d: &DocumentRecord) -> DocumentView {
    DocumentView {
        kind: d.kind.clone(),
        verification_code: d.code.clone(),
        issued_at: d.issued_at,
        sha256: d.digest.clone(),
    }
}

impl Applications {
    async fn view_of(
        &self,
        loaded: &Loaded,
        viewer: Viewer,
    ) -> Result<ApplicationView, ServiceError> {
        let id = &loaded.record.id;
        let answers = match viewer {
            // Retention removed the answers: nobody sees an empty object posing as them.
            _ if loaded.stored.anonymised => Value::Null,
            Viewer::Staff { sensitive: true } => self.open_answers_with_sensitive(loaded)?,
            _ => self.open_answers(loaded)?,
        };
        let attachments = self
            .store
            .list_attachments(id)
            .await?
            .iter()
            .map(|a| AttachmentView {
                id: a.id.clone(),
                requirement: a.requirement.clone(),
                file_name: a.file_name.clone(),
                media_type: a.media_type.clone(),
                size: a.size,
                sha256: a.digest.clone(),
            })
            .collect();
        let documents = self
            .store
            .documents_of(id)
            .await?
            .iter()
            .map(document_view)
            .collect();
        let chain = &loaded.procedure.procedure.chain;
        let (actor, chain_view, may_decide) = match viewer {
            Viewer::Applicant => (ActorKind::Applicant, None, Vec::new()),
            Viewer::Staff { .. } => {
                let delegations = self.delegations_of(&loaded.record.tenant).await?;
                let may = if loaded.state == ApplicationState::InReview {
                    approval::who_may_act_now(chain, &loaded.stored.chain, &delegations, Utc::now())
                } else {
                    Vec::new()
                };
                (ActorKind::Reviewer, Some(loaded.stored.chain.clone()), may)
            }
        };
        let mut available = application::available_commands(loaded.state, actor);
        if matches!(viewer, Viewer::Staff { .. }) {
            for extra in application::available_commands(loaded.state, ActorKind::Approver) {
                if !available.contains(&extra) {
                    available.push(extra);
                }
            }
        }
        Ok(ApplicationView {
            id: id.clone(),
            tenant: loaded.record.tenant.clone(),
            procedure_id: loaded.record.procedure_id.clone(),
            procedure_version: loaded.record.procedure_version,
            procedure_title: loaded.procedure.procedure.title.clone(),
            state: loaded.state,
            state_label_ja: loaded.state.label_ja().to_owned(),
            state_label_en: loaded.state.label_en().to_owned(),
            reception_number: loaded.record.reception_number.clone(),
            applicant: loaded.record.applicant.clone(),
            answers,
            fee_yen: loaded.stored.fee_yen,
            payment_settled: loaded.stored.payment_settled,
            return_reasons: loaded.stored.return_reasons.clone(),
            decision_reasons: loaded.stored.decision_reasons.clone(),
            available_commands: available,
            chain: chain_view,
            may_decide,
            attachments,
            documents,
            created_at: loaded.record.created_at,
            updated_at: loaded.record.updated_at,
            submitted_at: loaded.stored.submitted_at,
            decided_at: loaded.stored.decided_at,
            due_at: loaded.record.due_at,
            anonymised: loaded.stored.anonymised,
        })
    }

    /// An application as its applicant sees it (others are told it does not exist).
    pub async fn view_own(
        &self,
        id: &str,
        applicant: &Person,
    ) -> Result<ApplicationView, ServiceError> {
        let loaded = self.load_own(id, applicant).await?;
        self.view_of(&loaded, Viewer::Applicant).await
    }

    /// An application as staff see it. The caller has checked the staff member's role in
    /// the application's tenant (see [`Applications::tenant_of`]).
    pub async fn view_for_staff(
        &self,
        id: &str,
        sensitive: bool,
    ) -> Result<ApplicationView, ServiceError> {
        let loaded = self.load_for_staff(id).await?;
        self.view_of(&loaded, Viewer::Staff { sensitive }).await
    }

    /// Loads an application for staff: a draft is the resident's own until submitted,
    /// so staff are told it does not exist.
    async fn load_for_staff(&self, id: &str) -> Result<Loaded, ServiceError> {
        let loaded = self.load(id).await?;
        if loaded.state == ApplicationState::Draft {
            return Err(ServiceError::NotFound(format!("application {id}")));
        }
        Ok(loaded)
    }

    /// Whether an application may be read, without building its view: by its
    /// `applicant`, or by staff (`None`) once submitted. Anyone else is told it does not
    /// exist.
    pub async fn check_visible(
        &self,
        id: &str,
        applicant: Option<&Person>,
    ) -> Result<(), ServiceError> {
        match applicant {
            Some(person) => self.load_own(id, person).await.map(drop),
            None => self.load_for_staff(id).await.map(drop),
        }
    }

    /// The tenant an application belongs to (for the caller's access check).
    pub async fn tenant_of(&self, id: &str) -> Result<String, ServiceError> {
        Ok(self
            .store
            .get_application(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("application {id}")))?
            .tenant)
    }

    /// Views of the applications a filter selects, with the total.
    pub async fn list(
        &self,
        filter: &ApplicationFilter,
        viewer: Viewer,
    ) -> Result<(Vec<ApplicationView>, u64), ServiceError> {
        let total = self.store.count_applications(filter).await?;
        let mut views = Vec::new();
        for record in self.store.list_applications(filter).await? {
            let loaded = self.loaded(record).await?;
            views.push(self.view_of(&loaded, viewer).await?);
        }
        Ok((views, total))
    }

    pub async fn history(&self, id: &str) -> Result<Vec<HistoryView>, ServiceError> {
        Ok(self
            .store
            .history(id)
            .await?
            .into_iter()
            .map(|h| HistoryView {
                seq: h.seq,
                entry: h.entry,
            })
            .collect())
    }

    /// An attachment's file name, type and clear content.
    pub async fn attachment_content(
        &self,
        id: &str,
        attachment_id: &str,
    ) -> Result<(String, String, Vec<u8>), ServiceError> {
        let record = self
            .store
            .get_attachment(attachment_id)
            .await?
            .filter(|a| a.application_id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("attachment {attachment_id}")))?;
        let opened = self
            .keys
            .open(
                &record.sealed_content,
                &attachment_context(id, attachment_id),
            )
            .map_err(ServiceError::internal)?;
        let content = base64::engine::general_purpose::STANDARD
            .decode(opened.as_slice())
            .map_err(ServiceError::internal)?;
        Ok((record.file_name, record.media_type, content))
    }

    /// The latest document of a kind (`receipt`, `decision`) of an application.
    /// Its `pdf` is the clear document.
    pub async fn document_of(&self, id: &str, kind: &str) -> Result<DocumentRecord, ServiceError> {
        let mut document = self
            .store
            .documents_of(id)
            .await?
            .into_iter()
            .filter(|d| d.kind == kind)
            .max_by_key(|d| d.issued_at)
            .ok_or_else(|| ServiceError::NotFound(format!("{kind} of application {id}")))?;
        let sealed =
            String::from_utf8(std::mem::take(&mut document.pdf)).map_err(ServiceError::internal)?;
        document.pdf = self
            .keys
            .open(
                &sealed,
                &super::submission::document_context(&document.code),
            )
            .map_err(ServiceError::internal)?
            .to_vec();
        Ok(document)
    }

    /// Public verification: what a code was issued for, and the document's digest so a
    /// holder can compare it with the file they have. Tolerant of how people type codes.
    pub async fn verify(&self, code: &str) -> Result<(DocumentView, String, String), ServiceError> {
        let canonical = VerificationCode::parse(code)
            .map_err(|_| ServiceError::NotFound("verification code".into()))?
            .to_string();
        let record = self
            .store
            .get_document(&canonical)
            .await?
            .ok_or_else(|| ServiceError::NotFound("verification code".into()))?;
        Ok((
            document_view(&record),
            record.reception_number,
            record.tenant,
        ))
    }
}
