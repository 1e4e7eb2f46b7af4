//! One test per rule of the application state machine, through the public API.

use chrono::{DateTime, TimeZone, Utc};
use procedures::application::{
    apply, available_commands, parse_reception_number, reception_number, replay, transition,
    ActorKind, ApplicationState, Command, CommandKind, Guards, HistoryEntry, ReceptionNumber,
    ReceptionNumberError, ReplayError, TransitionError,
};

use ActorKind::{Applicant, Approver, Reviewer, System};
use ApplicationState as S;

fn reasons(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 9, minute, 0).unwrap()
}

fn paid_chain_done() -> Guards {
    Guards {
        payment_settled: true,
        chain_complete: true,
        ..Guards::default()
    }
}

#[test]
fn the_usual_path_reaches_completed() {
    let g = paid_chain_done();
    let mut state = S::Draft;
    for (command, actor) in [
        (Command::Submit, Applicant),
        (Command::Receive, Reviewer),
        (Command::StartReview, Reviewer),
        (Command::Approve, Approver),
        (Command::Complete, System),
    ] {
        state = transition(state, &command, actor, &g).unwrap();
    }
    assert_eq!(state, S::Completed);
}

#[test]
fn state_names_round_trip_through_str_and_json() {
    for state in S::ALL {
        assert_eq!(state.as_str().parse::<S>(), Ok(state));
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{}\"", state.as_str()));
    }
    assert_eq!(S::InReview.as_str(), "in_review");
    assert!("In Review".parse::<S>().is_err());
    assert!("".parse::<S>().is_err());
}

#[test]
fn terminal_and_decided_states() {
    let terminal: Vec<S> = S::ALL.into_iter().filter(|s| s.is_terminal()).collect();
    assert_eq!(terminal, vec![S::Rejected, S::Completed, S::Withdrawn]);
    let decided: Vec<S> = S::ALL.into_iter().filter(|s| s.is_decided()).collect();
    assert_eq!(decided, vec![S::Approved, S::Rejected, S::Completed]);
}

#[test]
fn labels_are_bilingual_and_distinct() {
    assert_eq!(S::InReview.label_ja(), "審査中");
    assert_eq!(S::Returned.label_en(), "Returned for correction");
    let ja: std::collections::HashSet<&str> = S::ALL.iter().map(|s| s.label_ja()).collect();
    let en: std::collections::HashSet<&str> = S::ALL.iter().map(|s| s.label_en()).collect();
    assert_eq!(ja.len(), S::ALL.len());
    assert_eq!(en.len(), S::ALL.len());
}

#[test]
fn receiving_needs_payment_when_required_before_review() {
    let unpaid = Guards {
        payment_required_before_review: true,
        ..Guards::default()
    };
    assert_eq!(
        transition(S::Submitted, &Command::Receive, Reviewer, &unpaid),
        Err(TransitionError::PaymentRequired {
            command: CommandKind::Receive
        })
    );
    let paid = Guards {
        payment_settled: true,
        ..unpaid
    };
    assert_eq!(
        transition(S::Submitted, &Command::Receive, System, &paid),
        Ok(S::Received)
    );
    // A fee due only after approval does not hold up receiving.
    let later = Guards {
        payment_required_after_approval: true,
        ..Guards::default()
    };
    assert_eq!(
        transition(S::Submitted, &Command::Receive, Reviewer, &later),
        Ok(S::Received)
    );
}

#[test]
fn review_does_not_start_unpaid() {
    let unpaid = Guards {
        payment_required_before_review: true,
        ..Guards::default()
    };
    assert!(matches!(
        transition(S::Received, &Command::StartReview, Reviewer, &unpaid),
        Err(TransitionError::PaymentRequired { .. })
    ));
    assert_eq!(
        transition(
            S::Received,
            &Command::StartReview,
            Reviewer,
            &Guards::default()
        ),
        Ok(S::InReview)
    );
}

#[test]
fn approval_needs_a_complete_chain_and_an_approver_or_the_system() {
    let open = Guards::default();
    assert_eq!(
        transition(S::InReview, &Command::Approve, Approver, &open),
        Err(TransitionError::ChainIncomplete {
            command: CommandKind::Approve
        })
    );
    let done = paid_chain_done();
    assert_eq!(
        transition(S::InReview, &Command::Approve, Reviewer, &done),
        Err(TransitionError::WrongActor {
            command: CommandKind::Approve,
            actor: Reviewer
        })
    );
    assert_eq!(
        transition(S::InReview, &Command::Approve, System, &done),
        Ok(S::Approved)
    );
    // Approval always goes through review.
    assert!(matches!(
        transition(S::Received, &Command::Approve, Approver, &done),
        Err(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn rejection_needs_reasons() {
    let g = Guards::default();
    for bad in [reasons(&[]), reasons(&["  "]), reasons(&["書類不備", ""])] {
        assert_eq!(
            transition(S::InReview, &Command::Reject { reasons: bad }, Approver, &g),
            Err(TransitionError::ReasonRequired {
                command: CommandKind::Reject
            })
        );
    }
    let ok = Command::Reject {
        reasons: reasons(&["要件を満たさない"]),
    };
    assert_eq!(transition(S::InReview, &ok, Approver, &g), Ok(S::Rejected));
    assert_eq!(transition(S::Received, &ok, System, &g), Ok(S::Rejected));
    assert!(matches!(
        transition(S::Submitted, &ok, Approver, &g),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(matches!(
        transition(S::InReview, &ok, Reviewer, &g),
        Err(TransitionError::WrongActor { .. })
    ));
}

#[test]
fn return_for_correction_needs_reasons_and_a_reviewer() {
    let g = Guards::default();
    let cmd = Command::ReturnForCorrection {
        reasons: reasons(&["添付書類が不足しています"]),
    };
    assert_eq!(transition(S::Received, &cmd, Reviewer, &g), Ok(S::Returned));
    assert_eq!(transition(S::InReview, &cmd, Reviewer, &g), Ok(S::Returned));
    assert!(matches!(
        transition(S::Submitted, &cmd, Reviewer, &g),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(matches!(
        transition(S::InReview, &cmd, Applicant, &g),
        Err(TransitionError::WrongActor { .. })
    ));
    let empty = Command::ReturnForCorrection { reasons: vec![] };
    assert!(matches!(
        transition(S::InReview, &empty, Reviewer, &g),
        Err(TransitionError::ReasonRequired { .. })
    ));
}

#[test]
fn resubmission_goes_back_to_submitted() {
    let g = Guards::default();
    assert_eq!(
        transition(S::Returned, &Command::Resubmit, Applicant, &g),
        Ok(S::Submitted)
    );
    assert!(matches!(
        transition(S::Returned, &Command::Resubmit, Reviewer, &g),
        Err(TransitionError::WrongActor { .. })
    ));
    assert!(matches!(
        transition(S::Submitted, &Command::Resubmit, Applicant, &g),
        Err(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn withdrawal_only_by_the_applicant_before_a_decision() {
    let g = paid_chain_done();
    let cmd = Command::Withdraw { reason: None };
    for from in [S::Submitted, S::Received, S::InReview, S::Returned] {
        assert_eq!(transition(from, &cmd, Applicant, &g), Ok(S::Withdrawn));
        assert!(matches!(
            transition(from, &cmd, Reviewer, &g),
            Err(TransitionError::WrongActor { .. })
        ));
    }
    for from in [
        S::Draft,
        S::Approved,
        S::Rejected,
        S::Completed,
        S::Withdrawn,
    ] {
        assert!(matches!(
            transition(from, &cmd, Applicant, &g),
            Err(TransitionError::NotAllowed { .. })
        ));
    }
}

#[test]
fn completion_waits_for_payment_after_approval() {
    let unpaid = Guards {
        payment_required_after_approval: true,
        chain_complete: true,
        ..Guards::default()
    };
    assert!(matches!(
        transition(S::Approved, &Command::Complete, System, &unpaid),
        Err(TransitionError::PaymentRequired { .. })
    ));
    let paid = Guards {
        payment_settled: true,
        ..unpaid
    };
    assert_eq!(
        transition(S::Approved, &Command::Complete, Reviewer, &paid),
        Ok(S::Completed)
    );
    assert!(matches!(
        transition(S::Approved, &Command::Complete, Applicant, &paid),
        Err(TransitionError::WrongActor { .. })
    ));
}

#[test]
fn the_state_is_checked_before_the_actor_and_the_actor_before_the_reasons() {
    let g = Guards::default();
    let bare = Command::Reject { reasons: vec![] };
    assert!(matches!(
        transition(S::Completed, &bare, Applicant, &g),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(matches!(
        transition(S::InReview, &bare, Applicant, &g),
        Err(TransitionError::WrongActor { .. })
    ));
}

#[test]
fn errors_have_distinct_codes_and_bilingual_messages() {
    let errors = [
        TransitionError::NotAllowed {
            from: S::Rejected,
            command: CommandKind::Withdraw,
        },
        TransitionError::WrongActor {
            command: CommandKind::Approve,
            actor: Reviewer,
        },
        TransitionError::ReasonRequired {
            command: CommandKind::Reject,
        },
        TransitionError::PaymentRequired {
            command: CommandKind::Receive,
        },
        TransitionError::ChainIncomplete {
            command: CommandKind::Approve,
        },
    ];
    let codes: std::collections::HashSet<&str> = errors.iter().map(|e| e.code()).collect();
    assert_eq!(codes.len(), errors.len());
    assert_eq!(
        errors[0].message_ja(),
        "「却下」の申請に「取下げ」はできません"
    );
    assert!(errors[0].message_en().contains("Withdraw"));
    assert!(errors[1].message_ja().contains("審査担当者"));
    assert!(errors[3].message_ja().contains("手数料"));
    assert!(errors[4].message_en().contains("approval chain"));
}

#[test]
fn available_commands_follow_the_table() {
    assert_eq!(
        available_commands(S::Received, Reviewer),
        vec![CommandKind::StartReview, CommandKind::ReturnForCorrection]
    );
    assert_eq!(
        available_commands(S::InReview, Approver),
        vec![CommandKind::Approve, CommandKind::Reject]
    );
    assert_eq!(
        available_commands(S::Returned, Applicant),
        vec![CommandKind::Resubmit, CommandKind::Withdraw]
    );
    assert!(available_commands(S::Completed, System).is_empty());
}

#[test]
fn command_json_and_recorded_reason() {
    let cmd = Command::Reject {
        reasons: reasons(&["要件A", " ", "要件B"]),
    };
    let json = serde_json::to_value(&cmd).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"command": "reject", "reasons": ["要件A", " ", "要件B"]})
    );
    assert_eq!(serde_json::from_value::<Command>(json).unwrap(), cmd);
    assert_eq!(cmd.name(), "reject");
    assert_eq!(cmd.reason().as_deref(), Some("要件A\n要件B"));
    assert_eq!(Command::Withdraw { reason: None }.reason(), None);
    assert_eq!(
        Command::Withdraw {
            reason: Some("転居のため".into())
        }
        .reason()
        .as_deref(),
        Some("転居のため")
    );
    assert_eq!(Command::Submit.reason(), None);
}

fn happy_history() -> Vec<HistoryEntry> {
    let g = paid_chain_done();
    let steps = [
        (Command::Submit, Applicant, "resident-1"),
        (Command::Receive, Reviewer, "staff-1"),
        (Command::StartReview, Reviewer, "staff-1"),
        (
            Command::ReturnForCorrection {
                reasons: reasons(&["印鑑がありません"]),
            },
            Reviewer,
            "staff-1",
        ),
        (Command::Resubmit, Applicant, "resident-1"),
        (Command::Receive, System, "system"),
        (Command::StartReview, Reviewer, "staff-2"),
        (Command::Approve, System, "system"),
    ];
    let mut state = S::Draft;
    let mut entries = Vec::new();
    for (i, (command, kind, id)) in steps.iter().enumerate() {
        let entry = apply(state, command, *kind, id, &g, at(i as u32)).unwrap();
        state = entry.to;
        entries.push(entry);
    }
    entries
}

#[test]
fn apply_records_who_when_and_why() {
    let history = happy_history();
    let returned = &history[3];
    assert_eq!(returned.from, S::InReview);
    assert_eq!(returned.to, S::Returned);
    assert_eq!(returned.command, CommandKind::ReturnForCorrection);
    assert_eq!(returned.actor_id, "staff-1");
    assert_eq!(returned.actor_kind, Reviewer);
    assert_eq!(returned.at, at(3));
    assert_eq!(returned.reason.as_deref(), Some("印鑑がありません"));
    let json = serde_json::to_value(returned).unwrap();
    assert_eq!(json["command"], "return_for_correction");
    assert_eq!(json["actor_kind"], "reviewer");
    assert_eq!(json["from"], "in_review");
    let back: HistoryEntry = serde_json::from_value(json).unwrap();
    assert_eq!(&back, returned);
}

#[test]
fn apply_refuses_like_transition() {
    assert!(matches!(
        apply(
            S::Draft,
            &Command::Approve,
            Approver,
            "x",
            &Guards::default(),
            at(0)
        ),
        Err(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn replay_of_a_recorded_history_gives_its_state() {
    assert_eq!(replay(&[]), Ok(S::Draft));
    assert_eq!(replay(&happy_history()), Ok(S::Approved));
}

#[test]
fn replay_finds_a_gap_in_the_states() {
    let mut history = happy_history();
    history.remove(2);
    assert_eq!(
        replay(&history),
        Err(ReplayError::Discontinuity {
            index: 2,
            expected: S::Received,
            found: S::InReview
        })
    );
}

#[test]
fn replay_finds_a_forged_target() {
    let mut history = happy_history();
    history[7].to = S::Completed;
    assert_eq!(
        replay(&history),
        Err(ReplayError::WrongTarget {
            index: 7,
            expected: S::Approved,
            found: S::Completed
        })
    );
}

#[test]
fn replay_finds_the_wrong_actor_and_a_missing_reason() {
    let mut history = happy_history();
    history[0].actor_kind = Reviewer;
    assert!(matches!(
        replay(&history),
        Err(ReplayError::Transition {
            index: 0,
            source: TransitionError::WrongActor { .. }
        })
    ));
    let mut history = happy_history();
    history[3].reason = Some("   ".into());
    let err = replay(&history).unwrap_err();
    assert!(matches!(
        err,
        ReplayError::Transition {
            index: 3,
            source: TransitionError::ReasonRequired { .. }
        }
    ));
    assert!(err.message_ja().starts_with("履歴の4件目"));
    assert!(err.message_en().starts_with("history entry 4"));
}

#[test]
fn replay_finds_a_move_the_table_does_not_have() {
    let mut history = happy_history();
    history.truncate(1);
    history.push(HistoryEntry {
        from: S::Submitted,
        to: S::Approved,
        command: CommandKind::Approve,
        actor_id: "staff-9".into(),
        actor_kind: Approver,
        at: at(5),
        reason: None,
    });
    assert!(matches!(
        replay(&history),
        Err(ReplayError::Transition {
            index: 1,
            source: TransitionError::NotAllowed { .. }
        })
    ));
}

#[test]
fn replay_finds_time_running_backwards() {
    let mut history = happy_history();
    history[5].at = at(1);
    assert_eq!(replay(&history), Err(ReplayError::OutOfOrder { index: 5 }));
}

#[test]
fn a_stored_unknown_command_does_not_load() {
    let mut json = serde_json::to_value(&happy_history()[0]).unwrap();
    json["command"] = "approve_everything".into();
    assert!(serde_json::from_value::<HistoryEntry>(json).is_err());
    assert!("approve_everything".parse::<CommandKind>().is_err());
    assert_eq!(
        "start_review".parse::<CommandKind>(),
        Ok(CommandKind::StartReview)
    );
}

#[test]
fn reception_numbers_are_formatted_and_read_back() {
    assert_eq!(reception_number("222127", 2026, 42), "222127-2026-000042");
    assert_eq!(
        reception_number("222127", 2026, 1_234_567),
        "222127-2026-1234567"
    );
    let parsed = parse_reception_number("222127-2026-000042").unwrap();
    assert_eq!(
        parsed,
        ReceptionNumber {
            tenant_code: "222127".into(),
            year: 2026,
            seq: 42
        }
    );
    assert_eq!(parsed.to_string(), "222127-2026-000042");
    assert_eq!(
        "222127-2026-1234567"
            .parse::<ReceptionNumber>()
            .unwrap()
            .seq,
        1_234_567
    );
}

#[test]
fn reception_numbers_as_residents_type_them() {
    let expected = parse_reception_number("222127-2026-000042").unwrap();
    for typed in [
        "２２２１２７－２０２６－００００４２",
        " 222127ー2026ー000042\u{3000}",
        "222127−2026−000042",
    ] {
        assert_eq!(
            parse_reception_number(typed),
            Ok(expected.clone()),
            "{typed}"
        );
    }
}

#[test]
fn malformed_reception_numbers_are_refused_with_the_reason() {
    let cases: [(&str, &str); 10] = [
        ("", "reception-number-malformed"),
        ("222127-2026", "reception-number-malformed"),
        ("222127-2026-000042-1", "reception-number-malformed"),
        ("22212-2026-000042", "reception-number-malformed"),
        ("222127-20a6-000042", "reception-number-malformed"),
        ("222128-2026-000042", "reception-number-tenant-code"),
        ("222127-26-000042", "reception-number-year"),
        ("222127-2026-00042", "reception-number-sequence"),
        ("222127-2026-0000042", "reception-number-sequence"),
        (
            "222127-2026-99999999999999999999",
            "reception-number-sequence",
        ),
    ];
    for (input, code) in cases {
        let err = parse_reception_number(input).unwrap_err();
        assert_eq!(err.code(), code, "{input}");
        assert!(!err.message_ja().is_empty() && !err.message_en().is_empty());
    }
    assert!(matches!(
        parse_reception_number("222128-2026-000042"),
        Err(ReceptionNumberError::TenantCode { .. })
    ));
}
