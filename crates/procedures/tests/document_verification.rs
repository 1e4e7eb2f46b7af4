//! Verification codes: canonical form, forgiving parsing of what people type, refusal of
//! anything else, and the document digest.

use procedures::document::{document_digest, VerificationCode, VerificationCodeError};
use proptest::prelude::*;

const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[test]
fn canonical_form_is_four_groups_of_crockford_symbols() {
    let code = VerificationCode::from_bytes([0; 10]);
    assert_eq!(code.to_string(), "0000-0000-0000-0000");
    let code = VerificationCode::from_bytes([0xff; 10]);
    assert_eq!(code.to_string(), "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
    // 0x00..01 is the lowest bit: the last symbol is 1.
    let mut bytes = [0u8; 10];
    bytes[9] = 1;
    assert_eq!(
        VerificationCode::from_bytes(bytes).to_string(),
        "0000-0000-0000-0001"
    );
    // The first symbol holds the top five bits of the first byte.
    bytes = [0u8; 10];
    bytes[0] = 0b1000_0000;
    assert_eq!(
        VerificationCode::from_bytes(bytes).to_string(),
        "G000-0000-0000-0000"
    );
}

#[test]
fn generated_codes_differ_and_parse_back() {
    let a = VerificationCode::generate().unwrap();
    let b = VerificationCode::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(VerificationCode::parse(&a.to_string()).unwrap(), a);
}

#[test]
fn parsing_forgives_what_hands_and_imes_do() {
    let code: VerificationCode = "7K3M-Q9TD-2XWB-H4NE".parse().unwrap();
    for typed in [
        "7k3m-q9td-2xwb-h4ne",
        "7K3MQ9TD2XWBH4NE",
        " 7K3M Q9TD 2XWB H4NE ",
        "７Ｋ３Ｍ－Ｑ９ＴＤ－２ＸＷＢ－Ｈ４ＮＥ",
        "7K3M--Q9TD-2XWB-H4NE",
    ] {
        assert_eq!(VerificationCode::parse(typed).unwrap(), code, "{typed}");
    }
    let with_zero_and_one: VerificationCode = "0000-1111-0000-1111".parse().unwrap();
    assert_eq!(
        VerificationCode::parse("OooO-IiLl-0000-1111").unwrap(),
        with_zero_and_one
    );
}

#[test]
fn garbage_is_refused_with_the_reason() {
    assert_eq!(
        VerificationCode::parse("7K3M-Q9TD-2XWB-H4N"),
        Err(VerificationCodeError::WrongLength { found: 15 })
    );
    assert_eq!(
        VerificationCode::parse("7K3M-Q9TD-2XWB-H4NEX"),
        Err(VerificationCodeError::WrongLength { found: 17 })
    );
    assert_eq!(
        VerificationCode::parse(""),
        Err(VerificationCodeError::WrongLength { found: 0 })
    );
    // U is left out of Crockford's alphabet on purpose.
    assert_eq!(
        VerificationCode::parse("7K3M-Q9TD-2XWB-H4NU"),
        Err(VerificationCodeError::InvalidCharacter { character: 'U' })
    );
    assert_eq!(
        VerificationCode::parse("検証コード"),
        Err(VerificationCodeError::InvalidCharacter { character: '検' })
    );
}

#[test]
fn serde_uses_the_canonical_string() {
    let code = VerificationCode::from_bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let json = serde_json::to_string(&code).unwrap();
    assert_eq!(json, format!("\"{code}\""));
    let back: VerificationCode = serde_json::from_str(&json.to_lowercase()).unwrap();
    assert_eq!(back, code);
    assert!(serde_json::from_str::<VerificationCode>("\"not a code\"").is_err());
}

#[test]
fn digest_is_sha256_hex() {
    // The SHA-256 test vector of FIPS 180-2 for "abc".
    assert_eq!(
        document_digest(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(document_digest(b"").len(), 64);
}

proptest! {
    #[test]
    fn display_then_parse_round_trips(bytes in any::<[u8; 10]>()) {
        let code = VerificationCode::from_bytes(bytes);
        let shown = code.to_string();
        prop_assert_eq!(shown.len(), 19);
        prop_assert_eq!(VerificationCode::parse(&shown).unwrap(), code);
        prop_assert_eq!(VerificationCode::parse(&shown.replace('-', "").to_lowercase()).unwrap(), code);
        prop_assert_eq!(code.as_bytes(), &bytes);
    }

    #[test]
    fn every_sixteen_symbol_string_is_a_code_and_canonicalises(symbols in proptest::collection::vec(0usize..32, 16)) {
        let text: String = symbols.iter().map(|&i| CROCKFORD.as_bytes()[i] as char).collect();
        let code = VerificationCode::parse(&text).unwrap();
        prop_assert_eq!(code.to_string().replace('-', ""), text);
    }

    #[test]
    fn arbitrary_input_never_panics_and_only_valid_shapes_parse(input in "\\PC{0,40}") {
        if let Ok(code) = VerificationCode::parse(&input) {
            // Whatever parsed must have held exactly 16 code symbols once separators are removed.
            let symbols = jp::width::normalize(&input)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .count();
            prop_assert_eq!(symbols, 16);
            prop_assert_eq!(VerificationCode::parse(&code.to_string()).unwrap(), code);
        }
    }

    #[test]
    fn wrong_lengths_are_refused(symbols in proptest::collection::vec(0usize..32, 0..40)) {
        prop_assume!(symbols.len() != 16);
        let text: String = symbols.iter().map(|&i| CROCKFORD.as_bytes()[i] as char).collect();
        prop_assert_eq!(
            VerificationCode::parse(&text),
            Err(VerificationCodeError::WrongLength { found: symbols.len() })
        );
    }
}
