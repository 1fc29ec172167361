//! Pushes the OCI image stellar built (artifact kind `oci-image`) to a container registry over
//! the OCI distribution API, from inside an adapter (wasm32-wasip2), for every adapter that
//! deploys containers (Cloud Run, Knative/vHive).
//!
//! The artifact is an *oci-archive*: an OCI image layout packed in one tar. stellar's host
//! writes its entries in the order `oci-layout`, `index.json`, the manifest, the config, then
//! the layers, so [`push_image`] pushes in **one sequential pass** through the artifact
//! resource (which only offers `read(max)`, `rewind`, `size` and `sha256`): the small JSON
//! documents are read into memory (each at most [`MAX_DOCUMENT_BYTES`]), every layer is
//! streamed from the artifact straight into the upload request, 1 MiB at a time, so a large
//! image is never whole in guest memory. An archive in another order still pushes: entries met
//! before the manifest are remembered by offset and read in a second pass (rewind + skip).
//!
//! The exchange, per blob (config and layers): `HEAD /v2/<repo>/blobs/<digest>`: if the
//! registry has it, it is skipped ([`PushedImage::blobs_skipped`]). Otherwise `POST
//! /v2/<repo>/blobs/uploads/` opens an upload session, `PATCH <location>` sends the bytes
//! (one request per [`CHUNK_BYTES`], with `Content-Range`), hashing them on the way; only when
//! the bytes hash to the digest the manifest declares does `PUT <location>?digest=<digest>`
//! commit the blob, otherwise the session is cancelled (`DELETE`) and the push refused. Last,
//! `PUT /v2/<repo>/manifests/<tag>` with the manifest's own media type; the registry's
//! `Docker-Content-Digest` must equal the digest computed here. The `Location` headers of
//! upload sessions may be relative or absolute; an absolute one must stay on the registry's
//! scheme and host (anything else is refused rather than followed).
//!
//! Authentication ([`RegistryAuth`]): anonymous, or a user and password. A `401` with
//! `WWW-Authenticate: Basic` is answered with Basic auth; `WWW-Authenticate: Bearer
//! realm=..,service=..,scope=..` (Docker Hub, Artifact Registry, distribution with token
//! auth) is answered by fetching a token from the realm (with Basic auth when credentials are
//! given) for `repository:<repo>:pull,push`, then retrying with `Authorization: Bearer`. A
//! second 401, or a 403 / `DENIED`, is [`PushError::Unauthorized`], naming the registry and the
//! user (never the password).
//!
//! **Google Artifact Registry**: `base_url` `https://<region>-docker.pkg.dev`, repository
//! `<project>/<repository>/<image>`, [`RegistryAuth::Basic`] with user `oauth2accesstoken` and
//! an OAuth 2.0 access token (scope `cloud-platform`) as the password; the service account
//! needs `roles/artifactregistry.writer` on the repository.
//!
//! ```ignore
//! let pushed = stellar_oci_push::push_image(
//!     &artifact,
//!     &Registry {
//!         base_url: "https://europe-docker.pkg.dev".into(),
//!         auth: RegistryAuth::Basic { user: "oauth2accesstoken".into(), password: token },
//!     },
//!     "my-project/stellar/measure",
//!     "run-1234",
//! )?;
//! // pushed.reference = "europe-docker.pkg.dev/my-project/stellar/measure@sha256:..."
//! ```
//!
//! The adapter must list the registry host in its `allowed-hosts` (and the token realm's
//! host, when it differs), like any other host it calls.

mod archive;
mod auth;
mod error;
mod location;
mod manifest;
mod push;
mod source;

pub use error::PushError;
pub use source::ArtifactSource;

use stellar_guest_sdk::Artifact;

/// Largest JSON document (index, manifest, config) read into memory from the archive.
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// Bytes sent per `PATCH` of a blob upload (each still streamed 1 MiB at a time).
pub const CHUNK_BYTES: u64 = 64 << 20;

/// A registry to push to.
#[derive(Clone, PartialEq, Eq)]
pub struct Registry {
    /// `scheme://host[:port]`, e.g. `https://europe-docker.pkg.dev` or
    /// `http://127.0.0.1:5000` (no path, no trailing `/v2`).
    pub base_url: String,
    /// How to authenticate.
    pub auth: RegistryAuth,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base_url", &self.base_url)
            .field("auth", &self.auth)
            .finish()
    }
}

/// Credentials for a registry. Bearer challenges are answered internally with these.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No credentials (a registry open for pushes, or anonymous bearer tokens).
    Anonymous,
    /// User and password (Basic auth, or the credentials for a bearer token realm).
    Basic {
        /// The user (`oauth2accesstoken` for Artifact Registry).
        user: String,
        /// The password or access token; never printed.
        password: String,
    },
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// What [`push_image`] pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `sha256:<hex>` of the manifest's bytes (the registry confirmed it).
    pub digest: String,
    /// `host[:port]/<repository>@sha256:<hex>`: the image by digest, for a deployment.
    pub reference: String,
    /// Blob bytes sent to the registry (skipped blobs and the manifest not counted).
    pub bytes_uploaded: u64,
    /// Blobs the registry already had (`HEAD` answered 200), not uploaded again.
    pub blobs_skipped: u32,
}

/// Pushes the oci-archive `artifact` to `repository` (e.g. `project/repo/image`) on
/// `registry` and tags it `tag`. See the crate docs for the exchange.
///
/// # Errors
/// [`PushError::Unauthorized`] when the registry refuses the credentials,
/// [`PushError::BadArtifact`] when the artifact is not a pushable oci-archive (or a blob does
/// not match its digest), [`PushError::Invalid`] for a bad URL, repository or tag,
/// [`PushError::Registry`] / [`PushError::BadResponse`] for other registry answers,
/// [`PushError::Http`] when the exchange fails. All convert into a
/// [`stellar_guest_sdk::ProviderError`].
pub fn push_image(
    artifact: &Artifact,
    registry: &Registry,
    repository: &str,
    tag: &str,
) -> Result<PushedImage, PushError> {
    push::push_from(artifact, registry, repository, tag)
}
