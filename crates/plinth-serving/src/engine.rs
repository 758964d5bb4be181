//! ONNX Runtime, loaded at run time from `libonnxruntime.so` (the `ort` crate's `load-dynamic`): one
//! environment per process ([`Engine::init`]), one [`Session`] per model instance. A session is checked
//! against the model's `model.yaml` when built (input and output names, types and ranks), and runs on
//! the caller's thread: the batcher calls it from its own worker threads, never from the async runtime.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use ort::environment::Environment;
use ort::session::SessionInputValue;
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};

use crate::error::ServingError;
use crate::spec::{ModelSpec, TensorSpec};
use crate::tensor::{DataType, Tensor, TensorData};

/// The environment of this process: ONNX Runtime allows one, and the library stays loaded.
static ENVIRONMENT: OnceLock<(PathBuf, Environment)> = OnceLock::new();
/// Serializes [`Engine::init`] so that two callers do not load the library twice.
static INIT: Mutex<()> = Mutex::new(());

/// The library file name `ort` looks for on the system's library path.
const SYSTEM_LIBRARY: &str = "libonnxruntime.so";

/// ONNX Runtime, loaded.
#[derive(Clone)]
pub struct Engine {
    environment: Environment,
    library: PathBuf,
    intra_op_threads: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Engine")
            .field("library", &self.library)
            .field("intra_op_threads", &self.intra_op_threads)
            .finish_non_exhaustive()
    }
}

/// Where `libonnxruntime.so` is when nothing names it: `ORT_DYLIB_PATH`, else the `onnxruntime` wheel in
/// the tools venv that `make tools` builds (`$PLINTH_VENV`, else `$PLINTH_TOOLS_DIR/venv`, else
/// `${XDG_CACHE_HOME:-~/.cache}/plinth/tools/venv`):
/// `lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
pub fn find_library() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    plinth_runtime::venv::tools_venvs()
        .iter()
        .find_map(|venv| library_in_venv(venv))
}

fn library_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
        .map(|entry| entry.path())
        .collect();
    pythons.sort();
    pythons.iter().rev().find_map(|python| {
        let capi = python.join("site-packages/onnxruntime/capi");
        let mut libraries: Vec<PathBuf> = std::fs::read_dir(&capi)
            .ok()?
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("libonnxruntime.so")
            })
            .map(|entry| entry.path())
            .collect();
        // `libonnxruntime.so.1.32.0` over the providers' shared libraries, the longest (versioned) name.
        libraries.sort_by_key(|path| path.as_os_str().len());
        libraries.pop()
    })
}

impl Engine {
    /// Loads ONNX Runtime from `library` (else [`find_library`], else `libonnxruntime.so` on the
    /// system's library path), once per process: later calls reuse the loaded library. UNAVAILABLE
    /// naming the path and the cause when it cannot be loaded.
    pub fn init(library: Option<&Path>, intra_op_threads: usize) -> Result<Engine, ServingError> {
        let _guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
        let intra_op_threads = intra_op_threads.max(1);
        if let Some((loaded, environment)) = ENVIRONMENT.get() {
            if let Some(library) = library
                && library != loaded
            {
                tracing::warn!(
                    requested = %library.display(),
                    loaded = %loaded.display(),
                    "ONNX Runtime is already loaded from another library; keeping it"
                );
            }
            return Ok(Engine {
                environment: environment.clone(),
                library: loaded.clone(),
                intra_op_threads,
            });
        }
        let path = library
            .map(Path::to_path_buf)
            .or_else(find_library)
            .unwrap_or_else(|| PathBuf::from(SYSTEM_LIBRARY));
        let unavailable = |cause: String| ServingError::Unavailable {
            message: format!(
                "cannot load ONNX Runtime from {}: {cause}; set onnx.library (or ORT_DYLIB_PATH) to libonnxruntime.so, which the PyPI wheel `onnxruntime` ships in site-packages/onnxruntime/capi/",
                path.display()
            ),
        };
        if path.components().count() > 1 && !path.is_file() {
            return Err(unavailable("no such file".to_owned()));
        }
        // `ort` may panic inside a broken library's entry points; a panic is a load failure here.
        let built = std::panic::catch_unwind(AssertUnwindSafe(|| {
            ort::init_from(&path)
                .map_err(|err| err.to_string())?
                .with_name(crate::SERVICE_NAME)
                .with_telemetry(false)
                .build()
                .map_err(|err| err.to_string())
        }));
        let environment = match built {
            Ok(Ok(environment)) => environment,
            Ok(Err(cause)) => return Err(unavailable(cause)),
            Err(panic) => return Err(unavailable(panic_message(panic.as_ref()))),
        };
        tracing::info!(library = %path.display(), "ONNX Runtime loaded");
        let (library, environment) = ENVIRONMENT.get_or_init(|| (path, environment));
        Ok(Engine {
            environment: environment.clone(),
            library: library.clone(),
            intra_op_threads,
        })
    }

    /// The library loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// A session of the ONNX model `bytes`, checked against `spec`; `what` names the model in
    /// messages (`model \`iris\` version \`v1\``). BAD_MODEL with the reason when the bytes are not a
    /// model ONNX Runtime can run or its graph does not match `model.yaml`.
    pub fn session(
        &self,
        what: &str,
        bytes: &[u8],
        spec: &ModelSpec,
    ) -> Result<Session, ServingError> {
        let bad = |reason: String| ServingError::bad_model(format!("{what}: {reason}"));
        let built = std::panic::catch_unwind(AssertUnwindSafe(|| {
            ort::session::Session::builder(&self.environment)
                .map_err(|err| err.to_string())?
                .with_intra_threads(self.intra_op_threads)
                .map_err(|err| err.to_string())?
                .with_inter_threads(1)
                .map_err(|err| err.to_string())?
                .commit_from_memory(bytes)
                .map_err(|err| err.to_string())
        }));
        let session = match built {
            Ok(Ok(session)) => session,
            Ok(Err(cause)) => {
                return Err(bad(format!(
                    "ONNX Runtime cannot load the artifact `{}`: {cause}; export the model again (skl2onnx, torch.onnx) with an opset this runtime supports",
                    spec.artifact
                )));
            }
            Err(panic) => {
                return Err(bad(format!(
                    "ONNX Runtime failed on the artifact `{}`: {}",
                    spec.artifact,
                    panic_message(panic.as_ref())
                )));
            }
        };
        let graph_inputs: Vec<(String, ValueType)> = session
            .inputs()
            .iter()
            .map(|outlet| (outlet.name().to_owned(), outlet.dtype().clone()))
            .collect();
        let graph_outputs: Vec<(String, ValueType)> = session
            .outputs()
            .iter()
            .map(|outlet| (outlet.name().to_owned(), outlet.dtype().clone()))
            .collect();
        let mut input_order = Vec::with_capacity(graph_inputs.len());
        for (name, dtype) in &graph_inputs {
            let Some((index, declared)) = spec.input(name) else {
                return Err(bad(format!(
                    "the graph takes the input `{name}` ({}), which model.yaml does not declare; declare it under `inputs:` (model.yaml declares {})",
                    describe_type(dtype),
                    names(&spec.inputs)
                )));
            };
            check_signature(declared, dtype, "input").map_err(bad)?;
            input_order.push(index);
        }
        if let Some(missing) = spec
            .inputs
            .iter()
            .find(|declared| !graph_inputs.iter().any(|(name, _)| *name == declared.name))
        {
            return Err(bad(format!(
                "model.yaml declares the input `{}`, which the graph does not take; the graph's inputs are {}",
                missing.name,
                graph_names(&graph_inputs)
            )));
        }
        let mut output_order = Vec::with_capacity(spec.outputs.len());
        for declared in &spec.outputs {
            let Some(index) = graph_outputs
                .iter()
                .position(|(name, _)| *name == declared.name)
            else {
                return Err(bad(format!(
                    "model.yaml declares the output `{}`, which the graph does not produce; the graph's outputs are {}",
                    declared.name,
                    graph_names(&graph_outputs)
                )));
            };
            check_signature(declared, &graph_outputs[index].1, "output").map_err(bad)?;
            output_order.push(index);
        }
        Ok(Session {
            session,
            input_order,
            output_order,
            outputs: spec.outputs.clone(),
        })
    }
}

/// One ONNX Runtime session of a model version, checked against its `model.yaml`. Not shared between
/// threads at once (ONNX Runtime's `Run` is not thread safe): each batcher worker owns one.
pub struct Session {
    session: ort::session::Session,
    /// For each graph input, in graph order, the position of its spec input.
    input_order: Vec<usize>,
    /// For each spec output, the position of its graph output.
    output_order: Vec<usize>,
    outputs: Vec<TensorSpec>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Session")
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Runs the graph on `inputs`, given in the spec's input order with the spec's types (the caller
    /// checked them), and returns the spec's outputs in spec order. Blocks: call it off the async
    /// runtime.
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ServingError> {
        let mut values: Vec<SessionInputValue<'_>> = Vec::with_capacity(self.input_order.len());
        for &index in &self.input_order {
            let tensor = inputs.get(index).ok_or_else(|| {
                ServingError::internal(format!(
                    "the engine got {} inputs, fewer than the model's {}",
                    inputs.len(),
                    self.input_order.len()
                ))
            })?;
            values.push(input_value(tensor)?);
        }
        let outputs = self
            .session
            .run(values.as_slice())
            .map_err(|err| ServingError::internal(format!("ONNX Runtime failed to run: {err}")))?;
        let mut result = Vec::with_capacity(self.output_order.len());
        for (declared, &index) in self.outputs.iter().zip(&self.output_order) {
            result.push(output_tensor(declared, &outputs[index])?);
        }
        Ok(result)
    }
}

/// Bytes handed to ONNX Runtime as a string element (`ort` wants owned, `'static` elements).
#[derive(Clone)]
struct ByteString(Vec<u8>);

impl ort::value::Utf8Data for ByteString {
    fn as_utf8_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn engine_error(tensor: &Tensor, err: impl std::fmt::Display) -> ServingError {
    ServingError::invalid(
        tensor.name.clone(),
        format!("ONNX Runtime refused the tensor: {err}"),
    )
}

/// A view of `tensor` for the engine, without copying numbers.
fn input_value<'t>(tensor: &'t Tensor) -> Result<SessionInputValue<'t>, ServingError> {
    let shape = tensor.shape.as_slice();
    let value: SessionInputValue<'t> = match &tensor.data {
        TensorData::Bool(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(|err| engine_error(tensor, err))?
            .into(),
        TensorData::Int32(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(|err| engine_error(tensor, err))?
            .into(),
        TensorData::Int64(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(|err| engine_error(tensor, err))?
            .into(),
        TensorData::Fp32(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(|err| engine_error(tensor, err))?
            .into(),
        TensorData::Fp64(values) => TensorRef::from_array_view((shape, values.as_slice()))
            .map_err(|err| engine_error(tensor, err))?
            .into(),
        TensorData::Bytes(values) => {
            if values.iter().any(|value| value.contains(&0)) {
                return Err(ServingError::invalid(
                    tensor.name.clone(),
                    "a BYTES element holds a NUL byte, which ONNX string tensors cannot carry",
                ));
            }
            let strings: Vec<ByteString> = values
                .iter()
                .map(|value| ByteString(value.clone()))
                .collect();
            ort::value::Tensor::from_string_array((shape, strings.as_slice()))
                .map_err(|err| engine_error(tensor, err))?
                .into()
        }
    };
    Ok(value)
}

/// Copies one output out of the engine.
fn output_tensor(declared: &TensorSpec, value: &DynValue) -> Result<Tensor, ServingError> {
    let failed = |err: ort::Error| {
        ServingError::internal(format!(
            "cannot read the output `{}` as {}: {err}",
            declared.name, declared.datatype
        ))
    };
    let (shape, data) = match declared.datatype {
        DataType::Bool => {
            let (shape, values) = value.try_extract_tensor::<bool>().map_err(failed)?;
            (shape.to_vec(), TensorData::Bool(values.to_vec()))
        }
        DataType::Int32 => {
            let (shape, values) = value.try_extract_tensor::<i32>().map_err(failed)?;
            (shape.to_vec(), TensorData::Int32(values.to_vec()))
        }
        DataType::Int64 => {
            let (shape, values) = value.try_extract_tensor::<i64>().map_err(failed)?;
            (shape.to_vec(), TensorData::Int64(values.to_vec()))
        }
        DataType::Fp32 => {
            let (shape, values) = value.try_extract_tensor::<f32>().map_err(failed)?;
            (shape.to_vec(), TensorData::Fp32(values.to_vec()))
        }
        DataType::Fp64 => {
            let (shape, values) = value.try_extract_tensor::<f64>().map_err(failed)?;
            (shape.to_vec(), TensorData::Fp64(values.to_vec()))
        }
        DataType::Bytes => {
            let (shape, values) = value.try_extract_strings().map_err(failed)?;
            (
                shape.to_vec(),
                TensorData::Bytes(values.into_iter().map(String::into_bytes).collect()),
            )
        }
    };
    Ok(Tensor {
        name: declared.name.clone(),
        shape,
        data,
    })
}

/// The protocol type of an ONNX element type, when it has one.
fn datatype_of(element: TensorElementType) -> Option<DataType> {
    match element {
        TensorElementType::Bool => Some(DataType::Bool),
        TensorElementType::Int32 => Some(DataType::Int32),
        TensorElementType::Int64 => Some(DataType::Int64),
        TensorElementType::Float32 => Some(DataType::Fp32),
        TensorElementType::Float64 => Some(DataType::Fp64),
        TensorElementType::String => Some(DataType::Bytes),
        _ => None,
    }
}

/// Checks a graph input or output against its `model.yaml` declaration.
fn check_signature(declared: &TensorSpec, dtype: &ValueType, kind: &str) -> Result<(), String> {
    let ValueType::Tensor { ty, shape, .. } = dtype else {
        return Err(format!(
            "the graph's {kind} `{}` is {}, not a tensor; export classifiers with skl2onnx option zipmap=False",
            declared.name,
            describe_type(dtype)
        ));
    };
    match datatype_of(*ty) {
        Some(datatype) if datatype == declared.datatype => {}
        _ => {
            return Err(format!(
                "model.yaml declares the {kind} `{}` as {}, but the graph's is {}; fix `datatype:` in model.yaml",
                declared.name,
                declared.datatype,
                describe_type(dtype)
            ));
        }
    }
    let graph_shape: &[i64] = shape;
    // ONNX Runtime reports no shape (rank 0) for some outputs of ML operators; nothing to check then.
    if graph_shape.is_empty() {
        return Ok(());
    }
    let compatible = graph_shape.len() == declared.shape.len()
        && graph_shape
            .iter()
            .zip(&declared.shape)
            .all(|(graph, spec)| *graph < 0 || *spec < 0 || graph == spec);
    if !compatible {
        return Err(format!(
            "model.yaml declares the {kind} `{}` with the shape {:?}, but the graph's is {:?} (-1: variable); fix `shape:` in model.yaml",
            declared.name, declared.shape, graph_shape
        ));
    }
    Ok(())
}

fn describe_type(dtype: &ValueType) -> String {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => match datatype_of(*ty) {
            Some(datatype) => format!("{datatype} {:?}", shape.as_ref() as &[i64]),
            None => format!("a tensor of {ty} (not supported here)"),
        },
        ValueType::Sequence(_) => "a sequence".to_owned(),
        ValueType::Map { .. } => "a map".to_owned(),
        ValueType::Optional(_) => "an optional value".to_owned(),
    }
}

fn names(tensors: &[TensorSpec]) -> String {
    tensors
        .iter()
        .map(|tensor| format!("`{}`", tensor.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn graph_names(values: &[(String, ValueType)]) -> String {
    values
        .iter()
        .map(|(name, dtype)| format!("`{name}` ({})", describe_type(dtype)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "a panic inside ONNX Runtime's bindings".to_owned())
}
