//! Context source registrations (ETSI GS CIM 009 clause 5.9): what a tenant has been
//! told about other context sources: which entities, types and attributes they hold
//! and where (`endpoint`). The broker keeps them and answers discovery queries over
//! them (clause 5.10); it does not forward requests to the sources. A registration is
//! kept as its document (terms expanded, as `ngsi_ld` decodes it) per tenant, in
//! creation order.

use crate::{StoreError, Tenant};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// One stored registration.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRegistration {
    pub id: String,
    pub doc: Value,
}

#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Stores a new registration; `AlreadyExists` when the tenant has one by that id.
    /// Creates the tenant on first write, as entity writes do.
    async fn create_registration(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError>;

    async fn get_registration(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Value>, StoreError>;

    /// Every registration of the tenant, oldest first.
    async fn list_registrations(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<StoredRegistration>, StoreError>;

    /// Replaces the document of a registration; `NotFound` when there is none.
    async fn replace_registration(
        &self,
        tenant: &Tenant,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError>;

    /// Deletes a registration; whether there was one.
    async fn delete_registration(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError>;
}

pub type SharedRegistrationStore = Arc<dyn RegistrationStore>;
