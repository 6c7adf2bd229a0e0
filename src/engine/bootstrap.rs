//! `--bootstrap-from-r2`: rebuilds a node whose local state is gone from the object
//! store's manifests alone.
//!
//! The local database, its WAL and shared-memory files and the local segment folder are
//! deleted; then every manifest under `streams/` is read, checked, and turned back into a
//! stream row (tail = end of the uploaded data) and its segment rows, after checking that
//! each segment object exists. Forks are re-linked to their sources by incarnation.
//! What was never uploaded is gone, and so is idempotent-producer state (see
//! docs/reliability.md).

use std::collections::HashMap;
use std::path::Path;

use super::db::segments::SegmentRow;
use super::db::{self, segments, streams};
use super::manifest::Manifest;
use super::meta::{ForkInfo, Lifecycle, StreamConfig, StreamMeta, Tail, TierState};
use super::EngineError;
use crate::objstore::{keys, Store};
use crate::protocol::expiry::Expiry;

/// What a bootstrap restored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub streams: usize,
    pub segments: usize,
    pub skipped: usize,
}

fn err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Bootstrap(e.to_string())
}

/// Deletes local state and rebuilds it from `store`. Runs before the engine opens.
pub async fn run(
    db_path: &Path,
    root: &Path,
    store: &Store,
    now_ms: i64,
) -> Result<Summary, EngineError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db_path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(format!("remove {}: {e}", Path::new(&p).display()))),
        }
    }
    match std::fs::remove_dir_all(root.join("segments")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }

    let mut manifests = Vec::new();
    for key in store.list(keys::STREAMS_PREFIX).await.map_err(err)? {
        if !keys::is_manifest(&key) {
            continue;
        }
        let bytes = store.get(&key).await.map_err(err)?;
        let m = Manifest::decode(&bytes).map_err(|e| err(format!("{key}: {e}")))?;
        if keys::manifest(&keys::stream_prefix(&m.incarnation)) != key {
            return Err(err(format!(
                "{key}: manifest names incarnation {}",
                m.incarnation
            )));
        }
        let etag = store.head(&key).await.map_err(err)?.e_tag;
        for s in &m.segments {
            let skey = keys::segment(&keys::stream_prefix(&m.incarnation), s.index);
            let head = store
                .head(&skey)
                .await
                .map_err(|e| err(format!("{skey}: {e}")))?;
            if head.size != s.size_bytes {
                return Err(err(format!(
                    "{skey}: size {} but the manifest says {}",
                    head.size, s.size_bytes
                )));
            }
        }
        manifests.push((m, etag));
    }

    // If two live incarnations claim one name (a removal whose object deletion had not
    // finished), the newer one wins.
    let mut owner: HashMap<String, (i64, String)> = HashMap::new();
    for (m, _) in &manifests {
        if let (Some(name), false) = (&m.name, m.deleted) {
            let e = owner
                .entry(name.clone())
                .or_insert((m.created_at_ms, m.incarnation.clone()));
            if m.created_at_ms > e.0 {
                *e = (m.created_at_ms, m.incarnation.clone());
            }
        }
    }

    let db_path = db_path.to_path_buf();
    let summary = tokio::task::spawn_blocking(move || restore(&db_path, manifests, &owner, now_ms))
        .await
        .map_err(err)??;
    Ok(summary)
}

fn restore(
    db_path: &Path,
    manifests: Vec<(Manifest, Option<String>)>,
    owner: &HashMap<String, (i64, String)>,
    now_ms: i64,
) -> Result<Summary, EngineError> {
    if let Some(dir) = db_path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let conn = db::open_writer(db_path)?;
    let tx = conn.unchecked_transaction()?;
    let mut summary = Summary::default();
    let mut ids: HashMap<String, i64> = HashMap::new();
    let mut pending_forks = Vec::new();
    for (m, etag) in &manifests {
        let superseded = m
            .name
            .as_ref()
            .is_some_and(|n| !m.deleted && owner.get(n).is_some_and(|o| o.1 != m.incarnation));
        if superseded {
            summary.skipped += 1;
            continue;
        }
        let expiry = match (m.ttl_seconds, m.expires_at_ms) {
            (Some(t), _) => Expiry::Ttl(t),
            (None, Some(a)) => Expiry::At(a),
            (None, None) => Expiry::None,
        };
        let meta = StreamMeta {
            id: 0,
            name: m.name.clone(),
            config: StreamConfig {
                content_type: m.content_type.clone(),
                created_at_ms: m.created_at_ms,
                expiry,
                // Linked below, once every incarnation has an id.
                fork: m.fork.as_ref().map(|f| ForkInfo {
                    source_id: 0,
                    pos: f.pos,
                    sub_offset: f.sub_offset,
                }),
                incarnation: m.incarnation.clone(),
                local_only: false,
            },
            tail: Tail {
                next_pos: m.end_pos,
                closed: m.closed,
                closed_by: m.closed_by.clone(),
                stream_seq: None,
                last_access_ms: now_ms,
            },
            tier: TierState {
                sealed_pos: m.end_pos,
                uploaded_pos: m.end_pos,
                pending_bytes: 0,
                last_cut_ms: now_ms,
                manifest_generation: m.generation,
                manifest_etag: etag.clone(),
                manifest_dirty: false,
                trimmed_pos: m.start_pos,
            },
            life: Lifecycle {
                ref_count: 0,
                deleted: m.deleted,
            },
        };
        let mut row = meta.clone();
        row.config.fork = None;
        let id = streams::insert(&tx, &row)?;
        tx.execute(
            "UPDATE streams SET fork_pos = ?2, sealed_pos = ?3, uploaded_pos = ?3 WHERE id = ?1",
            rusqlite::params![id, m.start_pos as i64, m.end_pos as i64],
        )?;
        if let Some(f) = &m.fork {
            pending_forks.push((id, f.source_incarnation.clone(), f.pos, f.sub_offset));
        }
        for s in &m.segments {
            segments::insert(
                &tx,
                &SegmentRow {
                    stream_id: id,
                    index: s.index,
                    start_pos: s.start_pos,
                    end_pos: s.end_pos,
                    size_bytes: s.size_bytes,
                    block_count: s.block_count,
                    created_at_ms: now_ms,
                    uploaded_at_ms: Some(now_ms),
                    etag: None,
                },
            )?;
            summary.segments += 1;
        }
        ids.insert(m.incarnation.clone(), id);
        summary.streams += 1;
    }
    for (id, source_inc, pos, sub) in pending_forks {
        let Some(&source_id) = ids.get(&source_inc) else {
            return Err(err(format!(
                "fork source incarnation {source_inc} has no manifest"
            )));
        };
        tx.execute(
            "UPDATE streams SET fork_source_id = ?2, fork_pos = ?3, fork_sub_offset = ?4 WHERE id = ?1",
            rusqlite::params![id, source_id, pos as i64, sub as i64],
        )?;
        streams::add_ref(&tx, source_id, 1)?;
    }
    // A deleted incarnation that no restored fork needs is not restored; its objects are
    // queued for deletion, as a removal on the old node would have done.
    // Removing one can free its own source, so repeat until nothing changes.
    loop {
        let unneeded: Vec<(i64, String, Option<i64>)> = {
            let mut stmt = tx.prepare(
                "SELECT id, incarnation, fork_source_id FROM streams WHERE deleted = 1 AND ref_count = 0",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if unneeded.is_empty() {
            break;
        }
        for (id, inc, source) in unneeded {
            if let Some(src) = source {
                streams::add_ref(&tx, src, -1)?;
            }
            segments::delete_stream(&tx, id)?;
            streams::delete_row(&tx, id)?;
            db::object_gc::insert(&tx, &keys::stream_prefix(&inc), now_ms)?;
            summary.streams -= 1;
            summary.skipped += 1;
        }
    }
    tx.commit()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ObjectStoreConfig, RetryPolicy};
    use crate::engine::manifest::{ManifestFork, FORMAT};
    use bytes::Bytes;

    fn manifest(
        inc: &str,
        name: Option<&str>,
        created: i64,
        deleted: bool,
        fork: Option<&str>,
    ) -> Manifest {
        Manifest {
            format: FORMAT,
            generation: 1,
            name: name.map(str::to_string),
            incarnation: inc.into(),
            content_type: "text/plain".into(),
            created_at_ms: created,
            ttl_seconds: None,
            expires_at_ms: None,
            closed: false,
            closed_by: None,
            deleted,
            fork: fork.map(|s| ManifestFork {
                source_incarnation: s.into(),
                pos: 0,
                sub_offset: 0,
            }),
            start_pos: 0,
            end_pos: 0,
            segments: Vec::new(),
        }
    }

    #[tokio::test]
    async fn links_forks_drops_unneeded_deletions_and_resolves_name_clashes() {
        let store = Store::build(&ObjectStoreConfig::Memory, RetryPolicy::default()).unwrap();
        let put = |m: Manifest| {
            let store = store.clone();
            async move {
                let key = keys::manifest(&keys::stream_prefix(&m.incarnation));
                store.put(&key, Bytes::from(m.encode())).await.unwrap();
            }
        };
        put(manifest("src", Some("src"), 1, true, None)).await; // soft-deleted, still forked
        put(manifest("fork", Some("fork"), 2, false, Some("src"))).await;
        put(manifest("orphan", Some("orphan"), 3, true, None)).await; // deleted, unneeded
        put(manifest("old", Some("dup"), 4, false, None)).await;
        put(manifest("new", Some("dup"), 5, false, None)).await;

        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("wal.sqlite");
        std::fs::write(&db_path, b"stale local state").unwrap();
        let s = run(&db_path, dir.path(), &store, 10).await.unwrap();
        assert_eq!(s.streams, 3);
        assert_eq!(s.skipped, 2);

        let c = db::open_writer(&db_path).unwrap();
        let src = streams::by_name(&c, "src").unwrap().unwrap();
        assert!(src.life.deleted);
        assert_eq!(src.life.ref_count, 1);
        let fork = streams::by_name(&c, "fork").unwrap().unwrap();
        assert_eq!(fork.config.fork.unwrap().source_id, src.id);
        assert!(streams::by_name(&c, "orphan").unwrap().is_none());
        assert_eq!(
            streams::by_name(&c, "dup")
                .unwrap()
                .unwrap()
                .config
                .incarnation,
            "new"
        );
        let gc = db::object_gc::pending(&c, 10).unwrap();
        assert_eq!(gc.len(), 1);
        assert_eq!(gc[0].1, keys::stream_prefix("orphan"));
    }

    #[tokio::test]
    async fn a_missing_segment_object_aborts_the_bootstrap() {
        let store = Store::build(&ObjectStoreConfig::Memory, RetryPolicy::default()).unwrap();
        let mut m = manifest("a", Some("a"), 1, false, None);
        m.end_pos = 5;
        m.segments.push(crate::engine::manifest::ManifestSegment {
            index: 0,
            start_pos: 0,
            end_pos: 5,
            size_bytes: 100,
            block_count: 1,
        });
        store
            .put(
                &keys::manifest(&keys::stream_prefix("a")),
                Bytes::from(m.encode()),
            )
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = run(&dir.path().join("wal.sqlite"), dir.path(), &store, 10)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("segments/0000000000000000.seg"),
            "{e}"
        );
    }
}
