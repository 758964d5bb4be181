//! The batch/v1 Job of an attempt: its name, labels and spec. Pure; no API calls.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, LocalObjectReference, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::executor::Launch;

/// The container's name in every Job's pod.
pub const CONTAINER_NAME: &str = "task";

/// Label keys set on every Job and pod (values made label-safe; exact values in annotations of the
/// same keys).
pub const PIPELINE_LABEL: &str = "plinth.dev/pipeline";
/// The run's id.
pub const RUN_ID_LABEL: &str = "plinth.dev/run-id";
/// The task.
pub const TASK_LABEL: &str = "plinth.dev/task";
/// The attempt's number.
pub const TRY_LABEL: &str = "plinth.dev/try";
/// Marks what the orchestrator created.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The longest Job name: the `job-name` label Kubernetes puts on its pods must hold it (63).
const MAX_NAME_LEN: usize = 63;

/// What a Job needs besides the launch.
#[derive(Debug, Clone, Default)]
pub struct JobTemplate {
    /// The namespace.
    pub namespace: String,
    /// The pods' service account.
    pub service_account: Option<String>,
    /// The pods' image pull secrets.
    pub image_pull_secrets: Vec<String>,
    /// The image of launches that name none.
    pub default_image: Option<String>,
    /// Extra labels on Jobs and pods.
    pub labels: BTreeMap<String, String>,
    /// Seconds Kubernetes keeps a finished Job.
    pub ttl_seconds_after_finished: u32,
}

/// The attempt's Job name: `plinth-<pipeline>-<task>-t<try>-<hash>`, DNS-1123, at most 63 characters;
/// the hash of pipeline, run, task and try keeps it unique when the readable part is cut.
pub fn job_name(launch: &Launch) -> String {
    let mut hasher = Sha256::new();
    for part in [
        launch.pipeline.as_str(),
        launch.run_id.as_str(),
        launch.task.as_str(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(launch.try_number.to_be_bytes());
    let hash: String = hasher.finalize()[..5]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let suffix = format!("-t{}-{hash}", launch.try_number);
    let readable = dns_label(&format!("plinth-{}-{}", launch.pipeline, launch.task));
    let room = MAX_NAME_LEN - suffix.len();
    let readable = readable[..readable.len().min(room)].trim_end_matches('-');
    format!("{readable}{suffix}")
}

/// Lowercase `[a-z0-9-]`, other characters as `-`, no repeated `-`.
fn dns_label(text: &str) -> String {
    let mut label = String::with_capacity(text.len());
    for character in text.chars() {
        let character = character.to_ascii_lowercase();
        let character = if character.is_ascii_alphanumeric() {
            character
        } else {
            '-'
        };
        if !(character == '-' && label.ends_with('-')) {
            label.push(character);
        }
    }
    label
}

/// A label value: `[A-Za-z0-9._-]`, at most 63, starting and ending alphanumeric (others as `_`; a cut
/// value ends with a hash of the whole).
pub fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-') {
                character
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = if cleaned.len() > MAX_NAME_LEN {
        let hash: String = Sha256::digest(text.as_bytes())[..4]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{}-{hash}", &cleaned[..MAX_NAME_LEN - 9])
    } else {
        cleaned
    };
    cleaned
        .trim_matches(|character: char| !character.is_ascii_alphanumeric())
        .to_owned()
}

/// The labels identifying the attempt.
pub fn attempt_labels(launch: &Launch) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PIPELINE_LABEL.to_owned(), label_value(&launch.pipeline)),
        (RUN_ID_LABEL.to_owned(), label_value(&launch.run_id)),
        (TASK_LABEL.to_owned(), label_value(&launch.task)),
        (TRY_LABEL.to_owned(), launch.try_number.to_string()),
        (
            MANAGED_BY_LABEL.to_owned(),
            "plinth-orchestrator".to_owned(),
        ),
    ])
}

/// The Job running `launch`: one pod, never restarted, no Kubernetes retries (`backoffLimit: 0`; the
/// orchestrator retries), stopped by Kubernetes at the timeout even if the orchestrator is gone.
/// Fails when there is no image to run.
pub fn build_job(template: &JobTemplate, launch: &Launch) -> Result<Job, String> {
    let image = launch
        .image
        .clone()
        .or_else(|| template.default_image.clone())
        .ok_or_else(|| {
            "the task names no image and executor.kubernetes.default_image is unset; give the task an `image` or set a default image".to_owned()
        })?;
    let mut labels = template.labels.clone();
    labels.extend(attempt_labels(launch));
    let annotations = BTreeMap::from([
        (PIPELINE_LABEL.to_owned(), launch.pipeline.clone()),
        (RUN_ID_LABEL.to_owned(), launch.run_id.clone()),
        (TASK_LABEL.to_owned(), launch.task.clone()),
        (TRY_LABEL.to_owned(), launch.try_number.to_string()),
    ]);
    let container = Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(image),
        // An empty argv runs the image's entrypoint.
        command: (!launch.argv.is_empty()).then(|| launch.argv.clone()),
        working_dir: launch.working_dir.clone(),
        env: Some(environment(launch)),
        resources: resources(launch),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".to_owned()),
        service_account_name: template.service_account.clone(),
        image_pull_secrets: (!template.image_pull_secrets.is_empty()).then(|| {
            template
                .image_pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        // Service links add an environment variable per service in the namespace: noise for a task.
        enable_service_links: Some(false),
        ..PodSpec::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(launch)),
            namespace: Some(template.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: launch
                .timeout
                .map(|timeout| i64::try_from(timeout.as_secs().max(1)).unwrap_or(i64::MAX)),
            ttl_seconds_after_finished: Some(
                i32::try_from(template.ttl_seconds_after_finished).unwrap_or(i32::MAX),
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

/// The attempt's identity, the task's env, then its secrets as `secretKeyRef`s.
fn environment(launch: &Launch) -> Vec<EnvVar> {
    let identity = [
        ("PLINTH_PIPELINE", launch.pipeline.clone()),
        ("PLINTH_RUN_ID", launch.run_id.clone()),
        ("PLINTH_TASK", launch.task.clone()),
        ("PLINTH_TRY_NUMBER", launch.try_number.to_string()),
    ];
    let plain = identity
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .chain(launch.env.clone())
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        });
    let secrets = launch.secrets.iter().map(|secret| EnvVar {
        name: secret.env.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.secret.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    });
    plain.chain(secrets).collect()
}

/// Requests and limits; GPUs as an `nvidia.com/gpu` limit (extended resources are set as limits).
fn resources(launch: &Launch) -> Option<ResourceRequirements> {
    let resources = &launch.resources;
    let quantities = |pairs: &[(&str, &Option<String>)]| {
        let map: BTreeMap<String, Quantity> = pairs
            .iter()
            .filter_map(|(name, value)| Some(((*name).to_owned(), Quantity((*value).clone()?))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    let requests = quantities(&[("cpu", &resources.cpu), ("memory", &resources.memory)]);
    let gpu = resources.gpu.map(|count| count.to_string());
    let limits = quantities(&[
        ("cpu", &resources.cpu_limit),
        ("memory", &resources.memory_limit),
        ("nvidia.com/gpu", &gpu),
    ]);
    (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}
