//! The tower layer that enforces an [`AccessPolicy`] with bearer tokens.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use tower::{Layer, Service};

use super::{AccessPolicy, Caller, TokenStore};
use crate::error::ApiError;

/// Checks `authorization: Bearer <token>` against a [`TokenStore`] for every request the
/// [`AccessPolicy`] does not declare public.
///
/// A missing or unknown token is answered with gRPC `UNAUTHENTICATED` (HTTP 200 with `grpc-status`,
/// for requests with content type `application/grpc`) or HTTP 401 with a JSON error; a token whose
/// role is too low with `PERMISSION_DENIED` / 403 naming the required role. Authorized requests carry
/// a [`Caller`] and its [`super::Role`] in their extensions.
///
/// Works on a tonic `Server` (`Server::builder().layer(..)`) and on an axum `Router` (`.layer(..)`);
/// responses are re-boxed as [`axum::body::Body`].
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Arc<TokenStore>,
    policy: Arc<dyn AccessPolicy>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// A layer checking tokens from `tokens` against `policy`.
    pub fn new(tokens: Arc<TokenStore>, policy: Arc<dyn AccessPolicy>) -> Self {
        AuthLayer { tokens, policy }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            tokens: Arc::clone(&self.tokens),
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service produced by [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    tokens: Arc<TokenStore>,
    policy: Arc<dyn AccessPolicy>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: hyper::body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.authorize(&request) {
            Ok(None) => {}
            Ok(Some(caller)) => {
                request.extensions_mut().insert(caller.role);
                request.extensions_mut().insert(caller);
            }
            Err(response) => return Box::pin(std::future::ready(Ok(*response))),
        }
        let response = self.inner.call(request);
        Box::pin(async move { response.await.map(|response| response.map(Body::new)) })
    }
}

impl<S> AuthService<S> {
    /// `Ok(None)` for public requests, `Ok(Some(caller))` for authorized ones, else the rejection.
    fn authorize<B>(&self, request: &Request<B>) -> Result<Option<Caller>, Box<Response<Body>>> {
        let path = request.uri().path();
        let Some(required) = self.policy.required_role(request.method(), path) else {
            return Ok(None);
        };
        let is_grpc = crate::server::is_grpc_request(request.headers());
        let Some(token) = bearer_token(request) else {
            tracing::debug!(path, "request without bearer token rejected");
            return Err(unauthenticated(
                is_grpc,
                ApiError::unauthenticated(
                    "MISSING_TOKEN",
                    "this call needs an API token: send `authorization: Bearer <token>`",
                ),
            ));
        };
        let Some(caller) = self.tokens.authenticate(token) else {
            tracing::debug!(path, "request with unknown bearer token rejected");
            return Err(unauthenticated(
                is_grpc,
                ApiError::unauthenticated(
                    "INVALID_TOKEN",
                    "the API token is not known to this service; check the token",
                ),
            ));
        };
        if caller.role < required {
            tracing::debug!(path, caller = %caller.name, role = %caller.role, %required, "request with insufficient role rejected");
            let error = ApiError::permission_denied(
                "INSUFFICIENT_ROLE",
                format!(
                    "this call needs the {required} role but the token has {}; use a token with the {required} role",
                    caller.role
                ),
            )
            .with_metadata("required_role", required.as_str())
            .with_metadata("caller_role", caller.role.as_str());
            return Err(Box::new(error.into_protocol_response(is_grpc, None)));
        }
        Ok(Some(caller))
    }
}

fn unauthenticated(is_grpc: bool, error: ApiError) -> Box<Response<Body>> {
    let mut response = error.into_protocol_response(is_grpc, None);
    if !is_grpc {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    Box::new(response)
}

fn bearer_token<B>(request: &Request<B>) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
