//! The storage interface of renkei, in domain types: what the broker (and later the
//! catalog, procedures and policy faces) ask of a database, and the errors it can give.
//! `store-sqlite` and `store-postgres` implement it; the binary picks one from the
//! database URL. [`conformance`] is the one test suite both must pass.
//!
//! Architecture invariant: no SQL and no HTTP here. Backends narrow a query with their
//! indexes in SQL (tenant, type, id, attribute names) and stream the candidates through
//! `ngsi-ld`'s one evaluator (`query::eval::Matcher`) for what SQL does not decide
//! (`q`, `scopeQ`, `geoQ`, `idPattern`), keeping only the page asked for; so both
//! backends give the same answers, and no query holds every entity in memory.

pub mod applications;
pub mod applications_conformance;
pub mod catalog;
pub mod catalog_conformance;
pub mod conformance;
pub mod datastore;
pub mod datastore_backend;
pub mod datastore_conformance;
pub mod doc;
pub mod harvest;
pub mod harvest_conformance;
pub mod identity;
pub mod identity_conformance;
pub mod registrations;
pub mod registrations_conformance;
pub mod subscriptions;
pub mod subscriptions_conformance;
pub mod temporal;
pub mod temporal_conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ngsi_ld::model::Entity;
use ngsi_ld::query::EntityQuery;
use ngsi_ld::NgsiError;
use std::fmt;
use std::sync::Arc;

/// A tenant name as NGSI-LD's `NGSILD-Tenant` header gives it; the empty name is the
/// default tenant used when the header is absent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(String);

impl Tenant {
    pub const DEFAULT_NAME: &'static str = "";

    pub fn default_tenant() -> Self {
        Tenant(String::new())
    }
    pub fn named(name: impl Into<String>) -> Self {
        Tenant(name.into())
    }
    pub fn name(&self) -> &str {
        &self.0
    }
    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a storage call can fail with. Domain refusals (the entity exists, is missing)
/// are their own variants; anything else is a backend failure the client never sees
/// the text of.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("entity {0} already exists")]
    AlreadyExists(String),
    #[error("entity {0} not found")]
    NotFound(String),
    /// Another write changed the thing first (optimistic concurrency).
    #[error("{0} was changed by another write")]
    Conflict(String),
    #[error("storage backend failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(err))
    }
}

/// What a modification decides to do with the entity it was shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Store this entity (creating or replacing the stored one).
    Put(Entity),
    /// Delete the stored entity.
    Delete,
    /// Leave everything as it is.
    Unchanged,
}

/// A read-modify-write of one entity, run by the store inside its transaction so that
/// concurrent changes to the same entity never interleave. The function is shown the
/// stored entity (`None` if absent) and returns what to write, or a domain error that
/// leaves this entity untouched.
pub type ModifyFn = Box<dyn FnOnce(Option<Entity>) -> Result<Write, NgsiError> + Send>;

pub struct Modification {
    pub entity_id: String,
    pub apply: ModifyFn,
    /// What the write adds to the entity's history: `None` records what changed
    /// between the stored entity and the one written
    /// ([`ngsi_ld::temporal::instances_of_change`]); `Some` records exactly these
    /// instances (the temporal API's writes, which send the history itself); each of
    /// them with an `observedAt` replaces any stored instance of the same attribute,
    /// dataset id and `observedAt`, so that sending an observation again corrects it
    /// rather than duplicating it.
    pub history: Option<Vec<ngsi_ld::temporal::TemporalInstance>>,
}

impl Modification {
    pub fn new(
        entity_id: impl Into<String>,
        apply: impl FnOnce(Option<Entity>) -> Result<Write, NgsiError> + Send + 'static,
    ) -> Self {
        Modification {
            entity_id: entity_id.into(),
            apply: Box::new(apply),
            history: None,
        }
    }

    /// The same write recording `instances` as its history instead of its changes.
    pub fn with_history(mut self, instances: Vec<ngsi_ld::temporal::TemporalInstance>) -> Self {
        self.history = Some(instances);
        self
    }
}

impl fmt::Debug for Modification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Modification")
            .field("entity_id", &self.entity_id)
            .finish_non_exhaustive()
    }
}

/// One page of a query's matches, in a stable order (creation order), and the total
/// number of matches when it was asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityPage {
    pub entities: Vec<Entity>,
    pub total: Option<u64>,
}

/// How many entities of one type exist and which attributes they carry.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeStats {
    pub type_iri: String,
    pub entity_count: u64,
    /// Attribute IRIs carried by entities of this type, sorted.
    pub attributes: Vec<String>,
}

/// How many entities carry one attribute, with which kinds and on which types.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeStats {
    pub attribute_iri: String,
    pub entity_count: u64,
    /// Kind names (`Property`, `Relationship`, …), sorted.
    pub kinds: Vec<String>,
    /// Type IRIs of entities carrying it, sorted.
    pub types: Vec<String>,
}

/// How a JSON-LD context came to be known to the broker (`kind` in `/jsonldContexts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextKind {
    /// Added by a client through `POST /jsonldContexts`, served by renkei.
    Hosted,
    /// Fetched from its URL (or preloaded for it) and cached.
    Cached,
    /// Made up by the broker from an inline context in a request.
    Implicit,
}

impl ContextKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContextKind::Hosted => "Hosted",
            ContextKind::Cached => "Cached",
            ContextKind::Implicit => "ImplicitlyCreated",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Hosted" => Some(ContextKind::Hosted),
            "Cached" => Some(ContextKind::Cached),
            "ImplicitlyCreated" => Some(ContextKind::Implicit),
            _ => None,
        }
    }
}

/// A JSON-LD context document kept by the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredContext {
    /// The local identifier used in `/jsonldContexts/{id}`.
    pub id: String,
    /// The URL the context is known by (for hosted ones, renkei's own URL for it).
    pub url: String,
    pub kind: ContextKind,
    /// The whole document, `{"@context": …}`.
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Storage of NGSI-LD entities, tenants and contexts.
#[async_trait]
pub trait EntityStore: Send + Sync {
    /// Whether the tenant exists (has ever been written to). The default tenant
    /// always exists.
    async fn tenant_exists(&self, tenant: &Tenant) -> Result<bool, StoreError>;

    /// Every tenant that exists, the default one included.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Stores a new entity, creating the tenant on first write. The entity's
    /// `created_at`/`modified_at` are kept as given (the broker stamps them). Every
    /// entity write (this, [`modify`](Self::modify), [`delete_matching`](Self::delete_matching))
    /// also records its history in the same transaction (see [`temporal`]).
    async fn create_entity(&self, tenant: &Tenant, entity: Entity) -> Result<(), StoreError>;

    async fn get_entity(&self, tenant: &Tenant, id: &str) -> Result<Option<Entity>, StoreError>;

    /// Runs the modifications in order, all in one transaction, each seeing the result
    /// of those before it. One item's domain error does not stop the others and writes
    /// nothing for that item. Returns one result per modification, in order. Creates
    /// the tenant on first write.
    async fn modify(
        &self,
        tenant: &Tenant,
        modifications: Vec<Modification>,
    ) -> Result<Vec<Result<Write, NgsiError>>, StoreError>;

    /// The entities matching the query, a page of them at a time.
    async fn query_entities(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
    ) -> Result<EntityPage, StoreError>;

    /// Deletes every entity matching the query (limit and offset ignored) and returns
    /// how many were deleted.
    async fn delete_matching(
        &self,
        tenant: &Tenant,
        query: &EntityQuery,
    ) -> Result<u64, StoreError>;

    async fn type_stats(&self, tenant: &Tenant) -> Result<Vec<TypeStats>, StoreError>;

    async fn attribute_stats(&self, tenant: &Tenant) -> Result<Vec<AttributeStats>, StoreError>;

    /// Adds or replaces a context by its id.
    async fn put_context(&self, context: StoredContext) -> Result<(), StoreError>;

    /// Finds a context by its local id or by its URL.
    async fn get_context(&self, id_or_url: &str) -> Result<Option<StoredContext>, StoreError>;

    async fn list_contexts(&self) -> Result<Vec<StoredContext>, StoreError>;

    /// Deletes a context by its local id; false if there was none.
    async fn delete_context(&self, id: &str) -> Result<bool, StoreError>;
}

/// A shared handle to whichever backend the configuration chose.
pub type SharedStore = Arc<dyn EntityStore>;
