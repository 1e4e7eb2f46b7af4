//! Accounts of people (staff and residents) and signing in with a password, with a
//! lockout after repeated failures so that passwords cannot be guessed online.

use crate::password;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A person who signs in. Staff may have a local password; anyone may be linked to an
/// OpenID Connect identity (issuer and subject).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// Unique, case-insensitive; stored lower-cased.
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// An argon2id PHC string; `None` for accounts that only sign in through OIDC.
    pub password_hash: Option<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_subject: Option<String>,
    pub failed_sign_ins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn new(username: &str, display_name: impl Into<String>, now: DateTime<Utc>) -> User {
        User {
            id: uuid::Uuid::new_v4().to_string(),
            username: normalize_username(username),
            display_name: display_name.into(),
            email: None,
            password_hash: None,
            oidc_issuer: None,
            oidc_subject: None,
            failed_sign_ins: 0,
            locked_until: None,
            disabled: false,
            created_at: now,
        }
    }
}

/// User names compare without case or surrounding space.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

/// Whether a user name is acceptable: 3–64 of letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_username(username: &str) -> bool {
    let name = normalize_username(username);
    (3..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// How many failures lock an account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub max_failures: u32,
    pub duration: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            max_failures: 5,
            duration: Duration::minutes(15),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    Accepted,
    WrongPassword,
    /// Locked after too many failures; a right password does not unlock it early.
    Locked {
        until: DateTime<Utc>,
    },
    /// This failure was the one too many: the account is locked from now on.
    JustLocked {
        until: DateTime<Utc>,
    },
    Disabled,
    /// The account has no local password (OIDC only).
    NoPassword,
}

/// Checks a password against the account and updates its failure count and lock;
/// the caller saves the user afterwards, whatever the outcome.
pub fn sign_in(user: &mut User, password: &str, now: DateTime<Utc>, lockout: Lockout) -> SignIn {
    if user.disabled {
        password::verify_nothing(password);
        return SignIn::Disabled;
    }
    if let Some(until) = user.locked_until.filter(|until| *until > now) {
        password::verify_nothing(password);
        return SignIn::Locked { until };
    }
    let Some(stored) = &user.password_hash else {
        password::verify_nothing(password);
        return SignIn::NoPassword;
    };
    if password::verify(stored, password) {
        user.failed_sign_ins = 0;
        user.locked_until = None;
        return SignIn::Accepted;
    }
    user.failed_sign_ins += 1;
    if user.failed_sign_ins >= lockout.max_failures {
        let until = now + lockout.duration;
        user.locked_until = Some(until);
        user.failed_sign_ins = 0;
        return SignIn::JustLocked { until };
    }
    SignIn::WrongPassword
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_account_even_against_the_right_password() {
        let now = Utc::now();
        let mut user = User::new(" Tanaka ", "田中", now);
        assert_eq!(user.username, "tanaka");
        user.password_hash = Some(password::hash("富士山が見える静岡の朝").unwrap());
        let lockout = Lockout::default();
        for _ in 0..4 {
            assert_eq!(
                sign_in(&mut user, "wrong", now, lockout),
                SignIn::WrongPassword
            );
        }
        let locked = sign_in(&mut user, "wrong", now, lockout);
        assert!(matches!(locked, SignIn::JustLocked { .. }), "{locked:?}");
        assert!(matches!(
            sign_in(&mut user, "富士山が見える静岡の朝", now, lockout),
            SignIn::Locked { .. }
        ));
        let later = now + Duration::minutes(16);
        assert_eq!(
            sign_in(&mut user, "富士山が見える静岡の朝", later, lockout),
            SignIn::Accepted
        );
        assert_eq!(user.failed_sign_ins, 0);
    }

    #[test]
    fn user_names_are_checked() {
        assert!(valid_username("suzuki.taro"));
        assert!(valid_username("admin@pref.shizuoka"));
        assert!(!valid_username("ab"));
        assert!(!valid_username("robert'); drop table users;--"));
    }
}
