//! Baseline B of the `create` scenario: what a naive store would do. The same JSON
//! documents are inserted with plain rusqlite into a WAL, `synchronous=FULL` table,
//! each insert its own transaction (so each pays its own fsync), from `concurrency`
//! threads sharing one connection behind a mutex. renkei's group-commit writer exists
//! to beat exactly this.

use crate::error::BenchError;
use crate::load::Timings;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Inserts every document (an `(id, json)` pair) into a new database at `path`.
pub fn insert_all(
    path: &Path,
    documents: &[(String, String)],
    concurrency: usize,
) -> Result<Timings, BenchError> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(BenchError::Startup {
            what: "raw SQLite baseline",
            detail: format!("journal_mode is {mode}, not WAL"),
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL;
         CREATE TABLE entities (id TEXT PRIMARY KEY, doc TEXT NOT NULL);",
    )?;
    let conn = Mutex::new(conn);
    let next = AtomicUsize::new(0);
    let workers = concurrency.clamp(1, documents.len().max(1));
    let started = Instant::now();
    let per_thread: Vec<Result<Vec<_>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((id, doc)) = documents.get(i) else {
                            break;
                        };
                        let t = Instant::now();
                        // A poisoned lock only means another worker panicked mid-insert;
                        // SQLite's own transaction kept the table consistent.
                        let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                        conn.prepare_cached("INSERT INTO entities (id, doc) VALUES (?1, ?2)")?
                            .execute((id, doc))?;
                        drop(conn);
                        mine.push(t.elapsed());
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Worker("raw sqlite".into())))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut durations = Vec::with_capacity(documents.len());
    for result in per_thread {
        durations.extend(result?);
    }
    Ok(Timings { durations, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_every_document_once_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.db");
        let docs: Vec<_> = (0..50)
            .map(|i| (format!("urn:x:{i}"), format!("{{\"n\":{i}}}")))
            .collect();
        let timings = insert_all(&path, &docs, 4).unwrap();
        assert_eq!(timings.durations.len(), 50);
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM entities", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);

        let dup = vec![("a".to_owned(), "{}".to_owned()); 2];
        let other = dir.path().join("dup.db");
        assert!(matches!(
            insert_all(&other, &dup, 2),
            Err(BenchError::Sqlite(_))
        ));
    }
}
