//! Discovery of entity types and attributes (ETSI GS CIM 009 clause 5.7.5–5.7.10):
//! what types and attributes exist in a tenant, and details of one of them.

use crate::{store_error, Broker};
use ngsi_ld::NgsiError;
use store::{AttributeStats, Tenant, TypeStats};

impl Broker {
    /// Every entity type present in the tenant, with its attributes.
    pub async fn types(&self, tenant: &Tenant) -> Result<Vec<TypeStats>, NgsiError> {
        self.check_tenant(tenant).await?;
        self.store().type_stats(tenant).await.map_err(store_error)
    }

    /// One entity type by its expanded IRI.
    pub async fn type_details(
        &self,
        tenant: &Tenant,
        type_iri: &str,
    ) -> Result<TypeStats, NgsiError> {
        self.types(tenant)
            .await?
            .into_iter()
            .find(|t| t.type_iri == type_iri)
            .ok_or_else(|| NgsiError::not_found(format!("no entity of type {type_iri}")))
    }

    /// Every attribute present in the tenant.
    pub async fn attributes(&self, tenant: &Tenant) -> Result<Vec<AttributeStats>, NgsiError> {
        self.check_tenant(tenant).await?;
        self.store()
            .attribute_stats(tenant)
            .await
            .map_err(store_error)
    }

    /// One attribute by its expanded IRI.
    pub async fn attribute_details(
        &self,
        tenant: &Tenant,
        attribute_iri: &str,
    ) -> Result<AttributeStats, NgsiError> {
        self.attributes(tenant)
            .await?
            .into_iter()
            .find(|a| a.attribute_iri == attribute_iri)
            .ok_or_else(|| NgsiError::not_found(format!("no entity has attribute {attribute_iri}")))
    }
}
