//! The tensor every front end converts to and from: a name, a shape and row-major values of one of the
//! Open Inference Protocol's data types. The batch dimension, when a model has one, is the first.
//!
//! Conversions live with their front end (`oip` for the protocol's typed/raw contents and REST JSON,
//! `predict` for feature values); this module holds the type and the batch operations
//! ([`Tensor::concat`], [`Tensor::split_rows`]) the batcher needs.

use crate::error::ServingError;

/// An element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `BOOL`.
    Bool,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
    /// `BYTES`: byte strings (ONNX `string` tensors).
    Bytes,
}

impl DataType {
    /// Every supported type, for messages.
    pub const ALL: [DataType; 6] = [
        DataType::Bool,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    /// The protocol's name (`FP32`).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// The type named `name` (the protocol's names, case-sensitive as the spec writes them).
    pub fn from_name(name: &str) -> Option<Self> {
        DataType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Bytes per element in `raw_input_contents`; `None` for BYTES (length-prefixed).
    pub fn fixed_size(self) -> Option<usize> {
        match self {
            DataType::Bool => Some(1),
            DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Row-major values of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `BOOL`.
    Bool(Vec<bool>),
    /// `INT32`.
    Int32(Vec<i32>),
    /// `INT64`.
    Int64(Vec<i64>),
    /// `FP32`.
    Fp32(Vec<f32>),
    /// `FP64`.
    Fp64(Vec<f64>),
    /// `BYTES`.
    Bytes(Vec<Vec<u8>>),
}

impl TensorData {
    /// The element type.
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
            TensorData::Bytes(_) => DataType::Bytes,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Int32(v) => v.len(),
            TensorData::Int64(v) => v.len(),
            TensorData::Fp32(v) => v.len(),
            TensorData::Fp64(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty vector of `datatype` with room for `capacity` elements.
    pub fn with_capacity(datatype: DataType, capacity: usize) -> Self {
        match datatype {
            DataType::Bool => TensorData::Bool(Vec::with_capacity(capacity)),
            DataType::Int32 => TensorData::Int32(Vec::with_capacity(capacity)),
            DataType::Int64 => TensorData::Int64(Vec::with_capacity(capacity)),
            DataType::Fp32 => TensorData::Fp32(Vec::with_capacity(capacity)),
            DataType::Fp64 => TensorData::Fp64(Vec::with_capacity(capacity)),
            DataType::Bytes => TensorData::Bytes(Vec::with_capacity(capacity)),
        }
    }

    /// Appends `other`'s elements; `false` (and nothing appended) when the types differ.
    pub fn extend_from(&mut self, other: &TensorData) -> bool {
        match (self, other) {
            (TensorData::Bool(a), TensorData::Bool(b)) => a.extend_from_slice(b),
            (TensorData::Int32(a), TensorData::Int32(b)) => a.extend_from_slice(b),
            (TensorData::Int64(a), TensorData::Int64(b)) => a.extend_from_slice(b),
            (TensorData::Fp32(a), TensorData::Fp32(b)) => a.extend_from_slice(b),
            (TensorData::Fp64(a), TensorData::Fp64(b)) => a.extend_from_slice(b),
            (TensorData::Bytes(a), TensorData::Bytes(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }

    /// Elements `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> TensorData {
        match self {
            TensorData::Bool(v) => TensorData::Bool(v[start..end].to_vec()),
            TensorData::Int32(v) => TensorData::Int32(v[start..end].to_vec()),
            TensorData::Int64(v) => TensorData::Int64(v[start..end].to_vec()),
            TensorData::Fp32(v) => TensorData::Fp32(v[start..end].to_vec()),
            TensorData::Fp64(v) => TensorData::Fp64(v[start..end].to_vec()),
            TensorData::Bytes(v) => TensorData::Bytes(v[start..end].to_vec()),
        }
    }
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The input or output name.
    pub name: String,
    /// The shape; the product of the dimensions equals the number of elements.
    pub shape: Vec<i64>,
    /// The values, row-major.
    pub data: TensorData,
}

impl Tensor {
    /// A tensor, checking that `shape` matches the number of elements.
    pub fn new(
        name: impl Into<String>,
        shape: Vec<i64>,
        data: TensorData,
    ) -> Result<Self, ServingError> {
        let name = name.into();
        let elements = element_count(&shape).ok_or_else(|| {
            ServingError::invalid(
                format!("{name}.shape"),
                format!("shape {shape:?} has a negative dimension or is too large"),
            )
        })?;
        if elements != data.len() {
            return Err(ServingError::invalid(
                format!("{name}.shape"),
                format!(
                    "shape {shape:?} holds {elements} elements but {} {} values were sent",
                    data.len(),
                    data.datatype()
                ),
            ));
        }
        Ok(Tensor { name, shape, data })
    }

    /// The element type.
    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }

    /// The size of the first (batch) dimension; 0 for a scalar.
    pub fn rows(&self) -> usize {
        self.shape
            .first()
            .map_or(0, |rows| usize::try_from(*rows).unwrap_or(0))
    }

    /// Elements per row (product of the dimensions after the first; 1 for a 1-D tensor).
    pub fn row_len(&self) -> usize {
        element_count(self.shape.get(1..).unwrap_or(&[])).unwrap_or(0)
    }

    /// Joins tensors of the same name, type and row shape along the first dimension (the batcher's
    /// merge). `parts` must not be empty.
    pub fn concat(parts: &[&Tensor]) -> Result<Tensor, ServingError> {
        let first = parts
            .first()
            .ok_or_else(|| ServingError::internal("concat of no tensors"))?;
        let total: usize = parts.iter().map(|part| part.data.len()).sum();
        let mut data = TensorData::with_capacity(first.datatype(), total);
        let mut rows = 0i64;
        for part in parts {
            if part.shape.get(1..) != first.shape.get(1..) || part.shape.is_empty() {
                return Err(ServingError::invalid(
                    format!("{}.shape", part.name),
                    format!(
                        "shape {:?} cannot be batched with {:?}: only the first dimension may differ",
                        part.shape, first.shape
                    ),
                ));
            }
            if !data.extend_from(&part.data) {
                return Err(ServingError::invalid(
                    format!("{}.datatype", part.name),
                    format!(
                        "{} cannot be batched with {}",
                        part.datatype(),
                        first.datatype()
                    ),
                ));
            }
            rows += part.shape[0];
        }
        let mut shape = first.shape.clone();
        shape[0] = rows;
        Ok(Tensor {
            name: first.name.clone(),
            shape,
            data,
        })
    }

    /// Splits along the first dimension into tensors of `rows[i]` rows each (the batcher's scatter).
    /// The sum of `rows` must equal [`Tensor::rows`].
    pub fn split_rows(&self, rows: &[usize]) -> Result<Vec<Tensor>, ServingError> {
        let total: usize = rows.iter().sum();
        if self.shape.is_empty() || total != self.rows() {
            return Err(ServingError::internal(format!(
                "output `{}` has shape {:?}, which cannot be split into {total} rows",
                self.name, self.shape
            )));
        }
        let row_len = self.row_len();
        let mut start = 0;
        let mut out = Vec::with_capacity(rows.len());
        for &count in rows {
            let end = start + count * row_len;
            let mut shape = self.shape.clone();
            shape[0] = i64::try_from(count).unwrap_or(i64::MAX);
            out.push(Tensor {
                name: self.name.clone(),
                shape,
                data: self.data.slice(start, end),
            });
            start = end;
        }
        Ok(out)
    }
}

/// The number of elements of `shape`, `None` when a dimension is negative or the product overflows.
pub fn element_count(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, dim| {
        usize::try_from(*dim)
            .ok()
            .and_then(|dim| acc.checked_mul(dim))
    })
}
