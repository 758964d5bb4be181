//! Objects back to canonical definition-file YAML (for `describe` and exports): fixed key order, empty
//! optional fields left out, text quoted only where YAML needs it. Parsing the output gives the same
//! objects back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plinth_runtime::yaml::format_duration;

use super::Definition;
use crate::domain::definitions::{BatchLocation, Metadata, Project, SourceKind};

/// One object as a definition file holding just it (`feature_views:\n  - name: ...`).
pub fn to_yaml(definition: &Definition) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}:", definition.kind().list_key());
    item(&mut out, definition);
    out
}

/// A whole project as one definition file, kinds in dependency order, objects by name.
pub fn project_to_yaml(project: &Project) -> String {
    let mut out = String::new();
    let all = Definition::all_of(project);
    let mut current = None;
    for definition in &all {
        if current != Some(definition.kind()) {
            current = Some(definition.kind());
            let _ = writeln!(out, "{}:", definition.kind().list_key());
        }
        item(&mut out, definition);
    }
    out
}

/// One `  - name: ...` item with its fields at four spaces.
fn item(out: &mut String, definition: &Definition) {
    let _ = writeln!(out, "  - name: {}", scalar(definition.name()));
    let pad = "    ";
    match definition {
        Definition::Entity(entity) => {
            let _ = writeln!(out, "{pad}join_keys:");
            for key in &entity.join_keys {
                let _ = writeln!(
                    out,
                    "{pad}  - {{name: {}, type: {}}}",
                    scalar(&key.name),
                    key.value_type
                );
            }
        }
        Definition::Source(source) => {
            match &source.kind {
                SourceKind::Batch(BatchLocation::LakeDataset(dataset)) => {
                    let _ = writeln!(out, "{pad}lake: {{dataset: {}}}", scalar(dataset));
                }
                SourceKind::Batch(BatchLocation::ParquetUrl(url)) => {
                    let _ = writeln!(out, "{pad}parquet: {{url: {}}}", scalar(url));
                }
                SourceKind::Stream { topic, batch } => {
                    let dataset = match batch {
                        BatchLocation::LakeDataset(dataset) if dataset == topic => String::new(),
                        BatchLocation::LakeDataset(dataset)
                        | BatchLocation::ParquetUrl(dataset) => {
                            format!(", dataset: {}", scalar(dataset))
                        }
                    };
                    let _ = writeln!(out, "{pad}stream: {{topic: {}{dataset}}}", scalar(topic));
                }
                SourceKind::Push { batch } => match batch {
                    Some(
                        BatchLocation::LakeDataset(dataset) | BatchLocation::ParquetUrl(dataset),
                    ) => {
                        let _ = writeln!(out, "{pad}push: {{dataset: {}}}", scalar(dataset));
                    }
                    None => {
                        let _ = writeln!(out, "{pad}push: {{}}");
                    }
                },
            }
            let _ = writeln!(
                out,
                "{pad}timestamp_field: {}",
                scalar(&source.timestamp_field)
            );
            if let Some(created) = &source.created_timestamp_column {
                let _ = writeln!(out, "{pad}created_timestamp_column: {}", scalar(created));
            }
            map(out, pad, "field_mapping", &source.field_mapping);
        }
        Definition::FeatureView(view) => {
            if !view.entities.is_empty() {
                let entities: Vec<String> = view.entities.iter().map(|name| scalar(name)).collect();
                let _ = writeln!(out, "{pad}entities: [{}]", entities.join(", "));
            }
            let _ = writeln!(out, "{pad}source: {}", scalar(&view.source));
            let _ = writeln!(out, "{pad}ttl: {}", format_duration(view.ttl));
            let _ = writeln!(out, "{pad}online: {}", view.online);
            let _ = writeln!(out, "{pad}offline: {}", view.offline);
            let _ = writeln!(out, "{pad}features:");
            for feature in &view.features {
                let _ = writeln!(out, "{pad}  - name: {}", scalar(&feature.name));
                let _ = writeln!(out, "{pad}    type: {}", feature.value_type);
                if !feature.description.is_empty() {
                    let _ = writeln!(
                        out,
                        "{pad}    description: {}",
                        scalar(&feature.description)
                    );
                }
            }
        }
        Definition::FeatureService(service) => {
            let _ = writeln!(out, "{pad}features:");
            for projection in &service.projections {
                if projection.features.is_empty() {
                    let _ = writeln!(out, "{pad}  - {}", scalar(&projection.feature_view));
                } else {
                    let features: Vec<String> = projection
                        .features
                        .iter()
                        .map(|name| scalar(name))
                        .collect();
                    let _ = writeln!(
                        out,
                        "{pad}  - {}: [{}]",
                        scalar(&projection.feature_view),
                        features.join(", ")
                    );
                }
            }
        }
    }
    metadata(out, pad, definition.metadata());
}

fn metadata(out: &mut String, pad: &str, metadata: &Metadata) {
    if !metadata.description.is_empty() {
        let _ = writeln!(out, "{pad}description: {}", scalar(&metadata.description));
    }
    if !metadata.owner.is_empty() {
        let _ = writeln!(out, "{pad}owner: {}", scalar(&metadata.owner));
    }
    map(out, pad, "tags", &metadata.tags);
}

fn map(out: &mut String, pad: &str, key: &str, entries: &BTreeMap<String, String>) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "{pad}{key}:");
    for (name, value) in entries {
        let _ = writeln!(out, "{pad}  {}: {}", scalar(name), scalar(value));
    }
}

/// Text as a YAML scalar: plain when it reads back as the same text, else double-quoted (JSON string
/// syntax, which YAML's double-quoted style accepts).
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "_-./@".contains(character))
        && text
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
    }
}
