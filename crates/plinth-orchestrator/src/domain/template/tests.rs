use std::time::Duration;

use serde_json::json;

use super::*;
use crate::domain::pipeline::{Param, Resources, RetryPolicy, TriggerRule};

fn context() -> RunContext {
    RunContext {
        pipeline: "train-churn".to_owned(),
        run_id: "r20260105020000".to_owned(),
        task: None,
        // 2026-01-05T02:00:00Z
        logical_date_micros: 1_767_578_400_000_000,
        data_interval_start_micros: 1_766_973_600_000_000,
        data_interval_end_micros: 1_767_578_400_000_000,
        params: BTreeMap::from([
            ("epochs".to_owned(), ParamValue::Integer(10)),
            ("alpha".to_owned(), ParamValue::Number(0.5)),
            ("full".to_owned(), ParamValue::Boolean(true)),
            ("version".to_owned(), ParamValue::String("v1".to_owned())),
        ]),
    }
}

fn task(kind: TaskKind) -> Task {
    Task {
        name: "train".to_owned(),
        kind,
        dependencies: Vec::new(),
        trigger_rule: TriggerRule::AllSuccess,
        retry: RetryPolicy::default(),
        execution_timeout: Some(Duration::from_secs(60)),
        resources: Resources::default(),
        env: BTreeMap::from([("RUN".to_owned(), "{{ run_id }}".to_owned())]),
        secrets: Vec::new(),
    }
}

fn param(name: &str, param_type: ParamType, default: Option<ParamValue>) -> Param {
    Param {
        name: name.to_owned(),
        param_type,
        default,
        description: String::new(),
    }
}

fn pipeline(params: Vec<Param>) -> Pipeline {
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
        params,
        tasks: Vec::new(),
    }
}

#[test]
fn variables_and_params_render() {
    let context = context();
    for (text, expected) in [
        ("{{ds}}", "2026-01-05"),
        ("out_{{ ds_nodash }}", "out_20260105"),
        ("{{ logical_date }}", "2026-01-05T02:00:00Z"),
        (
            "{{ data_interval_start }}..{{ data_interval_end }}",
            "2025-12-29T02:00:00Z..2026-01-05T02:00:00Z",
        ),
        ("{{ run_id }}/{{ pipeline }}", "r20260105020000/train-churn"),
        (
            "--epochs {{ params.epochs }} --alpha {{params.alpha}} --full={{ params.full }} {{ params.version }}",
            "--epochs 10 --alpha 0.5 --full=true v1",
        ),
        ("no templates at all } {", "no templates at all } {"),
        ("{{ '{{' }} literal {{ \"}}\" }}", "{{ literal }}"),
    ] {
        assert_eq!(render(text, &context).unwrap(), expected, "{text}");
    }
}

#[test]
fn bad_templates_say_what_to_write() {
    let context = context();
    let error = render("{{ dss }}", &context).unwrap_err();
    assert_eq!(error.field, "");
    assert!(
        error
            .message
            .contains("unknown template variable `dss`; did you mean `ds`?"),
        "{error}"
    );
    let error = render("{{ params.epoch }}", &context).unwrap_err();
    assert!(
        error.message.contains("undeclared parameter `epoch`"),
        "{error}"
    );
    assert!(
        error.message.contains("did you mean `params.epochs`?"),
        "{error}"
    );
    let error = render("a {{ ds", &context).unwrap_err();
    assert!(error.message.contains("has no closing `}}`"), "{error}");
    assert!(error.message.contains("{{ '{{' }}"), "{error}");
    let error = render("{{ }}", &context).unwrap_err();
    assert!(error.message.contains("names nothing"), "{error}");
    let error = render("{{ task }}", &context).unwrap_err();
    assert!(
        error.message.contains("only known inside a task"),
        "{error}"
    );
}

#[test]
fn check_accepts_declared_params_only() {
    assert_eq!(check("{{ params.a }} {{ ds }} {{ task }}", &["a"]), Ok(()));
    let message = check("x {{ params.b }}", &["a"]).unwrap_err();
    assert!(
        message.contains("`{{ params.b }}` uses the undeclared parameter `b`"),
        "{message}"
    );
    assert!(message.contains("declared: a"), "{message}");
    let message = check("{{ params.b }}", &[]).unwrap_err();
    assert!(
        message.contains("the pipeline declares no parameters"),
        "{message}"
    );
    let message = check("{{ logical_dat }}", &[]).unwrap_err();
    assert!(
        message.contains("did you mean `logical_date`?"),
        "{message}"
    );
}

#[test]
fn render_task_renders_every_field_and_names_the_bad_one() {
    let train = task(TaskKind::Train {
        command: CommandLine::Argv(vec![
            "python".to_owned(),
            "--epochs={{ params.epochs }}".to_owned(),
            "--task={{ task }}".to_owned(),
        ]),
        image: None,
        working_dir: Some("/projects/{{ params.version }}".to_owned()),
        training_set: "churn_{{ ds_nodash }}".to_owned(),
        model: "churn".to_owned(),
        version: Some("{{ params.version }}".to_owned()),
    });
    let rendered = render_task(&train, &context()).unwrap();
    let TaskKind::Train {
        command,
        working_dir,
        training_set,
        version,
        ..
    } = &rendered.kind
    else {
        panic!("{rendered:?}");
    };
    assert_eq!(
        command,
        &CommandLine::Argv(vec![
            "python".to_owned(),
            "--epochs=10".to_owned(),
            "--task=train".to_owned()
        ])
    );
    assert_eq!(training_set, "churn_20260105");
    assert_eq!(working_dir.as_deref(), Some("/projects/v1"));
    assert_eq!(version.as_deref(), Some("v1"));
    assert_eq!(rendered.env["RUN"], "r20260105020000");
    assert_eq!(rendered.execution_timeout, train.execution_timeout);

    let bad = task(TaskKind::BatchScore {
        model: "m".to_owned(),
        version: None,
        input: "in".to_owned(),
        output: "out".to_owned(),
        columns: vec!["a".to_owned(), "{{ params.nope }}".to_owned()],
    });
    let error = render_task(&bad, &context()).unwrap_err();
    assert_eq!(error.field, "with.columns[1]");
    assert!(
        error.to_string().starts_with("`with.columns[1]`: "),
        "{error}"
    );
    assert_eq!(
        check_task(&bad, &["epochs"]),
        vec![(
            "with.columns[1]".to_owned(),
            check("{{ params.nope }}", &["epochs"]).unwrap_err()
        )]
    );
}

#[test]
fn params_resolve_from_defaults_and_typed_overrides() {
    let pipeline = pipeline(vec![
        param("epochs", ParamType::Integer, Some(ParamValue::Integer(10))),
        param("alpha", ParamType::Number, Some(ParamValue::Number(0.5))),
        param("full", ParamType::Boolean, Some(ParamValue::Boolean(false))),
        param("dataset", ParamType::String, None),
    ]);
    let overrides = BTreeMap::from([
        ("epochs".to_owned(), json!("20")),
        ("alpha".to_owned(), json!(1)),
        ("dataset".to_owned(), json!("d1")),
    ]);
    let values = resolve_params(&pipeline, &overrides).unwrap();
    assert_eq!(values["epochs"], ParamValue::Integer(20));
    assert_eq!(values["alpha"], ParamValue::Number(1.0));
    assert_eq!(values["full"], ParamValue::Boolean(false));
    assert_eq!(values["dataset"], ParamValue::String("d1".to_owned()));

    let overrides = BTreeMap::from([
        ("epoch".to_owned(), json!(3)),
        ("full".to_owned(), json!("yes")),
        ("alpha".to_owned(), json!([1])),
    ]);
    let errors = resolve_params(&pipeline, &overrides).unwrap_err();
    let none = resolve_params(
        &self::pipeline(Vec::new()),
        &BTreeMap::from([("x".to_owned(), json!(1))]),
    );
    assert!(none.unwrap_err()[0].contains("pipeline `p` declares no parameters"));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].contains("unknown parameter `epoch`; did you mean `epochs`?"));
    assert!(errors[0].contains("declared parameters: epochs, alpha, full, dataset"));
    assert!(errors[1].contains("parameter `alpha` is a number, and `[1]` is not"));
    assert!(
        errors[2]
            .contains("parameter `full` is a boolean, and `\"yes\"` is not; give true or false")
    );
    assert!(errors[3].contains("parameter `dataset` (string) has no default"));
}

#[test]
fn param_values_convert_by_type() {
    assert_eq!(
        param_value(ParamType::String, &json!(3)),
        Ok(ParamValue::String("3".to_owned()))
    );
    assert_eq!(
        param_value(ParamType::Integer, &json!(2.5)),
        Err("a whole number such as 10")
    );
    assert_eq!(
        param_value(ParamType::Number, &json!("NaN")),
        Err("a number such as 0.5")
    );
    assert_eq!(
        param_value(ParamType::Boolean, &json!("true")),
        Ok(ParamValue::Boolean(true))
    );
    assert_eq!(param_value(ParamType::String, &json!(null)), Err("text"));
    assert_eq!(param_text(&ParamValue::Number(2.0)), "2");
}
