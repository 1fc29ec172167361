//! Object-storage transfers between chain hops (`StorageTransfer`): the sender uploads the
//! payload, passes the key, the receiver downloads it while hashing and then removes it.
//!
//! Two APIs: S3 (path-style `PUT/GET/DELETE <endpoint>/<bucket>/<key>`, signed with SigV4 by
//! stellar's own signer crate `stellar-sigv4`, the one the `aws` adapter uses) and Azure Blob
//! (`Put Blob` as one block blob, `Get Blob`, `Delete Blob`, SharedKey-signed by the `azure`
//! adapter's signer module, compiled in from `plugins/azure/src/shared_key.rs` rather than
//! copied). Both stream: the upload body is generated chunk by chunk and the download is
//! hashed as it arrives, so a function never holds a payload whole (peak memory is a few
//! chunks, whatever the payload size). The upload is signed with the payload's SHA-256, known
//! before the first byte is sent.
//!
//! Object keys are `stellar-chain/<request id>/<hop>`, with the request id cut to
//! `[A-Za-z0-9-]`: keys made only of unreserved characters are their own canonical URI, which
//! is where S3's canonical URI and `stellar-sigv4`'s (written for non-S3 services) agree.
//! Configuration comes from [`super::storage_env`]. Plain `http://` endpoints only (the
//! loopback emulators moto and Azurite); TLS is not built in yet.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use super::serve::{HopBody, PayloadBody};
use super::storage_env as var;
use super::{ReceiveSide, Transfer};
use crate::unix_ns_now;

#[path = "../../../plugins/azure/src/shared_key.rs"]
#[allow(dead_code, unreachable_pub)]
mod shared_key;

/// Azure Blob REST version used.
const BLOB_VERSION: &str = "2021-08-06";

/// A storage endpoint and its credentials, from the environment.
struct Store {
    transfer: Transfer,
    /// `host[:port]` as sent.
    authority: String,
    host: String,
    port: u16,
    /// The endpoint's path (Azurite: `/devstoreaccount1`), without a trailing `/`.
    base_path: String,
    bucket: String,
    auth: Auth,
}

enum Auth {
    S3 {
        region: String,
        credentials: stellar_sigv4::Credentials,
    },
    Blob {
        account: String,
        key: String,
    },
}

static STORE: OnceLock<Result<Store, String>> = OnceLock::new();

fn store(transfer: Transfer) -> Result<&'static Store, String> {
    let store = STORE
        .get_or_init(|| Store::from_env(transfer, |k| std::env::var(k).ok()))
        .as_ref()
        .map_err(Clone::clone)?;
    if store.transfer != transfer {
        return Err(format!(
            "storage is configured for {}, not {}",
            store.transfer.as_str(),
            transfer.as_str()
        ));
    }
    Ok(store)
}

impl Store {
    fn from_env(transfer: Transfer, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let need = |k: &str| {
            env(k)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("environment variable {k} is not set"))
        };
        let endpoint = need(var::ENDPOINT)?;
        let uri: hyper::Uri = endpoint
            .parse()
            .map_err(|e| format!("{}: {e}", var::ENDPOINT))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "{}: only http:// endpoints are supported in this build",
                var::ENDPOINT
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{}: no host", var::ENDPOINT))?;
        let auth = match transfer {
            Transfer::S3 => Auth::S3 {
                region: need(var::REGION)?,
                credentials: stellar_sigv4::Credentials::new(
                    need(var::ACCESS_KEY_ID)?,
                    need(var::SECRET_ACCESS_KEY)?,
                    env(var::SESSION_TOKEN),
                ),
            },
            Transfer::AzureBlob => Auth::Blob {
                account: need(var::ACCOUNT)?,
                key: need(var::ACCOUNT_KEY)?,
            },
            Transfer::Inline => return Err("inline transfers use no storage".into()),
        };
        Ok(Self {
            transfer,
            authority: authority.as_str().to_owned(),
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: authority.port_u16().unwrap_or(80),
            base_path: uri.path().trim_end_matches('/').to_owned(),
            bucket: need(var::BUCKET)?,
            auth,
        })
    }

    fn path(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.base_path, self.bucket)
    }

    /// The signed request headers for `method` on `path` with a body of `length` bytes whose
    /// SHA-256 is `payload_sha256`.
    fn signed_headers(
        &self,
        method: &str,
        path: &str,
        length: u64,
        payload_sha256: &str,
        now_s: u64,
    ) -> Result<Vec<(String, String)>, String> {
        match &self.auth {
            Auth::S3 {
                region,
                credentials,
            } => {
                let length_text = length.to_string();
                let extra: Vec<(&str, &str)> = if method == "PUT" {
                    vec![("content-length", length_text.as_str())]
                } else {
                    Vec::new()
                };
                let req = stellar_sigv4::SignableRequest {
                    method,
                    host: &self.authority,
                    path,
                    query: "",
                    headers: &extra,
                    payload_sha256,
                };
                let scope = stellar_sigv4::Scope {
                    region,
                    service: "s3",
                };
                let mut headers = stellar_sigv4::sign(
                    &req,
                    credentials,
                    &scope,
                    &stellar_sigv4::AmzDate::from_unix_seconds(now_s),
                );
                headers.extend(
                    extra
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
                );
                Ok(headers)
            }
            Auth::Blob { account, key } => {
                let mut headers = vec![
                    ("x-ms-date".to_owned(), shared_key::http_date(now_s)),
                    ("x-ms-version".to_owned(), BLOB_VERSION.to_owned()),
                ];
                if method == "PUT" {
                    headers.push(("x-ms-blob-type".into(), "BlockBlob".into()));
                    headers.push(("content-length".into(), length.to_string()));
                }
                let borrowed: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let authorization = shared_key::authorization(
                    key,
                    &shared_key::Signable {
                        method,
                        account,
                        path,
                        query: &[],
                        headers: &borrowed,
                    },
                )
                .map_err(|_| format!("{} is not base64", var::ACCOUNT_KEY))?;
                headers.push(("authorization".into(), authorization));
                Ok(headers)
            }
        }
    }

    async fn send(
        &self,
        method: &str,
        key: &str,
        body: HopBody,
        length: u64,
        payload_sha256: &str,
    ) -> Result<Response<Incoming>, String> {
        let path = self.path(key);
        let now_s = unix_ns_now() / 1_000_000_000;
        let headers = self.signed_headers(method, &path, length, payload_sha256, now_s)?;
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.authority))?;
        stream.set_nodelay(true).ok();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(&path)
            .header(HOST, &self.authority);
        for (k, v) in &headers {
            if !k.eq_ignore_ascii_case(CONTENT_LENGTH.as_str()) {
                req = req.header(k, v);
            }
        }
        if method == "PUT" {
            req = req.header(CONTENT_LENGTH, length);
        }
        let req = req
            .body(body)
            .map_err(|e| format!("building the request: {e}"))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))
    }
}

/// Reads a reply's body into a short text for an error message.
async fn error_text(resp: Response<Incoming>) -> String {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let cut: String = text.chars().take(300).collect();
    format!("HTTP {}: {cut}", status.as_u16())
}

/// A key made of unreserved characters only (see the module docs).
pub(crate) fn object_key(request_id: &str, hop: u32) -> String {
    let id: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    let id = if id.is_empty() { "request".into() } else { id };
    format!("stellar-chain/{id}/{hop}")
}

/// Uploads the payload for `seed`/`length` (SHA-256 `sha256`) as `key`, streamed.
pub(crate) async fn upload(
    transfer: Transfer,
    key: &str,
    seed: u64,
    length: u64,
    sha256: &str,
) -> Result<(), String> {
    let store = store(transfer)?;
    let body = HopBody::Payload(PayloadBody::new(seed, length, Arc::new(Mutex::new(None))));
    let resp = store.send("PUT", key, body, length, sha256).await?;
    if !matches!(resp.status(), StatusCode::OK | StatusCode::CREATED) {
        return Err(error_text(resp).await);
    }
    // Drain the (empty) reply so the exchange is complete.
    let _ = resp.into_body().collect().await;
    Ok(())
}

/// Downloads `key` while hashing it (nothing kept), then removes it. `duration_ns` is the
/// download alone (request to last byte), `delete_ns` the removal.
pub(crate) async fn download_and_delete(
    transfer: Transfer,
    key: &str,
) -> Result<ReceiveSide, String> {
    let store = store(transfer)?;
    let start_unix_ns = unix_ns_now();
    let start = Instant::now();
    let resp = store
        .send(
            "GET",
            key,
            HopBody::Empty,
            0,
            stellar_sigv4::EMPTY_PAYLOAD_SHA256,
        )
        .await?;
    if resp.status() != StatusCode::OK {
        return Err(error_text(resp).await);
    }
    let mut body = resp.into_body();
    let mut hasher = Sha256::new();
    let mut bytes = 0_u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading {key}: {e}"))?;
        if let Some(data) = frame.data_ref() {
            hasher.update(data);
            bytes += data.len() as u64;
        }
    }
    let duration = start.elapsed();
    let end_unix_ns = unix_ns_now();
    let deleting = Instant::now();
    let resp = store
        .send(
            "DELETE",
            key,
            HopBody::Empty,
            0,
            stellar_sigv4::EMPTY_PAYLOAD_SHA256,
        )
        .await?;
    if !matches!(
        resp.status(),
        StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT
    ) {
        return Err(format!("deleting {key}: {}", error_text(resp).await));
    }
    let _ = resp.into_body().collect().await;
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Ok(ReceiveSide {
        start_unix_ns,
        end_unix_ns,
        duration_ns: nanos(duration),
        bytes,
        sha256: hex::encode(hasher.finalize()),
        sha256_ok: false,
        delete_ns: Some(nanos(deleting.elapsed())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_unreserved_characters() {
        assert_eq!(object_key("ab12-x", 3), "stellar-chain/ab12-x/3");
        assert_eq!(object_key("a/b?c d", 1), "stellar-chain/abcd/1");
        assert_eq!(object_key("", 1), "stellar-chain/request/1");
        let key = object_key("9f2c4e", 2);
        assert_eq!(
            stellar_sigv4::canonical_uri(&format!("/b/{key}")),
            format!("/b/{key}")
        );
    }

    /// The S3 signature equals botocore's (`testdata/s3_sigv4_botocore.py`): moto accepts any
    /// signature, so this is what shows the requests would pass real S3.
    #[test]
    fn s3_signatures_match_botocore() {
        let store = Store::from_env(Transfer::S3, |k: &str| {
            [
                (var::ENDPOINT, "http://127.0.0.1:5000"),
                (var::BUCKET, "bucket"),
                (var::REGION, "us-east-1"),
                (var::ACCESS_KEY_ID, "AKIDEXAMPLE"),
                (
                    var::SECRET_ACCESS_KEY,
                    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                ),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/s3_sigv4_botocore.py");
        let sha = crate::chain::payload::sha256_hex(3, 1 << 20);
        let body: Vec<u8> = crate::chain::payload::PayloadStream::new(3, 1 << 20)
            .flatten()
            .collect();
        let body_file = std::env::temp_dir().join(format!("stellar-s3-sig-{}", std::process::id()));
        fs_err::write(&body_file, &body).unwrap();
        let body_arg = body_file.to_string_lossy().into_owned();
        for (method, length, payload, file) in [
            ("PUT", 1_u64 << 20, sha.as_str(), body_arg.as_str()),
            ("GET", 0, stellar_sigv4::EMPTY_PAYLOAD_SHA256, "-"),
            ("DELETE", 0, stellar_sigv4::EMPTY_PAYLOAD_SHA256, "-"),
        ] {
            let path = store.path(&object_key("9f2c4e7a", 1));
            let ours = store
                .signed_headers(method, &path, length, payload, 1_700_000_000)
                .unwrap();
            let ours = ours
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone())
                .unwrap();
            let out = std::process::Command::new("python3")
                .arg(script)
                .args([method, &format!("http://127.0.0.1:5000{path}"), file])
                .arg("1700000000")
                .output()
                .expect("python3 with botocore (pip install 'moto[server]')");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert_eq!(ours, theirs, "{method}");
        }
        fs_err::remove_file(&body_file).ok();
    }

    #[test]
    fn configuration_names_what_is_missing() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let err = Store::from_env(Transfer::S3, env(&[])).err().unwrap();
        assert!(err.contains(var::ENDPOINT), "{err}");
        let err = Store::from_env(Transfer::S3, env(&[(var::ENDPOINT, "https://s3.x")]))
            .err()
            .unwrap();
        assert!(err.contains("only http://"), "{err}");
        let store = Store::from_env(
            Transfer::AzureBlob,
            env(&[
                (var::ENDPOINT, "http://127.0.0.1:10000/devstoreaccount1/"),
                (var::BUCKET, "c"),
                (var::ACCOUNT, "devstoreaccount1"),
                (var::ACCOUNT_KEY, "a2V5"),
            ]),
        )
        .unwrap();
        assert_eq!(store.path("k"), "/devstoreaccount1/c/k");
        assert_eq!(store.authority, "127.0.0.1:10000");
    }
}
