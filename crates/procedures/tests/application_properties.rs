//! Property tests of the application state machine against a transition table written out
//! here independently from the issue, so that a slip in `transition` cannot hide behind
//! the same slip in the test.

use chrono::{DateTime, Duration, TimeZone, Utc};
use procedures::application::{
    apply, parse_reception_number, reception_number, replay, transition, ActorKind,
    ApplicationState, Command, Guards, HistoryEntry, ReceptionNumber, TransitionError,
};
use proptest::prelude::*;

use ActorKind::{Applicant, Approver, Reviewer, System};
use ApplicationState as S;

/// (from, command name, to, who may give it), from the issue.
const TABLE: &[(S, &str, S, &[ActorKind])] = &[
    (S::Draft, "submit", S::Submitted, &[Applicant]),
    (S::Submitted, "receive", S::Received, &[Reviewer, System]),
    (S::Received, "start_review", S::InReview, &[Reviewer]),
    (
        S::Received,
        "return_for_correction",
        S::Returned,
        &[Reviewer],
    ),
    (
        S::InReview,
        "return_for_correction",
        S::Returned,
        &[Reviewer],
    ),
    (S::Returned, "resubmit", S::Submitted, &[Applicant]),
    (S::InReview, "approve", S::Approved, &[Approver, System]),
    (S::Received, "reject", S::Rejected, &[Approver, System]),
    (S::InReview, "reject", S::Rejected, &[Approver, System]),
    (S::Approved, "complete", S::Completed, &[Reviewer, System]),
    (S::Submitted, "withdraw", S::Withdrawn, &[Applicant]),
    (S::Received, "withdraw", S::Withdrawn, &[Applicant]),
    (S::InReview, "withdraw", S::Withdrawn, &[Applicant]),
    (S::Returned, "withdraw", S::Withdrawn, &[Applicant]),
];

const NAMES: [&str; 9] = [
    "submit",
    "receive",
    "start_review",
    "return_for_correction",
    "resubmit",
    "approve",
    "reject",
    "complete",
    "withdraw",
];

fn row(from: S, name: &str) -> Option<&'static (S, &'static str, S, &'static [ActorKind])> {
    TABLE.iter().find(|(f, n, _, _)| *f == from && *n == name)
}

fn make(name: &str, reasons: Vec<String>, note: Option<String>) -> Command {
    match name {
        "submit" => Command::Submit,
        "receive" => Command::Receive,
        "start_review" => Command::StartReview,
        "return_for_correction" => Command::ReturnForCorrection { reasons },
        "resubmit" => Command::Resubmit,
        "approve" => Command::Approve,
        "reject" => Command::Reject { reasons },
        "complete" => Command::Complete,
        _ => Command::Withdraw { reason: note },
    }
}

fn any_state() -> impl Strategy<Value = S> {
    proptest::sample::select(S::ALL.to_vec())
}

/// The states with no way out in the table above.
fn terminal_state() -> impl Strategy<Value = S> {
    let terminal: Vec<S> = S::ALL
        .into_iter()
        .filter(|s| TABLE.iter().all(|row| row.0 != *s))
        .collect();
    proptest::sample::select(terminal)
}

fn any_actor() -> impl Strategy<Value = ActorKind> {
    proptest::sample::select(vec![Applicant, Reviewer, Approver, System])
}

fn any_reasons() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            Just(String::new()),
            Just("  ".to_owned()),
            "[a-z]{1,8}",
            Just("添付書類の不足".to_owned()),
        ],
        0..3,
    )
}

fn any_command() -> impl Strategy<Value = Command> {
    (
        proptest::sample::select(NAMES.to_vec()),
        any_reasons(),
        proptest::option::of("[a-z ]{0,6}"),
    )
        .prop_map(|(name, reasons, note)| make(name, reasons, note))
}

/// Guards lean towards "satisfied", so that runs get past the gates often enough.
fn any_guards() -> impl Strategy<Value = Guards> {
    (
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.7),
        proptest::bool::weighted(0.7),
    )
        .prop_map(|(before, after, settled, chain)| Guards {
            payment_required_before_review: before,
            payment_required_after_approval: after,
            payment_settled: settled,
            chain_complete: chain,
        })
}

/// One attempt: either a random command by a random actor, or (when `follow` is set) a
/// move of the test's own table from the current state, so that runs get deep.
#[derive(Debug, Clone)]
struct Attempt {
    follow: bool,
    pick: usize,
    command: Command,
    actor: ActorKind,
    guards: Guards,
    reasons: Vec<String>,
}

fn any_attempt() -> impl Strategy<Value = Attempt> {
    (
        proptest::bool::weighted(0.7),
        0usize..64,
        any_command(),
        any_actor(),
        any_guards(),
        any_reasons(),
    )
        .prop_map(|(follow, pick, command, actor, guards, reasons)| Attempt {
            follow,
            pick,
            command,
            actor,
            guards,
            reasons,
        })
}

fn concrete(state: S, a: &Attempt) -> (Command, ActorKind) {
    let rows: Vec<_> = TABLE.iter().filter(|r| r.0 == state).collect();
    if a.follow && !rows.is_empty() {
        let (_, name, _, actors) = rows[a.pick % rows.len()];
        let actor = actors[a.pick % actors.len()];
        (make(name, a.reasons.clone(), None), actor)
    } else {
        (a.command.clone(), a.actor)
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
}

fn reasons_given(reasons: &[String]) -> bool {
    !reasons.is_empty() && reasons.iter().all(|r| !r.trim().is_empty())
}

/// Runs the attempts from a draft, checking every answer against the table, and returns
/// the final state and the recorded history.
fn run(attempts: &[Attempt]) -> Result<(S, Vec<HistoryEntry>), TestCaseError> {
    let mut state = S::Draft;
    let mut history = Vec::new();
    let mut decided_seen = false;
    for (i, a) in attempts.iter().enumerate() {
        let (command, actor) = concrete(state, a);
        let name = command.name();
        let result = transition(state, &command, actor, &a.guards);
        match row(state, name) {
            None => prop_assert!(
                matches!(result, Err(TransitionError::NotAllowed { .. })),
                "{state} --{name}--> {result:?} is not in the table"
            ),
            Some((_, _, to, actors)) => {
                if let Ok(next) = result {
                    prop_assert_eq!(next, *to);
                    prop_assert!(actors.contains(&actor));
                } else if !actors.contains(&actor) {
                    prop_assert!(
                        matches!(result, Err(TransitionError::WrongActor { .. })),
                        "{:?}",
                        result
                    );
                }
            }
        }
        if let Ok(next) = result {
            let g = &a.guards;
            let unpaid = !g.payment_settled;
            match name {
                "receive" | "start_review" => {
                    prop_assert!(!(g.payment_required_before_review && unpaid))
                }
                "complete" => prop_assert!(!(g.payment_required_after_approval && unpaid)),
                "approve" => prop_assert!(g.chain_complete),
                _ => {}
            }
            if let Command::Reject { reasons } | Command::ReturnForCorrection { reasons } = &command
            {
                prop_assert!(reasons_given(reasons));
            }
            if name == "withdraw" {
                prop_assert!(!decided_seen, "withdrawn after a decision");
            }
            let entry = apply(
                state,
                &command,
                actor,
                "someone",
                &a.guards,
                start() + Duration::minutes(i as i64),
            );
            prop_assert_eq!(entry.as_ref().map(|e| e.to), Ok(next));
            history.extend(entry);
            state = next;
            decided_seen |= state.is_decided();
        }
    }
    Ok((state, history))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_runs_stay_inside_the_table(attempts in proptest::collection::vec(any_attempt(), 0..40)) {
        run(&attempts)?;
    }

    #[test]
    fn replaying_the_history_gives_the_state_reached(
        attempts in proptest::collection::vec(any_attempt(), 0..40),
    ) {
        let (state, history) = run(&attempts)?;
        prop_assert_eq!(replay(&history), Ok(state));
    }

    #[test]
    fn a_forged_target_never_replays(
        attempts in proptest::collection::vec(any_attempt(), 1..40),
        which in 0usize..64,
        shift in 1usize..9,
    ) {
        let (_, mut history) = run(&attempts)?;
        prop_assume!(!history.is_empty());
        let i = which % history.len();
        let at = S::ALL.iter().position(|s| *s == history[i].to).unwrap_or(0);
        history[i].to = S::ALL[(at + shift) % S::ALL.len()];
        prop_assert!(replay(&history).is_err());
    }

    #[test]
    fn terminal_states_accept_nothing(
        state in terminal_state(),
        command in any_command(),
        actor in any_actor(),
        guards in any_guards(),
    ) {
        prop_assert!(state.is_terminal());
        let result = transition(state, &command, actor, &guards);
        prop_assert!(matches!(result, Err(TransitionError::NotAllowed { .. })), "{:?}", result);
    }

    #[test]
    fn withdrawal_never_follows_a_decision(
        state in proptest::sample::select(vec![S::Approved, S::Rejected, S::Completed]),
        reason in proptest::option::of("[a-z]{0,5}"),
        actor in any_actor(),
        guards in any_guards(),
    ) {
        prop_assert!(state.is_decided());
        let result = transition(state, &Command::Withdraw { reason }, actor, &guards);
        prop_assert!(result.is_err(), "{:?}", result);
    }

    #[test]
    fn every_pair_outside_the_table_is_refused(
        state in any_state(),
        command in any_command(),
        actor in any_actor(),
        guards in any_guards(),
    ) {
        let result = transition(state, &command, actor, &guards);
        match row(state, command.name()) {
            None => prop_assert!(matches!(result, Err(TransitionError::NotAllowed { .. })), "{:?}", result),
            Some((_, _, to, actors)) => {
                if !actors.contains(&actor) {
                    prop_assert!(matches!(result, Err(TransitionError::WrongActor { .. })), "{:?}", result);
                } else if let Ok(next) = result {
                    prop_assert_eq!(next, *to);
                }
            }
        }
    }

    #[test]
    fn reception_numbers_round_trip(
        body in 1u32..=47,
        municipality in 0u32..1000,
        year in 1000i32..=9999,
        seq in any::<u64>(),
    ) {
        let code = jp::localgov::LocalGovCode::parse(&format!("{body:02}{municipality:03}")).unwrap();
        let text = reception_number(code.as_str(), year, seq);
        let expected = ReceptionNumber { tenant_code: code.as_str().to_owned(), year, seq };
        prop_assert_eq!(parse_reception_number(&text), Ok(expected.clone()));
        prop_assert_eq!(expected.to_string(), text.clone());
        let wide: String = text
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c),
                '-' => '－',
                _ => c,
            })
            .collect();
        prop_assert_eq!(parse_reception_number(&wide), Ok(expected));
    }

    #[test]
    fn reading_any_text_as_a_reception_number_never_panics_and_is_canonical(
        input in prop_oneof![
            ".{0,30}",
            "[0-9０-９\\-－ー]{0,30}",
            "[0-9]{5,7}-[0-9]{3,5}-[0-9]{4,25}",
        ],
    ) {
        if let Ok(parsed) = parse_reception_number(&input) {
            prop_assert_eq!(parse_reception_number(&parsed.to_string()), Ok(parsed));
        }
    }
}
