//! Loading keyrings from specs and files: accepted syntax, refused entries, error messages that
//! never leak key material, and the file permission rule.

use std::io::Write as _;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use field_crypto::{Keyring, KeyringError};

/// A key whose standard and URL-safe encodings differ (it contains `+`/`/` vs `-`/`_`).
const KEY_BYTES: [u8; 32] = [0xfb; 32];

fn entry(id: &str, byte: u8) -> String {
    format!("{id}:{}", STANDARD.encode([byte; 32]))
}

fn parse_err(spec: &str) -> KeyringError {
    Keyring::parse(spec).expect_err("spec must be refused")
}

#[test]
fn first_entry_is_current_and_whitespace_is_allowed() {
    let spec = format!(
        "  {} ,\n {}\n,\t{}  \n",
        entry("2026a", 1),
        entry("2025b", 2),
        entry("x_-9", 3)
    );
    let ring = Keyring::parse(&spec).expect("valid");
    assert_eq!(ring.current_key_id(), "2026a");
    assert_eq!(
        ring.key_ids().collect::<Vec<_>>(),
        ["2026a", "2025b", "x_-9"]
    );
}

#[test]
fn all_base64_flavours_give_the_same_key() {
    let sealed = Keyring::parse(&format!("k:{}", STANDARD.encode(KEY_BYTES)))
        .expect("standard")
        .seal_str("secret", "ctx");
    for encoded in [
        STANDARD_NO_PAD.encode(KEY_BYTES),
        URL_SAFE.encode(KEY_BYTES),
        URL_SAFE_NO_PAD.encode(KEY_BYTES),
    ] {
        let ring = Keyring::parse(&format!("k:{encoded}")).expect("accepted flavour");
        assert_eq!(ring.open_str(&sealed, "ctx").expect("same key"), "secret");
    }
}

#[test]
fn empty_specs_are_refused() {
    for spec in ["", "   ", ",", "\n\n", " , \n , "] {
        assert!(matches!(parse_err(spec), KeyringError::Empty), "{spec:?}");
    }
}

#[test]
fn bad_base64_is_refused_by_position_and_id() {
    let spec = format!("{},k2:not*base64!", entry("k1", 1));
    let error = parse_err(&spec);
    assert!(
        matches!(&error, KeyringError::InvalidBase64 { id, position: 2 } if id == "k2"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("#2") && message.contains("k2"),
        "{message}"
    );
    assert!(!message.contains("not*base64"), "{message}");
}

#[test]
fn mixed_alphabets_are_refused() {
    let mut encoded = STANDARD.encode(KEY_BYTES);
    encoded.replace_range(0..1, "_");
    assert!(encoded.contains('+') || encoded.contains('/'));
    assert!(matches!(
        parse_err(&format!("k:{encoded}")),
        KeyringError::InvalidBase64 { .. }
    ));
}

#[test]
fn wrong_key_length_is_refused_without_echoing_the_key() {
    for length in [0usize, 16, 31, 33, 64] {
        let encoded = STANDARD.encode(vec![7u8; length]);
        let error = parse_err(&format!("short:{encoded}"));
        assert!(
            matches!(&error, KeyringError::WrongKeyLength { id, position: 1, length: got } if id == "short" && *got == length),
            "{error:?}"
        );
        if !encoded.is_empty() {
            assert!(!error.to_string().contains(&encoded));
        }
    }
}

#[test]
fn duplicate_ids_are_refused() {
    let spec = format!("{},{},{}", entry("k1", 1), entry("k2", 2), entry("k1", 3));
    let error = parse_err(&spec);
    assert!(
        matches!(&error, KeyringError::DuplicateId { id, position: 3 } if id == "k1"),
        "{error:?}"
    );
}

#[test]
fn malformed_entries_never_echo_what_may_be_key_material() {
    let bare_key = STANDARD.encode(KEY_BYTES);
    let error = parse_err(&format!("{},{bare_key}", entry("k1", 1)));
    assert!(
        matches!(error, KeyringError::MissingSeparator { position: 2 }),
        "{error:?}"
    );
    assert!(!error.to_string().contains(&bare_key));

    // A key pasted where the id belongs (with a stray colon) is not a valid id.
    let error = parse_err(&format!("{bare_key}:{bare_key}"));
    assert!(
        matches!(error, KeyringError::InvalidId { position: 1 }),
        "{error:?}"
    );
    assert!(!error.to_string().contains(&bare_key));

    for bad_id in ["", "a.b", "a b", "鍵", &"x".repeat(33)] {
        let error = parse_err(&format!("{bad_id}:{bare_key}"));
        assert!(
            matches!(error, KeyringError::InvalidId { position: 1 }),
            "{bad_id:?}: {error:?}"
        );
    }
}

fn write_key_file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(contents.as_bytes()).expect("write");
    file.flush().expect("flush");
    file
}

#[cfg(unix)]
fn set_mode(file: &tempfile::NamedTempFile, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn file_accepts_lines_commas_and_comments() {
    let contents = format!(
        "# renkei field keys, newest first\n{}\n\n  # retired after reseal: 2024z\n{},{}\n",
        entry("2026a", 1),
        entry("2025b", 2),
        entry("2025a", 3)
    );
    let file = write_key_file(&contents);
    #[cfg(unix)]
    set_mode(&file, 0o600);
    let ring = Keyring::from_file(file.path()).expect("valid file");
    assert_eq!(
        ring.key_ids().collect::<Vec<_>>(),
        ["2026a", "2025b", "2025a"]
    );
}

#[test]
fn file_with_only_comments_is_empty() {
    let file = write_key_file("# nothing yet\n\n");
    #[cfg(unix)]
    set_mode(&file, 0o600);
    assert!(matches!(
        Keyring::from_file(file.path()),
        Err(KeyringError::Empty)
    ));
}

#[test]
fn missing_file_is_an_io_error() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("absent.keys");
    let error = Keyring::from_file(&path).expect_err("no file");
    assert!(matches!(error, KeyringError::Io { .. }), "{error:?}");
}

#[cfg(unix)]
#[test]
fn file_readable_by_group_or_others_is_refused() {
    let file = write_key_file(&entry("k1", 1));
    for mode in [0o640, 0o604, 0o644, 0o660, 0o620, 0o601] {
        set_mode(&file, mode);
        let error = Keyring::from_file(file.path()).expect_err("insecure mode");
        assert!(
            matches!(error, KeyringError::InsecurePermissions { mode: got, .. } if got == mode),
            "{mode:o}: {error:?}"
        );
        assert!(error.to_string().contains("chmod 600"));
    }
    for mode in [0o600, 0o400] {
        set_mode(&file, mode);
        Keyring::from_file(file.path()).expect("private file is accepted");
    }
}
