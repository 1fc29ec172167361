//! The canonical request, the string to sign and the signature of ACS3-HMAC-SHA256.
//!
//! As in Alibaba's SDK (`alibabacloud_openapi_util` `get_authorization`,
//! `get_canonical_query_string`, `get_canonicalized_headers`) and the "V3 request structure and
//! signature" documentation:
//!
//! ```text
//! METHOD \n PATH \n QUERY \n name:value\n ... \n name;name;... \n HEX(SHA256(body))
//! ```
//!
//! - PATH is the path as sent (already encoded), `/` when empty;
//! - QUERY is `key=value` pairs sorted by key and joined by `&`, each part encoded with RFC 3986
//!   rules (only `A-Z a-z 0-9 - _ . ~` kept, `%XX` upper case). The SDK encodes only values;
//!   the documentation encodes keys too. FC's query keys (`prefix`, `limit`, `nextToken`, ...)
//!   are unreserved characters, where both agree;
//! - headers are lower-cased, values trimmed, sorted by name; a repeated header's values are
//!   sorted and joined by `,`; the signed-header list is the names joined by `;`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use stellar_sigv4::{sha256_hex, uri_encode};

use crate::ALGORITHM;

/// A canonical request and its signed-header list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The canonical request text.
    pub request: String,
    /// `name;name;...`, the value of `SignedHeaders`.
    pub signed_headers: String,
}

/// The canonical query string of decoded `pairs` (also the query to send).
pub fn canonical_query(pairs: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request of a request with these parts. `headers` are all the headers to sign
/// (names in any case; repeated names are merged).
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    payload_sha256: &str,
) -> Canonical {
    let mut merged: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = value.trim();
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => merged.push((name, vec![value])),
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical_headers = String::new();
    for (name, values) in &mut merged {
        values.sort_unstable();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let signed_headers = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let path = if path.is_empty() { "/" } else { path };
    let request = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_sha256}",
        canonical_query(query)
    );
    Canonical {
        request,
        signed_headers,
    }
}

/// `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Lower-case hex HMAC-SHA256 of `string_to_sign` keyed by the access key secret.
pub fn signature(access_key_secret: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(access_key_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_sorted_and_encoded() {
        assert_eq!(canonical_query(&[]), "");
        assert_eq!(
            canonical_query(&[
                ("limit", "100"),
                ("prefix", "st a/b+c*~"),
                ("nextToken", "")
            ]),
            "limit=100&nextToken=&prefix=st%20a%2Fb%2Bc%2A~"
        );
        assert_eq!(canonical_query(&[("k", "ü")]), "k=%C3%BC");
    }

    #[test]
    fn canonical_request_layout() {
        let c = canonical_request(
            "GET",
            "",
            &[("b", "2"), ("a", "1")],
            &[("X-Acs-Date", " d "), ("host", "h"), ("x-acs-date", "c")],
            "ph",
        );
        assert_eq!(c.signed_headers, "host;x-acs-date");
        assert_eq!(
            c.request,
            "GET\n/\na=1&b=2\nhost:h\nx-acs-date:c,d\n\nhost;x-acs-date\nph"
        );
    }

    #[test]
    fn signature_is_hmac_of_the_string_to_sign() {
        // RFC 4231 test case 2: key "Jefe".
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            string_to_sign(""),
            "ACS3-HMAC-SHA256\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
