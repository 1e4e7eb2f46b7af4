//! The approval chain (電子決裁) an application goes through while it is in review. A
//! procedure defines a chain of steps; each step is either one approver's decision
//! (順次決裁) or a consultation (合議) among several members that completes by a rule.
//! [`act`] is the only way progress moves: it refuses anyone who is not entitled to the
//! current step, lets a delegate act for an absent approver within the delegation's
//! window (代決), and can send the chain back to an earlier step (差戻し). Progress is
//! plain data ([`ChainProgress`]) that the caller stores as JSON next to the application.
//!
//! Rules worth knowing:
//! - Each step has seats: the one approver of a sequential step, or the members of a
//!   consultation. A [`Assignee::Role`] seat may be taken by any user holding the role; a
//!   [`Assignee::User`] seat only by that user or their delegate.
//! - One person decides at most once per step, whether in person or through a delegate.
//! - Delegation stands in for a named user, so it applies to `User` seats; a `Role` seat
//!   needs none, since any holder of the role may take it. Delegations do not chain: a
//!   delegate's own delegate may not act for the original approver.
//! - A delegation is active from `from` (inclusive) until `until` (exclusive).
//! - A consultation completes as soon as enough members approved for its rule. A
//!   rejection by a member rejects the whole chain only when the rule can no longer be met
//!   by the seats still open (so under `All` one rejection rejects, under `Any` only when
//!   every member rejected).
//! - Sending back (差戻し) goes to an earlier step of the chain and undoes the decisions of
//!   that step and every later one; they stay in [`ChainProgress::history`]. Returning the
//!   application to the applicant is not part of the chain: that is the application's
//!   `return_for_correction` command.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Who may take a seat in a step.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    /// One user, by id.
    User(String),
    /// Any user holding this role in the tenant (e.g. `"approver"`).
    Role(String),
}

impl Assignee {
    /// Whether a user with these roles may take this seat in person.
    fn admits(&self, user_id: &str, roles: &[String]) -> bool {
        match self {
            Assignee::User(id) => id == user_id,
            Assignee::Role(role) => roles.iter().any(|r| r == role),
        }
    }

    fn label_ja(&self) -> String {
        match self {
            Assignee::User(id) => format!("ユーザー「{id}」"),
            Assignee::Role(role) => format!("役割「{role}」を持つ職員"),
        }
    }

    fn label_en(&self) -> String {
        match self {
            Assignee::User(id) => format!("user {id:?}"),
            Assignee::Role(role) => format!("anyone with role {role:?}"),
        }
    }
}

impl fmt::Display for Assignee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assignee::User(id) => write!(f, "user:{id}"),
            Assignee::Role(role) => write!(f, "role:{role}"),
        }
    }
}

/// When a consultation (合議) is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionRule {
    /// Every member approved.
    All,
    /// One member approved.
    Any,
    /// At least this many members approved (1 to the number of members).
    AtLeast(u32),
}

/// What a step asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// One approver decides (順次決裁).
    Sequential { approver: Assignee },
    /// Several members are consulted and the rule says when it is complete (合議).
    Consultation {
        members: Vec<Assignee>,
        rule: CompletionRule,
    },
}

impl StepKind {
    /// The seats of the step, in order.
    pub fn seats(&self) -> &[Assignee] {
        match self {
            StepKind::Sequential { approver } => std::slice::from_ref(approver),
            StepKind::Consultation { members, .. } => members,
        }
    }

    /// How many approvals complete the step.
    pub fn required_approvals(&self) -> usize {
        match self {
            StepKind::Sequential { .. } => 1,
            StepKind::Consultation { members, rule } => match rule {
                CompletionRule::All => members.len(),
                CompletionRule::Any => 1,
                CompletionRule::AtLeast(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            },
        }
    }
}

/// One step of a chain, with its name in both languages for the review screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDefinition {
    pub name_ja: String,
    pub name_en: String,
    #[serde(flatten)]
    pub kind: StepKind,
    /// Calendar days the step should take from when it starts (see [`due_at`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_days: Option<u32>,
}

/// The approval chain of a procedure: steps taken in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainDefinition {
    pub steps: Vec<StepDefinition>,
}

/// A problem in a chain definition. Steps are counted from 0 here and from 1 in messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("the chain has no steps")]
    NoSteps,
    #[error("step {step} has no name")]
    EmptyName { step: usize },
    #[error("step {step} is a consultation with no members")]
    NoMembers { step: usize },
    #[error("step {step} names a blank user or role")]
    BlankAssignee { step: usize },
    #[error("step {step} names user {user_id:?} more than once")]
    DuplicateMember { step: usize, user_id: String },
    #[error("step {step} completes with at least 0 approvals")]
    AtLeastZero { step: usize },
    #[error("step {step} needs {at_least} approvals but has {members} members")]
    AtLeastTooMany {
        step: usize,
        at_least: u32,
        members: usize,
    },
}

impl DefinitionError {
    /// A stable code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            DefinitionError::NoSteps => "chain-no-steps",
            DefinitionError::EmptyName { .. } => "chain-step-no-name",
            DefinitionError::NoMembers { .. } => "chain-step-no-members",
            DefinitionError::BlankAssignee { .. } => "chain-step-blank-assignee",
            DefinitionError::DuplicateMember { .. } => "chain-step-duplicate-member",
            DefinitionError::AtLeastZero { .. } => "chain-step-at-least-zero",
            DefinitionError::AtLeastTooMany { .. } => "chain-step-at-least-too-many",
        }
    }

    /// The problem in Japanese, for whoever edits the procedure.
    pub fn message_ja(&self) -> String {
        match self {
            DefinitionError::NoSteps => "決裁経路に段階がありません".to_owned(),
            DefinitionError::EmptyName { step } => {
                format!("決裁経路の第{}段階に名前がありません", step + 1)
            }
            DefinitionError::NoMembers { step } => {
                format!("決裁経路の第{}段階 (合議) に合議先がありません", step + 1)
            }
            DefinitionError::BlankAssignee { step } => format!(
                "決裁経路の第{}段階に空欄のユーザーまたは役割があります",
                step + 1
            ),
            DefinitionError::DuplicateMember { step, user_id } => format!(
                "決裁経路の第{}段階にユーザー「{user_id}」が重複しています",
                step + 1
            ),
            DefinitionError::AtLeastZero { step } => format!(
                "決裁経路の第{}段階の完了条件は1人以上の承認にしてください",
                step + 1
            ),
            DefinitionError::AtLeastTooMany {
                step,
                at_least,
                members,
            } => format!(
                "決裁経路の第{}段階は{at_least}人の承認が必要ですが、合議先は{members}人です",
                step + 1
            ),
        }
    }

    /// The problem in English, for whoever edits the procedure.
    pub fn message_en(&self) -> String {
        match self {
            DefinitionError::NoSteps => "the approval chain has no steps".to_owned(),
            DefinitionError::EmptyName { step } => {
                format!("step {} of the approval chain has no name", step + 1)
            }
            DefinitionError::NoMembers { step } => format!(
                "step {} of the approval chain is a consultation with no members",
                step + 1
            ),
            DefinitionError::BlankAssignee { step } => format!(
                "step {} of the approval chain names a blank user or role",
                step + 1
            ),
            DefinitionError::DuplicateMember { step, user_id } => format!(
                "step {} of the approval chain names user {user_id:?} more than once",
                step + 1
            ),
            DefinitionError::AtLeastZero { step } => format!(
                "step {} of the approval chain must need at least one approval",
                step + 1
            ),
            DefinitionError::AtLeastTooMany {
                step,
                at_least,
                members,
            } => format!(
                "step {} of the approval chain needs {at_least} approvals but has only {members} members",
                step + 1
            ),
        }
    }
}

impl ChainDefinition {
    /// Checks the definition and reports every problem found, not just the first: at
    /// least one step, every step named (in both languages) and with a non-blank
    /// assignee, no consultation without members or naming a user twice (one person
    /// decides once per step, so the second seat could never be filled), and an
    /// `AtLeast(n)` rule with 1 ≤ n ≤ members.
    pub fn validate(&self) -> Result<(), Vec<DefinitionError>> {
        let mut problems = Vec::new();
        if self.steps.is_empty() {
            problems.push(DefinitionError::NoSteps);
        }
        for (step, def) in self.steps.iter().enumerate() {
            if def.name_ja.trim().is_empty() || def.name_en.trim().is_empty() {
                problems.push(DefinitionError::EmptyName { step });
            }
            let seats = def.kind.seats();
            let blank = seats.iter().any(|a| match a {
                Assignee::User(s) | Assignee::Role(s) => s.trim().is_empty(),
            });
            if blank {
                problems.push(DefinitionError::BlankAssignee { step });
            }
            let mut seen: Vec<&str> = Vec::new();
            for seat in seats {
                if let Assignee::User(id) = seat {
                    if seen.contains(&id.as_str()) {
                        problems.push(DefinitionError::DuplicateMember {
                            step,
                            user_id: id.clone(),
                        });
                    } else {
                        seen.push(id);
                    }
                }
            }
            if let StepKind::Consultation { members, rule } = &def.kind {
                if members.is_empty() {
                    problems.push(DefinitionError::NoMembers { step });
                }
                match *rule {
                    CompletionRule::AtLeast(0) => {
                        problems.push(DefinitionError::AtLeastZero { step });
                    }
                    CompletionRule::AtLeast(n)
                        if usize::try_from(n).map_or(true, |n| n > members.len()) =>
                    {
                        problems.push(DefinitionError::AtLeastTooMany {
                            step,
                            at_least: n,
                            members: members.len(),
                        });
                    }
                    _ => {}
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// 代決: while the principal is absent, the delegate may act on the principal's seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// The user who is absent.
    pub principal: String,
    /// The user who acts for them.
    pub delegate: String,
    /// Start of the absence (inclusive).
    pub from: DateTime<Utc>,
    /// End of the absence (exclusive).
    pub until: DateTime<Utc>,
}

impl Delegation {
    /// Whether the delegation is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && now < self.until
    }
}

/// The signed-in staff member who acts, with their roles in the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: String,
    pub roles: Vec<String>,
}

/// What an approver decides at their step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// 承認 (or, in a consultation, 同意).
    Approve,
    /// 否決: the chain, and so the application, is to be rejected (see the module rules
    /// for consultations).
    Reject { reason: String },
    /// 差戻し to an earlier step (0-based, below the current one).
    SendBack { to_step: usize, reason: String },
}

impl Decision {
    /// The reason given, if the decision carries one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Approve => None,
            Decision::Reject { reason } | Decision::SendBack { reason, .. } => Some(reason),
        }
    }
}

/// Where the chain as a whole stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Pending,
    Approved,
    Rejected,
}

/// One decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The step it was made at (0-based).
    pub step: usize,
    /// The seat of that step it took (index into [`StepKind::seats`]).
    pub seat: usize,
    /// Who acted.
    pub user_id: String,
    /// The absent approver the actor stood in for (代決), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(flatten)]
    pub decision: Decision,
    pub at: DateTime<Utc>,
}

impl DecisionRecord {
    /// The person the decision counts for: the principal under 代決, else the actor.
    pub fn person(&self) -> &str {
        self.on_behalf_of.as_deref().unwrap_or(&self.user_id)
    }
}

/// How far a chain has got, stored by the caller as JSON next to the application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProgress {
    /// The step being decided (0-based); once the chain has an outcome, the step where
    /// it was reached.
    pub current_step: usize,
    /// When the current step started, if the chain has moved at all; for the first step
    /// the caller knows (the start of the review).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<DateTime<Utc>>,
    /// The decisions that count: those of the steps up to the current one, without the
    /// ones a send-back undid.
    pub decisions: Vec<DecisionRecord>,
    /// Every decision ever made, in order, including send-backs and undone decisions.
    pub history: Vec<DecisionRecord>,
    pub outcome: Outcome,
}

impl ChainProgress {
    /// A chain that has not started: at the first step, nothing decided.
    pub fn new() -> ChainProgress {
        ChainProgress::default()
    }

    /// The decisions that count for one step.
    pub fn decisions_at(&self, step: usize) -> impl Iterator<Item = &DecisionRecord> + '_ {
        self.decisions.iter().filter(move |d| d.step == step)
    }

    /// The reason of the rejection that decided the chain, for the notice of decision.
    pub fn rejection_reason(&self) -> Option<&str> {
        if self.outcome != Outcome::Rejected {
            return None;
        }
        self.decisions
            .iter()
            .rev()
            .find(|d| matches!(d.decision, Decision::Reject { .. }))
            .and_then(|d| d.decision.reason())
    }
}

/// Why [`act`] refused. `NotYourStep` is forbidden (403); `AlreadyDecided`,
/// `ChainFinished` and `InvalidSendBack` conflict with the progress (409);
/// `ReasonRequired` is an incomplete request (422); `InvalidDefinition` and
/// `ProgressMismatch` mean stored data is wrong (500, logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "step {step} is not this user's to decide; it may be decided by {}",
        list(may_act)
    )]
    NotYourStep { step: usize, may_act: Vec<Assignee> },
    #[error("user {user_id:?} has already decided at step {step}")]
    AlreadyDecided { step: usize, user_id: String },
    #[error("the approval chain is already finished ({outcome:?})")]
    ChainFinished { outcome: Outcome },
    #[error(
        "cannot send back from step {current_step} to step {to_step}: only to an earlier step"
    )]
    InvalidSendBack { to_step: usize, current_step: usize },
    #[error("a rejection or send-back needs a reason")]
    ReasonRequired,
    #[error("the approval chain definition is invalid")]
    InvalidDefinition(Vec<DefinitionError>),
    #[error("the stored progress does not fit the chain definition")]
    ProgressMismatch,
}

fn list(assignees: &[Assignee]) -> String {
    let names: Vec<String> = assignees.iter().map(Assignee::to_string).collect();
    names.join(", ")
}

impl ChainError {
    /// A stable code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ChainError::NotYourStep { .. } => "not-your-step",
            ChainError::AlreadyDecided { .. } => "already-decided",
            ChainError::ChainFinished { .. } => "chain-finished",
            ChainError::InvalidSendBack { .. } => "invalid-send-back",
            ChainError::ReasonRequired => "reason-required",
            ChainError::InvalidDefinition(_) => "invalid-chain-definition",
            ChainError::ProgressMismatch => "chain-progress-mismatch",
        }
    }

    /// The refusal in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            ChainError::NotYourStep { step, may_act } => {
                let names: Vec<String> = may_act.iter().map(Assignee::label_ja).collect();
                format!(
                    "第{}段階の決裁権限がありません。決裁できるのは{}です",
                    step + 1,
                    names.join("、")
                )
            }
            ChainError::AlreadyDecided { step, user_id } => format!(
                "ユーザー「{user_id}」は第{}段階で既に決裁しています",
                step + 1
            ),
            ChainError::ChainFinished { outcome } => match outcome {
                Outcome::Approved => "この決裁は既に承認で終了しています".to_owned(),
                Outcome::Rejected => "この決裁は既に否決で終了しています".to_owned(),
                Outcome::Pending => "この決裁は既に終了しています".to_owned(),
            },
            ChainError::InvalidSendBack {
                to_step,
                current_step,
            } => format!(
                "第{}段階から第{}段階へは差し戻せません。差戻しは前の段階にのみできます",
                current_step + 1,
                to_step + 1
            ),
            ChainError::ReasonRequired => "否決・差戻しには理由の記載が必要です".to_owned(),
            ChainError::InvalidDefinition(problems) => {
                let lines: Vec<String> = problems.iter().map(|p| p.message_ja()).collect();
                format!("決裁経路の設定に誤りがあります: {}", lines.join("、"))
            }
            ChainError::ProgressMismatch => {
                "保存されている決裁の進行状況が決裁経路と一致しません".to_owned()
            }
        }
    }

    /// The refusal in English.
    pub fn message_en(&self) -> String {
        match self {
            ChainError::NotYourStep { step, may_act } => {
                let names: Vec<String> = may_act.iter().map(Assignee::label_en).collect();
                format!(
                    "you may not decide step {}; it may be decided by {}",
                    step + 1,
                    names.join(", ")
                )
            }
            ChainError::AlreadyDecided { step, user_id } => {
                format!("user {user_id:?} has already decided at step {}", step + 1)
            }
            ChainError::ChainFinished { outcome } => match outcome {
                Outcome::Approved => "the approval chain has already ended in approval".to_owned(),
                Outcome::Rejected => "the approval chain has already ended in rejection".to_owned(),
                Outcome::Pending => "the approval chain has already ended".to_owned(),
            },
            ChainError::InvalidSendBack {
                to_step,
                current_step,
            } => format!(
                "cannot send back from step {} to step {}: only to an earlier step",
                current_step + 1,
                to_step + 1
            ),
            ChainError::ReasonRequired => "a rejection or send-back needs a reason".to_owned(),
            ChainError::InvalidDefinition(problems) => {
                let lines: Vec<String> = problems.iter().map(|p| p.message_en()).collect();
                format!("the approval chain is set up wrongly: {}", lines.join("; "))
            }
            ChainError::ProgressMismatch => {
                "the stored progress of the approval chain does not fit its definition".to_owned()
            }
        }
    }
}

/// The seats of the current step that nobody has taken yet, in order, without repeats:
/// who the review queue should show the application to. Empty once the chain has an
/// outcome. Delegates are not included; see [`who_may_act_now`].
pub fn who_may_act(def: &ChainDefinition, progress: &ChainProgress) -> Vec<Assignee> {
    if progress.outcome != Outcome::Pending {
        return Vec::new();
    }
    let Some(step) = def.steps.get(progress.current_step) else {
        return Vec::new();
    };
    let mut open: Vec<Assignee> = Vec::new();
    for (seat, assignee) in step.kind.seats().iter().enumerate() {
        let taken = progress
            .decisions_at(progress.current_step)
            .any(|d| d.seat == seat);
        if !taken && !open.contains(assignee) {
            open.push(assignee.clone());
        }
    }
    open
}

/// [`who_may_act`], plus the delegates of the listed users whose delegation is in force
/// at `now`.
pub fn who_may_act_now(
    def: &ChainDefinition,
    progress: &ChainProgress,
    delegations: &[Delegation],
    now: DateTime<Utc>,
) -> Vec<Assignee> {
    let mut who = who_may_act(def, progress);
    let principals: Vec<String> = who
        .iter()
        .filter_map(|a| match a {
            Assignee::User(id) => Some(id.clone()),
            Assignee::Role(_) => None,
        })
        .collect();
    for d in delegations {
        let delegate = Assignee::User(d.delegate.clone());
        if d.is_active(now) && principals.contains(&d.principal) && !who.contains(&delegate) {
            who.push(delegate);
        }
    }
    who
}

/// When the current step is due: `step_started_at` plus the step's `due_days` in
/// calendar days (開庁日 need a holiday calendar, which the caller applies if it wants).
/// `None` when the step has no limit or the chain has an outcome.
pub fn due_at(
    def: &ChainDefinition,
    progress: &ChainProgress,
    step_started_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if progress.outcome != Outcome::Pending {
        return None;
    }
    let days = def.steps.get(progress.current_step)?.due_days?;
    step_started_at.checked_add_signed(Duration::try_days(i64::from(days))?)
}

/// Checks that stored progress fits the definition before acting on it, so that a
/// changed definition or a damaged record is reported instead of misread.
fn check_progress(progress: &ChainProgress, seat_count: usize) -> Result<(), ChainError> {
    let current = progress.current_step;
    let mut seats_taken: Vec<usize> = Vec::new();
    for d in &progress.decisions {
        let fits = d.step < current
            || (d.step == current
                && d.seat < seat_count
                && !seats_taken.contains(&d.seat)
                && !matches!(d.decision, Decision::SendBack { .. }));
        if !fits {
            return Err(ChainError::ProgressMismatch);
        }
        if d.step == current {
            seats_taken.push(d.seat);
        }
    }
    Ok(())
}

/// Records `actor`'s decision at the current step and moves the chain on; returns the
/// chain's outcome afterwards. On any error `progress` is left exactly as it was.
///
/// The actor takes a seat of the current step that is still open: their own first (a
/// seat naming them before a seat by role, so that role seats stay open for others),
/// then, under 代決, a seat naming a principal whose delegation to them is in force at
/// `now`. Refused with [`ChainError::NotYourStep`] (listing who may act) when there is no
/// such seat, and [`ChainError::AlreadyDecided`] when the person has decided already.
pub fn act(
    def: &ChainDefinition,
    progress: &mut ChainProgress,
    actor: &Actor,
    decision: Decision,
    delegations: &[Delegation],
    now: DateTime<Utc>,
) -> Result<Outcome, ChainError> {
    def.validate().map_err(ChainError::InvalidDefinition)?;
    if progress.outcome != Outcome::Pending {
        return Err(ChainError::ChainFinished {
            outcome: progress.outcome,
        });
    }
    let step_index = progress.current_step;
    let step = def
        .steps
        .get(step_index)
        .ok_or(ChainError::ProgressMismatch)?;
    let seats = step.kind.seats();
    check_progress(progress, seats.len())?;

    let taken: Vec<usize> = progress.decisions_at(step_index).map(|d| d.seat).collect();
    let decided: Vec<&str> = progress
        .decisions_at(step_index)
        .map(DecisionRecord::person)
        .collect();

    // The actor in person first, then each absent principal they stand in for.
    let mut principals: Vec<&str> = Vec::new();
    for d in delegations {
        if d.delegate == actor.user_id
            && d.principal != actor.user_id
            && d.is_active(now)
            && !principals.contains(&d.principal.as_str())
        {
            principals.push(&d.principal);
        }
    }
    let persons = std::iter::once(None).chain(principals.into_iter().map(Some));

    let mut already: Option<String> = None;
    let mut chosen: Option<(usize, Option<String>)> = None;
    for principal in persons {
        let entitled = |a: &Assignee| match principal {
            None => a.admits(&actor.user_id, &actor.roles),
            Some(p) => matches!(a, Assignee::User(id) if id == p),
        };
        if !seats.iter().any(entitled) {
            continue;
        }
        let person = principal.unwrap_or(&actor.user_id);
        if decided.contains(&person) {
            already.get_or_insert_with(|| person.to_owned());
            continue;
        }
        let open = |&(i, a): &(usize, &Assignee)| !taken.contains(&i) && entitled(a);
        let named_first = seats
            .iter()
            .enumerate()
            .filter(open)
            .find(|(_, a)| matches!(a, Assignee::User(_)))
            .or_else(|| seats.iter().enumerate().find(open));
        if let Some((seat, _)) = named_first {
            chosen = Some((seat, principal.map(str::to_owned)));
            break;
        }
    }
    let Some((seat, on_behalf_of)) = chosen else {
        return Err(match already {
            Some(user_id) => ChainError::AlreadyDecided {
                step: step_index,
                user_id,
            },
            None => ChainError::NotYourStep {
                step: step_index,
                may_act: who_may_act(def, progress),
            },
        });
    };

    match &decision {
        Decision::Reject { reason } | Decision::SendBack { reason, .. }
            if reason.trim().is_empty() =>
        {
            return Err(ChainError::ReasonRequired);
        }
        Decision::SendBack { to_step, .. } if *to_step >= step_index => {
            return Err(ChainError::InvalidSendBack {
                to_step: *to_step,
                current_step: step_index,
            });
        }
        _ => {}
    }

    let record = DecisionRecord {
        step: step_index,
        seat,
        user_id: actor.user_id.clone(),
        on_behalf_of,
        decision,
        at: now,
    };
    progress.history.push(record.clone());
    match record.decision {
        Decision::SendBack { to_step, .. } => {
            progress.decisions.retain(|d| d.step < to_step);
            progress.current_step = to_step;
            progress.step_started_at = Some(now);
        }
        Decision::Approve | Decision::Reject { .. } => {
            progress.decisions.push(record);
            let approvals = progress
                .decisions_at(step_index)
                .filter(|d| d.decision == Decision::Approve)
                .count();
            let open_seats = seats.len().saturating_sub(taken.len() + 1);
            let required = step.kind.required_approvals();
            if approvals >= required {
                if step_index + 1 >= def.steps.len() {
                    progress.outcome = Outcome::Approved;
                } else {
                    progress.current_step = step_index + 1;
                    progress.step_started_at = Some(now);
                }
            } else if approvals + open_seats < required {
                progress.outcome = Outcome::Rejected;
            }
        }
    }
    Ok(progress.outcome)
}
