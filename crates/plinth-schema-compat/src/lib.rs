//! The JSON Schema compatibility diff: a port of the rules Confluent Schema Registry applies
//! (`io.confluent.kafka.schemaregistry.json.diff`), so that a schema Confluent accepts or
//! rejects is accepted or rejected here, with the same differences and messages.
//!
//! It is a structural diff, not a subset check. Both schemas are parsed the way everit parses
//! them for Confluent (see `schema`), walked side by side, and every change is classified as a
//! [`DifferenceKind`]. An update is compatible when every difference is in Confluent's set of
//! compatible changes for the [`Policy`]: `COMPATIBLE_CHANGES_STRICT`, or the larger
//! `COMPATIBLE_CHANGES_LENIENT`.
//!
//! The crate is pure: no IO, no async, no global state. It does not validate documents against
//! a schema, does not check that a schema is valid JSON Schema (malformed parts are skipped or
//! compared as opaque values, never a panic), and does not fetch references: `$ref`s to other
//! documents are answered by the caller's [`ReferenceResolver`].
//!
//! Where this port deliberately departs from Confluent, the item says so; the known departures
//! are: a lowered `exclusiveMaximum` is compared with the update's `exclusiveMaximum` (Confluent
//! compares it with `maximum` and fails without one); a `multipleOf` that truncates to zero is
//! a plain change (Confluent divides by zero); unresolvable `$ref`s and non-schema values are
//! compared by their text (Confluent rejects such schemas as invalid); chains of `$ref` are
//! followed to their end; `patternProperties` use the `regex` crate (no look-around or
//! back-references: such a pattern matches nothing) and, when several match, the first in the
//! document wins (Confluent's choice is arbitrary).

mod diff;
mod difference;
mod java_order;
mod schema;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

pub use crate::difference::{Difference, DifferenceKind};

/// Which changes count as compatible: Confluent's `compatibilityPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// `COMPATIBLE_CHANGES_STRICT`, Confluent's default. Adding an optional property to an open
    /// object (one without `additionalProperties: false`) is incompatible.
    #[default]
    Strict,
    /// `COMPATIBLE_CHANGES_LENIENT`: strict, plus adding optional (or defaulted required)
    /// properties to open objects, removing properties from closed ones, narrowing or removing
    /// `additionalProperties`/`unevaluatedProperties`, and properties not covered by a partially
    /// open model.
    Lenient,
}

/// Supplies the documents that `$ref`s outside a schema point to: the schemas registered as
/// its references, by the name the `$ref` uses.
///
/// A reference is first resolved against the base URI where it appears (set by `$id`); the
/// resolver is asked for that absolute URI, then for the `$ref` as written (without fragment),
/// so a registry can key documents by reference name.
pub trait ReferenceResolver {
    /// The document at `uri`, or `None` when there is none.
    fn resolve(&self, uri: &str) -> Option<&Value>;
}

/// Resolves nothing: every external `$ref` stays unresolved.
impl ReferenceResolver for () {
    fn resolve(&self, _uri: &str) -> Option<&Value> {
        None
    }
}

/// Resolves a reference by looking its URI up as a key.
impl ReferenceResolver for HashMap<String, Value> {
    fn resolve(&self, uri: &str) -> Option<&Value> {
        self.get(uri)
    }
}

/// Resolves a reference by looking its URI up as a key.
impl ReferenceResolver for BTreeMap<String, Value> {
    fn resolve(&self, uri: &str) -> Option<&Value> {
        self.get(uri)
    }
}

/// Every difference between `original` and `update`, compatible or not, in Confluent's order,
/// as `SchemaDiff.compare(original, update)` returns them (under the strict policy, which
/// decides the sub-comparisons that branch on compatibility).
pub fn diff(original: &Value, update: &Value, resolver: &dyn ReferenceResolver) -> Vec<Difference> {
    diff_with_policy(original, update, Policy::Strict, resolver)
}

/// [`diff`] under `policy`: which sub-schemas count as compatible (a `oneOf` member matching, a
/// property covered by `patternProperties`) depends on the policy, so the list can differ.
pub fn diff_with_policy(
    original: &Value,
    update: &Value,
    policy: Policy,
    resolver: &dyn ReferenceResolver,
) -> Vec<Difference> {
    let (arena, original_root, update_root) = schema::load_pair(original, update, resolver);
    diff::run(&arena, original_root, update_root, policy)
}

/// The differences that are not compatible under `policy`: the reasons a registration is
/// rejected. Empty when `update` may follow `original`.
pub fn incompatibilities(
    original: &Value,
    update: &Value,
    policy: Policy,
    resolver: &dyn ReferenceResolver,
) -> Vec<Difference> {
    diff_with_policy(original, update, policy, resolver)
        .into_iter()
        .filter(|difference| !difference.kind.is_compatible(policy))
        .collect()
}

/// Confluent's `JsonSchema.isBackwardCompatible`: whether `update` can read everything
/// `original` accepts, i.e. the diff from `original` (old) to `update` (new) has no
/// incompatible difference under `policy`. A FORWARD check swaps the arguments; FULL runs both.
pub fn is_backward_compatible(
    original: &Value,
    update: &Value,
    policy: Policy,
    resolver: &dyn ReferenceResolver,
) -> bool {
    incompatibilities(original, update, policy, resolver).is_empty()
}

#[cfg(test)]
mod tests;
