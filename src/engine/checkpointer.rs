//! SQLite's WAL checkpoints, on a thread of their own.
//!
//! By default SQLite checkpoints inside the commit that takes its WAL past 1,000 pages:
//! the writer thread then copies those pages into the database file and syncs it before
//! it can start the next batch. Since batches of plain appends no longer commit to SQLite
//! (`applog`), nearly every commit that grows the WAL is a compaction, and a checkpoint
//! after it added its copy and sync to the writer's longest pause.
//!
//! The writer replaces automatic checkpoints with a WAL hook that records the WAL's size,
//! and nudges this thread after a commit that left it at 1,000 pages or more (SQLite's own
//! threshold). The thread, with a connection of its own, runs a `PASSIVE` checkpoint: it
//! copies the frames no reader still needs and never waits for the writer, which keeps
//! committing meanwhile. Nudges are coalesced, and checkpoints are at least [`SPACING`]
//! apart.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::EngineError;

/// The least time between two checkpoints.
pub const SPACING: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    due: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The checkpoint thread; stopped (after a last checkpoint if one is due) when dropped.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread with its own connection to the database at `path`.
    pub fn start(path: &Path) -> Result<Checkpointer, EngineError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_millis(super::db::BUSY_TIMEOUT_MS))?;
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &s))
            .map_err(|e| EngineError::io("spawn the checkpoint thread", e))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// A commit grew the WAL: checkpoint soon.
    pub fn nudge(&self) {
        let mut st = self.shared.lock();
        if !st.due {
            st.due = true;
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, shared: &Shared) {
    loop {
        {
            let mut st = shared.lock();
            while !st.due && !st.stop {
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.stop && !st.due {
                return;
            }
            st.due = false;
        }
        // (busy, frames in the WAL, frames checkpointed)
        let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match r {
            Ok((frames, copied)) => tracing::trace!(frames, copied, "checkpointed"),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        // Spaced out; a stop ends the wait.
        let until = crate::clock::monotonic() + SPACING;
        let mut st = shared.lock();
        loop {
            if st.stop {
                return;
            }
            let left = until.saturating_duration_since(crate::clock::monotonic());
            if left.is_zero() {
                break;
            }
            st = shared
                .wake
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With automatic checkpoints off, the thread's checkpoints are what move the WAL's
    /// frames into the database file.
    #[test]
    fn a_nudge_checkpoints_the_wal_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let conn = super::super::db::open_writer(&path).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let db_len = || std::fs::metadata(&path).unwrap().len();
        let before = db_len();
        for _ in 0..50 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        assert_eq!(db_len(), before, "the rows are only in the WAL");
        let c = Checkpointer::start(&path).unwrap();
        c.nudge();
        // Dropping stops the thread after the checkpoint that was due.
        drop(c);
        assert!(
            db_len() > before + 50 * 4000,
            "the rows reached the database file"
        );
    }
}
