//! `store_model`: what a training command wrote, stored as an immutable model version.

use super::support::Dirs;
use super::*;

fn model_dir(dirs: &Dirs, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = dirs
        .dir
        .path()
        .join(format!("model-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    for (relative, content) in files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

#[tokio::test]
async fn store_model_uploads_every_file_recursively_and_puts_success_last() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let local = model_dir(
        &dirs,
        &[
            ("model.onnx", "onnx bytes"),
            ("model.yaml", "inputs: []"),
            ("assets/vocab/words.txt", "a\nb\n"),
        ],
    );
    let url = store_model(&platform, "churn", "v1", &local).await.unwrap();
    assert_eq!(url, format!("file://{}/churn/v1/", dirs.models.display()));
    assert_eq!(url, platform.model_url("churn", "v1").unwrap());
    let stored = dirs.models.join("churn/v1");
    assert_eq!(
        std::fs::read_to_string(stored.join("model.onnx")).unwrap(),
        "onnx bytes"
    );
    assert_eq!(
        std::fs::read_to_string(stored.join("assets/vocab/words.txt")).unwrap(),
        "a\nb\n"
    );
    assert!(stored.join("_SUCCESS").exists());
}

#[tokio::test]
async fn store_model_refuses_an_empty_or_missing_model_directory() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let empty = model_dir(&dirs, &[]);
    std::fs::create_dir_all(empty.join("only/directories")).unwrap();
    let (message, retryable) = failure(store_model(&platform, "churn", "v1", &empty).await);
    assert!(
        message.contains("wrote no file to $PLINTH_MODEL_DIR"),
        "{message}"
    );
    assert!(!retryable);
    let missing = dirs.dir.path().join("never-created");
    let (message, _) = failure(store_model(&platform, "churn", "v1", &missing).await);
    assert!(message.contains("wrote no file"), "{message}");
    assert!(!dirs.models.join("churn/v1").exists());
}

#[tokio::test]
async fn store_model_refuses_to_overwrite_a_stored_version() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let first = model_dir(&dirs, &[("model.onnx", "first")]);
    store_model(&platform, "churn", "v1", &first).await.unwrap();
    let second = model_dir(&dirs, &[("model.onnx", "second")]);
    let (message, retryable) = failure(store_model(&platform, "churn", "v1", &second).await);
    assert!(message.contains("already stored"), "{message}");
    assert!(message.contains("bump the version"), "{message}");
    assert!(!retryable);
    assert_eq!(
        std::fs::read_to_string(dirs.models.join("churn/v1/model.onnx")).unwrap(),
        "first"
    );
    store_model(&platform, "churn", "v2", &second)
        .await
        .unwrap();
}

#[tokio::test]
async fn store_model_replaces_what_a_failed_upload_left() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let leftover = dirs.models.join("churn/v1");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("stale.bin"), "half written").unwrap();
    let local = model_dir(&dirs, &[("model.onnx", "complete")]);
    store_model(&platform, "churn", "v1", &local).await.unwrap();
    assert!(!leftover.join("stale.bin").exists());
    assert!(leftover.join("model.onnx").exists());
    assert!(leftover.join("_SUCCESS").exists());
}

#[tokio::test]
async fn store_model_refuses_names_that_are_not_one_path_segment() {
    let dirs = Dirs::new();
    let platform = dirs.platform();
    let local = model_dir(&dirs, &[("model.onnx", "x")]);
    let (message, _) = failure(store_model(&platform, "../etc", "v1", &local).await);
    assert!(message.contains("`model` is `../etc`"), "{message}");
    let (message, _) = failure(store_model(&platform, "churn", "", &local).await);
    assert!(message.contains("`version` is ``"), "{message}");
}
