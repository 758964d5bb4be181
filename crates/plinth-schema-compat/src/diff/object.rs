//! Object schemas (`ObjectSchemaDiff`): properties against the content model, `required`,
//! dependencies, `additionalProperties`, `unevaluatedProperties` and the property counts.
//!
//! A content model is *open* when nothing constrains unknown properties (no
//! `patternProperties`, `additionalProperties` absent or `true`, `unevaluatedProperties` absent
//! or empty), *partially open* when a schema does, and *closed* when `additionalProperties` is
//! `false`. Whether adding or removing a property is safe depends on which one the other
//! schema has.

use super::{Ctx, Differ};
use crate::DifferenceKind::{self, *};
use crate::java_order;
use crate::schema::{Additional, Kind, NodeId, ObjectSchema};

impl Differ<'_> {
    pub(super) fn compare_object(
        &mut self,
        ctx: &mut Ctx,
        original: &ObjectSchema,
        update: &ObjectSchema,
    ) {
        self.compare_required(ctx, original, update);
        self.compare_properties(ctx, original, update);
        self.compare_dependencies(ctx, original, update);
        self.compare_additional_properties(ctx, original, update);
        self.compare_unevaluated(
            ctx,
            "unevaluatedProperties",
            original.unevaluated_properties,
            update.unevaluated_properties,
            [
                UnevaluatedPropertiesAdded,
                UnevaluatedPropertiesRemoved,
                UnevaluatedPropertiesExtended,
                UnevaluatedPropertiesNarrowed,
            ],
        );
        compare_counts(ctx, original, update);
    }

    fn has_default(&self, id: NodeId) -> bool {
        self.arena.node(id).common.default.is_some()
    }

    fn compare_required(&mut self, ctx: &mut Ctx, original: &ObjectSchema, update: &ObjectSchema) {
        ctx.enter("required");
        let names: Vec<&str> = original
            .properties
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        for name in java_order::iteration_order(names, 16) {
            let Some(update_property) = update.property(name) else {
                continue;
            };
            match (original.is_required(name), update.is_required(name)) {
                (true, false) => ctx.add_at(name, RequiredAttributeRemoved),
                (false, true) if self.has_default(update_property) => {
                    ctx.add_at(name, RequiredAttributeWithDefaultAdded);
                }
                (false, true) => ctx.add_at(name, RequiredAttributeAdded),
                _ => {}
            }
        }
        ctx.leave();
    }

    fn compare_properties(
        &mut self,
        ctx: &mut Ctx,
        original: &ObjectSchema,
        update: &ObjectSchema,
    ) {
        ctx.enter("properties");
        let before: Vec<&str> = original
            .properties
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let after: Vec<&str> = update
            .properties
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        for name in java_order::union_order(&before, &after) {
            ctx.enter(name);
            match (original.property(name), update.property(name)) {
                (Some(removed), None) => self.property_removed(ctx, removed, update, name),
                (None, Some(added)) => self.property_added(ctx, original, added, update, name),
                (Some(before), Some(after)) => self.compare(ctx, Some(before), Some(after)),
                (None, None) => {}
            }
            ctx.leave();
        }
        ctx.leave();
    }

    /// A property of the original is gone: only the update's content model matters, since
    /// it decides whether old data carrying the property is still accepted.
    fn property_removed(
        &mut self,
        ctx: &mut Ctx,
        removed: NodeId,
        update: &ObjectSchema,
        name: &str,
    ) {
        if self.is_open(update) {
            return ctx.add(PropertyRemovedFromOpenContentModel);
        }
        if let Some(covering) = self.covering_schema(update, name) {
            let mut sub = ctx.sub();
            self.compare(&mut sub, Some(removed), Some(covering));
            let covered = self.is_compatible(&sub);
            ctx.extend(sub.diffs);
            return ctx.add(if covered {
                PropertyRemovedIsCoveredByPartiallyOpenContentModel
            } else {
                PropertyRemovedNotCoveredByPartiallyOpenContentModel
            });
        }
        ctx.add(if matches!(self.kind(removed), Kind::False) {
            PropertyWithFalseRemovedFromClosedContentModel
        } else {
            PropertyRemovedFromClosedContentModel
        });
    }

    /// A property appears in the update: only the original's content model matters, since it
    /// decides what old data may already carry under that name.
    fn property_added(
        &mut self,
        ctx: &mut Ctx,
        original: &ObjectSchema,
        added: NodeId,
        update: &ObjectSchema,
        name: &str,
    ) {
        let required = update.is_required(name);
        if self.is_open(original) {
            let kind = if self.kind(added).is_empty_schema() {
                PropertyWithEmptySchemaAddedToOpenContentModel
            } else if required && self.has_default(added) {
                RequiredPropertyWithDefaultAddedToOpenContentModel
            } else if required {
                RequiredPropertyAddedToOpenContentModel
            } else {
                OptionalPropertyAddedToOpenContentModel
            };
            return ctx.add(kind);
        }
        if let Some(covering) = self.covering_schema(original, name) {
            let mut sub = ctx.sub();
            self.compare(&mut sub, Some(covering), Some(added));
            let covered = self.is_compatible(&sub);
            ctx.extend(sub.diffs);
            ctx.add(if covered {
                PropertyAddedIsCoveredByPartiallyOpenContentModel
            } else {
                PropertyAddedNotCoveredByPartiallyOpenContentModel
            });
        }
        // For closed and partially open models alike.
        ctx.add(if required && self.has_default(added) {
            RequiredPropertyWithDefaultAddedToUnopenContentModel
        } else if required {
            RequiredPropertyAddedToUnopenContentModel
        } else {
            OptionalPropertyAddedToUnopenContentModel
        });
    }

    fn is_open(&self, object: &ObjectSchema) -> bool {
        object.pattern_properties.is_empty()
            && object.additional_properties == Additional::Permitted
            && object
                .unevaluated_properties
                .is_none_or(|unevaluated| self.kind(unevaluated).is_empty_schema())
    }

    /// The schema a partially open model gives a property called `name`: the first
    /// `patternProperties` regex found in the name, else the `additionalProperties` schema, else
    /// (with `additionalProperties` absent) a constraining `unevaluatedProperties` schema.
    fn covering_schema(&self, object: &ObjectSchema, name: &str) -> Option<NodeId> {
        let by_pattern = object.pattern_properties.iter().find(|pattern| {
            pattern
                .regex
                .as_ref()
                .is_some_and(|regex| regex.is_match(name))
        });
        if let Some(pattern) = by_pattern {
            return Some(pattern.schema);
        }
        if let Some(schema) = object.additional_properties.schema() {
            return Some(schema);
        }
        self.constraining_unevaluated(object.additional_properties, object.unevaluated_properties)
    }

    /// `unevaluatedProperties`/`unevaluatedItems` as a covering schema: only when the
    /// `additional*` keyword is absent and the schema is neither `false` nor empty.
    pub(super) fn constraining_unevaluated(
        &self,
        additional: Additional,
        unevaluated: Option<NodeId>,
    ) -> Option<NodeId> {
        let unevaluated = unevaluated?;
        let kind = self.kind(unevaluated);
        let constrains = !matches!(kind, Kind::False) && !kind.is_empty_schema();
        (additional == Additional::Permitted && constrains).then_some(unevaluated)
    }

    fn compare_dependencies(
        &mut self,
        ctx: &mut Ctx,
        original: &ObjectSchema,
        update: &ObjectSchema,
    ) {
        ctx.enter("dependencies");
        let before: Vec<&str> = names(&original.property_dependencies);
        let after: Vec<&str> = names(&update.property_dependencies);
        for name in java_order::union_order(&before, &after) {
            let original_set = lookup(&original.property_dependencies, name);
            let update_set = lookup(&update.property_dependencies, name);
            let kind = match (original_set, update_set) {
                (_, None) => Some(DependencyArrayRemoved),
                (None, Some(_)) => Some(DependencyArrayAdded),
                (Some(before), Some(after)) => {
                    let update_has_all = before.iter().all(|name| after.contains(name));
                    let original_has_all = after.iter().all(|name| before.contains(name));
                    match (update_has_all, original_has_all) {
                        (true, true) => None,
                        (true, false) => Some(DependencyArrayExtended),
                        (false, true) => Some(DependencyArrayNarrowed),
                        (false, false) => Some(DependencyArrayChanged),
                    }
                }
            };
            if let Some(kind) = kind {
                ctx.add_at(name, kind);
            }
        }

        let before: Vec<&str> = names(&original.schema_dependencies);
        let after: Vec<&str> = names(&update.schema_dependencies);
        for name in java_order::union_order(&before, &after) {
            let original_schema = lookup(&original.schema_dependencies, name).copied();
            let update_schema = lookup(&update.schema_dependencies, name).copied();
            ctx.enter(name);
            match (original_schema, update_schema) {
                (_, None) => ctx.add(DependencySchemaRemoved),
                (None, Some(_)) => ctx.add(DependencySchemaAdded),
                (before, after) => self.compare(ctx, before, after),
            }
            ctx.leave();
        }
        ctx.leave();
    }

    fn compare_additional_properties(
        &mut self,
        ctx: &mut Ctx,
        original: &ObjectSchema,
        update: &ObjectSchema,
    ) {
        ctx.enter("additionalProperties");
        let (before, after) = (original.additional_properties, update.additional_properties);
        if before.permits() != after.permits() {
            ctx.add(if after.permits() {
                AdditionalPropertiesAdded
            } else {
                AdditionalPropertiesRemoved
            });
        } else {
            match (before.schema(), after.schema()) {
                (None, Some(_)) => ctx.add(AdditionalPropertiesNarrowed),
                (Some(_), None) => ctx.add(AdditionalPropertiesExtended),
                (before, after) => self.compare(ctx, before, after),
            }
        }
        ctx.leave();
    }

    /// `unevaluatedProperties` and `unevaluatedItems`: `false` and empty schemas are the
    /// closed and open ends, anything else is compared as a schema.
    pub(super) fn compare_unevaluated(
        &mut self,
        ctx: &mut Ctx,
        keyword: &str,
        original: Option<NodeId>,
        update: Option<NodeId>,
        [added, removed, extended, narrowed]: [DifferenceKind; 4],
    ) {
        if original.is_none() && update.is_none() {
            return;
        }
        ctx.enter(keyword);
        let is_false =
            |id: Option<NodeId>| id.is_some_and(|id| matches!(self.kind(id), Kind::False));
        let is_empty = |id: Option<NodeId>| id.is_some_and(|id| self.kind(id).is_empty_schema());
        match (original, update) {
            (None, _) if is_false(update) => ctx.add(removed),
            (None, _) => ctx.add(narrowed),
            (_, None) if is_false(original) => ctx.add(added),
            (_, None) => ctx.add(extended),
            _ if is_false(original) && !is_false(update) => ctx.add(added),
            _ if !is_false(original) && is_false(update) => ctx.add(removed),
            _ if is_empty(original) && !is_empty(update) => ctx.add(narrowed),
            _ if !is_empty(original) && is_empty(update) => ctx.add(extended),
            _ => self.compare(ctx, original, update),
        }
        ctx.leave();
    }
}

fn compare_counts(ctx: &mut Ctx, original: &ObjectSchema, update: &ObjectSchema) {
    super::scalar::compare_bound(
        ctx,
        "maxProperties",
        original.max_properties,
        update.max_properties,
        [
            MaxPropertiesAdded,
            MaxPropertiesRemoved,
            MaxPropertiesIncreased,
            MaxPropertiesDecreased,
        ],
    );
    super::scalar::compare_bound(
        ctx,
        "minProperties",
        original.min_properties,
        update.min_properties,
        [
            MinPropertiesAdded,
            MinPropertiesRemoved,
            MinPropertiesIncreased,
            MinPropertiesDecreased,
        ],
    );
}

fn names<T>(entries: &[(String, T)]) -> Vec<&str> {
    entries.iter().map(|(name, _)| name.as_str()).collect()
}

fn lookup<'e, T>(entries: &'e [(String, T)], name: &str) -> Option<&'e T> {
    entries
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}
