//! The SQLite schema and its versioned migrations. Each migration runs once, in a
//! transaction with the row that records it, so a crash mid-migration leaves the
//! database at the previous version.

use rusqlite::{Connection, OptionalExtension};

/// Migrations in order; the index + 1 is the version.
const MIGRATIONS: &[&str] = &[
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
     );",
];

/// Connection settings every connection needs: WAL so readers never block the
/// writer, `synchronous=FULL` so a committed write survives power loss.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
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
    for (index, sql) in MIGRATIONS.iter().enumerate() {
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
            tx.execute_batch(sql)?;
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
