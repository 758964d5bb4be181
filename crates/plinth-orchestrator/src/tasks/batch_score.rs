//! `batch-score`: reads a lake dataset's Parquet files in batches, sends the chosen numeric columns to
//! model serving as one `[rows, columns]` tensor per batch (`ModelInfer`, `raw_input_contents`), and
//! writes every input column plus one column per model output to a new lake dataset, visible only
//! when complete.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::datatypes::{Field, Schema, SchemaRef};
use futures::StreamExt as _;
use object_store::ObjectMeta;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use plinth_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use plinth_proto::inference::model_infer_request::InferInputTensor;
use plinth_proto::inference::{ModelInferRequest, ModelMetadataResponse};
use plinth_runtime::client::AuthChannel;
use plinth_runtime::storage::Location;
use tokio::sync::watch;

use self::model_input::{
    ModelInput, feature_columns, metadata_field, model_input, model_metadata, model_not_found,
    version_text,
};
use super::deploy::SERVING;
use super::lake::{DatasetWriter, LakeFile, check_dataset_name, list_parquet};
use super::model_repository::check_segment;
use super::tensor::{OutputTensor, decode_output, encode_input};
use super::{Peer, Platform, TaskError, TaskReport, cancellable, status_error};
use crate::logs::LogWriter;

mod model_input;

/// Rows sent to the model per call.
const BATCH_ROWS: usize = 1024;

/// The rendered `with:` of a `batch-score` task.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) model: &'a str,
    /// Empty: model serving's default version.
    pub(super) version: &'a str,
    pub(super) input: &'a str,
    pub(super) output: &'a str,
    pub(super) columns: &'a [String],
}

/// Scores `input` into `output`.
pub(super) async fn batch_score(
    platform: &Platform,
    request: Request<'_>,
    log: &LogWriter,
    mut cancel: watch::Receiver<bool>,
) -> Result<TaskReport, TaskError> {
    check_segment(request.model, "model")?;
    if !request.version.is_empty() {
        check_segment(request.version, "version")?;
    }
    check_dataset_name(request.input, "input")?;
    check_dataset_name(request.output, "output")?;
    let peer = platform.model_serving()?;
    let location = platform.lake.location("lake")?;
    let files = list_parquet(&location, request.input, "input").await?;
    let schema = all_nullable(&*read_schema(&location, &files[0], request.input).await?);
    let columns = feature_columns(&schema, request)?;
    let mut client = GrpcInferenceServiceClient::new(peer.channel.clone());
    let metadata = cancellable(&mut cancel, model_metadata(&mut client, peer, request)).await?;
    let input = model_input(metadata.as_ref(), &schema, columns, request)?;
    log.line(&format!(
        "scoring dataset `{}` ({} files) with model `{}`{} at {}: columns {} as {} tensor `{}`",
        request.input,
        files.len(),
        request.model,
        version_text(request.version),
        peer.url,
        input.columns.join(", "),
        input.input_type.datatype(),
        input.name
    ));
    let mut writer = DatasetWriter::open(location.clone(), request.output, "output").await?;
    let mut scorer = Scorer {
        client,
        peer,
        request,
        input,
        schema: Arc::clone(&schema),
        output_fields: None,
        rows: 0,
        calls: 0,
    };
    let scored = scorer
        .score_files(&location, &files, &mut writer, log, &mut cancel)
        .await;
    if let Err(err) = scored {
        writer.abort().await;
        return Err(err);
    }
    let empty_schema = scorer.output_schema(metadata.as_ref());
    let url = writer.url();
    let parts = writer.commit(empty_schema).await?;
    log.line(&format!(
        "scored {} rows in {} calls; wrote {parts} Parquet file{} to {url}",
        scorer.rows,
        scorer.calls,
        if parts == 1 { "" } else { "s" }
    ));
    Ok(TaskReport {
        summary: format!(
            "scored {} rows of `{}` with model `{}`{} into dataset `{}`",
            scorer.rows,
            request.input,
            request.model,
            version_text(request.version),
            request.output
        ),
        output_url: Some(url),
    })
}

/// The schema with every field nullable, so files that lack a column can be filled with nulls.
fn all_nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|field| field.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

fn parquet_builder_error(
    dataset: &str,
    location: &Location,
    file: &ObjectMeta,
    err: &dyn std::fmt::Display,
) -> TaskError {
    let url = location.relative(&file.location).map_or_else(
        || file.location.to_string(),
        |relative| location.url_of(&relative),
    );
    TaskError::failed(format!(
        "cannot read {url} of dataset `{dataset}` as Parquet: {err}"
    ))
}

async fn open_file(
    location: &Location,
    file: &ObjectMeta,
    dataset: &str,
) -> Result<ParquetRecordBatchStreamBuilder<LakeFile>, TaskError> {
    let reader = LakeFile::new(Arc::clone(&location.store), file);
    ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|err| parquet_builder_error(dataset, location, file, &err))
}

async fn read_schema(
    location: &Location,
    file: &ObjectMeta,
    dataset: &str,
) -> Result<SchemaRef, TaskError> {
    Ok(Arc::clone(
        open_file(location, file, dataset).await?.schema(),
    ))
}

/// The scoring loop's state.
struct Scorer<'a> {
    client: GrpcInferenceServiceClient<AuthChannel>,
    peer: &'a Peer,
    request: Request<'a>,
    input: ModelInput,
    /// The input dataset's schema (of its first file, every field nullable).
    schema: SchemaRef,
    /// The output columns, fixed by the first response.
    output_fields: Option<Vec<Field>>,
    rows: u64,
    calls: u64,
}

impl Scorer<'_> {
    async fn score_files(
        &mut self,
        location: &Location,
        files: &[ObjectMeta],
        writer: &mut DatasetWriter,
        log: &LogWriter,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<(), TaskError> {
        for file in files {
            let dataset = self.request.input;
            let mut stream = open_file(location, file, dataset)
                .await?
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|err| parquet_builder_error(dataset, location, file, &err))?;
            let mut file_rows = 0_u64;
            while let Some(batch) = stream.next().await {
                let batch =
                    batch.map_err(|err| parquet_builder_error(dataset, location, file, &err))?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let batch = self.conform(&batch)?;
                let scored = cancellable(cancel, self.score(&batch)).await?;
                file_rows += batch.num_rows() as u64;
                writer.write(scored).await?;
            }
            self.rows += file_rows;
            log.line(&format!("scored {file_rows} rows of {}", file.location));
        }
        Ok(())
    }

    /// A batch with the dataset's schema: columns by name, cast to the first file's types, nulls
    /// where a file lacks a column.
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch, TaskError> {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| match batch.column_by_name(field.name()) {
                Some(column) if column.data_type() == field.data_type() => Ok(Arc::clone(column)),
                Some(column) => arrow::compute::cast(column, field.data_type()).map_err(|err| {
                    TaskError::failed(format!(
                        "column `{}` of dataset `{}` is {} in one file and {} in another, and cannot be converted: {err}",
                        field.name(),
                        self.request.input,
                        field.data_type(),
                        column.data_type()
                    ))
                }),
                None => Ok(new_null_array(field.data_type(), batch.num_rows())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|err| {
            TaskError::failed(format!(
                "a batch of dataset `{}` does not fit its schema: {err}",
                self.request.input
            ))
        })
    }

    /// One `ModelInfer` call: the batch with the model's outputs appended.
    async fn score(&mut self, batch: &RecordBatch) -> Result<RecordBatch, TaskError> {
        let rows = batch.num_rows();
        let features: Vec<ArrayRef> = self
            .input
            .columns
            .iter()
            .filter_map(|name| batch.column_by_name(name).cloned())
            .collect();
        let raw = encode_input(&features, &self.input.columns, self.input.input_type)?;
        let request = ModelInferRequest {
            model_name: self.request.model.to_owned(),
            model_version: self.request.version.to_owned(),
            id: String::new(),
            parameters: Default::default(),
            inputs: vec![InferInputTensor {
                name: self.input.name.clone(),
                datatype: self.input.input_type.datatype().to_owned(),
                shape: vec![
                    i64::try_from(rows).unwrap_or(i64::MAX),
                    i64::try_from(features.len()).unwrap_or(i64::MAX),
                ],
                parameters: Default::default(),
                contents: None,
            }],
            outputs: Vec::new(),
            raw_input_contents: vec![raw],
        };
        let response = self
            .client
            .model_infer(request)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => model_not_found(self.peer, self.request, &status),
                tonic::Code::InvalidArgument => TaskError::failed(format!(
                    "model serving at {} refused the input of model `{}` (tensor `{}`, {} columns {}): {}; check `columns` against the model's inputs",
                    self.peer.url,
                    self.request.model,
                    self.input.name,
                    self.input.input_type.datatype(),
                    self.input.columns.join(", "),
                    status.message()
                )),
                _ => status_error(SERVING, self.peer, "ModelInfer", &status),
            })?
            .into_inner();
        self.calls += 1;
        if response.outputs.is_empty() {
            return Err(TaskError::failed(format!(
                "model `{}` returned no output tensor; check the model's outputs",
                self.request.model
            )));
        }
        let mut outputs = Vec::with_capacity(response.outputs.len());
        for (output_idx, output) in response.outputs.iter().enumerate() {
            let tensor = OutputTensor {
                name: &output.name,
                datatype: &output.datatype,
                shape: &output.shape,
                raw: response
                    .raw_output_contents
                    .get(output_idx)
                    .map(Vec::as_slice),
                contents: output.contents.as_ref(),
            };
            outputs.push((output.name.clone(), decode_output(&tensor, rows)?));
        }
        self.append(batch, outputs)
    }

    /// The batch plus the output columns, whose names and types the first response fixes.
    fn append(
        &mut self,
        batch: &RecordBatch,
        outputs: Vec<(String, ArrayRef)>,
    ) -> Result<RecordBatch, TaskError> {
        let fields = match &self.output_fields {
            Some(fields) => fields.clone(),
            None => {
                let mut fields = Vec::with_capacity(outputs.len());
                for (name, column) in &outputs {
                    if self.schema.field_with_name(name).is_ok() {
                        return Err(TaskError::failed(format!(
                            "model output `{name}` has the name of a column of dataset `{}`; rename the column upstream",
                            self.request.input
                        )));
                    }
                    fields.push(Field::new(name.clone(), column.data_type().clone(), true));
                }
                self.output_fields = Some(fields.clone());
                fields
            }
        };
        if fields.len() != outputs.len()
            || fields
                .iter()
                .zip(&outputs)
                .any(|(field, (name, _))| field.name() != name)
        {
            return Err(TaskError::failed(format!(
                "model `{}` changed its outputs between calls; was the model replaced while scoring? run the task again",
                self.request.model
            )));
        }
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (field, (name, column)) in fields.iter().zip(outputs) {
            let column = if column.data_type() == field.data_type() {
                column
            } else {
                arrow::compute::cast(&column, field.data_type()).map_err(|err| {
                    TaskError::failed(format!(
                        "model output `{name}` changed type between calls ({} then {}): {err}",
                        field.data_type(),
                        column.data_type()
                    ))
                })?
            };
            columns.push(column);
        }
        let schema = Arc::new(Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|field| field.as_ref().clone())
                .chain(fields)
                .collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(schema, columns).map_err(|err| {
            TaskError::failed(format!(
                "the outputs of model `{}` cannot be stored with the input rows: {err}",
                self.request.model
            ))
        })
    }

    /// The output dataset's schema when no row was scored: the input columns plus the outputs the
    /// model's metadata describes.
    fn output_schema(&self, metadata: Option<&ModelMetadataResponse>) -> SchemaRef {
        let outputs: Vec<Field> = match &self.output_fields {
            Some(fields) => fields.clone(),
            None => metadata
                .map(|metadata| metadata.outputs.iter().filter_map(metadata_field).collect())
                .unwrap_or_default(),
        };
        Arc::new(Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|field| field.as_ref().clone())
                .chain(outputs)
                .collect::<Vec<_>>(),
        ))
    }
}
