//! `plinth pipeline validate|apply|list|describe|run|runs|status|logs|cancel|pause|unpause|delete`: the
//! orchestrator over gRPC (`plinth.orchestrator.v1`).

mod format;
pub(crate) mod local;
mod params;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use plinth_proto::orchestrator::v1 as pb;
use plinth_proto::orchestrator::v1::orchestrator_service_client::OrchestratorServiceClient;
use serde_json::json;

use super::ConnectArgs;

/// `plinth pipeline ...`
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Connection flags.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The orchestrator command.
    #[command(subcommand)]
    pub command: PipelineCommand,
}

/// Orchestrator commands.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Check pipeline files without storing them: every mistake as `file:line:column: message`, exit
    /// code 1 when there is any. Runs locally, without a server, unless --remote.
    ///
    /// Example: plinth pipeline validate pipelines/train-churn.yaml
    Validate {
        /// The files.
        #[command(flatten)]
        files: FileArgs,
        /// Ask the orchestrator at --orchestrator instead (its version's rules, when it differs from
        /// this CLI's).
        #[arg(long)]
        remote: bool,
    },
    /// Validate pipeline files and store each changed pipeline as a new version (all or nothing; the
    /// versions already applied keep running when a file is refused).
    ///
    /// Example: plinth pipeline apply pipelines/
    Apply(FileArgs),
    /// List the applied pipelines with their schedule and latest run.
    ///
    /// Example: plinth pipeline list --owner ml-team
    List {
        /// Only pipelines of this owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Show one applied pipeline: version, schedule, next run, tasks and the YAML it was applied from.
    ///
    /// Example: plinth pipeline describe train-churn
    Describe {
        /// The pipeline's name.
        name: String,
    },
    /// Start a run now, with parameter overrides; with --wait, follow it and exit 1 unless it succeeds.
    ///
    /// Example: plinth pipeline run train-churn --param epochs=20 --param model_version=v2 --wait
    Run {
        /// The pipeline's name.
        name: String,
        /// A parameter override NAME=VALUE (repeatable). The value is read as JSON when it parses
        /// (20, 0.5, true, null, [1, 2], {"a":1}, "quoted text") and as text otherwise.
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = params::parse_param)]
        params: Vec<(String, serde_json::Value)>,
        /// The run's logical date, RFC 3339 (default: now), e.g. to rerun a past day.
        #[arg(long, value_parser = super::parse_timestamp)]
        logical_date: Option<prost_types::Timestamp>,
        /// A key that makes the trigger idempotent: repeating the command with the same key answers
        /// the same run instead of starting another (for CI retries).
        #[arg(long)]
        request_id: Option<String>,
        /// Follow the run's task changes until it ends; exit 0 when it succeeded, 1 otherwise.
        #[arg(long)]
        wait: bool,
    },
    /// List runs, newest first.
    ///
    /// Example: plinth pipeline runs train-churn --state failed --limit 10
    Runs {
        /// Only runs of this pipeline.
        pipeline: Option<String>,
        /// Only runs in this state (repeatable).
        #[arg(long = "state", value_enum)]
        states: Vec<RunStateArg>,
        /// At most this many runs (at most 1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Show a run and a table of its tasks: state, tries, duration of the last try, and why.
    ///
    /// Example: plinth pipeline status 019a6b1e-7c1d-7f00-8000-1234567890ab
    Status {
        /// The run's id (printed by `plinth pipeline run`).
        run_id: String,
    },
    /// Print a task's log (stdout and stderr as the task wrote them); with --follow, until the try ends.
    ///
    /// Example: plinth pipeline logs 019a6b1e-7c1d-7f00-8000-1234567890ab train --follow
    Logs {
        /// The run's id.
        run_id: String,
        /// The task's name.
        task: String,
        /// The try (attempt) number, from 1 (default: the latest).
        #[arg(long = "try", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        try_number: Option<u32>,
        /// Keep printing as the task writes, until the try ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a run: queued tasks are cancelled and running tasks stopped.
    ///
    /// Example: plinth pipeline cancel 019a6b1e-7c1d-7f00-8000-1234567890ab --reason "wrong dataset"
    Cancel {
        /// The run's id.
        run_id: String,
        /// Recorded as the run's reason.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pause a pipeline's schedule (on-demand runs are still accepted).
    ///
    /// Example: plinth pipeline pause train-churn
    Pause {
        /// The pipeline's name.
        name: String,
    },
    /// Resume a paused pipeline's schedule.
    ///
    /// Example: plinth pipeline unpause train-churn
    Unpause {
        /// The pipeline's name.
        name: String,
    },
    /// Delete a pipeline and its schedule (refused while it has active runs, unless
    /// --cancel-active-runs).
    ///
    /// Example: plinth pipeline delete train-churn --cancel-active-runs
    Delete {
        /// The pipeline's name.
        name: String,
        /// Cancel its queued and running runs instead of refusing.
        #[arg(long)]
        cancel_active_runs: bool,
    },
}

/// The files of `validate` and `apply`.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// Pipeline files, or directories walked for *.yaml and *.yml (in sorted order).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

/// Run states, for `runs --state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunStateArg {
    /// Waiting for a slot.
    Queued,
    /// Its tasks are running.
    Running,
    /// Ended successfully.
    Succeeded,
    /// Ended with a failed task.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl RunStateArg {
    fn proto(self) -> pb::RunState {
        match self {
            Self::Queued => pb::RunState::Queued,
            Self::Running => pb::RunState::Running,
            Self::Succeeded => pb::RunState::Succeeded,
            Self::Failed => pb::RunState::Failed,
            Self::Cancelled => pb::RunState::Cancelled,
        }
    }
}

type Client = OrchestratorServiceClient<plinth_runtime::client::AuthChannel>;

/// Connects to `--orchestrator`.
async fn connect(args: &ConnectArgs) -> anyhow::Result<Client> {
    let channel = super::channel(&args.orchestrator, args).await?;
    // Pipeline files and their YAML are small, but task log chunks and whole runs of large DAGs are not.
    Ok(OrchestratorServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

/// Runs an orchestrator command.
pub async fn run(args: PipelineArgs) -> anyhow::Result<ExitCode> {
    let output = args.connect.output;
    let connect_args = &args.connect;
    match args.command {
        PipelineCommand::Validate {
            files: file_args,
            remote,
        } => {
            let files = pipeline_files(&file_args.paths)?;
            let answer = if remote {
                let mut client = connect(connect_args).await?;
                let request = pb::ValidatePipelinesRequest { files };
                super::call(client.validate_pipelines(request).await)?
            } else {
                local::validate(&files)
            };
            output.print(&format::validation_json(&answer), || {
                format::validation_text(&answer)
            });
            return Ok(exit_code(answer.errors.is_empty()));
        }
        PipelineCommand::Apply(file_args) => {
            let files = pipeline_files(&file_args.paths)?;
            // Validating here first prints every mistake as `file:line:column: message`, the form
            // editors jump to, without a round trip; the orchestrator validates again and refuses the
            // whole apply if its rules find more.
            let validation = local::validate(&files);
            if !validation.errors.is_empty() {
                output.print(&format::validation_json(&validation), || {
                    format!(
                        "{}\nnothing applied: fix the files and apply again",
                        format::validation_text(&validation)
                    )
                });
                return Ok(ExitCode::from(1));
            }
            let mut client = connect(connect_args).await?;
            let request = pb::ApplyPipelinesRequest { files };
            let applied = super::call(client.apply_pipelines(request).await)?.pipelines;
            output.print(&format::applied_json(&applied), || {
                format::applied_text(&applied)
            });
        }
        PipelineCommand::List { owner } => {
            let mut client = connect(connect_args).await?;
            let request = pb::ListPipelinesRequest {
                owner: owner.unwrap_or_default(),
            };
            let pipelines = super::call(client.list_pipelines(request).await)?.pipelines;
            let body: Vec<_> = pipelines.iter().map(format::pipeline_json).collect();
            output.print(&json!(body), || format::pipelines_text(&pipelines));
        }
        PipelineCommand::Describe { name } => {
            let mut client = connect(connect_args).await?;
            let request = pb::GetPipelineRequest { name };
            let pipeline = required(super::call(client.get_pipeline(request).await)?.pipeline)?;
            let mut body = format::pipeline_json(&pipeline);
            body["yaml"] = json!(pipeline.yaml);
            output.print(&body, || format::pipeline_text(&pipeline));
        }
        PipelineCommand::Run {
            name,
            params,
            logical_date,
            request_id,
            wait,
        } => {
            let params = params::params_struct(params)?;
            let mut client = connect(connect_args).await?;
            let request = pb::RunPipelineRequest {
                pipeline: name,
                params: Some(params),
                logical_date,
                request_id: request_id.unwrap_or_default(),
            };
            if wait {
                let run = wait::run_and_wait(&mut client, request, output).await?;
                return Ok(exit_code(run.state() == pb::RunState::Succeeded));
            }
            let run = required(super::call(client.run_pipeline(request).await)?.run)?;
            output.print(&format::run_json(&run), || format::started_text(&run));
        }
        PipelineCommand::Runs {
            pipeline,
            states,
            limit,
        } => {
            let mut client = connect(connect_args).await?;
            let request = pb::ListRunsRequest {
                pipeline: pipeline.unwrap_or_default(),
                states: states
                    .into_iter()
                    .map(|state| state.proto().into())
                    .collect(),
                limit,
            };
            let runs = super::call(client.list_runs(request).await)?.runs;
            let body: Vec<_> = runs.iter().map(format::run_json).collect();
            output.print(&json!(body), || format::runs_text(&runs, &format::now()));
        }
        PipelineCommand::Status { run_id } => {
            let mut client = connect(connect_args).await?;
            let run = get_run(&mut client, run_id).await?;
            output.print(&format::run_json(&run), || {
                format::status_text(&run, &format::now())
            });
        }
        PipelineCommand::Logs {
            run_id,
            task,
            try_number,
            follow,
        } => {
            let mut client = connect(connect_args).await?;
            let request = pb::GetTaskLogsRequest {
                run_id,
                task,
                try_number: try_number.unwrap_or(0),
                follow,
            };
            print_logs(&mut client, request).await?;
        }
        PipelineCommand::Cancel { run_id, reason } => {
            let mut client = connect(connect_args).await?;
            let request = pb::CancelRunRequest {
                run_id,
                reason: reason.unwrap_or_default(),
            };
            let run = required(super::call(client.cancel_run(request).await)?.run)?;
            output.print(&format::run_json(&run), || format::cancelled_text(&run));
        }
        PipelineCommand::Pause { name } => {
            let pipeline = set_paused(connect_args, name, true).await?;
            output.print(&format::pipeline_json(&pipeline), || {
                format!(
                    "paused pipeline {}: next scheduled run {} (resume with `plinth pipeline unpause {}`)",
                    pipeline.name,
                    format::next_run_text(&pipeline),
                    pipeline.name
                )
            });
        }
        PipelineCommand::Unpause { name } => {
            let pipeline = set_paused(connect_args, name, false).await?;
            output.print(&format::pipeline_json(&pipeline), || {
                format!(
                    "unpaused pipeline {}: next scheduled run {}",
                    pipeline.name,
                    format::next_run_text(&pipeline)
                )
            });
        }
        PipelineCommand::Delete {
            name,
            cancel_active_runs,
        } => {
            let mut client = connect(connect_args).await?;
            let request = pb::DeletePipelineRequest {
                name: name.clone(),
                cancel_active_runs,
            };
            super::call(client.delete_pipeline(request).await)?;
            output.print(&json!({"deleted": name}), || {
                format!("deleted pipeline {name}")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// GetRun, with its tasks.
async fn get_run(client: &mut Client, run_id: String) -> anyhow::Result<pb::Run> {
    let request = pb::GetRunRequest { run_id };
    required(super::call(client.get_run(request).await)?.run)
}

/// SetPipelinePaused.
async fn set_paused(
    args: &ConnectArgs,
    name: String,
    paused: bool,
) -> anyhow::Result<pb::Pipeline> {
    let mut client = connect(args).await?;
    let request = pb::SetPipelinePausedRequest { name, paused };
    required(super::call(client.set_pipeline_paused(request).await)?.pipeline)
}

/// Streams a task's log to stdout as raw bytes, flushing each chunk so that `--follow` shows lines as
/// the task writes them.
async fn print_logs(client: &mut Client, request: pb::GetTaskLogsRequest) -> anyhow::Result<()> {
    let mut stream = super::call(client.get_task_logs(request).await)?;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|status| super::status_error(&status))?
    {
        crate::output::print_bytes(&chunk.data);
    }
    Ok(())
}

/// The pipeline files under `paths` (files, or directories of `*.yaml`), read into the request's form.
fn pipeline_files(paths: &[PathBuf]) -> anyhow::Result<Vec<pb::PipelineFile>> {
    let files = crate::files::read_yaml_files(paths, "pipeline")?;
    Ok(files
        .into_iter()
        .map(|file| pb::PipelineFile {
            path: file.path,
            content: file.content,
        })
        .collect())
}

/// A message field the service always sets.
fn required<T>(value: Option<T>) -> anyhow::Result<T> {
    value.context("the orchestrator answered without the expected field: is --orchestrator a Plinth orchestrator of this version?")
}

/// 0 for a positive answer, 1 for a negative one (invalid files, a run that did not succeed).
fn exit_code(positive: bool) -> ExitCode {
    if positive {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests;
