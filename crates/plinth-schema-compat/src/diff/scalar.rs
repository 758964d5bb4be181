//! Strings, numbers and enums (`StringSchemaDiff`, `NumberSchemaDiff`, `EnumSchemaDiff`).

use serde_json::Value;

use super::Ctx;
use crate::DifferenceKind::{self, *};
use crate::schema::{NumberSchema, StringSchema};

/// The four kinds a bound can change by: added, removed, increased, decreased.
type BoundKinds = [DifferenceKind; 4];

/// Records how a numeric keyword changed; equal values (`10` and `10.0` too) record nothing.
pub(super) fn compare_bound<T: PartialOrd>(
    ctx: &mut Ctx,
    attribute: &str,
    original: Option<T>,
    update: Option<T>,
    [added, removed, increased, decreased]: BoundKinds,
) {
    match (original, update) {
        (None, Some(_)) => ctx.add_at(attribute, added),
        (Some(_), None) => ctx.add_at(attribute, removed),
        (Some(before), Some(after)) if before < after => ctx.add_at(attribute, increased),
        (Some(before), Some(after)) if before > after => ctx.add_at(attribute, decreased),
        _ => {}
    }
}

pub(super) fn compare_string(ctx: &mut Ctx, original: &StringSchema, update: &StringSchema) {
    compare_bound(
        ctx,
        "maxLength",
        original.max_length,
        update.max_length,
        [
            MaxLengthAdded,
            MaxLengthRemoved,
            MaxLengthIncreased,
            MaxLengthDecreased,
        ],
    );
    compare_bound(
        ctx,
        "minLength",
        original.min_length,
        update.min_length,
        [
            MinLengthAdded,
            MinLengthRemoved,
            MinLengthIncreased,
            MinLengthDecreased,
        ],
    );
    // Patterns compare as text: a looser regex is still a change.
    match (&original.pattern, &update.pattern) {
        (None, Some(_)) => ctx.add_at("pattern", PatternAdded),
        (Some(_), None) => ctx.add_at("pattern", PatternRemoved),
        (Some(before), Some(after)) if before != after => ctx.add_at("pattern", PatternChanged),
        _ => {}
    }
}

pub(super) fn compare_number(ctx: &mut Ctx, original: &NumberSchema, update: &NumberSchema) {
    compare_bound(
        ctx,
        "maximum",
        original.maximum,
        update.maximum,
        [
            MaximumAdded,
            MaximumRemoved,
            MaximumIncreased,
            MaximumDecreased,
        ],
    );
    compare_bound(
        ctx,
        "minimum",
        original.minimum,
        update.minimum,
        [
            MinimumAdded,
            MinimumRemoved,
            MinimumIncreased,
            MinimumDecreased,
        ],
    );
    // Confluent compares a lowered `exclusiveMaximum` with the update's `maximum` (and fails
    // when there is none); we compare it with the update's `exclusiveMaximum`.
    compare_bound(
        ctx,
        "exclusiveMaximum",
        original.exclusive_maximum,
        update.exclusive_maximum,
        [
            ExclusiveMaximumAdded,
            ExclusiveMaximumRemoved,
            ExclusiveMaximumIncreased,
            ExclusiveMaximumDecreased,
        ],
    );
    compare_bound(
        ctx,
        "exclusiveMinimum",
        original.exclusive_minimum,
        update.exclusive_minimum,
        [
            ExclusiveMinimumAdded,
            ExclusiveMinimumRemoved,
            ExclusiveMinimumIncreased,
            ExclusiveMinimumDecreased,
        ],
    );
    if original.multiple_of != update.multiple_of {
        match (&original.multiple_of, &update.multiple_of) {
            (None, _) => ctx.add_at("multipleOf", MultipleOfAdded),
            (_, None) => ctx.add_at("multipleOf", MultipleOfRemoved),
            (Some(before), Some(after)) => {
                // Confluent divides the values truncated to integers (`intValue()`); where one
                // truncates to zero it would divide by zero, and we report a plain change.
                let (before, after) = (int_value(before), int_value(after));
                let kind = if before != 0 && after % before == 0 {
                    MultipleOfExpanded
                } else if after != 0 && before % after == 0 {
                    MultipleOfReduced
                } else {
                    MultipleOfChanged
                };
                ctx.add_at("multipleOf", kind);
            }
        }
    }
    match (original.requires_integer, update.requires_integer) {
        (true, false) => ctx.add(TypeExtended),
        (false, true) => ctx.add(TypeNarrowed),
        _ => {}
    }
}

/// Java's `Number.intValue()` for the values a schema holds: truncation toward zero.
fn int_value(number: &serde_json::Number) -> i64 {
    number
        .as_i64()
        .or_else(|| number.as_f64().map(|value| value as i64))
        .unwrap_or(i64::MAX)
}

/// Enum values compare as sets: order and repetition do not matter.
pub(super) fn compare_enum(ctx: &mut Ctx, original: &[Value], update: &[Value]) {
    let contains_all = |set: &[Value], subset: &[Value]| subset.iter().all(|v| set.contains(v));
    let update_has_all = contains_all(update, original);
    let original_has_all = contains_all(original, update);
    if update_has_all && original_has_all {
        return;
    }
    let kind = if update_has_all {
        EnumArrayExtended
    } else if original_has_all {
        EnumArrayNarrowed
    } else {
        EnumArrayChanged
    };
    ctx.add_at("enum", kind);
}
