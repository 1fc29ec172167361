//! AWS Signature Version 4 request signing, in pure Rust, for stellar's wasm provider adapters.
//!
//! The `aws` adapter runs as a `wasm32-wasip2` component and calls AWS APIs (Lambda) through
//! the host's HTTP import, so it must sign requests itself. The AWS SDK's signer drags in an
//! async runtime and a large dependency tree; SigV4 itself is a canonical spelling of the
//! request plus five HMACs. This crate is that, and nothing else: no I/O, no clock reads (the
//! caller passes the time as an [`AmzDate`]), no panics on any input, and only `hmac`, `sha2`
//! and `hex` as dependencies.
//!
//! [`sign`] returns the headers to add to the request. The intermediate steps
//! ([`canonical_request`], [`string_to_sign`], [`signing_key`], [`signature`]) are public so a
//! `SignatureDoesNotMatch` can be debugged against the canonical request AWS reports, and so
//! the tests can check each step of the official test suite.
//!
//! Scope: header signing (not presigned URLs) for services other than S3, i.e. with path
//! normalisation and one extra encoding pass over the already-encoded path (see
//! [`canonical_uri`] for why that is AWS's "double encoding" and still matches the official
//! test suite).
//!
//! ```
//! use stellar_sigv4::{AmzDate, Credentials, Scope, SignableRequest, SigningOptions, sign_with};
//!
//! // The official suite's `get-vanilla` case.
//! let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
//! let req = SignableRequest {
//!     method: "GET",
//!     host: "example.amazonaws.com",
//!     path: "/",
//!     query: "",
//!     headers: &[],
//!     payload_sha256: stellar_sigv4::EMPTY_PAYLOAD_SHA256,
//! };
//! let scope = Scope { region: "us-east-1", service: "service" };
//! let time = AmzDate::from_unix_seconds(1_440_938_160); // 2015-08-30T12:36:00Z
//! let options = SigningOptions { include_content_sha256_header: false };
//! let headers = sign_with(&req, &creds, &scope, &time, &options);
//! assert_eq!(headers[0], ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()));
//! assert!(headers[1].1.ends_with(
//!     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
//! ));
//! ```

mod amz_date;
mod canonical;
mod encoding;
mod payload;
#[cfg(test)]
mod suite_tests;

pub use amz_date::AmzDate;
pub use canonical::{canonical_request, signature, signing_key, string_to_sign};
pub use encoding::{canonical_query, canonical_uri, uri_encode};
pub use payload::{EMPTY_PAYLOAD_SHA256, PayloadHasher, sha256_hex};

/// Long-term or temporary AWS credentials.
///
/// `Debug` prints the access key id (it identifies, it does not authorise) and redacts the
/// secret and the session token, so credentials can sit in logged structs safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA...` / `ASIA...`; appears in the `Authorization` header.
    pub access_key_id: String,
    /// The secret key; only ever used as HMAC key material.
    pub secret_access_key: String,
    /// STS session token of temporary credentials; sent and signed as `x-amz-security-token`.
    /// `Some("")` is treated like `None`.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Credentials from their three parts.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    fn token(&self) -> Option<&str> {
        self.session_token
            .as_deref()
            .filter(|token| !token.trim_ascii().is_empty())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where the signature is valid: the region and the signing name of the service
/// (`lambda`, `sts`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// e.g. `us-east-1`.
    pub region: &'a str,
    /// The service's signing name, e.g. `lambda`.
    pub service: &'a str,
}

/// The parts of an HTTP request that SigV4 signs, exactly as they will be sent.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// The method as sent, e.g. `POST` (not case-folded).
    pub method: &'a str,
    /// `host[:port]` exactly as sent in the `Host` header.
    pub host: &'a str,
    /// The raw path as sent, already percent-encoded by the caller; empty means `/`.
    pub path: &'a str,
    /// The raw query string without `?`; may be empty.
    pub query: &'a str,
    /// Extra headers to sign (e.g. `content-type`). `host`, `x-amz-date` and the other headers
    /// [`sign`] returns are added by the signer; caller entries with those names are ignored.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body ([`sha256_hex`], [`PayloadHasher`],
    /// [`EMPTY_PAYLOAD_SHA256`]), or `UNSIGNED-PAYLOAD` where a service allows it.
    pub payload_sha256: &'a str,
}

/// Choices that change the canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningOptions {
    /// Add and sign `x-amz-content-sha256`. Required by S3, accepted by Lambda; the official
    /// test suite's vectors are computed without it. [`Default`] (and [`sign`]) use `true`.
    pub include_content_sha256_header: bool,
}

impl Default for SigningOptions {
    fn default() -> Self {
        Self {
            include_content_sha256_header: true,
        }
    }
}

/// Signs `req` with the default [`SigningOptions`] (`x-amz-content-sha256` included).
///
/// Returns the headers the caller must add to the request, lower-case names in this order:
/// `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (only with a session token),
/// `authorization`.
pub fn sign(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    scope: &Scope<'_>,
    time: &AmzDate,
) -> Vec<(String, String)> {
    sign_with(req, creds, scope, time, &SigningOptions::default())
}

/// Signs `req`; like [`sign`] but `x-amz-content-sha256` is only added (and signed) when
/// `options.include_content_sha256_header` is set.
pub fn sign_with(
    req: &SignableRequest<'_>,
    creds: &Credentials,
    scope: &Scope<'_>,
    time: &AmzDate,
    options: &SigningOptions,
) -> Vec<(String, String)> {
    let token = creds.token();
    let canonical = canonical::build(req, token, time, options);
    let to_sign = string_to_sign(&canonical.request, scope, time);
    let key = signing_key(
        &creds.secret_access_key,
        time.date(),
        scope.region,
        scope.service,
    );
    let authorization = format!(
        "{} Credential={}/{}, SignedHeaders={}, Signature={}",
        canonical::ALGORITHM,
        creds.access_key_id,
        canonical::credential_scope(scope, time),
        canonical.signed_headers,
        signature(&key, &to_sign),
    );

    let mut headers = Vec::with_capacity(4);
    headers.push(("x-amz-date".to_owned(), time.date_time().to_owned()));
    if options.include_content_sha256_header {
        headers.push((
            "x-amz-content-sha256".to_owned(),
            req.payload_sha256.to_owned(),
        ));
    }
    if let Some(token) = token {
        headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    headers.push(("authorization".to_owned(), authorization));
    headers
}

#[cfg(test)]
mod tests {
    use super::{
        AmzDate, Credentials, EMPTY_PAYLOAD_SHA256, Scope, SignableRequest, SigningOptions,
        canonical_request, sign, sign_with,
    };
    use proptest::prelude::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SCOPE: Scope<'static> = Scope {
        region: "us-east-1",
        service: "service",
    };
    const NO_SHA_HEADER: SigningOptions = SigningOptions {
        include_content_sha256_header: false,
    };

    fn vanilla(headers: &'static [(&'static str, &'static str)]) -> SignableRequest<'static> {
        SignableRequest {
            method: "GET",
            host: "example.amazonaws.com",
            path: "/",
            query: "",
            headers,
            payload_sha256: EMPTY_PAYLOAD_SHA256,
        }
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map_or("", |(_, value)| value.as_str())
    }

    #[test]
    fn debug_redacts_the_secret_and_the_token() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, Some("TOKEN-VALUE".to_owned()));
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("TOKEN-VALUE"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn default_options_match_sign() {
        assert!(SigningOptions::default().include_content_sha256_header);
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let time = AmzDate::from_unix_seconds(1_440_938_160);
        let req = vanilla(&[]);
        assert_eq!(
            sign(&req, &creds, &SCOPE, &time),
            sign_with(&req, &creds, &SCOPE, &time, &SigningOptions::default())
        );
    }

    /// Caller copies of headers the signer owns must not change the signature: it still
    /// equals the suite's get-vanilla signature.
    #[test]
    fn caller_copies_of_signer_owned_headers_are_ignored() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let time = AmzDate::from_unix_seconds(1_440_938_160);
        let req = vanilla(&[
            ("Host", "attacker.example"),
            ("X-Amz-Date", "19990101T000000Z"),
            ("Authorization", "forged"),
            ("", "nameless"),
        ]);
        let headers = sign_with(&req, &creds, &SCOPE, &time, &NO_SHA_HEADER);
        assert!(authorization(&headers).ends_with(
            "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ));
    }

    #[test]
    fn an_empty_session_token_counts_as_none() {
        let time = AmzDate::from_unix_seconds(1_440_938_160);
        let without = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let empty = Credentials::new("AKIDEXAMPLE", SECRET, Some(String::new()));
        let req = vanilla(&[]);
        let headers = sign(&req, &empty, &SCOPE, &time);
        assert!(
            headers
                .iter()
                .all(|(name, _)| name != "x-amz-security-token")
        );
        assert_eq!(headers, sign(&req, &without, &SCOPE, &time));
    }

    #[test]
    fn a_caller_content_sha256_is_signed_when_the_signer_does_not_add_it() {
        let time = AmzDate::from_unix_seconds(1_440_938_160);
        let req = vanilla(&[("X-Amz-Content-Sha256", EMPTY_PAYLOAD_SHA256)]);
        let creq = canonical_request(&req, None, &time, &NO_SHA_HEADER);
        assert!(
            creq.contains("\nhost;x-amz-content-sha256;x-amz-date\n"),
            "{creq}"
        );
    }

    fn lossy(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    proptest! {
        /// No input panics, and the output keeps its shape whatever the input.
        #[test]
        fn arbitrary_input_signs_without_panicking(
            method in any::<Vec<u8>>(),
            host in any::<String>(),
            path in any::<Vec<u8>>(),
            query in any::<Vec<u8>>(),
            headers in proptest::collection::vec((any::<Vec<u8>>(), any::<String>()), 0..6),
            payload in any::<String>(),
            access_key in any::<String>(),
            secret in any::<String>(),
            token in proptest::option::of(any::<String>()),
            region in any::<String>(),
            service in any::<String>(),
            secs in any::<u64>(),
            include in any::<bool>(),
        ) {
            let (method, path, query) = (lossy(&method), lossy(&path), lossy(&query));
            let headers: Vec<(String, String)> =
                headers.iter().map(|(n, v)| (lossy(n), v.clone())).collect();
            let header_refs: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let req = SignableRequest {
                method: &method,
                host: &host,
                path: &path,
                query: &query,
                headers: &header_refs,
                payload_sha256: &payload,
            };
            let creds = Credentials::new(access_key, secret, token);
            let scope = Scope { region: &region, service: &service };
            let time = AmzDate::from_unix_seconds(secs);
            let options = SigningOptions { include_content_sha256_header: include };
            let signed = sign_with(&req, &creds, &scope, &time, &options);

            prop_assert_eq!(signed.first().map(|(n, _)| n.as_str()), Some("x-amz-date"));
            prop_assert_eq!(signed.last().map(|(n, _)| n.as_str()), Some("authorization"));
            let authz = authorization(&signed);
            prop_assert!(authz.starts_with("AWS4-HMAC-SHA256 Credential="));
            let sig = authz.rsplit("Signature=").next().unwrap_or("");
            prop_assert_eq!(sig.len(), 64);
            prop_assert!(sig.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }
}
