//! An S3 server that stops answering: appends keep being acknowledged, reads are served
//! from local files, and uploads catch up afterwards without losing or duplicating
//! anything. It pauses the shared S3 server, so it lives in its own test binary (cargo
//! runs test binaries one after another).

use std::time::Duration;

use crate::common;
use common::tier::{read_all, s3_available, store_for, wait_uploaded, TINY};
use common::{client, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_acknowledged_while_s3_is_unreachable() {
    let (Ok(pid), true) = (std::env::var("MOTO_PID"), s3_available()) else {
        common::missing_dependency("no S3 server (run through tests/s3/with-moto.sh)");
        return;
    };
    let signal = |sig: &str| {
        assert!(std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    // A local cache large enough to serve reads while the store is away.
    let mut env = TINY.to_vec();
    env.push(("DS_SEGMENT_CACHE_MAX_BYTES", "10000000"));
    let s = Server::start_full(dir.path(), "s3", &env, &[]);
    let u = s.stream_url("through-outage");
    common::put(&c, &u, "application/json", "[]").await;
    let mut sent = Vec::new();
    for i in 0..40 {
        let m = format!(r#"{{"n":{i}}}"#);
        assert_eq!(
            common::post(&c, &u, "application/json", m.clone())
                .await
                .status(),
            204
        );
        sent.push(m);
    }
    signal("-STOP"); // the S3 server stops answering; uploads time out and back off
    let outage = async {
        for i in 40..100 {
            let m = format!(r#"{{"n":{i}}}"#);
            let r = common::post(&c, &u, "application/json", m.clone()).await;
            assert_eq!(r.status(), 204, "appends never wait for the object store");
            sent.push(m);
        }
        // Long enough for upload attempts to time out and back off.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (body, _, _) = read_all(&c, &u).await;
        assert_eq!(body, sent.join(",").into_bytes());
    };
    let within = tokio::time::timeout(Duration::from_secs(20), outage).await;
    signal("-CONT");
    within.expect("appends and reads kept working during the outage");
    wait_uploaded(&store_for("s3", dir.path()), "through-outage", 100).await;
    let (body, _, _) = read_all(&c, &u).await;
    assert_eq!(
        body,
        sent.join(",").into_bytes(),
        "nothing lost or duplicated"
    );
}
