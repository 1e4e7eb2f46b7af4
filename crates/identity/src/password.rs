//! Passwords of local staff accounts: argon2id hashes (PHC strings, so parameters can
//! be raised later without breaking stored hashes) and the rules a new password must
//! meet. The rules follow NIST SP 800-63B: length over composition, no commonly used
//! passwords, nothing derived from the account name.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// Passwords people pick first; a real deployment also screens against a breach list.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "passw0rd",
    "123456789012",
    "1234567890",
    "qwertyuiop",
    "qwerty123456",
    "iloveyou",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "changeme",
    "renkei",
    "abc123456789",
    "111111111111",
    "000000000000",
];

/// One way a proposed password falls short, said in Japanese and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    Common,
    ContainsUsername,
}

impl PasswordProblem {
    pub fn message_ja(&self) -> String {
        match self {
            PasswordProblem::TooShort => format!("パスワードは{MIN_LENGTH}文字以上にしてください"),
            PasswordProblem::TooLong => format!("パスワードは{MAX_LENGTH}文字以下にしてください"),
            PasswordProblem::Common => "よく使われるパスワードは使えません".into(),
            PasswordProblem::ContainsUsername => {
                "パスワードにユーザー名を含めないでください".into()
            }
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            PasswordProblem::TooShort => {
                format!("the password must have at least {MIN_LENGTH} characters")
            }
            PasswordProblem::TooLong => {
                format!("the password must have at most {MAX_LENGTH} characters")
            }
            PasswordProblem::Common => "the password is too common".into(),
            PasswordProblem::ContainsUsername => {
                "the password must not contain the user name".into()
            }
        }
    }
}

/// Checks a proposed password; every problem found is returned, not just the first.
pub fn check_rules(password: &str, username: &str) -> Result<(), Vec<PasswordProblem>> {
    let mut problems = Vec::new();
    let length = password.chars().count();
    if length < MIN_LENGTH {
        problems.push(PasswordProblem::TooShort);
    }
    if length > MAX_LENGTH {
        problems.push(PasswordProblem::TooLong);
    }
    let folded = password.to_lowercase();
    if COMMON.iter().any(|c| folded == *c) {
        problems.push(PasswordProblem::Common);
    }
    let name = username.trim().to_lowercase();
    if name.chars().count() >= 3 && folded.contains(&name) {
        problems.push(PasswordProblem::ContainsUsername);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the password could not be hashed: {0}")]
pub struct HashError(String);

/// Hashes a password with argon2id and a fresh random salt (OWASP's parameters:
/// 19 MiB, 2 passes, 1 lane).
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches a stored hash; a malformed hash matches nothing.
pub fn verify(stored_hash: &str, password: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification without an account, so that a sign-in for an
/// unknown user name takes as long as one with a wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("renkei-dummy-password").unwrap_or_default());
    let _ = verify(dummy, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let stored = hash("correct horse battery staple").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify(&stored, "correct horse battery staple"));
        assert!(!verify(&stored, "correct horse battery stapler"));
        assert!(!verify("not a hash", "anything"));
        // A fresh salt every time.
        assert_ne!(stored, hash("correct horse battery staple").unwrap());
    }

    #[test]
    fn rules_report_every_problem() {
        assert!(check_rules("静岡の富士山がきれいに見える朝", "tanaka").is_ok());
        assert_eq!(
            check_rules("short", "tanaka").unwrap_err(),
            vec![PasswordProblem::TooShort]
        );
        assert_eq!(
            check_rules("Password123", "x").unwrap_err(),
            vec![PasswordProblem::TooShort, PasswordProblem::Common]
        );
        assert_eq!(
            check_rules("tanaka-is-my-name", "Tanaka").unwrap_err(),
            vec![PasswordProblem::ContainsUsername]
        );
        assert!(check_rules(&"a".repeat(300), "x").is_err());
        for problem in [PasswordProblem::TooShort, PasswordProblem::Common] {
            assert!(!problem.message_ja().is_empty() && !problem.message_en().is_empty());
        }
    }
}
