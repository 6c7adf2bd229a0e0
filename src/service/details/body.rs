//! The JSON bodies of `/_details` and `/_index_status`, in the original's shape, from
//! what the engine reports of one stream ([`Facts`]). Pure: no I/O.
//!
//! Our storage has no routing-key index, lexicon, exact indexes or search companions
//! (routing-key reads use the per-block key filters inside each segment), so those
//! sections report what exists: zero objects and bytes, and the original's lag formulas
//! applied to zero indexed segments. Figures we do not track are `null`, never guessed
//! (see docs/introspection.md).

use serde_json::{json, Value};

use super::super::listing::{expires_at, ttl_seconds};
use super::super::StreamSettings;
use crate::engine::{StreamMeta, StreamStats};
use crate::objstore::ledger::{OpCounts, StreamRequests};
use crate::protocol::expiry::Expiry;
use crate::protocol::headers::format_rfc3339_ms;
use crate::protocol::introspection::through;
use crate::schema::Registry;

/// Everything a details body is made of.
pub struct Facts<'a> {
    pub meta: &'a StreamMeta,
    pub settings: &'a StreamSettings,
    pub stats: &'a StreamStats,
    pub requests: &'a StreamRequests,
    /// Full mode: streams have manifests in an object store.
    pub tiered: bool,
}

fn iso(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(format_rfc3339_ms(ms)))
}

fn dec(n: u64) -> Value {
    Value::String(n.to_string())
}

/// `"0"`-style zero of a byte figure a feature we do not have would report.
fn zero() -> Value {
    dec(0)
}

impl Facts<'_> {
    fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or_default()
    }

    fn profile_kind(&self) -> &'static str {
        self.settings.profile.kind()
    }

    fn registry(&self) -> &Registry {
        &self.settings.registry
    }

    /// Own entries not in a segment yet.
    fn pending_rows(&self) -> u64 {
        let m = self.meta;
        let from = m.tier.sealed_pos.max(m.tier.trimmed_pos).max(m.own_start());
        m.tail.next_pos.saturating_sub(from)
    }

    /// The latest change we know the time of: creation, the newest entry kept in SQLite,
    /// a write (the last access of a stream without a sliding TTL is its last write), a
    /// segment cut or upload.
    fn updated_ms(&self) -> i64 {
        let m = self.meta;
        let last_write = match m.config.expiry {
            Expiry::Ttl(_) => None,
            Expiry::None | Expiry::At(_) => Some(m.tail.last_access_ms),
        };
        [
            Some(m.config.created_at_ms),
            self.stats.last_entry_ms,
            last_write,
            Some(m.tier.last_cut_ms),
            self.stats.last_upload_ms,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(m.config.created_at_ms)
    }

    /// `stream`: the summary Studio shows.
    pub fn summary(&self) -> Value {
        let (m, s) = (self.meta, self.stats);
        json!({
            "name": self.name(),
            "content_type": m.config.content_type,
            "profile": self.profile_kind(),
            "created_at": format_rfc3339_ms(m.config.created_at_ms),
            "updated_at": format_rfc3339_ms(self.updated_ms()),
            "expires_at": expires_at(m),
            "ttl_seconds": ttl_seconds(m),
            "stream_seq": m.tail.stream_seq.as_deref().map(String::from_utf8_lossy),
            "closed": m.tail.closed,
            "epoch": 0,
            "next_offset": m.tail.next_pos.to_string(),
            "sealed_through": through(m.tier.sealed_pos),
            "uploaded_through": through(m.tier.uploaded_pos),
            "segment_count": s.segment_count,
            "uploaded_segment_count": s.uploaded_segment_count,
            "pending_rows": dec(self.pending_rows()),
            "pending_bytes": dec(s.unsealed_bytes),
            "total_size_bytes": dec(m.tail.total_bytes),
            "wal_rows": dec(s.sqlite_rows),
            "wal_bytes": dec(s.sqlite_bytes),
            "last_append_at": iso(s.last_entry_ms),
            "last_segment_cut_at": iso(Some(m.tier.last_cut_ms)),
        })
    }

    /// A routing-key structure in the original's shape. Ours are the per-block key
    /// filters every segment carries from its cut (`filters`), and the key list
    /// (`stream_keys`) that is complete unless the stream was rebuilt from the object
    /// store and not listed yet (`lexicon`). Neither lags behind uploads.
    fn key_structure(&self, configured: bool, complete: bool) -> Value {
        let uploaded = self.stats.uploaded_segment_count;
        let indexed = if complete { uploaded } else { 0 };
        json!({
            "configured": configured,
            "indexed_segment_count": indexed,
            "lag_segments": uploaded - indexed,
            "lag_ms": null,
            "bytes_at_rest": zero(),
            "object_count": 0,
            "active_run_count": 0,
            "retired_run_count": 0,
            "fully_indexed_uploaded_segments": complete,
            "updated_at": null,
        })
    }

    /// The routing-key index (full mode): the uploaded segments its runs cover.
    fn key_index(&self, configured: bool) -> Value {
        let s = self.stats;
        let indexed = s.key_indexed_segments.min(s.uploaded_segment_count);
        json!({
            "configured": configured,
            "indexed_segment_count": indexed,
            "lag_segments": s.uploaded_segment_count - indexed,
            "lag_ms": null,
            "bytes_at_rest": dec(s.key_index_bytes),
            "object_count": s.key_index_runs,
            "active_run_count": s.key_index_runs,
            "retired_run_count": 0,
            "fully_indexed_uploaded_segments": indexed == s.uploaded_segment_count,
            "updated_at": null,
        })
    }

    /// `index_status` (also the whole body of `/_index_status`).
    pub fn index_status(&self) -> Value {
        let (m, s) = (self.meta, self.stats);
        let routing_key = self.registry().routing_key().is_some();
        json!({
            "stream": self.name(),
            "profile": self.profile_kind(),
            "desired_index_plan_generation": 0,
            "segments": {
                "total_count": s.segment_count,
                "uploaded_count": s.uploaded_segment_count,
            },
            "manifest": {
                // A manifest not yet published (a change, or a new stream's first)
                // counts as the next generation, built but not uploaded (the original's
                // meaning of the pair).
                "generation": m.tier.manifest_generation
                    + u64::from(m.manifest_pending(self.tiered)),
                "uploaded_generation": m.tier.manifest_generation,
                "last_uploaded_at": null,
                "last_uploaded_etag": m.tier.manifest_etag,
                "last_uploaded_size_bytes": self.requests.manifest_bytes.map(dec),
            },
            "routing_key_index": self.key_index(routing_key),
            "routing_key_lexicon": self.key_structure(routing_key, m.keys_complete),
            "exact_indexes": [],
            "bundled_companions": {
                "object_count": 0,
                "bytes_at_rest": zero(),
                "fully_indexed_uploaded_segments": s.uploaded_segment_count == 0,
            },
            "search_families": [],
        })
    }

    /// `storage`: bytes at rest in the object store and on local disk. The shared SQLite
    /// figure is `sqlite_shared` (the caller hashes the body without it).
    pub fn storage(&self, sqlite_shared: Value) -> Value {
        let s = self.stats;
        // No manifest before the first publish (always so in local mode); after one, its
        // size is known once this process wrote it.
        let manifest = match self.meta.tier.manifest_generation {
            0 => Some(0),
            _ => self.requests.manifest_bytes,
        };
        let local_total = s.sqlite_bytes + s.pending_sealed_segment_bytes + s.segment_cache_bytes;
        json!({
            "object_storage": {
                "total_bytes": dec(s.uploaded_segment_bytes + manifest.unwrap_or(0)),
                "segments_bytes": dec(s.uploaded_segment_bytes),
                "indexes_bytes": zero(),
                "manifest_and_meta_bytes": manifest.map(dec),
                "manifest_bytes": manifest.map(dec),
                // The registry travels inside the manifest: no object of its own.
                "schema_registry_bytes": zero(),
                "segment_object_count": s.uploaded_segment_count,
                "routing_index_object_count": 0,
                "routing_lexicon_object_count": 0,
                "exact_index_object_count": 0,
                "bundled_companion_object_count": 0,
            },
            "local_storage": {
                "total_bytes": dec(local_total),
                "wal_retained_bytes": dec(s.sqlite_bytes),
                "pending_tail_bytes": dec(s.unsealed_bytes),
                "pending_sealed_segment_bytes": dec(s.pending_sealed_segment_bytes),
                "segment_cache_bytes": dec(s.segment_cache_bytes),
                "routing_index_cache_bytes": zero(),
                "exact_index_cache_bytes": zero(),
                "lexicon_index_cache_bytes": zero(),
                "companion_cache_bytes": zero(),
                "sqlite_shared_total_bytes": sqlite_shared,
            },
            "companion_families": {
                "exact_bytes": zero(),
                "col_bytes": zero(),
                "fts_bytes": zero(),
                "agg_bytes": zero(),
                "mblk_bytes": zero(),
            },
        })
    }

    /// `object_store_requests`: totals and per artifact (decimal strings).
    pub fn requests(&self) -> Value {
        let counts = |c: &OpCounts| {
            json!({
                "puts": dec(c.puts),
                "gets": dec(c.gets),
                "heads": dec(c.heads),
                "lists": dec(c.lists),
                "deletes": dec(c.deletes),
                "reads": dec(c.reads()),
            })
        };
        let mut total = OpCounts::default();
        let mut by_artifact = Vec::new();
        for (artifact, c) in &self.requests.by_artifact {
            total.puts += c.puts;
            total.gets += c.gets;
            total.heads += c.heads;
            total.lists += c.lists;
            total.deletes += c.deletes;
            let mut entry = json!({ "artifact": artifact.label() });
            if let (Some(e), Value::Object(fields)) = (entry.as_object_mut(), counts(c)) {
                e.extend(fields);
            }
            by_artifact.push(entry);
        }
        json!({
            "puts": dec(total.puts),
            "reads": dec(total.reads()),
            "gets": dec(total.gets),
            "heads": dec(total.heads),
            "lists": dec(total.lists),
            "deletes": dec(total.deletes),
            "by_artifact": by_artifact,
        })
    }
}
