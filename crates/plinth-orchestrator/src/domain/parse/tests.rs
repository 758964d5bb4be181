use std::time::Duration;

use super::*;
use crate::domain::pipeline::{
    CommandLine, ParamType, ParamValue, Resources, SecretRef, TaskKind, TriggerRule,
};

const FULL: &str = r#"name: train-churn
owner: ml-team
description: Weekly churn model
schedule: "0 3 * * 1"
timezone: Europe/Paris
start_date: 2026-01-01
catchup: false
max_active_runs: 1
tags: {team: growth}
params:
  model_version: {type: string, default: v1, description: "the version"}
  epochs: {type: integer, default: 10}
  alpha: 0.5
  dataset: {type: string}
default_args:
  retries: 2
  retry_delay: 30s
  retry_exponential_backoff: true
  max_retry_delay: 10m
  execution_timeout: 1h
  env: {SHARED: "yes"}
tasks:
  build_training_set:
    uses: training-set
    with:
      feature_service: churn_v1
      entities: churn_labels
      output: churn_train_{{ ds_nodash }}
  train:
    uses: train
    dependencies: [build_training_set]
    with:
      command: python train.py --epochs {{ params.epochs }}
      training_set: churn_train_{{ ds_nodash }}
      model: churn
      version: "{{ params.model_version }}"
    retries: 1
    retry_delay: 1m
    execution_timeout: 2h
    trigger_rule: all_success
    resources: {cpu: "2", memory: 4Gi, cpu_limit: "4", memory_limit: 8Gi, gpu: 1}
    env: {LOG_LEVEL: debug}
    secrets: [{env: DB_PASSWORD, secret: warehouse, key: password}]
  notify_failure:
    uses: command
    trigger_rule: one_failed
    dependencies: [train]
    with: {command: ["echo", "training failed"]}
"#;

fn files(contents: &[(&str, &str)]) -> Vec<PipelineFile> {
    contents
        .iter()
        .map(|(path, content)| PipelineFile {
            path: (*path).to_owned(),
            content: (*content).to_owned(),
        })
        .collect()
}

fn parse_one(content: &str) -> Result<Vec<ParsedPipeline>, Vec<SourceError>> {
    parse(&files(&[("p.yaml", content)]))
}

fn errors(content: &str) -> Vec<String> {
    match parse_one(content) {
        Ok(parsed) => panic!("expected errors, parsed {parsed:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// A pipeline with one command task `a`, and `extra` appended to the top level.
fn minimal(extra: &str) -> String {
    format!("name: p\ntasks:\n  a: {{uses: command, with: {{command: \"true\"}}}}\n{extra}")
}

/// Asserts that `content` gives exactly one error, at `location`, containing every part.
fn check(content: &str, location: &str, parts: &[&str]) {
    let errors = errors(content);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = &errors[0];
    assert!(
        error.starts_with(&format!("{location}: ")),
        "`{error}` is not at {location}"
    );
    for part in parts {
        assert!(error.contains(part), "`{part}` is not in `{error}`");
    }
}

#[test]
fn the_design_example_parses_with_defaults_and_overrides() {
    let parsed = parse_one(FULL).unwrap();
    assert_eq!(parsed.len(), 1);
    let ParsedPipeline {
        pipeline,
        path,
        yaml,
    } = &parsed[0];
    assert_eq!(path, "p.yaml");
    assert_eq!(yaml, FULL);
    assert_eq!(pipeline.name, "train-churn");
    assert_eq!(pipeline.owner, "ml-team");
    let schedule = pipeline.schedule.as_ref().unwrap();
    assert_eq!(
        (schedule.cron.as_str(), schedule.timezone.as_str()),
        ("0 3 * * 1", "Europe/Paris")
    );
    // 2026-01-01 00:00 in Paris is 2025-12-31T23:00:00Z.
    assert_eq!(pipeline.start_date_micros, Some(1_767_222_000_000_000));
    assert_eq!(
        (pipeline.max_active_runs, pipeline.max_active_tasks),
        (1, 16)
    );
    assert_eq!(pipeline.tags["team"], "growth");
    let params: Vec<(&str, ParamType, Option<&ParamValue>)> = pipeline
        .params
        .iter()
        .map(|param| {
            (
                param.name.as_str(),
                param.param_type,
                param.default.as_ref(),
            )
        })
        .collect();
    assert_eq!(
        params,
        [
            (
                "model_version",
                ParamType::String,
                Some(&ParamValue::String("v1".to_owned()))
            ),
            ("epochs", ParamType::Integer, Some(&ParamValue::Integer(10))),
            ("alpha", ParamType::Number, Some(&ParamValue::Number(0.5))),
            ("dataset", ParamType::String, None),
        ]
    );
    assert_eq!(pipeline.params[0].description, "the version");

    let build = pipeline.task("build_training_set").unwrap();
    assert_eq!(
        build.kind,
        TaskKind::TrainingSet {
            feature_service: Some("churn_v1".to_owned()),
            features: Vec::new(),
            entities: "churn_labels".to_owned(),
            event_timestamp_column: None,
            output: "churn_train_{{ ds_nodash }}".to_owned(),
        }
    );
    // default_args apply where the task says nothing.
    assert_eq!(build.retry.retries, 2);
    assert_eq!(build.retry.retry_delay, Duration::from_secs(30));
    assert!(build.retry.retry_exponential_backoff);
    assert_eq!(build.retry.max_retry_delay, Some(Duration::from_secs(600)));
    assert_eq!(build.execution_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(build.env["SHARED"], "yes");

    let train = pipeline.task("train").unwrap();
    assert_eq!(
        train.kind,
        TaskKind::Train {
            command: CommandLine::Shell("python train.py --epochs {{ params.epochs }}".to_owned()),
            image: None,
            working_dir: None,
            training_set: "churn_train_{{ ds_nodash }}".to_owned(),
            model: "churn".to_owned(),
            version: Some("{{ params.model_version }}".to_owned()),
        }
    );
    assert_eq!(train.dependencies, ["build_training_set"]);
    assert_eq!(train.retry.retries, 1);
    assert_eq!(train.retry.retry_delay, Duration::from_secs(60));
    assert!(train.retry.retry_exponential_backoff);
    assert_eq!(train.execution_timeout, Some(Duration::from_secs(7200)));
    assert_eq!(
        train.resources,
        Resources {
            cpu: Some("2".to_owned()),
            memory: Some("4Gi".to_owned()),
            cpu_limit: Some("4".to_owned()),
            memory_limit: Some("8Gi".to_owned()),
            gpu: Some(1),
        }
    );
    assert_eq!(train.env.len(), 2);
    assert_eq!(
        train.secrets,
        [SecretRef {
            env: "DB_PASSWORD".to_owned(),
            secret: "warehouse".to_owned(),
            key: "password".to_owned(),
        }]
    );
    let notify = pipeline.task("notify_failure").unwrap();
    assert_eq!(notify.trigger_rule, TriggerRule::OneFailed);
    assert_eq!(
        notify.kind,
        TaskKind::Command {
            command: CommandLine::Argv(vec!["echo".to_owned(), "training failed".to_owned()]),
            image: None,
            working_dir: None,
        }
    );
    assert_eq!(
        summary(pipeline),
        (
            "0 3 * * 1 (Europe/Paris)".to_owned(),
            vec!["build_training_set", "train", "notify_failure"]
        )
    );
    // The model survives the database's JSON.
    let json = serde_json::to_string(pipeline).unwrap();
    assert_eq!(&serde_json::from_str::<Pipeline>(&json).unwrap(), pipeline);
}

#[test]
fn every_task_type_parses_with_its_defaults() {
    let content = r#"
name: all-types
tasks:
  - name: run
    uses: command
    with: {command: [python, x.py], image: "python:3.12", working_dir: /tmp}
  - name: mat
    uses: materialize
  - name: ts
    uses: training-set
    with: {features: ["v:f"], entities: rows}
  - name: score
    uses: batch-score
    with: {model: churn, version: 3, input: in, output: out, columns: [a, b]}
  - name: deploy
    uses: deploy-model
    with: {model: churn, version: "3"}
"#;
    let parsed = parse_one(content).unwrap();
    let pipeline = &parsed[0].pipeline;
    assert_eq!(pipeline.schedule, None);
    assert_eq!(pipeline.max_active_runs, 16);
    assert_eq!(
        pipeline.task("mat").unwrap().kind,
        TaskKind::Materialize {
            feature_views: Vec::new(),
            feature_service: None,
            incremental: true,
            start: None,
            end: None,
        }
    );
    let TaskKind::TrainingSet { output, .. } = &pipeline.task("ts").unwrap().kind else {
        panic!()
    };
    assert_eq!(output, "{{ pipeline }}_{{ task }}_{{ run_id }}");
    assert_eq!(
        pipeline.task("score").unwrap().kind,
        TaskKind::BatchScore {
            model: "churn".to_owned(),
            version: Some("3".to_owned()),
            input: "in".to_owned(),
            output: "out".to_owned(),
            columns: vec!["a".to_owned(), "b".to_owned()],
        }
    );
    assert_eq!(pipeline.task("run").unwrap().retry.retries, 0);
    assert_eq!(
        pipeline.task("run").unwrap().retry.retry_delay,
        Duration::from_secs(30)
    );
}

#[test]
fn documents_and_files_each_hold_pipelines() {
    let parsed = parse(&files(&[
        (
            "a.yaml",
            &format!(
                "{}---\n{}",
                minimal(""),
                minimal("").replace("name: p", "name: q")
            ),
        ),
        ("b.yaml", &minimal("").replace("name: p", "name: r")),
    ]))
    .unwrap();
    let names: Vec<(&str, &str)> = parsed
        .iter()
        .map(|parsed| (parsed.path.as_str(), parsed.pipeline.name.as_str()))
        .collect();
    assert_eq!(names, [("a.yaml", "p"), ("a.yaml", "q"), ("b.yaml", "r")]);
    assert!(parsed[1].yaml.starts_with("name: q\n"));
    assert!(!parsed[0].yaml.contains("---"));
}

#[test]
fn malformed_yaml_names_the_line() {
    check(
        "name: p\ntasks: [a\n",
        "p.yaml:3:1",
        &["invalid YAML", "fix the syntax"],
    );
    check(
        "- just\n- a list\n",
        "p.yaml:1:1",
        &["A pipeline must be a mapping"],
    );
}

#[test]
fn unknown_keys_name_the_nearest_one() {
    check(
        &minimal("shedule: '@daily'\n"),
        "p.yaml:4:1",
        &[
            "unknown key `shedule` in pipeline `p`",
            "did you mean `schedule`?",
        ],
    );
    check(
        "name: p\ntasks:\n  a:\n    uses: command\n    with: {command: x}\n    depends_on: [b]\n",
        "p.yaml:6:5",
        &[
            "unknown key `depends_on` in task `a`",
            "valid keys are name, uses, with, dependencies",
        ],
    );
    check(
        "name: p\ntasks:\n  a:\n    uses: train\n    with: {command: x, training_set: t, model: m, modle: n}\n",
        "p.yaml:5:51",
        &[
            "unknown key `modle` in the `with` of task `a` (uses: train)",
            "did you mean `model`?",
            "valid keys are command, image, working_dir, training_set, model, version",
        ],
    );
}

#[test]
fn missing_required_fields_show_an_example() {
    check(
        "tasks:\n  a: {uses: command, with: {command: x}}\n",
        "p.yaml:1:1",
        &[
            "a pipeline is missing the required field `name`",
            "add `name: my-pipeline`",
        ],
    );
    check(
        "name: p\n",
        "p.yaml:1:1",
        &["pipeline `p` is missing the required field `tasks`"],
    );
    check(
        "name: p\ntasks:\n  a: {with: {command: x}}\n",
        "p.yaml:3:6",
        &[
            "task `a` is missing the required field `uses`",
            "add `uses: command`",
        ],
    );
    check(
        "name: p\ntasks:\n  a:\n    uses: batch-score\n    with: {model: m, input: i}\n",
        "p.yaml:5:11",
        &["is missing the required field `output`"],
    );
    // Without `with:`, every missing field is reported at `uses:`.
    let missing = errors("name: p\ntasks:\n  a:\n    uses: deploy-model\n");
    assert_eq!(missing.len(), 2, "{missing:#?}");
    assert!(missing[0].starts_with(
        "p.yaml:4:11: the `with` of task `a` (uses: deploy-model) is missing the required field `model`"
    ));
    assert!(missing[1].contains("missing the required field `version`"));
    check(
        "name: p\ntasks: {}\n",
        "p.yaml:2:8",
        &["pipeline `p` has no tasks"],
    );
}

#[test]
fn unknown_task_types_list_the_valid_ones() {
    check(
        "name: p\ntasks:\n  a: {uses: trian, with: {}}\n",
        "p.yaml:3:13",
        &[
            "unknown task type `uses: trian` in task `a`",
            "did you mean `train`?",
            "command, materialize, training-set, train, batch-score, deploy-model",
        ],
    );
}

#[test]
fn dependencies_must_exist_differ_from_the_task_and_not_repeat() {
    check(
        &format!(
            "{}  b: {{uses: command, with: {{command: x}}, dependencies: [aa]}}\n",
            minimal("")
        ),
        "p.yaml:4:57",
        &[
            "task `b` depends on unknown task `aa`",
            "did you mean `a`?",
            "the tasks of pipeline `p` are a, b",
        ],
    );
    check(
        &format!(
            "{}  b: {{uses: command, with: {{command: x}}, dependencies: [b]}}\n",
            minimal("")
        ),
        "p.yaml:4:57",
        &["task `b` depends on itself; remove `b` from its dependencies"],
    );
    check(
        &format!(
            "{}  b: {{uses: command, with: {{command: x}}, dependencies: [a, a]}}\n",
            minimal("")
        ),
        "p.yaml:4:60",
        &["lists `a` twice"],
    );
}

#[test]
fn a_cycle_is_spelled_out_once() {
    let content = "\
name: p
tasks:
  a: {uses: command, with: {command: x}, dependencies: [c]}
  b: {uses: command, with: {command: x}, dependencies: [a]}
  c: {uses: command, with: {command: x}, dependencies: [b]}
  d: {uses: command, with: {command: x}, dependencies: [c]}
  e: {uses: command, with: {command: x}, dependencies: [f]}
  f: {uses: command, with: {command: x}, dependencies: [e]}
";
    let errors = errors(content);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("p.yaml:3:57: the dependencies of pipeline `p` form a cycle: a -> c -> b -> a (each depends on the next)"),
        "{errors:#?}"
    );
    assert!(errors[1].contains("e -> f -> e"), "{errors:#?}");
}

#[test]
fn duplicate_names_name_the_first_place() {
    check(
        "name: p\ntasks:\n  - {name: a, uses: command, with: {command: x}}\n  - {name: a, uses: command, with: {command: y}}\n",
        "p.yaml:4:12",
        &["task `a` is declared twice in pipeline `p`, first at p.yaml:3:12"],
    );
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}}\n  a: {uses: command, with: {command: y}}\n",
        "p.yaml:3:3",
        &["key `a` appears more than once"],
    );
    let errors = parse(&files(&[
        ("a.yaml", &minimal("")),
        ("b.yaml", &minimal("")),
    ]))
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "b.yaml:1:7: pipeline `p` is declared twice, first at a.yaml:1:7; pipeline names are unique across files, so rename one"
    );
}

#[test]
fn bad_schedules_and_time_zones_say_what_is_valid() {
    check(
        &minimal("schedule: '0 3 * *'\n"),
        "p.yaml:4:11",
        &[
            "the schedule of pipeline `p`",
            "has 4 fields, not 5",
            "@hourly",
        ],
    );
    check(
        &minimal("schedule: '@daily'\ntimezone: Europe/Pari\n"),
        "p.yaml:5:11",
        &[
            "the timezone of pipeline `p`",
            "did you mean `Europe/Paris`?",
        ],
    );
    check(
        &minimal("schedule: '@once'\n"),
        "p.yaml:4:11",
        &["remove `schedule`"],
    );
    let parsed = parse_one(&minimal("schedule: null\n")).unwrap();
    assert_eq!(parsed[0].pipeline.schedule, None);
    assert_eq!(schedule_text(&parsed[0].pipeline), "on demand");
}

#[test]
fn start_dates_are_dates_or_times() {
    for (text, micros) in [
        ("2026-01-01", 1_767_225_600_000_000),
        ("2026-01-01T01:00:00", 1_767_229_200_000_000),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600_000_000),
    ] {
        let parsed = parse_one(&minimal(&format!("start_date: '{text}'\n"))).unwrap();
        assert_eq!(parsed[0].pipeline.start_date_micros, Some(micros), "{text}");
    }
    check(
        &minimal("start_date: yesterday\n"),
        "p.yaml:4:13",
        &[
            "the start_date of pipeline `p` `yesterday` is not a date or time",
            "2026-01-01",
        ],
    );
    check(
        &minimal("timezone: Europe/Paris\nstart_date: 2026-03-29T02:30:00\n"),
        "p.yaml:5:13",
        &["does not exist in Europe/Paris"],
    );
}

#[test]
fn bad_durations_and_counts_are_refused_with_the_fix() {
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}, retry_delay: 30}\n",
        "p.yaml:3:55",
        &["`retry_delay` of task `a` `30` has no unit", "30s"],
    );
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}, execution_timeout: 1x}\n",
        "p.yaml:3:61",
        &["is not a duration", "`1x` has `x`"],
    );
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}, retries: -1}\n",
        "p.yaml:3:51",
        &["`retries` of task `a` is -1; write 0 for no retry"],
    );
    check(
        &minimal("max_active_runs: 0\n"),
        "p.yaml:4:18",
        &["`max_active_runs` of pipeline `p` is 0", "write 1 or more"],
    );
    check(
        &minimal("default_args: {retries: many}\n"),
        "p.yaml:4:25",
        &["`retries` of the default_args of pipeline `p` must be a whole number"],
    );
}

#[test]
fn params_must_have_a_type_and_a_default_of_that_type() {
    check(
        &minimal("params:\n  epochs: {type: integer, default: ten}\n"),
        "p.yaml:5:36",
        &[
            "the default of parameter `epochs` of pipeline `p` (type integer) must be a whole number such as 10, not text",
        ],
    );
    check(
        &minimal("params:\n  name: {type: string, default: 5}\n"),
        "p.yaml:5:33",
        &["quote it"],
    );
    check(
        &minimal("params:\n  x: {type: float}\n"),
        "p.yaml:5:13",
        &[
            "the type of parameter `x` of pipeline `p` is `float`",
            "use one of string, integer, number, boolean",
        ],
    );
    check(
        &minimal("params:\n  x:\n"),
        "p.yaml:5:4",
        &["has neither a type nor a default"],
    );
    check(
        &minimal("params:\n  my-param: 1\n"),
        "p.yaml:5:3",
        &["parameter name `my-param` of pipeline `p` is not valid"],
    );
    let parsed = parse_one(&minimal("params:\n  rate: {default: 2}\n  on: true\n")).unwrap();
    let params = &parsed[0].pipeline.params;
    assert_eq!(params[0].param_type, ParamType::Integer);
    assert_eq!(params[1].default, Some(ParamValue::Boolean(true)));
}

#[test]
fn templates_are_checked_at_the_line_of_the_string() {
    check(
        "name: p\nparams: {epochs: 10}\ntasks:\n  a:\n    uses: command\n    with:\n      command: run {{ params.epoch }}\n",
        "p.yaml:7:16",
        &[
            "`command` in the `with` of task `a` (uses: command)",
            "undeclared parameter `epoch`",
            "did you mean `params.epochs`?",
        ],
    );
    check(
        "name: p\ntasks:\n  a:\n    uses: command\n    with:\n      command: |\n        set -e\n        echo {{ dss }}\n",
        "p.yaml:8:1",
        &["unknown template variable `dss`", "did you mean `ds`?"],
    );
    check(
        "name: p\ntasks:\n  a:\n    uses: command\n    with: {command: x}\n    env: {WHEN: \"{{ logical_dat }}\"}\n",
        "p.yaml:6:17",
        &["`env.WHEN` of task `a`", "did you mean `logical_date`?"],
    );
    check(
        "name: p\ntasks:\n  a:\n    uses: deploy-model\n    with: {model: m, version: {{ params.v }}}\n",
        "p.yaml:5:31",
        &["must be quoted"],
    );
}

#[test]
fn names_must_be_lower_case_words() {
    check(
        &minimal("").replace("name: p", "name: Train Churn"),
        "p.yaml:1:7",
        &[
            "pipeline name `Train Churn` is not valid",
            "such as `train-churn`",
        ],
    );
    check(
        "name: p\ntasks:\n  Build: {uses: command, with: {command: x}}\n",
        "p.yaml:3:3",
        &["task name `Build` is not valid", "such as `build`"],
    );
    check(
        &minimal("").replace("name: p", &format!("name: {}", "a".repeat(101))),
        "p.yaml:1:7",
        &["at most 100 characters"],
    );
}

#[test]
fn empty_commands_are_refused() {
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: ''}}\n",
        "p.yaml:3:38",
        &["`command` in the `with` of task `a` (uses: command) is empty"],
    );
    check(
        "name: p\ntasks:\n  a: {uses: train, with: {command: [], training_set: t, model: m}}\n",
        "p.yaml:3:36",
        &["is empty; write what to run"],
    );
}

#[test]
fn other_task_mistakes_are_explained() {
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}, trigger_rule: all_sucess}\n",
        "p.yaml:3:56",
        &[
            "did you mean `all_success`?",
            "all_success, all_done, one_failed",
        ],
    );
    check(
        "name: p\ntasks:\n  a: {uses: training-set, with: {entities: e}}\n",
        "p.yaml:3:33",
        &["names no features"],
    );
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}, secrets: [{env: A, secret: s}]}\n",
        "p.yaml:3:52",
        &["a secret of task `a` is missing the required field `key`"],
    );
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}, env: {1X: y}}\n",
        "p.yaml:3:48",
        &["environment variable name `1X`"],
    );
    check(
        "name: p\ntasks:\n  a: {uses: command, with: {command: x}, execution_timeout: 0}\n",
        "p.yaml:3:61",
        &["remove it for no timeout"],
    );
}

#[test]
fn every_mistake_is_reported_in_one_pass() {
    let content = "\
name: Bad Name
schedule: '99 * * * *'
max_active_runs: 0
params: {epochs: 10}
tasks:
  a:
    uses: nope
  b:
    uses: command
    with: {command: 'echo {{ params.epohcs }}'}
    dependencies: [a, zz]
    retries: -2
";
    let errors = errors(content);
    let lines: Vec<usize> = errors
        .iter()
        .map(|error| error.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lines, [1, 2, 3, 7, 10, 11, 12], "{errors:#?}");
}

#[test]
fn topological_order_puts_dependencies_first_and_keeps_file_order() {
    let content = "\
name: p
tasks:
  report: {uses: command, with: {command: x}, dependencies: [train, score]}
  score: {uses: command, with: {command: x}, dependencies: [train]}
  extract: {uses: command, with: {command: x}}
  train: {uses: command, with: {command: x}, dependencies: [extract]}
  lint: {uses: command, with: {command: x}}
";
    let parsed = parse_one(content).unwrap();
    assert_eq!(
        topological_order(&parsed[0].pipeline),
        ["extract", "train", "score", "report", "lint"]
    );
}

#[test]
fn default_args_may_carry_the_owner_and_start_date_as_airflow_users_write_them() {
    let parsed = parse_one(&minimal(
        "default_args: {owner: data, start_date: 2026-02-01, retries: 3}\n",
    ))
    .unwrap();
    let pipeline = &parsed[0].pipeline;
    assert_eq!(pipeline.owner, "data");
    assert_eq!(pipeline.start_date_micros, Some(1_769_904_000_000_000));
    assert_eq!(pipeline.tasks[0].retry.retries, 3);
}
