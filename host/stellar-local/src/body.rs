//! Response bodies shared by both servers: JSON documents, JSON errors, and the streamed body of
//! a proxied response, which releases its instance slot when the body ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use serde::Serialize;

use crate::api::{ErrorBody, ErrorDetail};
use crate::error::ApiError;

/// Boxed error of a response body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response the runtime sends.
pub(crate) type ResBody = BoxBody<Bytes, BoxError>;

/// A body with fixed bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON response.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<ResBody> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut res = Response::new(full(bytes));
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Err(e) => error(&ApiError::internal(format!("serialising a response: {e}"))),
    }
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response<ResBody> {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = status;
    res
}

/// A JSON error response.
pub(crate) fn error(err: &ApiError) -> Response<ResBody> {
    let body = ErrorBody {
        error: ErrorDetail {
            kind: err.kind,
            message: err.message.clone(),
        },
    };
    // Serialising two strings and an enum cannot fail; fall back to an empty body anyway.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = Response::new(full(bytes));
    *res.status_mut() = err.status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = err.retry_after_s {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// Wraps a proxied body and holds a value (the instance's in-flight slot) until the body has
/// ended, failed or been dropped, whichever comes first.
pub(crate) struct GuardedBody<B, G> {
    inner: B,
    guard: Option<G>,
}

impl<B, G> GuardedBody<B, G> {
    pub(crate) fn new(inner: B, guard: G) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B, G> Body for GuardedBody<B, G>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    G: Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match polled {
            Poll::Ready(None) => {
                this.guard = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.guard = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.guard = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct CountOnDrop(Arc<AtomicUsize>);
    impl Drop for CountOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn guard_is_released_when_the_body_ends() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let body = GuardedBody::new(
            Full::new(Bytes::from_static(b"hello")),
            CountOnDrop(dropped.clone()),
        );
        let mut body = std::pin::pin!(body);
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"hello"));
        // Released as soon as the last frame is out, before the body itself is dropped.
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(body.frame().await.is_none());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn guard_is_released_when_the_body_is_dropped_unread() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let body = GuardedBody::new(
            Full::new(Bytes::from_static(b"x")),
            CountOnDrop(dropped.clone()),
        );
        drop(body);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn errors_carry_kind_and_retry_after() {
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            crate::api::ErrorKind::Quota,
            "full",
        );
        err.retry_after_s = Some(1);
        let res = error(&err);
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "1");
    }
}
