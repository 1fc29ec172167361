//! Azure Storage SharedKey authorization for the Blob service (version 2009-09-19 and later),
//! so the adapter can upload the package with the account key that ARM's `listKeys` returns.
//!
//! String to sign (learn.microsoft.com, "Authorize with Shared Key"): the verb, eleven
//! standard headers one per line (`Content-Length` empty when 0), the canonicalized `x-ms-*`
//! headers (lower-case names, sorted, `name:value`), then the canonicalized resource
//! `/<account><url path>` followed by `\n<param>:<value>` per query parameter (lower-case
//! names, sorted, values decoded). Signature: base64(HMAC-SHA256(base64-decoded key, string)).
//! The known-answer tests were produced by Azure's own Python SDK (`azure-storage-blob`,
//! `SharedKeyCredentialPolicy`), see `tests` below.
//!
//! Also compiled into the measurement function (`measurement-fn/src/chain/storage.rs`, Blob
//! transfers of data-transfer chains) with `#[path]`: keep it free of guest-only dependencies
//! (it needs only `base64`, `hmac` and `sha2`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The standard headers in the order they are signed.
const SIGNED_STANDARD_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// A request as SharedKey sees it.
#[derive(Debug, Clone)]
pub(crate) struct Signable<'a> {
    pub(crate) method: &'a str,
    /// The storage account name.
    pub(crate) account: &'a str,
    /// The URL path as sent (percent-encoded), starting with `/`.
    pub(crate) path: &'a str,
    /// Query parameters, decoded.
    pub(crate) query: &'a [(&'a str, &'a str)],
    /// Every header sent (any case); `content-length` included.
    pub(crate) headers: &'a [(&'a str, &'a str)],
}

/// The account key is not base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadKey;

/// The string SharedKey signs.
pub(crate) fn string_to_sign(request: &Signable<'_>) -> String {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    };
    let mut out = String::new();
    out.push_str(&request.method.to_ascii_uppercase());
    out.push('\n');
    for name in SIGNED_STANDARD_HEADERS {
        let value = header(name);
        // Since version 2015-02-21 a zero Content-Length is signed as the empty string.
        if !(name == "content-length" && value == "0") {
            out.push_str(value);
        }
        out.push('\n');
    }
    let mut ms: Vec<(String, &str)> = request
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
        .collect();
    ms.sort();
    for (k, v) in ms {
        out.push_str(&k);
        out.push(':');
        out.push_str(v);
        out.push('\n');
    }
    out.push('/');
    out.push_str(request.account);
    out.push_str(request.path);
    let mut query: Vec<(String, &str)> = request
        .query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    query.sort();
    for (k, v) in query {
        out.push('\n');
        out.push_str(&k);
        out.push(':');
        out.push_str(v);
    }
    out
}

/// The `Authorization` header value: `SharedKey <account>:<signature>`.
pub(crate) fn authorization(key_base64: &str, request: &Signable<'_>) -> Result<String, BadKey> {
    let key = STANDARD.decode(key_base64.trim()).map_err(|_| BadKey)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadKey)?;
    mac.update(string_to_sign(request).as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    Ok(format!("SharedKey {}:{signature}", request.account))
}

/// `x-ms-date`'s format (RFC 1123, GMT), e.g. `Tue, 02 Dec 2025 01:02:03 GMT`.
pub(crate) fn http_date(unix_seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Azurite's (and the storage emulator's) published development account key.
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tOlEJqbrAl4MgAIYO4a1b8XyFa8=";

    #[test]
    fn dates_are_rfc1123() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn a_bad_key_is_refused() {
        let req = Signable {
            method: "GET",
            account: "a",
            path: "/",
            query: &[],
            headers: &[],
        };
        assert_eq!(authorization("not base64!", &req), Err(BadKey));
    }

    // Known answers from azure-storage-blob's SharedKeyCredentialPolicy (the vendor's own
    // signer), produced by `plugins/azure/testdata/shared_key_vectors.py`.
    include!("../testdata/shared_key_vectors.rs");
}
