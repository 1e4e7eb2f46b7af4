//! End-to-end behaviour of sealing and opening through the public API: round trips, the
//! context rule, tampering, unknown keys, malformed input and key rotation.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use field_crypto::{is_sealed, sealed_key_id, Keyring, OpenError};

const CONTEXT: &str = "application:123:applicant_name";

fn entry(id: &str, byte: u8) -> String {
    format!("{id}:{}", STANDARD.encode([byte; 32]))
}

fn keyring(spec: &str) -> Keyring {
    Keyring::parse(spec).expect("test spec is valid")
}

#[test]
fn round_trip_bytes_and_text() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring.seal(b"\x00\xffbinary", CONTEXT);
    assert_eq!(
        ring.open(&sealed, CONTEXT).expect("opens").as_slice(),
        b"\x00\xffbinary"
    );

    let sealed = ring.seal_str("山田 太郎", CONTEXT);
    assert!(sealed.is_ascii());
    assert!(sealed.starts_with("rk1.k1."));
    assert!(is_sealed(&sealed));
    assert_eq!(ring.open_str(&sealed, CONTEXT).expect("opens"), "山田 太郎");

    let empty = ring.seal(b"", CONTEXT);
    assert!(ring.open(&empty, CONTEXT).expect("opens").is_empty());
}

#[test]
fn sealed_value_never_contains_the_plaintext() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring.seal_str("tanaka@example.jp", CONTEXT);
    assert!(!sealed.contains("tanaka"));
}

#[test]
fn two_seals_of_the_same_text_differ() {
    let ring = keyring(&entry("k1", 1));
    let first = ring.seal_str("same", CONTEXT);
    let second = ring.seal_str("same", CONTEXT);
    assert_ne!(first, second);
    assert_eq!(ring.open_str(&first, CONTEXT).expect("opens"), "same");
    assert_eq!(ring.open_str(&second, CONTEXT).expect("opens"), "same");
}

#[test]
fn wrong_context_is_tampered() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring.seal_str("山田 太郎", CONTEXT);
    for other in [
        "application:124:applicant_name",
        "application:123:address",
        "",
    ] {
        assert_eq!(ring.open(&sealed, other).err(), Some(OpenError::Tampered));
    }
}

#[test]
fn every_flipped_payload_byte_is_tampered() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring.seal_str("secret", CONTEXT);
    let encoded = sealed.strip_prefix("rk1.k1.").expect("own prefix");
    let payload = URL_SAFE_NO_PAD.decode(encoded).expect("own payload");
    for index in 0..payload.len() {
        let mut changed = payload.clone();
        changed[index] ^= 0x01;
        let forged = format!("rk1.k1.{}", URL_SAFE_NO_PAD.encode(&changed));
        assert_eq!(
            ring.open(&forged, CONTEXT).err(),
            Some(OpenError::Tampered),
            "flipping byte {index} must not open"
        );
    }
}

#[test]
fn truncated_or_extended_payload_does_not_open() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring.seal_str("secret", CONTEXT);
    let encoded = sealed.strip_prefix("rk1.k1.").expect("own prefix");
    let mut payload = URL_SAFE_NO_PAD.decode(encoded).expect("own payload");
    payload.pop();
    let truncated = format!("rk1.k1.{}", URL_SAFE_NO_PAD.encode(&payload));
    assert_eq!(
        ring.open(&truncated, CONTEXT).err(),
        Some(OpenError::Tampered)
    );
    payload.extend_from_slice(&[0, 0]);
    let extended = format!("rk1.k1.{}", URL_SAFE_NO_PAD.encode(&payload));
    assert_eq!(
        ring.open(&extended, CONTEXT).err(),
        Some(OpenError::Tampered)
    );
}

#[test]
fn same_id_with_other_key_material_is_tampered() {
    let sealed = keyring(&entry("k1", 1)).seal_str("secret", CONTEXT);
    let impostor = keyring(&entry("k1", 2));
    assert_eq!(
        impostor.open(&sealed, CONTEXT).err(),
        Some(OpenError::Tampered)
    );
}

#[test]
fn unknown_key_id_is_reported() {
    let sealed = keyring(&entry("k1", 1)).seal_str("secret", CONTEXT);
    let other = keyring(&entry("k2", 2));
    assert_eq!(
        other.open(&sealed, CONTEXT).err(),
        Some(OpenError::UnknownKey("k1".to_owned()))
    );
}

#[test]
fn malformed_inputs_are_malformed() {
    let ring = keyring(&entry("k1", 1));
    let valid = ring.seal_str("secret", CONTEXT);
    let long_id = format!("rk1.{}.{}", "x".repeat(33), &valid[7..]);
    let malformed = [
        "",
        "rk1",
        "rk1.",
        "rk1.k1",
        "rk1.k1.",
        "rk1..AAAA",
        "rk1.k1.AAAA",
        "rk1.k1.!!!!",
        "rk1.k 1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "rk2.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "RK1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "plain applicant name",
        "山田 太郎",
        long_id.as_str(),
    ];
    for text in malformed {
        assert_eq!(
            ring.open(text, CONTEXT).err(),
            Some(OpenError::Malformed),
            "{text:?}"
        );
        assert!(!is_sealed(text), "{text:?}");
        assert!(!ring.is_current(text), "{text:?}");
    }
    let padded = format!("{valid}=");
    assert_eq!(
        ring.open(&padded, CONTEXT).err(),
        Some(OpenError::Malformed)
    );
    let standard_alphabet = valid.replace(['-', '_'], "+");
    if standard_alphabet != valid {
        assert_eq!(
            ring.open(&standard_alphabet, CONTEXT).err(),
            Some(OpenError::Malformed)
        );
    }
}

#[test]
fn non_utf8_plaintext_is_reported_by_open_str() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring.seal(&[0xff, 0xfe], CONTEXT);
    assert_eq!(
        ring.open_str(&sealed, CONTEXT).err(),
        Some(OpenError::NotUtf8)
    );
}

#[test]
fn rotation_keeps_old_values_readable_until_resealed() {
    let old_ring = keyring(&entry("k1", 1));
    let sealed_with_k1 = old_ring.seal_str("山田 太郎", CONTEXT);
    assert!(old_ring.is_current(&sealed_with_k1));

    let rotated = keyring(&format!("{},{}", entry("k2", 2), entry("k1", 1)));
    assert_eq!(rotated.current_key_id(), "k2");
    assert_eq!(
        rotated
            .open_str(&sealed_with_k1, CONTEXT)
            .expect("old key opens"),
        "山田 太郎"
    );
    assert!(!rotated.is_current(&sealed_with_k1));

    let resealed = rotated.reseal(&sealed_with_k1, CONTEXT).expect("reseals");
    assert!(rotated.is_current(&resealed));
    assert_eq!(sealed_key_id(&resealed), Some("k2"));
    assert_eq!(
        rotated.open_str(&resealed, CONTEXT).expect("opens"),
        "山田 太郎"
    );

    // Once every field is resealed, the old key can leave the ring.
    let without_k1 = keyring(&entry("k2", 2));
    assert_eq!(
        without_k1.open_str(&resealed, CONTEXT).expect("opens"),
        "山田 太郎"
    );
    assert_eq!(
        without_k1.open(&sealed_with_k1, CONTEXT).err(),
        Some(OpenError::UnknownKey("k1".to_owned()))
    );
}

#[test]
fn reseal_keeps_the_context_rule_and_reports_errors() {
    let ring = keyring(&format!("{},{}", entry("k2", 2), entry("k1", 1)));
    let sealed = keyring(&entry("k1", 1)).seal_str("secret", CONTEXT);
    assert_eq!(
        ring.reseal(&sealed, "application:9:other").err(),
        Some(OpenError::Tampered)
    );
    assert_eq!(
        ring.reseal("nonsense", CONTEXT).err(),
        Some(OpenError::Malformed)
    );
    let resealed = ring.reseal(&sealed, CONTEXT).expect("reseals");
    assert_eq!(
        ring.open(&resealed, "application:9:other").err(),
        Some(OpenError::Tampered)
    );
}

#[test]
fn debug_shows_ids_but_never_keys() {
    let first = Keyring::generate_key_entry("2026a").expect("valid id");
    let second = Keyring::generate_key_entry("2025b").expect("valid id");
    let ring = keyring(&format!("{first},{second}"));
    let debug = format!("{ring:?}");
    let pretty = format!("{ring:#?}");
    assert!(
        debug.contains("2026a") && debug.contains("2025b"),
        "{debug}"
    );
    assert!(debug.contains("current"), "{debug}");
    for entry in [&first, &second] {
        let (_, encoded_key) = entry.split_once(':').expect("id:key");
        assert!(!debug.contains(encoded_key));
        assert!(!pretty.contains(encoded_key));
    }
}

#[test]
fn generated_entries_are_valid_and_fresh() {
    let first = Keyring::generate_key_entry("2026a").expect("valid id");
    let second = Keyring::generate_key_entry("2026a").expect("valid id");
    assert_ne!(first, second);
    let (id, encoded_key) = first.split_once(':').expect("id:key");
    assert_eq!(id, "2026a");
    assert_eq!(STANDARD.decode(encoded_key).expect("base64").len(), 32);
    let ring = keyring(&first);
    assert_eq!(ring.current_key_id(), "2026a");
    assert!(Keyring::generate_key_entry("bad id").is_err());
    assert!(Keyring::generate_key_entry("").is_err());
}
