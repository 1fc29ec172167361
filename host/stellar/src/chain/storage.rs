//! Where storage-transfer chains keep their payloads, and the credentials for it.
//!
//! Why from the environment: bucket, endpoint and keys are the user's account details, and the
//! experiment file must never hold credentials (it is shared and committed). They are read
//! here, at provisioning, only when a sub-experiment asks for `StorageTransfer`, and handed to
//! the chain's functions in their environment (the same way a cloud hands a function its
//! role's credentials); they are never logged or written to the results.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `STELLAR_CHAIN_STORAGE` | `s3` or `azure-blob` |
//! | `STELLAR_CHAIN_S3_BUCKET`, `STELLAR_CHAIN_S3_ENDPOINT` | bucket; endpoint (default `https://s3.<region>.amazonaws.com`, path-style) |
//! | `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | S3 region and credentials |
//! | `STELLAR_CHAIN_BLOB_CONTAINER`, `STELLAR_CHAIN_BLOB_ENDPOINT` | container; endpoint (default `https://<account>.blob.core.windows.net`) |
//! | `AZURE_STORAGE_ACCOUNT`, `AZURE_STORAGE_KEY` | Blob account and its SharedKey |

use stellar_measure::chain::Transfer;
use stellar_measure::chain::storage_env as fenv;

/// Selects the backend.
pub const STORAGE_ENV: &str = "STELLAR_CHAIN_STORAGE";

/// A configured storage backend.
#[derive(Clone)]
pub struct ChainStorage {
    transfer: Transfer,
    env: Vec<(String, String)>,
}

impl std::fmt::Debug for ChainStorage {
    // Never print the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStorage")
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

/// A storage setting is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error(
    "StorageTransfer needs object storage: {0} (see the README section on data-transfer chains)"
)]
pub struct StorageError(String);

impl ChainStorage {
    /// Reads the backend from `env`.
    ///
    /// # Errors
    /// A missing or malformed variable, named.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, StorageError> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let need = |k: &'static str| get(k).ok_or_else(|| StorageError(format!("set {k}")));
        let kind = need(STORAGE_ENV)?;
        match Transfer::parse(kind.trim()) {
            Some(Transfer::S3) => {
                let region = get("AWS_REGION")
                    .or_else(|| get("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| "us-east-1".into());
                let endpoint = get("STELLAR_CHAIN_S3_ENDPOINT")
                    .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
                let mut env = vec![
                    (fenv::ENDPOINT.into(), endpoint),
                    (fenv::BUCKET.into(), need("STELLAR_CHAIN_S3_BUCKET")?),
                    (fenv::REGION.into(), region),
                    (fenv::ACCESS_KEY_ID.into(), need("AWS_ACCESS_KEY_ID")?),
                    (
                        fenv::SECRET_ACCESS_KEY.into(),
                        need("AWS_SECRET_ACCESS_KEY")?,
                    ),
                ];
                if let Some(token) = get("AWS_SESSION_TOKEN") {
                    env.push((fenv::SESSION_TOKEN.into(), token));
                }
                Ok(Self {
                    transfer: Transfer::S3,
                    env,
                })
            }
            Some(Transfer::AzureBlob) => {
                let account = need("AZURE_STORAGE_ACCOUNT")?;
                let endpoint = get("STELLAR_CHAIN_BLOB_ENDPOINT")
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                Ok(Self {
                    transfer: Transfer::AzureBlob,
                    env: vec![
                        (fenv::ENDPOINT.into(), endpoint),
                        (fenv::BUCKET.into(), need("STELLAR_CHAIN_BLOB_CONTAINER")?),
                        (fenv::ACCOUNT.into(), account),
                        (fenv::ACCOUNT_KEY.into(), need("AZURE_STORAGE_KEY")?),
                    ],
                })
            }
            _ => Err(StorageError(format!(
                "{STORAGE_ENV} is {kind:?}; expected s3 or azure-blob"
            ))),
        }
    }

    /// How payloads travel.
    pub fn transfer(&self) -> Transfer {
        self.transfer
    }

    /// The functions' storage variables (credentials included).
    pub fn function_env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn s3_needs_bucket_and_keys_and_hides_them_in_debug() {
        let err = ChainStorage::from_env(env_of(&[(STORAGE_ENV, "s3")])).unwrap_err();
        assert!(err.to_string().contains("STELLAR_CHAIN_S3_BUCKET"), "{err}");
        let s = ChainStorage::from_env(env_of(&[
            (STORAGE_ENV, "s3"),
            ("STELLAR_CHAIN_S3_BUCKET", "b"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ]))
        .unwrap();
        assert_eq!(s.transfer(), Transfer::S3);
        assert!(!format!("{s:?}").contains("very-secret"));
        let env = s.function_env();
        assert!(env.contains(&(
            fenv::ENDPOINT.into(),
            "https://s3.us-east-1.amazonaws.com".into()
        )));
    }

    #[test]
    fn unknown_backend_is_named() {
        let err = ChainStorage::from_env(env_of(&[(STORAGE_ENV, "gcs")])).unwrap_err();
        assert!(
            err.to_string().contains("expected s3 or azure-blob"),
            "{err}"
        );
        let err = ChainStorage::from_env(env_of(&[])).unwrap_err();
        assert!(err.to_string().contains(STORAGE_ENV), "{err}");
    }
}
