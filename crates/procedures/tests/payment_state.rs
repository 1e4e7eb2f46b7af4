//! The payment state machine: the documented decisions one by one, then properties over
//! arbitrary sequences of events (duplicates, any order).

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use procedures::payment::{
    transition, Payment, PaymentEvent, PaymentState, ResidentView, Transition,
};

use PaymentEvent as E;
use PaymentState as S;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap()
}

fn payment() -> Payment {
    Payment::new("pay-1", "app-1", 600, "test", t0(), Duration::minutes(30))
}

fn failed(reason: &str) -> PaymentEvent {
    E::ProviderFailed {
        reason: reason.into(),
    }
}

/// The edges a payment may ever take, written as a list independent of the match in
/// `transition`, so a wrong arm there shows up as an edge outside this table.
const EDGES: &[(PaymentState, PaymentState)] = &[
    (S::Pending, S::Authorised),
    (S::Pending, S::Captured),
    (S::Pending, S::Failed),
    (S::Pending, S::Expired),
    (S::Pending, S::Refunded),
    (S::Authorised, S::Captured),
    (S::Authorised, S::Failed),
    (S::Authorised, S::Expired),
    (S::Authorised, S::Refunded),
    (S::Captured, S::Refunded),
    (S::Failed, S::Authorised),
    (S::Failed, S::Captured),
    (S::Failed, S::Refunded),
    (S::Expired, S::Authorised),
    (S::Expired, S::Captured),
    (S::Expired, S::Failed),
    (S::Expired, S::Refunded),
];

#[test]
fn happy_path_with_authorisation() {
    let mut p = payment();
    let later = t0() + Duration::minutes(2);
    assert_eq!(
        p.apply(Some("evt-1"), &E::ProviderAuthorised, later),
        Ok(Transition::Applied {
            from: S::Pending,
            to: S::Authorised,
            late: false
        })
    );
    assert_eq!(p.resident_view(), ResidentView::Processing);
    p.apply(Some("evt-2"), &E::ProviderCaptured, later).unwrap();
    assert_eq!(p.state, S::Captured);
    assert_eq!(p.updated_at, later);
    assert_eq!(p.resident_view(), ResidentView::Paid);
    assert!(!p.late);
}

#[test]
fn the_same_callback_twice_is_unchanged() {
    let mut p = payment();
    p.apply(Some("evt-1"), &E::ProviderCaptured, t0()).unwrap();
    assert_eq!(
        p.apply(Some("evt-1"), &E::ProviderCaptured, t0()),
        Ok(Transition::Unchanged)
    );
    assert_eq!(p.state, S::Captured);
}

#[test]
fn a_replayed_old_event_id_is_unchanged_even_when_no_longer_latest() {
    let mut p = payment();
    p.apply(Some("evt-auth"), &E::ProviderAuthorised, t0())
        .unwrap();
    p.apply(Some("evt-fail"), &failed("declined"), t0())
        .unwrap();
    // Without the id memory this would move Failed -> Authorised again.
    assert_eq!(
        p.apply(Some("evt-auth"), &E::ProviderAuthorised, t0()),
        Ok(Transition::Unchanged)
    );
    assert_eq!(p.state, S::Failed);
    assert_eq!(p.failure_reason.as_deref(), Some("declined"));
}

#[test]
fn a_capture_after_our_expiry_wins_and_is_flagged_late() {
    let mut p = payment();
    p.apply(None, &E::Expire, t0() + Duration::minutes(31))
        .unwrap();
    assert_eq!(p.resident_view(), ResidentView::NotPaid);
    assert_eq!(
        p.apply(
            Some("evt-9"),
            &E::ProviderCaptured,
            t0() + Duration::minutes(40)
        ),
        Ok(Transition::Applied {
            from: S::Expired,
            to: S::Captured,
            late: true
        })
    );
    assert!(p.late);
    assert_eq!(p.resident_view(), ResidentView::Paid);
}

#[test]
fn captured_to_failed_is_refused_and_not_remembered() {
    let mut p = payment();
    p.apply(Some("evt-1"), &E::ProviderCaptured, t0()).unwrap();
    let err = p.apply(Some("evt-2"), &failed("x"), t0()).unwrap_err();
    assert_eq!(err.from, S::Captured);
    assert!(err.to_string().contains("captured"));
    assert_eq!(p.state, S::Captured);
    // Refused events stay refused on redelivery instead of turning into silent repeats.
    assert!(p.apply(Some("evt-2"), &failed("x"), t0()).is_err());
}

#[test]
fn refunded_is_terminal() {
    for event in [
        E::ProviderAuthorised,
        E::ProviderCaptured,
        E::ProviderRefunded,
        E::Expire,
    ] {
        assert_eq!(
            transition(S::Refunded, &event),
            Ok(Transition::Unchanged),
            "{event:?}"
        );
    }
    assert!(transition(S::Refunded, &failed("x")).is_err());
}

#[test]
fn a_failed_payment_can_be_retried_at_the_provider() {
    let mut p = payment();
    p.apply(Some("e1"), &failed("card declined"), t0()).unwrap();
    assert_eq!(p.resident_view(), ResidentView::NotPaid);
    p.apply(Some("e2"), &E::ProviderCaptured, t0()).unwrap();
    assert_eq!(p.state, S::Captured);
    assert!(!p.late, "only news after our own expiry is late");
}

#[test]
fn expiry_does_not_touch_a_payment_that_is_over() {
    for from in [S::Captured, S::Refunded, S::Failed, S::Expired] {
        assert_eq!(transition(from, &E::Expire), Ok(Transition::Unchanged));
    }
}

#[test]
fn payment_record_round_trips_through_json() {
    let mut p = payment();
    p.provider_ref = Some("gw-1".into());
    p.apply(Some("evt-1"), &E::ProviderAuthorised, t0())
        .unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let back: Payment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
}

fn any_event() -> impl Strategy<Value = PaymentEvent> {
    prop_oneof![
        Just(E::ProviderAuthorised),
        Just(E::ProviderCaptured),
        "[a-z]{0,8}".prop_map(|reason| E::ProviderFailed { reason }),
        Just(E::ProviderRefunded),
        Just(E::Expire),
    ]
}

fn any_state() -> impl Strategy<Value = PaymentState> {
    proptest::sample::select(PaymentState::ALL.to_vec())
}

proptest! {
    #[test]
    fn every_move_is_in_the_table_and_repeats_are_unchanged(from in any_state(), event in any_event()) {
        match transition(from, &event) {
            Ok(Transition::Applied { from: f, to, late }) => {
                prop_assert_eq!(f, from);
                prop_assert!(EDGES.contains(&(from, to)), "{:?} -> {:?}", from, to);
                prop_assert_eq!(late, from == S::Expired && matches!(to, S::Authorised | S::Captured | S::Refunded));
                // Applying the same event again in the new state changes nothing.
                prop_assert_eq!(transition(to, &event), Ok(Transition::Unchanged));
            }
            Ok(Transition::Unchanged) => {}
            Err(e) => {
                prop_assert!(matches!(event, E::ProviderFailed { .. }), "only failures are refused");
                prop_assert!(matches!(from, S::Captured | S::Refunded), "refused from {:?}", from);
                prop_assert_eq!(e.from, from);
            }
        }
    }

    /// Any sequence of callbacks (ids drawn from a small pool, so duplicates are common),
    /// in any order, interleaved with our own expiry.
    #[test]
    fn sequences_never_lose_a_capture(
        steps in proptest::collection::vec((proptest::option::of(0u8..6), any_event()), 0..40)
    ) {
        let mut p = payment();
        let mut captured = false;
        let mut refunded = false;
        for (id, event) in &steps {
            let id = id.map(|n| format!("evt-{n}"));
            let seen_before = id.as_ref().is_some_and(|id| p.seen_event_ids.contains(id));
            let before = p.clone();
            match p.apply(id.as_deref(), event, t0()) {
                Ok(Transition::Applied { from, to, .. }) => {
                    prop_assert!(!seen_before);
                    prop_assert_eq!(from, before.state);
                    prop_assert_eq!(to, p.state);
                    prop_assert!(EDGES.contains(&(from, to)));
                }
                Ok(Transition::Unchanged) => prop_assert_eq!(p.state, before.state),
                Err(_) => prop_assert_eq!(&p, &before),
            }
            if seen_before {
                prop_assert_eq!(&p, &before);
            }
            if p.state == S::Captured { captured = true; }
            if p.state == S::Refunded { refunded = true; }
            if refunded {
                prop_assert_eq!(p.state, S::Refunded);
            } else if captured {
                prop_assert_eq!(p.state, S::Captured);
            }
        }
    }
}

#[test]
fn a_failure_after_our_expiry_is_recorded_but_not_flagged() {
    let mut p = payment();
    p.apply(None, &E::Expire, t0()).unwrap();
    assert_eq!(
        p.apply(Some("e1"), &failed("session timed out"), t0()),
        Ok(Transition::Applied {
            from: S::Expired,
            to: S::Failed,
            late: false
        })
    );
    assert!(!p.late);
    assert!(!S::Captured.may_still_be_paid() && !S::Refunded.may_still_be_paid());
    assert!(S::Expired.may_still_be_paid() && S::Failed.may_still_be_paid());
}
