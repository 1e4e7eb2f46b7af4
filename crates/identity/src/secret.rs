//! API keys and session tokens: random secrets shown once to their holder and kept
//! only as SHA-256 hashes, so a copy of the database gives no working credential.
//!
//! An API key reads `rk_<id>_<secret>`: the id (public, 16 hex digits) finds the record
//! without scanning, the secret (32 random bytes, base64url) proves possession. SHA-256
//! rather than argon2 is right here: the secrets are random, not chosen by people, so
//! there is nothing to guess that a slow hash would protect.

use crate::role::{Grant, Scope};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const KEY_PREFIX: &str = "rk_";

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub grant: Grant,
    pub scopes: Vec<Scope>,
    /// What the key is for, in the creator's words.
    pub label: String,
    /// SHA-256 of the secret part, hex.
    pub secret_hash: String,
    /// The actor who created it (`user:…`, `key:…` or `cli`).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a presented key is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    Malformed,
    Unknown,
    WrongSecret,
    Revoked,
    Expired,
}

impl ApiKeyRecord {
    /// A new key and the token to hand to its holder (shown once, never stored).
    pub fn generate(
        grant: Grant,
        scopes: Vec<Scope>,
        label: impl Into<String>,
        created_by: impl Into<String>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (ApiKeyRecord, String) {
        let id = hex(&random_bytes::<8>());
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let token = format!("{KEY_PREFIX}{id}_{secret}");
        let record = ApiKeyRecord {
            id,
            grant,
            scopes,
            label: label.into(),
            secret_hash: sha256_hex(&secret),
            created_by: created_by.into(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        (record, token)
    }

    /// Checks a presented secret against this record.
    pub fn verify(&self, secret: &str, now: DateTime<Utc>) -> Result<(), KeyRejection> {
        if !constant_time_eq(sha256_hex(secret).as_bytes(), self.secret_hash.as_bytes()) {
            return Err(KeyRejection::WrongSecret);
        }
        if self.revoked_at.is_some_and(|at| at <= now) {
            return Err(KeyRejection::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyRejection::Expired);
        }
        Ok(())
    }
}

/// Splits `rk_<id>_<secret>` into id and secret; `None` when it is not an API key.
pub fn parse_api_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = (32..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// A signed-in session of a user, found by the hash of its cookie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub token_hash: String,
    pub user_id: String,
    /// Sent back by the browser with every unsafe request (double submit), so another
    /// site cannot make a signed-in browser act.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl SessionRecord {
    /// A new session and its cookie value.
    pub fn start(
        user_id: impl Into<String>,
        now: DateTime<Utc>,
        lifetime: Duration,
    ) -> (SessionRecord, String) {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let record = SessionRecord {
            token_hash: sha256_hex(&token),
            user_id: user_id.into(),
            csrf_token: URL_SAFE_NO_PAD.encode(random_bytes::<24>()),
            created_at: now,
            expires_at: now + lifetime,
        };
        (record, token)
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }

    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(presented.as_bytes(), self.csrf_token.as_bytes())
    }
}

/// A fresh random token for one-time use (OIDC state records and the like).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference, so response times say nothing
/// about how much of a secret was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;

    #[test]
    fn a_key_verifies_only_with_its_secret_and_while_valid() {
        let now = Utc::now();
        let (mut record, token) = ApiKeyRecord::generate(
            Grant::in_tenant("222127", Role::Publisher),
            Scope::defaults_for(Role::Publisher),
            "river sensors",
            "cli",
            Some(now + Duration::days(30)),
            now,
        );
        let (id, secret) = parse_api_key(&token).unwrap();
        assert_eq!(id, record.id);
        assert!(!token.contains(&record.secret_hash));
        assert_eq!(record.verify(secret, now), Ok(()));
        assert_eq!(record.verify("x", now), Err(KeyRejection::WrongSecret));
        assert_eq!(
            record.verify(secret, now + Duration::days(31)),
            Err(KeyRejection::Expired)
        );
        record.revoked_at = Some(now);
        assert_eq!(record.verify(secret, now), Err(KeyRejection::Revoked));
    }

    #[test]
    fn only_well_formed_keys_parse() {
        assert!(
            parse_api_key("rk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .is_some()
        );
        for bad in [
            "",
            "rk_",
            "rk_xyz_abc",
            "Bearer rk_",
            "rk_0123456789abcdef_short",
            "rk_0123456789abcdeg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(parse_api_key(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sessions_check_their_csrf_token() {
        let now = Utc::now();
        let (session, token) = SessionRecord::start("u1", now, Duration::hours(8));
        assert_eq!(session.token_hash, sha256_hex(&token));
        assert!(session.csrf_matches(&session.csrf_token.clone()));
        assert!(!session.csrf_matches("forged"));
        assert!(session.is_live(now));
        assert!(!session.is_live(now + Duration::hours(9)));
    }
}
