//! What the platform task tests run against: a real feature store in this process (SQLite registry,
//! embedded online store, a `file://` lake), an Open Inference Protocol server standing in for model
//! serving, a log writer whose text can be read back, and Parquet helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use futures::TryStreamExt as _;
use plinth_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use plinth_proto::inference::model_infer_response::InferOutputTensor;
use plinth_proto::inference::model_metadata_response::TensorMetadata;
use plinth_proto::inference::model_repository_parameter::ParameterChoice;
use plinth_proto::inference::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ModelReadyRequest, ModelReadyResponse, RepositoryIndexRequest, RepositoryIndexResponse,
    RepositoryModelLoadRequest, RepositoryModelLoadResponse, RepositoryModelUnloadRequest,
    RepositoryModelUnloadResponse, ServerLiveRequest, ServerLiveResponse, ServerMetadataRequest,
    ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use plinth_runtime::client::AuthChannel;
use plinth_runtime::storage::Locations;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};
use url::Url;

use crate::logs::{AttemptKey, LogStore, LogWriter};
use crate::tasks::{Platform, StorageRoot};

/// Per-test directories: the lake, the model repository, task logs.
pub(super) struct Dirs {
    pub(super) dir: tempfile::TempDir,
    pub(super) lake: PathBuf,
    pub(super) models: PathBuf,
}

impl Dirs {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let models = dir.path().join("models");
        std::fs::create_dir_all(&lake).unwrap();
        std::fs::create_dir_all(&models).unwrap();
        Self { dir, lake, models }
    }

    /// A platform over these directories, without peers.
    pub(super) fn platform(&self) -> Platform {
        let locations = Arc::new(Locations::new(BTreeMap::new()));
        Platform::new(
            StorageRoot::new(locations.clone(), format!("file://{}", self.lake.display())),
            StorageRoot::new(locations, format!("file://{}", self.models.display())),
        )
    }
}

/// A task log that can be read back after the task.
pub(super) struct TaskLog {
    logs: LogStore,
    attempt: AttemptKey,
    pub(super) writer: LogWriter,
}

impl TaskLog {
    pub(super) fn new(dirs: &Dirs) -> Self {
        let logs = LogStore::new(
            Arc::new(Locations::new(BTreeMap::new())),
            format!("file://{}", dirs.dir.path().join("logs").display()),
            dirs.dir.path().join("spool"),
            1024 * 1024,
        )
        .unwrap();
        let attempt = AttemptKey {
            pipeline: "scoring".to_owned(),
            run_id: "manual__2026-01-05T03:00:00Z".to_owned(),
            task: "task".to_owned(),
            try_number: 1,
        };
        let writer = logs.writer(&attempt).unwrap();
        Self {
            logs,
            attempt,
            writer,
        }
    }

    /// Everything written, once the attempt is over.
    pub(super) async fn text(self) -> String {
        self.writer.finish().await.unwrap();
        let chunks: Vec<bytes::Bytes> = self
            .logs
            .read(&self.attempt, false)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        String::from_utf8(chunks.concat()).unwrap()
    }
}

/// A channel to `addr` that connects on first use (so an address nobody listens on is fine).
pub(super) fn lazy_channel(addr: SocketAddr) -> (Url, AuthChannel) {
    lazy_channel_with_timeout(addr, Duration::from_secs(10))
}

/// [`lazy_channel`] whose calls give up after `timeout`.
pub(super) fn lazy_channel_with_timeout(addr: SocketAddr, timeout: Duration) -> (Url, AuthChannel) {
    let url: Url = format!("http://{addr}").parse().unwrap();
    let channel = plinth_runtime::client::connect_lazy(&url, None, None, timeout).unwrap();
    (url, channel)
}

/// A loopback address nobody listens on.
pub(super) fn closed_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A gRPC server spawned in this process, stopped when dropped.
pub(super) struct Spawned {
    pub(super) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Spawned {
    pub(super) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a feature store on a free port with its lake at `lake` (the platform's lake).
pub(super) async fn start_feature_store(dirs: &Dirs) -> Spawned {
    let work = dirs.dir.path().join("feature-store");
    std::fs::create_dir_all(&work).unwrap();
    let mut config = plinth_feature_store::Config::default();
    config.server.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.server.http.listen = "127.0.0.1:0".parse().unwrap();
    config.server.shutdown_grace_period = Duration::from_secs(5);
    config.database.url = format!("sqlite://{}?mode=rwc", work.join("registry.db").display());
    config.online.embedded_url = format!("sqlite://{}?mode=rwc", work.join("online.db").display());
    config.online.key_prefix = format!("fs-{}", uuid::Uuid::now_v7());
    config.lake.root = format!("file://{}", dirs.lake.display());
    config.training.spill_dir = Some(work.join("spill"));
    let bound = plinth_feature_store::bind(&config).await.unwrap();
    let addr = bound.grpc_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let _ = bound
            .serve(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Spawned {
        addr,
        stop: Some(stop),
        done: Some(done),
    }
}

/// Writes `batch` as `<lake>/<dataset>/<file>`.
pub(super) fn write_parquet(lake: &Path, dataset: &str, file: &str, batch: &RecordBatch) {
    let path = lake.join(dataset).join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// Every row of every Parquet file of `<lake>/<dataset>/` (hidden paths skipped), in path order.
pub(super) fn read_dataset(lake: &Path, dataset: &str) -> Vec<RecordBatch> {
    let mut files = Vec::new();
    let mut pending = vec![lake.join(dataset)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.starts_with(['_', '.']) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut batches = Vec::new();
    for path in files {
        let file = std::fs::File::open(path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            batches.push(batch.unwrap());
        }
    }
    batches
}

/// What the model-serving double was asked and holds.
#[derive(Debug, Default)]
pub(super) struct ServingState {
    /// The repository: model → stored versions.
    pub(super) repository: BTreeMap<String, BTreeSet<String>>,
    /// Loaded model → version.
    pub(super) loaded: BTreeMap<String, String>,
    /// What ModelMetadata reports as the input's datatype (`FP64` by default).
    pub(super) input_datatype: Option<String>,
    /// ModelInfer calls answered.
    pub(super) infer_calls: usize,
    /// The row counts of the input tensors received.
    pub(super) batch_rows: Vec<i64>,
    /// Models whose ModelInfer never answers (for cancel tests).
    pub(super) hanging: BTreeSet<String>,
}

/// Stands in for Plinth's model serving (issue 8, not built yet): an Open Inference Protocol V2 gRPC
/// server built on the generated `GrpcInferenceService` trait, so the orchestrator's client side is
/// tested against the same contract model serving will implement. Its repository holds the versions
/// the test puts in; a loaded model answers ModelInfer on a `[rows, n]` FP32/FP64/INT64 input (raw or
/// typed) with `sum` (FP64 `[rows]`, the sum of each row), `doubled` (FP32 `[rows, n]`, each value
/// times two) and `label` (BYTES `[rows]`, `high` when the sum exceeds 10, else `low`).
#[derive(Debug, Clone, Default)]
pub(super) struct ServingDouble {
    pub(super) state: Arc<Mutex<ServingState>>,
}

impl ServingDouble {
    /// Puts `model` `version` in the repository.
    pub(super) fn store(&self, model: &str, version: &str) {
        self.state
            .lock()
            .unwrap()
            .repository
            .entry(model.to_owned())
            .or_default()
            .insert(version.to_owned());
    }

    /// Stores and loads `model` `version`.
    pub(super) fn load(&self, model: &str, version: &str) {
        self.store(model, version);
        self.state
            .lock()
            .unwrap()
            .loaded
            .insert(model.to_owned(), version.to_owned());
    }

    /// Serves the double on a free loopback port.
    pub(super) async fn spawn(&self) -> Spawned {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = GrpcInferenceServiceServer::new(self.clone());
        let done = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async move {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        Spawned {
            addr,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// The loaded version of `model` matching `version` (empty: the loaded one).
    fn loaded(&self, model: &str, version: &str) -> Result<String, Status> {
        let state = self.state.lock().unwrap();
        match state.loaded.get(model) {
            Some(loaded) if version.is_empty() || version == loaded => Ok(loaded.clone()),
            _ => Err(Status::not_found(format!(
                "model `{model}` version `{version}` is not loaded"
            ))),
        }
    }
}

/// The input rows of a ModelInfer request as f64 values, with the row count and width.
fn input_rows(request: &ModelInferRequest) -> Result<(usize, usize, Vec<f64>), Status> {
    let [input] = request.inputs.as_slice() else {
        return Err(Status::invalid_argument(
            "expected exactly one input tensor",
        ));
    };
    let [rows, width] = input.shape.as_slice() else {
        return Err(Status::invalid_argument(format!(
            "input `{}` must have shape [rows, n], got {:?}",
            input.name, input.shape
        )));
    };
    let (rows, width) = (
        usize::try_from(*rows).unwrap(),
        usize::try_from(*width).unwrap(),
    );
    let values: Vec<f64> = match (request.raw_input_contents.first(), input.datatype.as_str()) {
        (Some(raw), "FP32") => raw
            .chunks_exact(4)
            .map(|chunk| f64::from(f32::from_le_bytes(chunk.try_into().unwrap())))
            .collect(),
        (Some(raw), "FP64") => raw
            .chunks_exact(8)
            .map(|chunk| f64::from_le_bytes(chunk.try_into().unwrap()))
            .collect(),
        #[allow(clippy::cast_precision_loss, reason = "test values are small")]
        (Some(raw), "INT64") => raw
            .chunks_exact(8)
            .map(|chunk| i64::from_le_bytes(chunk.try_into().unwrap()) as f64)
            .collect(),
        (None, "FP64") => input.contents.clone().unwrap_or_default().fp64_contents,
        (_, datatype) => {
            return Err(Status::invalid_argument(format!(
                "datatype {datatype} is not supported by this model"
            )));
        }
    };
    if values.len() != rows * width {
        return Err(Status::invalid_argument(format!(
            "input has {} values for shape [{rows}, {width}]",
            values.len()
        )));
    }
    Ok((rows, width, values))
}

#[async_trait::async_trait]
impl GrpcInferenceService for ServingDouble {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let ready = self.loaded(&request.name, &request.version).is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "serving-double".to_owned(),
            version: "0".to_owned(),
            extensions: vec!["model_repository".to_owned()],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let version = self.loaded(&request.name, &request.version)?;
        let datatype = self
            .state
            .lock()
            .unwrap()
            .input_datatype
            .clone()
            .unwrap_or_else(|| "FP64".to_owned());
        let tensor = |name: &str, datatype: &str, shape: Vec<i64>| TensorMetadata {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape,
        };
        Ok(Response::new(ModelMetadataResponse {
            name: request.name,
            versions: vec![version],
            platform: "double".to_owned(),
            inputs: vec![tensor("features", &datatype, vec![-1, -1])],
            outputs: vec![
                tensor("sum", "FP64", vec![-1]),
                tensor("doubled", "FP32", vec![-1, -1]),
                tensor("label", "BYTES", vec![-1]),
            ],
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let request = request.into_inner();
        let version = self.loaded(&request.model_name, &request.model_version)?;
        let hanging = self
            .state
            .lock()
            .unwrap()
            .hanging
            .contains(&request.model_name);
        if hanging {
            std::future::pending::<()>().await;
        }
        let (rows, width, values) = input_rows(&request)?;
        let sums: Vec<f64> = values
            .chunks(width.max(1))
            .map(|row| row.iter().sum())
            .collect();
        let mut sum_raw = Vec::new();
        let mut label_raw = Vec::new();
        for sum in &sums {
            sum_raw.extend_from_slice(&sum.to_le_bytes());
            let label: &[u8] = if *sum > 10.0 { b"high" } else { b"low" };
            label_raw.extend_from_slice(&u32::try_from(label.len()).unwrap().to_le_bytes());
            label_raw.extend_from_slice(label);
        }
        #[allow(clippy::cast_possible_truncation, reason = "test values fit f32")]
        let doubled_raw: Vec<u8> = values
            .iter()
            .flat_map(|value| ((value * 2.0) as f32).to_le_bytes())
            .collect();
        {
            let mut state = self.state.lock().unwrap();
            state.infer_calls += 1;
            state.batch_rows.push(i64::try_from(rows).unwrap());
        }
        let rows = i64::try_from(rows).unwrap();
        let width = i64::try_from(width).unwrap();
        let output = |name: &str, datatype: &str, shape: Vec<i64>| InferOutputTensor {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape,
            parameters: Default::default(),
            contents: None,
        };
        Ok(Response::new(ModelInferResponse {
            model_name: request.model_name,
            model_version: version,
            id: request.id,
            parameters: Default::default(),
            outputs: vec![
                output("sum", "FP64", vec![rows]),
                output("doubled", "FP32", vec![rows, width]),
                output("label", "BYTES", vec![rows]),
            ],
            raw_output_contents: vec![sum_raw, doubled_raw, label_raw],
        }))
    }

    async fn repository_index(
        &self,
        _request: Request<RepositoryIndexRequest>,
    ) -> Result<Response<RepositoryIndexResponse>, Status> {
        Ok(Response::new(RepositoryIndexResponse {
            models: Vec::new(),
        }))
    }

    async fn repository_model_load(
        &self,
        request: Request<RepositoryModelLoadRequest>,
    ) -> Result<Response<RepositoryModelLoadResponse>, Status> {
        let request = request.into_inner();
        let version = match request
            .parameters
            .get("version")
            .and_then(|parameter| parameter.parameter_choice.clone())
        {
            Some(ParameterChoice::StringParam(version)) => version,
            _ => {
                return Err(Status::invalid_argument(
                    "parameter `version` (a string) is required",
                ));
            }
        };
        let mut state = self.state.lock().unwrap();
        let stored = state
            .repository
            .get(&request.model_name)
            .is_some_and(|versions| versions.contains(&version));
        if !stored {
            return Err(Status::not_found(format!(
                "no model `{}` version `{version}` in the model repository",
                request.model_name
            )));
        }
        state.loaded.insert(request.model_name, version);
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<RepositoryModelUnloadRequest>,
    ) -> Result<Response<RepositoryModelUnloadResponse>, Status> {
        self.state
            .lock()
            .unwrap()
            .loaded
            .remove(&request.into_inner().model_name);
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }
}
