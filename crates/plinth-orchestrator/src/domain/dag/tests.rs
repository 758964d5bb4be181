use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::domain::pipeline::{CommandLine, Resources, RetryPolicy, TaskKind};

fn task(name: &str, dependencies: &[&str], trigger_rule: TriggerRule) -> Task {
    Task {
        name: name.to_owned(),
        kind: TaskKind::Command {
            command: CommandLine::Shell("true".to_owned()),
            image: None,
            working_dir: None,
        },
        dependencies: dependencies.iter().map(|name| (*name).to_owned()).collect(),
        trigger_rule,
        retry: RetryPolicy::default(),
        execution_timeout: None,
        resources: Resources::default(),
        env: BTreeMap::new(),
        secrets: Vec::new(),
    }
}

fn pipeline(tasks: Vec<Task>) -> Pipeline {
    Pipeline {
        name: "p".to_owned(),
        owner: String::new(),
        description: String::new(),
        tags: BTreeMap::new(),
        schedule: None,
        catchup: false,
        start_date_micros: None,
        max_active_runs: 16,
        max_active_tasks: 16,
        params: Vec::new(),
        tasks,
    }
}

fn states(pairs: &[(&str, TaskState)]) -> BTreeMap<String, TaskState> {
    pairs
        .iter()
        .map(|(name, state)| ((*name).to_owned(), *state))
        .collect()
}

/// `name:state` for each decision, for compact assertions.
fn decided(pipeline: &Pipeline, states: &BTreeMap<String, TaskState>) -> Vec<String> {
    next_decisions(pipeline, states)
        .iter()
        .map(|decision| format!("{}:{}", decision.task(), decision.state()))
        .collect()
}

/// extract -> train -> deploy, with cleanup (all_done) and alert (one_failed) after train.
fn training() -> Pipeline {
    pipeline(vec![
        task("extract", &[], TriggerRule::AllSuccess),
        task("train", &["extract"], TriggerRule::AllSuccess),
        task("deploy", &["train"], TriggerRule::AllSuccess),
        task("cleanup", &["train"], TriggerRule::AllDone),
        task("alert", &["train"], TriggerRule::OneFailed),
    ])
}

#[test]
fn roots_are_queued_first_and_dependents_wait() {
    let pipeline = training();
    assert_eq!(decided(&pipeline, &BTreeMap::new()), ["extract:queued"]);
    let running = states(&[("extract", TaskState::Running)]);
    assert!(decided(&pipeline, &running).is_empty());
    let done = states(&[("extract", TaskState::Succeeded)]);
    assert_eq!(decided(&pipeline, &done), ["train:queued"]);
    // Up for retry is not done: dependents keep waiting.
    let retrying = states(&[
        ("extract", TaskState::Succeeded),
        ("train", TaskState::UpForRetry),
    ]);
    assert!(decided(&pipeline, &retrying).is_empty());
}

#[test]
fn success_queues_all_success_and_all_done_and_skips_one_failed() {
    let pipeline = training();
    let trained = states(&[
        ("extract", TaskState::Succeeded),
        ("train", TaskState::Succeeded),
    ]);
    assert_eq!(
        decided(&pipeline, &trained),
        ["deploy:queued", "cleanup:queued", "alert:skipped"]
    );
    let decisions = next_decisions(&pipeline, &trained);
    let Decision::Skip { reason, .. } = &decisions[2] else {
        panic!("{decisions:?}");
    };
    assert_eq!(
        reason,
        "no dependency failed, and it runs only when one fails"
    );
}

#[test]
fn a_failure_cascades_upstream_failed_and_triggers_one_failed_and_all_done() {
    let pipeline = training();
    let failed = states(&[("extract", TaskState::Failed)]);
    assert_eq!(
        decided(&pipeline, &failed),
        [
            "train:upstream_failed",
            "deploy:upstream_failed",
            "cleanup:queued",
            "alert:queued"
        ]
    );
    let decisions = next_decisions(&pipeline, &failed);
    assert_eq!(
        decisions[0],
        Decision::UpstreamFailed {
            task: "train".to_owned(),
            reason: "dependency `extract` failed".to_owned()
        }
    );
}

#[test]
fn one_failed_runs_as_soon_as_one_dependency_fails() {
    let pipeline = pipeline(vec![
        task("a", &[], TriggerRule::AllSuccess),
        task("b", &[], TriggerRule::AllSuccess),
        task("alert", &["a", "b"], TriggerRule::OneFailed),
        task("wait", &["a", "b"], TriggerRule::AllSuccess),
    ]);
    let one_failed = states(&[("a", TaskState::Failed), ("b", TaskState::Running)]);
    assert_eq!(
        decided(&pipeline, &one_failed),
        ["alert:queued", "wait:upstream_failed"]
    );
    let lonely = self::pipeline(vec![task("alone", &[], TriggerRule::OneFailed)]);
    assert_eq!(decided(&lonely, &BTreeMap::new()), ["alone:skipped"]);
}

#[test]
fn a_skipped_dependency_skips_all_success_but_not_all_done() {
    let pipeline = pipeline(vec![
        task("a", &[], TriggerRule::OneFailed),
        task("b", &["a"], TriggerRule::AllSuccess),
        task("c", &["b"], TriggerRule::AllSuccess),
        task("d", &["b"], TriggerRule::AllDone),
    ]);
    assert_eq!(
        decided(&pipeline, &BTreeMap::new()),
        ["a:skipped", "b:skipped", "c:skipped", "d:queued"]
    );
    let cancelled = states(&[("a", TaskState::Cancelled)]);
    let decisions = next_decisions(&pipeline, &cancelled);
    assert_eq!(
        decisions[0],
        Decision::Skip {
            task: "b".to_owned(),
            reason: "dependency `a` was cancelled, and it runs only when all succeed".to_owned()
        }
    );
}

#[test]
fn only_pending_tasks_are_decided() {
    let pipeline = training();
    let queued = states(&[("extract", TaskState::Queued)]);
    assert!(decided(&pipeline, &queued).is_empty());
}

#[test]
fn the_run_ends_when_every_task_is_done_and_fails_if_any_task_failed() {
    let pipeline = training();
    assert_eq!(run_outcome(&pipeline, &BTreeMap::new()), None);
    let all = |state: TaskState| {
        pipeline
            .tasks
            .iter()
            .map(|task| (task.name.clone(), state))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        run_outcome(&pipeline, &all(TaskState::Succeeded)),
        Some(RunState::Succeeded)
    );
    // A cleanup that succeeds after a failure does not make the run green.
    let mut failed = all(TaskState::UpstreamFailed);
    failed.insert("extract".to_owned(), TaskState::Failed);
    failed.insert("cleanup".to_owned(), TaskState::Succeeded);
    failed.insert("alert".to_owned(), TaskState::Succeeded);
    assert_eq!(run_outcome(&pipeline, &failed), Some(RunState::Failed));
    let mut skipped = all(TaskState::Succeeded);
    skipped.insert("alert".to_owned(), TaskState::Skipped);
    assert_eq!(run_outcome(&pipeline, &skipped), Some(RunState::Succeeded));
    let mut cancelled = all(TaskState::Succeeded);
    cancelled.insert("deploy".to_owned(), TaskState::Cancelled);
    assert_eq!(
        run_outcome(&pipeline, &cancelled),
        Some(RunState::Cancelled)
    );
    let mut running = all(TaskState::Succeeded);
    running.insert("deploy".to_owned(), TaskState::Running);
    assert_eq!(run_outcome(&pipeline, &running), None);
}

const RULES: [TriggerRule; 3] = [
    TriggerRule::AllSuccess,
    TriggerRule::AllDone,
    TriggerRule::OneFailed,
];

/// A random DAG: each task depends on a few earlier ones.
fn random_pipeline(rng: &mut StdRng) -> Pipeline {
    let size = rng.random_range(1..25);
    let names: Vec<String> = (0..size).map(|index| format!("t{index}")).collect();
    let tasks = (0..size)
        .map(|index| {
            let mut dependencies = BTreeSet::new();
            if index > 0 {
                for _ in 0..rng.random_range(0..4) {
                    dependencies.insert(names[rng.random_range(0..index)].as_str());
                }
            }
            let dependencies: Vec<&str> = dependencies.into_iter().collect();
            let rule = RULES[rng.random_range(0..RULES.len())];
            task(&names[index], &dependencies, rule)
        })
        .collect();
    pipeline(tasks)
}

/// Checks every decision against its rule, given the states the decisions were made from plus
/// the skips and upstream failures decided in the same call.
fn check_decisions(
    pipeline: &Pipeline,
    before: &BTreeMap<String, TaskState>,
    decisions: &[Decision],
) {
    let state_of = |states: &BTreeMap<String, TaskState>, name: &str| {
        states.get(name).copied().unwrap_or(TaskState::Pending)
    };
    let mut after = before.clone();
    let mut seen = BTreeSet::new();
    for decision in decisions {
        assert!(seen.insert(decision.task()), "decided twice: {decisions:?}");
        assert_eq!(state_of(before, decision.task()), TaskState::Pending);
        after.insert(decision.task().to_owned(), decision.state());
    }
    for decision in decisions {
        let task = pipeline.task(decision.task()).unwrap();
        let dependency_states: Vec<TaskState> = task
            .dependencies
            .iter()
            .map(|dependency| state_of(&after, dependency))
            .collect();
        let any_failed = dependency_states.iter().any(|state| state.is_failure());
        let all_done = dependency_states.iter().all(|state| state.is_terminal());
        match (task.trigger_rule, decision) {
            (TriggerRule::AllSuccess, Decision::Queue(_)) => {
                // Never queued unless every dependency succeeded before this call.
                assert!(
                    task.dependencies
                        .iter()
                        .all(|dependency| state_of(before, dependency) == TaskState::Succeeded)
                );
            }
            (TriggerRule::AllSuccess, Decision::UpstreamFailed { .. }) => assert!(any_failed),
            (TriggerRule::AllSuccess, Decision::Skip { .. }) => {
                assert!(all_done && !any_failed);
                assert!(
                    dependency_states
                        .iter()
                        .any(|state| *state != TaskState::Succeeded)
                );
            }
            (TriggerRule::AllDone, Decision::Queue(_)) => assert!(all_done),
            (TriggerRule::OneFailed, Decision::Queue(_)) => assert!(any_failed),
            (TriggerRule::OneFailed, Decision::Skip { .. }) => assert!(all_done && !any_failed),
            (rule, decision) => panic!("{rule:?} cannot give {decision:?}"),
        }
    }
    // Nothing is left to decide once the decisions are applied.
    assert!(
        next_decisions(pipeline, &after).is_empty(),
        "not a fixed point"
    );
}

#[test]
fn random_runs_keep_the_trigger_rules_and_always_finish() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..500 {
        let pipeline = random_pipeline(&mut rng);
        let mut states: BTreeMap<String, TaskState> = BTreeMap::new();
        let mut ran: BTreeSet<String> = BTreeSet::new();
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds <= 2 * pipeline.tasks.len() + 2, "the run never ends");
            let decisions = next_decisions(&pipeline, &states);
            check_decisions(&pipeline, &states, &decisions);
            for decision in &decisions {
                states.insert(decision.task().to_owned(), decision.state());
            }
            // Some queued tasks finish, each succeeding or failing at random.
            let queued: Vec<String> = states
                .iter()
                .filter(|(_, state)| **state == TaskState::Queued)
                .map(|(name, _)| name.clone())
                .collect();
            if queued.is_empty() {
                break;
            }
            // At least one finishes per round, so the run progresses.
            let first = queued[0].clone();
            for name in queued {
                if name == first || rng.random_bool(0.7) {
                    let outcome = if rng.random_bool(0.75) {
                        TaskState::Succeeded
                    } else {
                        TaskState::Failed
                    };
                    ran.insert(name.clone());
                    states.insert(name, outcome);
                }
            }
        }
        // Every task ended, and the outcome follows from the task states.
        let outcome = run_outcome(&pipeline, &states).expect("every task is done");
        let any_failed = states.values().any(|state| state.is_failure());
        assert_eq!(outcome == RunState::Failed, any_failed);
        assert_eq!(states.len(), pipeline.tasks.len());
        // A task ran only when its rule allowed it.
        for name in &ran {
            let task = pipeline.task(name).unwrap();
            if task.trigger_rule == TriggerRule::AllSuccess {
                assert!(
                    task.dependencies
                        .iter()
                        .all(|dependency| states[dependency] == TaskState::Succeeded)
                );
            }
        }
    }
}
