//! Checks across objects and files: unique names, references that resolve, join keys that do not
//! collide, feature names that do not shadow keys or timestamps. Builds the [`Project`] and its
//! [`Spans`].

use std::collections::{BTreeMap, BTreeSet};

use plinth_runtime::yaml::nearest;

use super::read::{Declared, Item};
use super::{DefinitionError, DefinitionKind, ParsedProject, Spans, list};
use crate::domain::definitions::Project;

/// Validates everything read and builds the project; mistakes go to `errors`.
pub(super) fn validate(declared: Declared, errors: &mut Vec<DefinitionError>) -> ParsedProject {
    let mut spans = Spans::default();
    let entities = unique(
        declared.entities,
        DefinitionKind::Entity,
        |entity| &entity.name,
        errors,
    );
    let sources = unique(
        declared.sources,
        DefinitionKind::Source,
        |source| &source.name,
        errors,
    );
    let views = unique(
        declared.feature_views,
        DefinitionKind::FeatureView,
        |view| &view.name,
        errors,
    );
    let services = unique(
        declared.feature_services,
        DefinitionKind::FeatureService,
        |service| &service.name,
        errors,
    );

    for item in entities.values() {
        let entity = &item.value;
        let mut seen = BTreeSet::new();
        for (index, key) in entity.join_keys.iter().enumerate() {
            if !seen.insert(&key.name) {
                errors.push(DefinitionError::at(
                    item.part(&format!("join_keys.{index}")),
                    format!(
                        "entity `{}` lists join key `{}` twice; remove one",
                        entity.name, key.name
                    ),
                ));
            }
        }
    }

    for item in sources.values() {
        let source = &item.value;
        if source.created_timestamp_column.as_ref() == Some(&source.timestamp_field) {
            errors.push(DefinitionError::at(
                item.part("created_timestamp_column"),
                format!(
                    "source `{}` names `{}` as both its timestamp_field and its created_timestamp_column; the created timestamp breaks ties between rows of the same event time, so name another column or remove it",
                    source.name, source.timestamp_field
                ),
            ));
        }
    }

    for item in views.values() {
        check_view(item, &entities, &sources, errors);
    }
    for item in services.values() {
        check_service(item, &views, errors);
    }

    let mut project = Project::default();
    for (name, item) in entities {
        spans
            .objects
            .insert((DefinitionKind::Entity, name.clone()), item.at);
        project.entities.insert(name, item.value);
    }
    for (name, item) in sources {
        spans
            .objects
            .insert((DefinitionKind::Source, name.clone()), item.at.clone());
        project.sources.insert(name, item.value);
    }
    for (name, item) in views {
        for (index, feature) in item.value.features.iter().enumerate() {
            spans.features.insert(
                (name.clone(), feature.name.clone()),
                item.part(&format!("features.{index}")).clone(),
            );
        }
        spans
            .objects
            .insert((DefinitionKind::FeatureView, name.clone()), item.at);
        project.feature_views.insert(name, item.value);
    }
    for (name, item) in services {
        spans
            .objects
            .insert((DefinitionKind::FeatureService, name.clone()), item.at);
        project.feature_services.insert(name, item.value);
    }
    ParsedProject { project, spans }
}

/// The items by name; a second item of the same name is reported with both places and dropped.
fn unique<T>(
    items: Vec<Item<T>>,
    kind: DefinitionKind,
    name_of: impl Fn(&T) -> &String,
    errors: &mut Vec<DefinitionError>,
) -> BTreeMap<String, Item<T>> {
    let mut by_name: BTreeMap<String, Item<T>> = BTreeMap::new();
    for item in items {
        let name = name_of(&item.value).clone();
        if let Some(first) = by_name.get(&name) {
            errors.push(DefinitionError::at(
                &item.at,
                format!(
                    "duplicate {} `{name}`: it is also declared at {}; rename one or remove it",
                    kind.noun(),
                    first.at
                ),
            ));
            continue;
        }
        by_name.insert(name, item);
    }
    by_name
}

/// "unknown entity `x`; did you mean `y`? known entities: ..."
fn unknown(kind: DefinitionKind, name: &str, known: Vec<&String>, context: &str) -> String {
    let candidates: Vec<&str> = known.iter().map(|name| name.as_str()).collect();
    let hint = match nearest(name, &candidates) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    let plural = match kind {
        DefinitionKind::Entity => "entities",
        DefinitionKind::Source => "sources",
        DefinitionKind::FeatureView => "feature views",
        DefinitionKind::FeatureService => "feature services",
    };
    format!(
        "{context} names unknown {} `{name}`; {hint}declared {plural}: {}",
        kind.noun(),
        list(known)
    )
}

fn check_view(
    item: &Item<crate::domain::definitions::FeatureView>,
    entities: &BTreeMap<String, Item<crate::domain::definitions::Entity>>,
    sources: &BTreeMap<String, Item<crate::domain::definitions::Source>>,
    errors: &mut Vec<DefinitionError>,
) {
    let view = &item.value;
    let what = format!("feature view `{}`", view.name);
    // Join key name -> the entity that brings it.
    let mut keys: BTreeMap<&String, &String> = BTreeMap::new();
    let mut listed = BTreeSet::new();
    for (index, entity_name) in view.entities.iter().enumerate() {
        let at = item.part(&format!("entities.{index}"));
        if !listed.insert(entity_name) {
            errors.push(DefinitionError::at(
                at,
                format!("{what} lists entity `{entity_name}` twice; remove one"),
            ));
            continue;
        }
        let Some(entity) = entities.get(entity_name) else {
            errors.push(DefinitionError::at(
                at,
                unknown(
                    DefinitionKind::Entity,
                    entity_name,
                    entities.keys().collect(),
                    &what,
                ),
            ));
            continue;
        };
        for key in &entity.value.join_keys {
            if let Some(other) = keys.insert(&key.name, entity_name) {
                errors.push(DefinitionError::at(
                    at,
                    format!(
                        "entities `{other}` and `{entity_name}` of {what} both have join key `{}`; the keys of a view's entities must differ, so rename the join key of one entity",
                        key.name
                    ),
                ));
            }
        }
    }
    let source = sources.get(&view.source);
    if source.is_none() && !view.source.is_empty() {
        errors.push(DefinitionError::at(
            item.part("source"),
            unknown(
                DefinitionKind::Source,
                &view.source,
                sources.keys().collect(),
                &what,
            ),
        ));
    }
    let mut features = BTreeSet::new();
    for (index, feature) in view.features.iter().enumerate() {
        let at = item.part(&format!("features.{index}"));
        if !features.insert(&feature.name) {
            errors.push(DefinitionError::at(
                at,
                format!(
                    "{what} declares feature `{}` twice; rename or remove one",
                    feature.name
                ),
            ));
        }
        if let Some(entity) = keys.get(&feature.name) {
            errors.push(DefinitionError::at(
                at,
                format!(
                    "feature `{}` of {what} has the name of a join key of entity `{entity}`; rename the feature",
                    feature.name
                ),
            ));
        }
        if let Some(source) = source {
            let source = &source.value;
            let shadows = |column: &String| {
                *column == feature.name || source.source_column(&feature.name) == column
            };
            if shadows(&source.timestamp_field) {
                errors.push(DefinitionError::at(
                    at,
                    format!(
                        "feature `{}` of {what} is the timestamp_field of source `{}`; rename the feature",
                        feature.name, source.name
                    ),
                ));
            }
            if source
                .created_timestamp_column
                .as_ref()
                .is_some_and(shadows)
            {
                errors.push(DefinitionError::at(
                    at,
                    format!(
                        "feature `{}` of {what} is the created_timestamp_column of source `{}`; rename the feature",
                        feature.name, source.name
                    ),
                ));
            }
        }
    }
}

fn check_service(
    item: &Item<crate::domain::definitions::FeatureService>,
    views: &BTreeMap<String, Item<crate::domain::definitions::FeatureView>>,
    errors: &mut Vec<DefinitionError>,
) {
    let service = &item.value;
    let what = format!("feature service `{}`", service.name);
    let mut listed = BTreeSet::new();
    for (index, projection) in service.projections.iter().enumerate() {
        let at = item.part(&format!("features.{index}"));
        if !listed.insert(&projection.feature_view) {
            errors.push(DefinitionError::at(
                at,
                format!(
                    "{what} takes from view `{}` twice; merge the two entries into one",
                    projection.feature_view
                ),
            ));
            continue;
        }
        let Some(view) = views.get(&projection.feature_view) else {
            errors.push(DefinitionError::at(
                at,
                unknown(
                    DefinitionKind::FeatureView,
                    &projection.feature_view,
                    views.keys().collect(),
                    &what,
                ),
            ));
            continue;
        };
        let mut taken = BTreeSet::new();
        for (feature_index, feature) in projection.features.iter().enumerate() {
            let at = item.part(&format!("features.{index}.{feature_index}"));
            if !taken.insert(feature) {
                errors.push(DefinitionError::at(
                    at,
                    format!(
                        "{what} takes feature `{feature}` of view `{}` twice; remove one",
                        view.value.name
                    ),
                ));
                continue;
            }
            if view.value.feature(feature).is_none() {
                let names: Vec<&String> = view.value.features.iter().map(|f| &f.name).collect();
                let candidates: Vec<&str> = names.iter().map(|name| name.as_str()).collect();
                let hint = match nearest(feature, &candidates) {
                    Some(near) => format!("did you mean `{near}`? "),
                    None => String::new(),
                };
                errors.push(DefinitionError::at(
                    at,
                    format!(
                        "{what} takes feature `{feature}`, which view `{}` does not have; {hint}its features: {}",
                        view.value.name,
                        list(names)
                    ),
                ));
            }
        }
    }
}
