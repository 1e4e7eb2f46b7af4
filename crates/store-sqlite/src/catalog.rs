//! [`CatalogStore`] on SQLite, in the catalog tables of schema version 9.
//!
//! Every write runs on the one writer thread, each in its own savepoint, so change
//! numbers are taken one at a time and become visible in increasing order: a group
//! commit makes all of its writes visible at once, and groups commit one after the
//! other. A write checks the ids and names it would take before writing anything,
//! which gives each refusal its precise `AlreadyExists`; the unique constraints stay
//! as the last guard. Documents are stored as JSON text, which keeps their key order.

use crate::columns::{json_at, stamp, time_at};
use crate::SqliteStore;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::BTreeSet;
use store::catalog::{CatalogState, CatalogStore, PackageRecord};
use store::StoreError;

const PACKAGE_COLUMNS: &str =
    "p.id, p.name, p.owner_org, p.private, p.state, p.metadata_modified, p.change, p.doc";

/// A package's columns, resource ids aside (they come from their own table).
fn row_to_package(row: &Row<'_>) -> rusqlite::Result<PackageRecord> {
    Ok(PackageRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        owner_org: row.get(2)?,
        private: row.get(3)?,
        state: row.get(4)?,
        resource_ids: Vec::new(),
        metadata_modified: time_at(row, 5)?,
        change: row.get(6)?,
        document: json_at(row, 7)?,
    })
}

/// The package `from_where` (naming the package table `p`) selects, with its resource
/// ids in ascending order.
fn read_package(
    conn: &Connection,
    from_where: &str,
    key: &str,
) -> Result<Option<PackageRecord>, StoreError> {
    let sql = format!("SELECT {PACKAGE_COLUMNS} FROM {from_where}");
    let package = conn
        .prepare_cached(&sql)
        .and_then(|mut statement| statement.query_row([key], row_to_package).optional())
        .map_err(StoreError::backend)?;
    package.map(|p| with_resources(conn, p)).transpose()
}

fn with_resources(
    conn: &Connection,
    mut package: PackageRecord,
) -> Result<PackageRecord, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT resource_id FROM catalog_resources WHERE package_id = ?1
             ORDER BY resource_id",
        )
        .map_err(StoreError::backend)?;
    package.resource_ids = statement
        .query_map([&package.id], |row| row.get(0))
        .and_then(|ids| ids.collect::<Result<_, _>>())
        .map_err(StoreError::backend)?;
    Ok(package)
}

fn by_id(conn: &Connection, id: &str) -> Result<Option<PackageRecord>, StoreError> {
    read_package(conn, "catalog_packages p WHERE p.id = ?1", id)
}

fn by_name(conn: &Connection, name: &str) -> Result<Option<PackageRecord>, StoreError> {
    read_package(conn, "catalog_packages p WHERE p.name = ?1", name)
}

/// A package made ready for the writer: its columns as stored.
struct PackageRow {
    id: String,
    name: String,
    owner_org: String,
    private: bool,
    state: String,
    metadata_modified: String,
    doc: String,
    /// Each resource id once.
    resource_ids: BTreeSet<String>,
}

impl PackageRow {
    fn new(package: &PackageRecord) -> Result<PackageRow, StoreError> {
        Ok(PackageRow {
            id: package.id.clone(),
            name: package.name.clone(),
            owner_org: package.owner_org.clone(),
            private: package.private,
            state: package.state.clone(),
            metadata_modified: stamp(package.metadata_modified),
            doc: serde_json::to_string(&package.document).map_err(StoreError::backend)?,
            resource_ids: package.resource_ids.iter().cloned().collect(),
        })
    }
}

fn one_value<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(params, |row| row.get(0)).optional())
        .map_err(StoreError::backend)
}

fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(StoreError::backend)
}

/// The id of the package holding a name, if any.
fn holder_of_name(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    one_value(
        conn,
        "SELECT id FROM catalog_packages WHERE name = ?1",
        [name],
    )
}

/// Refuses a resource id that another package holds.
fn check_resources_free(conn: &Connection, row: &PackageRow) -> Result<(), StoreError> {
    for resource_id in &row.resource_ids {
        let holder: Option<String> = one_value(
            conn,
            "SELECT package_id FROM catalog_resources WHERE resource_id = ?1",
            [resource_id],
        )?;
        if holder.is_some_and(|holder| holder != row.id) {
            return Err(StoreError::AlreadyExists(resource_id.clone()));
        }
    }
    Ok(())
}

/// Takes the next change number.
fn next_change(conn: &Connection) -> Result<i64, StoreError> {
    execute(
        conn,
        "UPDATE catalog_state SET last_change = last_change + 1 WHERE only_row = 1",
        [],
    )?;
    one_value(
        conn,
        "SELECT last_change FROM catalog_state WHERE only_row = 1",
        [],
    )?
    .ok_or_else(|| StoreError::backend(MissingState))
}

#[derive(Debug, thiserror::Error)]
#[error("the catalog_state row is missing")]
struct MissingState;

fn write_resources(conn: &Connection, row: &PackageRow) -> Result<(), StoreError> {
    execute(
        conn,
        "DELETE FROM catalog_resources WHERE package_id = ?1",
        [&row.id],
    )?;
    for resource_id in &row.resource_ids {
        execute(
            conn,
            "INSERT INTO catalog_resources (resource_id, package_id) VALUES (?1, ?2)",
            [resource_id, &row.id],
        )?;
    }
    Ok(())
}

fn insert_in(conn: &Connection, row: &PackageRow) -> Result<i64, StoreError> {
    let id_taken: Option<i64> = one_value(
        conn,
        "SELECT 1 FROM catalog_packages WHERE id = ?1",
        [&row.id],
    )?;
    if id_taken.is_some() {
        return Err(StoreError::AlreadyExists(row.id.clone()));
    }
    if holder_of_name(conn, &row.name)?.is_some() {
        return Err(StoreError::AlreadyExists(row.name.clone()));
    }
    check_resources_free(conn, row)?;
    let change = next_change(conn)?;
    execute(
        conn,
        "INSERT INTO catalog_packages
             (id, name, owner_org, private, state, metadata_modified, change, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            row.id,
            row.name,
            row.owner_org,
            row.private,
            row.state,
            row.metadata_modified,
            change,
            row.doc
        ],
    )?;
    write_resources(conn, row)?;
    Ok(change)
}

fn replace_in(conn: &Connection, row: &PackageRow, expected: i64) -> Result<i64, StoreError> {
    let stored: Option<i64> = one_value(
        conn,
        "SELECT change FROM catalog_packages WHERE id = ?1",
        [&row.id],
    )?;
    match stored {
        None => return Err(StoreError::NotFound(row.id.clone())),
        Some(change) if change != expected => return Err(StoreError::Conflict(row.id.clone())),
        Some(_) => {}
    }
    if holder_of_name(conn, &row.name)?.is_some_and(|holder| holder != row.id) {
        return Err(StoreError::AlreadyExists(row.name.clone()));
    }
    check_resources_free(conn, row)?;
    let change = next_change(conn)?;
    execute(
        conn,
        "UPDATE catalog_packages SET name = ?2, owner_org = ?3, private = ?4, state = ?5,
             metadata_modified = ?6, change = ?7, doc = ?8
         WHERE id = ?1",
        params![
            row.id,
            row.name,
            row.owner_org,
            row.private,
            row.state,
            row.metadata_modified,
            change,
            row.doc
        ],
    )?;
    write_resources(conn, row)?;
    Ok(change)
}

fn purge_in(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    // The foreign key would cascade; deleting explicitly does not depend on it.
    execute(
        conn,
        "DELETE FROM catalog_resources WHERE package_id = ?1",
        [id],
    )?;
    let purged = execute(conn, "DELETE FROM catalog_packages WHERE id = ?1", [id])? > 0;
    if purged {
        execute(
            conn,
            "UPDATE catalog_state SET purges = purges + 1 WHERE only_row = 1",
            [],
        )?;
    }
    Ok(purged)
}

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn insert_package(&self, package: &PackageRecord) -> Result<i64, StoreError> {
        let row = PackageRow::new(package)?;
        self.writer.run(move |tx| insert_in(tx, &row)).await
    }

    async fn replace_package(
        &self,
        package: &PackageRecord,
        expected_change: i64,
    ) -> Result<i64, StoreError> {
        let row = PackageRow::new(package)?;
        self.writer
            .run(move |tx| replace_in(tx, &row, expected_change))
            .await
    }

    async fn get_package(&self, id_or_name: &str) -> Result<Option<PackageRecord>, StoreError> {
        let key = id_or_name.to_owned();
        self.read(move |conn| match by_id(conn, &key)? {
            Some(package) => Ok(Some(package)),
            None => by_name(conn, &key),
        })
        .await
    }

    async fn package_of_resource(
        &self,
        resource_id: &str,
    ) -> Result<Option<PackageRecord>, StoreError> {
        let key = resource_id.to_owned();
        self.read(move |conn| {
            read_package(
                conn,
                "catalog_resources r JOIN catalog_packages p ON p.id = r.package_id
                 WHERE r.resource_id = ?1",
                &key,
            )
        })
        .await
    }

    async fn purge_package(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer.run(move |tx| purge_in(tx, &id)).await
    }

    async fn package_changes(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<PackageRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {PACKAGE_COLUMNS} FROM catalog_packages p
                 WHERE p.change > ?1 ORDER BY p.change LIMIT ?2"
            );
            let packages: Vec<PackageRecord> = conn
                .prepare_cached(&sql)
                .and_then(|mut statement| {
                    statement
                        .query_map(params![after, limit], row_to_package)?
                        .collect()
                })
                .map_err(StoreError::backend)?;
            packages
                .into_iter()
                .map(|package| with_resources(conn, package))
                .collect()
        })
        .await
    }

    async fn catalog_state(&self) -> Result<CatalogState, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT last_change, purges FROM catalog_state WHERE only_row = 1")
                .and_then(|mut statement| {
                    statement
                        .query_row([], |row| {
                            Ok(CatalogState {
                                last_change: row.get(0)?,
                                purges: row.get(1)?,
                            })
                        })
                        .optional()
                })
                .map_err(StoreError::backend)?
                .ok_or_else(|| StoreError::backend(MissingState))
        })
        .await
    }
}
