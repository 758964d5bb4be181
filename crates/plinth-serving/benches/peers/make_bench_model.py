"""Trains the benchmark's scikit-learn model once and writes it for both servers.

usage: make_bench_model.py OUTDIR

OUTDIR/plinth/bench/1/{model.onnx,model.yaml,_SUCCESS}   Plinth's model repository (ONNX via skl2onnx)
OUTDIR/mlserver/bench/{model.joblib,model-settings.json} MLServer's model (mlserver-sklearn)
OUTDIR/mlserver/settings.json                           MLServer's server settings (ports set by the bench)

Plinth's model.yaml also names the features that feed it (view `bench_stats`, f0..f9, entity driver_id),
for the PredictByKey part of the bench.

The model: a RandomForestClassifier (20 trees, depth 8, n_jobs=1) on 10 synthetic features. Both servers
answer the `label` output (INT64) for FP32 rows [-1, 10]; MLServer's sklearn runtime calls `predict`.
"""

import json
import os
import sys

import joblib
import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

FEATURES = 10


def main(out):
    x, y = make_classification(n_samples=5000, n_features=FEATURES, n_informative=6, random_state=7)
    x = x.astype(np.float32)
    model = RandomForestClassifier(n_estimators=20, max_depth=8, n_jobs=1, random_state=7).fit(x, y)

    plinth = os.path.join(out, "plinth", "bench", "1")
    os.makedirs(plinth, exist_ok=True)
    onx = to_onnx(
        model,
        x[:1],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
        final_types=None,
    )
    # Name the input as the benchmark sends it.
    onx.graph.input[0].name, old = "input", onx.graph.input[0].name
    for node in onx.graph.node:
        node.input[:] = ["input" if name == old else name for name in node.input]
    with open(os.path.join(plinth, "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    reference = x[:2]
    with open(os.path.join(plinth, "model.yaml"), "w") as f:
        f.write(
            "platform: onnx\n"
            "artifact: model.onnx\n"
            "inputs:\n"
            f"  - {{name: input, datatype: FP32, shape: [-1, {FEATURES}]}}\n"
            "outputs:\n"
            "  - {name: label, datatype: INT64, shape: [-1]}\n"
            "  - {name: probabilities, datatype: FP32, shape: [-1, 2]}\n"
            "reference:\n"
            f"  inputs: {{input: {json.dumps(reference.tolist())}}}\n"
            f"  outputs: {{label: {json.dumps(model.predict(reference).tolist())}}}\n"
            "features:\n"
            "  service: bench_v1\n"
            "  entities: [driver_id]\n"
            "  input: input\n"
            f"  names: [{', '.join(f'bench_stats:f{i}' for i in range(FEATURES))}]\n"
            "batching: {max_batch_size: 64, max_delay: 1ms}\n"
        )
    open(os.path.join(plinth, "_SUCCESS"), "w").close()

    mls = os.path.join(out, "mlserver", "bench")
    os.makedirs(mls, exist_ok=True)
    joblib.dump(model, os.path.join(mls, "model.joblib"))
    with open(os.path.join(mls, "model-settings.json"), "w") as f:
        json.dump(
            {
                "name": "bench",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            },
            f,
        )
    with open(os.path.join(out, "sample.json"), "w") as f:
        json.dump({"rows": x[:64].tolist()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
