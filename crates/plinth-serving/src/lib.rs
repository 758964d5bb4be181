//! Model serving: loads ONNX models from the model repository (`<models root>/<name>/<version>/` with a
//! `model.yaml` and `_SUCCESS`) into ONNX Runtime at start, serves the Open Inference Protocol V2 over gRPC
//! and REST (`/v2/...`) so that KServe/Triton clients work, and predicts by entity key with the features
//! fetched from the feature store (`plinth.serving.v1.ServingService/PredictByKey`). Concurrent requests
//! for a model are batched (max batch, max delay); sampled predictions are logged to Kafka through the
//! data hub.
//!
//! Data flow: [`repository`] reads a version's files → [`spec`] parses and checks `model.yaml` →
//! [`engine`] builds an ONNX Runtime session and checks the reference pair → [`models`] makes it the
//! serving version behind a [`batcher`] → the front ends ([`oip`], [`api`]) turn requests into
//! [`tensor::Tensor`]s and call [`models::LoadedModel::infer`]; [`predict`] fetches features first;
//! [`monitor`] logs predictions.

pub mod api;
pub mod batcher;
pub mod config;
pub mod engine;
pub mod error;
pub mod models;
pub mod monitor;
pub mod oip;
pub mod predict;
pub mod repository;
pub mod service;
pub mod spec;
pub mod tensor;

pub use config::Config;
pub use error::ServingError;
pub use service::{BoundServing, StartError, bind, run};

/// The service name in telemetry, metrics and logs.
pub const SERVICE_NAME: &str = "plinth-serving";
