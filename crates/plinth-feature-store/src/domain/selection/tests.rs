use std::time::Duration;

use super::*;
use crate::domain::definitions::{
    BatchLocation, Entity, Feature, FeatureService, JoinKey, Metadata, Source, SourceKind,
    ViewProjection,
};
use crate::domain::value::ValueType;

fn view(name: &str, features: &[&str], online: bool) -> FeatureView {
    FeatureView {
        name: name.to_owned(),
        entities: vec!["driver".to_owned()],
        features: features
            .iter()
            .map(|feature| Feature {
                name: (*feature).to_owned(),
                value_type: ValueType::Float64,
                description: String::new(),
            })
            .collect(),
        ttl: Duration::ZERO,
        source: "stats".to_owned(),
        online,
        offline: true,
        metadata: Metadata::default(),
    }
}

fn project() -> Project {
    let mut project = Project::default();
    project.entities.insert(
        "driver".to_owned(),
        Entity {
            name: "driver".to_owned(),
            join_keys: vec![JoinKey {
                name: "driver_id".to_owned(),
                value_type: ValueType::Int64,
            }],
            metadata: Metadata::default(),
        },
    );
    project.sources.insert(
        "stats".to_owned(),
        Source {
            name: "stats".to_owned(),
            kind: SourceKind::Batch(BatchLocation::LakeDataset("stats".to_owned())),
            timestamp_field: "event_timestamp".to_owned(),
            created_timestamp_column: None,
            field_mapping: Default::default(),
            metadata: Metadata::default(),
        },
    );
    for view in [
        view("hourly", &["conv_rate", "acc_rate"], true),
        view("daily", &["conv_rate", "trips"], true),
        view("archive", &["old"], false),
    ] {
        project.feature_views.insert(view.name.clone(), view);
    }
    project.feature_services.insert(
        "ranking_v1".to_owned(),
        FeatureService {
            name: "ranking_v1".to_owned(),
            projections: vec![
                ViewProjection {
                    feature_view: "hourly".to_owned(),
                    features: vec![],
                },
                ViewProjection {
                    feature_view: "daily".to_owned(),
                    features: vec!["trips".to_owned()],
                },
            ],
            metadata: Metadata::default(),
        },
    );
    project
}

fn refs(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[test]
fn a_service_expands_whole_views_and_picks_listed_features() {
    let selected = resolve_service(&project(), "ranking_v1", Purpose::Online).unwrap();
    assert_eq!(
        selected,
        vec![
            SelectedView {
                view: "hourly".to_owned(),
                features: refs(&["conv_rate", "acc_rate"]),
            },
            SelectedView {
                view: "daily".to_owned(),
                features: refs(&["trips"]),
            },
        ]
    );
    assert_eq!(
        output_names(&selected, true).unwrap(),
        refs(&["hourly__conv_rate", "hourly__acc_rate", "daily__trips"])
    );
    assert_eq!(
        output_names(&selected, false).unwrap(),
        refs(&["conv_rate", "acc_rate", "trips"])
    );
}

#[test]
fn references_group_by_view_in_first_seen_order_without_duplicates() {
    let selected = resolve_refs(
        &project(),
        &refs(&[
            "daily:trips",
            "hourly:acc_rate",
            "daily:conv_rate",
            "daily:trips",
        ]),
        Purpose::Offline,
    )
    .unwrap();
    assert_eq!(selected.len(), 2);
    assert_eq!(selected[0].view, "daily");
    assert_eq!(selected[0].features, refs(&["trips", "conv_rate"]));
    assert_eq!(selected[1].features, refs(&["acc_rate"]));
}

#[test]
fn bad_selections_say_what_exists() {
    let project = project();
    let err = resolve_service(&project, "nope", Purpose::Online).unwrap_err();
    assert!(
        err.to_string().contains("registered services: ranking_v1"),
        "{err}"
    );
    let err = resolve_refs(&project, &refs(&["hourly"]), Purpose::Online).unwrap_err();
    assert!(matches!(err, SelectionError::BadReference { .. }), "{err}");
    let err = resolve_refs(&project, &refs(&["weekly:x"]), Purpose::Online).unwrap_err();
    assert!(
        err.to_string()
            .contains("registered views: archive, daily, hourly"),
        "{err}"
    );
    let err = resolve_refs(&project, &refs(&["hourly:speed"]), Purpose::Online).unwrap_err();
    assert!(
        err.to_string()
            .contains("its features: conv_rate, acc_rate"),
        "{err}"
    );
    let err = resolve_refs(&project, &refs(&["archive:old"]), Purpose::Online).unwrap_err();
    assert_eq!(
        err,
        SelectionError::NotAvailable {
            view: "archive".to_owned(),
            purpose: "online"
        }
    );
    assert!(resolve_refs(&project, &refs(&["archive:old"]), Purpose::Offline).is_ok());
    assert_eq!(
        resolve_refs(&project, &[], Purpose::Online).unwrap_err(),
        SelectionError::Empty
    );
}

#[test]
fn short_names_refuse_collisions() {
    let selected = resolve_refs(
        &project(),
        &refs(&["hourly:conv_rate", "daily:conv_rate"]),
        Purpose::Online,
    )
    .unwrap();
    let err = output_names(&selected, false).unwrap_err();
    assert_eq!(
        err,
        SelectionError::NameCollision {
            feature: "conv_rate".to_owned(),
            first: "hourly".to_owned(),
            second: "daily".to_owned(),
        }
    );
}
