//! SigV4's percent-encoding and the canonical forms of the request path and query.
//!
//! SigV4 signs a re-encoded copy of the URI, not the bytes on the wire, and the rules differ
//! from every general-purpose URL encoder (`~` is kept, `+` and `*` are escaped, hex digits
//! are upper case). Getting any byte wrong yields a 403 that looks exactly like a bad key, so
//! the rules live here, small and separately tested.
//!
//! # Paths: why one encoding pass is both "single" and "double" encoding
//!
//! AWS documents that, for every service except S3, each path segment is URI-encoded *twice*.
//! The first pass is the one that makes the path fit in a request line; the caller has already
//! done it (a Lambda ARN travels as `arn%3Aaws%3A...`). [`canonical_uri`] therefore applies
//! exactly one more pass to the path as sent, so `%3A` becomes `%253A`. The official SigV4 test
//! suite writes its request lines with unencoded paths (`GET /example space/`) and expects a
//! single pass (`/example%20space/`): that is the same rule applied to a different input, so
//! one implementation satisfies both the suite and real services (verified against the
//! published `double-url-encode` Lambda vector in the tests).
//!
//! Also as for non-S3 services, the path is normalised first: empty and `.` segments are
//! dropped and `..` removes the previous segment (the suite's `get-slashes`, `get-relative`,
//! `get-slash-pointless-dot` cases). S3 wants neither normalisation nor the extra pass; this
//! signer does not target S3.

/// Percent-encodes `input` the SigV4 way: the unreserved characters `A-Z a-z 0-9 - _ . ~` are
/// kept, every other byte of the UTF-8 encoding becomes `%XX` with upper-case hex. `/` is kept
/// when `encode_slash` is false (paths) and escaped when it is true (query names and values).
pub fn uri_encode(input: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    encode_bytes_into(input.as_bytes(), encode_slash, &mut out);
    out
}

/// [`uri_encode`] over raw bytes, which need not be UTF-8 (a percent-decoded query may not be).
pub(crate) fn encode_bytes_into(input: &[u8], encode_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in input {
        if is_unreserved(byte) || (byte == b'/' && !encode_slash) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// Decodes every well-formed `%XX` escape; anything else (a lone `%`, `%zz`, `+`) is kept as
/// the literal byte, which the re-encoding pass then escapes. Never fails.
pub(crate) fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'%'), Some(&hi), Some(&lo)) => hex_value(hi).zip(hex_value(lo)),
            _ => None,
        };
        match escaped {
            Some((hi, lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            None => {
                if let Some(&byte) = bytes.get(i) {
                    out.push(byte);
                }
                i += 1;
            }
        }
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The canonical URI of a path as sent: normalised, then each segment encoded once more with
/// [`uri_encode`]. An empty path is `/`; the result always starts with `/` and keeps a
/// trailing `/` when the normalised path has one.
///
/// Normalisation drops empty and `.` segments and lets `..` remove the previous one. The extra
/// encoding pass is AWS's "double encoding" for non-S3 services: the caller's path is already
/// encoded once (`arn%3Aaws`), so it becomes `arn%253Aaws`. The official test suite writes
/// unencoded paths (`/example space/`) and expects one pass (`/example%20space/`), which is the
/// same rule applied to a raw path. S3 wants neither step; this signer does not target S3.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    // Whether the normalised path ends in a directory (a trailing `/`, `.` or `..`).
    let mut ends_in_directory = true;
    for segment in path.split('/') {
        match segment {
            "" | "." => ends_in_directory = true,
            ".." => {
                segments.pop();
                ends_in_directory = true;
            }
            name => {
                segments.push(name);
                ends_in_directory = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        encode_bytes_into(segment.as_bytes(), true, &mut out);
    }
    if segments.is_empty() || ends_in_directory {
        out.push('/');
    }
    out
}

/// The canonical query string of a raw query (without `?`): split on `&` (empty pieces are
/// dropped), each name and value percent-decoded and re-encoded with
/// `uri_encode(.., true)`, a missing `=` meaning an empty value, then sorted by encoded name
/// and then encoded value and joined with `&`. `+` is a literal plus, not a space.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let mut encoded_name = String::new();
            encode_bytes_into(&percent_decode(name), true, &mut encoded_name);
            let mut encoded_value = String::new();
            encode_bytes_into(&percent_decode(value), true, &mut encoded_value);
            (encoded_name, encoded_value)
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len());
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{canonical_query, canonical_uri, percent_decode, uri_encode};
    use proptest::prelude::*;

    #[test]
    fn unreserved_characters_pass_through() {
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        assert_eq!(uri_encode(unreserved, true), unreserved);
        assert_eq!(uri_encode(unreserved, false), unreserved);
    }

    #[test]
    fn reserved_characters_are_escaped_with_upper_case_hex() {
        assert_eq!(uri_encode(" ", true), "%20");
        assert_eq!(uri_encode("+*!'()", true), "%2B%2A%21%27%28%29");
        assert_eq!(uri_encode("a=b&c", true), "a%3Db%26c");
        assert_eq!(uri_encode("%", true), "%25");
        assert_eq!(uri_encode(":@", true), "%3A%40");
        assert_eq!(uri_encode("\u{7f}\n", true), "%7F%0A");
    }

    #[test]
    fn multibyte_characters_are_escaped_byte_by_byte() {
        assert_eq!(uri_encode("\u{1234}", true), "%E1%88%B4");
        assert_eq!(uri_encode("é", true), "%C3%A9");
    }

    #[test]
    fn slash_is_kept_only_for_paths() {
        assert_eq!(uri_encode("a/b", false), "a/b");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
    }

    #[test]
    fn malformed_escapes_decode_to_themselves() {
        assert_eq!(percent_decode("%41%4a%zz%4%"), b"AJ%zz%4%");
        assert_eq!(percent_decode("a+b"), b"a+b");
    }

    #[test]
    fn paths_are_normalised_like_the_suite() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("//"), "/");
        assert_eq!(canonical_uri("/./"), "/");
        assert_eq!(canonical_uri("/example/.."), "/");
        assert_eq!(canonical_uri("/example1/example2/../.."), "/");
        assert_eq!(canonical_uri("/./example"), "/example");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/a/b/.."), "/a/");
        assert_eq!(canonical_uri("relative/path"), "/relative/path");
    }

    #[test]
    fn an_already_encoded_path_is_encoded_once_more() {
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
        assert_eq!(
            canonical_uri("/functions/arn%3Aaws%3Alambda/invocations"),
            "/functions/arn%253Aaws%253Alambda/invocations"
        );
    }

    #[test]
    fn queries_are_decoded_reencoded_and_sorted() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1"), "a=1&b=2");
        assert_eq!(canonical_query("a=2&a=1&A=3"), "A=3&a=1&a=2");
        assert_eq!(canonical_query("flag"), "flag=");
        assert_eq!(canonical_query("c+d"), "c%2Bd=");
        assert_eq!(canonical_query("k=a%20b&&x=%2f"), "k=a%20b&x=%2F");
        assert_eq!(canonical_query("k=a=b"), "k=a%3Db");
    }

    proptest! {
        #[test]
        fn encoding_round_trips_and_emits_only_safe_characters(input in any::<String>(), slash in any::<bool>()) {
            let encoded = uri_encode(&input, slash);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%')
                || (b == b'/' && !slash)));
            prop_assert_eq!(percent_decode(&encoded), input.as_bytes());
        }

        #[test]
        fn canonical_uri_is_absolute_and_free_of_dot_segments(path in any::<String>()) {
            let uri = canonical_uri(&path);
            prop_assert!(uri.starts_with('/'));
            prop_assert!(!uri.contains("//"));
            prop_assert!(uri.split('/').all(|s| s != "." && s != ".."));
        }
    }
}
