//! Accepting connections on one listener: optional TLS handshake, HTTP/1.1 or HTTP/2 (detected per
//! connection), and graceful shutdown with a grace period.

use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::ListenerService;

/// Longest a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

pub(super) struct Listener {
    pub(super) name: &'static str,
    pub(super) listener: TcpListener,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) service: ListenerService,
    /// Turns `true` when shutdown starts.
    pub(super) stop: watch::Receiver<bool>,
    pub(super) grace_period: Duration,
}

/// Accepts connections until `stop`, then waits up to the grace period for open connections to finish
/// their in-flight requests, and aborts the rest.
pub(super) async fn serve_listener(listener: Listener) {
    let Listener {
        name,
        listener,
        tls,
        service,
        mut stop,
        grace_period,
    } = listener;
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(
                        stream,
                        peer,
                        tls.clone(),
                        service.clone(),
                        stop.clone(),
                    ));
                }
                Err(err) => {
                    tracing::warn!(listener = name, %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            listener = name,
            open,
            "waiting for open connections to finish"
        );
    }
    let drained = tokio::time::timeout(grace_period, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            listener = name,
            remaining = connections.len(),
            "grace period over; closing the remaining connections"
        );
        connections.shutdown().await;
    }
}

/// The largest HTTP/2 frame this server accepts.
const MAX_FRAME_BYTES: u32 = 1 << 20;
/// The most bytes an HTTP/2 stream buffers for sending before its writer waits.
const MAX_SEND_BUFFER_BYTES: usize = 1 << 20;

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    service: ListenerService,
    stop: watch::Receiver<bool>,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %err, "cannot set TCP_NODELAY");
    }
    match tls {
        None => drive(stream, peer, service, stop).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => drive(stream, peer, service, stop).await,
                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn drive<IO>(
    io: IO,
    peer: SocketAddr,
    service: ListenerService,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(
        service.map_request(|request: Request<Incoming>| request.map(axum::body::Body::new)),
    );
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    // Frames of up to 1 MiB (peers that allow them) and a 1 MiB send buffer per stream, so that a
    // half-MiB batch (500 records of a Produce or Subscribe stream) moves in a frame or two instead of
    // thirty-two 16 KiB frames and two write-buffer refills: +9 % produce, +14 % subscribe throughput in
    // the data hub bench (docs/benchmarks.md, 2026-11-27).
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_frame_size(MAX_FRAME_BYTES)
        .max_send_buf_size(MAX_SEND_BUFFER_BYTES);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            // Finish the requests in flight, refuse new ones, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "connection closed with an error");
    }
}

/// Resolves once shutdown has started (or the server was dropped).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens once the server stops: stop too.
    let _ = stop.wait_for(|stopping| *stopping).await;
}
