#!/usr/bin/env python3
"""Writes the model repository the serving tests load, deterministically (fixed seeds).

Usage: make_models.py OUTDIR

OUTDIR/<name>/<version>/{model.yaml, model.onnx, _SUCCESS} for:
  iris/v1        scikit-learn LogisticRegression on iris (input FP32 [-1,4]; label INT64 [-1],
                 probabilities FP32 [-1,3])
  iris/v2        a 10-tree RandomForest on iris, same signature
  types/1        Identity ops over FP32, FP64, INT64, INT32, BOOL and BYTES inputs, plus `sum`, the row
                 sums of `fp64` (real compute)
  driver/v1      LogisticRegression on synthetic data (input FP32 [-1,3]) fed by three features
  corrupt/v1     a valid model.yaml next to a model.onnx of garbage bytes
  wrongref/v1    the iris LogisticRegression with a reference output it does not produce
  incomplete/v1  files but no _SUCCESS (ignored by the server)
and OUTDIR/expected.json: per model and version, inputs and the outputs onnxruntime computed for them,
so tests compare the server's answers with them.
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

# ONNX Runtime 1.32 runs these; newer opsets would not load on older runtimes.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
IR_VERSION = 9


def to_onnx(model, n_features):
    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(model): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.ir_version = min(onx.ir_version, IR_VERSION)
    # skl2onnx names the graph with a random UUID; a fixed name keeps the bytes reproducible.
    onx.graph.name = type(model).__name__
    # Fixed names whatever skl2onnx's defaults are.
    outputs = [o.name for o in onx.graph.output]
    rename = dict(zip(outputs, ["label", "probabilities"]))
    for node in onx.graph.node:
        node.output[:] = [rename.get(name, name) for name in node.output]
    for output in onx.graph.output:
        output.name = rename[output.name]
    return onx.SerializeToString()


def run(model_bytes, feeds):
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def flow(value):
    """A YAML flow value (JSON is valid YAML flow syntax)."""
    return json.dumps(value)


def floats(array):
    """Float values as short as they can be written and still read back as the same float32/float64."""
    if array.dtype == np.float32:
        return [[float(str(x)) for x in row] for row in array]
    return array.astype(np.float64).tolist()


def tensor_yaml(signature):
    lines = []
    for name, datatype, shape in signature:
        lines.append(f"  - {{name: {name}, datatype: {datatype}, shape: {flow(shape)}}}")
    return "\n".join(lines)


def write_version(root, name, version, files, complete=True):
    directory = os.path.join(root, name, version)
    os.makedirs(directory, exist_ok=True)
    for file_name, content in files.items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(os.path.join(directory, file_name), mode) as handle:
            handle.write(content)
    if complete:
        open(os.path.join(directory, "_SUCCESS"), "wb").close()


CLASSIFIER_IRIS = [
    ("input", "FP32", [-1, 4]),
    ("label", "INT64", [-1]),
    ("probabilities", "FP32", [-1, 3]),
]


def classifier_yaml(inputs, outputs, reference_inputs, reference_outputs, extra=""):
    return (
        "platform: onnx\n"
        "artifact: model.onnx\n"
        f"inputs:\n{tensor_yaml(inputs)}\n"
        f"outputs:\n{tensor_yaml(outputs)}\n"
        f"{extra}"
        "reference:\n"
        f"  inputs: {flow(reference_inputs)}\n"
        f"  outputs: {flow(reference_outputs)}\n"
        "  tolerance: 0.0001\n"
    )


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_models.py OUTDIR")
    root = sys.argv[1]
    os.makedirs(root, exist_ok=True)
    expected = {}

    iris = load_iris()
    x_iris = iris.data.astype(np.float32)
    y_iris = iris.target
    # A few rows of each class.
    rows = x_iris[[0, 1, 50, 51, 100, 101, 149]]

    def iris_version(model, version, name="iris", wrong=False):
        model.fit(x_iris, y_iris)
        model_bytes = to_onnx(model, 4)
        out = run(model_bytes, {"input": rows})
        reference_in = {"input": floats(rows[:2])}
        probabilities = out["probabilities"][:2]
        labels = out["label"][:2].tolist()
        if wrong:
            probabilities = probabilities[:, ::-1] + np.float32(0.25)
            labels = [label + 1 for label in labels]
        reference_out = {"label": labels, "probabilities": floats(probabilities)}
        spec = classifier_yaml(
            [CLASSIFIER_IRIS[0]], CLASSIFIER_IRIS[1:], reference_in, reference_out
        )
        write_version(root, name, version, {"model.yaml": spec, "model.onnx": model_bytes})
        expected.setdefault(name, {})[version] = {
            "inputs": {"input": {"datatype": "FP32", "shape": list(rows.shape),
                                 "data": rows.flatten().tolist()}},
            "outputs": {
                "label": {"datatype": "INT64", "shape": list(out["label"].shape),
                          "data": out["label"].flatten().tolist()},
                "probabilities": {"datatype": "FP32", "shape": list(out["probabilities"].shape),
                                  "data": out["probabilities"].flatten().tolist()},
            },
        }
        return model_bytes, spec

    iris_version(LogisticRegression(max_iter=500, random_state=0), "v1")
    iris_version(RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0), "v2")
    iris_version(LogisticRegression(max_iter=500, random_state=0), "v1", name="wrongref", wrong=True)
    lr_bytes, lr_spec = iris_version(
        LogisticRegression(max_iter=500, random_state=0), "v1", name="incomplete")
    # incomplete: written again without _SUCCESS.
    os.remove(os.path.join(root, "incomplete", "v1", "_SUCCESS"))
    del expected["incomplete"]
    write_version(root, "corrupt", "v1",
                  {"model.yaml": lr_spec, "model.onnx": b"this is not an ONNX model\x00\x01\x02"})

    # driver: three features, binary label.
    rng = np.random.default_rng(7)
    x_driver = rng.normal(size=(200, 3)).astype(np.float32)
    x_driver[:, 2] = rng.integers(0, 50, size=200).astype(np.float32)
    y_driver = (x_driver[:, 0] - x_driver[:, 1] + 0.05 * x_driver[:, 2] > 1.0).astype(np.int64)
    driver = LogisticRegression(max_iter=1000, random_state=0).fit(x_driver, y_driver)
    driver_bytes = to_onnx(driver, 3)
    driver_rows = np.array([[0.9, 0.5, 12.0], [0.1, 0.5, 3.0], [1.5, -0.5, 40.0]], dtype=np.float32)
    driver_out = run(driver_bytes, {"input": driver_rows})
    features = (
        "features:\n"
        "  service: driver_model_v1\n"
        "  entities: [driver_id]\n"
        "  input: input\n"
        "  names:\n"
        "    - driver_hourly:conv_rate\n"
        "    - driver_hourly:acc_rate\n"
        "    - driver_hourly:avg_daily_trips\n"
        "  defaults:\n"
        "    driver_hourly:acc_rate: 0.5\n"
        "batching:\n"
        "  max_batch_size: 64\n"
        "  max_delay: 1ms\n"
    )
    driver_spec = classifier_yaml(
        [("input", "FP32", [-1, 3])],
        [("label", "INT64", [-1]), ("probabilities", "FP32", [-1, 2])],
        {"input": floats(driver_rows[:1])},
        {"label": driver_out["label"][:1].tolist(),
         "probabilities": floats(driver_out["probabilities"][:1])},
        extra=features,
    )
    write_version(root, "driver", "v1", {"model.yaml": driver_spec, "model.onnx": driver_bytes})
    expected["driver"] = {"v1": {
        "inputs": {"input": {"datatype": "FP32", "shape": list(driver_rows.shape),
                             "data": driver_rows.flatten().tolist()}},
        "outputs": {
            "label": {"datatype": "INT64", "shape": list(driver_out["label"].shape),
                      "data": driver_out["label"].flatten().tolist()},
            "probabilities": {"datatype": "FP32",
                              "shape": list(driver_out["probabilities"].shape),
                              "data": driver_out["probabilities"].flatten().tolist()},
        },
    }}

    # types: Identity per type, plus the row sums of fp64.
    kinds = [
        ("fp32", "FP32", TensorProto.FLOAT, 2),
        ("fp64", "FP64", TensorProto.DOUBLE, 2),
        ("int64", "INT64", TensorProto.INT64, 2),
        ("int32", "INT32", TensorProto.INT32, 2),
        ("bool", "BOOL", TensorProto.BOOL, 1),
        ("bytes", "BYTES", TensorProto.STRING, 1),
    ]
    graph_inputs = [helper.make_tensor_value_info(n, t, ["batch", w]) for n, _, t, w in kinds]
    graph_outputs = [helper.make_tensor_value_info(f"{n}_out", t, ["batch", w])
                     for n, _, t, w in kinds]
    graph_outputs.append(helper.make_tensor_value_info("sum", TensorProto.DOUBLE, ["batch"]))
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n, _, _, _ in kinds]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes.append(helper.make_node("ReduceSum", ["fp64", "axes"], ["sum"], keepdims=0))
    graph = helper.make_graph(nodes, "types", graph_inputs, graph_outputs, initializer=[axes])
    types_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    types_model.ir_version = IR_VERSION
    onnx.checker.check_model(types_model)
    types_bytes = types_model.SerializeToString()
    types_inputs = {
        "fp32": np.array([[1.5, -2.25], [0.0, 3.0]], dtype=np.float32),
        "fp64": np.array([[0.1, 0.2], [1e10, -1.0]], dtype=np.float64),
        "int64": np.array([[1, -2], [2**40, 7]], dtype=np.int64),
        "int32": np.array([[3, -4], [2**30, 0]], dtype=np.int32),
        "bool": np.array([[True], [False]], dtype=np.bool_),
        "bytes": np.array([["hello"], ["wörld"]], dtype=object),
    }
    types_out = run(types_bytes, types_inputs)
    spec_inputs = [(n, d, [-1, w]) for n, d, _, w in kinds]
    spec_outputs = [(f"{n}_out", d, [-1, w]) for n, d, _, w in kinds] + [("sum", "FP64", [-1])]

    def jsonable(name, value):
        if value.dtype == object:
            return [[str(x) for x in row] for row in value.tolist()]
        if value.dtype in (np.float32, np.float64):
            return value.astype(np.float64).tolist()
        return value.tolist()

    reference_in = {n: jsonable(n, types_inputs[n][:1]) for n, _, _, _ in kinds}
    reference_out = {"sum": types_out["sum"][:1].tolist(),
                     "bytes_out": jsonable("bytes", types_out["bytes_out"][:1])}
    types_spec = (
        "platform: onnx\n"
        "artifact: model.onnx\n"
        f"inputs:\n{tensor_yaml(spec_inputs)}\n"
        f"outputs:\n{tensor_yaml(spec_outputs)}\n"
        "reference:\n"
        f"  inputs: {flow(reference_in)}\n"
        f"  outputs: {flow(reference_out)}\n"
        "batching:\n"
        "  max_batch_size: 16\n"
        "  max_delay: 2ms\n"
    )
    write_version(root, "types", "1", {"model.yaml": types_spec, "model.onnx": types_bytes})

    def entry(datatype, value):
        data = value.flatten().tolist()
        if value.dtype == object:
            data = [str(x) for x in data]
        return {"datatype": datatype, "shape": list(value.shape), "data": data}

    types_datatypes = {n: d for n, d, _, _ in kinds}
    expected["types"] = {"1": {
        "inputs": {n: entry(types_datatypes[n], v) for n, v in types_inputs.items()},
        "outputs": {name: entry(types_datatypes.get(name[:-4], "FP64"), value)
                    for name, value in types_out.items()},
    }}

    with open(os.path.join(root, "expected.json"), "w") as handle:
        json.dump(expected, handle, indent=1, sort_keys=True)
        handle.write("\n")


if __name__ == "__main__":
    main()
