//! Identifier newtypes shared across services. Each has the wire layout of its `plinth.common.v1`
//! message (one field, tag 1), so generated code carries these types instead of bare scalars.

use std::fmt;

/// A global schema id assigned by the schema registry; the 4 bytes after the magic byte in the
/// Confluent wire format.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct SchemaId {
    /// The numeric id.
    #[prost(uint32, tag = "1")]
    pub value: u32,
}

impl SchemaId {
    /// Wraps a numeric id.
    pub const fn new(value: u32) -> Self {
        Self { value }
    }
}

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

impl From<u32> for SchemaId {
    fn from(value: u32) -> Self {
        Self { value }
    }
}

/// A schema registry subject name, such as `orders-value`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Subject {
    /// The subject name.
    #[prost(string, tag = "1")]
    pub value: String,
}

impl Subject {
    /// Wraps a subject name. Validation of the name is the registry's job.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl From<&str> for Subject {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Subject {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// A Kafka topic name, such as `orders`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct TopicName {
    /// The topic name.
    #[prost(string, tag = "1")]
    pub value: String,
}

impl TopicName {
    /// Wraps a topic name. Validation of the name is the data hub's job.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl From<&str> for TopicName {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for TopicName {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// The name of a dataset in the data lake, such as `orders`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct DatasetName {
    /// The dataset name.
    #[prost(string, tag = "1")]
    pub value: String,
}

impl DatasetName {
    /// Wraps a dataset name. Validation of the name is the data hub's job.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl From<&str> for DatasetName {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for DatasetName {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}
