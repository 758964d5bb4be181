//! `plinth-orchestrator`: training and scoring pipelines as configuration. Data scientists write one YAML
//! file per pipeline (a schedule, typed parameters and a DAG of tasks such as `command`, `materialize`,
//! `training-set`, `train`, `batch-score` and `deploy-model`); the orchestrator validates it, stores it
//! versioned in SQL, runs it on a cron schedule or on demand, retries what fails, stops what hangs, and
//! publishes every state change.
//!
//! Map: [`domain`] holds the pure rules (the pipeline model, parsing and validation, cron, templates,
//! retry delays, which task runs next); [`store`] keeps pipelines, runs and task attempts in SQL with
//! compare-and-set transitions so replicas never start the same task twice; [`engine`] is the scheduler
//! loop; [`executor`] runs processes locally or as Kubernetes Jobs with their logs in [`logs`];
//! [`tasks`] runs the platform task types against the feature store and model serving; [`events`]
//! publishes state changes; [`api`] serves it all over gRPC.

pub mod api;
pub mod config;
pub mod domain;
pub mod engine;
pub mod events;
pub mod executor;
pub mod logs;
mod service;
pub mod store;
pub mod tasks;

pub use crate::config::Config;
pub use crate::service::{BoundOrchestrator, StartError, bind, run};

/// The service name used in logs, metrics and traces.
pub const SERVICE_NAME: &str = "orchestrator";
