//! Storage of entity history for the NGSI-LD temporal API: every attribute instance an
//! entity ever had, as [`TemporalInstance`]s, and a head per entity (its types and
//! scopes, when its history began and when the entity was deleted).
//!
//! History is written by the entity writes themselves ([`crate::EntityStore::modify`]
//! and friends), in the same transaction, so the current entity and its history never
//! disagree: each write records what [`ngsi_ld::temporal::instances_of_change`] says it
//! changed, or the instances a [`crate::Modification`] carries (the temporal API's own
//! writes). This trait reads the history and edits it where the temporal API edits
//! history alone (one instance, one attribute's series, the whole history).

use crate::{StoreError, Tenant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ngsi_ld::model::Attribute;
use ngsi_ld::temporal::{HourlyRollup, TemporalInstance, TimeProperty, TimeRel};
use std::sync::Arc;

/// What is known of an entity with a history, besides its instances.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalHead {
    pub id: String,
    /// Expanded type IRIs, as the entity last had them.
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    /// When the history began (the entity's first write).
    pub created_at: DateTime<Utc>,
    /// When the history last grew.
    pub modified_at: DateTime<Utc>,
    /// When the entity was deleted, if it is (its history stays until deleted itself).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Which instances a history read returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryRead {
    /// Expanded attribute names; empty means every attribute.
    pub attrs: Vec<String>,
    /// The time property the window and the order are about.
    pub time_property: TimeProperty,
    /// Only instances whose time property falls in this window; `None` for every
    /// instance that has the time property.
    pub window: Option<TimeRel>,
    /// Only the last N instances of each attribute and dataset id.
    pub last_n: Option<usize>,
}

pub use ngsi_ld::model::DatasetSelector;

/// Reading and editing entity history.
#[async_trait]
pub trait TemporalStore: Send + Sync {
    /// The head of an entity's history, if it has one.
    async fn temporal_head(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<TemporalHead>, StoreError>;

    /// The heads of the given entities (every entity with a history when `ids` is
    /// empty), in id order.
    async fn temporal_heads(
        &self,
        tenant: &Tenant,
        ids: &[String],
    ) -> Result<Vec<TemporalHead>, StoreError>;

    /// The instances of an entity's history that `read` selects: of the named
    /// attributes, having the time property, in the window, the last N of each
    /// attribute and dataset id; in ascending order of the time property (ties in the
    /// order they were recorded). Empty when the entity has no history.
    async fn history(
        &self,
        tenant: &Tenant,
        id: &str,
        read: &HistoryRead,
    ) -> Result<Vec<TemporalInstance>, StoreError>;

    /// The hourly rollups of an entity's history (see [`HourlyRollup`]) for the named
    /// attributes (every attribute when empty), of the hours `from <= hour < until`
    /// (each bound open when absent), in (name, dataset id, hour) order. A store keeps
    /// them equal to [`HourlyRollup::of_all`] over the instances it holds, through
    /// every write, replacement and deletion.
    async fn hourly_rollups(
        &self,
        tenant: &Tenant,
        id: &str,
        attrs: &[String],
        from: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<HourlyRollup>, StoreError>;

    /// One instance of an attribute's history by its instance id.
    async fn history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
    ) -> Result<Option<TemporalInstance>, StoreError>;

    /// Replaces the stored attribute of one instance (its id, name and `deletedAt`
    /// stay); false if there is no such instance.
    async fn replace_history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
        attribute: Attribute,
    ) -> Result<bool, StoreError>;

    /// Deletes one instance; false if there is no such instance.
    async fn delete_history_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes the selected instances of an attribute's history; false if there were
    /// none.
    async fn delete_attribute_history(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        dataset: &DatasetSelector,
    ) -> Result<bool, StoreError>;

    /// Deletes an entity's whole history and its head; false if it had none. The
    /// current entity is the caller's business.
    async fn delete_history(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError>;
}

/// A shared handle to the history side of whichever backend was chosen.
pub type SharedTemporalStore = Arc<dyn TemporalStore>;
