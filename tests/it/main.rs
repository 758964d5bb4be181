//! Cross-service tests: one binary, a module per flow.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the first surprise"
)]

mod datahub;
mod datahub_lake;
mod feature_store;
mod feature_store_streaming;
mod feature_store_tls;
mod journey;
mod orchestrator;
mod schema_registry;
mod serving_oip;
mod serving_predict;
mod serving_start;
mod tracing;
