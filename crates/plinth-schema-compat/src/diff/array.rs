//! Array schemas (`ArraySchemaDiff`): `items` as one schema or as a tuple against the content
//! model of `additionalItems`/`unevaluatedItems`, then the counts and `uniqueItems`.

use super::{Ctx, Differ};
use crate::DifferenceKind::*;
use crate::schema::{Additional, ArraySchema, Kind, Node, NodeId};

impl Differ<'_> {
    pub(super) fn compare_array(
        &mut self,
        ctx: &mut Ctx,
        original_node: &Node,
        original: &ArraySchema,
        update_node: &Node,
        update: &ArraySchema,
    ) {
        ctx.enter("items");
        self.compare(ctx, original.all_items, update.all_items);
        ctx.leave();
        self.compare_tuples(ctx, original, update);
        self.compare_additional_items(ctx, original, update);
        self.compare_unevaluated(
            ctx,
            "unevaluatedItems",
            original.unevaluated_items,
            update.unevaluated_items,
            [
                UnevaluatedItemsAdded,
                UnevaluatedItemsRemoved,
                UnevaluatedItemsExtended,
                UnevaluatedItemsNarrowed,
            ],
        );

        use super::scalar::compare_bound;
        compare_bound(
            ctx,
            "maxItems",
            original.max_items,
            update.max_items,
            [
                MaxItemsAdded,
                MaxItemsRemoved,
                MaxItemsIncreased,
                MaxItemsDecreased,
            ],
        );
        compare_bound(
            ctx,
            "minItems",
            original.min_items,
            update.min_items,
            [
                MinItemsAdded,
                MinItemsRemoved,
                MinItemsIncreased,
                MinItemsDecreased,
            ],
        );
        match (original.unique_items, update.unique_items) {
            (true, false) => ctx.add_at("uniqueItems", UniqueItemsRemoved),
            (false, true) => ctx.add_at("uniqueItems", UniqueItemsAdded),
            _ => {}
        }
        // Confluent reads these as unprocessed keywords and compares their integer values.
        let as_int = |value: Option<f64>| value.map(|value| value as i64);
        compare_bound(
            ctx,
            "maxContains",
            as_int(original_node.common.max_contains),
            as_int(update_node.common.max_contains),
            [
                MaxContainsAdded,
                MaxContainsRemoved,
                MaxContainsIncreased,
                MaxContainsDecreased,
            ],
        );
        compare_bound(
            ctx,
            "minContains",
            as_int(original_node.common.min_contains),
            as_int(update_node.common.min_contains),
            [
                MinContainsAdded,
                MinContainsRemoved,
                MinContainsIncreased,
                MinContainsDecreased,
            ],
        );
    }

    fn compare_tuples(&mut self, ctx: &mut Ctx, original: &ArraySchema, update: &ArraySchema) {
        let shared = original.item_schemas.len().min(update.item_schemas.len());
        for index in 0..shared {
            ctx.enter(format!("items/{index}"));
            let (before, after) = (original.item_schemas[index], update.item_schemas[index]);
            self.compare(ctx, Some(before), Some(after));
            ctx.leave();
        }
        for (index, &removed) in original.item_schemas.iter().enumerate().skip(shared) {
            ctx.enter(format!("items/{index}"));
            self.item_removed(ctx, removed, update);
            ctx.leave();
        }
        for (index, &added) in update.item_schemas.iter().enumerate().skip(shared) {
            ctx.enter(format!("items/{index}"));
            self.item_added(ctx, original, added);
            ctx.leave();
        }
    }

    fn item_removed(&mut self, ctx: &mut Ctx, removed: NodeId, update: &ArraySchema) {
        if self.is_open_array(update) {
            return ctx.add(ItemRemovedFromOpenContentModel);
        }
        if let Some(covering) = self.covering_item_schema(update) {
            let mut sub = ctx.sub();
            self.compare(&mut sub, Some(removed), Some(covering));
            let covered = self.is_compatible(&sub);
            ctx.extend(sub.diffs);
            return ctx.add(if covered {
                ItemRemovedIsCoveredByPartiallyOpenContentModel
            } else {
                ItemRemovedNotCoveredByPartiallyOpenContentModel
            });
        }
        ctx.add(if matches!(self.kind(removed), Kind::False) {
            ItemWithFalseRemovedFromClosedContentModel
        } else {
            ItemRemovedFromClosedContentModel
        });
    }

    fn item_added(&mut self, ctx: &mut Ctx, original: &ArraySchema, added: NodeId) {
        if self.is_open_array(original) {
            return ctx.add(if self.kind(added).is_empty_schema() {
                ItemWithEmptySchemaAddedToOpenContentModel
            } else {
                ItemAddedToOpenContentModel
            });
        }
        if let Some(covering) = self.covering_item_schema(original) {
            let mut sub = ctx.sub();
            self.compare(&mut sub, Some(covering), Some(added));
            let covered = self.is_compatible(&sub);
            ctx.extend(sub.diffs);
            return ctx.add(if covered {
                ItemAddedIsCoveredByPartiallyOpenContentModel
            } else {
                ItemAddedNotCoveredByPartiallyOpenContentModel
            });
        }
        ctx.add(ItemAddedToClosedContentModel);
    }

    /// Open: `additionalItems` absent or `true`, and `unevaluatedItems` absent or empty.
    fn is_open_array(&self, array: &ArraySchema) -> bool {
        array.additional_items == Additional::Permitted
            && array
                .unevaluated_items
                .is_none_or(|unevaluated| self.kind(unevaluated).is_empty_schema())
    }

    fn covering_item_schema(&self, array: &ArraySchema) -> Option<NodeId> {
        array.additional_items.schema().or_else(|| {
            self.constraining_unevaluated(array.additional_items, array.unevaluated_items)
        })
    }

    fn compare_additional_items(
        &mut self,
        ctx: &mut Ctx,
        original: &ArraySchema,
        update: &ArraySchema,
    ) {
        ctx.enter("additionalItems");
        let (before, after) = (original.additional_items, update.additional_items);
        if before.permits() != after.permits() {
            ctx.add(if before.permits() {
                AdditionalItemsRemoved
            } else {
                AdditionalItemsAdded
            });
        } else {
            match (before.schema(), after.schema()) {
                (None, Some(_)) => ctx.add(AdditionalItemsNarrowed),
                (Some(_), None) => ctx.add(AdditionalItemsExtended),
                (before, after) => self.compare(ctx, before, after),
            }
        }
        ctx.leave();
    }
}
