//! The life of one application (申請): its states, the commands that move it between them,
//! and the history that records every move. [`transition`] is the one place the rules
//! live; storage calls it before writing a new state, and [`replay`] checks that a stored
//! history could only have come from those same rules. The facts the rules depend on but
//! this module cannot know (has the fee been paid, has the approval chain finished) come
//! in as [`Guards`] from the caller, so the rules stay pure and property-testable.
//!
//! The table, in one place (actors in brackets):
//!
//! | from | command | to |
//! | --- | --- | --- |
//! | draft | submit \[applicant\] | submitted |
//! | submitted | receive \[reviewer, system\] | received |
//! | received | start_review \[reviewer\] | in_review |
//! | received, in_review | return_for_correction \[reviewer\] | returned |
//! | returned | resubmit \[applicant\] | submitted |
//! | in_review | approve \[approver, system\] | approved |
//! | received, in_review | reject \[approver, system\] | rejected |
//! | approved | complete \[reviewer, system\] | completed |
//! | submitted, received, in_review, returned | withdraw \[applicant\] | withdrawn |
//!
//! Choices the issue left open, and why:
//! - A resubmitted application goes back to `submitted`, not `received`: the corrected
//!   application is a new arrival that staff check for completeness again, and a fee
//!   required before review is checked again on the way in. It keeps its 受付番号.
//! - A draft cannot be withdrawn: it never reached the authority, so there is nothing to
//!   取下げ; the caller simply deletes it.
//! - Reject (却下) is allowed from `received` as well as `in_review`, because an
//!   application with a formal defect may be refused without a substantive review
//!   (行政手続法第7条). Approval always needs a review and a complete chain.
//! - When payment is required before review, it is checked both on receiving and on
//!   starting the review, so no review ever starts on an unpaid application.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationState {
    /// Being filled in by the applicant; not yet seen by the authority.
    Draft,
    /// Sent by the applicant; a 受付番号 has been issued.
    Submitted,
    /// Accepted by staff as complete enough to handle (受理).
    Received,
    /// Under review and in the approval chain (審査中).
    InReview,
    /// Sent back to the applicant for correction (補正要求).
    Returned,
    /// Approved (承認・許可); may still wait for payment or issuing.
    Approved,
    /// Refused (却下), with reasons. Final.
    Rejected,
    /// Finished: approved and everything owed done. Final.
    Completed,
    /// Withdrawn by the applicant (取下げ) before a decision. Final.
    Withdrawn,
}

impl ApplicationState {
    /// Every state, in the order of the usual path.
    pub const ALL: [ApplicationState; 9] = [
        ApplicationState::Draft,
        ApplicationState::Submitted,
        ApplicationState::Received,
        ApplicationState::InReview,
        ApplicationState::Returned,
        ApplicationState::Approved,
        ApplicationState::Rejected,
        ApplicationState::Completed,
        ApplicationState::Withdrawn,
    ];

    /// The stable name used in JSON, URLs and the database (`in_review`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationState::Draft => "draft",
            ApplicationState::Submitted => "submitted",
            ApplicationState::Received => "received",
            ApplicationState::InReview => "in_review",
            ApplicationState::Returned => "returned",
            ApplicationState::Approved => "approved",
            ApplicationState::Rejected => "rejected",
            ApplicationState::Completed => "completed",
            ApplicationState::Withdrawn => "withdrawn",
        }
    }

    /// Whether no command can move the application any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ApplicationState::Rejected | ApplicationState::Completed | ApplicationState::Withdrawn
        )
    }

    /// Whether the authority has decided (approved or rejected, and what follows approval).
    pub fn is_decided(self) -> bool {
        matches!(
            self,
            ApplicationState::Approved | ApplicationState::Rejected | ApplicationState::Completed
        )
    }

    /// The name residents and staff see, in Japanese.
    pub fn label_ja(self) -> &'static str {
        match self {
            ApplicationState::Draft => "下書き",
            ApplicationState::Submitted => "申請済み",
            ApplicationState::Received => "受付済み",
            ApplicationState::InReview => "審査中",
            ApplicationState::Returned => "補正依頼中",
            ApplicationState::Approved => "承認",
            ApplicationState::Rejected => "却下",
            ApplicationState::Completed => "完了",
            ApplicationState::Withdrawn => "取下げ",
        }
    }

    /// The name residents and staff see, in English.
    pub fn label_en(self) -> &'static str {
        match self {
            ApplicationState::Draft => "Draft",
            ApplicationState::Submitted => "Submitted",
            ApplicationState::Received => "Received",
            ApplicationState::InReview => "In review",
            ApplicationState::Returned => "Returned for correction",
            ApplicationState::Approved => "Approved",
            ApplicationState::Rejected => "Rejected",
            ApplicationState::Completed => "Completed",
            ApplicationState::Withdrawn => "Withdrawn",
        }
    }
}

impl fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`ApplicationState::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("申請の状態「{0}」はありません / unknown application state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for ApplicationState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApplicationState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// Who is acting, as far as the rules care; the caller maps signed-in users and roles to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The resident or business that made the application.
    Applicant,
    /// Staff who receive and review applications.
    Reviewer,
    /// Staff who decide, through the approval chain.
    Approver,
    /// The platform itself, acting on a fact (a payment settled, a chain completed).
    System,
}

impl ActorKind {
    /// Every kind of actor.
    pub const ALL: [ActorKind; 4] = [
        ActorKind::Applicant,
        ActorKind::Reviewer,
        ActorKind::Approver,
        ActorKind::System,
    ];

    /// The stable name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Applicant => "applicant",
            ActorKind::Reviewer => "reviewer",
            ActorKind::Approver => "approver",
            ActorKind::System => "system",
        }
    }

    fn label_ja(self) -> &'static str {
        match self {
            ActorKind::Applicant => "申請者",
            ActorKind::Reviewer => "審査担当者",
            ActorKind::Approver => "決裁者",
            ActorKind::System => "システム",
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command without its payload: what [`Command::name`] names and a [`HistoryEntry`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Submit,
    Receive,
    StartReview,
    ReturnForCorrection,
    Resubmit,
    Approve,
    Reject,
    Complete,
    Withdraw,
}

impl CommandKind {
    /// Every command.
    pub const ALL: [CommandKind; 9] = [
        CommandKind::Submit,
        CommandKind::Receive,
        CommandKind::StartReview,
        CommandKind::ReturnForCorrection,
        CommandKind::Resubmit,
        CommandKind::Approve,
        CommandKind::Reject,
        CommandKind::Complete,
        CommandKind::Withdraw,
    ];

    /// The stable name used in JSON, URLs and the history (`return_for_correction`).
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Submit => "submit",
            CommandKind::Receive => "receive",
            CommandKind::StartReview => "start_review",
            CommandKind::ReturnForCorrection => "return_for_correction",
            CommandKind::Resubmit => "resubmit",
            CommandKind::Approve => "approve",
            CommandKind::Reject => "reject",
            CommandKind::Complete => "complete",
            CommandKind::Withdraw => "withdraw",
        }
    }

    /// What staff and residents see for the action, in Japanese.
    pub fn label_ja(self) -> &'static str {
        match self {
            CommandKind::Submit => "申請",
            CommandKind::Receive => "受付",
            CommandKind::StartReview => "審査開始",
            CommandKind::ReturnForCorrection => "補正依頼",
            CommandKind::Resubmit => "再申請",
            CommandKind::Approve => "承認",
            CommandKind::Reject => "却下",
            CommandKind::Complete => "完了",
            CommandKind::Withdraw => "取下げ",
        }
    }

    /// What staff and residents see for the action, in English.
    pub fn label_en(self) -> &'static str {
        match self {
            CommandKind::Submit => "Submit",
            CommandKind::Receive => "Receive",
            CommandKind::StartReview => "Start review",
            CommandKind::ReturnForCorrection => "Return for correction",
            CommandKind::Resubmit => "Resubmit",
            CommandKind::Approve => "Approve",
            CommandKind::Reject => "Reject",
            CommandKind::Complete => "Complete",
            CommandKind::Withdraw => "Withdraw",
        }
    }

    /// Whether the command must carry at least one non-blank reason.
    pub fn requires_reason(self) -> bool {
        matches!(self, CommandKind::ReturnForCorrection | CommandKind::Reject)
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command name that is not one of [`CommandKind::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("申請への操作「{0}」はありません / unknown application command {0:?}")]
pub struct UnknownCommand(pub String);

impl FromStr for CommandKind {
    type Err = UnknownCommand;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommandKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownCommand(s.to_owned()))
    }
}

/// Something someone asks to do to an application, with what the rules need to judge it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Submit,
    Receive,
    StartReview,
    /// 補正要求: the reviewer's reasons are shown to the applicant, one item each.
    ReturnForCorrection {
        reasons: Vec<String>,
    },
    Resubmit,
    Approve,
    /// 却下: the reasons go into the notice of decision (理由の提示, 行政手続法第8条).
    Reject {
        reasons: Vec<String>,
    },
    Complete,
    Withdraw {
        reason: Option<String>,
    },
}

impl Command {
    /// The command without its payload.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Submit => CommandKind::Submit,
            Command::Receive => CommandKind::Receive,
            Command::StartReview => CommandKind::StartReview,
            Command::ReturnForCorrection { .. } => CommandKind::ReturnForCorrection,
            Command::Resubmit => CommandKind::Resubmit,
            Command::Approve => CommandKind::Approve,
            Command::Reject { .. } => CommandKind::Reject,
            Command::Complete => CommandKind::Complete,
            Command::Withdraw { .. } => CommandKind::Withdraw,
        }
    }

    /// The stable name of the command (`return_for_correction`).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The reason to record in the history: the reasons one per line, the withdrawal
    /// reason if given, or `None`. Blank reasons are left out.
    pub fn reason(&self) -> Option<String> {
        let lines: Vec<&str> = match self {
            Command::ReturnForCorrection { reasons } | Command::Reject { reasons } => {
                reasons.iter().map(|r| r.trim()).collect()
            }
            Command::Withdraw { reason } => reason.iter().map(|r| r.trim()).collect(),
            _ => Vec::new(),
        };
        let lines: Vec<&str> = lines.into_iter().filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            None
        } else {
            Some(lines.join("\n"))
        }
    }
}

/// Whether a list of reasons says anything: at least one, and none of them blank.
fn reasons_given(reasons: &[String]) -> bool {
    !reasons.is_empty() && reasons.iter().all(|r| !r.trim().is_empty())
}

/// Facts about the application that the rules depend on and the caller knows: the
/// procedure's fee settings, the payment's state and the approval chain's outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Guards {
    /// The procedure requires the fee to be paid before the application is reviewed.
    pub payment_required_before_review: bool,
    /// The procedure requires the fee to be paid after approval (事後決済).
    pub payment_required_after_approval: bool,
    /// The fee has been paid in full (or there is none to pay).
    pub payment_settled: bool,
    /// The approval chain (電子決裁) has reached the outcome "approved".
    pub chain_complete: bool,
}

/// Why a command was refused. Each variant is one HTTP answer: `NotAllowed` is a conflict
/// with the current state (409), `WrongActor` a forbidden action (403), `ReasonRequired`
/// an incomplete request (422), `PaymentRequired` and `ChainIncomplete` conflicts that
/// clear once the payment or the approval chain is done (409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("command {command} is not allowed from state {from}")]
    NotAllowed {
        from: ApplicationState,
        command: CommandKind,
    },
    #[error("command {command} may not be done by {actor}")]
    WrongActor {
        command: CommandKind,
        actor: ActorKind,
    },
    #[error("command {command} needs at least one reason, and no blank ones")]
    ReasonRequired { command: CommandKind },
    #[error("command {command} needs the fee to be paid first")]
    PaymentRequired { command: CommandKind },
    #[error("command {command} needs the approval chain to be complete")]
    ChainIncomplete { command: CommandKind },
}

impl TransitionError {
    /// A stable code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::NotAllowed { .. } => "transition-not-allowed",
            TransitionError::WrongActor { .. } => "wrong-actor",
            TransitionError::ReasonRequired { .. } => "reason-required",
            TransitionError::PaymentRequired { .. } => "payment-required",
            TransitionError::ChainIncomplete { .. } => "approval-chain-incomplete",
        }
    }

    /// The refusal in Japanese, for the person who asked.
    pub fn message_ja(&self) -> String {
        match self {
            TransitionError::NotAllowed { from, command } => format!(
                "「{}」の申請に「{}」はできません",
                from.label_ja(),
                command.label_ja()
            ),
            TransitionError::WrongActor { command, actor } => format!(
                "{}は「{}」を行うことができません",
                actor.label_ja(),
                command.label_ja()
            ),
            TransitionError::ReasonRequired { command } => {
                format!("「{}」には理由の記載が必要です", command.label_ja())
            }
            TransitionError::PaymentRequired { command } => format!(
                "手数料の納付が確認できないため「{}」はできません",
                command.label_ja()
            ),
            TransitionError::ChainIncomplete { command } => format!(
                "決裁が完了していないため「{}」はできません",
                command.label_ja()
            ),
        }
    }

    /// The refusal in English, for the person who asked.
    pub fn message_en(&self) -> String {
        match self {
            TransitionError::NotAllowed { from, command } => format!(
                "an application that is {} cannot be given \"{}\"",
                from.label_en().to_lowercase(),
                command.label_en()
            ),
            TransitionError::WrongActor { command, actor } => {
                format!("\"{}\" cannot be done by the {actor}", command.label_en())
            }
            TransitionError::ReasonRequired { command } => {
                format!("\"{}\" needs its reasons written out", command.label_en())
            }
            TransitionError::PaymentRequired { command } => format!(
                "\"{}\" cannot be done until the fee has been paid",
                command.label_en()
            ),
            TransitionError::ChainIncomplete { command } => format!(
                "\"{}\" cannot be done until the approval chain is complete",
                command.label_en()
            ),
        }
    }
}

/// One row of the transition table: where a command leads and who may give it.
struct Rule {
    to: ApplicationState,
    actors: &'static [ActorKind],
}

const APPLICANT: &[ActorKind] = &[ActorKind::Applicant];
const REVIEWER: &[ActorKind] = &[ActorKind::Reviewer];
const REVIEWER_OR_SYSTEM: &[ActorKind] = &[ActorKind::Reviewer, ActorKind::System];
const APPROVER_OR_SYSTEM: &[ActorKind] = &[ActorKind::Approver, ActorKind::System];

/// The transition table of the module documentation, without guards.
fn rule(from: ApplicationState, command: CommandKind) -> Option<Rule> {
    use ApplicationState as S;
    use CommandKind as C;
    let (to, actors) = match (from, command) {
        (S::Draft, C::Submit) => (S::Submitted, APPLICANT),
        (S::Submitted, C::Receive) => (S::Received, REVIEWER_OR_SYSTEM),
        (S::Received, C::StartReview) => (S::InReview, REVIEWER),
        (S::Received | S::InReview, C::ReturnForCorrection) => (S::Returned, REVIEWER),
        (S::Returned, C::Resubmit) => (S::Submitted, APPLICANT),
        (S::InReview, C::Approve) => (S::Approved, APPROVER_OR_SYSTEM),
        (S::Received | S::InReview, C::Reject) => (S::Rejected, APPROVER_OR_SYSTEM),
        (S::Approved, C::Complete) => (S::Completed, REVIEWER_OR_SYSTEM),
        (S::Submitted | S::Received | S::InReview | S::Returned, C::Withdraw) => {
            (S::Withdrawn, APPLICANT)
        }
        _ => return None,
    };
    Some(Rule { to, actors })
}

/// The state a command leads to from `from`, if the table has such a move at all
/// (who may give it and the guards aside).
pub fn next_state(from: ApplicationState, command: CommandKind) -> Option<ApplicationState> {
    rule(from, command).map(|r| r.to)
}

/// The kinds of actor who may give `command` in state `from`; empty when the table has
/// no such move.
pub fn allowed_actors(from: ApplicationState, command: CommandKind) -> &'static [ActorKind] {
    rule(from, command).map_or(&[], |r| r.actors)
}

/// The commands an actor of this kind may give in state `from`, guards aside: what a
/// screen offers as buttons. A listed command may still be refused by its guards.
pub fn available_commands(from: ApplicationState, actor: ActorKind) -> Vec<CommandKind> {
    CommandKind::ALL
        .into_iter()
        .filter(|&c| allowed_actors(from, c).contains(&actor))
        .collect()
}

/// Checks `command`, given by `actor`, against the state machine and the guards, and
/// returns the state it leads to. Checks go from the most basic out: is there such a
/// move from this state, may this actor make it, are the reasons written, are the fee
/// and the approval chain where they must be.
pub fn transition(
    from: ApplicationState,
    command: &Command,
    actor: ActorKind,
    guards: &Guards,
) -> Result<ApplicationState, TransitionError> {
    let kind = command.kind();
    let rule = rule(from, kind).ok_or(TransitionError::NotAllowed {
        from,
        command: kind,
    })?;
    if !rule.actors.contains(&actor) {
        return Err(TransitionError::WrongActor {
            command: kind,
            actor,
        });
    }
    match command {
        Command::ReturnForCorrection { reasons } | Command::Reject { reasons }
            if !reasons_given(reasons) =>
        {
            return Err(TransitionError::ReasonRequired { command: kind });
        }
        _ => {}
    }
    let unpaid = !guards.payment_settled;
    match kind {
        CommandKind::Receive | CommandKind::StartReview
            if guards.payment_required_before_review && unpaid =>
        {
            Err(TransitionError::PaymentRequired { command: kind })
        }
        CommandKind::Complete if guards.payment_required_after_approval && unpaid => {
            Err(TransitionError::PaymentRequired { command: kind })
        }
        CommandKind::Approve if !guards.chain_complete => {
            Err(TransitionError::ChainIncomplete { command: kind })
        }
        _ => Ok(rule.to),
    }
}

/// One move in an application's life, as stored: who did what, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub from: ApplicationState,
    pub to: ApplicationState,
    /// The command given; serialised as its name (`return_for_correction`).
    pub command: CommandKind,
    /// The user (or, for [`ActorKind::System`], the component) that gave the command.
    pub actor_id: String,
    pub actor_kind: ActorKind,
    pub at: DateTime<Utc>,
    /// The reasons given with the command, one per line (see [`Command::reason`]).
    pub reason: Option<String>,
}

/// Runs [`transition`] and, when it succeeds, returns the history entry to store with the
/// new state (`entry.to`). Storage should write both in one transaction.
pub fn apply(
    from: ApplicationState,
    command: &Command,
    actor_kind: ActorKind,
    actor_id: &str,
    guards: &Guards,
    at: DateTime<Utc>,
) -> Result<HistoryEntry, TransitionError> {
    let to = transition(from, command, actor_kind, guards)?;
    Ok(HistoryEntry {
        from,
        to,
        command: command.kind(),
        actor_id: actor_id.to_owned(),
        actor_kind,
        at,
        reason: command.reason(),
    })
}

/// Why a stored history could not have come from the state machine. `index` is the
/// position of the first bad entry (0-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("history entry {index} starts from {found}, but the application was {expected}")]
    Discontinuity {
        index: usize,
        expected: ApplicationState,
        found: ApplicationState,
    },
    #[error("history entry {index}: {source}")]
    Transition {
        index: usize,
        source: TransitionError,
    },
    #[error("history entry {index} leads to {found}, but the command leads to {expected}")]
    WrongTarget {
        index: usize,
        expected: ApplicationState,
        found: ApplicationState,
    },
    #[error("history entry {index} is dated before the entry preceding it")]
    OutOfOrder { index: usize },
}

impl ReplayError {
    /// A stable code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ReplayError::Discontinuity { .. } => "history-discontinuity",
            ReplayError::Transition { .. } => "history-invalid-transition",
            ReplayError::WrongTarget { .. } => "history-wrong-target",
            ReplayError::OutOfOrder { .. } => "history-out-of-order",
        }
    }

    /// The problem in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            ReplayError::Discontinuity {
                index,
                expected,
                found,
            } => format!(
                "履歴の{}件目は「{}」からの操作ですが、その時点の状態は「{}」です",
                index + 1,
                found.label_ja(),
                expected.label_ja()
            ),
            ReplayError::Transition { index, source } => {
                format!("履歴の{}件目: {}", index + 1, source.message_ja())
            }
            ReplayError::WrongTarget {
                index,
                expected,
                found,
            } => format!(
                "履歴の{}件目の結果は「{}」ですが、その操作では「{}」になるはずです",
                index + 1,
                found.label_ja(),
                expected.label_ja()
            ),
            ReplayError::OutOfOrder { index } => {
                format!("履歴の{}件目の日時が前の件より前です", index + 1)
            }
        }
    }

    /// The problem in English.
    pub fn message_en(&self) -> String {
        match self {
            ReplayError::Discontinuity {
                index,
                expected,
                found,
            } => format!(
                "history entry {} starts from \"{}\", but the application was \"{}\"",
                index + 1,
                found.label_en(),
                expected.label_en()
            ),
            ReplayError::Transition { index, source } => {
                format!("history entry {}: {}", index + 1, source.message_en())
            }
            ReplayError::WrongTarget {
                index,
                expected,
                found,
            } => format!(
                "history entry {} ends in \"{}\", but its command leads to \"{}\"",
                index + 1,
                found.label_en(),
                expected.label_en()
            ),
            ReplayError::OutOfOrder { index } => {
                format!(
                    "history entry {} is dated before the entry preceding it",
                    index + 1
                )
            }
        }
    }
}

/// Checks that a stored history, oldest first, is one the state machine allows from
/// [`ApplicationState::Draft`], and returns the state it ends in. The guards (payment,
/// chain) are facts of their moment that the history does not keep, so they are not
/// checked again; everything else is: the chain of states, the table, the actor, the
/// reasons, the target state and the order in time.
pub fn replay(entries: &[HistoryEntry]) -> Result<ApplicationState, ReplayError> {
    let mut state = ApplicationState::Draft;
    let mut previous_at: Option<DateTime<Utc>> = None;
    for (index, entry) in entries.iter().enumerate() {
        if entry.from != state {
            return Err(ReplayError::Discontinuity {
                index,
                expected: state,
                found: entry.from,
            });
        }
        let refuse = |source| ReplayError::Transition { index, source };
        let rule = rule(entry.from, entry.command).ok_or(refuse(TransitionError::NotAllowed {
            from: entry.from,
            command: entry.command,
        }))?;
        if !rule.actors.contains(&entry.actor_kind) {
            return Err(refuse(TransitionError::WrongActor {
                command: entry.command,
                actor: entry.actor_kind,
            }));
        }
        let has_reason = entry
            .reason
            .as_deref()
            .is_some_and(|r| !r.trim().is_empty());
        if entry.command.requires_reason() && !has_reason {
            return Err(refuse(TransitionError::ReasonRequired {
                command: entry.command,
            }));
        }
        if rule.to != entry.to {
            return Err(ReplayError::WrongTarget {
                index,
                expected: rule.to,
                found: entry.to,
            });
        }
        if previous_at.is_some_and(|p| entry.at < p) {
            return Err(ReplayError::OutOfOrder { index });
        }
        previous_at = Some(entry.at);
        state = entry.to;
    }
    Ok(state)
}

/// Formats a 受付番号: the tenant's 全国地方公共団体コード, the year the tenant numbers
/// by (often the fiscal year, 年度) and the sequence number within that year, zero-padded
/// to six digits: `reception_number("222127", 2026, 42)` is `"222127-2026-000042"`.
/// The caller hands out `seq` (storage keeps one counter per tenant and year); the year
/// is expected to have four digits, which is what [`parse_reception_number`] reads back.
pub fn reception_number(tenant_code: &str, year: i32, seq: u64) -> String {
    format!("{tenant_code}-{year:04}-{seq:06}")
}

/// A 受付番号 taken apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReceptionNumber {
    /// The six-digit local government code, check digit verified.
    pub tenant_code: String,
    pub year: i32,
    pub seq: u64,
}

impl fmt::Display for ReceptionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&reception_number(&self.tenant_code, self.year, self.seq))
    }
}

impl FromStr for ReceptionNumber {
    type Err = ReceptionNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_reception_number(s)
    }
}

/// Why a 受付番号 typed or pasted by someone was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceptionNumberError {
    #[error("{input:?} is not a reception number of the form 222127-2026-000042")]
    Malformed { input: String },
    #[error("reception number {input:?}: {source}")]
    TenantCode {
        input: String,
        source: jp::localgov::LocalGovError,
    },
    #[error("reception number {input:?}: the year must have four digits")]
    Year { input: String },
    #[error("reception number {input:?}: the sequence number must have at least six digits")]
    Sequence { input: String },
}

impl ReceptionNumberError {
    /// A stable code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ReceptionNumberError::Malformed { .. } => "reception-number-malformed",
            ReceptionNumberError::TenantCode { .. } => "reception-number-tenant-code",
            ReceptionNumberError::Year { .. } => "reception-number-year",
            ReceptionNumberError::Sequence { .. } => "reception-number-sequence",
        }
    }

    /// The problem in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            ReceptionNumberError::Malformed { input } => {
                format!("「{input}」は受付番号の形 (例: 222127-2026-000042) になっていません")
            }
            ReceptionNumberError::TenantCode { input, .. } => {
                format!("受付番号「{input}」の先頭6桁が正しい地方公共団体コードではありません")
            }
            ReceptionNumberError::Year { input } => {
                format!("受付番号「{input}」の年は4桁で入力してください")
            }
            ReceptionNumberError::Sequence { input } => {
                format!("受付番号「{input}」の番号部分は6桁以上で入力してください")
            }
        }
    }

    /// The problem in English.
    pub fn message_en(&self) -> String {
        match self {
            ReceptionNumberError::Malformed { input } => {
                format!("{input:?} is not a reception number of the form 222127-2026-000042")
            }
            ReceptionNumberError::TenantCode { input, .. } => format!(
                "reception number {input:?} does not start with a valid local government code"
            ),
            ReceptionNumberError::Year { input } => {
                format!("reception number {input:?}: the year must have four digits")
            }
            ReceptionNumberError::Sequence { input } => format!(
                "reception number {input:?}: the sequence number must have at least six digits"
            ),
        }
    }
}

/// Reads a 受付番号 as residents type it when they ask about their application:
/// surrounding white space, full-width digits and dash look-alikes (`－`, `ー`, `−`) are
/// accepted; the structure is not guessed at. The tenant code's check digit is verified.
/// A sequence number longer than six digits has no leading zero, so every number has
/// exactly one written form and `parse(format(x)) == x`.
pub fn parse_reception_number(input: &str) -> Result<ReceptionNumber, ReceptionNumberError> {
    let normalized = jp::width::normalize_digits(input.trim());
    let malformed = || ReceptionNumberError::Malformed {
        input: input.to_owned(),
    };
    let mut parts = normalized.split('-');
    let (Some(tenant), Some(year), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(tenant) || !all_digits(year) || !all_digits(seq) {
        return Err(malformed());
    }
    if tenant.len() != 6 {
        return Err(malformed());
    }
    let code = jp::localgov::LocalGovCode::parse(tenant).map_err(|source| {
        ReceptionNumberError::TenantCode {
            input: input.to_owned(),
            source,
        }
    })?;
    let year_value = match year.parse::<i32>() {
        Ok(y) if year.len() == 4 => y,
        _ => {
            return Err(ReceptionNumberError::Year {
                input: input.to_owned(),
            })
        }
    };
    let sequence_error = || ReceptionNumberError::Sequence {
        input: input.to_owned(),
    };
    if seq.len() < 6 || (seq.len() > 6 && seq.starts_with('0')) {
        return Err(sequence_error());
    }
    let seq_value = seq.parse::<u64>().map_err(|_| sequence_error())?;
    Ok(ReceptionNumber {
        tenant_code: code.as_str().to_owned(),
        year: year_value,
        seq: seq_value,
    })
}
