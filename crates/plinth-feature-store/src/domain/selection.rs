//! Which features a request reads: a feature service, or feature references `view:feature`, resolved
//! against the project into views and their features, with the output column names.

use std::collections::BTreeMap;

use crate::domain::definitions::{FeatureView, Project};

/// The features read from one view, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedView {
    /// The view's name.
    pub view: String,
    /// The features, in order, each at most once.
    pub features: Vec<String>,
}

/// Where the features are going: the online path reads only online views, training sets only offline
/// ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// GetOnlineFeatures.
    Online,
    /// Training sets.
    Offline,
}

/// A selection that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// Neither a feature service nor any feature reference was given.
    #[error(
        "no features selected; name a feature service or give feature references `view:feature`"
    )]
    Empty,
    /// The feature service is not registered.
    #[error("feature service `{name}` is not registered; registered services: {known}")]
    UnknownService {
        /// The name asked for.
        name: String,
        /// The registered names, comma separated.
        known: String,
    },
    /// A reference is not `view:feature`.
    #[error(
        "`{reference}` is not a feature reference; write `view:feature`, e.g. `driver_hourly_stats:conv_rate`"
    )]
    BadReference {
        /// The reference as given.
        reference: String,
    },
    /// The view is not registered.
    #[error("feature view `{view}` is not registered; registered views: {known}")]
    UnknownView {
        /// The view asked for.
        view: String,
        /// The registered names, comma separated.
        known: String,
    },
    /// The view has no such feature.
    #[error("feature view `{view}` has no feature `{feature}`; its features: {known}")]
    UnknownFeature {
        /// The view.
        view: String,
        /// The feature asked for.
        feature: String,
        /// The view's features, comma separated.
        known: String,
    },
    /// The view is declared `online: false` and cannot be read online (or `offline: false` for training).
    #[error(
        "feature view `{view}` is not {purpose}; set `{purpose}: true` in its definition and apply it"
    )]
    NotAvailable {
        /// The view.
        view: String,
        /// `online` or `offline`.
        purpose: &'static str,
    },
    /// Short names were asked for and two selected views share a feature name.
    #[error(
        "feature `{feature}` is selected from both `{first}` and `{second}`; use full feature names (`<view>__<feature>`) or select it from one view"
    )]
    NameCollision {
        /// The shared feature name.
        feature: String,
        /// One view.
        first: String,
        /// The other view.
        second: String,
    },
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let joined = names.map(String::as_str).collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        "none".to_owned()
    } else {
        joined
    }
}

/// A request's feature selection before it is resolved against the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureRequest {
    /// A feature service, by name.
    Service(String),
    /// Feature references `view:feature`.
    Refs(Vec<String>),
}

/// Resolves a request's selection (a service or references).
pub fn resolve(
    project: &Project,
    request: &FeatureRequest,
    purpose: Purpose,
) -> Result<Vec<SelectedView>, SelectionError> {
    match request {
        FeatureRequest::Service(name) => resolve_service(project, name, purpose),
        FeatureRequest::Refs(references) => resolve_refs(project, references, purpose),
    }
}

/// Resolves a feature service into its views and features.
pub fn resolve_service(
    project: &Project,
    name: &str,
    purpose: Purpose,
) -> Result<Vec<SelectedView>, SelectionError> {
    let service =
        project
            .feature_services
            .get(name)
            .ok_or_else(|| SelectionError::UnknownService {
                name: name.to_owned(),
                known: names(project.feature_services.keys()),
            })?;
    let mut selected: Vec<SelectedView> = Vec::new();
    for projection in &service.projections {
        let view = view(project, &projection.feature_view, purpose)?;
        let features = if projection.features.is_empty() {
            view.features
                .iter()
                .map(|feature| feature.name.clone())
                .collect()
        } else {
            projection.features.clone()
        };
        for feature in features {
            add(&mut selected, view, feature)?;
        }
    }
    if selected.is_empty() {
        return Err(SelectionError::Empty);
    }
    Ok(selected)
}

/// Resolves feature references `view:feature` (also `view@v:feature` is refused as a bad reference).
pub fn resolve_refs(
    project: &Project,
    references: &[String],
    purpose: Purpose,
) -> Result<Vec<SelectedView>, SelectionError> {
    let mut selected: Vec<SelectedView> = Vec::new();
    for reference in references {
        let Some((view_name, feature)) = reference.split_once(':') else {
            return Err(SelectionError::BadReference {
                reference: reference.clone(),
            });
        };
        if view_name.is_empty() || feature.is_empty() || feature.contains(':') {
            return Err(SelectionError::BadReference {
                reference: reference.clone(),
            });
        }
        let view = view(project, view_name, purpose)?;
        add(&mut selected, view, feature.to_owned())?;
    }
    if selected.is_empty() {
        return Err(SelectionError::Empty);
    }
    Ok(selected)
}

fn view<'a>(
    project: &'a Project,
    name: &str,
    purpose: Purpose,
) -> Result<&'a FeatureView, SelectionError> {
    let view = project
        .feature_views
        .get(name)
        .ok_or_else(|| SelectionError::UnknownView {
            view: name.to_owned(),
            known: names(project.feature_views.keys()),
        })?;
    let (available, purpose_name) = match purpose {
        Purpose::Online => (view.online, "online"),
        Purpose::Offline => (view.offline, "offline"),
    };
    if !available {
        return Err(SelectionError::NotAvailable {
            view: name.to_owned(),
            purpose: purpose_name,
        });
    }
    Ok(view)
}

fn add(
    selected: &mut Vec<SelectedView>,
    view: &FeatureView,
    feature: String,
) -> Result<(), SelectionError> {
    if view.feature(&feature).is_none() {
        return Err(SelectionError::UnknownFeature {
            view: view.name.clone(),
            feature,
            known: names(view.features.iter().map(|feature| &feature.name)),
        });
    }
    match selected.iter_mut().find(|entry| entry.view == view.name) {
        Some(entry) => {
            if !entry.features.contains(&feature) {
                entry.features.push(feature);
            }
        }
        None => selected.push(SelectedView {
            view: view.name.clone(),
            features: vec![feature],
        }),
    }
    Ok(())
}

/// The output column names of a selection, in selection order: `<view>__<feature>` with full names, the
/// feature name alone otherwise (refused when two views share a feature name).
pub fn output_names(
    selected: &[SelectedView],
    full_names: bool,
) -> Result<Vec<String>, SelectionError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for entry in selected {
        for feature in &entry.features {
            if full_names {
                out.push(format!("{}__{feature}", entry.view));
            } else {
                if let Some(first) = seen.insert(feature, &entry.view) {
                    return Err(SelectionError::NameCollision {
                        feature: feature.clone(),
                        first: first.to_owned(),
                        second: entry.view.clone(),
                    });
                }
                out.push(feature.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
