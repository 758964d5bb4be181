//! The walk over two parsed schemas (`SchemaDiff` and `Context` in Confluent).
//!
//! Every pair of schemas is compared once per pass: results are memoized by node identity with
//! paths relative to the pair, then rebased onto the path where the pair is met. A pair met
//! again while it is still being compared is a recursive cycle and counts as compatible. Because
//! that optimism can leak into cached results, the whole comparison is repeated, feeding back the
//! pairs found incompatible, until the set of incompatible pairs stops changing (Confluent's
//! greatest-fixed-point iteration, DGS-24489).

mod array;
mod combined;
mod object;
mod scalar;

use std::collections::{HashMap, HashSet};

use crate::schema::{Arena, Kind, NodeId};
use crate::{Difference, DifferenceKind, Policy};

/// Passes of the fixpoint iteration before the last result is returned as it is. Each pass can
/// only grow the set of incompatible pairs, so real schemas settle in two or three.
const MAX_PASSES: usize = 64;

/// Stack the walk may use before a deeper comparison is reported as a type change rather than
/// followed. Memoized recursion over mutually recursive `oneOf`s legitimately nests a few
/// hundred pairs deep (Confluent's twelve-type trade schema needs about 300), at under 1 KiB a
/// level in release builds and about 2 KiB in debug ones; 1 MiB leaves room in a 2 MiB thread.
const STACK_BUDGET: usize = 1024 * 1024;

/// A backstop for platforms where the stack does not grow downwards.
const MAX_COMPARE_DEPTH: usize = 4096;

/// Compares `original` with `update` and returns every difference, in Confluent's order.
pub(crate) fn run(
    arena: &Arena,
    original: NodeId,
    update: NodeId,
    policy: Policy,
) -> Vec<Difference> {
    let mut seed: HashMap<Pair, Vec<Difference>> = HashMap::new();
    let mut last = Vec::new();
    for _ in 0..MAX_PASSES {
        let mut differ = Differ {
            arena,
            policy,
            memo: HashMap::new(),
            in_progress: HashSet::new(),
            seed,
            used_optimistic_truncation: false,
            depth: 0,
            stack_base: 0,
            fingerprints: HashMap::new(),
        };
        let mut ctx = Ctx::default();
        let stack_marker = 0u8;
        differ.stack_base = std::ptr::from_ref(&stack_marker).addr();
        differ.compare(&mut ctx, Some(original), Some(update));
        let incompatible = differ.incompatible_pairs();
        let settled = !differ.used_optimistic_truncation
            || (incompatible.len() == differ.seed.len()
                && incompatible
                    .keys()
                    .all(|pair| differ.seed.contains_key(pair)));
        if settled {
            return ctx.diffs;
        }
        last = ctx.diffs;
        seed = incompatible;
    }
    last
}

type Pair = (NodeId, NodeId);

/// Where the walk is and what it has found so far (Confluent's `Context`, minus the shared
/// memo, which lives in [`Differ`]).
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    path: Vec<String>,
    diffs: Vec<Difference>,
}

impl Ctx {
    /// A context at the same path with no differences yet (`getSubcontext`).
    fn sub(&self) -> Ctx {
        Ctx {
            path: self.path.clone(),
            diffs: Vec::new(),
        }
    }

    fn path_string(&self) -> String {
        format!("#/{}", self.path.join("/"))
    }

    fn add(&mut self, kind: DifferenceKind) {
        let path = self.path_string();
        self.diffs.push(Difference { kind, path });
    }

    /// Records `kind` at `attribute` below the current path.
    fn add_at(&mut self, attribute: &str, kind: DifferenceKind) {
        self.enter(attribute);
        self.add(kind);
        self.leave();
    }

    fn enter(&mut self, segment: impl Into<String>) {
        self.path.push(segment.into());
    }

    fn leave(&mut self) {
        self.path.pop();
    }

    fn extend(&mut self, diffs: Vec<Difference>) {
        self.diffs.extend(diffs);
    }

    /// Adds differences whose paths are relative to a pair, prefixing the current path.
    fn add_rebased(&mut self, relative: &[Difference]) {
        if self.path.is_empty() {
            self.diffs.extend_from_slice(relative);
            return;
        }
        let prefix = self.path_string();
        for difference in relative {
            let path = if difference.path.len() <= 2 {
                prefix.clone()
            } else {
                format!("{prefix}/{}", &difference.path[2..])
            };
            self.diffs.push(Difference {
                kind: difference.kind,
                path,
            });
        }
    }
}

/// One pass of the comparison: the arena, the policy deciding what "compatible" means for the
/// sub-comparisons that branch on it, and the memo.
pub(crate) struct Differ<'a> {
    arena: &'a Arena,
    policy: Policy,
    memo: HashMap<Pair, Vec<Difference>>,
    in_progress: HashSet<Pair>,
    /// Pairs found incompatible by the previous pass, with their differences.
    seed: HashMap<Pair, Vec<Difference>>,
    used_optimistic_truncation: bool,
    depth: usize,
    /// Address of a local of [`run`], to measure how much stack the walk has used.
    stack_base: usize,
    fingerprints: HashMap<NodeId, String>,
}

impl Differ<'_> {
    fn is_compatible(&self, ctx: &Ctx) -> bool {
        ctx.diffs
            .iter()
            .all(|difference| difference.kind.is_compatible(self.policy))
    }

    fn incompatible_pairs(&self) -> HashMap<Pair, Vec<Difference>> {
        self.memo
            .iter()
            .filter(|(_, diffs)| {
                diffs
                    .iter()
                    .any(|difference| !difference.kind.is_compatible(self.policy))
            })
            .map(|(pair, diffs)| (*pair, diffs.clone()))
            .collect()
    }

    fn kind(&self, id: NodeId) -> &Kind {
        &self.arena.node(id).kind
    }

    /// `SchemaDiff.compare`: either side may be absent.
    fn compare(&mut self, ctx: &mut Ctx, original: Option<NodeId>, update: Option<NodeId>) {
        let (original, update) = match (original, update) {
            (None, None) => return,
            (None, Some(_)) => return ctx.add(DifferenceKind::SchemaAdded),
            (Some(_), None) => return ctx.add(DifferenceKind::SchemaRemoved),
            (Some(original), Some(update)) => (original, update),
        };
        let original = self.arena.normalize(original);
        let update = self.arena.normalize(update);
        let stack_marker = 0u8;
        let stack_used = self
            .stack_base
            .saturating_sub(std::ptr::from_ref(&stack_marker).addr());
        if self.depth >= MAX_COMPARE_DEPTH || stack_used > STACK_BUDGET {
            // Too deep to follow safely: assume the worst rather than overflow the stack.
            return ctx.add(DifferenceKind::TypeChanged);
        }
        self.depth += 1;
        let diffs = self.compare_memoized(original, update);
        self.depth -= 1;
        ctx.add_rebased(&diffs);
    }

    fn compare_memoized(&mut self, original: NodeId, update: NodeId) -> Vec<Difference> {
        let pair = (original, update);
        if let Some(cached) = self.memo.get(&pair) {
            return cached.clone();
        }
        if self.in_progress.contains(&pair) {
            if let Some(known) = self.seed.get(&pair) {
                return known.clone();
            }
            self.used_optimistic_truncation = true;
            return Vec::new();
        }
        self.in_progress.insert(pair);
        let mut ctx = Ctx::default();
        self.compare_types(&mut ctx, original, update);
        self.in_progress.remove(&pair);
        self.memo.insert(pair, ctx.diffs.clone());
        ctx.diffs
    }

    /// `SchemaDiff.compareTypes`: combined-versus-plain special cases, the class check, the
    /// common keywords, then the rules of the schema's kind.
    fn compare_types(&mut self, ctx: &mut Ctx, original: NodeId, update: NodeId) {
        let arena = self.arena;
        let original_node = arena.node(original);
        let update_node = arena.node(update);
        match (&original_node.kind, &update_node.kind) {
            (Kind::Combined(_), Kind::Combined(_)) => {}
            (_, Kind::Combined(combined)) => {
                if let [only] = combined.subschemas[..] {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(original), Some(only));
                    if self.is_compatible(&sub) {
                        return ctx.extend(sub.diffs);
                    }
                } else if combined.criterion != crate::schema::Criterion::AllOf {
                    for &member in &combined.subschemas {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(original), Some(member));
                        if self.is_compatible(&sub) {
                            ctx.extend(sub.diffs);
                            return ctx.add(DifferenceKind::SumTypeExtended);
                        }
                    }
                }
            }
            (Kind::Combined(combined), _) => {
                if let [only] = combined.subschemas[..] {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(only), Some(update));
                    if self.is_compatible(&sub) {
                        return ctx.extend(sub.diffs);
                    }
                } else if combined.criterion == crate::schema::Criterion::AllOf {
                    for &member in &combined.subschemas {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(member), Some(update));
                        if self.is_compatible(&sub) {
                            ctx.extend(sub.diffs);
                            return ctx.add(DifferenceKind::ProductTypeNarrowed);
                        }
                    }
                }
            }
            _ => {}
        }

        if !original_node.kind.same_class(&update_node.kind) {
            if matches!(original_node.kind, Kind::False) || update_node.kind.is_empty_schema() {
                return;
            }
            let bytes = Some("bytes");
            if original_node.common.connect_type.as_deref() == bytes
                && update_node.common.connect_type.as_deref() == bytes
            {
                // Confluent lets two `connect.type: bytes` schemas change type, for the fix of
                // decimal conversions in the JSON converter.
                return;
            }
            return ctx.add(DifferenceKind::TypeChanged);
        }

        let (before, after) = (&original_node.common, &update_node.common);
        if before.id != after.id {
            ctx.add(DifferenceKind::IdChanged);
        }
        if before.title != after.title {
            ctx.add(DifferenceKind::TitleChanged);
        }
        if before.description != after.description {
            ctx.add(DifferenceKind::DescriptionChanged);
        }
        if before.default != after.default {
            ctx.add(DifferenceKind::DefaultChanged);
        }

        match (&original_node.kind, &update_node.kind) {
            (Kind::String(before), Kind::String(after)) => {
                scalar::compare_string(ctx, before, after)
            }
            (Kind::Number(before), Kind::Number(after)) => {
                scalar::compare_number(ctx, before, after)
            }
            (Kind::Const(before), Kind::Const(after)) if before != after => {
                ctx.add_at("const", DifferenceKind::EnumArrayChanged);
            }
            (Kind::Enum(before), Kind::Enum(after)) => scalar::compare_enum(ctx, before, after),
            (Kind::Combined(before), Kind::Combined(after)) => {
                self.compare_combined(ctx, before, after);
            }
            (Kind::Not(before), Kind::Not(after)) => self.compare_not(ctx, *before, *after),
            (Kind::Object(before), Kind::Object(after)) => {
                self.compare_object(ctx, before, after);
            }
            (Kind::Array(before), Kind::Array(after)) => {
                self.compare_array(ctx, original_node, before, update_node, after);
            }
            // Unresolved references: only the reference text can be compared.
            (
                Kind::Reference {
                    reference: before, ..
                },
                Kind::Reference {
                    reference: after, ..
                },
            ) if before != after => ctx.add(DifferenceKind::TypeChanged),
            (Kind::Invalid(before), Kind::Invalid(after)) if before != after => {
                ctx.add(DifferenceKind::TypeChanged);
            }
            _ => {}
        }
    }

    /// `NotSchemaDiff`: the inner schemas are compared the other way round, and only the
    /// verdict is kept.
    fn compare_not(&mut self, ctx: &mut Ctx, original: NodeId, update: NodeId) {
        ctx.enter("not");
        let mut sub = ctx.sub();
        self.compare(&mut sub, Some(update), Some(original));
        if self.is_compatible(&sub) {
            ctx.add(DifferenceKind::NotTypeNarrowed);
        } else {
            ctx.add(DifferenceKind::NotTypeExtended);
        }
        ctx.leave();
    }
}
