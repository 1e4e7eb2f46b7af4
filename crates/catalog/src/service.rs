//! The catalog as a service: the operations of CKAN's Action API on datasets,
//! resources, organisations, groups and tags, over the storage interfaces, with
//! the in-memory search index kept current from the store's change numbers.
//!
//! Who may do what is asked of an [`Access`] the caller brings (the server
//! answers it from renkei's one policy table), so the rules of visibility live
//! here once: a private or draft dataset does not exist for a caller who may not
//! read its organisation's private data, and a deleted one exists only for its
//! organisation's writers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use identity::tenant::TenantRecord;
use serde_json::{Map, Value};
use store::catalog::{PackageRecord, SharedCatalogStore};
use store::identity::SharedIdentityStore;
use store::StoreError;

use crate::ckan::Organization;
use crate::package::{FieldErrors, Package, PackageInput, Resource, ResourceInput, State};
use crate::search::{SearchIndex, SearchRequest, SearchResult};

/// What the caller may do, answered by the server from the policy table.
pub trait Access: Send + Sync {
    /// May read the private (and draft) datasets of the organisation.
    fn can_read_private(&self, org: &str) -> bool;
    /// May create, change and delete the organisation's datasets.
    fn can_write(&self, org: &str) -> bool;
    /// May purge datasets for good (the platform administrator).
    fn can_purge(&self) -> bool;
    /// The user id recorded as a dataset's creator, if any.
    fn user_id(&self) -> Option<String>;
}

/// A caller with no rights beyond reading open data.
pub struct Anonymous;

impl Access for Anonymous {
    fn can_read_private(&self, _org: &str) -> bool {
        false
    }
    fn can_write(&self, _org: &str) -> bool {
        false
    }
    fn can_purge(&self) -> bool {
        false
    }
    fn user_id(&self) -> Option<String> {
        None
    }
}

/// Why a catalog operation failed; the server maps each to CKAN's error types.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("validation failed: {0:?}")]
    Validation(FieldErrors),
    #[error("not authorised: {0}")]
    NotAuthorized(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CatalogError {
    fn field(field: &str, message: impl Into<String>) -> CatalogError {
        CatalogError::Validation(FieldErrors::from([(
            field.to_owned(),
            vec![message.into()],
        )]))
    }
}

/// The registered tenants by code, as the catalog's organisations.
pub type Organizations = Arc<HashMap<String, TenantRecord>>;

/// How long the organisation list is trusted before it is read again. Tenants
/// are registered and suspended rarely; a few seconds of delay on another node
/// is the price of not reading 1,916 rows for every request.
const ORGANIZATIONS_TTL: Duration = Duration::from_secs(5);

/// How many concurrent-update retries a read-modify-write makes.
const RETRIES: usize = 8;

#[derive(Default)]
struct IndexState {
    index: SearchIndex,
    last_change: i64,
    purges: i64,
    loaded: bool,
}

/// The catalog service; cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    store: SharedCatalogStore,
    tenants: SharedIdentityStore,
    index: Arc<tokio::sync::RwLock<IndexState>>,
    organizations: Arc<Mutex<Option<(Instant, Organizations)>>>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn record_of(package: &Package) -> Result<PackageRecord, CatalogError> {
    Ok(PackageRecord {
        id: package.id.clone(),
        name: package.name.clone(),
        owner_org: package.owner_org.clone(),
        private: package.private,
        state: package.state.as_str().to_owned(),
        resource_ids: package.resources.iter().map(|r| r.id.clone()).collect(),
        metadata_modified: package.metadata_modified,
        document: serde_json::to_value(package).map_err(StoreError::backend)?,
        change: 0,
    })
}

fn package_of(record: &PackageRecord) -> Result<Package, CatalogError> {
    serde_json::from_value(record.document.clone())
        .map_err(|e| CatalogError::Store(StoreError::backend(e)))
}

impl Catalog {
    pub fn new(store: SharedCatalogStore, tenants: SharedIdentityStore) -> Catalog {
        Catalog {
            store,
            tenants,
            index: Default::default(),
            organizations: Default::default(),
        }
    }

    /// The registered tenants, by code.
    pub async fn organizations(&self) -> Result<Organizations, CatalogError> {
        if let Some((at, orgs)) = self.organizations.lock().expect("not poisoned").as_ref() {
            if at.elapsed() < ORGANIZATIONS_TTL {
                return Ok(orgs.clone());
            }
        }
        let list = self.tenants.list_registered_tenants().await?;
        let orgs: Organizations = Arc::new(list.into_iter().map(|t| (t.code.clone(), t)).collect());
        *self.organizations.lock().expect("not poisoned") = Some((Instant::now(), orgs.clone()));
        Ok(orgs)
    }

    /// The organisation dictionary input of a tenant.
    pub async fn organization(&self, code: &str) -> Result<Option<Organization>, CatalogError> {
        Ok(self
            .organizations()
            .await?
            .get(code)
            .map(Organization::from))
    }

    /// Runs `f` on the search index brought up to date with the store.
    pub async fn with_index<T>(
        &self,
        f: impl FnOnce(&SearchIndex) -> T,
    ) -> Result<T, CatalogError> {
        let now = self.store.catalog_state().await?;
        {
            // Searches share the index; only bringing it up to date is exclusive.
            let state = self.index.read().await;
            if state.loaded && state.purges >= now.purges && state.last_change >= now.last_change {
                return Ok(f(&state.index));
            }
        }
        let mut state = self.index.write().await;
        if !state.loaded || now.purges > state.purges {
            *state = IndexState::default();
            state.purges = now.purges;
            state.loaded = true;
        }
        while state.last_change < now.last_change {
            let changes = self.store.package_changes(state.last_change, 1000).await?;
            let Some(last) = changes.last() else { break };
            state.last_change = last.change;
            for record in &changes {
                state.index.put(package_of(record)?);
            }
        }
        let state = state.downgrade();
        Ok(f(&state.index))
    }

    /// A package the caller may see, by id or name.
    pub async fn package_show(
        &self,
        id_or_name: &str,
        access: &dyn Access,
    ) -> Result<Package, CatalogError> {
        let record = self.store.get_package(id_or_name).await?;
        let package = record.as_ref().map(package_of).transpose()?;
        package
            .filter(|p| visible(p, access))
            .ok_or_else(|| CatalogError::NotFound(format!("dataset {id_or_name}")))
    }

    /// The names of every open dataset, in name order.
    pub async fn package_list(
        &self,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<String>, CatalogError> {
        self.with_index(|index| {
            let mut names: Vec<String> = index
                .packages()
                .filter(|p| p.is_open())
                .map(|p| p.name.clone())
                .collect();
            names.sort_unstable();
            names
                .into_iter()
                .skip(offset)
                .take(limit.unwrap_or(usize::MAX))
                .collect()
        })
        .await
    }

    /// `package_search`: private datasets only with `include_private` and only
    /// those the caller may read; drafts and deleted ones never.
    pub async fn package_search(
        &self,
        request: &SearchRequest,
        include_private: bool,
        access: &dyn Access,
    ) -> Result<SearchResult, CatalogError> {
        self.with_index(|index| {
            index.search(request, |p| {
                p.state == State::Active
                    && (!p.private || (include_private && access.can_read_private(&p.owner_org)))
            })
        })
        .await
    }
}

/// Whether a caller may see a package at all.
fn visible(package: &Package, access: &dyn Access) -> bool {
    match package.state {
        State::Active if !package.private => true,
        State::Active | State::Draft => access.can_read_private(&package.owner_org),
        State::Deleted => access.can_write(&package.owner_org),
    }
}

impl Catalog {
    /// The organisation an input names, which must be registered and writable.
    async fn writable_org(
        &self,
        owner_org: Option<&str>,
        access: &dyn Access,
    ) -> Result<String, CatalogError> {
        let code = owner_org
            .ok_or_else(|| CatalogError::field("owner_org", "Missing value / 必須項目です"))?;
        if !self.organizations().await?.contains_key(code) {
            return Err(CatalogError::field(
                "owner_org",
                format!(
                    "Organization {code:?} does not exist / 組織 {code:?} は登録されていません"
                ),
            ));
        }
        if !access.can_write(code) {
            return Err(CatalogError::NotAuthorized(format!(
                "User not authorized to add or edit datasets of organization {code}"
            )));
        }
        Ok(code.to_owned())
    }

    /// `package_create`.
    pub async fn package_create(
        &self,
        dict: &Map<String, Value>,
        access: &dyn Access,
    ) -> Result<Package, CatalogError> {
        let input = PackageInput::parse(dict).map_err(CatalogError::Validation)?;
        let org = self
            .writable_org(input.owner_org.as_deref(), access)
            .await?;
        let package = Package::create(input, org, access.user_id(), Utc::now(), new_id);
        match self.store.insert_package(&record_of(&package)?).await {
            Ok(_) => Ok(package),
            Err(StoreError::AlreadyExists(what)) => Err(taken(&package, &what)),
            Err(e) => Err(e.into()),
        }
    }

    /// `package_update` (`patch: false`) or `package_patch` (`patch: true`: the
    /// keys sent replace those stored, the others stay).
    pub async fn package_update(
        &self,
        dict: &Map<String, Value>,
        patch: bool,
        access: &dyn Access,
    ) -> Result<Package, CatalogError> {
        let key = dict
            .get("id")
            .or_else(|| dict.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| CatalogError::field("id", "Missing value / 必須項目です"))?
            .to_owned();
        let orgs = self.organizations().await?;
        self.modify_package(&key, access, |package| {
            let stored = patch.then(|| {
                let org = orgs.get(&package.owner_org).map(Organization::from);
                crate::ckan::package_dict(package, org.as_ref())
            });
            let mut merged = overlay(stored, dict);
            merged.insert("id".into(), Value::String(package.id.clone()));
            if !merged.contains_key("name") {
                merged.insert("name".into(), Value::String(package.name.clone()));
            }
            let input = PackageInput::parse(&merged).map_err(CatalogError::Validation)?;
            let new_org = input.owner_org.clone().unwrap_or(package.owner_org.clone());
            if new_org != package.owner_org {
                if !orgs.contains_key(&new_org) {
                    return Err(CatalogError::field(
                        "owner_org",
                        format!("Organization {new_org:?} does not exist"),
                    ));
                }
                if !access.can_write(&new_org) {
                    return Err(CatalogError::NotAuthorized(format!(
                        "User not authorized to move datasets to organization {new_org}"
                    )));
                }
                package.owner_org = new_org;
            }
            package.apply(input, Utc::now(), new_id);
            Ok(())
        })
        .await
    }

    /// `package_delete`: the dataset is marked deleted (its organisation's
    /// writers still see it; a purge removes it).
    pub async fn package_delete(
        &self,
        id: &str,
        access: &dyn Access,
    ) -> Result<Package, CatalogError> {
        self.modify_package(id, access, |package| {
            package.state = State::Deleted;
            package.metadata_modified = Utc::now();
            Ok(())
        })
        .await
    }

    /// `dataset_purge`: removes the dataset for good. Returns it, so that the
    /// caller can drop its datastore tables.
    pub async fn package_purge(
        &self,
        id: &str,
        access: &dyn Access,
    ) -> Result<Package, CatalogError> {
        if !access.can_purge() {
            return Err(CatalogError::NotAuthorized(
                "Only the platform administrator may purge datasets".into(),
            ));
        }
        let package = self.package_show(id, access).await?;
        self.store.purge_package(&package.id).await?;
        Ok(package)
    }

    /// Reads, changes and writes back one package the caller may write, retrying
    /// when another write came in between.
    pub async fn modify_package(
        &self,
        id_or_name: &str,
        access: &dyn Access,
        mut change: impl FnMut(&mut Package) -> Result<(), CatalogError>,
    ) -> Result<Package, CatalogError> {
        for _ in 0..RETRIES {
            let Some(record) = self.store.get_package(id_or_name).await? else {
                return Err(CatalogError::NotFound(format!("dataset {id_or_name}")));
            };
            let mut package = package_of(&record)?;
            if !visible(&package, access) {
                return Err(CatalogError::NotFound(format!("dataset {id_or_name}")));
            }
            if !access.can_write(&package.owner_org) {
                return Err(CatalogError::NotAuthorized(format!(
                    "User not authorized to edit dataset {}",
                    package.name
                )));
            }
            change(&mut package)?;
            match self
                .store
                .replace_package(&record_of(&package)?, record.change)
                .await
            {
                Ok(_) => return Ok(package),
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::AlreadyExists(what)) => return Err(taken(&package, &what)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(CatalogError::Store(StoreError::Conflict(
            id_or_name.to_owned(),
        )))
    }

    /// The package holding a resource, if the caller may see it.
    pub async fn resource_package(
        &self,
        resource_id: &str,
        access: &dyn Access,
    ) -> Result<Package, CatalogError> {
        let record = self.store.package_of_resource(resource_id).await?;
        record
            .as_ref()
            .map(package_of)
            .transpose()?
            .filter(|p| visible(p, access))
            .ok_or_else(|| CatalogError::NotFound(format!("resource {resource_id}")))
    }

    /// `resource_create`: adds a resource to the package named by `package_id`.
    pub async fn resource_create(
        &self,
        dict: &Map<String, Value>,
        access: &dyn Access,
    ) -> Result<(Package, String), CatalogError> {
        let package_id = dict
            .get("package_id")
            .and_then(Value::as_str)
            .ok_or_else(|| CatalogError::field("package_id", "Missing value / 必須項目です"))?
            .to_owned();
        let input = ResourceInput::parse(dict).map_err(CatalogError::Validation)?;
        let id = input.id.clone().unwrap_or_else(new_id);
        let package = self
            .modify_package(&package_id, access, |package| {
                let now = Utc::now();
                package
                    .resources
                    .push(Resource::new(input.clone(), id.clone(), now));
                package.metadata_modified = now;
                Ok(())
            })
            .await?;
        Ok((package, id))
    }

    /// `resource_update` (`patch: false`) or `resource_patch`, and any change
    /// renkei itself makes to a resource (`extra`: after the client's fields).
    pub async fn resource_update(
        &self,
        dict: &Map<String, Value>,
        patch: bool,
        access: &dyn Access,
        extra: impl Fn(&mut Resource) + Send,
    ) -> Result<(Package, String), CatalogError> {
        let id = dict
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| CatalogError::field("id", "Missing value / 必須項目です"))?
            .to_owned();
        let package = self.resource_package(&id, access).await?;
        let package = self
            .modify_package(&package.id, access, |package| {
                let position = package.resources.iter().position(|r| r.id == id);
                let Some(position) = position else {
                    return Err(CatalogError::NotFound(format!("resource {id}")));
                };
                let stored = patch.then(|| {
                    crate::ckan::resource_dict(package, position, &package.resources[position])
                });
                let merged = overlay(stored, dict);
                let input = ResourceInput::parse(&merged).map_err(CatalogError::Validation)?;
                let now = Utc::now();
                let resource = &mut package.resources[position];
                resource.apply(input, now);
                extra(resource);
                package.metadata_modified = now;
                Ok(())
            })
            .await?;
        Ok((package, id))
    }

    /// `resource_delete`.
    pub async fn resource_delete(&self, id: &str, access: &dyn Access) -> Result<(), CatalogError> {
        let package = self.resource_package(id, access).await?;
        self.modify_package(&package.id, access, |package| {
            package.resources.retain(|r| r.id != id);
            package.metadata_modified = Utc::now();
            Ok(())
        })
        .await
        .map(drop)
    }
}

/// What an update reads: the keys sent over the stored dictionary (a patch), or
/// the keys sent alone (an update, `stored` being `None`).
fn overlay(stored: Option<Value>, sent: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = match stored {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (k, v) in sent {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

/// The validation error for an id, name or resource id already in use.
fn taken(package: &Package, what: &str) -> CatalogError {
    if what == package.name {
        CatalogError::field(
            "name",
            "That URL is already in use. / この URL 名はすでに使われています",
        )
    } else if what == package.id {
        CatalogError::field(
            "id",
            "Dataset id already exists / このIDはすでに使われています",
        )
    } else {
        CatalogError::field(
            "resources",
            format!("Resource id {what} already belongs to another dataset"),
        )
    }
}
