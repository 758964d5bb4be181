use chrono::TimeZone as _;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 42, 7).unwrap()
}

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "plinth-init-{prefix}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn names_are_checked_with_a_suggestion() {
    for name in ["churn", "fraud_v2", "a"] {
        check_name(name).unwrap();
    }
    let error = check_name("Churn-Model").unwrap_err().to_string();
    assert!(error.contains("`churn_model`"), "{error}");
    for name in ["", "2fast", "with space", "dash-ed", &"x".repeat(41)] {
        assert!(check_name(name).is_err(), "{name}");
    }
}

#[test]
fn a_project_has_every_file_with_its_names_filled_in() {
    let dir = temp_dir("files");
    let project = generate(&dir, "churn", "growth@example.com", 10, now()).unwrap();
    assert_eq!(project.events, 40);
    assert_eq!(project.labels, 20);
    for (path, _) in TEMPLATES {
        let content = std::fs::read_to_string(dir.join(path)).unwrap();
        assert!(!content.contains("@name@"), "{path} keeps a placeholder");
        assert!(!content.contains("@owner@"), "{path} keeps a placeholder");
    }
    let features = std::fs::read_to_string(dir.join("features/features.yaml")).unwrap();
    assert!(features.contains("name: churn_customer_stats"));
    assert!(features.contains("owner: growth@example.com"));
    let pipelines = std::fs::read_to_string(dir.join("pipeline.yaml")).unwrap();
    assert!(pipelines.contains("name: churn-train"));
    assert!(pipelines.contains("name: churn-batch-score"));
    assert_eq!(project.train_pipeline(), "churn-train");
    assert_eq!(project.feature_service(), "churn_v1");

    let error = generate(&dir, "churn", "me", 10, now()).unwrap_err();
    assert!(error.to_string().contains("is not empty"), "{error}");
    let error = generate(&temp_dir("owner"), "churn", "a: b", 10, now()).unwrap_err();
    assert!(error.to_string().contains("owner"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_pipelines_are_valid() {
    let dir = temp_dir("pipelines");
    generate(&dir, "churn", "me", 3, now()).unwrap();
    let files = crate::files::read_yaml_files(&[dir.join("pipeline.yaml")], "pipeline")
        .unwrap()
        .into_iter()
        .map(|file| plinth_proto::orchestrator::v1::PipelineFile {
            path: file.path,
            content: file.content,
        })
        .collect::<Vec<_>>();
    let answer = crate::commands::pipeline::local::validate(&files);
    assert!(answer.errors.is_empty(), "{:?}", answer.errors);
    assert_eq!(answer.pipelines.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_sample_is_deterministic_and_has_both_classes() {
    let sample = sample::Sample::new(200, now());
    assert_eq!(sample.events(), sample::Sample::new(200, now()).events());
    let labels = sample.labels();
    let churned = labels.iter().filter(|label| label["churned"] == 1).count();
    assert!(
        churned > 20 && churned < 180,
        "{churned} of {}",
        labels.len()
    );
    let first = &sample.events()[0];
    assert_eq!(first["customer_id"], 1);
    // Snapshots start four weeks before `now`, on the hour.
    assert!(
        first["event_timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-10-29T"),
        "{first}"
    );
    assert_eq!(labels[0]["event_timestamp"], "2026-11-16T10:00:00Z");
    let lines = sample::jsonl(&labels);
    assert_eq!(
        lines.iter().filter(|byte| **byte == b'\n').count(),
        labels.len()
    );
}
