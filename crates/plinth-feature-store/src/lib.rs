//! `plinth-feature-store`: features declared once, used for training and serving. Data scientists declare
//! entities, sources, feature views and feature services in YAML; the store keeps them in a SQL registry,
//! builds point-in-time-correct training sets on Arrow over the lake's Parquet, materializes the latest
//! values per entity into an online store (Redis in production, embedded for `plinth up`) from the lake or
//! from a data-hub topic, and serves them by entity key over gRPC and over Feast's HTTP JSON shape.
//!
//! Map: [`domain`] holds the pure rules (definitions and their validation, values, the point-in-time
//! join); the rest wires them to storage and APIs.

pub mod config;
pub mod domain;
pub mod online;
pub mod registry;

/// The service name used in logs, metrics and traces.
pub const SERVICE_NAME: &str = "feature-store";
