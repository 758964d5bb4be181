//! Executors run a task attempt's process: locally as a child process ([`local`], the embedded default)
//! or as a Kubernetes Job ([`kubernetes`], production). Both capture the output into a [`LogWriter`]
//! (kept to a size cap, stored in the object store when the attempt ends), stop the attempt at its
//! `execution_timeout` or when cancelled, and report how it ended as an [`Outcome`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};

use crate::domain::pipeline::{Resources, SecretRef};
use crate::logs::LogWriter;

pub mod kubernetes;
pub mod local;

/// One attempt to run: everything templated and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The pipeline.
    pub pipeline: String,
    /// The run's id.
    pub run_id: String,
    /// The task.
    pub task: String,
    /// The attempt's number, from 1.
    pub try_number: u32,
    /// Program and arguments (a shell script arrives as `["sh", "-c", script]`).
    pub argv: Vec<String>,
    /// The container image (Kubernetes; the local executor ignores it).
    pub image: Option<String>,
    /// The working directory (local executor).
    pub working_dir: Option<String>,
    /// Environment variables set for the process, in addition to the executor's own.
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values come from secrets.
    pub secrets: Vec<SecretRef>,
    /// Compute resources (Kubernetes requests and limits).
    pub resources: Resources,
    /// Stop the attempt after this long; it then ends [`Outcome::TimedOut`].
    pub timeout: Option<Duration>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit code 0.
    Succeeded,
    /// It ran and failed (non-zero exit, killed by a signal, a Job that failed).
    Failed {
        /// The exit code, when there was one.
        exit_code: Option<i32>,
        /// What happened, for users (`exit code 3`, `killed by signal 9`).
        reason: String,
    },
    /// It could not start (the program does not exist, the image cannot be pulled, the API refused the
    /// Job). Retried like a failure.
    NotStarted {
        /// Why, with what to fix.
        reason: String,
    },
    /// Stopped at its execution timeout.
    TimedOut {
        /// The timeout.
        after: Duration,
    },
    /// Stopped because the run or the task was cancelled.
    Cancelled,
}

impl Outcome {
    /// The reason recorded with the attempt.
    pub fn reason(&self) -> String {
        match self {
            Outcome::Succeeded => "exit code 0".to_owned(),
            Outcome::Failed { reason, .. } | Outcome::NotStarted { reason } => reason.clone(),
            Outcome::TimedOut { after } => format!(
                "timed out after {} (execution_timeout); the process was stopped",
                plinth_runtime::config::duration::format(*after)
            ),
            Outcome::Cancelled => "cancelled; the process was stopped".to_owned(),
        }
    }

    /// The exit code, when the process exited with one.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Outcome::Succeeded => Some(0),
            Outcome::Failed { exit_code, .. } => *exit_code,
            _ => None,
        }
    }
}

/// What the engine hands an executor besides the launch: where output goes, how it learns of a cancel,
/// and how it reports that the process started.
#[derive(Debug)]
pub struct AttemptControl {
    /// Where stdout and stderr go (interleaved as written).
    pub log: LogWriter,
    /// Becomes true when the attempt must stop (a cancel); the executor stops the process and returns
    /// [`Outcome::Cancelled`].
    pub cancel: watch::Receiver<bool>,
    /// Sent once the process (or Job) exists, with its reference (`pid 4242`, the Job's name), before
    /// waiting for it. Not sent when it could not start.
    pub started: Option<oneshot::Sender<String>>,
}

impl AttemptControl {
    /// Reports that the attempt started, once.
    pub fn report_started(&mut self, executor_ref: String) {
        if let Some(started) = self.started.take() {
            let _ = started.send(executor_ref);
        }
    }
}

/// Runs attempts.
#[async_trait]
pub trait Executor: fmt::Debug + Send + Sync {
    /// The executor's name (`local`, `kubernetes`).
    fn name(&self) -> &'static str;

    /// Runs one attempt to its end. Never panics on bad input: a command that cannot start is
    /// [`Outcome::NotStarted`].
    async fn run(&self, launch: Launch, control: AttemptControl) -> Outcome;

    /// Whether attempts outlive the orchestrator that started them, so [`Executor::reattach`] can follow
    /// them (Kubernetes Jobs do; local processes die with their orchestrator).
    fn reattaches(&self) -> bool {
        false
    }

    /// After an orchestrator restart: reattaches to an attempt started earlier (`executor_ref` as
    /// reported then) and waits for its end, or answers `None` when it cannot be found or followed
    /// (a local process dies with the orchestrator that started it).
    async fn reattach(
        &self,
        launch: Launch,
        executor_ref: &str,
        control: AttemptControl,
    ) -> Option<Outcome>;
}
