//! Property tests of the approval chain: random chains, staff, roles, delegations and
//! decisions, with entitlement worked out here independently of `act`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use procedures::approval::{
    act, Actor, Assignee, ChainDefinition, ChainProgress, CompletionRule, Decision, Delegation,
    Outcome, StepDefinition, StepKind,
};
use proptest::prelude::*;

const USERS: usize = 5;
const ROLES: usize = 2;

fn user_id(i: usize) -> String {
    format!("u{i}")
}

fn role_name(i: usize) -> String {
    format!("r{i}")
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
}

fn any_assignee() -> impl Strategy<Value = Assignee> {
    prop_oneof![
        (0..USERS).prop_map(|i| Assignee::User(user_id(i))),
        (0..ROLES).prop_map(|i| Assignee::Role(role_name(i))),
    ]
}

fn any_step() -> impl Strategy<Value = StepDefinition> {
    let sequential = any_assignee().prop_map(|approver| StepKind::Sequential { approver });
    let consultation =
        (proptest::collection::vec(any_assignee(), 1..4), 0u32..8).prop_map(|(members, pick)| {
            // A user named twice could never fill both seats, which `validate` refuses.
            let mut unique: Vec<Assignee> = Vec::new();
            for m in members {
                if matches!(m, Assignee::Role(_)) || !unique.contains(&m) {
                    unique.push(m);
                }
            }
            let n = unique.len() as u32;
            let rule = match pick % 3 {
                0 => CompletionRule::All,
                1 => CompletionRule::Any,
                _ => CompletionRule::AtLeast(1 + pick % n),
            };
            StepKind::Consultation {
                members: unique,
                rule,
            }
        });
    (
        prop_oneof![sequential, consultation],
        proptest::option::of(0u32..10),
    )
        .prop_map(|(kind, due_days)| StepDefinition {
            name_ja: "段階".into(),
            name_en: "Step".into(),
            kind,
            due_days,
        })
}

fn any_chain() -> impl Strategy<Value = ChainDefinition> {
    proptest::collection::vec(any_step(), 1..4).prop_map(|steps| ChainDefinition { steps })
}

/// For each user, the roles they hold.
fn any_roles() -> impl Strategy<Value = Vec<Vec<String>>> {
    proptest::collection::vec(
        proptest::collection::vec(proptest::bool::ANY, ROLES).prop_map(|held| {
            held.iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .map(|(i, _)| role_name(i))
                .collect()
        }),
        USERS,
    )
}

fn any_delegations() -> impl Strategy<Value = Vec<Delegation>> {
    proptest::collection::vec(
        (0..USERS, 0..USERS, 0i64..40, 0i64..40).prop_map(|(p, d, from, len)| Delegation {
            principal: user_id(p),
            delegate: user_id(d),
            from: epoch() + Duration::hours(from),
            until: epoch() + Duration::hours(from + len),
        }),
        0..4,
    )
}

#[derive(Debug, Clone)]
struct Attempt {
    actor: usize,
    kind: u8,
    to_step: usize,
    blank_reason: bool,
    hours_later: i64,
}

fn any_attempt() -> impl Strategy<Value = Attempt> {
    (
        0..USERS,
        0u8..10,
        0usize..4,
        proptest::bool::weighted(0.1),
        0i64..4,
    )
        .prop_map(
            |(actor, kind, to_step, blank_reason, hours_later)| Attempt {
                actor,
                kind,
                to_step,
                blank_reason,
                hours_later,
            },
        )
}

fn decision_of(a: &Attempt) -> Decision {
    let reason = if a.blank_reason { " " } else { "理由" }.to_owned();
    match a.kind {
        0..=6 => Decision::Approve,
        7 => Decision::Reject { reason },
        _ => Decision::SendBack {
            to_step: a.to_step,
            reason,
        },
    }
}

fn delegation_active(
    delegations: &[Delegation],
    principal: &str,
    delegate: &str,
    at: DateTime<Utc>,
) -> bool {
    principal != delegate
        && delegations.iter().any(|d| {
            d.principal == principal && d.delegate == delegate && d.from <= at && at < d.until
        })
}

fn seats(kind: &StepKind) -> Vec<Assignee> {
    match kind {
        StepKind::Sequential { approver } => vec![approver.clone()],
        StepKind::Consultation { members, .. } => members.clone(),
    }
}

fn required(kind: &StepKind) -> usize {
    match kind {
        StepKind::Sequential { .. } => 1,
        StepKind::Consultation { members, rule } => match rule {
            CompletionRule::All => members.len(),
            CompletionRule::Any => 1,
            CompletionRule::AtLeast(n) => *n as usize,
        },
    }
}

/// Whether `me` could hold some seat of the current step, in person or as a delegate.
fn entitled(
    def: &ChainDefinition,
    progress: &ChainProgress,
    me: &str,
    my_roles: &[String],
    delegations: &[Delegation],
    now: DateTime<Utc>,
) -> bool {
    if progress.outcome != Outcome::Pending {
        return false;
    }
    let Some(step) = def.steps.get(progress.current_step) else {
        return false;
    };
    seats(&step.kind).iter().any(|seat| match seat {
        Assignee::User(u) => u == me || delegation_active(delegations, u, me, now),
        Assignee::Role(r) => my_roles.contains(r),
    })
}

/// Checks that an approved chain was approved by the book: every step has enough
/// approvals, each from a different person, each on a distinct seat the actor was
/// entitled to at the time.
fn check_approved(
    def: &ChainDefinition,
    progress: &ChainProgress,
    roles: &[Vec<String>],
    delegations: &[Delegation],
) -> Result<(), TestCaseError> {
    for (i, step) in def.steps.iter().enumerate() {
        let here: Vec<_> = progress.decisions.iter().filter(|d| d.step == i).collect();
        let approvals = here
            .iter()
            .filter(|d| d.decision == Decision::Approve)
            .count();
        prop_assert!(
            approvals >= required(&step.kind),
            "step {} short of approvals",
            i
        );
        let step_seats = seats(&step.kind);
        let mut used_seats = Vec::new();
        let mut persons = Vec::new();
        for d in &here {
            prop_assert!(!used_seats.contains(&d.seat), "seat {} taken twice", d.seat);
            used_seats.push(d.seat);
            let person = d.on_behalf_of.clone().unwrap_or_else(|| d.user_id.clone());
            prop_assert!(!persons.contains(&person), "{} decided twice", person);
            persons.push(person);
            let seat = step_seats.get(d.seat);
            let ok = match (seat, &d.on_behalf_of) {
                (Some(Assignee::User(u)), None) => *u == d.user_id,
                (Some(Assignee::User(u)), Some(p)) => {
                    u == p && delegation_active(delegations, p, &d.user_id, d.at)
                }
                (Some(Assignee::Role(r)), None) => {
                    let idx: usize = d.user_id.trim_start_matches('u').parse().unwrap();
                    roles[idx].contains(r)
                }
                _ => false,
            };
            prop_assert!(ok, "{:?} not entitled to seat {:?}", d, seat);
        }
    }
    prop_assert!(progress.decisions.iter().all(|d| d.step < def.steps.len()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn chains_move_only_by_the_rules(
        def in any_chain(),
        roles in any_roles(),
        delegations in any_delegations(),
        attempts in proptest::collection::vec(any_attempt(), 0..40),
    ) {
        prop_assert_eq!(def.validate(), Ok(()));
        let mut progress = ChainProgress::new();
        let mut now = epoch();
        for a in &attempts {
            now += Duration::hours(a.hours_later);
            let actor = Actor { user_id: user_id(a.actor), roles: roles[a.actor].clone() };
            let decision = decision_of(a);
            let may = entitled(&def, &progress, &actor.user_id, &actor.roles, &delegations, now);
            let before = progress.clone();
            let result = act(&def, &mut progress, &actor, decision.clone(), &delegations, now);
            match &result {
                Err(_) => prop_assert_eq!(&progress, &before),
                Ok(outcome) => {
                    // Nobody outside the assignees and the delegates in their window.
                    prop_assert!(may, "{} changed a step not theirs", actor.user_id);
                    prop_assert_eq!(*outcome, progress.outcome);
                    prop_assert_eq!(progress.history.len(), before.history.len() + 1);
                    if let Decision::SendBack { to_step, .. } = decision {
                        // Send-back never moves forward.
                        prop_assert_eq!(progress.current_step, to_step);
                        prop_assert!(to_step < before.current_step);
                        prop_assert!(progress.decisions.iter().all(|d| d.step < to_step));
                    } else {
                        let step = progress.current_step;
                        prop_assert!(step == before.current_step || step == before.current_step + 1);
                    }
                }
            }
            if !may {
                prop_assert!(result.is_err());
            }
            if before.outcome != Outcome::Pending {
                prop_assert!(result.is_err());
            }
            if progress.outcome == Outcome::Approved {
                check_approved(&def, &progress, &roles, &delegations)?;
            }
        }
        let stored = serde_json::to_string(&progress).unwrap();
        let loaded: ChainProgress = serde_json::from_str(&stored).unwrap();
        prop_assert_eq!(loaded, progress);
    }
}

proptest! {
    #[test]
    fn validation_accepts_exactly_the_sound_consultations(
        members in proptest::collection::vec(any_assignee(), 0..5),
        at_least in 0u32..7,
    ) {
        let users: Vec<&Assignee> = members.iter().filter(|m| matches!(m, Assignee::User(_))).collect();
        let repeats = (1..users.len()).any(|i| users[..i].contains(&users[i]));
        let sound = !members.is_empty() && !repeats && at_least >= 1 && (at_least as usize) <= members.len();
        let def = ChainDefinition {
            steps: vec![StepDefinition {
                name_ja: "合議".into(),
                name_en: "Consultation".into(),
                kind: StepKind::Consultation { members, rule: CompletionRule::AtLeast(at_least) },
                due_days: None,
            }],
        };
        let verdict = def.validate();
        prop_assert_eq!(verdict.is_ok(), sound, "{:?}", verdict);
    }

    #[test]
    fn definitions_survive_json(def in any_chain()) {
        let json = serde_json::to_string(&def).unwrap();
        let back: ChainDefinition = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, def);
    }
}
