//! The objects a feature project declares: entities, sources, feature views and feature services, and
//! the [`Project`] they form once validated (every reference resolves, names are unique, types fit).
//!
//! These are the validated shapes every other part uses; parsing YAML and explaining mistakes with the
//! file and line live in the parsing submodule.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::value::ValueType;

/// Free-form labels on an object (`team: growth`).
pub type Tags = BTreeMap<String, String>;

/// What every object carries besides its own fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Who owns it (a team or an e-mail).
    pub owner: String,
    /// What it is.
    pub description: String,
    /// Labels for discovery.
    pub tags: Tags,
}

/// One join key of an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinKey {
    /// The column name, in sources and entity dataframes (`driver_id`).
    pub name: String,
    /// Its type; one for which [`ValueType::is_key_type`] holds.
    pub value_type: ValueType,
}

/// A thing features describe (a driver, a customer), identified by its join keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The entity's name (`driver`).
    pub name: String,
    /// Its join keys, at least one, in declaration order.
    pub join_keys: Vec<JoinKey>,
    /// Owner, description, tags.
    pub metadata: Metadata,
}

/// Where a batch of rows lives in the offline store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchLocation {
    /// A dataset of the lake (under the feature store's lake root), as the data hub's sinks write them.
    LakeDataset(String),
    /// A Parquet file or a directory of Parquet files, as an object-store URL (`file:///…`, `s3://…`).
    ParquetUrl(String),
}

/// How rows reach a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// Rows read in batches from the offline store.
    Batch(BatchLocation),
    /// A data-hub topic, consumed for streaming materialization; its lake dataset (where the topic's lake
    /// sink lands it) is the batch side used for training sets and batch materialization.
    Stream {
        /// The topic.
        topic: String,
        /// The batch side.
        batch: BatchLocation,
    },
    /// Rows written through the Push API; with a batch side, pushes to the offline store land there and
    /// training sets read it.
    Push {
        /// The batch side, where any.
        batch: Option<BatchLocation>,
    },
}

/// A data source of feature views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source's name.
    pub name: String,
    /// Where its rows come from.
    pub kind: SourceKind,
    /// The column holding each row's event time.
    pub timestamp_field: String,
    /// The column holding when each row was written, the tie-breaker between rows of the same event
    /// time; `None` when the source has none.
    pub created_timestamp_column: Option<String>,
    /// Renames from source column to feature or key name (`conv_rate_v2: conv_rate`).
    pub field_mapping: BTreeMap<String, String>,
    /// Owner, description, tags.
    pub metadata: Metadata,
}

impl Source {
    /// The batch side of the source, where it has one.
    pub fn batch_location(&self) -> Option<&BatchLocation> {
        match &self.kind {
            SourceKind::Batch(location)
            | SourceKind::Stream {
                batch: location, ..
            } => Some(location),
            SourceKind::Push { batch } => batch.as_ref(),
        }
    }

    /// The source column that holds the feature or key `name`: the field mapping's key whose value is
    /// `name`, or `name` itself.
    pub fn source_column<'a>(&'a self, name: &'a str) -> &'a str {
        self.field_mapping
            .iter()
            .find(|(_, target)| target.as_str() == name)
            .map_or(name, |(source, _)| source.as_str())
    }
}

/// One feature of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The feature's name, unique in its view.
    pub name: String,
    /// Its type.
    pub value_type: ValueType,
    /// What it means.
    pub description: String,
}

/// Typed features of some entities, read from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureView {
    /// The view's name.
    pub name: String,
    /// The entities whose join keys identify a row, by name; empty for a global view.
    pub entities: Vec<String>,
    /// The features, in declaration order.
    pub features: Vec<Feature>,
    /// How long a row stays valid after its event time; [`Duration::ZERO`] means forever.
    pub ttl: Duration,
    /// The source, by name.
    pub source: String,
    /// Whether the view is materialized to and served from the online store.
    pub online: bool,
    /// Whether the view is available for training sets.
    pub offline: bool,
    /// Owner, description, tags.
    pub metadata: Metadata,
}

impl FeatureView {
    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|feature| feature.name == name)
    }
}

/// The features a feature service takes from one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewProjection {
    /// The view, by name.
    pub feature_view: String,
    /// The features taken, in order; empty means every feature of the view.
    pub features: Vec<String>,
}

/// A named group of features, usually one per model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureService {
    /// The service's name (`driver_ranking_v2`).
    pub name: String,
    /// The views and features it takes.
    pub projections: Vec<ViewProjection>,
    /// Owner, description, tags.
    pub metadata: Metadata,
}

/// A validated set of definitions: every reference resolves, names are unique per kind, join keys and
/// features are typed. Maps are keyed by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Project {
    /// Entities.
    pub entities: BTreeMap<String, Entity>,
    /// Sources.
    pub sources: BTreeMap<String, Source>,
    /// Feature views.
    pub feature_views: BTreeMap<String, FeatureView>,
    /// Feature services.
    pub feature_services: BTreeMap<String, FeatureService>,
}

impl Project {
    /// The join keys of a view: its entities' join keys in entity order. Empty for a global view or when
    /// an entity is unknown (a validated project has none).
    pub fn join_keys(&self, view: &FeatureView) -> Vec<JoinKey> {
        view.entities
            .iter()
            .filter_map(|name| self.entities.get(name))
            .flat_map(|entity| entity.join_keys.iter().cloned())
            .collect()
    }
}
