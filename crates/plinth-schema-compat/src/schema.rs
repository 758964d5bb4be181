//! The parsed schema model the diff walks: the shape everit's `SchemaLoader` gives Confluent.
//!
//! A JSON node becomes one [`Node`]. Its [`Kind`] is what everit would build: a node with several
//! keyword groups (`enum`, `allOf`/`anyOf`/`oneOf`, `not`, `const`, `type`, sniffed keywords)
//! is a synthetic `allOf` of one member per group, `"type": [a, b]` is an `anyOf`, and `integer`
//! and `number` are both [`Kind::Number`]. Nodes live in one [`Arena`] for both documents, so a
//! [`NodeId`] is the identity Confluent's memoization keys on.

mod keywords;
mod load;
mod resolve;

use serde_json::Value;

pub(crate) use self::load::load_pair;

/// Index of a node in the [`Arena`].
pub(crate) type NodeId = usize;

/// Every node of the original, the update and the external documents they reference.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    nodes: Vec<Node>,
}

impl Arena {
    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// Follows `$ref`s to the schema they name, as `SchemaDiff.normalizeSchema` does; a chain
    /// of references is followed to its end, and a reference cycle stops where it closes.
    pub(crate) fn normalize(&self, id: NodeId) -> NodeId {
        let mut current = id;
        for _ in 0..self.nodes.len() {
            match &self.node(current).kind {
                Kind::Reference {
                    target: Some(target),
                    ..
                } => current = *target,
                _ => return current,
            }
        }
        current
    }

    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn set(&mut self, id: NodeId, node: Node) {
        self.nodes[id] = node;
    }
}

/// One schema: the keywords every schema has, and what kind of schema it is.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) common: Common,
    pub(crate) kind: Kind,
}

/// The keywords `SchemaDiff` compares on every pair of same-kind schemas, plus the unprocessed
/// keywords it peeks at.
#[derive(Debug, Default)]
pub(crate) struct Common {
    pub(crate) id: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) default: Option<Value>,
    /// `connect.type`: two schemas both marked `bytes` never differ in type.
    pub(crate) connect_type: Option<String>,
    pub(crate) max_contains: Option<f64>,
    pub(crate) min_contains: Option<f64>,
}

/// The schema classes of everit that `SchemaDiff` tells apart.
#[derive(Debug, Default)]
pub(crate) enum Kind {
    /// `{}` or a node with no keyword everit understands.
    #[default]
    Empty,
    /// `true`; a different class from [`Kind::Empty`] that still counts as empty.
    True,
    /// `false`.
    False,
    Null,
    Boolean,
    String(StringSchema),
    Number(NumberSchema),
    Enum(Vec<Value>),
    Const(Value),
    Combined(CombinedSchema),
    Not(NodeId),
    Object(Box<ObjectSchema>),
    Array(Box<ArraySchema>),
    /// `if`/`then`/`else`: Confluent compares only the common keywords of two of these.
    Conditional,
    /// A `$ref`; `target` is `None` when it could not be resolved.
    Reference {
        reference: String,
        target: Option<NodeId>,
    },
    /// A node that is not a schema (a string where a schema belongs, a tree nested too deep),
    /// kept as a digest of its JSON. Two of them are equal when their JSON is; anything else
    /// differs in type.
    Invalid(u64),
}

impl Kind {
    /// Whether an update of this kind accepts everything (`instanceof EmptySchema`).
    pub(crate) fn is_empty_schema(&self) -> bool {
        matches!(self, Kind::Empty | Kind::True)
    }

    /// Whether two kinds are the same everit class (`SchemaDiff.schemaTypesEqual`).
    pub(crate) fn same_class(&self, other: &Kind) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

#[derive(Debug, Default)]
pub(crate) struct StringSchema {
    pub(crate) min_length: Option<i64>,
    pub(crate) max_length: Option<i64>,
    pub(crate) pattern: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct NumberSchema {
    pub(crate) requires_integer: bool,
    pub(crate) maximum: Option<f64>,
    pub(crate) minimum: Option<f64>,
    pub(crate) exclusive_maximum: Option<f64>,
    pub(crate) exclusive_minimum: Option<f64>,
    pub(crate) multiple_of: Option<serde_json::Number>,
}

/// The combining keyword; the variants are named after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::enum_variant_names,
    reason = "the variants are the keywords allOf, anyOf, oneOf"
)]
pub(crate) enum Criterion {
    AllOf,
    AnyOf,
    OneOf,
}

impl Criterion {
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Criterion::AllOf => "allOf",
            Criterion::AnyOf => "anyOf",
            Criterion::OneOf => "oneOf",
        }
    }
}

#[derive(Debug)]
pub(crate) struct CombinedSchema {
    pub(crate) criterion: Criterion,
    pub(crate) subschemas: Vec<NodeId>,
}

/// `additionalProperties` / `additionalItems`: everit keeps a "permits" flag and an optional
/// schema, so absent and `true` are the same thing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Additional {
    #[default]
    Permitted,
    Forbidden,
    Schema(NodeId),
}

impl Additional {
    pub(crate) fn permits(self) -> bool {
        !matches!(self, Additional::Forbidden)
    }

    pub(crate) fn schema(self) -> Option<NodeId> {
        match self {
            Additional::Schema(id) => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct PatternProperty {
    pub(crate) pattern: String,
    /// `None` when the pattern is not a regex the `regex` crate accepts; it then matches nothing.
    pub(crate) regex: Option<regex::Regex>,
    pub(crate) schema: NodeId,
}

#[derive(Debug, Default)]
pub(crate) struct ObjectSchema {
    pub(crate) properties: Vec<(String, NodeId)>,
    pub(crate) required: Vec<String>,
    pub(crate) additional_properties: Additional,
    pub(crate) pattern_properties: Vec<PatternProperty>,
    pub(crate) unevaluated_properties: Option<NodeId>,
    pub(crate) property_dependencies: Vec<(String, Vec<String>)>,
    pub(crate) schema_dependencies: Vec<(String, NodeId)>,
    pub(crate) min_properties: Option<i64>,
    pub(crate) max_properties: Option<i64>,
}

impl ObjectSchema {
    pub(crate) fn property(&self, name: &str) -> Option<NodeId> {
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, id)| *id)
    }

    pub(crate) fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|key| key == name)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ArraySchema {
    /// `items` as one schema for every element.
    pub(crate) all_items: Option<NodeId>,
    /// `items` as a tuple (`prefixItems` in 2020-12).
    pub(crate) item_schemas: Vec<NodeId>,
    pub(crate) additional_items: Additional,
    pub(crate) unevaluated_items: Option<NodeId>,
    pub(crate) min_items: Option<i64>,
    pub(crate) max_items: Option<i64>,
    pub(crate) unique_items: bool,
}
