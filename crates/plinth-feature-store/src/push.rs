//! The Push API: rows written by an application straight to the online store, the lake, or both, for
//! every feature view fed by a push source (Feast's `store.push(..., to=...)`).
//!
//! Online, each row becomes its entity's latest values when it is not older than what is stored (the
//! same rule as materialization). A push source without a created-timestamp column stamps rows with the
//! push time, so a second push for the same event time replaces the first. Offline, the rows land as one
//! Parquet file per event date in the source's batch dataset, written in one put each.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use object_store::ObjectStoreExt as _;
use plinth_runtime::error::ApiError;

use crate::domain::arrow_values;
use crate::domain::definitions::{BatchLocation, FeatureView, Project, Source, SourceKind};
use crate::domain::entity_key;
use crate::domain::online_row::{LatestRows, OnlineRow};
use crate::domain::pit::columns::arrow_type;
use crate::domain::value::{Value, ValueType};
use crate::offline::OfflineContext;
use crate::online::OnlineStore;
use crate::retrieval::coerce_key;

/// Where pushed rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushTarget {
    /// The online store.
    Online,
    /// The lake.
    Offline,
    /// Both.
    OnlineAndOffline,
}

impl PushTarget {
    fn online(self) -> bool {
        matches!(self, PushTarget::Online | PushTarget::OnlineAndOffline)
    }

    fn offline(self) -> bool {
        matches!(self, PushTarget::Offline | PushTarget::OnlineAndOffline)
    }
}

/// A push: rows of one push source, column-major.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The push source.
    pub source: String,
    /// Column name → one value per row.
    pub columns: Vec<(String, Vec<Value>)>,
    /// Where the rows go.
    pub to: PushTarget,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The views that received the rows.
    pub feature_views: Vec<String>,
    /// Rows pushed.
    pub row_count: usize,
}

/// Writes the rows of `request` to the views fed by its push source.
pub async fn push(
    project: &Project,
    online: &dyn OnlineStore,
    offline: &OfflineContext,
    request: PushRequest,
    max_rows: usize,
    now_us: i64,
) -> Result<PushOutcome, ApiError> {
    let source = project
        .sources
        .get(&request.source)
        .filter(|source| matches!(source.kind, SourceKind::Push { .. }))
        .ok_or_else(|| {
            let known: Vec<&str> = project
                .sources
                .values()
                .filter(|source| matches!(source.kind, SourceKind::Push { .. }))
                .map(|source| source.name.as_str())
                .collect();
            ApiError::not_found(
                "PUSH_SOURCE_NOT_FOUND",
                format!(
                    "`{}` is not a registered push source; push sources: {}",
                    request.source,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            )
            .with_field("push_source", "a registered push source")
        })?;
    let n_rows = check_columns(&request.columns, max_rows)?;
    let views: Vec<&FeatureView> = project
        .feature_views
        .values()
        .filter(|view| view.source == source.name)
        .collect();
    if views.is_empty() {
        return Err(ApiError::failed_precondition(
            "PUSH_SOURCE_UNUSED",
            format!(
                "no feature view reads push source `{}`; declare one with `source: {}` and apply it",
                source.name, source.name
            ),
        ));
    }
    let column = |name: &str| {
        request
            .columns
            .iter()
            .find(|(column, _)| column == name)
            .map(|(_, values)| values.as_slice())
    };
    let event_ts = timestamps(source, &source.timestamp_field, column, n_rows)?;
    let created_ts = match &source.created_timestamp_column {
        Some(created) => timestamps(source, created, column, n_rows)?,
        None => vec![now_us; n_rows],
    };

    // Refuse an offline push the source cannot take before anything is written online.
    let offline_location = if request.to.offline() {
        let SourceKind::Push {
            batch: Some(location),
        } = &source.kind
        else {
            return Err(ApiError::failed_precondition(
                "PUSH_SOURCE_NOT_OFFLINE",
                format!(
                    "push source `{}` has no dataset, so rows cannot go offline; give it `push: {{dataset: NAME}}` or push with to=online",
                    source.name
                ),
            ));
        };
        Some(location)
    } else {
        None
    };
    // Every row is checked and every online row built before anything is written.
    let mut pushed_views = Vec::new();
    let mut online_writes = Vec::new();
    for view in &views {
        let join_keys = project.join_keys(view);
        let mut key_columns = Vec::new();
        for join_key in &join_keys {
            let values = column(source.source_column(&join_key.name))
                .ok_or_else(|| missing_column(source, source.source_column(&join_key.name)))?;
            key_columns.push((join_key, values));
        }
        let mut feature_columns = Vec::new();
        for feature in &view.features {
            let name = source.source_column(&feature.name);
            let values = column(name).ok_or_else(|| missing_column(source, name))?;
            let coerced = values
                .iter()
                .enumerate()
                .map(|(row_idx, value)| {
                    value.clone().coerce(feature.value_type).map_err(|err| {
                        ApiError::invalid_argument(
                            "PUSH_VALUE_TYPE",
                            format!(
                                "column `{name}`, row {row_idx}: {err}; send {} values",
                                feature.value_type
                            ),
                        )
                        .with_field(
                            format!("columns.{name}"),
                            format!("{} values", feature.value_type),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            feature_columns.push((feature, name, coerced));
        }
        if request.to.online() && view.online {
            let mut latest = LatestRows::default();
            for row_idx in 0..n_rows {
                let mut parts = Vec::with_capacity(key_columns.len());
                for (join_key, values) in &key_columns {
                    let value = values.get(row_idx).cloned().unwrap_or(Value::Null);
                    parts.push((
                        join_key.name.as_str(),
                        coerce_key(value, join_key, row_idx)?,
                    ));
                }
                let key = entity_key::encode(&parts).map_err(|err| {
                    ApiError::invalid_argument(
                        "ENTITY_KEY_INVALID",
                        format!("row {row_idx}: {err}"),
                    )
                })?;
                let row = OnlineRow {
                    event_ts: event_ts[row_idx],
                    created_ts: created_ts[row_idx],
                    values: feature_columns
                        .iter()
                        .map(|(feature, _, values)| (feature.name.clone(), values[row_idx].clone()))
                        .collect(),
                };
                latest.add(key, row);
            }
            online_writes.push((view.name.as_str(), latest.into_rows()));
        }
        pushed_views.push(view.name.clone());
    }
    // The lake first: it is the record of what was pushed; a failure there writes nothing online, and a
    // retried push rewrites the online values idempotently.
    if let Some(location) = offline_location {
        write_offline(
            project,
            source,
            &views,
            location,
            &request.columns,
            &event_ts,
            &created_ts,
            offline,
        )
        .await?;
    }
    for (view, rows) in online_writes {
        online
            .write(view, rows)
            .await
            .map_err(crate::error::online)?;
    }

    Ok(PushOutcome {
        feature_views: pushed_views,
        row_count: n_rows,
    })
}

fn check_columns(columns: &[(String, Vec<Value>)], max_rows: usize) -> Result<usize, ApiError> {
    let n_rows = columns.first().map_or(0, |(_, values)| values.len());
    if n_rows == 0 {
        return Err(ApiError::required(
            "columns",
            "send the join keys, the timestamp field and the features, one value per row",
        ));
    }
    if let Some((name, values)) = columns.iter().find(|(_, values)| values.len() != n_rows) {
        return Err(ApiError::invalid_argument(
            "PUSH_COLUMNS_UNEQUAL",
            format!(
                "column `{name}` has {} values but the first column has {n_rows}; every column needs one value per row",
                values.len()
            ),
        )
        .with_field(format!("columns.{name}"), "one value per row"));
    }
    if n_rows > max_rows {
        return Err(ApiError::invalid_argument(
            "TOO_MANY_PUSH_ROWS",
            format!("the push has {n_rows} rows, more than the limit of {max_rows}; split it"),
        )
        .with_field("columns", format!("at most {max_rows} rows")));
    }
    Ok(n_rows)
}

fn missing_column(source: &Source, name: &str) -> ApiError {
    ApiError::invalid_argument(
        "PUSH_COLUMN_MISSING",
        format!(
            "the push to `{}` has no column `{name}`; send every join key, the timestamp field and every feature of the views it feeds",
            source.name
        ),
    )
    .with_field(format!("columns.{name}"), "required")
}

fn timestamps<'a>(
    source: &Source,
    name: &str,
    column: impl Fn(&str) -> Option<&'a [Value]>,
    n_rows: usize,
) -> Result<Vec<i64>, ApiError> {
    let values = column(name).ok_or_else(|| missing_column(source, name))?;
    let mut out = Vec::with_capacity(n_rows);
    for (row_idx, value) in values.iter().enumerate() {
        match value.clone().coerce(ValueType::UnixTimestamp) {
            Ok(Value::UnixTimestamp(micros)) => out.push(micros),
            Ok(_) => {
                return Err(ApiError::invalid_argument(
                    "PUSH_TIMESTAMP_NULL",
                    format!(
                        "column `{name}`, row {row_idx}: the timestamp is null; every row needs one"
                    ),
                )
                .with_field(format!("columns.{name}"), "not null"));
            }
            Err(err) => {
                return Err(ApiError::invalid_argument(
                    "PUSH_TIMESTAMP_INVALID",
                    format!("column `{name}`, row {row_idx}: {err}; send RFC 3339 text such as 2026-01-02T03:04:05Z (no zone: UTC)"),
                )
                .with_field(format!("columns.{name}"), "timestamps"));
            }
        }
    }
    Ok(out)
}

/// Writes the pushed rows to the source's batch location, one Parquet file per event date.
#[allow(clippy::too_many_arguments, reason = "the parts of one push, named")]
async fn write_offline(
    project: &Project,
    source: &Source,
    views: &[&FeatureView],
    location: &BatchLocation,
    columns: &[(String, Vec<Value>)],
    event_ts: &[i64],
    created_ts: &[i64],
    offline: &OfflineContext,
) -> Result<(), ApiError> {
    // The columns the source holds: every view's join keys and features, under their source names.
    let mut typed: Vec<(String, ValueType)> = Vec::new();
    for view in views {
        let join_keys = project.join_keys(view);
        let names = join_keys
            .iter()
            .map(|key| (key.name.as_str(), key.value_type))
            .chain(
                view.features
                    .iter()
                    .map(|feature| (feature.name.as_str(), feature.value_type)),
            );
        for (name, value_type) in names {
            let column = source.source_column(name).to_owned();
            if !typed.iter().any(|(existing, _)| existing == &column) {
                typed.push((column, value_type));
            }
        }
    }
    let mut by_date: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (row_idx, micros) in event_ts.iter().enumerate() {
        let date = chrono::DateTime::from_timestamp_micros(*micros).map_or_else(
            || "1970-01-01".to_owned(),
            |time| time.format("%Y-%m-%d").to_string(),
        );
        by_date.entry(date).or_default().push(row_idx);
    }
    let open = |url: &str| {
        offline
            .locations
            .get(url)
            .map_err(|err| ApiError::failed_precondition("PUSH_SOURCE_UNWRITABLE", err.message))
    };
    let (store_location, base) = match location {
        BatchLocation::LakeDataset(dataset) => (open(&offline.lake_root)?, format!("{dataset}/")),
        BatchLocation::ParquetUrl(url) => (open(url)?, String::new()),
    };
    for (date, rows) in by_date {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (name, value_type) in &typed {
            let values: Vec<Value> = match columns.iter().find(|(column, _)| column == name) {
                Some((_, values)) => rows
                    .iter()
                    .map(|&row_idx| {
                        values[row_idx]
                            .clone()
                            .coerce(*value_type)
                            .unwrap_or(Value::Null)
                    })
                    .collect(),
                None => vec![Value::Null; rows.len()],
            };
            let array = arrow_values::array_of(&values, *value_type).map_err(|err| {
                ApiError::invalid_argument("PUSH_VALUE_TYPE", format!("column `{name}`: {err}"))
            })?;
            fields.push(Field::new(name, arrow_type(*value_type), true));
            arrays.push(array);
        }
        let stamp = |values: &[i64]| -> Result<ArrayRef, ApiError> {
            let picked: Vec<Value> = rows
                .iter()
                .map(|&row_idx| Value::UnixTimestamp(values[row_idx]))
                .collect();
            arrow_values::array_of(&picked, ValueType::UnixTimestamp).map_err(ApiError::internal)
        };
        fields.push(Field::new(
            &source.timestamp_field,
            arrow_type(ValueType::UnixTimestamp),
            false,
        ));
        arrays.push(stamp(event_ts)?);
        if let Some(created) = &source.created_timestamp_column {
            fields.push(Field::new(
                created,
                arrow_type(ValueType::UnixTimestamp),
                true,
            ));
            arrays.push(stamp(created_ts)?);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(ApiError::internal)?;
        let bytes =
            crate::offline::output::encode_parquet(batch.schema(), std::slice::from_ref(&batch))
                .map_err(ApiError::internal)?;
        let relative = match location {
            BatchLocation::LakeDataset(_) => {
                format!(
                    "{base}event_date={date}/written/{}.parquet",
                    uuid::Uuid::now_v7()
                )
            }
            BatchLocation::ParquetUrl(_) => format!("{}.parquet", uuid::Uuid::now_v7()),
        };
        store_location
            .store
            .put(&store_location.path(&relative), bytes.into())
            .await
            .map_err(|err| {
                ApiError::unavailable(
                    "LAKE_UNAVAILABLE",
                    format!(
                        "cannot write {}: {err}; check the lake and retry (nothing was written to the online store)",
                        store_location.url_of(&relative)
                    ),
                )
            })?;
    }
    Ok(())
}
