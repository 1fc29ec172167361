//! The control API: artifacts and functions, JSON over HTTP/1.1, guarded by a bearer token.
//!
//! | method and path                       | success                                  |
//! |---------------------------------------|------------------------------------------|
//! | `PUT /v1/artifacts/<sha256>`          | 201 [`ArtifactInfo`](crate::ArtifactInfo) |
//! | `PUT /v1/functions/<name>`            | 201 created / 200 updated, `FunctionInfo` |
//! | `GET /v1/functions`                   | 200 `{"functions":[FunctionInfo..]}`     |
//! | `GET /v1/functions/<name>`            | 200 `FunctionInfo`                       |
//! | `DELETE /v1/functions/<name>`         | 204                                      |
//! | `GET /v1/functions/<name>/instances`  | 200 `{"instances":[InstanceRecord..]}`   |
//!
//! Every request needs `Authorization: Bearer <token>` (else 401, checked before routing).
//! Errors are `{"error":{"kind","message"}}`.

use std::sync::Arc;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::api::{ErrorKind, FunctionList, FunctionSpec, InstanceList};
use crate::body::{self, ResBody};
use crate::error::ApiError;
use crate::state::Shared;

/// Largest accepted function document.
const MAX_SPEC_BYTES: usize = 1024 * 1024;

/// Answers one control request.
pub(crate) async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<ResBody> {
    match route(shared, req).await {
        Ok(res) => res,
        Err(err) => {
            let mut res = body::error(&err);
            if err.kind == ErrorKind::Unauthorized {
                res.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            res
        }
    }
}

async fn route(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, ApiError> {
    if !authorized(&shared.token, req.headers()) {
        return Err(ApiError::unauthorized());
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::PUT, ["v1", "artifacts", sha]) => put_artifact(shared, sha, req).await,
        (&Method::GET, ["v1", "functions"]) => Ok(body::json(
            StatusCode::OK,
            &FunctionList {
                functions: shared.functions(),
            },
        )),
        (&Method::PUT, ["v1", "functions", name]) => put_function(shared, name, req).await,
        (&Method::GET, ["v1", "functions", name]) => match shared.function(name) {
            Some(info) => Ok(body::json(StatusCode::OK, &info)),
            None => Err(no_function(name)),
        },
        (&Method::DELETE, ["v1", "functions", name]) => {
            if shared.delete_function(name) {
                Ok(body::empty(StatusCode::NO_CONTENT))
            } else {
                Err(no_function(name))
            }
        }
        (&Method::GET, ["v1", "functions", name, "instances"]) => match shared.instances(name) {
            Some(instances) => Ok(body::json(StatusCode::OK, &InstanceList { instances })),
            None => Err(no_function(name)),
        },
        (_, ["v1", "artifacts", _])
        | (_, ["v1", "functions"])
        | (_, ["v1", "functions", _])
        | (_, ["v1", "functions", _, "instances"]) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Invalid,
            format!("{method} is not supported on {path}"),
        )),
        _ => Err(ApiError::not_found(format!(
            "no such route: {method} {path}"
        ))),
    }
}

fn no_function(name: &str) -> ApiError {
    ApiError::not_found(format!("no function named `{name}`"))
}

/// Checks the bearer token without an early exit on the first differing byte.
fn authorized(token: &str, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn put_artifact(
    shared: &Arc<Shared>,
    sha: &str,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, ApiError> {
    let Some(length) = req.headers().get(CONTENT_LENGTH) else {
        return Err(ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            ErrorKind::Invalid,
            "an artifact upload needs a content-length header",
        ));
    };
    let length: u64 = length
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::invalid("content-length is not a number"))?;
    let info = shared.artifacts.store(sha, length, req.into_body()).await?;
    tracing::info!(sha256 = %info.sha256, size = info.size, "artifact stored");
    Ok(body::json(StatusCode::CREATED, &info))
}

async fn put_function(
    shared: &Arc<Shared>,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, ApiError> {
    let bytes = Limited::new(req.into_body(), MAX_SPEC_BYTES)
        .collect()
        .await
        .map_err(|e| ApiError::invalid(format!("reading the function document: {e}")))?
        .to_bytes();
    let spec: FunctionSpec = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("function document: {e}")))?;
    let (info, created) = shared.put_function(name, spec)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(body::json(status, &info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_token_must_match_exactly() {
        assert!(authorized("s3cret", &headers("Bearer s3cret")));
        assert!(!authorized("s3cret", &headers("Bearer s3cre")));
        assert!(!authorized("s3cret", &headers("Bearer s3cret2")));
        assert!(!authorized("s3cret", &headers("Basic s3cret")));
        assert!(!authorized("s3cret", &HeaderMap::new()));
    }
}
