//! [`IdentityStore`] on PostgreSQL: the tenant registry, users, grants, API keys,
//! sessions, pending sign-ins and the audit log, in the tables of migration 3.
//!
//! Several nodes may append to the audit log at once; each append takes a
//! transaction-level advisory lock, reads the last record and inserts the next with
//! `seq = last + 1` in the same transaction, so the log stays one chain without gaps
//! (a rolled-back append takes no number with it, as a sequence would).

use crate::{backend, PostgresStore};
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use identity::account::User;
use identity::audit::{AuditEvent, AuditFilter, AuditRecord, GENESIS};
use identity::secret::{ApiKeyRecord, SessionRecord};
use identity::{Grant, Role, Scope, TenantRecord};
use store::identity::IdentityStore;
use store::StoreError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// The advisory lock key serialising audit appends ("audit" in ASCII); distinct from
/// the migration lock, the same on every node.
const AUDIT_LOCK_KEY: i64 = 0x61_75_64_69_74;

/// A stored identity row this build cannot read back.
#[derive(Debug, thiserror::Error)]
#[error("stored {what} is unreadable: {reason}")]
struct UnreadableRow {
    what: &'static str,
    reason: String,
}

fn unreadable(what: &'static str, reason: impl ToString) -> StoreError {
    StoreError::backend(UnreadableRow {
        what,
        reason: reason.to_string(),
    })
}

/// A write's error: a taken key is `AlreadyExists(what)`, anything else the backend's.
fn write_error(what: String) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |err| {
        if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            StoreError::AlreadyExists(what)
        } else {
            backend(err)
        }
    }
}

/// A grant's tenant as stored: platform grants (no tenant) as `''`, so that the
/// primary key covers them.
fn tenant_key(tenant: &Option<String>) -> &str {
    tenant.as_deref().unwrap_or("")
}

fn tenant_from_key(key: String) -> Option<String> {
    (!key.is_empty()).then_some(key)
}

fn role_of(text: &str, what: &'static str) -> Result<Role, StoreError> {
    text.parse().map_err(|e| unreadable(what, e))
}

/// Stored times are whole microseconds, so a search bound with nanoseconds rounds up:
/// `at >= from` and `at < to` then hold exactly when they do before rounding.
fn ceil_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let truncated = at.trunc_subsecs(6);
    if truncated < at {
        truncated + chrono::Duration::microseconds(1)
    } else {
        truncated
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(backend)
}

const TENANT_COLUMNS: &str =
    "code, name, suspended, public_types, shared_with_prefecture, created_at";

fn read_tenant(row: &Row) -> Result<TenantRecord, StoreError> {
    Ok(TenantRecord {
        code: get(row, "code")?,
        name: get(row, "name")?,
        suspended: get(row, "suspended")?,
        public_types: get(row, "public_types")?,
        shared_with_prefecture: get(row, "shared_with_prefecture")?,
        created_at: get(row, "created_at")?,
    })
}

const USER_COLUMNS: &str = "id, username, display_name, email, password_hash, oidc_issuer, \
     oidc_subject, failed_sign_ins, locked_until, disabled, created_at";

fn read_user(row: &Row) -> Result<User, StoreError> {
    let failed: i64 = get(row, "failed_sign_ins")?;
    Ok(User {
        id: get(row, "id")?,
        username: get(row, "username")?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        password_hash: get(row, "password_hash")?,
        oidc_issuer: get(row, "oidc_issuer")?,
        oidc_subject: get(row, "oidc_subject")?,
        failed_sign_ins: u32::try_from(failed).map_err(|e| unreadable("user", e))?,
        locked_until: get(row, "locked_until")?,
        disabled: get(row, "disabled")?,
        created_at: get(row, "created_at")?,
    })
}

const KEY_COLUMNS: &str = "id, tenant, role, scopes, label, secret_hash, created_by, \
     created_at, expires_at, revoked_at";

fn read_key(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    let role: String = get(row, "role")?;
    let scopes: Vec<String> = get(row, "scopes")?;
    Ok(ApiKeyRecord {
        id: get(row, "id")?,
        grant: Grant {
            tenant: tenant_from_key(get(row, "tenant")?),
            role: role_of(&role, "API key")?,
        },
        scopes: scopes
            .iter()
            .map(|name| name.parse::<Scope>().map_err(|e| unreadable("API key", e)))
            .collect::<Result<_, _>>()?,
        label: get(row, "label")?,
        secret_hash: get(row, "secret_hash")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

const SESSION_COLUMNS: &str = "token_hash, user_id, csrf_token, created_at, expires_at";

fn read_session(row: &Row) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        token_hash: get(row, "token_hash")?,
        user_id: get(row, "user_id")?,
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

const AUDIT_COLUMNS: &str = "seq, at, tenant, actor, action, target, detail, prev_hash, hash";

fn read_audit(row: &Row) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: get(row, "seq")?,
        event: AuditEvent {
            at: get(row, "at")?,
            tenant: get(row, "tenant")?,
            actor: get(row, "actor")?,
            action: get(row, "action")?,
            target: get(row, "target")?,
            detail: get(row, "detail")?,
        },
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
    })
}

fn read_all<T>(
    rows: Vec<Row>,
    read: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(read).collect()
}

impl PostgresStore {
    async fn query_rows(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.client().await?.query(sql, args).await.map_err(backend)
    }

    async fn query_row(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        self.client()
            .await?
            .query_opt(sql, args)
            .await
            .map_err(backend)
    }

    async fn execute(&self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.client()
            .await?
            .execute(sql, args)
            .await
            .map_err(backend)
    }
}

/// The columns of a tenant in `$1…$6` order, shared by insert and update.
fn tenant_args(tenant: &TenantRecord) -> [&(dyn ToSql + Sync); 6] {
    [
        &tenant.code,
        &tenant.name,
        &tenant.suspended,
        &tenant.public_types,
        &tenant.shared_with_prefecture,
        &tenant.created_at,
    ]
}

/// The columns of a user in `$1…$11` order (`failed` is the failure count as
/// PostgreSQL's bigint), shared by insert and update.
fn user_args<'a>(user: &'a User, failed: &'a i64) -> [&'a (dyn ToSql + Sync); 11] {
    [
        &user.id,
        &user.username,
        &user.display_name,
        &user.email,
        &user.password_hash,
        &user.oidc_issuer,
        &user.oidc_subject,
        failed,
        &user.locked_until,
        &user.disabled,
        &user.created_at,
    ]
}

#[async_trait]
impl IdentityStore for PostgresStore {
    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO registered_tenants
                 (code, name, suspended, public_types, shared_with_prefecture, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &tenant_args(tenant),
            )
            .await
            .map(drop)
            .map_err(write_error(format!("tenant {}", tenant.code)))
    }

    async fn update_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let changed = self
            .execute(
                "UPDATE registered_tenants SET name = $2, suspended = $3, public_types = $4,
                 shared_with_prefecture = $5, created_at = $6
                 WHERE code = $1",
                &tenant_args(tenant),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("tenant {}", tenant.code)));
        }
        Ok(())
    }

    async fn get_tenant(&self, code: &str) -> Result<Option<TenantRecord>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM registered_tenants WHERE code = $1");
        self.query_row(&sql, &[&code])
            .await?
            .as_ref()
            .map(read_tenant)
            .transpose()
    }

    async fn list_registered_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM registered_tenants ORDER BY code");
        read_all(self.query_rows(&sql, &[]).await?, read_tenant)
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let failed = i64::from(user.failed_sign_ins);
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        self.client()
            .await?
            .execute(&sql, &user_args(user, &failed))
            .await
            .map(drop)
            .map_err(write_error(format!("user {}", user.username)))
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let failed = i64::from(user.failed_sign_ins);
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE users SET username = $2, display_name = $3, email = $4,
                 password_hash = $5, oidc_issuer = $6, oidc_subject = $7,
                 failed_sign_ins = $8, locked_until = $9, disabled = $10, created_at = $11
                 WHERE id = $1",
                &user_args(user, &failed),
            )
            .await
            .map_err(write_error(format!("user {}", user.username)))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("user {}", user.id)));
        }
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.query_row(&sql, &[&id])
            .await?
            .as_ref()
            .map(read_user)
            .transpose()
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        self.query_row(&sql, &[&username])
            .await?
            .as_ref()
            .map(read_user)
            .transpose()
    }

    async fn find_user_by_oidc(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2"
        );
        self.query_row(&sql, &[&issuer, &subject])
            .await?
            .as_ref()
            .map(read_user)
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        // Byte order, as SQLite sorts, whatever the database's collation.
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username COLLATE \"C\"");
        read_all(self.query_rows(&sql, &[]).await?, read_user)
    }

    async fn add_grant(&self, user_id: &str, grant: &Grant) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO user_grants (user_id, tenant, role) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&user_id, &tenant_key(&grant.tenant), &grant.role.as_str()],
        )
        .await
        .map(drop)
    }

    async fn remove_grant(&self, user_id: &str, grant: &Grant) -> Result<bool, StoreError> {
        self.execute(
            "DELETE FROM user_grants WHERE user_id = $1 AND tenant = $2 AND role = $3",
            &[&user_id, &tenant_key(&grant.tenant), &grant.role.as_str()],
        )
        .await
        .map(|removed| removed > 0)
    }

    async fn grants_of(&self, user_id: &str) -> Result<Vec<Grant>, StoreError> {
        let rows = self
            .query_rows(
                "SELECT tenant, role FROM user_grants WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
        let mut grants = rows
            .iter()
            .map(|row| {
                let role: String = get(row, "role")?;
                Ok(Grant {
                    tenant: tenant_from_key(get(row, "tenant")?),
                    role: role_of(&role, "grant")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // `Grant`'s own order (platform first, then by tenant and role), not SQL's.
        grants.sort();
        Ok(grants)
    }

    async fn holders_of(&self, grant: &Grant) -> Result<Vec<String>, StoreError> {
        let rows = self
            .query_rows(
                "SELECT user_id FROM user_grants WHERE tenant = $1 AND role = $2
                 ORDER BY user_id COLLATE \"C\"",
                &[&tenant_key(&grant.tenant), &grant.role.as_str()],
            )
            .await?;
        rows.iter().map(|row| get(row, "user_id")).collect()
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
        self.client()
            .await?
            .execute(
                &sql,
                &[
                    &key.id,
                    &tenant_key(&key.grant.tenant),
                    &key.grant.role.as_str(),
                    &scopes,
                    &key.label,
                    &key.secret_hash,
                    &key.created_by,
                    &key.created_at,
                    &key.expires_at,
                    &key.revoked_at,
                ],
            )
            .await
            .map(drop)
            .map_err(write_error(format!("API key {}", key.id)))
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        self.query_row(&sql, &[&id])
            .await?
            .as_ref()
            .map(read_key)
            .transpose()
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = $1
             ORDER BY created_at DESC, id COLLATE \"C\" DESC"
        );
        read_all(
            self.query_rows(&sql, &[&tenant.unwrap_or("")]).await?,
            read_key,
        )
    }

    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &at],
        )
        .await
        .map(|changed| changed > 0)
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)");
        self.client()
            .await?
            .execute(
                &sql,
                &[
                    &session.token_hash,
                    &session.user_id,
                    &session.csrf_token,
                    &session.created_at,
                    &session.expires_at,
                ],
            )
            .await
            .map(drop)
            .map_err(write_error("session".to_owned()))
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1");
        self.query_row(&sql, &[&token_hash])
            .await?
            .as_ref()
            .map(read_session)
            .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await
            .map(drop)
    }

    async fn delete_sessions_of(&self, user_id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
            .await
            .map(drop)
    }

    async fn put_pending_sign_in(
        &self,
        state: &str,
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        // Sign-ins never finished would otherwise stay forever.
        client
            .execute(
                "DELETE FROM pending_sign_ins WHERE expires_at <= $1",
                &[&Utc::now()],
            )
            .await
            .map_err(backend)?;
        client
            .execute(
                "INSERT INTO pending_sign_ins (state, data, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (state) DO UPDATE SET data = $2, expires_at = $3",
                &[&state, &data, &expires_at],
            )
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn take_pending_sign_in(&self, state: &str) -> Result<Option<String>, StoreError> {
        // One statement deletes and returns, so of two concurrent takes only one
        // gets the row.
        let taken = self
            .query_row(
                "DELETE FROM pending_sign_ins WHERE state = $1 RETURNING data, expires_at",
                &[&state],
            )
            .await?;
        let Some(row) = taken else {
            return Ok(None);
        };
        let expires_at: DateTime<Utc> = get(&row, "expires_at")?;
        if expires_at <= Utc::now() {
            return Ok(None);
        }
        get(&row, "data").map(Some)
    }

    async fn append_audit(&self, mut event: AuditEvent) -> Result<AuditRecord, StoreError> {
        // What is stored keeps microseconds; the returned record must equal it.
        event.at = event.at.trunc_subsecs(6);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK_KEY])
            .await
            .map_err(backend)?;
        let last = tx
            .query_opt(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(backend)?;
        let (seq, prev_hash) = match last {
            Some(row) => (get::<i64>(&row, "seq")? + 1, get::<String>(&row, "hash")?),
            None => (1, GENESIS.to_owned()),
        };
        let record = AuditRecord::chain(seq, &prev_hash, event);
        tx.execute(
            "INSERT INTO audit_log (seq, at, tenant, actor, action, target, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &record.seq,
                &record.event.at,
                &record.event.tenant,
                &record.event.actor,
                &record.event.action,
                &record.event.target,
                &record.event.detail,
                &record.prev_hash,
                &record.hash,
            ],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn search_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE true");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut push = |sql: &mut String, condition: &str, arg: Box<dyn ToSql + Sync + Send>| {
            args.push(arg);
            sql.push_str(&format!(" AND {condition} ${}", args.len()));
        };
        for (column, value) in [
            ("tenant", &filter.tenant),
            ("actor", &filter.actor),
            ("target", &filter.target),
            ("action", &filter.action),
        ] {
            if let Some(value) = value {
                push(&mut sql, &format!("{column} ="), Box::new(value.clone()));
            }
        }
        if let Some(from) = filter.from {
            push(&mut sql, "at >=", Box::new(ceil_micros(from)));
        }
        if let Some(to) = filter.to {
            push(&mut sql, "at <", Box::new(ceil_micros(to)));
        }
        if let Some(before) = filter.before_seq {
            push(&mut sql, "seq <", Box::new(before));
        }
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        args.push(Box::new(limit));
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", args.len()));
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|arg| arg.as_ref() as &(dyn ToSql + Sync))
            .collect();
        read_all(self.query_rows(&sql, &refs).await?, read_audit)
    }

    async fn audit_chain(
        &self,
        from_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2");
        read_all(
            self.query_rows(&sql, &[&from_seq, &limit]).await?,
            read_audit,
        )
    }
}
