//! Walks one file's YAML nodes (each with its line and column) into the model's objects, reporting
//! syntax errors, unknown keys, wrong types and missing fields. References between objects are checked
//! later, across files, by the validation step. The generic walking (typed values, unknown and repeated
//! keys, required fields) is `plinth_runtime::yaml`, shared with the orchestrator's pipeline files.

use std::collections::BTreeMap;
use std::time::Duration;

use plinth_runtime::yaml::{Fields, Location, Node, Reader, article, is_null, scalar_text};
use saphyr::{Scalar, YamlData};

use super::{DefinitionError, DefinitionKind};
use crate::domain::definitions::{
    BatchLocation, Entity, Feature, FeatureService, FeatureView, JoinKey, Metadata, Source,
    SourceKind, Tags, ViewProjection,
};
use crate::domain::value::ValueType;

/// One object as read, with where it and its parts were declared.
#[derive(Debug)]
pub(super) struct Item<T> {
    /// The object; fields that failed to read hold defaults (the failure is already reported).
    pub(super) value: T,
    /// Where the object starts.
    pub(super) at: Location,
    /// Where its parts were declared, by a dotted path (`entities.0`, `features.2`, `features.1.0`).
    pub(super) parts: BTreeMap<String, Location>,
}

impl<T> Item<T> {
    /// Where the part `path` was declared, or the object itself.
    pub(super) fn part(&self, path: &str) -> &Location {
        self.parts.get(path).unwrap_or(&self.at)
    }
}

/// Every object read from every file, in file order.
#[derive(Debug, Default)]
pub(super) struct Declared {
    pub(super) entities: Vec<Item<Entity>>,
    pub(super) sources: Vec<Item<Source>>,
    pub(super) feature_views: Vec<Item<FeatureView>>,
    pub(super) feature_services: Vec<Item<FeatureService>>,
}

const TOP_LEVEL_KEYS: &[&str] = &["entities", "sources", "feature_views", "feature_services"];
const METADATA_KEYS: [&str; 3] = ["description", "owner", "tags"];
const ENTITY_KEYS: &[&str] = &["name", "join_keys", "description", "owner", "tags"];
const JOIN_KEY_KEYS: &[&str] = &["name", "type"];
const SOURCE_KEYS: &[&str] = &[
    "name",
    "lake",
    "parquet",
    "stream",
    "push",
    "timestamp_field",
    "created_timestamp_column",
    "field_mapping",
    "description",
    "owner",
    "tags",
];
const SOURCE_KINDS: [&str; 4] = ["lake", "parquet", "stream", "push"];
const VIEW_KEYS: &[&str] = &[
    "name",
    "entities",
    "ttl",
    "source",
    "online",
    "offline",
    "features",
    "description",
    "owner",
    "tags",
];
const FEATURE_KEYS: &[&str] = &["name", "type", "description"];
const SERVICE_KEYS: &[&str] = &["name", "features", "description", "owner", "tags"];

/// Reads one file into `declared`, adding its mistakes to `errors`.
pub(super) fn read_file(
    path: &str,
    text: &str,
    declared: &mut Declared,
    errors: &mut Vec<DefinitionError>,
) {
    let mut reader = Reader::new(path, text);
    for document in reader.documents() {
        let Some(fields) = reader.mapping(&document.root, "a definition file", TOP_LEVEL_KEYS)
        else {
            continue;
        };
        for (kind, key) in DefinitionKind::ALL
            .into_iter()
            .map(|kind| (kind, kind.list_key()))
        {
            let Some(list) = fields.get(key) else {
                continue;
            };
            let Some(items) = reader.sequence(list, &format!("`{key}`")) else {
                continue;
            };
            for item in items {
                match kind {
                    DefinitionKind::Entity => {
                        declared.entities.extend(entity(&mut reader, item));
                    }
                    DefinitionKind::Source => {
                        declared.sources.extend(source(&mut reader, item));
                    }
                    DefinitionKind::FeatureView => {
                        declared
                            .feature_views
                            .extend(feature_view(&mut reader, item));
                    }
                    DefinitionKind::FeatureService => {
                        declared
                            .feature_services
                            .extend(feature_service(&mut reader, item));
                    }
                }
            }
        }
    }
    errors.extend(reader.into_errors());
}

/// The mapping of an object of `kind`, named in messages by its name when it has one.
fn object_mapping<'n>(
    reader: &mut Reader,
    node: &'n Node,
    kind: DefinitionKind,
    allowed: &[&str],
) -> Option<Fields<'n>> {
    let name = match &node.data {
        YamlData::Mapping(mapping) => mapping
            .iter()
            .find(|(key, _)| scalar_text(key).as_deref() == Some("name"))
            .and_then(|(_, value)| match &value.data {
                YamlData::Value(Scalar::String(name)) if !name.trim().is_empty() => {
                    Some(name.trim().to_owned())
                }
                _ => None,
            }),
        _ => None,
    };
    let what = match name {
        Some(name) => format!("{} `{name}`", kind.noun()),
        None => article(kind.noun()),
    };
    reader.mapping(node, &what, allowed)
}

/// A value type by name (`int64`, Feast's `Int64`).
fn value_type(reader: &mut Reader, node: &Node, what: &str) -> Option<ValueType> {
    let name = reader.text(node, what)?;
    match name.parse::<ValueType>() {
        Ok(value_type) => Some(value_type),
        Err(error) => {
            reader.error(node, format!("{what}: {error}"));
            None
        }
    }
}

fn metadata(reader: &mut Reader, fields: &Fields<'_>) -> Metadata {
    let mut metadata = Metadata::default();
    let what = fields.what().to_owned();
    if let Some(node) = fields.get(METADATA_KEYS[0]) {
        metadata.description = reader.label(node, &format!("the description of {what}"));
    }
    if let Some(node) = fields.get(METADATA_KEYS[1]) {
        metadata.owner = reader.label(node, &format!("the owner of {what}"));
    }
    if let Some(node) = fields.get(METADATA_KEYS[2]) {
        let tags: Tags = reader.string_map(node, &format!("the tags of {what}"));
        metadata.tags = tags;
    }
    metadata
}

/// The object's name, or `None` (reported) when it has none.
fn object_name(reader: &mut Reader, fields: &Fields<'_>, kind: DefinitionKind) -> Option<String> {
    let node = reader.required(fields, "name", &format!("my_{}", kind.as_str()))?;
    reader.text(node, &format!("the name of {}", article(kind.noun())))
}

fn entity(reader: &mut Reader, node: &Node) -> Option<Item<Entity>> {
    let fields = object_mapping(reader, node, DefinitionKind::Entity, ENTITY_KEYS)?;
    let name = object_name(reader, &fields, DefinitionKind::Entity)?;
    let what = format!("entity `{name}`");
    let mut item = Item {
        value: Entity {
            name,
            join_keys: Vec::new(),
            metadata: Metadata::default(),
        },
        at: reader.location(node),
        parts: BTreeMap::new(),
    };
    let fields = fields.described(what.clone());
    if let Some(keys) = reader.required(&fields, "join_keys", "[{name: my_id, type: int64}]") {
        let keys = reader.sequence(keys, &format!("the join_keys of {what}"));
        if keys.is_some_and(<[Node]>::is_empty) {
            reader.error(node, format!("{what} has no join keys; add at least one, such as `join_keys: [{{name: my_id, type: int64}}]`"));
        }
        for (index, key_node) in keys.unwrap_or_default().iter().enumerate() {
            let Some(key_fields) =
                reader.mapping(key_node, &format!("a join key of {what}"), JOIN_KEY_KEYS)
            else {
                continue;
            };
            let key_name = reader
                .required(&key_fields, "name", "my_id")
                .and_then(|name| reader.text(name, &format!("the name of a join key of {what}")));
            let value_type = reader
                .required(&key_fields, "type", "int64")
                .and_then(|type_node| {
                    let value_type =
                        value_type(reader, type_node, &format!("the type of a join key of {what}"))?;
                    if !value_type.is_key_type() {
                        reader.error(
                            type_node,
                            format!(
                                "join key `{}` of {what} has type {value_type}, which cannot be a join key; use string, bytes, int32 or int64",
                                key_name.as_deref().unwrap_or("?")
                            ),
                        );
                    }
                    Some(value_type)
                });
            if let (Some(key_name), Some(value_type)) = (key_name, value_type) {
                item.parts
                    .insert(format!("join_keys.{index}"), reader.location(key_node));
                item.value.join_keys.push(JoinKey {
                    name: key_name,
                    value_type,
                });
            }
        }
    }
    item.value.metadata = metadata(reader, &fields);
    Some(item)
}

fn batch_location(
    reader: &mut Reader,
    kind_key: &str,
    node: &Node,
    what: &str,
) -> Option<SourceKind> {
    let what = format!("the `{kind_key}` of {what}");
    match kind_key {
        "lake" => {
            let fields = reader.mapping(node, &what, &["dataset"])?;
            let dataset = reader.required(&fields, "dataset", "my_dataset")?;
            let dataset = reader.text(dataset, &format!("the dataset of {what}"))?;
            Some(SourceKind::Batch(BatchLocation::LakeDataset(dataset)))
        }
        "parquet" => {
            let fields = reader.mapping(node, &what, &["url"])?;
            let url_node = reader.required(&fields, "url", "file:///data/my_source")?;
            let url = reader.text(url_node, &format!("the url of {what}"))?;
            if let Err(error) = url::Url::parse(&url) {
                reader.error(
                    url_node,
                    format!("`{url}` is not a URL ({error}); write one such as file:///data/my_source or s3://bucket/my_source"),
                );
                return None;
            }
            Some(SourceKind::Batch(BatchLocation::ParquetUrl(url)))
        }
        "stream" => {
            let fields = reader.mapping(node, &what, &["topic", "dataset"])?;
            let topic = reader.required(&fields, "topic", "my_topic")?;
            let topic = reader.text(topic, &format!("the topic of {what}"))?;
            let dataset = match fields.get("dataset") {
                Some(dataset) => reader.text(dataset, &format!("the dataset of {what}"))?,
                None => topic.clone(),
            };
            Some(SourceKind::Stream {
                topic,
                batch: BatchLocation::LakeDataset(dataset),
            })
        }
        _ => {
            if is_null(node) {
                return Some(SourceKind::Push { batch: None });
            }
            let fields = reader.mapping(node, &what, &["dataset"])?;
            let batch = match fields.get("dataset") {
                Some(dataset) => Some(BatchLocation::LakeDataset(
                    reader.text(dataset, &format!("the dataset of {what}"))?,
                )),
                None => None,
            };
            Some(SourceKind::Push { batch })
        }
    }
}

fn source(reader: &mut Reader, node: &Node) -> Option<Item<Source>> {
    let fields = object_mapping(reader, node, DefinitionKind::Source, SOURCE_KEYS)?;
    let name = object_name(reader, &fields, DefinitionKind::Source)?;
    let what = format!("source `{name}`");
    let fields = fields.described(what.clone());
    let mut item = Item {
        value: Source {
            name,
            kind: SourceKind::Push { batch: None },
            timestamp_field: String::new(),
            created_timestamp_column: None,
            field_mapping: BTreeMap::new(),
            metadata: Metadata::default(),
        },
        at: reader.location(node),
        parts: BTreeMap::new(),
    };
    let kinds: Vec<(&str, &Node)> = fields
        .iter()
        .filter(|(key, _, _)| SOURCE_KINDS.contains(key))
        .map(|(key, _, value)| (key, value))
        .collect();
    match kinds.as_slice() {
        [] => reader.error(
            node,
            format!("{what} says nowhere its rows come from; add one of `lake: {{dataset: ...}}`, `parquet: {{url: ...}}`, `stream: {{topic: ...}}` or `push: {{}}`"),
        ),
        [(kind_key, kind_node)] => {
            if let Some(kind) = batch_location(reader, kind_key, kind_node, &what) {
                item.value.kind = kind;
            }
        }
        [_, (second_key, second_node), ..] => {
            let keys: Vec<&str> = kinds.iter().map(|(key, _)| *key).collect();
            reader.error(
                second_node,
                format!(
                    "{what} has {}; a source has exactly one of lake, parquet, stream, push: remove `{second_key}` or the others",
                    keys.join(" and ")
                ),
            );
        }
    }
    if let Some(timestamp) = reader.required(&fields, "timestamp_field", "event_timestamp") {
        item.parts
            .insert("timestamp_field".to_owned(), reader.location(timestamp));
        if let Some(text) = reader.text(timestamp, &format!("the timestamp_field of {what}")) {
            item.value.timestamp_field = text;
        }
    }
    if let Some(created) = fields.get("created_timestamp_column") {
        item.parts.insert(
            "created_timestamp_column".to_owned(),
            reader.location(created),
        );
        item.value.created_timestamp_column =
            reader.text(created, &format!("the created_timestamp_column of {what}"));
    }
    if let Some(mapping) = fields.get("field_mapping") {
        item.parts
            .insert("field_mapping".to_owned(), reader.location(mapping));
        item.value.field_mapping =
            reader.string_map(mapping, &format!("the field_mapping of {what}"));
    }
    item.value.metadata = metadata(reader, &fields);
    Some(item)
}

fn feature_view(reader: &mut Reader, node: &Node) -> Option<Item<FeatureView>> {
    let fields = object_mapping(reader, node, DefinitionKind::FeatureView, VIEW_KEYS)?;
    let name = object_name(reader, &fields, DefinitionKind::FeatureView)?;
    let what = format!("feature view `{name}`");
    let fields = fields.described(what.clone());
    let mut item = Item {
        value: FeatureView {
            name,
            entities: Vec::new(),
            features: Vec::new(),
            ttl: Duration::ZERO,
            source: String::new(),
            online: true,
            offline: true,
            metadata: Metadata::default(),
        },
        at: reader.location(node),
        parts: BTreeMap::new(),
    };
    if let Some(entities) = fields.get("entities") {
        let entities = reader.sequence(entities, &format!("the entities of {what}"));
        for (index, entity) in entities.unwrap_or_default().iter().enumerate() {
            if let Some(entity_name) = reader.text(entity, &format!("an entity name in {what}")) {
                item.parts
                    .insert(format!("entities.{index}"), reader.location(entity));
                item.value.entities.push(entity_name);
            }
        }
    }
    if let Some(ttl) = fields.get("ttl") {
        item.value.ttl = reader
            .duration(ttl, &format!("the ttl of {what}"))
            .unwrap_or_default();
    }
    if let Some(source) = reader.required(&fields, "source", "my_source") {
        item.parts
            .insert("source".to_owned(), reader.location(source));
        item.value.source = reader
            .text(source, &format!("the source of {what}"))
            .unwrap_or_default();
    }
    if let Some(online) = fields.get("online") {
        item.value.online = reader
            .boolean(online, &format!("`online` of {what}"))
            .unwrap_or(true);
    }
    if let Some(offline) = fields.get("offline") {
        item.value.offline = reader
            .boolean(offline, &format!("`offline` of {what}"))
            .unwrap_or(true);
    }
    if let Some(features) =
        reader.required(&fields, "features", "[{name: my_feature, type: float64}]")
    {
        let features = reader.sequence(features, &format!("the features of {what}"));
        if features.is_some_and(<[Node]>::is_empty) {
            reader.error(
                node,
                format!("{what} has no features; add at least one, such as `- {{name: my_feature, type: float64}}`"),
            );
        }
        for (index, feature_node) in features.unwrap_or_default().iter().enumerate() {
            let Some(feature_fields) =
                reader.mapping(feature_node, &format!("a feature of {what}"), FEATURE_KEYS)
            else {
                continue;
            };
            let feature_name = reader
                .required(&feature_fields, "name", "my_feature")
                .and_then(|name| reader.text(name, &format!("the name of a feature of {what}")));
            let Some(feature_name) = feature_name else {
                continue;
            };
            let feature_what = format!("feature `{feature_name}` of {what}");
            let feature_fields = feature_fields.described(feature_what.clone());
            let value_type = reader
                .required(&feature_fields, "type", "float64")
                .and_then(|type_node| {
                    value_type(reader, type_node, &format!("the type of {feature_what}"))
                });
            let description = feature_fields
                .get("description")
                .map(|description| {
                    reader.label(description, &format!("the description of {feature_what}"))
                })
                .unwrap_or_default();
            item.parts
                .insert(format!("features.{index}"), reader.location(feature_node));
            item.value.features.push(Feature {
                name: feature_name,
                value_type: value_type.unwrap_or(ValueType::String),
                description,
            });
        }
    }
    item.value.metadata = metadata(reader, &fields);
    Some(item)
}

fn feature_service(reader: &mut Reader, node: &Node) -> Option<Item<FeatureService>> {
    let fields = object_mapping(reader, node, DefinitionKind::FeatureService, SERVICE_KEYS)?;
    let name = object_name(reader, &fields, DefinitionKind::FeatureService)?;
    let what = format!("feature service `{name}`");
    let fields = fields.described(what.clone());
    let mut item = Item {
        value: FeatureService {
            name,
            projections: Vec::new(),
            metadata: Metadata::default(),
        },
        at: reader.location(node),
        parts: BTreeMap::new(),
    };
    if let Some(features) = reader.required(&fields, "features", "[my_feature_view]") {
        let entries = reader.sequence(features, &format!("the features of {what}"));
        if entries.is_some_and(<[Node]>::is_empty) {
            reader.error(
                node,
                format!("{what} takes no features; list views (`- my_view`) or features (`- my_view: [a, b]`)"),
            );
        }
        for (index, entry) in entries.unwrap_or_default().iter().enumerate() {
            let projection = match &entry.data {
                YamlData::Mapping(mapping) if mapping.len() == 1 => {
                    let Some((view_node, selected)) = mapping.iter().next() else {
                        continue;
                    };
                    let Some(view) =
                        reader.text(view_node, &format!("a feature view name in {what}"))
                    else {
                        continue;
                    };
                    let mut features = Vec::new();
                    let selected_nodes = reader.sequence(
                        selected,
                        &format!("the features taken from `{view}` by {what}"),
                    );
                    for (feature_index, feature) in
                        selected_nodes.unwrap_or_default().iter().enumerate()
                    {
                        if let Some(feature_name) = reader.text(
                            feature,
                            &format!("a feature name taken from `{view}` by {what}"),
                        ) {
                            item.parts.insert(
                                format!("features.{index}.{feature_index}"),
                                reader.location(feature),
                            );
                            features.push(feature_name);
                        }
                    }
                    item.parts
                        .insert(format!("features.{index}"), reader.location(view_node));
                    ViewProjection {
                        feature_view: view,
                        features,
                    }
                }
                YamlData::Value(Scalar::String(_)) => {
                    let Some(view) = reader.text(entry, &format!("a feature view name in {what}"))
                    else {
                        continue;
                    };
                    item.parts
                        .insert(format!("features.{index}"), reader.location(entry));
                    ViewProjection {
                        feature_view: view,
                        features: Vec::new(),
                    }
                }
                _ => {
                    reader.wrong_type(
                        entry,
                        &format!("an entry of the features of {what}"),
                        "a view name (`- my_view`) or one view with its features (`- my_view: [a, b]`)",
                    );
                    continue;
                }
            };
            item.value.projections.push(projection);
        }
    }
    item.value.metadata = metadata(reader, &fields);
    Some(item)
}
