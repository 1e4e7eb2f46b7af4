//! Property tests: sealing round-trips for any bytes and context, and opening or inspecting any
//! string whatsoever returns an error instead of panicking.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use field_crypto::{is_sealed, sealed_key_id, Keyring, OpenError};
use proptest::prelude::*;

fn ring() -> Keyring {
    let spec = format!(
        "k2:{},k1:{}",
        STANDARD.encode([2u8; 32]),
        STANDARD.encode([1u8; 32])
    );
    Keyring::parse(&spec).expect("valid spec")
}

proptest! {
    #[test]
    fn open_of_seal_returns_the_plaintext(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        context in any::<String>(),
    ) {
        let ring = ring();
        let sealed = ring.seal(&plaintext, &context);
        prop_assert!(is_sealed(&sealed));
        prop_assert!(ring.is_current(&sealed));
        let opened = ring.open(&sealed, &context).expect("opens");
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn other_context_never_opens(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        context in any::<String>(),
        other in any::<String>(),
    ) {
        prop_assume!(context != other);
        let ring = ring();
        let sealed = ring.seal(&plaintext, &context);
        prop_assert_eq!(ring.open(&sealed, &other).err(), Some(OpenError::Tampered));
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>(), context in any::<String>()) {
        let ring = ring();
        let opened = ring.open(&text, &context);
        prop_assert!(opened.is_err());
        let _ = ring.open_str(&text, &context);
        let _ = ring.reseal(&text, &context);
        let _ = ring.is_current(&text);
        let _ = is_sealed(&text);
        let _ = sealed_key_id(&text);
    }

    #[test]
    fn format_shaped_strings_never_panic(
        id in "[A-Za-z0-9_-]{0,34}",
        payload in "[A-Za-z0-9_=+/-]{0,80}",
        context in any::<String>(),
    ) {
        let ring = ring();
        let text = format!("rk1.{id}.{payload}");
        let opened = ring.open(&text, &context);
        prop_assert!(opened.is_err());
        prop_assert_eq!(is_sealed(&text), sealed_key_id(&text).is_some());
    }

    #[test]
    fn arbitrary_specs_never_panic(spec in any::<String>()) {
        let _ = Keyring::parse(&spec);
    }
}
