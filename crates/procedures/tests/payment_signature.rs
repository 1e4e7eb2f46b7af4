//! Callback signatures of the generic provider: what is accepted, each distinct refusal, and
//! properties of the header parser over arbitrary input.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use procedures::payment::{
    sign, verify_signature, CallbackError, GenericRedirectConfig, GenericRedirectProvider,
    PaymentEvent, PaymentProvider, SIGNATURE_HEADER,
};

const SECRET: &[u8] = b"whsec_test";
const TOLERANCE: u64 = 300;
const BODY: &[u8] = br#"{"event_id":"evt_1","payment_id":"gw_1","status":"captured"}"#;

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_775_000_000, 0).unwrap()
}

fn provider(secret: &[u8]) -> GenericRedirectProvider {
    GenericRedirectProvider::new(GenericRedirectConfig {
        name: "generic".into(),
        base_url: "http://127.0.0.1:9/api".into(),
        secret: secret.to_vec(),
        api_key: None,
        tolerance_seconds: TOLERANCE,
        request_timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn headers(value: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        // Header names arrive in any case.
        ("x-payment-signature".into(), value.into()),
    ]
}

#[test]
fn matches_an_independent_hmac_implementation() {
    // Computed with Python's hmac module, as a gateway written in another language would:
    // hmac.new(b"whsec_test", b"1775000000." + BODY, hashlib.sha256).hexdigest()
    let expected =
        "t=1775000000,v1=55ad531fa78562371b52437775b4e20e5ba1dc02ad0475d2cd462f852347b966";
    assert_eq!(sign(SECRET, 1_775_000_000, BODY), expected);
}

#[test]
fn good_signature_is_accepted_and_read() {
    let header = sign(SECRET, now().timestamp() - 10, BODY);
    let event = provider(SECRET)
        .verify_callback(&headers(&header), BODY, now())
        .unwrap();
    assert_eq!(event.provider_event_id, "evt_1");
    assert_eq!(event.provider_ref, "gw_1");
    assert_eq!(event.event, PaymentEvent::ProviderCaptured);
}

#[test]
fn tampered_body_is_refused() {
    let header = sign(SECRET, now().timestamp(), BODY);
    let tampered = br#"{"event_id":"evt_1","payment_id":"gw_2","status":"captured"}"#;
    assert_eq!(
        provider(SECRET).verify_callback(&headers(&header), tampered, now()),
        Err(CallbackError::BadSignature)
    );
}

#[test]
fn wrong_secret_is_refused() {
    let header = sign(b"someone else", now().timestamp(), BODY);
    assert_eq!(
        provider(SECRET).verify_callback(&headers(&header), BODY, now()),
        Err(CallbackError::BadSignature)
    );
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let t = now().timestamp();
    let old = sign(SECRET, t - 301, BODY);
    assert_eq!(
        provider(SECRET).verify_callback(&headers(&old), BODY, now()),
        Err(CallbackError::StaleTimestamp { age_seconds: 301 })
    );
    let future = sign(SECRET, t + 301, BODY);
    assert_eq!(
        provider(SECRET).verify_callback(&headers(&future), BODY, now()),
        Err(CallbackError::StaleTimestamp { age_seconds: -301 })
    );
    let edge = sign(SECRET, t - 300, BODY);
    assert!(provider(SECRET)
        .verify_callback(&headers(&edge), BODY, now())
        .is_ok());
}

#[test]
fn a_changed_timestamp_breaks_the_signature() {
    let header = sign(SECRET, now().timestamp(), BODY);
    let moved = header.replacen(
        &format!("t={}", now().timestamp()),
        &format!("t={}", now().timestamp() - 1),
        1,
    );
    assert_eq!(
        provider(SECRET).verify_callback(&headers(&moved), BODY, now()),
        Err(CallbackError::BadSignature)
    );
}

#[test]
fn missing_and_malformed_headers_are_refused() {
    let p = provider(SECRET);
    assert_eq!(
        p.verify_callback(&[], BODY, now()),
        Err(CallbackError::MissingSignature)
    );
    let good = sign(SECRET, now().timestamp(), BODY);
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();
    for bad in [
        String::new(),
        "garbage".into(),
        format!("v1={v1}"),
        format!("t={}", now().timestamp()),
        format!("t=abc,v1={v1}"),
        format!("t=-5,v1={v1}"),
        format!("t={},v1={}", now().timestamp(), &v1[..62]),
        format!("t={},v1={}zz", now().timestamp(), &v1[..62]),
        format!("t=1,t={},v1={v1}", now().timestamp()),
    ] {
        assert_eq!(
            p.verify_callback(&headers(&bad), BODY, now()),
            Err(CallbackError::MalformedSignature),
            "{bad:?}"
        );
    }
}

#[test]
fn rotation_any_listed_signature_may_match_and_unknown_keys_are_ignored() {
    let t = now().timestamp();
    let old = sign(b"old secret", t, BODY);
    let new = sign(SECRET, t, BODY);
    let header = format!(
        "t={t},v0=ignored,v1={},v1={}",
        old.split_once(",v1=").unwrap().1,
        new.split_once(",v1=").unwrap().1
    );
    assert!(provider(SECRET)
        .verify_callback(&headers(&header), BODY, now())
        .is_ok());
}

#[test]
fn a_signed_body_that_is_not_an_event_is_refused_as_malformed() {
    for body in [
        &br#"{"event_id":"e","payment_id":"p","status":"pending"}"#[..],
        br#"{"event_id":"e","payment_id":"p","status":"teleported"}"#,
        br#"{"event_id":"","payment_id":"p","status":"captured"}"#,
        b"not json",
    ] {
        let header = sign(SECRET, now().timestamp(), body);
        assert!(matches!(
            provider(SECRET).verify_callback(&headers(&header), body, now()),
            Err(CallbackError::MalformedBody(_))
        ));
    }
}

#[test]
fn failure_reasons_and_spellings_are_read() {
    let body = br#"{"event_id":"e","payment_id":"p","status":"cancelled"}"#;
    let header = sign(SECRET, now().timestamp(), body);
    let event = provider(SECRET)
        .verify_callback(&headers(&header), body, now())
        .unwrap();
    assert_eq!(
        event.event,
        PaymentEvent::ProviderFailed {
            reason: "cancelled".into()
        }
    );
    let body = br#"{"event_id":"e","payment_id":"p","status":"failed","reason":"card declined"}"#;
    let header = sign(SECRET, now().timestamp(), body);
    let event = provider(SECRET)
        .verify_callback(&headers(&header), body, now())
        .unwrap();
    assert_eq!(
        event.event,
        PaymentEvent::ProviderFailed {
            reason: "card declined".into()
        }
    );
}

#[test]
fn the_header_name_constant_matches_the_protocol() {
    assert!(SIGNATURE_HEADER.eq_ignore_ascii_case("x-payment-signature"));
}

proptest! {
    /// Arbitrary headers never panic and are never accepted.
    #[test]
    fn arbitrary_headers_are_refused(header in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..100)) {
        prop_assert!(verify_signature(SECRET, &header, &body, now(), TOLERANCE).is_err());
    }

    /// Headers shaped like the real thing (right keys, random values) never panic and are
    /// never accepted.
    #[test]
    fn near_miss_headers_are_refused(t in any::<i64>(), v1 in "[0-9a-fA-F]{0,70}", extra in "[a-z0-9=,]{0,20}") {
        let header = format!("t={t},v1={v1},{extra}");
        prop_assert!(verify_signature(SECRET, &header, BODY, now(), TOLERANCE).is_err());
    }

    /// Any signed body verifies, and changing any one byte of it breaks the signature.
    #[test]
    fn signatures_bind_every_byte(
        body in proptest::collection::vec(any::<u8>(), 1..200),
        index in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
        skew in -300i64..=300,
    ) {
        let header = sign(SECRET, now().timestamp() + skew, &body);
        prop_assert_eq!(verify_signature(SECRET, &header, &body, now(), TOLERANCE), Ok(()));
        let mut tampered = body.clone();
        let i = index.index(tampered.len());
        tampered[i] ^= flip;
        prop_assert_eq!(
            verify_signature(SECRET, &header, &tampered, now(), TOLERANCE),
            Err(CallbackError::BadSignature)
        );
    }
}
