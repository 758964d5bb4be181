//! The scheduler: one loop per replica that turns due cron ticks into runs, starts queued runs within
//! `max_active_runs`, decides which tasks are ready (trigger rules), claims them, runs their attempts
//! (on the executor, or in process for the platform task types), records how they ended, retries with
//! backoff, and reconciles attempts whose replica stopped.
//!
//! The database is the only shared state: every decision is a compare-and-set in [`Store`], so several
//! replicas may run this loop on one PostgreSQL. The loop wakes at once when something changes on this
//! replica (a trigger, an attempt ending) and polls for the rest (cron ticks, retries, other replicas).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};

use crate::config::SchedulerConfig;
use crate::domain::cron::Cron;
use crate::domain::dag::{self, Decision};
use crate::domain::pipeline::{CommandLine, Pipeline, Task, TaskKind};
use crate::domain::state::{RunState, TaskState};
use crate::domain::{retry, template};
use crate::executor::{AttemptControl, Executor, Launch, Outcome};
use crate::logs::{AttemptKey, LogStore, LogWriter};
use crate::store::{AttemptEnd, NewRun, RunRecord, RunTrigger, Store, StoreError, TaskRecord};
use crate::tasks::{DataInterval, Platform};

/// An attempt lost with its replica is started again at most this many times before the task fails.
const MAX_LOST_ATTEMPTS: u32 = 3;

/// The current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The parts an engine runs with.
#[derive(Debug)]
pub struct EngineParts {
    /// The database.
    pub store: Store,
    /// Where processes run.
    pub executor: Arc<dyn Executor>,
    /// Where logs go.
    pub logs: LogStore,
    /// The feature store, model serving, the lake and the model repository.
    pub platform: Arc<Platform>,
    /// Limits and timings.
    pub config: SchedulerConfig,
    /// Where `train` tasks get their model directory.
    pub work_dir: PathBuf,
    /// The lake's root URL, passed to processes as `PLINTH_LAKE_ROOT`.
    pub lake_root: String,
}

/// The scheduler of one replica.
#[derive(Debug)]
pub struct Engine {
    parts: EngineParts,
    replica: String,
    wake: Notify,
    /// Wakes event streams when this replica stored events.
    events: Arc<Notify>,
    slots: Arc<Semaphore>,
    pipelines: Mutex<HashMap<(String, i64), Arc<Pipeline>>>,
    /// Attempts running on this replica, by (run, task), with their cancel switch.
    running: Mutex<HashMap<(String, String), watch::Sender<bool>>>,
}

impl Engine {
    /// An engine with a fresh replica id.
    pub fn new(parts: EngineParts) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(parts.config.max_parallel_tasks));
        Arc::new(Self {
            replica: format!("replica-{}", uuid::Uuid::now_v7()),
            parts,
            wake: Notify::new(),
            events: Arc::new(Notify::new()),
            slots,
            pipelines: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
        })
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.parts.store
    }

    /// The log store.
    pub fn logs(&self) -> &LogStore {
        &self.parts.logs
    }

    /// This replica's id (the owner of the attempts it runs).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Notified whenever this replica stored state changes.
    pub fn events_notify(&self) -> Arc<Notify> {
        self.events.clone()
    }

    /// Asks the loop to look for work now (after a trigger, an apply, a cancel).
    pub fn wake(&self) {
        self.wake.notify_one();
        self.events.notify_waiters();
    }

    fn running(&self) -> MutexGuard<'_, HashMap<(String, String), watch::Sender<bool>>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pipeline version a run runs (cached: versions never change).
    pub async fn pipeline_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<Arc<Pipeline>>, StoreError> {
        let key = (name.to_owned(), version);
        if let Some(found) = self
            .pipelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Some(found.clone()));
        }
        let Some(pipeline) = self.parts.store.pipeline_version(name, version).await? else {
            return Ok(None);
        };
        let pipeline = Arc::new(pipeline);
        self.pipelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, pipeline.clone());
        Ok(Some(pipeline))
    }

    /// Runs the loop until `stop` becomes true, then waits for nothing: attempts still running are
    /// stopped by the caller dropping the executor (local processes die with the orchestrator) and are
    /// reconciled by the next replica.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let leases = tokio::spawn(self.clone().renew_leases(stop.clone()));
        let mut failures = 0u32;
        loop {
            match self.pass().await {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %err, "scheduler pass failed; retrying");
                }
            }
            let pause = if failures == 0 {
                self.parts.config.poll_interval
            } else {
                Duration::from_millis(200 * u64::from(failures.min(10)))
            };
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        leases.abort();
        let cancels: Vec<watch::Sender<bool>> = self.running().values().cloned().collect();
        for cancel in cancels {
            let _ = cancel.send(true);
        }
    }

    async fn renew_leases(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let period = self.parts.config.lease_timeout / 3;
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = tokio::time::sleep(period) => {}
            }
            let until = now_micros() + micros(self.parts.config.lease_timeout);
            if let Err(err) = self.parts.store.renew_leases(&self.replica, until).await {
                tracing::warn!(error = %err, "cannot renew task leases");
            }
        }
    }

    /// One pass over everything due.
    async fn pass(self: &Arc<Self>) -> Result<(), StoreError> {
        self.schedule_due().await?;
        self.reconcile_expired().await?;
        let active = self.parts.store.active_runs().await?;
        let active_ids: HashSet<&str> = active.iter().map(|run| run.id.as_str()).collect();
        // Attempts of runs that ended (cancelled) while they ran here are stopped.
        let orphans: Vec<(String, String)> = self
            .running()
            .keys()
            .filter(|(run_id, _)| !active_ids.contains(run_id.as_str()))
            .cloned()
            .collect();
        for (run_id, task) in orphans {
            if let Some(run) = self.parts.store.run(&run_id).await?
                && run.state.is_terminal()
                && let Some(cancel) = self.running().get(&(run_id.clone(), task.clone()))
            {
                let _ = cancel.send(true);
            }
        }
        for mut run in active {
            let Some(pipeline) = self
                .pipeline_version(&run.pipeline, run.pipeline_version)
                .await?
            else {
                tracing::warn!(run = %run.id, pipeline = %run.pipeline, "the run's pipeline version is gone; cancelling it");
                self.parts
                    .store
                    .cancel_run(&run.id, "its pipeline was deleted", now_micros())
                    .await?;
                continue;
            };
            if run.state == RunState::Queued {
                if !self
                    .parts
                    .store
                    .start_run(&run, pipeline.max_active_runs, now_micros())
                    .await?
                {
                    continue;
                }
                self.events.notify_waiters();
                run.state = RunState::Running;
            }
            self.advance_run(&run, &pipeline).await?;
        }
        Ok(())
    }

    /// Creates the runs of due cron ticks.
    async fn schedule_due(&self) -> Result<(), StoreError> {
        let now = now_micros();
        for (name, tick) in self.parts.store.due_schedules(now).await? {
            let Some(stored) = self.parts.store.pipeline(&name).await? else {
                continue;
            };
            let Some(schedule) = &stored.pipeline.schedule else {
                continue;
            };
            let cron = match Cron::parse(schedule) {
                Ok(cron) => cron,
                Err(err) => {
                    tracing::warn!(pipeline = %name, error = %err, "stored schedule does not parse");
                    continue;
                }
            };
            let mut due = vec![tick];
            due.extend(cron.ticks(tick, now, self.parts.config.max_catchup_runs));
            if !stored.pipeline.catchup {
                // Only the latest missed tick runs; the ones before it are skipped.
                due = due.split_off(due.len() - 1);
            }
            due.truncate(self.parts.config.max_catchup_runs);
            let last = due.last().copied().unwrap_or(tick);
            let next = cron.next_after(last.max(now));
            let runs: Vec<NewRun> = due
                .iter()
                .map(|&tick| {
                    let start = cron.previous_before(tick).unwrap_or(tick);
                    NewRun {
                        id: uuid::Uuid::now_v7().to_string(),
                        pipeline: name.clone(),
                        pipeline_version: stored.version,
                        trigger: RunTrigger::Schedule,
                        triggered_by: "scheduler".to_owned(),
                        logical_date: tick,
                        interval: (start, tick),
                        params: default_params(&stored.pipeline),
                        schedule_key: Some(format!("{name}@{tick}")),
                        request_key: None,
                        tasks: task_rows(&stored.pipeline),
                    }
                })
                .collect();
            let created = self
                .parts
                .store
                .schedule_runs(&name, tick, next, &runs, now)
                .await?;
            if !created.is_empty() {
                tracing::info!(pipeline = %name, runs = created.len(), "scheduled runs created");
                self.events.notify_waiters();
            }
        }
        Ok(())
    }

    /// Takes over running attempts whose replica stopped renewing its lease.
    async fn reconcile_expired(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = now_micros();
        let expired = self.parts.store.expired_tasks(now).await?;
        for task in expired {
            if self
                .running()
                .contains_key(&(task.run_id.clone(), task.task.clone()))
            {
                continue;
            }
            let lease = now + micros(self.parts.config.lease_timeout);
            if !self
                .parts
                .store
                .take_over(&task, &self.replica, lease, now)
                .await?
            {
                continue;
            }
            let Some(run) = self.parts.store.run(&task.run_id).await? else {
                continue;
            };
            let Some(pipeline) = self
                .pipeline_version(&run.pipeline, run.pipeline_version)
                .await?
            else {
                continue;
            };
            let executor_ref = self
                .parts
                .store
                .executor_ref(&run.id, &task.task, task.try_number)
                .await?
                .unwrap_or_default();
            tracing::warn!(run = %run.id, task = %task.task, attempt = task.try_number, previous_owner = ?task.owner, "reconciling an attempt whose replica stopped");
            let (cancel, cancelled) = watch::channel(false);
            self.running()
                .insert((run.id.clone(), task.task.clone()), cancel);
            let engine = self.clone();
            tokio::spawn(async move {
                engine
                    .reconcile(run, pipeline, task, executor_ref, cancelled)
                    .await;
            });
        }
        Ok(())
    }

    async fn reconcile(
        self: Arc<Self>,
        run: RunRecord,
        pipeline: Arc<Pipeline>,
        task: TaskRecord,
        executor_ref: String,
        cancelled: watch::Receiver<bool>,
    ) {
        let key = attempt_key(&run, &task.task, task.try_number);
        let mut outcome = None;
        // Only an executor whose attempts outlive their orchestrator has anything to follow; for the
        // others the attempt is lost (its log, up to the kill, was stored from the spool at start).
        if let Some(definition) = pipeline.task(&task.task)
            && self.parts.executor.reattaches()
            && !executor_ref.is_empty()
            && matches!(
                definition.kind,
                TaskKind::Command { .. } | TaskKind::Train { .. }
            )
            && let Ok(rendered) = template::render_task(definition, &run_context(&run, &task.task))
            && let Ok(log) = self.parts.logs.writer(&key)
        {
            let launch = self.launch(&run, &rendered, task.try_number, BTreeMap::new());
            let control = AttemptControl {
                log: log.clone(),
                cancel: cancelled,
                started: None,
            };
            outcome = self
                .parts
                .executor
                .reattach(launch, &executor_ref, control)
                .await;
            let _ = log.finish().await;
        }
        let definition = pipeline.task(&task.task);
        let end = match outcome {
            Some(outcome) => match definition {
                Some(definition) => self.end_of(&run, definition, task.try_number, &outcome, false),
                None => lost_end(&task),
            },
            None => lost_end(&task),
        };
        self.record_end(&run, &task.task, task.try_number, end)
            .await;
    }

    /// Decides ready tasks, retries that are due, the run's end, and starts what may start.
    async fn advance_run(
        self: &Arc<Self>,
        run: &RunRecord,
        pipeline: &Arc<Pipeline>,
    ) -> Result<(), StoreError> {
        let now = now_micros();
        let mut tasks = self.parts.store.tasks(&run.id).await?;
        // Due retries are queued again; pending tasks are decided by their trigger rules (skips and
        // upstream failures cascade within one decision). All of it is one transaction.
        let mut moves: Vec<(String, TaskState, String)> = tasks
            .iter()
            .filter(|task| {
                task.state == TaskState::UpForRetry
                    && task.next_attempt_time.is_none_or(|time| time <= now)
            })
            .map(|task| (task.task.clone(), TaskState::Queued, String::new()))
            .collect();
        let states: BTreeMap<String, TaskState> = tasks
            .iter()
            .map(|task| (task.task.clone(), task.state))
            .collect();
        moves.extend(
            dag::next_decisions(pipeline, &states)
                .into_iter()
                .map(|decision| match decision {
                    Decision::Queue(name) => (name, TaskState::Queued, String::new()),
                    Decision::Skip { task, reason } => (task, TaskState::Skipped, reason),
                    Decision::UpstreamFailed { task, reason } => {
                        (task, TaskState::UpstreamFailed, reason)
                    }
                }),
        );
        if !moves.is_empty() {
            let batch: Vec<(&TaskRecord, TaskState, String)> = moves
                .iter()
                .filter_map(|(name, to, reason)| {
                    let record = tasks.iter().find(|task| task.task == *name)?;
                    Some((record, *to, reason.clone()))
                })
                .collect();
            let moved = self.parts.store.transition_tasks(run, &batch, now).await?;
            self.events.notify_waiters();
            if moved.iter().all(|moved| *moved) {
                let targets: BTreeMap<String, TaskState> = batch
                    .iter()
                    .map(|(record, to, _)| (record.task.clone(), *to))
                    .collect();
                for task in &mut tasks {
                    if let Some(to) = targets.get(&task.task) {
                        task.state = *to;
                    }
                }
            } else {
                // Another replica moved some first: read what is there now.
                tasks = self.parts.store.tasks(&run.id).await?;
            }
        }
        let states: BTreeMap<String, TaskState> = tasks
            .iter()
            .map(|task| (task.task.clone(), task.state))
            .collect();
        if let Some(outcome) = dag::run_outcome(pipeline, &states) {
            let reason = run_reason(outcome, &tasks);
            if self
                .parts
                .store
                .finish_run(run, outcome, &reason, now_micros())
                .await?
            {
                tracing::info!(run = %run.id, pipeline = %run.pipeline, state = %outcome, "run ended");
                self.events.notify_waiters();
            }
            return Ok(());
        }
        // Claim what may start now (the run's max_active_tasks, this replica's slots) in one
        // transaction, then start each claimed attempt.
        let running = tasks
            .iter()
            .filter(|task| task.state == TaskState::Running)
            .count();
        let room = usize::try_from(pipeline.max_active_tasks)
            .unwrap_or(usize::MAX)
            .saturating_sub(running);
        let mut chosen: Vec<(&TaskRecord, OwnedSemaphorePermit)> = Vec::new();
        for task in tasks.iter().filter(|task| task.state == TaskState::Queued) {
            if chosen.len() >= room {
                break;
            }
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                break;
            };
            chosen.push((task, permit));
        }
        if chosen.is_empty() {
            return Ok(());
        }
        let now = now_micros();
        let lease = now + micros(self.parts.config.lease_timeout);
        let records: Vec<&TaskRecord> = chosen.iter().map(|(task, _)| *task).collect();
        let claims = self
            .parts
            .store
            .claim_tasks(run, &records, &self.replica, lease, now)
            .await?;
        self.events.notify_waiters();
        for ((task, permit), claim) in chosen.into_iter().zip(claims) {
            let (Some(try_number), Some(definition)) = (claim, pipeline.task(&task.task)) else {
                continue;
            };
            let (cancel, cancelled) = watch::channel(false);
            self.running()
                .insert((run.id.clone(), task.task.clone()), cancel);
            let engine = self.clone();
            let run = run.clone();
            let definition = definition.clone();
            tokio::spawn(async move {
                engine
                    .attempt(run, definition, try_number, cancelled, permit)
                    .await;
            });
        }
        Ok(())
    }

    /// Runs one attempt to its end and records it.
    async fn attempt(
        self: Arc<Self>,
        run: RunRecord,
        task: Task,
        try_number: u32,
        cancelled: watch::Receiver<bool>,
        _permit: OwnedSemaphorePermit,
    ) {
        let key = attempt_key(&run, &task.name, try_number);
        let (outcome, retryable) = match self.parts.logs.writer(&key) {
            Ok(log) => {
                log.line(&format!(
                    "[plinth] {} attempt {try_number} of task `{}` (uses: {}) in run {}",
                    if try_number == 1 {
                        "starting"
                    } else {
                        "retrying:"
                    },
                    task.name,
                    task.kind.uses(),
                    run.id
                ));
                let result = self.execute(&run, &task, try_number, &log, cancelled).await;
                log.line(&format!(
                    "[plinth] attempt {try_number} ended: {}",
                    result.0.reason()
                ));
                if let Err(err) = log.finish().await {
                    tracing::warn!(run = %run.id, task = %task.name, error = %err, "cannot store the attempt's log");
                }
                result
            }
            Err(err) => (
                Outcome::NotStarted {
                    reason: format!("cannot open the attempt's log spool file: {err}"),
                },
                true,
            ),
        };
        let end = self.end_of(&run, &task, try_number, &outcome, !retryable);
        self.record_end(&run, &task.name, try_number, end).await;
    }

    /// Runs the attempt; answers its outcome and whether a failure may be retried.
    async fn execute(
        &self,
        run: &RunRecord,
        task: &Task,
        try_number: u32,
        log: &LogWriter,
        cancelled: watch::Receiver<bool>,
    ) -> (Outcome, bool) {
        let rendered = match template::render_task(task, &run_context(run, &task.name)) {
            Ok(rendered) => rendered,
            Err(err) => {
                return (
                    Outcome::NotStarted {
                        reason: format!("cannot fill in the task's parameters: {err}"),
                    },
                    false,
                );
            }
        };
        let interval = DataInterval {
            start: to_datetime(run.interval_start),
            end: to_datetime(run.interval_end),
        };
        match &rendered.kind {
            TaskKind::Command { .. } => (
                self.run_process(run, &rendered, try_number, BTreeMap::new(), log, cancelled)
                    .await,
                true,
            ),
            TaskKind::Train {
                training_set,
                model,
                version,
                ..
            } => {
                let version = version.clone().unwrap_or_else(|| default_version(run));
                let model_dir = self
                    .parts
                    .work_dir
                    .join(format!("{}-{}-{try_number}", run.id, task.name));
                if let Err(err) = tokio::fs::create_dir_all(&model_dir).await {
                    return (
                        Outcome::NotStarted {
                            reason: format!(
                                "cannot create the model directory {}: {err}",
                                model_dir.display()
                            ),
                        },
                        true,
                    );
                }
                // A local process reads the training set with the lake's own credentials; on Kubernetes
                // the pod's service account or the task's `secrets` give them (never plain Job env).
                let mut env = if self.parts.executor.name() == "local" {
                    self.parts.platform.lake_client_env()
                } else {
                    BTreeMap::new()
                };
                env.insert(
                    "PLINTH_MODEL_DIR".to_owned(),
                    model_dir.display().to_string(),
                );
                env.insert("PLINTH_MODEL_NAME".to_owned(), model.clone());
                env.insert("PLINTH_MODEL_VERSION".to_owned(), version.clone());
                match self.parts.platform.dataset_url(training_set) {
                    Ok(url) => {
                        env.insert("PLINTH_TRAINING_SET".to_owned(), url);
                    }
                    Err(err) => {
                        return (
                            Outcome::NotStarted {
                                reason: err.to_string(),
                            },
                            false,
                        );
                    }
                }
                let outcome = self
                    .run_process(run, &rendered, try_number, env, log, cancelled)
                    .await;
                let result = if outcome == Outcome::Succeeded {
                    match crate::tasks::store_model(
                        &self.parts.platform,
                        model,
                        &version,
                        &model_dir,
                    )
                    .await
                    {
                        Ok(url) => {
                            log.line(&format!(
                                "[plinth] stored model {model} version {version} at {url}"
                            ));
                            (Outcome::Succeeded, true)
                        }
                        Err(err) => {
                            let retryable = err.is_retryable();
                            (
                                Outcome::Failed {
                                    exit_code: Some(0),
                                    reason: format!(
                                        "the training command succeeded but its model was not stored: {err}"
                                    ),
                                },
                                retryable,
                            )
                        }
                    }
                } else {
                    (outcome, true)
                };
                let _ = tokio::fs::remove_dir_all(&model_dir).await;
                result
            }
            kind => {
                let work = crate::tasks::run(&self.parts.platform, kind, interval, log, cancelled);
                let result = match task.execution_timeout {
                    Some(timeout) => match tokio::time::timeout(timeout, work).await {
                        Ok(result) => result,
                        Err(_) => return (Outcome::TimedOut { after: timeout }, true),
                    },
                    None => work.await,
                };
                match result {
                    Ok(report) => {
                        log.line(&format!("[plinth] {}", report.summary));
                        (Outcome::Succeeded, true)
                    }
                    Err(crate::tasks::TaskError::Cancelled) => (Outcome::Cancelled, false),
                    Err(err) => {
                        let retryable = err.is_retryable();
                        (
                            Outcome::Failed {
                                exit_code: None,
                                reason: err.to_string(),
                            },
                            retryable,
                        )
                    }
                }
            }
        }
    }

    fn launch(
        &self,
        run: &RunRecord,
        task: &Task,
        try_number: u32,
        extra_env: BTreeMap<String, String>,
    ) -> Launch {
        let (command, image, working_dir) = match &task.kind {
            TaskKind::Command {
                command,
                image,
                working_dir,
            } => (command.clone(), image.clone(), working_dir.clone()),
            TaskKind::Train {
                command,
                image,
                working_dir,
                ..
            } => (command.clone(), image.clone(), working_dir.clone()),
            _ => (CommandLine::Argv(Vec::new()), None, None),
        };
        let argv = match command {
            CommandLine::Argv(argv) => argv,
            CommandLine::Shell(script) => vec!["sh".to_owned(), "-c".to_owned(), script],
        };
        let mut env = task.env.clone();
        env.insert("PLINTH_PIPELINE".to_owned(), run.pipeline.clone());
        env.insert("PLINTH_RUN_ID".to_owned(), run.id.clone());
        env.insert("PLINTH_TASK".to_owned(), task.name.clone());
        env.insert("PLINTH_TRY_NUMBER".to_owned(), try_number.to_string());
        env.insert(
            "PLINTH_LOGICAL_DATE".to_owned(),
            to_datetime(run.logical_date).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
        env.insert(
            "PLINTH_PARAMS".to_owned(),
            serde_json::to_string(&run.params).unwrap_or_default(),
        );
        env.insert("PLINTH_LAKE_ROOT".to_owned(), self.parts.lake_root.clone());
        env.extend(extra_env);
        Launch {
            pipeline: run.pipeline.clone(),
            run_id: run.id.clone(),
            task: task.name.clone(),
            try_number,
            argv,
            image,
            working_dir,
            env,
            secrets: task.secrets.clone(),
            resources: task.resources.clone(),
            timeout: task.execution_timeout,
        }
    }

    async fn run_process(
        &self,
        run: &RunRecord,
        task: &Task,
        try_number: u32,
        extra_env: BTreeMap<String, String>,
        log: &LogWriter,
        cancelled: watch::Receiver<bool>,
    ) -> Outcome {
        let launch = self.launch(run, task, try_number, extra_env);
        let (started, started_ref) = oneshot::channel();
        let control = AttemptControl {
            log: log.clone(),
            cancel: cancelled,
            started: Some(started),
        };
        let store = self.parts.store.clone();
        let (run_id, name) = (run.id.clone(), task.name.clone());
        let record_ref = tokio::spawn(async move {
            if let Ok(executor_ref) = started_ref.await
                && let Err(err) = store
                    .attempt_started(&run_id, &name, try_number, &executor_ref)
                    .await
            {
                tracing::warn!(run = %run_id, task = %name, error = %err, "cannot record where the attempt runs");
            }
        });
        let outcome = self.parts.executor.run(launch, control).await;
        let _ = record_ref.await;
        outcome
    }

    /// How an attempt's outcome moves its task.
    fn end_of(
        &self,
        run: &RunRecord,
        task: &Task,
        try_number: u32,
        outcome: &Outcome,
        no_retry: bool,
    ) -> AttemptEnd {
        let reason = outcome.reason();
        let (attempt_state, task_state, next) = match outcome {
            Outcome::Succeeded => (TaskState::Succeeded, TaskState::Succeeded, None),
            Outcome::Cancelled => (TaskState::Cancelled, TaskState::Cancelled, None),
            _ => {
                if !no_retry && retry::may_retry(&task.retry, try_number) {
                    let seed = format!("{}#{}#{}", run.pipeline, task.name, run.id);
                    let delay = retry::retry_delay(&task.retry, try_number, &seed);
                    (
                        TaskState::Failed,
                        TaskState::UpForRetry,
                        Some(now_micros() + micros(delay)),
                    )
                } else {
                    (TaskState::Failed, TaskState::Failed, None)
                }
            }
        };
        AttemptEnd {
            attempt_state,
            task_state,
            next_attempt_time: next,
            exit_code: outcome.exit_code(),
            reason,
        }
    }

    /// Records an attempt's end, retrying while the database is unreachable (a restart): the outcome of
    /// a finished process is never dropped while this replica runs.
    async fn record_end(&self, run: &RunRecord, task: &str, try_number: u32, end: AttemptEnd) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .parts
                .store
                .finish_attempt(run, task, try_number, &self.replica, &end, now_micros())
                .await
            {
                Ok(recorded) => {
                    if !recorded {
                        tracing::warn!(run = %run.id, task, attempt = try_number, "another replica took the attempt over; its outcome here is not recorded");
                    }
                    break;
                }
                Err(err) => {
                    tracing::warn!(run = %run.id, task, error = %err, "cannot record the attempt's end; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.running().remove(&(run.id.clone(), task.to_owned()));
        self.wake();
    }
}

fn lost_end(task: &TaskRecord) -> AttemptEnd {
    let again = task.lost_count + 1 < MAX_LOST_ATTEMPTS;
    AttemptEnd {
        attempt_state: TaskState::Failed,
        task_state: if again {
            TaskState::Queued
        } else {
            TaskState::Failed
        },
        next_attempt_time: None,
        exit_code: None,
        reason: if again {
            "lost: the orchestrator replica running it stopped; it runs again (not counted as a retry)"
                .to_owned()
        } else {
            format!(
                "lost {MAX_LOST_ATTEMPTS} times with the orchestrator replica running it; check why the orchestrator stops (memory limit, node drain)"
            )
        },
    }
}

fn attempt_key(run: &RunRecord, task: &str, try_number: u32) -> AttemptKey {
    AttemptKey {
        pipeline: run.pipeline.clone(),
        run_id: run.id.clone(),
        task: task.to_owned(),
        try_number,
    }
}

fn to_datetime(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The template context of a run's task.
pub fn run_context(run: &RunRecord, task: &str) -> template::RunContext {
    template::RunContext {
        pipeline: run.pipeline.clone(),
        run_id: run.id.clone(),
        task: Some(task.to_owned()),
        logical_date_micros: run.logical_date,
        data_interval_start_micros: run.interval_start,
        data_interval_end_micros: run.interval_end,
        params: run.params.clone(),
    }
}

/// The model version a `train` task stores when it names none: `r` and the run's logical date.
fn default_version(run: &RunRecord) -> String {
    format!("r{}", to_datetime(run.logical_date).format("%Y%m%d%H%M%S"))
}

/// The parameters of a run that overrides nothing.
pub fn default_params(
    pipeline: &Pipeline,
) -> BTreeMap<String, crate::domain::pipeline::ParamValue> {
    pipeline
        .params
        .iter()
        .filter_map(|param| Some((param.name.clone(), param.default.clone()?)))
        .collect()
}

/// The task rows of a new run.
pub fn task_rows(pipeline: &Pipeline) -> Vec<(String, String)> {
    pipeline
        .tasks
        .iter()
        .map(|task| (task.name.clone(), task.kind.uses().to_owned()))
        .collect()
}

fn run_reason(outcome: RunState, tasks: &[TaskRecord]) -> String {
    match outcome {
        RunState::Failed => {
            let failed: Vec<String> = tasks
                .iter()
                .filter(|task| task.state == TaskState::Failed)
                .map(|task| format!("{} ({})", task.task, task.reason))
                .collect();
            format!("failed tasks: {}", failed.join("; "))
        }
        _ => String::new(),
    }
}
