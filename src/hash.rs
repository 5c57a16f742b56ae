//! Hash maps and sets with a fast, fixed-seed hasher (foldhash, already in the tree through
//! polars). The keys are ids from our own feeds, not attacker-chosen network input, and on the
//! hot paths (interning, reference checks, keys, per-partner rules) SipHash's resistance to
//! chosen keys would cost a noticeable share of the run for nothing. Fixed seeds keep any
//! iteration order the same from run to run.

pub(crate) type State = foldhash::fast::FixedState;
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, State>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, State>;
