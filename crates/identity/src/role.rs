//! Roles, the grants that give a role in a tenant, and the scopes that narrow an API key.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role. Every role but [`Role::PlatformAdmin`] is held in one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the platform: creates and suspends tenants, and may act in every tenant.
    PlatformAdmin,
    /// Runs one tenant: its users, keys, audit log, public types and data.
    TenantAdmin,
    /// Publishes data: writes to the broker and the catalog of the tenant.
    Publisher,
    /// Reviews applications (審査).
    Reviewer,
    /// Decides applications in an approval chain (決裁).
    Approver,
    /// A resident: applies and follows their own applications.
    Resident,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::PlatformAdmin,
        Role::TenantAdmin,
        Role::Publisher,
        Role::Reviewer,
        Role::Approver,
        Role::Resident,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::TenantAdmin => "tenant_admin",
            Role::Publisher => "publisher",
            Role::Reviewer => "reviewer",
            Role::Approver => "approver",
            Role::Resident => "resident",
        }
    }

    /// Staff roles act for the local government; a resident acts for themself.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Resident)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': use platform_admin, tenant_admin, publisher, reviewer, approver or resident")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

/// A role held in a tenant; `tenant` is `None` only for [`Role::PlatformAdmin`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub tenant: Option<String>,
    pub role: Role,
}

impl Grant {
    pub fn platform_admin() -> Grant {
        Grant {
            tenant: None,
            role: Role::PlatformAdmin,
        }
    }

    pub fn in_tenant(tenant: impl Into<String>, role: Role) -> Grant {
        Grant {
            tenant: Some(tenant.into()),
            role,
        }
    }
}

/// What an API key may be used for. A key acts with its role, narrowed to its scopes;
/// signed-in users are not narrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read the NGSI-LD broker.
    BrokerRead,
    /// Write to the NGSI-LD broker.
    BrokerWrite,
    /// Read the catalog (private datasets included, as the role allows).
    CatalogRead,
    /// Write to the catalog and its datastore.
    CatalogWrite,
    /// Administer the tenant: users, keys, audit log, settings.
    Admin,
    /// Work on applications (review, approve, submit).
    Applications,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::BrokerRead,
        Scope::BrokerWrite,
        Scope::CatalogRead,
        Scope::CatalogWrite,
        Scope::Admin,
        Scope::Applications,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::BrokerRead => "broker:read",
            Scope::BrokerWrite => "broker:write",
            Scope::CatalogRead => "catalog:read",
            Scope::CatalogWrite => "catalog:write",
            Scope::Admin => "admin",
            Scope::Applications => "applications",
        }
    }

    /// The scopes a key gets when none are named: everything its role can use.
    pub fn defaults_for(role: Role) -> Vec<Scope> {
        match role {
            Role::PlatformAdmin | Role::TenantAdmin => Scope::ALL.to_vec(),
            Role::Publisher => vec![
                Scope::BrokerRead,
                Scope::BrokerWrite,
                Scope::CatalogRead,
                Scope::CatalogWrite,
            ],
            Role::Reviewer | Role::Approver => {
                vec![Scope::BrokerRead, Scope::CatalogRead, Scope::Applications]
            }
            Role::Resident => vec![Scope::Applications],
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope '{0}': use broker:read, broker:write, catalog:read, catalog:write, admin or applications")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(text: &str) -> Result<Scope, UnknownScope> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| UnknownScope(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_scopes_read_back_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        assert!("root".parse::<Role>().is_err());
        assert!("broker".parse::<Scope>().is_err());
    }
}
