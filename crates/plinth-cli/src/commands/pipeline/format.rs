//! How `plinth pipeline` prints: validation errors as `file:line:column: message`, pipelines, runs and
//! tasks as aligned tables, and everything as JSON with `--output json`. Pure functions of the answers
//! (and of `now`, for the age of what is still running), so that tests pin the output.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use plinth_proto::orchestrator::v1 as pb;
use prost_types::Timestamp;
use serde_json::{Value as Json, json};

use super::params;
use crate::commands::format_timestamp;
use crate::output::{dash, table};

/// The current time, for the durations of what is still running.
pub(crate) fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}

/// A run state as users read it (`succeeded`).
pub(crate) fn run_state_name(state: pb::RunState) -> &'static str {
    match state {
        pb::RunState::Queued => "queued",
        pb::RunState::Running => "running",
        pb::RunState::Succeeded => "succeeded",
        pb::RunState::Failed => "failed",
        pb::RunState::Cancelled => "cancelled",
        pb::RunState::Unspecified => "unknown",
    }
}

/// Whether a run has ended.
pub(crate) fn run_is_terminal(state: pb::RunState) -> bool {
    matches!(
        state,
        pb::RunState::Succeeded | pb::RunState::Failed | pb::RunState::Cancelled
    )
}

/// A task state as the pipeline docs spell it (`up_for_retry`).
pub(crate) fn task_state_name(state: pb::TaskState) -> &'static str {
    match state {
        pb::TaskState::Pending => "pending",
        pb::TaskState::Queued => "queued",
        pb::TaskState::Running => "running",
        pb::TaskState::Succeeded => "succeeded",
        pb::TaskState::Failed => "failed",
        pb::TaskState::UpForRetry => "up_for_retry",
        pb::TaskState::Skipped => "skipped",
        pb::TaskState::UpstreamFailed => "upstream_failed",
        pb::TaskState::Cancelled => "cancelled",
        pb::TaskState::Unspecified => "unknown",
    }
}

fn trigger_name(trigger: pb::RunTrigger) -> &'static str {
    match trigger {
        pb::RunTrigger::Schedule => "schedule",
        pb::RunTrigger::Manual => "manual",
        pb::RunTrigger::Unspecified => "unknown",
    }
}

fn outcome_name(outcome: pb::ApplyOutcome) -> &'static str {
    match outcome {
        pb::ApplyOutcome::Created => "created",
        pb::ApplyOutcome::Updated => "updated",
        pb::ApplyOutcome::Unchanged => "unchanged",
        pb::ApplyOutcome::Unspecified => "unknown",
    }
}

fn time_json(time: Option<&Timestamp>) -> Json {
    json!(format_timestamp(time))
}

fn time_text(time: Option<&Timestamp>) -> String {
    format_timestamp(time).unwrap_or_else(|| "-".to_owned())
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// The time from `start` to `end` (or to `now` when `end` is unset) in a short human form: `350ms`,
/// `4.2s`, `1m05s`, `2h03m`, `3d04h`; `-` without a start.
pub(crate) fn duration_text(
    start: Option<&Timestamp>,
    end: Option<&Timestamp>,
    now: &Timestamp,
) -> String {
    let Some(start) = start else {
        return "-".to_owned();
    };
    let end = end.unwrap_or(now);
    let millis = (end.seconds - start.seconds)
        .saturating_mul(1000)
        .saturating_add(i64::from(end.nanos - start.nanos) / 1_000_000)
        .max(0);
    human_millis(millis)
}

fn human_millis(millis: i64) -> String {
    const SECOND: i64 = 1000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    match millis {
        millis if millis < SECOND => format!("{millis}ms"),
        millis if millis < 10 * SECOND => {
            format!("{}.{}s", millis / SECOND, millis % SECOND / 100)
        }
        millis if millis < MINUTE => format!("{}s", millis / SECOND),
        millis if millis < HOUR => format!("{}m{:02}s", millis / MINUTE, millis % MINUTE / SECOND),
        millis if millis < DAY => format!("{}h{:02}m", millis / HOUR, millis % HOUR / MINUTE),
        millis => format!("{}d{:02}h", millis / DAY, millis % DAY / HOUR),
    }
}

/// One validation error as compilers print them: `path:line:column: message`.
pub(crate) fn error_line(error: &pb::PipelineFileError) -> String {
    match (error.line, error.column) {
        (0, _) => format!("{}: {}", error.path, error.message),
        (line, 0) => format!("{}:{line}: {}", error.path, error.message),
        (line, column) => format!("{}:{line}:{column}: {}", error.path, error.message),
    }
}

/// The schedule as users read it: the cron with its time zone, or `on demand`.
fn schedule_text(schedule: &str) -> String {
    if schedule.is_empty() {
        "on demand".to_owned()
    } else {
        schedule.to_owned()
    }
}

/// A ValidatePipelines answer: each error on its line and a count, or each valid pipeline.
pub(crate) fn validation_text(answer: &pb::ValidatePipelinesResponse) -> String {
    if !answer.errors.is_empty() {
        let files: BTreeSet<&str> = answer
            .errors
            .iter()
            .map(|error| error.path.as_str())
            .collect();
        let mut lines: Vec<String> = answer.errors.iter().map(error_line).collect();
        lines.push(format!(
            "{} {} in {} {}",
            answer.errors.len(),
            plural(answer.errors.len(), "error", "errors"),
            files.len(),
            plural(files.len(), "file", "files")
        ));
        return lines.join("\n");
    }
    let mut lines: Vec<String> = answer
        .pipelines
        .iter()
        .map(|pipeline| {
            format!(
                "ok  {}: {} {}, {}",
                pipeline.name,
                pipeline.tasks.len(),
                plural(pipeline.tasks.len(), "task", "tasks"),
                schedule_text(&pipeline.schedule)
            )
        })
        .collect();
    lines.push(format!(
        "{} {} valid",
        answer.pipelines.len(),
        plural(answer.pipelines.len(), "pipeline", "pipelines")
    ));
    lines.join("\n")
}

/// A ValidatePipelines answer as JSON: `valid`, the pipelines read, and every error.
pub(crate) fn validation_json(answer: &pb::ValidatePipelinesResponse) -> Json {
    json!({
        "valid": answer.errors.is_empty(),
        "pipelines": answer.pipelines.iter().map(|pipeline| json!({
            "name": pipeline.name,
            "owner": pipeline.owner,
            "description": pipeline.description,
            "schedule": pipeline.schedule,
            "tasks": pipeline.tasks,
        })).collect::<Vec<_>>(),
        "errors": answer.errors.iter().map(|error| json!({
            "path": error.path,
            "line": error.line,
            "column": error.column,
            "message": error.message,
        })).collect::<Vec<_>>(),
    })
}

/// What ApplyPipelines did: a line per pipeline and a count of each outcome.
pub(crate) fn applied_text(applied: &[pb::AppliedPipeline]) -> String {
    let rows: Vec<Vec<String>> = applied
        .iter()
        .map(|pipeline| {
            vec![
                outcome_name(pipeline.outcome()).to_owned(),
                pipeline.name.clone(),
                format!("version {}", pipeline.version),
            ]
        })
        .collect();
    let count = |outcome| {
        applied
            .iter()
            .filter(|pipeline| pipeline.outcome() == outcome)
            .count()
    };
    let mut text = String::new();
    for line in table(&["", "", ""], &rows).lines().skip(1) {
        let _ = writeln!(text, "{line}");
    }
    let _ = write!(
        text,
        "applied {} {}: {} created, {} updated, {} unchanged",
        applied.len(),
        plural(applied.len(), "pipeline", "pipelines"),
        count(pb::ApplyOutcome::Created),
        count(pb::ApplyOutcome::Updated),
        count(pb::ApplyOutcome::Unchanged)
    );
    text
}

/// What ApplyPipelines did, as JSON.
pub(crate) fn applied_json(applied: &[pb::AppliedPipeline]) -> Json {
    json!(
        applied
            .iter()
            .map(|pipeline| json!({
                "name": pipeline.name,
                "version": pipeline.version,
                "outcome": outcome_name(pipeline.outcome()),
            }))
            .collect::<Vec<_>>()
    )
}

/// A pipeline as JSON (without its YAML).
pub(crate) fn pipeline_json(pipeline: &pb::Pipeline) -> Json {
    json!({
        "name": pipeline.name,
        "version": pipeline.version,
        "owner": pipeline.owner,
        "description": pipeline.description,
        "schedule": pipeline.schedule,
        "paused": pipeline.paused,
        "next_run_time": time_json(pipeline.next_run_time.as_ref()),
        "update_time": time_json(pipeline.update_time.as_ref()),
        "tasks": pipeline.tasks,
        "latest_run": pipeline.latest_run.as_ref().map(run_json),
    })
}

/// When the next scheduled run starts: a time, `never (paused)` or `none (on demand only)`.
pub(crate) fn next_run_text(pipeline: &pb::Pipeline) -> String {
    match (&pipeline.next_run_time, pipeline.paused) {
        (Some(time), _) => time_text(Some(time)),
        (None, true) => "never (paused)".to_owned(),
        (None, false) if pipeline.schedule.is_empty() => "none (on demand only)".to_owned(),
        (None, false) => "-".to_owned(),
    }
}

fn latest_run_text(run: Option<&pb::Run>) -> String {
    match run {
        None => "-".to_owned(),
        Some(run) => format!(
            "{} {}",
            run_state_name(run.state()),
            time_text(run.logical_date.as_ref())
        ),
    }
}

/// The pipelines as a table.
pub(crate) fn pipelines_text(pipelines: &[pb::Pipeline]) -> String {
    if pipelines.is_empty() {
        return "no pipelines applied yet: plinth pipeline apply pipelines/".to_owned();
    }
    let rows: Vec<Vec<String>> = pipelines
        .iter()
        .map(|pipeline| {
            let mut schedule = schedule_text(&pipeline.schedule);
            if pipeline.paused {
                schedule.push_str(" (paused)");
            }
            vec![
                pipeline.name.clone(),
                pipeline.version.to_string(),
                schedule,
                next_run_text(pipeline),
                latest_run_text(pipeline.latest_run.as_ref()),
                dash(&pipeline.owner),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "VERSION",
            "SCHEDULE",
            "NEXT RUN",
            "LATEST RUN",
            "OWNER",
        ],
        &rows,
    )
}

/// One pipeline in full: its fields, its tasks and the YAML of its current version.
pub(crate) fn pipeline_text(pipeline: &pb::Pipeline) -> String {
    let mut schedule = schedule_text(&pipeline.schedule);
    if pipeline.paused {
        schedule.push_str(" (paused)");
    }
    let lines = [
        format!("pipeline {} (version {})", pipeline.name, pipeline.version),
        format!("owner:        {}", dash(&pipeline.owner)),
        format!("description:  {}", dash(&pipeline.description)),
        format!("schedule:     {schedule}"),
        format!("next run:     {}", next_run_text(pipeline)),
        format!(
            "latest run:   {}",
            latest_run_text(pipeline.latest_run.as_ref())
        ),
        format!("applied:      {}", time_text(pipeline.update_time.as_ref())),
        format!("tasks:        {}", dash(&pipeline.tasks.join(", "))),
        "---".to_owned(),
        pipeline.yaml.trim_end().to_owned(),
    ];
    lines.join("\n")
}

/// A run as JSON, with its tasks and their attempts when the answer has them.
pub(crate) fn run_json(run: &pb::Run) -> Json {
    json!({
        "id": run.id,
        "pipeline": run.pipeline,
        "pipeline_version": run.pipeline_version,
        "state": run_state_name(run.state()),
        "trigger": trigger_name(run.trigger()),
        "triggered_by": run.triggered_by,
        "logical_date": time_json(run.logical_date.as_ref()),
        "params": run.params.as_ref().map_or_else(|| json!({}), params::struct_json),
        "create_time": time_json(run.create_time.as_ref()),
        "start_time": time_json(run.start_time.as_ref()),
        "end_time": time_json(run.end_time.as_ref()),
        "reason": run.reason,
        "tasks": run.tasks.iter().map(task_json).collect::<Vec<_>>(),
    })
}

fn task_json(task: &pb::TaskRun) -> Json {
    json!({
        "name": task.name,
        "uses": task.uses,
        "state": task_state_name(task.state()),
        "try_number": task.try_number,
        "next_attempt_time": time_json(task.next_attempt_time.as_ref()),
        "reason": task.reason,
        "dependencies": task.dependencies,
        "attempts": task.attempts.iter().map(|attempt| json!({
            "try_number": attempt.try_number,
            "state": task_state_name(attempt.state()),
            "start_time": time_json(attempt.start_time.as_ref()),
            "end_time": time_json(attempt.end_time.as_ref()),
            "exit_code": attempt.exit_code,
            "reason": attempt.reason,
            "executor_ref": attempt.executor_ref,
        })).collect::<Vec<_>>(),
    })
}

/// What `run` prints once the run is stored.
pub(crate) fn started_text(run: &pb::Run) -> String {
    format!(
        "started run {id} of {pipeline} (version {version}, logical date {date}, {state})\n\
         follow it:  plinth pipeline status {id}\n\
         task logs:  plinth pipeline logs {id} TASK --follow",
        id = run.id,
        pipeline = run.pipeline,
        version = run.pipeline_version,
        date = time_text(run.logical_date.as_ref()),
        state = run_state_name(run.state()),
    )
}

/// What `cancel` prints.
pub(crate) fn cancelled_text(run: &pb::Run) -> String {
    let state = run.state();
    if state == pb::RunState::Cancelled || !run_is_terminal(state) {
        format!(
            "cancelled run {} of {}: running tasks are being stopped (plinth pipeline status {})",
            run.id, run.pipeline, run.id
        )
    } else {
        format!(
            "run {} of {} had already ended ({}): nothing to cancel",
            run.id,
            run.pipeline,
            run_state_name(state)
        )
    }
}

/// Runs as a table, newest first as the service answers.
pub(crate) fn runs_text(runs: &[pb::Run], now: &Timestamp) -> String {
    if runs.is_empty() {
        return "no runs match".to_owned();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            vec![
                run.id.clone(),
                run.pipeline.clone(),
                run_state_name(run.state()).to_owned(),
                trigger_name(run.trigger()).to_owned(),
                time_text(run.logical_date.as_ref()),
                duration_text(run.start_time.as_ref(), run.end_time.as_ref(), now),
                dash(&run.reason),
            ]
        })
        .collect();
    table(
        &[
            "RUN ID",
            "PIPELINE",
            "STATE",
            "TRIGGER",
            "LOGICAL DATE",
            "DURATION",
            "REASON",
        ],
        &rows,
    )
}

/// A task's reason, with when its next try starts when it waits for one.
fn task_reason(task: &pb::TaskRun) -> String {
    let mut reason = dash(&task.reason);
    if task.state() == pb::TaskState::UpForRetry
        && let Some(next) = format_timestamp(task.next_attempt_time.as_ref())
    {
        let _ = write!(reason, " (next try at {next})");
    }
    reason
}

/// A run and a table of its tasks: state, tries, the last try's duration, and why.
pub(crate) fn status_text(run: &pb::Run, now: &Timestamp) -> String {
    let mut lines = vec![
        format!(
            "run {} of {} (version {}): {}",
            run.id,
            run.pipeline,
            run.pipeline_version,
            run_state_name(run.state())
        ),
        format!(
            "trigger:       {}{}",
            trigger_name(run.trigger()),
            if run.triggered_by.is_empty() {
                String::new()
            } else {
                format!(" by {}", run.triggered_by)
            }
        ),
        format!("logical date:  {}", time_text(run.logical_date.as_ref())),
        format!(
            "started:       {} (duration {})",
            time_text(run.start_time.as_ref()),
            duration_text(run.start_time.as_ref(), run.end_time.as_ref(), now)
        ),
    ];
    if let Some(params) = run
        .params
        .as_ref()
        .filter(|params| !params.fields.is_empty())
    {
        lines.push(format!("params:        {}", params::struct_json(params)));
    }
    if !run.reason.is_empty() {
        lines.push(format!("reason:        {}", run.reason));
    }
    if !run.tasks.is_empty() {
        lines.push(String::new());
        let rows: Vec<Vec<String>> = run
            .tasks
            .iter()
            .map(|task| {
                let last = task.attempts.last();
                vec![
                    task.name.clone(),
                    task_state_name(task.state()).to_owned(),
                    task.try_number.to_string(),
                    duration_text(
                        last.and_then(|attempt| attempt.start_time.as_ref()),
                        last.and_then(|attempt| attempt.end_time.as_ref()),
                        now,
                    ),
                    task_reason(task),
                ]
            })
            .collect();
        lines.push(table(
            &["TASK", "STATE", "TRIES", "DURATION", "REASON"],
            &rows,
        ));
    }
    lines.join("\n")
}

/// One run event as a line of `run --wait`: its time, then the task's or the run's new state.
pub(crate) fn event_text(event: &pb::RunEvent) -> String {
    let mut line = format!("{}  ", time_text(event.time.as_ref()));
    if event.task.is_empty() {
        let _ = write!(line, "run {}", run_state_name(event.run_state()));
    } else {
        let _ = write!(
            line,
            "{} {}",
            event.task,
            task_state_name(event.task_state())
        );
        if event.try_number > 0 {
            let _ = write!(line, " (try {})", event.try_number);
        }
    }
    if !event.reason.is_empty() {
        let _ = write!(line, ": {}", event.reason);
    }
    line
}
