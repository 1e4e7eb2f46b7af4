//! Who a request comes from, once authenticated: nobody, a signed-in user with their
//! grants, or an API key with its one grant and its scopes.

use crate::role::{Grant, Role, Scope};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Principal {
    Anonymous,
    User {
        user_id: String,
        username: String,
        grants: Vec<Grant>,
    },
    ApiKey {
        key_id: String,
        grant: Grant,
        scopes: Vec<Scope>,
    },
    /// The operator at the server's command line (`renkei tenant add`, …): whoever can
    /// run the binary against the database already holds the platform.
    Operator,
}

static OPERATOR_GRANTS: std::sync::LazyLock<[Grant; 1]> =
    std::sync::LazyLock::new(|| [Grant::platform_admin()]);

impl Principal {
    /// The grants the principal acts with.
    pub fn grants(&self) -> &[Grant] {
        match self {
            Principal::Anonymous => &[],
            Principal::User { grants, .. } => grants,
            Principal::ApiKey { grant, .. } => std::slice::from_ref(grant),
            Principal::Operator => OPERATOR_GRANTS.as_slice(),
        }
    }

    /// Whether the principal may use `scope` at all (users always may; keys only
    /// within the scopes they were given).
    pub fn has_scope(&self, scope: Scope) -> bool {
        match self {
            Principal::Anonymous => false,
            Principal::User { .. } | Principal::Operator => true,
            Principal::ApiKey { scopes, .. } => scopes.contains(&scope),
        }
    }

    pub fn is_platform_admin(&self) -> bool {
        self.grants().iter().any(|g| g.role == Role::PlatformAdmin)
    }

    /// The roles held in `tenant` (the platform administrator's not included).
    pub fn roles_in<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = Role> + 'a {
        self.grants()
            .iter()
            .filter(move |g| g.tenant.as_deref() == Some(tenant))
            .map(|g| g.role)
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }

    /// How the principal is named in the audit log: `user:<id>`, `key:<id>` or
    /// `cli` or `anonymous`. Never a name or an e-mail address (personal data stays out of logs).
    pub fn actor(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::User { user_id, .. } => format!("user:{user_id}"),
            Principal::ApiKey { key_id, .. } => format!("key:{key_id}"),
            Principal::Operator => "cli".into(),
        }
    }
}
