//! The vocabulary of the diff: Confluent's `Difference.Type` constants, the two sets of compatible
//! changes, and the message a rejected registration carries.

use crate::Policy;

/// Declares [`DifferenceKind`] from `Variant => "CONFLUENT_NAME"` pairs, in Confluent's order, so
/// the Rust name and the wire name can never drift apart.
macro_rules! difference_kinds {
    ($($variant:ident => $name:literal,)*) => {
        /// One kind of change between two JSON Schemas: every constant of Confluent's
        /// `Difference.Type`, in the same order, Rust-cased.
        ///
        /// [`DifferenceKind::name`] gives the Confluent constant; whether a kind is allowed is
        /// decided by [`DifferenceKind::is_compatible`], never by the variant's name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DifferenceKind {
            $(
                #[doc = concat!("Confluent's `", $name, "`.")]
                $variant,
            )*
        }

        impl DifferenceKind {
            /// Every kind, in Confluent's declaration order.
            pub const ALL: &'static [DifferenceKind] = &[$(DifferenceKind::$variant,)*];

            /// Confluent's constant name, e.g. `"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(DifferenceKind::$variant => $name,)*
                }
            }

            /// The kind whose Confluent constant is `name`, if there is one.
            pub fn from_name(name: &str) -> Option<DifferenceKind> {
                match name {
                    $($name => Some(DifferenceKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

difference_kinds! {
    IdChanged => "ID_CHANGED",
    DescriptionChanged => "DESCRIPTION_CHANGED",
    TitleChanged => "TITLE_CHANGED",
    DefaultChanged => "DEFAULT_CHANGED",
    SchemaAdded => "SCHEMA_ADDED",
    SchemaRemoved => "SCHEMA_REMOVED",
    TypeExtended => "TYPE_EXTENDED",
    TypeNarrowed => "TYPE_NARROWED",
    TypeChanged => "TYPE_CHANGED",

    MaxLengthAdded => "MAX_LENGTH_ADDED",
    MaxLengthRemoved => "MAX_LENGTH_REMOVED",
    MaxLengthIncreased => "MAX_LENGTH_INCREASED",
    MaxLengthDecreased => "MAX_LENGTH_DECREASED",
    MinLengthAdded => "MIN_LENGTH_ADDED",
    MinLengthRemoved => "MIN_LENGTH_REMOVED",
    MinLengthIncreased => "MIN_LENGTH_INCREASED",
    MinLengthDecreased => "MIN_LENGTH_DECREASED",
    PatternAdded => "PATTERN_ADDED",
    PatternRemoved => "PATTERN_REMOVED",
    PatternChanged => "PATTERN_CHANGED",

    MaximumAdded => "MAXIMUM_ADDED",
    MaximumRemoved => "MAXIMUM_REMOVED",
    MaximumIncreased => "MAXIMUM_INCREASED",
    MaximumDecreased => "MAXIMUM_DECREASED",
    MinimumAdded => "MINIMUM_ADDED",
    MinimumRemoved => "MINIMUM_REMOVED",
    MinimumIncreased => "MINIMUM_INCREASED",
    MinimumDecreased => "MINIMUM_DECREASED",
    ExclusiveMaximumAdded => "EXCLUSIVE_MAXIMUM_ADDED",
    ExclusiveMaximumRemoved => "EXCLUSIVE_MAXIMUM_REMOVED",
    ExclusiveMaximumIncreased => "EXCLUSIVE_MAXIMUM_INCREASED",
    ExclusiveMaximumDecreased => "EXCLUSIVE_MAXIMUM_DECREASED",
    ExclusiveMinimumAdded => "EXCLUSIVE_MINIMUM_ADDED",
    ExclusiveMinimumRemoved => "EXCLUSIVE_MINIMUM_REMOVED",
    ExclusiveMinimumIncreased => "EXCLUSIVE_MINIMUM_INCREASED",
    ExclusiveMinimumDecreased => "EXCLUSIVE_MINIMUM_DECREASED",
    MultipleOfAdded => "MULTIPLE_OF_ADDED",
    MultipleOfRemoved => "MULTIPLE_OF_REMOVED",
    MultipleOfExpanded => "MULTIPLE_OF_EXPANDED",
    MultipleOfReduced => "MULTIPLE_OF_REDUCED",
    MultipleOfChanged => "MULTIPLE_OF_CHANGED",

    RequiredAttributeAdded => "REQUIRED_ATTRIBUTE_ADDED",
    RequiredAttributeWithDefaultAdded => "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
    RequiredAttributeRemoved => "REQUIRED_ATTRIBUTE_REMOVED",
    MaxPropertiesAdded => "MAX_PROPERTIES_ADDED",
    MaxPropertiesRemoved => "MAX_PROPERTIES_REMOVED",
    MaxPropertiesIncreased => "MAX_PROPERTIES_INCREASED",
    MaxPropertiesDecreased => "MAX_PROPERTIES_DECREASED",
    MinPropertiesAdded => "MIN_PROPERTIES_ADDED",
    MinPropertiesRemoved => "MIN_PROPERTIES_REMOVED",
    MinPropertiesIncreased => "MIN_PROPERTIES_INCREASED",
    MinPropertiesDecreased => "MIN_PROPERTIES_DECREASED",
    AdditionalPropertiesAdded => "ADDITIONAL_PROPERTIES_ADDED",
    AdditionalPropertiesRemoved => "ADDITIONAL_PROPERTIES_REMOVED",
    AdditionalPropertiesExtended => "ADDITIONAL_PROPERTIES_EXTENDED",
    AdditionalPropertiesNarrowed => "ADDITIONAL_PROPERTIES_NARROWED",
    DependencyArrayAdded => "DEPENDENCY_ARRAY_ADDED",
    DependencyArrayRemoved => "DEPENDENCY_ARRAY_REMOVED",
    DependencyArrayExtended => "DEPENDENCY_ARRAY_EXTENDED",
    DependencyArrayNarrowed => "DEPENDENCY_ARRAY_NARROWED",
    DependencyArrayChanged => "DEPENDENCY_ARRAY_CHANGED",
    DependencySchemaAdded => "DEPENDENCY_SCHEMA_ADDED",
    DependencySchemaRemoved => "DEPENDENCY_SCHEMA_REMOVED",
    PropertyAddedToOpenContentModel => "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    RequiredPropertyAddedToOpenContentModel => "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    RequiredPropertyWithDefaultAddedToOpenContentModel => "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL",
    OptionalPropertyAddedToOpenContentModel => "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    PropertyWithEmptySchemaAddedToOpenContentModel => "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    RequiredPropertyAddedToUnopenContentModel => "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    RequiredPropertyWithDefaultAddedToUnopenContentModel => "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
    OptionalPropertyAddedToUnopenContentModel => "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    PropertyRemovedFromOpenContentModel => "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    PropertyWithFalseRemovedFromClosedContentModel => "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    PropertyRemovedFromClosedContentModel => "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    PropertyRemovedIsCoveredByPartiallyOpenContentModel => "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    PropertyRemovedNotCoveredByPartiallyOpenContentModel => "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    PropertyAddedIsCoveredByPartiallyOpenContentModel => "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    PropertyAddedNotCoveredByPartiallyOpenContentModel => "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ReservedPropertyRemoved => "RESERVED_PROPERTY_REMOVED",
    ReservedPropertyConflictsWithProperty => "RESERVED_PROPERTY_CONFLICTS_WITH_PROPERTY",
    UnevaluatedPropertiesAdded => "UNEVALUATED_PROPERTIES_ADDED",
    UnevaluatedPropertiesRemoved => "UNEVALUATED_PROPERTIES_REMOVED",
    UnevaluatedPropertiesExtended => "UNEVALUATED_PROPERTIES_EXTENDED",
    UnevaluatedPropertiesNarrowed => "UNEVALUATED_PROPERTIES_NARROWED",

    MaxItemsAdded => "MAX_ITEMS_ADDED",
    MaxItemsRemoved => "MAX_ITEMS_REMOVED",
    MaxItemsIncreased => "MAX_ITEMS_INCREASED",
    MaxItemsDecreased => "MAX_ITEMS_DECREASED",
    MinItemsAdded => "MIN_ITEMS_ADDED",
    MinItemsRemoved => "MIN_ITEMS_REMOVED",
    MinItemsIncreased => "MIN_ITEMS_INCREASED",
    MinItemsDecreased => "MIN_ITEMS_DECREASED",
    MaxContainsAdded => "MAX_CONTAINS_ADDED",
    MaxContainsRemoved => "MAX_CONTAINS_REMOVED",
    MaxContainsIncreased => "MAX_CONTAINS_INCREASED",
    MaxContainsDecreased => "MAX_CONTAINS_DECREASED",
    MinContainsAdded => "MIN_CONTAINS_ADDED",
    MinContainsRemoved => "MIN_CONTAINS_REMOVED",
    MinContainsIncreased => "MIN_CONTAINS_INCREASED",
    MinContainsDecreased => "MIN_CONTAINS_DECREASED",
    UniqueItemsAdded => "UNIQUE_ITEMS_ADDED",
    UniqueItemsRemoved => "UNIQUE_ITEMS_REMOVED",
    AdditionalItemsAdded => "ADDITIONAL_ITEMS_ADDED",
    AdditionalItemsRemoved => "ADDITIONAL_ITEMS_REMOVED",
    AdditionalItemsExtended => "ADDITIONAL_ITEMS_EXTENDED",
    AdditionalItemsNarrowed => "ADDITIONAL_ITEMS_NARROWED",
    UnevaluatedItemsAdded => "UNEVALUATED_ITEMS_ADDED",
    UnevaluatedItemsRemoved => "UNEVALUATED_ITEMS_REMOVED",
    UnevaluatedItemsExtended => "UNEVALUATED_ITEMS_EXTENDED",
    UnevaluatedItemsNarrowed => "UNEVALUATED_ITEMS_NARROWED",
    ItemAddedToOpenContentModel => "ITEM_ADDED_TO_OPEN_CONTENT_MODEL",
    ItemWithEmptySchemaAddedToOpenContentModel => "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    ItemAddedToClosedContentModel => "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
    ItemRemovedFromOpenContentModel => "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
    ItemWithFalseRemovedFromClosedContentModel => "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ItemRemovedFromClosedContentModel => "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    ItemRemovedIsCoveredByPartiallyOpenContentModel => "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ItemRemovedNotCoveredByPartiallyOpenContentModel => "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ItemAddedIsCoveredByPartiallyOpenContentModel => "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    ItemAddedNotCoveredByPartiallyOpenContentModel => "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",

    EnumArrayExtended => "ENUM_ARRAY_EXTENDED",
    EnumArrayNarrowed => "ENUM_ARRAY_NARROWED",
    EnumArrayChanged => "ENUM_ARRAY_CHANGED",

    CombinedTypeExtended => "COMBINED_TYPE_EXTENDED",
    CombinedTypeChanged => "COMBINED_TYPE_CHANGED",
    ProductTypeExtended => "PRODUCT_TYPE_EXTENDED",
    ProductTypeNarrowed => "PRODUCT_TYPE_NARROWED",
    SumTypeExtended => "SUM_TYPE_EXTENDED",
    SumTypeNarrowed => "SUM_TYPE_NARROWED",
    CombinedTypeSubschemasChanged => "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
    NotTypeExtended => "NOT_TYPE_EXTENDED",
    NotTypeNarrowed => "NOT_TYPE_NARROWED",
}

impl DifferenceKind {
    /// Whether this kind is allowed under `policy`: membership in Confluent's
    /// `SchemaDiff.COMPATIBLE_CHANGES_STRICT`, or `COMPATIBLE_CHANGES_LENIENT` (a superset).
    pub fn is_compatible(self, policy: Policy) -> bool {
        match policy {
            Policy::Strict => self.is_compatible_strict(),
            Policy::Lenient => self.is_compatible_strict() || self.is_compatible_only_lenient(),
        }
    }

    fn is_compatible_strict(self) -> bool {
        use DifferenceKind::*;
        matches!(
            self,
            IdChanged
                | DescriptionChanged
                | TitleChanged
                | DefaultChanged
                | SchemaRemoved
                | TypeExtended
                | MaxLengthIncreased
                | MaxLengthRemoved
                | MinLengthDecreased
                | MinLengthRemoved
                | PatternRemoved
                | MaximumIncreased
                | MaximumRemoved
                | MinimumDecreased
                | MinimumRemoved
                | ExclusiveMaximumIncreased
                | ExclusiveMaximumRemoved
                | ExclusiveMinimumDecreased
                | ExclusiveMinimumRemoved
                | MultipleOfReduced
                | MultipleOfRemoved
                | RequiredAttributeWithDefaultAdded
                | RequiredAttributeRemoved
                | DependencyArrayNarrowed
                | DependencyArrayRemoved
                | DependencySchemaRemoved
                | MaxPropertiesIncreased
                | MaxPropertiesRemoved
                | MinPropertiesDecreased
                | MinPropertiesRemoved
                | AdditionalPropertiesAdded
                | AdditionalPropertiesExtended
                | UnevaluatedPropertiesAdded
                | UnevaluatedPropertiesExtended
                | PropertyWithEmptySchemaAddedToOpenContentModel
                | RequiredPropertyWithDefaultAddedToUnopenContentModel
                | OptionalPropertyAddedToUnopenContentModel
                | PropertyWithFalseRemovedFromClosedContentModel
                | PropertyRemovedFromOpenContentModel
                | PropertyAddedIsCoveredByPartiallyOpenContentModel
                | PropertyRemovedIsCoveredByPartiallyOpenContentModel
                | MaxItemsIncreased
                | MaxItemsRemoved
                | MinItemsDecreased
                | MinItemsRemoved
                | MaxContainsIncreased
                | MaxContainsRemoved
                | MinContainsDecreased
                | MinContainsRemoved
                | UniqueItemsRemoved
                | AdditionalItemsAdded
                | AdditionalItemsExtended
                | UnevaluatedItemsAdded
                | UnevaluatedItemsExtended
                | ItemWithEmptySchemaAddedToOpenContentModel
                | ItemAddedToClosedContentModel
                | ItemWithFalseRemovedFromClosedContentModel
                | ItemRemovedFromOpenContentModel
                | ItemAddedIsCoveredByPartiallyOpenContentModel
                | ItemRemovedIsCoveredByPartiallyOpenContentModel
                | EnumArrayExtended
                | CombinedTypeExtended
                | ProductTypeNarrowed
                | SumTypeExtended
                | NotTypeNarrowed
        )
    }

    /// What `COMPATIBLE_CHANGES_LENIENT` adds on top of the strict set.
    fn is_compatible_only_lenient(self) -> bool {
        use DifferenceKind::*;
        matches!(
            self,
            AdditionalPropertiesNarrowed
                | AdditionalPropertiesRemoved
                | UnevaluatedPropertiesNarrowed
                | UnevaluatedPropertiesRemoved
                | RequiredPropertyWithDefaultAddedToOpenContentModel
                | OptionalPropertyAddedToOpenContentModel
                | PropertyRemovedFromOpenContentModel
                | PropertyRemovedFromClosedContentModel
                | PropertyAddedNotCoveredByPartiallyOpenContentModel
                | PropertyRemovedNotCoveredByPartiallyOpenContentModel
        )
    }

    /// Confluent's description template for this kind (`Difference.error()`), with `%s`
    /// standing for the two schemas' roles; empty for kinds Confluent gives no text.
    fn template(self, path: &str) -> String {
        use DifferenceKind::*;
        match self {
            MaximumAdded
            | MinimumAdded
            | ExclusiveMaximumAdded
            | ExclusiveMinimumAdded
            | MultipleOfAdded
            | MaxLengthAdded
            | MinLengthAdded
            | PatternAdded
            | RequiredAttributeAdded
            | MaxPropertiesAdded
            | MinPropertiesAdded
            | DependencyArrayAdded
            | DependencySchemaAdded
            | MaxItemsAdded
            | MinItemsAdded
            | MaxContainsAdded
            | MinContainsAdded
            | UniqueItemsAdded
            | AdditionalItemsRemoved
            | AdditionalPropertiesRemoved
            | UnevaluatedPropertiesRemoved
            | UnevaluatedItemsRemoved => format!(
                "The keyword at path '{path}' in the %s schema is not present in the %s schema"
            ),
            MinLengthIncreased
            | MinimumIncreased
            | ExclusiveMinimumIncreased
            | MinPropertiesIncreased
            | MultipleOfExpanded
            | MinItemsIncreased
            | MinContainsIncreased => format!(
                "The value at path '{path}' in the %s schema is more than its value in the %s schema"
            ),
            MaxLengthDecreased
            | MaximumDecreased
            | MaxItemsDecreased
            | MaxContainsDecreased
            | ExclusiveMaximumDecreased
            | MaxPropertiesDecreased => format!(
                "The value at path '{path}' in the %s schema is less than its value in the %s schema"
            ),
            PatternChanged | MultipleOfChanged | DependencyArrayChanged => {
                format!("The value at path '{path}' is different between the %s and %s schema")
            }
            AdditionalItemsNarrowed
            | EnumArrayNarrowed
            | SumTypeNarrowed
            | AdditionalPropertiesNarrowed
            | UnevaluatedPropertiesNarrowed
            | UnevaluatedItemsNarrowed => format!(
                "An array or combined type at path '{path}' has fewer elements in the %s schema than the %s schema"
            ),
            DependencyArrayExtended | ProductTypeExtended | SumTypeExtended | NotTypeExtended => {
                format!(
                    "An array or combined type at path '{path}' has more elements in the %s schema than the %s schema"
                )
            }
            TypeChanged
            | TypeNarrowed
            | CombinedTypeChanged
            | CombinedTypeSubschemasChanged
            | EnumArrayChanged => format!(
                "A type at path '{path}' is different between the %s schema and the %s schema"
            ),
            RequiredPropertyAddedToOpenContentModel
            | RequiredPropertyWithDefaultAddedToOpenContentModel
            | OptionalPropertyAddedToOpenContentModel
            | ItemAddedToOpenContentModel => format!(
                "The %s schema has an open content model and has a property or item at path '{path}' which is missing in the %s schema"
            ),
            RequiredPropertyAddedToUnopenContentModel => format!(
                "The %s schema has an unopen content model and has a required property at path '{path}' which is missing in the %s schema"
            ),
            PropertyRemovedFromClosedContentModel | ItemRemovedFromClosedContentModel => format!(
                "The %s has a closed content model and is missing a property or item present at path '{path}' in the %s schema"
            ),
            PropertyRemovedNotCoveredByPartiallyOpenContentModel
            | ItemRemovedNotCoveredByPartiallyOpenContentModel => format!(
                "A property or item is missing in the %s schema but present at path '{path}' in the %s schema and is not covered by its partially open content model"
            ),
            PropertyAddedNotCoveredByPartiallyOpenContentModel
            | ItemAddedNotCoveredByPartiallyOpenContentModel => format!(
                "The %s schema has a property or item at path '{path}' which is missing in the %s schema and is not covered by its partially open content model"
            ),
            ReservedPropertyRemoved => format!(
                "The %s schema has reserved property '{path}' removed from its metadata which is present in the %s schema."
            ),
            ReservedPropertyConflictsWithProperty => format!(
                "The %s schema has property at path '{path}' that conflicts with the reserved properties which is missing in the %s schema."
            ),
            _ => String::new(),
        }
    }
}

impl std::fmt::Display for DifferenceKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One change found between two schemas: what kind it is and where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Difference {
    /// What changed.
    pub kind: DifferenceKind,
    /// Where, as Confluent writes it: `"#/"` for the root, `"#/properties/age"`,
    /// `"#/allOf/1/enum"`, `"#/items/0"` (a tuple position is one segment, `items/0`).
    pub path: String,
}

impl Difference {
    /// The message Confluent puts in the `details` of a rejected registration (its
    /// `Difference.toString()`), with the roles filled as a BACKWARD check fills them: the
    /// update is "new", the original is "old".
    ///
    /// For example `{errorType:"TYPE_CHANGED", description:"A type at path '#/properties/age'
    /// is different between the new schema and the old schema'}`. The odd closing `'}` is
    /// Confluent's. For a FORWARD check, where the diff runs the other way, use
    /// [`Difference::message_with_roles`] with `("old", "new")`.
    pub fn message(&self) -> String {
        self.message_with_roles("new", "old")
    }

    /// [`Difference::message`] with the two role words chosen by the caller: `first` names the
    /// schema passed as `update`, `second` the one passed as `original`.
    pub fn message_with_roles(&self, first: &str, second: &str) -> String {
        let description = self
            .kind
            .template(&self.path)
            .replacen("%s", first, 1)
            .replacen("%s", second, 1);
        format!(
            "{{errorType:\"{}\", description:\"{}'}}",
            self.kind.name(),
            description
        )
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} {}", self.kind.name(), self.path)
    }
}
