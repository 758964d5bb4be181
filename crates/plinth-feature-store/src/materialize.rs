//! Batch materialization: the latest row per entity (by event time, then created time) of a view's
//! batch source within a window, written to the online store.
//!
//! A view's watermark (the end of its last completed window, in the registry) moves only after every
//! row of the window is written, so an interrupted run is simply run again: the online store's write
//! rule (newer-or-equal replaces) makes the rewrite of already written entities a no-op, and nothing is
//! lost or doubled. Incremental runs start at the watermark (inclusive, for the same reason).

use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use futures::StreamExt as _;
use plinth_runtime::error::ApiError;

use crate::domain::arrow_values::value_at;
use crate::domain::definitions::{FeatureView, Project};
use crate::domain::entity_key;
use crate::domain::online_row::{LatestRows, OnlineRow};
use crate::domain::pit::columns::{arrow_type, utc_micros_type};
use crate::offline::OfflineContext;
use crate::offline::reader::{EventWindow, ReadColumn, list_files, read_batches};
use crate::online::OnlineStore;

/// Rows per online write call.
const WRITE_CHUNK: usize = 1_000;

/// The window one view is materialized over, UTC µs, both ends inclusive; `start` unbounded when `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first event time read.
    pub start: Option<i64>,
    /// The last event time read.
    pub end: i64,
}

/// What materializing one view did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewOutcome {
    /// The view.
    pub view: String,
    /// The window read.
    pub window: Window,
    /// Source rows read in the window.
    pub rows_read: u64,
    /// Entities written (or found already up to date).
    pub entities_written: u64,
}

/// The window of an incremental run ending at `end`: from the watermark, or on the first run from
/// `end - ttl` (unbounded when the TTL is zero).
pub fn incremental_window(watermark: Option<i64>, ttl: Duration, end: i64) -> Window {
    let start = watermark.or_else(|| {
        (!ttl.is_zero())
            .then(|| end.saturating_sub(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)))
    });
    Window { start, end }
}

/// Materializes `view` over `window`.
pub async fn materialize_view(
    project: &Project,
    view: &FeatureView,
    window: Window,
    offline: &OfflineContext,
    online: &dyn OnlineStore,
) -> Result<ViewOutcome, ApiError> {
    let source = project.sources.get(&view.source).ok_or_else(|| {
        ApiError::failed_precondition(
            "SOURCE_NOT_FOUND",
            format!("feature view `{}` reads source `{}`, which is not registered; apply its definition", view.name, view.source),
        )
    })?;
    let location = source.batch_location().ok_or_else(|| {
        ApiError::failed_precondition(
            "SOURCE_HAS_NO_BATCH_SIDE",
            format!(
                "feature view `{}` reads push source `{}`, which has no dataset to materialize from; push to the online store directly, or give the source `push: {{dataset: NAME}}`",
                view.name, source.name
            ),
        )
    })?;
    let join_keys = project.join_keys(view);
    let mut columns = Vec::new();
    for key in &join_keys {
        columns.push(ReadColumn {
            name: source.source_column(&key.name).to_owned(),
            data_type: arrow_type(key.value_type),
            required: true,
        });
    }
    columns.push(ReadColumn {
        name: source.timestamp_field.clone(),
        data_type: utc_micros_type(),
        required: true,
    });
    if let Some(created) = &source.created_timestamp_column {
        columns.push(ReadColumn {
            name: created.clone(),
            data_type: utc_micros_type(),
            required: false,
        });
    }
    for feature in &view.features {
        columns.push(ReadColumn {
            name: source.source_column(&feature.name).to_owned(),
            data_type: arrow_type(feature.value_type),
            required: false,
        });
    }
    let files = list_files(offline, location)
        .await
        .map_err(crate::error::offline)?;
    let mut batches = read_batches(
        files,
        Some(columns),
        Some(EventWindow {
            column: source.timestamp_field.clone(),
            start: window.start,
            end: Some(window.end),
        }),
        offline.batch_rows,
    );

    let mut latest = LatestRows::default();
    let mut rows_read = 0_u64;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(crate::error::offline)?;
        rows_read += batch.num_rows() as u64;
        let column = |name: &str| batch.column_by_name(name).cloned();
        let key_arrays: Vec<_> = join_keys
            .iter()
            .map(|key| column(source.source_column(&key.name)))
            .collect();
        let Some(event_array) = column(&source.timestamp_field) else {
            continue;
        };
        let event_times = event_array.as_primitive::<TimestampMicrosecondType>();
        let created_array = source.created_timestamp_column.as_deref().and_then(&column);
        let created_times = created_array
            .as_ref()
            .map(|array| array.as_primitive::<TimestampMicrosecondType>());
        let feature_arrays: Vec<_> = view
            .features
            .iter()
            .map(|feature| column(source.source_column(&feature.name)))
            .collect();
        'rows: for row_idx in 0..batch.num_rows() {
            if event_times.is_null(row_idx) {
                continue;
            }
            let mut parts = Vec::with_capacity(join_keys.len());
            for (key, array) in join_keys.iter().zip(&key_arrays) {
                let Some(array) = array else { continue 'rows };
                let value = value_at(array.as_ref(), row_idx, key.value_type);
                if value.is_null() {
                    // A row without its entity key identifies nothing.
                    continue 'rows;
                }
                parts.push((key.name.as_str(), value));
            }
            let Ok(key) = entity_key::encode(&parts) else {
                continue;
            };
            let event_ts = event_times.value(row_idx);
            let created_ts = created_times
                .filter(|times| !times.is_null(row_idx))
                .map_or(0, |times| times.value(row_idx));
            if !latest.would_keep(&key, event_ts, created_ts) {
                continue;
            }
            let values = view
                .features
                .iter()
                .zip(&feature_arrays)
                .map(|(feature, array)| {
                    let value = array
                        .as_ref()
                        .map_or(crate::domain::value::Value::Null, |array| {
                            value_at(array.as_ref(), row_idx, feature.value_type)
                        });
                    (feature.name.clone(), value)
                })
                .collect();
            let row = OnlineRow {
                event_ts,
                created_ts,
                values,
            };
            latest.add(key, row);
        }
    }

    let entities = latest.len() as u64;
    let mut rows = latest.into_rows();
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(WRITE_CHUNK));
        let chunk = std::mem::replace(&mut rows, rest);
        online
            .write(&view.name, chunk)
            .await
            .map_err(crate::error::online)?;
    }
    Ok(ViewOutcome {
        view: view.name.clone(),
        window,
        rows_read,
        entities_written: entities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_windows_start_at_the_watermark_or_the_ttl() {
        let hour = Duration::from_secs(3_600);
        assert_eq!(
            incremental_window(Some(5), hour, 10),
            Window {
                start: Some(5),
                end: 10
            }
        );
        assert_eq!(
            incremental_window(None, hour, 7_200_000_000),
            Window {
                start: Some(3_600_000_000),
                end: 7_200_000_000
            }
        );
        assert_eq!(
            incremental_window(None, Duration::ZERO, 10),
            Window {
                start: None,
                end: 10
            }
        );
    }
}
