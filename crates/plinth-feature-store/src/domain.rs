//! The feature store's rules, free of IO: no tonic, no sqlx, no object store, no Redis.
//!
//! - [`value`]: value types and values of features and entity keys.
//! - [`definitions`]: entities, sources, feature views, feature services and the project they form.
//! - [`pit`]: the point-in-time join of entity rows and feature rows, on Arrow, in memory.
//! - [`entity_key`]: the stable binary encoding of an entity key, the online stores' key.
//! - [`online_row`]: a view's latest row per entity online, its encoding, and the write and read rules.
//! - [`parse`]: definition files (YAML) into a validated project, with file and line for every mistake.
//! - [`plan`]: the changes that take the registry's project to the files' one.
//! - [`selection`]: a feature service or feature references resolved into views and output names.

pub mod arrow_values;
pub mod definitions;
pub mod entity_key;
pub mod online_row;
pub mod parse;
pub mod pit;
pub mod plan;
pub mod selection;
pub mod value;

/// The threads to split `items` over: one per core, each with at least `min_per_thread` items, and at
/// least one.
pub(crate) fn threads_for(items: usize, min_per_thread: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items / min_per_thread.max(1))
        .max(1)
}
