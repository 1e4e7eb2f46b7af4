//! The raw SQLite baselines: what a plain store would do with the same rows. The same
//! `(id, JSON)` documents are inserted with rusqlite's prepared `INSERT` into a WAL,
//! `synchronous=FULL` table from `concurrency` threads sharing one connection behind a
//! mutex, one transaction (so one fsync) per operation. For `create` an operation is
//! one row (the naive store renkei's group-commit writer exists to beat); for
//! `batch-upsert` it is a batch of rows, the best a single writer does without
//! renkei's parsing, indexing and JSON-LD work.

use crate::error::BenchError;
use crate::load::Timings;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Inserts every document (an `(id, json)` pair) into a new database at `path`,
/// `batch` consecutive ones per transaction (the last may be shorter; 1 for one
/// transaction per row); one timing per transaction.
pub fn insert_batches(
    path: &Path,
    documents: &[(String, String)],
    batch: usize,
    concurrency: usize,
) -> Result<Timings, BenchError> {
    let batch = batch.max(1);
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
    let operations = documents.len().div_ceil(batch);
    let workers = concurrency.clamp(1, operations.max(1));
    let started = Instant::now();
    let per_thread: Vec<Result<Vec<_>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let start = i.saturating_mul(batch);
                        let Some(rows) = documents.get(start..(start + batch).min(documents.len()))
                        else {
                            break;
                        };
                        if rows.is_empty() {
                            break;
                        }
                        let t = Instant::now();
                        // A poisoned lock only means another worker panicked mid-insert;
                        // SQLite's own transaction kept the table consistent.
                        let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                        let tx = conn.transaction()?;
                        {
                            let mut insert = tx
                                .prepare_cached("INSERT INTO entities (id, doc) VALUES (?1, ?2)")?;
                            for (id, doc) in rows {
                                insert.execute((id, doc))?;
                            }
                        }
                        tx.commit()?;
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
        let timings = insert_batches(&path, &docs, 1, 4).unwrap();
        assert_eq!(timings.durations.len(), 50);
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM entities", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);

        let dup = vec![("a".to_owned(), "{}".to_owned()); 2];
        let other = dir.path().join("dup.db");
        assert!(matches!(
            insert_batches(&other, &dup, 1, 2),
            Err(BenchError::Sqlite(_))
        ));
    }

    #[test]
    fn batches_are_one_transaction_each_and_a_bad_row_rolls_its_batch_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batches.db");
        let docs: Vec<_> = (0..25)
            .map(|i| (format!("urn:x:{i}"), format!("{{\"n\":{i}}}")))
            .collect();
        let timings = insert_batches(&path, &docs, 10, 3).unwrap();
        // 10 + 10 + 5 rows: three transactions, three timings.
        assert_eq!(timings.durations.len(), 3);
        let count = |path: &Path| -> i64 {
            Connection::open(path)
                .unwrap()
                .query_row("SELECT count(*) FROM entities", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&path), 25);

        // One worker, so the first batch commits before the second fails.
        let mut bad = docs[..4].to_vec();
        bad.push(bad[3].clone());
        let other = dir.path().join("bad.db");
        assert!(insert_batches(&other, &bad, 3, 1).is_err());
        assert_eq!(count(&other), 3);
    }
}
