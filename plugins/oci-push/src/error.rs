//! Why a push failed, and how that becomes the WIT `provider-error` the host acts on.

use stellar_guest_sdk::ProviderError;
use stellar_guest_sdk::http::HttpError;

/// Why [`crate::push_image`] failed. Every message names the registry (and the blob or
/// manifest) it concerns; none holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The registry refused the credentials (401 after answering its challenge, or 403 /
    /// `DENIED`).
    #[error(
        "registry {registry} refused the credentials{user}: {detail} (for Artifact Registry the \
         user is `oauth2accesstoken` and the password an OAuth access token with the \
         artifactregistry.writer role on the repository)"
    )]
    Unauthorized {
        /// `host[:port]` of the registry.
        registry: String,
        /// ` of user "<name>"`, or empty when anonymous.
        user: String,
        /// What the registry said.
        detail: String,
    },
    /// The registry answered something else than the distribution API allows.
    #[error("registry {registry}: {request}: HTTP {status}: {detail}")]
    Registry {
        /// `host[:port]` of the registry.
        registry: String,
        /// The request line, e.g. `PUT /v2/x/manifests/latest`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The registry's own words (its error codes and messages).
        detail: String,
    },
    /// The registry sent a header (Location, WWW-Authenticate, Docker-Content-Digest) that is
    /// missing or not usable.
    #[error("registry {registry}: {what}")]
    BadResponse {
        /// `host[:port]` of the registry.
        registry: String,
        /// What was wrong.
        what: String,
    },
    /// The artifact is not an oci-archive stellar can push (not a tar, no `index.json`, a
    /// blob whose bytes do not match its digest, ...). Nothing more is uploaded.
    #[error("artifact `{file_name}`: {what}")]
    BadArtifact {
        /// The artifact's file name.
        file_name: String,
        /// What was wrong.
        what: String,
    },
    /// A caller-supplied argument is not usable (registry URL, repository or tag syntax).
    #[error("{0}")]
    Invalid(String),
    /// The HTTP exchange itself failed (host denied, unreachable, ...).
    #[error(transparent)]
    Http(#[from] HttpError),
}

impl From<PushError> for ProviderError {
    fn from(e: PushError) -> Self {
        let message = e.to_string();
        match e {
            PushError::Unauthorized { .. } => ProviderError::Unauthorized(message),
            PushError::Registry { status, .. } => {
                stellar_guest_sdk::errors::for_status(status, message)
            }
            PushError::BadResponse { .. } => ProviderError::Other(message),
            PushError::BadArtifact { .. } | PushError::Invalid(_) => {
                ProviderError::Invalid(message)
            }
            PushError::Http(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_errors_name_the_registry_and_map_to_unauthorized() {
        let e = PushError::Unauthorized {
            registry: "127.0.0.1:5000".into(),
            user: " of user \"stellar\"".into(),
            detail: "UNAUTHORIZED: authentication required".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("registry 127.0.0.1:5000 refused the credentials of user \"stellar\""),
            "{text}"
        );
        assert!(matches!(
            ProviderError::from(e),
            ProviderError::Unauthorized(_)
        ));
        let e = PushError::Registry {
            registry: "r".into(),
            request: "PUT /v2/a/manifests/t".into(),
            status: 503,
            detail: "busy".into(),
        };
        assert!(matches!(
            ProviderError::from(e),
            ProviderError::Transient(_)
        ));
    }
}
