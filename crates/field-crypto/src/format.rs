//! The text form of a sealed value, `rk1.<key id>.<base64url(nonce || ciphertext || tag)>`,
//! and the key-id rule shared with the keyring spec. Parsing here checks shape only; whether
//! the bytes authenticate is the keyring's business.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The prefix every sealed value starts with (format version 1).
pub const FORMAT_PREFIX: &str = "rk1.";

/// AES-GCM's standard nonce length in bytes (96 bits).
pub(crate) const NONCE_LEN: usize = 12;
/// AES-GCM's authentication tag length in bytes (128 bits).
pub(crate) const TAG_LEN: usize = 16;
/// Longest key id accepted, in bytes.
pub(crate) const MAX_KEY_ID_LEN: usize = 32;

/// A sealed value split into its parts, borrowed from the text where possible.
pub(crate) struct SealedParts<'a> {
    pub key_id: &'a str,
    /// Nonce followed by ciphertext and tag.
    pub payload: Vec<u8>,
}

/// Whether `id` is a well-formed key id: 1 to 32 of `A-Z a-z 0-9 _ -`.
pub(crate) fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Splits `text` into key id and decoded payload, or `None` when it is not our format.
pub(crate) fn parse_sealed(text: &str) -> Option<SealedParts<'_>> {
    let rest = text.strip_prefix(FORMAT_PREFIX)?;
    let (key_id, encoded_payload) = rest.split_once('.')?;
    if !is_valid_key_id(key_id) {
        return None;
    }
    // The strict engine refuses padding and non-canonical trailing bits, so each sealed value
    // has exactly one spelling and a flipped character never decodes to the same bytes.
    let payload = URL_SAFE_NO_PAD.decode(encoded_payload).ok()?;
    if payload.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    Some(SealedParts { key_id, payload })
}

/// Writes the text form of a sealed value.
pub(crate) fn format_sealed(key_id: &str, payload: &[u8]) -> String {
    let encoded_payload = URL_SAFE_NO_PAD.encode(payload);
    let mut text =
        String::with_capacity(FORMAT_PREFIX.len() + key_id.len() + 1 + encoded_payload.len());
    text.push_str(FORMAT_PREFIX);
    text.push_str(key_id);
    text.push('.');
    text.push_str(&encoded_payload);
    text
}

/// Whether `text` looks like a sealed value of this crate (prefix, key id, and a payload long
/// enough to hold nonce and tag). It does not check authenticity; use it to avoid sealing a
/// value twice, not to trust one.
pub fn is_sealed(text: &str) -> bool {
    parse_sealed(text).is_some()
}

/// The id of the key that sealed `text`, or `None` when `text` is not a sealed value. Useful to
/// count which keys stored values still depend on before dropping one from the keyring.
pub fn sealed_key_id(text: &str) -> Option<&str> {
    parse_sealed(text).map(|parts| parts.key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_rule() {
        assert!(is_valid_key_id("2026a"));
        assert!(is_valid_key_id("a_b-C9"));
        assert!(is_valid_key_id(&"x".repeat(32)));
        assert!(!is_valid_key_id(""));
        assert!(!is_valid_key_id(&"x".repeat(33)));
        assert!(!is_valid_key_id("a.b"));
        assert!(!is_valid_key_id("a b"));
        assert!(!is_valid_key_id("鍵"));
    }

    #[test]
    fn format_and_parse_agree() {
        let payload: Vec<u8> = (0..40).collect();
        let text = format_sealed("k1", &payload);
        assert!(text.starts_with("rk1.k1."));
        assert!(text.is_ascii());
        let parts = parse_sealed(&text).expect("own output parses");
        assert_eq!(parts.key_id, "k1");
        assert_eq!(parts.payload, payload);
        assert_eq!(sealed_key_id(&text), Some("k1"));
    }

    #[test]
    fn short_payload_is_not_sealed() {
        let payload = [0u8; NONCE_LEN + TAG_LEN - 1];
        assert!(!is_sealed(&format_sealed("k1", &payload)));
        assert!(is_sealed(&format_sealed("k1", &[0u8; NONCE_LEN + TAG_LEN])));
    }

    #[test]
    fn padded_or_foreign_alphabet_is_not_sealed() {
        let text = format_sealed("k1", &[7u8; 29]);
        assert!(!is_sealed(&format!("{text}=")));
        assert!(!is_sealed(&text.replace("rk1.", "rk2.")));
        assert!(!is_sealed("rk1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_sealed("plain text"));
        assert!(!is_sealed(""));
    }
}
