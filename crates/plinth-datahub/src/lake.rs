//! Lake sinks and datasets: [`Lake`] runs the sinks this replica holds a lease for, answers the lake
//! RPCs, and reads and writes datasets for Arrow Flight (`crate::flight`).
//!
//! Where a dataset lives: a sink's `url_prefix` (default: the configured `lake.root`, stored normalized
//! without a trailing `/`) is the directory that holds dataset directories, so the files of dataset `d`
//! are `<url_prefix>/d/event_date=YYYY-MM-DD/...` (a batch job's dataset, such as a training set, holds
//! flat `<url_prefix>/d/part-NNNNN.parquet` files and `_SUCCESS` instead; see `dataset`). A dataset with
//! a sink lives under its sink's prefix; a dataset without one (written through Flight or by a batch job,
//! or whose sink was deleted) is found under `lake.root`.
//! `ListDatasets` lists the directories under `lake.root` plus every sink's dataset.
//!
//! One writer per dataset: sinks are leased (SQL, `datahub_lake_sinks.owner/lease_until_ms`). A
//! supervisor renews the leases of RUNNING sinks every [`SUPERVISE_INTERVAL`] and runs a task for each
//! lease it holds; a sink task writes a file only while its lease holds `sink`'s safety margin longer.
//! Flight writes go only to datasets without a sink.
//!
//! Start reading at `sink` (the sink task and why a crash neither loses nor duplicates a record) and
//! `dataset` (file kinds and reading).

mod dataset;
mod metric_names;
mod sink;
mod write;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arrow::datatypes::{Field, SchemaRef};
use plinth_proto::datahub::v1 as pb;
use plinth_proto::ids::TopicName;
use plinth_runtime::error::ApiError;
use plinth_schema_registry::client::RegistryClient;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{KafkaConfig, LakeConfig};
use crate::domain::lake_path::DatasetName;
use crate::domain::lake_schema::KAFKA_TIMESTAMP_COLUMN;
use crate::error::{sink_not_found, topic_not_found};
use crate::flight::ScanTicket;
use crate::lake::dataset::{
    DatasetFile, FileKind, FooterCache, TimeRange, list_dataset, list_files,
};
use crate::lake::sink::{SchemaCache, SinkExit, SinkProgress, SinkTask, now_ms, timestamp};
use crate::store::{SinkRow, SinkState, Store};
use plinth_runtime::storage::{Location, Locations, normalize_url};

pub(crate) use crate::lake::write::DatasetWriter;

/// How often the supervisor renews leases and reconciles sink tasks.
pub const SUPERVISE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a sink lease lasts; renewed every [`SUPERVISE_INTERVAL`].
pub const LEASE_DURATION: Duration = Duration::from_secs(30);
/// How long a stopping sink may take to land its buffers before it is aborted (its buffered records are
/// then read again by the next owner: nothing is lost).
pub const STOP_GRACE: Duration = Duration::from_secs(15);
/// Files listed per DescribeDataset page when the request does not say.
const DEFAULT_PAGE_SIZE: usize = 1000;
/// Footers read at once.
const FOOTER_CONCURRENCY: usize = 8;

/// What [`Lake`] needs from the gateway.
#[derive(Debug, Clone)]
pub struct LakeContext {
    /// Sinks and their leases.
    pub store: Store,
    /// Schemas by id (sinks) and subjects' latest schemas (Flight writes).
    pub registry: Arc<RegistryClient>,
    /// The Kafka cluster sinks read.
    pub kafka: KafkaConfig,
    /// The lake root, store options and file cutting limits.
    pub config: LakeConfig,
    /// This replica's name in sink leases; unique per gateway process.
    pub replica_id: String,
}

struct RunningSink {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
    lease_until_ms: Arc<AtomicI64>,
}

/// The data lake: sinks, datasets, and the reads and writes behind Arrow Flight.
pub struct Lake {
    ctx: LakeContext,
    root: Location,
    locations: Locations,
    schemas: Arc<SchemaCache>,
    footers: Arc<FooterCache>,
    running: tokio::sync::Mutex<HashMap<DatasetName, RunningSink>>,
    progress: Mutex<HashMap<DatasetName, Arc<Mutex<SinkProgress>>>>,
    wake: Notify,
    stopping: watch::Sender<bool>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Lake")
            .field("root", &self.root.url)
            .field("replica_id", &self.ctx.replica_id)
            .finish_non_exhaustive()
    }
}

impl Lake {
    /// Opens the lake root (creating a `file://` directory) and builds its object store.
    pub fn new(ctx: LakeContext) -> Result<Arc<Self>, ApiError> {
        let locations = Locations::new(ctx.config.options.clone());
        let root = locations.get(&ctx.config.root).map_err(|err| {
            ApiError::failed_precondition(err.reason.clone(), format!("lake.root: {}", err.message))
        })?;
        let (stopping, _) = watch::channel(false);
        Ok(Arc::new(Self {
            ctx,
            root,
            locations,
            schemas: Arc::new(SchemaCache::default()),
            footers: Arc::new(FooterCache::default()),
            running: tokio::sync::Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stopping,
            supervisor: Mutex::new(None),
        }))
    }

    /// The normalized lake root URL.
    pub fn root_url(&self) -> &str {
        &self.root.url
    }

    /// Starts the supervisor that takes and renews sink leases and runs a task per held lease.
    pub async fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let mut stopping = self.stopping.subscribe();
        let handle = tokio::spawn(async move {
            loop {
                let Some(lake) = weak.upgrade() else {
                    return;
                };
                lake.supervise_once().await;
                tokio::select! {
                    () = tokio::time::sleep(SUPERVISE_INTERVAL) => {}
                    () = lake.wake.notified() => {}
                    _ = stopping.wait_for(|stopped| *stopped) => return,
                }
            }
        });
        let previous = self
            .supervisor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(handle);
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Stops the supervisor and every sink task (each lands its buffers, bounded by [`STOP_GRACE`]),
    /// closes their consumers and releases their leases.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let supervisor = self
            .supervisor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(supervisor) = supervisor {
            // The supervisor only sleeps or talks to the database between reconciliations.
            if tokio::time::timeout(STOP_GRACE, supervisor).await.is_err() {
                tracing::warn!("the lake supervisor did not stop in time");
            }
        }
        let running: Vec<(DatasetName, RunningSink)> = self.running.lock().await.drain().collect();
        let stops = running
            .into_iter()
            .map(|(dataset, sink)| self.stop_task(dataset, sink));
        futures::future::join_all(stops).await;
    }

    async fn stop_task(&self, dataset: DatasetName, sink: RunningSink) {
        sink.stop.send_replace(true);
        let mut handle = sink.handle;
        if tokio::time::timeout(STOP_GRACE, &mut handle).await.is_err() {
            tracing::warn!(%dataset, "lake sink did not stop in time; aborted (its buffered records are read again later)");
            handle.abort();
        }
        // Progress is read from the lake again until a task here writes: another replica may take over.
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&dataset);
        if let Err(err) = self
            .ctx
            .store
            .release_sink_lease(&pb_dataset(&dataset), &self.ctx.replica_id)
            .await
        {
            tracing::warn!(%dataset, error = %err, "lake sink lease not released; it expires on its own");
        }
    }

    async fn supervise_once(&self) {
        let sinks = match self.ctx.store.sinks().await {
            Ok(sinks) => sinks,
            Err(err) => {
                tracing::warn!(error = %err, "lake supervisor cannot read sinks; retrying");
                return;
            }
        };
        let mut held = HashSet::new();
        for row in sinks.iter().filter(|row| row.state == SinkState::Running) {
            let Ok(dataset) = DatasetName::new(row.dataset.as_str()) else {
                continue;
            };
            let now = now_ms();
            let until = now + i64::try_from(LEASE_DURATION.as_millis()).unwrap_or(i64::MAX);
            match self
                .ctx
                .store
                .acquire_sink_lease(&row.dataset, &self.ctx.replica_id, now, until)
                .await
            {
                Ok(true) => {
                    held.insert(dataset.clone());
                    self.ensure_running(&dataset, row, until).await;
                }
                Ok(false) => {}
                Err(err) => {
                    // Keep the task: it stops writing by itself when its lease runs out.
                    tracing::warn!(%dataset, error = %err, "lake sink lease not renewed");
                    held.insert(dataset);
                }
            }
        }
        let to_stop: Vec<(DatasetName, RunningSink)> = {
            let mut running = self.running.lock().await;
            let names: Vec<DatasetName> = running
                .iter()
                .filter(|(dataset, sink)| !held.contains(*dataset) || sink.handle.is_finished())
                .map(|(dataset, _)| dataset.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|dataset| running.remove(&dataset).map(|sink| (dataset, sink)))
                .collect()
        };
        for (dataset, sink) in to_stop {
            self.stop_task(dataset, sink).await;
        }
    }

    async fn ensure_running(&self, dataset: &DatasetName, row: &SinkRow, lease_until_ms: i64) {
        let mut running = self.running.lock().await;
        if let Some(sink) = running.get(dataset)
            && !sink.handle.is_finished()
        {
            sink.lease_until_ms.store(lease_until_ms, Ordering::Release);
            return;
        }
        let location = match self.locations.get(&row.url_prefix) {
            Ok(location) => location,
            Err(err) => {
                let message = format!("the sink's url_prefix is unusable: {}", err.message);
                let _ = self
                    .ctx
                    .store
                    .set_sink_state(&row.dataset, SinkState::Failed, &message)
                    .await;
                return;
            }
        };
        let lease = Arc::new(AtomicI64::new(lease_until_ms));
        let task = SinkTask {
            dataset: dataset.clone(),
            topic: row.topic.clone(),
            location,
            kafka: self.ctx.kafka.clone(),
            config: self.ctx.config.clone(),
            registry: Arc::clone(&self.ctx.registry),
            schemas: Arc::clone(&self.schemas),
            footers: Arc::clone(&self.footers),
            progress: self.progress_of(dataset),
            lease_until_ms: Arc::clone(&lease),
        };
        let (stop, stop_receiver) = watch::channel(false);
        let store = self.ctx.store.clone();
        let replica_id = self.ctx.replica_id.clone();
        let pb_name = row.dataset.clone();
        let handle = tokio::spawn(async move {
            if let SinkExit::Failed(message) = task.run(stop_receiver).await {
                if let Err(err) = store
                    .set_sink_state(&pb_name, SinkState::Failed, &message)
                    .await
                {
                    tracing::error!(dataset = %pb_name, error = %err, "lake sink failure not recorded");
                }
                let _ = store.release_sink_lease(&pb_name, &replica_id).await;
            }
        });
        tracing::info!(%dataset, replica = %self.ctx.replica_id, "lake sink started");
        running.insert(
            dataset.clone(),
            RunningSink {
                stop,
                handle,
                lease_until_ms: lease,
            },
        );
    }

    fn progress_of(&self, dataset: &DatasetName) -> Arc<Mutex<SinkProgress>> {
        Arc::clone(
            self.progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(dataset.clone())
                .or_default(),
        )
    }

    /// Creates a sink (RUNNING). The topic must be bound; the dataset defaults to the topic's name; the
    /// url prefix to `lake.root`.
    pub async fn create_sink(
        &self,
        req: pb::CreateLakeSinkRequest,
    ) -> Result<pb::LakeSink, ApiError> {
        let topic = req
            .topic
            .filter(|topic| !topic.as_str().is_empty())
            .ok_or_else(|| ApiError::required("topic", "name the bound topic the sink reads"))?;
        if self.ctx.store.topic(&topic).await?.is_none() {
            return Err(topic_not_found(&topic));
        }
        let dataset_name = req
            .dataset
            .filter(|dataset| !dataset.as_str().is_empty())
            .map_or_else(|| topic.as_str().to_owned(), |dataset| dataset.value);
        let dataset = validate_dataset(&dataset_name)?;
        let url_prefix = if req.url_prefix.trim().is_empty() {
            self.root.url.clone()
        } else {
            // Opening it checks the URL and the store options, and creates a file:// directory.
            self.locations.get(&req.url_prefix)?.url
        };
        list_dataset(&self.locations.get(&url_prefix)?, &dataset)
            .await?
            .check_no_batch_job(&dataset, "name another dataset with `--dataset`")?;
        let row = SinkRow {
            dataset: pb_dataset(&dataset),
            topic: topic.clone(),
            url_prefix,
            state: SinkState::Running,
            error: String::new(),
            create_time_ms: now_ms(),
            owner: None,
            lease_until_ms: 0,
        };
        if !self.ctx.store.insert_sink(&row).await? {
            let existing = self.ctx.store.sink(&row.dataset).await?;
            let reading = existing
                .map(|sink| sink.topic.to_string())
                .unwrap_or_default();
            return Err(ApiError::already_exists(
                "LAKE_SINK_EXISTS",
                format!("dataset `{dataset}` already has a lake sink (reading topic `{reading}`): a dataset has one writer; name another dataset with `--dataset`, or delete that sink first"),
            )
            .with_metadata("dataset", dataset.as_str()));
        }
        self.wake.notify_one();
        self.sink_message(&row).await
    }

    /// The sinks (only those reading `req.topic` when set), by dataset, with their progress.
    pub async fn list_sinks(
        &self,
        req: pb::ListLakeSinksRequest,
    ) -> Result<Vec<pb::LakeSink>, ApiError> {
        let topic = req.topic.filter(|topic| !topic.as_str().is_empty());
        let rows = self.ctx.store.sinks().await?;
        let mut sinks = Vec::with_capacity(rows.len());
        for row in rows
            .iter()
            .filter(|row| topic.as_ref().is_none_or(|topic| row.topic == *topic))
        {
            sinks.push(self.sink_message(row).await?);
        }
        Ok(sinks)
    }

    /// Pauses a sink: the task holding it lands what it consumed and stops reading.
    pub async fn pause_sink(
        &self,
        dataset: &plinth_proto::ids::DatasetName,
    ) -> Result<pb::LakeSink, ApiError> {
        let name = validate_dataset(dataset.as_str())?;
        self.set_state(dataset, SinkState::Paused).await?;
        self.stop_local(&name).await;
        self.describe_sink(dataset).await
    }

    /// Resumes a paused or failed sink from the offsets its files record.
    pub async fn resume_sink(
        &self,
        dataset: &plinth_proto::ids::DatasetName,
    ) -> Result<pb::LakeSink, ApiError> {
        validate_dataset(dataset.as_str())?;
        self.set_state(dataset, SinkState::Running).await?;
        self.wake.notify_one();
        self.describe_sink(dataset).await
    }

    /// Sets a sink's state (clearing its error); NOT_FOUND when the dataset has no sink.
    async fn set_state(
        &self,
        dataset: &plinth_proto::ids::DatasetName,
        state: SinkState,
    ) -> Result<(), ApiError> {
        if self.ctx.store.set_sink_state(dataset, state, "").await? {
            Ok(())
        } else {
            Err(sink_not_found(dataset))
        }
    }

    /// The sink of `dataset` as the API shows it.
    async fn describe_sink(
        &self,
        dataset: &plinth_proto::ids::DatasetName,
    ) -> Result<pb::LakeSink, ApiError> {
        let row = self
            .ctx
            .store
            .sink(dataset)
            .await?
            .ok_or_else(|| sink_not_found(dataset))?;
        self.sink_message(&row).await
    }

    /// Deletes a sink; its files stay. Answers with its last progress.
    pub async fn delete_sink(
        &self,
        dataset: &plinth_proto::ids::DatasetName,
    ) -> Result<pb::LakeSink, ApiError> {
        let name = validate_dataset(dataset.as_str())?;
        let row = self
            .ctx
            .store
            .sink(dataset)
            .await?
            .ok_or_else(|| sink_not_found(dataset))?;
        if !self.ctx.store.delete_sink(dataset).await? {
            return Err(sink_not_found(dataset));
        }
        self.stop_local(&name).await;
        let message = self.sink_message(&row).await;
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&name);
        message
    }

    /// Whether a lake sink reads `topic` (DeleteTopic refuses then).
    pub async fn topic_has_sink(&self, topic: &TopicName) -> Result<bool, ApiError> {
        Ok(self
            .ctx
            .store
            .sinks()
            .await?
            .iter()
            .any(|row| row.topic == *topic))
    }

    async fn stop_local(&self, dataset: &DatasetName) {
        let sink = self.running.lock().await.remove(dataset);
        if let Some(sink) = sink {
            self.stop_task(dataset.clone(), sink).await;
        }
    }

    async fn sink_message(&self, row: &SinkRow) -> Result<pb::LakeSink, ApiError> {
        let dataset = validate_dataset(row.dataset.as_str())?;
        let local = self
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&dataset)
            .map(|progress| {
                progress
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .filter(|progress| !progress.next_offsets.is_empty() || progress.last_file.is_some());
        let progress = match local {
            Some(progress) => progress,
            None => {
                let location = self.locations.get(&row.url_prefix)?;
                let files = list_files(&location, &dataset).await?;
                sink::progress_from_files(&location, &dataset, &files)
            }
        };
        Ok(pb::LakeSink {
            dataset: Some(row.dataset.clone()),
            topic: Some(row.topic.clone()),
            url_prefix: row.url_prefix.clone(),
            state: match row.state {
                SinkState::Running => pb::LakeSinkState::Running,
                SinkState::Paused => pb::LakeSinkState::Paused,
                SinkState::Failed => pb::LakeSinkState::Failed,
            } as i32,
            error: row.error.clone(),
            partitions: progress
                .next_offsets
                .iter()
                .map(|(partition, next_offset)| pb::LakeSinkPartition {
                    partition: *partition,
                    next_offset: *next_offset,
                })
                .collect(),
            last_file: progress.last_file,
            create_time: Some(timestamp(row.create_time_ms)),
        })
    }

    /// Where `dataset` lives, and its sink if it has one.
    pub(crate) async fn dataset_location(
        &self,
        dataset: &DatasetName,
    ) -> Result<(Location, Option<SinkRow>), ApiError> {
        match self.ctx.store.sink(&pb_dataset(dataset)).await? {
            Some(row) => Ok((self.locations.get(&row.url_prefix)?, Some(row))),
            None => Ok((self.root.clone(), None)),
        }
    }

    /// The datasets (under `lake.root`, plus every sink's), by name, with counts.
    pub async fn list_datasets(
        &self,
        req: pb::ListDatasetsRequest,
    ) -> Result<pb::ListDatasetsResponse, ApiError> {
        let sinks: BTreeMap<DatasetName, SinkRow> = self
            .ctx
            .store
            .sinks()
            .await?
            .into_iter()
            .filter_map(|row| Some((DatasetName::new(row.dataset.as_str()).ok()?, row)))
            .collect();
        let mut names: Vec<DatasetName> = dataset::list_dataset_names(&self.root).await?;
        names.extend(sinks.keys().cloned());
        names.sort();
        names.dedup();
        let mut datasets = Vec::new();
        for name in names
            .into_iter()
            .filter(|name| name.as_str().starts_with(&req.name_prefix))
        {
            let location = match sinks.get(&name) {
                Some(row) => self.locations.get(&row.url_prefix)?,
                None => self.root.clone(),
            };
            let files = list_files(&location, &name).await?;
            if files.is_empty() && !sinks.contains_key(&name) {
                continue;
            }
            let footers = self.footers_of(&location, &files).await?;
            datasets.push(summary(
                &name,
                &location,
                sinks.get(&name),
                &files,
                &footers,
            ));
        }
        Ok(pb::ListDatasetsResponse { datasets })
    }

    /// A dataset's evolved schema, counts and files (paged, in name order).
    pub async fn describe_dataset(
        &self,
        req: pb::DescribeDatasetRequest,
    ) -> Result<pb::DescribeDatasetResponse, ApiError> {
        let name = req
            .name
            .filter(|name| !name.as_str().is_empty())
            .ok_or_else(|| ApiError::required("name", "name the dataset to describe"))?;
        let dataset = validate_dataset(name.as_str())?;
        let (location, sink) = self.dataset_location(&dataset).await?;
        let listing = list_dataset(&location, &dataset).await?;
        if listing.files.is_empty() && sink.is_none() {
            return Err(listing.nothing_to_read(&dataset));
        }
        let files = listing.files;
        let footers = self.footers_of(&location, &files).await?;
        let schema = dataset::evolved_schema(&dataset, footers.iter().map(AsRef::as_ref))?;
        let page_size = match usize::try_from(req.page_size).unwrap_or(DEFAULT_PAGE_SIZE) {
            0 => DEFAULT_PAGE_SIZE,
            size => size,
        };
        let page: Vec<(&DatasetFile, &Arc<dataset::Footer>)> = files
            .iter()
            .zip(&footers)
            .filter(|(file, _)| req.page_token.is_empty() || file.relative > req.page_token)
            .take(page_size + 1)
            .collect();
        let next_page_token = if page.len() > page_size {
            page.get(page_size - 1)
                .map(|(file, _)| file.relative.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let file_messages = page
            .iter()
            .take(page_size)
            .map(|(file, footer)| file_message(&location, &dataset, file, footer.row_count))
            .collect();
        Ok(pb::DescribeDatasetResponse {
            summary: Some(summary(
                &dataset,
                &location,
                sink.as_ref(),
                &files,
                &footers,
            )),
            fields: schema
                .as_ref()
                .map(|schema| {
                    schema
                        .fields()
                        .iter()
                        .map(|field| lake_field(field))
                        .collect()
                })
                .unwrap_or_default(),
            arrow_schema: match &schema {
                Some(schema) => ipc_schema(schema)?,
                None => Vec::new(),
            },
            files: file_messages,
            next_page_token,
        })
    }

    async fn footers_of(
        &self,
        location: &Location,
        files: &[DatasetFile],
    ) -> Result<Vec<Arc<dataset::Footer>>, ApiError> {
        let mut footers = Vec::with_capacity(files.len());
        for chunk in files.chunks(FOOTER_CONCURRENCY) {
            let mut pending = Vec::with_capacity(chunk.len());
            for file in chunk {
                pending.push(self.footers.footer(location, file));
            }
            footers.extend(futures::future::try_join_all(pending).await?);
        }
        Ok(footers)
    }

    /// Plans a scan: the files to read (pruned by event date), the schema they are read into and the
    /// schema of the batches sent.
    pub(crate) async fn plan_scan(&self, ticket: &ScanTicket) -> Result<ScanPlan, ApiError> {
        let dataset = validate_dataset(&ticket.dataset)?;
        let time_range = TimeRange {
            start_ms: parse_time("start_time", ticket.start_time.as_deref())?,
            end_ms: parse_time("end_time", ticket.end_time.as_deref())?,
        };
        let (location, _) = self.dataset_location(&dataset).await?;
        let listing = list_dataset(&location, &dataset).await?;
        let footers = self.footers_of(&location, &listing.files).await?;
        let schema = dataset::evolved_schema(&dataset, footers.iter().map(AsRef::as_ref))?
            .ok_or_else(|| listing.nothing_to_read(&dataset))?;
        let output_indices: Vec<usize> = if ticket.columns.is_empty() {
            (0..schema.fields().len()).collect()
        } else {
            ticket
                .columns
                .iter()
                .map(|column| {
                    schema.index_of(column).map_err(|_| {
                        let available: Vec<&str> = schema
                            .fields()
                            .iter()
                            .map(|field| field.name().as_str())
                            .collect();
                        ApiError::invalid_argument(
                            "UNKNOWN_COLUMN",
                            format!(
                                "dataset `{dataset}` has no column `{column}`; its columns are {}",
                                available.join(", ")
                            ),
                        )
                        .with_field("columns", format!("`{column}` is not a column"))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let output_schema = Arc::new(
            schema
                .project(&output_indices)
                .map_err(|err| ApiError::internal(format!("projecting the scan schema: {err}")))?,
        );
        let read_indices: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(index, field)| {
                output_indices.contains(index)
                    || (time_range.is_bounded() && field.name() == KAFKA_TIMESTAMP_COLUMN)
            })
            .map(|(index, _)| index)
            .collect();
        let read_schema = Arc::new(
            schema
                .project(&read_indices)
                .map_err(|err| ApiError::internal(format!("projecting the read schema: {err}")))?,
        );
        let total_rows = if time_range.is_bounded() {
            None
        } else {
            Some(footers.iter().map(|footer| footer.row_count).sum())
        };
        let files = time_range.select(&dataset, listing.files)?;
        Ok(ScanPlan {
            location,
            files,
            read_schema,
            output_schema,
            time_range,
            limit: ticket.limit,
            total_rows,
        })
    }

    /// Starts a Flight write into `dataset` for `subject` (see [`DatasetWriter`]).
    pub(crate) async fn begin_write(
        &self,
        command: &crate::flight::WriteCommand,
    ) -> Result<DatasetWriter, ApiError> {
        let dataset = validate_dataset(&command.dataset)?;
        let (location, sink) = self.dataset_location(&dataset).await?;
        if let Some(sink) = sink {
            return Err(ApiError::failed_precondition(
                "DATASET_HAS_SINK",
                format!("dataset `{dataset}` is written by the lake sink of topic `{}`: a dataset has one writer; write into another dataset, or produce to the topic", sink.topic),
            )
            .with_metadata("dataset", dataset.as_str()));
        }
        if let Some(url_prefix) = command
            .url_prefix
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            && normalize_url(url_prefix)? != location.url
        {
            return Err(ApiError::invalid_argument(
                "URL_PREFIX_NOT_SUPPORTED",
                format!("datasets written through Flight live under the lake root `{}` (a dataset elsewhere could not be found again by name); leave url_prefix unset", location.url),
            )
            .with_field("url_prefix", "must be unset or the lake root"));
        }
        let listing = list_dataset(&location, &dataset).await?;
        listing.check_no_batch_job(&dataset, "write into another dataset")?;
        let footers = self.footers_of(&location, &listing.files).await?;
        let existing = dataset::evolved_schema(&dataset, footers.iter().map(AsRef::as_ref))?;
        write::DatasetWriter::new(
            dataset,
            location,
            &self.ctx.registry,
            &command.subject,
            existing,
            self.ctx.config.max_file_rows,
            Arc::clone(&self.footers),
        )
        .await
    }

    /// The datasets for Flight `ListFlights`: name and location.
    pub(crate) async fn dataset_names(&self) -> Result<Vec<DatasetName>, ApiError> {
        Ok(self
            .list_datasets(pb::ListDatasetsRequest::default())
            .await?
            .datasets
            .into_iter()
            .filter_map(|summary| DatasetName::new(summary.name?.as_str()).ok())
            .collect())
    }
}

/// A planned scan.
#[derive(Debug)]
pub(crate) struct ScanPlan {
    pub(crate) location: Location,
    pub(crate) files: Vec<DatasetFile>,
    pub(crate) read_schema: SchemaRef,
    pub(crate) output_schema: SchemaRef,
    pub(crate) time_range: TimeRange,
    pub(crate) limit: Option<u64>,
    /// The rows of the whole dataset, when no time range narrows the scan.
    pub(crate) total_rows: Option<u64>,
}

impl ScanPlan {
    /// Reads one planned file.
    pub(crate) async fn read(
        &self,
        file: &DatasetFile,
    ) -> Result<Vec<arrow::array::RecordBatch>, ApiError> {
        dataset::read_file(
            &self.location,
            file,
            &self.read_schema,
            &self.output_schema,
            self.time_range,
        )
        .await
    }
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .filter(|value| !value.is_empty())
        .map(|value| {
            chrono::DateTime::parse_from_rfc3339(value)
                .map(|time| time.timestamp_millis())
                .map_err(|err| {
                    ApiError::invalid_argument(
                        "INVALID_TIME",
                        format!("`{field}` = `{value}` is not an RFC 3339 instant ({err}); write for example 2026-01-31T12:00:00Z"),
                    )
                    .with_field(field, "must be RFC 3339")
                })
        })
        .transpose()
}

fn validate_dataset(name: &str) -> Result<DatasetName, ApiError> {
    DatasetName::new(name).map_err(|err| {
        ApiError::invalid_argument("INVALID_DATASET_NAME", err.to_string())
            .with_field("dataset", "1 to 249 of a-z, A-Z, 0-9, `.`, `_`, `-`")
    })
}

fn pb_dataset(dataset: &DatasetName) -> plinth_proto::ids::DatasetName {
    plinth_proto::ids::DatasetName::new(dataset.as_str())
}

fn summary(
    dataset: &DatasetName,
    location: &Location,
    sink: Option<&SinkRow>,
    files: &[DatasetFile],
    footers: &[Arc<dataset::Footer>],
) -> pb::DatasetSummary {
    pb::DatasetSummary {
        name: Some(pb_dataset(dataset)),
        url_prefix: location.url.clone(),
        source_topic: sink.map(|row| row.topic.clone()),
        file_count: u64::try_from(files.len()).unwrap_or(u64::MAX),
        row_count: footers.iter().map(|footer| footer.row_count).sum(),
        size_bytes: files.iter().map(|file| file.size).sum(),
    }
}

fn file_message(
    location: &Location,
    dataset: &DatasetName,
    file: &DatasetFile,
    row_count: u64,
) -> pb::LakeFile {
    match &file.kind {
        FileKind::Kafka(kafka) => sink::lake_file_message(
            location,
            dataset,
            kafka,
            row_count,
            file.size,
            file.last_modified.timestamp_millis(),
        ),
        // Written and flat files: rows numbered from 0, no Kafka partition; a flat file has no event date.
        FileKind::Written { .. } | FileKind::Flat => pb::LakeFile {
            url: location.url_of(&file.relative),
            partition: -1,
            first_offset: 0,
            last_offset: i64::try_from(row_count).unwrap_or(i64::MAX) - 1,
            event_date: file
                .event_date()
                .map(|date| date.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            row_count,
            size_bytes: file.size,
            write_time: Some(timestamp(file.last_modified.timestamp_millis())),
        },
    }
}

fn lake_field(field: &Field) -> pb::LakeField {
    use arrow::datatypes::DataType;
    let children = match field.data_type() {
        DataType::Struct(children) => children.iter().map(|child| lake_field(child)).collect(),
        DataType::List(item) | DataType::LargeList(item) => vec![lake_field(item)],
        DataType::Map(entries, _) => vec![lake_field(entries)],
        _ => Vec::new(),
    };
    pb::LakeField {
        name: field.name().clone(),
        data_type: field.data_type().to_string(),
        nullable: field.is_nullable(),
        metadata: field
            .metadata()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        children,
    }
}

/// The schema IPC-encoded as in Flight's `SchemaResult` (the same bytes as `FlightInfo.schema`).
pub(crate) fn ipc_schema(schema: &arrow::datatypes::Schema) -> Result<Vec<u8>, ApiError> {
    let info = arrow_flight::FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|err| ApiError::internal(format!("encoding the dataset schema: {err}")))?;
    Ok(info.schema.to_vec())
}
