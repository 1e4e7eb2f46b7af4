//! The NGSI-LD context broker's domain logic (ETSI GS CIM 009 clause 5.6–5.7): entity
//! and attribute operations, batch operations with their per-item results, queries,
//! purge, type and attribute discovery, and the resolution of `@context`s.
//!
//! Architecture invariant: no HTTP and no SQL. The server turns requests into the
//! domain types of `ngsi-ld` and calls [`Broker`]; the broker runs each change as a
//! read-modify-write inside one store transaction ([`store::Modification`]), so that
//! concurrent writers to one entity never lose each other's changes.

pub mod contexts;
pub mod discovery;
pub mod linked;
pub mod notifications;
pub mod ops;
pub mod temporal;
pub mod visibility;

use chrono::Utc;
use ngsi_ld::context::codec::AttributeFragment;
use ngsi_ld::model::{Attribute, DatasetSelector, Entity};
use ngsi_ld::query::EntityQuery;
use ngsi_ld::{NgsiError, ProblemType};
use ops::{EntityPatch, UpdateReport};
use std::sync::{Arc, Mutex};
use store::{EntityPage, Modification, SharedStore, StoreError, Tenant, Write};

pub use contexts::{ContextFetcher, ContextService};
pub use visibility::Visibility;

/// The most entities one query may return in a page (clause 6.3.10 lets a broker
/// choose; asking for more is TooManyResults).
pub const MAX_PAGE_SIZE: usize = 1000;

/// The broker: a store plus the rules of NGSI-LD.
#[derive(Clone)]
pub struct Broker {
    store: SharedStore,
    contexts: Arc<ContextService>,
}

/// One entity of a batch request: decoded, or refused with the id it claimed.
#[derive(Debug, Clone)]
pub enum BatchItem {
    Valid(Entity),
    Invalid { entity_id: String, error: NgsiError },
}

/// The outcome of a batch operation (BatchOperationResult, clause 5.2.16).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    pub success: Vec<String>,
    pub errors: Vec<(String, NgsiError)>,
    /// For upsert: which of the successful ids were created rather than updated.
    pub created: Vec<String>,
}

/// How a batch upsert treats an entity that exists (clause 5.6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertMode {
    Replace,
    Update,
    /// Replace, but an entity that already has the types, scopes and attributes
    /// given is left as it is: no new `modifiedAt`, history instance or
    /// notification. Not an option of the NGSI-LD API (whose upsert is an update
    /// even when nothing differs): what a synchronizer uses, such as the catalog
    /// publishing a file again, so that only what changed is recorded.
    ReplaceChanged,
}

/// Turns a storage failure into the problem the client sees. Domain refusals keep
/// their meaning; a backend failure is an InternalError whose text stays in the log.
pub fn store_error(err: StoreError) -> NgsiError {
    match err {
        StoreError::AlreadyExists(id) => {
            NgsiError::already_exists(format!("entity {id} already exists"))
        }
        StoreError::NotFound(id) => NgsiError::not_found(format!("entity {id} not found")),
        StoreError::Conflict(id) => NgsiError::new(
            ProblemType::Conflict,
            format!("entity {id} was changed by another write"),
        ),
        StoreError::Backend(source) => {
            tracing::error!(error = %source, "storage backend failure");
            NgsiError::new(ProblemType::InternalError, "internal storage error")
        }
    }
}

fn entity_not_found(id: &str) -> NgsiError {
    NgsiError::not_found(format!("entity {id} not found"))
}

/// Runs one read-modify-write and hands back what the closure computed besides the
/// write (an update report, say).
async fn modify_one<R: Send + 'static>(
    store: &SharedStore,
    tenant: &Tenant,
    id: &str,
    apply: impl FnOnce(Option<Entity>) -> Result<(Write, R), NgsiError> + Send + 'static,
) -> Result<R, NgsiError> {
    let output: Arc<Mutex<Option<R>>> = Arc::new(Mutex::new(None));
    let slot = output.clone();
    let modification = Modification::new(id, move |current| {
        let (write, result) = apply(current)?;
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        Ok(write)
    });
    let mut results = store
        .modify(tenant, vec![modification])
        .await
        .map_err(store_error)?;
    results.pop().unwrap_or(Ok(Write::Unchanged))?;
    let result = output.lock().unwrap_or_else(|p| p.into_inner()).take();
    result.ok_or_else(|| NgsiError::new(ProblemType::InternalError, "modification did not run"))
}

impl Broker {
    pub fn new(store: SharedStore, contexts: Arc<ContextService>) -> Self {
        Broker { store, contexts }
    }

    pub fn contexts(&self) -> &ContextService {
        &self.contexts
    }

    /// A shared handle to the context service, for background work.
    pub fn contexts_handle(&self) -> Arc<ContextService> {
        self.contexts.clone()
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Fails with NonexistentTenant when a read names a tenant never written to.
    pub async fn check_tenant(&self, tenant: &Tenant) -> Result<(), NgsiError> {
        if self
            .store
            .tenant_exists(tenant)
            .await
            .map_err(store_error)?
        {
            Ok(())
        } else {
            Err(NgsiError::new(
                ProblemType::NonexistentTenant,
                format!("tenant {} does not exist", tenant.name()),
            ))
        }
    }

    /// Create entity (clause 5.6.1).
    pub async fn create_entity(
        &self,
        tenant: &Tenant,
        mut entity: Entity,
    ) -> Result<(), NgsiError> {
        ops::admit_new_entity(&mut entity, Utc::now())?;
        self.store
            .create_entity(tenant, entity)
            .await
            .map_err(store_error)
    }

    /// Retrieve entity (clause 5.7.1), as a reader who sees `visibility` of the
    /// tenant: an entity they may not see is not found, exactly like a missing one.
    pub async fn retrieve_entity(
        &self,
        tenant: &Tenant,
        id: &str,
        visibility: &Visibility,
    ) -> Result<Entity, NgsiError> {
        match self
            .store
            .get_entity(tenant, id)
            .await
            .map_err(store_error)?
        {
            Some(entity) if visibility.allows(&entity) => Ok(entity),
            Some(_) => Err(entity_not_found(id)),
            // Only a miss needs to know whether the tenant exists at all: the common
            // hit costs one read, not two. A restricted reader is not told either.
            None => {
                if *visibility == Visibility::All {
                    self.check_tenant(tenant).await?;
                }
                Err(entity_not_found(id))
            }
        }
    }

    /// Query entities (clause 5.7.2).
    /// A restricted reader's query is narrowed to what they may see, and never told
    /// whether the tenant exists.
    pub async fn query_entities(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
        visibility: &Visibility,
    ) -> Result<EntityPage, NgsiError> {
        if query.limit > MAX_PAGE_SIZE {
            return Err(NgsiError::new(
                ProblemType::TooManyResults,
                format!(
                    "limit {} is above the maximum page size {MAX_PAGE_SIZE}",
                    query.limit
                ),
            ));
        }
        if *visibility != Visibility::All {
            let mut narrowed = query.clone();
            if !visibility.narrow(&mut narrowed) {
                return Ok(EntityPage {
                    entities: Vec::new(),
                    total: query.count.then_some(0),
                });
            }
            return self
                .store
                .query_entities(tenant, &narrowed)
                .await
                .map_err(store_error);
        }
        let page = self
            .store
            .query_entities(tenant, query)
            .await
            .map_err(store_error)?;
        if page.entities.is_empty() && page.total.unwrap_or(0) == 0 {
            self.check_tenant(tenant).await?;
        }
        Ok(page)
    }

    /// Replace entity (clause 5.6.18).
    pub async fn replace_entity(&self, tenant: &Tenant, entity: Entity) -> Result<(), NgsiError> {
        ops::refuse_nulls(&entity.attributes)?;
        let id = entity.id.clone();
        modify_one(&self.store, tenant, &id.clone(), move |current| {
            let old = current.ok_or_else(|| entity_not_found(&id))?;
            Ok((
                Write::Put(ops::replace_entity(&old, entity, Utc::now())),
                (),
            ))
        })
        .await
    }

    /// Append entity attributes (clause 5.6.3), with the types and scopes the fragment
    /// brings.
    pub async fn append_attributes(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: EntityPatch,
        no_overwrite: bool,
    ) -> Result<UpdateReport, NgsiError> {
        let id_owned = id.to_owned();
        modify_one(&self.store, tenant, id, move |current| {
            let mut entity = current.ok_or_else(|| entity_not_found(&id_owned))?;
            let report = ops::append_attributes(&mut entity, patch, no_overwrite, Utc::now());
            Ok((write_if_updated(entity, &report), report))
        })
        .await
    }

    /// Update entity attributes (clause 5.6.2), with the types and scopes the fragment
    /// brings.
    pub async fn update_attributes(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: EntityPatch,
    ) -> Result<UpdateReport, NgsiError> {
        let id_owned = id.to_owned();
        modify_one(&self.store, tenant, id, move |current| {
            let mut entity = current.ok_or_else(|| entity_not_found(&id_owned))?;
            let report = ops::update_attributes(&mut entity, patch, Utc::now());
            Ok((write_if_updated(entity, &report), report))
        })
        .await
    }

    /// Partial attribute update (clause 5.6.4).
    pub async fn partial_update_attribute(
        &self,
        tenant: &Tenant,
        id: &str,
        attribute: &str,
        fragments: Vec<AttributeFragment>,
    ) -> Result<(), NgsiError> {
        self.edit_entity(tenant, id, attribute, move |entity, name| {
            ops::partial_update_attribute(entity, name, fragments, Utc::now())
        })
        .await
    }

    /// Replace attribute (clause 5.6.19).
    pub async fn replace_attribute(
        &self,
        tenant: &Tenant,
        id: &str,
        attribute: &str,
        instances: Vec<Attribute>,
    ) -> Result<(), NgsiError> {
        self.edit_entity(tenant, id, attribute, move |entity, name| {
            ops::replace_attribute(entity, name, instances, Utc::now())
        })
        .await
    }

    /// Delete attribute (clause 5.6.5).
    pub async fn delete_attribute(
        &self,
        tenant: &Tenant,
        id: &str,
        attribute: &str,
        which: DatasetSelector,
    ) -> Result<(), NgsiError> {
        self.edit_entity(tenant, id, attribute, move |entity, name| {
            ops::delete_attribute(entity, name, &which, Utc::now())
        })
        .await
    }

    async fn edit_entity(
        &self,
        tenant: &Tenant,
        id: &str,
        attribute: &str,
        edit: impl FnOnce(&mut Entity, &str) -> Result<(), NgsiError> + Send + 'static,
    ) -> Result<(), NgsiError> {
        let id_owned = id.to_owned();
        let name = attribute.to_owned();
        modify_one(&self.store, tenant, id, move |current| {
            let mut entity = current.ok_or_else(|| entity_not_found(&id_owned))?;
            edit(&mut entity, &name)?;
            Ok((Write::Put(entity), ()))
        })
        .await
    }

    /// Merge entity (clause 5.6.17).
    pub async fn merge_entity(
        &self,
        tenant: &Tenant,
        id: &str,
        patch: EntityPatch,
    ) -> Result<(), NgsiError> {
        let id_owned = id.to_owned();
        modify_one(&self.store, tenant, id, move |current| {
            let mut entity = current.ok_or_else(|| entity_not_found(&id_owned))?;
            ops::merge_entity(&mut entity, patch, Utc::now());
            Ok((Write::Put(entity), ()))
        })
        .await
    }

    /// Delete entity (clause 5.6.6).
    pub async fn delete_entity(&self, tenant: &Tenant, id: &str) -> Result<(), NgsiError> {
        self.check_tenant(tenant).await?;
        let id_owned = id.to_owned();
        modify_one(&self.store, tenant, id, move |current| {
            current.ok_or_else(|| entity_not_found(&id_owned))?;
            Ok((Write::Delete, ()))
        })
        .await
    }

    /// Batch entity creation (clause 5.6.7).
    pub async fn batch_create(
        &self,
        tenant: &Tenant,
        items: Vec<BatchItem>,
    ) -> Result<BatchReport, NgsiError> {
        let now = Utc::now();
        self.run_batch(tenant, items, move |mut entity| {
            // Refused and stamped here, as a single create is, not on the writer.
            ops::admit_new_entity(&mut entity, now)?;
            Ok(Box::new(move |current: Option<Entity>| {
                if current.is_some() {
                    return Err(NgsiError::already_exists(format!(
                        "entity {} already exists",
                        entity.id
                    )));
                }
                Ok(Write::Put(entity))
            }))
        })
        .await
    }

    /// Batch entity upsert (clause 5.6.8).
    pub async fn batch_upsert(
        &self,
        tenant: &Tenant,
        items: Vec<BatchItem>,
        mode: UpsertMode,
    ) -> Result<BatchReport, NgsiError> {
        let now = Utc::now();
        let created: Arc<Mutex<Vec<String>>> = Arc::default();
        let created_log = created.clone();
        let mut report = self
            .run_batch(tenant, items, move |mut entity| {
                let created_log = created_log.clone();
                // Whatever is stored, a replacing upsert writes the entity whole: it is
                // refused and stamped here rather than on the writer, which then only
                // keeps a replaced entity's creation time.
                let replaces = mode != UpsertMode::Update;
                if replaces {
                    ops::admit_new_entity(&mut entity, now)?;
                }
                Ok(Box::new(move |current: Option<Entity>| match current {
                    None => {
                        if !replaces {
                            ops::admit_new_entity(&mut entity, now)?;
                        }
                        created_log
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(entity.id.clone());
                        Ok(Write::Put(entity))
                    }
                    Some(old) => match mode {
                        UpsertMode::Replace => {
                            Ok(Write::Put(ops::keep_creation_time(&old, entity)))
                        }
                        UpsertMode::ReplaceChanged => Ok(if old.same_content(&entity) {
                            Write::Unchanged
                        } else {
                            Write::Put(ops::keep_creation_time(&old, entity))
                        }),
                        UpsertMode::Update => {
                            let mut merged = old;
                            ops::append_attributes(&mut merged, patch_of(entity), false, now);
                            merged.modified_at = Some(now);
                            Ok(Write::Put(merged))
                        }
                    },
                }))
            })
            .await?;
        report.created = std::mem::take(&mut *created.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(report)
    }

    /// Batch entity update (clause 5.6.9): appends attributes to existing entities. With
    /// `no_overwrite`, the new attributes of an entity are still written while the ones
    /// it has already are kept, and the entity is reported as an error naming them.
    pub async fn batch_update(
        &self,
        tenant: &Tenant,
        items: Vec<BatchItem>,
        no_overwrite: bool,
    ) -> Result<BatchReport, NgsiError> {
        let now = Utc::now();
        let partial: Arc<Mutex<Vec<(String, NgsiError)>>> = Arc::default();
        let partial_log = partial.clone();
        let mut report = self
            .run_batch(tenant, items, move |entity| {
                let partial_log = partial_log.clone();
                Ok(Box::new(move |current: Option<Entity>| {
                    let id = entity.id.clone();
                    let mut old = current.ok_or_else(|| entity_not_found(&id))?;
                    let report =
                        ops::append_attributes(&mut old, patch_of(entity), no_overwrite, now);
                    if !report.is_complete() {
                        let names: Vec<_> = report
                            .not_updated
                            .iter()
                            .map(|n| n.attribute.as_str())
                            .collect();
                        partial_log.lock().unwrap_or_else(|p| p.into_inner()).push((
                            id,
                            NgsiError::bad_request_data(format!(
                                "attributes not updated (noOverwrite): {}",
                                names.join(", ")
                            )),
                        ));
                    }
                    Ok(write_if_updated(old, &report))
                }))
            })
            .await?;
        for (id, error) in std::mem::take(&mut *partial.lock().unwrap_or_else(|p| p.into_inner())) {
            report.success.retain(|s| *s != id);
            report.errors.push((id, error));
        }
        Ok(report)
    }

    /// Batch entity merge (clause 5.6.20).
    pub async fn batch_merge(
        &self,
        tenant: &Tenant,
        items: Vec<BatchItem>,
    ) -> Result<BatchReport, NgsiError> {
        let now = Utc::now();
        self.run_batch(tenant, items, move |entity| {
            Ok(Box::new(move |current: Option<Entity>| {
                let mut old = current.ok_or_else(|| entity_not_found(&entity.id))?;
                ops::merge_entity(&mut old, patch_of(entity), now);
                Ok(Write::Put(old))
            }))
        })
        .await
    }

    /// Batch entity delete (clause 5.6.10).
    pub async fn batch_delete(
        &self,
        tenant: &Tenant,
        ids: Vec<String>,
    ) -> Result<BatchReport, NgsiError> {
        let modifications = ids
            .iter()
            .map(|id| {
                let id_owned = id.clone();
                Modification::new(id.clone(), move |current| {
                    current.ok_or_else(|| entity_not_found(&id_owned))?;
                    Ok(Write::Delete)
                })
            })
            .collect();
        let results = self
            .store
            .modify(tenant, modifications)
            .await
            .map_err(store_error)?;
        let mut report = BatchReport::default();
        for (id, result) in ids.into_iter().zip(results) {
            match result {
                Ok(_) => report.success.push(id),
                Err(e) => report.errors.push((id, e)),
            }
        }
        Ok(report)
    }

    async fn run_batch(
        &self,
        tenant: &Tenant,
        items: Vec<BatchItem>,
        make: impl Fn(Entity) -> Result<store::ModifyFn, NgsiError>,
    ) -> Result<BatchReport, NgsiError> {
        // Keep request order in the report: failed decodes, and items `make` refuses
        // before the store sees them, sit between the items written.
        let mut order = Vec::with_capacity(items.len());
        let mut modifications = Vec::new();
        for item in items {
            match item {
                BatchItem::Valid(entity) => {
                    let id = entity.id.clone();
                    match make(entity) {
                        Ok(apply) => {
                            modifications.push(Modification {
                                entity_id: id.clone(),
                                apply,
                                history: None,
                            });
                            order.push((id, None));
                        }
                        Err(error) => order.push((id, Some(error))),
                    }
                }
                BatchItem::Invalid { entity_id, error } => order.push((entity_id, Some(error))),
            }
        }
        let results = if modifications.is_empty() {
            Vec::new()
        } else {
            self.store
                .modify(tenant, modifications)
                .await
                .map_err(store_error)?
        };
        let mut results = results.into_iter();
        let mut report = BatchReport::default();
        for (id, refused) in order {
            match refused {
                Some(error) => report.errors.push((id, error)),
                None => match results.next() {
                    Some(Ok(_)) => report.success.push(id),
                    Some(Err(error)) => report.errors.push((id, error)),
                    None => report.errors.push((
                        id,
                        NgsiError::new(ProblemType::InternalError, "no result for batch item"),
                    )),
                },
            }
        }
        Ok(report)
    }

    /// Purge entities (clause 5.6.21): deletes every entity the query selects.
    pub async fn purge(&self, tenant: &Tenant, query: &EntityQuery) -> Result<u64, NgsiError> {
        self.check_tenant(tenant).await?;
        self.store
            .delete_matching(tenant, query)
            .await
            .map_err(store_error)
    }
}

/// What an entity of a batch brings to an existing one: its types, scopes and attributes.
fn patch_of(entity: Entity) -> EntityPatch {
    EntityPatch {
        types: entity.types,
        scopes: (!entity.scopes.is_empty()).then_some(entity.scopes),
        attributes: entity.attributes,
    }
}

fn write_if_updated(entity: Entity, report: &UpdateReport) -> Write {
    if !report.changed() {
        Write::Unchanged
    } else {
        Write::Put(entity)
    }
}
