//! A tenant as the platform administrator registers it: a local government named by
//! its 全国地方公共団体コード, and the settings that decide what others may see of it.

use chrono::{DateTime, Utc};
use jp::localgov::{LocalGovCode, LocalGovError};
use serde::{Deserialize, Serialize};

/// Why a code cannot name a tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantCodeError {
    #[error(transparent)]
    Invalid(LocalGovError),
    #[error(
        "地方公共団体コード「{0}」には検査数字がありません。6桁で指定してください / \
         local government code {0:?} lacks its check digit: give all 6 digits"
    )]
    CheckDigitMissing(String),
}

/// One registered tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// The 6-digit code, check digit verified (`222127`).
    pub code: String,
    /// The official name from the local government list (`焼津市`).
    pub name: String,
    /// A suspended tenant is refused to everyone but the platform administrator; its
    /// data stays stored.
    pub suspended: bool,
    /// Entity types (expanded IRIs) that anyone, signed in or not, may read in the
    /// broker: shelters, river levels — the live data a resident needs.
    pub public_types: Vec<String>,
    /// Whether the staff of this municipality's prefecture may read its private data.
    pub shared_with_prefecture: bool,
    pub created_at: DateTime<Utc>,
}

impl TenantRecord {
    /// A new, active tenant. The code must be a full 6-digit local government code
    /// whose check digit is right: a 5-digit code is refused rather than completed,
    /// since one dropped digit could name another local government.
    pub fn new(
        code: &str,
        name: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Result<Self, TenantCodeError> {
        let trimmed = code.trim();
        let parsed = LocalGovCode::parse(trimmed).map_err(TenantCodeError::Invalid)?;
        if trimmed.chars().count() != 6 {
            return Err(TenantCodeError::CheckDigitMissing(trimmed.to_owned()));
        }
        let code = parsed;
        Ok(TenantRecord {
            code: code.as_str().to_owned(),
            name: name.into(),
            suspended: false,
            public_types: Vec::new(),
            shared_with_prefecture: false,
            created_at: now,
        })
    }

    /// The code of this tenant's prefecture, when the tenant is a municipality.
    pub fn prefecture_code(&self) -> Option<String> {
        let code = LocalGovCode::parse(&self.code).ok()?;
        (!code.is_prefecture()).then(|| code.prefecture_code().as_str().to_owned())
    }

    pub fn is_public_type(&self, type_iri: &str) -> bool {
        self.public_types.iter().any(|t| t == type_iri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_verified_and_know_their_prefecture() {
        let now = Utc::now();
        let yaizu = TenantRecord::new("222127", "焼津市", now).unwrap();
        assert_eq!(yaizu.prefecture_code().as_deref(), Some("220001"));
        let shizuoka = TenantRecord::new("220001", "静岡県", now).unwrap();
        assert_eq!(shizuoka.prefecture_code(), None);
        // Wrong check digit.
        assert!(TenantRecord::new("222128", "x", now).is_err());
        assert!(TenantRecord::new("22212", "x", now).is_err());
    }
}
