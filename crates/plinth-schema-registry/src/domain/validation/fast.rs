//! JSON text validated without a `serde_json::Value`: a document parsed in one pass into flat arenas.
//!
//! `serde_json` still does the grammar, escapes and numbers (through a `DeserializeSeed`), so text it
//! rejects is rejected here with the same error. What changes is the tree: nodes live in one `Vec`,
//! container children are index ranges into two more, and strings without escapes borrow the input.
//!
//! Objects match `serde_json::Map` (a `BTreeMap`) exactly: members are sorted by key and a duplicate
//! key keeps its last value, so a document means the same thing on both paths.

use std::borrow::Cow;
use std::fmt;

use jsonschema::json::{Array, Json, Node, NodeIdentity, Object, cmp};
use jsonschema::types::JsonType;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The JSON representation of a [`Document`], for `jsonschema::options_for`.
pub(crate) struct TextJson;

/// One parsed JSON text. Strings without escapes borrow from the text.
#[derive(Debug)]
pub(crate) struct Document<'t> {
    nodes: Vec<NodeData<'t>>,
    /// Array elements, as node indices; an array owns a contiguous range.
    elements: Vec<u32>,
    /// Object members sorted by key, one per key; an object owns a contiguous range.
    members: Vec<(Cow<'t, str>, u32)>,
    root: u32,
}

#[derive(Debug)]
enum NodeData<'t> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'t, str>),
    Array { start: u32, len: u32 },
    Object { start: u32, len: u32 },
}

impl<'t> Document<'t> {
    /// Parses `text` exactly as `serde_json::from_str::<Value>` would accept it.
    pub(crate) fn parse(text: &'t str) -> Result<Self, serde_json::Error> {
        // Sized from the text so a typical record fills each arena without growing it.
        let mut builder = Builder {
            nodes: Vec::with_capacity(text.len() / 16 + 1),
            elements: Vec::with_capacity(text.len() / 64 + 1),
            members: Vec::with_capacity(text.len() / 16 + 1),
            open_elements: Vec::with_capacity(8),
            open_members: Vec::with_capacity(16),
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let root = NodeSeed {
            builder: &mut builder,
        }
        .deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(Document {
            nodes: builder.nodes,
            elements: builder.elements,
            members: builder.members,
            root,
        })
    }

    /// The document's top-level value.
    pub(crate) fn root(&self) -> TextNode<'_> {
        TextNode::Arena {
            document: self,
            index: self.root,
        }
    }
}

struct Builder<'t> {
    nodes: Vec<NodeData<'t>>,
    elements: Vec<u32>,
    members: Vec<(Cow<'t, str>, u32)>,
    /// Children of the containers still open, innermost last.
    open_elements: Vec<u32>,
    open_members: Vec<(Cow<'t, str>, u32)>,
}

impl<'t> Builder<'t> {
    fn push<E: serde::de::Error>(&mut self, node: NodeData<'t>) -> Result<u32, E> {
        let index = index_u32(self.nodes.len())?;
        self.nodes.push(node);
        Ok(index)
    }
}

fn index_u32<E: serde::de::Error>(index: usize) -> Result<u32, E> {
    u32::try_from(index).map_err(|_| E::custom("document too large for the validation fast path"))
}

struct NodeSeed<'b, 't> {
    builder: &'b mut Builder<'t>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = u32;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = u32;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any valid JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<u32, E> {
        self.builder.push(NodeData::Bool(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<u32, E> {
        self.builder.push(NodeData::Number(value.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<u32, E> {
        self.builder.push(NodeData::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<u32, E> {
        // What `Value`'s own visitor does with a float it cannot hold.
        let node = Number::from_f64(value).map_or(NodeData::Null, NodeData::Number);
        self.builder.push(node)
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, value: &'de str) -> Result<u32, E> {
        self.builder.push(NodeData::String(Cow::Borrowed(value)))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<u32, E> {
        self.builder
            .push(NodeData::String(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<u32, E> {
        self.builder.push(NodeData::String(Cow::Owned(value)))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<u32, E> {
        self.builder.push(NodeData::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<u32, E> {
        self.builder.push(NodeData::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u32, A::Error> {
        let builder = self.builder;
        let mark = builder.open_elements.len();
        while let Some(child) = seq.next_element_seed(NodeSeed {
            builder: &mut *builder,
        })? {
            builder.open_elements.push(child);
        }
        let start = index_u32(builder.elements.len())?;
        let len = index_u32(builder.open_elements.len() - mark)?;
        builder.elements.extend(builder.open_elements.drain(mark..));
        builder.push(NodeData::Array { start, len })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u32, A::Error> {
        let builder = self.builder;
        let mark = builder.open_members.len();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let child = map.next_value_seed(NodeSeed {
                builder: &mut *builder,
            })?;
            builder.open_members.push((key, child));
        }
        // Stable, so equal keys keep their document order and the last one wins, as in `Map`.
        builder.open_members[mark..].sort_by(|left, right| left.0.cmp(&right.0));
        let first = builder.members.len();
        let start = index_u32(first)?;
        for (key, child) in builder.open_members.drain(mark..) {
            let in_this_object = builder.members.len() > first;
            match builder.members.last_mut() {
                Some(last) if in_this_object && last.0 == key => last.1 = child,
                _ => builder.members.push((key, child)),
            }
        }
        let len = index_u32(builder.members.len() - first)?;
        builder.push(NodeData::Object { start, len })
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value))
    }
}

/// A value in a [`Document`], or a bare string (a property name under `propertyNames`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum TextNode<'a> {
    Arena {
        document: &'a Document<'a>,
        index: u32,
    },
    Name(&'a str),
}

impl<'a> TextNode<'a> {
    fn data(&self) -> Option<&'a NodeData<'a>> {
        match *self {
            TextNode::Arena { document, index } => document.nodes.get(index as usize),
            TextNode::Name(_) => None,
        }
    }

    fn document(&self) -> Option<&'a Document<'a>> {
        match *self {
            TextNode::Arena { document, .. } => Some(document),
            TextNode::Name(_) => None,
        }
    }

    fn str(&self) -> Option<&'a str> {
        match *self {
            TextNode::Name(name) => Some(name),
            TextNode::Arena { .. } => match self.data() {
                Some(NodeData::String(string)) => Some(string.as_ref()),
                _ => None,
            },
        }
    }
}

fn range<T>(items: &[T], start: u32, len: u32) -> &[T] {
    let start = start as usize;
    items.get(start..start + len as usize).unwrap_or(&[])
}

fn to_value(document: &Document<'_>, index: u32) -> Value {
    match document.nodes.get(index as usize) {
        None | Some(NodeData::Null) => Value::Null,
        Some(NodeData::Bool(value)) => Value::Bool(*value),
        Some(NodeData::Number(number)) => Value::Number(number.clone()),
        Some(NodeData::String(string)) => Value::String(string.as_ref().to_owned()),
        Some(NodeData::Array { start, len }) => Value::Array(
            range(&document.elements, *start, *len)
                .iter()
                .map(|child| to_value(document, *child))
                .collect(),
        ),
        Some(NodeData::Object { start, len }) => Value::Object(
            range(&document.members, *start, *len)
                .iter()
                .map(|(key, child)| (key.as_ref().to_owned(), to_value(document, *child)))
                .collect::<Map<String, Value>>(),
        ),
    }
}

impl Json for TextJson {
    type Node<'a> = TextNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();

    // Lookups are a binary search over sorted keys, as in `serde_json`'s `BTreeMap`.
    const KEYS_PER_LOOKUP: usize = 2;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(TextNode<'_>) -> T) -> T {
        f(TextNode::Name(string))
    }
}

impl<'a> Node<'a, TextJson> for TextNode<'a> {
    type Object = TextObject<'a>;
    type Array = TextArray<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<TextObject<'a>> {
        match (self.document(), self.data()) {
            (Some(document), Some(NodeData::Object { start, len })) => Some(TextObject {
                document,
                members: range(&document.members, *start, *len),
            }),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<TextArray<'a>> {
        match (self.document(), self.data()) {
            (Some(document), Some(NodeData::Array { start, len })) => Some(TextArray {
                document,
                elements: range(&document.elements, *start, *len),
            }),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self.data() {
            Some(NodeData::Number(number)) => Some(number),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.data() {
            Some(NodeData::Bool(value)) => Some(*value),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.data(), Some(NodeData::Null))
    }

    fn json_type(&self) -> JsonType {
        match (self, self.data()) {
            (TextNode::Name(_), _) | (_, Some(NodeData::String(_))) => JsonType::String,
            (_, None | Some(NodeData::Null)) => JsonType::Null,
            (_, Some(NodeData::Bool(_))) => JsonType::Boolean,
            (_, Some(NodeData::Number(_))) => JsonType::Number,
            (_, Some(NodeData::Array { .. })) => JsonType::Array,
            (_, Some(NodeData::Object { .. })) => JsonType::Object,
        }
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let string = self.str()?;
        // A code point takes one to four bytes, so the count lies in `ceil(bytes / 4)..=bytes`.
        let bytes = string.len() as u64;
        let fewest = bytes.div_ceil(4);
        if bytes < min || fewest > max {
            return Some(false);
        }
        if min <= fewest && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(string.chars().count() as u64)))
    }

    fn equals_value(&self, expected: &Value) -> bool {
        if let Some(actual) = self.str() {
            return matches!(expected, Value::String(expected) if expected == actual);
        }
        match self.data() {
            None | Some(NodeData::Null) => expected.is_null(),
            Some(NodeData::Bool(value)) => expected.as_bool() == Some(*value),
            Some(NodeData::Number(number)) => match expected {
                Value::Number(expected) => cmp::equal_numbers(number, expected),
                _ => false,
            },
            // Handled by `str` above.
            Some(NodeData::String(_)) => false,
            Some(NodeData::Array { .. } | NodeData::Object { .. }) => {
                cmp::equal(&self.to_value(), expected)
            }
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(match *self {
            TextNode::Arena { document, index } => to_value(document, index),
            TextNode::Name(name) => Value::String(name.to_owned()),
        })
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(match *self {
            TextNode::Arena { document, index } => {
                NodeIdentity::tagged(document.nodes.as_ptr() as usize, index)
            }
            TextNode::Name(name) => NodeIdentity::tagged(name.as_ptr() as usize, u32::MAX),
        })
    }
}

/// An object in a [`Document`]: its members, sorted by key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextObject<'a> {
    document: &'a Document<'a>,
    members: &'a [(Cow<'a, str>, u32)],
}

/// Members of a [`TextObject`] in key order.
pub(crate) struct TextMembers<'a> {
    document: &'a Document<'a>,
    members: std::slice::Iter<'a, (Cow<'a, str>, u32)>,
}

impl<'a> Iterator for TextMembers<'a> {
    type Item = (&'a str, TextNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.members.next().map(|(key, index)| {
            (
                key.as_ref(),
                TextNode::Arena {
                    document: self.document,
                    index: *index,
                },
            )
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.members.size_hint()
    }
}

impl<'a> Object<'a, TextJson> for TextObject<'a> {
    type Node = TextNode<'a>;
    type MemberName = &'a str;
    type MembersIter = TextMembers<'a>;

    fn len(&self) -> usize {
        self.members.len()
    }

    fn get(&self, key: &Box<str>) -> Option<TextNode<'a>> {
        let key: &str = key;
        self.members
            .binary_search_by(|(name, _)| name.as_ref().cmp(key))
            .ok()
            .and_then(|found| self.members.get(found))
            .map(|(_, index)| TextNode::Arena {
                document: self.document,
                index: *index,
            })
    }

    fn members(&self) -> TextMembers<'a> {
        TextMembers {
            document: self.document,
            members: self.members.iter(),
        }
    }
}

/// An array in a [`Document`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextArray<'a> {
    document: &'a Document<'a>,
    elements: &'a [u32],
}

/// Elements of a [`TextArray`] in order.
pub(crate) struct TextElements<'a> {
    document: &'a Document<'a>,
    elements: std::slice::Iter<'a, u32>,
}

impl<'a> Iterator for TextElements<'a> {
    type Item = TextNode<'a>;

    fn next(&mut self) -> Option<TextNode<'a>> {
        self.elements.next().map(|index| TextNode::Arena {
            document: self.document,
            index: *index,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.elements.size_hint()
    }
}

impl<'a> Array<'a, TextJson> for TextArray<'a> {
    type Node = TextNode<'a>;
    type ElementsIter = TextElements<'a>;

    fn len(&self) -> usize {
        self.elements.len()
    }

    fn elements(&self) -> TextElements<'a> {
        TextElements {
            document: self.document,
            elements: self.elements.iter(),
        }
    }
}
