//! Picks and opens the storage backend named by the database URL: `sqlite://PATH`
//! (the embedded default) or `postgres://…` / `postgresql://…`.

use anyhow::{bail, Context as _};
use std::path::PathBuf;
use std::sync::Arc;
use store::applications::{ApplicationStore, SharedApplicationStore};
use store::catalog::{CatalogStore, SharedCatalogStore};
use store::datastore::{DatastoreStore, SharedDatastoreStore};
use store::harvest::{HarvestStore, SharedHarvestStore};
use store::identity::{IdentityStore, SharedIdentityStore};
use store::registrations::{RegistrationStore, SharedRegistrationStore};
use store::subscriptions::{SharedSubscriptionStore, SubscriptionStore};
use store::temporal::{SharedTemporalStore, TemporalStore};
use store::{EntityStore, SharedStore};

/// One database seen through each storage interface renkei uses.
#[derive(Clone)]
pub struct Stores {
    pub entities: SharedStore,
    pub identity: SharedIdentityStore,
    pub subscriptions: SharedSubscriptionStore,
    pub temporal: SharedTemporalStore,
    pub catalog: SharedCatalogStore,
    pub datastore: SharedDatastoreStore,
    pub harvest: SharedHarvestStore,
    pub applications: SharedApplicationStore,
    pub registrations: SharedRegistrationStore,
}

impl<S> From<Arc<S>> for Stores
where
    S: EntityStore
        + IdentityStore
        + SubscriptionStore
        + TemporalStore
        + CatalogStore
        + DatastoreStore
        + HarvestStore
        + ApplicationStore
        + RegistrationStore
        + 'static,
{
    fn from(store: Arc<S>) -> Stores {
        Stores {
            entities: store.clone(),
            identity: store.clone(),
            subscriptions: store.clone(),
            temporal: store.clone(),
            catalog: store.clone(),
            datastore: store.clone(),
            harvest: store.clone(),
            registrations: store.clone(),
            applications: store,
        }
    }
}

/// The backend a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("database URL {url} names no file: use sqlite://./data/renkei.db");
            }
            return Ok(Backend::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_owned()));
        }
        let scheme = url.split(':').next().unwrap_or(url);
        bail!("unsupported database URL scheme '{scheme}': use sqlite://PATH or postgres://USER@HOST/DB")
    }

    pub async fn open(&self) -> anyhow::Result<Stores> {
        Ok(match self {
            Backend::Sqlite(path) => Stores::from(Arc::new(
                store_sqlite::SqliteStore::open(path)
                    .await
                    .with_context(|| format!("opening SQLite database {}", path.display()))?,
            )),
            Backend::Postgres(url) => Stores::from(Arc::new(
                store_postgres::PostgresStore::connect(url)
                    .await
                    .context("connecting to PostgreSQL")?,
            )),
        })
    }

    /// Brings the schema up to date without serving.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Backend::Sqlite(path) => store_sqlite::SqliteStore::migrate(path).await?,
            Backend::Postgres(url) => store_postgres::PostgresStore::migrate(url).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::from_url("sqlite://./data/renkei.db").unwrap(),
            Backend::Sqlite("./data/renkei.db".into())
        );
        assert!(matches!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres(_)
        ));
        let err = Backend::from_url("mysql://h/db").unwrap_err().to_string();
        assert!(err.contains("mysql"), "{err}");
        assert!(Backend::from_url("sqlite://").is_err());
    }
}
