"""Plinth model serving through tritonclient[grpc], an independent OIP V2 client.

Usage: serving_oip_grpc.py HOST:PORT EXPECTED_JSON

The server has iris:v1 and types loaded. Checks health, metadata, inference with raw contents (what
tritonclient sends) and typed contents (a hand-built ModelInferRequest on the client's stub), every
data type of the `types` model, and that bad requests fail with the right status and a clear message.
"""

import json
import sys

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

URL, EXPECTED = sys.argv[1], json.load(open(sys.argv[2]))
client = grpcclient.InferenceServerClient(url=URL)

NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32,
         "BOOL": np.bool_, "BYTES": np.object_}


def expected_array(entry):
    if entry["datatype"] == "BYTES":
        data = [s.encode() for s in entry["data"]]
        return np.array(data, dtype=np.object_).reshape(entry["shape"])
    return np.array(entry["data"], dtype=NUMPY[entry["datatype"]]).reshape(entry["shape"])


def assert_same(name, got, want):
    assert got is not None, f"{name}: no output"
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    if want.dtype.kind == "f":
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
        assert np.allclose(got, want, rtol=1e-6, atol=1e-6), f"{name}: {got} != {want}"
    else:
        assert (got == want).all(), f"{name}: {got} != {want}"


def expect_error(status, fragments, call):
    try:
        call()
    except (InferenceServerException, grpc.RpcError) as err:
        if isinstance(err, grpc.RpcError):
            got, message = str(err.code()), err.details()
        else:
            got, message = err.status(), err.message()
        assert got == f"StatusCode.{status}", f"{got} != {status}: {message}"
        for fragment in fragments:
            assert fragment in message, f"`{fragment}` not in `{message}`"
        print(f"  {status}: {message}")
        return
    raise AssertionError(f"expected {status} {fragments}, got success")


def infer_inputs(model, version="v1"):
    inputs = []
    for name, entry in EXPECTED[model][version]["inputs"].items():
        tensor = grpcclient.InferInput(name, entry["shape"], entry["datatype"])
        tensor.set_data_from_numpy(expected_array(entry))
        inputs.append(tensor)
    return inputs


# Health and metadata.
assert client.is_server_live()
assert client.is_server_ready()
metadata = client.get_server_metadata()
assert metadata.name == "plinth-serving", metadata
assert "model_repository" in metadata.extensions, metadata
assert client.is_model_ready("iris")
assert client.is_model_ready("iris", "v1")
assert not client.is_model_ready("iris", "v2"), "iris v2 is not loaded"
assert not client.is_model_ready("no-such-model")
model = client.get_model_metadata("iris", as_json=True)
assert model["name"] == "iris" and model["platform"] == "onnxruntime_onnx", model
assert model["versions"] == ["v1"], model
assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "4"]}], model
assert [o["name"] for o in model["outputs"]] == ["label", "probabilities"], model
assert [o["datatype"] for o in model["outputs"]] == ["INT64", "FP32"], model
print("health and metadata: ok")

# iris with raw contents (tritonclient's way), id echoed, both outputs.
iris = EXPECTED["iris"]["v1"]
result = client.infer("iris", infer_inputs("iris"), request_id="req-1")
response = result.get_response()
assert response.id == "req-1" and response.model_name == "iris" and response.model_version == "v1"
for name, entry in iris["outputs"].items():
    assert_same(name, result.as_numpy(name), expected_array(entry))
# Only the requested output, by explicit version.
result = client.infer("iris", infer_inputs("iris"), model_version="v1",
                      outputs=[grpcclient.InferRequestedOutput("probabilities")])
assert [o.name for o in result.get_response().outputs] == ["probabilities"]
assert_same("probabilities", result.as_numpy("probabilities"),
            expected_array(iris["outputs"]["probabilities"]))
print("iris raw contents: ok")


def typed_request(model, version, entries):
    request = service_pb2.ModelInferRequest(model_name=model, model_version=version, id="typed")
    for name, entry in entries.items():
        tensor = request.inputs.add(name=name, datatype=entry["datatype"], shape=entry["shape"])
        field = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents",
                 "INT32": "int_contents", "BOOL": "bool_contents",
                 "BYTES": "bytes_contents"}[entry["datatype"]]
        values = entry["data"]
        if entry["datatype"] == "BYTES":
            values = [s.encode() for s in values]
        getattr(tensor.contents, field).extend(values)
    return request


def raw_outputs(response):
    return grpcclient.InferResult(response)


# iris with typed contents.
response = client._client_stub.ModelInfer(typed_request("iris", "", iris["inputs"]))
assert response.id == "typed" and response.model_version == "v1"
for name, entry in iris["outputs"].items():
    assert_same(name, raw_outputs(response).as_numpy(name), expected_array(entry))
print("iris typed contents: ok")

# types: every data type, raw then typed.
types = EXPECTED["types"]["1"]
result = client.infer("types", infer_inputs("types", "1"))
for name, entry in types["outputs"].items():
    assert_same(name, result.as_numpy(name), expected_array(entry))
response = client._client_stub.ModelInfer(typed_request("types", "1", types["inputs"]))
for name, entry in types["outputs"].items():
    assert_same(name, raw_outputs(response).as_numpy(name), expected_array(entry))
print("types FP32/FP64/INT64/INT32/BOOL/BYTES raw and typed: ok")

# Bad requests.
rows = expected_array(iris["inputs"]["input"])
print("bad requests:")


def iris_with(name="input", datatype="FP32", data=rows, model="iris", version="", outputs=None):
    tensor = grpcclient.InferInput(name, list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    requested = [grpcclient.InferRequestedOutput(o) for o in outputs] if outputs else None
    return lambda: client.infer(model, [tensor], model_version=version, outputs=requested)


expect_error("INVALID_ARGUMENT", ["input", "shape"], iris_with(data=rows[:, :3].copy()))
expect_error("INVALID_ARGUMENT", ["input", "FP64"], iris_with(datatype="FP64", data=rows.astype(np.float64)))
expect_error("INVALID_ARGUMENT", ["wrong_name"], iris_with(name="wrong_name"))
expect_error("NOT_FOUND", ["no-such-model"], iris_with(model="no-such-model"))
expect_error("NOT_FOUND", ["v9"], iris_with(version="v9"))
expect_error("INVALID_ARGUMENT", ["outputs[0]", "nope", "label"], iris_with(outputs=["nope"]))
bad = service_pb2.ModelInferRequest(model_name="iris")
bad.inputs.add(name="input", datatype="FP16", shape=[1, 4])
bad.raw_input_contents.append(b"\x00" * 8)
expect_error("INVALID_ARGUMENT", ["FP16", "inputs[0]"], lambda: client._client_stub.ModelInfer(bad))
bad = typed_request("iris", "", {"input": {"datatype": "FP32", "shape": [1, 4], "data": [1.0, 2.0]}})
expect_error("INVALID_ARGUMENT", ["inputs[0]", "fp32_contents", "2 values"],
             lambda: client._client_stub.ModelInfer(bad))
bad = service_pb2.ModelInferRequest(model_name="iris")
bad.inputs.add(name="input", datatype="FP32", shape=[1, 4])
bad.raw_input_contents.append(b"\x00" * 12)
expect_error("INVALID_ARGUMENT", ["raw_input_contents[0]", "12 bytes"],
             lambda: client._client_stub.ModelInfer(bad))
expect_error("UNIMPLEMENTED", [], lambda: client.get_model_config("iris"))
print("all ok")
