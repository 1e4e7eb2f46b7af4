//! [`RegistrationStore`] on PostgreSQL, in the table of schema version 11. A
//! creation writes its tenant row and the registration in one transaction, as entity
//! and subscription writes do.

use crate::{backend, ensure_tenant, PostgresStore};
use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use store::registrations::{RegistrationStore, StoredRegistration};
use store::{StoreError, Tenant};
use tokio_postgres::error::SqlState;

#[async_trait]
impl RegistrationStore for PostgresStore {
    async fn create_registration(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        ensure_tenant(&tx, tenant).await?;
        match tx
            .execute(
                "INSERT INTO csource_registrations (tenant, id, doc, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[&tenant.name(), &id, doc, &Utc::now()],
            )
            .await
        {
            // Nothing written: the transaction rolls back when dropped.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(StoreError::AlreadyExists(id.to_owned()));
            }
            other => other.map_err(backend)?,
        };
        tx.commit().await.map_err(backend)
    }

    async fn get_registration(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT doc FROM csource_registrations WHERE tenant = $1 AND id = $2",
                &[&tenant.name(), &id],
            )
            .await
            .map_err(backend)?
            .map(|row| row.try_get::<_, Value>("doc").map_err(backend))
            .transpose()
    }

    async fn list_registrations(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<StoredRegistration>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id, doc FROM csource_registrations WHERE tenant = $1 ORDER BY seq",
                &[&tenant.name()],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|row| {
                Ok(StoredRegistration {
                    id: row.try_get("id").map_err(backend)?,
                    doc: row.try_get("doc").map_err(backend)?,
                })
            })
            .collect()
    }

    async fn replace_registration(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let replaced = client
            .execute(
                "UPDATE csource_registrations SET doc = $3 WHERE tenant = $1 AND id = $2",
                &[&tenant.name(), &id, doc],
            )
            .await
            .map_err(backend)?;
        if replaced == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    async fn delete_registration(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM csource_registrations WHERE tenant = $1 AND id = $2",
                &[&tenant.name(), &id],
            )
            .await
            .map_err(backend)?;
        Ok(deleted > 0)
    }
}
