//! Live-query touch for `state-protocol` streams (issue 13): what a committed change
//! touches, and the in-memory journal clients wait on.
//!
//! Pure parts live here, below the engine: key derivation and argument encodings
//! (`keys`), the keys one change touches for a template (`derive`), and the journal
//! (`journal`). The service follows each touch-enabled stream's committed tail and feeds
//! the journal; the HTTP routes are `touch/meta`, `touch/wait` and
//! `touch/templates/activate`.

pub mod journal;
