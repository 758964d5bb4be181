//! Compatibility between schema versions, judged with Confluent's JSON Schema rules
//! (`plinth-schema-compat`), per level and direction.

use serde_json::Value;

use super::config::{CompatibilityConfig, CompatibilityLevel, CompatibilityPolicy, Direction};
use super::validation::ResolvedReferences;

/// A schema with the references its `$ref`s may name.
#[derive(Debug, Clone, Copy)]
pub struct SchemaSide<'a> {
    /// The schema document.
    pub value: &'a Value,
    /// Its resolved references.
    pub references: &'a ResolvedReferences,
}

/// Both sides' referenced documents, each side's under its own URI prefix: the previous version and the
/// candidate may reference the same name (`address.json`) at different versions, and each side's `$ref`s
/// must reach its own.
#[derive(Default)]
struct NamespacedReferences {
    documents: std::collections::HashMap<String, Value>,
}

impl plinth_schema_compat::ReferenceResolver for NamespacedReferences {
    fn resolve(&self, uri: &str) -> Option<&Value> {
        self.documents.get(uri)
    }
}

const PREVIOUS_PREFIX: &str = "urn:plinth:previous:";
const CANDIDATE_PREFIX: &str = "urn:plinth:candidate:";

/// A copy of `side` whose `$ref`s to its references point at `prefix` + name, with the referenced
/// documents (rewritten the same way) added to `into`.
fn namespace(side: SchemaSide<'_>, prefix: &str, into: &mut NamespacedReferences) -> Value {
    let rewrite = |value: &Value| {
        let mut value = value.clone();
        rewrite_refs(&mut value, prefix, side.references);
        value
    };
    for (name, document) in side.references {
        into.documents
            .insert(format!("{prefix}{name}"), rewrite(document));
    }
    rewrite(side.value)
}

fn rewrite_refs(value: &mut Value, prefix: &str, references: &ResolvedReferences) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get_mut("$ref") {
                let (resource, fragment) = target
                    .split_once('#')
                    .map_or((target.as_str(), None), |(r, f)| (r, Some(f)));
                if references.contains_key(resource) {
                    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
                    *target = format!("{prefix}{resource}{fragment}");
                }
            }
            object
                .values_mut()
                .for_each(|child| rewrite_refs(child, prefix, references));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|child| rewrite_refs(child, prefix, references)),
        _ => {}
    }
}

fn to_compat_policy(policy: CompatibilityPolicy) -> plinth_schema_compat::Policy {
    match policy {
        CompatibilityPolicy::Strict => plinth_schema_compat::Policy::Strict,
        CompatibilityPolicy::Lenient => plinth_schema_compat::Policy::Lenient,
    }
}

/// The incompatibilities of `candidate` against one `previous` version in one direction; empty when
/// compatible. Each message names the JSON path and the rule.
pub fn check_pair(
    direction: Direction,
    policy: CompatibilityPolicy,
    previous: SchemaSide<'_>,
    candidate: SchemaSide<'_>,
) -> Vec<String> {
    // Confluent fills each message's roles from the update's point of view: "new" is the candidate.
    let (original, update, update_role, original_role) = match direction {
        Direction::Backward => (previous, candidate, "new", "old"),
        Direction::Forward => (candidate, previous, "old", "new"),
    };
    let policy = to_compat_policy(policy);
    let differences = if original.references.is_empty() && update.references.is_empty() {
        plinth_schema_compat::incompatibilities(original.value, update.value, policy, &())
    } else {
        let mut resolver = NamespacedReferences::default();
        let (original_prefix, update_prefix) = match direction {
            Direction::Backward => (PREVIOUS_PREFIX, CANDIDATE_PREFIX),
            Direction::Forward => (CANDIDATE_PREFIX, PREVIOUS_PREFIX),
        };
        let original_value = namespace(original, original_prefix, &mut resolver);
        let update_value = namespace(update, update_prefix, &mut resolver);
        plinth_schema_compat::incompatibilities(&original_value, &update_value, policy, &resolver)
    };
    differences
        .iter()
        .map(|difference| difference.message_with_roles(update_role, original_role))
        .collect()
}

/// The earlier versions a level checks, from a newest-first list: the latest only, or all of them.
pub fn versions_to_check<T>(level: CompatibilityLevel, previous_newest_first: &[T]) -> &[T] {
    match level {
        CompatibilityLevel::None => &[],
        level if level.is_transitive() => previous_newest_first,
        _ => previous_newest_first.get(..1).unwrap_or(&[]),
    }
}

/// The trailing element Confluent appends to the details of an incompatible registration.
pub fn config_summary(config: CompatibilityConfig) -> String {
    format!(
        "{{validateFields: 'false', compatibility: '{}'}}",
        config.level.as_str()
    )
}
