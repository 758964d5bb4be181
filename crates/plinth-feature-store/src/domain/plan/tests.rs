use super::*;
use crate::domain::parse::parse;

const BASE: &str = "\
entities:
  - name: driver
    join_keys: [{name: driver_id, type: int64}]
sources:
  - name: stats
    lake: {dataset: stats}
    timestamp_field: ts
feature_views:
  - name: hourly
    entities: [driver]
    source: stats
    ttl: 1d
    features:
      - {name: conv_rate, type: float32}
      - {name: old_rate, type: float32}
    tags: {team: a}
feature_services:
  - name: ranking
    features: [hourly]
";

fn project(text: &str) -> Project {
    match parse(&[("defs.yaml", text)]) {
        Ok(parsed) => parsed.project,
        Err(errors) => panic!("{errors:#?}"),
    }
}

fn summary(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|change| {
            format!(
                "{} {} {} {}",
                change.change,
                change.kind,
                change.name,
                change.details.join("; ")
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

#[test]
fn an_empty_registry_creates_everything_in_kind_order() {
    let changes = plan(&Project::default(), &project(BASE), false).unwrap();
    assert_eq!(
        summary(&changes),
        [
            "create entity driver",
            "create source stats",
            "create feature_view hourly",
            "create feature_service ranking",
        ]
    );
    assert!(has_changes(&changes));
    assert!(changes.iter().all(|change| change.desired.is_some()));
    assert_eq!(apply_to(&Project::default(), &changes), project(BASE));
}

#[test]
fn the_same_project_is_unchanged() {
    let current = project(BASE);
    let changes = plan(&current, &current, true).unwrap();
    assert!(!has_changes(&changes));
    assert!(changes.iter().all(|change| change.details.is_empty()));
}

#[test]
fn updates_list_each_changed_field() {
    let current = project(BASE);
    let desired = project(
        &BASE
            .replace("ttl: 1d", "ttl: 2d")
            .replace(
                "{name: old_rate, type: float32}",
                "{name: acc_rate, type: float64}",
            )
            .replace(
                "{name: conv_rate, type: float32}",
                "{name: conv_rate, type: float64}",
            )
            .replace(
                "tags: {team: a}",
                "tags: {team: b, tier: gold}\n    owner: me",
            ),
    );
    let changes = plan(&current, &desired, false).unwrap();
    let view = changes
        .iter()
        .find(|change| change.kind == DefinitionKind::FeatureView)
        .unwrap();
    assert_eq!(view.change, ChangeType::Update);
    assert_eq!(
        view.details,
        [
            "ttl: 1d -> 2d",
            "features: +acc_rate -old_rate",
            "features.conv_rate.type: float32 -> float64",
            "owner: none -> me",
            "tags: team: a -> b, +tier=gold",
        ]
    );
    assert_eq!(apply_to(&current, &changes), desired);
}

#[test]
fn objects_missing_from_the_files_are_kept_without_prune_and_deleted_with_it() {
    let current = project(BASE);
    let desired = project(
        "entities:\n  - name: driver\n    join_keys: [{name: driver_id, type: int64}]\nsources:\n  - name: stats\n    lake: {dataset: stats}\n    timestamp_field: ts\n",
    );
    let kept = plan(&current, &desired, false).unwrap();
    assert!(!has_changes(&kept));
    let service = kept.last().unwrap();
    assert_eq!(service.name, "ranking");
    assert!(service.details[0].contains("kept"));
    assert_eq!(apply_to(&current, &kept), current);

    let pruned = plan(&current, &desired, true).unwrap();
    assert_eq!(
        summary(&pruned),
        [
            "unchanged entity driver",
            "unchanged source stats",
            "delete feature_view hourly",
            "delete feature_service ranking",
        ]
    );
    assert_eq!(apply_to(&current, &pruned), desired);
}

#[test]
fn deleting_an_object_still_referenced_is_refused() {
    let current = project(BASE);
    // Files that drop the entity and the source but keep the view: only possible through an invalid
    // project built by hand, which the plan still refuses.
    let mut desired = current.clone();
    desired.entities.clear();
    let errors = plan(&current, &desired, true).unwrap_err();
    assert_eq!(
        errors,
        [PlanError {
            referrer_kind: DefinitionKind::FeatureView,
            referrer: "hourly".into(),
            kind: DefinitionKind::Entity,
            name: "driver".into(),
        }]
    );
    assert!(errors[0].to_string().contains("which this plan deletes"));

    // Without prune nothing is deleted, so the same files are fine.
    assert!(plan(&current, &desired, false).is_ok());
}

#[test]
fn a_service_change_lists_features_added_and_removed() {
    let current = project(BASE);
    let desired = project(&BASE.replace("features: [hourly]", "features: [{hourly: [conv_rate]}]"));
    let changes = plan(&current, &desired, false).unwrap();
    assert_eq!(
        changes.last().unwrap().details,
        ["features: +hourly:conv_rate -hourly:*"]
    );
}
