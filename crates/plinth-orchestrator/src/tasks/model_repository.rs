//! The model repository: `<root>/<model>/<version>/` holding what a training command wrote to
//! `$PLINTH_MODEL_DIR` (the artifact and its `model.yaml`), `_SUCCESS` put last. A version with
//! `_SUCCESS` is complete and never overwritten; a version without it is the leftover of an upload that
//! failed, and is replaced.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use object_store::buffered::BufWriter;
use object_store::{ObjectStoreExt as _, PutPayload};
use plinth_runtime::storage::Location;
use tokio::io::AsyncWriteExt as _;

use super::{Platform, SUCCESS_MARKER, TaskError};

/// Refuses a model name or version that cannot be one path segment: 1 to 128 of
/// `[a-zA-Z0-9._-]`, not starting with `.` or `_`.
pub(super) fn check_segment(value: &str, field: &str) -> Result<(), TaskError> {
    let valid = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with(['.', '_'])
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(TaskError::failed(format!(
            "`{field}` is `{value}`, which cannot name a model directory: use 1 to 128 of a-z, A-Z, 0-9, `.`, `_`, `-`, not starting with `.` or `_`"
        )))
    }
}

/// Uploads every file under `local_dir` (recursively, keeping relative paths) to
/// `<model repository root>/<model>/<version>/`, then `_SUCCESS`; returns the version's URL. Refuses
/// an empty directory (the training command wrote nothing to `$PLINTH_MODEL_DIR`) and a version that
/// is already stored.
pub async fn store_model(
    platform: &Platform,
    model: &str,
    version: &str,
    local_dir: &Path,
) -> Result<String, TaskError> {
    check_segment(model, "model")?;
    check_segment(version, "version")?;
    let files = local_files(local_dir).await?;
    if files.is_empty() {
        return Err(TaskError::failed(format!(
            "the training command wrote no file to $PLINTH_MODEL_DIR ({}); save the model there (for example model.onnx and model.yaml)",
            local_dir.display()
        )));
    }
    let location = platform.models.location("model repository")?;
    let version_dir = format!("{model}/{version}");
    let url = format!("{}/", location.url_of(&version_dir));
    let marker = location.path(&format!("{version_dir}/{SUCCESS_MARKER}"));
    match location.store.head(&marker).await {
        Ok(_) => {
            return Err(TaskError::failed(format!(
                "model `{model}` version `{version}` is already stored at {url}; stored versions never change: bump the version (`version:` of the train task)"
            )));
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(err) => {
            return Err(TaskError::retryable(format!(
                "cannot read the model repository at {url}: {err}"
            )));
        }
    }
    remove_leftovers(&location, &version_dir, &url).await?;
    for relative in &files {
        upload(&location, local_dir, relative, &version_dir, &url).await?;
    }
    location
        .store
        .put(&marker, PutPayload::default())
        .await
        .map_err(|err| {
            TaskError::retryable(format!(
                "cannot write {url}{SUCCESS_MARKER}: {err}; the version stays incomplete and is replaced on retry"
            ))
        })?;
    Ok(url)
}

/// The regular files under `dir`, as `/`-separated relative paths, sorted. Symbolic links are
/// followed; a directory that does not exist holds no file.
async fn local_files(dir: &Path) -> Result<Vec<String>, TaskError> {
    let root = dir.to_owned();
    let listed = tokio::task::spawn_blocking(move || {
        let mut files = Vec::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            let entries = match std::fs::read_dir(root.join(&relative)) {
                Ok(entries) => entries,
                Err(err)
                    if err.kind() == std::io::ErrorKind::NotFound
                        && relative.as_os_str().is_empty() =>
                {
                    return Ok(files);
                }
                Err(err) => return Err(format!("{}: {err}", root.join(&relative).display())),
            };
            for entry in entries {
                let entry = entry.map_err(|err| format!("{}: {err}", root.display()))?;
                let path = relative.join(entry.file_name());
                let metadata = std::fs::metadata(root.join(&path))
                    .map_err(|err| format!("{}: {err}", root.join(&path).display()))?;
                if metadata.is_dir() {
                    pending.push(path);
                } else if metadata.is_file() {
                    let text = path.to_str().ok_or_else(|| {
                        format!("{}: the file name is not UTF-8; rename it", path.display())
                    })?;
                    files.push(text.replace(std::path::MAIN_SEPARATOR, "/"));
                }
            }
        }
        files.sort();
        Ok(files)
    })
    .await
    .map_err(|err| TaskError::retryable(format!("listing the model directory failed: {err}")))?;
    listed.map_err(|reason| {
        TaskError::failed(format!(
            "cannot read the model directory $PLINTH_MODEL_DIR: {reason}"
        ))
    })
}

/// Deletes what a failed upload left under the version's directory.
async fn remove_leftovers(
    location: &Location,
    version_dir: &str,
    url: &str,
) -> Result<(), TaskError> {
    let prefix = location.path(version_dir);
    let mut listing = location.store.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let meta = match meta {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => break,
            Err(err) => {
                return Err(TaskError::retryable(format!(
                    "cannot list the model repository at {url}: {err}"
                )));
            }
        };
        location.store.delete(&meta.location).await.map_err(|err| {
            TaskError::retryable(format!(
                "cannot delete {} left by an earlier failed upload to {url}: {err}",
                meta.location
            ))
        })?;
    }
    Ok(())
}

/// Streams one file to the store (multipart when large).
async fn upload(
    location: &Location,
    local_dir: &Path,
    relative: &str,
    version_dir: &str,
    url: &str,
) -> Result<(), TaskError> {
    let source = local_dir.join(relative);
    let mut file = tokio::fs::File::open(&source)
        .await
        .map_err(|err| TaskError::failed(format!("cannot read {}: {err}", source.display())))?;
    let path = location.path(&format!("{version_dir}/{relative}"));
    let mut writer = BufWriter::new(location.store.clone(), path);
    let unwritable = |err: &dyn std::fmt::Display| {
        TaskError::retryable(format!("cannot write {url}{relative}: {err}"))
    };
    if let Err(err) = tokio::io::copy(&mut file, &mut writer).await {
        let _ = writer.abort().await;
        return Err(unwritable(&err));
    }
    writer.shutdown().await.map_err(|err| unwritable(&err))
}
