"""Plinth model serving through tritonclient[http], an independent OIP V2 REST client.

Usage: serving_oip_http.py HOST:PORT EXPECTED_JSON

The server has iris:v1 and types loaded. Checks health, metadata, inference with binary tensor data
(tritonclient's default) and with JSON data, every data type of the `types` model, bad requests, and
the repository extension (index, load, unload).
"""

import json
import sys
import urllib.error
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

URL, EXPECTED = sys.argv[1], json.load(open(sys.argv[2]))
client = httpclient.InferenceServerClient(url=URL)

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
    if want.dtype == np.object_:
        # JSON BYTES come back as str, binary ones as bytes.
        got = np.array([g if isinstance(g, bytes) else str(g).encode() for g in got.flatten()],
                       dtype=np.object_).reshape(got.shape)
    if want.dtype.kind == "f":
        assert np.allclose(got.astype(want.dtype), want, rtol=1e-6, atol=1e-6), f"{name}: {got} != {want}"
    else:
        assert (got == want).all(), f"{name}: {got} != {want}"


def expect_error(status, fragments, call):
    try:
        call()
    except InferenceServerException as err:
        assert err.status() == str(status), f"{err.status()} != {status}: {err.message()}"
        for fragment in fragments:
            assert fragment in err.message(), f"`{fragment}` not in `{err.message()}`"
        print(f"  {status}: {err.message()}")
        return
    raise AssertionError(f"expected {status} {fragments}, got success")


def infer_inputs(model, version, binary):
    inputs = []
    for name, entry in EXPECTED[model][version]["inputs"].items():
        tensor = httpclient.InferInput(name, entry["shape"], entry["datatype"])
        tensor.set_data_from_numpy(expected_array(entry), binary_data=binary)
        inputs.append(tensor)
    return inputs


# Health and metadata.
assert client.is_server_live()
assert client.is_server_ready()
metadata = client.get_server_metadata()
assert metadata["name"] == "plinth-serving" and "model_repository" in metadata["extensions"], metadata
assert client.is_model_ready("iris") and client.is_model_ready("iris", "v1")
assert not client.is_model_ready("iris", "v2")
assert not client.is_model_ready("no-such-model")
model = client.get_model_metadata("iris")
assert model["name"] == "iris" and model["platform"] == "onnxruntime_onnx", model
assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}], model
assert client.get_model_metadata("types", "1")["versions"] == ["1"]
print("health and metadata: ok")

# iris and types: binary inputs and outputs (the default), JSON inputs and outputs, and mixed.
for model_name, version in [("iris", "v1"), ("types", "1")]:
    outputs = EXPECTED[model_name][version]["outputs"]
    for binary_in, binary_out in [(True, True), (False, False), (False, True), (True, False)]:
        requested = [httpclient.InferRequestedOutput(name, binary_data=binary_out) for name in outputs]
        result = client.infer(model_name, infer_inputs(model_name, version, binary_in),
                              model_version=version if binary_in else "", outputs=requested,
                              request_id="r-42")
        response = result.get_response()
        assert response["model_name"] == model_name and response["model_version"] == version, response
        assert response["id"] == "r-42", response
        for name, entry in outputs.items():
            assert_same(f"{model_name} {name} in:{binary_in} out:{binary_out}",
                        result.as_numpy(name), expected_array(entry))
    # No outputs named: tritonclient asks for every output as binary data.
    result = client.infer(model_name, infer_inputs(model_name, version, True))
    spec_order = [o["name"] for o in client.get_model_metadata(model_name, version)["outputs"]]
    assert [o["name"] for o in result.get_response()["outputs"]] == spec_order, result.get_response()
    assert sorted(spec_order) == sorted(outputs), spec_order
    for name, entry in outputs.items():
        assert_same(name, result.as_numpy(name), expected_array(entry))
print("iris and types, binary and JSON: ok")

# A hand-written JSON request with nested data, as a curl user would send it.
iris = EXPECTED["iris"]["v1"]
rows = expected_array(iris["inputs"]["input"])
body = json.dumps({"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                               "data": rows.tolist()}]}).encode()
request = urllib.request.Request(f"http://{URL}/v2/models/iris/infer", data=body,
                                 headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request))
label = [o for o in answer["outputs"] if o["name"] == "label"][0]
assert label["data"] == iris["outputs"]["label"]["data"], answer
print("plain JSON: ok")

# Bad requests: 400 for bad input, 404 for unknown models and versions, JSON {"error": ...}.
print("bad requests:")


def iris_with(name="input", datatype="FP32", data=rows, model="iris", version="", outputs=None, binary=True):
    tensor = httpclient.InferInput(name, list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary)
    requested = [httpclient.InferRequestedOutput(o) for o in outputs] if outputs else None
    return lambda: client.infer(model, [tensor], model_version=version, outputs=requested)


expect_error(400, ["input", "shape"], iris_with(data=rows[:, :3].copy()))
expect_error(400, ["input", "FP64"], iris_with(datatype="FP64", data=rows.astype(np.float64)))
expect_error(400, ["wrong_name"], iris_with(name="wrong_name", binary=False))
expect_error(404, ["no-such-model"], iris_with(model="no-such-model"))
expect_error(404, ["v9"], iris_with(version="v9"))
expect_error(400, ["outputs[0]", "nope"], iris_with(outputs=["nope"]))
for body, fragments in [
    (b"{not json", ["body"]),
    (json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                             "data": [1, 2, "x", 4]}]}).encode(), ["inputs[0].data", "element 2"]),
    (json.dumps({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                             "data": [1, 2, 3, 4]}]}).encode(), ["inputs[0].data", "holds 8"]),
]:
    try:
        urllib.request.urlopen(urllib.request.Request(
            f"http://{URL}/v2/models/iris/infer", data=body, headers={"Content-Type": "application/json"}))
        raise AssertionError(f"{body!r} succeeded")
    except urllib.error.HTTPError as err:
        assert err.code == 400, err.code
        message = json.load(err)["error"]
        assert all(f in message for f in fragments), message
        print(f"  400: {message}")

# The repository extension.
index = client.get_model_repository_index()
states = {(m["name"], m.get("version")): m.get("state") for m in index}
assert states[("iris", "v1")] == "READY", index
assert states[("iris", "v2")] == "UNAVAILABLE", index
assert not any(name == "incomplete" for name, _ in states), index
client.load_model("driver")
assert client.is_model_ready("driver")
client.unload_model("driver")
assert not client.is_model_ready("driver")
expect_error(404, ["no-such-model"], lambda: client.load_model("no-such-model"))
expect_error(400, ["corrupt"], lambda: client.load_model("corrupt"))
index = client.get_model_repository_index()
corrupt = [m for m in index if m["name"] == "corrupt"][0]
assert corrupt["state"] == "UNAVAILABLE" and corrupt.get("reason"), corrupt
expect_error(400, ["parameters.config"], lambda: client.load_model("iris", config="{}"))
assert client.is_model_ready("iris", "v1"), "a failed load leaves the model serving"
print("repository: ok")
print("all ok")
