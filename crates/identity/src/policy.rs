//! The policy table: one place that decides every action on every face of renkei.
//!
//! A decision depends on who asks ([`Principal`]), what they want to do ([`Action`])
//! and on what ([`Target`]: the tenant acted in, and whether the thing is public). The
//! rules, in the order they are applied:
//!
//! 1. A suspended tenant is closed to everyone but the platform administrator.
//! 2. Public things (entity types a tenant marks public, open datasets) are read by all.
//! 3. With [`Settings::anonymous_broker_access`] (development and conformance runs
//!    only), anyone may read and write the broker of any tenant.
//! 4. Anything else needs an identity; an API key also needs the action's [`Scope`].
//! 5. The platform administrator may do everything.
//! 6. A role held in the target tenant allows what [`PERMISSIONS`] lists for it.
//! 7. Staff of a prefecture may read the private data of a municipality of theirs that
//!    shares it with the prefecture.
//! 8. Everything else is denied.

use crate::principal::Principal;
use crate::role::{Role, Scope};
use crate::tenant::TenantRecord;

/// Everything a principal can ask to do, on every face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read entities of the broker (query, retrieve, discovery).
    EntityRead,
    /// Create, change or delete entities.
    EntityWrite,
    /// Add or delete hosted JSON-LD contexts (shared by all tenants).
    ContextManage,
    /// Create, read, change or delete subscriptions of the tenant. A subscription
    /// notifies whole entities, so it needs the right to read the tenant's data.
    SubscriptionManage,
    /// Read datasets of the catalog.
    DatasetRead,
    /// Create, change or delete datasets and their datastore tables.
    DatasetWrite,
    /// Define procedures (手続) and their forms.
    ProcedureManage,
    /// Apply for a procedure and follow one's own applications.
    ApplicationSubmit,
    /// Read and review applications (審査, 補正要求).
    ApplicationReview,
    /// Decide applications in an approval chain (決裁).
    ApplicationDecide,
    /// Register a new tenant (platform-wide).
    TenantCreate,
    /// Suspend or resume a tenant (platform-wide).
    TenantSuspend,
    /// Change a tenant's settings: public types, sharing with its prefecture.
    TenantConfigure,
    /// Create users and grant or revoke their roles in the tenant.
    UserManage,
    /// Create, list and revoke API keys of the tenant.
    KeyManage,
    /// Search the audit log of the tenant.
    AuditRead,
}

impl Action {
    pub const ALL: [Action; 16] = [
        Action::EntityRead,
        Action::EntityWrite,
        Action::ContextManage,
        Action::SubscriptionManage,
        Action::DatasetRead,
        Action::DatasetWrite,
        Action::ProcedureManage,
        Action::ApplicationSubmit,
        Action::ApplicationReview,
        Action::ApplicationDecide,
        Action::TenantCreate,
        Action::TenantSuspend,
        Action::TenantConfigure,
        Action::UserManage,
        Action::KeyManage,
        Action::AuditRead,
    ];

    /// The scope an API key needs for this action.
    pub fn scope(self) -> Scope {
        match self {
            Action::EntityRead | Action::SubscriptionManage => Scope::BrokerRead,
            Action::EntityWrite | Action::ContextManage => Scope::BrokerWrite,
            Action::DatasetRead => Scope::CatalogRead,
            Action::DatasetWrite => Scope::CatalogWrite,
            Action::ProcedureManage
            | Action::ApplicationSubmit
            | Action::ApplicationReview
            | Action::ApplicationDecide => Scope::Applications,
            Action::TenantCreate
            | Action::TenantSuspend
            | Action::TenantConfigure
            | Action::UserManage
            | Action::KeyManage
            | Action::AuditRead => Scope::Admin,
        }
    }

    fn is_read(self) -> bool {
        matches!(self, Action::EntityRead | Action::DatasetRead)
    }

    fn is_broker(self) -> bool {
        matches!(
            self,
            Action::EntityRead
                | Action::EntityWrite
                | Action::ContextManage
                | Action::SubscriptionManage
        )
    }
}

/// What each role may do in the tenant it is held in. The platform administrator is
/// not listed: rule 5 allows it everything.
pub const PERMISSIONS: &[(Role, &[Action])] = &[
    (
        Role::TenantAdmin,
        &[
            Action::EntityRead,
            Action::SubscriptionManage,
            Action::EntityWrite,
            Action::ContextManage,
            Action::DatasetRead,
            Action::DatasetWrite,
            Action::ProcedureManage,
            Action::TenantConfigure,
            Action::UserManage,
            Action::KeyManage,
            Action::AuditRead,
        ],
    ),
    (
        Role::Publisher,
        &[
            Action::EntityRead,
            Action::SubscriptionManage,
            Action::EntityWrite,
            Action::ContextManage,
            Action::DatasetRead,
            Action::DatasetWrite,
        ],
    ),
    (
        Role::Reviewer,
        &[
            Action::EntityRead,
            Action::SubscriptionManage,
            Action::DatasetRead,
            Action::ApplicationReview,
        ],
    ),
    (
        Role::Approver,
        &[
            Action::EntityRead,
            Action::SubscriptionManage,
            Action::DatasetRead,
            Action::ApplicationReview,
            Action::ApplicationDecide,
        ],
    ),
    (Role::Resident, &[Action::ApplicationSubmit]),
];

fn role_allows(role: Role, action: Action) -> bool {
    PERMISSIONS
        .iter()
        .any(|(r, actions)| *r == role && actions.contains(&action))
}

/// What an action is done on.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The tenant acted in, by name; `None` for platform-wide things (the tenant
    /// registry, hosted contexts).
    pub tenant: Option<&'a str>,
    /// The tenant's registry record, when it is registered.
    pub record: Option<&'a TenantRecord>,
    /// Whether the thing is open to all: a public entity type, an open dataset.
    pub public: bool,
}

impl<'a> Target<'a> {
    pub fn platform() -> Target<'a> {
        Target {
            tenant: None,
            record: None,
            public: false,
        }
    }

    pub fn tenant(name: &'a str, record: Option<&'a TenantRecord>) -> Target<'a> {
        Target {
            tenant: Some(name),
            record,
            public: false,
        }
    }

    pub fn public(self) -> Target<'a> {
        Target {
            public: true,
            ..self
        }
    }
}

/// Deployment-wide switches of the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `RENKEI_ALLOW_ANONYMOUS_WRITES`: anyone may read and write the broker of any
    /// tenant. For local development and conformance runs only.
    pub anonymous_broker_access: bool,
}

/// Why an action is denied; the server maps each to a status (401, 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Nobody is signed in and the action needs someone (401).
    Unauthenticated,
    /// The tenant is suspended (403).
    TenantSuspended,
    /// The API key was not given the scope this action needs (403).
    MissingScope(Scope),
    /// The principal holds no role allowing this here (403).
    Forbidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Decides one action; see the module documentation for the rules.
pub fn decide(
    principal: &Principal,
    action: Action,
    target: Target<'_>,
    settings: Settings,
) -> Decision {
    let suspended = target.record.is_some_and(|r| r.suspended);
    if suspended && !principal.is_platform_admin() {
        return Decision::Deny(Denial::TenantSuspended);
    }
    if action.is_read() && target.public {
        return Decision::Allow;
    }
    if settings.anonymous_broker_access && action.is_broker() {
        return Decision::Allow;
    }
    if principal.is_anonymous() {
        return Decision::Deny(Denial::Unauthenticated);
    }
    if !principal.has_scope(action.scope()) {
        return Decision::Deny(Denial::MissingScope(action.scope()));
    }
    if principal.is_platform_admin() {
        return Decision::Allow;
    }
    let Some(tenant) = target.tenant else {
        // Platform-wide things: hosted contexts are shared by every tenant, so whoever
        // may manage them in one tenant may add them; the registry is the platform
        // administrator's alone.
        let allowed = action == Action::ContextManage
            && principal
                .grants()
                .iter()
                .any(|g| role_allows(g.role, action));
        return allow_if(allowed);
    };
    if principal
        .roles_in(tenant)
        .any(|role| role_allows(role, action))
    {
        return Decision::Allow;
    }
    if action.is_read() {
        if let Some(prefecture) = target
            .record
            .filter(|r| r.shared_with_prefecture)
            .and_then(TenantRecord::prefecture_code)
        {
            if principal.roles_in(&prefecture).any(Role::is_staff) {
                return Decision::Allow;
            }
        }
    }
    Decision::Deny(Denial::Forbidden)
}

fn allow_if(allowed: bool) -> Decision {
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny(Denial::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Grant;
    use chrono::Utc;

    fn key(tenant: &str, role: Role, scopes: Vec<Scope>) -> Principal {
        Principal::ApiKey {
            key_id: "k".into(),
            grant: Grant::in_tenant(tenant, role),
            scopes,
        }
    }

    #[test]
    fn a_key_is_narrowed_to_its_scopes() {
        let record = TenantRecord::new("222127", "焼津市", Utc::now()).unwrap();
        let target = Target::tenant("222127", Some(&record));
        let read_only = key("222127", Role::Publisher, vec![Scope::BrokerRead]);
        let settings = Settings::default();
        assert_eq!(
            decide(&read_only, Action::EntityRead, target, settings),
            Decision::Allow
        );
        assert_eq!(
            decide(&read_only, Action::EntityWrite, target, settings),
            Decision::Deny(Denial::MissingScope(Scope::BrokerWrite))
        );
    }

    #[test]
    fn suspension_closes_a_tenant_to_all_but_the_platform() {
        let mut record = TenantRecord::new("222127", "焼津市", Utc::now()).unwrap();
        record.suspended = true;
        record.public_types = vec!["Shelter".into()];
        let target = Target::tenant("222127", Some(&record));
        let settings = Settings::default();
        let admin = key("222127", Role::TenantAdmin, Scope::ALL.to_vec());
        for principal in [admin, Principal::Anonymous] {
            assert_eq!(
                decide(&principal, Action::EntityRead, target.public(), settings),
                Decision::Deny(Denial::TenantSuspended)
            );
        }
        assert!(decide(&Principal::Operator, Action::EntityWrite, target, settings).is_allowed());
    }

    #[test]
    fn anonymous_broker_access_opens_the_broker_and_nothing_else() {
        let settings = Settings {
            anonymous_broker_access: true,
        };
        let target = Target::tenant("anything", None);
        assert!(decide(&Principal::Anonymous, Action::EntityWrite, target, settings).is_allowed());
        assert_eq!(
            decide(&Principal::Anonymous, Action::KeyManage, target, settings),
            Decision::Deny(Denial::Unauthenticated)
        );
        assert_eq!(
            decide(
                &Principal::Anonymous,
                Action::EntityWrite,
                target,
                Settings::default()
            ),
            Decision::Deny(Denial::Unauthenticated)
        );
    }
}
