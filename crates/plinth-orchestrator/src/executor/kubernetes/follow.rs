//! Following a created Job to its end: status polls, the pod's log, stops on a cancel or at the
//! deadline, and how the attempt ended.

use std::time::Duration;

use futures::AsyncReadExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::api::{ListParams, LogParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{KubernetesExecutor, api_error, job};
use crate::executor::{Launch, Outcome};
use crate::logs::LogWriter;

/// How long API errors are tolerated while following a Job before the attempt is given up as failed.
const API_ERROR_TOLERANCE: Duration = Duration::from_secs(120);

/// How long the pod's log stream may take to end after the Job ended.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Container waiting reasons that never resolve by waiting: the attempt did not start.
const FATAL_WAITING_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

impl KubernetesExecutor {
    /// Follows Job `name` to its end, stopping it at `deadline` or on a cancel.
    pub(super) async fn follow(
        &self,
        name: &str,
        launch: &Launch,
        deadline: Option<Instant>,
        cancel: &mut watch::Receiver<bool>,
        log: &LogWriter,
    ) -> Outcome {
        let mut follower = Follower {
            executor: self,
            name,
            log,
            logs: PodLog::Waiting,
            scheduling_note: None,
        };
        let outcome = follower.run(launch, deadline, cancel).await;
        follower.drain_logs().await;
        outcome
    }
}

/// How a Job ended, from its conditions (or counts, on servers without them).
#[derive(Debug, PartialEq, Eq)]
enum JobEnd {
    Succeeded,
    Failed {
        reason: Option<String>,
        message: Option<String>,
    },
}

fn job_end(job: &Job) -> Option<JobEnd> {
    let status = job.status.as_ref()?;
    for condition in status.conditions.iter().flatten() {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" | "SuccessCriteriaMet" => return Some(JobEnd::Succeeded),
            "Failed" => {
                return Some(JobEnd::Failed {
                    reason: condition.reason.clone(),
                    message: condition.message.clone(),
                });
            }
            _ => {}
        }
    }
    let active = status.active.unwrap_or(0) + status.terminating.unwrap_or(0);
    if status.succeeded.unwrap_or(0) > 0 && active == 0 {
        return Some(JobEnd::Succeeded);
    }
    if status.failed.unwrap_or(0) > 0 && active == 0 {
        return Some(JobEnd::Failed {
            reason: None,
            message: None,
        });
    }
    None
}

/// The task container's terminated state in `pod`.
fn terminated(pod: &Pod) -> Option<&ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .find(|container| container.name == job::CONTAINER_NAME)?
        .state
        .as_ref()?
        .terminated
        .as_ref()
}

/// Why a pending pod can never start, if it cannot.
fn fatal_waiting(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|container| {
        let waiting = container.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        FATAL_WAITING_REASONS.contains(&reason).then(|| {
            format!(
                "the pod cannot start its container: {reason}: {}; check the image name, the image pull secrets and the task's secrets",
                waiting.message.as_deref().unwrap_or("no message")
            )
        })
    })
}

/// Why a pod waits to be scheduled (`0/3 nodes are available: ...`), if it does.
fn unschedulable(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|condition| {
            condition.type_ == "PodScheduled"
                && condition.status == "False"
                && condition.reason.as_deref() == Some("Unschedulable")
        })
        .map(|condition| condition.message.clone().unwrap_or_default())
}

fn is_started(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref());
    matches!(phase, Some("Running" | "Succeeded" | "Failed"))
}

/// The pod's log copy: bytes copied and the error that ended it early.
type LogCopy = JoinHandle<(u64, Option<String>)>;

/// Where the pod's log is.
#[derive(Debug)]
enum PodLog {
    /// The pod has not run yet (or its log could not be opened yet).
    Waiting,
    /// Being copied into the attempt's log.
    Streaming(LogCopy),
    /// Copied; with the error that ended the copy early.
    Ended(Option<String>),
}

struct Follower<'a> {
    executor: &'a KubernetesExecutor,
    name: &'a str,
    log: &'a LogWriter,
    logs: PodLog,
    scheduling_note: Option<String>,
}

impl Follower<'_> {
    async fn run(
        &mut self,
        launch: &Launch,
        deadline: Option<Instant>,
        cancel: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let namespace = self.executor.template.namespace.clone();
        let mut ticks = tokio::time::interval(self.executor.poll_interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // An interval's first tick is immediate; the first read does not wait for it either.
        ticks.tick().await;
        let mut failing_since: Option<Instant> = None;
        // The first read comes at once: a Job found ended (after a restart) is reported as it ended,
        // even when its deadline has passed since.
        let mut first = true;
        loop {
            if !first && let Some(stopped) = self.wait(&mut ticks, launch, deadline, cancel).await {
                return stopped;
            }
            first = false;
            let job = match self.executor.jobs().get_opt(self.name).await {
                Ok(Some(job)) => job,
                Ok(None) => {
                    return Outcome::Failed {
                        exit_code: None,
                        reason: format!(
                            "Job {namespace}/{} was deleted outside the orchestrator",
                            self.name
                        ),
                    };
                }
                Err(err) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    let message = api_error(&format!("read Job {namespace}/{}", self.name), &err);
                    tracing::warn!(job = self.name, error = %message, "cannot read a Job's status");
                    if since.elapsed() >= API_ERROR_TOLERANCE {
                        self.log.line(&message);
                        return Outcome::Failed {
                            exit_code: None,
                            reason: format!(
                                "lost track of Job {namespace}/{} ({message}); it may still be running",
                                self.name
                            ),
                        };
                    }
                    continue;
                }
            };
            failing_since = None;
            if let Some(end) = job_end(&job) {
                return self.ended(end, launch).await;
            }
            if let Some(reason) = self.watch_pod().await {
                self.log.line(&reason);
                self.executor.delete(self.name, self.log).await;
                return Outcome::NotStarted { reason };
            }
        }
    }

    /// Waits for the next poll; stops the Job and answers how the attempt ended on a cancel or at
    /// the deadline.
    async fn wait(
        &self,
        ticks: &mut tokio::time::Interval,
        launch: &Launch,
        deadline: Option<Instant>,
        cancel: &mut watch::Receiver<bool>,
    ) -> Option<Outcome> {
        let timed_out = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            if cancel.wait_for(|cancelled| *cancelled).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            () = cancelled => {
                self.log.line("cancelled: deleting the Job");
                self.executor.delete(self.name, self.log).await;
                Some(Outcome::Cancelled)
            }
            () = timed_out => {
                let after = launch.timeout.unwrap_or_default();
                self.log.line(&format!(
                    "execution_timeout of {} reached: deleting the Job",
                    plinth_runtime::config::duration::format(after)
                ));
                self.executor.delete(self.name, self.log).await;
                Some(Outcome::TimedOut { after })
            }
            _ = ticks.tick() => None,
        }
    }

    /// The Job's pod, if there is one (the newest).
    async fn pod(&self) -> Option<Pod> {
        let selector = format!("job-name={}", self.name);
        let pods = self
            .executor
            .pods()
            .list(&ListParams::default().labels(&selector))
            .await;
        match pods {
            Ok(pods) => pods.items.into_iter().max_by(|left, right| {
                left.metadata
                    .creation_timestamp
                    .cmp(&right.metadata.creation_timestamp)
            }),
            Err(err) => {
                tracing::warn!(job = self.name, error = %err, "cannot list a Job's pods");
                None
            }
        }
    }

    /// While the Job runs: starts the log stream once the pod runs, notes why it waits, and answers
    /// why it can never start if so.
    async fn watch_pod(&mut self) -> Option<String> {
        match std::mem::replace(&mut self.logs, PodLog::Waiting) {
            PodLog::Waiting => {}
            PodLog::Streaming(copy) if !copy.is_finished() => {
                self.logs = PodLog::Streaming(copy);
                return None;
            }
            PodLog::Streaming(copy) => match copy.await {
                // Failed before any byte (the container was not ready yet): opened again below.
                Ok((0, Some(_))) => {}
                Ok((_, error)) => {
                    self.logs = PodLog::Ended(error);
                    return None;
                }
                Err(err) => {
                    self.logs = PodLog::Ended(Some(err.to_string()));
                    return None;
                }
            },
            ended @ PodLog::Ended(_) => {
                self.logs = ended;
                return None;
            }
        }
        let pod = self.pod().await?;
        if is_started(&pod) {
            self.start_logs(&pod, true);
            return None;
        }
        if let Some(reason) = fatal_waiting(&pod) {
            return Some(reason);
        }
        if let Some(note) = unschedulable(&pod)
            && self.scheduling_note.as_ref() != Some(&note)
        {
            self.log.line(&format!("pod not scheduled yet: {note}"));
            self.scheduling_note = Some(note);
        }
        None
    }

    fn start_logs(&mut self, pod: &Pod, follow: bool) {
        let Some(pod_name) = pod.metadata.name.clone() else {
            return;
        };
        let pods = self.executor.pods();
        let log = self.log.clone();
        self.logs = PodLog::Streaming(tokio::spawn(async move {
            let params = LogParams {
                container: Some(job::CONTAINER_NAME.to_owned()),
                follow,
                ..LogParams::default()
            };
            let mut stream = match pods.log_stream(&pod_name, &params).await {
                Ok(stream) => stream,
                Err(err) => return (0, Some(err.to_string())),
            };
            let mut buffer = vec![0_u8; 64 * 1024];
            let mut copied = 0_u64;
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) => return (copied, None),
                    Ok(read) => {
                        copied += read as u64;
                        log.write(&buffer[..read]);
                    }
                    Err(err) => return (copied, Some(err.to_string())),
                }
            }
        }));
    }

    /// The outcome of an ended Job, from its condition and its pod's container.
    async fn ended(&mut self, end: JobEnd, launch: &Launch) -> Outcome {
        let waiting = matches!(self.logs, PodLog::Waiting);
        let pod = if waiting || end != JobEnd::Succeeded {
            self.pod().await
        } else {
            None
        };
        if waiting && let Some(pod) = &pod {
            // The pod ran between two polls: read its whole log now.
            self.start_logs(pod, false);
        }
        match end {
            JobEnd::Succeeded => Outcome::Succeeded,
            JobEnd::Failed { reason, .. } if reason.as_deref() == Some("DeadlineExceeded") => {
                self.log.line(
                    "execution_timeout reached: Kubernetes stopped the Job (activeDeadlineSeconds)",
                );
                Outcome::TimedOut {
                    after: launch.timeout.unwrap_or_default(),
                }
            }
            JobEnd::Failed { reason, message } => {
                if let Some(terminated) = pod.as_ref().and_then(terminated) {
                    let code = terminated.exit_code;
                    let reason = match terminated.reason.as_deref() {
                        Some("OOMKilled") => format!(
                            "out of memory (OOMKilled), exit code {code}; raise `resources.memory_limit`"
                        ),
                        _ => format!("exit code {code}"),
                    };
                    return Outcome::Failed {
                        exit_code: Some(code),
                        reason,
                    };
                }
                Outcome::Failed {
                    exit_code: None,
                    reason: format!(
                        "Job failed: {}: {}",
                        reason.as_deref().unwrap_or("unknown reason"),
                        message.as_deref().unwrap_or("no message")
                    ),
                }
            }
        }
    }

    /// Waits, a bounded time, for the pod's log stream to end.
    async fn drain_logs(&mut self) {
        let error = match std::mem::replace(&mut self.logs, PodLog::Waiting) {
            PodLog::Waiting => None,
            PodLog::Ended(error) => error,
            PodLog::Streaming(mut copy) => {
                match tokio::time::timeout(LOG_DRAIN_TIMEOUT, &mut copy).await {
                    Ok(Ok((_, error))) => error,
                    Ok(Err(err)) => Some(err.to_string()),
                    Err(_) => {
                        copy.abort();
                        Some("still open after the Job ended; stopped reading it".to_owned())
                    }
                }
            }
        };
        if let Some(error) = error {
            self.log
                .line(&format!("reading the pod's log failed: {error}"));
        }
    }
}
