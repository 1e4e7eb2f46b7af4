//! [`RegistrationStore`] on SQLite, in the table of schema version 12: writes go
//! through the one writer thread, reads run on the pooled readers.

use crate::columns::{is_unique_violation, json_at, stamp};
use crate::{writer, SqliteStore};
use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, OptionalExtension};
use serde_json::Value;
use store::registrations::{RegistrationStore, StoredRegistration};
use store::{StoreError, Tenant};

#[async_trait]
impl RegistrationStore for SqliteStore {
    async fn create_registration(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let (tenant, id, doc) = (tenant.clone(), id.to_owned(), doc.to_string());
        self.writer
            .run(move |tx| {
                writer::ensure_tenant(tx, &tenant)?;
                tx.prepare_cached(
                    "INSERT INTO csource_registrations (tenant, id, doc, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![tenant.name(), id, doc, stamp(Utc::now())]))
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::AlreadyExists(id.clone())
                    } else {
                        StoreError::backend(e)
                    }
                })?;
                Ok(())
            })
            .await
    }

    async fn get_registration(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT doc FROM csource_registrations WHERE tenant = ?1 AND id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.name(), id], |row| json_at(row, 0))
                    .optional()
            })
            .map_err(StoreError::backend)
        })
        .await
    }

    async fn list_registrations(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<StoredRegistration>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT id, doc FROM csource_registrations WHERE tenant = ?1 ORDER BY seq",
                )
                .map_err(StoreError::backend)?;
            let rows = statement
                .query_map([tenant.name()], |row| {
                    Ok(StoredRegistration {
                        id: row.get(0)?,
                        doc: json_at(row, 1)?,
                    })
                })
                .map_err(StoreError::backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::backend);
            rows
        })
        .await
    }

    async fn replace_registration(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let (tenant, id, doc) = (tenant.clone(), id.to_owned(), doc.to_string());
        self.writer
            .run(move |tx| {
                let replaced = tx
                    .prepare_cached(
                        "UPDATE csource_registrations SET doc = ?3 WHERE tenant = ?1 AND id = ?2",
                    )
                    .and_then(|mut s| s.execute(params![tenant.name(), id, doc]))
                    .map_err(StoreError::backend)?;
                if replaced == 0 {
                    return Err(StoreError::NotFound(id));
                }
                Ok(())
            })
            .await
    }

    async fn delete_registration(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.writer
            .run(move |tx| {
                let deleted = tx
                    .prepare_cached(
                        "DELETE FROM csource_registrations WHERE tenant = ?1 AND id = ?2",
                    )
                    .and_then(|mut s| s.execute(params![tenant.name(), id]))
                    .map_err(StoreError::backend)?;
                Ok(deleted > 0)
            })
            .await
    }
}
