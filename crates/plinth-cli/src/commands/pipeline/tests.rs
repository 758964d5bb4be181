use clap::Parser as _;
use plinth_proto::orchestrator::v1 as pb;
use prost_types::Timestamp;
use serde_json::json;

use super::{PipelineCommand, format, local, params, wait};
use crate::commands::{Cli, Command};

fn parse(line: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(line.split_whitespace())
}

fn pipeline_command(line: &str) -> PipelineCommand {
    match parse(line).unwrap().command {
        Command::Pipeline(args) => args.command,
        other => panic!("{line} parsed as {other:?}"),
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// 2026-01-02T03:04:05Z.
const T0: i64 = 1_767_323_045;

#[test]
fn pipeline_commands_parse_as_documented() {
    for line in [
        "plinth pipeline validate pipelines/train.yaml",
        "plinth pipeline validate a.yaml b.yml pipelines/ -o json",
        "plinth pipeline validate pipelines/ --remote --orchestrator http://orch:7004",
        "plinth pipeline apply pipelines/ --orchestrator https://orchestrator.example:7004",
        "plinth pipeline list",
        "plinth pipeline list --owner ml-team -o json",
        "plinth pipeline describe train-churn",
        "plinth pipeline run train-churn",
        "plinth pipeline run train-churn --param epochs=20 --param model_version=v2 --wait",
        "plinth pipeline run score --logical-date 2026-01-01T00:00:00Z --request-id ci-42",
        "plinth pipeline runs",
        "plinth pipeline runs train-churn --state failed --state cancelled --limit 10",
        "plinth pipeline status 019a6b1e-7c1d-7f00-8000-1234567890ab",
        "plinth pipeline logs 019a6b1e train",
        "plinth pipeline logs 019a6b1e train --try 2 --follow",
        "plinth pipeline logs 019a6b1e train -f",
        "plinth pipeline cancel 019a6b1e --reason wrong-dataset",
        "plinth pipeline pause train-churn",
        "plinth pipeline unpause train-churn",
        "plinth pipeline delete train-churn --cancel-active-runs",
    ] {
        assert!(parse(line).is_ok(), "{line}: {:?}", parse(line).err());
    }
    for line in [
        "plinth pipeline validate",
        "plinth pipeline apply",
        "plinth pipeline run",
        "plinth pipeline run train --param epochs",
        "plinth pipeline run train --param =3",
        "plinth pipeline run train --logical-date yesterday",
        "plinth pipeline runs --state done",
        "plinth pipeline runs --limit 0",
        "plinth pipeline runs --limit 1001",
        "plinth pipeline status",
        "plinth pipeline logs 019a6b1e",
        "plinth pipeline logs 019a6b1e train --try 0",
        "plinth pipeline logs 019a6b1e train --try last",
        "plinth pipeline cancel",
        "plinth pipeline pause",
        "plinth pipeline run train --orchestrator not-a-url",
    ] {
        assert!(parse(line).is_err(), "{line} should be refused");
    }
}

#[test]
fn orchestrator_url_defaults_to_the_local_port_and_is_global() {
    let cli = parse("plinth pipeline list").unwrap();
    let Command::Pipeline(args) = cli.command else {
        panic!("not a pipeline command");
    };
    assert_eq!(args.connect.orchestrator.as_str(), "http://127.0.0.1:7004/");
    // A global flag of the subcommand: accepted before and after the sub-subcommand.
    for line in [
        "plinth pipeline list --orchestrator http://orch:7004",
        "plinth pipeline --orchestrator http://orch:7004 list",
    ] {
        let Command::Pipeline(args) = parse(line).unwrap().command else {
            panic!("not a pipeline command");
        };
        assert_eq!(
            args.connect.orchestrator.as_str(),
            "http://orch:7004/",
            "{line}"
        );
    }
}

#[test]
fn run_arguments_carry_typed_params_and_flags() {
    let PipelineCommand::Run {
        name,
        params,
        logical_date,
        request_id,
        wait,
    } = pipeline_command(
        "plinth pipeline run train-churn --param epochs=20 --param alpha=0.5 --param model_version=v2 --param dry=true --logical-date 2026-01-02T03:04:05Z --request-id ci-7 --wait",
    )
    else {
        panic!("not a run");
    };
    assert_eq!(name, "train-churn");
    assert_eq!(
        params,
        vec![
            ("epochs".to_owned(), json!(20)),
            ("alpha".to_owned(), json!(0.5)),
            ("model_version".to_owned(), json!("v2")),
            ("dry".to_owned(), json!(true)),
        ]
    );
    assert_eq!(logical_date, Some(at(T0)));
    assert_eq!(request_id.as_deref(), Some("ci-7"));
    assert!(wait);

    let PipelineCommand::Logs {
        try_number, follow, ..
    } = pipeline_command("plinth pipeline logs r1 train")
    else {
        panic!("not logs");
    };
    assert_eq!((try_number, follow), (None, false));
}

#[test]
fn param_values_are_json_when_they_parse_and_text_otherwise() {
    fn check(text: &str, name: &str, value: serde_json::Value) {
        assert_eq!(
            params::parse_param(text),
            Ok((name.to_owned(), value)),
            "{text}"
        );
    }
    check("epochs=20", "epochs", json!(20));
    check("alpha=-0.25", "alpha", json!(-0.25));
    check("dry_run=false", "dry_run", json!(false));
    check("note=null", "note", json!(null));
    check("tags=[1,2]", "tags", json!([1, 2]));
    check(r#"cfg={"a":1}"#, "cfg", json!({"a": 1}));
    check(r#"version="20""#, "version", json!("20"));
    check("model_version=v2", "model_version", json!("v2"));
    check("day=2026-01-01", "day", json!("2026-01-01"));
    check("query=a=b", "query", json!("a=b"));
    check("empty=", "empty", json!(""));
    check(" name =v", "name", json!("v"));
    assert!(
        params::parse_param("epochs")
            .unwrap_err()
            .contains("NAME=VALUE")
    );
    assert!(
        params::parse_param("=3")
            .unwrap_err()
            .contains("no parameter name")
    );
}

#[test]
fn params_become_a_struct_and_come_back_unchanged() {
    let given = vec![
        ("epochs".to_owned(), json!(20)),
        ("alpha".to_owned(), json!(0.5)),
        ("name".to_owned(), json!("v2")),
        ("flags".to_owned(), json!([true, null, {"k": [1.5]}])),
    ];
    let proto = params::params_struct(given).unwrap();
    assert_eq!(
        params::struct_json(&proto),
        json!({"epochs": 20, "alpha": 0.5, "name": "v2", "flags": [true, null, {"k": [1.5]}]})
    );
    let twice = params::params_struct(vec![
        ("epochs".to_owned(), json!(1)),
        ("epochs".to_owned(), json!(2)),
    ]);
    assert!(
        twice
            .unwrap_err()
            .to_string()
            .contains("--param epochs is given twice")
    );
    // A double cannot hold 2^53 + 1: refused with the fix rather than rounded.
    let too_big = params::params_struct(vec![("seed".to_owned(), json!(9_007_199_254_740_993u64))]);
    let message = too_big.unwrap_err().to_string();
    assert!(
        message.contains("--param seed") && message.contains("pass it as text"),
        "{message}"
    );
    assert!(
        params::params_struct(vec![("seed".to_owned(), json!(9_007_199_254_740_992u64))]).is_ok()
    );
}

fn file_error(path: &str, line: u32, column: u32, message: &str) -> pb::PipelineFileError {
    pb::PipelineFileError {
        path: path.to_owned(),
        line,
        column,
        message: message.to_owned(),
    }
}

#[test]
fn validation_errors_print_as_file_line_column_message() {
    let answer = pb::ValidatePipelinesResponse {
        pipelines: vec![],
        errors: vec![
            file_error(
                "pipelines/train.yaml",
                12,
                19,
                "unknown dependency `build_set`; did you mean `build_training_set`?",
            ),
            file_error("pipelines/train.yaml", 3, 0, "bad cron"),
            file_error("pipelines/score.yaml", 0, 0, "not valid UTF-8"),
        ],
    };
    assert_eq!(
        format::validation_text(&answer),
        "pipelines/train.yaml:12:19: unknown dependency `build_set`; did you mean `build_training_set`?\n\
         pipelines/train.yaml:3: bad cron\n\
         pipelines/score.yaml: not valid UTF-8\n\
         3 errors in 2 files"
    );
    let body = format::validation_json(&answer);
    assert_eq!(body["valid"], json!(false));
    assert_eq!(body["errors"][0]["line"], json!(12));
    assert_eq!(body["errors"][0]["column"], json!(19));

    let valid = pb::ValidatePipelinesResponse {
        pipelines: vec![
            pb::PipelineSummary {
                name: "train-churn".to_owned(),
                schedule: "0 3 * * 1 Europe/Paris".to_owned(),
                tasks: vec!["a".to_owned(), "b".to_owned()],
                ..Default::default()
            },
            pb::PipelineSummary {
                name: "score".to_owned(),
                tasks: vec!["score".to_owned()],
                ..Default::default()
            },
        ],
        errors: vec![],
    };
    assert_eq!(
        format::validation_text(&valid),
        "ok  train-churn: 2 tasks, 0 3 * * 1 Europe/Paris\n\
         ok  score: 1 task, on demand\n\
         2 pipelines valid"
    );
}

#[test]
fn apply_prints_each_outcome_and_a_count() {
    let applied = [
        ("train-churn", 3, pb::ApplyOutcome::Updated),
        ("score", 1, pb::ApplyOutcome::Created),
        ("report", 7, pb::ApplyOutcome::Unchanged),
    ]
    .map(|(name, version, outcome)| pb::AppliedPipeline {
        name: name.to_owned(),
        version,
        outcome: outcome.into(),
    });
    assert_eq!(
        format::applied_text(&applied),
        "updated    train-churn  version 3\n\
         created    score        version 1\n\
         unchanged  report       version 7\n\
         applied 3 pipelines: 1 created, 1 updated, 1 unchanged"
    );
    assert_eq!(
        format::applied_json(&applied)[0],
        json!({"name": "train-churn", "version": 3, "outcome": "updated"})
    );
}

#[test]
fn durations_are_short_and_human() {
    let now = at(T0);
    let check = |start: Option<Timestamp>, end: Option<Timestamp>, expected: &str| {
        assert_eq!(
            format::duration_text(start.as_ref(), end.as_ref(), &now),
            expected
        );
    };
    check(None, None, "-");
    check(
        Some(at(T0)),
        Some(Timestamp {
            seconds: T0,
            nanos: 350_000_000,
        }),
        "350ms",
    );
    check(
        Some(Timestamp {
            seconds: T0 - 5,
            nanos: 900_000_000,
        }),
        Some(at(T0)),
        "4.1s",
    );
    check(Some(at(T0 - 42)), Some(at(T0)), "42s");
    check(Some(at(T0 - 65)), Some(at(T0)), "1m05s");
    check(Some(at(T0 - 7380)), None, "2h03m");
    check(Some(at(T0 - 3 * 86_400 - 4 * 3600)), None, "3d04h");
    // A clock that went backwards shows zero rather than a negative time.
    check(Some(at(T0 + 10)), Some(at(T0)), "0ms");
}

fn attempt(
    try_number: u32,
    state: pb::TaskState,
    start: i64,
    end: Option<i64>,
    reason: &str,
) -> pb::TaskAttempt {
    pb::TaskAttempt {
        try_number,
        state: state.into(),
        start_time: Some(at(start)),
        end_time: end.map(at),
        exit_code: None,
        reason: reason.to_owned(),
        executor_ref: String::new(),
    }
}

fn task(
    name: &str,
    state: pb::TaskState,
    attempts: Vec<pb::TaskAttempt>,
    reason: &str,
) -> pb::TaskRun {
    pb::TaskRun {
        name: name.to_owned(),
        uses: "command".to_owned(),
        state: state.into(),
        try_number: u32::try_from(attempts.len()).unwrap(),
        next_attempt_time: None,
        reason: reason.to_owned(),
        attempts,
        dependencies: vec![],
    }
}

fn sample_run() -> pb::Run {
    let mut retrying = task(
        "train",
        pb::TaskState::UpForRetry,
        vec![attempt(
            1,
            pb::TaskState::Failed,
            T0 - 100,
            Some(T0 - 40),
            "exit code 3",
        )],
        "exit code 3",
    );
    retrying.next_attempt_time = Some(at(T0 + 30));
    pb::Run {
        id: "019a6b1e-7c1d-7f00-8000-1234567890ab".to_owned(),
        pipeline: "train-churn".to_owned(),
        pipeline_version: 3,
        state: pb::RunState::Running.into(),
        trigger: pb::RunTrigger::Manual.into(),
        logical_date: Some(at(T0 - 200)),
        params: Some(params::params_struct(vec![("epochs".to_owned(), json!(20))]).unwrap()),
        create_time: Some(at(T0 - 200)),
        start_time: Some(at(T0 - 190)),
        end_time: None,
        reason: String::new(),
        tasks: vec![
            task(
                "build_training_set",
                pb::TaskState::Succeeded,
                vec![attempt(
                    1,
                    pb::TaskState::Succeeded,
                    T0 - 190,
                    Some(T0 - 100),
                    "exit code 0",
                )],
                "exit code 0",
            ),
            retrying,
            task("notify_failure", pb::TaskState::Pending, vec![], ""),
        ],
        triggered_by: "alice".to_owned(),
    }
}

#[test]
fn status_shows_the_run_and_a_task_table() {
    assert_eq!(
        format::status_text(&sample_run(), &at(T0)),
        "run 019a6b1e-7c1d-7f00-8000-1234567890ab of train-churn (version 3): running\n\
         trigger:       manual by alice\n\
         logical date:  2026-01-02T03:00:45.000Z\n\
         started:       2026-01-02T03:00:55.000Z (duration 3m10s)\n\
         params:        {\"epochs\":20}\n\
         \n\
         TASK                STATE         TRIES  DURATION  REASON\n\
         build_training_set  succeeded     1      1m30s     exit code 0\n\
         train               up_for_retry  1      1m00s     exit code 3 (next try at 2026-01-02T03:04:35.000Z)\n\
         notify_failure      pending       0      -         -"
    );
    let body = format::run_json(&sample_run());
    assert_eq!(body["state"], json!("running"));
    assert_eq!(body["params"], json!({"epochs": 20}));
    assert_eq!(body["tasks"][1]["state"], json!("up_for_retry"));
    assert_eq!(
        body["tasks"][1]["attempts"][0]["reason"],
        json!("exit code 3")
    );
    assert_eq!(body["end_time"], json!(null));
}

#[test]
fn runs_and_pipelines_list_as_tables() {
    let mut finished = sample_run();
    finished.state = pb::RunState::Failed.into();
    finished.end_time = Some(at(T0 - 10));
    finished.reason = "task train failed".to_owned();
    finished.tasks.clear();
    assert_eq!(
        format::runs_text(&[finished.clone()], &at(T0)),
        "RUN ID                                PIPELINE     STATE   TRIGGER  LOGICAL DATE              DURATION  REASON\n\
         019a6b1e-7c1d-7f00-8000-1234567890ab  train-churn  failed  manual   2026-01-02T03:00:45.000Z  3m00s     task train failed"
    );
    assert_eq!(format::runs_text(&[], &at(T0)), "no runs match");

    let scheduled = pb::Pipeline {
        name: "train-churn".to_owned(),
        version: 3,
        owner: "ml-team".to_owned(),
        schedule: "0 3 * * 1 Europe/Paris".to_owned(),
        next_run_time: Some(at(T0 + 86_400)),
        latest_run: Some(finished),
        ..Default::default()
    };
    let on_demand = pb::Pipeline {
        name: "score".to_owned(),
        version: 1,
        ..Default::default()
    };
    let paused = pb::Pipeline {
        name: "report".to_owned(),
        version: 2,
        schedule: "@daily UTC".to_owned(),
        paused: true,
        ..Default::default()
    };
    assert_eq!(
        format::pipelines_text(&[scheduled, on_demand, paused]),
        "NAME         VERSION  SCHEDULE                NEXT RUN                  LATEST RUN                       OWNER\n\
         train-churn  3        0 3 * * 1 Europe/Paris  2026-01-03T03:04:05.000Z  failed 2026-01-02T03:00:45.000Z  ml-team\n\
         score        1        on demand               none (on demand only)     -                                -\n\
         report       2        @daily UTC (paused)     never (paused)            -                                -"
    );
    assert!(format::pipelines_text(&[]).contains("plinth pipeline apply"));
}

#[test]
fn wait_prints_task_and_run_events() {
    let event = |task: &str,
                 task_state: pb::TaskState,
                 run_state: pb::RunState,
                 try_number,
                 reason: &str| {
        pb::RunEvent {
            sequence: 1,
            time: Some(at(T0)),
            pipeline: "train-churn".to_owned(),
            pipeline_version: 3,
            run_id: "r1".to_owned(),
            task: task.to_owned(),
            try_number,
            run_state: run_state.into(),
            task_state: task_state.into(),
            reason: reason.to_owned(),
        }
    };
    assert_eq!(
        format::event_text(&event(
            "train",
            pb::TaskState::Running,
            pb::RunState::Unspecified,
            2,
            ""
        )),
        "2026-01-02T03:04:05.000Z  train running (try 2)"
    );
    assert_eq!(
        format::event_text(&event(
            "train",
            pb::TaskState::Failed,
            pb::RunState::Unspecified,
            2,
            "timed out after 30m (execution_timeout); the process was stopped"
        )),
        "2026-01-02T03:04:05.000Z  train failed (try 2): timed out after 30m (execution_timeout); the process was stopped"
    );
    assert_eq!(
        format::event_text(&event(
            "",
            pb::TaskState::Unspecified,
            pb::RunState::Failed,
            0,
            "task train failed"
        )),
        "2026-01-02T03:04:05.000Z  run failed: task train failed"
    );
    assert!(format::run_is_terminal(pb::RunState::Cancelled));
    assert!(!format::run_is_terminal(pb::RunState::Queued));
}

#[test]
fn wait_resubscribes_on_connection_errors_only_with_a_bounded_pause() {
    assert!(wait::is_transient(&tonic::Status::unavailable(
        "restarting"
    )));
    assert!(!wait::is_transient(&tonic::Status::not_found("no run r1")));
    assert!(!wait::is_transient(&tonic::Status::permission_denied(
        "read role needed"
    )));
    assert_eq!(wait::backoff(1).as_millis(), 200);
    assert_eq!(wait::backoff(2).as_millis(), 400);
    assert_eq!(wait::backoff(5).as_millis(), 3200);
    assert_eq!(wait::backoff(30).as_millis(), 5000);
}

#[test]
fn cancel_says_whether_anything_was_cancelled() {
    let mut run = sample_run();
    run.state = pb::RunState::Cancelled.into();
    assert!(format::cancelled_text(&run).starts_with("cancelled run 019a6b1e"));
    run.state = pb::RunState::Succeeded.into();
    assert_eq!(
        format::cancelled_text(&run),
        "run 019a6b1e-7c1d-7f00-8000-1234567890ab of train-churn had already ended (succeeded): nothing to cancel"
    );
}

fn pipeline_file(path: &str, content: &str) -> pb::PipelineFile {
    pb::PipelineFile {
        path: path.to_owned(),
        content: content.to_owned(),
    }
}

const TRAIN: &str = r#"name: train-churn
owner: ml-team
schedule: "0 3 * * 1"
timezone: Europe/Paris
params:
  epochs: {type: integer, default: 10}
tasks:
  prepare:
    uses: command
    with: {command: "echo prepare"}
  train:
    uses: command
    dependencies: [prepare]
    with: {command: "python train.py --epochs {{ params.epochs }}"}
"#;

#[test]
fn validation_runs_locally_without_a_server() {
    let valid = local::validate(&[
        pipeline_file("pipelines/train.yaml", TRAIN),
        pipeline_file(
            "pipelines/score.yaml",
            "name: score\ntasks:\n  score:\n    uses: command\n    with: {command: [\"true\"]}\n",
        ),
    ]);
    assert!(valid.errors.is_empty(), "{:?}", valid.errors);
    let names: Vec<&str> = valid.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["train-churn", "score"]);
    assert_eq!(valid.pipelines[0].tasks, ["prepare", "train"]);
    assert!(
        valid.pipelines[0].schedule.starts_with("0 3 * * 1"),
        "{}",
        valid.pipelines[0].schedule
    );
    assert!(valid.pipelines[0].schedule.contains("Europe/Paris"));
    assert_eq!(
        valid.pipelines[1].schedule, "",
        "on demand is empty, as on the wire"
    );
    assert!(format::validation_text(&valid).ends_with("\n2 pipelines valid"));

    // An unknown dependency, on line 13 where `dependencies:` names it.
    let broken = TRAIN.replace("dependencies: [prepare]", "dependencies: [prepair]");
    let invalid = local::validate(&[pipeline_file("pipelines/train.yaml", &broken)]);
    assert!(invalid.pipelines.is_empty());
    assert_eq!(invalid.errors.len(), 1, "{:?}", invalid.errors);
    let text = format::validation_text(&invalid);
    assert!(text.starts_with("pipelines/train.yaml:13:"), "{text}");
    assert!(
        text.contains("prepair") && text.contains("prepare"),
        "{text}"
    );
    assert!(text.ends_with("\n1 error in 1 file"), "{text}");
}
