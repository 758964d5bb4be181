//! Which keywords belong to which everit schema class, per draft: the groups the loader
//! consumes for an explicit `type` and sniffs when there is none.

use super::resolve::Draft;

pub(super) const STRING_KEYWORDS: &[&str] = &["minLength", "maxLength", "pattern", "format"];
pub(super) const NUMBER_KEYWORDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];
pub(super) const CONDITIONAL_KEYWORDS: &[&str] = &["if", "then", "else"];

pub(super) fn object_keywords(draft: Draft) -> &'static [&'static str] {
    const DRAFT4: &[&str] = &[
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "dependencies",
        "patternProperties",
        "additionalProperties",
    ];
    const DRAFT7: &[&str] = &[
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "dependencies",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
    ];
    const MODERN: &[&str] = &[
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "dependencies",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "unevaluatedProperties",
        "dependentRequired",
        "dependentSchemas",
    ];
    match draft {
        Draft::Draft4 => DRAFT4,
        Draft::Draft6 | Draft::Draft7 => DRAFT7,
        Draft::Draft201909 | Draft::Draft202012 => MODERN,
    }
}

pub(super) fn array_keywords(draft: Draft) -> &'static [&'static str] {
    const DRAFT4: &[&str] = &[
        "items",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
    ];
    const DRAFT7: &[&str] = &[
        "items",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
    ];
    const MODERN: &[&str] = &[
        "items",
        "additionalItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "prefixItems",
        "unevaluatedItems",
        "minContains",
        "maxContains",
    ];
    match draft {
        Draft::Draft4 => DRAFT4,
        Draft::Draft6 | Draft::Draft7 => DRAFT7,
        Draft::Draft201909 | Draft::Draft202012 => MODERN,
    }
}

/// The keywords the loader for `type_name` reads, and so consumes.
pub(super) fn type_keywords(type_name: &str, draft: Draft) -> &'static [&'static str] {
    match type_name {
        "string" => STRING_KEYWORDS,
        "integer" | "number" => NUMBER_KEYWORDS,
        "object" => object_keywords(draft),
        "array" => array_keywords(draft),
        _ => &[],
    }
}
