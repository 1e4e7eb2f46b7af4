//! Staff commands on an application (受付, 審査開始, 補正要求, 決裁, 完了) and the
//! applicant's withdrawal (取下げ). A decision goes through the approval chain: the
//! step's assignees, or their delegates while they are absent (代決), decide; when the
//! chain reaches its outcome the application is approved or rejected and the notice of
//! decision (決定通知書) is issued.

use super::lifecycle::{Loaded, StaffCommand};
use super::submission::answer_text;
use super::{Applications, Person, ServiceError};
use crate::application::{self, ActorKind, ApplicationState, Command, Guards};
use crate::approval::{self, Actor, Delegation, Outcome};
use crate::document::{self, DecisionNoticeData, VerificationCode};
use chrono::{DateTime, Utc};
use store::applications::{ApplicationRecord, DelegationRecord};

impl Applications {
    fn guards(&self, loaded: &Loaded) -> Guards {
        let procedure = &loaded.procedure.procedure;
        Guards {
            payment_required_before_review: procedure.pays_before_review(),
            payment_required_after_approval: procedure.pays_after_approval(),
            payment_settled: loaded.stored.payment_settled || loaded.stored.fee_yen.is_none(),
            chain_complete: loaded.stored.chain.outcome == Outcome::Approved,
        }
    }

    /// The tenant's delegations as the chain rules take them.
    pub(crate) async fn delegations_of(
        &self,
        tenant: &str,
    ) -> Result<Vec<Delegation>, ServiceError> {
        Ok(self
            .store
            .delegations(tenant)
            .await?
            .into_iter()
            .map(|d: DelegationRecord| Delegation {
                principal: d.principal,
                delegate: d.delegate,
                from: d.from,
                until: d.until,
            })
            .collect())
    }

    /// Applies a staff command. The server has checked that `staff` holds a staff role
    /// in the application's tenant; the chain decides who may decide at each step.
    pub async fn staff_command(
        &self,
        id: &str,
        staff: &Person,
        command: StaffCommand,
        tenant_name: &str,
    ) -> Result<ApplicationRecord, ServiceError> {
        let mut loaded = self.load(id).await?;
        let now = Utc::now();
        let answers = self.open_answers(&loaded)?;
        let (command, actor) = match command {
            StaffCommand::Receive => (Command::Receive, ActorKind::Reviewer),
            StaffCommand::StartReview => {
                loaded.stored.chain = approval::ChainProgress::new();
                loaded.stored.chain.step_started_at = Some(now);
                (Command::StartReview, ActorKind::Reviewer)
            }
            StaffCommand::ReturnForCorrection { reasons } => {
                loaded.stored.return_reasons = reasons.clone();
                (
                    Command::ReturnForCorrection { reasons },
                    ActorKind::Reviewer,
                )
            }
            StaffCommand::Complete => (Command::Complete, ActorKind::Reviewer),
            StaffCommand::Decide { decision } => {
                return self
                    .decide(loaded, staff, decision, &answers, tenant_name, now)
                    .await
            }
        };
        let entry = application::apply(
            loaded.state,
            &command,
            actor,
            &staff.user_id,
            &self.guards(&loaded),
            now,
        )?;
        if entry.to == ApplicationState::InReview {
            loaded.record.due_at = self.step_due(&loaded, now);
        } else if entry.to != ApplicationState::Received {
            loaded.record.due_at = None;
        }
        if entry.to.is_terminal() {
            loaded.stored.finished_at = Some(now);
        }
        let change = self.change_for(&loaded, &entry, &answers)?;
        self.write(&loaded, entry.to, now, change).await
    }

    fn step_due(&self, loaded: &Loaded, started: DateTime<Utc>) -> Option<DateTime<Utc>> {
        approval::due_at(
            &loaded.procedure.procedure.chain,
            &loaded.stored.chain,
            started,
        )
    }

    async fn decide(
        &self,
        mut loaded: Loaded,
        staff: &Person,
        decision: approval::Decision,
        answers: &serde_json::Value,
        tenant_name: &str,
        now: DateTime<Utc>,
    ) -> Result<ApplicationRecord, ServiceError> {
        if loaded.state != ApplicationState::InReview {
            return Err(ServiceError::conflict(
                "NotInReview",
                format!("「{}」の申請は決裁できません", loaded.state.label_ja()),
                format!(
                    "an application that is {} cannot be decided",
                    loaded.state.label_en()
                ),
            ));
        }
        let delegations = self.delegations_of(&loaded.record.tenant).await?;
        let actor = Actor {
            user_id: staff.user_id.clone(),
            roles: staff.roles.clone(),
        };
        let chain = loaded.procedure.procedure.chain.clone();
        let step_before = loaded.stored.chain.current_step;
        let outcome = approval::act(
            &chain,
            &mut loaded.stored.chain,
            &actor,
            decision,
            &delegations,
            now,
        )?;
        let command = match outcome {
            Outcome::Pending => {
                if loaded.stored.chain.current_step != step_before {
                    loaded.stored.chain.step_started_at = Some(now);
                    loaded.record.due_at = self.step_due(&loaded, now);
                }
                return self
                    .write(&loaded, loaded.state, now, Default::default())
                    .await;
            }
            Outcome::Approved => Command::Approve,
            Outcome::Rejected => Command::Reject {
                reasons: loaded
                    .stored
                    .chain
                    .rejection_reason()
                    .map(|r| vec![r.to_owned()])
                    .unwrap_or_default(),
            },
        };
        let entry = application::apply(
            loaded.state,
            &command,
            ActorKind::System,
            &staff.user_id,
            &self.guards(&loaded),
            now,
        )?;
        loaded.record.due_at = None;
        loaded.stored.decided_at = Some(now);
        if let Command::Reject { reasons } = &command {
            loaded.stored.decision_reasons = reasons.clone();
            loaded.stored.finished_at = Some(now);
        }
        let notice = self.issue_notice(&loaded, answers, tenant_name, outcome, now)?;
        let mut change = self.change_for(&loaded, &entry, answers)?;
        change.documents.push(notice);
        self.write(&loaded, entry.to, now, change).await
    }

    fn issue_notice(
        &self,
        loaded: &Loaded,
        answers: &serde_json::Value,
        tenant_name: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<store::applications::DocumentRecord, ServiceError> {
        let procedure = &loaded.procedure.procedure;
        let reception = loaded.record.reception_number.clone().unwrap_or_default();
        let code = VerificationCode::generate().map_err(ServiceError::internal)?;
        let mut approvers: Vec<String> = Vec::new();
        for record in &loaded.stored.chain.decisions {
            let name = match &record.on_behalf_of {
                Some(principal) => format!("{}（代決: {principal}）", record.user_id),
                None => record.user_id.clone(),
            };
            if !approvers.contains(&name) {
                approvers.push(name);
            }
        }
        let data = DecisionNoticeData {
            reception_number: reception.clone(),
            tenant_name: tenant_name.to_owned(),
            procedure_title_ja: procedure.title.ja.clone(),
            procedure_title_en: procedure.title.en.clone(),
            applicant_name: answer_text(answers, &procedure.applicant_name_field),
            decision: if outcome == Outcome::Approved {
                document::Decision::Approved
            } else {
                document::Decision::Rejected
            },
            reasons: loaded.stored.decision_reasons.clone(),
            decided_at: now,
            approvers,
            verify_url: self.verify_url(&code.to_string()),
            verification_code: code,
        };
        let pdf = document::render_decision_notice(&data).map_err(ServiceError::internal)?;
        Ok(self.document_record(loaded, "decision", &reception, &code, pdf, now))
    }

    /// 取下げ by the applicant, before a decision.
    pub async fn withdraw(
        &self,
        id: &str,
        applicant: &Person,
        reason: Option<String>,
    ) -> Result<ApplicationRecord, ServiceError> {
        let mut loaded = self.load_own(id, applicant).await?;
        let now = Utc::now();
        let entry = application::apply(
            loaded.state,
            &Command::Withdraw { reason },
            ActorKind::Applicant,
            &applicant.user_id,
            &self.guards(&loaded),
            now,
        )?;
        loaded.record.due_at = None;
        loaded.stored.finished_at = Some(now);
        let answers = self.open_answers(&loaded)?;
        let change = self.change_for(&loaded, &entry, &answers)?;
        self.write(&loaded, entry.to, now, change).await
    }

    /// Registers a delegation (代決) of the tenant.
    pub async fn add_delegation(
        &self,
        tenant: &str,
        delegation: Delegation,
    ) -> Result<DelegationRecord, ServiceError> {
        if delegation.until <= delegation.from || delegation.principal == delegation.delegate {
            return Err(ServiceError::bad_request(
                "InvalidDelegation",
                "代決の期間（from < until）と、本人以外の代理者を指定してください",
                "a delegation needs from < until and a delegate other than the principal",
            ));
        }
        let record = DelegationRecord {
            id: super::new_id(),
            tenant: tenant.to_owned(),
            principal: delegation.principal,
            delegate: delegation.delegate,
            from: delegation.from,
            until: delegation.until,
        };
        self.store.insert_delegation(&record).await?;
        Ok(record)
    }
}
