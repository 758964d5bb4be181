//! Durable state in SQL (sqlx `Any`: SQLite embedded, PostgreSQL in production): pipelines (versioned),
//! runs, tasks, attempts and the event outbox.
//!
//! Every state change is a compare-and-set (`UPDATE ... WHERE state = <expected>`) written in the same
//! transaction as its event, so two replicas on one database never make the same transition twice: only
//! the replica whose update matched a row goes on (it starts the attempt, it publishes nothing twice).
//! Scheduled runs carry a unique `pipeline@tick` key and on-demand runs an optional unique request key.

use std::collections::BTreeMap;
use std::time::Duration;

use plinth_runtime::database::Backend;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::domain::pipeline::{ParamValue, Pipeline};
use crate::domain::state::{RunState, TaskState};

const SCHEMA: &str = include_str!("store/schema.sql");

/// The key of the PostgreSQL advisory lock that serializes schema creation and applies (`plinthor`).
const LOCK_KEY: i64 = 0x706c_696e_7468_6f72;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database does not answer (down, restarting, pool exhausted); retrying later may work.
    #[error("the orchestrator database does not answer ({source}); retry shortly")]
    Unavailable {
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The database refused a statement.
    #[error("orchestrator database error: {source}")]
    Database {
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored row does not read back (written by an incompatible version, or edited by hand).
    #[error("the stored {what} does not read: {message}")]
    Corrupt {
        /// What (`pipeline train`, `run 0193...`).
        what: String,
        /// What does not read.
        message: String,
    },
}

impl StoreError {
    /// Whether the database was unreachable (a retry may succeed).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(source: sqlx::Error) -> Self {
        if plinth_runtime::database::is_unavailable(&source) {
            StoreError::Unavailable { source }
        } else {
            StoreError::Database { source }
        }
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn corrupt(what: impl Into<String>, message: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: message.to_string(),
    }
}

/// An applied pipeline as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPipeline {
    /// Its current version.
    pub version: i64,
    /// The pipeline.
    pub pipeline: Pipeline,
    /// The YAML it was applied from.
    pub yaml: String,
    /// Whether its schedule is paused.
    pub paused: bool,
    /// The next cron tick the scheduler creates a run for; `None` when on demand only.
    pub next_tick: Option<i64>,
    /// When the current version was applied.
    pub update_time: i64,
}

/// One pipeline to apply.
#[derive(Debug, Clone)]
pub struct ApplyItem {
    /// The validated pipeline.
    pub pipeline: Pipeline,
    /// Its YAML.
    pub yaml: String,
    /// The first tick to schedule if the schedule is new or changed.
    pub first_tick: Option<i64>,
}

/// What applying did to one pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// New, stored as version 1.
    Created,
    /// Changed, stored as a new version.
    Updated,
    /// Unchanged.
    Unchanged,
}

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// By the schedule.
    Schedule,
    /// On demand.
    Manual,
}

impl RunTrigger {
    fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Schedule => "schedule",
            RunTrigger::Manual => "manual",
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Its id (UUIDv7).
    pub id: String,
    /// The pipeline.
    pub pipeline: String,
    /// The pipeline version it runs.
    pub pipeline_version: i64,
    /// Its state.
    pub state: RunState,
    /// How it started.
    pub trigger: RunTrigger,
    /// Who started it.
    pub triggered_by: String,
    /// Its logical date.
    pub logical_date: i64,
    /// Its data interval start.
    pub interval_start: i64,
    /// Its data interval end.
    pub interval_end: i64,
    /// Its parameters, defaults merged with overrides.
    pub params: BTreeMap<String, ParamValue>,
    /// When it was created.
    pub create_time: i64,
    /// When it started running.
    pub start_time: Option<i64>,
    /// When it ended.
    pub end_time: Option<i64>,
    /// Why it ended as it did.
    pub reason: String,
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id.
    pub id: String,
    /// The pipeline.
    pub pipeline: String,
    /// The version it runs.
    pub pipeline_version: i64,
    /// How it starts.
    pub trigger: RunTrigger,
    /// Who starts it.
    pub triggered_by: String,
    /// Its logical date.
    pub logical_date: i64,
    /// Its data interval.
    pub interval: (i64, i64),
    /// Its parameters.
    pub params: BTreeMap<String, ParamValue>,
    /// `pipeline@tick` for scheduled runs.
    pub schedule_key: Option<String>,
    /// `pipeline/request id` for idempotent on-demand runs.
    pub request_key: Option<String>,
    /// Its tasks: name and `uses:`.
    pub tasks: Vec<(String, String)>,
}

/// A task of a run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The run.
    pub run_id: String,
    /// The task's name.
    pub task: String,
    /// Its `uses:`.
    pub uses: String,
    /// Its state.
    pub state: TaskState,
    /// Attempts started.
    pub try_number: u32,
    /// When the next attempt may start (up_for_retry).
    pub next_attempt_time: Option<i64>,
    /// Why it is in its state.
    pub reason: String,
    /// The replica running it.
    pub owner: Option<String>,
    /// Until when that replica's claim holds unless renewed.
    pub lease_until: Option<i64>,
    /// Attempts lost with a replica that stopped (not counted as retries).
    pub lost_count: u32,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The task.
    pub task: String,
    /// Its number, from 1.
    pub try_number: u32,
    /// Running, succeeded, failed or cancelled.
    pub state: TaskState,
    /// When it started.
    pub start_time: i64,
    /// When it ended.
    pub end_time: Option<i64>,
    /// The exit code.
    pub exit_code: Option<i32>,
    /// Why it ended as it did.
    pub reason: String,
    /// The process id or the Job's name.
    pub executor_ref: String,
}

/// A stored state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Increasing sequence number.
    pub sequence: i64,
    /// When it was stored.
    pub time: i64,
    /// The pipeline.
    pub pipeline: String,
    /// Its version.
    pub pipeline_version: i64,
    /// The run.
    pub run_id: String,
    /// The task; empty for run events.
    pub task: String,
    /// The attempt (task events).
    pub try_number: u32,
    /// The run's new state (run events).
    pub run_state: Option<RunState>,
    /// The task's new state (task events).
    pub task_state: Option<TaskState>,
    /// Why.
    pub reason: String,
}

/// How an attempt ended, for [`Store::finish_attempt`].
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    /// The attempt's final state (succeeded, failed, cancelled).
    pub attempt_state: TaskState,
    /// The task's next state (succeeded, failed, up_for_retry, cancelled, queued after a lost attempt).
    pub task_state: TaskState,
    /// When the next attempt may start (up_for_retry).
    pub next_attempt_time: Option<i64>,
    /// The exit code.
    pub exit_code: Option<i32>,
    /// Why.
    pub reason: String,
}

/// The orchestrator's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

const RUN_COLUMNS: &str = "id, pipeline, pipeline_version, state, run_trigger, triggered_by, logical_date, interval_start, interval_end, params, create_time, start_time, end_time, reason";
const TASK_COLUMNS: &str = "run_id, task, uses, state, try_number, next_attempt_time, reason, owner, lease_until, lost_count";
const EVENT_COLUMNS: &str = "sequence, event_time, pipeline, pipeline_version, run_id, task, try_number, run_state, task_state, reason";

impl Store {
    /// Connects (creating a SQLite file when missing) and creates the tables.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<Self> {
        let pool = plinth_runtime::database::connect(url, max_connections, connect_timeout).await?;
        Self::open(pool, Backend::of(url)).await
    }

    /// Uses an open pool of `backend` and creates the tables.
    pub async fn open(pool: AnyPool, backend: Backend) -> Result<Self> {
        let sequence = match backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        };
        let schema = SCHEMA.replace("{{SEQUENCE}}", sequence);
        plinth_runtime::database::create_tables(&pool, backend, LOCK_KEY, &schema).await?;
        Ok(Self { pool, backend })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ----- pipelines -----

    /// Stores each pipeline as a new version when it changed, all in one transaction.
    pub async fn apply(&self, items: &[ApplyItem], now: i64) -> Result<Vec<(i64, ApplyOutcome)>> {
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        plinth_runtime::database::advisory_lock(&mut transaction, self.backend, LOCK_KEY).await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let name = &item.pipeline.name;
            let spec = serde_json::to_string(&item.pipeline)
                .map_err(|err| corrupt(format!("pipeline {name}"), err))?;
            let current =
                sqlx::query("SELECT version, spec FROM orchestrator_pipelines WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_optional(&mut *transaction)
                    .await?;
            let (version, outcome, schedule_changed) = match current {
                None => (1, ApplyOutcome::Created, true),
                Some(row) => {
                    let version: i64 = row.try_get(0)?;
                    let old_spec: String = row.try_get(1)?;
                    if old_spec == spec {
                        outcomes.push((version, ApplyOutcome::Unchanged));
                        continue;
                    }
                    let old: Option<Pipeline> = serde_json::from_str(&old_spec).ok();
                    let changed = old.is_none_or(|old| {
                        old.schedule != item.pipeline.schedule
                            || old.start_date_micros != item.pipeline.start_date_micros
                            || old.catchup != item.pipeline.catchup
                    });
                    (version + 1, ApplyOutcome::Updated, changed)
                }
            };
            sqlx::query(
                "INSERT INTO orchestrator_pipeline_versions (name, version, spec, yaml, apply_time) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name.as_str())
            .bind(version)
            .bind(spec.as_str())
            .bind(item.yaml.as_str())
            .bind(now)
            .execute(&mut *transaction)
            .await?;
            if outcome == ApplyOutcome::Created {
                sqlx::query(
                    "INSERT INTO orchestrator_pipelines (name, version, owner, spec, yaml, paused, next_tick, update_time, lock_counter) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, 0)",
                )
                .bind(name.as_str())
                .bind(version)
                .bind(item.pipeline.owner.as_str())
                .bind(spec.as_str())
                .bind(item.yaml.as_str())
                .bind(item.first_tick)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            } else if schedule_changed {
                sqlx::query(
                    "UPDATE orchestrator_pipelines SET version = $2, owner = $3, spec = $4, yaml = $5, next_tick = $6, update_time = $7 WHERE name = $1",
                )
                .bind(name.as_str())
                .bind(version)
                .bind(item.pipeline.owner.as_str())
                .bind(spec.as_str())
                .bind(item.yaml.as_str())
                .bind(item.first_tick)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE orchestrator_pipelines SET version = $2, owner = $3, spec = $4, yaml = $5, update_time = $6 WHERE name = $1",
                )
                .bind(name.as_str())
                .bind(version)
                .bind(item.pipeline.owner.as_str())
                .bind(spec.as_str())
                .bind(item.yaml.as_str())
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            }
            outcomes.push((version, outcome));
        }
        transaction.commit().await?;
        Ok(outcomes)
    }

    /// The pipeline named `name`.
    pub async fn pipeline(&self, name: &str) -> Result<Option<StoredPipeline>> {
        let row = sqlx::query(
            "SELECT version, spec, yaml, paused, next_tick, update_time FROM orchestrator_pipelines WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| read_pipeline(&row)).transpose()
    }

    /// Every pipeline, by name; only those of `owner` when given.
    pub async fn pipelines(&self, owner: Option<&str>) -> Result<Vec<StoredPipeline>> {
        let rows = match owner {
            Some(owner) => {
                sqlx::query(
                    "SELECT version, spec, yaml, paused, next_tick, update_time FROM orchestrator_pipelines WHERE owner = $1 ORDER BY name",
                )
                .bind(owner)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT version, spec, yaml, paused, next_tick, update_time FROM orchestrator_pipelines ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(read_pipeline).collect()
    }

    /// A pipeline as it was at `version` (runs keep the version they started with).
    pub async fn pipeline_version(&self, name: &str, version: i64) -> Result<Option<Pipeline>> {
        let row = sqlx::query(
            "SELECT spec FROM orchestrator_pipeline_versions WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let spec: String = row.try_get(0)?;
            serde_json::from_str(&spec)
                .map_err(|err| corrupt(format!("pipeline {name} v{version}"), err))
        })
        .transpose()
    }

    /// Pauses or unpauses; unpausing sets the next tick (`next_tick`), pausing keeps it.
    pub async fn set_paused(
        &self,
        name: &str,
        paused: bool,
        next_tick: Option<i64>,
    ) -> Result<bool> {
        let result = if paused {
            sqlx::query("UPDATE orchestrator_pipelines SET paused = 1 WHERE name = $1")
                .bind(name)
                .execute(&self.pool)
                .await?
        } else {
            sqlx::query(
                "UPDATE orchestrator_pipelines SET paused = 0, next_tick = $2 WHERE name = $1",
            )
            .bind(name)
            .bind(next_tick)
            .execute(&self.pool)
            .await?
        };
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a pipeline and its versions (runs stay for history).
    pub async fn delete_pipeline(&self, name: &str) -> Result<bool> {
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        let deleted = sqlx::query("DELETE FROM orchestrator_pipelines WHERE name = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM orchestrator_pipeline_versions WHERE name = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(deleted == 1)
    }

    /// Pipelines whose next tick is due (not paused).
    pub async fn due_schedules(&self, now: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT name, next_tick FROM orchestrator_pipelines WHERE paused = 0 AND next_tick IS NOT NULL AND next_tick <= $1 ORDER BY next_tick",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Creates the runs of due ticks and moves the pipeline's next tick, atomically and only if the next
    /// tick is still `expected` (another replica may have done it). Runs whose tick already has one are
    /// skipped. Answers the runs created.
    pub async fn schedule_runs(
        &self,
        name: &str,
        expected: i64,
        next_tick: Option<i64>,
        runs: &[NewRun],
        now: i64,
    ) -> Result<Vec<RunRecord>> {
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        let moved = sqlx::query(
            "UPDATE orchestrator_pipelines SET next_tick = $3 WHERE name = $1 AND next_tick = $2",
        )
        .bind(name)
        .bind(expected)
        .bind(next_tick)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(Vec::new());
        }
        let mut created = Vec::new();
        for run in runs {
            if let Some(record) = insert_run(&mut transaction, run, now).await? {
                created.push(record);
            }
        }
        transaction.commit().await?;
        Ok(created)
    }

    // ----- runs -----

    /// Creates an on-demand run with its tasks (pending). With a request key already used, answers the
    /// run created then (`false`: not new).
    pub async fn create_run(&self, run: &NewRun, now: i64) -> Result<(RunRecord, bool)> {
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        if let Some(record) = insert_run(&mut transaction, run, now).await? {
            transaction.commit().await?;
            return Ok((record, true));
        }
        transaction.rollback().await?;
        let key = run.request_key.as_deref().unwrap_or_default();
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM orchestrator_runs WHERE request_key = $1"
        ))
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        Ok((read_run(&row)?, false))
    }

    /// One run.
    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM orchestrator_runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| read_run(&row)).transpose()
    }

    /// Runs newest first, optionally of one pipeline and in some states.
    pub async fn runs(
        &self,
        pipeline: Option<&str>,
        states: &[RunState],
        limit: u32,
    ) -> Result<Vec<RunRecord>> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM orchestrator_runs WHERE 1 = 1");
        if pipeline.is_some() {
            sql.push_str(" AND pipeline = $1");
        }
        if !states.is_empty() {
            let names: Vec<String> = states
                .iter()
                .map(|state| format!("'{}'", state.as_str()))
                .collect();
            sql.push_str(&format!(" AND state IN ({})", names.join(", ")));
        }
        sql.push_str(&format!(
            " ORDER BY create_time DESC, id DESC LIMIT {limit}"
        ));
        let mut query = sqlx::query(&sql);
        if let Some(pipeline) = pipeline {
            query = query.bind(pipeline);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(read_run).collect()
    }

    /// Runs that are queued or running, oldest first.
    pub async fn active_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM orchestrator_runs WHERE state IN ('queued', 'running') ORDER BY create_time, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_run).collect()
    }

    /// Moves a queued run to running if fewer than `max_active_runs` of its pipeline run (checked under
    /// the pipeline row's lock, so replicas cannot both take the last slot).
    pub async fn start_run(&self, run: &RunRecord, max_active_runs: u32, now: i64) -> Result<bool> {
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        sqlx::query(
            "UPDATE orchestrator_pipelines SET lock_counter = lock_counter + 1 WHERE name = $1",
        )
        .bind(run.pipeline.as_str())
        .execute(&mut *transaction)
        .await?;
        let running: i64 = sqlx::query(
            "SELECT COUNT(*) FROM orchestrator_runs WHERE pipeline = $1 AND state = 'running'",
        )
        .bind(run.pipeline.as_str())
        .fetch_one(&mut *transaction)
        .await?
        .try_get(0)?;
        if running >= i64::from(max_active_runs) {
            transaction.rollback().await?;
            return Ok(false);
        }
        let started = sqlx::query(
            "UPDATE orchestrator_runs SET state = 'running', start_time = $2 WHERE id = $1 AND state = 'queued'",
        )
        .bind(run.id.as_str())
        .bind(now)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if started {
            insert_event(
                &mut transaction,
                run,
                EventChange::Run(RunState::Running, ""),
                now,
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(started)
    }

    /// Ends a running run (compare-and-set from running).
    pub async fn finish_run(
        &self,
        run: &RunRecord,
        state: RunState,
        reason: &str,
        now: i64,
    ) -> Result<bool> {
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        let done = sqlx::query(
            "UPDATE orchestrator_runs SET state = $2, end_time = $3, reason = $4 WHERE id = $1 AND state = 'running'",
        )
        .bind(run.id.as_str())
        .bind(state.as_str())
        .bind(now)
        .bind(reason)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if done {
            insert_event(&mut transaction, run, EventChange::Run(state, reason), now).await?;
        }
        transaction.commit().await?;
        Ok(done)
    }

    /// Cancels a run that has not ended: it ends `cancelled`, its tasks that are not running are
    /// cancelled; running tasks stay running until their replica stops them. `None` when there is no
    /// such run; the run unchanged when it had already ended.
    pub async fn cancel_run(&self, id: &str, reason: &str, now: i64) -> Result<Option<RunRecord>> {
        let Some(run) = self.run(id).await? else {
            return Ok(None);
        };
        if run.state.is_terminal() {
            return Ok(Some(run));
        }
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        let done = sqlx::query(
            "UPDATE orchestrator_runs SET state = 'cancelled', end_time = $2, reason = $3 WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if done {
            insert_event(
                &mut transaction,
                &run,
                EventChange::Run(RunState::Cancelled, reason),
                now,
            )
            .await?;
            let rows = sqlx::query(&format!(
                "SELECT {TASK_COLUMNS} FROM orchestrator_tasks WHERE run_id = $1 AND state IN ('pending', 'queued', 'up_for_retry')"
            ))
            .bind(id)
            .fetch_all(&mut *transaction)
            .await?;
            for row in &rows {
                let task = read_task(row)?;
                let changed = sqlx::query(
                    "UPDATE orchestrator_tasks SET state = 'cancelled', reason = $3, next_attempt_time = NULL WHERE run_id = $1 AND task = $2 AND state = $4",
                )
                .bind(id)
                .bind(task.task.as_str())
                .bind(reason)
                .bind(task.state.as_str())
                .execute(&mut *transaction)
                .await?
                .rows_affected()
                    == 1;
                if changed {
                    insert_event(
                        &mut transaction,
                        &run,
                        EventChange::Task(
                            &task.task,
                            task.try_number,
                            TaskState::Cancelled,
                            reason,
                        ),
                        now,
                    )
                    .await?;
                }
            }
        }
        transaction.commit().await?;
        self.run(id).await
    }

    // ----- tasks -----

    /// The tasks of a run, in insertion (file) order.
    pub async fn tasks(&self, run_id: &str) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM orchestrator_tasks WHERE run_id = $1"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_task).collect()
    }

    /// The attempts of a run's tasks, oldest first.
    pub async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query(
            "SELECT task, try_number, state, start_time, end_time, exit_code, reason, executor_ref FROM orchestrator_attempts WHERE run_id = $1 ORDER BY task, try_number",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get(2)?;
                let exit_code: Option<i64> = row.try_get(5)?;
                Ok(AttemptRecord {
                    task: row.try_get(0)?,
                    try_number: to_u32(row.try_get(1)?),
                    state: state
                        .parse()
                        .map_err(|err| corrupt(format!("attempt of run {run_id}"), err))?,
                    start_time: row.try_get(3)?,
                    end_time: row.try_get(4)?,
                    exit_code: exit_code.and_then(|code| i32::try_from(code).ok()),
                    reason: row.try_get(6)?,
                    executor_ref: row.try_get(7)?,
                })
            })
            .collect()
    }

    /// Moves a task from its recorded state to `to` (compare-and-set) with its event. Answers whether it
    /// moved.
    pub async fn transition_task(
        &self,
        run: &RunRecord,
        task: &TaskRecord,
        to: TaskState,
        reason: &str,
        now: i64,
    ) -> Result<bool> {
        let moved = self
            .transition_tasks(run, &[(task, to, reason.to_owned())], now)
            .await?;
        Ok(moved.first().copied().unwrap_or(false))
    }

    /// Moves several tasks of a run, each from its recorded state to its target (compare-and-set), with
    /// their events, in one transaction (a pass's decisions cost one commit, not one per task). Answers,
    /// per move, whether it happened (another replica may have moved a task first).
    pub async fn transition_tasks(
        &self,
        run: &RunRecord,
        moves: &[(&TaskRecord, TaskState, String)],
        now: i64,
    ) -> Result<Vec<bool>> {
        if moves.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        let mut moved = Vec::with_capacity(moves.len());
        for (task, to, reason) in moves {
            let done = sqlx::query(
                "UPDATE orchestrator_tasks SET state = $4, reason = $5, next_attempt_time = NULL WHERE run_id = $1 AND task = $2 AND state = $3 AND try_number = $6",
            )
            .bind(run.id.as_str())
            .bind(task.task.as_str())
            .bind(task.state.as_str())
            .bind(to.as_str())
            .bind(reason.as_str())
            .bind(i64::from(task.try_number))
            .execute(&mut *transaction)
            .await?
            .rows_affected()
                == 1;
            if done {
                insert_event(
                    &mut transaction,
                    run,
                    EventChange::Task(&task.task, task.try_number, *to, reason),
                    now,
                )
                .await?;
            }
            moved.push(done);
        }
        transaction.commit().await?;
        Ok(moved)
    }

    /// Claims a queued task for `owner`: it becomes running with a new attempt. `None` when another
    /// replica claimed it first; else the attempt's number.
    pub async fn claim_task(
        &self,
        run: &RunRecord,
        task: &TaskRecord,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Option<u32>> {
        let claimed = self
            .claim_tasks(run, &[task], owner, lease_until, now)
            .await?;
        Ok(claimed.first().copied().flatten())
    }

    /// Claims queued tasks of a run for `owner` in one transaction: each becomes running with a new
    /// attempt. Answers, per task, its attempt's number, or `None` when another replica claimed it first.
    pub async fn claim_tasks(
        &self,
        run: &RunRecord,
        tasks: &[&TaskRecord],
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Vec<Option<u32>>> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        let mut claims = Vec::with_capacity(tasks.len());
        for task in tasks {
            let try_number = task.try_number + 1;
            let claimed = sqlx::query(
                "UPDATE orchestrator_tasks SET state = 'running', try_number = $3, owner = $4, lease_until = $5, next_attempt_time = NULL, reason = '' WHERE run_id = $1 AND task = $2 AND state = 'queued' AND try_number = $6",
            )
            .bind(run.id.as_str())
            .bind(task.task.as_str())
            .bind(i64::from(try_number))
            .bind(owner)
            .bind(lease_until)
            .bind(i64::from(task.try_number))
            .execute(&mut *transaction)
            .await?
            .rows_affected()
                == 1;
            if !claimed {
                claims.push(None);
                continue;
            }
            sqlx::query(
                "INSERT INTO orchestrator_attempts (run_id, task, try_number, state, start_time, end_time, exit_code, reason, executor_ref, owner) VALUES ($1, $2, $3, 'running', $4, NULL, NULL, '', '', $5)",
            )
            .bind(run.id.as_str())
            .bind(task.task.as_str())
            .bind(i64::from(try_number))
            .bind(now)
            .bind(owner)
            .execute(&mut *transaction)
            .await?;
            insert_event(
                &mut transaction,
                run,
                EventChange::Task(&task.task, try_number, TaskState::Running, ""),
                now,
            )
            .await?;
            claims.push(Some(try_number));
        }
        transaction.commit().await?;
        Ok(claims)
    }

    /// Records where an attempt runs (`pid 42`, a Job's name).
    pub async fn attempt_started(
        &self,
        run_id: &str,
        task: &str,
        try_number: u32,
        executor_ref: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE orchestrator_attempts SET executor_ref = $4 WHERE run_id = $1 AND task = $2 AND try_number = $3",
        )
        .bind(run_id)
        .bind(task)
        .bind(i64::from(try_number))
        .bind(executor_ref)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how an attempt ended, if `owner` still holds the task at that attempt (a replica that lost
    /// its claim records nothing). Answers whether it was recorded.
    pub async fn finish_attempt(
        &self,
        run: &RunRecord,
        task: &str,
        try_number: u32,
        owner: &str,
        end: &AttemptEnd,
        now: i64,
    ) -> Result<bool> {
        let mut transaction =
            plinth_runtime::database::begin_write(&self.pool, self.backend).await?;
        let lost = end.task_state == TaskState::Queued;
        let recorded = sqlx::query(
            "UPDATE orchestrator_tasks SET state = $5, next_attempt_time = $6, reason = $7, owner = NULL, lease_until = NULL, lost_count = lost_count + $8 WHERE run_id = $1 AND task = $2 AND try_number = $3 AND owner = $4 AND state = 'running'",
        )
        .bind(run.id.as_str())
        .bind(task)
        .bind(i64::from(try_number))
        .bind(owner)
        .bind(end.task_state.as_str())
        .bind(end.next_attempt_time)
        .bind(end.reason.as_str())
        .bind(i64::from(lost))
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if !recorded {
            transaction.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE orchestrator_attempts SET state = $4, end_time = $5, exit_code = $6, reason = $7 WHERE run_id = $1 AND task = $2 AND try_number = $3",
        )
        .bind(run.id.as_str())
        .bind(task)
        .bind(i64::from(try_number))
        .bind(end.attempt_state.as_str())
        .bind(now)
        .bind(end.exit_code.map(i64::from))
        .bind(end.reason.as_str())
        .execute(&mut *transaction)
        .await?;
        insert_event(
            &mut transaction,
            run,
            EventChange::Task(task, try_number, end.task_state, &end.reason),
            now,
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Renews `owner`'s leases on its running tasks.
    pub async fn renew_leases(&self, owner: &str, lease_until: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE orchestrator_tasks SET lease_until = $2 WHERE owner = $1 AND state = 'running'",
        )
        .bind(owner)
        .bind(lease_until)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Running tasks whose lease expired before `now` (their replica stopped or lost the database).
    pub async fn expired_tasks(&self, now: i64) -> Result<Vec<TaskRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM orchestrator_tasks WHERE state = 'running' AND lease_until < $1"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_task).collect()
    }

    /// Takes over a running task whose lease expired (compare-and-set on the old owner and lease).
    pub async fn take_over(
        &self,
        task: &TaskRecord,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE orchestrator_tasks SET owner = $3, lease_until = $4 WHERE run_id = $1 AND task = $2 AND state = 'running' AND try_number = $5 AND lease_until < $6",
        )
        .bind(task.run_id.as_str())
        .bind(task.task.as_str())
        .bind(owner)
        .bind(lease_until)
        .bind(i64::from(task.try_number))
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// The executor reference of an attempt.
    pub async fn executor_ref(
        &self,
        run_id: &str,
        task: &str,
        try_number: u32,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT executor_ref FROM orchestrator_attempts WHERE run_id = $1 AND task = $2 AND try_number = $3",
        )
        .bind(run_id)
        .bind(task)
        .bind(i64::from(try_number))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.try_get::<String, _>(0))
            .transpose()
            .map_err(StoreError::from)
    }

    // ----- events -----

    /// Events after `after` (exclusive), oldest first, at most `limit`.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM orchestrator_events WHERE sequence > $1 ORDER BY sequence LIMIT {limit}"
        ))
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_event).collect()
    }

    /// The newest event's sequence (0 when there is none).
    pub async fn last_sequence(&self) -> Result<i64> {
        let row = sqlx::query("SELECT MAX(sequence) FROM orchestrator_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0))
    }

    /// Events not yet published, oldest first.
    pub async fn unpublished_events(&self, limit: u32) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM orchestrator_events WHERE published = 0 ORDER BY sequence LIMIT {limit}"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_event).collect()
    }

    /// Marks events published.
    pub async fn mark_published(&self, sequences: &[i64]) -> Result<()> {
        if sequences.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = sequences.iter().map(i64::to_string).collect();
        sqlx::query(&format!(
            "UPDATE orchestrator_events SET published = 1 WHERE sequence IN ({})",
            list.join(", ")
        ))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

async fn insert_run(
    transaction: &mut Transaction<'_, Any>,
    run: &NewRun,
    now: i64,
) -> Result<Option<RunRecord>> {
    let params = serde_json::to_string(&run.params)
        .map_err(|err| corrupt(format!("run {}", run.id), err))?;
    let conflict = match (&run.schedule_key, &run.request_key) {
        (None, None) => "",
        _ => " ON CONFLICT DO NOTHING",
    };
    let inserted = sqlx::query(&format!(
        "INSERT INTO orchestrator_runs (id, pipeline, pipeline_version, state, run_trigger, triggered_by, logical_date, interval_start, interval_end, params, schedule_key, request_key, create_time, start_time, end_time, reason) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, ''){conflict}"
    ))
    .bind(run.id.as_str())
    .bind(run.pipeline.as_str())
    .bind(run.pipeline_version)
    .bind(run.trigger.as_str())
    .bind(run.triggered_by.as_str())
    .bind(run.logical_date)
    .bind(run.interval.0)
    .bind(run.interval.1)
    .bind(params.as_str())
    .bind(run.schedule_key.as_deref())
    .bind(run.request_key.as_deref())
    .bind(now)
    .execute(&mut **transaction)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(None);
    }
    for (task, uses) in &run.tasks {
        sqlx::query(
            "INSERT INTO orchestrator_tasks (run_id, task, uses, state, try_number, next_attempt_time, reason, owner, lease_until, lost_count) VALUES ($1, $2, $3, 'pending', 0, NULL, '', NULL, NULL, 0)",
        )
        .bind(run.id.as_str())
        .bind(task.as_str())
        .bind(uses.as_str())
        .execute(&mut **transaction)
        .await?;
    }
    let record = RunRecord {
        id: run.id.clone(),
        pipeline: run.pipeline.clone(),
        pipeline_version: run.pipeline_version,
        state: RunState::Queued,
        trigger: run.trigger,
        triggered_by: run.triggered_by.clone(),
        logical_date: run.logical_date,
        interval_start: run.interval.0,
        interval_end: run.interval.1,
        params: run.params.clone(),
        create_time: now,
        start_time: None,
        end_time: None,
        reason: String::new(),
    };
    insert_event(
        transaction,
        &record,
        EventChange::Run(RunState::Queued, ""),
        now,
    )
    .await?;
    Ok(Some(record))
}

enum EventChange<'a> {
    Run(RunState, &'a str),
    Task(&'a str, u32, TaskState, &'a str),
}

async fn insert_event(
    transaction: &mut Transaction<'_, Any>,
    run: &RunRecord,
    change: EventChange<'_>,
    now: i64,
) -> Result<()> {
    let (task, try_number, run_state, task_state, reason) = match change {
        EventChange::Run(state, reason) => ("", 0, state.as_str(), "", reason),
        EventChange::Task(task, try_number, state, reason) => {
            (task, try_number, "", state.as_str(), reason)
        }
    };
    sqlx::query(
        "INSERT INTO orchestrator_events (event_time, pipeline, pipeline_version, run_id, task, try_number, run_state, task_state, reason, published) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)",
    )
    .bind(now)
    .bind(run.pipeline.as_str())
    .bind(run.pipeline_version)
    .bind(run.id.as_str())
    .bind(task)
    .bind(i64::from(try_number))
    .bind(run_state)
    .bind(task_state)
    .bind(reason)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

fn read_pipeline(row: &AnyRow) -> Result<StoredPipeline> {
    let spec: String = row.try_get(1)?;
    let pipeline: Pipeline = serde_json::from_str(&spec).map_err(|err| corrupt("pipeline", err))?;
    let paused: i64 = row.try_get(3)?;
    Ok(StoredPipeline {
        version: row.try_get(0)?,
        pipeline,
        yaml: row.try_get(2)?,
        paused: paused != 0,
        next_tick: row.try_get(4)?,
        update_time: row.try_get(5)?,
    })
}

fn read_run(row: &AnyRow) -> Result<RunRecord> {
    let id: String = row.try_get(0)?;
    let what = || format!("run {id}");
    let state: String = row.try_get(3)?;
    let trigger: String = row.try_get(4)?;
    let params: String = row.try_get(9)?;
    Ok(RunRecord {
        pipeline: row.try_get(1)?,
        pipeline_version: row.try_get(2)?,
        state: state.parse().map_err(|err| corrupt(what(), err))?,
        trigger: if trigger == "schedule" {
            RunTrigger::Schedule
        } else {
            RunTrigger::Manual
        },
        triggered_by: row.try_get(5)?,
        logical_date: row.try_get(6)?,
        interval_start: row.try_get(7)?,
        interval_end: row.try_get(8)?,
        params: serde_json::from_str(&params).map_err(|err| corrupt(what(), err))?,
        create_time: row.try_get(10)?,
        start_time: row.try_get(11)?,
        end_time: row.try_get(12)?,
        reason: row.try_get(13)?,
        id,
    })
}

fn read_task(row: &AnyRow) -> Result<TaskRecord> {
    let state: String = row.try_get(3)?;
    let run_id: String = row.try_get(0)?;
    Ok(TaskRecord {
        task: row.try_get(1)?,
        uses: row.try_get(2)?,
        state: state
            .parse()
            .map_err(|err| corrupt(format!("task of run {run_id}"), err))?,
        try_number: to_u32(row.try_get(4)?),
        next_attempt_time: row.try_get(5)?,
        reason: row.try_get(6)?,
        owner: row.try_get(7)?,
        lease_until: row.try_get(8)?,
        lost_count: to_u32(row.try_get(9)?),
        run_id,
    })
}

fn read_event(row: &AnyRow) -> Result<EventRecord> {
    let run_state: String = row.try_get(7)?;
    let task_state: String = row.try_get(8)?;
    let sequence: i64 = row.try_get(0)?;
    let what = || format!("event {sequence}");
    Ok(EventRecord {
        sequence,
        time: row.try_get(1)?,
        pipeline: row.try_get(2)?,
        pipeline_version: row.try_get(3)?,
        run_id: row.try_get(4)?,
        task: row.try_get(5)?,
        try_number: to_u32(row.try_get(6)?),
        run_state: if run_state.is_empty() {
            None
        } else {
            Some(run_state.parse().map_err(|err| corrupt(what(), err))?)
        },
        task_state: if task_state.is_empty() {
            None
        } else {
            Some(task_state.parse().map_err(|err| corrupt(what(), err))?)
        },
        reason: row.try_get(9)?,
    })
}

#[cfg(test)]
mod tests;
