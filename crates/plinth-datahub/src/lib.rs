//! `plinth-datahub`: the data hub gateway. Kafka is the platform's central bus; the gateway binds topics
//! to schema registry subjects, validates every record it produces against its subject and writes it in
//! the Confluent wire format, streams decoded records to subscribers with explicit commits, and runs lake
//! sinks that land topics as Parquet datasets in an object store, crash-safe by file naming. Arrow Flight
//! on the gRPC port scans and writes datasets in batches.
//!
//! Map: [`api`] serves `plinth.datahub.v1` over gRPC; [`topics`] owns topic bindings (SQL via [`store`])
//! and the Kafka admin calls; [`produce`] validates and writes; [`subscribe`] runs consumer-group
//! streams and routes commits; [`lake`] runs sinks and reads datasets, [`flight`] serves them over Arrow
//! Flight; the cached registry client is
//! `plinth_schema_registry::client`; [`kafka`] builds librdkafka clients from
//! [`config`]; [`domain`] holds the pure rules (wire format, lake schema, file naming).

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod flight;
pub mod kafka;
pub mod lake;
pub mod local_broker;
pub mod produce;

pub mod store;
pub mod subscribe;
pub mod topics;

mod service;

pub use crate::config::Config;
pub use crate::service::{BoundDataHub, StartError, bind, run};

/// The service name used in logs, metrics and traces.
pub const SERVICE_NAME: &str = "datahub";
