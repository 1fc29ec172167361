//! Alibaba Cloud's ACS3-HMAC-SHA256 request signature (the "V3" signature of the ROA/RPC
//! OpenAPI, used by Function Compute 3.0), in pure Rust, for stellar's wasm provider adapters.
//!
//! The `aliyun` adapter runs as a `wasm32-wasip2` component and calls FC's REST API through the
//! host's HTTP import, so it signs requests itself. ACS3 is SigV4's younger cousin with fewer
//! steps: a canonical request (method, path as sent, sorted and encoded query, every signed
//! header as `name:trimmed value`, the signed-header list, the hex SHA-256 of the body), its
//! hex SHA-256 behind the algorithm name, and one HMAC-SHA256 keyed by the access key secret (no
//! derived key, no scope). This crate is that and nothing else: no I/O, no clock and no random
//! source (the caller passes the time as an [`AcsDate`] and the nonce), no panics on any input.
//!
//! SHA-256 in hex, the streamed [`PayloadHasher`] and RFC 3986 percent-encoding are exactly
//! SigV4's, so they come from `stellar-sigv4` instead of being copied.
//!
//! Checked against Alibaba's own signer: `tests/vectors.json` holds requests signed offline by
//! `alibabacloud_openapi_util.client.Client.get_authorization` (PyPI
//! `alibabacloud_openapi_util` 0.2.4, the function `alibabacloud_tea_openapi`'s `do_request`
//! calls), produced by `scripts/make_vectors.py`; the unit tests recompute every one.
//!
//! ```
//! use stellar_acs3::{AcsDate, Action, Credentials, SignableRequest, sign};
//!
//! let creds = Credentials::new("LTAI5tExample", "secretExample", None);
//! let req = SignableRequest {
//!     method: "GET",
//!     host: "fcv3.cn-hangzhou.aliyuncs.com",
//!     path: "/2023-03-30/functions",
//!     query: &[("prefix", "st-"), ("limit", "100")],
//!     headers: &[],
//!     payload_sha256: stellar_acs3::EMPTY_PAYLOAD_SHA256,
//! };
//! let action = Action { action: "ListFunctions", version: "2023-03-30" };
//! let date = AcsDate::from_unix_seconds(1_698_310_861); // 2023-10-26T09:01:01Z
//! let headers = sign(&req, &action, &creds, &date, "nonce-1");
//! assert_eq!(headers[2], ("x-acs-date".to_owned(), "2023-10-26T09:01:01Z".to_owned()));
//! assert!(headers.last().unwrap().1.starts_with(
//!     "ACS3-HMAC-SHA256 Credential=LTAI5tExample,SignedHeaders=host;x-acs-action;"
//! ));
//! ```

mod canonical;
#[cfg(test)]
mod vector_tests;

use std::fmt;

pub use canonical::{canonical_query, canonical_request, signature, string_to_sign};
pub use stellar_sigv4::{EMPTY_PAYLOAD_SHA256, PayloadHasher, sha256_hex, uri_encode};

/// The signature algorithm's name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// An AccessKey pair, or temporary STS credentials (with their security token).
///
/// `Debug` prints the access key id and redacts the secret and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `LTAI...` (or `STS.` for temporary credentials); appears in `Authorization`.
    pub access_key_id: String,
    /// The secret; only ever used as HMAC key material.
    pub access_key_secret: String,
    /// STS security token, sent and signed as `x-acs-security-token`. `Some("")` counts as
    /// `None`.
    pub security_token: Option<String>,
}

impl Credentials {
    /// Credentials from their three parts.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token,
        }
    }

    fn token(&self) -> Option<&str> {
        self.security_token.as_deref().filter(|t| !t.is_empty())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.token().map(|_| "<redacted>").unwrap_or("None"),
            )
            .finish()
    }
}

/// The API operation a request calls: `x-acs-action` and `x-acs-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action<'a> {
    /// e.g. `CreateFunction`.
    pub action: &'a str,
    /// The API version, e.g. `2023-03-30` for Function Compute 3.0.
    pub version: &'a str,
}

/// The parts of an HTTP request that ACS3 signs, exactly as they will be sent.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// The method as sent, e.g. `POST`.
    pub method: &'a str,
    /// `host[:port]` exactly as sent in the `Host` header.
    pub host: &'a str,
    /// The path as sent, already percent-encoded by the caller (FC's SDK encodes each path
    /// parameter); signed as is. Empty means `/`.
    pub path: &'a str,
    /// The query parameters, *not* encoded: the signer encodes them for the canonical form and
    /// the caller must send them encoded the same way ([`canonical_query`] gives that string).
    pub query: &'a [(&'a str, &'a str)],
    /// Extra headers to sign (e.g. `content-type`, `accept`). `host` and the `x-acs-*` headers
    /// [`sign`] returns are added by the signer; caller entries with those names are ignored.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body ([`sha256_hex`], [`PayloadHasher`],
    /// [`EMPTY_PAYLOAD_SHA256`]).
    pub payload_sha256: &'a str,
}

/// The signing time as `x-acs-date` spells it: ISO 8601 UTC, `2023-10-26T09:01:01Z`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcsDate(String);

impl AcsDate {
    /// The UTC instant `secs` seconds after 1970-01-01T00:00:00Z (the civil-calendar
    /// arithmetic is SigV4's; only the spelling differs).
    pub fn from_unix_seconds(secs: u64) -> Self {
        let compact = stellar_sigv4::AmzDate::from_unix_seconds(secs);
        // `YYYYMMDDTHHMMSSZ`, always ASCII and 16 bytes long.
        let c = compact.date_time();
        let part = |range: std::ops::Range<usize>| c.get(range).unwrap_or("00");
        Self(format!(
            "{}-{}-{}T{}:{}:{}Z",
            part(0..4),
            part(4..6),
            part(6..8),
            part(9..11),
            part(11..13),
            part(13..15)
        ))
    }

    /// The `x-acs-date` value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Signs `req` for `action` at `date` with the unique `nonce` (`x-acs-signature-nonce`; FC
/// rejects a nonce it has seen within 15 minutes, so use a fresh random one per attempt).
///
/// Returns the headers the caller must add to the request, lower-case names in this order:
/// `x-acs-action`, `x-acs-version`, `x-acs-date`, `x-acs-signature-nonce`,
/// `x-acs-content-sha256`, with STS credentials `x-acs-accesskey-id` and
/// `x-acs-security-token` (as Alibaba's SDK sends them), then `authorization`. `host` is signed
/// but not returned (the HTTP client sends it from the URL's authority).
pub fn sign(
    req: &SignableRequest<'_>,
    action: &Action<'_>,
    creds: &Credentials,
    date: &AcsDate,
    nonce: &str,
) -> Vec<(String, String)> {
    let mut added: Vec<(String, String)> = vec![
        ("x-acs-action".to_owned(), action.action.to_owned()),
        ("x-acs-version".to_owned(), action.version.to_owned()),
        ("x-acs-date".to_owned(), date.as_str().to_owned()),
        ("x-acs-signature-nonce".to_owned(), nonce.to_owned()),
        (
            "x-acs-content-sha256".to_owned(),
            req.payload_sha256.to_owned(),
        ),
    ];
    if let Some(token) = creds.token() {
        added.push(("x-acs-accesskey-id".to_owned(), creds.access_key_id.clone()));
        added.push(("x-acs-security-token".to_owned(), token.to_owned()));
    }
    let reserved = |name: &str| {
        name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("authorization")
            || added.iter().any(|(n, _)| name.eq_ignore_ascii_case(n))
    };
    let mut signed: Vec<(&str, &str)> = vec![("host", req.host)];
    signed.extend(req.headers.iter().copied().filter(|(n, _)| !reserved(n)));
    signed.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_str())));

    let canonical = canonical_request(req.method, req.path, req.query, &signed, req.payload_sha256);
    let authorization = format!(
        "{ALGORITHM} Credential={},SignedHeaders={},Signature={}",
        creds.access_key_id,
        canonical.signed_headers,
        signature(
            &creds.access_key_secret,
            &string_to_sign(&canonical.request)
        ),
    );
    added.push(("authorization".to_owned(), authorization));
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601_utc() {
        assert_eq!(
            AcsDate::from_unix_seconds(0).as_str(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            AcsDate::from_unix_seconds(1_698_310_861).as_str(),
            "2023-10-26T09:01:01Z"
        );
        assert_eq!(
            AcsDate::from_unix_seconds(u64::MAX).as_str(),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn debug_redacts_the_secret_and_token() {
        let c = Credentials::new("LTAIid", "s3cr3t", Some("t0k3n".into()));
        let shown = format!("{c:?}");
        assert!(shown.contains("LTAIid"), "{shown}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
            "{shown}"
        );
    }

    fn names(headers: &[(String, String)]) -> Vec<&str> {
        headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn headers_in_order_and_the_token_only_with_sts() {
        let req = SignableRequest {
            method: "DELETE",
            host: "h",
            path: "/2023-03-30/functions/f",
            query: &[],
            headers: &[
                ("Content-Type", "application/json"),
                ("x-acs-date", "ignored"),
                ("Host", "ignored"),
            ],
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        };
        let action = Action {
            action: "DeleteFunction",
            version: "2023-03-30",
        };
        let date = AcsDate::from_unix_seconds(1);
        let plain = sign(
            &req,
            &action,
            &Credentials::new("ak", "sk", Some(String::new())),
            &date,
            "n",
        );
        assert_eq!(
            names(&plain),
            [
                "x-acs-action",
                "x-acs-version",
                "x-acs-date",
                "x-acs-signature-nonce",
                "x-acs-content-sha256",
                "authorization"
            ]
        );
        let auth = &plain[5].1;
        assert!(
            auth.contains(
                "SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;\
                 x-acs-signature-nonce;x-acs-version,"
            ),
            "{auth}"
        );
        let sts = sign(
            &req,
            &action,
            &Credentials::new("ak", "sk", Some("tok".into())),
            &date,
            "n",
        );
        assert_eq!(sts[5], ("x-acs-accesskey-id".to_owned(), "ak".to_owned()));
        assert_eq!(
            sts[6],
            ("x-acs-security-token".to_owned(), "tok".to_owned())
        );
        assert!(sts[7].1.contains("x-acs-security-token"), "{}", sts[7].1);
        assert_ne!(plain[5].1, sts[7].1);
    }

    #[test]
    fn every_input_changes_the_signature() {
        let base = SignableRequest {
            method: "GET",
            host: "fcv3.cn-hangzhou.aliyuncs.com",
            path: "/2023-03-30/functions",
            query: &[("prefix", "st-")],
            headers: &[],
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        };
        let action = Action {
            action: "ListFunctions",
            version: "2023-03-30",
        };
        let creds = Credentials::new("ak", "sk", None);
        let date = AcsDate::from_unix_seconds(1_700_000_000);
        let auth =
            |r: &SignableRequest<'_>, a: &Action<'_>, c: &Credentials, d: &AcsDate, n: &str| {
                sign(r, a, c, d, n).pop().unwrap().1
            };
        let reference = auth(&base, &action, &creds, &date, "n1");
        let variants = [
            auth(
                &SignableRequest {
                    method: "POST",
                    ..base
                },
                &action,
                &creds,
                &date,
                "n1",
            ),
            auth(
                &SignableRequest {
                    host: "other",
                    ..base
                },
                &action,
                &creds,
                &date,
                "n1",
            ),
            auth(
                &SignableRequest { path: "/x", ..base },
                &action,
                &creds,
                &date,
                "n1",
            ),
            auth(
                &SignableRequest {
                    query: &[("prefix", "st")],
                    ..base
                },
                &action,
                &creds,
                &date,
                "n1",
            ),
            auth(
                &SignableRequest {
                    payload_sha256: "00",
                    ..base
                },
                &action,
                &creds,
                &date,
                "n1",
            ),
            auth(
                &base,
                &Action {
                    action: "GetFunction",
                    ..action
                },
                &creds,
                &date,
                "n1",
            ),
            auth(
                &base,
                &action,
                &Credentials::new("ak", "sk2", None),
                &date,
                "n1",
            ),
            auth(
                &base,
                &action,
                &creds,
                &AcsDate::from_unix_seconds(1_700_000_001),
                "n1",
            ),
            auth(&base, &action, &creds, &date, "n2"),
        ];
        for v in variants {
            assert_ne!(v, reference);
        }
    }
}
