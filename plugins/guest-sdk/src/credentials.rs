//! The credentials an adapter receives in `configure`, kept apart from its settings.
//!
//! Settings are loggable and end up in results; credentials never may. The host hands over
//! only the credentials an adapter declared in `describe` (or the user granted it), so a
//! missing one is an authorisation problem, not a typo: [`Credentials::require`] says which
//! credential and which value is missing, and nothing here ever prints a value (the
//! [`Debug`](fmt::Debug) output shows kinds and keys only).
//!
//! ```ignore
//! let credentials = Credentials::from(credentials);
//! let key = credentials.require(&CredentialKind::Aws, "access-key-id")?;
//! let token = credentials.value(&CredentialKind::Aws, "session-token");
//! ```

use std::fmt;

use crate::{Credential, CredentialKind, ProviderError};

/// `aws`, `azure`, `gcp`, `alibaba`, `kubernetes`, or `env:NAME`: the spelling of `--grant`.
impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Aws => f.write_str("aws"),
            Self::Azure => f.write_str("azure"),
            Self::Gcp => f.write_str("gcp"),
            Self::Alibaba => f.write_str("alibaba"),
            Self::Kubernetes => f.write_str("kubernetes"),
            Self::Env(name) => write!(f, "env:{name}"),
        }
    }
}

/// The credentials granted to the adapter (for a repeated kind or key the last one wins).
///
/// Keep this, not the raw [`Credential`] list, in adapter state: the generated `Credential`
/// type's `Debug` prints its values, this one's does not.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    list: Vec<Credential>,
}

impl From<Vec<Credential>> for Credentials {
    fn from(list: Vec<Credential>) -> Self {
        Self { list }
    }
}

impl Credentials {
    /// The credential of `kind`, if it was granted.
    pub fn find(&self, kind: &CredentialKind) -> Option<&Credential> {
        self.list.iter().rev().find(|c| &c.kind == kind)
    }

    /// Value `key` of the credential of `kind`, if both are present.
    pub fn value(&self, kind: &CredentialKind, key: &str) -> Option<&str> {
        self.find(kind)?
            .values
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Value `key` of the credential of `kind`. A credential that was not granted, or a value
    /// that is missing or empty, is `unauthorized`; the message names the kind and the key,
    /// never a value.
    pub fn require(&self, kind: &CredentialKind, key: &str) -> Result<&str, ProviderError> {
        if self.find(kind).is_none() {
            return Err(ProviderError::Unauthorized(format!(
                "no `{kind}` credential was granted to this adapter (it needs `{key}`)"
            )));
        }
        match self.value(kind, key) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(ProviderError::Unauthorized(format!(
                "the `{kind}` credential's `{key}` is empty"
            ))),
            None => Err(ProviderError::Unauthorized(format!(
                "the `{kind}` credential has no `{key}`"
            ))),
        }
    }

    /// All granted credentials, in the order the host sent them.
    pub fn iter(&self) -> impl Iterator<Item = &Credential> {
        self.list.iter()
    }

    /// Whether no credential was granted.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Kinds and keys only: every value shows as `<redacted>`.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a Credential);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (key, _) in &self.0.values {
                    map.entry(key, &format_args!("<redacted>"));
                }
                map.finish()
            }
        }
        let mut map = f.debug_map();
        for credential in &self.list {
            map.entry(&format_args!("{}", credential.kind), &Redacted(credential));
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(kind: CredentialKind, values: &[(&str, &str)]) -> Credential {
        Credential {
            kind,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn sample() -> Credentials {
        Credentials::from(vec![
            credential(
                CredentialKind::Aws,
                &[
                    ("access-key-id", "AKIDEXAMPLE"),
                    ("secret-access-key", "s3cr3t"),
                    ("session-token", " "),
                ],
            ),
            credential(
                CredentialKind::Env("MY_TOKEN".into()),
                &[("MY_TOKEN", "t0k")],
            ),
        ])
    }

    #[test]
    fn kinds_are_spelled_like_grants() {
        let shown: Vec<String> = [
            CredentialKind::Aws,
            CredentialKind::Azure,
            CredentialKind::Gcp,
            CredentialKind::Alibaba,
            CredentialKind::Kubernetes,
            CredentialKind::Env("X_Y".into()),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            shown,
            ["aws", "azure", "gcp", "alibaba", "kubernetes", "env:X_Y"]
        );
    }

    #[test]
    fn lookups() {
        let c = sample();
        assert!(c.find(&CredentialKind::Aws).is_some());
        assert!(c.find(&CredentialKind::Gcp).is_none());
        assert!(c.find(&CredentialKind::Env("OTHER".into())).is_none());
        assert_eq!(
            c.value(&CredentialKind::Aws, "access-key-id"),
            Some("AKIDEXAMPLE")
        );
        assert_eq!(c.value(&CredentialKind::Aws, "region"), None);
        assert_eq!(
            c.value(&CredentialKind::Env("MY_TOKEN".into()), "MY_TOKEN"),
            Some("t0k")
        );
        assert_eq!(c.iter().count(), 2);
        assert!(!c.is_empty() && Credentials::default().is_empty());
    }

    #[test]
    fn last_credential_and_value_win() {
        let c = Credentials::from(vec![
            credential(CredentialKind::Gcp, &[("k", "1")]),
            credential(CredentialKind::Gcp, &[("k", "2"), ("k", "3")]),
        ]);
        assert_eq!(c.value(&CredentialKind::Gcp, "k"), Some("3"));
    }

    #[test]
    fn require_names_kind_and_key_but_no_value() {
        let c = sample();
        assert_eq!(
            c.require(&CredentialKind::Aws, "secret-access-key"),
            Ok("s3cr3t")
        );
        let unauthorized = |kind: CredentialKind, key: &str| match c.require(&kind, key) {
            Err(ProviderError::Unauthorized(m)) => m,
            other => panic!("expected unauthorized, got {other:?}"),
        };
        assert_eq!(
            unauthorized(CredentialKind::Azure, "client-secret"),
            "no `azure` credential was granted to this adapter (it needs `client-secret`)"
        );
        assert_eq!(
            unauthorized(CredentialKind::Aws, "region"),
            "the `aws` credential has no `region`"
        );
        assert_eq!(
            unauthorized(CredentialKind::Aws, "session-token"),
            "the `aws` credential's `session-token` is empty"
        );
    }

    #[test]
    fn debug_output_redacts_every_value() {
        let shown = format!("{:?}", sample());
        for secret in ["AKIDEXAMPLE", "s3cr3t", "t0k"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(
            shown,
            "{aws: {\"access-key-id\": <redacted>, \"secret-access-key\": <redacted>, \
             \"session-token\": <redacted>}, env:MY_TOKEN: {\"MY_TOKEN\": <redacted>}}"
        );
    }
}
