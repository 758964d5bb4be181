//! Arrow columns to and from Open Inference Protocol tensors.

use std::sync::Arc;

use arrow::array::{Array, AsArray as _, Float64Array, Int64Array};
use arrow::datatypes::DataType;
use plinth_proto::inference::InferTensorContents;

use super::*;
use crate::tasks::tensor::{InputType, OutputTensor, decode_output, encode_input};

#[test]
fn input_tensor_is_row_major_little_endian_and_refuses_nulls() {
    let f1: arrow::array::ArrayRef = Arc::new(Float64Array::from(vec![1.5, 2.5]));
    let f2: arrow::array::ArrayRef = Arc::new(Int64Array::from(vec![10, 20]));
    let names = ["f1".to_owned(), "f2".to_owned()];
    let raw = encode_input(&[f1.clone(), f2.clone()], &names, InputType::Fp32).unwrap();
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
        .collect();
    assert_eq!(values, [1.5, 10.0, 2.5, 20.0]);
    let with_null: arrow::array::ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
    let (message, _) = failure(encode_input(&[f1, with_null], &names, InputType::Fp64));
    assert!(
        message.contains("column `f2` has a null value (row 1"),
        "{message}"
    );
    assert_eq!(
        InputType::infer(&[&DataType::Int32, &DataType::Int64]),
        InputType::Int64
    );
    assert_eq!(InputType::infer(&[&DataType::Float32]), InputType::Fp32);
    assert_eq!(
        InputType::infer(&[&DataType::Float32, &DataType::Int64]),
        InputType::Fp64
    );
}

#[test]
fn output_tensors_decode_from_typed_and_raw_contents() {
    let contents = InferTensorContents {
        int_contents: vec![1, -2, 3],
        ..Default::default()
    };
    let typed = OutputTensor {
        name: "class",
        datatype: "INT8",
        shape: &[3],
        raw: None,
        contents: Some(&contents),
    };
    let column = decode_output(&typed, 3).unwrap();
    assert_eq!(column.data_type(), &DataType::Int8);
    assert_eq!(column.len(), 3);

    let mut raw = Vec::new();
    for text in ["yes", "no"] {
        raw.extend_from_slice(&u32::try_from(text.len()).unwrap().to_le_bytes());
        raw.extend_from_slice(text.as_bytes());
    }
    let bytes = OutputTensor {
        name: "label",
        datatype: "BYTES",
        shape: &[2, 1],
        raw: Some(&raw),
        contents: None,
    };
    let column = decode_output(&bytes, 2).unwrap();
    assert_eq!(column.as_string::<i32>().value(1), "no");

    let truncated = OutputTensor {
        raw: Some(&raw[..5]),
        ..bytes
    };
    let (message, _) = failure(decode_output(&truncated, 2));
    assert!(message.contains("truncated raw BYTES"), "{message}");

    let wrong_rows = OutputTensor {
        name: "score",
        datatype: "FP32",
        shape: &[3],
        raw: Some(&[0; 12]),
        contents: None,
    };
    let (message, _) = failure(decode_output(&wrong_rows, 2));
    assert!(
        message.contains("model output `score` has shape [3]"),
        "{message}"
    );

    let half = OutputTensor {
        name: "half",
        datatype: "FP16",
        shape: &[1],
        raw: Some(&[0; 2]),
        contents: None,
    };
    let (message, _) = failure(decode_output(&half, 1));
    assert!(
        message.contains("datatype FP16, which batch-score cannot store"),
        "{message}"
    );
}
