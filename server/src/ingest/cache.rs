//! The ingest cache: the 128-bit hash of a series' raw label bytes, as a
//! client sent them, to the shard and series id the cluster gave it.
//!
//! A series seen before costs one look-up here: its labels are not parsed,
//! sorted, validated, hashed for sharding or sent again; the Raft entry
//! names it by id. The key is xxh3-128 of the raw bytes, so two label sets
//! would have to collide in 128 bits to be confused (about 1.5e-21 for a
//! billion distinct label encodings). Different encodings of one series
//! (other label order, an empty label) are separate keys for the same id.
//!
//! Ids are stable for a shard's life on every replica (the shard assigns
//! them in log order and never reuses one); an id the shard no longer knows
//! (the series left by retention) comes back as unknown, the entry is
//! dropped and the series is resent with labels.
//!
//! Memory is bounded: each of 64 stripes keeps two generations; when the
//! current one is full it becomes the old one and the old one is dropped,
//! and a hit in the old generation moves the entry to the current one. So
//! series that keep sending stay, and series that stopped leave after two
//! turns. An entry takes about 40 bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;

const STRIPES: usize = 64;

/// Where a series lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    /// Its shard.
    pub shard: u32,
    /// Its id in the shard (ids start at 1).
    pub id: u64,
}

/// Keys are hashes already: the low 64 bits are the bucket hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

type Map = HashMap<u128, Cached, BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct Stripe {
    cur: Map,
    old: Map,
}

/// The cache (shared by every ingest request of a node).
pub struct IngestCache {
    stripes: Box<[Mutex<Stripe>]>,
    per_stripe: usize,
}

impl IngestCache {
    /// A cache keeping up to about `capacity` series (at most twice that
    /// while generations turn).
    pub fn new(capacity: usize) -> Self {
        IngestCache {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            per_stripe: (capacity / STRIPES).max(16),
        }
    }

    #[inline]
    fn stripe(&self, key: u128) -> &Mutex<Stripe> {
        // the top bits: the map uses the low ones
        &self.stripes[(key >> 122) as usize % STRIPES]
    }

    /// The series with this raw-labels hash, if known.
    #[inline]
    pub fn get(&self, key: u128) -> Option<Cached> {
        let mut s = self.stripe(key).lock();
        if let Some(c) = s.cur.get(&key) {
            return Some(*c);
        }
        let c = s.old.remove(&key)?;
        self.put(&mut s, key, c);
        Some(c)
    }

    /// Remembers where a series lives.
    pub fn insert(&self, key: u128, c: Cached) {
        let mut s = self.stripe(key).lock();
        self.put(&mut s, key, c);
    }

    fn put(&self, s: &mut Stripe, key: u128, c: Cached) {
        if s.cur.len() >= self.per_stripe && !s.cur.contains_key(&key) {
            s.old = std::mem::take(&mut s.cur);
            s.cur.reserve(self.per_stripe.min(1 << 16));
        }
        s.cur.insert(key, c);
    }

    /// Forgets a series (its id is not known by its shard any more).
    pub fn remove(&self, key: u128) {
        let mut s = self.stripe(key).lock();
        s.cur.remove(&key);
        s.old.remove(&key);
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.stripes
            .iter()
            .map(|s| {
                let s = s.lock();
                s.cur.len() + s.old.len()
            })
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_and_bounded_generations() {
        let c = IngestCache::new(64 * 16); // 16 per stripe
        let at = |i: u64| Cached { shard: 1, id: i };
        let key =
            |i: u64| (u128::from(i) << 64 | u128::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for i in 1..=5000 {
            c.insert(key(i), at(i));
        }
        // bounded: at most two generations of 16 per stripe
        assert!(c.len() <= 64 * 32, "{}", c.len());
        // the newest entries are there, with their own values
        assert_eq!(c.get(key(5000)), Some(at(5000)));
        assert_eq!(c.get(key(1)), None);
        c.remove(key(5000));
        assert_eq!(c.get(key(5000)), None);
        // an entry kept alive by hits survives many turns
        let k = key(9_999_999);
        c.insert(k, at(7));
        for i in 10_000..20_000 {
            c.insert(key(i), at(i));
            assert_eq!(c.get(k), Some(at(7)), "lost after {i}");
        }
    }
}
