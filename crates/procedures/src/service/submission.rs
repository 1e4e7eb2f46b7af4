//! Attachments and submission: files checked by their real type and sealed; submission
//! validates the whole form (keeping the answers when it fails), issues the 受付番号 on
//! the first submission, renders the receipt (受付票) and queues the notifications.

use super::lifecycle::{attachment_context, ensure_editable, Loaded, MAIL_CONTEXT};
use super::{new_id, Applications, Person, ServiceError};
use crate::application::{self, ActorKind, ApplicationState, Command, Guards, HistoryEntry};
use crate::document::{self, ReceiptData, VerificationCode};
use crate::form::{self, Scope};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use store::applications::{
    ApplicationChange, ApplicationRecord, AttachmentRecord, DocumentRecord, OutboxMessage,
};

/// The context a document's PDF is sealed under.
pub(crate) fn document_context(code: &str) -> String {
    format!("document:{code}")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A display text for an answer: a string as is, an object's strings joined.
pub(crate) fn answer_text(answers: &Value, pointer: &str) -> String {
    match answers.pointer(pointer) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Object(parts)) => parts
            .values()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    }
}

impl Applications {
    /// Adds a file to a draft (or an application returned for correction).
    pub async fn add_attachment(
        &self,
        id: &str,
        applicant: &Person,
        requirement: &str,
        file_name: &str,
        declared_type: &str,
        content: &[u8],
    ) -> Result<AttachmentRecord, ServiceError> {
        let loaded = self.load_own(id, applicant).await?;
        ensure_editable(loaded.state)?;
        let form = &loaded.procedure.procedure.form;
        let Some(wanted) = form.attachments.iter().find(|a| a.id == requirement) else {
            return Err(ServiceError::bad_request(
                "UnknownAttachment",
                format!("この手続に添付書類「{requirement}」はありません"),
                format!("this procedure asks for no attachment {requirement:?}"),
            ));
        };
        let head = &content[..content.len().min(64)];
        form::check_attachment(wanted, file_name, declared_type, head, content.len() as u64)
            .map_err(|e| ServiceError::Invalid(vec![e]))?;
        let media_type = form::sniff_media_type(head).unwrap_or(declared_type);
        let attachment_id = new_id();
        let sealed = self.keys.seal(
            base64::engine::general_purpose::STANDARD
                .encode(content)
                .as_bytes(),
            &attachment_context(id, &attachment_id),
        );
        let record = AttachmentRecord {
            id: attachment_id,
            application_id: id.to_owned(),
            requirement: requirement.to_owned(),
            file_name: file_name.to_owned(),
            media_type: media_type.to_owned(),
            size: content.len() as i64,
            digest: hex(&Sha256::digest(content)),
            sealed_content: sealed,
            created_at: Utc::now(),
        };
        self.store.insert_attachment(&record).await?;
        Ok(record)
    }

    /// Removes a file from a draft; files cannot change once submitted for review.
    pub async fn remove_attachment(
        &self,
        id: &str,
        applicant: &Person,
        attachment_id: &str,
    ) -> Result<(), ServiceError> {
        let loaded = self.load_own(id, applicant).await?;
        ensure_editable(loaded.state)?;
        let found = self.store.get_attachment(attachment_id).await?;
        if found.is_none_or(|a| a.application_id != id) {
            return Err(ServiceError::NotFound(format!(
                "attachment {attachment_id}"
            )));
        }
        self.store.delete_attachment(attachment_id).await?;
        Ok(())
    }

    /// Submits (or resubmits after 補正要求). A second submit of an application already
    /// submitted returns it unchanged, so a double click makes one submission.
    pub async fn submit(
        &self,
        id: &str,
        applicant: &Person,
        tenant_name: &str,
    ) -> Result<ApplicationRecord, ServiceError> {
        match self.submit_once(id, applicant, tenant_name).await {
            // Two submits at once (a double click): the one that lost the race returns the
            // submission the other made, as a later repeat would.
            Err(
                error @ ServiceError::Conflict {
                    code: "ChangedMeanwhile",
                    ..
                },
            ) => {
                let loaded = self.load_own(id, applicant).await?;
                match loaded.state {
                    ApplicationState::Submitted
                    | ApplicationState::Received
                    | ApplicationState::InReview => Ok(loaded.record),
                    _ => Err(error),
                }
            }
            other => other,
        }
    }

    async fn submit_once(
        &self,
        id: &str,
        applicant: &Person,
        tenant_name: &str,
    ) -> Result<ApplicationRecord, ServiceError> {
        let mut loaded = self.load_own(id, applicant).await?;
        let command = match loaded.state {
            ApplicationState::Draft => Command::Submit,
            ApplicationState::Returned => Command::Resubmit,
            ApplicationState::Submitted
            | ApplicationState::Received
            | ApplicationState::InReview => return Ok(loaded.record),
            _ => Command::Submit,
        };
        let procedure = loaded.procedure.procedure.clone();
        let answers = self.open_answers_with_sensitive(&loaded)?;
        let validated = form::validate(&procedure.form, &answers, &Scope::Full)
            .map_err(|e| ServiceError::internal(format!("stored form: {e}")))?;
        let mut errors = validated.errors.clone();
        let attachments = self.store.list_attachments(id).await?;
        let present: Vec<&str> = attachments.iter().map(|a| a.requirement.as_str()).collect();
        errors.extend(form::check_required_attachments(
            &procedure.form.attachments,
            &present,
        ));
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let fee = procedure.fee.amount(&validated.answers).map_err(|e| {
            ServiceError::bad_request("FeeNotComputable", e.to_string(), e.to_string())
        })?;
        let now = Utc::now();
        let guards = Guards {
            payment_required_before_review: procedure.pays_before_review(),
            payment_required_after_approval: procedure.pays_after_approval(),
            payment_settled: loaded.stored.payment_settled || fee == 0,
            chain_complete: false,
        };
        let entry = application::apply(
            loaded.state,
            &command,
            ActorKind::Applicant,
            &applicant.user_id,
            &guards,
            now,
        )?;
        if loaded.record.reception_number.is_none() {
            let year = japan_year(now);
            let tenant = loaded.record.tenant.clone();
            let seq = self
                .store
                .next_sequence(&format!("reception:{tenant}:{year}"))
                .await?;
            loaded.record.reception_number =
                Some(application::reception_number(&tenant, year, seq));
        }
        loaded.stored.answers = Some(self.keys.seal_str(
            &validated.answers.to_string(),
            &format!("application:{id}:answers"),
        ));
        loaded.stored.sensitive = validated
            .sensitive
            .iter()
            .map(|(pointer, value)| {
                let clear = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                let sealed = self
                    .keys
                    .seal_str(&clear, &format!("application:{id}:sensitive:{pointer}"));
                (pointer.clone(), sealed)
            })
            .collect();
        loaded.stored.fee_yen = (fee > 0).then_some(fee);
        loaded.stored.payment_settled = guards.payment_settled;
        loaded.stored.submitted_at = Some(now);
        loaded.stored.return_reasons.clear();
        loaded.stored.resume_hash = None;
        let reception = loaded.record.reception_number.clone().unwrap_or_default();
        let receipt =
            self.issue_receipt(&loaded, &validated.answers, tenant_name, &reception, now)?;
        let mut change = self.change_for(&loaded, &entry, &validated.answers)?;
        change.documents.push(receipt);
        self.write(&loaded, entry.to, now, change).await
    }

    fn issue_receipt(
        &self,
        loaded: &Loaded,
        answers: &Value,
        tenant_name: &str,
        reception: &str,
        now: DateTime<Utc>,
    ) -> Result<DocumentRecord, ServiceError> {
        let procedure = &loaded.procedure.procedure;
        let code = VerificationCode::generate().map_err(ServiceError::internal)?;
        let data = ReceiptData {
            reception_number: reception.to_owned(),
            tenant_name: tenant_name.to_owned(),
            procedure_title_ja: procedure.title.ja.clone(),
            procedure_title_en: procedure.title.en.clone(),
            applicant_name: answer_text(answers, &procedure.applicant_name_field),
            submitted_at: now,
            fee_yen: loaded.stored.fee_yen,
            paid: loaded.stored.payment_settled,
            verify_url: self.verify_url(&code.to_string()),
            verification_code: code,
        };
        let pdf = document::render_receipt(&data).map_err(ServiceError::internal)?;
        Ok(self.document_record(loaded, "receipt", reception, &code, pdf, now))
    }

    pub(crate) fn document_record(
        &self,
        loaded: &Loaded,
        kind: &str,
        reception: &str,
        code: &VerificationCode,
        pdf: Vec<u8>,
        now: DateTime<Utc>,
    ) -> DocumentRecord {
        let code = code.to_string();
        // The PDF names the applicant, so it is sealed at rest like the answers; the
        // digest of the clear PDF is what the public verification shows.
        let sealed = self.keys.seal(&pdf, &document_context(&code));
        DocumentRecord {
            tenant: loaded.record.tenant.clone(),
            application_id: loaded.record.id.clone(),
            kind: kind.to_owned(),
            reception_number: reception.to_owned(),
            digest: document::document_digest(&pdf),
            issued_at: now,
            pdf: sealed.into_bytes(),
            code,
        }
    }

    /// The history entry of a transition and the notifications it sends: a mail to the
    /// applicant (when the procedure names an e-mail answer and it is given), the
    /// procedure's webhook, and the application's NGSI-LD entity. None carries answers.
    pub(crate) fn change_for(
        &self,
        loaded: &Loaded,
        entry: &HistoryEntry,
        answers: &Value,
    ) -> Result<ApplicationChange, ServiceError> {
        let procedure = &loaded.procedure.procedure;
        let record = &loaded.record;
        let reception = record.reception_number.clone().unwrap_or_default();
        let event = json!({
            "event": "application.state_changed",
            "application_id": record.id,
            "tenant": record.tenant,
            "procedure_id": record.procedure_id,
            "procedure_version": record.procedure_version,
            "reception_number": reception,
            "from": entry.from.as_str(),
            "state": entry.to.as_str(),
            "at": entry.at,
        });
        let message = |channel: &str, payload: Value| OutboxMessage {
            id: 0,
            tenant: record.tenant.clone(),
            application_id: record.id.clone(),
            channel: channel.to_owned(),
            payload,
            attempts: 0,
            next_attempt_at: entry.at,
        };
        let mut outbox = vec![message("entity", event.clone())];
        if let Some(url) = &procedure.webhook_url {
            outbox.push(message("webhook", json!({"url": url, "body": event})));
        }
        let to = procedure
            .contact_email_field
            .as_deref()
            .map(|pointer| answer_text(answers, pointer))
            .filter(|to| !to.is_empty());
        if let Some(to) = to {
            let (ja, en) = (entry.to.label_ja(), entry.to.label_en());
            let title = &procedure.title;
            outbox.push(message(
                "mail",
                json!({
                    "to_sealed": self.keys.seal_str(&to, MAIL_CONTEXT),
                    "subject": format!("【{}】申請の状況: {ja} / Your application: {en}", title.ja),
                    "body": format!(
                        "{}の申請（受付番号 {reception}）は「{ja}」になりました。\n\
                         詳しくはマイページでご確認ください。\n\n\
                         Your application for {} (reception number {reception}) is now: {en}.\n\
                         Please sign in to see the details.\n",
                        title.ja, title.en
                    ),
                }),
            ));
        }
        Ok(ApplicationChange {
            history: Some(serde_json::to_value(entry).map_err(ServiceError::internal)?),
            outbox,
            documents: Vec::new(),
        })
    }
}

fn japan_year(at: DateTime<Utc>) -> i32 {
    use chrono::Datelike;
    crate::in_japan(at).year()
}
