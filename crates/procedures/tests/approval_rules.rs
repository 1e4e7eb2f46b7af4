//! One test per rule of the approval chain (電子決裁), through the public API.

use chrono::{DateTime, Duration, TimeZone, Utc};
use procedures::approval::{
    act, due_at, who_may_act, who_may_act_now, Actor, Assignee, ChainDefinition, ChainError,
    ChainProgress, CompletionRule, Decision, DefinitionError, Delegation, Outcome, StepDefinition,
    StepKind,
};

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap() + Duration::hours(i64::from(hour))
}

fn user(id: &str) -> Assignee {
    Assignee::User(id.into())
}

fn role(name: &str) -> Assignee {
    Assignee::Role(name.into())
}

fn step(kind: StepKind) -> StepDefinition {
    StepDefinition {
        name_ja: "段階".into(),
        name_en: "Step".into(),
        kind,
        due_days: None,
    }
}

fn seq(approver: Assignee) -> StepDefinition {
    step(StepKind::Sequential { approver })
}

fn consult(members: Vec<Assignee>, rule: CompletionRule) -> StepDefinition {
    step(StepKind::Consultation { members, rule })
}

fn chain(steps: Vec<StepDefinition>) -> ChainDefinition {
    ChainDefinition { steps }
}

fn who(id: &str) -> Actor {
    Actor {
        user_id: id.into(),
        roles: vec![],
    }
}

fn with_roles(id: &str, roles: &[&str]) -> Actor {
    Actor {
        user_id: id.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn reject(reason: &str) -> Decision {
    Decision::Reject {
        reason: reason.into(),
    }
}

fn send_back(to_step: usize) -> Decision {
    Decision::SendBack {
        to_step,
        reason: "再確認".into(),
    }
}

/// 係長 → 課長 → 部長, each a named user.
fn three_steps() -> ChainDefinition {
    chain(vec![
        seq(user("kakaricho")),
        seq(user("kacho")),
        seq(user("bucho")),
    ])
}

#[test]
fn sequential_steps_are_taken_in_order() {
    let def = three_steps();
    let mut p = ChainProgress::new();
    let ok = |p: &mut ChainProgress, id: &str| act(&def, p, &who(id), Decision::Approve, &[], t(1));
    assert_eq!(ok(&mut p, "kakaricho"), Ok(Outcome::Pending));
    assert_eq!(p.current_step, 1);
    assert_eq!(p.step_started_at, Some(t(1)));
    assert_eq!(ok(&mut p, "kacho"), Ok(Outcome::Pending));
    assert_eq!(ok(&mut p, "bucho"), Ok(Outcome::Approved));
    assert_eq!(p.outcome, Outcome::Approved);
    assert_eq!(p.decisions.len(), 3);
    assert_eq!(p.history.len(), 3);
}

#[test]
fn someone_else_is_refused_and_told_who_may_act() {
    let def = three_steps();
    let mut p = ChainProgress::new();
    let before = p.clone();
    let err = act(&def, &mut p, &who("bucho"), Decision::Approve, &[], t(1)).unwrap_err();
    assert_eq!(
        err,
        ChainError::NotYourStep {
            step: 0,
            may_act: vec![user("kakaricho")]
        }
    );
    assert_eq!(p, before);
    assert!(err.message_ja().contains("kakaricho"));
    assert!(err.message_en().contains("kakaricho"));
    assert_eq!(err.code(), "not-your-step");
}

#[test]
fn a_role_seat_takes_any_holder_of_the_role() {
    let def = chain(vec![seq(role("approver"))]);
    let mut p = ChainProgress::new();
    let err = act(
        &def,
        &mut p,
        &with_roles("u1", &["reviewer"]),
        Decision::Approve,
        &[],
        t(1),
    );
    assert_eq!(
        err,
        Err(ChainError::NotYourStep {
            step: 0,
            may_act: vec![role("approver")]
        })
    );
    let done = act(
        &def,
        &mut p,
        &with_roles("u2", &["approver"]),
        Decision::Approve,
        &[],
        t(1),
    );
    assert_eq!(done, Ok(Outcome::Approved));
    assert_eq!(p.decisions[0].user_id, "u2");
}

fn absence() -> Delegation {
    Delegation {
        principal: "kacho".into(),
        delegate: "hosa".into(),
        from: t(10),
        until: t(20),
    }
}

#[test]
fn a_delegate_acts_for_the_absent_approver_within_the_window() {
    let def = chain(vec![seq(user("kacho"))]);
    let delegations = [absence()];
    for outside in [t(9), t(20), t(30)] {
        let mut p = ChainProgress::new();
        let r = act(
            &def,
            &mut p,
            &who("hosa"),
            Decision::Approve,
            &delegations,
            outside,
        );
        assert!(
            matches!(r, Err(ChainError::NotYourStep { .. })),
            "{outside}"
        );
    }
    for inside in [t(10), t(19)] {
        let mut p = ChainProgress::new();
        let r = act(
            &def,
            &mut p,
            &who("hosa"),
            Decision::Approve,
            &delegations,
            inside,
        );
        assert_eq!(r, Ok(Outcome::Approved));
        assert_eq!(p.decisions[0].user_id, "hosa");
        assert_eq!(p.decisions[0].on_behalf_of.as_deref(), Some("kacho"));
        assert_eq!(p.decisions[0].person(), "kacho");
    }
}

#[test]
fn delegation_does_not_chain() {
    let def = chain(vec![seq(user("kacho"))]);
    let onward = Delegation {
        principal: "hosa".into(),
        delegate: "shunin".into(),
        ..absence()
    };
    let mut p = ChainProgress::new();
    let r = act(
        &def,
        &mut p,
        &who("shunin"),
        Decision::Approve,
        &[absence(), onward],
        t(12),
    );
    assert!(matches!(r, Err(ChainError::NotYourStep { .. })));
}

#[test]
fn delegation_does_not_lend_roles() {
    let def = chain(vec![seq(role("kacho"))]);
    let d = Delegation {
        principal: "yamada".into(),
        ..absence()
    };
    let mut p = ChainProgress::new();
    let r = act(&def, &mut p, &who("hosa"), Decision::Approve, &[d], t(12));
    assert!(matches!(r, Err(ChainError::NotYourStep { .. })));
}

#[test]
fn the_principal_cannot_decide_again_after_their_delegate() {
    let def = chain(vec![consult(
        vec![user("kacho"), user("zaisei")],
        CompletionRule::All,
    )]);
    let mut p = ChainProgress::new();
    act(
        &def,
        &mut p,
        &who("hosa"),
        Decision::Approve,
        &[absence()],
        t(12),
    )
    .unwrap();
    let before = p.clone();
    let again = act(&def, &mut p, &who("kacho"), Decision::Approve, &[], t(21));
    assert_eq!(
        again,
        Err(ChainError::AlreadyDecided {
            step: 0,
            user_id: "kacho".into()
        })
    );
    assert_eq!(p, before);
}

#[test]
fn consultation_all_needs_every_member() {
    let def = chain(vec![
        consult(
            vec![user("a"), user("b"), role("houmu")],
            CompletionRule::All,
        ),
        seq(user("kacho")),
    ]);
    let mut p = ChainProgress::new();
    act(&def, &mut p, &who("a"), Decision::Approve, &[], t(1)).unwrap();
    assert_eq!(
        act(&def, &mut p, &who("a"), Decision::Approve, &[], t(2)),
        Err(ChainError::AlreadyDecided {
            step: 0,
            user_id: "a".into()
        })
    );
    act(&def, &mut p, &who("b"), Decision::Approve, &[], t(3)).unwrap();
    assert_eq!(p.current_step, 0);
    assert_eq!(who_may_act(&def, &p), vec![role("houmu")]);
    act(
        &def,
        &mut p,
        &with_roles("c", &["houmu"]),
        Decision::Approve,
        &[],
        t(4),
    )
    .unwrap();
    assert_eq!(p.current_step, 1);
    assert_eq!(p.outcome, Outcome::Pending);
}

#[test]
fn consultation_all_is_rejected_by_one_member() {
    let def = chain(vec![consult(
        vec![user("a"), user("b")],
        CompletionRule::All,
    )]);
    let mut p = ChainProgress::new();
    assert_eq!(
        act(&def, &mut p, &who("b"), reject("予算がない"), &[], t(1)),
        Ok(Outcome::Rejected)
    );
    assert_eq!(p.rejection_reason(), Some("予算がない"));
    assert_eq!(
        act(&def, &mut p, &who("a"), Decision::Approve, &[], t(2)),
        Err(ChainError::ChainFinished {
            outcome: Outcome::Rejected
        })
    );
}

#[test]
fn consultation_any_completes_with_one_approval_and_fails_only_when_all_reject() {
    let def = chain(vec![consult(
        vec![user("a"), user("b"), user("c")],
        CompletionRule::Any,
    )]);
    let mut p = ChainProgress::new();
    assert_eq!(
        act(&def, &mut p, &who("a"), reject("反対"), &[], t(1)),
        Ok(Outcome::Pending)
    );
    let mut approved = p.clone();
    assert_eq!(
        act(&def, &mut approved, &who("c"), Decision::Approve, &[], t(2)),
        Ok(Outcome::Approved)
    );
    assert_eq!(
        act(&def, &mut p, &who("b"), reject("反対"), &[], t(2)),
        Ok(Outcome::Pending)
    );
    assert_eq!(
        act(&def, &mut p, &who("c"), reject("反対"), &[], t(3)),
        Ok(Outcome::Rejected)
    );
}

#[test]
fn consultation_at_least_is_rejected_once_the_count_is_out_of_reach() {
    let def = chain(vec![consult(
        vec![user("a"), user("b"), user("c")],
        CompletionRule::AtLeast(2),
    )]);
    let mut p = ChainProgress::new();
    assert_eq!(
        act(&def, &mut p, &who("a"), reject("反対"), &[], t(1)),
        Ok(Outcome::Pending)
    );
    let mut approved = p.clone();
    act(&def, &mut approved, &who("b"), Decision::Approve, &[], t(2)).unwrap();
    assert_eq!(
        act(&def, &mut approved, &who("c"), Decision::Approve, &[], t(3)),
        Ok(Outcome::Approved)
    );
    assert_eq!(
        act(&def, &mut p, &who("b"), reject("反対"), &[], t(2)),
        Ok(Outcome::Rejected)
    );
}

#[test]
fn a_named_seat_is_taken_before_a_role_seat() {
    let def = chain(vec![consult(
        vec![role("houmu"), user("a")],
        CompletionRule::All,
    )]);
    let mut p = ChainProgress::new();
    act(
        &def,
        &mut p,
        &with_roles("a", &["houmu"]),
        Decision::Approve,
        &[],
        t(1),
    )
    .unwrap();
    assert_eq!(p.decisions[0].seat, 1);
    assert_eq!(
        act(
            &def,
            &mut p,
            &with_roles("b", &["houmu"]),
            Decision::Approve,
            &[],
            t(2)
        ),
        Ok(Outcome::Approved)
    );
}

#[test]
fn sequential_rejection_rejects_the_chain_and_needs_a_reason() {
    let def = three_steps();
    let mut p = ChainProgress::new();
    let before = p.clone();
    for blank in ["", "   "] {
        assert_eq!(
            act(&def, &mut p, &who("kakaricho"), reject(blank), &[], t(1)),
            Err(ChainError::ReasonRequired)
        );
        assert_eq!(p, before);
    }
    assert_eq!(
        act(
            &def,
            &mut p,
            &who("kakaricho"),
            reject("根拠法令に該当しない"),
            &[],
            t(1)
        ),
        Ok(Outcome::Rejected)
    );
    assert_eq!(p.rejection_reason(), Some("根拠法令に該当しない"));
    assert!(who_may_act(&def, &p).is_empty());
}

#[test]
fn sending_back_returns_to_an_earlier_step_and_undoes_what_followed() {
    let def = three_steps();
    let mut p = ChainProgress::new();
    act(
        &def,
        &mut p,
        &who("kakaricho"),
        Decision::Approve,
        &[],
        t(1),
    )
    .unwrap();
    act(&def, &mut p, &who("kacho"), Decision::Approve, &[], t(2)).unwrap();
    assert_eq!(p.current_step, 2);
    let before = p.clone();
    assert_eq!(
        act(&def, &mut p, &who("bucho"), send_back(2), &[], t(3)),
        Err(ChainError::InvalidSendBack {
            to_step: 2,
            current_step: 2
        })
    );
    assert_eq!(
        act(&def, &mut p, &who("bucho"), send_back(7), &[], t(3)),
        Err(ChainError::InvalidSendBack {
            to_step: 7,
            current_step: 2
        })
    );
    let blank = Decision::SendBack {
        to_step: 0,
        reason: " ".into(),
    };
    assert_eq!(
        act(&def, &mut p, &who("bucho"), blank, &[], t(3)),
        Err(ChainError::ReasonRequired)
    );
    assert_eq!(p, before);
    assert_eq!(
        act(&def, &mut p, &who("bucho"), send_back(1), &[], t(4)),
        Ok(Outcome::Pending)
    );
    assert_eq!(p.current_step, 1);
    assert_eq!(p.step_started_at, Some(t(4)));
    assert_eq!(p.decisions.len(), 1);
    assert_eq!(p.decisions[0].step, 0);
    assert_eq!(p.history.len(), 3);
    assert!(matches!(
        p.history[2].decision,
        Decision::SendBack { to_step: 1, .. }
    ));
    // 課長 decides again, then 部長 sends back to the start.
    act(&def, &mut p, &who("kacho"), Decision::Approve, &[], t(5)).unwrap();
    act(&def, &mut p, &who("bucho"), send_back(0), &[], t(6)).unwrap();
    assert_eq!(p.current_step, 0);
    assert!(p.decisions.is_empty());
    assert_eq!(who_may_act(&def, &p), vec![user("kakaricho")]);
}

#[test]
fn the_first_step_cannot_send_back_and_outsiders_learn_nothing_about_it() {
    let def = three_steps();
    let mut p = ChainProgress::new();
    assert_eq!(
        act(&def, &mut p, &who("kakaricho"), send_back(0), &[], t(1)),
        Err(ChainError::InvalidSendBack {
            to_step: 0,
            current_step: 0
        })
    );
    assert!(matches!(
        act(&def, &mut p, &who("stranger"), send_back(0), &[], t(1)),
        Err(ChainError::NotYourStep { .. })
    ));
}

#[test]
fn a_finished_chain_accepts_nothing() {
    let def = chain(vec![seq(user("a"))]);
    let mut p = ChainProgress::new();
    act(&def, &mut p, &who("a"), Decision::Approve, &[], t(1)).unwrap();
    let before = p.clone();
    let err = act(&def, &mut p, &who("a"), Decision::Approve, &[], t(2)).unwrap_err();
    assert_eq!(
        err,
        ChainError::ChainFinished {
            outcome: Outcome::Approved
        }
    );
    assert_eq!(p, before);
    assert!(err.message_ja().contains("承認"));
}

#[test]
fn the_queue_lists_open_seats_and_active_delegates() {
    let def = chain(vec![consult(
        vec![user("kacho"), role("houmu"), role("houmu")],
        CompletionRule::All,
    )]);
    let mut p = ChainProgress::new();
    assert_eq!(who_may_act(&def, &p), vec![user("kacho"), role("houmu")]);
    assert_eq!(
        who_may_act_now(&def, &p, &[absence()], t(12)),
        vec![user("kacho"), role("houmu"), user("hosa")]
    );
    assert_eq!(
        who_may_act_now(&def, &p, &[absence()], t(25)),
        vec![user("kacho"), role("houmu")]
    );
    act(
        &def,
        &mut p,
        &who("hosa"),
        Decision::Approve,
        &[absence()],
        t(12),
    )
    .unwrap();
    assert_eq!(who_may_act(&def, &p), vec![role("houmu")]);
    assert_eq!(
        who_may_act_now(&def, &p, &[absence()], t(12)),
        vec![role("houmu")]
    );
}

#[test]
fn due_dates_count_calendar_days_from_the_start_of_the_step() {
    let mut def = three_steps();
    def.steps[0].due_days = Some(3);
    let mut p = ChainProgress::new();
    assert_eq!(due_at(&def, &p, t(5)), Some(t(5) + Duration::days(3)));
    act(
        &def,
        &mut p,
        &who("kakaricho"),
        Decision::Approve,
        &[],
        t(6),
    )
    .unwrap();
    assert_eq!(due_at(&def, &p, t(6)), None);
    let one = chain(vec![StepDefinition {
        due_days: Some(1),
        ..seq(user("a"))
    }]);
    let mut done = ChainProgress::new();
    act(&one, &mut done, &who("a"), Decision::Approve, &[], t(1)).unwrap();
    assert_eq!(due_at(&one, &done, t(1)), None);
}

#[test]
fn definitions_are_checked_and_every_problem_is_reported() {
    assert_eq!(
        chain(vec![]).validate(),
        Err(vec![DefinitionError::NoSteps])
    );
    assert_eq!(three_steps().validate(), Ok(()));
    let mut unnamed = seq(user(" "));
    unnamed.name_en = String::new();
    let bad = chain(vec![
        consult(vec![], CompletionRule::Any),
        consult(vec![user("a"), user("b")], CompletionRule::AtLeast(0)),
        consult(vec![user("a"), user("b")], CompletionRule::AtLeast(3)),
        consult(vec![user("a"), role("x"), user("a")], CompletionRule::All),
        unnamed,
    ]);
    let problems = bad.validate().unwrap_err();
    assert_eq!(
        problems,
        vec![
            DefinitionError::NoMembers { step: 0 },
            DefinitionError::AtLeastZero { step: 1 },
            DefinitionError::AtLeastTooMany {
                step: 2,
                at_least: 3,
                members: 2
            },
            DefinitionError::DuplicateMember {
                step: 3,
                user_id: "a".into()
            },
            DefinitionError::EmptyName { step: 4 },
            DefinitionError::BlankAssignee { step: 4 },
        ]
    );
    assert_eq!(
        problems[2].message_ja(),
        "決裁経路の第3段階は3人の承認が必要ですが、合議先は2人です"
    );
    assert!(problems[2].message_en().contains("step 3"));
    let codes: std::collections::HashSet<&str> = problems.iter().map(|p| p.code()).collect();
    assert_eq!(codes.len(), problems.len());
}

#[test]
fn acting_on_an_invalid_definition_or_a_stale_progress_is_refused() {
    let mut p = ChainProgress::new();
    assert!(matches!(
        act(
            &chain(vec![]),
            &mut p,
            &who("a"),
            Decision::Approve,
            &[],
            t(1)
        ),
        Err(ChainError::InvalidDefinition(_))
    ));
    let def = three_steps();
    let mut stale = ChainProgress {
        current_step: 5,
        ..ChainProgress::new()
    };
    assert_eq!(
        act(&def, &mut stale, &who("a"), Decision::Approve, &[], t(1)),
        Err(ChainError::ProgressMismatch)
    );
    // A record of a seat the step does not have.
    let mut p = ChainProgress::new();
    act(
        &def,
        &mut p,
        &who("kakaricho"),
        Decision::Approve,
        &[],
        t(1),
    )
    .unwrap();
    p.current_step = 0;
    p.decisions[0].seat = 4;
    assert_eq!(
        act(
            &def,
            &mut p,
            &who("kakaricho"),
            Decision::Approve,
            &[],
            t(2)
        ),
        Err(ChainError::ProgressMismatch)
    );
}

#[test]
fn definitions_and_progress_are_plain_json() {
    let json = serde_json::json!({
        "steps": [
            {"name_ja": "係長", "name_en": "Chief", "kind": "sequential",
             "approver": {"user": "kakaricho"}, "due_days": 2},
            {"name_ja": "合議", "name_en": "Consultation", "kind": "consultation",
             "members": [{"role": "houmu"}, {"user": "zaisei"}], "rule": {"at_least": 1}}
        ]
    });
    let def: ChainDefinition = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(def.steps[0].due_days, Some(2));
    assert_eq!(
        def.steps[1].kind,
        StepKind::Consultation {
            members: vec![role("houmu"), user("zaisei")],
            rule: CompletionRule::AtLeast(1)
        }
    );
    assert_eq!(serde_json::to_value(&def).unwrap(), json);

    let mut p = ChainProgress::new();
    act(
        &def,
        &mut p,
        &who("kakaricho"),
        Decision::Approve,
        &[],
        t(1),
    )
    .unwrap();
    act(&def, &mut p, &who("zaisei"), send_back(0), &[], t(2)).unwrap();
    let stored = serde_json::to_value(&p).unwrap();
    assert_eq!(stored["outcome"], "pending");
    assert_eq!(stored["history"][1]["decision"], "send_back");
    assert_eq!(stored["history"][1]["to_step"], 0);
    let back: ChainProgress = serde_json::from_value(stored).unwrap();
    assert_eq!(back, p);
}
