//! The chain payload: a seeded, reproducible byte stream that is generated chunk by chunk.
//!
//! Why: every hop of a data-transfer chain must send exactly the bytes the producer made, and
//! the receiver must be able to check them, without anyone holding the whole payload (a
//! 256 MiB storage transfer would otherwise sit in memory twice). So the payload is a pure
//! function of `(seed, length)`: SplitMix64 (Steele, Lea & Flood 2014), little-endian, cut at
//! `length`. Any hop can regenerate it in bounded memory and its SHA-256 is known before the
//! first byte is sent. The generator is fast (several GB/s) so it does not dominate a
//! transfer; it is not a cryptographic RNG and does not need to be.

use sha2::{Digest, Sha256};

/// Bytes per generated chunk (also the unit of streamed uploads).
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The payload of one chain request, generated on demand.
#[derive(Debug, Clone)]
pub struct PayloadStream {
    state: u64,
    remaining: u64,
    /// Bytes of the last 8-byte word not yet handed out (a chunk may end mid-word).
    carry: Vec<u8>,
}

impl PayloadStream {
    /// The payload of `length` bytes for `seed`.
    #[must_use]
    pub fn new(seed: u64, length: u64) -> Self {
        Self {
            state: seed,
            remaining: length,
            carry: Vec::new(),
        }
    }

    /// Bytes not yet generated.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    fn next_word(&mut self) -> [u8; 8] {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// The next chunk of at most `max` bytes (at least 1 unless the payload is exhausted);
    /// `None` once every byte was handed out. Chunk boundaries do not change the bytes.
    pub fn next_chunk(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.remaining == 0 || max == 0 {
            return None;
        }
        let want = usize::try_from(self.remaining).map_or(max, |r| r.min(max));
        let mut out = Vec::with_capacity(want);
        let from_carry = self.carry.len().min(want);
        out.extend(self.carry.drain(..from_carry));
        while out.len() + 8 <= want {
            let word = self.next_word();
            out.extend_from_slice(&word);
        }
        if out.len() < want {
            let word = self.next_word();
            let take = want - out.len();
            out.extend_from_slice(&word[..take]);
            self.carry.extend_from_slice(&word[take..]);
        }
        self.remaining -= want as u64;
        Some(out)
    }
}

impl Iterator for PayloadStream {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.next_chunk(CHUNK_BYTES)
    }
}

/// SHA-256 (lower-case hex) of the payload for `seed` and `length`, in bounded memory.
#[must_use]
pub fn sha256_hex(seed: u64, length: u64) -> String {
    let mut hasher = Sha256::new();
    for chunk in PayloadStream::new(seed, length) {
        hasher.update(&chunk);
    }
    hex::encode(hasher.finalize())
}

/// A seed derived from a request id (FNV-1a, 64 bit), so a request without an explicit
/// `PayloadSeed` still gets a reproducible payload.
#[must_use]
pub fn seed_from_request_id(request_id: &str) -> u64 {
    request_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(seed: u64, len: u64, chunk: usize) -> Vec<u8> {
        let mut s = PayloadStream::new(seed, len);
        let mut out = Vec::new();
        while let Some(c) = s.next_chunk(chunk) {
            assert!(!c.is_empty() && c.len() <= chunk);
            out.extend(c);
        }
        out
    }

    #[test]
    fn length_is_exact_and_chunking_does_not_change_bytes() {
        for len in [0_u64, 1, 7, 8, 9, 1000, 65_537] {
            let a = collect(42, len, 8);
            assert_eq!(a.len() as u64, len);
            for chunk in [1, 3, 13, 4096, CHUNK_BYTES] {
                assert_eq!(collect(42, len, chunk), a, "len {len} chunk {chunk}");
            }
        }
    }

    #[test]
    fn seeds_give_different_payloads_and_hashes_match_the_bytes() {
        let a = collect(1, 4096, 100);
        let b = collect(2, 4096, 100);
        assert_ne!(a, b);
        assert_eq!(sha256_hex(1, 4096), hex::encode(Sha256::digest(&a)));
        assert_ne!(sha256_hex(1, 4096), sha256_hex(2, 4096));
        // A prefix of a longer payload is the shorter payload.
        assert_eq!(collect(1, 100, 7), a[..100]);
    }

    #[test]
    fn splitmix64_known_answer() {
        // First output of SplitMix64 seeded with 0 (reference implementation by Vigna).
        let first = PayloadStream::new(0, 8).next_chunk(8).unwrap();
        assert_eq!(
            u64::from_le_bytes(first.try_into().unwrap()),
            0xE220_A839_7B1D_CDAF
        );
    }

    #[test]
    fn request_id_seed_is_stable() {
        assert_eq!(seed_from_request_id(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(seed_from_request_id("a"), seed_from_request_id("b"));
    }
}
