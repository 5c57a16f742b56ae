//! Text held once for the whole process, behind a 4-byte handle.
//!
//! A year of transactions is tens of millions of rows whose partner, customer, product,
//! family and currency ids repeat, and whose own ids are short. As `String`s (or `Arc<str>`s)
//! every field costs a 16 to 24-byte pointer and often an allocation. A [`Text`] is a `u32`
//! naming a string stored once in an append-only arena; it dereferences to `&'static str`.
//!
//! Nothing is ever freed: a process runs one date's batch and its strings are that run's own
//! data. Repeated values are interned ([`Text::new`], one copy each); values known to be new
//! (a transaction's own id) skip the lookup ([`Text::fresh`]). Equality, order and hashing are
//! those of the string, so an interned and a fresh handle to equal strings compare equal.

use std::hash::{BuildHasher, Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// A string held for the life of the process (see the module docs).
#[derive(Clone, Copy)]
pub struct Text(NonZeroU32);

/// Handles per segment of the table of strings.
const SEGMENT: usize = 1 << 16;
/// Bytes per arena chunk (a longer string gets a chunk of its own).
const CHUNK: usize = 1 << 20;
const SHARDS: usize = 64;

type Segment = Box<[Slot]>;

/// Where a handle's string is, in 8 bytes (an `OnceLock<&str>` takes 24, and a year of
/// transaction ids is tens of millions of handles: 16 bytes saved on each). The string's
/// address is in the low [`ADDRESS_BITS`] bits and its length above them; a string of [`LONG`]
/// bytes or more is reached through a leaked `&'static str` instead, its length bits all ones.
/// 0: the handle was not handed out.
struct Slot(AtomicU64);

/// User-space addresses fit in 48 bits on the 64-bit targets Linux runs (x86-64, AArch64).
const ADDRESS_BITS: u32 = 48;
const LONG: u64 = (1 << (64 - ADDRESS_BITS)) - 1;

impl Slot {
    fn set(&self, s: &'static str) {
        let address = s.as_ptr() as usize as u64;
        let packed = if s.len() < LONG as usize && address >> ADDRESS_BITS == 0 {
            address | (s.len() as u64) << ADDRESS_BITS
        } else {
            let long: &'static &'static str = Box::leak(Box::new(s));
            let address = long as *const &'static str as usize as u64;
            assert!(address >> ADDRESS_BITS == 0, "heap addresses fit in {ADDRESS_BITS} bits");
            address | LONG << ADDRESS_BITS
        };
        self.0
            .compare_exchange(0, packed, Ordering::Release, Ordering::Relaxed)
            .expect("each handle is handed out once");
    }

    fn get(&self) -> Option<&'static str> {
        let packed = self.0.load(Ordering::Acquire);
        let (address, len) = (packed & ((1 << ADDRESS_BITS) - 1), packed >> ADDRESS_BITS);
        if packed == 0 {
            None
        } else if len == LONG {
            // SAFETY: `set` stored the address of a leaked `&'static str` (never freed); the
            // Release store and this Acquire load order its write before this read.
            #[allow(unsafe_code)]
            Some(unsafe { *(address as usize as *const &'static str) })
        } else {
            // SAFETY: `set` stored the address and length of a `&'static str` (arena chunks
            // are leaked, never freed or written again), so the bytes are valid UTF-8 for the
            // life of the process; the Release store and this Acquire load order them.
            #[allow(unsafe_code)]
            Some(unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                    address as usize as *const u8,
                    len as usize,
                ))
            })
        }
    }
}

/// The handle -> string table: segments allocated as handles are handed out.
static SEGMENTS: [OnceLock<Segment>; SEGMENT] = [const { OnceLock::new() }; SEGMENT];
/// The last handle handed out.
static LAST: AtomicU32 = AtomicU32::new(0);

/// One shard of the interning table, with the free tail of its arena chunk.
struct Shard {
    /// Interned strings, found by the hash that also picked the shard (hashed once).
    interned: hashbrown::HashTable<(&'static str, Text)>,
    free: &'static mut [u8],
}

fn shards() -> &'static [Mutex<Shard>] {
    static SHARDS_: OnceLock<Vec<Mutex<Shard>>> = OnceLock::new();
    SHARDS_.get_or_init(|| {
        (0..SHARDS).map(|_| Mutex::new(Shard { interned: Default::default(), free: &mut [] })).collect()
    })
}

impl Shard {
    /// Copies `s` into the arena.
    fn store(&mut self, s: &str) -> &'static str {
        if s.len() > self.free.len() {
            self.free = Box::leak(vec![0u8; CHUNK.max(s.len())].into_boxed_slice());
        }
        let (bytes, rest) = std::mem::take(&mut self.free).split_at_mut(s.len());
        bytes.copy_from_slice(s.as_bytes());
        self.free = rest;
        let bytes: &'static [u8] = bytes;
        std::str::from_utf8(bytes).expect("copied from a str")
    }

    /// A new handle to the stored `s`.
    fn hand_out(s: &'static str) -> Text {
        let id =
            LAST.fetch_add(1, Ordering::Relaxed).checked_add(1).expect("fewer than 2^32 - 1 distinct texts");
        let (segment, slot) = (id as usize / SEGMENT, id as usize % SEGMENT);
        let table = SEGMENTS[segment].get_or_init(|| (0..SEGMENT).map(|_| Slot(AtomicU64::new(0))).collect());
        table[slot].set(s);
        Text(NonZeroU32::new(id).expect("ids start at 1"))
    }
}

/// The hash of `s` and its shard. The shard comes from bits 32 to 37, which the table inside
/// it uses for neither the bucket (low bits) nor the tag (top 7 bits).
fn shard_of(s: &str) -> (u64, &'static Mutex<Shard>) {
    let h = hash_of(s);
    (h, &shards()[(h >> 32) as usize % SHARDS])
}

fn hash_of(s: &str) -> u64 {
    crate::hash::State::default().hash_one(s)
}

impl Text {
    /// The handle of `s`: the same one every time for equal strings.
    pub fn new(s: &str) -> Text {
        let (h, shard) = shard_of(s);
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(_, t)) = shard.interned.find(h, |(k, _)| *k == s) {
            return t;
        }
        let stored = shard.store(s);
        let t = Shard::hand_out(stored);
        shard.interned.insert_unique(h, (stored, t), |(k, _)| hash_of(k));
        t
    }

    /// A handle to a copy of `s`, without looking for an equal string already held (for
    /// values that are almost always new, such as a transaction's own id).
    pub(crate) fn fresh(s: &str) -> Text {
        let stored = shard_of(s).1.lock().unwrap_or_else(|e| e.into_inner()).store(s);
        Shard::hand_out(stored)
    }

    /// The handle's number. Equal numbers are equal strings, not conversely (a fresh copy has
    /// a number of its own): a cache of lookups by string may be keyed by it, and then never
    /// needs to read the string again.
    pub fn handle(self) -> u32 {
        self.0.get()
    }

    /// The handle numbered `n` ([`Text::handle`]), if one was handed out.
    pub(crate) fn from_handle(n: u32) -> Option<Text> {
        let id = n as usize;
        let stored = SEGMENTS.get(id / SEGMENT)?.get().and_then(|t| t[id % SEGMENT].get()).is_some();
        stored.then_some(()).and(NonZeroU32::new(n)).map(Text)
    }

    pub fn as_str(self) -> &'static str {
        let id = self.0.get() as usize;
        SEGMENTS[id / SEGMENT].get().and_then(|t| t[id % SEGMENT].get()).expect("a handed-out handle")
    }
}

/// Reads the strings of `texts` so that they are in the CPU's caches for a loop that follows.
///
/// Reading a string through its handle is a load of its slot, then of its bytes, each usually
/// a cache miss when the strings are many (a year's transaction ids). In a loop this short the
/// CPU runs ahead and the misses of many strings overlap; in a long one (hashing an id) it
/// cannot, and each string costs two misses in turn.
pub(crate) fn warm(texts: impl Iterator<Item = Text>) {
    let mut seen = 0u8;
    for t in texts {
        let s = t.as_str().as_bytes();
        // A string may straddle two cache lines: its first and last byte load both.
        seen ^= s.first().copied().unwrap_or(0) ^ s.last().copied().unwrap_or(0);
    }
    std::hint::black_box(seen);
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(&s)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.0 == other.0 || self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_are_equal_handles_whether_interned_or_fresh() {
        let a = Text::new("P-0001");
        let b = Text::new("P-0001");
        let c = Text::fresh("P-0001");
        assert_eq!(a.0, b.0, "interned once");
        assert_ne!(a.0, c.0, "a fresh copy has its own handle");
        assert_eq!(a, c);
        assert_eq!(&*c, "P-0001");
        let h = |t: Text| crate::hash::State::default().hash_one(t);
        assert_eq!(h(a), h(c), "hashing is the string's");
        assert!(Text::new("A") < Text::fresh("B"));
        assert_eq!(Text::new(""), Text::fresh(""));
    }

    #[test]
    fn strings_of_every_length_class_read_back() {
        // Around the longest length packed beside the address, and the empty string.
        for len in [0, 1, LONG as usize - 1, LONG as usize, LONG as usize + 1, 3 * LONG as usize] {
            let s: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let (a, b) = (Text::new(&s), Text::fresh(&s));
            assert_eq!((a.as_str(), b.as_str()), (s.as_str(), s.as_str()), "length {len}");
            assert_eq!(Text::from_handle(b.handle()).map(Text::as_str), Some(s.as_str()));
        }
        assert!(Text::from_handle(u32::MAX).is_none(), "not handed out");
    }

    #[test]
    fn texts_from_many_threads_and_longer_than_a_chunk_survive() {
        let long = "x".repeat(CHUNK + 3);
        let handles: Vec<(String, Text)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|t| {
                    s.spawn(move || {
                        (0..5000)
                            .map(|i| {
                                let v = format!("T{t}-{i}");
                                let h = if i % 2 == 0 { Text::new(&v) } else { Text::fresh(&v) };
                                (v, h)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        for (v, h) in &handles {
            assert_eq!(h.as_str(), v);
        }
        assert_eq!(Text::fresh(&long).len(), CHUNK + 3);
        assert_eq!(Text::new(&long).as_str(), long);
    }
}
