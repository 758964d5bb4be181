//! The JSON stored in the registry's `definition` column: serde records mirroring the shared model
//! (which stays free of serde), with explicit field names so the stored form does not move when the
//! Rust structs do. Durations are whole seconds; types use their definition-file names.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::definitions::{
    BatchLocation, Entity, Feature, FeatureService, FeatureView, JoinKey, Metadata, Source,
    SourceKind, ViewProjection,
};
use crate::domain::parse::{Definition, DefinitionKind};
use crate::domain::value::ValueType;

#[derive(Debug, Serialize, Deserialize)]
struct MetadataRecord {
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TypedNameRecord {
    name: String,
    #[serde(rename = "type")]
    value_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntityRecord {
    name: String,
    join_keys: Vec<TypedNameRecord>,
    #[serde(flatten)]
    metadata: MetadataRecord,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BatchRecord {
    Lake { dataset: String },
    Parquet { url: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SourceKindRecord {
    Batch(BatchRecord),
    Stream { topic: String, batch: BatchRecord },
    Push { batch: Option<BatchRecord> },
}

#[derive(Debug, Serialize, Deserialize)]
struct SourceRecord {
    name: String,
    kind: SourceKindRecord,
    timestamp_field: String,
    #[serde(default)]
    created_timestamp_column: Option<String>,
    #[serde(default)]
    field_mapping: BTreeMap<String, String>,
    #[serde(flatten)]
    metadata: MetadataRecord,
}

#[derive(Debug, Serialize, Deserialize)]
struct FeatureViewRecord {
    name: String,
    entities: Vec<String>,
    features: Vec<TypedNameRecord>,
    ttl_seconds: u64,
    source: String,
    online: bool,
    offline: bool,
    #[serde(flatten)]
    metadata: MetadataRecord,
}

#[derive(Debug, Serialize, Deserialize)]
struct ProjectionRecord {
    feature_view: String,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FeatureServiceRecord {
    name: String,
    projections: Vec<ProjectionRecord>,
    #[serde(flatten)]
    metadata: MetadataRecord,
}

/// The JSON of a definition.
pub(crate) fn encode(definition: &Definition) -> Result<String, serde_json::Error> {
    match definition {
        Definition::Entity(entity) => serde_json::to_string(&EntityRecord {
            name: entity.name.clone(),
            join_keys: entity
                .join_keys
                .iter()
                .map(|key| TypedNameRecord {
                    name: key.name.clone(),
                    value_type: key.value_type.as_str().to_owned(),
                    description: String::new(),
                })
                .collect(),
            metadata: metadata_record(&entity.metadata),
        }),
        Definition::Source(source) => serde_json::to_string(&SourceRecord {
            name: source.name.clone(),
            kind: match &source.kind {
                SourceKind::Batch(location) => SourceKindRecord::Batch(batch_record(location)),
                SourceKind::Stream { topic, batch } => SourceKindRecord::Stream {
                    topic: topic.clone(),
                    batch: batch_record(batch),
                },
                SourceKind::Push { batch } => SourceKindRecord::Push {
                    batch: batch.as_ref().map(batch_record),
                },
            },
            timestamp_field: source.timestamp_field.clone(),
            created_timestamp_column: source.created_timestamp_column.clone(),
            field_mapping: source.field_mapping.clone(),
            metadata: metadata_record(&source.metadata),
        }),
        Definition::FeatureView(view) => serde_json::to_string(&FeatureViewRecord {
            name: view.name.clone(),
            entities: view.entities.clone(),
            features: view
                .features
                .iter()
                .map(|feature| TypedNameRecord {
                    name: feature.name.clone(),
                    value_type: feature.value_type.as_str().to_owned(),
                    description: feature.description.clone(),
                })
                .collect(),
            ttl_seconds: view.ttl.as_secs(),
            source: view.source.clone(),
            online: view.online,
            offline: view.offline,
            metadata: metadata_record(&view.metadata),
        }),
        Definition::FeatureService(service) => serde_json::to_string(&FeatureServiceRecord {
            name: service.name.clone(),
            projections: service
                .projections
                .iter()
                .map(|projection| ProjectionRecord {
                    feature_view: projection.feature_view.clone(),
                    features: projection.features.clone(),
                })
                .collect(),
            metadata: metadata_record(&service.metadata),
        }),
    }
}

/// The definition of `kind` stored as `json`; the error says what does not read.
pub(crate) fn decode(kind: DefinitionKind, json: &str) -> Result<Definition, String> {
    let value_type = |name: &str| name.parse::<ValueType>().map_err(|error| error.to_string());
    let error = |error: serde_json::Error| error.to_string();
    Ok(match kind {
        DefinitionKind::Entity => {
            let record: EntityRecord = serde_json::from_str(json).map_err(error)?;
            Definition::Entity(Entity {
                name: record.name,
                join_keys: record
                    .join_keys
                    .into_iter()
                    .map(|key| {
                        Ok(JoinKey {
                            value_type: value_type(&key.value_type)?,
                            name: key.name,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                metadata: metadata(record.metadata),
            })
        }
        DefinitionKind::Source => {
            let record: SourceRecord = serde_json::from_str(json).map_err(error)?;
            Definition::Source(Source {
                name: record.name,
                kind: match record.kind {
                    SourceKindRecord::Batch(location) => SourceKind::Batch(batch(location)),
                    SourceKindRecord::Stream {
                        topic,
                        batch: location,
                    } => SourceKind::Stream {
                        topic,
                        batch: batch(location),
                    },
                    SourceKindRecord::Push { batch: location } => SourceKind::Push {
                        batch: location.map(batch),
                    },
                },
                timestamp_field: record.timestamp_field,
                created_timestamp_column: record.created_timestamp_column,
                field_mapping: record.field_mapping,
                metadata: metadata(record.metadata),
            })
        }
        DefinitionKind::FeatureView => {
            let record: FeatureViewRecord = serde_json::from_str(json).map_err(error)?;
            Definition::FeatureView(FeatureView {
                name: record.name,
                entities: record.entities,
                features: record
                    .features
                    .into_iter()
                    .map(|feature| {
                        Ok(Feature {
                            value_type: value_type(&feature.value_type)?,
                            name: feature.name,
                            description: feature.description,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                ttl: Duration::from_secs(record.ttl_seconds),
                source: record.source,
                online: record.online,
                offline: record.offline,
                metadata: metadata(record.metadata),
            })
        }
        DefinitionKind::FeatureService => {
            let record: FeatureServiceRecord = serde_json::from_str(json).map_err(error)?;
            Definition::FeatureService(FeatureService {
                name: record.name,
                projections: record
                    .projections
                    .into_iter()
                    .map(|projection| ViewProjection {
                        feature_view: projection.feature_view,
                        features: projection.features,
                    })
                    .collect(),
                metadata: metadata(record.metadata),
            })
        }
    })
}

fn metadata_record(metadata: &Metadata) -> MetadataRecord {
    MetadataRecord {
        description: metadata.description.clone(),
        owner: metadata.owner.clone(),
        tags: metadata.tags.clone(),
    }
}

fn metadata(record: MetadataRecord) -> Metadata {
    Metadata {
        owner: record.owner,
        description: record.description,
        tags: record.tags,
    }
}

fn batch_record(location: &BatchLocation) -> BatchRecord {
    match location {
        BatchLocation::LakeDataset(dataset) => BatchRecord::Lake {
            dataset: dataset.clone(),
        },
        BatchLocation::ParquetUrl(url) => BatchRecord::Parquet { url: url.clone() },
    }
}

fn batch(record: BatchRecord) -> BatchLocation {
    match record {
        BatchRecord::Lake { dataset } => BatchLocation::LakeDataset(dataset),
        BatchRecord::Parquet { url } => BatchLocation::ParquetUrl(url),
    }
}
