//! Known answers from Alibaba's own signer (`tests/vectors.json`, made by
//! `scripts/make_vectors.py` with `alibabacloud_openapi_util` 0.2.4's `get_authorization`):
//! every vector is re-signed here and must give the same `Authorization` header, payload hash
//! and `x-acs-*` headers.

use serde::Deserialize;

use crate::{AcsDate, Action, Credentials, SignableRequest, sha256_hex, sign};

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    method: String,
    host: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    action: String,
    version: String,
    date: String,
    unix_seconds: u64,
    nonce: String,
    body: String,
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
    payload_sha256: String,
    authorization: String,
}

fn vectors() -> Vec<Vector> {
    let file: File = serde_json::from_str(include_str!("../tests/vectors.json")).unwrap();
    file.vectors
}

fn pairs(list: &[(String, String)]) -> Vec<(&str, &str)> {
    list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_vector_of_alibabas_signer_matches() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 6, "the frozen vector count");
    for v in &vectors {
        let payload = sha256_hex(v.body.as_bytes());
        assert_eq!(payload, v.payload_sha256, "{}: payload hash", v.name);
        let query = pairs(&v.query);
        let extra = pairs(&v.headers);
        let req = SignableRequest {
            method: &v.method,
            host: &v.host,
            path: &v.path,
            query: &query,
            headers: &extra,
            payload_sha256: &payload,
        };
        let action = Action {
            action: &v.action,
            version: &v.version,
        };
        let creds = Credentials::new(
            v.access_key_id.clone(),
            v.access_key_secret.clone(),
            v.security_token.clone(),
        );
        let date = AcsDate::from_unix_seconds(v.unix_seconds);
        assert_eq!(date.as_str(), v.date, "{}: date", v.name);
        let headers = sign(&req, &action, &creds, &date, &v.nonce);
        assert_eq!(
            header(&headers, "authorization"),
            Some(v.authorization.as_str()),
            "{}",
            v.name
        );
        assert_eq!(header(&headers, "x-acs-action"), Some(v.action.as_str()));
        assert_eq!(header(&headers, "x-acs-version"), Some("2023-03-30"));
        assert_eq!(
            header(&headers, "x-acs-signature-nonce"),
            Some(v.nonce.as_str())
        );
        assert_eq!(
            header(&headers, "x-acs-content-sha256"),
            Some(payload.as_str())
        );
        assert_eq!(
            header(&headers, "x-acs-security-token"),
            v.security_token.as_deref(),
            "{}",
            v.name
        );
    }
}

#[test]
fn the_vectors_cover_sts_encoding_and_empty_bodies() {
    let vectors = vectors();
    assert!(vectors.iter().any(|v| v.security_token.is_some()));
    assert!(
        vectors
            .iter()
            .any(|v| v.body.is_empty() && v.method != "GET")
    );
    assert!(
        vectors
            .iter()
            .flat_map(|v| &v.query)
            .any(|(_, value)| value.bytes().any(|b| !b.is_ascii_alphanumeric()))
    );
    assert!(vectors.iter().any(|v| v.path.contains('%')));
}

#[test]
fn a_wrong_secret_does_not_match() {
    let v = &vectors()[0];
    let query = pairs(&v.query);
    let extra = pairs(&v.headers);
    let req = SignableRequest {
        method: &v.method,
        host: &v.host,
        path: &v.path,
        query: &query,
        headers: &extra,
        payload_sha256: &v.payload_sha256,
    };
    let action = Action {
        action: &v.action,
        version: &v.version,
    };
    let creds = Credentials::new(v.access_key_id.clone(), "not-the-secret", None);
    let headers = sign(
        &req,
        &action,
        &creds,
        &AcsDate::from_unix_seconds(v.unix_seconds),
        &v.nonce,
    );
    assert_ne!(
        header(&headers, "authorization"),
        Some(v.authorization.as_str())
    );
}
