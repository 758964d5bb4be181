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

struct TwoSidedResolver<'a> {
    first: &'a ResolvedReferences,
    second: &'a ResolvedReferences,
}

impl plinth_schema_compat::ReferenceResolver for TwoSidedResolver<'_> {
    fn resolve(&self, uri: &str) -> Option<&Value> {
        let relative = uri.strip_prefix("json-schema:///").unwrap_or(uri);
        [self.first, self.second]
            .into_iter()
            .find_map(|references| references.get(uri).or_else(|| references.get(relative)))
            .map(|value| value.as_ref())
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
    let resolver = TwoSidedResolver {
        first: update.references,
        second: original.references,
    };
    plinth_schema_compat::incompatibilities(
        original.value,
        update.value,
        to_compat_policy(policy),
        &resolver,
    )
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
