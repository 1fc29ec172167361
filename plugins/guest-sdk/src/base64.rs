//! Streaming base64 (RFC 4648, standard alphabet, padded), for embedding artifacts in JSON or
//! form bodies without holding them whole in memory.
//!
//! Some provider APIs only take code inline as a base64 string (AWS Lambda's `ZipFile`). The
//! [`Encoder`] turns the artifact's chunks into base64 chunk by chunk, carrying the 0–2 bytes
//! that do not fill a 3-byte group over to the next chunk, so the output is exactly what
//! encoding the whole input at once would give.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Length of the padded base64 encoding of `n` bytes: `4 * ceil(n / 3)`.
pub const fn encoded_len(n: u64) -> u64 {
    n.div_ceil(3) * 4
}

/// Encodes `input` whole (for small values; stream large ones with [`Encoder`]).
pub fn encode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(usize::try_from(encoded_len(input.len() as u64)).unwrap_or(0));
    let mut encoder = Encoder::new();
    encoder.update(input, &mut out);
    encoder.finish(&mut out);
    // Only ASCII from the alphabet and `=` was written.
    String::from_utf8_lossy(&out).into_owned()
}

/// A streaming encoder: feed chunks with [`update`](Encoder::update), end with
/// [`finish`](Encoder::finish).
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    pending: [u8; 3],
    pending_len: usize,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the base64 of every complete 3-byte group of (carried bytes + `input`) to
    /// `out`, keeping the remainder for the next call.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        // Exact: doubling a large output buffer would cost more memory than the chunk itself.
        out.reserve_exact((self.pending_len + input.len()) / 3 * 4);
        if self.pending_len > 0 {
            let take = (3 - self.pending_len).min(input.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&input[..take]);
            self.pending_len += take;
            input = &input[take..];
            if self.pending_len < 3 {
                return;
            }
            let group = self.pending;
            encode_group(&group, out);
            self.pending_len = 0;
        }
        let mut groups = input.chunks_exact(3);
        for group in &mut groups {
            encode_group(group, out);
        }
        let rest = groups.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Appends the last, padded group (if any bytes are left over).
    pub fn finish(self, out: &mut Vec<u8>) {
        let p = &self.pending;
        match self.pending_len {
            1 => out.extend_from_slice(&[
                ALPHABET[usize::from(p[0] >> 2)],
                ALPHABET[usize::from((p[0] & 0x03) << 4)],
                b'=',
                b'=',
            ]),
            2 => out.extend_from_slice(&[
                ALPHABET[usize::from(p[0] >> 2)],
                ALPHABET[usize::from(((p[0] & 0x03) << 4) | (p[1] >> 4))],
                ALPHABET[usize::from((p[1] & 0x0f) << 2)],
                b'=',
            ]),
            _ => {}
        }
    }
}

fn encode_group(g: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[
        ALPHABET[usize::from(g[0] >> 2)],
        ALPHABET[usize::from(((g[0] & 0x03) << 4) | (g[1] >> 4))],
        ALPHABET[usize::from(((g[1] & 0x0f) << 2) | (g[2] >> 6))],
        ALPHABET[usize::from(g[2] & 0x3f)],
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(input.as_bytes()), want, "{input:?}");
            assert_eq!(encoded_len(input.len() as u64), want.len() as u64);
        }
        assert_eq!(encode(&[0xfb, 0xff, 0xfe]), "+//+");
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        let whole = encode(&data);
        for chunk in [1, 2, 3, 4, 5, 7, 64, 999, 1000, 4096] {
            let mut out = Vec::new();
            let mut encoder = Encoder::new();
            for piece in data.chunks(chunk) {
                encoder.update(piece, &mut out);
            }
            encoder.update(&[], &mut out);
            encoder.finish(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), whole, "chunk {chunk}");
        }
        assert_eq!(whole.len() as u64, encoded_len(1000));
    }
}
