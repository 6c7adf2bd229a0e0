//! `--bootstrap-from-r2`: rebuilds a node from the object store's manifests alone.
//!
//! It runs under the data directory's lock, before the engine opens, and never loses what
//! the node's existing database holds. First that database is inspected: if it has data
//! the object store lacks, the bootstrap refuses unless told to discard it. Then every
//! manifest under `streams/` is read and checked, with each segment object it names. Only
//! then is a new database built, in a temporary file: a stream row per incarnation
//! (tail = end of the uploaded data) and its segment rows, forks re-linked to their
//! sources by incarnation. The finished file replaces the old database, which is kept as
//! `<db>.pre-bootstrap` with its segment folder as `segments.pre-bootstrap`
//! ([`local_db`]). What was never uploaded is not restored, nor is idempotent-producer
//! state (see docs/reliability.md).

mod local_db;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::db::segments::SegmentRow;
use super::db::{self, segments, streams};
use super::manifest::Manifest;
use super::meta::{ForkInfo, Lifecycle, StreamConfig, StreamMeta, Tail, TierState};
use super::EngineError;
use crate::engine::keyindex::format::RunRange;
use crate::objstore::{keys, Store};
use crate::protocol::expiry::Expiry;

/// What a bootstrap restored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub streams: usize,
    pub segments: usize,
    pub skipped: usize,
    /// The replaced database, kept under this name.
    pub backup: Option<PathBuf>,
    /// The replaced database's local segment folder, kept under this name.
    pub segments_backup: Option<PathBuf>,
}

/// Why a bootstrap did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("--bootstrap-from-r2 refused, nothing was changed: {} holds data not in the object store yet ({what}); start without --bootstrap-from-r2 to let it upload, or add --bootstrap-discard-local to replace it anyway (it is then kept as {})", .db.display(), .backup.display())]
    NotUploaded {
        db: PathBuf,
        what: String,
        backup: PathBuf,
    },
    #[error("--bootstrap-from-r2 refused, nothing was changed: cannot tell whether {} holds data not in the object store yet ({why}); add --bootstrap-discard-local to replace it anyway (it is then kept as {})", .db.display(), .backup.display())]
    Unreadable {
        db: PathBuf,
        why: String,
        backup: PathBuf,
    },
    #[error("--bootstrap-from-r2 failed, nothing was changed: {0}")]
    Failed(String),
    /// Replacing the old files failed part-way; the database path always names either the
    /// old or the new database, complete.
    #[error("--bootstrap-from-r2 did not finish replacing the local files: {0}")]
    Swap(String),
}

fn failed(e: impl std::fmt::Display) -> BootstrapError {
    BootstrapError::Failed(e.to_string())
}

fn err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Bootstrap(e.to_string())
}

/// Rebuilds the database at `db_path` from `store`. Runs before the engine opens, with
/// the data directory locked. With `discard_local`, a database holding data the store
/// lacks is replaced too (and kept as a backup) instead of refusing.
pub async fn run(
    db_path: &Path,
    root: &Path,
    store: &Store,
    now_ms: i64,
    discard_local: bool,
) -> Result<Summary, BootstrapError> {
    let backup = local_db::backup_path(db_path);
    match local_db::inspect(db_path) {
        local_db::OldDb::Pending(what) if !discard_local => {
            return Err(BootstrapError::NotUploaded {
                db: db_path.to_path_buf(),
                what,
                backup,
            })
        }
        local_db::OldDb::Unreadable(why) if !discard_local => {
            return Err(BootstrapError::Unreadable {
                db: db_path.to_path_buf(),
                why,
                backup,
            })
        }
        local_db::OldDb::Pending(what) => {
            tracing::warn!(db = %db_path.display(), %what, "discarding data not in the object store (--bootstrap-discard-local)")
        }
        local_db::OldDb::Unreadable(why) => {
            tracing::warn!(db = %db_path.display(), %why, "replacing a database that cannot be inspected (--bootstrap-discard-local)")
        }
        local_db::OldDb::Absent | local_db::OldDb::Uploaded => {}
    }

    let (manifests, runs) = read_manifests(store).await?;
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
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let temp = local_db::temp_path(&db_path);
        let built = build(&temp, manifests, &runs, &owner, now_ms);
        let mut summary = match built {
            Ok(s) => s,
            Err(e) => {
                let _ = local_db::remove_with_sidecars(&temp);
                return Err(e);
            }
        };
        let swapped = local_db::swap(&db_path, &temp, &root).map_err(BootstrapError::Swap)?;
        summary.backup = swapped.backup;
        summary.segments_backup = swapped.segments_backup;
        Ok(summary)
    })
    .await
    .map_err(failed)?
}

/// The routing-key index runs found in the store, per incarnation prefix, with their key
/// count and search hash (read from each run's header).
type ListedRuns = HashMap<String, Vec<(RunRange, u64, u64)>>;

/// Lists and reads every manifest and checks the segment objects each one names; also
/// collects the routing-key index runs listed beside them.
async fn read_manifests(
    store: &Store,
) -> Result<(Vec<(Manifest, Option<String>)>, ListedRuns), BootstrapError> {
    let mut manifests = Vec::new();
    let mut runs: ListedRuns = HashMap::new();
    let listed = store
        .list(keys::STREAMS_PREFIX)
        .await
        .map_err(|e| failed(format!("cannot list {}: {e}", keys::STREAMS_PREFIX)))?;
    for key in listed {
        if let Some((level, start_seg, end_seg)) = keys::parse_key_index_run(&key) {
            let named = RunRange {
                level,
                start_seg,
                end_seg,
            };
            // A run whose header cannot be read is left out: its segments are indexed
            // again (and the object replaced) by the indexer.
            let header = store
                .get_range(&key, 0..crate::engine::keyindex::format::HEADER_BYTES)
                .await
                .ok()
                .and_then(|b| crate::engine::keyindex::format::peek_header(&b));
            if let (Some(prefix), Some((range, count, hash))) =
                (key.split("keyindex/").next(), header)
            {
                if range == named {
                    runs.entry(prefix.to_string())
                        .or_default()
                        .push((range, count, hash));
                }
            }
            continue;
        }
        if !keys::is_manifest(&key) {
            continue;
        }
        let cannot_read =
            |e: crate::objstore::StoreError| failed(format!("cannot read {key}: {e}"));
        let bytes = store.get(&key).await.map_err(cannot_read)?;
        let m = Manifest::decode(&bytes).map_err(|e| failed(format!("{key}: {e}")))?;
        if keys::manifest(&keys::stream_prefix(&m.incarnation)) != key {
            return Err(failed(format!(
                "{key}: manifest names incarnation {}",
                m.incarnation
            )));
        }
        let etag = store.head(&key).await.map_err(cannot_read)?.e_tag;
        for s in &m.segments {
            let skey = keys::segment(&keys::stream_prefix(&m.incarnation), s.index);
            let head = store
                .head(&skey)
                .await
                .map_err(|e| failed(format!("{skey} (named by {key}): {e}")))?;
            if head.size != s.size_bytes {
                return Err(failed(format!(
                    "{skey}: size {} but the manifest says {}",
                    head.size, s.size_bytes
                )));
            }
        }
        manifests.push((m, etag));
    }
    Ok((manifests, runs))
}

/// Writes the rebuilt database to `temp` (replacing a leftover of an earlier attempt) and
/// seals it for the swap.
fn build(
    temp: &Path,
    manifests: Vec<(Manifest, Option<String>)>,
    runs: &ListedRuns,
    owner: &HashMap<String, (i64, String)>,
    now_ms: i64,
) -> Result<Summary, BootstrapError> {
    if let Some(dir) = temp.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    local_db::remove_with_sidecars(temp)
        .map_err(|e| failed(format!("cannot remove {}: {e}", temp.display())))?;
    let conn = db::open_writer(temp).map_err(failed)?;
    let summary = restore(&conn, manifests, runs, owner, now_ms).map_err(failed)?;
    local_db::seal_new(conn, temp).map_err(failed)?;
    Ok(summary)
}

fn restore(
    conn: &rusqlite::Connection,
    manifests: Vec<(Manifest, Option<String>)>,
    runs: &ListedRuns,
    owner: &HashMap<String, (i64, String)>,
    now_ms: i64,
) -> Result<Summary, EngineError> {
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
                // Not in the manifest: what is known of a rebuilt stream is its segments.
                total_bytes: 0,
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
            // The keys of restored segments are not recorded yet (see engine/keys.rs).
            keys_complete: m.segments.is_empty(),
            settings: Default::default(),
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
        if let Some(settings) = &m.settings {
            db::config::restore(&tx, id, settings, now_ms)?;
        }
        let listed = runs.get(&keys::stream_prefix(&m.incarnation));
        restore_key_index(
            &tx,
            id,
            &m.incarnation,
            m.segments.len() as u64,
            listed,
            now_ms,
        )?;
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
            db::config::delete_stream(&tx, id)?;
            db::templates::delete_stream(&tx, id)?;
            streams::delete_row(&tx, id)?;
            db::object_gc::insert(&tx, &keys::stream_prefix(&inc), now_ms)?;
            summary.streams -= 1;
            summary.skipped += 1;
        }
    }
    tx.commit()?;
    Ok(summary)
}

/// Restores the catalog of a stream's routing-key index from the runs listed in the
/// store: those within the restored segments, without the ones a listed run of a higher
/// level covers (leftovers of a merge whose deletions had not run; they are queued for
/// deletion). Sizes are unknown until a run is read (0). A listed run that
/// turns out damaged is dropped and rebuilt by the indexer; reads never trust it.
fn restore_key_index(
    tx: &rusqlite::Connection,
    stream_id: i64,
    incarnation: &str,
    segments: u64,
    listed: Option<&Vec<(RunRange, u64, u64)>>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let Some(listed) = listed else {
        return Ok(());
    };
    let usable: Vec<(RunRange, u64, u64)> = listed
        .iter()
        .copied()
        .filter(|(r, _, _)| r.start_seg < r.end_seg && r.end_seg <= segments)
        .collect();
    for (r, key_count, search_hash) in &usable {
        let covered = usable.iter().any(|(p, _, _)| {
            p.level > r.level && p.start_seg <= r.start_seg && p.end_seg >= r.end_seg
        });
        if covered {
            db::object_gc::insert(
                tx,
                &crate::engine::keyindex::object_key(incarnation, *r),
                now_ms,
            )?;
            continue;
        }
        db::key_index::insert(
            tx,
            &db::key_index::RunRow {
                stream_id,
                range: *r,
                size_bytes: 0,
                key_count: *key_count,
                search_hash: *search_hash,
            },
        )?;
        db::key_index::mark_segments(tx, stream_id, r.start_seg, r.end_seg, true)?;
    }
    Ok(())
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
            settings: None,
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
        let s = run(&db_path, dir.path(), &store, 10, false).await.unwrap();
        assert_eq!(s.streams, 3);
        assert_eq!(s.skipped, 2);
        assert_eq!(s.backup, None, "there was no database to keep");

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
        let db_path = dir.path().join("wal.sqlite");
        let e = run(&db_path, dir.path(), &store, 10, false)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("segments/0000000000000000.seg"),
            "{e}"
        );
        assert!(!db_path.exists());
        assert!(!local_db::temp_path(&db_path).exists());
    }

    fn memory() -> Store {
        Store::build(&ObjectStoreConfig::Memory, RetryPolicy::default()).unwrap()
    }

    /// A node with one stream `s` (tail 3, `uploaded` of it uploaded) and a local segment
    /// file; returns the database's bytes.
    fn node(root: &Path, uploaded: i64) -> Vec<u8> {
        let db_path = root.join("wal.sqlite");
        let c = db::open_writer(&db_path).unwrap();
        c.execute(
            "INSERT INTO streams (name, content_type, created_at_ms, last_access_ms, next_pos, \
             incarnation, sealed_pos, uploaded_pos) VALUES ('s', 'text/plain', 0, 0, 3, 'i', ?1, ?1)",
            [uploaded],
        )
        .unwrap();
        drop(c);
        std::fs::create_dir_all(root.join("segments/streams/i")).unwrap();
        std::fs::write(root.join("segments/streams/i/x.seg"), b"segment").unwrap();
        std::fs::read(&db_path).unwrap()
    }

    /// Entries only in the append log (plain appends since the last compaction) are data
    /// the object store lacks too.
    #[tokio::test]
    async fn entries_in_the_append_log_are_refused_as_not_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let db_path = root.join("wal.sqlite");
        node(root, 3);
        let c = db::open_writer(&db_path).unwrap();
        db::ingest::set_log_salt(&c, 42).unwrap();
        drop(c);
        let entry = crate::engine::Entry {
            data: bytes::Bytes::from_static(b"x"),
            key: None,
            ts_ms: 0,
        };
        let mut log = crate::engine::applog::AppLog::open(&db_path, 42, 0).unwrap();
        log.append(&[(1, 3, vec![entry.clone(), entry])]).unwrap();
        let e = run(&db_path, root, &memory(), 10, false).await.unwrap_err();
        assert!(matches!(e, BootstrapError::NotUploaded { .. }), "{e}");
        assert!(e.to_string().contains("2 entries in the append log"), "{e}");

        // Discarded: the log moves aside with the database it belongs to.
        run(&db_path, root, &memory(), 10, true).await.unwrap();
        let backup = local_db::backup_path(&db_path);
        assert!(!crate::engine::applog::path_for(&db_path).exists());
        assert!(crate::engine::applog::path_for(&backup).exists());
    }

    #[tokio::test]
    async fn unuploaded_data_is_refused_untouched_unless_discarded_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let db_path = root.join("wal.sqlite");
        let before = node(root, 0);
        let e = run(&db_path, root, &memory(), 10, false).await.unwrap_err();
        assert!(matches!(e, BootstrapError::NotUploaded { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("1 streams with entries not uploaded"),
            "{e}"
        );
        assert_eq!(std::fs::read(&db_path).unwrap(), before);
        assert!(root.join("segments/streams/i/x.seg").exists());
        assert!(!local_db::backup_path(&db_path).exists());

        let s = run(&db_path, root, &memory(), 10, true).await.unwrap();
        assert_eq!(s.backup, Some(local_db::backup_path(&db_path)));
        assert_eq!(s.segments_backup, Some(root.join("segments.pre-bootstrap")));
        assert!(root.join("segments.pre-bootstrap/streams/i/x.seg").exists());
        assert!(!root.join("segments").exists());
        let c = db::open_writer(&db_path).unwrap();
        assert!(streams::by_name(&c, "s").unwrap().is_none());
        let old = db::open_writer(&local_db::backup_path(&db_path)).unwrap();
        assert_eq!(
            streams::by_name(&old, "s").unwrap().unwrap().tail.next_pos,
            3
        );
    }

    #[tokio::test]
    async fn a_fully_uploaded_database_is_replaced_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("wal.sqlite");
        node(dir.path(), 3);
        let s = run(&db_path, dir.path(), &memory(), 10, false)
            .await
            .unwrap();
        assert_eq!(s.backup, Some(local_db::backup_path(&db_path)));
        let old = db::open_writer(&local_db::backup_path(&db_path)).unwrap();
        assert!(streams::by_name(&old, "s").unwrap().is_some());
    }

    #[tokio::test]
    async fn an_unreadable_database_is_refused_unless_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("wal.sqlite");
        std::fs::write(&db_path, b"stale local state").unwrap();
        let e = run(&db_path, dir.path(), &memory(), 10, false)
            .await
            .unwrap_err();
        assert!(matches!(e, BootstrapError::Unreadable { .. }), "{e}");
        assert_eq!(std::fs::read(&db_path).unwrap(), b"stale local state");
        run(&db_path, dir.path(), &memory(), 10, true)
            .await
            .unwrap();
        let backup = local_db::backup_path(&db_path);
        assert_eq!(std::fs::read(backup).unwrap(), b"stale local state");
    }

    #[tokio::test]
    async fn a_failed_listing_changes_nothing() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let down = Store::build(
            &ObjectStoreConfig::S3 {
                endpoint: format!("http://127.0.0.1:{port}"),
                bucket: "b".into(),
                region: "us-east-1".into(),
                access_key_id: "k".into(),
                secret_access_key: "s".into(),
                allow_http: true,
            },
            RetryPolicy {
                timeout_ms: 1000,
                retries: 0,
                base_ms: 1,
                max_ms: 1,
                ..RetryPolicy::default()
            },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("wal.sqlite");
        let before = node(dir.path(), 0);
        let e = run(&db_path, dir.path(), &down, 10, true)
            .await
            .unwrap_err();
        assert!(matches!(e, BootstrapError::Failed(_)), "{e}");
        assert_eq!(std::fs::read(&db_path).unwrap(), before);
        assert!(dir.path().join("segments/streams/i/x.seg").exists());
        assert!(!local_db::backup_path(&db_path).exists());
    }
}
