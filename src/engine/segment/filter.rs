//! The per-block routing-key filter of segment format version 2: a Bloom filter of the
//! block's keys in the block's filter slot, so that a keyed read skips a block that cannot
//! hold its key without decompressing it (no false negatives; false positives only cost
//! a decompression).
//!
//! ```text
//! filter := u8 k  bits[m/8]     (empty when no record of the block has a key)
//! ```
//!
//! `m` is about 10 bits per distinct key (at least 256, at most 65,536); bit `i` of key `x`
//! is `(h1 + i·h2) mod m` for `i < k`, with `h1`, `h2` the two halves of XXH3-128 of `x`.

const HASHES: u8 = 4;
const MIN_BITS: usize = 256;
const MAX_BITS: usize = 65_536;

fn probes(key: &[u8], k: u8, m: usize) -> impl Iterator<Item = usize> {
    let h = xxhash_rust::xxh3::xxh3_128(key);
    let (h1, h2) = (h as u64, ((h >> 64) as u64) | 1);
    (0..k as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m as u64) as usize)
}

/// The filter of a block with these keys (an empty filter when there is none).
pub fn build<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut keys: Vec<&[u8]> = keys.collect();
    if keys.is_empty() {
        return Vec::new();
    }
    keys.sort_unstable();
    keys.dedup();
    let m = (keys.len() * 10)
        .clamp(MIN_BITS, MAX_BITS)
        .next_multiple_of(64);
    let mut out = vec![0u8; 1 + m / 8];
    out[0] = HASHES;
    for key in keys {
        for bit in probes(key, HASHES, m) {
            out[1 + bit / 8] |= 1 << (bit % 8);
        }
    }
    out
}

/// Whether a block with this filter may hold `key` (false: it certainly does not).
pub fn might_contain(filter: &[u8], key: &[u8]) -> bool {
    let Some((&k, bits)) = filter.split_first() else {
        return false;
    };
    let m = bits.len() * 8;
    if m == 0 || k == 0 {
        return false;
    }
    probes(key, k, m).all(|bit| bits[bit / 8] & (1 << (bit % 8)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key-{i}").into_bytes()).collect();
        let f = build(keys.iter().map(Vec::as_slice));
        assert!(keys.iter().all(|k| might_contain(&f, k)));
        let fp = (0..10_000)
            .filter(|i| might_contain(&f, format!("other-{i}").as_bytes()))
            .count();
        assert!(fp < 500, "{fp} false positives in 10,000");
        assert!(!might_contain(&build(std::iter::empty()), b"x"));
        assert!(might_contain(&build([&b""[..]].into_iter()), b""));
    }
}
