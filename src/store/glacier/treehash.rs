//! The SHA-256 tree hash Amazon Glacier checks every upload and download
//! with.
//!
//! The payload is cut into 1 MiB leaves, each hashed with SHA-256; pairs of
//! digests (raw 32 bytes each, not hex) are hashed together level by level,
//! and a digest left without a partner is carried up unchanged. A payload of
//! at most 1 MiB (and the empty payload) has the plain SHA-256 as its tree
//! hash. Because Glacier's part sizes are powers of two in MiB, a part's tree
//! hash is a node of the whole archive's tree, so the archive's hash is the
//! same reduction over the parts' hashes: [`combine`] needs no second pass
//! over the data.

use sha2::{Digest, Sha256};

/// Leaf size: 1 MiB.
pub const LEAF: u64 = 1 << 20;

pub type Hash = [u8; 32];

/// Incremental tree hash: feed bytes in order, then [`TreeHasher::finish`].
/// Keeps the leaves' digests (32 bytes per MiB: 1.25 MiB for 40 TiB).
#[derive(Clone, Default)]
pub struct TreeHasher {
    leaves: Vec<Hash>,
    current: Sha256,
    in_current: u64,
}

impl TreeHasher {
    pub fn new() -> TreeHasher {
        TreeHasher::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (LEAF - self.in_current) as usize;
            let take = room.min(data.len());
            self.current.update(&data[..take]);
            self.in_current += take as u64;
            data = &data[take..];
            if self.in_current == LEAF {
                self.leaves.push(std::mem::take(&mut self.current).finalize().into());
                self.in_current = 0;
            }
        }
    }

    pub fn finish(mut self) -> Hash {
        if self.in_current > 0 || self.leaves.is_empty() {
            self.leaves.push(self.current.finalize().into());
        }
        combine(&self.leaves)
    }
}

/// The tree hash of `data`.
pub fn tree_hash(data: &[u8]) -> Hash {
    let mut hasher = TreeHasher::new();
    hasher.update(data);
    hasher.finish()
}

/// Reduces digests (leaves, or the tree hashes of power-of-two-MiB parts in
/// order) to their root. The empty list gives the empty payload's hash.
pub fn combine(nodes: &[Hash]) -> Hash {
    if nodes.is_empty() {
        return Sha256::digest(b"").into();
    }
    let mut level = nodes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut h = Sha256::new();
                    h.update(left);
                    h.update(right);
                    h.finalize().into()
                }
                [single] => *single,
                _ => unreachable!("chunks(2)"),
            })
            .collect();
    }
    level[0]
}

pub fn to_hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(text: &str) -> Option<Hash> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Whether `start..end` of an object of `size` bytes is one node of its
/// tree, so that Glacier sends the range's tree hash with it: it starts at a
/// multiple of `2^k` MiB and spans `2^k` MiB, or runs to the object's end.
pub fn is_aligned(start: u64, end: u64, size: u64) -> bool {
    if start >= end || end > size || !start.is_multiple_of(LEAF) {
        return false;
    }
    let mut span = LEAF;
    loop {
        if !start.is_multiple_of(span) {
            return false;
        }
        if end == (start + span).min(size) {
            return true;
        }
        if start + span >= size {
            return false;
        }
        span *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        to_hex(&tree_hash(data))
    }

    #[test]
    fn public_vectors() {
        assert_eq!(hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(
            hex(b"this is a test file that will be uploaded to glacier.\n"),
            "2af02ea61585d13604b26ae314a99fc8e972d1f11daba655a68681843cfced9f"
        );
        assert_eq!(
            hex(b"Nobody inspects the spammish repetition"),
            "031edd7d41651593c5fe5c006fa5752b37fddff7bc4e843aa6af0c950f4b9406"
        );
        // aws-sdk-go's vector: 5.5 MiB of ASCII '0'.
        assert_eq!(hex(&vec![b'0'; 5_767_168]), "154e26c78fd74d0c2c9b3cc4644191619dc4f2cd539ae2a74d5fd07957a3ee6a");
        // smithy-rs's vector: "01245678912" repeated until past 101 MiB + 500.
        let mut big = Vec::with_capacity(106_000_000);
        while big.len() < 101 * 1024 * 1024 + 500 {
            big.extend_from_slice(b"01245678912");
        }
        assert_eq!(big.len(), 105_906_680);
        assert_eq!(hex(&big), "3d417484359fc9f5a3bafd576dc47b8b2de2bf2d4fdac5aa2aff768f2210d386");
    }

    #[test]
    fn worked_example_and_part_combination() {
        let mut data = vec![b'A'; LEAF as usize];
        data.extend(vec![b'B'; LEAF as usize]);
        data.extend(vec![b'C'; 10]);
        assert_eq!(hex(&data), "7f7e768a900d3b1f40b5dfb5a98ba2745d7be2ac3033f369f684c7c5f1e8abd6");
        // Parts of 2 MiB: the parts' hashes combine to the same root.
        let parts: Vec<Hash> = data.chunks(2 * LEAF as usize).map(tree_hash).collect();
        assert_eq!(to_hex(&combine(&parts)), hex(&data));
    }

    #[test]
    fn power_of_two_parts_combine_to_the_whole_hash_and_others_do_not() {
        // Pseudo-random 29 MiB + 777 bytes.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..29 * LEAF as usize + 777)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let whole = tree_hash(&data);
        for part in [1, 2, 4, 8] {
            let parts: Vec<Hash> = data.chunks(part * LEAF as usize).map(tree_hash).collect();
            assert_eq!(combine(&parts), whole, "{part} MiB parts");
        }
        let parts: Vec<Hash> = data.chunks(3 * LEAF as usize).map(tree_hash).collect();
        assert_ne!(combine(&parts), whole, "3 MiB parts are not subtrees");
        // Fed in odd pieces, the incremental hasher agrees.
        let mut hasher = TreeHasher::new();
        for piece in data.chunks(333_333) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), whole);
    }

    #[test]
    fn hex_round_trip() {
        let h = tree_hash(b"abc");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn alignment() {
        const M: u64 = LEAF;
        let size = 29 * M + 777;
        assert!(is_aligned(0, size, size));
        assert!(is_aligned(0, M, size));
        assert!(is_aligned(8 * M, 16 * M, size));
        assert!(is_aligned(16 * M, size, size)); // 16 MiB node truncated by the end
        assert!(is_aligned(28 * M, size, size));
        assert!(!is_aligned(4 * M, 12 * M, size)); // 8 MiB not starting at a multiple of 8 MiB
        assert!(!is_aligned(0, 3 * M, size));
        assert!(!is_aligned(100, M, size));
        assert!(!is_aligned(0, size + 1, size));
        assert!(is_aligned(0, 10, 10));
    }
}
