//! The RS256 JWT assertion of the service-account flow, written exactly as google-auth writes
//! it (`google.auth.jwt.encode` over the claims of
//! `service_account.Credentials._make_authorization_grant_assertion`): header
//! `{"typ": "JWT", "alg": "RS256", "kid": <private_key_id>}`, claims
//! `{"iat", "exp", "iss", "aud", "scope"}` in that order (`aud` is always Google's token
//! endpoint, [`TOKEN_AUDIENCE`], whatever the key's `token_uri`: google-auth does the same), each serialised by Python's
//! `json.dumps` defaults (`", "` and `": "` separators, non-ASCII escaped as `\uXXXX`), then
//! base64url without padding, and an RSASSA-PKCS1-v1_5 SHA-256 signature over
//! `header.claims`. The byte-for-byte form is not needed by the token endpoint, but it makes
//! google-auth an exact oracle for this code.

use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;

use crate::key::ServiceAccountKey;

/// Seconds between `iat` and `exp` (google-auth's `_DEFAULT_TOKEN_LIFETIME_SECS`; Google's
/// token endpoint accepts at most one hour).
pub const ASSERTION_LIFETIME_S: u64 = 3600;
/// The assertion's `aud` (google-auth's `_GOOGLE_OAUTH2_TOKEN_ENDPOINT`).
pub const TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";

/// base64url without padding (RFC 7515 §2).
pub fn base64url(bytes: &[u8]) -> String {
    stellar_guest_sdk::base64::encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// A JSON string literal as Python's `json.dumps` (with `ensure_ascii=True`) writes it.
pub fn py_json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The signed assertion for `scope`, issued at `iat` (Unix seconds).
pub fn assertion(key: &ServiceAccountKey, scope: &str, iat: u64) -> String {
    let mut header = String::from(r#"{"typ": "JWT", "alg": "RS256""#);
    if let Some(kid) = &key.private_key_id {
        header.push_str(&format!(r#", "kid": {}"#, py_json_string(kid)));
    }
    header.push('}');
    let claims = format!(
        r#"{{"iat": {iat}, "exp": {}, "iss": {}, "aud": {}, "scope": {}}}"#,
        iat + ASSERTION_LIFETIME_S,
        py_json_string(&key.client_email),
        py_json_string(TOKEN_AUDIENCE),
        py_json_string(scope),
    );
    let signing_input = format!(
        "{}.{}",
        base64url(header.as_bytes()),
        base64url(claims.as_bytes())
    );
    let signer = SigningKey::<Sha256>::new(key.private_key.clone());
    let signature = signer.sign(signing_input.as_bytes()).to_bytes();
    format!("{signing_input}.{}", base64url(&signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_strings() {
        assert_eq!(py_json_string("a@b.iam"), r#""a@b.iam""#);
        assert_eq!(py_json_string("q\"\\\n\u{1}"), r#""q\"\\\n\u0001""#);
        assert_eq!(py_json_string("é😀"), r#""\u00e9\ud83d\ude00""#);
    }

    #[test]
    fn base64url_has_no_padding_or_plus() {
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url(b"{\"typ\""), "eyJ0eXAi");
    }
}
