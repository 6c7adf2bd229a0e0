//! Supervision of the server's own threads and tasks.
//!
//! Every long-lived background task (segmenter, uploader, expiry sweeper, metrics
//! emitter, stats reporter, the accept loop) is spawned through [`Health::spawn`]: if it
//! panics or returns an error, the failure is recorded with its cause (and logged), and
//! `GET /health` answers 503 naming the failed component. The writer thread is
//! different: without it nothing can be stored, so its death is *fatal*: recorded, and
//! [`Health::fatal`] resolves, on which the server shuts down and exits non-zero so that a
//! supervisor (systemd, Kubernetes, the npm shim) restarts it.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A supervised task: `Err` carries the cause of a failure.
pub type Task = BoxFuture<'static, Result<(), String>>;

/// A task that only fails by panicking.
pub fn task(run: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
    async move {
        run.await;
        Ok(())
    }
    .boxed()
}

/// A component that stopped working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub component: &'static str,
    /// The panic message or error, for the log (never sent to clients).
    pub cause: String,
    /// When it failed (Unix ms).
    pub at_ms: i64,
    /// The server cannot go on without it.
    pub fatal: bool,
}

pub struct Health {
    failures: Mutex<Vec<Failure>>,
    fatal: watch::Sender<Option<Failure>>,
    clock: crate::clock::SharedClock,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("failures", &self.failures())
            .finish()
    }
}

impl Health {
    pub fn new(clock: crate::clock::SharedClock) -> Arc<Health> {
        Arc::new(Health {
            failures: Mutex::new(Vec::new()),
            fatal: watch::channel(None).0,
            clock,
        })
    }

    /// Records that `component` failed; `fatal` if the server cannot go on.
    pub fn record(&self, component: &'static str, cause: String, fatal: bool) {
        let f = Failure {
            component,
            cause,
            at_ms: self.clock.now_ms(),
            fatal,
        };
        if fatal {
            tracing::error!(component, cause = %f.cause, "fatal failure; the server stops");
        } else {
            tracing::error!(component, cause = %f.cause, "background task failed");
        }
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(f.clone());
        if fatal {
            self.fatal.send_replace(Some(f));
        }
    }

    /// Failures so far, oldest first.
    pub fn failures(&self) -> Vec<Failure> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves with the first fatal failure.
    pub async fn fatal(&self) -> Failure {
        let mut rx = self.fatal.subscribe();
        loop {
            if let Some(f) = rx.borrow_and_update().clone() {
                return f;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`: not reached while borrowed.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Spawns a supervised task: a panic or an `Err` is recorded as a failure of
    /// `component`.
    pub fn spawn(self: &Arc<Self>, component: &'static str, task: Task) -> JoinHandle<()> {
        self.supervise(component, task, false)
    }

    /// Like [`spawn`](Self::spawn), for a task the server cannot run without: its failure
    /// is fatal.
    pub fn spawn_critical(self: &Arc<Self>, component: &'static str, task: Task) -> JoinHandle<()> {
        self.supervise(component, task, true)
    }

    fn supervise(
        self: &Arc<Self>,
        component: &'static str,
        task: Task,
        fatal: bool,
    ) -> JoinHandle<()> {
        let health = self.clone();
        tokio::spawn(async move {
            match AssertUnwindSafe(task).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(cause)) => health.record(component, cause, fatal),
                Err(panic) => health.record(component, panic_message(&*panic), fatal),
            }
        })
    }
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_and_errors_are_recorded_and_fatal_failures_resolve() {
        let h = Health::new(crate::clock::ManualClock::new(7));
        h.spawn("a", async { panic!("boom") }.boxed())
            .await
            .unwrap();
        h.spawn("b", async { Err("it broke".to_string()) }.boxed())
            .await
            .unwrap();
        h.spawn("c", async { Ok(()) }.boxed()).await.unwrap();
        let f = h.failures();
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].component, f[0].cause.as_str()),
            ("a", "panicked: boom")
        );
        assert_eq!((f[1].component, f[1].at_ms), ("b", 7));
        assert!(!f[0].fatal);

        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.fatal().await })
        };
        h.record("writer", "gone".into(), true);
        let fatal = waiter.await.unwrap();
        assert_eq!(fatal.component, "writer");
        assert!(fatal.fatal);
        // Later waiters see it too.
        assert_eq!(h.fatal().await.component, "writer");
    }
}
