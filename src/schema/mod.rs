//! The per-stream schema registry (`/v1/stream/{name}/_schema`), as a pure module.
//!
//! A JSON stream can carry a registry: a sequence of JSON Schema versions, the stream
//! position where each took effect (boundaries), the lenses between consecutive versions,
//! an optional routing key (a JSON pointer into each record) and an optional search
//! configuration. Appends are validated against the current version's schema; `format=json`
//! reads promote older records through the lenses ([`crate::lens`]).
//!
//! - [`Registry`]: the 0.1.11 document (`apiVersion`, `schema`, `currentVersion`,
//!   `routingKey`?, `search`?, `boundaries`, `schemas`, `lenses`); the strict loader
//!   ([`Registry::parse`]) and the one that also opens 0.1.0–0.1.2 registries with an
//!   `interpreter` key ([`Registry::parse_legacy`]); serialization with schemas, search and
//!   lenses verbatim ([`Registry::to_json`]); [`Registry::version_at`];
//!   [`Registry::promote`].
//! - [`apply_update`]: the `POST /_schema` rules (strict key set, routing key, search,
//!   dispatch, first install, version steps with lens, proof and default filling) with the
//!   original's messages and statuses ([`SchemaError`]).
//! - [`CompiledSchema`] and [`SchemaCache`]: JSON Schema validation of appended records
//!   (draft-07, all errors, `format: "date-time"` enforced, other formats ignored).
//!
//! Nothing here does I/O: the storage and HTTP layers load and persist the registry JSON,
//! pass the stream's next offset, and supply the search-config validator.
//!
//! Sources: `prisma-0.1.11-and-prisma-dev.md` §2 (the 0.1.11 behaviour, which wins) and
//! `prisma-local-schemas-live.md` §3; the original's `src/schema/registry.ts`,
//! `src/schema/read_json.ts` and the `_schema` route in `src/app_core.ts` (0.1.11); the
//! tests `schema_registry`, `schema_evolution`, `assumptions` and `http_behavior`.
//! Deliberate differences: an earlier routing key survives the first install (see
//! [`apply_update`]); the loader also reads legacy registries; the stored `search` is kept
//! as posted rather than re-serialized in a normalized order (so `@prisma/dev`'s
//! compare-then-install check keeps passing); JSON Schema error texts are Ajv-like, not
//! identical.

mod registry;
mod update;
mod validate;

pub use registry::{Boundary, Registry, RoutingKey, REGISTRY_API_VERSION};
pub use update::{apply_update, SchemaError, MAX_SAFE_INTEGER};
pub use validate::{ensure_no_ref, CompiledSchema, SchemaCache, REF_NOT_SUPPORTED};

#[cfg(test)]
mod tests;
