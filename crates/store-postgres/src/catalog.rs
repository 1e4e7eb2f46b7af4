//! [`CatalogStore`] on PostgreSQL, in the catalog tables of migration 8.
//!
//! Several nodes write the catalog at once. Every catalog write transaction first
//! takes one transaction-level advisory lock, held until it commits: writes then run
//! one at a time from their checks to their commit, so each takes `last_change + 1`
//! and change numbers commit in increasing order, which is what lets the catalog's
//! search index follow [`CatalogStore::package_changes`] by remembering the highest
//! number it has seen. Under the lock, a write's checks (id, name, resource ids
//! taken) see every earlier write, so each refusal names precisely what is taken; the
//! unique constraints stay as the last guard.
//!
//! Documents are `jsonb`, which does not keep the order of object keys; a document
//! reads back equal as a [`serde_json::Value`], whose object equality ignores order.

use crate::{backend, PostgresStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use store::catalog::{CatalogState, CatalogStore, PackageRecord};
use store::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

/// The advisory lock key serialising catalog writes ("catalg" in ASCII); distinct
/// from the migration, audit and outbox locks, the same on every node.
const CATALOG_LOCK_KEY: i64 = 0x63_61_74_61_6c_67;

/// A package's columns and its resource ids, in byte order (as SQLite's and Rust's
/// string order, whatever the database's collation).
const PACKAGE_COLUMNS: &str = "p.id, p.name, p.owner_org, p.private, p.state, \
     p.metadata_modified, p.change, p.doc, \
     ARRAY(SELECT r.resource_id FROM catalog_resources r WHERE r.package_id = p.id \
           ORDER BY r.resource_id COLLATE \"C\") AS resource_ids";

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(backend)
}

fn read_package(row: &Row) -> Result<PackageRecord, StoreError> {
    Ok(PackageRecord {
        id: get(row, "id")?,
        name: get(row, "name")?,
        owner_org: get(row, "owner_org")?,
        private: get(row, "private")?,
        state: get(row, "state")?,
        resource_ids: get(row, "resource_ids")?,
        metadata_modified: get::<DateTime<Utc>>(row, "metadata_modified")?,
        change: get(row, "change")?,
        document: get(row, "doc")?,
    })
}

/// The one package `from_where` (naming the package table `p`) selects.
async fn one_package(
    client: &tokio_postgres::Client,
    from_where: &str,
    key: &str,
) -> Result<Option<PackageRecord>, StoreError> {
    let sql = format!("SELECT {PACKAGE_COLUMNS} FROM {from_where}");
    client
        .query_opt(&sql, &[&key])
        .await
        .map_err(backend)?
        .as_ref()
        .map(read_package)
        .transpose()
}

/// The columns written, and each resource id once.
struct PackageRow<'a> {
    package: &'a PackageRecord,
    resource_ids: Vec<String>,
}

impl<'a> PackageRow<'a> {
    fn new(package: &'a PackageRecord) -> Self {
        let unique: BTreeSet<&String> = package.resource_ids.iter().collect();
        PackageRow {
            package,
            resource_ids: unique.into_iter().cloned().collect(),
        }
    }
}

async fn lock_catalog(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK_KEY])
        .await
        .map(drop)
        .map_err(backend)
}

async fn exists(
    tx: &Transaction<'_>,
    sql: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<bool, StoreError> {
    tx.query_opt(sql, args)
        .await
        .map(|row| row.is_some())
        .map_err(backend)
}

/// Refuses the name if another package holds it, and the first resource id (in byte
/// order) another package holds.
async fn check_name_and_resources(
    tx: &Transaction<'_>,
    row: &PackageRow<'_>,
) -> Result<(), StoreError> {
    let package = row.package;
    if exists(
        tx,
        "SELECT 1 FROM catalog_packages WHERE name = $1 AND id <> $2",
        &[&package.name, &package.id],
    )
    .await?
    {
        return Err(StoreError::AlreadyExists(package.name.clone()));
    }
    let taken = tx
        .query_opt(
            "SELECT resource_id FROM catalog_resources
             WHERE resource_id = ANY($1) AND package_id <> $2
             ORDER BY resource_id COLLATE \"C\" LIMIT 1",
            &[&row.resource_ids, &package.id],
        )
        .await
        .map_err(backend)?;
    match taken {
        Some(taken) => Err(StoreError::AlreadyExists(get(&taken, "resource_id")?)),
        None => Ok(()),
    }
}

/// Takes the next change number (the caller holds the catalog lock).
async fn next_change(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "UPDATE catalog_state SET last_change = last_change + 1 RETURNING last_change",
            &[],
        )
        .await
        .map_err(backend)?;
    get(&row, "last_change")
}

async fn write_resources(tx: &Transaction<'_>, row: &PackageRow<'_>) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM catalog_resources WHERE package_id = $1",
        &[&row.package.id],
    )
    .await
    .map_err(backend)?;
    tx.execute(
        "INSERT INTO catalog_resources (resource_id, package_id)
         SELECT unnest($1::text[]), $2",
        &[&row.resource_ids, &row.package.id],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl CatalogStore for PostgresStore {
    async fn insert_package(&self, package: &PackageRecord) -> Result<i64, StoreError> {
        let row = PackageRow::new(package);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        lock_catalog(&tx).await?;
        if exists(
            &tx,
            "SELECT 1 FROM catalog_packages WHERE id = $1",
            &[&package.id],
        )
        .await?
        {
            return Err(StoreError::AlreadyExists(package.id.clone()));
        }
        check_name_and_resources(&tx, &row).await?;
        let change = next_change(&tx).await?;
        tx.execute(
            "INSERT INTO catalog_packages
                 (id, name, owner_org, private, state, metadata_modified, change, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &package.id,
                &package.name,
                &package.owner_org,
                &package.private,
                &package.state,
                &package.metadata_modified,
                &change,
                &package.document,
            ],
        )
        .await
        .map_err(backend)?;
        write_resources(&tx, &row).await?;
        tx.commit().await.map_err(backend)?;
        Ok(change)
    }

    async fn replace_package(
        &self,
        package: &PackageRecord,
        expected_change: i64,
    ) -> Result<i64, StoreError> {
        let row = PackageRow::new(package);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        lock_catalog(&tx).await?;
        let stored = tx
            .query_opt(
                "SELECT change FROM catalog_packages WHERE id = $1",
                &[&package.id],
            )
            .await
            .map_err(backend)?;
        match stored {
            None => return Err(StoreError::NotFound(package.id.clone())),
            Some(stored) if get::<i64>(&stored, "change")? != expected_change => {
                return Err(StoreError::Conflict(package.id.clone()))
            }
            Some(_) => {}
        }
        check_name_and_resources(&tx, &row).await?;
        let change = next_change(&tx).await?;
        tx.execute(
            "UPDATE catalog_packages SET name = $2, owner_org = $3, private = $4, state = $5,
                 metadata_modified = $6, change = $7, doc = $8
             WHERE id = $1",
            &[
                &package.id,
                &package.name,
                &package.owner_org,
                &package.private,
                &package.state,
                &package.metadata_modified,
                &change,
                &package.document,
            ],
        )
        .await
        .map_err(backend)?;
        write_resources(&tx, &row).await?;
        tx.commit().await.map_err(backend)?;
        Ok(change)
    }

    async fn get_package(&self, id_or_name: &str) -> Result<Option<PackageRecord>, StoreError> {
        let client = self.client().await?;
        match one_package(&client, "catalog_packages p WHERE p.id = $1", id_or_name).await? {
            Some(package) => Ok(Some(package)),
            None => one_package(&client, "catalog_packages p WHERE p.name = $1", id_or_name).await,
        }
    }

    async fn package_of_resource(
        &self,
        resource_id: &str,
    ) -> Result<Option<PackageRecord>, StoreError> {
        let client = self.client().await?;
        one_package(
            &client,
            "catalog_resources held JOIN catalog_packages p ON p.id = held.package_id
             WHERE held.resource_id = $1",
            resource_id,
        )
        .await
    }

    async fn purge_package(&self, id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        lock_catalog(&tx).await?;
        // The resource rows go with the package (ON DELETE CASCADE).
        let purged = tx
            .execute("DELETE FROM catalog_packages WHERE id = $1", &[&id])
            .await
            .map_err(backend)?
            > 0;
        if purged {
            tx.execute("UPDATE catalog_state SET purges = purges + 1", &[])
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(purged)
    }

    async fn package_changes(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<PackageRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {PACKAGE_COLUMNS} FROM catalog_packages p
             WHERE p.change > $1 ORDER BY p.change LIMIT $2"
        );
        self.client()
            .await?
            .query(&sql, &[&after, &limit])
            .await
            .map_err(backend)?
            .iter()
            .map(read_package)
            .collect()
    }

    async fn catalog_state(&self) -> Result<CatalogState, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT last_change, purges FROM catalog_state", &[])
            .await
            .map_err(backend)?;
        Ok(CatalogState {
            last_change: get(&row, "last_change")?,
            purges: get(&row, "purges")?,
        })
    }
}
