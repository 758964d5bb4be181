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

use plinth_runtime::yaml::{Fields, Node, Reader, SourceError, describe, nearest, scalar_text};
use saphyr::{Scalar, YamlData};

use crate::tensor::{DataType, Tensor, TensorData};

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

/// The default absolute tolerance of the reference check.
pub const DEFAULT_TOLERANCE: f64 = 1e-4;
/// The most rows one engine call may batch.
pub const MAX_BATCH_SIZE: i64 = 65_536;
/// The longest `batching.max_delay`.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

const TOP_KEYS: &[&str] = &[
    "platform",
    "artifact",
    "inputs",
    "outputs",
    "features",
    "reference",
    "batching",
];
const TENSOR_KEYS: &[&str] = &["name", "datatype", "shape"];
const FEATURE_KEYS: &[&str] = &["service", "entities", "input", "names", "defaults"];
const REFERENCE_KEYS: &[&str] = &["inputs", "outputs", "tolerance"];
const BATCHING_KEYS: &[&str] = &["max_batch_size", "max_delay"];

impl ModelSpec {
    /// Whether requests can be merged along the first dimension: every input's and output's first
    /// dimension is variable (-1) and batching allows more than one row.
    pub fn batchable(&self) -> bool {
        self.batching.max_batch_size > 1
            && self
                .inputs
                .iter()
                .chain(&self.outputs)
                .all(|tensor| tensor.shape.first() == Some(&-1))
    }

    /// The input named `name`, with its position.
    pub fn input(&self, name: &str) -> Option<(usize, &TensorSpec)> {
        self.inputs
            .iter()
            .enumerate()
            .find(|(_, input)| input.name == name)
    }

    /// The output named `name`, with its position.
    pub fn output(&self, name: &str) -> Option<(usize, &TensorSpec)> {
        self.outputs
            .iter()
            .enumerate()
            .find(|(_, output)| output.name == name)
    }
}

impl TensorSpec {
    /// Whether `shape` fits this spec: the same rank and every fixed dimension equal.
    pub fn accepts_shape(&self, shape: &[i64]) -> bool {
        shape.len() == self.shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(declared, sent)| *declared == -1 || declared == sent)
    }
}

/// Parses and checks a `model.yaml`; `path` names the file in messages
/// (`models/iris/v1/model.yaml`). Every mistake is reported, each with its line and column.
pub fn parse(path: &str, text: &str) -> Result<ModelSpec, Vec<SourceError>> {
    let mut reader = Reader::new(path, text);
    let documents = reader.documents();
    let spec = match documents.as_slice() {
        [document] => read_spec(&mut reader, &document.root),
        [] => {
            if reader.error_count() == 0 {
                reader.error_at(
                    &plinth_runtime::yaml::Location {
                        path: path.to_owned(),
                        line: 1,
                        column: 1,
                    },
                    "model.yaml is empty; declare at least `inputs:` and `outputs:`",
                );
            }
            None
        }
        [_, second, ..] => {
            reader.error(
                &second.root,
                "model.yaml holds more than one document; keep one (remove the `---` lines)",
            );
            None
        }
    };
    match spec {
        Some(spec) if reader.error_count() == 0 => Ok(spec),
        _ => Err(reader.into_errors()),
    }
}

fn read_spec(reader: &mut Reader, root: &Node) -> Option<ModelSpec> {
    let fields = reader.mapping(root, "model.yaml", TOP_KEYS)?;
    let platform = match fields.get("platform") {
        Some(node) => {
            let platform = reader.text(node, "`platform`");
            if let Some(platform) = &platform
                && platform != "onnx"
            {
                reader.error(
                    node,
                    format!("`platform` is `{platform}`; the only platform is `onnx`: export the model to ONNX"),
                );
            }
            platform.unwrap_or_default()
        }
        None => "onnx".to_owned(),
    };
    let artifact = match fields.get("artifact") {
        Some(node) => {
            let artifact = reader.text(node, "`artifact`").unwrap_or_default();
            if artifact.contains(['/', '\\']) || artifact == "." || artifact == ".." {
                reader.error(
                    node,
                    format!("`artifact` is `{artifact}`; name a file next to model.yaml, such as model.onnx"),
                );
            }
            artifact
        }
        None => "model.onnx".to_owned(),
    };
    let inputs = tensor_list(reader, &fields, "inputs");
    let outputs = tensor_list(reader, &fields, "outputs");
    let features = fields
        .get("features")
        .and_then(|node| read_features(reader, node, &inputs));
    let reference = fields
        .get("reference")
        .and_then(|node| read_reference(reader, node, &inputs, &outputs));
    let batching = match fields.get("batching") {
        Some(node) => read_batching(reader, node),
        None => Batching::default(),
    };
    Some(ModelSpec {
        platform,
        artifact,
        inputs,
        outputs,
        features,
        reference,
        batching,
    })
}

/// `inputs:` or `outputs:`: a non-empty list of tensors with distinct names.
fn tensor_list(reader: &mut Reader, fields: &Fields<'_>, key: &str) -> Vec<TensorSpec> {
    let example = "[{name: input, datatype: FP32, shape: [-1, 4]}]";
    let Some(node) = reader.required(fields, key, example) else {
        return Vec::new();
    };
    let Some(items) = reader.sequence(node, &format!("`{key}`")) else {
        return Vec::new();
    };
    if items.is_empty() {
        reader.error(
            node,
            format!("`{key}` is empty; declare at least one tensor, such as `- {{name: x, datatype: FP32, shape: [-1, 4]}}`"),
        );
    }
    let mut tensors: Vec<TensorSpec> = Vec::with_capacity(items.len());
    for item in items {
        let Some(tensor) = tensor_spec(reader, item, key) else {
            continue;
        };
        if tensors.iter().any(|other| other.name == tensor.name) {
            reader.error(
                item,
                format!(
                    "`{key}` declares `{}` twice; tensor names must be unique",
                    tensor.name
                ),
            );
            continue;
        }
        tensors.push(tensor);
    }
    tensors
}

fn tensor_spec(reader: &mut Reader, node: &Node, list: &str) -> Option<TensorSpec> {
    let what = format!("an item of `{list}`");
    let fields = reader.mapping(node, &what, TENSOR_KEYS)?;
    let name = reader
        .required(&fields, "name", "input")
        .and_then(|node| reader.text(node, &format!("the name of {what}")));
    let what = match &name {
        Some(name) => format!("{list} `{name}`"),
        None => what,
    };
    let datatype = reader
        .required(&fields.clone().described(what.clone()), "datatype", "FP32")
        .and_then(|node| datatype(reader, node, &format!("the datatype of {what}")));
    let shape = reader
        .required(&fields.described(what.clone()), "shape", "[-1, 4]")
        .and_then(|node| shape(reader, node, &format!("the shape of {what}")));
    Some(TensorSpec {
        name: name?,
        datatype: datatype?,
        shape: shape?,
    })
}

fn datatype(reader: &mut Reader, node: &Node, what: &str) -> Option<DataType> {
    let name = reader.text(node, what)?;
    if let Some(datatype) = DataType::from_name(&name) {
        return Some(datatype);
    }
    let names: Vec<&str> = DataType::ALL
        .iter()
        .map(|datatype| datatype.name())
        .collect();
    let upper = name.to_ascii_uppercase();
    let aliases = [
        ("FLOAT", "FP32"),
        ("FLOAT32", "FP32"),
        ("DOUBLE", "FP64"),
        ("FLOAT64", "FP64"),
        ("STRING", "BYTES"),
        ("INT", "INT64"),
    ];
    let hint = aliases
        .iter()
        .find(|(alias, _)| *alias == upper)
        .map(|(_, name)| *name)
        .or_else(|| nearest(&upper, &names))
        .map_or(String::new(), |near| format!("did you mean {near}? "));
    reader.error(
        node,
        format!(
            "{what} is `{name}`; {hint}write one of {}",
            names.join(", ")
        ),
    );
    None
}

fn shape(reader: &mut Reader, node: &Node, what: &str) -> Option<Vec<i64>> {
    let items = reader.sequence(node, what)?;
    if items.is_empty() {
        reader.error(
            node,
            format!(
                "{what} is empty; give at least one dimension, such as [-1] for a batch of values"
            ),
        );
        return None;
    }
    let mut dims = Vec::with_capacity(items.len());
    let mut valid = true;
    for item in items {
        match reader.integer(item, &format!("a dimension of {what}")) {
            Some(dim) if dim == -1 || dim >= 1 => dims.push(dim),
            Some(dim) => {
                reader.error(
                    item,
                    format!("{what} has the dimension {dim}; write -1 (variable) or a size of at least 1"),
                );
                valid = false;
            }
            None => valid = false,
        }
    }
    valid.then_some(dims)
}

fn text_list(reader: &mut Reader, node: &Node, what: &str) -> Vec<String> {
    let Some(items) = reader.sequence(node, what) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| reader.text(item, &format!("an item of {what}")))
        .collect()
}

fn read_features(reader: &mut Reader, node: &Node, inputs: &[TensorSpec]) -> Option<FeatureSpec> {
    let fields = reader.mapping(node, "`features`", FEATURE_KEYS)?;
    let service = fields
        .get("service")
        .and_then(|node| reader.text(node, "`features.service`"))
        .unwrap_or_default();
    let entities = match reader.required(&fields, "entities", "[customer_id]") {
        Some(node) => {
            let entities = text_list(reader, node, "`features.entities`");
            if entities.is_empty() {
                reader.error(
                    node,
                    "`features.entities` is empty; list the join keys clients send, such as [customer_id]",
                );
            }
            entities
        }
        None => Vec::new(),
    };
    let names_node = reader.required(&fields, "names", "[view:feature]");
    let mut names: Vec<String> = Vec::new();
    if let Some(node) = names_node
        && let Some(items) = reader.sequence(node, "`features.names`")
    {
        for item in items {
            let Some(name) = reader.text(item, "an item of `features.names`") else {
                continue;
            };
            if !name.contains(':') {
                reader.error(
                    item,
                    format!("feature `{name}` has no view; write it as `view:feature`"),
                );
            }
            if names.contains(&name) {
                reader.error(
                    item,
                    format!("`features.names` lists `{name}` twice; each feature fills one column"),
                );
                continue;
            }
            names.push(name);
        }
        if items.is_empty() {
            reader.error(
                node,
                "`features.names` is empty; list the features in the input's column order",
            );
        }
    }
    let input = match fields.get("input") {
        Some(node) => {
            let name = reader.text(node, "`features.input`")?;
            let Some(input) = inputs.iter().find(|input| input.name == name) else {
                let candidates: Vec<&str> =
                    inputs.iter().map(|input| input.name.as_str()).collect();
                let hint = nearest(&name, &candidates)
                    .map_or(String::new(), |near| format!("did you mean `{near}`? "));
                reader.error(
                    node,
                    format!("`features.input` is `{name}`, which is not an input; {hint}the inputs are {}", candidates.join(", ")),
                );
                return None;
            };
            check_feature_input(reader, node, input, names.len());
            name
        }
        None => match inputs {
            [input] => {
                check_feature_input(reader, fields.node(), input, names.len());
                input.name.clone()
            }
            [] => return None,
            _ => {
                reader.error(
                    fields.node(),
                    "`features` needs `input:` naming the input tensor the features fill, since the model has several inputs",
                );
                return None;
            }
        },
    };
    let mut defaults = BTreeMap::new();
    if let Some(node) = fields.get("defaults")
        && let Some(entries) = reader.entries(node, "`features.defaults`")
    {
        for (name, key, value) in entries {
            if !names.contains(&name) {
                let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = nearest(&name, &candidates)
                    .map_or(String::new(), |near| format!("did you mean `{near}`? "));
                reader.error(
                    key,
                    format!("`features.defaults` gives a default for `{name}`, which `features.names` does not list; {hint}"),
                );
                continue;
            }
            let number = match &value.data {
                YamlData::Value(Scalar::Boolean(flag)) => Some(if *flag { 1.0 } else { 0.0 }),
                _ => reader.number(value, &format!("the default of `{name}`")),
            };
            if let Some(number) = number {
                defaults.insert(name, number);
            }
        }
    }
    Some(FeatureSpec {
        service,
        entities,
        input,
        names,
        defaults,
    })
}

fn check_feature_input(reader: &mut Reader, node: &Node, input: &TensorSpec, columns: usize) {
    if matches!(input.datatype, DataType::Bool | DataType::Bytes) {
        reader.error(
            node,
            format!(
                "input `{}` is {}; features fill numeric inputs only (FP32, FP64, INT32, INT64)",
                input.name, input.datatype
            ),
        );
    }
    let expected = [-1, i64::try_from(columns).unwrap_or(i64::MAX)];
    if columns > 0 && input.shape != expected {
        reader.error(
            node,
            format!(
                "input `{}` has the shape {:?}, but {columns} features fill it: declare its shape as [-1, {columns}]",
                input.name, input.shape
            ),
        );
    }
}

fn read_reference(
    reader: &mut Reader,
    node: &Node,
    inputs: &[TensorSpec],
    outputs: &[TensorSpec],
) -> Option<Reference> {
    let fields = reader.mapping(node, "`reference`", REFERENCE_KEYS)?;
    let tolerance = match fields.get("tolerance") {
        Some(node) => match reader.number(node, "`reference.tolerance`") {
            Some(tolerance) if tolerance >= 0.0 && tolerance.is_finite() => tolerance,
            Some(tolerance) => {
                reader.error(
                    node,
                    format!("`reference.tolerance` is {tolerance}; write a number of at least 0, such as 0.0001"),
                );
                DEFAULT_TOLERANCE
            }
            None => DEFAULT_TOLERANCE,
        },
        None => DEFAULT_TOLERANCE,
    };
    let reference_inputs = fields
        .get("inputs")
        .map(|node| reference_tensors(reader, node, "reference.inputs", inputs, true));
    if reference_inputs.is_none() {
        reader.required(&fields, "inputs", "{input: [[1.0, 2.0]]}");
    }
    let reference_outputs = fields
        .get("outputs")
        .map(|node| reference_tensors(reader, node, "reference.outputs", outputs, false));
    if reference_outputs.is_none() {
        reader.required(&fields, "outputs", "{label: [0]}");
    }
    Some(Reference {
        inputs: reference_inputs?,
        outputs: reference_outputs?,
        tolerance,
    })
}

/// `{name: nested list}` for `reference.inputs` (every input) or `reference.outputs` (at least one).
fn reference_tensors(
    reader: &mut Reader,
    node: &Node,
    what: &str,
    declared: &[TensorSpec],
    all: bool,
) -> Vec<Tensor> {
    let Some(entries) = reader.entries(node, &format!("`{what}`")) else {
        return Vec::new();
    };
    let candidates: Vec<&str> = declared.iter().map(|spec| spec.name.as_str()).collect();
    let given = entries.len();
    let mut tensors: Vec<Tensor> = Vec::with_capacity(entries.len());
    for (name, key, value) in entries {
        let Some(spec) = declared.iter().find(|spec| spec.name == name) else {
            let hint = nearest(&name, &candidates)
                .map_or(String::new(), |near| format!("did you mean `{near}`? "));
            reader.error(
                key,
                format!(
                    "`{what}` names `{name}`, which is not declared; {hint}the declared names are {}",
                    candidates.join(", ")
                ),
            );
            continue;
        };
        if let Some(tensor) = reference_tensor(reader, value, &format!("`{what}.{name}`"), spec) {
            tensors.push(tensor);
        }
    }
    if all {
        for spec in declared {
            if !tensors.iter().any(|tensor| tensor.name == spec.name) {
                reader.error(
                    node,
                    format!(
                        "`{what}` has no value for `{}`; give every input",
                        spec.name
                    ),
                );
            }
        }
    } else if given == 0 {
        reader.error(
            node,
            format!("`{what}` is empty; give the expected value of at least one output"),
        );
    }
    tensors
}

/// A nested list read as a tensor of `spec`'s type, its shape taken from the nesting and checked
/// against the declared one.
fn reference_tensor(
    reader: &mut Reader,
    node: &Node,
    what: &str,
    spec: &TensorSpec,
) -> Option<Tensor> {
    let mut shape: Vec<i64> = Vec::with_capacity(spec.shape.len());
    let mut leaves: Vec<&Node> = Vec::new();
    let mut current = vec![node];
    for depth in 0..spec.shape.len() {
        let mut next = Vec::new();
        let mut width: Option<usize> = None;
        for item in &current {
            let YamlData::Sequence(items) = &item.data else {
                reader.error(
                    item,
                    format!(
                        "{what} must nest {} lists, for the shape {:?}, but level {} is {}",
                        spec.shape.len(),
                        spec.shape,
                        depth + 1,
                        describe(item)
                    ),
                );
                return None;
            };
            if width.is_some_and(|width| width != items.len()) {
                reader.error(
                    item,
                    format!(
                        "{what} is ragged: lists at level {} have different lengths",
                        depth + 1
                    ),
                );
                return None;
            }
            width = Some(items.len());
            next.extend(items.iter());
        }
        let width = width.unwrap_or(0);
        let declared = spec.shape[depth];
        let width_i64 = i64::try_from(width).unwrap_or(i64::MAX);
        if declared != -1 && declared != width_i64 {
            reader.error(
                node,
                format!(
                    "{what} has {width} items at level {}, but the declared shape {:?} says {declared}",
                    depth + 1,
                    spec.shape
                ),
            );
            return None;
        }
        if width == 0 {
            reader.error(node, format!("{what} is empty; give at least one row"));
            return None;
        }
        shape.push(width_i64);
        current = next;
    }
    leaves.extend(current);
    let mut data = TensorData::with_capacity(spec.datatype, leaves.len());
    let mut valid = true;
    for leaf in leaves {
        valid &= push_value(reader, leaf, what, &mut data);
    }
    if !valid {
        return None;
    }
    match Tensor::new(spec.name.clone(), shape, data) {
        Ok(tensor) => Some(tensor),
        Err(err) => {
            reader.error(node, format!("{what}: {err}"));
            None
        }
    }
}

fn push_value(reader: &mut Reader, node: &Node, what: &str, data: &mut TensorData) -> bool {
    let value = &node.data;
    match data {
        TensorData::Bool(values) => match value {
            YamlData::Value(Scalar::Boolean(flag)) => values.push(*flag),
            _ => return wrong_value(reader, node, what, "true or false"),
        },
        TensorData::Int32(values) => match value {
            YamlData::Value(Scalar::Integer(number)) => match i32::try_from(*number) {
                Ok(number) => values.push(number),
                Err(_) => return wrong_value(reader, node, what, "a whole number that fits INT32"),
            },
            _ => return wrong_value(reader, node, what, "a whole number"),
        },
        TensorData::Int64(values) => match value {
            YamlData::Value(Scalar::Integer(number)) => values.push(*number),
            _ => return wrong_value(reader, node, what, "a whole number"),
        },
        TensorData::Fp32(values) => match number(node) {
            Some(number) => values.push(number as f32),
            None => return wrong_value(reader, node, what, "a number"),
        },
        TensorData::Fp64(values) => match number(node) {
            Some(number) => values.push(number),
            None => return wrong_value(reader, node, what, "a number"),
        },
        TensorData::Bytes(values) => match value {
            YamlData::Value(Scalar::String(text)) => values.push(text.as_bytes().to_vec()),
            _ => match scalar_text(node) {
                Some(text) => values.push(text.into_bytes()),
                None => return wrong_value(reader, node, what, "text"),
            },
        },
    }
    true
}

fn number(node: &Node) -> Option<f64> {
    match &node.data {
        YamlData::Value(Scalar::Integer(number)) => Some(*number as f64),
        YamlData::Value(Scalar::FloatingPoint(number)) => Some(number.into_inner()),
        YamlData::Value(Scalar::String(text)) => match text.trim() {
            "nan" | "NaN" | ".nan" => Some(f64::NAN),
            "inf" | ".inf" => Some(f64::INFINITY),
            "-inf" | "-.inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn wrong_value(reader: &mut Reader, node: &Node, what: &str, expected: &str) -> bool {
    reader.error(
        node,
        format!("{what} holds {}, where {expected} goes", describe(node)),
    );
    false
}

fn read_batching(reader: &mut Reader, node: &Node) -> Batching {
    let mut batching = Batching::default();
    let Some(fields) = reader.mapping(node, "`batching`", BATCHING_KEYS) else {
        return batching;
    };
    if let Some(node) = fields.get("max_batch_size")
        && let Some(size) = reader.integer_in(node, "`batching.max_batch_size`", 0, MAX_BATCH_SIZE)
    {
        batching.max_batch_size = usize::try_from(size).unwrap_or(0);
    }
    if let Some(node) = fields.get("max_delay")
        && let Some(delay) = short_duration(reader, node, "`batching.max_delay`")
    {
        batching.max_delay = delay;
    }
    batching
}

/// A short duration: `0`, `500us`, `1ms`, `2.5ms`, `1s`, at most [`MAX_DELAY`].
fn short_duration(reader: &mut Reader, node: &Node, what: &str) -> Option<Duration> {
    let help = "write a number and a unit (us, ms, s), such as 1ms or 500us, or 0";
    let text = match &node.data {
        YamlData::Value(Scalar::Integer(0)) => return Some(Duration::ZERO),
        YamlData::Value(Scalar::Integer(number)) => {
            reader.error(
                node,
                format!("{what} `{number}` has no unit; write it with one, such as {number}ms"),
            );
            return None;
        }
        YamlData::Value(Scalar::String(text)) => text.trim().to_owned(),
        _ => {
            reader.error(node, format!("{what} is {}; {help}", describe(node)));
            return None;
        }
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (amount, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => {
            reader.error(node, format!("{what} is `{text}`; {help}"));
            return None;
        }
    };
    let Ok(amount) = amount.parse::<f64>() else {
        reader.error(node, format!("{what} is `{text}`; {help}"));
        return None;
    };
    let seconds = amount * scale;
    if !(0.0..=MAX_DELAY.as_secs_f64()).contains(&seconds) {
        reader.error(
            node,
            format!("{what} is `{text}`; a request may wait at most 1s for others, such as 1ms"),
        );
        return None;
    }
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests;
