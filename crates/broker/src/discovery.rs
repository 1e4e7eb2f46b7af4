//! Discovery of entity types and attributes (ETSI GS CIM 009 clause 5.7.5–5.7.10):
//! what types and attributes exist in a tenant, and details of one of them.
//!
//! A reader who sees only a tenant's public types gets discovery computed from the
//! entities they may see, so that neither a hidden type nor the count of hidden
//! entities shows through.

use crate::visibility::Visibility;
use crate::{store_error, Broker, MAX_PAGE_SIZE};
use ngsi_ld::query::EntityQuery;
use ngsi_ld::NgsiError;
use std::collections::{BTreeMap, BTreeSet};
use store::{AttributeStats, Tenant, TypeStats};

impl Broker {
    /// Every entity type present in the tenant that the reader may see, with its
    /// attributes.
    pub async fn types(
        &self,
        tenant: &Tenant,
        visibility: &Visibility,
    ) -> Result<Vec<TypeStats>, NgsiError> {
        match visibility {
            Visibility::All => {
                self.check_tenant(tenant).await?;
                self.store().type_stats(tenant).await.map_err(store_error)
            }
            Visibility::PublicTypes(_) => Ok(self.visible_stats(tenant, visibility).await?.0),
        }
    }

    /// One entity type by its expanded IRI.
    pub async fn type_details(
        &self,
        tenant: &Tenant,
        type_iri: &str,
        visibility: &Visibility,
    ) -> Result<TypeStats, NgsiError> {
        self.types(tenant, visibility)
            .await?
            .into_iter()
            .find(|t| t.type_iri == type_iri)
            .ok_or_else(|| NgsiError::not_found(format!("no entity of type {type_iri}")))
    }

    /// Every attribute present in the tenant on entities the reader may see.
    pub async fn attributes(
        &self,
        tenant: &Tenant,
        visibility: &Visibility,
    ) -> Result<Vec<AttributeStats>, NgsiError> {
        match visibility {
            Visibility::All => {
                self.check_tenant(tenant).await?;
                self.store()
                    .attribute_stats(tenant)
                    .await
                    .map_err(store_error)
            }
            Visibility::PublicTypes(_) => Ok(self.visible_stats(tenant, visibility).await?.1),
        }
    }

    /// One attribute by its expanded IRI.
    pub async fn attribute_details(
        &self,
        tenant: &Tenant,
        attribute_iri: &str,
        visibility: &Visibility,
    ) -> Result<AttributeStats, NgsiError> {
        self.attributes(tenant, visibility)
            .await?
            .into_iter()
            .find(|a| a.attribute_iri == attribute_iri)
            .ok_or_else(|| NgsiError::not_found(format!("no entity has attribute {attribute_iri}")))
    }

    /// Type and attribute statistics over the entities a restricted reader may see,
    /// read a page at a time. Public data (shelters, sensors) is small; the cost is
    /// borne only by readers who are not staff of the tenant.
    async fn visible_stats(
        &self,
        tenant: &Tenant,
        visibility: &Visibility,
    ) -> Result<(Vec<TypeStats>, Vec<AttributeStats>), NgsiError> {
        let mut types: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
        let mut attributes: BTreeMap<String, (u64, BTreeSet<String>, BTreeSet<String>)> =
            BTreeMap::new();
        let mut query = EntityQuery {
            limit: MAX_PAGE_SIZE,
            ..EntityQuery::default()
        };
        if !visibility.narrow(&mut query) {
            return Ok((Vec::new(), Vec::new()));
        }
        loop {
            let page = self
                .store()
                .query_entities(tenant, &query)
                .await
                .map_err(store_error)?;
            for entity in &page.entities {
                for type_iri in entity.types.iter().filter(|t| visibility.allows_type(t)) {
                    let entry = types.entry(type_iri.clone()).or_default();
                    entry.0 += 1;
                    entry.1.extend(entity.attributes.keys().cloned());
                }
                for (name, instances) in &entity.attributes {
                    let entry = attributes.entry(name.clone()).or_default();
                    entry.0 += 1;
                    entry
                        .1
                        .extend(instances.iter().map(|a| a.value.kind_name().to_owned()));
                    entry.2.extend(
                        entity
                            .types
                            .iter()
                            .filter(|t| visibility.allows_type(t))
                            .cloned(),
                    );
                }
            }
            if page.entities.len() < query.limit {
                break;
            }
            query.offset += query.limit;
        }
        let types = types
            .into_iter()
            .map(|(type_iri, (entity_count, attrs))| TypeStats {
                type_iri,
                entity_count,
                attributes: attrs.into_iter().collect(),
            })
            .collect();
        let attributes = attributes
            .into_iter()
            .map(
                |(attribute_iri, (entity_count, kinds, types))| AttributeStats {
                    attribute_iri,
                    entity_count,
                    kinds: kinds.into_iter().collect(),
                    types: types.into_iter().collect(),
                },
            )
            .collect();
        Ok((types, attributes))
    }
}
