//! `plinth-feature-store`: features declared once, used for training and serving. Data scientists declare
//! entities, sources, feature views and feature services in YAML; the store keeps them in a SQL registry,
//! builds point-in-time-correct training sets on Arrow over the lake's Parquet, materializes the latest
//! values per entity into an online store (Redis in production, embedded for `plinth up`) from the lake or
//! from a data-hub topic, and serves them by entity key over gRPC and over Feast's HTTP JSON shape.
//!
//! Map: [`domain`] holds the pure rules (definitions and their validation, values, the point-in-time
//! join, key and row encodings); [`registry`] stores definitions and watermarks in SQL; [`online`] is
//! the online store (Redis, embedded SQLite); [`offline`] reads the lake and runs training-set joins with
//! bounded memory; [`feature_store`] is every operation once, served by [`api`] (gRPC), [`http`]
//! (Feast's JSON) and [`flight`] (training sets over Arrow Flight); [`retrieval`], [`push`] and
//! [`materialize`] hold the online read, push and materialization paths.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod feature_store;
pub mod flight;
pub mod http;
pub mod materialize;
pub mod offline;
pub mod online;
pub mod push;
pub mod registry;
pub mod retrieval;
mod service;
pub mod streaming;
mod training;

pub use crate::config::Config;
pub use crate::service::{BoundFeatureStore, StartError, bind, run};

/// The service name used in logs, metrics and traces.
pub const SERVICE_NAME: &str = "feature-store";
