//! Lenses: declarative, versioned transforms of JSON records (`durable.lens/v1`).
//!
//! A stream with a schema registry (see [`crate::schema`]) stores each record as it was
//! appended, under the schema version current at the time. When the schema moves from
//! version N to N+1, the client posts a lens N→N+1; reads then promote older records
//! through the chain of lenses up to the current version. This module is pure (no I/O):
//!
//! - [`pointer`]: RFC 6901 JSON pointers (parse, format, get, set, delete).
//! - [`Lens::from_value`]: validation of the lens document, as strict as the original's
//!   embedded JSON Schema (`src/schema/lens_schema.ts`): `apiVersion`, `schema`,
//!   `from`/`to`, optional `description`, `ops` (≥ 1), every op's fields, pointer syntax,
//!   no extra properties. Errors start with `invalid lens: `.
//! - [`Lens::apply`] and [`promote`]: the runtime (spec §3.6; `src/lens/lens.ts`). Ops:
//!   `rename`, `copy`, `add`, `remove`, `hoist`, `plunge`, `wrap`, `head`, `convert`
//!   (a lookup `map` with optional `default`, or a `builtin`: `lowercase`, `uppercase`,
//!   `string_to_int`, `int_to_string`, `rfc3339_to_unix_millis`, `unix_millis_to_rfc3339`),
//!   `in` and `map`. Strict: missing inputs are errors, with the original's messages.
//!   Conversions follow JS (`String(v)` for map keys, `parseInt`, `Date`; see `js.rs`).
//! - [`prove`]: the install-time proof that a lens maps every document valid under the old
//!   schema to one valid under the new (spec §3.7; `src/schema/proof.ts`).
//! - [`fill_defaults`]: the stored form of a lens, with every `add` given a default
//!   derived from the new schema (spec §3.8).
//!
//! Sources: `prisma-local-schemas-live.md` §3.6–3.9 and the original's `src/lens/lens.ts`,
//! `src/schema/proof.ts`, `src/schema/lens_schema.ts`, `src/util/json_pointer.ts`
//! (unchanged between 0.1.0 and 0.1.11). Deliberate differences, all at the edges:
//! values are copied rather than shared between two places of a document; array segments
//! must be decimal digits; `unix_millis_to_rfc3339` out of JS `Date` range is an error
//! instead of an uncaught exception; date-times without an offset are read as UTC.

pub(crate) mod js;
pub mod pointer;
mod proof;
mod runtime;
mod spec;

pub use proof::{fill_defaults, prove};
pub use runtime::promote;
pub use spec::{JsonType, Lens, Op, Transform, LENS_API_VERSION};

/// The original's JSON Schema `format: "date-time"` check (used by [`crate::schema`] for
/// appended records; it shares the JS-compatible date parser with the lens builtins).
pub use js::is_date_time;

#[cfg(test)]
mod tests;
