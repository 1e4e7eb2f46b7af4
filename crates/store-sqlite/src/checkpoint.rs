//! Checkpoints of the write-ahead log, taken off the writer thread. SQLite's own
//! automatic checkpoint runs inside the commit that crosses its threshold, so every few
//! hundred commits one caller waited for a whole copy of the log into the database:
//! a profile of batch upserts put a tenth of the writer's time there, and the p95
//! latency of single creates was twice their median for it. Here a thread of its own,
//! on its own connection, takes a passive checkpoint (one that never waits for, nor
//! blocks, the writer or a reader) at most every [`PAUSE`] after commits. The writer
//! keeps an automatic checkpoint only as a backstop ([`BACKSTOP_PAGES`]), should this
//! thread fall behind or fail to start. Durability does not depend on either: a commit
//! is durable once its frames are in the log.

use rusqlite::Connection;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

/// The least time between two checkpoints: a checkpoint costs two `fsync`s, so under
/// a stream of small commits they are taken in batches, not one per commit. Measured
/// under batch upserts and single creates: 25 ms gained batch upserts nothing, 500 ms
/// made the p99 of creates worse (bigger copies); 100 ms gained batch upserts about
/// 8 % and cut the p95 of creates by a third.
const PAUSE: Duration = Duration::from_millis(100);

/// Log pages (16 KiB each) past which the writer checkpoints by itself: 64 MiB.
const BACKSTOP_PAGES: i64 = 4000;

/// The writer's side: told of every commit.
pub(crate) struct Checkpointer {
    committed: SyncSender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database `writer` writes to, if it is a file in WAL
    /// mode; `None` (and the writer checkpointing by itself, as before) otherwise or
    /// if the thread cannot start.
    pub(crate) fn start(writer: &Connection) -> Option<Checkpointer> {
        let journal: String = writer
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .ok()?;
        let path = writer.path().filter(|p| !p.is_empty())?;
        if !journal.eq_ignore_ascii_case("wal") {
            return None;
        }
        let own = match Connection::open(path) {
            Ok(own) => own,
            Err(error) => {
                tracing::warn!(%error, "no checkpointer thread; the writer checkpoints");
                return None;
            }
        };
        let (committed, commits) = sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("renkei-sqlite-checkpointer".into())
            .spawn(move || run(&own, &commits));
        if let Err(error) = spawned {
            tracing::warn!(%error, "no checkpointer thread; the writer checkpoints");
            return None;
        }
        if let Err(error) = writer.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES) {
            tracing::warn!(%error, "the writer keeps its own checkpoint threshold");
        }
        Some(Checkpointer { committed })
    }

    /// Says a transaction was committed. Never waits: commits made while a checkpoint
    /// is pending are covered by it.
    pub(crate) fn committed(&self) {
        let _ = self.committed.try_send(());
    }
}

/// Checkpoints after commits until the writer is gone (its sender dropped).
fn run(conn: &Connection, commits: &Receiver<()>) {
    while commits.recv().is_ok() {
        // PASSIVE copies what no reader still needs and returns; what is left is
        // copied next time. A failure (the disk) is logged and retried on the next
        // commit; the log keeps every frame meanwhile.
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
        std::thread::sleep(PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's own checkpoint is raised to the backstop, so what reaches the
    /// database file below it is this thread's doing.
    #[test]
    fn committed_pages_reach_the_database_file_from_the_checkpointer() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.db");
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        crate::schema::configure(&conn).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
            .unwrap_or_else(|e| panic!("{e}"));
        let checkpointer = Checkpointer::start(&conn).unwrap_or_else(|| panic!("not started"));
        let threshold: i64 = conn
            .pragma_query_value(None, "wal_autocheckpoint", |row| row.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(threshold, BACKSTOP_PAGES);
        let before = std::fs::metadata(&path).map_or(0, |m| m.len());
        // Fifty pages of 16 KiB: far below either threshold.
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
             INSERT INTO t SELECT zeroblob(16000) FROM n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        checkpointer.committed();
        // Waits for the event, not for a time: the bound only keeps a broken
        // checkpointer from hanging the suite.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::fs::metadata(&path).map_or(0, |m| m.len()) < before + 50 * 16_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never checkpointed into the database file"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_database_not_in_wal_mode_gets_no_checkpointer() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = Connection::open(dir.path().join("r.db")).unwrap_or_else(|e| panic!("{e}"));
        assert!(Checkpointer::start(&conn).is_none());
        let memory = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        assert!(Checkpointer::start(&memory).is_none());
    }
}
