//! Definition files: YAML text in, a validated [`Project`] out, or every mistake found, each with the
//! file, the line and the column, and what to fix.
//!
//! # File format
//!
//! A file holds one or more YAML documents (separated by `---`); each document is a mapping with any
//! subset of four lists: `entities`, `sources`, `feature_views` and `feature_services`. Objects may
//! reference objects declared in any file of the same [`parse`] call; names are unique per kind across
//! all of them.
//!
//! ```yaml
//! entities:
//!   - name: driver
//!     join_keys: [{name: driver_id, type: int64}]   # string, bytes, int32 or int64
//!     description: a driver                         # description, owner, tags: on every object
//!     owner: mobility@example.com
//!     tags: {team: mobility}
//! sources:
//!   - name: driver_stats
//!     lake: {dataset: driver_stats}                 # exactly one of:
//!     # parquet: {url: "file:///data/driver_stats"}
//!     # stream: {topic: driver_events, dataset: driver_events}   (dataset defaults to the topic)
//!     # push: {dataset: driver_pushes}                           (dataset optional)
//!     timestamp_field: event_timestamp
//!     created_timestamp_column: created             # optional
//!     field_mapping: {conv_rate_v2: conv_rate}      # optional: source column -> feature or key name
//! feature_views:
//!   - name: driver_hourly_stats
//!     entities: [driver]                            # optional; none makes a global view
//!     ttl: 1d                                       # optional, default 0 (forever): 30s, 15m, 2h, 1d, 1w, 1h30m
//!     source: driver_stats
//!     online: true                                  # optional, default true
//!     offline: true                                 # optional, default true
//!     features:
//!       - {name: conv_rate, type: float32, description: conversion rate}
//! feature_services:
//!   - name: driver_ranking_v1
//!     features:
//!       - driver_hourly_stats                       # every feature of a view
//!       - other_view: [feature_a, feature_b]        # or some of them
//! ```
//!
//! Types are [`ValueType`]'s names (`int64`, `float32`, `unix_timestamp`, and Feast's spellings).
//!
//! # What is refused
//!
//! Syntax errors; unknown keys (the nearest valid key is named); values of the wrong type; missing
//! required fields; duplicate names (both places are named); references to unknown entities, sources,
//! views or features (what exists is listed); join keys of a type that cannot be a key (floats, bool,
//! timestamps); a view whose entities share a join key name; a feature named like one of its view's join
//! keys or like its source's timestamp columns; bad durations. [`check_source_columns`] adds the checks
//! that need the sources' schemas: every feature and join key has a column of a fitting type.
//!
//! [`parse`] keeps where each object and feature was declared in [`Spans`], beside the project, so later
//! checks can name the line too.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use plinth_runtime::yaml::{Location, SourceError};

use crate::domain::definitions::{Entity, FeatureService, FeatureView, Metadata, Project, Source};
use crate::domain::value::ValueType;

mod read;
mod render;
mod validate;

pub use render::{project_to_yaml, to_yaml};

/// One mistake in a definition file: the file, line and column, and what to fix. The feature store's
/// name for the runtime's [`SourceError`], which every YAML reader of the platform reports.
pub type DefinitionError = SourceError;

/// The four kinds of objects a project declares, in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefinitionKind {
    /// An [`Entity`].
    Entity,
    /// A [`Source`].
    Source,
    /// A [`FeatureView`].
    FeatureView,
    /// A [`FeatureService`].
    FeatureService,
}

impl DefinitionKind {
    /// Every kind, in dependency order.
    pub const ALL: [DefinitionKind; 4] = [
        DefinitionKind::Entity,
        DefinitionKind::Source,
        DefinitionKind::FeatureView,
        DefinitionKind::FeatureService,
    ];

    /// The stored name (`feature_view`).
    pub fn as_str(self) -> &'static str {
        match self {
            DefinitionKind::Entity => "entity",
            DefinitionKind::Source => "source",
            DefinitionKind::FeatureView => "feature_view",
            DefinitionKind::FeatureService => "feature_service",
        }
    }

    /// The words used in messages (`feature view`).
    pub fn noun(self) -> &'static str {
        match self {
            DefinitionKind::Entity => "entity",
            DefinitionKind::Source => "source",
            DefinitionKind::FeatureView => "feature view",
            DefinitionKind::FeatureService => "feature service",
        }
    }

    /// The top-level list of a definition file holding this kind (`feature_views`).
    pub fn list_key(self) -> &'static str {
        match self {
            DefinitionKind::Entity => "entities",
            DefinitionKind::Source => "sources",
            DefinitionKind::FeatureView => "feature_views",
            DefinitionKind::FeatureService => "feature_services",
        }
    }
}

impl fmt::Display for DefinitionKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A name that is not a [`DefinitionKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a kind of definition; use entity, source, feature_view or feature_service")]
pub struct UnknownDefinitionKind(pub String);

impl FromStr for DefinitionKind {
    type Err = UnknownDefinitionKind;

    /// Accepts the stored names, the list keys and the nouns with a space or a dash.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lowered = text.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        DefinitionKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == lowered || kind.list_key() == lowered)
            .ok_or_else(|| UnknownDefinitionKind(text.to_owned()))
    }
}

/// One object of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definition {
    /// An entity.
    Entity(Entity),
    /// A source.
    Source(Source),
    /// A feature view.
    FeatureView(FeatureView),
    /// A feature service.
    FeatureService(FeatureService),
}

impl Definition {
    /// Its kind.
    pub fn kind(&self) -> DefinitionKind {
        match self {
            Definition::Entity(_) => DefinitionKind::Entity,
            Definition::Source(_) => DefinitionKind::Source,
            Definition::FeatureView(_) => DefinitionKind::FeatureView,
            Definition::FeatureService(_) => DefinitionKind::FeatureService,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Definition::Entity(entity) => &entity.name,
            Definition::Source(source) => &source.name,
            Definition::FeatureView(view) => &view.name,
            Definition::FeatureService(service) => &service.name,
        }
    }

    /// Its owner, description and tags.
    pub fn metadata(&self) -> &Metadata {
        match self {
            Definition::Entity(entity) => &entity.metadata,
            Definition::Source(source) => &source.metadata,
            Definition::FeatureView(view) => &view.metadata,
            Definition::FeatureService(service) => &service.metadata,
        }
    }

    /// Every object of `project`, by kind (in dependency order) then name.
    pub fn all_of(project: &Project) -> Vec<Definition> {
        let mut all = Vec::new();
        all.extend(project.entities.values().cloned().map(Definition::Entity));
        all.extend(project.sources.values().cloned().map(Definition::Source));
        all.extend(
            project
                .feature_views
                .values()
                .cloned()
                .map(Definition::FeatureView),
        );
        all.extend(
            project
                .feature_services
                .values()
                .cloned()
                .map(Definition::FeatureService),
        );
        all
    }

    /// The object `name` of `kind` in `project`.
    pub fn find(project: &Project, kind: DefinitionKind, name: &str) -> Option<Definition> {
        match kind {
            DefinitionKind::Entity => project.entities.get(name).cloned().map(Definition::Entity),
            DefinitionKind::Source => project.sources.get(name).cloned().map(Definition::Source),
            DefinitionKind::FeatureView => project
                .feature_views
                .get(name)
                .cloned()
                .map(Definition::FeatureView),
            DefinitionKind::FeatureService => project
                .feature_services
                .get(name)
                .cloned()
                .map(Definition::FeatureService),
        }
    }

    /// Puts the object into `project`, replacing one of the same kind and name.
    pub fn insert_into(self, project: &mut Project) {
        match self {
            Definition::Entity(entity) => {
                project.entities.insert(entity.name.clone(), entity);
            }
            Definition::Source(source) => {
                project.sources.insert(source.name.clone(), source);
            }
            Definition::FeatureView(view) => {
                project.feature_views.insert(view.name.clone(), view);
            }
            Definition::FeatureService(service) => {
                project
                    .feature_services
                    .insert(service.name.clone(), service);
            }
        }
    }
}

/// Removes the object `name` of `kind` from `project`; whether there was one.
pub fn remove_from(project: &mut Project, kind: DefinitionKind, name: &str) -> bool {
    match kind {
        DefinitionKind::Entity => project.entities.remove(name).is_some(),
        DefinitionKind::Source => project.sources.remove(name).is_some(),
        DefinitionKind::FeatureView => project.feature_views.remove(name).is_some(),
        DefinitionKind::FeatureService => project.feature_services.remove(name).is_some(),
    }
}

/// Where the objects and features of a parsed project were declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    /// Each object's place (the start of its mapping), by kind and name.
    pub objects: BTreeMap<(DefinitionKind, String), Location>,
    /// Each feature's place, by view name and feature name.
    pub features: BTreeMap<(String, String), Location>,
}

impl Spans {
    /// Where the object `name` of `kind` was declared.
    pub fn object(&self, kind: DefinitionKind, name: &str) -> Option<&Location> {
        self.objects.get(&(kind, name.to_owned()))
    }

    /// Where the feature `feature` of view `view` was declared.
    pub fn feature(&self, view: &str, feature: &str) -> Option<&Location> {
        self.features.get(&(view.to_owned(), feature.to_owned()))
    }
}

/// A validated project and where its parts were declared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedProject {
    /// The project.
    pub project: Project,
    /// Where each object and feature was declared.
    pub spans: Spans,
}

/// Parses definition files, given as `(path, text)`, into a validated project, or returns every
/// mistake found, in file order.
pub fn parse<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
) -> Result<ParsedProject, Vec<DefinitionError>> {
    let mut declared = read::Declared::default();
    let mut errors = Vec::new();
    for (path, text) in files {
        read::read_file(path.as_ref(), text.as_ref(), &mut declared, &mut errors);
    }
    let parsed = validate::validate(declared, &mut errors);
    let file_index = |path: &str| {
        files
            .iter()
            .position(|(file, _)| file.as_ref() == path)
            .unwrap_or(usize::MAX)
    };
    errors.sort_by_cached_key(|error| (file_index(&error.path), error.line, error.column));
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// Whether a source column of type `column` can feed a feature or key declared as `declared`: the same
/// type, or a widening (int32 to int64, float32 to float64).
pub fn column_fits(column: ValueType, declared: ValueType) -> bool {
    column == declared
        || matches!(
            (column, declared),
            (ValueType::Int32, ValueType::Int64) | (ValueType::Float32, ValueType::Float64)
        )
}

/// Checks the project's features and join keys against the columns of their sources (by source name,
/// then column name, as read from the source's schema): every feature and join key needs a column (through
/// the source's field mapping) of a fitting type (see [`column_fits`]), and the timestamp columns need to
/// be timestamps. Sources missing from `source_columns` are not checked. Errors point at the feature, or
/// at the view for join keys.
pub fn check_source_columns(
    parsed: &ParsedProject,
    source_columns: &BTreeMap<String, BTreeMap<String, ValueType>>,
) -> Vec<DefinitionError> {
    let project = &parsed.project;
    let mut errors = Vec::new();
    let unknown = Location {
        path: "<registry>".to_owned(),
        line: 1,
        column: 1,
    };
    for source in project.sources.values() {
        let Some(columns) = source_columns.get(&source.name) else {
            continue;
        };
        let at = parsed
            .spans
            .object(DefinitionKind::Source, &source.name)
            .unwrap_or(&unknown);
        let timestamp_columns = std::iter::once(&source.timestamp_field)
            .chain(source.created_timestamp_column.as_ref());
        for column in timestamp_columns {
            match columns.get(column) {
                None => errors.push(DefinitionError::at(
                    at,
                    format!(
                        "source `{}` has no column `{column}`, its timestamp column; its columns are {}",
                        source.name,
                        list(columns.keys())
                    ),
                )),
                Some(ValueType::UnixTimestamp) => {}
                Some(other) => errors.push(DefinitionError::at(
                    at,
                    format!(
                        "column `{column}` of source `{}` is {other}, not a timestamp; name a timestamp column",
                        source.name
                    ),
                )),
            }
        }
    }
    for view in project.feature_views.values() {
        let Some(source) = project.sources.get(&view.source) else {
            continue;
        };
        let Some(columns) = source_columns.get(&source.name) else {
            continue;
        };
        let view_at = parsed
            .spans
            .object(DefinitionKind::FeatureView, &view.name)
            .unwrap_or(&unknown);
        let mut check = |name: &str, declared: ValueType, what: String, at: &Location| {
            let column = source.source_column(name);
            let mapped = if column == name {
                String::new()
            } else {
                format!(" (mapped to `{name}`)")
            };
            match columns.get(column) {
                None => errors.push(DefinitionError::at(
                    at,
                    format!(
                        "{what} has no column `{column}`{mapped} in source `{}`; its columns are {}; add the column or a field_mapping",
                        source.name,
                        list(columns.keys())
                    ),
                )),
                Some(&found) if !column_fits(found, declared) => {
                    errors.push(DefinitionError::at(
                        at,
                        format!(
                            "{what} is declared {declared} but column `{column}`{mapped} of source `{}` is {found}; declare it {found}",
                            source.name
                        ),
                    ));
                }
                Some(_) => {}
            }
        };
        for key in project.join_keys(view) {
            check(
                &key.name,
                key.value_type,
                format!("join key `{}` of feature view `{}`", key.name, view.name),
                view_at,
            );
        }
        for feature in &view.features {
            let at = parsed
                .spans
                .feature(&view.name, &feature.name)
                .unwrap_or(view_at);
            check(
                &feature.name,
                feature.value_type,
                format!("feature `{}` of view `{}`", feature.name, view.name),
                at,
            );
        }
    }
    errors
}

/// `a, b, c` with backticks, or `none` for an empty list.
fn list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.into_iter().map(|name| format!("`{name}`")).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests;
