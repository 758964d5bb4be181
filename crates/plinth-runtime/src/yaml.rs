//! Reading YAML files that people write by hand, with the file, line and column of every mistake.
//!
//! A [`Reader`] loads one file (one or more `---` documents) into nodes that keep their place
//! ([`Node`], saphyr's `MarkedYaml`), then walks them on the caller's behalf: a mapping with its
//! allowed keys ([`Reader::mapping`], an unknown key is reported with the nearest valid one), required
//! fields with an example of how to add them, lists, text, integers, booleans and human durations
//! ([`parse_duration`]). Each accessor reports what is wrong and what to write instead, and the
//! reader collects every such [`SourceError`] so that one pass reports all mistakes, not the first.
//!
//! What the file means (which keys exist, references between objects) is the caller's business.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

mod duration;

pub use self::duration::{format_duration, parse_duration};

/// A YAML node with its place in the file.
pub type Node = MarkedYaml<'static>;

/// A place in a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file, as given to [`Reader::new`].
    pub path: String,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}:{}", self.path, self.line, self.column)
    }
}

/// One mistake in a file, displayed as `path:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct SourceError {
    /// The file.
    pub path: String,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl SourceError {
    /// An error at `location`.
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        Self {
            path: location.path.clone(),
            line: location.line,
            column: location.column,
            message: message.into(),
        }
    }

    /// Where the error is.
    pub fn location(&self) -> Location {
        Location {
            path: self.path.clone(),
            line: self.line,
            column: self.column,
        }
    }
}

/// One non-empty document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its root node.
    pub root: Node,
    /// Its own text: the lines between its `---` markers (the markers excluded unless the document
    /// starts on the marker's line).
    pub text: String,
}

/// The fields of one mapping, by key, in file order, with the mapping's own place.
#[derive(Debug, Clone)]
pub struct Fields<'n> {
    node: &'n Node,
    what: String,
    values: Vec<(String, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, unless absent or null.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.values
            .iter()
            .find(|(name, _, value)| name == key && !is_null(value))
            .map(|(_, _, value)| *value)
    }

    /// The node of the key `key` (for errors about the key itself).
    pub fn key_node(&self, key: &str) -> Option<&'n Node> {
        self.values
            .iter()
            .find(|(name, _, _)| name == key)
            .map(|(_, key_node, _)| *key_node)
    }

    /// Whether `key` is present (even with a null value).
    pub fn contains(&self, key: &str) -> bool {
        self.values.iter().any(|(name, _, _)| name == key)
    }

    /// Every known key with its key node and value, in file order (null values included).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'n Node, &'n Node)> + '_ {
        self.values
            .iter()
            .map(|(name, key, value)| (name.as_str(), *key, *value))
    }

    /// The mapping node.
    pub fn node(&self) -> &'n Node {
        self.node
    }

    /// How messages name the mapping (`task \`train\``).
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The same fields, named `what` in messages (once the object's name is known).
    pub fn described(self, what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            ..self
        }
    }
}

/// Walks the nodes of one file and collects its mistakes.
#[derive(Debug)]
pub struct Reader {
    path: String,
    source: String,
    /// The file's characters, to look between a key and its value (node markers count characters).
    characters: Vec<char>,
    errors: Vec<SourceError>,
}

impl Reader {
    /// A reader of the file `path` holding `text`.
    pub fn new(path: &str, text: &str) -> Self {
        Self {
            path: path.to_owned(),
            source: text.to_owned(),
            characters: text.chars().collect(),
            errors: Vec::new(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's documents, empty ones left out; a syntax error is reported and gives none.
    pub fn documents(&mut self) -> Vec<Document> {
        let roots: Vec<Node> = match MarkedYaml::load_from_str(&self.source) {
            Ok(roots) => roots,
            Err(error) => {
                let marker = error.marker();
                self.errors.push(SourceError {
                    path: self.path.clone(),
                    line: marker.line().max(1),
                    column: marker.col() + 1,
                    message: format!("invalid YAML: {}; fix the syntax", error.info()),
                });
                return Vec::new();
            }
        };
        let lines: Vec<&str> = self.source.split_inclusive('\n').collect();
        let markers: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, line)| is_document_marker(line))
            .map(|(index, _)| index + 1)
            .collect();
        roots
            .into_iter()
            .filter(|root| {
                !matches!(
                    root.data,
                    YamlData::Value(Scalar::Null) | YamlData::BadValue
                )
            })
            .map(|root| {
                let line = root.span.start.line().max(1);
                let first = match markers.iter().rev().find(|marker| **marker <= line) {
                    Some(marker) if *marker == line => line,
                    Some(marker) => marker + 1,
                    None => 1,
                };
                let last = markers
                    .iter()
                    .find(|marker| **marker > line)
                    .map_or(lines.len(), |marker| marker - 1);
                let text = lines
                    .get(first.saturating_sub(1)..last.min(lines.len()))
                    .unwrap_or_default()
                    .concat();
                Document { root, text }
            })
            .collect()
    }

    /// Where `node` starts.
    pub fn location(&self, node: &Node) -> Location {
        Location {
            path: self.path.clone(),
            line: node.span.start.line().max(1),
            column: node.span.start.col() + 1,
        }
    }

    /// Reports `message` at `node`.
    pub fn error(&mut self, node: &Node, message: impl Into<String>) {
        let location = self.location(node);
        self.errors.push(SourceError::at(&location, message));
    }

    /// Reports `message` at `location`.
    pub fn error_at(&mut self, location: &Location, message: impl Into<String>) {
        self.errors.push(SourceError::at(location, message));
    }

    /// How many mistakes were reported so far.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// The mistakes reported, in the order found.
    pub fn into_errors(self) -> Vec<SourceError> {
        self.errors
    }

    /// Reports that `what` must be `expected` and says what it is instead.
    pub fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        let found = describe(node);
        // `key: {{ params.x }}` is a flow mapping in YAML; say how to make it text.
        let hint = if matches!(node.data, YamlData::Mapping(_)) && self.starts_with(node, "{{") {
            "; a value starting with `{{` must be quoted, such as \"{{ params.name }}\""
        } else {
            ""
        };
        self.error(
            node,
            format!("{what} must be {expected}, not {found}{hint}"),
        );
    }

    fn starts_with(&self, node: &Node, prefix: &str) -> bool {
        let start = node.span.start.index();
        let mut characters = self.characters.iter().skip(start);
        prefix
            .chars()
            .all(|expected| characters.next() == Some(&expected))
    }

    /// Reports `key` when it appears more than once in its mapping. The loader keeps the first key's
    /// place and the last value, so a repeated key shows as a second `:` between the two outside
    /// comments.
    fn check_repeated(&mut self, key: &Node, value: &Node, name: &str, what: &str) {
        let start = key.span.end.index();
        let end = value.span.start.index().min(self.characters.len());
        if start >= end {
            return;
        }
        let between: String = self.characters[start..end].iter().collect();
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

    /// The node as a mapping of text keys; unknown keys are reported with the nearest valid one and
    /// left out.
    pub fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let entries = self.entries(node, what)?;
        let mut values = Vec::new();
        for (name, key, value) in entries {
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
            values.push((name, key, value));
        }
        Some(Fields {
            node,
            what: what.to_owned(),
            values,
        })
    }

    /// The node as a mapping with any text keys: `(key, key node, value)` in file order (a repeated
    /// key is reported).
    pub fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
    ) -> Option<Vec<(String, &'n Node, &'n Node)>> {
        let YamlData::Mapping(mapping) = &node.data else {
            self.wrong_type(node, &capitalized(what), "a mapping of `key: value`");
            return None;
        };
        let mut entries = Vec::new();
        for (key, value) in mapping {
            let Some(name) = scalar_text(key) else {
                self.wrong_type(key, &format!("a key of {what}"), "text");
                continue;
            };
            self.check_repeated(key, value, &name, what);
            entries.push((name, key, value));
        }
        Some(entries)
    }

    /// The value of a required field, or a reported error showing how to add it.
    pub fn required<'n>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        example: &str,
    ) -> Option<&'n Node> {
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
    pub fn sequence<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.data {
            YamlData::Sequence(items) => Some(items),
            _ if is_null(node) => Some(&[]),
            _ => {
                self.wrong_type(node, what, "a list (`- item` lines or `[a, b]`)");
                None
            }
        }
    }

    /// Text, strictly: a number or a boolean is refused (names and types); empty text is refused.
    pub fn text(&mut self, node: &Node, what: &str) -> Option<String> {
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
    pub fn label(&mut self, node: &Node, what: &str) -> String {
        scalar_text(node).unwrap_or_else(|| {
            self.wrong_type(node, what, "text");
            String::new()
        })
    }

    /// Text or a list of text, as written (`- a` or `[a, b]`), leniently like [`Reader::label`].
    pub fn labels(&mut self, node: &Node, what: &str) -> Vec<String> {
        let Some(items) = self.sequence(node, what) else {
            return Vec::new();
        };
        items
            .iter()
            .map(|item| self.label(item, &format!("an item of {what}")))
            .collect()
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.data {
            YamlData::Value(Scalar::Boolean(value)) => Some(*value),
            _ => {
                self.wrong_type(node, what, "true or false");
                None
            }
        }
    }

    /// A whole number (`3`, `-1`); text and fractions are refused.
    pub fn integer(&mut self, node: &Node, what: &str) -> Option<i64> {
        match &node.data {
            YamlData::Value(Scalar::Integer(value)) => Some(*value),
            _ => {
                self.wrong_type(node, what, "a whole number such as 3");
                None
            }
        }
    }

    /// A whole number from `min` to `max`, with the bounds in the message when out of range.
    pub fn integer_in(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.integer(node, what)?;
        if value < min || value > max {
            self.error(
                node,
                format!("{what} is {value}; write a whole number from {min} to {max}"),
            );
            return None;
        }
        Some(value)
    }

    /// A number (`0.5`, `3`); text is refused.
    pub fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match &node.data {
            YamlData::Value(Scalar::Integer(value)) => Some(*value as f64),
            YamlData::Value(Scalar::FloatingPoint(value)) => Some(value.into_inner()),
            _ => {
                self.wrong_type(node, what, "a number such as 0.5");
                None
            }
        }
    }

    /// A human duration (`30s`, `15m`, `2h`, `1d`, `1w`, `1h30m`, `0`); a bare number is refused
    /// with the fix.
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match &node.data {
            YamlData::Value(Scalar::Integer(0)) => return Some(Duration::ZERO),
            YamlData::Value(Scalar::Integer(number)) => {
                self.error(
                    node,
                    format!("{what} `{number}` has no unit; write it with one, such as {number}s, {number}m or {number}h"),
                );
                return None;
            }
            YamlData::Value(Scalar::String(text)) => text.to_string(),
            _ => {
                self.wrong_type(node, what, "a duration such as 30s or 1h30m");
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

    /// A mapping of text to text (tags, environment variables); values are read leniently.
    pub fn string_map(&mut self, node: &Node, what: &str) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let Some(entries) = self.entries(node, what) else {
            return map;
        };
        for (key, _, value) in entries {
            let text = self.label(value, &format!("`{key}` in {what}"));
            map.insert(key, text);
        }
        map
    }
}

/// Whether a line is a `---` or `...` document marker.
fn is_document_marker(line: &str) -> bool {
    let line = line.trim_end();
    ["---", "..."].iter().any(|marker| {
        line.strip_prefix(marker)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

/// Whether the node is null (`~`, `null` or nothing).
pub fn is_null(node: &Node) -> bool {
    matches!(node.data, YamlData::Value(Scalar::Null))
}

/// A scalar as written: text, numbers and booleans; `None` for anything else.
pub fn scalar_text(node: &Node) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Some(text.to_string()),
        YamlData::Value(Scalar::Integer(number)) => Some(number.to_string()),
        YamlData::Value(Scalar::FloatingPoint(number)) => Some(number.to_string()),
        YamlData::Value(Scalar::Boolean(value)) => Some(value.to_string()),
        _ => None,
    }
}

/// What a node is, for messages (`text`, `an integer`, `a list`).
pub fn describe(node: &Node) -> &'static str {
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

/// The text with its first letter in upper case.
pub fn capitalized(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// The noun with `a` or `an` before it.
pub fn article(noun: &str) -> String {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {noun}")
    } else {
        format!("a {noun}")
    }
}

/// The candidate closest to `name` by edit distance, when close enough to be a typo.
pub fn nearest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 2).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
pub fn edit_distance(left: &str, right: &str) -> usize {
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

#[cfg(test)]
mod tests;
