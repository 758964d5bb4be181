//! Which columns feed which model input: the feature columns of the dataset, checked against the
//! model's metadata (`ModelMetadata`: one input tensor, its datatype and width), and the output columns
//! the metadata describes.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use plinth_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use plinth_proto::inference::model_metadata_response::TensorMetadata;
use plinth_proto::inference::{ModelMetadataRequest, ModelMetadataResponse};
use plinth_runtime::client::AuthChannel;

use super::Request;
use crate::tasks::deploy::SERVING;
use crate::tasks::tensor::{InputType, is_numeric};
use crate::tasks::{Peer, TaskError, status_error};

/// The model's input tensor: its name, element type and the columns that fill it.
pub(super) struct ModelInput {
    pub(super) name: String,
    pub(super) input_type: InputType,
    pub(super) columns: Vec<String>,
}

pub(super) fn version_text(version: &str) -> String {
    if version.is_empty() {
        String::new()
    } else {
        format!(" version `{version}`")
    }
}

/// The columns fed to the model: those named in `columns` (each must exist and be numeric), or every
/// numeric column.
pub(super) fn feature_columns(
    schema: &Schema,
    request: Request<'_>,
) -> Result<Vec<String>, TaskError> {
    let names = || {
        schema
            .fields()
            .iter()
            .map(|field| format!("{} ({})", field.name(), field.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if request.columns.is_empty() {
        let numeric: Vec<String> = schema
            .fields()
            .iter()
            .filter(|field| is_numeric(field.data_type()))
            .map(|field| field.name().clone())
            .collect();
        if numeric.is_empty() {
            return Err(TaskError::failed(format!(
                "dataset `{}` has no numeric column to feed the model (columns: {}); compute numeric features first",
                request.input,
                names()
            )));
        }
        return Ok(numeric);
    }
    for column in request.columns {
        let field = schema.field_with_name(column).map_err(|_| {
            TaskError::failed(format!(
                "`columns` names `{column}`, which dataset `{}` does not have (columns: {}); fix `columns`",
                request.input,
                names()
            ))
        })?;
        if !is_numeric(field.data_type()) {
            return Err(TaskError::failed(format!(
                "column `{column}` of dataset `{}` is {}, not numeric; the model input is a numeric tensor: leave it out of `columns` or encode it upstream",
                request.input,
                field.data_type()
            )));
        }
    }
    Ok(request.columns.to_vec())
}

/// The model's metadata; `None` when the server does not implement `ModelMetadata`.
pub(super) async fn model_metadata(
    client: &mut GrpcInferenceServiceClient<AuthChannel>,
    peer: &Peer,
    request: Request<'_>,
) -> Result<Option<ModelMetadataResponse>, TaskError> {
    match client
        .model_metadata(ModelMetadataRequest {
            name: request.model.to_owned(),
            version: request.version.to_owned(),
        })
        .await
    {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok(None),
        Err(status) if status.code() == tonic::Code::NotFound => {
            Err(model_not_found(peer, request, &status))
        }
        Err(status) => Err(status_error(SERVING, peer, "ModelMetadata", &status)),
    }
}

pub(super) fn model_not_found(
    peer: &Peer,
    request: Request<'_>,
    status: &tonic::Status,
) -> TaskError {
    TaskError::failed(format!(
        "model serving at {} has no model `{}`{} loaded: {}; deploy it first with a `deploy-model` task, or fix `model`/`version`",
        peer.url,
        request.model,
        version_text(request.version),
        status.message()
    ))
}

/// The input tensor to build, from the model's metadata when it gives one.
pub(super) fn model_input(
    metadata: Option<&ModelMetadataResponse>,
    schema: &Schema,
    columns: Vec<String>,
    request: Request<'_>,
) -> Result<ModelInput, TaskError> {
    let Some(metadata) = metadata else {
        let types: Vec<&DataType> = columns
            .iter()
            .filter_map(|name| schema.field_with_name(name).ok().map(Field::data_type))
            .collect();
        return Ok(ModelInput {
            name: "input".to_owned(),
            input_type: InputType::infer(&types),
            columns,
        });
    };
    let [tensor] = metadata.inputs.as_slice() else {
        return Err(TaskError::failed(format!(
            "model `{}` has {} inputs ({}); batch-score feeds models with one input tensor",
            request.model,
            metadata.inputs.len(),
            metadata
                .inputs
                .iter()
                .map(|input| input.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let input_type = InputType::from_datatype(&tensor.datatype).ok_or_else(|| {
        TaskError::failed(format!(
            "model `{}` takes a {} tensor `{}`; batch-score builds FP32, FP64 and INT64 tensors",
            request.model, tensor.datatype, tensor.name
        ))
    })?;
    if let [_, width] = tensor.shape.as_slice()
        && *width >= 0
        && usize::try_from(*width).ok() != Some(columns.len())
    {
        return Err(TaskError::failed(format!(
            "model `{}` takes {width} values per row in `{}`, but {} columns are fed ({}); list exactly its inputs, in order, in `columns`",
            request.model,
            tensor.name,
            columns.len(),
            columns.join(", ")
        )));
    }
    Ok(ModelInput {
        name: tensor.name.clone(),
        input_type,
        columns,
    })
}

/// The Arrow type of a model output described by metadata, for an output dataset with no row.
pub(super) fn metadata_field(tensor: &TensorMetadata) -> Option<Field> {
    let element = match tensor.datatype.as_str() {
        "BOOL" => DataType::Boolean,
        "INT8" => DataType::Int8,
        "INT16" => DataType::Int16,
        "INT32" => DataType::Int32,
        "INT64" => DataType::Int64,
        "UINT8" => DataType::UInt8,
        "UINT16" => DataType::UInt16,
        "UINT32" => DataType::UInt32,
        "UINT64" => DataType::UInt64,
        "FP32" => DataType::Float32,
        "FP64" => DataType::Float64,
        "BYTES" => DataType::Utf8,
        _ => return None,
    };
    let per_row: Option<i64> = tensor.shape.get(1..).and_then(|rest| {
        rest.iter()
            .try_fold(1_i64, |product, dim| (*dim >= 0).then(|| product * dim))
    });
    let data_type = match (tensor.shape.len(), per_row) {
        (0 | 1, _) | (2, Some(1)) => element,
        (_, Some(size)) => DataType::FixedSizeList(
            Arc::new(Field::new("item", element, false)),
            i32::try_from(size).ok()?,
        ),
        (_, None) => return None,
    };
    Some(Field::new(tensor.name.clone(), data_type, true))
}
