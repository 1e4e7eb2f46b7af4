//! The SQLite schema and its versioned migrations. Each migration runs once, in a
//! transaction with the row that records it, so a crash mid-migration leaves the
//! database at the previous version.

use rusqlite::{Connection, OptionalExtension};

/// A migration: SQL, or SQL followed by a step in Rust (to index existing rows).
struct Migration {
    sql: &'static str,
    then: Option<fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>>,
}

/// Migrations in order; the index + 1 is the version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1,
        then: None,
    },
    Migration {
        sql: V2,
        then: Some(reindex_all),
    },
];

const V1: &str =
    // 1: entities with their types (for indexed type queries), tenants, contexts.
    "CREATE TABLE tenants (
        name TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
     );
     CREATE TABLE entities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        UNIQUE (tenant, id)
     );
     CREATE TABLE entity_types (
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES entities (seq) ON DELETE CASCADE,
        PRIMARY KEY (tenant, type, seq)
     ) WITHOUT ROWID;
     CREATE INDEX entity_types_by_seq ON entity_types (seq);
     CREATE TABLE contexts (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
     );";

/// 2: indexes that let queries narrow `q` and `geoQ` in SQL: the comparable values of
/// every attribute, the bounding box of `location` (an R*Tree), and creation order
/// within a tenant.
///
/// `entity_values.val` is a REAL for numbers, TEXT for strings, and an empty BLOB for a
/// bare "has this attribute" row; one clustered key (no separate index) keeps each row
/// a single b-tree insert.
const V2: &str = "
    CREATE TABLE entity_values (
        seq INTEGER NOT NULL REFERENCES entities (seq) ON DELETE CASCADE,
        attr TEXT NOT NULL,
        val NOT NULL,
        PRIMARY KEY (seq, attr, val)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE entity_location USING rtree (seq, min_lon, max_lon, min_lat, max_lat);
    CREATE INDEX entities_by_tenant ON entities (tenant, seq);";

fn reindex_all(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String)> = {
        let mut statement = tx.prepare("SELECT seq, doc FROM entities")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (seq, doc) in rows {
        let entity = serde_json::from_str(&doc)
            .ok()
            .and_then(|value| store::doc::doc_to_entity(&value).ok());
        if let Some(entity) = entity {
            crate::writer::write_index(tx, seq, &crate::writer::EntityRows::new(&entity))?;
        }
    }
    Ok(())
}

/// Connection settings every connection needs: WAL so readers never block the
/// writer, `synchronous=FULL` so a committed write survives power loss.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // 16 KiB pages hold several entity documents (about 2 KiB each) per page instead of
    // one; only a new database takes it, before WAL is switched on.
    conn.pragma_update(None, "page_size", 16384)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // 4 MiB of page cache (negative: KiB) for the writer's index lookups; readers set
    // their own. The whole process must stay small with a million entities stored.
    conn.pragma_update(None, "cache_size", -4096)?;
    // Checkpoint every 2000 pages (32 MiB) rather than 1000: fewer, larger copies of
    // the log into the database under sustained writes.
    conn.pragma_update(None, "wal_autocheckpoint", 2000)?;
    // Each job of a group commit runs in a savepoint, whose undo pages go to a
    // temporary journal: keep it in memory rather than in a file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Brings the schema to the newest version.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS renkei_schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
         )",
    )?;
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: Option<i64> = tx
            .query_row(
                "SELECT version FROM renkei_schema_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()?;
        if applied.is_none() {
            tx.execute_batch(migration.sql)?;
            if let Some(step) = migration.then {
                step(&tx)?;
            }
            tx.execute(
                "INSERT INTO renkei_schema_migrations (version, applied_at) VALUES (?1, ?2)",
                rusqlite::params![version, chrono::Utc::now().to_rfc3339()],
            )?;
            tracing::info!(version, "applied SQLite migration");
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngsi_ld::model::{Attribute, AttributeValue, Entity};

    #[test]
    fn migrating_from_version_1_indexes_the_entities_already_stored() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE renkei_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);",
        )
        .unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute(
            "INSERT INTO renkei_schema_migrations VALUES (1, 'then')",
            [],
        )
        .unwrap();
        let mut entity = Entity::new(
            "urn:ngsi-ld:Shelter:1",
            vec!["https://example.org/Shelter".into()],
        );
        entity.attributes.insert(
            "https://example.org/capacity".into(),
            vec![Attribute::new(AttributeValue::Property(serde_json::json!(
                120
            )))],
        );
        let doc = store::doc::entity_to_doc(&entity).to_string();
        conn.execute(
            "INSERT INTO entities (tenant, id, doc) VALUES ('', ?1, ?2)",
            [&entity.id, &doc],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let indexed: f64 = conn
            .query_row(
                "SELECT val FROM entity_values WHERE attr = 'https://example.org/capacity' AND typeof(val) = 'real'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 120.0);
        // Running again changes nothing.
        migrate(&mut conn).unwrap();
        let versions: i64 = conn
            .query_row("SELECT count(*) FROM renkei_schema_migrations", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(versions, MIGRATIONS.len() as i64);
    }
}
