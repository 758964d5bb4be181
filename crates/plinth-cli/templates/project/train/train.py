"""Trains the @name@ churn model on a Plinth training set.

The orchestrator's `train` task runs this with:
  PLINTH_TRAINING_SET  the training set's lake URL (file:///..., s3://...), Parquet written by the
                       feature store: customer_id, event_timestamp, churned, <view>__<feature> columns
  PLINTH_MODEL_DIR     an empty directory: model.onnx and model.yaml go there; the orchestrator stores
                       them in the model repository when this script exits 0

Run it by hand the same way: PLINTH_TRAINING_SET=file:///... PLINTH_MODEL_DIR=/tmp/m python train/train.py
"""

import os
import sys

import numpy as np

VIEW = "@name@_customer_stats"
FEATURES = ["orders_7d", "avg_basket", "days_since_last_order"]
LABEL = "churned"
ENTITY = "customer_id"
FEATURE_SERVICE = "@name@_v1"


def open_dataset(url):
    """The Parquet dataset at `url`: a local path, file://, or s3:// (the endpoint and credentials from
    AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ..., which the orchestrator's local executor sets from the lake's
    options; on Kubernetes, the pod's credentials)."""
    import pyarrow.dataset as ds
    import pyarrow.fs as fs

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        scheme, _, host = endpoint.partition("://")
        filesystem = fs.S3FileSystem(
            endpoint_override=host,
            scheme=scheme,
            region=os.environ.get("AWS_REGION", "us-east-1"),
        )
        return ds.dataset(url[len("s3://"):], format="parquet", filesystem=filesystem)
    return ds.dataset(url, format="parquet")


def load(url):
    """The feature matrix (float32, NaN where the training set has no value) and the labels."""
    table = open_dataset(url).to_table(
        columns=[f"{VIEW}__{name}" for name in FEATURES] + [LABEL]
    )
    columns = [
        table.column(f"{VIEW}__{name}").to_numpy(zero_copy_only=False).astype(np.float64)
        for name in FEATURES
    ]
    x = np.column_stack(columns).astype(np.float32)
    y = table.column(LABEL).to_numpy(zero_copy_only=False).astype(np.int64)
    return x, y


def fit(x, y):
    """A fitted model and the per-feature defaults (medians) that stand in for missing values."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(x) == 0:
        raise ValueError("the training set is empty: are there labels, and features before them?")
    if len(np.unique(y)) < 2:
        raise ValueError(f"the labels hold one class only ({np.unique(y)}); a classifier needs both")
    defaults = np.nan_to_num(np.nanmedian(x, axis=0)).astype(np.float32)
    x = np.where(np.isnan(x), defaults, x)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    return model, defaults


def export(model, defaults, x, out_dir):
    """Writes model.onnx and model.yaml (inputs, outputs, features, reference pair) to out_dir."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options={LogisticRegression: {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    reference = np.where(np.isnan(x[:2]), defaults, x[:2]).astype(np.float32)
    names = ", ".join(f"{VIEW}:{name}" for name in FEATURES)
    default_map = ", ".join(f"{VIEW}:{name}: {float(value)!r}" for name, value in zip(FEATURES, defaults))
    with open(os.path.join(out_dir, "model.yaml"), "w") as f:
        f.write(
            f"""inputs:
  - {{name: input, datatype: FP32, shape: [-1, {len(FEATURES)}]}}
outputs:
  - {{name: label, datatype: INT64, shape: [-1]}}
  - {{name: probabilities, datatype: FP32, shape: [-1, 2]}}
features:
  service: {FEATURE_SERVICE}
  entities: [{ENTITY}]
  input: input
  names: [{names}]
  defaults: {{{default_map}}}
reference:
  inputs: {{input: {reference.tolist()}}}
  outputs: {{label: {model.predict(reference).tolist()}}}
"""
        )


def main():
    url = os.environ.get("PLINTH_TRAINING_SET")
    out_dir = os.environ.get("PLINTH_MODEL_DIR")
    if not url or not out_dir:
        sys.exit("set PLINTH_TRAINING_SET and PLINTH_MODEL_DIR (the orchestrator's train task does)")
    x, y = load(url)
    model, defaults = fit(x, y)
    filled = np.where(np.isnan(x), defaults, x)
    accuracy = float((model.predict(filled) == y).mean())
    print(f"trained on {len(y)} rows ({int(y.sum())} churned): training accuracy {accuracy:.3f}")
    export(model, defaults, x, out_dir)
    print(f"wrote model.onnx and model.yaml to {out_dir}")


if __name__ == "__main__":
    main()
