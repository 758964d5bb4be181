//! Test helpers: a tiny gRPC service, a running-server handle, gRPC probes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use plinth_runtime::client::AuthChannel;
use plinth_runtime::error::ServerError;
use plinth_runtime::server::{BoundServer, HealthHandle, ServerBuilder};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A gRPC service named `plinth.test.v1.Echo` answering every method with an empty message, and
/// `/Slow` only after a long pause.
#[derive(Clone)]
pub(crate) struct EchoService;

pub(crate) const ECHO_SERVICE: &str = "plinth.test.v1.Echo";

impl tonic::server::NamedService for EchoService {
    const NAME: &'static str = ECHO_SERVICE;
}

impl tower::Service<http::Request<tonic::body::Body>> for EchoService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let slow = request.uri().path().ends_with("/Slow");
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            // One empty message (a 5-byte prefix with length 0), then `grpc-status: 0` trailers.
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let frames = tokio_stream::iter([
                Ok::<_, Infallible>(hyper::body::Frame::data(bytes::Bytes::from_static(&[0; 5]))),
                Ok(hyper::body::Frame::trailers(trailers)),
            ]);
            let body = tonic::body::Body::new(http_body_util::StreamBody::new(frames));
            Ok(http::Response::builder()
                .header("content-type", "application/grpc")
                .body(body)
                .unwrap())
        })
    }
}

/// A server serving in the background.
pub(crate) struct Running {
    pub(crate) grpc: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) health: HealthHandle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl Running {
    pub(crate) async fn start(mut builder: ServerBuilder) -> Running {
        let health = builder.health();
        let bound = builder.bind().await.unwrap();
        Self::serve(bound, health)
    }

    pub(crate) fn serve(bound: BoundServer, health: HealthHandle) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let grpc = bound.grpc_addr();
        let http = bound.http_addr();
        let task = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        Running {
            grpc,
            http,
            health,
            stop: Some(stop),
            task,
        }
    }

    pub(crate) fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub(crate) fn grpc_url(&self) -> url::Url {
        format!("http://{}", self.grpc).parse().unwrap()
    }

    /// Starts shutdown without waiting for it.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and returns what `serve` returned.
    pub(crate) async fn shutdown(mut self) -> Result<(), ServerError> {
        self.begin_shutdown();
        self.task.await.unwrap()
    }

    pub(crate) async fn channel(&self) -> AuthChannel {
        plinth_runtime::client::connect(&self.grpc_url(), None, None, Duration::from_secs(5))
            .await
            .unwrap()
    }
}

/// The gRPC health status of `service` ("" = the whole server).
pub(crate) async fn health_status(
    channel: AuthChannel,
    service: &str,
) -> Result<ServingStatus, tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}
