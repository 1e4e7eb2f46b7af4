//! Storage of the open data catalog's datasets (CKAN "packages") and their
//! resources, and of API tokens' companions. The store keeps each package as the
//! document the `catalog` crate writes (resources included) plus the few columns
//! it must look up or guard by: id, unique name, owning organisation (a tenant
//! code), private flag, state, and the ids of its resources.
//!
//! Search is not done here: the catalog keeps a search index in memory and keeps
//! it current by reading [`CatalogStore::package_changes`] after the last change
//! it saw. Every package write takes the next change number, and change numbers
//! become visible in increasing order (backends serialise catalog writes), so a
//! reader that remembers the highest number it has seen never misses a write.
//! Purges remove rows, so they are counted apart ([`CatalogState::purges`]); a
//! reader that sees the count move reloads everything.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;

/// One package as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageRecord {
    /// The package id (a UUID the catalog assigns).
    pub id: String,
    /// The URL name, unique over the whole catalog (CKAN's rule).
    pub name: String,
    /// The owning organisation: a tenant's 全国地方公共団体コード.
    pub owner_org: String,
    pub private: bool,
    /// `active`, `draft` or `deleted` (a deleted package keeps its row until purged).
    pub state: String,
    /// The ids of the package's resources, so that a resource is found by its id
    /// (read back in ascending byte order; the document keeps the real order).
    pub resource_ids: Vec<String>,
    pub metadata_modified: DateTime<Utc>,
    /// The whole CKAN package dictionary as the catalog serialises it.
    pub document: Value,
    /// The change number of the write that stored this version (assigned by the
    /// store; ignored when writing).
    pub change: i64,
}

/// Where the catalog's change numbering stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatalogState {
    /// The highest change number committed (0 when nothing was ever written).
    pub last_change: i64,
    /// How many purges have happened, ever.
    pub purges: i64,
}

/// Storage of catalog packages.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Stores a new package and returns its change number. `AlreadyExists` names
    /// the id or the name that is taken (by a package in any state).
    async fn insert_package(&self, package: &PackageRecord) -> Result<i64, StoreError>;

    /// Replaces a stored package (found by id), provided it is still at change
    /// `expected_change`; returns the new change number. `NotFound` if there is no
    /// such package; `Conflict` if another write came first; `AlreadyExists` if the
    /// new name is another package's.
    async fn replace_package(
        &self,
        package: &PackageRecord,
        expected_change: i64,
    ) -> Result<i64, StoreError>;

    /// A package by id or by name.
    async fn get_package(&self, id_or_name: &str) -> Result<Option<PackageRecord>, StoreError>;

    /// The package holding a resource.
    async fn package_of_resource(
        &self,
        resource_id: &str,
    ) -> Result<Option<PackageRecord>, StoreError>;

    /// Removes a package for good; false if there was none.
    async fn purge_package(&self, id: &str) -> Result<bool, StoreError>;

    /// Up to `limit` package versions written after change `after`, in change order
    /// (each package at most once, at its latest version).
    async fn package_changes(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<PackageRecord>, StoreError>;

    async fn catalog_state(&self) -> Result<CatalogState, StoreError>;
}

pub type SharedCatalogStore = Arc<dyn CatalogStore>;
