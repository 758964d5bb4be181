//! The REST inference request and response bodies: JSON (`inputs: [{name, shape, datatype, data}]`,
//! `data` flat or nested row-major), and Triton's binary tensor data extension, which
//! `tritonclient[http]` uses by default: the body is the JSON header (its length in the
//! `Inference-Header-Content-Length` header) followed by the tensors' raw bytes, one after the other in
//! the order of the tensors carrying `parameters.binary_data_size`.
//!
//! Outputs go back as binary data when the requested output says `binary_data: true`, or when it says
//! nothing and the request says `binary_data_output: true` (what `tritonclient[http]` sends when it
//! names no outputs); otherwise as JSON `data`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::codec;
use crate::error::ServingError;
use crate::tensor::{DataType, Tensor, TensorData};

/// The header that carries the JSON part's length when binary data follows.
pub(crate) const HEADER_LENGTH: &str = "inference-header-content-length";

/// A REST inference request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Option<Vec<OutputJson>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// A decoded REST inference request.
#[derive(Debug)]
pub(crate) struct InferRequest {
    /// The request id, echoed.
    pub(crate) id: Option<String>,
    /// The inputs.
    pub(crate) inputs: Vec<Tensor>,
    /// The outputs asked for, each with whether it goes back as binary data.
    pub(crate) outputs: Vec<(String, bool)>,
    /// Whether outputs not asked for by name go back as binary data.
    pub(crate) binary_by_default: bool,
}

/// Decodes a request body; `header_length` is the `Inference-Header-Content-Length` header.
pub(crate) fn decode_request(
    body: &[u8],
    header_length: Option<usize>,
) -> Result<InferRequest, ServingError> {
    let (head, mut binary) = match header_length {
        Some(len) if len <= body.len() => body.split_at(len),
        Some(len) => {
            return Err(ServingError::invalid(
                "Inference-Header-Content-Length",
                format!(
                    "{len} is larger than the body ({} bytes): send the length of the JSON part",
                    body.len()
                ),
            ));
        }
        None => (body, &[][..]),
    };
    let request: RequestJson = serde_json::from_slice(head).map_err(|err| {
        ServingError::invalid(
            "body",
            format!("not an inference request: {err}; send {{\"inputs\": [{{\"name\", \"shape\", \"datatype\", \"data\"}}]}}"),
        )
    })?;
    let binary_by_default = match request
        .parameters
        .as_ref()
        .map(|p| p.get("binary_data_output"))
    {
        None | Some(None) => false,
        Some(Some(value)) => value.as_bool().ok_or_else(|| {
            ServingError::invalid("parameters.binary_data_output", "must be true or false")
        })?,
    };
    let mut inputs: Vec<Tensor> = Vec::with_capacity(request.inputs.len());
    for (i, input) in request.inputs.into_iter().enumerate() {
        let field = format!("inputs[{i}]");
        if inputs.iter().any(|t| t.name == input.name) {
            return Err(ServingError::invalid(
                format!("{field}.name"),
                format!("input `{}` is sent twice: send each input once", input.name),
            ));
        }
        let dtype = codec::datatype(&field, &input.name, &input.datatype)?;
        let count = codec::elements(&field, &input.name, &input.shape)?;
        let binary_size = binary_size(&field, input.parameters.as_ref())?;
        let data = match (binary_size, input.data) {
            (Some(_), Some(_)) => {
                return Err(ServingError::invalid(
                    format!("{field}.data"),
                    format!(
                        "`{}` has both data and parameters.binary_data_size: send one",
                        input.name
                    ),
                ));
            }
            (Some(size), None) => {
                if size > binary.len() {
                    return Err(ServingError::invalid(
                        format!("{field}.parameters.binary_data_size"),
                        format!(
                            "`{}` declares {size} bytes of binary data but {} remain after the \
                             JSON header",
                            input.name,
                            binary.len()
                        ),
                    ));
                }
                let (bytes, rest) = binary.split_at(size);
                binary = rest;
                codec::decode_raw(
                    &format!("{field}.binary_data"),
                    &input.name,
                    dtype,
                    count,
                    bytes,
                )?
            }
            (None, Some(data)) => decode_data(&field, &input.name, dtype, count, &data)?,
            (None, None) if count == 0 => TensorData::with_capacity(dtype, 0),
            (None, None) => {
                return Err(ServingError::invalid(
                    format!("{field}.data"),
                    format!(
                        "`{}` has shape {:?} but no data: send `data` or binary data",
                        input.name, input.shape
                    ),
                ));
            }
        };
        inputs.push(Tensor {
            name: input.name,
            shape: input.shape,
            data,
        });
    }
    if !binary.is_empty() {
        return Err(ServingError::invalid(
            "body",
            format!(
                "{} bytes of binary data follow the JSON header that no input claims with \
                 parameters.binary_data_size",
                binary.len()
            ),
        ));
    }
    let mut outputs = Vec::new();
    for (i, output) in request.outputs.unwrap_or_default().into_iter().enumerate() {
        let field = format!("outputs[{i}].parameters");
        let mut binary = binary_by_default;
        for (key, value) in output.parameters.iter().flatten() {
            match key.as_str() {
                "binary_data" => {
                    binary = value.as_bool().ok_or_else(|| {
                        ServingError::invalid(
                            format!("{field}.binary_data"),
                            "must be true or false",
                        )
                    })?;
                }
                "classification" if value.as_u64() == Some(0) => {}
                "classification" => {
                    return Err(ServingError::invalid(
                        format!("{field}.classification"),
                        "the classification extension is not supported: ask for the output \
                         itself",
                    ));
                }
                other => {
                    return Err(ServingError::invalid(
                        format!("{field}.{other}"),
                        "unknown output parameter: only binary_data is supported",
                    ));
                }
            }
        }
        outputs.push((output.name, binary));
    }
    Ok(InferRequest {
        id: request.id.filter(|id| !id.is_empty()),
        inputs,
        outputs,
        binary_by_default,
    })
}

/// `parameters.binary_data_size` of an input.
fn binary_size(
    field: &str,
    parameters: Option<&Map<String, Value>>,
) -> Result<Option<usize>, ServingError> {
    let Some(value) = parameters.and_then(|p| p.get("binary_data_size")) else {
        return Ok(None);
    };
    value
        .as_u64()
        .and_then(|size| usize::try_from(size).ok())
        .map(Some)
        .ok_or_else(|| {
            ServingError::invalid(
                format!("{field}.parameters.binary_data_size"),
                format!("{value} is not a byte count"),
            )
        })
}

/// The values of JSON `data`, flat or nested, row-major.
fn decode_data(
    field: &str,
    tensor: &str,
    dtype: DataType,
    count: usize,
    data: &Value,
) -> Result<TensorData, ServingError> {
    let mut values = TensorData::with_capacity(dtype, count.min(1 << 20));
    let mut element = 0usize;
    flatten(data, &mut |value| {
        let ok = match (&mut values, value) {
            (TensorData::Bool(v), Value::Bool(b)) => {
                v.push(*b);
                true
            }
            (TensorData::Int32(v), Value::Number(n)) => {
                match n.as_i64().and_then(|x| i32::try_from(x).ok()) {
                    Some(x) => {
                        v.push(x);
                        true
                    }
                    None => false,
                }
            }
            (TensorData::Int64(v), Value::Number(n)) => match n.as_i64() {
                Some(x) => {
                    v.push(x);
                    true
                }
                None => false,
            },
            (TensorData::Fp32(v), Value::Number(n)) => match n.as_f64() {
                Some(x) => {
                    v.push(x as f32);
                    true
                }
                None => false,
            },
            (TensorData::Fp64(v), Value::Number(n)) => match n.as_f64() {
                Some(x) => {
                    v.push(x);
                    true
                }
                None => false,
            },
            (TensorData::Bytes(v), Value::String(s)) => {
                v.push(s.as_bytes().to_vec());
                true
            }
            _ => false,
        };
        if !ok {
            return Err(ServingError::invalid(
                format!("{field}.data"),
                format!(
                    "`{tensor}` element {element} is {value}, not {}",
                    json_kind(dtype)
                ),
            ));
        }
        element += 1;
        Ok(())
    })?;
    if values.len() != count {
        return Err(ServingError::invalid(
            format!("{field}.data"),
            format!(
                "`{tensor}` has {} values but its shape holds {count}: send as many values as the \
                 product of the shape",
                values.len()
            ),
        ));
    }
    Ok(values)
}

fn flatten(
    value: &Value,
    push: &mut dyn FnMut(&Value) -> Result<(), ServingError>,
) -> Result<(), ServingError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|item| flatten(item, push)),
        scalar => push(scalar),
    }
}

/// What JSON value a data type takes, for messages.
fn json_kind(dtype: DataType) -> &'static str {
    match dtype {
        DataType::Bool => "a BOOL (true or false)",
        DataType::Int32 => "an INT32 (an integer in -2^31..2^31)",
        DataType::Int64 => "an INT64 (an integer in -2^63..2^63)",
        DataType::Fp32 => "an FP32 (a number)",
        DataType::Fp64 => "an FP64 (a number)",
        DataType::Bytes => "a BYTES element (a string)",
    }
}

/// A REST inference response.
#[derive(Debug, Serialize)]
struct ResponseJson<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<OutputTensorJson>,
}

#[derive(Debug, Serialize)]
struct OutputTensorJson {
    name: String,
    datatype: &'static str,
    shape: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinaryParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataJson>,
}

#[derive(Debug, Serialize)]
struct BinaryParameters {
    binary_data_size: usize,
}

/// Values serialized with their own type, so FP32 prints as the shortest f32 (`0.1`, not
/// `0.10000000149011612`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum DataJson {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<String>),
}

/// An encoded response: the body, and the JSON part's length when binary data follows it.
#[derive(Debug)]
pub(crate) struct EncodedResponse {
    pub(crate) body: Vec<u8>,
    pub(crate) header_length: Option<usize>,
}

/// Encodes a response; `binary[i]` says whether `outputs[i]` goes as binary data.
pub(crate) fn encode_response(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    outputs: Vec<Tensor>,
    binary: &[bool],
) -> Result<EncodedResponse, ServingError> {
    let mut tail = Vec::new();
    let mut tensors = Vec::with_capacity(outputs.len());
    for (i, tensor) in outputs.into_iter().enumerate() {
        let datatype = tensor.data.datatype().name();
        let (parameters, data) = if binary.get(i).copied().unwrap_or(false) {
            let raw = codec::encode_raw(&tensor.data);
            let size = raw.len();
            tail.extend_from_slice(&raw);
            (
                Some(BinaryParameters {
                    binary_data_size: size,
                }),
                None,
            )
        } else {
            (None, Some(data_json(&tensor.name, tensor.data)?))
        };
        tensors.push(OutputTensorJson {
            name: tensor.name,
            datatype,
            shape: tensor.shape,
            parameters,
            data,
        });
    }
    let response = ResponseJson {
        model_name,
        model_version,
        id,
        outputs: tensors,
    };
    let mut body = serde_json::to_vec(&response)
        .map_err(|err| ServingError::internal(format!("cannot encode the response: {err}")))?;
    if tail.is_empty() && !binary.iter().any(|b| *b) {
        return Ok(EncodedResponse {
            body,
            header_length: None,
        });
    }
    let header_length = body.len();
    body.extend_from_slice(&tail);
    Ok(EncodedResponse {
        body,
        header_length: Some(header_length),
    })
}

fn data_json(name: &str, data: TensorData) -> Result<DataJson, ServingError> {
    Ok(match data {
        TensorData::Bool(v) => DataJson::Bool(v),
        TensorData::Int32(v) => DataJson::Int32(v),
        TensorData::Int64(v) => DataJson::Int64(v),
        TensorData::Fp32(v) => DataJson::Fp32(v),
        TensorData::Fp64(v) => DataJson::Fp64(v),
        TensorData::Bytes(v) => DataJson::Bytes(
            v.into_iter()
                .enumerate()
                .map(|(i, bytes)| {
                    String::from_utf8(bytes).map_err(|_| {
                        ServingError::invalid(
                            "outputs",
                            format!(
                                "output `{name}` element {i} is not UTF-8 text, which JSON cannot \
                                 carry: request it with parameters.binary_data = true"
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn invalid_at(err: ServingError) -> (String, String) {
        match err {
            ServingError::InvalidArgument { field, message } => (field, message),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    fn decode(body: Value) -> Result<InferRequest, ServingError> {
        decode_request(&serde_json::to_vec(&body).unwrap(), None)
    }

    #[test]
    fn json_data_of_every_type_decodes_flat_or_nested() {
        let body = json!({
            "id": "r1",
            "inputs": [
                {"name": "fp32", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2.5], [-3, 0.1]]},
                {"name": "fp64", "shape": [2, 2], "datatype": "FP64", "data": [1, 2.5, -3, 0.1]},
                {"name": "int64", "shape": [2], "datatype": "INT64", "data": [-9007199254740993i64, 4]},
                {"name": "int32", "shape": [1, 2], "datatype": "INT32", "data": [[-2147483648i64, 7]]},
                {"name": "bool", "shape": [2, 1], "datatype": "BOOL", "data": [[true], [false]]},
                {"name": "bytes", "shape": [2], "datatype": "BYTES", "data": ["héllo", ""]}
            ]
        });
        let request = decode(body).unwrap();
        assert_eq!(request.id.as_deref(), Some("r1"));
        let data: Vec<TensorData> = request.inputs.iter().map(|t| t.data.clone()).collect();
        assert_eq!(
            data,
            vec![
                TensorData::Fp32(vec![1.0, 2.5, -3.0, 0.1]),
                TensorData::Fp64(vec![1.0, 2.5, -3.0, 0.1]),
                TensorData::Int64(vec![-9007199254740993, 4]),
                TensorData::Int32(vec![i32::MIN, 7]),
                TensorData::Bool(vec![true, false]),
                TensorData::Bytes(vec!["héllo".as_bytes().to_vec(), vec![]]),
            ]
        );
        assert_eq!(request.inputs[0].shape, vec![2, 2]);
        assert!(request.outputs.is_empty() && !request.binary_by_default);
    }

    #[test]
    fn binary_tensor_data_follows_the_json_header() {
        let a = codec::encode_raw(&TensorData::Fp32(vec![1.0, 2.0]));
        let b = codec::encode_raw(&TensorData::Bytes(vec![b"\x00\xff".to_vec()]));
        let head = json!({
            "inputs": [
                {"name": "a", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": a.len()}},
                {"name": "j", "shape": [1], "datatype": "INT64", "data": [3]},
                {"name": "b", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": b.len()}}
            ],
            "outputs": [{"name": "x", "parameters": {"binary_data": true}}, {"name": "y"}],
            "parameters": {"binary_data_output": false, "sequence_id": 0}
        });
        let mut body = serde_json::to_vec(&head).unwrap();
        let header_length = body.len();
        body.extend_from_slice(&a);
        body.extend_from_slice(&b);
        let request = decode_request(&body, Some(header_length)).unwrap();
        assert_eq!(request.inputs[0].data, TensorData::Fp32(vec![1.0, 2.0]));
        assert_eq!(request.inputs[1].data, TensorData::Int64(vec![3]));
        assert_eq!(
            request.inputs[2].data,
            TensorData::Bytes(vec![vec![0, 255]])
        );
        assert_eq!(
            request.outputs,
            vec![("x".to_owned(), true), ("y".to_owned(), false)]
        );
    }

    #[test]
    fn binary_data_output_is_the_default_for_outputs() {
        let body = json!({
            "inputs": [],
            "outputs": [{"name": "x"}, {"name": "y", "parameters": {"binary_data": false}}],
            "parameters": {"binary_data_output": true}
        });
        let request = decode(body).unwrap();
        assert!(request.binary_by_default);
        assert_eq!(
            request.outputs,
            vec![("x".to_owned(), true), ("y".to_owned(), false)]
        );
    }

    #[test]
    fn bad_binary_data_is_rejected() {
        let head = json!({"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]});
        let mut body = serde_json::to_vec(&head).unwrap();
        let len = body.len();
        body.extend_from_slice(&[0; 4]);
        let (field, message) = invalid_at(decode_request(&body, Some(len)).unwrap_err());
        assert_eq!(field, "inputs[0].parameters.binary_data_size");
        assert!(
            message.contains("declares 8 bytes") && message.contains("4 remain"),
            "{message}"
        );
        // Bytes nobody claims.
        body.extend_from_slice(&[0; 8]);
        let (field, message) = invalid_at(decode_request(&body, Some(len)).unwrap_err());
        assert_eq!(field, "body");
        assert!(message.contains("4 bytes of binary data"), "{message}");
        // A header length past the end.
        let (field, _) = invalid_at(decode_request(&body, Some(body.len() + 1)).unwrap_err());
        assert_eq!(field, "Inference-Header-Content-Length");
        // Wrong size for the shape.
        let head = json!({"inputs": [{"name": "a", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]});
        let mut body = serde_json::to_vec(&head).unwrap();
        let len = body.len();
        body.extend_from_slice(&[0; 8]);
        let (field, message) = invalid_at(decode_request(&body, Some(len)).unwrap_err());
        assert_eq!(field, "inputs[0].binary_data");
        assert!(
            message.contains("8 bytes") && message.contains("12 bytes"),
            "{message}"
        );
    }

    #[test]
    fn bad_json_data_names_the_input_and_element() {
        let cases = [
            (
                json!({"name": "x", "shape": [2], "datatype": "FP32", "data": [1, "a"]}),
                "inputs[0].data",
                "element 1 is \"a\", not an FP32",
            ),
            (
                json!({"name": "x", "shape": [1], "datatype": "INT32", "data": [3000000000u64]}),
                "inputs[0].data",
                "not an INT32",
            ),
            (
                json!({"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}),
                "inputs[0].data",
                "element 0 is 1.5, not an INT64",
            ),
            (
                json!({"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}),
                "inputs[0].data",
                "not a BOOL",
            ),
            (
                json!({"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}),
                "inputs[0].data",
                "not a BYTES",
            ),
            (
                json!({"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}),
                "inputs[0].data",
                "3 values but its shape holds 4",
            ),
            (
                json!({"name": "x", "shape": [1], "datatype": "UINT8", "data": [1]}),
                "inputs[0].datatype",
                "`UINT8`",
            ),
            (
                json!({"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}),
                "inputs[0].shape",
                "[-1]",
            ),
            (
                json!({"name": "x", "shape": [1], "datatype": "FP32"}),
                "inputs[0].data",
                "no data",
            ),
        ];
        for (input, want_field, want_message) in cases {
            let (field, message) = invalid_at(decode(json!({"inputs": [input]})).unwrap_err());
            assert_eq!(field, want_field, "{message}");
            assert!(
                message.contains(want_message),
                "{message} lacks {want_message}"
            );
            assert!(message.contains("`x`"), "{message}");
        }
    }

    #[test]
    fn malformed_requests_are_rejected() {
        let (field, message) = invalid_at(decode_request(b"{", None).unwrap_err());
        assert_eq!(field, "body");
        assert!(message.contains("EOF"), "{message}");
        let (_, message) = invalid_at(
            decode(json!({"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}))
                .unwrap_err(),
        );
        assert!(message.contains("missing field `shape`"), "{message}");
        let (field, _) = invalid_at(decode(json!({"inputs": [], "outputs": [{"name": "y", "parameters": {"classification": 3}}]})).unwrap_err());
        assert_eq!(field, "outputs[0].parameters.classification");
        let (field, _) = invalid_at(
            decode(json!({"inputs": [], "parameters": {"binary_data_output": "yes"}})).unwrap_err(),
        );
        assert_eq!(field, "parameters.binary_data_output");
    }

    #[test]
    fn responses_are_json_or_binary_per_output() {
        let outputs = vec![
            Tensor::new("label", vec![2], TensorData::Int64(vec![1, 2])).unwrap(),
            Tensor::new("p", vec![1, 2], TensorData::Fp32(vec![0.1, 0.9])).unwrap(),
            Tensor::new("s", vec![1], TensorData::Bytes(vec![b"ok".to_vec()])).unwrap(),
            Tensor::new("b", vec![1], TensorData::Bool(vec![true])).unwrap(),
        ];
        let encoded =
            encode_response("iris", "v1", Some("r1"), outputs.clone(), &[false; 4]).unwrap();
        assert_eq!(encoded.header_length, None);
        let body: Value = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(
            body,
            json!({
                "model_name": "iris", "model_version": "v1", "id": "r1",
                "outputs": [
                    {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 2]},
                    {"name": "p", "datatype": "FP32", "shape": [1, 2], "data": [0.1, 0.9]},
                    {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["ok"]},
                    {"name": "b", "datatype": "BOOL", "shape": [1], "data": [true]}
                ]
            })
        );
        // FP32 prints as the shortest f32.
        assert!(String::from_utf8_lossy(&encoded.body).contains("[0.1,0.9]"));

        let encoded =
            encode_response("iris", "v1", None, outputs, &[true, false, true, false]).unwrap();
        let len = encoded.header_length.unwrap();
        let head: Value = serde_json::from_slice(&encoded.body[..len]).unwrap();
        assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 16);
        assert!(head["outputs"][0].get("data").is_none());
        assert_eq!(head["outputs"][2]["parameters"]["binary_data_size"], 6);
        assert_eq!(head["outputs"][1]["data"], json!([0.1, 0.9]));
        assert!(head.get("id").is_none());
        let mut tail = codec::encode_raw(&TensorData::Int64(vec![1, 2]));
        tail.extend(codec::encode_raw(&TensorData::Bytes(vec![b"ok".to_vec()])));
        assert_eq!(&encoded.body[len..], &tail[..]);
    }

    #[test]
    fn non_utf8_bytes_need_binary_data() {
        let outputs = vec![Tensor::new("s", vec![1], TensorData::Bytes(vec![vec![0xff]])).unwrap()];
        let (field, message) =
            invalid_at(encode_response("m", "1", None, outputs, &[false]).unwrap_err());
        assert_eq!(field, "outputs");
        assert!(
            message.contains("`s`") && message.contains("binary_data"),
            "{message}"
        );
    }
}
