//! What every Plinth service needs, written once: layered configuration and its reusable blocks
//! ([`config`]), logs/traces/metrics ([`telemetry`]), bearer-token auth ([`auth`]), the single mapping of
//! errors to gRPC and HTTP ([`error`]), TLS ([`tls`]), the server that runs a service's gRPC and HTTP
//! APIs with health, reflection, metrics and graceful shutdown ([`server`]), and the client channel
//! used by the CLI and service-to-service calls ([`client`]); opening the shared SQL pool ([`database`])
//! and object stores from lake URLs ([`storage`]).
//!
//! Nothing here assumes one service per process: `plinth up` runs several services in one process,
//! so process-wide state (the tracing subscriber, the metrics recorder) is installed at most once.
//!
//! What does NOT belong here: anything about one service's domain (schemas, features, runs, models),
//! what is stored where (tables, topics, file layouts), generated protobuf code (that is `plinth-proto`), and
//! CLI presentation. This crate sits at the bottom of the workspace and depends on no service crate.

pub mod allocator;
pub mod auth;
pub mod client;
pub mod config;
pub mod database;
pub mod error;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod venv;
pub mod yaml;
