#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use super::*;
use crate::engine::find_library;
use crate::tensor::DataType;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/make_models.py");

/// The tools venv's Python with scikit-learn and skl2onnx.
fn python() -> PathBuf {
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Some(venv) = std::env::var_os("PLINTH_VENV") {
        venvs.push(venv.into());
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    venvs.push(home.join(".cache/plinth/tools/venv"));
    for venv in &venvs {
        let has_skl2onnx = std::fs::read_dir(venv.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|python| python.path().join("site-packages/skl2onnx").is_dir());
        if has_skl2onnx {
            return venv.join("bin/python");
        }
    }
    panic!(
        "no Python venv with scikit-learn, skl2onnx and onnxruntime in {venvs:?}: run `make tools` (or set PLINTH_VENV)"
    );
}

/// The fixture repository written by testdata/make_models.py, once per version of the script.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = std::fs::read(SCRIPT).unwrap();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        script.hash(&mut hasher);
        let dir = std::env::temp_dir().join(format!("plinth-serving-models-{:x}", hasher.finish()));
        if dir.join("expected.json").is_file() {
            return dir;
        }
        let staging = std::env::temp_dir().join(format!(
            "plinth-serving-models-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        let output = std::process::Command::new(python())
            .arg(SCRIPT)
            .arg(&staging)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "make_models.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Another test process may have won the race; either copy is the same.
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        assert!(dir.join("expected.json").is_file());
        dir
    })
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn engine() -> Engine {
    let library = find_library()
        .expect("no libonnxruntime.so: run `make tools` (or set ORT_DYLIB_PATH / PLINTH_VENV)");
    Engine::init(Some(&library), 1).unwrap()
}

fn manager_at(root: &Path, instances: usize, limits: LimitsConfig) -> Arc<ModelManager> {
    let repository =
        Repository::open(&format!("file://{}", root.display()), BTreeMap::new()).unwrap();
    ModelManager::new(repository, engine(), instances, limits)
}

fn manager() -> Arc<ModelManager> {
    manager_at(fixtures(), 2, LimitsConfig::default())
}

/// A repository of its own holding `model` with versions copied from fixtures (`(fixture, version)`).
fn repository_with(model: &str, versions: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, version) in versions {
        let target = dir.path().join(model).join(version);
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(fixtures().join(fixture)).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), target.join(file.file_name())).unwrap();
        }
    }
    dir
}

/// A tensor from expected.json's `{datatype, shape, data}`.
fn tensor(name: &str, value: &Value) -> Tensor {
    let datatype = DataType::from_name(value["datatype"].as_str().unwrap()).unwrap();
    let shape: Vec<i64> = value["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|dim| dim.as_i64().unwrap())
        .collect();
    let values = value["data"].as_array().unwrap();
    let data = match datatype {
        DataType::Bool => TensorData::Bool(values.iter().map(|v| v.as_bool().unwrap()).collect()),
        DataType::Int32 => {
            TensorData::Int32(values.iter().map(|v| v.as_i64().unwrap() as i32).collect())
        }
        DataType::Int64 => TensorData::Int64(values.iter().map(|v| v.as_i64().unwrap()).collect()),
        DataType::Fp32 => {
            TensorData::Fp32(values.iter().map(|v| v.as_f64().unwrap() as f32).collect())
        }
        DataType::Fp64 => TensorData::Fp64(values.iter().map(|v| v.as_f64().unwrap()).collect()),
        DataType::Bytes => TensorData::Bytes(
            values
                .iter()
                .map(|v| v.as_str().unwrap().as_bytes().to_vec())
                .collect(),
        ),
    };
    Tensor::new(name, shape, data).unwrap()
}

fn expected_inputs(model: &str, version: &str) -> Vec<Tensor> {
    let expected = expected();
    expected[model][version]["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| tensor(name, value))
        .collect()
}

/// Asserts the outputs equal expected.json's (floats within 1e-5).
#[track_caller]
fn assert_expected_outputs(model: &str, version: &str, outputs: &[Tensor]) {
    let expected = expected();
    let wanted = expected[model][version]["outputs"].as_object().unwrap();
    assert_eq!(outputs.len(), wanted.len(), "{outputs:?}");
    for output in outputs {
        let want = tensor(&output.name, &wanted[&output.name]);
        assert_eq!(output.shape, want.shape, "{}", output.name);
        if let Err(difference) = compare(&want, output, 1e-5) {
            panic!("{model}/{version} output `{}` {difference}", output.name);
        }
    }
}

fn iris_rows(rows: usize) -> Tensor {
    let data: Vec<f32> = (0..rows * 4)
        .map(|index| 1.0 + (index % 7) as f32)
        .collect();
    Tensor::new("input", vec![rows as i64, 4], TensorData::Fp32(data)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iris_outputs_equal_scikit_learn() {
    let manager = manager();
    for version in ["v1", "v2"] {
        let model = manager.load("iris", Some(version)).await.unwrap();
        assert_eq!(model.version, version);
        let outputs = model.infer(expected_inputs("iris", version)).await.unwrap();
        assert_eq!(outputs[0].name, "label");
        assert_eq!(outputs[1].name, "probabilities");
        assert_expected_outputs("iris", version, &outputs);
    }
    // The last load serves; `None` loads the latest complete version.
    assert_eq!(manager.get("iris", None).unwrap().version, "v2");
    manager.unload("iris", None).await.unwrap();
    assert_eq!(manager.load("iris", None).await.unwrap().version, "v2");
    let driver = manager.load("driver", None).await.unwrap();
    let outputs = driver.infer(expected_inputs("driver", "v1")).await.unwrap();
    assert_expected_outputs("driver", "v1", &outputs);
    assert_eq!(
        driver
            .spec
            .features
            .as_ref()
            .unwrap()
            .defaults
            .get("driver_hourly:acc_rate"),
        Some(&0.5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_model_round_trips_every_type() {
    let manager = manager();
    let model = manager.load("types", Some("1")).await.unwrap();
    let inputs = expected_inputs("types", "1");
    let outputs = model.infer(inputs.clone()).await.unwrap();
    assert_expected_outputs("types", "1", &outputs);
    for input in &inputs {
        let output = outputs
            .iter()
            .find(|output| output.name == format!("{}_out", input.name))
            .unwrap();
        assert_eq!(output.data, input.data, "{}", input.name);
        assert_eq!(output.shape, input.shape);
    }
    let sum = outputs.iter().find(|output| output.name == "sum").unwrap();
    assert_eq!(sum.data, TensorData::Fp64(vec![0.1 + 0.2, 1e10 - 1.0]));
    // Bytes that are not UTF-8 go in; BYTES with a NUL byte are refused, not truncated.
    let mut with_nul = inputs.clone();
    let bytes = with_nul
        .iter_mut()
        .find(|input| input.name == "bytes")
        .unwrap();
    bytes.data = TensorData::Bytes(vec![b"a\0b".to_vec(), b"c".to_vec()]);
    let err = model.infer(with_nul).await.unwrap_err();
    assert!(matches!(err, ServingError::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_versions_fail_with_a_reason_and_keep_the_serving_version() {
    let dir = repository_with(
        "m",
        &[
            ("iris/v1", "v1"),
            ("corrupt/v1", "v2"),
            ("wrongref/v1", "v3"),
        ],
    );
    let manager = manager_at(dir.path(), 1, LimitsConfig::default());
    manager.load("m", Some("v1")).await.unwrap();

    let err = manager.load("m", Some("v2")).await.unwrap_err();
    assert!(matches!(err, ServingError::BadModel { .. }), "{err}");
    assert!(err.to_string().contains("model `m` version `v2`"), "{err}");
    assert!(
        err.to_string()
            .contains("cannot load the artifact `model.onnx`"),
        "{err}"
    );
    assert_eq!(manager.get("m", None).unwrap().version, "v1");

    let err = manager.load("m", Some("v3")).await.unwrap_err();
    assert!(matches!(err, ServingError::BadModel { .. }), "{err}");
    assert!(
        err.to_string().contains("fails its reference check"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("output `label` element 0 is 0, the reference 1"),
        "{err}"
    );
    let serving = manager.get("m", None).unwrap();
    assert_eq!(serving.version, "v1");
    serving.infer(vec![iris_rows(2)]).await.unwrap();

    let err = manager.get("m", Some("v3")).unwrap_err();
    assert!(
        matches!(err, ServingError::FailedPrecondition { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("reference check"), "{err}");

    let statuses = manager.list("m").await.unwrap();
    assert_eq!(statuses.len(), 1);
    let states: Vec<(&str, VersionState, bool)> = statuses[0]
        .versions
        .iter()
        .map(|version| (version.version.as_str(), version.state, version.serving))
        .collect();
    assert_eq!(
        states,
        [
            ("v1", VersionState::Ready, true),
            ("v2", VersionState::Failed, false),
            ("v3", VersionState::Failed, false)
        ]
    );
    assert!(
        statuses[0].versions[1]
            .reason
            .as_ref()
            .unwrap()
            .contains("artifact")
    );

    // A model.yaml that does not parse names the file, line and column.
    std::fs::write(
        dir.path().join("m/v2/model.yaml"),
        "inputs: [{name: x, datatype: FLOAT, shape: [-1]}]\n",
    )
    .unwrap();
    let err = manager.load("m", Some("v2")).await.unwrap_err();
    assert!(err.to_string().contains("m/v2/model.yaml:1:30"), "{err}");
    assert!(err.to_string().contains("did you mean FP32"), "{err}");
    assert_eq!(manager.get("m", None).unwrap().version, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_that_does_not_match_model_yaml_is_a_bad_model() {
    let dir = repository_with(
        "m",
        &[("iris/v1", "v1"), ("iris/v1", "v2"), ("iris/v1", "v3")],
    );
    let spec = std::fs::read_to_string(dir.path().join("m/v1/model.yaml")).unwrap();
    std::fs::write(
        dir.path().join("m/v1/model.yaml"),
        spec.replace("name: input,", "name: features,")
            .replace("{\"input\":", "{\"features\":"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("m/v2/model.yaml"),
        spec.replace(
            "name: label, datatype: INT64",
            "name: label, datatype: INT32",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("m/v3/model.yaml"),
        spec.replace("shape: [-1, 4]", "shape: [-1, 5]")
            .replace("0.2]", "0.2, 1]"),
    )
    .unwrap();
    let manager = manager_at(dir.path(), 1, LimitsConfig::default());
    let err = manager.load("m", Some("v1")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the graph takes the input `input`"),
        "{err}"
    );
    let err = manager.load("m", Some("v2")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("declares the output `label` as INT32, but the graph's is INT64"),
        "{err}"
    );
    let err = manager.load("m", Some("v3")).await.unwrap_err();
    assert!(err.to_string().contains("[-1, 5]"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_models_and_versions_are_not_found() {
    let manager = manager();
    let err = manager.load("nope", None).await.unwrap_err();
    assert!(matches!(err, ServingError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("corrupt, driver, incomplete, iris"),
        "{err}"
    );
    let err = manager.load("iris", Some("v9")).await.unwrap_err();
    assert!(matches!(err, ServingError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("its versions are v1, v2"), "{err}");
    // Files without `_SUCCESS` are not a version.
    let err = manager.load("incomplete", Some("v1")).await.unwrap_err();
    assert!(matches!(err, ServingError::NotFound { .. }), "{err}");
    let err = manager.load("../etc", None).await.unwrap_err();
    assert!(matches!(err, ServingError::InvalidArgument { .. }), "{err}");
    let err = manager.get("iris", None).unwrap_err();
    assert!(matches!(err, ServingError::NotFound { .. }), "{err}");
    manager.load("iris", Some("v1")).await.unwrap();
    let err = manager.get("iris", Some("v2")).unwrap_err();
    assert!(
        err.to_string().contains("its loaded versions are: v1"),
        "{err}"
    );
    let err = manager.unload("iris", Some("v2")).await.unwrap_err();
    assert!(matches!(err, ServingError::NotFound { .. }), "{err}");
    let names: Vec<String> = manager
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|status| status.name)
        .collect();
    assert_eq!(
        names,
        [
            "corrupt",
            "driver",
            "incomplete",
            "iris",
            "types",
            "wrongref"
        ]
    );
    let incomplete = manager.list("inc").await.unwrap();
    assert!(incomplete[0].versions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_tensor() {
    let limits = LimitsConfig {
        max_batch_rows: 8,
        max_queued_requests: 16,
    };
    let manager = manager_at(fixtures(), 1, limits);
    let model = manager.load("iris", Some("v1")).await.unwrap();
    let check = |result: Result<Vec<Tensor>, ServingError>, field: &str, parts: &[&str]| {
        let err = result.unwrap_err();
        if !field.is_empty() {
            let ServingError::InvalidArgument { field: got, .. } = &err else {
                panic!("INVALID_ARGUMENT expected: {err}");
            };
            assert_eq!(got, field, "{err}");
        }
        for part in parts {
            assert!(err.to_string().contains(part), "{err} lacks {part}");
        }
    };
    let mut renamed = iris_rows(1);
    renamed.name = "x".into();
    check(
        model.infer(vec![renamed]).await,
        "x",
        &["has no input `x`", "`input` (FP32 [-1, 4])"],
    );
    check(model.infer(vec![]).await, "input", &["missing"]);
    check(
        model.infer(vec![iris_rows(1), iris_rows(1)]).await,
        "input",
        &["twice"],
    );
    let fp64 = Tensor::new("input", vec![1, 4], TensorData::Fp64(vec![1.0; 4])).unwrap();
    check(
        model.infer(vec![fp64]).await,
        "input.datatype",
        &["is FP64", "takes FP32"],
    );
    let narrow = Tensor::new("input", vec![2, 3], TensorData::Fp32(vec![1.0; 6])).unwrap();
    check(
        model.infer(vec![narrow]).await,
        "input.shape",
        &["[2, 3]", "[-1, 4]"],
    );
    let flat = Tensor::new("input", vec![4], TensorData::Fp32(vec![1.0; 4])).unwrap();
    check(model.infer(vec![flat]).await, "input.shape", &["[4]"]);
    let mut inconsistent = iris_rows(2);
    inconsistent.shape = vec![3, 4];
    check(
        model.infer(vec![inconsistent]).await,
        "input.shape",
        &["does not match"],
    );
    let err = model.infer(vec![iris_rows(9)]).await.unwrap_err();
    assert!(
        matches!(err, ServingError::ResourceExhausted { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("limits.max_batch_rows (8)"),
        "{err}"
    );
    assert_eq!(
        model.infer(vec![iris_rows(8)]).await.unwrap()[0].shape,
        vec![8]
    );
    // An empty batch is fine.
    assert_eq!(
        model.infer(vec![iris_rows(0)]).await.unwrap()[1].shape,
        vec![0, 3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_merged_into_one_engine_call() {
    let manager = manager_at(fixtures(), 1, LimitsConfig::default());
    let model = manager.load("driver", Some("v1")).await.unwrap();
    assert!(model.batchable());
    let rows = |start: usize| {
        let data: Vec<f32> = (0..3)
            .map(|column| (start * 3 + column) as f32 * 0.1)
            .collect();
        Tensor::new("input", vec![1, 3], TensorData::Fp32(data)).unwrap()
    };
    // Each row alone, for the answers.
    let mut alone = Vec::new();
    for index in 0..32 {
        alone.push(model.infer(vec![rows(index)]).await.unwrap());
    }
    let before = model.engine_calls();
    model.batcher.hold(true);
    let tasks: Vec<_> = (0..32)
        .map(|index| {
            let model = Arc::clone(&model);
            tokio::spawn(async move { model.infer(vec![rows(index)]).await })
        })
        .collect();
    while model.batcher.in_flight() < 32 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    model.batcher.hold(false);
    for (index, task) in tasks.into_iter().enumerate() {
        let outputs = task.await.unwrap().unwrap();
        // Batched matrix products may round differently in the last float bit.
        for (output, single) in outputs.iter().zip(&alone[index]) {
            assert_eq!(output.shape, single.shape);
            if let Err(difference) = compare(single, output, 1e-6) {
                panic!(
                    "row {index} got another row's answer: `{}` {difference}",
                    output.name
                );
            }
        }
    }
    assert_eq!(
        model.engine_calls() - before,
        1,
        "32 queued rows fit one batch of 64"
    );

    // Rows beyond max_batch_size (64) split: 40 + 40 cannot share a batch; 100 rows run alone.
    let before = model.engine_calls();
    model.batcher.hold(true);
    let sizes = [40usize, 40, 100, 10];
    // Queued one after the other, so the queue's order is the order of `sizes`.
    let mut tasks = Vec::new();
    for (queued, &size) in sizes.iter().enumerate() {
        let model_ref = Arc::clone(&model);
        let data = vec![0.5f32; size * 3];
        let input = Tensor::new("input", vec![size as i64, 3], TensorData::Fp32(data)).unwrap();
        tasks.push(tokio::spawn(
            async move { model_ref.infer(vec![input]).await },
        ));
        while model.batcher.in_flight() < queued + 1 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    model.batcher.hold(false);
    for (task, size) in tasks.into_iter().zip(sizes) {
        let outputs = task.await.unwrap().unwrap();
        assert_eq!(outputs[0].shape, vec![size as i64]);
        assert_eq!(outputs[1].shape, vec![size as i64, 2]);
    }
    // [40], [40], [100], [10]: the second 40 does not fit with the first, 100 runs alone, then 10.
    assert_eq!(model.engine_calls() - before, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_first_dimension_models_are_never_batched() {
    let dir = repository_with("m", &[("iris/v1", "v1")]);
    let spec = std::fs::read_to_string(dir.path().join("m/v1/model.yaml")).unwrap();
    let spec = spec
        .replace("shape: [-1, 4]", "shape: [2, 4]")
        .replace("shape: [-1]", "shape: [2]")
        .replace("shape: [-1, 3]", "shape: [2, 3]");
    std::fs::write(dir.path().join("m/v1/model.yaml"), spec).unwrap();
    let manager = manager_at(dir.path(), 1, LimitsConfig::default());
    let model = manager.load("m", None).await.unwrap();
    assert!(!model.batchable());
    let before = model.engine_calls();
    model.batcher.hold(true);
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let model = Arc::clone(&model);
            tokio::spawn(async move { model.infer(vec![iris_rows(2)]).await })
        })
        .collect();
    while model.batcher.in_flight() < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    model.batcher.hold(false);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(model.engine_calls() - before, 3);
    let err = model.infer(vec![iris_rows(3)]).await.unwrap_err();
    assert!(err.to_string().contains("[3, 4]"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_resource_exhausted() {
    let limits = LimitsConfig {
        max_batch_rows: 64,
        max_queued_requests: 2,
    };
    let manager = manager_at(fixtures(), 1, limits);
    let model = manager.load("iris", Some("v1")).await.unwrap();
    model.batcher.hold(true);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let model = Arc::clone(&model);
            tokio::spawn(async move { model.infer(vec![iris_rows(1)]).await })
        })
        .collect();
    while model.batcher.in_flight() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let err = model.infer(vec![iris_rows(1)]).await.unwrap_err();
    assert!(
        matches!(err, ServingError::ResourceExhausted { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("limits.max_queued_requests"),
        "{err}"
    );
    model.batcher.hold(false);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_switch_under_load_drops_no_request() {
    let dir = repository_with("m", &[("iris/v1", "v1"), ("iris/v2", "v2")]);
    let manager = manager_at(dir.path(), 2, LimitsConfig::default());
    manager.load("m", Some("v1")).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let manager = Arc::clone(&manager);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut versions = Vec::new();
                while !stop.load(Ordering::Relaxed) || versions.len() < 20 {
                    let model = manager.get("m", None).unwrap();
                    let outputs = model.infer(vec![iris_rows(3)]).await.unwrap();
                    assert_eq!(outputs[0].shape, vec![3]);
                    versions.push(model.version.clone());
                }
                versions
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    manager.load("m", Some("v2")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(manager.unload("m", Some("v1")).await.unwrap(), ["v1"]);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    manager.load("m", Some("v1")).await.unwrap();
    assert_eq!(manager.unload("m", Some("v1")).await.unwrap(), ["v1"]);
    // The serving version was unloaded: the newest loaded one serves.
    assert_eq!(manager.get("m", None).unwrap().version, "v2");
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeSet::new();
    for client in clients {
        seen.extend(client.await.unwrap());
    }
    assert!(seen.contains("v1") && seen.contains("v2"), "{seen:?}");
    assert_eq!(manager.unload("m", None).await.unwrap(), ["v2"]);
    assert!(matches!(
        manager.get("m", None),
        Err(ServingError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_loads_of_a_version_load_it_once() {
    let manager = manager();
    let loads: Vec<_> = (0..4)
        .map(|_| {
            let manager = Arc::clone(&manager);
            tokio::spawn(async move { manager.load("iris", Some("v1")).await.unwrap() })
        })
        .collect();
    let mut loaded = Vec::new();
    for load in loads {
        loaded.push(load.await.unwrap());
    }
    assert!(loaded.iter().all(|model| Arc::ptr_eq(model, &loaded[0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_models_loaded_at_start() {
    let manager = manager();
    assert!(!manager.is_ready());
    let refs = [
        crate::config::ModelRef::parse("iris:v1").unwrap(),
        crate::config::ModelRef::parse("driver").unwrap(),
    ];
    manager.load_at_start(&refs, false).await.unwrap();
    assert!(manager.is_ready());
    assert_eq!(manager.get("iris", None).unwrap().version, "v1");
    assert_eq!(manager.get("driver", None).unwrap().version, "v1");

    // A listed model that does not load fails the start.
    let failing = manager_at(fixtures(), 1, LimitsConfig::default());
    let refs = [crate::config::ModelRef::parse("corrupt").unwrap()];
    let err = failing.load_at_start(&refs, false).await.unwrap_err();
    assert!(matches!(err, ServingError::BadModel { .. }), "{err}");
    assert!(!failing.is_ready());

    // With `all`, the repository's other models are best effort: corrupt is marked failed, the rest serve.
    let all = manager_at(fixtures(), 1, LimitsConfig::default());
    let refs = [crate::config::ModelRef::parse("iris").unwrap()];
    all.load_at_start(&refs, true).await.unwrap();
    assert!(all.is_ready());
    assert_eq!(all.get("iris", None).unwrap().version, "v2");
    assert!(all.get("types", None).is_ok());
    assert!(all.get("corrupt", None).is_err());
}

#[test]
fn a_missing_or_broken_library_is_unavailable() {
    // Each test runs in its own process (nextest): ONNX Runtime is not loaded yet here.
    let err = Engine::init(Some(Path::new("/nonexistent/libonnxruntime.so")), 1).unwrap_err();
    assert!(matches!(err, ServingError::Unavailable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("/nonexistent/libonnxruntime.so: no such file"),
        "{err}"
    );
    assert!(err.to_string().contains("onnx.library"), "{err}");
    let err = Engine::init(Some(Path::new(SCRIPT)), 1).unwrap_err();
    assert!(matches!(err, ServingError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("make_models.py"), "{err}");
    // Loading the right one afterwards still works.
    engine();
}
