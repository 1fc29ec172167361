//! A service-account key file (the JSON `gcloud iam service-accounts keys create` writes and
//! `GOOGLE_APPLICATION_CREDENTIALS` points at), parsed once and checked field by field.
//!
//! The private key never leaves this type: [`Debug`](fmt::Debug) shows the account and key id
//! only, and errors name fields, never values.

use std::fmt;

use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::Deserialize;

/// Why a key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the service-account key is not JSON: {0}")]
    NotJson(String),
    #[error(
        "the key's `type` is {0:?}, expected \"service_account\" (a user's \
         `gcloud auth application-default login` file cannot sign tokens; create a \
         service-account key)"
    )]
    WrongType(String),
    #[error("the service-account key has no `{0}` (or it is empty)")]
    Missing(&'static str),
    #[error("the key's `private_key` is not an RSA private key in PEM (PKCS#8 or PKCS#1): {0}")]
    BadPrivateKey(String),
    #[error("the key's `token_uri` {0:?} is not an http(s) URL")]
    BadTokenUri(String),
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// A usable service-account key.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    /// The key's id, sent as the JWT header's `kid` (google-auth does the same).
    pub private_key_id: Option<String>,
    pub project_id: Option<String>,
    pub token_uri: String,
    pub(crate) private_key: RsaPrivateKey,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

fn required(value: Option<String>, field: &'static str) -> Result<String, KeyError> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or(KeyError::Missing(field))
}

impl ServiceAccountKey {
    /// Parses a key file's text.
    pub fn parse(json: &str) -> Result<Self, KeyError> {
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            // serde's message may quote a value; keep only where it failed.
            KeyError::NotJson(format!("line {} column {}", e.line(), e.column()))
        })?;
        let kind = required(file.kind, "type")?;
        if kind != "service_account" {
            return Err(KeyError::WrongType(kind));
        }
        let client_email = required(file.client_email, "client_email")?;
        let token_uri = required(file.token_uri, "token_uri")?;
        if !(token_uri.starts_with("https://") || token_uri.starts_with("http://")) {
            return Err(KeyError::BadTokenUri(token_uri));
        }
        let pem = required(file.private_key, "private_key")?;
        let private_key = RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        Ok(Self {
            client_email,
            private_key_id: file
                .private_key_id
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            project_id: file
                .project_id
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            token_uri,
            private_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_name_the_field() {
        assert!(matches!(
            ServiceAccountKey::parse("{not json"),
            Err(KeyError::NotJson(_))
        ));
        assert_eq!(
            ServiceAccountKey::parse(r#"{"type":"authorized_user"}"#).unwrap_err(),
            KeyError::WrongType("authorized_user".into())
        );
        assert_eq!(
            ServiceAccountKey::parse(r#"{"type":"service_account","client_email":"a@b"}"#)
                .unwrap_err(),
            KeyError::Missing("token_uri")
        );
        assert_eq!(
            ServiceAccountKey::parse(
                r#"{"type":"service_account","client_email":"a@b","token_uri":"ftp://x"}"#
            )
            .unwrap_err(),
            KeyError::BadTokenUri("ftp://x".into())
        );
        let err = ServiceAccountKey::parse(
            r#"{"type":"service_account","client_email":"a@b","token_uri":"https://t/token",
                "private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#,
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::BadPrivateKey(_)), "{err:?}");
        assert!(!err.to_string().contains("AAAA"), "{err}");
    }
}
