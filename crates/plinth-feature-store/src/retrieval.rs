//! Online retrieval: the latest values of selected features for a batch of entity rows, with a status
//! per value, in Feast's column-major shape (join keys first, then features). One online-store round trip
//! per group of views that share join keys.

use std::collections::BTreeMap;
use std::time::Duration;

use plinth_runtime::error::ApiError;

use crate::domain::definitions::{JoinKey, Project};
use crate::domain::entity_key::{self, EntityKey};
use crate::domain::online_row::{self, OnlineRow, Status};
use crate::domain::selection::{self, SelectedView};
use crate::domain::value::Value;
use crate::online::OnlineStore;

/// Entity rows, column-major: join key name → one value per row, in the request's column order.
pub type EntityColumns = Vec<(String, Vec<Value>)>;

/// One response column: a value, a status and an event time per entity row.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineColumn {
    /// One value per row; null unless the status is PRESENT.
    pub values: Vec<Value>,
    /// One status per row.
    pub statuses: Vec<Status>,
    /// The event time of each value (UTC µs), where there is one.
    pub event_timestamps: Vec<Option<i64>>,
}

/// The answer: column names (join keys first, then features) and one column each.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineFeatures {
    /// Column names.
    pub names: Vec<String>,
    /// Columns, in the order of `names`.
    pub columns: Vec<OnlineColumn>,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct OnlineRequest {
    /// The selected features, resolved.
    pub selected: Vec<SelectedView>,
    /// The entity rows.
    pub entities: EntityColumns,
    /// Name features `<view>__<feature>`.
    pub full_feature_names: bool,
}

/// Reads the features of `request` for its entity rows at time `now_us`.
pub async fn get_online_features(
    project: &Project,
    store: &dyn OnlineStore,
    request: &OnlineRequest,
    max_rows: usize,
    now_us: i64,
) -> Result<OnlineFeatures, ApiError> {
    let n_rows = check_entity_columns(&request.entities, max_rows)?;
    let feature_names = selection::output_names(&request.selected, request.full_feature_names)
        .map_err(crate::error::selection)?;

    // Views grouped by their join keys: one read per group.
    let mut groups: BTreeMap<Vec<String>, Vec<&SelectedView>> = BTreeMap::new();
    let mut view_keys: BTreeMap<&str, Vec<JoinKey>> = BTreeMap::new();
    for selected in &request.selected {
        let Some(view) = project.feature_views.get(&selected.view) else {
            return Err(crate::error::selection(
                selection::SelectionError::UnknownView {
                    view: selected.view.clone(),
                    known: String::new(),
                },
            ));
        };
        let join_keys = project.join_keys(view);
        let mut names: Vec<String> = join_keys.iter().map(|key| key.name.clone()).collect();
        names.sort();
        groups.entry(names).or_default().push(selected);
        view_keys.insert(selected.view.as_str(), join_keys);
    }

    let mut columns_by_view: BTreeMap<&str, Vec<Option<OnlineRow>>> = BTreeMap::new();
    for views in groups.values() {
        let Some(first) = views.first() else { continue };
        let join_keys = view_keys
            .get(first.view.as_str())
            .cloned()
            .unwrap_or_default();
        let keys = entity_keys(&request.entities, &join_keys, n_rows, &first.view)?;
        // Rows whose key repeats are read once.
        let mut unique: Vec<EntityKey> = Vec::new();
        let mut index_of: BTreeMap<&[u8], usize> = BTreeMap::new();
        let mut row_to_unique = Vec::with_capacity(n_rows);
        for key in &keys {
            let next = index_of.len();
            let index = *index_of.entry(key.as_bytes()).or_insert(next);
            if index == next {
                unique.push(key.clone());
            }
            row_to_unique.push(index);
        }
        let view_names: Vec<&str> = views.iter().map(|view| view.view.as_str()).collect();
        let found = store
            .read(&view_names, &unique)
            .await
            .map_err(crate::error::online)?;
        for (view_idx, view_name) in view_names.iter().enumerate() {
            let rows = row_to_unique
                .iter()
                .map(|&unique_idx| {
                    found
                        .get(unique_idx)
                        .and_then(|per_view| per_view.get(view_idx))
                        .cloned()
                        .flatten()
                })
                .collect();
            columns_by_view.insert(view_name, rows);
        }
    }

    let mut names = Vec::new();
    let mut columns = Vec::new();
    for (name, values) in &request.entities {
        names.push(name.clone());
        columns.push(OnlineColumn {
            values: values.clone(),
            statuses: vec![Status::Present; n_rows],
            event_timestamps: vec![None; n_rows],
        });
    }
    let mut feature_names = feature_names.into_iter();
    for selected in &request.selected {
        let ttl = project
            .feature_views
            .get(&selected.view)
            .map_or(Duration::ZERO, |view| view.ttl);
        let rows = columns_by_view
            .get(selected.view.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        for feature in &selected.features {
            let mut column = OnlineColumn {
                values: Vec::with_capacity(n_rows),
                statuses: Vec::with_capacity(n_rows),
                event_timestamps: Vec::with_capacity(n_rows),
            };
            for row in rows {
                let (value, status) = online_row::status(row.as_ref(), feature, ttl, now_us);
                column.event_timestamps.push(match status {
                    Status::NotFound => None,
                    _ => row.as_ref().map(|row| row.event_ts),
                });
                column.values.push(value);
                column.statuses.push(status);
            }
            names.push(feature_names.next().unwrap_or_default());
            columns.push(column);
        }
    }
    Ok(OnlineFeatures { names, columns })
}

/// Checks that the entity columns are non-empty, equally long and within the limit; returns the row
/// count.
fn check_entity_columns(entities: &EntityColumns, max_rows: usize) -> Result<usize, ApiError> {
    let Some((first_name, first)) = entities.first() else {
        return Err(ApiError::invalid_argument(
            "ENTITIES_REQUIRED",
            "`entities` is empty; give each join key a column of values, e.g. {\"driver_id\": [1001, 1002]}",
        )
        .with_field("entities", "required"));
    };
    let n_rows = first.len();
    for (name, values) in entities {
        if values.len() != n_rows {
            return Err(ApiError::invalid_argument(
                "ENTITY_COLUMNS_UNEQUAL",
                format!(
                    "entity column `{name}` has {} values but `{first_name}` has {n_rows}; every entity column needs one value per row",
                    values.len()
                ),
            )
            .with_field(format!("entities.{name}"), "one value per entity row"));
        }
    }
    if n_rows > max_rows {
        return Err(ApiError::invalid_argument(
            "TOO_MANY_ENTITY_ROWS",
            format!(
                "the request has {n_rows} entity rows, more than the limit of {max_rows}; split it into smaller requests"
            ),
        )
        .with_field("entities", format!("at most {max_rows} rows")));
    }
    Ok(n_rows)
}

/// The entity key of every row for a view's join keys, with values coerced to the keys' types.
fn entity_keys(
    entities: &EntityColumns,
    join_keys: &[JoinKey],
    n_rows: usize,
    view: &str,
) -> Result<Vec<EntityKey>, ApiError> {
    let mut key_columns = Vec::with_capacity(join_keys.len());
    for join_key in join_keys {
        let Some((_, values)) = entities.iter().find(|(name, _)| name == &join_key.name) else {
            let given: Vec<&str> = entities.iter().map(|(name, _)| name.as_str()).collect();
            return Err(ApiError::invalid_argument(
                "ENTITY_KEY_MISSING",
                format!(
                    "feature view `{view}` is keyed by `{}` but the request has no such entity column (it has: {}); add a `{}` column",
                    join_key.name,
                    given.join(", "),
                    join_key.name
                ),
            )
            .with_field(format!("entities.{}", join_key.name), "required"));
        };
        key_columns.push((join_key, values));
    }
    let mut keys = Vec::with_capacity(n_rows);
    let mut parts: Vec<(&str, Value)> = Vec::with_capacity(join_keys.len());
    for row_idx in 0..n_rows {
        parts.clear();
        for (join_key, values) in &key_columns {
            let value = values.get(row_idx).cloned().unwrap_or(Value::Null);
            let value = coerce_key(value, join_key, row_idx)?;
            parts.push((join_key.name.as_str(), value));
        }
        let key = entity_key::encode(&parts).map_err(|err| {
            ApiError::invalid_argument("ENTITY_KEY_INVALID", format!("entity row {row_idx}: {err}"))
                .with_field("entities", "valid join key values")
        })?;
        keys.push(key);
    }
    Ok(keys)
}

/// A key value in the join key's type: integers convert between 32 and 64 bits when they fit; anything
/// else of the wrong type is refused.
pub(crate) fn coerce_key(
    value: Value,
    join_key: &JoinKey,
    row_idx: usize,
) -> Result<Value, ApiError> {
    if value.is_null() {
        return Err(ApiError::invalid_argument(
            "ENTITY_KEY_NULL",
            format!(
                "entity row {row_idx}: join key `{}` is null; every entity row needs a value for it",
                join_key.name
            ),
        )
        .with_field(format!("entities.{}", join_key.name), "not null"));
    }
    // Key types are integers, strings and bytes: `coerce` converts integer widths where the value fits
    // and refuses every other type.
    value
        .coerce(join_key.value_type)
        .map_err(|err| wrong_key_type(join_key, row_idx, &err.given))
}

fn wrong_key_type(join_key: &JoinKey, row_idx: usize, given: &str) -> ApiError {
    ApiError::invalid_argument(
        "ENTITY_KEY_TYPE",
        format!(
            "entity row {row_idx}: join key `{}` is {given}, but the entity declares {}; send {} values",
            join_key.name, join_key.value_type, join_key.value_type
        ),
    )
    .with_field(
        format!("entities.{}", join_key.name),
        format!("{} values", join_key.value_type),
    )
}
