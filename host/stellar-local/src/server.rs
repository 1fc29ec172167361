//! The accept loop shared by the control API and the gateway: HTTP/1.1 with keep-alive (the
//! gateway also h2c, for gRPC functions), one task per connection, all of them owned by the
//! loop's task so aborting it closes everything.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::state::Shared;
use crate::{control, gateway};

/// Which server a listener runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Control,
    Gateway,
}

/// Accepts connections until the task is aborted.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, role: Role) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!("set_nodelay: {e}");
                    }
                    connections.spawn(serve_connection(stream, Arc::clone(&shared), role));
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(?role, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, role: Role) {
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move {
            let res = match role {
                Role::Control => control::handle(&shared, req).await,
                Role::Gateway => gateway::handle(&shared, req).await,
            };
            Ok::<_, Infallible>(res)
        }
    });
    let served = match role {
        Role::Control => {
            http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
        // The gateway also takes h2c with prior knowledge: gRPC calls to gRPC functions.
        Role::Gateway => {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(?role, "connection ended: {e}");
            }
            return;
        }
    };
    if let Err(e) = served {
        tracing::debug!(?role, "connection ended: {e}");
    }
}
