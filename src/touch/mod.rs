//! Live-query touch for `state-protocol` streams (issue 13): what a committed change
//! touches, and the in-memory journal clients wait on.
//!
//! Pure parts live here, below the engine: key derivation and argument encodings
//! (`keys`), the keys one change touches for a template (`derive`), the journal
//! (`journal`), which waiting clients make hot (`hot`), and how a batch of changes is
//! processed given the stream's lag and interest (`plan`). The service follows each
//! touch-enabled stream's committed tail and feeds the journal; the HTTP routes are
//! `touch/meta`, `touch/wait` and `touch/templates/activate` (ADR 0008).

pub mod derive;
pub mod hot;
pub mod journal;
pub mod keys;
pub mod plan;
