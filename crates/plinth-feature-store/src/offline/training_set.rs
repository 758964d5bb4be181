//! The training-set driver: the point-in-time join of entity rows with each selected view, over inputs
//! bigger than memory.
//!
//! Views are joined one after the other; the output of one pass (the entity rows with the features so
//! far) is the entity input of the next, so views may have different join keys. A pass:
//! 1. hash-partitions the entity rows by the view's join keys into `P` Arrow IPC files in the job's
//!    scratch directory (the first pass adds a row-index column, the rows' input position);
//! 2. reads the view's source (only the key, time and selected feature columns, only rows whose event
//!    time can match: from the earliest entity timestamp minus the TTL to the latest one) and partitions
//!    it the same way;
//! 3. loads each partition's two sides, joins them ([`crate::domain::pit::join`]) and writes the result as
//!    the next pass's input, or, after the last view, hands it to the sink.
//!
//! When a pass has one partition (both sides fit in memory), steps 1 to 3 happen in memory: no file is
//! written, and the output keeps the entity rows' order.
//!
//! Memory holds one partition of each side at a time. `P` is [`OfflineContext::partitions`] or the
//! estimated in-memory size of both sides (Parquet bytes times four) over
//! [`OfflineContext::target_partition_bytes`]; a view without join keys (a global view) uses one.
//!
//! Output order: when the training set has at most [`OfflineContext::max_rows_to_reorder`] rows, the
//! rows come out in the entity rows' order (sorted back by row index in memory); bigger ones come out in
//! partition order (rows of one join key together, input order within a partition's batches is not
//! promised). Columns: the entity columns unchanged, then each view's features in selection order.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt64Array};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::domain::definitions::BatchLocation;
use crate::domain::pit::columns::{arrow_type, key_type_fits, timestamps_micros, utc_micros_type};
use crate::domain::pit::index::FeatureIndex;
use crate::domain::pit::{EntityRows, FeatureRows, JoinOptions};
use crate::offline::cache::{SourceKey, SourceVersion};
use crate::offline::output::{LakeOutput, Output};
use crate::offline::plan::{TrainingSetPlan, ViewPlan};
use crate::offline::reader::{self, EventWindow, ReadColumn};
use crate::offline::spill::{self, PartitionWriter, ScratchDir, SpilledPartition};
use crate::offline::{OfflineContext, OfflineError};

/// The internal column holding each entity row's input position; never in the output.
const ROW_INDEX_COLUMN: &str = "__plinth_row_index";

/// In-memory bytes per byte of Parquet, to estimate a source's size once decoded.
const PARQUET_EXPANSION: u64 = 4;

/// Rows per batch read from a source joined in memory.
const IN_MEMORY_BATCH_ROWS: usize = 1 << 20;

/// The most partitions a pass uses.
const MAX_PARTITIONS: usize = 4096;

/// The rows features are looked up for: the join keys, the timestamp column and any columns to pass
/// through (labels, ids).
#[derive(Debug, Clone)]
pub enum EntityInput {
    /// A lake dataset under the lake root.
    LakeDataset(String),
    /// A Parquet file or directory URL.
    ParquetUrl(String),
    /// Rows in memory, all of one schema.
    Batches(Vec<RecordBatch>),
}

/// Where the training set goes.
#[derive(Debug)]
pub enum OutputSink {
    /// A new lake dataset `<lake root>/<name>/part-NNNNN.parquet` with a `_SUCCESS` marker; refused if
    /// it exists.
    LakeDataset(String),
    /// A channel (for a streamed response): batches, then the end; at least one batch, empty if there
    /// is no row, so the reader learns the schema.
    Channel(mpsc::Sender<Result<RecordBatch, OfflineError>>),
}

/// What a finished training set holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingSetSummary {
    /// Its rows, one per entity row.
    pub rows: u64,
    /// The partitions each view's pass used, in plan order.
    pub partitions: Vec<usize>,
    /// Whether the rows are in the entity rows' order (else partition order).
    pub in_input_order: bool,
    /// The output dataset's URL, for a lake sink.
    pub output_url: Option<String>,
    /// The Parquet files written, for a lake sink.
    pub files: usize,
    /// The views joined against an index kept from an earlier training set
    /// ([`crate::offline::cache`]), without reading their source.
    pub cached_views: usize,
}

/// Builds the training set of `plan` for `entities` into `sink`. A lake output is visible only once
/// complete; on error it is removed.
pub async fn build_training_set(
    context: &OfflineContext,
    plan: TrainingSetPlan,
    entities: EntityInput,
    sink: OutputSink,
) -> Result<TrainingSetSummary, OfflineError> {
    let (entity_schema, entity_stream, entity_bytes) = open_entities(context, entities).await?;
    let output_schema = check_entities(&entity_schema, &plan)?;
    let mut output = match sink {
        OutputSink::LakeDataset(name) => {
            Output::Lake(LakeOutput::open(context, &name, Arc::clone(&output_schema)).await?)
        }
        OutputSink::Channel(sender) => Output::Channel(sender),
    };
    let job = Job {
        context,
        plan: &plan,
        entity_schema,
        output_schema,
    };
    let result = job.run(entity_stream, entity_bytes, &mut output).await;
    match (result, output) {
        (Ok(summary), Output::Lake(lake)) => {
            let output_url = lake.url();
            let files = lake.commit().await?;
            Ok(TrainingSetSummary {
                output_url: Some(output_url),
                files,
                ..summary
            })
        }
        (Err(err), Output::Lake(lake)) => {
            lake.abort().await;
            Err(err)
        }
        (result, Output::Channel(_)) => result,
    }
}

/// The training set as a stream of batches (for Arrow Flight): the job runs in a task, a few batches
/// ahead of the reader; dropping the stream stops it. An error ends the stream.
pub fn stream_training_set(
    context: OfflineContext,
    plan: TrainingSetPlan,
    entities: EntityInput,
) -> BoxStream<'static, Result<RecordBatch, OfflineError>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let sink = OutputSink::Channel(sender.clone());
        match build_training_set(&context, plan, entities, sink).await {
            Ok(_) | Err(OfflineError::Cancelled) => {}
            Err(err) => {
                // The reader may be gone; then nobody is left to tell.
                let _ = sender.send(Err(err)).await;
            }
        }
    });
    ReceiverStream::new(receiver).boxed()
}

type BatchStream = BoxStream<'static, Result<RecordBatch, OfflineError>>;

async fn open_entities(
    context: &OfflineContext,
    entities: EntityInput,
) -> Result<(SchemaRef, BatchStream, u64), OfflineError> {
    let location = match entities {
        EntityInput::Batches(batches) => {
            let schema = batches
                .first()
                .map_or_else(|| Arc::new(Schema::empty()), RecordBatch::schema);
            let bytes = batches
                .iter()
                .map(|batch| batch.get_array_memory_size() as u64)
                .sum();
            let stream = futures::stream::iter(batches.into_iter().map(Ok)).boxed();
            return Ok((schema, stream, bytes));
        }
        EntityInput::LakeDataset(name) => BatchLocation::LakeDataset(name),
        EntityInput::ParquetUrl(url) => BatchLocation::ParquetUrl(url),
    };
    let files = reader::list_files(context, &location).await?;
    let bytes = files.total_bytes() * PARQUET_EXPANSION;
    let mut stream = reader::read_batches(files, None, None, context.batch_rows);
    // The first batch gives the schema (the first file's); put it back in front.
    let Some(first) = stream.try_next().await? else {
        return Ok((Arc::new(Schema::empty()), stream, bytes));
    };
    let schema = first.schema();
    let stream = futures::stream::iter([Ok(first)]).chain(stream).boxed();
    Ok((schema, stream, bytes))
}

/// Checks the entity columns against the plan; returns the output schema.
fn check_entities(schema: &SchemaRef, plan: &TrainingSetPlan) -> Result<SchemaRef, OfflineError> {
    let timestamp_column = &plan.entity_timestamp_column;
    let timestamp_expected = "the entity rows' timestamps: an Arrow timestamp (no time zone means UTC), a date or ISO 8601 text";
    let timestamp = schema.field_with_name(timestamp_column).map_err(|_| {
        OfflineError::MissingEntityColumn {
            column: timestamp_column.clone(),
            expected: timestamp_expected.to_owned(),
        }
    })?;
    if !matches!(
        timestamp.data_type(),
        DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Date64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    ) {
        return Err(OfflineError::EntityColumnType {
            column: timestamp_column.clone(),
            found: timestamp.data_type().clone(),
            expected: timestamp_expected.to_owned(),
        });
    }
    for view in &plan.views {
        for key in &view.join_keys {
            let expected = format!(
                "{} values, the join key of feature view `{}`",
                key.value_type, view.view
            );
            let field = schema.field_with_name(&key.name).map_err(|_| {
                OfflineError::MissingEntityColumn {
                    column: key.name.clone(),
                    expected: expected.clone(),
                }
            })?;
            if !key_type_fits(field.data_type(), key.value_type) {
                return Err(OfflineError::EntityColumnType {
                    column: key.name.clone(),
                    found: field.data_type().clone(),
                    expected,
                });
            }
        }
    }
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    for view in &plan.views {
        for feature in &view.features {
            if schema.field_with_name(&feature.output_name).is_ok() {
                return Err(OfflineError::OutputColumnCollision {
                    column: feature.output_name.clone(),
                });
            }
            fields.push(Field::new(
                &feature.output_name,
                arrow_type(feature.value_type),
                true,
            ));
        }
    }
    if schema.field_with_name(ROW_INDEX_COLUMN).is_ok() {
        return Err(OfflineError::OutputColumnCollision {
            column: ROW_INDEX_COLUMN.to_owned(),
        });
    }
    Ok(Arc::new(Schema::new(fields)))
}

struct Job<'a> {
    context: &'a OfflineContext,
    plan: &'a TrainingSetPlan,
    entity_schema: SchemaRef,
    output_schema: SchemaRef,
}

/// What the first pass learns about the entity rows.
#[derive(Debug, Default, Clone, Copy)]
struct EntityStats {
    rows: u64,
    earliest: Option<i64>,
    latest: Option<i64>,
}

/// A pass's entity input: the entity rows themselves, the previous pass's output in memory (when that
/// pass had one partition), or its output files.
enum PassInput {
    Entities(BatchStream),
    InMemory(Vec<RecordBatch>),
    Spilled(Vec<SpilledPartition>),
}

impl Job<'_> {
    async fn run(
        &self,
        entities: BatchStream,
        entity_bytes: u64,
        output: &mut Output,
    ) -> Result<TrainingSetSummary, OfflineError> {
        let scratch = ScratchDir::new(&self.context.scratch_dir)?;
        let mut schema = with_field(
            &self.entity_schema,
            Field::new(ROW_INDEX_COLUMN, DataType::UInt64, false),
        );
        let mut input = PassInput::Entities(entities);
        let mut input_bytes = entity_bytes;
        let mut stats = EntityStats::default();
        let mut partition_counts = Vec::new();
        let mut collected = Vec::new();
        let mut emitted = 0_u64;
        let mut cached_views = 0;
        if self.plan.views.is_empty() {
            // Nothing to join: the entity rows are the training set.
            let mut writer = PartitionWriter::new(&scratch, "entities", 1, Arc::clone(&schema));
            let PassInput::Entities(stream) = input else {
                return Err(OfflineError::Arrow("no entity stream".to_owned()));
            };
            self.spill_entities(stream, &[], &mut writer, &mut stats)
                .await?;
            input = PassInput::Spilled(writer.finish()?);
        }
        for (view_idx, view) in self.plan.views.iter().enumerate() {
            let files = reader::list_files(self.context, &view.location).await?;
            let n_partitions = partition_count(
                self.context,
                input_bytes + files.total_bytes() * PARQUET_EXPANSION,
                !view.join_keys.is_empty(),
            );
            partition_counts.push(n_partitions);
            let key_positions = view
                .join_keys
                .iter()
                .map(|key| schema.index_of(&key.name))
                .collect::<Result<Vec<_>, _>>()?;
            let (feature_columns, feature_schema) = feature_read(view);
            let last = view_idx + 1 == self.plan.views.len();
            let next_schema = with_features(&schema, view);
            let task = PartitionJoin {
                entity_schema: Arc::clone(&schema),
                feature_schema: Arc::clone(&feature_schema),
                output_schema: Arc::clone(&next_schema),
                key_positions: key_positions.clone(),
                timestamp_position: schema.index_of(&self.plan.entity_timestamp_column)?,
                n_keys: view.join_keys.len(),
                has_created: view.created_column.is_some(),
                options: JoinOptions {
                    ttl: view.ttl,
                    filter_by_created_timestamp: self.plan.filter_by_created_timestamp,
                },
            };
            if n_partitions == 1 {
                // Both sides fit in memory: join them there, without a round trip through files.
                let cache = &self.context.cache;
                let key = SourceKey::of(&files, &feature_columns);
                let version = SourceVersion::of(&files);
                let entity = self.entities_in_memory(input, &schema, &mut stats).await?;
                let joined = if let Some(index) = cache.get_or_wait(&key, &version).await {
                    cached_views += 1;
                    tokio::task::spawn_blocking(move || task.run_indexed(&entity, &index))
                        .await
                        .map_err(|err| {
                            OfflineError::Arrow(format!("the in-memory join failed: {err}"))
                        })??
                } else {
                    // A source that may be kept is read whole, so that its index serves any window.
                    let claim =
                        cache.claim(&key, &version, files.total_bytes() * PARQUET_EXPANSION);
                    let features = self
                        .features_in_memory(view, files, feature_columns, stats, claim.is_none())
                        .await?;
                    let (joined, features) = tokio::task::spawn_blocking(move || {
                        task.run_batches(&entity, &features)
                            .map(|joined| (joined, (task, features)))
                    })
                    .await
                    .map_err(|err| {
                        OfflineError::Arrow(format!("the in-memory join failed: {err}"))
                    })??;
                    if let Some(claim) = claim {
                        // Indexed after the answer's join, on a blocking thread; the next training
                        // set over these files uses it.
                        let (task, features) = features;
                        tokio::task::spawn_blocking(move || {
                            claim.finish(task.index(&features).ok())
                        });
                    }
                    joined
                };
                input_bytes = 0;
                input = PassInput::InMemory(Vec::new());
                if last {
                    if stats.rows <= self.context.max_rows_to_reorder as u64 {
                        collected.push(joined);
                    } else {
                        emitted += self.emit(output, &joined).await?;
                    }
                } else {
                    input_bytes = joined.get_array_memory_size() as u64;
                    input = PassInput::InMemory(vec![joined]);
                }
                schema = next_schema;
                continue;
            }
            let mut entity_writer = PartitionWriter::new(
                &scratch,
                &format!("entities-{view_idx}"),
                n_partitions,
                Arc::clone(&schema),
            );
            match input {
                PassInput::Entities(stream) => {
                    self.spill_entities(stream, &key_positions, &mut entity_writer, &mut stats)
                        .await?;
                }
                PassInput::InMemory(batches) => {
                    for batch in batches {
                        let keys = columns_at(&batch, &key_positions);
                        let partitions =
                            spill::key_partitions(&keys, batch.num_rows(), n_partitions)?;
                        entity_writer.write(&batch, &partitions)?;
                    }
                }
                PassInput::Spilled(parts) => {
                    for part in parts.iter().filter_map(|part| part.path.as_ref()) {
                        for batch in spill::read_batches(part)? {
                            let keys = columns_at(&batch, &key_positions);
                            let partitions =
                                spill::key_partitions(&keys, batch.num_rows(), n_partitions)?;
                            entity_writer.write(&batch, &partitions)?;
                        }
                        // The previous pass's file is read; free the disk.
                        let _ = std::fs::remove_file(part);
                    }
                }
            }
            let entity_parts = entity_writer.finish()?;
            let feature_parts = self
                .spill_features(
                    &scratch,
                    view,
                    view_idx,
                    files,
                    (feature_columns, feature_schema),
                    n_partitions,
                    stats,
                )
                .await?;

            let mut next_writer = (!last).then(|| {
                PartitionWriter::new(
                    &scratch,
                    &format!("joined-{view_idx}"),
                    n_partitions,
                    Arc::clone(&next_schema),
                )
            });
            for (partition, (entity_part, feature_part)) in
                entity_parts.into_iter().zip(feature_parts).enumerate()
            {
                if entity_part.rows == 0 {
                    continue;
                }
                let task = task.clone();
                let joined =
                    tokio::task::spawn_blocking(move || task.run(&entity_part, &feature_part))
                        .await
                        .map_err(|err| {
                            OfflineError::Arrow(format!("a partition's join failed: {err}"))
                        })??;
                match &mut next_writer {
                    Some(writer) => {
                        let partitions = vec![partition as u32; joined.num_rows()];
                        writer.write(&joined, &partitions)?;
                    }
                    None if stats.rows <= self.context.max_rows_to_reorder as u64 => {
                        collected.push(joined);
                    }
                    None => emitted += self.emit(output, &joined).await?,
                }
            }
            input_bytes = 0;
            input = match next_writer {
                Some(writer) => {
                    let parts = writer.finish()?;
                    input_bytes = parts.iter().map(|part| part.bytes).sum();
                    PassInput::Spilled(parts)
                }
                None => PassInput::Spilled(Vec::new()),
            };
            schema = next_schema;
        }
        if self.plan.views.is_empty()
            && let PassInput::Spilled(parts) = &input
        {
            for part in parts.iter().filter_map(|part| part.path.as_ref()) {
                collected.extend(spill::read_batches(part)?);
            }
        }
        let in_input_order = stats.rows <= self.context.max_rows_to_reorder as u64;
        if !collected.is_empty() {
            let all = match collected.pop() {
                Some(only) if collected.is_empty() => only,
                Some(last) => {
                    collected.push(last);
                    concat_batches(&schema, &collected)?
                }
                None => RecordBatch::new_empty(Arc::clone(&schema)),
            };
            drop(collected);
            let row_index = all.column(schema.index_of(ROW_INDEX_COLUMN)?);
            let in_order = row_index
                .as_any()
                .downcast_ref::<UInt64Array>()
                .is_some_and(|index| index.values().is_sorted());
            let sorted = if in_order {
                // One in-memory pass keeps the entity rows' order: nothing to sort back.
                all
            } else {
                let order = sort_to_indices(row_index, None, None)?;
                take_record_batch(&all, &order)?
            };
            emitted += self.emit(output, &sorted).await?;
        }
        if emitted == 0
            && let Output::Channel(_) = output
        {
            output
                .write(RecordBatch::new_empty(Arc::clone(&self.output_schema)))
                .await?;
        }
        Ok(TrainingSetSummary {
            rows: emitted,
            partitions: partition_counts,
            in_input_order,
            output_url: None,
            files: 0,
            cached_views,
        })
    }

    /// Checks an entity batch's schema, records its time range and adds the row index; `None` for an
    /// empty batch.
    fn index_entities(
        &self,
        batch: &RecordBatch,
        indexed_schema: &SchemaRef,
        stats: &mut EntityStats,
    ) -> Result<Option<RecordBatch>, OfflineError> {
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        if batch.schema().fields() != self.entity_schema.fields() {
            return Err(OfflineError::EntityColumnType {
                column: "(all)".to_owned(),
                found: DataType::Struct(batch.schema().fields().clone()),
                expected: format!(
                    "the columns of the first entity batch: {:?}",
                    self.entity_schema.fields()
                ),
            });
        }
        let timestamps = timestamps_micros(
            &self.plan.entity_timestamp_column,
            batch.column(
                self.entity_schema
                    .index_of(&self.plan.entity_timestamp_column)?,
            ),
        )?;
        let valid = timestamps.len() - timestamps.null_count();
        if valid > 0 {
            let (earliest, latest) = if timestamps.null_count() == 0 {
                let values = timestamps.values();
                (values.iter().copied().min(), values.iter().copied().max())
            } else {
                (
                    timestamps.iter().flatten().min(),
                    timestamps.iter().flatten().max(),
                )
            };
            if let (Some(earliest), Some(latest)) = (earliest, latest) {
                stats.earliest = Some(stats.earliest.map_or(earliest, |seen| seen.min(earliest)));
                stats.latest = Some(stats.latest.map_or(latest, |seen| seen.max(latest)));
            }
        }
        let n_rows = batch.num_rows() as u64;
        let row_index: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            stats.rows..stats.rows + n_rows,
        ));
        stats.rows += n_rows;
        let mut columns = batch.columns().to_vec();
        columns.push(row_index);
        Ok(Some(RecordBatch::try_new(
            Arc::clone(indexed_schema),
            columns,
        )?))
    }

    /// Adds the row index to the entity rows, checks their schema, records their time range, and
    /// partitions them by the key columns at `key_positions`.
    async fn spill_entities(
        &self,
        mut stream: BatchStream,
        key_positions: &[usize],
        writer: &mut PartitionWriter,
        stats: &mut EntityStats,
    ) -> Result<(), OfflineError> {
        let n_partitions = writer.partitions();
        let schema = Arc::clone(writer.schema());
        while let Some(batch) = stream.try_next().await? {
            let Some(batch) = self.index_entities(&batch, &schema, stats)? else {
                continue;
            };
            let keys = columns_at(&batch, key_positions);
            let partitions = spill::key_partitions(&keys, batch.num_rows(), n_partitions)?;
            writer.write(&batch, &partitions)?;
        }
        Ok(())
    }

    /// A pass's entity rows as one batch of `schema` (with the row index).
    async fn entities_in_memory(
        &self,
        input: PassInput,
        schema: &SchemaRef,
        stats: &mut EntityStats,
    ) -> Result<RecordBatch, OfflineError> {
        let batches = match input {
            PassInput::Entities(mut stream) => {
                let mut batches = Vec::new();
                while let Some(batch) = stream.try_next().await? {
                    batches.extend(self.index_entities(&batch, schema, stats)?);
                }
                batches
            }
            PassInput::InMemory(batches) => batches,
            PassInput::Spilled(parts) => {
                let mut batches = Vec::new();
                for part in parts.iter().filter_map(|part| part.path.as_ref()) {
                    batches.extend(spill::read_batches(part)?);
                    let _ = std::fs::remove_file(part);
                }
                batches
            }
        };
        one_batch(schema, batches)
    }

    /// The view's rows that can match an entity row (all its rows unless `windowed`), as one batch of
    /// the read columns.
    async fn features_in_memory(
        &self,
        view: &ViewPlan,
        files: reader::SourceFiles,
        columns: Vec<ReadColumn>,
        stats: EntityStats,
        windowed: bool,
    ) -> Result<RecordBatch, OfflineError> {
        let schema = read_schema(&columns);
        let window = feature_window(view, stats);
        if windowed && window.is_none() {
            return Ok(RecordBatch::new_empty(schema));
        }
        // Big batches: they are concatenated into one anyway, and fewer means less to copy.
        let batch_rows = self.context.batch_rows.max(IN_MEMORY_BATCH_ROWS);
        let window = window.filter(|_| windowed);
        let batches: Vec<RecordBatch> =
            reader::read_batches(files, Some(columns), window, batch_rows)
                .try_collect()
                .await?;
        one_batch(&schema, batches)
    }

    /// Reads the view's rows that can match an entity row and partitions them by key.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, all of a pass's state"
    )]
    async fn spill_features(
        &self,
        scratch: &ScratchDir,
        view: &ViewPlan,
        view_idx: usize,
        files: reader::SourceFiles,
        (columns, schema): (Vec<ReadColumn>, SchemaRef),
        n_partitions: usize,
        stats: EntityStats,
    ) -> Result<Vec<SpilledPartition>, OfflineError> {
        let mut writer = PartitionWriter::new(
            scratch,
            &format!("features-{view_idx}"),
            n_partitions,
            Arc::clone(&schema),
        );
        let Some(window) = feature_window(view, stats) else {
            return writer.finish();
        };
        let key_positions: Vec<usize> = (0..view.join_keys.len()).collect();
        let mut stream =
            reader::read_batches(files, Some(columns), Some(window), self.context.batch_rows);
        while let Some(batch) = stream.try_next().await? {
            let keys = columns_at(&batch, &key_positions);
            let partitions = spill::key_partitions(&keys, batch.num_rows(), n_partitions)?;
            writer.write(&batch, &partitions)?;
        }
        writer.finish()
    }

    /// Sends `batch` without the row index, in slices of the batch size; returns its rows.
    async fn emit(&self, output: &mut Output, batch: &RecordBatch) -> Result<u64, OfflineError> {
        let schema = batch.schema();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|&position| schema.field(position).name() != ROW_INDEX_COLUMN)
            .collect();
        let projected = batch.project(&keep)?;
        let projected = RecordBatch::try_new(
            Arc::clone(&self.output_schema),
            projected.columns().to_vec(),
        )?;
        let step = self.context.batch_rows.max(1);
        let mut offset = 0;
        while offset < projected.num_rows() {
            let length = step.min(projected.num_rows() - offset);
            output.write(projected.slice(offset, length)).await?;
            offset += length;
        }
        Ok(projected.num_rows() as u64)
    }
}

/// The columns read from a view's source: the keys, the event time, the created time (if any), then
/// the features; and the schema of the batches read.
fn feature_read(view: &ViewPlan) -> (Vec<ReadColumn>, SchemaRef) {
    let mut columns: Vec<ReadColumn> = view
        .join_keys
        .iter()
        .zip(&view.key_columns)
        .map(|(key, column)| ReadColumn {
            name: column.clone(),
            data_type: arrow_type(key.value_type),
            required: true,
        })
        .collect();
    columns.push(ReadColumn {
        name: view.timestamp_column.clone(),
        data_type: utc_micros_type(),
        required: true,
    });
    if let Some(created) = &view.created_column {
        columns.push(ReadColumn {
            name: created.clone(),
            data_type: utc_micros_type(),
            required: false,
        });
    }
    for feature in &view.features {
        columns.push(ReadColumn {
            name: feature.source_column.clone(),
            data_type: arrow_type(feature.value_type),
            required: false,
        });
    }
    let schema = read_schema(&columns);
    (columns, schema)
}

fn read_schema(columns: &[ReadColumn]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|column| Field::new(&column.name, column.data_type.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// The event times of a view's rows that can match an entity row: from the earliest entity timestamp
/// minus the TTL to the latest one; `None` when no entity row has a timestamp (no row can match).
fn feature_window(view: &ViewPlan, stats: EntityStats) -> Option<EventWindow> {
    let (Some(earliest), Some(latest)) = (stats.earliest, stats.latest) else {
        return None;
    };
    let ttl = i64::try_from(view.ttl.as_micros()).unwrap_or(i64::MAX);
    Some(EventWindow {
        column: view.timestamp_column.clone(),
        start: (ttl > 0).then(|| earliest.saturating_sub(ttl)),
        end: Some(latest),
    })
}

/// `batches` as one batch (no copy when there is one).
fn one_batch(
    schema: &SchemaRef,
    mut batches: Vec<RecordBatch>,
) -> Result<RecordBatch, OfflineError> {
    if batches.len() == 1
        && let Some(only) = batches.pop()
    {
        return Ok(only);
    }
    Ok(concat_batches(schema, &batches)?)
}

/// One partition's join, run on a blocking thread.
#[derive(Clone)]
struct PartitionJoin {
    entity_schema: SchemaRef,
    feature_schema: SchemaRef,
    output_schema: SchemaRef,
    key_positions: Vec<usize>,
    timestamp_position: usize,
    n_keys: usize,
    has_created: bool,
    options: JoinOptions,
}

impl PartitionJoin {
    fn run(
        &self,
        entity_part: &SpilledPartition,
        feature_part: &SpilledPartition,
    ) -> Result<RecordBatch, OfflineError> {
        let entity = spill::read_partition(entity_part, &self.entity_schema)?;
        let features = spill::read_partition(feature_part, &self.feature_schema)?;
        self.run_batches(&entity, &features)
    }

    fn run_batches(
        &self,
        entity: &RecordBatch,
        features: &RecordBatch,
    ) -> Result<RecordBatch, OfflineError> {
        let joined = crate::domain::pit::join(
            &self.entity_rows(entity)?,
            &self.feature_rows(features)?,
            &self.options,
        )?;
        self.output(entity, joined)
    }

    /// The join of `entity` against a kept index of the view's rows.
    fn run_indexed(
        &self,
        entity: &RecordBatch,
        index: &FeatureIndex,
    ) -> Result<RecordBatch, OfflineError> {
        let joined = index.join(&self.entity_rows(entity)?, &self.options)?;
        self.output(entity, joined)
    }

    /// The view's rows read (`features`), indexed for later joins.
    fn index(&self, features: &RecordBatch) -> Result<FeatureIndex, OfflineError> {
        Ok(FeatureIndex::build(self.feature_rows(features)?)?)
    }

    fn output(
        &self,
        entity: &RecordBatch,
        joined: Vec<ArrayRef>,
    ) -> Result<RecordBatch, OfflineError> {
        let mut columns = entity.columns().to_vec();
        columns.extend(joined);
        Ok(RecordBatch::try_new(
            Arc::clone(&self.output_schema),
            columns,
        )?)
    }

    fn entity_rows(&self, entity: &RecordBatch) -> Result<EntityRows, OfflineError> {
        Ok(EntityRows {
            keys: columns_at(entity, &self.key_positions),
            timestamps: timestamps_micros(
                self.entity_schema.field(self.timestamp_position).name(),
                entity.column(self.timestamp_position),
            )?,
        })
    }

    fn feature_rows(&self, features: &RecordBatch) -> Result<FeatureRows, OfflineError> {
        let event_position = self.n_keys;
        let first_feature = event_position + 1 + usize::from(self.has_created);
        Ok(FeatureRows {
            keys: features.columns()[..self.n_keys].to_vec(),
            event_timestamps: timestamps_micros(
                self.feature_schema.field(event_position).name(),
                features.column(event_position),
            )?,
            created_timestamps: if self.has_created {
                Some(timestamps_micros(
                    self.feature_schema.field(event_position + 1).name(),
                    features.column(event_position + 1),
                )?)
            } else {
                None
            },
            features: features.columns()[first_feature..].to_vec(),
        })
    }
}

fn partition_count(context: &OfflineContext, bytes: u64, has_keys: bool) -> usize {
    if !has_keys {
        return 1;
    }
    if let Some(partitions) = context.partitions {
        return partitions.clamp(1, MAX_PARTITIONS);
    }
    let target = context.target_partition_bytes.max(1);
    usize::try_from(bytes.div_ceil(target))
        .unwrap_or(MAX_PARTITIONS)
        .clamp(1, MAX_PARTITIONS)
}

fn columns_at(batch: &RecordBatch, positions: &[usize]) -> Vec<ArrayRef> {
    positions
        .iter()
        .map(|&position| Arc::clone(batch.column(position)))
        .collect()
}

fn with_field(schema: &SchemaRef, field: Field) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(field);
    Arc::new(Schema::new(fields))
}

fn with_features(schema: &SchemaRef, view: &ViewPlan) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    for feature in &view.features {
        fields.push(Field::new(
            &feature.output_name,
            arrow_type(feature.value_type),
            true,
        ));
    }
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests;
