//! `plinth.orchestrator.v1.OrchestratorService`: validate and apply pipeline files, trigger, inspect and
//! cancel runs, stream run events and task logs. Conversions to the proto types live in `api/convert.rs`.

mod convert;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use plinth_proto::orchestrator::v1 as pb;
use plinth_proto::orchestrator::v1::orchestrator_service_server::{
    OrchestratorService, OrchestratorServiceServer,
};
use plinth_runtime::auth::{AccessPolicy, DefaultAccessPolicy, Role};
use plinth_runtime::error::ApiError;
use tonic::{Request, Response, Status};

use crate::domain::cron::Cron;
use crate::domain::parse::{self, PipelineFile};
use crate::domain::pipeline::Pipeline;
use crate::domain::state::RunState;
use crate::domain::template;
use crate::engine::{Engine, now_micros, task_rows};
use crate::events::{self, EventFilter};
use crate::logs::AttemptKey;
use crate::store::{ApplyItem, ApplyOutcome, NewRun, RunTrigger, StoreError, StoredPipeline};

use self::convert::{
    event_to_proto, json_to_struct, micros_to_timestamp, run_to_proto, struct_to_json,
    timestamp_to_micros,
};

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct GrpcApi {
    engine: Arc<Engine>,
}

impl GrpcApi {
    /// The tonic server.
    pub fn server(
        engine: Arc<Engine>,
        max_message_bytes: usize,
    ) -> OrchestratorServiceServer<Self> {
        OrchestratorServiceServer::new(Self { engine })
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes.max(16 * 1024 * 1024))
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(value: T) -> RpcResult<T> {
    Ok(Response::new(value))
}

/// A store failure as the client sees it.
pub fn store_error(err: StoreError) -> ApiError {
    if err.is_unavailable() {
        ApiError::unavailable("DATABASE_UNAVAILABLE", err.to_string())
    } else {
        ApiError::internal(err)
    }
}

fn store(err: StoreError) -> Status {
    store_error(err).into()
}

fn files(files: Vec<pb::PipelineFile>) -> Result<Vec<PipelineFile>, ApiError> {
    if files.is_empty() {
        return Err(ApiError::required(
            "files",
            "send the pipeline files (YAML), one per pipeline",
        ));
    }
    Ok(files
        .into_iter()
        .map(|file| PipelineFile {
            path: file.path,
            content: file.content,
        })
        .collect())
}

fn schedule_text(pipeline: &Pipeline) -> String {
    pipeline
        .schedule
        .as_ref()
        .map(|schedule| format!("{} {}", schedule.cron, schedule.timezone))
        .unwrap_or_default()
}

fn ordered_tasks(pipeline: &Pipeline) -> Vec<String> {
    parse::topological_order(pipeline)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The first cron tick a newly applied (or unpaused) schedule runs: with catchup, the first tick at or
/// after `start_date`; otherwise the first tick after now (and after `start_date`).
pub fn first_tick(pipeline: &Pipeline, now: i64) -> Option<i64> {
    let schedule = pipeline.schedule.as_ref()?;
    let cron = Cron::parse(schedule).ok()?;
    match pipeline.start_date_micros {
        Some(start) if pipeline.catchup => cron.next_after(start - 1),
        Some(start) => cron.next_after(now.max(start - 1)),
        None => cron.next_after(now),
    }
}

impl GrpcApi {
    async fn pipeline_to_proto(
        &self,
        stored: &StoredPipeline,
        with_yaml: bool,
    ) -> Result<pb::Pipeline, Status> {
        let latest = self
            .engine
            .store()
            .runs(Some(&stored.pipeline.name), &[], 1)
            .await
            .map_err(store)?
            .into_iter()
            .next();
        Ok(pb::Pipeline {
            name: stored.pipeline.name.clone(),
            version: stored.version,
            owner: stored.pipeline.owner.clone(),
            description: stored.pipeline.description.clone(),
            schedule: schedule_text(&stored.pipeline),
            paused: stored.paused,
            next_run_time: if stored.paused {
                None
            } else {
                stored.next_tick.map(micros_to_timestamp)
            },
            update_time: Some(micros_to_timestamp(stored.update_time)),
            tasks: ordered_tasks(&stored.pipeline),
            latest_run: latest.map(|run| run_to_proto(&run, Vec::new())),
            yaml: if with_yaml {
                stored.yaml.clone()
            } else {
                String::new()
            },
        })
    }

    async fn stored_pipeline(&self, name: &str) -> Result<StoredPipeline, Status> {
        if name.is_empty() {
            return Err(ApiError::required("name", "name the pipeline").into());
        }
        self.engine
            .store()
            .pipeline(name)
            .await
            .map_err(store)?
            .ok_or_else(|| {
                ApiError::not_found(
                    "PIPELINE_NOT_FOUND",
                    format!("no pipeline `{name}` is applied; `plinth pipeline list` shows the applied ones"),
                )
                .with_metadata("pipeline", name)
                .into()
            })
    }

    async fn full_run(&self, id: &str) -> Result<pb::Run, Status> {
        let run = self
            .engine
            .store()
            .run(id)
            .await
            .map_err(store)?
            .ok_or_else(|| run_not_found(id))?;
        let tasks = self.engine.store().tasks(id).await.map_err(store)?;
        let attempts = self.engine.store().attempts(id).await.map_err(store)?;
        let pipeline = self
            .engine
            .pipeline_version(&run.pipeline, run.pipeline_version)
            .await
            .map_err(store)?;
        // Tasks in dependency order (file order among ready ones), as users read their pipeline.
        let order: Vec<String> = pipeline.as_deref().map(ordered_tasks).unwrap_or_default();
        let mut tasks = tasks;
        tasks.sort_by_key(|task| {
            order
                .iter()
                .position(|name| *name == task.task)
                .unwrap_or(usize::MAX)
        });
        let task_runs = tasks
            .iter()
            .map(|task| {
                convert::task_to_proto(
                    task,
                    attempts.iter().filter(|attempt| attempt.task == task.task),
                    pipeline
                        .as_ref()
                        .and_then(|pipeline| pipeline.task(&task.task))
                        .map(|definition| definition.dependencies.clone())
                        .unwrap_or_default(),
                )
            })
            .collect();
        Ok(run_to_proto(&run, task_runs))
    }
}

fn run_not_found(id: &str) -> Status {
    ApiError::not_found(
        "RUN_NOT_FOUND",
        format!("no run `{id}`; `plinth pipeline list` and ListRuns show run ids"),
    )
    .with_metadata("run_id", id)
    .into()
}

fn file_errors(errors: Vec<plinth_runtime::yaml::SourceError>) -> Vec<pb::PipelineFileError> {
    errors
        .into_iter()
        .map(|error| pb::PipelineFileError {
            path: error.path,
            line: u32::try_from(error.line).unwrap_or(u32::MAX),
            column: u32::try_from(error.column).unwrap_or(u32::MAX),
            message: error.message,
        })
        .collect()
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::StreamRunEventsResponse, Status>> + Send>>;
type LogStream = Pin<Box<dyn Stream<Item = Result<pb::GetTaskLogsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl OrchestratorService for GrpcApi {
    async fn validate_pipelines(
        &self,
        request: Request<pb::ValidatePipelinesRequest>,
    ) -> RpcResult<pb::ValidatePipelinesResponse> {
        let files = files(request.into_inner().files)?;
        match parse::parse(&files) {
            Ok(parsed) => reply(pb::ValidatePipelinesResponse {
                pipelines: parsed
                    .iter()
                    .map(|parsed| pb::PipelineSummary {
                        name: parsed.pipeline.name.clone(),
                        owner: parsed.pipeline.owner.clone(),
                        description: parsed.pipeline.description.clone(),
                        schedule: schedule_text(&parsed.pipeline),
                        tasks: ordered_tasks(&parsed.pipeline),
                    })
                    .collect(),
                errors: Vec::new(),
            }),
            Err(errors) => reply(pb::ValidatePipelinesResponse {
                pipelines: Vec::new(),
                errors: file_errors(errors),
            }),
        }
    }

    async fn apply_pipelines(
        &self,
        request: Request<pb::ApplyPipelinesRequest>,
    ) -> RpcResult<pb::ApplyPipelinesResponse> {
        let files = files(request.into_inner().files)?;
        let parsed = parse::parse(&files).map_err(|errors| {
            let count = errors.len();
            let mut error = ApiError::invalid_argument(
                "INVALID_PIPELINE",
                format!(
                    "{count} mistake{} in the pipeline files; nothing was applied and the pipelines already applied keep running: {}",
                    if count == 1 { "" } else { "s" },
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
            for err in &errors {
                error = error.with_field(
                    format!("{}:{}:{}", err.path, err.line, err.column),
                    err.message.clone(),
                );
            }
            Status::from(error)
        })?;
        let now = now_micros();
        let items: Vec<ApplyItem> = parsed
            .into_iter()
            .map(|parsed| ApplyItem {
                first_tick: first_tick(&parsed.pipeline, now),
                pipeline: parsed.pipeline,
                yaml: parsed.yaml,
            })
            .collect();
        let outcomes = self
            .engine
            .store()
            .apply(&items, now)
            .await
            .map_err(store)?;
        self.engine.wake();
        reply(pb::ApplyPipelinesResponse {
            pipelines: items
                .iter()
                .zip(outcomes)
                .map(|(item, (version, outcome))| pb::AppliedPipeline {
                    name: item.pipeline.name.clone(),
                    version,
                    outcome: match outcome {
                        ApplyOutcome::Created => pb::ApplyOutcome::Created,
                        ApplyOutcome::Updated => pb::ApplyOutcome::Updated,
                        ApplyOutcome::Unchanged => pb::ApplyOutcome::Unchanged,
                    }
                    .into(),
                })
                .collect(),
        })
    }

    async fn list_pipelines(
        &self,
        request: Request<pb::ListPipelinesRequest>,
    ) -> RpcResult<pb::ListPipelinesResponse> {
        let owner = request.into_inner().owner;
        let stored = self
            .engine
            .store()
            .pipelines((!owner.is_empty()).then_some(owner.as_str()))
            .await
            .map_err(store)?;
        let mut pipelines = Vec::with_capacity(stored.len());
        for stored in &stored {
            pipelines.push(self.pipeline_to_proto(stored, false).await?);
        }
        reply(pb::ListPipelinesResponse { pipelines })
    }

    async fn get_pipeline(
        &self,
        request: Request<pb::GetPipelineRequest>,
    ) -> RpcResult<pb::GetPipelineResponse> {
        let stored = self.stored_pipeline(&request.into_inner().name).await?;
        reply(pb::GetPipelineResponse {
            pipeline: Some(self.pipeline_to_proto(&stored, true).await?),
        })
    }

    async fn set_pipeline_paused(
        &self,
        request: Request<pb::SetPipelinePausedRequest>,
    ) -> RpcResult<pb::SetPipelinePausedResponse> {
        let request = request.into_inner();
        let stored = self.stored_pipeline(&request.name).await?;
        let next = first_tick(&stored.pipeline, now_micros());
        self.engine
            .store()
            .set_paused(&request.name, request.paused, next)
            .await
            .map_err(store)?;
        self.engine.wake();
        let stored = self.stored_pipeline(&request.name).await?;
        reply(pb::SetPipelinePausedResponse {
            pipeline: Some(self.pipeline_to_proto(&stored, false).await?),
        })
    }

    async fn delete_pipeline(
        &self,
        request: Request<pb::DeletePipelineRequest>,
    ) -> RpcResult<pb::DeletePipelineResponse> {
        let request = request.into_inner();
        self.stored_pipeline(&request.name).await?;
        let active = self
            .engine
            .store()
            .runs(
                Some(&request.name),
                &[RunState::Queued, RunState::Running],
                1000,
            )
            .await
            .map_err(store)?;
        if !active.is_empty() && !request.cancel_active_runs {
            return Err(ApiError::failed_precondition(
                "PIPELINE_HAS_ACTIVE_RUNS",
                format!(
                    "pipeline `{}` has {} active run(s) (first: {}); cancel them or set cancel_active_runs",
                    request.name,
                    active.len(),
                    active[0].id
                ),
            )
            .into());
        }
        for run in &active {
            self.engine
                .store()
                .cancel_run(&run.id, "its pipeline was deleted", now_micros())
                .await
                .map_err(store)?;
        }
        self.engine
            .store()
            .delete_pipeline(&request.name)
            .await
            .map_err(store)?;
        self.engine.wake();
        reply(pb::DeletePipelineResponse {})
    }

    async fn run_pipeline(
        &self,
        request: Request<pb::RunPipelineRequest>,
    ) -> RpcResult<pb::RunPipelineResponse> {
        let caller = plinth_runtime::auth::caller(&request)
            .map(|caller| caller.name.clone())
            .unwrap_or_else(|| "anonymous".to_owned());
        let request = request.into_inner();
        if request.pipeline.is_empty() {
            return Err(ApiError::required("pipeline", "name the pipeline to run").into());
        }
        let stored = self.stored_pipeline(&request.pipeline).await?;
        let overrides: BTreeMap<String, serde_json::Value> = request
            .params
            .as_ref()
            .map(struct_to_json)
            .unwrap_or_default();
        let params = template::resolve_params(&stored.pipeline, &overrides).map_err(|errors| {
            let mut error = ApiError::invalid_argument(
                "INVALID_PARAMS",
                format!(
                    "the parameters of pipeline `{}` are not valid: {}",
                    request.pipeline,
                    errors.join("; ")
                ),
            );
            for message in &errors {
                error = error.with_field("params", message.clone());
            }
            Status::from(error)
        })?;
        let now = now_micros();
        let logical_date = match &request.logical_date {
            Some(time) => timestamp_to_micros(time).ok_or_else(|| {
                Status::from(
                    ApiError::invalid_argument(
                        "INVALID_LOGICAL_DATE",
                        "logical_date is out of range",
                    )
                    .with_field("logical_date", "out of range"),
                )
            })?,
            None => now,
        };
        let run = NewRun {
            id: uuid::Uuid::now_v7().to_string(),
            pipeline: request.pipeline.clone(),
            pipeline_version: stored.version,
            trigger: RunTrigger::Manual,
            triggered_by: caller,
            logical_date,
            interval: (logical_date, logical_date),
            params,
            schedule_key: None,
            request_key: (!request.request_id.is_empty())
                .then(|| format!("{}/{}", request.pipeline, request.request_id)),
            tasks: task_rows(&stored.pipeline),
        };
        let (record, _) = self
            .engine
            .store()
            .create_run(&run, now)
            .await
            .map_err(store)?;
        self.engine.wake();
        reply(pb::RunPipelineResponse {
            run: Some(run_to_proto(&record, Vec::new())),
        })
    }

    async fn get_run(&self, request: Request<pb::GetRunRequest>) -> RpcResult<pb::GetRunResponse> {
        let id = request.into_inner().run_id;
        if id.is_empty() {
            return Err(ApiError::required("run_id", "give the run's id").into());
        }
        reply(pb::GetRunResponse {
            run: Some(self.full_run(&id).await?),
        })
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> RpcResult<pb::ListRunsResponse> {
        let request = request.into_inner();
        let states: Vec<RunState> = request
            .states
            .iter()
            .filter_map(|state| convert::run_state_from_proto(*state))
            .collect();
        let limit = match request.limit {
            0 => 50,
            limit => limit.min(1000),
        };
        let runs = self
            .engine
            .store()
            .runs(
                (!request.pipeline.is_empty()).then_some(request.pipeline.as_str()),
                &states,
                limit,
            )
            .await
            .map_err(store)?;
        reply(pb::ListRunsResponse {
            runs: runs
                .iter()
                .map(|run| run_to_proto(run, Vec::new()))
                .collect(),
        })
    }

    async fn cancel_run(
        &self,
        request: Request<pb::CancelRunRequest>,
    ) -> RpcResult<pb::CancelRunResponse> {
        let caller = plinth_runtime::auth::caller(&request)
            .map(|caller| caller.name.clone())
            .unwrap_or_else(|| "anonymous".to_owned());
        let request = request.into_inner();
        if request.run_id.is_empty() {
            return Err(ApiError::required("run_id", "give the id of the run to cancel").into());
        }
        let reason = if request.reason.is_empty() {
            format!("cancelled by {caller}")
        } else {
            format!("cancelled by {caller}: {}", request.reason)
        };
        self.engine
            .store()
            .cancel_run(&request.run_id, &reason, now_micros())
            .await
            .map_err(store)?
            .ok_or_else(|| run_not_found(&request.run_id))?;
        self.engine.wake();
        reply(pb::CancelRunResponse {
            run: Some(self.full_run(&request.run_id).await?),
        })
    }

    type StreamRunEventsStream = EventStream;

    async fn stream_run_events(
        &self,
        request: Request<pb::StreamRunEventsRequest>,
    ) -> RpcResult<Self::StreamRunEventsStream> {
        let request = request.into_inner();
        let after = if request.after_sequence > 0 {
            request.after_sequence
        } else {
            self.engine.store().last_sequence().await.map_err(store)?
        };
        let filter = EventFilter {
            pipeline: (!request.pipeline.is_empty()).then_some(request.pipeline),
            run_id: (!request.run_id.is_empty()).then_some(request.run_id),
        };
        let stream = events::stream(
            self.engine.store().clone(),
            self.engine.events_notify(),
            filter,
            after,
        )
        .map(|event| {
            event
                .map(|event| pb::StreamRunEventsResponse {
                    event: Some(event_to_proto(&event)),
                })
                .map_err(store)
        });
        reply(Box::pin(stream))
    }

    type GetTaskLogsStream = LogStream;

    async fn get_task_logs(
        &self,
        request: Request<pb::GetTaskLogsRequest>,
    ) -> RpcResult<Self::GetTaskLogsStream> {
        let request = request.into_inner();
        if request.run_id.is_empty() {
            return Err(ApiError::required("run_id", "give the run's id").into());
        }
        if request.task.is_empty() {
            return Err(ApiError::required("task", "name the task").into());
        }
        let run = self
            .engine
            .store()
            .run(&request.run_id)
            .await
            .map_err(store)?
            .ok_or_else(|| run_not_found(&request.run_id))?;
        let task = self
            .engine
            .store()
            .tasks(&run.id)
            .await
            .map_err(store)?
            .into_iter()
            .find(|task| task.task == request.task)
            .ok_or_else(|| {
                Status::from(
                    ApiError::not_found(
                        "TASK_NOT_FOUND",
                        format!("run {} has no task `{}`", run.id, request.task),
                    )
                    .with_field("task", "not a task of the run"),
                )
            })?;
        let try_number = match request.try_number {
            0 => task.try_number,
            try_number => try_number,
        };
        if try_number == 0 || try_number > task.try_number {
            return Err(ApiError::not_found(
                "ATTEMPT_NOT_FOUND",
                format!(
                    "task `{}` of run {} has {} attempt(s); it has not started attempt {}",
                    task.task,
                    run.id,
                    task.try_number,
                    try_number.max(1)
                ),
            )
            .into());
        }
        let key = AttemptKey {
            pipeline: run.pipeline.clone(),
            run_id: run.id.clone(),
            task: task.task.clone(),
            try_number,
        };
        let stream = self
            .engine
            .logs()
            .read(&key, request.follow)
            .await
            .map_err(|err| Status::from(ApiError::not_found("LOG_NOT_FOUND", err.to_string())))?;
        let stream = stream.map(move |chunk| {
            chunk
                .map(|data| pb::GetTaskLogsResponse {
                    data: data.to_vec(),
                    try_number,
                })
                .map_err(|err| {
                    Status::from(ApiError::unavailable("LOG_UNAVAILABLE", err.to_string()))
                })
        });
        reply(Box::pin(stream))
    }
}

/// Roles: reading pipelines, runs, events and logs needs `read`; triggering and cancelling runs `write`;
/// applying, pausing and deleting pipelines `admin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrchestratorAccessPolicy;

const ADMIN_RPCS: [&str; 3] = ["/ApplyPipelines", "/SetPipelinePaused", "/DeletePipeline"];
const WRITE_RPCS: [&str; 2] = ["/RunPipeline", "/CancelRun"];

impl AccessPolicy for OrchestratorAccessPolicy {
    fn required_role(&self, method: &http::Method, path: &str) -> Option<Role> {
        let base = DefaultAccessPolicy.required_role(method, path)?;
        if path.starts_with("/plinth.orchestrator.v1.") {
            if ADMIN_RPCS.iter().any(|rpc| path.ends_with(rpc)) {
                return Some(Role::Admin);
            }
            if WRITE_RPCS.iter().any(|rpc| path.ends_with(rpc)) {
                return Some(Role::Write);
            }
            return Some(Role::Read);
        }
        Some(base)
    }
}

/// Converts parameter values for callers outside this module (the CLI's `--param`).
pub fn params_json(params: &BTreeMap<String, serde_json::Value>) -> prost_types::Struct {
    json_to_struct(params)
}
