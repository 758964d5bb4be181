//! The executor against kube-rs's mock service (`tower_test::mock::pair`): a small fake API server
//! answers the exact requests the executor makes (create, get, list pods, log, delete) and records
//! them. No real API server runs here (see /work/shared/recipes/kubernetes.md).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use plinth_runtime::storage::Locations;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use super::job::label_value;
use super::*;
use crate::domain::pipeline::{Resources, SecretRef};
use crate::logs::{AttemptKey, LogStore};

const NAMESPACE: &str = "plinth-jobs";

fn launch() -> Launch {
    Launch {
        pipeline: "train-churn".to_owned(),
        run_id: "manual__2026-01-05T03:00:00Z".to_owned(),
        task: "train".to_owned(),
        try_number: 2,
        argv: vec!["python".to_owned(), "train.py".to_owned()],
        image: Some("registry.example/train:1.4".to_owned()),
        working_dir: None,
        env: BTreeMap::from([("LOG_LEVEL".to_owned(), "debug".to_owned())]),
        secrets: vec![SecretRef {
            env: "DB_PASSWORD".to_owned(),
            secret: "warehouse".to_owned(),
            key: "password".to_owned(),
        }],
        resources: Resources {
            cpu: Some("2".to_owned()),
            memory: Some("4Gi".to_owned()),
            cpu_limit: Some("4".to_owned()),
            memory_limit: Some("8Gi".to_owned()),
            gpu: Some(1),
        },
        timeout: Some(Duration::from_secs(7200)),
    }
}

fn config() -> KubernetesExecutorConfig {
    KubernetesExecutorConfig {
        namespace: NAMESPACE.to_owned(),
        service_account: Some("plinth-tasks".to_owned()),
        image_pull_secrets: vec!["registry-creds".to_owned()],
        default_image: Some("python:3.12-slim".to_owned()),
        ttl_seconds_after_finished: 600,
    }
}

fn job_json(launch: &Launch) -> Value {
    let template = JobTemplate {
        namespace: NAMESPACE.to_owned(),
        service_account: Some("plinth-tasks".to_owned()),
        image_pull_secrets: vec!["registry-creds".to_owned()],
        default_image: None,
        labels: BTreeMap::from([("team".to_owned(), "growth".to_owned())]),
        ttl_seconds_after_finished: 600,
    };
    serde_json::to_value(build_job(&template, launch).unwrap()).unwrap()
}

#[test]
fn the_job_is_a_batch_v1_job_with_no_kubernetes_retries_and_the_tasks_resources() {
    let job = job_json(&launch());
    let name = job_name(&launch());
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], name.as_str());
    assert_eq!(job["metadata"]["namespace"], NAMESPACE);
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels["plinth.dev/pipeline"], "train-churn");
    assert_eq!(labels["plinth.dev/run-id"], "manual__2026-01-05T03_00_00Z");
    assert_eq!(labels["plinth.dev/task"], "train");
    assert_eq!(labels["plinth.dev/try"], "2");
    assert_eq!(labels["team"], "growth");
    assert_eq!(
        job["metadata"]["annotations"]["plinth.dev/run-id"],
        "manual__2026-01-05T03:00:00Z"
    );

    let spec = &job["spec"];
    assert_eq!(spec["backoffLimit"], 0);
    assert_eq!(spec["activeDeadlineSeconds"], 7200);
    assert_eq!(spec["ttlSecondsAfterFinished"], 600);
    assert_eq!(spec["template"]["metadata"]["labels"], *labels);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "plinth-tasks");
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry-creds"}]));
    assert_eq!(pod["enableServiceLinks"], false);

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["name"], "task");
    assert_eq!(container["image"], "registry.example/train:1.4");
    assert_eq!(container["command"], json!(["python", "train.py"]));
    assert_eq!(
        container["resources"],
        json!({
            "requests": {"cpu": "2", "memory": "4Gi"},
            "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
        })
    );
    let env = container["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "LOG_LEVEL", "value": "debug"})));
    assert!(env.contains(&json!({"name": "PLINTH_TRY_NUMBER", "value": "2"})));
    assert!(env.contains(&json!({
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "warehouse", "key": "password", "optional": false}},
    })));
    // Nothing the orchestrator does not set: no status, no selector (Kubernetes generates it).
    assert!(job.get("status").is_none());
    assert!(spec.get("selector").is_none());
}

#[test]
fn a_task_without_resources_timeout_or_command_leaves_them_to_the_cluster() {
    let mut launch = launch();
    launch.resources = Resources::default();
    launch.timeout = None;
    launch.argv.clear();
    let job = job_json(&launch);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("resources").is_none(), "{container}");
    assert!(container.get("command").is_none(), "{container}");
    assert!(job["spec"].get("activeDeadlineSeconds").is_none());
}

#[test]
fn job_names_are_dns_labels_unique_per_attempt() {
    let base = launch();
    let name = job_name(&base);
    assert_eq!(name, job_name(&base), "deterministic");
    assert!(name.starts_with("plinth-train-churn-train-t2-"), "{name}");

    let mut long = base.clone();
    long.pipeline = "A_very_long_pipeline_name_".repeat(4);
    long.task = "Étape_finale".to_owned();
    let mut other_run = long.clone();
    other_run.run_id = "manual__2026-01-06T03:00:00Z".to_owned();
    let mut other_try = long.clone();
    other_try.try_number = 3;
    let names = [job_name(&long), job_name(&other_run), job_name(&other_try)];
    for name in &names {
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.chars().all(|character| character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || character == '-'),
            "{name}"
        );
        assert!(!name.contains("--"), "{name}");
        assert!(name.starts_with("plinth-a-very-long"), "{name}");
    }
    assert_ne!(names[0], names[1]);
    assert_ne!(names[0], names[2]);
}

#[test]
fn label_values_are_made_valid() {
    assert_eq!(label_value("train-churn"), "train-churn");
    assert_eq!(
        label_value("scheduled__2026-01-05T03:00:00+00:00"),
        "scheduled__2026-01-05T03_00_00_00_00"
    );
    let long = label_value(&format!("{}:", "x".repeat(100)));
    assert!(long.len() <= 63, "{long}");
    assert_ne!(long, label_value(&format!("{};", "x".repeat(100))));
    assert_eq!(label_value("_odd_"), "odd");
}

/// What the fake API server answers to a create.
#[derive(Debug, Clone, Copy)]
enum CreateAnswer {
    Created,
    AlreadyExists,
    Forbidden,
}

/// A fake API server holding one Job and its pod.
struct FakeCluster {
    create: CreateAnswer,
    /// Job statuses returned by successive GETs of the Job; the last one repeats. Empty: 404.
    job_statuses: Vec<Value>,
    job_gets: usize,
    /// The first this many GETs of the Job fail with HTTP 503 (an API server restarting).
    unavailable_gets: usize,
    pod: Option<Value>,
    pod_log: &'static str,
    job: Value,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    uri: String,
    body: String,
}

fn status_body(code: u16, reason: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "message": message,
        "reason": reason,
        "code": code,
    }))
    .unwrap()
}

impl FakeCluster {
    fn new(job_statuses: Vec<Value>) -> Self {
        Self {
            create: CreateAnswer::Created,
            job_statuses,
            job_gets: 0,
            unavailable_gets: 0,
            pod: None,
            pod_log: "",
            job: job_json(&launch()),
            requests: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn with_pod(mut self, phase: &str, container_state: Value, log: &'static str) -> Self {
        self.pod = Some(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("{}-x7k2p", job_name(&launch())),
                "namespace": NAMESPACE,
                "creationTimestamp": "2026-01-05T03:00:01Z",
                "labels": {"job-name": job_name(&launch())},
            },
            "status": {
                "phase": phase,
                "containerStatuses": [{
                    "name": "task",
                    "image": "registry.example/train:1.4",
                    "imageID": "",
                    "ready": phase == "Running",
                    "restartCount": 0,
                    "state": container_state,
                }],
            },
        }));
        self.pod_log = log;
        self
    }

    fn respond(&mut self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
        let name = job_name(&launch());
        let jobs = format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs");
        let job = format!("{jobs}/{name}");
        let pods = format!("/api/v1/namespaces/{NAMESPACE}/pods");
        let pod_log = format!("{pods}/{name}-x7k2p/log");
        match (method.as_str(), path) {
            ("POST", path) if path == jobs => match self.create {
                CreateAnswer::Created => (StatusCode::CREATED, body.to_vec()),
                CreateAnswer::AlreadyExists => (
                    StatusCode::CONFLICT,
                    status_body(
                        409,
                        "AlreadyExists",
                        &format!("jobs.batch \"{name}\" already exists"),
                    ),
                ),
                CreateAnswer::Forbidden => (
                    StatusCode::FORBIDDEN,
                    status_body(
                        403,
                        "Forbidden",
                        "jobs.batch is forbidden: User \"system:serviceaccount:plinth:orchestrator\" cannot create resource \"jobs\"",
                    ),
                ),
            },
            ("GET", path) if path == job => {
                if self.unavailable_gets > 0 {
                    self.unavailable_gets -= 1;
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        status_body(
                            503,
                            "ServiceUnavailable",
                            "the server is currently unable to handle the request",
                        ),
                    );
                }
                if self.job_statuses.is_empty() {
                    return (
                        StatusCode::NOT_FOUND,
                        status_body(404, "NotFound", &format!("jobs.batch \"{name}\" not found")),
                    );
                }
                let index = self.job_gets.min(self.job_statuses.len() - 1);
                self.job_gets += 1;
                let mut job = self.job.clone();
                job["metadata"]["creationTimestamp"] = json!("2026-01-05T03:00:00Z");
                job["status"] = self.job_statuses[index].clone();
                (StatusCode::OK, serde_json::to_vec(&job).unwrap())
            }
            ("DELETE", path) if path == job => (StatusCode::OK, status_body(200, "", "deleted")),
            ("GET", path) if path == pods => {
                let items: Vec<Value> = self.pod.iter().cloned().collect();
                let list = json!({
                    "apiVersion": "v1",
                    "kind": "PodList",
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                });
                (StatusCode::OK, serde_json::to_vec(&list).unwrap())
            }
            ("GET", path) if path == pod_log => (StatusCode::OK, self.pod_log.as_bytes().to_vec()),
            _ => (
                StatusCode::NOT_FOUND,
                status_body(404, "NotFound", &format!("no route for {method} {path}")),
            ),
        }
    }

    /// A client whose requests this cluster answers, in a task of its own.
    fn serve(mut self) -> (Client, Arc<Mutex<Vec<Recorded>>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let requests = Arc::clone(&self.requests);
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.unwrap();
                self.requests.lock().unwrap().push(Recorded {
                    method: parts.method.clone(),
                    uri: parts.uri.to_string(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let (status, answer) = self.respond(&parts.method, parts.uri.path(), &body);
                send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(answer))
                        .unwrap(),
                );
            }
        });
        (Client::new(service, NAMESPACE), requests)
    }
}

fn active() -> Value {
    json!({"active": 1, "startTime": "2026-01-05T03:00:00Z"})
}

fn complete() -> Value {
    json!({
        "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"},
        ],
    })
}

fn failed(reason: &str) -> Value {
    json!({
        "failed": 1,
        "conditions": [{"type": "Failed", "status": "True", "reason": reason, "message": "Job has reached the specified backoff limit"}],
    })
}

fn running() -> Value {
    json!({"running": {"startedAt": "2026-01-05T03:00:02Z"}})
}

fn exited(code: i32, reason: &str) -> Value {
    json!({"terminated": {"exitCode": code, "reason": reason}})
}

struct Harness {
    _dir: tempfile::TempDir,
    logs: LogStore,
    executor: KubernetesExecutor,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

fn harness(cluster: FakeCluster) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let logs = LogStore::new(
        Arc::new(Locations::new(BTreeMap::new())),
        format!("file://{}", dir.path().join("logs").display()),
        dir.path().join("spool"),
        1024 * 1024,
    )
    .unwrap();
    let (client, requests) = cluster.serve();
    let executor =
        KubernetesExecutor::new(client, &config()).with_poll_interval(Duration::from_millis(10));
    Harness {
        _dir: dir,
        logs,
        executor,
        requests,
    }
}

struct Attempt {
    key: AttemptKey,
    control: AttemptControl,
    cancel: watch::Sender<bool>,
    started: oneshot::Receiver<String>,
}

impl Harness {
    fn attempt(&self, launch: &Launch) -> Attempt {
        let key = AttemptKey {
            pipeline: launch.pipeline.clone(),
            run_id: launch.run_id.clone(),
            task: launch.task.clone(),
            try_number: launch.try_number,
        };
        let (cancel, cancel_receiver) = watch::channel(false);
        let (started_sender, started) = oneshot::channel();
        Attempt {
            control: AttemptControl {
                log: self.logs.writer(&key).unwrap(),
                cancel: cancel_receiver,
                started: Some(started_sender),
            },
            key,
            cancel,
            started,
        }
    }

    /// Runs the attempt to its end: the outcome, the reported Job name and the log.
    async fn run(&self, launch: Launch) -> (Outcome, Option<String>, String) {
        let attempt = self.attempt(&launch);
        let log = attempt.control.log.clone();
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            self.executor.run(launch, attempt.control),
        )
        .await
        .expect("the executor returns");
        log.finish().await.unwrap();
        (
            outcome,
            attempt.started.await.ok(),
            self.log_text(&attempt.key).await,
        )
    }

    async fn log_text(&self, key: &AttemptKey) -> String {
        let chunks: Vec<bytes::Bytes> = self
            .logs
            .read(key, false)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        String::from_utf8(chunks.concat()).unwrap()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn requests_of(&self, method: Method) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == method)
            .collect()
    }
}

#[tokio::test]
async fn a_job_that_completes_succeeds_with_its_pod_log() {
    let cluster = FakeCluster::new(vec![active(), active(), complete()]).with_pod(
        "Running",
        running(),
        "epoch 1 loss 0.31\nepoch 2 loss 0.12\n",
    );
    let harness = harness(cluster);
    let (outcome, started, log) = harness.run(launch()).await;
    assert_eq!(outcome, Outcome::Succeeded);
    let name = job_name(&launch());
    assert_eq!(started.as_deref(), Some(name.as_str()));
    assert!(
        log.contains(&format!("[plinth] created Job {NAMESPACE}/{name}\n")),
        "{log}"
    );
    assert!(
        log.contains("epoch 1 loss 0.31\nepoch 2 loss 0.12\n"),
        "{log}"
    );

    let requests = harness.requests();
    let create = &requests[0];
    assert_eq!(create.method, Method::POST);
    assert_eq!(
        create.uri,
        format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs?")
    );
    let sent: Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(sent["kind"], "Job");
    assert_eq!(sent["spec"]["backoffLimit"], 0);
    assert_eq!(sent["metadata"]["name"], name.as_str());
    assert!(
        requests.iter().any(|request| request.uri
            == format!("/api/v1/namespaces/{NAMESPACE}/pods?&labelSelector=job-name%3D{name}")),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|request| request.uri
            == format!(
                "/api/v1/namespaces/{NAMESPACE}/pods/{name}-x7k2p/log?&container=task&follow=true"
            )),
        "{requests:#?}"
    );
    // A finished Job is left to ttlSecondsAfterFinished.
    assert!(harness.requests_of(Method::DELETE).is_empty());
}

#[tokio::test]
async fn an_api_server_briefly_unavailable_does_not_fail_the_attempt() {
    let mut cluster =
        FakeCluster::new(vec![active(), complete()]).with_pod("Running", running(), "ok\n");
    cluster.unavailable_gets = 3;
    let harness = harness(cluster);
    let (outcome, _, log) = harness.run(launch()).await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert!(log.contains("ok\n"), "{log}");
    let job_gets = harness
        .requests_of(Method::GET)
        .into_iter()
        .filter(|request| request.uri.contains("/jobs/"))
        .count();
    assert!(job_gets >= 5, "{job_gets}");
}

#[tokio::test]
async fn a_pod_that_ran_between_two_polls_still_has_its_log_read() {
    let cluster =
        FakeCluster::new(vec![complete()]).with_pod("Succeeded", exited(0, "Completed"), "quick\n");
    let harness = harness(cluster);
    let (outcome, _, log) = harness.run(launch()).await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert!(log.contains("quick\n"), "{log}");
    let name = job_name(&launch());
    assert!(
        harness.requests().iter().any(|request| request.uri
            == format!("/api/v1/namespaces/{NAMESPACE}/pods/{name}-x7k2p/log?&container=task")),
        "{:#?}",
        harness.requests()
    );
}

#[tokio::test]
async fn a_failed_job_reports_its_containers_exit_code() {
    let cluster = FakeCluster::new(vec![active(), failed("BackoffLimitExceeded")]).with_pod(
        "Failed",
        exited(3, "Error"),
        "Traceback: boom\n",
    );
    let harness = harness(cluster);
    let (outcome, _, log) = harness.run(launch()).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            exit_code: Some(3),
            reason: "exit code 3".to_owned()
        }
    );
    assert!(log.contains("Traceback: boom\n"), "{log}");
}

#[tokio::test]
async fn an_out_of_memory_kill_says_which_limit_to_raise() {
    let cluster = FakeCluster::new(vec![failed("BackoffLimitExceeded")]).with_pod(
        "Failed",
        exited(137, "OOMKilled"),
        "",
    );
    let harness = harness(cluster);
    let (outcome, _, _) = harness.run(launch()).await;
    assert_eq!(outcome.exit_code(), Some(137));
    assert!(
        outcome.reason().contains("resources.memory_limit"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_job_past_its_active_deadline_timed_out() {
    let cluster = FakeCluster::new(vec![failed("DeadlineExceeded")]).with_pod(
        "Failed",
        exited(143, "Error"),
        "",
    );
    let harness = harness(cluster);
    let (outcome, _, _) = harness.run(launch()).await;
    assert_eq!(
        outcome,
        Outcome::TimedOut {
            after: Duration::from_secs(7200)
        }
    );
}

#[tokio::test]
async fn the_orchestrator_deletes_a_job_at_its_timeout() {
    let cluster = FakeCluster::new(vec![active()]).with_pod("Running", running(), "working\n");
    let harness = harness(cluster);
    let mut launch = launch();
    launch.timeout = Some(Duration::from_millis(300));
    let (outcome, _, log) = harness.run(launch).await;
    assert_eq!(
        outcome,
        Outcome::TimedOut {
            after: Duration::from_millis(300)
        }
    );
    let deletes = harness.requests_of(Method::DELETE);
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    let name = job_name(&self::launch());
    assert_eq!(
        deletes[0].uri,
        format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}?")
    );
    let params: Value = serde_json::from_str(&deletes[0].body).unwrap();
    assert_eq!(params["propagationPolicy"], "Background");
    assert!(log.contains("execution_timeout of"), "{log}");
    assert!(
        log.contains(&format!("[plinth] deleted Job {NAMESPACE}/{name}")),
        "{log}"
    );
}

#[tokio::test]
async fn a_cancel_deletes_the_running_job() {
    let cluster = FakeCluster::new(vec![active()]).with_pod("Running", running(), "");
    let harness = harness(cluster);
    let launch = launch();
    let attempt = harness.attempt(&launch);
    let executor = harness.executor.clone();
    let running = tokio::spawn(async move { executor.run(launch, attempt.control).await });
    attempt.started.await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    attempt.cancel.send(true).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::Cancelled);
    let deletes = harness.requests_of(Method::DELETE);
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert!(
        deletes[0].body.contains("\"Background\""),
        "{}",
        deletes[0].body
    );
    drop(attempt.key);
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_did_not_start_and_the_job_is_deleted() {
    let waiting = json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.example/train:1.4\""}});
    let cluster = FakeCluster::new(vec![json!({"active": 1})]).with_pod("Pending", waiting, "");
    let harness = harness(cluster);
    let (outcome, started, _) = harness.run(launch()).await;
    let Outcome::NotStarted { reason } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("ImagePullBackOff"), "{reason}");
    assert!(reason.contains("image pull secrets"), "{reason}");
    // The Job existed, so it was reported started.
    assert!(started.is_some());
    assert_eq!(harness.requests_of(Method::DELETE).len(), 1);
}

#[tokio::test]
async fn an_existing_job_for_the_attempt_is_followed_not_created_twice() {
    let mut cluster =
        FakeCluster::new(vec![complete()]).with_pod("Succeeded", exited(0, "Completed"), "");
    cluster.create = CreateAnswer::AlreadyExists;
    let harness = harness(cluster);
    let (outcome, _, log) = harness.run(launch()).await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert!(
        log.contains("already exists (created before a restart)"),
        "{log}"
    );
    assert_eq!(harness.requests_of(Method::POST).len(), 1);
}

#[tokio::test]
async fn a_refused_create_did_not_start_and_says_why() {
    let mut cluster = FakeCluster::new(vec![]);
    cluster.create = CreateAnswer::Forbidden;
    let harness = harness(cluster);
    let (outcome, started, log) = harness.run(launch()).await;
    let reason = outcome.reason();
    assert!(matches!(outcome, Outcome::NotStarted { .. }), "{outcome:?}");
    assert!(reason.contains("refused to create Job"), "{reason}");
    assert!(reason.contains("cannot create resource"), "{reason}");
    assert!(reason.contains("HTTP 403"), "{reason}");
    assert_eq!(started, None);
    assert!(log.contains("could not start"), "{log}");
}

#[tokio::test]
async fn a_task_without_an_image_does_not_call_the_api() {
    let harness = harness(FakeCluster::new(vec![]));
    let mut launch = launch();
    launch.image = None;
    let executor = KubernetesExecutor::new(
        harness.executor.client.clone(),
        &KubernetesExecutorConfig {
            default_image: None,
            ..config()
        },
    );
    let attempt = harness.attempt(&launch);
    let outcome = executor.run(launch, attempt.control).await;
    assert!(outcome.reason().contains("default_image"), "{outcome:?}");
    assert!(harness.requests().is_empty());
}

#[tokio::test]
async fn a_job_deleted_by_someone_else_fails_the_attempt() {
    let harness = harness(FakeCluster::new(vec![]));
    let (outcome, _, _) = harness.run(launch()).await;
    assert!(
        outcome
            .reason()
            .contains("deleted outside the orchestrator"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn reattach_follows_the_job_by_name_or_answers_none() {
    let cluster =
        FakeCluster::new(vec![active(), complete()]).with_pod("Running", running(), "resumed\n");
    let harness = harness(cluster);
    let launch = launch();
    let name = job_name(&launch);
    let attempt = harness.attempt(&launch);
    let log = attempt.control.log.clone();
    let outcome = harness
        .executor
        .reattach(launch.clone(), &name, attempt.control)
        .await;
    assert_eq!(outcome, Some(Outcome::Succeeded));
    log.finish().await.unwrap();
    let text = harness.log_text(&attempt.key).await;
    assert!(text.contains("reattached to Job"), "{text}");
    assert!(text.contains("resumed\n"), "{text}");
    assert!(harness.requests_of(Method::POST).is_empty());

    let gone = self::harness(FakeCluster::new(vec![]));
    let attempt = gone.attempt(&launch);
    assert_eq!(
        gone.executor.reattach(launch, &name, attempt.control).await,
        None
    );
}

#[tokio::test]
async fn a_reattached_job_past_its_timeout_is_deleted() {
    // Started 2026-01-05 with a 2 h timeout, still active: long past its deadline.
    let cluster = FakeCluster::new(vec![active()]).with_pod("Running", running(), "");
    let harness = harness(cluster);
    let launch = launch();
    let name = job_name(&launch);
    let attempt = harness.attempt(&launch);
    let outcome = harness
        .executor
        .reattach(launch, &name, attempt.control)
        .await;
    assert_eq!(
        outcome,
        Some(Outcome::TimedOut {
            after: Duration::from_secs(7200)
        })
    );
    assert_eq!(harness.requests_of(Method::DELETE).len(), 1);
}

/// `kubernetes-validate` as deploy/scripts/tools.sh installs it (`$KUBERNETES_VALIDATE`, the tools
/// venv, or `PATH`).
fn kubernetes_validate() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("KUBERNETES_VALIDATE") {
        return Some(path.into());
    }
    let tools = std::env::var_os("PLINTH_TOOLS_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    Some(std::path::PathBuf::from(std::env::var_os("HOME")?).join(".cache"))
                })?;
            Some(cache.join("plinth/tools"))
        });
    let in_venv = tools.map(|tools| tools.join("venv/bin/kubernetes-validate"));
    if let Some(path) = in_venv.filter(|path| path.is_file()) {
        return Some(path);
    }
    std::process::Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .ok()
        .map(|_| "kubernetes-validate".into())
}

/// Validates the Job against the Kubernetes 1.33 schema with `kubernetes-validate --strict` (PyPI,
/// installed by `deploy/scripts/tools.sh`); without it, only the structural test above checks the Job.
#[test]
fn the_job_validates_against_the_kubernetes_schema_when_the_validator_is_installed() {
    let Some(validator) = kubernetes_validate() else {
        eprintln!(
            "kubernetes-validate is not installed (deploy/scripts/tools.sh); schema check skipped"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (file_name, launch) in [
        ("full.json", launch()),
        ("bare.json", {
            let mut bare = launch();
            bare.resources = Resources::default();
            bare.secrets.clear();
            bare.timeout = None;
            bare
        }),
    ] {
        let file = dir.path().join(file_name);
        std::fs::write(
            &file,
            serde_json::to_vec_pretty(&job_json(&launch)).unwrap(),
        )
        .unwrap();
        let result = std::process::Command::new(&validator)
            .args(["--strict", "-k", "1.33.0"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            result.status.success(),
            "{file_name}: {}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }
}
