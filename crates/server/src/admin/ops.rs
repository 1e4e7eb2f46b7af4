//! The administrative operations behind both the `/admin/v1` API and the command
//! line: each checks the policy for its principal, changes the store, and writes the
//! audit record.

use crate::auth::{AuthError, Identity};
use chrono::Utc;
use identity::account::{self, User};
use identity::audit::ChainCursor;
use identity::password;
use identity::policy::{Action, Target};
use identity::secret::ApiKeyRecord;
use identity::{Grant, Principal, Role, Scope, TenantRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::identity::IdentityStore;

/// Registers a local government as a tenant, named from the shipped list.
pub async fn create_tenant(
    identity: &Identity,
    principal: &Principal,
    code: &str,
) -> Result<TenantRecord, AuthError> {
    identity.require(principal, Action::TenantCreate, Target::platform())?;
    let invalid = |e: &dyn std::fmt::Display| AuthError::bad_request(e.to_string(), e.to_string());
    let parsed = jp::localgov::LocalGovCode::parse(code.trim()).map_err(|e| invalid(&e))?;
    let name = crate::localgov::registry().name(&parsed).ok_or_else(|| {
        AuthError::bad_request(
            format!(
                "{} is not in the list of local governments",
                parsed.as_str()
            ),
            format!("{} は地方公共団体の一覧にありません", parsed.as_str()),
        )
    })?;
    let record = TenantRecord::new(code, name, Utc::now()).map_err(|e| invalid(&e))?;
    identity.store().create_tenant(&record).await?;
    identity
        .audit(
            &principal.actor(),
            Some(&record.code),
            "tenant.create",
            &format!("tenant:{}", record.code),
            json!({"name": record.name}),
        )
        .await?;
    Ok(record)
}

/// The registered tenant `code`, if `principal` may do `action` in it.
pub async fn tenant_for(
    identity: &Identity,
    principal: &Principal,
    code: &str,
    action: Action,
) -> Result<TenantRecord, AuthError> {
    let record = identity.tenant(code).await?;
    identity.require(principal, action, Target::tenant(code, record.as_ref()))?;
    record.ok_or_else(|| AuthError::NotFound(format!("tenant {code}")))
}

/// A change of a tenant's settings; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantChange {
    pub suspended: Option<bool>,
    /// Entity types anyone may read: IRIs, or terms of NGSI-LD's default vocabulary.
    pub public_types: Option<Vec<String>>,
    pub shared_with_prefecture: Option<bool>,
}

pub async fn update_tenant(
    identity: &Identity,
    principal: &Principal,
    code: &str,
    change: TenantChange,
) -> Result<TenantRecord, AuthError> {
    let mut record = identity.tenant(code).await?;
    if change.suspended.is_some() {
        identity.require(
            principal,
            Action::TenantSuspend,
            Target::tenant(code, record.as_ref()),
        )?;
    }
    if change.public_types.is_some() || change.shared_with_prefecture.is_some() {
        identity.require(
            principal,
            Action::TenantConfigure,
            Target::tenant(code, record.as_ref()),
        )?;
    }
    let record = record
        .as_mut()
        .ok_or_else(|| AuthError::NotFound(format!("tenant {code}")))?;
    let actor = principal.actor();
    let target = format!("tenant:{code}");
    if let Some(suspended) = change.suspended {
        record.suspended = suspended;
        let action = if suspended {
            "tenant.suspend"
        } else {
            "tenant.resume"
        };
        identity
            .audit(&actor, Some(code), action, &target, json!({}))
            .await?;
    }
    if let Some(types) = change.public_types {
        record.public_types = types.iter().map(|t| expand_type(t)).collect();
        record.public_types.sort();
        record.public_types.dedup();
        identity
            .audit(
                &actor,
                Some(code),
                "tenant.public_types",
                &target,
                json!({"publicTypes": record.public_types}),
            )
            .await?;
    }
    if let Some(shared) = change.shared_with_prefecture {
        record.shared_with_prefecture = shared;
        identity
            .audit(
                &actor,
                Some(code),
                "tenant.share_with_prefecture",
                &target,
                json!({"shared": shared}),
            )
            .await?;
    }
    identity.store().update_tenant(record).await?;
    Ok(record.clone())
}

/// A type name as the broker stores it: an IRI as given, a bare term in NGSI-LD's
/// default vocabulary (what the core context alone expands it to).
pub fn expand_type(name: &str) -> String {
    let name = name.trim();
    if name.contains(':') {
        name.to_owned()
    } else {
        format!("{}{name}", ngsi_ld::model::iri::DEFAULT_CONTEXT_VOCAB)
    }
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
}

pub async fn users_of_tenant(identity: &Identity, code: &str) -> Result<Vec<UserView>, AuthError> {
    let store = identity.store();
    let mut users: Vec<UserView> = Vec::new();
    for role in Role::ALL.into_iter().filter(|r| *r != Role::PlatformAdmin) {
        for user_id in store.holders_of(&Grant::in_tenant(code, role)).await? {
            match users.iter_mut().find(|u| u.id == user_id) {
                Some(view) => view.roles.push(role),
                None => {
                    if let Some(user) = store.get_user(&user_id).await? {
                        users.push(UserView {
                            id: user.id,
                            username: user.username,
                            display_name: user.display_name,
                            roles: vec![role],
                        });
                    }
                }
            }
        }
    }
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(users)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// A local password; accounts without one sign in through OIDC only.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub roles: Vec<Role>,
}

/// Checks a user name and password and builds the account (not yet stored).
pub fn new_account(
    username: &str,
    display_name: &str,
    password_text: Option<&str>,
) -> Result<User, AuthError> {
    if !account::valid_username(username) {
        return Err(AuthError::bad_request(
            "the user name must be 3–64 letters, digits, '.', '_', '-' or '@'",
            "ユーザー名は英数字と . _ - @ の3〜64文字にしてください",
        ));
    }
    let mut user = User::new(username, display_name, Utc::now());
    if let Some(text) = password_text {
        if let Err(problems) = password::check_rules(text, username) {
            let en: Vec<_> = problems.iter().map(|p| p.message_en()).collect();
            let ja: Vec<_> = problems.iter().map(|p| p.message_ja()).collect();
            return Err(AuthError::bad_request(en.join("; "), ja.join("。")));
        }
        user.password_hash =
            Some(password::hash(text).map_err(|e| AuthError::Internal(e.to_string()))?);
    }
    Ok(user)
}

pub async fn create_user(
    identity: &Identity,
    principal: &Principal,
    code: &str,
    new: NewUser,
) -> Result<UserView, AuthError> {
    tenant_for(identity, principal, code, Action::UserManage).await?;
    if new.roles.contains(&Role::PlatformAdmin) {
        return Err(AuthError::bad_request(
            "platform_admin is not a role of a tenant",
            "platform_admin は団体のロールではありません",
        ));
    }
    let mut user = new_account(&new.username, &new.display_name, new.password.as_deref())?;
    user.email = new.email;
    identity.store().create_user(&user).await?;
    let actor = principal.actor();
    identity
        .audit(
            &actor,
            Some(code),
            "user.create",
            &format!("user:{}", user.id),
            json!({}),
        )
        .await?;
    for role in &new.roles {
        identity
            .store()
            .add_grant(&user.id, &Grant::in_tenant(code, *role))
            .await?;
        identity
            .audit(
                &actor,
                Some(code),
                "role.grant",
                &format!("user:{}", user.id),
                json!({"role": role}),
            )
            .await?;
    }
    Ok(UserView {
        id: user.id,
        username: user.username,
        display_name: user.display_name,
        roles: new.roles,
    })
}

pub async fn change_grant(
    identity: &Identity,
    principal: &Principal,
    code: &str,
    username: &str,
    role: Role,
    add: bool,
) -> Result<(), AuthError> {
    tenant_for(identity, principal, code, Action::UserManage).await?;
    if role == Role::PlatformAdmin {
        return Err(AuthError::bad_request(
            "platform_admin is not a role of a tenant",
            "platform_admin は団体のロールではありません",
        ));
    }
    let user = identity
        .store()
        .find_user_by_username(&account::normalize_username(username))
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("user {username}")))?;
    let grant = Grant::in_tenant(code, role);
    let action = if add {
        identity.store().add_grant(&user.id, &grant).await?;
        "role.grant"
    } else {
        identity.store().remove_grant(&user.id, &grant).await?;
        "role.revoke"
    };
    identity
        .audit(
            &principal.actor(),
            Some(code),
            action,
            &format!("user:{}", user.id),
            json!({"role": role}),
        )
        .await
}

/// What a new API key is for.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub tenant: String,
    pub role: Role,
    /// `None`: everything the role can use.
    pub scopes: Option<Vec<Scope>>,
    pub label: String,
    pub expires_in_days: Option<u32>,
}

/// Creates a key; the token is returned once and never stored.
pub async fn create_key(
    identity: &Identity,
    principal: &Principal,
    request: KeyRequest,
) -> Result<(ApiKeyRecord, String), AuthError> {
    tenant_for(identity, principal, &request.tenant, Action::KeyManage).await?;
    if request.role == Role::PlatformAdmin {
        return Err(AuthError::bad_request(
            "an API key acts in one tenant; platform_admin cannot be given to a key",
            "APIキーに platform_admin は付与できません",
        ));
    }
    let allowed = Scope::defaults_for(request.role);
    let scopes = request.scopes.unwrap_or_else(|| allowed.clone());
    if let Some(extra) = scopes.iter().find(|s| !allowed.contains(s)) {
        return Err(AuthError::bad_request(
            format!("the role {} cannot use the scope {extra}", request.role),
            format!(
                "ロール {} にスコープ {extra} は付与できません",
                request.role
            ),
        ));
    }
    let now = Utc::now();
    let expires_at = request
        .expires_in_days
        .map(|d| now + chrono::Duration::days(i64::from(d)));
    let (record, token) = ApiKeyRecord::generate(
        Grant::in_tenant(&request.tenant, request.role),
        scopes,
        request.label,
        principal.actor(),
        expires_at,
        now,
    );
    identity.store().create_api_key(&record).await?;
    identity
        .audit(
            &principal.actor(),
            Some(&request.tenant),
            "key.create",
            &format!("key:{}", record.id),
            json!({"role": request.role, "scopes": record.scopes, "expiresAt": expires_at}),
        )
        .await?;
    Ok((record, token))
}

/// Revokes a key. A key of another tenant than the one named is "not found", so the
/// answer says nothing about keys one may not manage.
pub async fn revoke_key(
    identity: &Identity,
    principal: &Principal,
    tenant: Option<&str>,
    id: &str,
) -> Result<(), AuthError> {
    let not_found = || AuthError::NotFound(format!("key {id}"));
    let key = identity
        .store()
        .get_api_key(id)
        .await?
        .ok_or_else(not_found)?;
    let key_tenant = key.grant.tenant.clone().unwrap_or_default();
    if tenant.is_some_and(|t| t != key_tenant) {
        return Err(not_found());
    }
    tenant_for(identity, principal, &key_tenant, Action::KeyManage).await?;
    if !identity.store().revoke_api_key(id, Utc::now()).await? {
        return Err(not_found());
    }
    identity
        .audit(
            &principal.actor(),
            Some(&key_tenant),
            "key.revoke",
            &format!("key:{id}"),
            json!({}),
        )
        .await
}

/// What `renkei audit verify` and `/admin/v1/audit/verify` report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub intact: bool,
    pub records: u64,
    /// The hash of the last record verified: keep it elsewhere to detect a cut tail.
    pub head: String,
    pub problem: Option<String>,
}

/// Walks the whole audit chain a page at a time.
pub async fn verify_audit(store: &dyn IdentityStore) -> Result<AuditReport, AuthError> {
    const PAGE: usize = 1000;
    let mut cursor = ChainCursor::default();
    loop {
        let page = store.audit_chain(cursor.next_seq, PAGE).await?;
        if let Err(broken) = cursor.verify(&page) {
            return Ok(AuditReport {
                intact: false,
                records: cursor.verified,
                head: cursor.prev_hash,
                problem: Some(broken.to_string()),
            });
        }
        if page.len() < PAGE {
            return Ok(AuditReport {
                intact: true,
                records: cursor.verified,
                head: cursor.prev_hash,
                problem: None,
            });
        }
    }
}

/// Creates a platform administrator (`renkei admin create`).
pub async fn create_platform_admin(
    identity: &Identity,
    username: &str,
    display_name: &str,
    password_text: &str,
) -> Result<User, AuthError> {
    let user = new_account(username, display_name, Some(password_text))?;
    identity.store().create_user(&user).await?;
    identity
        .store()
        .add_grant(&user.id, &Grant::platform_admin())
        .await?;
    identity
        .audit(
            &Principal::Operator.actor(),
            None,
            "role.grant",
            &format!("user:{}", user.id),
            json!({"role": Role::PlatformAdmin}),
        )
        .await?;
    Ok(user)
}
