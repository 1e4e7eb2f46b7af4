//! [`ApplicationStore`] on PostgreSQL, in the tables of migration 10.
//!
//! Several nodes share the database, so every guarded write is one transaction whose
//! guard is a row lock: an update is `UPDATE … WHERE id = $1 AND version = $2`, and
//! of two writers at one version the second waits for the first, then finds the
//! version moved and writes nothing. A payment update locks the payment before it
//! records the provider's event, so a callback repeated at once by two nodes is
//! applied once. Counters are one `INSERT … ON CONFLICT DO UPDATE … RETURNING`, and
//! the outbox is claimed with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once
//! take different messages instead of waiting on one another.

use crate::{backend, PostgresStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use store::applications::{
    ApplicationChange, ApplicationFilter, ApplicationRecord, ApplicationStore, AttachmentRecord,
    DelegationRecord, DocumentRecord, HistoryRecord, OutboxMessage, PaymentRecord, ProcedureRecord,
};
use store::StoreError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

const PROCEDURE_COLUMNS: &str = "tenant, id, version, shared, status, created_at, document";

const APPLICATION_COLUMNS: &str = "id, tenant, procedure_id, procedure_version, applicant, \
     state, reception_number, idempotency_key, due_at, created_at, updated_at, document, version";

const OUTBOX_COLUMNS: &str =
    "id, tenant, application_id, channel, payload, attempts, next_attempt_at";

const ATTACHMENT_COLUMNS: &str = "id, application_id, requirement, file_name, media_type, \
     size, digest, sealed_content, created_at";

const PAYMENT_COLUMNS: &str = "id, tenant, application_id, provider, provider_ref, state, \
     amount_yen, created_at, updated_at, expires_at, document, version";

const DOCUMENT_COLUMNS: &str =
    "code, tenant, application_id, kind, reception_number, digest, issued_at, pdf";

const DELEGATION_COLUMNS: &str = "id, tenant, principal, delegate, from_at, until_at";

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(backend)
}

fn read_procedure(row: &Row) -> Result<ProcedureRecord, StoreError> {
    Ok(ProcedureRecord {
        tenant: get(row, "tenant")?,
        id: get(row, "id")?,
        version: get(row, "version")?,
        shared: get(row, "shared")?,
        status: get(row, "status")?,
        created_at: get(row, "created_at")?,
        document: get(row, "document")?,
    })
}

fn read_application(row: &Row) -> Result<ApplicationRecord, StoreError> {
    Ok(ApplicationRecord {
        id: get(row, "id")?,
        tenant: get(row, "tenant")?,
        procedure_id: get(row, "procedure_id")?,
        procedure_version: get(row, "procedure_version")?,
        applicant: get(row, "applicant")?,
        state: get(row, "state")?,
        reception_number: get(row, "reception_number")?,
        idempotency_key: get(row, "idempotency_key")?,
        due_at: get(row, "due_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        document: get(row, "document")?,
        version: get(row, "version")?,
    })
}

fn read_history(row: &Row) -> Result<HistoryRecord, StoreError> {
    Ok(HistoryRecord {
        application_id: get(row, "application_id")?,
        seq: get(row, "seq")?,
        at: get(row, "at")?,
        entry: get(row, "entry")?,
    })
}

fn read_message(row: &Row) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        id: get(row, "id")?,
        tenant: get(row, "tenant")?,
        application_id: get(row, "application_id")?,
        channel: get(row, "channel")?,
        payload: get(row, "payload")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: get(row, "next_attempt_at")?,
    })
}

fn read_attachment(row: &Row) -> Result<AttachmentRecord, StoreError> {
    Ok(AttachmentRecord {
        id: get(row, "id")?,
        application_id: get(row, "application_id")?,
        requirement: get(row, "requirement")?,
        file_name: get(row, "file_name")?,
        media_type: get(row, "media_type")?,
        size: get(row, "size")?,
        digest: get(row, "digest")?,
        sealed_content: get(row, "sealed_content")?,
        created_at: get(row, "created_at")?,
    })
}

fn read_payment(row: &Row) -> Result<PaymentRecord, StoreError> {
    Ok(PaymentRecord {
        id: get(row, "id")?,
        tenant: get(row, "tenant")?,
        application_id: get(row, "application_id")?,
        provider: get(row, "provider")?,
        provider_ref: get(row, "provider_ref")?,
        state: get(row, "state")?,
        amount_yen: get(row, "amount_yen")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        expires_at: get(row, "expires_at")?,
        document: get(row, "document")?,
        version: get(row, "version")?,
    })
}

fn read_document(row: &Row) -> Result<DocumentRecord, StoreError> {
    Ok(DocumentRecord {
        code: get(row, "code")?,
        tenant: get(row, "tenant")?,
        application_id: get(row, "application_id")?,
        kind: get(row, "kind")?,
        reception_number: get(row, "reception_number")?,
        digest: get(row, "digest")?,
        issued_at: get(row, "issued_at")?,
        pdf: get(row, "pdf")?,
    })
}

fn read_delegation(row: &Row) -> Result<DelegationRecord, StoreError> {
    Ok(DelegationRecord {
        id: get(row, "id")?,
        tenant: get(row, "tenant")?,
        principal: get(row, "principal")?,
        delegate: get(row, "delegate")?,
        from: get(row, "from_at")?,
        until: get(row, "until_at")?,
    })
}

fn read_all<T>(
    rows: &[Row],
    read: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(read).collect()
}

/// A write refused by a unique constraint is `AlreadyExists` of `what`.
fn taken(err: tokio_postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::AlreadyExists(what())
    } else {
        backend(err)
    }
}

/// A count or length as PostgreSQL's bigint (saturating; no store holds that many).
fn int(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

async fn application_exists(tx: &Transaction<'_>, id: &str) -> Result<bool, StoreError> {
    Ok(tx
        .query_opt("SELECT 1 FROM applications WHERE id = $1", &[&id])
        .await
        .map_err(backend)?
        .is_some())
}

/// Writes what a change adds beside the application row: its history entry (stamped
/// `at`; the application row is locked or new, so the next seq is this writer's),
/// its outbox messages in order, its documents.
async fn write_change(
    tx: &Transaction<'_>,
    application_id: &str,
    at: DateTime<Utc>,
    change: &ApplicationChange,
) -> Result<(), StoreError> {
    if let Some(entry) = &change.history {
        tx.execute(
            "INSERT INTO application_history (application_id, seq, at, entry)
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM application_history
             WHERE application_id = $1",
            &[&application_id, &at, entry],
        )
        .await
        .map_err(backend)?;
    }
    for message in &change.outbox {
        tx.execute(
            "INSERT INTO application_outbox (tenant, application_id, channel, payload,
                 attempts, next_attempt_at)
             VALUES ($1, $2, $3, $4, 0, $5)",
            &[
                &message.tenant,
                &message.application_id,
                &message.channel,
                &message.payload,
                &message.next_attempt_at,
            ],
        )
        .await
        .map_err(backend)?;
    }
    for document in &change.documents {
        if !application_exists(tx, &document.application_id).await? {
            return Err(StoreError::NotFound(document.application_id.clone()));
        }
        let inserted = tx
            .execute(
                "INSERT INTO application_documents (code, tenant, application_id, kind,
                     reception_number, digest, issued_at, pdf)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (code) DO NOTHING",
                &[
                    &document.code,
                    &document.tenant,
                    &document.application_id,
                    &document.kind,
                    &document.reception_number,
                    &document.digest,
                    &document.issued_at,
                    &document.pdf,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(document.code.clone()));
        }
    }
    Ok(())
}

/// The `WHERE` clause and its parameters for a filter (numbered from `$1`).
fn filter_sql(filter: &ApplicationFilter) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::from(" WHERE true");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |sql: &mut String, condition: &str, value: Box<dyn ToSql + Sync + Send>| {
        args.push(value);
        sql.push_str(&condition.replace('#', &format!("${}", args.len())));
    };
    if let Some(tenant) = &filter.tenant {
        push(&mut sql, " AND tenant = #", Box::new(tenant.clone()));
    }
    if let Some(procedure_id) = &filter.procedure_id {
        push(
            &mut sql,
            " AND procedure_id = #",
            Box::new(procedure_id.clone()),
        );
    }
    if let Some(applicant) = &filter.applicant {
        push(&mut sql, " AND applicant = #", Box::new(applicant.clone()));
    }
    if !filter.states.is_empty() {
        push(
            &mut sql,
            " AND state = ANY(#)",
            Box::new(filter.states.clone()),
        );
    }
    if let Some(due) = filter.due_before {
        push(&mut sql, " AND due_at <= #", Box::new(due));
    }
    if let Some(updated) = filter.updated_before {
        push(&mut sql, " AND updated_at < #", Box::new(updated));
    }
    (sql, args)
}

fn params(args: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|arg| arg.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

#[async_trait]
impl ApplicationStore for PostgresStore {
    async fn insert_procedure(&self, procedure: &ProcedureRecord) -> Result<(), StoreError> {
        let p = procedure;
        let inserted = self
            .client()
            .await?
            .execute(
                "INSERT INTO procedures (tenant, id, version, shared, status, created_at, document)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant, id, version) DO NOTHING",
                &[
                    &p.tenant,
                    &p.id,
                    &p.version,
                    &p.shared,
                    &p.status,
                    &p.created_at,
                    &p.document,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(format!(
                "{}/{}@{}",
                p.tenant, p.id, p.version
            )));
        }
        Ok(())
    }

    async fn get_procedure(
        &self,
        tenant: &str,
        id: &str,
        version: Option<i64>,
    ) -> Result<Option<ProcedureRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROCEDURE_COLUMNS} FROM procedures
             WHERE tenant = $1 AND id = $2 AND ($3::bigint IS NULL OR version = $3)
             ORDER BY version DESC LIMIT 1"
        );
        self.client()
            .await?
            .query_opt(&sql, &[&tenant, &id, &version])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_procedure)
            .transpose()
    }

    async fn list_procedures(
        &self,
        tenant: &str,
        with_shared: bool,
    ) -> Result<Vec<ProcedureRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROCEDURE_COLUMNS} FROM procedures p
             WHERE version = (SELECT max(version) FROM procedures l
                              WHERE l.tenant = p.tenant AND l.id = p.id)
               AND (tenant = $1 OR ($2 AND shared))
             ORDER BY tenant COLLATE \"C\", id COLLATE \"C\""
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&tenant, &with_shared])
            .await
            .map_err(backend)?;
        read_all(&rows, read_procedure)
    }

    async fn insert_application(
        &self,
        application: &ApplicationRecord,
        change: &ApplicationChange,
    ) -> Result<ApplicationRecord, StoreError> {
        let app = application;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // A concurrent submission with the same key waits here for the first to
        // commit, then inserts nothing and finds it below.
        let sql = format!(
            "INSERT INTO applications (id, tenant, procedure_id, procedure_version, applicant,
                 state, reception_number, idempotency_key, due_at, created_at, updated_at,
                 document, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)
             ON CONFLICT DO NOTHING
             RETURNING {APPLICATION_COLUMNS}"
        );
        let inserted = tx
            .query_opt(
                &sql,
                &[
                    &app.id,
                    &app.tenant,
                    &app.procedure_id,
                    &app.procedure_version,
                    &app.applicant,
                    &app.state,
                    &app.reception_number,
                    &app.idempotency_key,
                    &app.due_at,
                    &app.created_at,
                    &app.updated_at,
                    &app.document,
                ],
            )
            .await
            .map_err(backend)?;
        let Some(row) = inserted else {
            if let Some(key) = &app.idempotency_key {
                let sql = format!(
                    "SELECT {APPLICATION_COLUMNS} FROM applications
                     WHERE applicant = $1 AND idempotency_key = $2"
                );
                let existing = tx
                    .query_opt(&sql, &[&app.applicant, key])
                    .await
                    .map_err(backend)?;
                if let Some(row) = existing {
                    return read_application(&row);
                }
            }
            return Err(StoreError::AlreadyExists(app.id.clone()));
        };
        let stored = read_application(&row)?;
        write_change(&tx, &app.id, app.updated_at, change).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn get_application(&self, id: &str) -> Result<Option<ApplicationRecord>, StoreError> {
        let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE id = $1");
        self.client()
            .await?
            .query_opt(&sql, &[&id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_application)
            .transpose()
    }

    async fn update_application(
        &self,
        application: &ApplicationRecord,
        expected_version: i64,
        change: &ApplicationChange,
    ) -> Result<ApplicationRecord, StoreError> {
        let app = application;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let sql = format!(
            "UPDATE applications SET state = $3, reception_number = $4, due_at = $5,
                 updated_at = $6, document = $7, version = version + 1
             WHERE id = $1 AND version = $2
             RETURNING {APPLICATION_COLUMNS}"
        );
        let updated = tx
            .query_opt(
                &sql,
                &[
                    &app.id,
                    &expected_version,
                    &app.state,
                    &app.reception_number,
                    &app.due_at,
                    &app.updated_at,
                    &app.document,
                ],
            )
            .await
            .map_err(backend)?;
        let Some(row) = updated else {
            return Err(if application_exists(&tx, &app.id).await? {
                StoreError::Conflict(app.id.clone())
            } else {
                StoreError::NotFound(app.id.clone())
            });
        };
        let stored = read_application(&row)?;
        write_change(&tx, &app.id, app.updated_at, change).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn list_applications(
        &self,
        filter: &ApplicationFilter,
    ) -> Result<Vec<ApplicationRecord>, StoreError> {
        let (where_sql, mut args) = filter_sql(filter);
        let limit = (filter.limit > 0).then(|| int(filter.limit));
        args.push(Box::new(limit));
        args.push(Box::new(int(filter.offset)));
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM applications{where_sql}
             ORDER BY due_at ASC NULLS LAST, created_at, id COLLATE \"C\"
             LIMIT ${} OFFSET ${}",
            args.len() - 1,
            args.len()
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &params(&args))
            .await
            .map_err(backend)?;
        read_all(&rows, read_application)
    }

    async fn count_applications(&self, filter: &ApplicationFilter) -> Result<u64, StoreError> {
        let (where_sql, args) = filter_sql(filter);
        let sql = format!("SELECT count(*) FROM applications{where_sql}");
        let row = self
            .client()
            .await?
            .query_one(&sql, &params(&args))
            .await
            .map_err(backend)?;
        let count: i64 = get(&row, "count")?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn history(&self, application_id: &str) -> Result<Vec<HistoryRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT application_id, seq, at, entry FROM application_history
                 WHERE application_id = $1 ORDER BY seq",
                &[&application_id],
            )
            .await
            .map_err(backend)?;
        read_all(&rows, read_history)
    }

    async fn procedure_history(
        &self,
        tenant: &str,
        procedure_id: &str,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT h.application_id, h.seq, h.at, h.entry
                 FROM application_history h JOIN applications a ON a.id = h.application_id
                 WHERE a.tenant = $1 AND a.procedure_id = $2
                 ORDER BY h.at, h.application_id COLLATE \"C\", h.seq",
                &[&tenant, &procedure_id],
            )
            .await
            .map_err(backend)?;
        read_all(&rows, read_history)
    }

    async fn next_sequence(&self, name: &str) -> Result<u64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO sequences (name, value) VALUES ($1, 1)
                 ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1
                 RETURNING value",
                &[&name],
            )
            .await
            .map_err(backend)?;
        let value: i64 = get(&row, "value")?;
        u64::try_from(value).map_err(StoreError::backend)
    }

    async fn insert_attachment(&self, attachment: &AttachmentRecord) -> Result<(), StoreError> {
        let a = attachment;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The application row stays until this commits.
        let application = tx
            .query_opt(
                "SELECT 1 FROM applications WHERE id = $1 FOR SHARE",
                &[&a.application_id],
            )
            .await
            .map_err(backend)?;
        if application.is_none() {
            return Err(StoreError::NotFound(a.application_id.clone()));
        }
        let inserted = tx
            .execute(
                "INSERT INTO application_attachments (id, application_id, requirement,
                     file_name, media_type, size, digest, sealed_content, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &a.id,
                    &a.application_id,
                    &a.requirement,
                    &a.file_name,
                    &a.media_type,
                    &a.size,
                    &a.digest,
                    &a.sealed_content,
                    &a.created_at,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(a.id.clone()));
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_attachment(&self, id: &str) -> Result<Option<AttachmentRecord>, StoreError> {
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM application_attachments WHERE id = $1");
        self.client()
            .await?
            .query_opt(&sql, &[&id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_attachment)
            .transpose()
    }

    async fn list_attachments(
        &self,
        application_id: &str,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM application_attachments
             WHERE application_id = $1 ORDER BY created_at, id COLLATE \"C\""
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&application_id])
            .await
            .map_err(backend)?;
        read_all(&rows, read_attachment)
    }

    async fn delete_attachment(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .client()
            .await?
            .execute("DELETE FROM application_attachments WHERE id = $1", &[&id])
            .await
            .map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn insert_payment(&self, payment: &PaymentRecord) -> Result<(), StoreError> {
        let p = payment;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let application = tx
            .query_opt(
                "SELECT 1 FROM applications WHERE id = $1 FOR SHARE",
                &[&p.application_id],
            )
            .await
            .map_err(backend)?;
        if application.is_none() {
            return Err(StoreError::NotFound(p.application_id.clone()));
        }
        // Either unique key (the id, the provider's reference) refuses the row.
        let inserted = tx
            .execute(
                "INSERT INTO application_payments (id, tenant, application_id, provider,
                     provider_ref, state, amount_yen, created_at, updated_at, expires_at,
                     document, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1)
                 ON CONFLICT DO NOTHING",
                &[
                    &p.id,
                    &p.tenant,
                    &p.application_id,
                    &p.provider,
                    &p.provider_ref,
                    &p.state,
                    &p.amount_yen,
                    &p.created_at,
                    &p.updated_at,
                    &p.expires_at,
                    &p.document,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(p.id.clone()));
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM application_payments WHERE id = $1");
        self.client()
            .await?
            .query_opt(&sql, &[&id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_payment)
            .transpose()
    }

    async fn payment_by_provider_ref(
        &self,
        provider: &str,
        provider_ref: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM application_payments
             WHERE provider = $1 AND provider_ref = $2"
        );
        self.client()
            .await?
            .query_opt(&sql, &[&provider, &provider_ref])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_payment)
            .transpose()
    }

    async fn payments_of(&self, application_id: &str) -> Result<Vec<PaymentRecord>, StoreError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM application_payments
             WHERE application_id = $1 ORDER BY created_at, id COLLATE \"C\""
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&application_id])
            .await
            .map_err(backend)?;
        read_all(&rows, read_payment)
    }

    async fn payments_in_states(
        &self,
        states: &[String],
        created_before: DateTime<Utc>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM application_payments
             WHERE state = ANY($1) AND created_at < $2 ORDER BY created_at, id COLLATE \"C\""
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&states, &created_before])
            .await
            .map_err(backend)?;
        read_all(&rows, read_payment)
    }

    async fn update_payment(
        &self,
        payment: &PaymentRecord,
        expected_version: i64,
        event_id: Option<&str>,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let p = payment;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Locked first, so a callback repeated at once on another node waits here and
        // then finds the event recorded.
        let current = tx
            .query_opt(
                "SELECT version FROM application_payments WHERE id = $1 FOR UPDATE",
                &[&p.id],
            )
            .await
            .map_err(backend)?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(p.id.clone()));
        };
        if let Some(event) = event_id {
            let recorded = tx
                .execute(
                    "INSERT INTO application_payment_events (payment_id, event_id)
                     VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&p.id, &event],
                )
                .await
                .map_err(backend)?;
            if recorded == 0 {
                return Ok(None);
            }
        }
        if get::<i64>(&current, "version")? != expected_version {
            // Dropping the transaction undoes the event's row.
            return Err(StoreError::Conflict(p.id.clone()));
        }
        let sql = format!(
            "UPDATE application_payments SET provider_ref = $2, state = $3, amount_yen = $4,
                 updated_at = $5, expires_at = $6, document = $7, version = version + 1
             WHERE id = $1
             RETURNING {PAYMENT_COLUMNS}"
        );
        let row = tx
            .query_one(
                &sql,
                &[
                    &p.id,
                    &p.provider_ref,
                    &p.state,
                    &p.amount_yen,
                    &p.updated_at,
                    &p.expires_at,
                    &p.document,
                ],
            )
            .await
            .map_err(|e| {
                taken(e, || {
                    format!(
                        "{}/{}",
                        p.provider,
                        p.provider_ref.as_deref().unwrap_or_default()
                    )
                })
            })?;
        let stored = read_payment(&row)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(stored))
    }

    async fn get_document(&self, code: &str) -> Result<Option<DocumentRecord>, StoreError> {
        let sql = format!("SELECT {DOCUMENT_COLUMNS} FROM application_documents WHERE code = $1");
        self.client()
            .await?
            .query_opt(&sql, &[&code])
            .await
            .map_err(backend)?
            .as_ref()
            .map(read_document)
            .transpose()
    }

    async fn documents_of(&self, application_id: &str) -> Result<Vec<DocumentRecord>, StoreError> {
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM application_documents
             WHERE application_id = $1 ORDER BY issued_at, code COLLATE \"C\""
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&application_id])
            .await
            .map_err(backend)?;
        read_all(&rows, read_document)
    }

    async fn insert_delegation(&self, delegation: &DelegationRecord) -> Result<(), StoreError> {
        let d = delegation;
        let inserted = self
            .client()
            .await?
            .execute(
                "INSERT INTO approval_delegations (id, tenant, principal, delegate, from_at,
                     until_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &d.id,
                    &d.tenant,
                    &d.principal,
                    &d.delegate,
                    &d.from,
                    &d.until,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(d.id.clone()));
        }
        Ok(())
    }

    async fn delegations(&self, tenant: &str) -> Result<Vec<DelegationRecord>, StoreError> {
        let sql = format!(
            "SELECT {DELEGATION_COLUMNS} FROM approval_delegations WHERE tenant = $1
             ORDER BY from_at, id COLLATE \"C\""
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&tenant])
            .await
            .map_err(backend)?;
        read_all(&rows, read_delegation)
    }

    async fn delete_delegation(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .client()
            .await?
            .execute(
                "DELETE FROM approval_delegations WHERE tenant = $1 AND id = $2",
                &[&tenant, &id],
            )
            .await
            .map_err(backend)?;
        Ok(deleted > 0)
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        // The outer condition repeats the inner one: a row another claim leased
        // between this one's snapshot and its lock is left alone.
        let sql = format!(
            "UPDATE application_outbox SET leased_until = $2
             WHERE id IN (
                 SELECT id FROM application_outbox
                 WHERE next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until < $1)
                 ORDER BY id LIMIT $3
                 FOR UPDATE SKIP LOCKED)
               AND (leased_until IS NULL OR leased_until < $1)
             RETURNING {OUTBOX_COLUMNS}"
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&now, &lease_until, &int(limit)])
            .await
            .map_err(backend)?;
        let mut messages = read_all(&rows, read_message)?;
        // RETURNING keeps no order.
        messages.sort_by_key(|m| m.id);
        Ok(messages)
    }

    async fn complete_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute("DELETE FROM application_outbox WHERE id = $1", &[&id])
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn retry_outbox(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE application_outbox
                 SET attempts = attempts + 1, next_attempt_at = $2, leased_until = NULL
                 WHERE id = $1",
                &[&id, &next_attempt_at],
            )
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn anonymise_application(
        &self,
        id: &str,
        anonymised: &Value,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let written = tx
            .execute(
                "UPDATE applications SET document = $2, version = version + 1 WHERE id = $1",
                &[&id, anonymised],
            )
            .await
            .map_err(backend)?;
        if written == 0 {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM application_attachments WHERE application_id = $1",
            "DELETE FROM application_documents WHERE application_id = $1",
        ] {
            tx.execute(sql, &[&id]).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }
}
