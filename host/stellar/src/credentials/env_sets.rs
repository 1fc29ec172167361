//! Credential kinds that are a fixed set of environment variables or one file, read the way
//! each cloud's own tools read them: Azure's service principal (`AZURE_*`), Alibaba Cloud's
//! access keys (`ALIBABA_CLOUD_*`), a Google service-account key file
//! (`GOOGLE_APPLICATION_CREDENTIALS`), a kubeconfig (`KUBECONFIG`, else `~/.kube/config`), and
//! one named variable (`env:NAME`).

use std::path::PathBuf;

use super::{CredentialSources, CredentialsError};
use crate::plugin::CredentialKind;
use crate::plugin::declaration::grant_name;

/// Largest credential file read (a service-account key is ~2 KiB, a kubeconfig a few KiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// `(variable, value key, required)` of the kinds that are plain variables.
fn variables(kind: &CredentialKind) -> Vec<(String, &'static str, bool)> {
    let fixed = |list: &[(&str, &'static str, bool)]| {
        list.iter()
            .map(|(var, key, required)| ((*var).to_owned(), *key, *required))
            .collect()
    };
    match kind {
        CredentialKind::Azure => fixed(&[
            ("AZURE_TENANT_ID", "tenant-id", true),
            ("AZURE_CLIENT_ID", "client-id", true),
            ("AZURE_CLIENT_SECRET", "client-secret", true),
            ("AZURE_SUBSCRIPTION_ID", "subscription-id", false),
        ]),
        CredentialKind::Alibaba => fixed(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "access-key-id", true),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "access-key-secret", true),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "security-token", false),
        ]),
        _ => Vec::new(),
    }
}

/// The values of `kind` (every kind but `aws`, which has its own module).
pub(super) fn load(
    kind: &CredentialKind,
    sources: &CredentialSources,
) -> Result<Vec<(String, String)>, CredentialsError> {
    let missing = |variable: &str| CredentialsError::MissingVariable {
        kind: grant_name(kind),
        variable: variable.to_owned(),
    };
    match kind {
        CredentialKind::Env(name) => {
            let value = sources.var(name).ok_or_else(|| missing(name))?;
            Ok(vec![(name.clone(), value.to_owned())])
        }
        CredentialKind::Gcp => {
            let path = sources
                .var("GOOGLE_APPLICATION_CREDENTIALS")
                .ok_or_else(|| missing("GOOGLE_APPLICATION_CREDENTIALS"))?;
            let json = read_file(kind, PathBuf::from(path))?;
            Ok(vec![("service-account-json".to_owned(), json)])
        }
        CredentialKind::Kubernetes => {
            let path = match sources.var("KUBECONFIG") {
                // Like kubectl, the first file of a `:`-separated list.
                Some(list) => PathBuf::from(list.split(':').next().unwrap_or(list)),
                None => sources
                    .home
                    .as_ref()
                    .map(|h| h.join(".kube").join("config"))
                    .ok_or_else(|| missing("KUBECONFIG (or HOME for ~/.kube/config)"))?,
            };
            Ok(vec![("kubeconfig".to_owned(), read_file(kind, path)?)])
        }
        _ => variables(kind)
            .into_iter()
            .filter_map(|(variable, key, required)| match sources.var(&variable) {
                Some(value) => Some(Ok((key.to_owned(), value.to_owned()))),
                None if required => Some(Err(missing(&variable))),
                None => None,
            })
            .collect(),
    }
}

fn read_file(kind: &CredentialKind, path: PathBuf) -> Result<String, CredentialsError> {
    let read_err = |source| CredentialsError::Read {
        path: path.clone(),
        source,
    };
    let size = fs_err::metadata(&path).map_err(read_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(CredentialsError::FileTooLarge {
            kind: grant_name(kind),
            path,
            max: MAX_FILE_BYTES,
        });
    }
    fs_err::read_to_string(&path).map_err(read_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_and_alibaba_read_their_variables() {
        let azure = load(
            &CredentialKind::Azure,
            &CredentialSources::with_env(&[
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_CLIENT_SECRET", "s"),
            ]),
        )
        .unwrap();
        assert_eq!(
            azure,
            vec![
                ("tenant-id".to_owned(), "t".to_owned()),
                ("client-id".to_owned(), "c".to_owned()),
                ("client-secret".to_owned(), "s".to_owned()),
            ]
        );
        let err = load(
            &CredentialKind::Alibaba,
            &CredentialSources::with_env(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "id")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the `alibaba` credential needs ALIBABA_CLOUD_ACCESS_KEY_SECRET to be set (and not empty)"
        );
    }

    #[test]
    fn files_are_read_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        fs_err::write(&key, r#"{"type":"service_account"}"#).unwrap();
        let gcp = load(
            &CredentialKind::Gcp,
            &CredentialSources::with_env(&[(
                "GOOGLE_APPLICATION_CREDENTIALS",
                key.to_str().unwrap(),
            )]),
        )
        .unwrap();
        assert_eq!(gcp[0].0, "service-account-json");
        let big = dir.path().join("big");
        fs_err::write(&big, vec![b'x'; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        let err = load(
            &CredentialKind::Kubernetes,
            &CredentialSources::with_env(&[("KUBECONFIG", big.to_str().unwrap())]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
