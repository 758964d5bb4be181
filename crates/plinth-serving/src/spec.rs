//! `model.yaml`: what a model version takes and returns, the features that feed it, its defaults, the
//! reference pair checked at load, and its batching. Parsed with `plinth_runtime::yaml`, so a mistake is
//! reported at `models/<name>/<version>/model.yaml:LINE:COLUMN` with what to write instead.
//!
//! ```yaml
//! # models/churn/v3/model.yaml
//! platform: onnx                 # the only platform (default)
//! artifact: model.onnx           # the file next to model.yaml (default)
//! inputs:
//!   - {name: input, datatype: FP32, shape: [-1, 3]}
//! outputs:
//!   - {name: label, datatype: INT64, shape: [-1]}
//!   - {name: probabilities, datatype: FP32, shape: [-1, 2]}
//! features:                      # for PredictByKey; optional
//!   service: churn_v3            # the feature service (for discovery; the list below is what is fetched)
//!   entities: [customer_id]      # join keys sent by clients
//!   input: input                 # the input tensor the features fill (default: the only input)
//!   names:                       # column order of the input tensor
//!     - customer_stats:orders_30d
//!     - customer_stats:avg_basket
//!     - customer_profile:tenure_days
//!   defaults:                    # used when a feature is missing, null or too old
//!     customer_stats:avg_basket: 0.0
//! reference:                     # run at load; outputs must match within tolerance
//!   inputs:  {input: [[3, 42.5, 120]]}
//!   outputs: {label: [0], probabilities: [[0.81, 0.19]]}
//!   tolerance: 0.0001            # absolute, for FP32/FP64 (default 1e-4)
//! batching:
//!   max_batch_size: 64           # rows per engine call (default 64; 0 or 1 disables batching)
//!   max_delay: 1ms               # how long a request waits for others (default 1ms)
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use crate::tensor::{DataType, Tensor};

/// One tensor of the signature.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// The name (as in the ONNX graph).
    pub name: String,
    /// The element type.
    pub datatype: DataType,
    /// The shape; -1 is variable. The first dimension is the batch when it is -1.
    pub shape: Vec<i64>,
}

/// Where PredictByKey gets a model's input.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    /// The feature service that feeds the model (informative; may be empty).
    pub service: String,
    /// The entity join keys clients send.
    pub entities: Vec<String>,
    /// The input tensor the features fill (`[rows, names.len()]`, the input's data type).
    pub input: String,
    /// The features, `view:feature`, in column order.
    pub names: Vec<String>,
    /// Values for missing, null or expired features (`view:feature` → number or bool).
    pub defaults: BTreeMap<String, f64>,
}

/// The reference pair checked at load.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The inputs.
    pub inputs: Vec<Tensor>,
    /// The expected outputs (a subset of the model's outputs).
    pub outputs: Vec<Tensor>,
    /// Absolute tolerance for floating-point outputs.
    pub tolerance: f64,
}

/// Dynamic batching of concurrent requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Batching {
    /// Most rows per engine call; 0 or 1: no batching.
    pub max_batch_size: usize,
    /// How long the first request of a batch waits for more.
    pub max_delay: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max_batch_size: 64,
            max_delay: Duration::from_millis(1),
        }
    }
}

/// A parsed, checked `model.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// `onnx`.
    pub platform: String,
    /// The artifact's file name in the version directory.
    pub artifact: String,
    /// The inputs.
    pub inputs: Vec<TensorSpec>,
    /// The outputs.
    pub outputs: Vec<TensorSpec>,
    /// The features, when the model predicts by key.
    pub features: Option<FeatureSpec>,
    /// The reference pair, when given.
    pub reference: Option<Reference>,
    /// Batching.
    pub batching: Batching,
}
