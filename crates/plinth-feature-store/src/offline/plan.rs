//! What a training set reads: per selected view, its join keys, its source's location and columns, its
//! TTL and the features with their output names. Built from the project and a resolved selection.

use std::time::Duration;

use crate::domain::definitions::{BatchLocation, JoinKey, Project};
use crate::domain::selection::{SelectedView, output_names};
use crate::domain::value::ValueType;
use crate::offline::OfflineError;

/// The entity rows' timestamp column when the request names none (Feast's default).
pub const DEFAULT_ENTITY_TIMESTAMP_COLUMN: &str = "event_timestamp";

/// A training set's reads and options.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSetPlan {
    /// The views, in selection order; their features come out in this order.
    pub views: Vec<ViewPlan>,
    /// The entity rows' timestamp column.
    pub entity_timestamp_column: String,
    /// Whether rows created after an entity row's timestamp are left out.
    pub filter_by_created_timestamp: bool,
}

/// One view's part of a training set.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewPlan {
    /// The view's name.
    pub view: String,
    /// Its join keys (the entity rows' column names and types), in order.
    pub join_keys: Vec<JoinKey>,
    /// The source column of each join key, in the same order.
    pub key_columns: Vec<String>,
    /// Where the source's rows are.
    pub location: BatchLocation,
    /// The source's event-time column.
    pub timestamp_column: String,
    /// The source's write-time column, where any.
    pub created_column: Option<String>,
    /// How long a row stays valid; zero means forever.
    pub ttl: Duration,
    /// The selected features.
    pub features: Vec<PlannedFeature>,
}

/// One selected feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFeature {
    /// The feature's name.
    pub name: String,
    /// Its column in the source (after the field mapping).
    pub source_column: String,
    /// Its type.
    pub value_type: ValueType,
    /// Its column in the training set.
    pub output_name: String,
}

impl TrainingSetPlan {
    /// The plan of `selection` over `project`: output names `<view>__<feature>` unless `short_names`
    /// (refused when two views share a feature name); entity timestamps in
    /// [`DEFAULT_ENTITY_TIMESTAMP_COLUMN`] (change `entity_timestamp_column` after to use another).
    pub fn new(
        project: &Project,
        selection: &[SelectedView],
        short_names: bool,
        filter_by_created_timestamp: bool,
    ) -> Result<Self, OfflineError> {
        let names = output_names(selection, !short_names)?;
        let mut names = names.into_iter();
        let mut views = Vec::with_capacity(selection.len());
        for selected in selection {
            let unusable = |reason: String| OfflineError::ViewUnusable {
                view: selected.view.clone(),
                reason,
            };
            let view = project
                .feature_views
                .get(&selected.view)
                .ok_or_else(|| unusable("it is not registered".to_owned()))?;
            let source = project.sources.get(&view.source).ok_or_else(|| {
                unusable(format!("its source `{}` is not registered", view.source))
            })?;
            let location = source.batch_location().ok_or_else(|| {
                unusable(format!(
                    "its source `{}` has no batch side to read history from; give the push source a batch location",
                    source.name
                ))
            })?;
            let join_keys = project.join_keys(view);
            let key_columns = join_keys
                .iter()
                .map(|key| source.source_column(&key.name).to_owned())
                .collect();
            let mut features = Vec::with_capacity(selected.features.len());
            for name in &selected.features {
                let feature = view
                    .feature(name)
                    .ok_or_else(|| unusable(format!("it has no feature `{name}`")))?;
                let output_name = names.next().ok_or_else(|| {
                    unusable("the selection's output names do not match its features".to_owned())
                })?;
                features.push(PlannedFeature {
                    name: feature.name.clone(),
                    source_column: source.source_column(&feature.name).to_owned(),
                    value_type: feature.value_type,
                    output_name,
                });
            }
            views.push(ViewPlan {
                view: view.name.clone(),
                join_keys,
                key_columns,
                location: location.clone(),
                timestamp_column: source.timestamp_field.clone(),
                created_column: source.created_timestamp_column.clone(),
                ttl: view.ttl,
                features,
            });
        }
        Ok(Self {
            views,
            entity_timestamp_column: DEFAULT_ENTITY_TIMESTAMP_COLUMN.to_owned(),
            filter_by_created_timestamp,
        })
    }
}
