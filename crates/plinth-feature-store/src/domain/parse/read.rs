//! Walks one file's YAML nodes (each with its line and column) into the model's objects, reporting
//! syntax errors, unknown keys, wrong types and missing fields. References between objects are checked
//! later, across files, by the validation step.

use std::collections::BTreeMap;
use std::time::Duration;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::{DefinitionError, DefinitionKind, Location, parse_duration};
use crate::domain::definitions::{
    BatchLocation, Entity, Feature, FeatureService, FeatureView, JoinKey, Metadata, Source,
    SourceKind, Tags, ViewProjection,
};
use crate::domain::value::ValueType;

type Node = MarkedYaml<'static>;

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
    let mut reader = Reader {
        path: path.to_owned(),
        text: text.chars().collect(),
        errors,
    };
    let documents: Vec<Node> = match MarkedYaml::load_from_str(text) {
        Ok(documents) => documents,
        Err(error) => {
            let marker = error.marker();
            reader.errors.push(DefinitionError {
                path: path.to_owned(),
                line: marker.line().max(1),
                column: marker.col() + 1,
                message: format!("invalid YAML: {}; fix the syntax", error.info()),
            });
            return;
        }
    };
    for document in &documents {
        if is_null(document) {
            continue;
        }
        let Some(fields) = reader.mapping(document, "a definition file", TOP_LEVEL_KEYS) else {
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
                        declared.entities.extend(reader.entity(item));
                    }
                    DefinitionKind::Source => {
                        declared.sources.extend(reader.source(item));
                    }
                    DefinitionKind::FeatureView => {
                        declared.feature_views.extend(reader.feature_view(item));
                    }
                    DefinitionKind::FeatureService => {
                        declared
                            .feature_services
                            .extend(reader.feature_service(item));
                    }
                }
            }
        }
    }
}

/// The fields of one mapping, by key, with the mapping's own place.
struct Fields<'n> {
    node: &'n Node,
    what: String,
    values: Vec<(String, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, unless absent or null.
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.values
            .iter()
            .find(|(name, value)| name == key && !is_null(value))
            .map(|(_, value)| *value)
    }
}

struct Reader<'e> {
    path: String,
    /// The file's characters, to look between a key and its value (node markers count characters).
    text: Vec<char>,
    errors: &'e mut Vec<DefinitionError>,
}

impl Reader<'_> {
    fn location(&self, node: &Node) -> Location {
        Location {
            path: self.path.clone(),
            line: node.span.start.line().max(1),
            column: node.span.start.col() + 1,
        }
    }

    fn error(&mut self, node: &Node, message: impl Into<String>) {
        let location = self.location(node);
        self.errors.push(DefinitionError::at(&location, message));
    }

    /// Reports `key` when it appears more than once in its mapping. The loader keeps the first key's
    /// place and the last value, so a repeated key shows as a second `:` between the two outside comments.
    fn check_repeated(&mut self, key: &Node, value: &Node, name: &str, what: &str) {
        let start = key.span.end.index();
        let end = value.span.start.index().min(self.text.len());
        if start >= end {
            return;
        }
        let between: String = self.text[start..end].iter().collect();
        let colons: usize = between
            .lines()
            .map(|line| {
                line.split('#')
                    .next()
                    .unwrap_or_default()
                    .matches(':')
                    .count()
            })
            .sum();
        if colons >= 2 {
            self.error(
                key,
                format!("key `{name}` appears more than once in {what}; YAML keeps only the last one, so remove or rename the others"),
            );
        }
    }

    fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        let found = describe(node);
        self.error(node, format!("{what} must be {expected}, not {found}"));
    }

    /// The node as a mapping of text keys; unknown keys are reported with the nearest valid one.
    fn mapping<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let YamlData::Mapping(mapping) = &node.data else {
            self.wrong_type(node, &capitalized(what), "a mapping of `key: value`");
            return None;
        };
        let mut values = Vec::new();
        for (key, value) in mapping {
            let Some(name) = scalar_text(key) else {
                self.wrong_type(key, &format!("a key of {what}"), "text");
                continue;
            };
            self.check_repeated(key, value, &name, what);
            if !allowed.contains(&name.as_str()) {
                let hint = match nearest(&name, allowed) {
                    Some(near) => format!("did you mean `{near}`? "),
                    None => String::new(),
                };
                self.error(
                    key,
                    format!(
                        "unknown key `{name}` in {what}; {hint}valid keys are {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            values.push((name, value));
        }
        Some(Fields {
            node,
            what: what.to_owned(),
            values,
        })
    }

    /// The mapping of an object of `kind`, named in messages by its name when it has one.
    fn object_mapping<'n>(
        &mut self,
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
        self.mapping(node, &what, allowed)
    }

    /// The value of a required field, or a reported error.
    fn required<'n>(&mut self, fields: &Fields<'n>, key: &str, example: &str) -> Option<&'n Node> {
        let found = fields.get(key);
        if found.is_none() {
            let what = fields.what.clone();
            self.error(
                fields.node,
                format!("{what} is missing the required field `{key}`; add `{key}: {example}`"),
            );
        }
        found
    }

    /// A list (null is an empty list).
    fn sequence<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.data {
            YamlData::Sequence(items) => Some(items),
            _ if is_null(node) => Some(&[]),
            _ => {
                self.wrong_type(node, what, "a list (`- item` lines or `[a, b]`)");
                None
            }
        }
    }

    /// Text, strictly: a number or a boolean is refused (names and types).
    fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.data {
            YamlData::Value(Scalar::String(text)) => {
                let text = text.trim();
                if text.is_empty() {
                    self.error(node, format!("{what} is empty; write a name"));
                    None
                } else {
                    Some(text.to_owned())
                }
            }
            _ => {
                self.wrong_type(node, what, "text");
                None
            }
        }
    }

    /// Text, leniently: numbers and booleans are taken as written (descriptions, tag values).
    fn label(&mut self, node: &Node, what: &str) -> String {
        scalar_text(node).unwrap_or_else(|| {
            self.wrong_type(node, what, "text");
            String::new()
        })
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.data {
            YamlData::Value(Scalar::Boolean(value)) => Some(*value),
            _ => {
                self.wrong_type(node, what, "true or false");
                None
            }
        }
    }

    fn value_type(&mut self, node: &Node, what: &str) -> Option<ValueType> {
        let name = self.text(node, what)?;
        match name.parse::<ValueType>() {
            Ok(value_type) => Some(value_type),
            Err(error) => {
                self.error(node, format!("{what}: {error}"));
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match &node.data {
            YamlData::Value(Scalar::Integer(0)) => return Some(Duration::ZERO),
            YamlData::Value(Scalar::Integer(number)) => {
                self.error(
                    node,
                    format!("{what} `{number}` has no unit; write it with one, such as {number}s, {number}h or {number}d"),
                );
                return None;
            }
            YamlData::Value(Scalar::String(text)) => text.to_string(),
            _ => {
                self.wrong_type(node, what, "a duration such as 1d or 1h30m");
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(duration) => Some(duration),
            Err(message) => {
                self.error(node, format!("{what} is not a duration: {message}"));
                None
            }
        }
    }

    /// A mapping of text to text (tags, field mappings).
    fn string_map(&mut self, node: &Node, what: &str) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let YamlData::Mapping(mapping) = &node.data else {
            self.wrong_type(node, what, "a mapping of `key: value`");
            return map;
        };
        for (key, value) in mapping {
            let Some(key_text) = scalar_text(key) else {
                self.wrong_type(key, &format!("a key of {what}"), "text");
                continue;
            };
            self.check_repeated(key, value, &key_text, what);
            let value_text = self.label(value, &format!("`{key_text}` in {what}"));
            map.insert(key_text, value_text);
        }
        map
    }

    fn metadata(&mut self, fields: &Fields<'_>) -> Metadata {
        let mut metadata = Metadata::default();
        let what = fields.what.clone();
        if let Some(node) = fields.get(METADATA_KEYS[0]) {
            metadata.description = self.label(node, &format!("the description of {what}"));
        }
        if let Some(node) = fields.get(METADATA_KEYS[1]) {
            metadata.owner = self.label(node, &format!("the owner of {what}"));
        }
        if let Some(node) = fields.get(METADATA_KEYS[2]) {
            let tags: Tags = self.string_map(node, &format!("the tags of {what}"));
            metadata.tags = tags;
        }
        metadata
    }

    /// The object's name, or `None` (reported) when it has none.
    fn object_name(&mut self, fields: &Fields<'_>, kind: DefinitionKind) -> Option<String> {
        let node = self.required(fields, "name", &format!("my_{}", kind.as_str()))?;
        self.text(node, &format!("the name of {}", article(kind.noun())))
    }

    fn entity(&mut self, node: &Node) -> Option<Item<Entity>> {
        let fields = self.object_mapping(node, DefinitionKind::Entity, ENTITY_KEYS)?;
        let name = self.object_name(&fields, DefinitionKind::Entity)?;
        let what = format!("entity `{name}`");
        let mut item = Item {
            value: Entity {
                name,
                join_keys: Vec::new(),
                metadata: Metadata::default(),
            },
            at: self.location(node),
            parts: BTreeMap::new(),
        };
        let fields = Fields {
            what: what.clone(),
            ..fields
        };
        if let Some(keys) = self.required(&fields, "join_keys", "[{name: my_id, type: int64}]") {
            let keys = self.sequence(keys, &format!("the join_keys of {what}"));
            if keys.is_some_and(<[Node]>::is_empty) {
                self.error(node, format!("{what} has no join keys; add at least one, such as `join_keys: [{{name: my_id, type: int64}}]`"));
            }
            for (index, key_node) in keys.unwrap_or_default().iter().enumerate() {
                let Some(key_fields) =
                    self.mapping(key_node, &format!("a join key of {what}"), JOIN_KEY_KEYS)
                else {
                    continue;
                };
                let key_name = self
                    .required(&key_fields, "name", "my_id")
                    .and_then(|name| self.text(name, &format!("the name of a join key of {what}")));
                let value_type = self
                    .required(&key_fields, "type", "int64")
                    .and_then(|type_node| {
                        let value_type =
                            self.value_type(type_node, &format!("the type of a join key of {what}"))?;
                        if !value_type.is_key_type() {
                            self.error(
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
                        .insert(format!("join_keys.{index}"), self.location(key_node));
                    item.value.join_keys.push(JoinKey {
                        name: key_name,
                        value_type,
                    });
                }
            }
        }
        item.value.metadata = self.metadata(&fields);
        Some(item)
    }

    fn batch_location(&mut self, kind_key: &str, node: &Node, what: &str) -> Option<SourceKind> {
        let what = format!("the `{kind_key}` of {what}");
        match kind_key {
            "lake" => {
                let fields = self.mapping(node, &what, &["dataset"])?;
                let dataset = self.required(&fields, "dataset", "my_dataset")?;
                let dataset = self.text(dataset, &format!("the dataset of {what}"))?;
                Some(SourceKind::Batch(BatchLocation::LakeDataset(dataset)))
            }
            "parquet" => {
                let fields = self.mapping(node, &what, &["url"])?;
                let url_node = self.required(&fields, "url", "file:///data/my_source")?;
                let url = self.text(url_node, &format!("the url of {what}"))?;
                if let Err(error) = url::Url::parse(&url) {
                    self.error(
                        url_node,
                        format!("`{url}` is not a URL ({error}); write one such as file:///data/my_source or s3://bucket/my_source"),
                    );
                    return None;
                }
                Some(SourceKind::Batch(BatchLocation::ParquetUrl(url)))
            }
            "stream" => {
                let fields = self.mapping(node, &what, &["topic", "dataset"])?;
                let topic = self.required(&fields, "topic", "my_topic")?;
                let topic = self.text(topic, &format!("the topic of {what}"))?;
                let dataset = match fields.get("dataset") {
                    Some(dataset) => self.text(dataset, &format!("the dataset of {what}"))?,
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
                let fields = self.mapping(node, &what, &["dataset"])?;
                let batch = match fields.get("dataset") {
                    Some(dataset) => Some(BatchLocation::LakeDataset(
                        self.text(dataset, &format!("the dataset of {what}"))?,
                    )),
                    None => None,
                };
                Some(SourceKind::Push { batch })
            }
        }
    }

    fn source(&mut self, node: &Node) -> Option<Item<Source>> {
        let fields = self.object_mapping(node, DefinitionKind::Source, SOURCE_KEYS)?;
        let name = self.object_name(&fields, DefinitionKind::Source)?;
        let what = format!("source `{name}`");
        let fields = Fields {
            what: what.clone(),
            ..fields
        };
        let mut item = Item {
            value: Source {
                name,
                kind: SourceKind::Push { batch: None },
                timestamp_field: String::new(),
                created_timestamp_column: None,
                field_mapping: BTreeMap::new(),
                metadata: Metadata::default(),
            },
            at: self.location(node),
            parts: BTreeMap::new(),
        };
        let kinds: Vec<(&str, &Node)> = fields
            .values
            .iter()
            .filter(|(key, _)| SOURCE_KINDS.contains(&key.as_str()))
            .map(|(key, value)| (key.as_str(), *value))
            .collect();
        match kinds.as_slice() {
            [] => self.error(
                node,
                format!("{what} says nowhere its rows come from; add one of `lake: {{dataset: ...}}`, `parquet: {{url: ...}}`, `stream: {{topic: ...}}` or `push: {{}}`"),
            ),
            [(kind_key, kind_node)] => {
                if let Some(kind) = self.batch_location(kind_key, kind_node, &what) {
                    item.value.kind = kind;
                }
            }
            [_, (second_key, second_node), ..] => {
                let keys: Vec<&str> = kinds.iter().map(|(key, _)| *key).collect();
                self.error(
                    second_node,
                    format!(
                        "{what} has {}; a source has exactly one of lake, parquet, stream, push: remove `{second_key}` or the others",
                        keys.join(" and ")
                    ),
                );
            }
        }
        if let Some(timestamp) = self.required(&fields, "timestamp_field", "event_timestamp") {
            item.parts
                .insert("timestamp_field".to_owned(), self.location(timestamp));
            if let Some(text) = self.text(timestamp, &format!("the timestamp_field of {what}")) {
                item.value.timestamp_field = text;
            }
        }
        if let Some(created) = fields.get("created_timestamp_column") {
            item.parts.insert(
                "created_timestamp_column".to_owned(),
                self.location(created),
            );
            item.value.created_timestamp_column =
                self.text(created, &format!("the created_timestamp_column of {what}"));
        }
        if let Some(mapping) = fields.get("field_mapping") {
            item.parts
                .insert("field_mapping".to_owned(), self.location(mapping));
            item.value.field_mapping =
                self.string_map(mapping, &format!("the field_mapping of {what}"));
        }
        item.value.metadata = self.metadata(&fields);
        Some(item)
    }

    fn feature_view(&mut self, node: &Node) -> Option<Item<FeatureView>> {
        let fields = self.object_mapping(node, DefinitionKind::FeatureView, VIEW_KEYS)?;
        let name = self.object_name(&fields, DefinitionKind::FeatureView)?;
        let what = format!("feature view `{name}`");
        let fields = Fields {
            what: what.clone(),
            ..fields
        };
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
            at: self.location(node),
            parts: BTreeMap::new(),
        };
        if let Some(entities) = fields.get("entities") {
            let entities = self.sequence(entities, &format!("the entities of {what}"));
            for (index, entity) in entities.unwrap_or_default().iter().enumerate() {
                if let Some(entity_name) = self.text(entity, &format!("an entity name in {what}")) {
                    item.parts
                        .insert(format!("entities.{index}"), self.location(entity));
                    item.value.entities.push(entity_name);
                }
            }
        }
        if let Some(ttl) = fields.get("ttl") {
            item.value.ttl = self
                .duration(ttl, &format!("the ttl of {what}"))
                .unwrap_or_default();
        }
        if let Some(source) = self.required(&fields, "source", "my_source") {
            item.parts
                .insert("source".to_owned(), self.location(source));
            item.value.source = self
                .text(source, &format!("the source of {what}"))
                .unwrap_or_default();
        }
        if let Some(online) = fields.get("online") {
            item.value.online = self
                .boolean(online, &format!("`online` of {what}"))
                .unwrap_or(true);
        }
        if let Some(offline) = fields.get("offline") {
            item.value.offline = self
                .boolean(offline, &format!("`offline` of {what}"))
                .unwrap_or(true);
        }
        if let Some(features) =
            self.required(&fields, "features", "[{name: my_feature, type: float64}]")
        {
            let features = self.sequence(features, &format!("the features of {what}"));
            if features.is_some_and(<[Node]>::is_empty) {
                self.error(
                    node,
                    format!("{what} has no features; add at least one, such as `- {{name: my_feature, type: float64}}`"),
                );
            }
            for (index, feature_node) in features.unwrap_or_default().iter().enumerate() {
                let Some(feature_fields) =
                    self.mapping(feature_node, &format!("a feature of {what}"), FEATURE_KEYS)
                else {
                    continue;
                };
                let feature_name = self
                    .required(&feature_fields, "name", "my_feature")
                    .and_then(|name| self.text(name, &format!("the name of a feature of {what}")));
                let Some(feature_name) = feature_name else {
                    continue;
                };
                let feature_what = format!("feature `{feature_name}` of {what}");
                let feature_fields = Fields {
                    what: feature_what.clone(),
                    ..feature_fields
                };
                let value_type =
                    self.required(&feature_fields, "type", "float64")
                        .and_then(|type_node| {
                            self.value_type(type_node, &format!("the type of {feature_what}"))
                        });
                let description = feature_fields
                    .get("description")
                    .map(|description| {
                        self.label(description, &format!("the description of {feature_what}"))
                    })
                    .unwrap_or_default();
                item.parts
                    .insert(format!("features.{index}"), self.location(feature_node));
                item.value.features.push(Feature {
                    name: feature_name,
                    value_type: value_type.unwrap_or(ValueType::String),
                    description,
                });
            }
        }
        item.value.metadata = self.metadata(&fields);
        Some(item)
    }

    fn feature_service(&mut self, node: &Node) -> Option<Item<FeatureService>> {
        let fields = self.object_mapping(node, DefinitionKind::FeatureService, SERVICE_KEYS)?;
        let name = self.object_name(&fields, DefinitionKind::FeatureService)?;
        let what = format!("feature service `{name}`");
        let fields = Fields {
            what: what.clone(),
            ..fields
        };
        let mut item = Item {
            value: FeatureService {
                name,
                projections: Vec::new(),
                metadata: Metadata::default(),
            },
            at: self.location(node),
            parts: BTreeMap::new(),
        };
        if let Some(features) = self.required(&fields, "features", "[my_feature_view]") {
            let entries = self.sequence(features, &format!("the features of {what}"));
            if entries.is_some_and(<[Node]>::is_empty) {
                self.error(
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
                            self.text(view_node, &format!("a feature view name in {what}"))
                        else {
                            continue;
                        };
                        let mut features = Vec::new();
                        let selected_nodes = self.sequence(
                            selected,
                            &format!("the features taken from `{view}` by {what}"),
                        );
                        for (feature_index, feature) in
                            selected_nodes.unwrap_or_default().iter().enumerate()
                        {
                            if let Some(feature_name) = self.text(
                                feature,
                                &format!("a feature name taken from `{view}` by {what}"),
                            ) {
                                item.parts.insert(
                                    format!("features.{index}.{feature_index}"),
                                    self.location(feature),
                                );
                                features.push(feature_name);
                            }
                        }
                        item.parts
                            .insert(format!("features.{index}"), self.location(view_node));
                        ViewProjection {
                            feature_view: view,
                            features,
                        }
                    }
                    YamlData::Value(Scalar::String(_)) => {
                        let Some(view) =
                            self.text(entry, &format!("a feature view name in {what}"))
                        else {
                            continue;
                        };
                        item.parts
                            .insert(format!("features.{index}"), self.location(entry));
                        ViewProjection {
                            feature_view: view,
                            features: Vec::new(),
                        }
                    }
                    _ => {
                        self.wrong_type(
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
        item.value.metadata = self.metadata(&fields);
        Some(item)
    }
}

fn is_null(node: &Node) -> bool {
    matches!(node.data, YamlData::Value(Scalar::Null))
}

/// A scalar as written: text, numbers and booleans; `None` for anything else.
fn scalar_text(node: &Node) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Some(text.to_string()),
        YamlData::Value(Scalar::Integer(number)) => Some(number.to_string()),
        YamlData::Value(Scalar::FloatingPoint(number)) => Some(number.to_string()),
        YamlData::Value(Scalar::Boolean(value)) => Some(value.to_string()),
        _ => None,
    }
}

/// What a node is, for messages.
fn describe(node: &Node) -> &'static str {
    match &node.data {
        YamlData::Value(Scalar::String(_)) | YamlData::Representation(..) => "text",
        YamlData::Value(Scalar::Integer(_)) => "an integer",
        YamlData::Value(Scalar::FloatingPoint(_)) => "a number",
        YamlData::Value(Scalar::Boolean(_)) => "true/false",
        YamlData::Value(Scalar::Null) => "empty",
        YamlData::Sequence(_) => "a list",
        YamlData::Mapping(_) => "a mapping",
        YamlData::Tagged(..) => "a tagged value",
        YamlData::Alias(_) | YamlData::BadValue => "an unreadable value",
    }
}

fn capitalized(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

fn article(noun: &str) -> String {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {noun}")
    } else {
        format!("a {noun}")
    }
}

/// The candidate closest to `name` by edit distance, when close enough to be a typo.
pub(super) fn nearest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 2).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (left_index, left_char) in left.chars().enumerate() {
        let mut current = vec![left_index + 1];
        for (right_index, right_char) in right.iter().enumerate() {
            let substitution = previous[right_index] + usize::from(left_char != *right_char);
            let insertion = current[right_index] + 1;
            let deletion = previous[right_index + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[right.len()]
}
