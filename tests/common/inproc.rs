//! A full-mode server run inside the test process, so that its object-store client can be
//! any `ObjectStore` (tests wrap the local file system in `faulty.rs`).

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use prisma_streams::app::BoundServer;
use prisma_streams::cli::{ObjectStoreKind, ServerArgs};
use prisma_streams::clock::SystemClock;
use prisma_streams::config::{Config, Env, RetryPolicy};
use prisma_streams::objstore::Store;

pub struct InProcess {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl InProcess {
    /// Starts a server on `root` (port 0, no metrics events) configured by `env`, whose
    /// object store is `store` (with the retry policy `env` sets).
    pub async fn start(
        root: &Path,
        store: Arc<dyn ObjectStore>,
        bootstrap: bool,
        env: &[(&str, String)],
    ) -> InProcess {
        let mut pairs: Vec<(&str, String)> = vec![
            ("DS_ROOT", root.display().to_string()),
            ("PORT", "0".into()),
            ("DS_METRICS_FLUSH_MS", "0".into()),
        ];
        pairs.extend(env.iter().cloned());
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        let args = ServerArgs {
            object_store: ObjectStoreKind::Local,
            exit_on_stdin_eof: false,
            bootstrap_from_r2: bootstrap,
            bootstrap_discard_local: false,
            auto_tune: None,
            stats: false,
            hist: false,
            allow_unauthenticated: false,
            no_auth: false,
            auth_strategy: None,
        };
        let config = Config::for_server(&args, &env).expect("config");
        let retry: RetryPolicy = config.tiering.as_ref().unwrap().retry;
        let client = Store::from_object_store(store, retry);
        let bound = BoundServer::bind_with_store(config, Arc::new(SystemClock), Some(client))
            .await
            .expect("bind");
        let url = format!("http://{}", bound.addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bound
                .serve(async move {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        InProcess {
            url,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn stream(&self, name: &str) -> String {
        format!("{}/v1/stream/{name}", self.url)
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

/// The local-file-system object store of a server on `root` (`root/objects`).
pub fn objects(root: &Path) -> Arc<dyn ObjectStore> {
    let dir = root.join("objects");
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap())
}

/// Direct access to the objects (no faults) for checks.
pub fn direct(root: &Path) -> Store {
    Store::from_object_store(objects(root), RetryPolicy::default())
}
