//! Documents, their drafts and base URIs, and where a `$ref` points.
//!
//! A `$ref` is resolved against the base URI in force where it appears (the document's
//! retrieval URI, changed by every enclosing `$id`). The target document is, in order: the
//! document the `$ref` is in (its root or an embedded `$id` resource), an external document
//! already fetched, or one the [`ReferenceResolver`] returns for the absolute URI or, failing
//! that, for the `$ref` as written (Confluent's references are looked up by name).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::ReferenceResolver;

/// The JSON Schema drafts whose keywords differ in ways the diff sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Draft {
    Draft4,
    Draft6,
    Draft7,
    Draft201909,
    Draft202012,
}

impl Draft {
    /// The draft a document's `$schema` names, draft-07 when it names none or an unknown one;
    /// the flag says whether `$schema` named a known draft.
    fn detect(root: &Value) -> (Draft, bool) {
        let Some(schema) = root.get("$schema").and_then(Value::as_str) else {
            return (Draft::Draft7, false);
        };
        let draft = if schema.contains("draft-04") {
            Draft::Draft4
        } else if schema.contains("draft-06") {
            Draft::Draft6
        } else if schema.contains("draft-07") {
            Draft::Draft7
        } else if schema.contains("2019-09") {
            Draft::Draft201909
        } else if schema.contains("2020-12") {
            Draft::Draft202012
        } else {
            return (Draft::Draft7, false);
        };
        (draft, true)
    }

    /// Drafts 2019-09 and 2020-12, which Confluent loads through another loader.
    pub(super) fn is_modern(self) -> bool {
        self >= Draft::Draft201909
    }
}

pub(super) struct Document<'a> {
    pub(super) root: &'a Value,
    pub(super) draft: Draft,
    /// Whether `$schema` named the draft. Without it Confluent's own test data expect the
    /// draft-04 `id` keyword to be read as the schema id, so we read `$id` and then `id`.
    pub(super) declared_draft: bool,
    retrieval_uri: String,
    /// Absolute resource URI (and `uri#anchor`) to the JSON pointer of that resource.
    resources: HashMap<String, String>,
}

impl Document<'_> {
    /// The identifier keyword's value on `object`, as this document's draft reads it.
    pub(super) fn id_of<'v>(&self, object: &'v Map<String, Value>) -> Option<&'v str> {
        let dollar_id = || object.get("$id").and_then(Value::as_str);
        let plain_id = || object.get("id").and_then(Value::as_str);
        match self.draft {
            Draft::Draft4 => plain_id(),
            _ if !self.declared_draft => dollar_id().or_else(plain_id),
            _ => dollar_id(),
        }
    }
}

/// The documents of one comparison: the original (0), the update (1), then fetched ones.
pub(super) struct Documents<'a> {
    docs: Vec<Document<'a>>,
    resolver: &'a dyn ReferenceResolver,
    fetched: HashMap<String, Option<usize>>,
}

impl<'a> Documents<'a> {
    pub(super) fn new(resolver: &'a dyn ReferenceResolver) -> Documents<'a> {
        Documents {
            docs: Vec::new(),
            resolver,
            fetched: HashMap::new(),
        }
    }

    pub(super) fn get(&self, doc: usize) -> &Document<'a> {
        &self.docs[doc]
    }

    /// Adds a document retrieved from `retrieval_uri` ("" for the two schemas compared) and
    /// indexes its `$id` resources and anchors.
    pub(super) fn add(&mut self, root: &'a Value, retrieval_uri: &str) -> usize {
        let (draft, declared_draft) = Draft::detect(root);
        let mut document = Document {
            root,
            draft,
            declared_draft,
            retrieval_uri: retrieval_uri.to_string(),
            resources: HashMap::new(),
        };
        document
            .resources
            .insert(split_fragment(retrieval_uri).0.to_string(), String::new());
        let mut index = HashMap::new();
        index_resources(&document, root, String::new(), retrieval_uri, &mut index, 0);
        document.resources.extend(index);
        self.docs.push(document);
        self.docs.len() - 1
    }

    /// The base URI in force at `pointer` of `doc`.
    pub(super) fn base_at(&self, doc: usize, pointer: &str) -> String {
        let document = &self.docs[doc];
        let mut base = document.retrieval_uri.clone();
        let mut current = document.root;
        if let Some(id) = current
            .as_object()
            .and_then(|object| document.id_of(object))
        {
            base = resolve(&base, id);
        }
        for token in pointer_tokens(pointer) {
            let next = match current {
                Value::Object(object) => object.get(&token),
                Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            let Some(next) = next else { break };
            current = next;
            if let Some(id) = current
                .as_object()
                .and_then(|object| document.id_of(object))
            {
                base = resolve(&base, id);
            }
        }
        base
    }

    /// Where the `$ref` `reference`, found at `pointer` of `doc`, points: a document and a JSON
    /// pointer into it. `None` when no document or no such location is known.
    pub(super) fn locate(
        &mut self,
        doc: usize,
        pointer: &str,
        reference: &str,
    ) -> Option<(usize, String)> {
        let absolute = resolve(&self.base_at(doc, pointer), reference);
        let (resource, fragment) = split_fragment(&absolute);
        let (target_doc, root_pointer) = self.find_resource(doc, resource).or_else(|| {
            let as_written = split_fragment(reference).0;
            self.fetch(resource)
                .or_else(|| self.fetch(as_written))
                .map(|fetched| (fetched, String::new()))
        })?;
        match fragment {
            None | Some("") => Some((target_doc, root_pointer)),
            Some(fragment) if fragment.starts_with('/') => Some((
                target_doc,
                format!("{root_pointer}{}", percent_decode(fragment)),
            )),
            Some(anchor) => {
                let anchored = format!("{resource}#{}", percent_decode(anchor));
                self.docs[target_doc]
                    .resources
                    .get(&anchored)
                    .map(|anchor_pointer| (target_doc, anchor_pointer.clone()))
            }
        }
    }

    /// A resource of `doc` itself, or of a fetched document (never of the other compared
    /// schema: the original and the update may share an `$id`).
    fn find_resource(&self, doc: usize, resource: &str) -> Option<(usize, String)> {
        if let Some(pointer) = self.docs[doc].resources.get(resource) {
            return Some((doc, pointer.clone()));
        }
        self.docs
            .iter()
            .enumerate()
            .skip(2)
            .find_map(|(index, document)| {
                document
                    .resources
                    .get(resource)
                    .map(|pointer| (index, pointer.clone()))
            })
    }

    fn fetch(&mut self, uri: &str) -> Option<usize> {
        if uri.is_empty() {
            return None;
        }
        if let Some(known) = self.fetched.get(uri) {
            return *known;
        }
        let added = self.resolver.resolve(uri).map(|root| self.add(root, uri));
        self.fetched.insert(uri.to_string(), added);
        added
    }
}

/// Records every `$id` resource and anchor below `value`, keyed by absolute URI.
fn index_resources(
    document: &Document<'_>,
    value: &Value,
    pointer: String,
    base: &str,
    index: &mut HashMap<String, String>,
    depth: usize,
) {
    if depth > super::load::MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(object) => {
            let mut base = base.to_string();
            if let Some(id) = document.id_of(object) {
                let absolute = resolve(&base, id);
                let (resource, fragment) = split_fragment(&absolute);
                match fragment {
                    // A draft-07 location-independent identifier, `"$id": "#name"`.
                    Some(anchor) if !anchor.is_empty() && !anchor.starts_with('/') => {
                        index.insert(absolute.clone(), pointer.clone());
                    }
                    _ => {
                        index.insert(resource.to_string(), pointer.clone());
                        base = resource.to_string();
                    }
                }
            }
            if let Some(anchor) = object.get("$anchor").and_then(Value::as_str) {
                let resource = split_fragment(&base).0;
                index.insert(format!("{resource}#{anchor}"), pointer.clone());
            }
            for (key, child) in object {
                let child_pointer = format!("{pointer}/{}", escape_token(key));
                index_resources(document, child, child_pointer, &base, index, depth + 1);
            }
        }
        Value::Array(items) => {
            for (position, child) in items.iter().enumerate() {
                let child_pointer = format!("{pointer}/{position}");
                index_resources(document, child, child_pointer, base, index, depth + 1);
            }
        }
        _ => {}
    }
}

/// Escapes one JSON pointer token (`~` and `/`).
pub(super) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn pointer_tokens(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
}

/// Splits `uri#fragment`; the fragment is `None` when there is no `#`.
pub(super) fn split_fragment(uri: &str) -> (&str, Option<&str>) {
    match uri.split_once('#') {
        Some((resource, fragment)) => (resource, Some(fragment)),
        None => (uri, None),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%' && position + 2 < bytes.len() {
            let high = (bytes[position + 1] as char).to_digit(16);
            let low = (bytes[position + 2] as char).to_digit(16);
            if let (Some(high), Some(low)) = (high, low) {
                decoded.push((high * 16 + low) as u8);
                position += 3;
                continue;
            }
        }
        decoded.push(bytes[position]);
        position += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Resolves `reference` against `base` (the subset of RFC 3986 section 5.2 that schema
/// identifiers use: absolute URIs, fragments, network paths, absolute and relative paths).
pub(super) fn resolve(base: &str, reference: &str) -> String {
    if has_scheme(reference) {
        return reference.to_string();
    }
    let base = split_fragment(base).0;
    if reference.is_empty() {
        return base.to_string();
    }
    if reference.starts_with('#') {
        return format!("{base}{reference}");
    }
    let (prefix, base_path) = split_authority(base);
    if let Some(network_path) = reference.strip_prefix("//") {
        let scheme = base.split_once(':').map_or("", |(scheme, _)| scheme);
        return if scheme.is_empty() || !has_scheme(base) {
            format!("//{network_path}")
        } else {
            format!("{scheme}://{network_path}")
        };
    }
    let split_at = reference.find(['?', '#']).unwrap_or(reference.len());
    let (reference_path, rest) = reference.split_at(split_at);
    let merged = if reference_path.starts_with('/') {
        reference_path.to_string()
    } else if let Some(last_slash) = base_path.rfind('/') {
        format!("{}{reference_path}", &base_path[..=last_slash])
    } else if prefix.ends_with("//") || prefix.contains("://") && base_path.is_empty() {
        format!("/{reference_path}")
    } else {
        reference_path.to_string()
    };
    format!("{prefix}{}{rest}", remove_dot_segments(&merged))
}

/// Splits an absolute URI into `scheme://authority` (or `scheme:`) and the path after it.
fn split_authority(uri: &str) -> (&str, &str) {
    let uri = uri.split('?').next().unwrap_or(uri);
    if !has_scheme(uri) {
        return ("", uri);
    }
    let scheme_end = uri.find(':').map_or(0, |colon| colon + 1);
    let after_scheme = &uri[scheme_end..];
    if let Some(authority_and_path) = after_scheme.strip_prefix("//") {
        let path_start = authority_and_path
            .find('/')
            .map_or(uri.len(), |slash| scheme_end + 2 + slash);
        (&uri[..path_start], &uri[path_start..])
    } else {
        (&uri[..scheme_end], after_scheme)
    }
}

fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (position, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if position == last {
                    output.push("");
                }
            }
            ".." => {
                if output.len() > 1 || output.first().is_some_and(|first| !first.is_empty()) {
                    output.pop();
                }
                if position == last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    output.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_references_against_bases() {
        let cases = [
            ("", "customer.json", "customer.json"),
            ("", "#/definitions/a", "#/definitions/a"),
            (
                "http://x.org/s/order.json",
                "customer.json",
                "http://x.org/s/customer.json",
            ),
            (
                "http://x.org/s/order.json",
                "../c.json#/a",
                "http://x.org/c.json#/a",
            ),
            (
                "http://x.org/s/order.json",
                "/c.json",
                "http://x.org/c.json",
            ),
            (
                "http://x.org/s/order.json",
                "#foo",
                "http://x.org/s/order.json#foo",
            ),
            ("http://x.org", "c.json", "http://x.org/c.json"),
            ("urn:a", "urn:b#/x", "urn:b#/x"),
            ("dir/a.json", "b.json", "dir/b.json"),
        ];
        for (base, reference, expected) in cases {
            assert_eq!(resolve(base, reference), expected, "{base} + {reference}");
        }
    }

    #[test]
    fn decodes_pointer_fragments() {
        assert_eq!(percent_decode("/a%20b"), "/a b");
        assert_eq!(percent_decode("/a%2"), "/a%2");
        assert_eq!(percent_decode("%"), "%");
    }
}
