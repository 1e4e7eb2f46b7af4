//! [`IdentityStore`] on SQLite: the tenant registry, users, grants, API keys,
//! sessions, pending sign-ins and the audit log, in the tables of schema version 3.
//!
//! Writes go through the one writer thread like every other write, which is also what
//! keeps the audit chain whole: each append reads the last record and inserts the next
//! inside the writer's transaction, and no other append can run in between.
//! Timestamps are stored as fixed-width RFC 3339 text with microseconds, so they
//! compare as text and read back equal to what was stored.

use crate::columns::{
    is_unique_violation, json_at, opt_stamp, opt_time_at, stamp, time_at, unreadable,
};
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use identity::account::User;
use identity::audit::{AuditEvent, AuditFilter, AuditRecord, GENESIS};
use identity::secret::{ApiKeyRecord, SessionRecord};
use identity::{Grant, Role, Scope, TenantRecord};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use store::identity::IdentityStore;
use store::StoreError;

fn role_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Role> {
    let text: String = row.get(index)?;
    text.parse().map_err(|e| unreadable(index, e))
}

/// A grant's tenant as stored: platform grants (no tenant) as `''`, so that the
/// primary key covers them.
fn tenant_key(tenant: &Option<String>) -> &str {
    tenant.as_deref().unwrap_or("")
}

fn tenant_from_key(key: String) -> Option<String> {
    (!key.is_empty()).then_some(key)
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn scopes_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<Scope>> {
    let text: String = row.get(index)?;
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| name.parse().map_err(|e| unreadable(index, e)))
        .collect()
}

/// A write's error: a taken key is `AlreadyExists(what)`, anything else the backend's.
fn write_error(what: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |err| {
        if is_unique_violation(&err) {
            StoreError::AlreadyExists(what.to_owned())
        } else {
            StoreError::backend(err)
        }
    }
}

fn all<T>(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(StoreError::backend)?;
    let rows = statement
        .query_map(args, read)
        .map_err(StoreError::backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::backend);
    rows
}

fn one<T>(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(args, read).optional())
        .map_err(StoreError::backend)
}

const TENANT_COLUMNS: &str =
    "code, name, suspended, public_types, shared_with_prefecture, created_at";

fn row_to_tenant(row: &Row<'_>) -> rusqlite::Result<TenantRecord> {
    Ok(TenantRecord {
        code: row.get(0)?,
        name: row.get(1)?,
        suspended: row.get(2)?,
        public_types: json_at(row, 3)?,
        shared_with_prefecture: row.get(4)?,
        created_at: time_at(row, 5)?,
    })
}

fn public_types_text(tenant: &TenantRecord) -> Result<String, StoreError> {
    serde_json::to_string(&tenant.public_types).map_err(StoreError::backend)
}

const USER_COLUMNS: &str = "id, username, display_name, email, password_hash, oidc_issuer, \
     oidc_subject, failed_sign_ins, locked_until, disabled, created_at";

fn row_to_user(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        display_name: row.get(2)?,
        email: row.get(3)?,
        password_hash: row.get(4)?,
        oidc_issuer: row.get(5)?,
        oidc_subject: row.get(6)?,
        failed_sign_ins: row.get(7)?,
        locked_until: opt_time_at(row, 8)?,
        disabled: row.get(9)?,
        created_at: time_at(row, 10)?,
    })
}

const KEY_COLUMNS: &str = "id, tenant, role, scopes, label, secret_hash, created_by, \
     created_at, expires_at, revoked_at";

fn row_to_key(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        grant: Grant {
            tenant: tenant_from_key(row.get(1)?),
            role: role_at(row, 2)?,
        },
        scopes: scopes_at(row, 3)?,
        label: row.get(4)?,
        secret_hash: row.get(5)?,
        created_by: row.get(6)?,
        created_at: time_at(row, 7)?,
        expires_at: opt_time_at(row, 8)?,
        revoked_at: opt_time_at(row, 9)?,
    })
}

const SESSION_COLUMNS: &str = "token_hash, user_id, csrf_token, created_at, expires_at";

fn row_to_session(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        token_hash: row.get(0)?,
        user_id: row.get(1)?,
        csrf_token: row.get(2)?,
        created_at: time_at(row, 3)?,
        expires_at: time_at(row, 4)?,
    })
}

const AUDIT_COLUMNS: &str = "seq, at, tenant, actor, action, target, detail, prev_hash, hash";

fn row_to_audit(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.get(0)?,
        event: AuditEvent {
            at: time_at(row, 1)?,
            tenant: row.get(2)?,
            actor: row.get(3)?,
            action: row.get(4)?,
            target: row.get(5)?,
            detail: json_at(row, 6)?,
        },
        prev_hash: row.get(7)?,
        hash: row.get(8)?,
    })
}

/// Chains the event after the last record and inserts it; run by the writer, so no
/// other append comes in between the read and the insert.
fn append_in(conn: &Connection, mut event: AuditEvent) -> Result<AuditRecord, StoreError> {
    // What is stored keeps microseconds; the returned record must equal it.
    event.at = event.at.trunc_subsecs(6);
    let last = one(
        conn,
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        [],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
    )?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let record = AuditRecord::chain(seq, &prev_hash, event);
    let detail = serde_json::to_string(&record.event.detail).map_err(StoreError::backend)?;
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, tenant, actor, action, target, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            record.seq,
            stamp(record.event.at),
            record.event.tenant,
            record.event.actor,
            record.event.action,
            record.event.target,
            detail,
            record.prev_hash,
            record.hash,
        ])
    })
    .map_err(StoreError::backend)?;
    Ok(record)
}

fn ceil_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let truncated = at.trunc_subsecs(6);
    if truncated < at {
        truncated + chrono::Duration::microseconds(1)
    } else {
        truncated
    }
}

/// The SQL and arguments of an audit search, newest first.
fn search_sql(filter: &AuditFilter) -> (String, Vec<SqlValue>) {
    let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1");
    let mut args = Vec::new();
    let text = |value: &str| SqlValue::Text(value.to_owned());
    for (column, value) in [
        ("tenant", &filter.tenant),
        ("actor", &filter.actor),
        ("target", &filter.target),
        ("action", &filter.action),
    ] {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            args.push(text(value));
        }
    }
    // Stored times are whole microseconds, so a bound with nanoseconds rounds up:
    // `at >= from` and `at < to` then hold exactly when they do before rounding.
    if let Some(from) = filter.from {
        sql.push_str(" AND at >= ?");
        args.push(SqlValue::Text(stamp(ceil_micros(from))));
    }
    if let Some(to) = filter.to {
        sql.push_str(" AND at < ?");
        args.push(SqlValue::Text(stamp(ceil_micros(to))));
    }
    if let Some(before) = filter.before_seq {
        sql.push_str(" AND seq < ?");
        args.push(SqlValue::Integer(before));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    args.push(SqlValue::Integer(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    (sql, args)
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let public_types = public_types_text(&tenant)?;
        self.writer
            .run(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO registered_tenants
                     (code, name, suspended, public_types, shared_with_prefecture, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        tenant.code,
                        tenant.name,
                        tenant.suspended,
                        public_types,
                        tenant.shared_with_prefecture,
                        stamp(tenant.created_at),
                    ])
                })
                .map(drop)
                .map_err(write_error(&format!("tenant {}", tenant.code)))
            })
            .await
    }

    async fn update_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let public_types = public_types_text(&tenant)?;
        self.writer
            .run(move |tx| {
                let changed = tx
                    .prepare_cached(
                        "UPDATE registered_tenants SET name = ?2, suspended = ?3,
                         public_types = ?4, shared_with_prefecture = ?5, created_at = ?6
                         WHERE code = ?1",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            tenant.code,
                            tenant.name,
                            tenant.suspended,
                            public_types,
                            tenant.shared_with_prefecture,
                            stamp(tenant.created_at),
                        ])
                    })
                    .map_err(StoreError::backend)?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("tenant {}", tenant.code)));
                }
                Ok(())
            })
            .await
    }

    async fn get_tenant(&self, code: &str) -> Result<Option<TenantRecord>, StoreError> {
        let code = code.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {TENANT_COLUMNS} FROM registered_tenants WHERE code = ?1");
            one(conn, &sql, [code], row_to_tenant)
        })
        .await
    }

    async fn list_registered_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        self.read(move |conn| {
            let sql = format!("SELECT {TENANT_COLUMNS} FROM registered_tenants ORDER BY code");
            all(conn, &sql, [], row_to_tenant)
        })
        .await
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let user = user.clone();
        self.writer
            .run(move |tx| {
                let sql = format!(
                    "INSERT INTO users ({USER_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                );
                tx.prepare_cached(&sql)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            user.id,
                            user.username,
                            user.display_name,
                            user.email,
                            user.password_hash,
                            user.oidc_issuer,
                            user.oidc_subject,
                            user.failed_sign_ins,
                            opt_stamp(user.locked_until),
                            user.disabled,
                            stamp(user.created_at),
                        ])
                    })
                    .map(drop)
                    .map_err(write_error(&format!("user {}", user.username)))
            })
            .await
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let user = user.clone();
        self.writer
            .run(move |tx| {
                let changed = tx
                    .prepare_cached(
                        "UPDATE users SET username = ?2, display_name = ?3, email = ?4,
                         password_hash = ?5, oidc_issuer = ?6, oidc_subject = ?7,
                         failed_sign_ins = ?8, locked_until = ?9, disabled = ?10,
                         created_at = ?11
                         WHERE id = ?1",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            user.id,
                            user.username,
                            user.display_name,
                            user.email,
                            user.password_hash,
                            user.oidc_issuer,
                            user.oidc_subject,
                            user.failed_sign_ins,
                            opt_stamp(user.locked_until),
                            user.disabled,
                            stamp(user.created_at),
                        ])
                    })
                    .map_err(write_error(&format!("user {}", user.username)))?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("user {}", user.id)));
                }
                Ok(())
            })
            .await
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
            one(conn, &sql, [id], row_to_user)
        })
        .await
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1");
            one(conn, &sql, [username], row_to_user)
        })
        .await
    }

    async fn find_user_by_oidc(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let (issuer, subject) = (issuer.to_owned(), subject.to_owned());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE oidc_issuer = ?1 AND oidc_subject = ?2"
            );
            one(conn, &sql, [issuer, subject], row_to_user)
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
            all(conn, &sql, [], row_to_user)
        })
        .await
    }

    async fn add_grant(&self, user_id: &str, grant: &Grant) -> Result<(), StoreError> {
        let (user_id, grant) = (user_id.to_owned(), grant.clone());
        self.writer
            .run(move |tx| {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO user_grants (user_id, tenant, role) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        user_id,
                        tenant_key(&grant.tenant),
                        grant.role.as_str()
                    ])
                })
                .map(drop)
                .map_err(StoreError::backend)
            })
            .await
    }

    async fn remove_grant(&self, user_id: &str, grant: &Grant) -> Result<bool, StoreError> {
        let (user_id, grant) = (user_id.to_owned(), grant.clone());
        self.writer
            .run(move |tx| {
                tx.prepare_cached(
                    "DELETE FROM user_grants WHERE user_id = ?1 AND tenant = ?2 AND role = ?3",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        user_id,
                        tenant_key(&grant.tenant),
                        grant.role.as_str()
                    ])
                })
                .map(|removed| removed > 0)
                .map_err(StoreError::backend)
            })
            .await
    }

    async fn grants_of(&self, user_id: &str) -> Result<Vec<Grant>, StoreError> {
        let user_id = user_id.to_owned();
        let mut grants = self
            .read(move |conn| {
                all(
                    conn,
                    "SELECT tenant, role FROM user_grants WHERE user_id = ?1",
                    [user_id],
                    |row| {
                        Ok(Grant {
                            tenant: tenant_from_key(row.get(0)?),
                            role: role_at(row, 1)?,
                        })
                    },
                )
            })
            .await?;
        // `Grant`'s own order (platform first, then by tenant and role), not SQL's.
        grants.sort();
        Ok(grants)
    }

    async fn holders_of(&self, grant: &Grant) -> Result<Vec<String>, StoreError> {
        let grant = grant.clone();
        self.read(move |conn| {
            all(
                conn,
                "SELECT user_id FROM user_grants WHERE tenant = ?1 AND role = ?2 ORDER BY user_id",
                params![tenant_key(&grant.tenant), grant.role.as_str()],
                |row| row.get(0),
            )
        })
        .await
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer
            .run(move |tx| {
                let sql = format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                );
                tx.prepare_cached(&sql)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            key.id,
                            tenant_key(&key.grant.tenant),
                            key.grant.role.as_str(),
                            scopes_text(&key.scopes),
                            key.label,
                            key.secret_hash,
                            key.created_by,
                            stamp(key.created_at),
                            opt_stamp(key.expires_at),
                            opt_stamp(key.revoked_at),
                        ])
                    })
                    .map(drop)
                    .map_err(write_error(&format!("API key {}", key.id)))
            })
            .await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1");
            one(conn, &sql, [id], row_to_key)
        })
        .await
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let tenant = tenant.unwrap_or("").to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = ?1
                 ORDER BY created_at DESC, id DESC"
            );
            all(conn, &sql, [tenant], row_to_key)
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .run(move |tx| {
                tx.prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                )
                .and_then(|mut statement| statement.execute(params![id, stamp(at)]))
                .map(|changed| changed > 0)
                .map_err(StoreError::backend)
            })
            .await
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let session = session.clone();
        self.writer
            .run(move |tx| {
                let sql =
                    format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)");
                tx.prepare_cached(&sql)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            session.token_hash,
                            session.user_id,
                            session.csrf_token,
                            stamp(session.created_at),
                            stamp(session.expires_at),
                        ])
                    })
                    .map(drop)
                    .map_err(write_error("session"))
            })
            .await
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1");
            one(conn, &sql, [token_hash], row_to_session)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token_hash = token_hash.to_owned();
        self.writer
            .run(move |tx| {
                tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])
                    .map(drop)
                    .map_err(StoreError::backend)
            })
            .await
    }

    async fn delete_sessions_of(&self, user_id: &str) -> Result<(), StoreError> {
        let user_id = user_id.to_owned();
        self.writer
            .run(move |tx| {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])
                    .map(drop)
                    .map_err(StoreError::backend)
            })
            .await
    }

    async fn put_pending_sign_in(
        &self,
        state: &str,
        data: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (state, data) = (state.to_owned(), data.to_owned());
        self.writer
            .run(move |tx| {
                // Sign-ins never finished would otherwise stay forever.
                tx.execute(
                    "DELETE FROM pending_sign_ins WHERE expires_at <= ?1",
                    [stamp(Utc::now())],
                )
                .map_err(StoreError::backend)?;
                tx.execute(
                    "INSERT OR REPLACE INTO pending_sign_ins (state, data, expires_at)
                     VALUES (?1, ?2, ?3)",
                    params![state, data, stamp(expires_at)],
                )
                .map(drop)
                .map_err(StoreError::backend)
            })
            .await
    }

    async fn take_pending_sign_in(&self, state: &str) -> Result<Option<String>, StoreError> {
        let state = state.to_owned();
        let taken = self
            .writer
            .run(move |tx| {
                one(
                    tx,
                    "DELETE FROM pending_sign_ins WHERE state = ?1 RETURNING data, expires_at",
                    [state],
                    |row| Ok((row.get::<_, String>(0)?, time_at(row, 1)?)),
                )
            })
            .await?;
        Ok(taken
            .filter(|(_, expires_at)| *expires_at > Utc::now())
            .map(|(data, _)| data))
    }

    async fn append_audit(&self, event: AuditEvent) -> Result<AuditRecord, StoreError> {
        self.writer.run(move |tx| append_in(tx, event)).await
    }

    async fn search_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let (sql, args) = search_sql(filter);
        self.read(move |conn| all(conn, &sql, params_from_iter(args), row_to_audit))
            .await
    }

    async fn audit_chain(
        &self,
        from_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            );
            all(conn, &sql, [from_seq, limit], row_to_audit)
        })
        .await
    }
}
