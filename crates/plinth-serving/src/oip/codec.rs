//! Tensors to and from the protocol's protobuf messages: typed `contents` (one repeated field per data
//! type) and raw bytes (`raw_input_contents`, `raw_output_contents`, and REST binary tensor data):
//! elements row-major, little-endian, without padding; BOOL one byte (0 or 1); BYTES elements each
//! prefixed by their length as 4 little-endian bytes.
//!
//! Every error is INVALID_ARGUMENT at `inputs[i]...` and names the tensor and what to send instead.

use plinth_proto::inference::model_infer_request::InferInputTensor;
use plinth_proto::inference::model_infer_response::InferOutputTensor;
use plinth_proto::inference::{InferTensorContents, ModelInferRequest};

use crate::error::ServingError;
use crate::tensor::{DataType, Tensor, TensorData, element_count};

/// The data type named `name` at `field`, or the list of the supported ones.
pub(crate) fn datatype(field: &str, tensor: &str, name: &str) -> Result<DataType, ServingError> {
    DataType::from_name(name).ok_or_else(|| {
        let supported: Vec<&str> = DataType::ALL.iter().map(|t| t.name()).collect();
        ServingError::invalid(
            format!("{field}.datatype"),
            format!(
                "`{tensor}` has datatype `{name}`, which is not supported: use one of {}",
                supported.join(", ")
            ),
        )
    })
}

/// The number of elements `shape` holds, INVALID_ARGUMENT at `field.shape` when a dimension is
/// negative or the product overflows.
pub(crate) fn elements(field: &str, tensor: &str, shape: &[i64]) -> Result<usize, ServingError> {
    element_count(shape).ok_or_else(|| {
        ServingError::invalid(
            format!("{field}.shape"),
            format!(
                "`{tensor}` has shape {shape:?}: dimensions must be 0 or more (-1 is only for \
                 metadata) and their product must fit in memory"
            ),
        )
    })
}

/// The input tensors of a ModelInferRequest, from typed contents or raw contents (never both).
pub(crate) fn decode_request(
    inputs: Vec<InferInputTensor>,
    raw: Vec<Vec<u8>>,
) -> Result<Vec<Tensor>, ServingError> {
    if !raw.is_empty() && raw.len() != inputs.len() {
        return Err(ServingError::invalid(
            "raw_input_contents",
            format!(
                "{} raw_input_contents for {} inputs: send one entry per input, in the order of \
                 `inputs`",
                raw.len(),
                inputs.len()
            ),
        ));
    }
    let use_raw = !raw.is_empty();
    let mut raw = raw.into_iter();
    let mut tensors: Vec<Tensor> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let field = format!("inputs[{i}]");
        if tensors.iter().any(|t| t.name == input.name) {
            return Err(ServingError::invalid(
                format!("{field}.name"),
                format!("input `{}` is sent twice: send each input once", input.name),
            ));
        }
        let dtype = datatype(&field, &input.name, &input.datatype)?;
        let count = elements(&field, &input.name, &input.shape)?;
        let contents = input.contents.filter(|c| !contents_empty(c));
        let data = match (use_raw, contents) {
            (true, Some(_)) => {
                return Err(ServingError::invalid(
                    format!("{field}.contents"),
                    format!(
                        "`{}` has contents but the request carries raw_input_contents: send every \
                         input one way or the other",
                        input.name
                    ),
                ));
            }
            (true, None) => {
                let bytes = raw.next().unwrap_or_default();
                decode_raw(
                    &format!("raw_input_contents[{i}]"),
                    &input.name,
                    dtype,
                    count,
                    &bytes,
                )?
            }
            (false, Some(contents)) => decode_contents(
                &format!("{field}.contents"),
                &input.name,
                dtype,
                count,
                contents,
            )?,
            (false, None) if count == 0 => TensorData::with_capacity(dtype, 0),
            (false, None) => {
                return Err(ServingError::invalid(
                    format!("{field}.contents"),
                    format!(
                        "`{}` has shape {:?} but no values: set contents.{} or raw_input_contents",
                        input.name,
                        input.shape,
                        contents_field(dtype)
                    ),
                ));
            }
        };
        tensors.push(Tensor {
            name: input.name,
            shape: input.shape,
            data,
        });
    }
    Ok(tensors)
}

/// The inputs of `request`, consuming it.
pub(crate) fn decode_infer_request(
    request: &mut ModelInferRequest,
) -> Result<Vec<Tensor>, ServingError> {
    decode_request(
        std::mem::take(&mut request.inputs),
        std::mem::take(&mut request.raw_input_contents),
    )
}

/// The field of [`InferTensorContents`] that holds `dtype`.
pub(crate) fn contents_field(dtype: DataType) -> &'static str {
    match dtype {
        DataType::Bool => "bool_contents",
        DataType::Int32 => "int_contents",
        DataType::Int64 => "int64_contents",
        DataType::Fp32 => "fp32_contents",
        DataType::Fp64 => "fp64_contents",
        DataType::Bytes => "bytes_contents",
    }
}

fn contents_empty(c: &InferTensorContents) -> bool {
    c.bool_contents.is_empty()
        && c.int_contents.is_empty()
        && c.int64_contents.is_empty()
        && c.uint_contents.is_empty()
        && c.uint64_contents.is_empty()
        && c.fp32_contents.is_empty()
        && c.fp64_contents.is_empty()
        && c.bytes_contents.is_empty()
}

/// The names of the non-empty fields of `c` other than `except`.
fn other_fields(c: &InferTensorContents, except: &str) -> Vec<&'static str> {
    let fields = [
        ("bool_contents", c.bool_contents.is_empty()),
        ("int_contents", c.int_contents.is_empty()),
        ("int64_contents", c.int64_contents.is_empty()),
        ("uint_contents", c.uint_contents.is_empty()),
        ("uint64_contents", c.uint64_contents.is_empty()),
        ("fp32_contents", c.fp32_contents.is_empty()),
        ("fp64_contents", c.fp64_contents.is_empty()),
        ("bytes_contents", c.bytes_contents.is_empty()),
    ];
    fields
        .into_iter()
        .filter(|(name, empty)| !empty && *name != except)
        .map(|(name, _)| name)
        .collect()
}

/// The values of typed `contents` for a tensor of `dtype` holding `count` elements.
pub(crate) fn decode_contents(
    field: &str,
    tensor: &str,
    dtype: DataType,
    count: usize,
    contents: InferTensorContents,
) -> Result<TensorData, ServingError> {
    let expected = contents_field(dtype);
    let others = other_fields(&contents, expected);
    if !others.is_empty() {
        let verb = if others.len() == 1 { "is" } else { "are" };
        return Err(ServingError::invalid(
            field,
            format!(
                "`{tensor}` is {dtype} but {} {verb} set: {dtype} values go in {expected}",
                others.join(" and ")
            ),
        ));
    }
    let data = match dtype {
        DataType::Bool => TensorData::Bool(contents.bool_contents),
        DataType::Int32 => TensorData::Int32(contents.int_contents),
        DataType::Int64 => TensorData::Int64(contents.int64_contents),
        DataType::Fp32 => TensorData::Fp32(contents.fp32_contents),
        DataType::Fp64 => TensorData::Fp64(contents.fp64_contents),
        DataType::Bytes => TensorData::Bytes(contents.bytes_contents),
    };
    if data.len() != count {
        return Err(ServingError::invalid(
            format!("{field}.{expected}"),
            format!(
                "`{tensor}` has {} values but its shape holds {count}: send as many values as the \
                 product of the shape",
                data.len()
            ),
        ));
    }
    Ok(data)
}

/// The values of a raw tensor of `dtype` holding `count` elements.
pub(crate) fn decode_raw(
    field: &str,
    tensor: &str,
    dtype: DataType,
    count: usize,
    bytes: &[u8],
) -> Result<TensorData, ServingError> {
    let Some(size) = dtype.fixed_size() else {
        return decode_raw_bytes(field, tensor, count, bytes);
    };
    if !bytes.len().is_multiple_of(size) || bytes.len() / size != count {
        return Err(ServingError::invalid(
            field,
            format!(
                "`{tensor}` has {} bytes but its shape holds {count} {dtype} elements of {size} \
                 bytes ({} bytes): send the elements row-major, little-endian, without padding",
                bytes.len(),
                count.saturating_mul(size)
            ),
        ));
    }
    let data = match dtype {
        DataType::Bool => {
            if let Some(at) = bytes.iter().position(|b| *b > 1) {
                return Err(ServingError::invalid(
                    field,
                    format!(
                        "`{tensor}` element {at} is byte {}: BOOL elements are one byte, 0 or 1",
                        bytes[at]
                    ),
                ));
            }
            TensorData::Bool(bytes.iter().map(|b| *b == 1).collect())
        }
        DataType::Int32 => TensorData::Int32(le_chunks(bytes, i32::from_le_bytes)),
        DataType::Int64 => TensorData::Int64(le_chunks(bytes, i64::from_le_bytes)),
        DataType::Fp32 => TensorData::Fp32(le_chunks(bytes, f32::from_le_bytes)),
        DataType::Fp64 => TensorData::Fp64(le_chunks(bytes, f64::from_le_bytes)),
        DataType::Bytes => return decode_raw_bytes(field, tensor, count, bytes),
    };
    Ok(data)
}

fn le_chunks<const N: usize, T>(bytes: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut array = [0u8; N];
            array.copy_from_slice(chunk);
            from(array)
        })
        .collect()
}

/// BYTES elements, each a 4-byte little-endian length and that many bytes.
fn decode_raw_bytes(
    field: &str,
    tensor: &str,
    count: usize,
    mut bytes: &[u8],
) -> Result<TensorData, ServingError> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let element = values.len();
        let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(ServingError::invalid(
                field,
                format!(
                    "`{tensor}` BYTES element {element} starts with {} bytes, too few for its \
                     4-byte little-endian length prefix",
                    bytes.len()
                ),
            ));
        };
        let len = u32::from_le_bytes(*head) as usize;
        if rest.len() < len {
            return Err(ServingError::invalid(
                field,
                format!(
                    "`{tensor}` BYTES element {element} declares {len} bytes but {} remain: \
                     prefix each element with its own length",
                    rest.len()
                ),
            ));
        }
        let (value, rest) = rest.split_at(len);
        values.push(value.to_vec());
        bytes = rest;
    }
    if values.len() != count {
        return Err(ServingError::invalid(
            field,
            format!(
                "`{tensor}` has {} BYTES elements but its shape holds {count}",
                values.len()
            ),
        ));
    }
    Ok(TensorData::Bytes(values))
}

/// `data` as raw bytes (the layout of [`decode_raw`]).
pub(crate) fn encode_raw(data: &TensorData) -> Vec<u8> {
    match data {
        TensorData::Bool(v) => v.iter().map(|b| u8::from(*b)).collect(),
        TensorData::Int32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Fp32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Fp64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Bytes(v) => {
            let mut out = Vec::with_capacity(v.iter().map(|b| b.len() + 4).sum());
            for value in v {
                // A tensor element larger than 4 GiB cannot be in a response anyway.
                let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(value);
            }
            out
        }
    }
}

/// The output tensors of a ModelInferResponse with their values as `raw_output_contents`, in order.
pub(crate) fn encode_outputs(outputs: Vec<Tensor>) -> (Vec<InferOutputTensor>, Vec<Vec<u8>>) {
    let mut raw = Vec::with_capacity(outputs.len());
    let tensors = outputs
        .into_iter()
        .map(|tensor| {
            raw.push(encode_raw(&tensor.data));
            InferOutputTensor {
                name: tensor.name,
                datatype: tensor.data.datatype().name().to_owned(),
                shape: tensor.shape,
                parameters: Default::default(),
                contents: None,
            }
        })
        .collect();
    (tensors, raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn input(
        name: &str,
        datatype: &str,
        shape: Vec<i64>,
        contents: Option<InferTensorContents>,
    ) -> InferInputTensor {
        InferInputTensor {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape,
            parameters: Default::default(),
            contents,
        }
    }

    fn invalid_at(err: ServingError) -> (String, String) {
        match err {
            ServingError::InvalidArgument { field, message } => (field, message),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    /// One tensor of every type with its raw and typed forms.
    fn samples() -> Vec<(TensorData, InferTensorContents)> {
        vec![
            (
                TensorData::Fp32(vec![1.5, -2.25, f32::MAX, 0.1]),
                InferTensorContents {
                    fp32_contents: vec![1.5, -2.25, f32::MAX, 0.1],
                    ..Default::default()
                },
            ),
            (
                TensorData::Fp64(vec![1e-300, -2.5, 3.0, 0.1]),
                InferTensorContents {
                    fp64_contents: vec![1e-300, -2.5, 3.0, 0.1],
                    ..Default::default()
                },
            ),
            (
                TensorData::Int64(vec![i64::MIN, -1, 0, i64::MAX]),
                InferTensorContents {
                    int64_contents: vec![i64::MIN, -1, 0, i64::MAX],
                    ..Default::default()
                },
            ),
            (
                TensorData::Int32(vec![i32::MIN, -1, 7, i32::MAX]),
                InferTensorContents {
                    int_contents: vec![i32::MIN, -1, 7, i32::MAX],
                    ..Default::default()
                },
            ),
            (
                TensorData::Bool(vec![true, false, false, true]),
                InferTensorContents {
                    bool_contents: vec![true, false, false, true],
                    ..Default::default()
                },
            ),
            (
                TensorData::Bytes(vec![
                    b"a".to_vec(),
                    vec![],
                    vec![0, 255, 10],
                    "é".as_bytes().to_vec(),
                ]),
                InferTensorContents {
                    bytes_contents: vec![
                        b"a".to_vec(),
                        vec![],
                        vec![0, 255, 10],
                        "é".as_bytes().to_vec(),
                    ],
                    ..Default::default()
                },
            ),
        ]
    }

    #[test]
    fn typed_contents_of_every_type_decode() {
        for (data, contents) in samples() {
            let dtype = data.datatype();
            let tensors = decode_request(
                vec![input("x", dtype.name(), vec![2, 2], Some(contents))],
                vec![],
            )
            .unwrap();
            assert_eq!(
                tensors,
                vec![Tensor {
                    name: "x".into(),
                    shape: vec![2, 2],
                    data
                }],
                "{dtype}"
            );
        }
    }

    #[test]
    fn raw_contents_of_every_type_round_trip() {
        for (data, _) in samples() {
            let dtype = data.datatype();
            let raw = encode_raw(&data);
            let tensors =
                decode_request(vec![input("x", dtype.name(), vec![4, 1], None)], vec![raw])
                    .unwrap();
            assert_eq!(tensors[0].data, data, "{dtype}");
            assert_eq!(tensors[0].shape, vec![4, 1]);
        }
    }

    #[test]
    fn raw_layout_is_little_endian_and_length_prefixed() {
        assert_eq!(
            encode_raw(&TensorData::Fp32(vec![1.0])),
            vec![0, 0, 0x80, 0x3f]
        );
        assert_eq!(
            encode_raw(&TensorData::Int64(vec![258])),
            vec![2, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(encode_raw(&TensorData::Bool(vec![true, false])), vec![1, 0]);
        assert_eq!(
            encode_raw(&TensorData::Bytes(vec![b"ab".to_vec(), vec![]])),
            vec![2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]
        );
    }

    #[test]
    fn several_inputs_take_raw_contents_in_order() {
        let inputs = vec![
            input("a", "INT64", vec![2], None),
            input("b", "BYTES", vec![1], None),
        ];
        let raw = vec![
            encode_raw(&TensorData::Int64(vec![5, 6])),
            encode_raw(&TensorData::Bytes(vec![b"z".to_vec()])),
        ];
        let tensors = decode_request(inputs, raw).unwrap();
        assert_eq!(tensors[0].data, TensorData::Int64(vec![5, 6]));
        assert_eq!(tensors[1].data, TensorData::Bytes(vec![b"z".to_vec()]));
    }

    #[test]
    fn outputs_are_raw_with_names_types_and_shapes() {
        let outputs = vec![
            Tensor::new("label", vec![2], TensorData::Int64(vec![1, 2])).unwrap(),
            Tensor::new("p", vec![1, 2], TensorData::Fp32(vec![0.25, 0.75])).unwrap(),
        ];
        let (tensors, raw) = encode_outputs(outputs);
        assert_eq!(tensors.len(), 2);
        assert_eq!(
            (
                tensors[0].name.as_str(),
                tensors[0].datatype.as_str(),
                tensors[0].shape.clone()
            ),
            ("label", "INT64", vec![2])
        );
        assert_eq!(
            (
                tensors[1].name.as_str(),
                tensors[1].datatype.as_str(),
                tensors[1].shape.clone()
            ),
            ("p", "FP32", vec![1, 2])
        );
        assert!(tensors.iter().all(|t| t.contents.is_none()));
        assert_eq!(raw[0], encode_raw(&TensorData::Int64(vec![1, 2])));
        assert_eq!(raw[1], encode_raw(&TensorData::Fp32(vec![0.25, 0.75])));
    }

    #[test]
    fn an_unknown_datatype_names_the_input_and_the_supported_ones() {
        let err =
            decode_request(vec![input("x", "FP16", vec![1], None)], vec![vec![0, 0]]).unwrap_err();
        let (field, message) = invalid_at(err);
        assert_eq!(field, "inputs[0].datatype");
        assert!(
            message.contains("`x`") && message.contains("FP16") && message.contains("FP32, FP64"),
            "{message}"
        );
    }

    #[test]
    fn typed_contents_in_the_wrong_field_are_rejected() {
        let contents = InferTensorContents {
            int64_contents: vec![1, 2],
            ..Default::default()
        };
        let err =
            decode_request(vec![input("x", "FP32", vec![2], Some(contents))], vec![]).unwrap_err();
        let (field, message) = invalid_at(err);
        assert_eq!(field, "inputs[0].contents");
        assert!(
            message.contains("int64_contents is set") && message.contains("fp32_contents"),
            "{message}"
        );
    }

    #[test]
    fn typed_contents_must_match_the_shape() {
        let contents = InferTensorContents {
            fp64_contents: vec![1.0, 2.0, 3.0],
            ..Default::default()
        };
        let err = decode_request(vec![input("x", "FP64", vec![2, 2], Some(contents))], vec![])
            .unwrap_err();
        let (field, message) = invalid_at(err);
        assert_eq!(field, "inputs[0].contents.fp64_contents");
        assert!(
            message.contains("3 values") && message.contains("holds 4"),
            "{message}"
        );
    }

    #[test]
    fn raw_and_typed_contents_cannot_mix() {
        let contents = InferTensorContents {
            fp32_contents: vec![1.0],
            ..Default::default()
        };
        let inputs = vec![
            input("a", "FP32", vec![1], None),
            input("b", "FP32", vec![1], Some(contents)),
        ];
        let err = decode_request(inputs, vec![vec![0; 4], vec![0; 4]]).unwrap_err();
        assert_eq!(invalid_at(err).0, "inputs[1].contents");
    }

    #[test]
    fn raw_contents_must_have_one_entry_per_input() {
        let inputs = vec![
            input("a", "FP32", vec![1], None),
            input("b", "FP32", vec![1], None),
        ];
        let err = decode_request(inputs, vec![vec![0; 4]]).unwrap_err();
        let (field, message) = invalid_at(err);
        assert_eq!(field, "raw_input_contents");
        assert!(
            message.contains("1 raw_input_contents for 2 inputs"),
            "{message}"
        );
    }

    #[test]
    fn raw_lengths_must_match_the_shape() {
        let err = decode_request(
            vec![input("x", "FP32", vec![1, 4], None)],
            vec![vec![0; 12]],
        )
        .unwrap_err();
        let (field, message) = invalid_at(err);
        assert_eq!(field, "raw_input_contents[0]");
        assert!(
            message.contains("12 bytes") && message.contains("16 bytes"),
            "{message}"
        );
        let err =
            decode_request(vec![input("x", "INT64", vec![1], None)], vec![vec![0; 7]]).unwrap_err();
        assert!(invalid_at(err).1.contains("7 bytes"));
    }

    #[test]
    fn raw_bool_takes_only_zero_and_one() {
        let err =
            decode_request(vec![input("x", "BOOL", vec![2], None)], vec![vec![1, 2]]).unwrap_err();
        let (_, message) = invalid_at(err);
        assert!(message.contains("element 1 is byte 2"), "{message}");
    }

    #[test]
    fn raw_bytes_with_a_bad_prefix_are_rejected() {
        // Truncated length prefix.
        let err =
            decode_request(vec![input("s", "BYTES", vec![1], None)], vec![vec![1, 0]]).unwrap_err();
        assert!(invalid_at(err).1.contains("too few for its 4-byte"));
        // Length larger than what remains.
        let err = decode_request(
            vec![input("s", "BYTES", vec![1], None)],
            vec![vec![9, 0, 0, 0, b'a']],
        )
        .unwrap_err();
        assert!(invalid_at(err).1.contains("declares 9 bytes but 1 remain"));
        // Element count differs from the shape.
        let raw = encode_raw(&TensorData::Bytes(vec![b"a".to_vec()]));
        let err = decode_request(vec![input("s", "BYTES", vec![2], None)], vec![raw]).unwrap_err();
        assert!(
            invalid_at(err)
                .1
                .contains("1 BYTES elements but its shape holds 2")
        );
    }

    #[test]
    fn a_negative_dimension_is_rejected() {
        let err = decode_request(
            vec![input("x", "FP32", vec![-1, 4], None)],
            vec![vec![0; 16]],
        )
        .unwrap_err();
        let (field, message) = invalid_at(err);
        assert_eq!(field, "inputs[0].shape");
        assert!(message.contains("[-1, 4]"), "{message}");
    }

    #[test]
    fn an_input_without_values_or_sent_twice_is_rejected() {
        let err = decode_request(vec![input("x", "INT32", vec![2], None)], vec![]).unwrap_err();
        let (field, message) = invalid_at(err);
        assert_eq!(field, "inputs[0].contents");
        assert!(message.contains("int_contents"), "{message}");
        let contents = InferTensorContents {
            int_contents: vec![1],
            ..Default::default()
        };
        let inputs = vec![
            input("x", "INT32", vec![1], Some(contents.clone())),
            input("x", "INT32", vec![1], Some(contents)),
        ];
        assert_eq!(
            invalid_at(decode_request(inputs, vec![]).unwrap_err()).0,
            "inputs[1].name"
        );
    }

    #[test]
    fn an_empty_tensor_needs_no_values() {
        let tensors = decode_request(vec![input("x", "FP32", vec![0, 4], None)], vec![]).unwrap();
        assert_eq!(tensors[0].data, TensorData::Fp32(vec![]));
    }
}
