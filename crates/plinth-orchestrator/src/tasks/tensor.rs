//! Arrow columns to and from Open Inference Protocol tensors: numeric columns become one
//! `[rows, columns]` input tensor sent as `raw_input_contents` (row-major, little-endian); each output
//! tensor becomes one column (a `[rows]` or `[rows, 1]` tensor a scalar column, `[rows, k, ...]` a
//! fixed-size list of `k·...` values per row).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray as _, BinaryArray, BooleanArray, FixedSizeListArray, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, StringArray, UInt8Array,
    UInt16Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type};
use plinth_proto::inference::InferTensorContents;

use super::TaskError;

/// The element type of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InputType {
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
    /// `INT64`.
    Int64,
}

impl InputType {
    /// The protocol's name.
    pub(super) fn datatype(self) -> &'static str {
        match self {
            InputType::Fp32 => "FP32",
            InputType::Fp64 => "FP64",
            InputType::Int64 => "INT64",
        }
    }

    /// The type of a model input named `datatype`, when batch-score can build it.
    pub(super) fn from_datatype(datatype: &str) -> Option<Self> {
        match datatype {
            "FP32" => Some(InputType::Fp32),
            "FP64" => Some(InputType::Fp64),
            "INT64" => Some(InputType::Int64),
            _ => None,
        }
    }

    /// The type to send when the model does not describe its input: INT64 when every column is an
    /// integer, FP32 when every column is FP32, else FP64.
    pub(super) fn infer(types: &[&DataType]) -> Self {
        if types.iter().all(|data_type| data_type.is_integer()) {
            InputType::Int64
        } else if types
            .iter()
            .all(|data_type| **data_type == DataType::Float32)
        {
            InputType::Fp32
        } else {
            InputType::Fp64
        }
    }
}

/// Whether a column can feed the input tensor.
pub(super) fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_integer() || data_type.is_floating()
}

/// The columns as one `[rows, columns.len()]` tensor of `input_type`, row-major little-endian bytes.
/// `names` name the columns for messages. A null value is refused: the model gets no input for it.
pub(super) fn encode_input(
    columns: &[ArrayRef],
    names: &[String],
    input_type: InputType,
) -> Result<Vec<u8>, TaskError> {
    let rows = columns.first().map_or(0, |column| column.len());
    let width = match input_type {
        InputType::Fp32 => 4,
        InputType::Fp64 | InputType::Int64 => 8,
    };
    let mut out = vec![0_u8; rows * columns.len() * width];
    for (column_idx, (column, name)) in columns.iter().zip(names).enumerate() {
        if column.null_count() > 0 {
            let row_idx = (0..column.len())
                .find(|row_idx| column.is_null(*row_idx))
                .unwrap_or(0);
            return Err(TaskError::failed(format!(
                "column `{name}` has a null value (row {row_idx} of a batch); the model needs a value in every input: fill nulls upstream or leave the column out of `columns`"
            )));
        }
        if input_type == InputType::Int64 && column.data_type().is_floating() {
            return Err(TaskError::failed(format!(
                "column `{name}` is {}, but the model's input is INT64; leave it out of `columns` or cast it upstream",
                column.data_type()
            )));
        }
        let target = match input_type {
            InputType::Fp32 => DataType::Float32,
            InputType::Fp64 => DataType::Float64,
            InputType::Int64 => DataType::Int64,
        };
        let cast = arrow::compute::cast(column, &target).map_err(|err| {
            TaskError::failed(format!(
                "column `{name}` ({}) cannot be read as {}: {err}",
                column.data_type(),
                input_type.datatype()
            ))
        })?;
        let stride = columns.len() * width;
        let mut put = |row_idx: usize, bytes: &[u8]| {
            let offset = row_idx * stride + column_idx * width;
            out[offset..offset + width].copy_from_slice(bytes);
        };
        match input_type {
            InputType::Fp32 => {
                for (row_idx, value) in cast
                    .as_primitive::<Float32Type>()
                    .values()
                    .iter()
                    .enumerate()
                {
                    put(row_idx, &value.to_le_bytes());
                }
            }
            InputType::Fp64 => {
                for (row_idx, value) in cast
                    .as_primitive::<Float64Type>()
                    .values()
                    .iter()
                    .enumerate()
                {
                    put(row_idx, &value.to_le_bytes());
                }
            }
            InputType::Int64 => {
                for (row_idx, value) in cast.as_primitive::<Int64Type>().values().iter().enumerate()
                {
                    put(row_idx, &value.to_le_bytes());
                }
            }
        }
    }
    Ok(out)
}

/// One output tensor of a response, with its values raw or typed.
pub(super) struct OutputTensor<'a> {
    pub(super) name: &'a str,
    pub(super) datatype: &'a str,
    pub(super) shape: &'a [i64],
    pub(super) raw: Option<&'a [u8]>,
    pub(super) contents: Option<&'a InferTensorContents>,
}

/// The output as a column of `rows` values (see the module doc for the shapes).
pub(super) fn decode_output(output: &OutputTensor<'_>, rows: usize) -> Result<ArrayRef, TaskError> {
    let name = output.name;
    let bad_shape = || {
        TaskError::failed(format!(
            "model output `{name}` has shape {:?}, which does not hold one value (or one fixed-size row) per input row ({rows} rows); batch-score needs outputs shaped [rows] or [rows, ...]",
            output.shape
        ))
    };
    let first = output.shape.first().copied().ok_or_else(bad_shape)?;
    if usize::try_from(first).ok() != Some(rows) {
        return Err(bad_shape());
    }
    let per_row = output.shape[1..]
        .iter()
        .try_fold(1_usize, |product, dim| {
            usize::try_from(*dim)
                .ok()
                .and_then(|dim| product.checked_mul(dim))
        })
        .ok_or_else(bad_shape)?;
    let values = decode_values(output)?;
    if values.len() != rows * per_row {
        return Err(TaskError::failed(format!(
            "model output `{name}` has {} values for shape {:?}; model serving sent an inconsistent response",
            values.len(),
            output.shape
        )));
    }
    if output.shape.len() == 1 || (output.shape.len() == 2 && per_row == 1) {
        return Ok(values);
    }
    let size = i32::try_from(per_row).map_err(|_| bad_shape())?;
    let field = Arc::new(Field::new("item", values.data_type().clone(), false));
    FixedSizeListArray::try_new(field, size, values, None)
        .map(|array| Arc::new(array) as ArrayRef)
        .map_err(|err| {
            TaskError::failed(format!(
                "model output `{name}` cannot be stored as a column: {err}"
            ))
        })
}

/// The flat values of an output tensor.
fn decode_values(output: &OutputTensor<'_>) -> Result<ArrayRef, TaskError> {
    let name = output.name;
    let datatype = output.datatype;
    let unsupported = || {
        TaskError::failed(format!(
            "model output `{name}` has datatype {datatype}, which batch-score cannot store; it stores BOOL, INT8 to INT64, UINT8 to UINT64, FP32, FP64 and BYTES"
        ))
    };
    if let Some(raw) = output.raw {
        return decode_raw(name, datatype, raw).unwrap_or_else(|| Err(unsupported()));
    }
    let empty = InferTensorContents::default();
    let contents = output.contents.unwrap_or(&empty);
    let array: ArrayRef = match datatype {
        "BOOL" => Arc::new(BooleanArray::from(contents.bool_contents.clone())),
        "INT8" => Arc::new(Int8Array::from(narrow::<i8, _>(
            &contents.int_contents,
            name,
        )?)),
        "INT16" => Arc::new(Int16Array::from(narrow::<i16, _>(
            &contents.int_contents,
            name,
        )?)),
        "INT32" => Arc::new(Int32Array::from(contents.int_contents.clone())),
        "INT64" => Arc::new(Int64Array::from(contents.int64_contents.clone())),
        "UINT8" => Arc::new(UInt8Array::from(narrow::<u8, _>(
            &contents.uint_contents,
            name,
        )?)),
        "UINT16" => Arc::new(UInt16Array::from(narrow::<u16, _>(
            &contents.uint_contents,
            name,
        )?)),
        "UINT32" => Arc::new(UInt32Array::from(contents.uint_contents.clone())),
        "UINT64" => Arc::new(UInt64Array::from(contents.uint64_contents.clone())),
        "FP32" => Arc::new(Float32Array::from(contents.fp32_contents.clone())),
        "FP64" => Arc::new(Float64Array::from(contents.fp64_contents.clone())),
        "BYTES" => bytes_column(contents.bytes_contents.iter().map(Vec::as_slice).collect()),
        _ => return Err(unsupported()),
    };
    Ok(array)
}

/// Typed contents of a wider protobuf type narrowed to the tensor's element type.
fn narrow<T: TryFrom<S>, S: Copy>(values: &[S], name: &str) -> Result<Vec<T>, TaskError> {
    values
        .iter()
        .map(|value| T::try_from(*value))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            TaskError::failed(format!(
                "model output `{name}` holds a value out of its datatype's range; model serving sent an inconsistent response"
            ))
        })
}

/// Raw little-endian values; `None` for a datatype batch-score does not store.
fn decode_raw(name: &str, datatype: &str, raw: &[u8]) -> Option<Result<ArrayRef, TaskError>> {
    fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N)
            .map(|chunk| <[u8; N]>::try_from(chunk).unwrap_or([0; N]))
    }
    let width = match datatype {
        "BOOL" | "INT8" | "UINT8" => 1,
        "INT16" | "UINT16" => 2,
        "INT32" | "UINT32" | "FP32" => 4,
        "INT64" | "UINT64" | "FP64" => 8,
        "BYTES" => return Some(decode_raw_bytes(name, raw)),
        _ => return None,
    };
    if !raw.len().is_multiple_of(width) {
        return Some(Err(TaskError::failed(format!(
            "model output `{name}` has {} raw bytes, not a multiple of {width} ({datatype}); model serving sent an inconsistent response",
            raw.len()
        ))));
    }
    let array: ArrayRef = match datatype {
        "BOOL" => Arc::new(BooleanArray::from(
            raw.iter().map(|byte| *byte != 0).collect::<Vec<_>>(),
        )),
        "INT8" => Arc::new(Int8Array::from_iter_values(
            chunks::<1>(raw).map(i8::from_le_bytes),
        )),
        "UINT8" => Arc::new(UInt8Array::from_iter_values(raw.iter().copied())),
        "INT16" => Arc::new(Int16Array::from_iter_values(
            chunks::<2>(raw).map(i16::from_le_bytes),
        )),
        "UINT16" => Arc::new(UInt16Array::from_iter_values(
            chunks::<2>(raw).map(u16::from_le_bytes),
        )),
        "INT32" => Arc::new(Int32Array::from_iter_values(
            chunks::<4>(raw).map(i32::from_le_bytes),
        )),
        "UINT32" => Arc::new(UInt32Array::from_iter_values(
            chunks::<4>(raw).map(u32::from_le_bytes),
        )),
        "FP32" => Arc::new(Float32Array::from_iter_values(
            chunks::<4>(raw).map(f32::from_le_bytes),
        )),
        "INT64" => Arc::new(Int64Array::from_iter_values(
            chunks::<8>(raw).map(i64::from_le_bytes),
        )),
        "UINT64" => Arc::new(UInt64Array::from_iter_values(
            chunks::<8>(raw).map(u64::from_le_bytes),
        )),
        "FP64" => Arc::new(Float64Array::from_iter_values(
            chunks::<8>(raw).map(f64::from_le_bytes),
        )),
        _ => return None,
    };
    Some(Ok(array))
}

/// Raw BYTES: each element is a 4-byte little-endian length followed by that many bytes.
fn decode_raw_bytes(name: &str, raw: &[u8]) -> Result<ArrayRef, TaskError> {
    let mut elements = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let truncated = || {
            TaskError::failed(format!(
                "model output `{name}` has truncated raw BYTES contents; model serving sent an inconsistent response"
            ))
        };
        let (length, tail) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        let length = usize::try_from(u32::from_le_bytes(*length)).map_err(|_| truncated())?;
        if tail.len() < length {
            return Err(truncated());
        }
        let (element, tail) = tail.split_at(length);
        elements.push(element);
        rest = tail;
    }
    Ok(bytes_column(elements))
}

/// BYTES elements as a text column when all are UTF-8 (class labels), else a binary column.
fn bytes_column(elements: Vec<&[u8]>) -> ArrayRef {
    let texts: Option<Vec<&str>> = elements
        .iter()
        .map(|element| std::str::from_utf8(element).ok())
        .collect();
    match texts {
        Some(texts) => Arc::new(StringArray::from(texts)),
        None => Arc::new(BinaryArray::from(elements)),
    }
}
