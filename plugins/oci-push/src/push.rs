//! The push itself: the registry client (auth challenges, blob uploads, manifest) and the
//! pass through the archive that feeds it (see the crate docs for the order of requests).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest as _, Sha256};
use stellar_guest_sdk::http::{
    BaseUrl, Body, HttpError, Method, Request, Response, Scheme, StreamBody,
};
use stellar_guest_sdk::{Artifact, errors, log};

use crate::archive::{self, EntryKind};
use crate::auth::{self, Challenge};
use crate::location::{parse_absolute, resolve_location, with_query};
use crate::manifest::{self, Descriptor, Manifest, sha256_digest, sha256_hex};
use crate::source::{ArtifactSource, Cursor};
use crate::{CHUNK_BYTES, MAX_DOCUMENT_BYTES, PushError, PushedImage, Registry, RegistryAuth};

/// Small blobs kept in memory before the manifest says what they are, in total.
const MAX_EARLY_BYTES: u64 = 16 << 20;
/// Cap on registry responses (error documents, tokens).
const MAX_RESPONSE_BYTES: usize = 1 << 20;

pub(crate) fn push_from(
    artifact: &Artifact,
    registry: &Registry,
    repository: &str,
    tag: &str,
) -> Result<PushedImage, PushError> {
    push_source(artifact, registry, repository, tag)
}

/// Checks a repository name (distribution's grammar, lower case path components).
pub(crate) fn check_repository(repository: &str) -> Result<(), PushError> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if repository.is_empty() || repository.len() > 255 || !repository.split('/').all(component_ok) {
        return Err(PushError::Invalid(format!(
            "repository {repository:?} is not a valid image repository (lower-case letters, digits, \
             `.`, `_`, `-` in `/`-separated components, each starting and ending with a letter or \
             digit, e.g. `my-project/stellar/measure`)"
        )));
    }
    Ok(())
}

/// Checks a tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
pub(crate) fn check_tag(tag: &str) -> Result<(), PushError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PushError::Invalid(format!(
            "tag {tag:?} is not a valid image tag (letters, digits, `_`, `.`, `-`, at most 128, \
             not starting with `.` or `-`)"
        )))
    }
}

/// The push over any source (the artifact in a component; bytes in tests).
pub(crate) fn push_source(
    source: &dyn ArtifactSource,
    registry: &Registry,
    repository: &str,
    tag: &str,
) -> Result<PushedImage, PushError> {
    check_repository(repository)?;
    check_tag(tag)?;
    let client = Client::new(registry, repository, source.file_name())?;
    client.ping()?;
    let mut pass = Pass {
        client: &client,
        manifest_descriptor: None,
        manifest: None,
        early: BTreeMap::new(),
        early_bytes: 0,
        deferred: BTreeMap::new(),
        done: BTreeSet::new(),
        bytes_uploaded: 0,
        blobs_skipped: 0,
    };
    let mut cursor = Cursor::new(source);
    pass.walk(&mut cursor)?;
    let (manifest_bytes, manifest, media_type) = pass.finish(&mut cursor)?;
    let digest = client.put_manifest(tag, &manifest_bytes, &media_type)?;
    drop(manifest);
    Ok(PushedImage {
        reference: format!("{}/{repository}@{digest}", client.authority),
        digest,
        bytes_uploaded: pass.bytes_uploaded,
        blobs_skipped: pass.blobs_skipped,
    })
}

/// State of the pass through the archive.
struct Pass<'c> {
    client: &'c Client<'c>,
    /// From `index.json`.
    manifest_descriptor: Option<Descriptor>,
    /// Bytes, parsed manifest.
    manifest: Option<(Vec<u8>, Manifest)>,
    /// Small blobs met before the manifest was known, verified against their names.
    early: BTreeMap<String, Vec<u8>>,
    early_bytes: u64,
    /// Larger blobs met before the manifest was known: digest -> (data offset, size).
    deferred: BTreeMap<String, (u64, u64)>,
    /// Blobs uploaded or skipped.
    done: BTreeSet<String>,
    bytes_uploaded: u64,
    blobs_skipped: u32,
}

impl Pass<'_> {
    /// One pass over the archive: documents into memory, blobs the manifest names uploaded as
    /// they come.
    fn walk(&mut self, cursor: &mut Cursor<'_>) -> Result<(), PushError> {
        while let Some(entry) = archive::next_entry(cursor)? {
            let end = entry.end_offset();
            if entry.kind == EntryKind::File {
                self.entry(cursor, &entry.name, entry.size)?;
            }
            if cursor.position() > end {
                return Err(cursor.bad(format!("read past the end of entry `{}`", entry.name)));
            }
            cursor.skip(end - cursor.position())?;
        }
        Ok(())
    }

    fn entry(&mut self, cursor: &mut Cursor<'_>, name: &str, size: u64) -> Result<(), PushError> {
        if name == "index.json" {
            if size > MAX_DOCUMENT_BYTES {
                return Err(cursor.bad(format!(
                    "index.json is {size} bytes (at most {MAX_DOCUMENT_BYTES})"
                )));
            }
            let bytes = cursor.read_exact(size)?;
            let index: manifest::Index = serde_json::from_slice(&bytes)
                .map_err(|e| cursor.bad(format!("index.json: {e}")))?;
            let chosen = manifest::choose_manifest(&index)
                .map_err(|e| cursor.bad(e))?
                .clone();
            if let Some(bytes) = self.early.remove(&chosen.digest) {
                self.set_manifest(cursor, &chosen, bytes)?;
            }
            self.manifest_descriptor = Some(chosen);
            return Ok(());
        }
        let Some(hex) = name.strip_prefix("blobs/sha256/") else {
            return Ok(()); // oci-layout and anything else: not pushed
        };
        let digest = format!("sha256:{hex}");
        if sha256_hex(&digest).is_none() {
            return Err(cursor.bad(format!("`{name}` is not named after a sha256 digest")));
        }
        if self.manifest.is_some() {
            let descriptor = self
                .manifest
                .as_ref()
                .and_then(|(_, m)| blob_descriptor(m, &digest).cloned());
            if let Some(descriptor) = descriptor
                && !self.done.contains(&digest)
            {
                self.push_blob(&descriptor, Some(size), &mut |len, sink| {
                    cursor.stream(len, sink)
                })?;
            }
            return Ok(());
        }
        let is_manifest = self
            .manifest_descriptor
            .as_ref()
            .is_some_and(|d| d.digest == digest);
        if is_manifest || (size <= MAX_DOCUMENT_BYTES && self.early_bytes + size <= MAX_EARLY_BYTES)
        {
            let bytes = cursor.read_exact(size)?;
            if sha256_digest(&bytes) != digest {
                return Err(cursor.bad(format!("`{name}` does not hash to its name")));
            }
            if is_manifest {
                let descriptor = self
                    .manifest_descriptor
                    .clone()
                    .unwrap_or_else(|| unreachable_descriptor(&digest));
                self.set_manifest(cursor, &descriptor, bytes)?;
            } else {
                self.early_bytes += size;
                self.early.insert(digest, bytes);
            }
        } else {
            self.deferred.insert(digest, (cursor.position(), size));
        }
        Ok(())
    }

    /// Takes the manifest, then pushes the small blobs already in memory that it names.
    fn set_manifest(
        &mut self,
        cursor: &Cursor<'_>,
        descriptor: &Descriptor,
        bytes: Vec<u8>,
    ) -> Result<(), PushError> {
        if sha256_digest(&bytes) != descriptor.digest || bytes.len() as u64 != descriptor.size {
            return Err(cursor.bad(format!(
                "the manifest blob does not match its descriptor in index.json ({}, {} bytes)",
                descriptor.digest, descriptor.size
            )));
        }
        let manifest = manifest::parse_manifest(&bytes).map_err(|e| cursor.bad(e))?;
        let names: Vec<Descriptor> = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .cloned()
            .collect();
        self.manifest = Some((bytes, manifest));
        for descriptor in names {
            if let Some(bytes) = self.early.remove(&descriptor.digest) {
                self.push_from_memory(&descriptor, &bytes)?;
            }
        }
        self.early.clear();
        Ok(())
    }

    fn push_from_memory(&mut self, descriptor: &Descriptor, bytes: &[u8]) -> Result<(), PushError> {
        let mut offset = 0_usize;
        self.push_blob(descriptor, Some(bytes.len() as u64), &mut |len, sink| {
            let end = offset + usize::try_from(len).unwrap_or(usize::MAX);
            let piece = bytes.get(offset..end).unwrap_or_default();
            offset = end;
            sink(piece)
        })
    }

    /// After the pass: the manifest must be known; blobs met before it are read again
    /// (rewind + skip), blobs not in the archive must already be in the registry.
    fn finish(
        &mut self,
        cursor: &mut Cursor<'_>,
    ) -> Result<(Vec<u8>, Manifest, String), PushError> {
        let Some(descriptor) = self.manifest_descriptor.clone() else {
            return Err(cursor.bad("no index.json: not an OCI image layout archive (oci-archive)"));
        };
        let Some((bytes, manifest)) = self.manifest.take() else {
            return Err(cursor.bad(format!(
                "the manifest {} named by index.json is not in the archive",
                descriptor.digest
            )));
        };
        let wanted: Vec<Descriptor> = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .cloned()
            .collect();
        for d in wanted {
            if self.done.contains(&d.digest) {
                continue;
            }
            if let Some(&(offset, size)) = self.deferred.get(&d.digest) {
                log::debug(format!(
                    "{} came before the manifest in the archive: reading it again",
                    d.digest
                ));
                cursor.seek(offset)?;
                self.push_blob(&d, Some(size), &mut |len, sink| cursor.stream(len, sink))?;
            } else {
                // Not in the archive: fine only if the registry has it.
                self.push_blob(&d, None, &mut |_, _| Ok(()))?;
            }
        }
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| descriptor.media_type.clone());
        Ok((bytes, manifest, media_type))
    }

    /// Skips `descriptor` if the registry has it, else uploads it from `feed` (`None` size:
    /// not in the archive).
    fn push_blob(
        &mut self,
        descriptor: &Descriptor,
        size_in_archive: Option<u64>,
        feed: &mut Feed<'_>,
    ) -> Result<(), PushError> {
        let digest = &descriptor.digest;
        if self.client.blob_exists(digest)? {
            log::info(format!(
                "blob {digest} ({} bytes) is already in the registry",
                descriptor.size
            ));
            self.blobs_skipped += 1;
            self.done.insert(digest.clone());
            return Ok(());
        }
        let Some(size) = size_in_archive else {
            return Err(PushError::BadArtifact {
                file_name: self.client.file_name.clone(),
                what: format!(
                    "blob {digest} named by the manifest is neither in the archive nor in the registry"
                ),
            });
        };
        if size != descriptor.size {
            return Err(PushError::BadArtifact {
                file_name: self.client.file_name.clone(),
                what: format!(
                    "blob {digest} is {size} bytes in the archive but {} in the manifest",
                    descriptor.size
                ),
            });
        }
        self.client.upload_blob(digest, size, feed)?;
        log::info(format!("uploaded blob {digest} ({size} bytes)"));
        self.bytes_uploaded += size;
        self.done.insert(digest.clone());
        Ok(())
    }
}

/// A placeholder that is never used (the caller checked the descriptor exists).
fn unreachable_descriptor(digest: &str) -> Descriptor {
    Descriptor {
        media_type: String::new(),
        digest: digest.to_string(),
        size: u64::MAX,
        platform: None,
    }
}

fn blob_descriptor<'m>(manifest: &'m Manifest, digest: &str) -> Option<&'m Descriptor> {
    std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .find(|d| d.digest == digest)
}

/// Hands the next `len` bytes of a blob to the sink.
type Feed<'f> =
    dyn FnMut(u64, &mut dyn FnMut(&[u8]) -> Result<(), PushError>) -> Result<(), PushError> + 'f;

/// The registry, with the authorization found so far.
struct Client<'r> {
    scheme: Scheme,
    /// `host[:port]` as requests use it, lower case.
    authority: String,
    repository: String,
    auth: &'r RegistryAuth,
    authorization: RefCell<Option<String>>,
    /// The artifact's name, for messages.
    file_name: String,
}

impl<'r> Client<'r> {
    fn new(registry: &'r Registry, repository: &str, file_name: String) -> Result<Self, PushError> {
        let base = BaseUrl::parse(registry.base_url.trim_end_matches('/')).map_err(|e| {
            PushError::Invalid(format!(
                "registry base URL: {e} (expected e.g. https://europe-docker.pkg.dev)"
            ))
        })?;
        if base.to_string() != format!("{}://{}", base.scheme().as_str(), base.authority()) {
            return Err(PushError::Invalid(format!(
                "registry base URL {:?}: expected scheme and host only, e.g. https://europe-docker.pkg.dev",
                registry.base_url
            )));
        }
        Ok(Self {
            scheme: base.scheme(),
            authority: base.authority().to_ascii_lowercase(),
            repository: repository.to_string(),
            auth: &registry.auth,
            authorization: RefCell::new(None),
            file_name,
        })
    }

    fn request(&self, method: Method, path_and_query: &str) -> Request<'static> {
        let request = Request::new(method, self.scheme, &self.authority, path_and_query)
            .max_response_bytes(MAX_RESPONSE_BYTES);
        match self.authorization.borrow().as_deref() {
            Some(value) => request.header("authorization", value),
            None => request,
        }
    }

    fn user_note(&self) -> String {
        match self.auth {
            RegistryAuth::Anonymous => " (no credentials given)".to_string(),
            RegistryAuth::Basic { user, .. } => format!(" of user {user:?}"),
        }
    }

    fn unauthorized(&self, response: &Response) -> PushError {
        PushError::Unauthorized {
            registry: self.authority.clone(),
            user: self.user_note(),
            detail: format!(
                "{}: HTTP {}: {}",
                request_line(response),
                response.status,
                detail(response)
            ),
        }
    }

    /// An error for an unexpected status: auth refusals are [`PushError::Unauthorized`].
    fn error(&self, response: &Response) -> PushError {
        if matches!(response.status, 401 | 403)
            || error_codes(response)
                .iter()
                .any(|c| c == "DENIED" || c == "UNAUTHORIZED")
        {
            return self.unauthorized(response);
        }
        PushError::Registry {
            registry: self.authority.clone(),
            request: request_line(response),
            status: response.status,
            detail: detail(response),
        }
    }

    /// Sends a request built by `build`; on 401 answers the challenge and sends it once more.
    fn send(&self, build: &dyn Fn(&Self) -> Request<'static>) -> Result<Response, PushError> {
        let response = build(self).send()?;
        if response.status != 401 {
            return Ok(response);
        }
        self.answer(&response)?;
        let response = build(self).send()?;
        if response.status == 401 {
            return Err(self.unauthorized(&response));
        }
        Ok(response)
    }

    /// `GET /v2/`: settles authentication before any upload, so no streamed body ever has to
    /// be sent twice.
    fn ping(&self) -> Result<(), PushError> {
        let response = self.send(&|c| c.request(Method::Get, "/v2/"))?;
        match response.status {
            200..=299 => Ok(()),
            404 => Err(PushError::BadResponse {
                registry: self.authority.clone(),
                what:
                    "GET /v2/ answered 404: not an OCI distribution (Docker registry v2) endpoint"
                        .to_string(),
            }),
            _ => Err(self.error(&response)),
        }
    }

    /// Answers the challenges of a 401.
    fn answer(&self, response: &Response) -> Result<(), PushError> {
        let challenges: Vec<Challenge> = response
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
            .flat_map(|(_, v)| auth::parse_challenges(v))
            .collect();
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.fetch_token(bearer)?;
            *self.authorization.borrow_mut() = Some(format!("Bearer {token}"));
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return match self.auth {
                RegistryAuth::Basic { user, password } => {
                    if self
                        .authorization
                        .borrow()
                        .as_deref()
                        .is_some_and(|a| a.starts_with("Basic "))
                    {
                        return Err(self.unauthorized(response));
                    }
                    *self.authorization.borrow_mut() = Some(auth::basic(user, password));
                    Ok(())
                }
                RegistryAuth::Anonymous => Err(self.unauthorized(response)),
            };
        }
        Err(PushError::BadResponse {
            registry: self.authority.clone(),
            what: format!(
                "{}: HTTP 401 without a Basic or Bearer WWW-Authenticate challenge",
                request_line(response)
            ),
        })
    }

    /// A token from the challenge's realm for `repository:<repo>:pull,push`.
    fn fetch_token(&self, challenge: &Challenge) -> Result<String, PushError> {
        let bad = |what: String| PushError::BadResponse {
            registry: self.authority.clone(),
            what,
        };
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| bad("a Bearer challenge without a realm".to_string()))?;
        let target = parse_absolute(realm).map_err(|e| bad(format!("token realm {e}")))?;
        let same_host = target.scheme == self.scheme && target.authority == self.authority;
        if target.scheme != Scheme::Https && !same_host {
            return Err(bad(format!(
                "token realm {realm:?} is plain http on another host; credentials are not sent there"
            )));
        }
        let mut path = target.path_and_query.clone();
        if let Some(service) = challenge.params.get("service") {
            path = with_query(&path, "service", service);
        }
        path = with_query(
            &path,
            "scope",
            &format!("repository:{}:pull,push", self.repository),
        );
        let mut request = Request::new(Method::Get, target.scheme, &target.authority, &path)
            .max_response_bytes(MAX_RESPONSE_BYTES);
        if let RegistryAuth::Basic { user, password } = self.auth {
            request = request.header("authorization", &auth::basic(user, password));
        }
        let response = request.send()?;
        if matches!(response.status, 401 | 403) {
            return Err(self.unauthorized(&response));
        }
        if !response.is_success() {
            return Err(self.error(&response));
        }
        auth::token_from_response(&response.body).ok_or_else(|| {
            bad(format!(
                "token realm {realm:?} answered without a usable `token`"
            ))
        })
    }

    fn blob_path(&self, digest: &str) -> String {
        format!("/v2/{}/blobs/{digest}", self.repository)
    }

    /// `HEAD` the blob: 200 = present, 404 = absent.
    fn blob_exists(&self, digest: &str) -> Result<bool, PushError> {
        let path = self.blob_path(digest);
        let response = self.send(&|c| c.request(Method::Head, &path))?;
        match response.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.error(&response)),
        }
    }

    fn location(&self, response: &Response, request_path: &str) -> Result<String, PushError> {
        let location = response
            .header("location")
            .ok_or_else(|| PushError::BadResponse {
                registry: self.authority.clone(),
                what: format!(
                    "{}: HTTP {} without a Location header",
                    request_line(response),
                    response.status
                ),
            })?;
        resolve_location(location, self.scheme, &self.authority, request_path).map_err(|what| {
            PushError::BadResponse {
                registry: self.authority.clone(),
                what: format!("{}: {what}", request_line(response)),
            }
        })
    }

    /// Opens an upload session, PATCHes the blob's bytes (hashing them), and commits it with
    /// `PUT ?digest=` only if they hash to `digest`; otherwise cancels the session.
    fn upload_blob(&self, digest: &str, size: u64, feed: &mut Feed<'_>) -> Result<(), PushError> {
        let start_path = format!("/v2/{}/blobs/uploads/", self.repository);
        let response = self.send(&|c| c.request(Method::Post, &start_path))?;
        if response.status != 202 {
            return Err(self.error(&response));
        }
        let mut location = self.location(&response, &start_path)?;
        let mut hasher = Sha256::new();
        let mut offset = 0_u64;
        let chunked = size > CHUNK_BYTES;
        while offset < size {
            let len = (size - offset).min(CHUNK_BYTES);
            let stashed: RefCell<Option<PushError>> = RefCell::new(None);
            let authority = self.authority.clone();
            let hasher_ref = &mut hasher;
            let feed_ref = &mut *feed;
            let stash = &stashed;
            let body = StreamBody::new(len, move |sink| {
                feed_ref(len, &mut |piece| {
                    hasher_ref.update(piece);
                    sink(piece).map_err(PushError::from)
                })
                .map_err(|e| match e {
                    PushError::Http(h) => h,
                    other => {
                        *stash.borrow_mut() = Some(other);
                        HttpError::Protocol {
                            authority,
                            reason: "upload stopped: the artifact could not be read".to_string(),
                        }
                    }
                })
            });
            let mut request = self
                .request(Method::Patch, &location)
                .header("content-type", "application/octet-stream");
            if chunked {
                request =
                    request.header("content-range", &format!("{offset}-{}", offset + len - 1));
            }
            let sent = request.body(Body::Stream(body)).send();
            if let Some(e) = stashed.borrow_mut().take() {
                self.cancel(&location);
                return Err(e);
            }
            let response = sent?;
            if response.status != 202 {
                let e = self.error(&response);
                self.cancel(&location);
                return Err(e);
            }
            location = self.location(&response, &location)?;
            offset += len;
        }
        let computed = format!("sha256:{}", hex::encode(hasher.finalize()));
        if computed != digest {
            self.cancel(&location);
            return Err(PushError::BadArtifact {
                file_name: self.file_name.clone(),
                what: format!(
                    "blob {digest} hashes to {computed}; the manifest's digest does not match its bytes, \
                     so it was not committed (upload cancelled)"
                ),
            });
        }
        let commit = with_query(&location, "digest", digest);
        let response = self.send(&|c| c.request(Method::Put, &commit).body(Body::None))?;
        if response.status != 201 {
            return Err(self.error(&response));
        }
        Ok(())
    }

    /// Best effort `DELETE` of an upload session.
    fn cancel(&self, location: &str) {
        if let Ok(response) = self.request(Method::Delete, location).send()
            && !response.is_success()
        {
            log::debug(format!(
                "cancelling upload {location}: HTTP {}",
                response.status
            ));
        }
    }

    /// `PUT` the manifest under `tag`; returns its digest, checked against the registry's.
    fn put_manifest(&self, tag: &str, bytes: &[u8], media_type: &str) -> Result<String, PushError> {
        let path = format!("/v2/{}/manifests/{tag}", self.repository);
        let digest = sha256_digest(bytes);
        let response = self.send(&|c| {
            c.request(Method::Put, &path)
                .header("content-type", media_type)
                .body(Body::Bytes(bytes.to_vec()))
        })?;
        if response.status != 201 {
            return Err(self.error(&response));
        }
        match response.header("docker-content-digest") {
            Some(theirs) if theirs.trim() != digest => Err(PushError::BadResponse {
                registry: self.authority.clone(),
                what: format!(
                    "the registry stored the manifest as {theirs}, but its bytes hash to {digest}"
                ),
            }),
            _ => Ok(digest),
        }
    }
}

/// `METHOD path` of the request that produced `response` (no scheme/host: they are in the
/// error's registry field).
fn request_line(response: &Response) -> String {
    match response.request.split_once("://") {
        Some((method_scheme, rest)) => {
            let method = method_scheme.split(' ').next().unwrap_or_default();
            let path = rest.find('/').map_or("/", |i| &rest[i..]);
            let path = path.split('?').next().unwrap_or(path);
            format!("{method} {path}")
        }
        None => response.request.clone(),
    }
}

/// The codes of a distribution error document (`{"errors":[{"code":..}]}`).
fn error_codes(response: &Response) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
        .collect()
}

/// The registry's words: `CODE: message` per error, or the body's message.
fn detail(response: &Response) -> String {
    let errors: Vec<String> = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("?");
            let message = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            format!("{code}: {message}")
        })
        .collect();
    if errors.is_empty() {
        errors::body_message(&response.body).unwrap_or_else(|| "no details".to_string())
    } else {
        errors.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_and_tag_syntax() {
        for ok in ["a", "my-project/stellar/measure", "x.y_z/a0"] {
            check_repository(ok).unwrap();
        }
        for bad in ["", "A", "a//b", "-a", "a/", "a/../b", "a b", "a?x"] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        check_tag("run-1234_x.1").unwrap();
        for bad in ["", ".a", "-a", "a/b", "a:b", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_error_details() {
        let r = Response {
            status: 401,
            headers: vec![],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#.to_vec(),
            request: "GET http://127.0.0.1:5000/v2/?x=1".into(),
        };
        assert_eq!(request_line(&r), "GET /v2/");
        assert_eq!(detail(&r), "UNAUTHORIZED: authentication required");
        assert_eq!(error_codes(&r), ["UNAUTHORIZED"]);
    }

    #[test]
    fn base_url_must_be_scheme_and_host() {
        let reg = |url: &str| Registry {
            base_url: url.into(),
            auth: RegistryAuth::Anonymous,
        };
        let r = reg("http://127.0.0.1:5000/");
        assert_eq!(
            Client::new(&r, "a", String::new()).unwrap().authority,
            "127.0.0.1:5000"
        );
        let r = reg("https://Europe-Docker.pkg.dev");
        assert_eq!(
            Client::new(&r, "a", String::new()).unwrap().authority,
            "europe-docker.pkg.dev"
        );
        for bad in ["europe-docker.pkg.dev", "https://h/v2", "https://u@h"] {
            assert!(
                matches!(
                    Client::new(&reg(bad), "a", String::new()),
                    Err(PushError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let r = Registry {
            base_url: "https://h".into(),
            auth: RegistryAuth::Basic {
                user: "oauth2accesstoken".into(),
                password: "ya29.secret".into(),
            },
        };
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("ya29.secret") && shown.contains("oauth2accesstoken"),
            "{shown}"
        );
    }
}
