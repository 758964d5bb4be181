-- The orchestrator's tables, created at start with IF NOT EXISTS (portable SQLite/PostgreSQL SQL, no
-- migrator, `orchestrator_` prefix so it can share a database with other services). Times are
-- microseconds since the epoch. `{{SEQUENCE}}` is the backend's auto-increment primary key.

-- The current version of each applied pipeline, its schedule position and pause flag.
CREATE TABLE IF NOT EXISTS orchestrator_pipelines (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    owner TEXT NOT NULL,
    spec TEXT NOT NULL,
    yaml TEXT NOT NULL,
    paused BIGINT NOT NULL,
    next_tick BIGINT,
    update_time BIGINT NOT NULL,
    lock_counter BIGINT NOT NULL
);

-- Every version ever applied: runs keep the version they started with.
CREATE TABLE IF NOT EXISTS orchestrator_pipeline_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    spec TEXT NOT NULL,
    yaml TEXT NOT NULL,
    apply_time BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Runs. `schedule_key` (pipeline@tick) makes a scheduled tick produce one run whatever the number of
-- replicas; `request_key` (pipeline/request id) makes an on-demand trigger idempotent.
CREATE TABLE IF NOT EXISTS orchestrator_runs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    pipeline_version BIGINT NOT NULL,
    state TEXT NOT NULL,
    run_trigger TEXT NOT NULL,
    triggered_by TEXT NOT NULL,
    logical_date BIGINT NOT NULL,
    interval_start BIGINT NOT NULL,
    interval_end BIGINT NOT NULL,
    params TEXT NOT NULL,
    schedule_key TEXT UNIQUE,
    request_key TEXT UNIQUE,
    create_time BIGINT NOT NULL,
    start_time BIGINT,
    end_time BIGINT,
    reason TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS orchestrator_runs_by_state ON orchestrator_runs (state);

CREATE INDEX IF NOT EXISTS orchestrator_runs_by_pipeline ON orchestrator_runs (pipeline, create_time);

-- One row per task of a run. A running task is owned by one replica (`owner`) that renews `lease_until`;
-- every transition is a compare-and-set on the state, so two replicas never start the same attempt.
CREATE TABLE IF NOT EXISTS orchestrator_tasks (
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    uses TEXT NOT NULL,
    state TEXT NOT NULL,
    try_number BIGINT NOT NULL,
    next_attempt_time BIGINT,
    reason TEXT NOT NULL,
    owner TEXT,
    lease_until BIGINT,
    lost_count BIGINT NOT NULL,
    PRIMARY KEY (run_id, task)
);

CREATE INDEX IF NOT EXISTS orchestrator_tasks_by_state ON orchestrator_tasks (state);

-- One row per attempt.
CREATE TABLE IF NOT EXISTS orchestrator_attempts (
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    try_number BIGINT NOT NULL,
    state TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    exit_code BIGINT,
    reason TEXT NOT NULL,
    executor_ref TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (run_id, task, try_number)
);

-- Every run and task state change, written in the transaction that makes it (an outbox): streamed to
-- clients and published to Kafka, then marked published.
CREATE TABLE IF NOT EXISTS orchestrator_events (
    sequence {{SEQUENCE}},
    event_time BIGINT NOT NULL,
    pipeline TEXT NOT NULL,
    pipeline_version BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    try_number BIGINT NOT NULL,
    run_state TEXT NOT NULL,
    task_state TEXT NOT NULL,
    reason TEXT NOT NULL,
    published BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS orchestrator_events_unpublished ON orchestrator_events (published, sequence);
