//! Slow object stores and multipart uploads: a store throttled far below the speed at which
//! a whole segment fits in the base timeout still gets every segment (each request and
//! each part of a multipart upload has time for its bytes), and a multipart upload that
//! fails part-way is aborted and then redone from scratch.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::common;
use bytes::Bytes;
use common::faulty::{Faulty, Policy};
use common::inproc::{direct, objects, InProcess};
use prisma_streams::config::RetryPolicy;
use prisma_streams::objstore::Store;
use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng as _};
use reqwest::StatusCode;

const MIB: usize = 1 << 20;

/// Bytes zstd cannot shrink, so a segment file is as large as its payload.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Files in the objects directory that are not whole objects (staged multipart parts).
fn staged_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.join("objects")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else if e.file_name().to_string_lossy().contains('#') {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_at_500_kb_per_second_still_gets_a_16_mib_segment() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = Faulty::new(objects(&root), Policy::HEALTHY, 1);
    store.throttle(500_000);
    // Default object-store timeouts; a 16 MiB segment; reads of it go to the store. The
    // segmenter looks only every 2 s, so that it normally finds all 16 appends in
    // `entries` (it seals only what the writer has compacted there). If it is early, it
    // seals at least 12 MiB (the writer compacts every 4 MiB) and the rest a minute after
    // the stream was created (`DS_SEGMENT_MAX_INTERVAL_MS`): slower, still correct.
    let env: Vec<(&str, String)> = vec![
        ("DS_SEGMENT_MAX_BYTES", (16 * MIB).to_string()),
        ("DS_SEGMENT_CHECK_MS", "2000".into()),
        ("DS_UPLOAD_CHECK_MS", "50".into()),
        ("DS_SEGMENT_CACHE_MAX_BYTES", "1".into()),
    ];
    let s = InProcess::start(&root, store.clone(), false, &env).await;
    let c = common::client();
    let url = s.stream("slow/big");
    let ct = "application/octet-stream";
    assert!(common::put(&c, &url, ct, Vec::new())
        .await
        .status()
        .is_success());
    let mut want = Vec::with_capacity(16 * MIB);
    for i in 0..16 {
        let body = noise(MIB, i);
        want.extend_from_slice(&body);
        let r = common::post(&c, &url, ct, body).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "append #{i}");
    }

    // 16 MiB at 500 KB/s is about 34 s of transfer; give it ample time.
    common::tier::wait_manifest_within(
        &direct(&root),
        "slow/big",
        16,
        false,
        Duration::from_secs(150),
    )
    .await;
    let mp = &store.multipart;
    assert!(
        mp.completes.load(Ordering::Relaxed) >= 1,
        "uploaded in parts"
    );
    assert_eq!(
        mp.aborts.load(Ordering::Relaxed),
        0,
        "no part ran out of time"
    );

    let got = match common::read_pages(&c, &url).await {
        Ok(pages) => pages.joined(),
        Err(r) => panic!("read: {}", r.status()),
    };
    assert!(got == want, "the stream reads back byte for byte");
    s.stop().await;
}

/// A store client with a short base timeout and no retries.
fn impatient(store: Arc<Faulty>, retries: u32) -> Store {
    Store::from_object_store(
        store,
        RetryPolicy {
            timeout_ms: 200,
            retries,
            base_ms: 5,
            max_ms: 20,
            ..RetryPolicy::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_and_each_part_gets_time_for_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let faulty = Faulty::new(objects(&root), Policy::HEALTHY, 2);
    let s = impatient(faulty.clone(), 0);
    // 4 MB/s: a 2 MiB PUT takes about half a second and each 5 MiB part well over a
    // second, both far beyond the 200 ms base timeout but within their allowance.
    faulty.throttle(4_000_000);
    let small = noise(2 * MIB, 1);
    s.put("small.seg", Bytes::from(small.clone()))
        .await
        .unwrap();
    let file = root.join("big");
    let big = noise(12 * MIB, 2);
    std::fs::write(&file, &big).unwrap();
    s.put_file("big.seg", &file).await.unwrap();
    faulty.throttle(0);
    assert_eq!(faulty.multipart.completes.load(Ordering::Relaxed), 1);
    assert_eq!(s.get("small.seg").await.unwrap().as_ref(), &small[..]);
    assert_eq!(
        s.get_range("big.seg", 0..big.len() as u64)
            .await
            .unwrap()
            .as_ref(),
        &big[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_whose_part_fails_is_aborted_and_redone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let faulty = Faulty::new(objects(&root), Policy::HEALTHY, 3);
    let file = root.join("big");
    let data = noise(12 * MIB + 123, 3);
    std::fs::write(&file, &data).unwrap();

    // Without retries the failure is returned, after the upload was aborted.
    faulty.fail_part_once(1);
    let once = impatient(faulty.clone(), 0);
    assert!(once.put_file("a.seg", &file).await.is_err());
    let mp = &faulty.multipart;
    assert_eq!(mp.aborts.load(Ordering::Relaxed), 1);
    assert_eq!(mp.completes.load(Ordering::Relaxed), 0);
    assert!(staged_files(&root).is_empty(), "{:?}", staged_files(&root));
    assert!(once.head("a.seg").await.is_err(), "nothing was published");

    // With a retry, a fresh upload replaces the aborted one and completes.
    faulty.fail_part_once(1);
    let s = impatient(faulty.clone(), 1);
    s.put_file("b.seg", &file).await.unwrap();
    assert_eq!(mp.uploads.load(Ordering::Relaxed), 3);
    assert_eq!(mp.aborts.load(Ordering::Relaxed), 2);
    assert_eq!(mp.completes.load(Ordering::Relaxed), 1);
    assert_eq!(s.get("b.seg").await.unwrap().as_ref(), &data[..]);
    assert!(staged_files(&root).is_empty(), "{:?}", staged_files(&root));
}
