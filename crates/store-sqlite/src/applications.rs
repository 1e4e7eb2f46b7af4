//! [`ApplicationStore`] on SQLite, in the tables of schema version 11.
//!
//! Every write runs on the one writer thread, inside a savepoint of its own: a check
//! (the version an update expects, a payment event seen before, an idempotency key)
//! and the write it guards never interleave with another write, and a write that
//! fails part-way leaves nothing behind. Times are stored as the fixed-width text of
//! [`crate::columns`], so they compare and sort as text.

use crate::columns::{json_at, opt_stamp, opt_time_at, stamp, time_at};
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde_json::Value;
use store::applications::{
    ApplicationChange, ApplicationFilter, ApplicationRecord, ApplicationStore, AttachmentRecord,
    DelegationRecord, DocumentRecord, HistoryRecord, OutboxMessage, PaymentRecord, ProcedureRecord,
};
use store::StoreError;

const PROCEDURE_COLUMNS: &str = "tenant, id, version, shared, status, created_at, document";

const APPLICATION_COLUMNS: &str = "id, tenant, procedure_id, procedure_version, applicant, \
     state, reception_number, idempotency_key, due_at, created_at, updated_at, document, version";

const HISTORY_COLUMNS: &str = "application_id, seq, at, entry";

const OUTBOX_COLUMNS: &str =
    "id, tenant, application_id, channel, payload, attempts, next_attempt_at";

const ATTACHMENT_COLUMNS: &str = "id, application_id, requirement, file_name, media_type, \
     size, digest, sealed_content, created_at";

const PAYMENT_COLUMNS: &str = "id, tenant, application_id, provider, provider_ref, state, \
     amount_yen, created_at, updated_at, expires_at, document, version";

const DOCUMENT_COLUMNS: &str =
    "code, tenant, application_id, kind, reception_number, digest, issued_at, pdf";

const DELEGATION_COLUMNS: &str = "id, tenant, principal, delegate, from_at, until_at";

fn row_to_procedure(row: &Row<'_>) -> rusqlite::Result<ProcedureRecord> {
    Ok(ProcedureRecord {
        tenant: row.get(0)?,
        id: row.get(1)?,
        version: row.get(2)?,
        shared: row.get(3)?,
        status: row.get(4)?,
        created_at: time_at(row, 5)?,
        document: json_at(row, 6)?,
    })
}

fn row_to_application(row: &Row<'_>) -> rusqlite::Result<ApplicationRecord> {
    Ok(ApplicationRecord {
        id: row.get(0)?,
        tenant: row.get(1)?,
        procedure_id: row.get(2)?,
        procedure_version: row.get(3)?,
        applicant: row.get(4)?,
        state: row.get(5)?,
        reception_number: row.get(6)?,
        idempotency_key: row.get(7)?,
        due_at: opt_time_at(row, 8)?,
        created_at: time_at(row, 9)?,
        updated_at: time_at(row, 10)?,
        document: json_at(row, 11)?,
        version: row.get(12)?,
    })
}

fn row_to_history(row: &Row<'_>) -> rusqlite::Result<HistoryRecord> {
    Ok(HistoryRecord {
        application_id: row.get(0)?,
        seq: row.get(1)?,
        at: time_at(row, 2)?,
        entry: json_at(row, 3)?,
    })
}

fn row_to_message(row: &Row<'_>) -> rusqlite::Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: row.get(0)?,
        tenant: row.get(1)?,
        application_id: row.get(2)?,
        channel: row.get(3)?,
        payload: json_at(row, 4)?,
        attempts: row.get(5)?,
        next_attempt_at: time_at(row, 6)?,
    })
}

fn row_to_attachment(row: &Row<'_>) -> rusqlite::Result<AttachmentRecord> {
    Ok(AttachmentRecord {
        id: row.get(0)?,
        application_id: row.get(1)?,
        requirement: row.get(2)?,
        file_name: row.get(3)?,
        media_type: row.get(4)?,
        size: row.get(5)?,
        digest: row.get(6)?,
        sealed_content: row.get(7)?,
        created_at: time_at(row, 8)?,
    })
}

fn row_to_payment(row: &Row<'_>) -> rusqlite::Result<PaymentRecord> {
    Ok(PaymentRecord {
        id: row.get(0)?,
        tenant: row.get(1)?,
        application_id: row.get(2)?,
        provider: row.get(3)?,
        provider_ref: row.get(4)?,
        state: row.get(5)?,
        amount_yen: row.get(6)?,
        created_at: time_at(row, 7)?,
        updated_at: time_at(row, 8)?,
        expires_at: time_at(row, 9)?,
        document: json_at(row, 10)?,
        version: row.get(11)?,
    })
}

fn row_to_document(row: &Row<'_>) -> rusqlite::Result<DocumentRecord> {
    Ok(DocumentRecord {
        code: row.get(0)?,
        tenant: row.get(1)?,
        application_id: row.get(2)?,
        kind: row.get(3)?,
        reception_number: row.get(4)?,
        digest: row.get(5)?,
        issued_at: time_at(row, 6)?,
        pdf: row.get(7)?,
    })
}

fn row_to_delegation(row: &Row<'_>) -> rusqlite::Result<DelegationRecord> {
    Ok(DelegationRecord {
        id: row.get(0)?,
        tenant: row.get(1)?,
        principal: row.get(2)?,
        delegate: row.get(3)?,
        from: time_at(row, 4)?,
        until: time_at(row, 5)?,
    })
}

fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(StoreError::backend)
}

fn exists(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<bool, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.exists(params))
        .map_err(StoreError::backend)
}

fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(params, read).optional())
        .map_err(StoreError::backend)
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.query_map(params, read)?.collect())
        .map_err(StoreError::backend)
}

fn application_by_id(conn: &Connection, id: &str) -> Result<Option<ApplicationRecord>, StoreError> {
    let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE id = ?1");
    query_one(conn, &sql, [id], row_to_application)
}

fn payment_by_id(conn: &Connection, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM application_payments WHERE id = ?1");
    query_one(conn, &sql, [id], row_to_payment)
}

fn application_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    exists(conn, "SELECT 1 FROM applications WHERE id = ?1", [id])
}

/// A length or count as SQLite's integer (saturating; no store holds that many).
fn int(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Writes what a change adds beside the application row: its history entry (stamped
/// `at`), its outbox messages in order, its documents.
fn write_change(
    conn: &Connection,
    application_id: &str,
    at: &str,
    change: &ApplicationChange,
) -> Result<(), StoreError> {
    if let Some(entry) = &change.history {
        execute(
            conn,
            "INSERT INTO application_history (application_id, seq, at, entry)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM application_history
                          WHERE application_id = ?1), ?2, ?3)",
            params![application_id, at, entry.to_string()],
        )?;
    }
    for message in &change.outbox {
        execute(
            conn,
            "INSERT INTO application_outbox (tenant, application_id, channel, payload,
                 attempts, next_attempt_at, leased_until)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, NULL)",
            params![
                message.tenant,
                message.application_id,
                message.channel,
                message.payload.to_string(),
                stamp(message.next_attempt_at)
            ],
        )?;
    }
    for document in &change.documents {
        if exists(
            conn,
            "SELECT 1 FROM application_documents WHERE code = ?1",
            [&document.code],
        )? {
            return Err(StoreError::AlreadyExists(document.code.clone()));
        }
        if !application_exists(conn, &document.application_id)? {
            return Err(StoreError::NotFound(document.application_id.clone()));
        }
        execute(
            conn,
            "INSERT INTO application_documents (code, tenant, application_id, kind,
                 reception_number, digest, issued_at, pdf)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                document.code,
                document.tenant,
                document.application_id,
                document.kind,
                document.reception_number,
                document.digest,
                stamp(document.issued_at),
                document.pdf
            ],
        )?;
    }
    Ok(())
}

fn insert_application_in(
    conn: &Connection,
    app: &ApplicationRecord,
    change: &ApplicationChange,
) -> Result<ApplicationRecord, StoreError> {
    if let Some(key) = &app.idempotency_key {
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM applications
             WHERE applicant = ?1 AND idempotency_key = ?2"
        );
        if let Some(existing) =
            query_one(conn, &sql, params![app.applicant, key], row_to_application)?
        {
            return Ok(existing);
        }
    }
    if application_exists(conn, &app.id)? {
        return Err(StoreError::AlreadyExists(app.id.clone()));
    }
    let updated_at = stamp(app.updated_at);
    execute(
        conn,
        "INSERT INTO applications (id, tenant, procedure_id, procedure_version, applicant,
             state, reception_number, idempotency_key, due_at, created_at, updated_at,
             document, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1)",
        params![
            app.id,
            app.tenant,
            app.procedure_id,
            app.procedure_version,
            app.applicant,
            app.state,
            app.reception_number,
            app.idempotency_key,
            opt_stamp(app.due_at),
            stamp(app.created_at),
            updated_at,
            app.document.to_string()
        ],
    )?;
    write_change(conn, &app.id, &updated_at, change)?;
    application_by_id(conn, &app.id)?.ok_or_else(|| StoreError::NotFound(app.id.clone()))
}

fn update_application_in(
    conn: &Connection,
    app: &ApplicationRecord,
    expected_version: i64,
    change: &ApplicationChange,
) -> Result<ApplicationRecord, StoreError> {
    let updated_at = stamp(app.updated_at);
    let written = execute(
        conn,
        "UPDATE applications SET state = ?3, reception_number = ?4, due_at = ?5,
             updated_at = ?6, document = ?7, version = version + 1
         WHERE id = ?1 AND version = ?2",
        params![
            app.id,
            expected_version,
            app.state,
            app.reception_number,
            opt_stamp(app.due_at),
            updated_at,
            app.document.to_string()
        ],
    )?;
    if written == 0 {
        return Err(if application_exists(conn, &app.id)? {
            StoreError::Conflict(app.id.clone())
        } else {
            StoreError::NotFound(app.id.clone())
        });
    }
    write_change(conn, &app.id, &updated_at, change)?;
    application_by_id(conn, &app.id)?.ok_or_else(|| StoreError::NotFound(app.id.clone()))
}

/// The `WHERE` clause and its parameters for a filter.
fn filter_sql(filter: &ApplicationFilter) -> (String, Vec<SqlValue>) {
    let mut sql = String::from(" WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    let mut text = |sql: &mut String, condition: &str, value: String| {
        sql.push_str(condition);
        args.push(SqlValue::Text(value));
    };
    if let Some(tenant) = &filter.tenant {
        text(&mut sql, " AND tenant = ?", tenant.clone());
    }
    if let Some(procedure_id) = &filter.procedure_id {
        text(&mut sql, " AND procedure_id = ?", procedure_id.clone());
    }
    if let Some(applicant) = &filter.applicant {
        text(&mut sql, " AND applicant = ?", applicant.clone());
    }
    if let Some(due) = filter.due_before {
        text(&mut sql, " AND due_at <= ?", stamp(due));
    }
    if let Some(updated) = filter.updated_before {
        text(&mut sql, " AND updated_at < ?", stamp(updated));
    }
    if !filter.states.is_empty() {
        sql.push_str(" AND state IN (");
        for (n, state) in filter.states.iter().enumerate() {
            sql.push_str(if n == 0 { "?" } else { ", ?" });
            args.push(SqlValue::Text(state.clone()));
        }
        sql.push(')');
    }
    (sql, args)
}

fn claim_outbox_in(
    conn: &Connection,
    now: &str,
    until: &str,
    limit: i64,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM application_outbox
         WHERE next_attempt_at <= ?1 AND (leased_until IS NULL OR leased_until < ?1)
         ORDER BY id LIMIT ?2"
    );
    let messages = query_all(conn, &sql, params![now, limit], row_to_message)?;
    for message in &messages {
        execute(
            conn,
            "UPDATE application_outbox SET leased_until = ?2 WHERE id = ?1",
            params![message.id, until],
        )?;
    }
    Ok(messages)
}

fn update_payment_in(
    conn: &Connection,
    payment: &PaymentRecord,
    expected_version: i64,
    event_id: Option<&str>,
) -> Result<Option<PaymentRecord>, StoreError> {
    if let Some(event) = event_id {
        if exists(
            conn,
            "SELECT 1 FROM application_payment_events WHERE payment_id = ?1 AND event_id = ?2",
            params![payment.id, event],
        )? {
            return Ok(None);
        }
    }
    let written = execute(
        conn,
        "UPDATE application_payments SET provider_ref = ?3, state = ?4, amount_yen = ?5,
             updated_at = ?6, expires_at = ?7, document = ?8, version = version + 1
         WHERE id = ?1 AND version = ?2",
        params![
            payment.id,
            expected_version,
            payment.provider_ref,
            payment.state,
            payment.amount_yen,
            stamp(payment.updated_at),
            stamp(payment.expires_at),
            payment.document.to_string()
        ],
    )
    .map_err(|e| taken_reference(e, payment))?;
    if written == 0 {
        return Err(if payment_by_id(conn, &payment.id)?.is_some() {
            StoreError::Conflict(payment.id.clone())
        } else {
            StoreError::NotFound(payment.id.clone())
        });
    }
    if let Some(event) = event_id {
        execute(
            conn,
            "INSERT INTO application_payment_events (payment_id, event_id) VALUES (?1, ?2)",
            params![payment.id, event],
        )?;
    }
    payment_by_id(conn, &payment.id)
}

/// A write refused by the unique provider reference is `AlreadyExists`; other
/// failures stay what they were.
fn taken_reference(err: StoreError, payment: &PaymentRecord) -> StoreError {
    let unique = matches!(
        &err,
        StoreError::Backend(source) if source
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            == Some(rusqlite::ErrorCode::ConstraintViolation)
    );
    if unique {
        StoreError::AlreadyExists(format!(
            "{}/{}",
            payment.provider,
            payment.provider_ref.as_deref().unwrap_or_default()
        ))
    } else {
        err
    }
}

#[async_trait]
impl ApplicationStore for SqliteStore {
    async fn insert_procedure(&self, procedure: &ProcedureRecord) -> Result<(), StoreError> {
        let p = procedure.clone();
        self.writer
            .run(move |tx| {
                if exists(
                    tx,
                    "SELECT 1 FROM procedures WHERE tenant = ?1 AND id = ?2 AND version = ?3",
                    params![p.tenant, p.id, p.version],
                )? {
                    return Err(StoreError::AlreadyExists(format!(
                        "{}/{}@{}",
                        p.tenant, p.id, p.version
                    )));
                }
                execute(
                    tx,
                    "INSERT INTO procedures (tenant, id, version, shared, status, created_at,
                         document)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        p.tenant,
                        p.id,
                        p.version,
                        p.shared,
                        p.status,
                        stamp(p.created_at),
                        p.document.to_string()
                    ],
                )
                .map(drop)
            })
            .await
    }

    async fn get_procedure(
        &self,
        tenant: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Option<ProcedureRecord>, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {PROCEDURE_COLUMNS} FROM procedures
                 WHERE tenant = ?1 AND id = ?2 AND (?3 IS NULL OR version = ?3)
                 ORDER BY version DESC LIMIT 1"
            );
            query_one(conn, &sql, params![tenant, id, version], row_to_procedure)
        })
        .await
    }

    async fn list_procedures(
        &self,
        tenant: &str,
        with_shared: bool,
    ) -> Result<Vec<ProcedureRecord>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {PROCEDURE_COLUMNS} FROM procedures p
                 WHERE version = (SELECT MAX(version) FROM procedures l
                                  WHERE l.tenant = p.tenant AND l.id = p.id)
                   AND (tenant = ?1 OR (?2 AND shared))
                 ORDER BY tenant, id"
            );
            query_all(conn, &sql, params![tenant, with_shared], row_to_procedure)
        })
        .await
    }

    async fn insert_application(
        &self,
        application: &ApplicationRecord,
        change: &ApplicationChange,
    ) -> Result<ApplicationRecord, StoreError> {
        let (app, change) = (application.clone(), change.clone());
        self.writer
            .run(move |tx| insert_application_in(tx, &app, &change))
            .await
    }

    async fn get_application(&self, id: &str) -> Result<Option<ApplicationRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| application_by_id(conn, &id)).await
    }

    async fn update_application(
        &self,
        application: &ApplicationRecord,
        expected_version: i64,
        change: &ApplicationChange,
    ) -> Result<ApplicationRecord, StoreError> {
        let (app, change) = (application.clone(), change.clone());
        self.writer
            .run(move |tx| update_application_in(tx, &app, expected_version, &change))
            .await
    }

    async fn list_applications(
        &self,
        filter: &ApplicationFilter,
    ) -> Result<Vec<ApplicationRecord>, StoreError> {
        let (where_sql, mut args) = filter_sql(filter);
        let limit = if filter.limit == 0 {
            -1
        } else {
            int(filter.limit)
        };
        args.push(SqlValue::Integer(limit));
        args.push(SqlValue::Integer(int(filter.offset)));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {APPLICATION_COLUMNS} FROM applications{where_sql}
                 ORDER BY due_at IS NULL, due_at, created_at, id LIMIT ? OFFSET ?"
            );
            query_all(conn, &sql, params_from_iter(args), row_to_application)
        })
        .await
    }

    async fn count_applications(&self, filter: &ApplicationFilter) -> Result<u64, StoreError> {
        let (where_sql, args) = filter_sql(filter);
        self.read(move |conn| {
            let sql = format!("SELECT COUNT(*) FROM applications{where_sql}");
            let count: Option<i64> =
                query_one(conn, &sql, params_from_iter(args), |row| row.get(0))?;
            Ok(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
        })
        .await
    }

    async fn history(&self, application_id: &str) -> Result<Vec<HistoryRecord>, StoreError> {
        let id = application_id.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {HISTORY_COLUMNS} FROM application_history WHERE application_id = ?1
                 ORDER BY seq"
            );
            query_all(conn, &sql, [id], row_to_history)
        })
        .await
    }

    async fn procedure_history(
        &self,
        tenant: &str,
        procedure_id: &str,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let (tenant, procedure_id) = (tenant.to_owned(), procedure_id.to_owned());
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT h.application_id, h.seq, h.at, h.entry
                 FROM application_history h JOIN applications a ON a.id = h.application_id
                 WHERE a.tenant = ?1 AND a.procedure_id = ?2
                 ORDER BY h.at, h.application_id, h.seq",
                params![tenant, procedure_id],
                row_to_history,
            )
        })
        .await
    }

    async fn next_sequence(&self, name: &str) -> Result<u64, StoreError> {
        let name = name.to_owned();
        self.writer
            .run(move |tx| {
                let value: Option<i64> = query_one(
                    tx,
                    "INSERT INTO sequences (name, value) VALUES (?1, 1)
                     ON CONFLICT (name) DO UPDATE SET value = value + 1
                     RETURNING value",
                    [&name],
                    |row| row.get(0),
                )?;
                value
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| StoreError::NotFound(name))
            })
            .await
    }

    async fn insert_attachment(&self, attachment: &AttachmentRecord) -> Result<(), StoreError> {
        let a = attachment.clone();
        self.writer
            .run(move |tx| {
                if !application_exists(tx, &a.application_id)? {
                    return Err(StoreError::NotFound(a.application_id.clone()));
                }
                if exists(
                    tx,
                    "SELECT 1 FROM application_attachments WHERE id = ?1",
                    [&a.id],
                )? {
                    return Err(StoreError::AlreadyExists(a.id.clone()));
                }
                execute(
                    tx,
                    "INSERT INTO application_attachments (id, application_id, requirement,
                         file_name, media_type, size, digest, sealed_content, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        a.id,
                        a.application_id,
                        a.requirement,
                        a.file_name,
                        a.media_type,
                        a.size,
                        a.digest,
                        a.sealed_content,
                        stamp(a.created_at)
                    ],
                )
                .map(drop)
            })
            .await
    }

    async fn get_attachment(&self, id: &str) -> Result<Option<AttachmentRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let sql =
                format!("SELECT {ATTACHMENT_COLUMNS} FROM application_attachments WHERE id = ?1");
            query_one(conn, &sql, [id], row_to_attachment)
        })
        .await
    }

    async fn list_attachments(
        &self,
        application_id: &str,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let id = application_id.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {ATTACHMENT_COLUMNS} FROM application_attachments
                 WHERE application_id = ?1 ORDER BY created_at, id"
            );
            query_all(conn, &sql, [id], row_to_attachment)
        })
        .await
    }

    async fn delete_attachment(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .run(move |tx| {
                Ok(execute(
                    tx,
                    "DELETE FROM application_attachments WHERE id = ?1",
                    [id],
                )? > 0)
            })
            .await
    }

    async fn insert_payment(&self, payment: &PaymentRecord) -> Result<(), StoreError> {
        let p = payment.clone();
        self.writer
            .run(move |tx| {
                if !application_exists(tx, &p.application_id)? {
                    return Err(StoreError::NotFound(p.application_id.clone()));
                }
                if payment_by_id(tx, &p.id)?.is_some() {
                    return Err(StoreError::AlreadyExists(p.id.clone()));
                }
                execute(
                    tx,
                    "INSERT INTO application_payments (id, tenant, application_id, provider,
                         provider_ref, state, amount_yen, created_at, updated_at, expires_at,
                         document, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1)",
                    params![
                        p.id,
                        p.tenant,
                        p.application_id,
                        p.provider,
                        p.provider_ref,
                        p.state,
                        p.amount_yen,
                        stamp(p.created_at),
                        stamp(p.updated_at),
                        stamp(p.expires_at),
                        p.document.to_string()
                    ],
                )
                .map_err(|e| taken_reference(e, &p))
                .map(drop)
            })
            .await
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| payment_by_id(conn, &id)).await
    }

    async fn payment_by_provider_ref(
        &self,
        provider: &str,
        provider_ref: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let (provider, provider_ref) = (provider.to_owned(), provider_ref.to_owned());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {PAYMENT_COLUMNS} FROM application_payments
                 WHERE provider = ?1 AND provider_ref = ?2"
            );
            query_one(conn, &sql, params![provider, provider_ref], row_to_payment)
        })
        .await
    }

    async fn payments_of(&self, application_id: &str) -> Result<Vec<PaymentRecord>, StoreError> {
        let id = application_id.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {PAYMENT_COLUMNS} FROM application_payments
                 WHERE application_id = ?1 ORDER BY created_at, id"
            );
            query_all(conn, &sql, [id], row_to_payment)
        })
        .await
    }

    async fn payments_in_states(
        &self,
        states: &[String],
        created_before: DateTime<Utc>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![SqlValue::Text(stamp(created_before))];
        args.extend(states.iter().cloned().map(SqlValue::Text));
        let marks = vec!["?"; states.len()].join(", ");
        self.read(move |conn| {
            let sql = format!(
                "SELECT {PAYMENT_COLUMNS} FROM application_payments
                 WHERE created_at < ? AND state IN ({marks}) ORDER BY created_at, id"
            );
            query_all(conn, &sql, params_from_iter(args), row_to_payment)
        })
        .await
    }

    async fn update_payment(
        &self,
        payment: &PaymentRecord,
        expected_version: i64,
        event_id: Option<&str>,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let (p, event) = (payment.clone(), event_id.map(str::to_owned));
        self.writer
            .run(move |tx| update_payment_in(tx, &p, expected_version, event.as_deref()))
            .await
    }

    async fn get_document(&self, code: &str) -> Result<Option<DocumentRecord>, StoreError> {
        let code = code.to_owned();
        self.read(move |conn| {
            let sql =
                format!("SELECT {DOCUMENT_COLUMNS} FROM application_documents WHERE code = ?1");
            query_one(conn, &sql, [code], row_to_document)
        })
        .await
    }

    async fn documents_of(&self, application_id: &str) -> Result<Vec<DocumentRecord>, StoreError> {
        let id = application_id.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {DOCUMENT_COLUMNS} FROM application_documents
                 WHERE application_id = ?1 ORDER BY issued_at, code"
            );
            query_all(conn, &sql, [id], row_to_document)
        })
        .await
    }

    async fn insert_delegation(&self, delegation: &DelegationRecord) -> Result<(), StoreError> {
        let d = delegation.clone();
        self.writer
            .run(move |tx| {
                if exists(
                    tx,
                    "SELECT 1 FROM approval_delegations WHERE id = ?1",
                    [&d.id],
                )? {
                    return Err(StoreError::AlreadyExists(d.id.clone()));
                }
                execute(
                    tx,
                    "INSERT INTO approval_delegations (id, tenant, principal, delegate, from_at,
                         until_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        d.id,
                        d.tenant,
                        d.principal,
                        d.delegate,
                        stamp(d.from),
                        stamp(d.until)
                    ],
                )
                .map(drop)
            })
            .await
    }

    async fn delegations(&self, tenant: &str) -> Result<Vec<DelegationRecord>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {DELEGATION_COLUMNS} FROM approval_delegations WHERE tenant = ?1
                 ORDER BY from_at, id"
            );
            query_all(conn, &sql, [tenant], row_to_delegation)
        })
        .await
    }

    async fn delete_delegation(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .run(move |tx| {
                Ok(execute(
                    tx,
                    "DELETE FROM approval_delegations WHERE tenant = ?1 AND id = ?2",
                    params![tenant, id],
                )? > 0)
            })
            .await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (now, until, limit) = (stamp(now), stamp(lease_until), int(limit));
        self.writer
            .run(move |tx| claim_outbox_in(tx, &now, &until, limit))
            .await
    }

    async fn complete_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.writer
            .run(move |tx| {
                execute(tx, "DELETE FROM application_outbox WHERE id = ?1", [id]).map(drop)
            })
            .await
    }

    async fn retry_outbox(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let next = stamp(next_attempt_at);
        self.writer
            .run(move |tx| {
                execute(
                    tx,
                    "UPDATE application_outbox
                     SET attempts = attempts + 1, next_attempt_at = ?2, leased_until = NULL
                     WHERE id = ?1",
                    params![id, next],
                )
                .map(drop)
            })
            .await
    }

    async fn anonymise_application(
        &self,
        id: &str,
        anonymised: &Value,
    ) -> Result<bool, StoreError> {
        let (id, anonymised) = (id.to_owned(), anonymised.to_string());
        self.writer
            .run(move |tx| {
                let written = execute(
                    tx,
                    "UPDATE applications SET document = ?2, version = version + 1 WHERE id = ?1",
                    params![id, anonymised],
                )?;
                if written == 0 {
                    return Ok(false);
                }
                execute(
                    tx,
                    "DELETE FROM application_attachments WHERE application_id = ?1",
                    [&id],
                )?;
                execute(
                    tx,
                    "DELETE FROM application_documents WHERE application_id = ?1",
                    [&id],
                )?;
                Ok(true)
            })
            .await
    }
}
