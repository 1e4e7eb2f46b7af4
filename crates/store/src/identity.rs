//! Storage of identity and access: the tenant registry, users and their grants, API
//! keys, sessions, pending OpenID Connect sign-ins and the audit log. The records are
//! `identity`'s domain types; what to do with them is decided there and in the server.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use identity::account::User;
use identity::audit::{AuditEvent, AuditFilter, AuditRecord};
use identity::secret::{ApiKeyRecord, SessionRecord};
use identity::{Grant, TenantRecord};
use std::sync::Arc;

use crate::StoreError;

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Registers a tenant; `AlreadyExists` when its code is registered.
    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError>;
    /// Saves a registered tenant's settings; `NotFound` when it is not registered.
    async fn update_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError>;
    async fn get_tenant(&self, code: &str) -> Result<Option<TenantRecord>, StoreError>;
    /// Every registered tenant, by code.
    async fn list_registered_tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;

    /// Creates a user; `AlreadyExists` when the user name (or the OIDC issuer and
    /// subject) is taken.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// Saves a user (failure counts, lock, password, names); `NotFound` if absent.
    async fn update_user(&self, user: &User) -> Result<(), StoreError>;
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn find_user_by_oidc(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError>;
    /// Every user, by user name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// Gives a user a role; granting one already held changes nothing.
    async fn add_grant(&self, user_id: &str, grant: &Grant) -> Result<(), StoreError>;
    /// Takes a role away; false when it was not held.
    async fn remove_grant(&self, user_id: &str, grant: &Grant) -> Result<bool, StoreError>;
    /// The user's grants, sorted.
    async fn grants_of(&self, user_id: &str) -> Result<Vec<Grant>, StoreError>;
    /// Users holding `grant`, as user ids.
    async fn holders_of(&self, grant: &Grant) -> Result<Vec<String>, StoreError>;

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Keys of one tenant (platform keys: `None`), newest first; revoked ones included.
    async fn list_api_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Marks a key revoked at `at`; false when there is no such key or it was revoked.
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of a user (password change, lock, role removal).
    async fn delete_sessions_of(&self, user_id: &str) -> Result<(), StoreError>;

    /// Keeps a pending OIDC sign-in (serialized by the server) under its `state`
    /// until `expires_at`.
    async fn put_pending_sign_in(
        &self,
        state: &str,
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Takes (returns and deletes) a pending sign-in; `None` if absent or expired.
    /// Single use: a second take of the same state finds nothing.
    async fn take_pending_sign_in(&self, state: &str) -> Result<Option<String>, StoreError>;

    /// Appends an event to the audit log, chaining it after the last record in the
    /// same transaction (so concurrent appends from several nodes stay one chain).
    async fn append_audit(&self, event: AuditEvent) -> Result<AuditRecord, StoreError>;
    /// Records matching the filter, newest first, at most `filter.limit`.
    async fn search_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    /// Records in chain order from `from_seq` on, at most `limit`, for verification.
    async fn audit_chain(
        &self,
        from_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

pub type SharedIdentityStore = Arc<dyn IdentityStore>;
