//! Cloud credentials, read by the host and handed to the one adapter they belong to.
//!
//! Adapters run sandboxed with no environment and no filesystem, so they cannot find
//! credentials themselves, and must not: an adapter for one cloud never sees another cloud's
//! keys. An adapter declares the credential kinds it needs; the host reads each kind where that
//! cloud's own tools read it (one module per kind: [`aws`], and [`env_sets`] for the kinds that
//! are a fixed set of variables or a file) and hands it over in `configure`, apart from the
//! settings. A first-party adapter gets what it declares; a third-party adapter gets only what
//! the user granted on the command line (`--grant aws`, `--grant env:NAME`, like Deno's
//! `--allow-*`). Credentials are never logged and never written to the results (the plan
//! refuses them in the experiment file).

mod aws;
mod env_sets;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use aws::{AwsCredentials, aws_default_region};

use crate::plugin::declaration::{credential_words, grant_name};
use crate::plugin::{Credential, CredentialKind, ProviderInfo};

/// Where a credential lookup reads from: the environment and the home directory. A seam for
/// tests; [`CredentialSources::from_process`] is the real thing.
#[derive(Clone, Default)]
pub struct CredentialSources {
    pub env: BTreeMap<String, String>,
    pub home: Option<PathBuf>,
}

impl CredentialSources {
    /// The process environment and `$HOME`.
    pub fn from_process() -> Self {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let home = env.get("HOME").map(PathBuf::from);
        Self { env, home }
    }

    /// Sources with exactly these variables and no home directory (for tests).
    #[cfg(test)]
    pub(crate) fn with_env(pairs: &[(&str, &str)]) -> Self {
        Self {
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            home: None,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE \
         with a profile in {file} (searched: {searched})"
    )]
    AwsMissing { file: String, searched: String },
    #[error("AWS profile `{profile}` in {file} lacks `{key}`")]
    AwsIncompleteProfile {
        profile: String,
        file: String,
        key: &'static str,
    },
    #[error("the `{kind}` credential needs {variable} to be set (and not empty)")]
    MissingVariable { kind: String, variable: String },
    #[error("the `{kind}` credential file {path} is larger than {max} bytes")]
    FileTooLarge {
        kind: String,
        path: PathBuf,
        max: u64,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--grant {grant:?} is not a credential kind; expected aws, azure, gcp, alibaba, \
         kubernetes or env:VARIABLE_NAME"
    )]
    BadGrant { grant: String },
    #[error(
        "plugin `{plugin}` ({origin}) asks for credentials it was not granted: {wanted}.\n\
         A third-party adapter gets no credentials unless you grant them; if you trust it, \
         add {flags} to the command line"
    )]
    NotGranted {
        plugin: String,
        origin: String,
        wanted: String,
        flags: String,
    },
}

/// Parses one `--grant` value (`aws`, `env:FLY_API_TOKEN`; a comma separates several).
pub fn parse_grants(text: &str) -> Result<Vec<CredentialKind>, CredentialsError> {
    text.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|grant| {
            Ok(match grant {
                "aws" => CredentialKind::Aws,
                "azure" => CredentialKind::Azure,
                "gcp" => CredentialKind::Gcp,
                "alibaba" => CredentialKind::Alibaba,
                "kubernetes" => CredentialKind::Kubernetes,
                _ => match grant.strip_prefix("env:") {
                    Some(name)
                        if !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                    {
                        CredentialKind::Env(name.to_owned())
                    }
                    _ => {
                        return Err(CredentialsError::BadGrant {
                            grant: grant.to_owned(),
                        });
                    }
                },
            })
        })
        .collect()
}

/// Credentials handed to one adapter. `Debug` shows the kinds, never the values.
#[derive(Clone, Default)]
pub struct GrantedCredentials(Vec<Credential>);

impl GrantedCredentials {
    pub fn as_slice(&self) -> &[Credential] {
        &self.0
    }

    /// The kinds, as `--grant` spells them (for logs).
    pub fn kinds(&self) -> Vec<String> {
        self.0.iter().map(|c| grant_name(&c.kind)).collect()
    }
}

impl fmt::Debug for GrantedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GrantedCredentials")
            .field(&self.kinds())
            .finish()
    }
}

/// Whether a third-party adapter was granted every credential it declares (first-party
/// adapters need no grant). Reads nothing; the error says which `--grant` flags to add.
pub fn check_grants(
    info: &ProviderInfo,
    origin: &str,
    first_party: bool,
    grants: &[CredentialKind],
) -> Result<(), CredentialsError> {
    if first_party {
        return Ok(());
    }
    let missing: Vec<&CredentialKind> = info
        .credentials
        .iter()
        .filter(|k| !grants.iter().any(|g| same_kind(g, k)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(CredentialsError::NotGranted {
        plugin: info.name.clone(),
        origin: origin.to_owned(),
        wanted: missing
            .iter()
            .map(|k| credential_words(k))
            .collect::<Vec<_>>()
            .join("; "),
        flags: missing
            .iter()
            .map(|k| format!("--grant {}", grant_name(k)))
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// Reads the credentials the adapter `info` declares. A first-party adapter gets all of them;
/// a third-party one must have each granted, else nothing is read and the error says which
/// `--grant` flags to add. Grants the adapter does not declare are not used.
pub fn for_adapter(
    info: &ProviderInfo,
    origin: &str,
    first_party: bool,
    grants: &[CredentialKind],
    sources: &CredentialSources,
) -> Result<GrantedCredentials, CredentialsError> {
    check_grants(info, origin, first_party, grants)?;
    for unused in grants
        .iter()
        .filter(|g| !info.credentials.iter().any(|k| same_kind(g, k)))
    {
        tracing::warn!(grant = %grant_name(unused), plugin = %info.name,
            "granted a credential the adapter does not ask for; it is not handed over");
    }
    let mut out = Vec::new();
    for kind in &info.credentials {
        let values = match kind {
            CredentialKind::Aws => {
                let credentials = AwsCredentials::load(sources)?;
                tracing::info!(access_key_id = %credentials.access_key_id,
                    origin = %credentials.origin, plugin = %info.name, "handing over AWS credentials");
                let mut values = credentials.into_values();
                if let Some(region) = aws_default_region(sources)? {
                    values.push(("region".to_owned(), region));
                }
                values
            }
            other => env_sets::load(other, sources)?,
        };
        out.push(Credential {
            kind: kind.clone(),
            values,
        });
    }
    Ok(GrantedCredentials(out))
}

/// Whether two credential kinds are the same (the generated type has no `PartialEq`).
fn same_kind(a: &CredentialKind, b: &CredentialKind) -> bool {
    grant_name(a) == grant_name(b)
}

fn read_optional(path: &Path) -> Result<Option<String>, CredentialsError> {
    match fs_err::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{ArtifactKind, ColdStartScope};

    fn info(credentials: Vec<CredentialKind>) -> ProviderInfo {
        ProviderInfo {
            name: "mycloud".into(),
            version: "1".into(),
            allowed_hosts: vec![],
            endpoint_hosts: vec![],
            artifacts: vec![ArtifactKind::None],
            credentials,
            options: vec![],
            cold_start_scope: ColdStartScope::Function,
            instance_concurrency: 1,
        }
    }

    #[test]
    fn grants_parse_and_bad_ones_are_named() {
        let grants = parse_grants("aws,env:FLY_API_TOKEN").unwrap();
        let names: Vec<String> = grants.iter().map(grant_name).collect();
        assert_eq!(names, vec!["aws", "env:FLY_API_TOKEN"]);
        let err = parse_grants("env:A-B").unwrap_err().to_string();
        assert!(err.contains("\"env:A-B\""), "{err}");
        assert!(parse_grants("everything").is_err());
    }

    #[test]
    fn third_party_gets_nothing_without_a_grant() {
        let wants = info(vec![CredentialKind::Env("TOKEN".into())]);
        let sources = CredentialSources::with_env(&[("TOKEN", "s3cr3t"), ("OTHER", "x")]);
        let err = for_adapter(&wants, "x.wasm", false, &[], &sources).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--grant env:TOKEN"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");

        let granted = for_adapter(
            &wants,
            "x.wasm",
            false,
            &[CredentialKind::Env("TOKEN".into())],
            &sources,
        )
        .unwrap();
        assert_eq!(granted.as_slice().len(), 1);
        assert_eq!(
            granted.as_slice()[0].values,
            vec![("TOKEN".to_owned(), "s3cr3t".to_owned())]
        );
        assert!(!format!("{granted:?}").contains("s3cr3t"));

        // A grant it does not declare is not handed over.
        let none = for_adapter(
            &info(vec![]),
            "x.wasm",
            false,
            &[CredentialKind::Env("OTHER".into())],
            &sources,
        )
        .unwrap();
        assert!(none.as_slice().is_empty());
    }

    #[test]
    fn first_party_gets_what_it_declares() {
        let wants = info(vec![CredentialKind::Aws]);
        let sources = CredentialSources::with_env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "sk"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let granted = for_adapter(&wants, "embedded", true, &[], &sources).unwrap();
        let values = &granted.as_slice()[0].values;
        assert!(values.contains(&("secret-access-key".into(), "sk".into())));
        assert!(values.contains(&("region".into(), "eu-west-1".into())));
    }
}
