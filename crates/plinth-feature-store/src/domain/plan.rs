//! The difference between the registry's project and the definition files: what `plan` shows and
//! `apply` stores. Each object is created, updated, deleted (only with prune) or left unchanged, with a
//! line per changed field (`ttl: 1d -> 2d`, `features: +acc_rate -old_rate`).
//!
//! A plan is refused when the project it leaves behind would hold a reference to an object it deletes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use plinth_runtime::yaml::format_duration;

use crate::domain::definitions::{
    BatchLocation, Entity, FeatureService, FeatureView, Metadata, Project, Source, SourceKind,
};
use crate::domain::parse::{Definition, DefinitionKind, remove_from};

/// What a plan does to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeType {
    /// The object is new.
    Create,
    /// The object exists and some field differs.
    Update,
    /// The object exists and is not in the files (with prune).
    Delete,
    /// Nothing changes (or, without prune, the object is not in the files and is kept).
    Unchanged,
}

impl ChangeType {
    /// The word shown (`create`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Create => "create",
            ChangeType::Update => "update",
            ChangeType::Delete => "delete",
            ChangeType::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for ChangeType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One object's line of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object's kind.
    pub kind: DefinitionKind,
    /// The object's name.
    pub name: String,
    /// What happens to it.
    pub change: ChangeType,
    /// What differs, one field a line (`ttl: 1d -> 2d`); for a kept object not in the files, a note.
    pub details: Vec<String>,
    /// The object as it will be stored: `Some` for create and update (and unchanged objects of the
    /// files), `None` for delete and for kept objects.
    pub desired: Option<Definition>,
}

/// A plan that would leave a dangling reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{referrer_kind} `{referrer}` references {kind} `{name}`, which this plan deletes; remove `{referrer}` from the registry too (delete it from the files and keep prune), or keep `{name}` in the files"
)]
pub struct PlanError {
    /// The kind of the object that references.
    pub referrer_kind: DefinitionKind,
    /// The object that references.
    pub referrer: String,
    /// The kind of the deleted object.
    pub kind: DefinitionKind,
    /// The deleted object.
    pub name: String,
}

/// The changes that take `current` (the registry) to `desired` (the files), by kind in dependency
/// order then name. Without `prune`, objects missing from `desired` are kept (and listed unchanged);
/// with it they are deleted. Refused when the result would reference a deleted object.
pub fn plan(
    current: &Project,
    desired: &Project,
    prune: bool,
) -> Result<Vec<Change>, Vec<PlanError>> {
    let mut changes = Vec::new();
    let mut result = desired.clone();
    let mut deleted = BTreeSet::new();
    let current_all: BTreeMap<(DefinitionKind, String), Definition> = Definition::all_of(current)
        .into_iter()
        .map(|definition| {
            (
                (definition.kind(), definition.name().to_owned()),
                definition,
            )
        })
        .collect();
    let desired_all: BTreeMap<(DefinitionKind, String), Definition> = Definition::all_of(desired)
        .into_iter()
        .map(|definition| {
            (
                (definition.kind(), definition.name().to_owned()),
                definition,
            )
        })
        .collect();
    let keys: BTreeSet<&(DefinitionKind, String)> =
        current_all.keys().chain(desired_all.keys()).collect();
    for key in keys {
        let (kind, name) = key.clone();
        let change = match (current_all.get(key), desired_all.get(key)) {
            (None, Some(wanted)) => Change {
                kind,
                name,
                change: ChangeType::Create,
                details: Vec::new(),
                desired: Some(wanted.clone()),
            },
            (Some(existing), Some(wanted)) => {
                let details = differences(existing, wanted);
                Change {
                    kind,
                    name,
                    change: if details.is_empty() {
                        ChangeType::Unchanged
                    } else {
                        ChangeType::Update
                    },
                    details,
                    desired: Some(wanted.clone()),
                }
            }
            (Some(_), None) if prune => {
                deleted.insert(key.clone());
                Change {
                    kind,
                    name,
                    change: ChangeType::Delete,
                    details: Vec::new(),
                    desired: None,
                }
            }
            (Some(existing), None) => {
                existing.clone().insert_into(&mut result);
                Change {
                    kind,
                    name,
                    change: ChangeType::Unchanged,
                    details: vec![
                        "not in the definition files; kept (apply with prune to delete it)"
                            .to_owned(),
                    ],
                    desired: None,
                }
            }
            (None, None) => continue,
        };
        changes.push(change);
    }
    for (kind, name) in &deleted {
        remove_from(&mut result, *kind, name);
    }
    let errors: Vec<PlanError> = references(&result)
        .into_iter()
        .filter(|reference| deleted.contains(&(reference.kind, reference.name.clone())))
        .collect();
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

/// Whether a plan changes anything.
pub fn has_changes(changes: &[Change]) -> bool {
    changes
        .iter()
        .any(|change| change.change != ChangeType::Unchanged)
}

/// `current` with `changes` applied (what the registry holds after `apply`).
pub fn apply_to(current: &Project, changes: &[Change]) -> Project {
    let mut project = current.clone();
    for change in changes {
        match (&change.change, &change.desired) {
            (ChangeType::Delete, _) => {
                remove_from(&mut project, change.kind, &change.name);
            }
            (_, Some(desired)) => desired.clone().insert_into(&mut project),
            (_, None) => {}
        }
    }
    project
}

/// Every reference in `project` (view to entity and source, service to view), as a would-be error.
fn references(project: &Project) -> Vec<PlanError> {
    let mut found = Vec::new();
    for view in project.feature_views.values() {
        for entity in &view.entities {
            found.push(PlanError {
                referrer_kind: DefinitionKind::FeatureView,
                referrer: view.name.clone(),
                kind: DefinitionKind::Entity,
                name: entity.clone(),
            });
        }
        found.push(PlanError {
            referrer_kind: DefinitionKind::FeatureView,
            referrer: view.name.clone(),
            kind: DefinitionKind::Source,
            name: view.source.clone(),
        });
    }
    for service in project.feature_services.values() {
        for projection in &service.projections {
            found.push(PlanError {
                referrer_kind: DefinitionKind::FeatureService,
                referrer: service.name.clone(),
                kind: DefinitionKind::FeatureView,
                name: projection.feature_view.clone(),
            });
        }
    }
    found
}

/// The field-by-field differences of two objects of the same kind.
fn differences(existing: &Definition, wanted: &Definition) -> Vec<String> {
    let mut details = Vec::new();
    match (existing, wanted) {
        (Definition::Entity(old), Definition::Entity(new)) => {
            entity_differences(old, new, &mut details)
        }
        (Definition::Source(old), Definition::Source(new)) => {
            source_differences(old, new, &mut details)
        }
        (Definition::FeatureView(old), Definition::FeatureView(new)) => {
            view_differences(old, new, &mut details);
        }
        (Definition::FeatureService(old), Definition::FeatureService(new)) => {
            service_differences(old, new, &mut details);
        }
        _ => details.push("kind changed".to_owned()),
    }
    metadata_differences(existing.metadata(), wanted.metadata(), &mut details);
    details
}

fn field<T: PartialEq + fmt::Display>(details: &mut Vec<String>, name: &str, old: T, new: T) {
    if old != new {
        details.push(format!("{name}: {old} -> {new}"));
    }
}

/// `+added -removed` between two name lists, or `a, b -> b, a` when only the order changed.
fn list_change(details: &mut Vec<String>, name: &str, old: &[String], new: &[String]) {
    if old == new {
        return;
    }
    let old_set: BTreeSet<&String> = old.iter().collect();
    let new_set: BTreeSet<&String> = new.iter().collect();
    let mut parts: Vec<String> = new
        .iter()
        .filter(|item| !old_set.contains(item))
        .map(|item| format!("+{item}"))
        .collect();
    parts.extend(
        old.iter()
            .filter(|item| !new_set.contains(item))
            .map(|item| format!("-{item}")),
    );
    if parts.is_empty() {
        details.push(format!(
            "{name}: order {} -> {}",
            old.join(", "),
            new.join(", ")
        ));
    } else {
        details.push(format!("{name}: {}", parts.join(" ")));
    }
}

fn entity_differences(old: &Entity, new: &Entity, details: &mut Vec<String>) {
    let render = |entity: &Entity| {
        entity
            .join_keys
            .iter()
            .map(|key| format!("{} {}", key.name, key.value_type))
            .collect::<Vec<_>>()
            .join(", ")
    };
    field(details, "join_keys", render(old), render(new));
}

fn location(kind: &SourceKind) -> String {
    let batch = |location: &BatchLocation| match location {
        BatchLocation::LakeDataset(dataset) => format!("lake dataset {dataset}"),
        BatchLocation::ParquetUrl(url) => format!("parquet {url}"),
    };
    match kind {
        SourceKind::Batch(location) => batch(location),
        SourceKind::Stream {
            topic,
            batch: location,
        } => format!("stream {topic} ({})", batch(location)),
        SourceKind::Push {
            batch: Some(location),
        } => format!("push ({})", batch(location)),
        SourceKind::Push { batch: None } => "push".to_owned(),
    }
}

fn source_differences(old: &Source, new: &Source, details: &mut Vec<String>) {
    field(
        details,
        "location",
        location(&old.kind),
        location(&new.kind),
    );
    field(
        details,
        "timestamp_field",
        &old.timestamp_field,
        &new.timestamp_field,
    );
    let created = |source: &Source| {
        source
            .created_timestamp_column
            .clone()
            .unwrap_or_else(|| "none".to_owned())
    };
    field(
        details,
        "created_timestamp_column",
        created(old),
        created(new),
    );
    map_differences(
        details,
        "field_mapping",
        &old.field_mapping,
        &new.field_mapping,
    );
}

fn view_differences(old: &FeatureView, new: &FeatureView, details: &mut Vec<String>) {
    list_change(details, "entities", &old.entities, &new.entities);
    field(details, "source", &old.source, &new.source);
    field(
        details,
        "ttl",
        format_duration(old.ttl),
        format_duration(new.ttl),
    );
    field(details, "online", old.online, new.online);
    field(details, "offline", old.offline, new.offline);
    let names = |view: &FeatureView| {
        view.features
            .iter()
            .map(|feature| feature.name.clone())
            .collect::<Vec<_>>()
    };
    list_change(details, "features", &names(old), &names(new));
    for feature in &new.features {
        let Some(before) = old.feature(&feature.name) else {
            continue;
        };
        field(
            details,
            &format!("features.{}.type", feature.name),
            before.value_type,
            feature.value_type,
        );
        if before.description != feature.description {
            details.push(format!("features.{}.description changed", feature.name));
        }
    }
}

fn service_differences(old: &FeatureService, new: &FeatureService, details: &mut Vec<String>) {
    let render = |service: &FeatureService| {
        service
            .projections
            .iter()
            .flat_map(|projection| {
                if projection.features.is_empty() {
                    vec![format!("{}:*", projection.feature_view)]
                } else {
                    projection
                        .features
                        .iter()
                        .map(|feature| format!("{}:{feature}", projection.feature_view))
                        .collect()
                }
            })
            .collect::<Vec<_>>()
    };
    list_change(details, "features", &render(old), &render(new));
}

fn metadata_differences(old: &Metadata, new: &Metadata, details: &mut Vec<String>) {
    if old.description != new.description {
        details.push("description changed".to_owned());
    }
    let quoted = |text: &str| {
        if text.is_empty() {
            "none".to_owned()
        } else {
            text.to_owned()
        }
    };
    field(details, "owner", quoted(&old.owner), quoted(&new.owner));
    map_differences(details, "tags", &old.tags, &new.tags);
}

fn map_differences(
    details: &mut Vec<String>,
    name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    if old == new {
        return;
    }
    let mut parts = Vec::new();
    for (key, value) in new {
        match old.get(key) {
            None => parts.push(format!("+{key}={value}")),
            Some(before) if before != value => parts.push(format!("{key}: {before} -> {value}")),
            Some(_) => {}
        }
    }
    for key in old.keys().filter(|key| !new.contains_key(*key)) {
        parts.push(format!("-{key}"));
    }
    details.push(format!("{name}: {}", parts.join(", ")));
}

#[cfg(test)]
mod tests;
