//! Which tasks of a run move next, from the states of their direct dependencies and their trigger
//! rules, and when the run is over.
//!
//! - `all_success` (the default): queued when every dependency succeeded; upstream-failed as soon as
//!   one failed (or is upstream-failed); skipped when all are done, none failed, and some were skipped
//!   or cancelled.
//! - `all_done`: queued when every dependency is done, whatever the outcome.
//! - `one_failed`: queued as soon as one dependency failed; skipped when all are done and none
//!   failed.
//!
//! A run is over when every task is done. Unlike Airflow, which looks at leaf tasks only, the outcome
//! looks at every task, so a cleanup task with `all_done` or `one_failed` never turns a failed run
//! green.

use std::collections::BTreeMap;

use crate::domain::pipeline::{Pipeline, Task, TriggerRule};
use crate::domain::state::{RunState, TaskState};

/// What happens to a pending task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its trigger rule is met: queue it.
    Queue(String),
    /// Its trigger rule can no longer be met, and nothing failed: skip it.
    Skip {
        /// The task.
        task: String,
        /// Why, for users (`dependency \`a\` was skipped`).
        reason: String,
    },
    /// A dependency failed and it needs them all to succeed.
    UpstreamFailed {
        /// The task.
        task: String,
        /// Why, for users (`dependency \`a\` failed`).
        reason: String,
    },
}

impl Decision {
    /// The task decided on.
    pub fn task(&self) -> &str {
        match self {
            Decision::Queue(task)
            | Decision::Skip { task, .. }
            | Decision::UpstreamFailed { task, .. } => task,
        }
    }

    /// The task's state once the decision is applied.
    pub fn state(&self) -> TaskState {
        match self {
            Decision::Queue(_) => TaskState::Queued,
            Decision::Skip { .. } => TaskState::Skipped,
            Decision::UpstreamFailed { .. } => TaskState::UpstreamFailed,
        }
    }
}

/// The decisions for the run's pending tasks (a task missing from `states` is pending), in file
/// order. Skips and upstream failures cascade within one call: a task whose dependency is decided
/// skipped or upstream-failed here is decided too, so applying the result leaves nothing to decide
/// until a queued task ends.
pub fn next_decisions(pipeline: &Pipeline, states: &BTreeMap<String, TaskState>) -> Vec<Decision> {
    let mut current: BTreeMap<&str, TaskState> = pipeline
        .tasks
        .iter()
        .map(|task| {
            let state = states
                .get(&task.name)
                .copied()
                .unwrap_or(TaskState::Pending);
            (task.name.as_str(), state)
        })
        .collect();
    let mut decisions = Vec::new();
    loop {
        let mut changed = false;
        for task in &pipeline.tasks {
            if current.get(task.name.as_str()) != Some(&TaskState::Pending) {
                continue;
            }
            if let Some(decision) = decide(task, &current) {
                current.insert(task.name.as_str(), decision.state());
                // Only a task that is now done can change what its dependents get.
                changed |= decision.state().is_terminal();
                decisions.push(decision);
            }
        }
        if !changed {
            break;
        }
    }
    decisions
}

/// The decision for one pending task, or `None` while it must wait.
fn decide(task: &Task, states: &BTreeMap<&str, TaskState>) -> Option<Decision> {
    let dependencies: Vec<(&str, TaskState)> = task
        .dependencies
        .iter()
        .map(|name| {
            let state = states
                .get(name.as_str())
                .copied()
                .unwrap_or(TaskState::Pending);
            (name.as_str(), state)
        })
        .collect();
    let failed = dependencies.iter().find(|(_, state)| state.is_failure());
    let all_done = dependencies.iter().all(|(_, state)| state.is_terminal());
    let name = task.name.clone();
    match task.trigger_rule {
        TriggerRule::AllSuccess => {
            if let Some((dependency, state)) = failed {
                return Some(Decision::UpstreamFailed {
                    task: name,
                    reason: format!("dependency `{dependency}` {}", outcome(*state)),
                });
            }
            if !all_done {
                return None;
            }
            match dependencies
                .iter()
                .find(|(_, state)| *state != TaskState::Succeeded)
            {
                None => Some(Decision::Queue(name)),
                Some((dependency, state)) => Some(Decision::Skip {
                    task: name,
                    reason: format!(
                        "dependency `{dependency}` {}, and it runs only when all succeed",
                        outcome(*state)
                    ),
                }),
            }
        }
        TriggerRule::AllDone => all_done.then_some(Decision::Queue(name)),
        TriggerRule::OneFailed => {
            if failed.is_some() {
                return Some(Decision::Queue(name));
            }
            all_done.then(|| Decision::Skip {
                task: name,
                reason: if dependencies.is_empty() {
                    "it runs only when a dependency fails, and it has none".to_owned()
                } else {
                    "no dependency failed, and it runs only when one fails".to_owned()
                },
            })
        }
    }
}

/// How a finished dependency ended, for reasons.
fn outcome(state: TaskState) -> &'static str {
    match state {
        TaskState::Failed => "failed",
        TaskState::UpstreamFailed => "did not run because its own dependency failed",
        TaskState::Skipped => "was skipped",
        TaskState::Cancelled => "was cancelled",
        TaskState::Succeeded => "succeeded",
        TaskState::Pending | TaskState::Queued | TaskState::Running | TaskState::UpForRetry => {
            "is not done"
        }
    }
}

/// The run's outcome once every task is done (a task missing from `states` is pending): failed if
/// any task failed or is upstream-failed, else cancelled if any was cancelled, else succeeded.
/// `None` while a task may still run.
pub fn run_outcome(pipeline: &Pipeline, states: &BTreeMap<String, TaskState>) -> Option<RunState> {
    let task_states: Vec<TaskState> = pipeline
        .tasks
        .iter()
        .map(|task| {
            states
                .get(&task.name)
                .copied()
                .unwrap_or(TaskState::Pending)
        })
        .collect();
    if !task_states.iter().all(|state| state.is_terminal()) {
        return None;
    }
    if task_states.iter().any(|state| state.is_failure()) {
        Some(RunState::Failed)
    } else if task_states.contains(&TaskState::Cancelled) {
        Some(RunState::Cancelled)
    } else {
        Some(RunState::Succeeded)
    }
}

#[cfg(test)]
mod tests;
