//! `allOf` / `anyOf` / `oneOf` against each other (`CombinedSchemaDiff`).
//!
//! After the criterion check, duplicate members are dropped, the member counts compared, and
//! the members paired by a maximum-cardinality bipartite matching over the pairs that compare
//! as compatible. Members are matched whatever their order; a matching that leaves a member of
//! the smaller side unpaired makes the change incompatible.

use std::fmt::Write as _;

use super::{Ctx, Differ};
use crate::DifferenceKind::*;
use crate::schema::{Additional, CombinedSchema, Criterion, Kind, NodeId};

/// Members nested deeper than this are fingerprinted by identity only.
const MAX_FINGERPRINT_DEPTH: usize = 64;

impl Differ<'_> {
    pub(super) fn compare_combined(
        &mut self,
        ctx: &mut Ctx,
        original: &CombinedSchema,
        update: &CombinedSchema,
    ) {
        if compare_criteria(ctx, original, update) {
            return;
        }
        let originals = self.distinct(&original.subschemas);
        let updates = self.distinct(&update.subschemas);
        let is_product = update.criterion == Criterion::AllOf;
        if originals.len() < updates.len() {
            ctx.add(if is_product {
                ProductTypeExtended
            } else {
                SumTypeExtended
            });
        } else if originals.len() > updates.len() {
            ctx.add(if is_product {
                ProductTypeNarrowed
            } else {
                SumTypeNarrowed
            });
        }

        let mut edges: Vec<Vec<Option<Vec<crate::Difference>>>> =
            vec![vec![None; updates.len()]; originals.len()];
        for (original_index, &original_member) in originals.iter().enumerate() {
            ctx.enter(format!("{}/{original_index}", original.criterion.keyword()));
            for (update_index, &update_member) in updates.iter().enumerate() {
                let mut sub = ctx.sub();
                self.compare(&mut sub, Some(original_member), Some(update_member));
                if self.is_compatible(&sub) {
                    edges[original_index][update_index] = Some(sub.diffs);
                }
            }
            ctx.leave();
        }

        let matching = maximum_matching(originals.len(), updates.len(), |left, right| {
            edges[left][right].is_some()
        });
        let matched = matching.len();
        for (left, right) in matching {
            if let Some(diffs) = edges[left][right].take() {
                ctx.extend(diffs);
            }
        }
        if matched < originals.len().min(updates.len()) {
            ctx.add(CombinedTypeSubschemasChanged);
        }
    }

    /// The members with structural duplicates dropped, first occurrence kept (Confluent puts
    /// them in a `LinkedHashSet` of `JsonSchema`, which compares canonical text).
    fn distinct(&mut self, members: &[NodeId]) -> Vec<NodeId> {
        let mut seen = Vec::new();
        let mut kept = Vec::new();
        for &member in members {
            let fingerprint = self.fingerprint(member);
            if !seen.contains(&fingerprint) {
                seen.push(fingerprint);
                kept.push(member);
            }
        }
        kept
    }

    fn fingerprint(&mut self, id: NodeId) -> String {
        if let Some(known) = self.fingerprints.get(&id) {
            return known.clone();
        }
        let mut text = String::new();
        self.write_fingerprint(id, &mut text, 0);
        self.fingerprints.insert(id, text.clone());
        text
    }

    /// Writes a canonical text for the schema at `id`. A `$ref` is written as its text, as
    /// everit prints it, so recursion ends at references.
    fn write_fingerprint(&self, id: NodeId, out: &mut String, depth: usize) {
        if depth > MAX_FINGERPRINT_DEPTH {
            let _ = write!(out, "@{id}");
            return;
        }
        let node = self.arena.node(id);
        let _ = write!(out, "{:?}", node.common);
        let child = |out: &mut String, child: NodeId| {
            out.push('(');
            self.write_fingerprint(child, out, depth + 1);
            out.push(')');
        };
        let additional = |out: &mut String, additional: Additional| match additional {
            Additional::Schema(schema) => child(out, schema),
            other => {
                let _ = write!(out, "{other:?}");
            }
        };
        match &node.kind {
            Kind::Reference { reference, .. } => {
                let _ = write!(out, "$ref:{reference:?}");
            }
            Kind::Combined(combined) => {
                let _ = write!(out, "{:?}", combined.criterion);
                for &member in &combined.subschemas {
                    child(out, member);
                }
            }
            Kind::Not(inner) => {
                out.push_str("not");
                child(out, *inner);
            }
            Kind::Object(object) => {
                out.push_str("object{");
                for (name, schema) in &object.properties {
                    let _ = write!(out, "{name:?}:");
                    child(out, *schema);
                }
                let _ = write!(out, "}}required{:?}additional", object.required);
                additional(out, object.additional_properties);
                for pattern in &object.pattern_properties {
                    let _ = write!(out, "pattern{:?}:", pattern.pattern);
                    child(out, pattern.schema);
                }
                if let Some(unevaluated) = object.unevaluated_properties {
                    out.push_str("unevaluated");
                    child(out, unevaluated);
                }
                let _ = write!(out, "dependencies{:?}", object.property_dependencies);
                for (name, schema) in &object.schema_dependencies {
                    let _ = write!(out, "{name:?}:");
                    child(out, *schema);
                }
                let _ = write!(
                    out,
                    "{:?}{:?}",
                    object.min_properties, object.max_properties
                );
            }
            Kind::Array(array) => {
                out.push_str("array");
                if let Some(items) = array.all_items {
                    child(out, items);
                }
                out.push('[');
                for &item in &array.item_schemas {
                    child(out, item);
                }
                out.push_str("]additional");
                additional(out, array.additional_items);
                if let Some(unevaluated) = array.unevaluated_items {
                    out.push_str("unevaluated");
                    child(out, unevaluated);
                }
                let _ = write!(
                    out,
                    "{:?}{:?}{}",
                    array.min_items, array.max_items, array.unique_items
                );
            }
            other => {
                let _ = write!(out, "{other:?}");
            }
        }
    }
}

/// `compareCriteria`: records a criterion change and says whether it ends the comparison.
fn compare_criteria(ctx: &mut Ctx, original: &CombinedSchema, update: &CombinedSchema) -> bool {
    let is_singleton = |schema: &CombinedSchema| schema.subschemas.len() == 1;
    let kind = match (original.criterion, update.criterion) {
        (before, after) if before == after => return false,
        // allOf/oneOf to anyOf only accepts more.
        (_, Criterion::AnyOf) => CombinedTypeExtended,
        (_, Criterion::OneOf) if is_singleton(original) => CombinedTypeExtended,
        (_, Criterion::AllOf) if is_singleton(original) && is_singleton(update) => {
            CombinedTypeExtended
        }
        _ => CombinedTypeChanged,
    };
    ctx.add(kind);
    kind == CombinedTypeChanged
}

/// A maximum-cardinality matching of the bipartite graph `left × right` with the edges `edge`,
/// by augmenting paths; pairs come back ordered by their left vertex.
fn maximum_matching(
    left: usize,
    right: usize,
    edge: impl Fn(usize, usize) -> bool,
) -> Vec<(usize, usize)> {
    fn augment(
        vertex: usize,
        right: usize,
        edge: &dyn Fn(usize, usize) -> bool,
        visited: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for candidate in 0..right {
            if !edge(vertex, candidate) || visited[candidate] {
                continue;
            }
            visited[candidate] = true;
            let free = match owner[candidate] {
                None => true,
                Some(other) => augment(other, right, edge, visited, owner),
            };
            if free {
                owner[candidate] = Some(vertex);
                return true;
            }
        }
        false
    }

    let mut owner: Vec<Option<usize>> = vec![None; right];
    for vertex in 0..left {
        let mut visited = vec![false; right];
        augment(vertex, right, &edge, &mut visited, &mut owner);
    }
    let mut pairs: Vec<(usize, usize)> = owner
        .iter()
        .enumerate()
        .filter_map(|(candidate, vertex)| vertex.map(|vertex| (vertex, candidate)))
        .collect();
    pairs.sort_unstable();
    pairs
}

#[cfg(test)]
mod tests {
    use super::maximum_matching;

    #[test]
    fn matching_reassigns_to_cover_both_sides() {
        // 0 can take a or b, 1 only a: greedy 0->a would strand 1.
        let edges = [[true, true], [true, false]];
        let matching = maximum_matching(2, 2, |l, r| edges[l][r]);
        assert_eq!(matching, vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn matching_of_disconnected_graph_is_empty() {
        assert!(maximum_matching(3, 2, |_, _| false).is_empty());
    }
}
