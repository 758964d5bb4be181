//! The Kubernetes executor: each attempt is a batch/v1 Job (built in [`job`]) with one pod, no
//! Kubernetes-side retries and an `activeDeadlineSeconds` from the timeout. The executor creates the
//! Job (one that already exists is the same attempt, created before an orchestrator restart, and is
//! followed), polls its status, streams the pod's logs into the attempt's [`LogWriter`], and deletes
//! the Job (background propagation) on a cancel or timeout. Finished Jobs are left to
//! `ttlSecondsAfterFinished`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::time::Instant;

use crate::config::KubernetesExecutorConfig;
use crate::executor::{AttemptControl, Executor, Launch, Outcome};
use crate::logs::LogWriter;

mod follow;
pub mod job;

pub use self::job::{JobTemplate, build_job, job_name};

/// How often a running Job's status is read by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Runs attempts as Kubernetes Jobs.
#[derive(Clone)]
pub struct KubernetesExecutor {
    client: Client,
    template: JobTemplate,
    poll_interval: Duration,
}

impl std::fmt::Debug for KubernetesExecutor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KubernetesExecutor")
            .field("template", &self.template)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl KubernetesExecutor {
    /// Jobs in `config`'s namespace through `client`, status read every [`DEFAULT_POLL_INTERVAL`].
    pub fn new(client: Client, config: &KubernetesExecutorConfig) -> Self {
        Self {
            client,
            template: JobTemplate {
                namespace: config.namespace.clone(),
                service_account: config.service_account.clone(),
                image_pull_secrets: config.image_pull_secrets.clone(),
                default_image: config.default_image.clone(),
                labels: BTreeMap::new(),
                ttl_seconds_after_finished: config.ttl_seconds_after_finished,
            },
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Extra labels on every Job and pod (team, cost center).
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.template.labels = labels;
        self
    }

    /// How often a running Job's status is read.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// The Job `launch` runs as.
    pub fn build_job(&self, launch: &Launch) -> Result<Job, String> {
        build_job(&self.template, launch)
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.template.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.template.namespace)
    }

    /// Creates the Job, or finds the one created for this attempt earlier.
    async fn create(&self, launch: &Launch, log: &LogWriter) -> Result<Created, String> {
        let job = self.build_job(launch)?;
        let name = job_name(launch);
        let namespace = &self.template.namespace;
        match self.jobs().create(&PostParams::default(), &job).await {
            Ok(_) => {
                log.line(&format!("created Job {namespace}/{name}"));
                Ok(Created {
                    name,
                    deadline: launch.timeout.map(|timeout| Instant::now() + timeout),
                })
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                log.line(&format!(
                    "Job {namespace}/{name} already exists (created before a restart): following it"
                ));
                let existing = self
                    .jobs()
                    .get(&name)
                    .await
                    .map_err(|err| api_error(&format!("read Job {namespace}/{name}"), &err))?;
                Ok(Created {
                    name,
                    deadline: remaining_deadline(&existing, launch.timeout),
                })
            }
            Err(err) => Err(api_error(&format!("create Job {namespace}/{name}"), &err)),
        }
    }

    /// Deletes the Job and its pod (background propagation); a Job already gone is fine.
    async fn delete(&self, name: &str, log: &LogWriter) {
        let namespace = &self.template.namespace;
        match self.jobs().delete(name, &DeleteParams::background()).await {
            Ok(_) => log.line(&format!("deleted Job {namespace}/{name}")),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => log.line(&format!(
                "{}; delete it with `kubectl delete job -n {namespace} {name}`",
                api_error(&format!("delete Job {namespace}/{name}"), &err)
            )),
        }
    }
}

struct Created {
    name: String,
    deadline: Option<Instant>,
}

/// A user-facing message for a failed API call.
fn api_error(action: &str, err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!(
            "the Kubernetes API refused to {action}: {} ({}, HTTP {}); check the task's image, resources and secrets and the orchestrator's RBAC",
            status.message, status.reason, status.code
        ),
        other => format!("cannot reach the Kubernetes API to {action}: {other}"),
    }
}

/// The orchestrator-side deadline of an existing Job: its timeout counted from its start (or creation).
fn remaining_deadline(job: &Job, timeout: Option<Duration>) -> Option<Instant> {
    let timeout = timeout?;
    let started = job
        .status
        .as_ref()
        .and_then(|status| status.start_time.as_ref())
        .or(job.metadata.creation_timestamp.as_ref());
    let elapsed = started.map_or(Duration::ZERO, |started| {
        let seconds = k8s_openapi::jiff::Timestamp::now().as_second() - started.0.as_second();
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    });
    Some(Instant::now() + timeout.saturating_sub(elapsed))
}

#[async_trait]
impl Executor for KubernetesExecutor {
    fn reattaches(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn run(&self, launch: Launch, mut control: AttemptControl) -> Outcome {
        if *control.cancel.borrow() {
            return Outcome::Cancelled;
        }
        let created = match self.create(&launch, &control.log).await {
            Ok(created) => created,
            Err(reason) => {
                control.log.line(&format!("could not start: {reason}"));
                return Outcome::NotStarted { reason };
            }
        };
        control.report_started(created.name.clone());
        self.follow(
            &created.name,
            &launch,
            created.deadline,
            &mut control.cancel,
            &control.log,
        )
        .await
    }

    /// Finds the Job by its name (`executor_ref`) and follows it; `None` when it is gone or cannot be
    /// read.
    async fn reattach(
        &self,
        launch: Launch,
        executor_ref: &str,
        mut control: AttemptControl,
    ) -> Option<Outcome> {
        let job = match self.jobs().get_opt(executor_ref).await {
            Ok(Some(job)) => job,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(job = executor_ref, error = %err, "cannot read a Job to reattach to");
                return None;
            }
        };
        control.log.line(&format!(
            "reattached to Job {}/{executor_ref} after a restart",
            self.template.namespace
        ));
        control.report_started(executor_ref.to_owned());
        let deadline = remaining_deadline(&job, launch.timeout);
        Some(
            self.follow(
                executor_ref,
                &launch,
                deadline,
                &mut control.cancel,
                &control.log,
            )
            .await,
        )
    }
}

#[cfg(test)]
mod tests;
