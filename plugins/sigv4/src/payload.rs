//! The payload hash: lower-case hex SHA-256 of the request body.
//!
//! SigV4 binds the body into the signature through its hash, so the signer only ever needs
//! the hash, never the body. [`PayloadHasher`] lets an adapter hash a body it streams in
//! chunks without holding it in memory twice.

use sha2::{Digest, Sha256};

/// The payload hash of an empty body (`GET`, or `POST` without content).
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Incremental payload hash for streamed bodies: feed every chunk to [`update`](Self::update)
/// in order, then [`finish_hex`](Self::finish_hex) equals [`sha256_hex`] of the concatenation.
#[derive(Clone, Default)]
pub struct PayloadHasher {
    hasher: Sha256,
}

impl PayloadHasher {
    /// A hasher that has seen no bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes` to the hashed body.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// The lower-case hex SHA-256 of everything passed to [`update`](Self::update).
    pub fn finish_hex(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl std::fmt::Debug for PayloadHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadHasher").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::{EMPTY_PAYLOAD_SHA256, PayloadHasher, sha256_hex};
    use proptest::prelude::*;

    #[test]
    fn known_digests() {
        assert_eq!(sha256_hex(b""), EMPTY_PAYLOAD_SHA256);
        // The body of the suite's post-x-www-form-urlencoded case and the hash its .creq shows.
        assert_eq!(
            sha256_hex(b"Param1=value1"),
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        );
    }

    #[test]
    fn a_fresh_hasher_hashes_the_empty_body() {
        assert_eq!(PayloadHasher::new().finish_hex(), EMPTY_PAYLOAD_SHA256);
    }

    proptest! {
        #[test]
        fn chunked_hashing_equals_one_shot(body in proptest::collection::vec(any::<u8>(), 0..2048), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut hasher = PayloadHasher::new();
            let mut rest: &[u8] = &body;
            for cut in cuts {
                let (chunk, tail) = rest.split_at(cut % (rest.len() + 1));
                hasher.update(chunk);
                rest = tail;
            }
            hasher.update(rest);
            prop_assert_eq!(hasher.finish_hex(), sha256_hex(&body));
        }
    }
}
