//! The model repository in the object store: `<root>/<name>/<version>/` holding `model.yaml`, the
//! artifact and `_SUCCESS`, written last by the orchestrator's `train` task. A version without
//! `_SUCCESS` is an upload in progress or one that failed, and is not listed. Versions are directory
//! names ordered naturally (`v2` before `v10`); the latest is the greatest.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;
use plinth_runtime::storage::{Location, Locations};

use crate::error::ServingError;

/// The marker a complete version holds.
pub const SUCCESS_MARKER: &str = "_SUCCESS";
/// The spec file of a version.
pub const SPEC_FILE: &str = "model.yaml";

/// The model repository at one root URL.
#[derive(Debug, Clone)]
pub struct Repository {
    location: Location,
}

impl Repository {
    /// The repository at `root` (`file:///abs/dir`, `s3://bucket/prefix`, `gs://...`), the store built
    /// with `options`. UNAVAILABLE when the store cannot be opened.
    pub fn open(root: &str, options: BTreeMap<String, String>) -> Result<Self, ServingError> {
        let location = Locations::new(options).get(root).map_err(|err| {
            ServingError::Unavailable {
                message: format!(
                    "cannot open the model repository at {root}: {}; check models.root and models.options",
                    err.message
                ),
            }
        })?;
        Ok(Self { location })
    }

    /// The repository over an already built location.
    pub fn at(location: Location) -> Self {
        Self { location }
    }

    /// The root URL.
    pub fn url(&self) -> &str {
        &self.location.url
    }

    /// The URL of `relative` under the root, as shown to users.
    pub fn url_of(&self, relative: &str) -> String {
        self.location.url_of(relative)
    }

    /// Every model name (a directory under the root), sorted. Complete versions are not checked.
    pub async fn models(&self) -> Result<Vec<String>, ServingError> {
        let listing = self
            .location
            .store
            .list_with_delimiter(Some(&self.location.prefix))
            .await;
        let listing = match listing {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(err) => return Err(self.unavailable("list the models of", "", &err)),
        };
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|path| path.filename().map(str::to_owned))
            .filter(|name| !name.starts_with(['.', '_']))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The complete versions of `name` (those holding `_SUCCESS`), in natural order; empty when the
    /// model does not exist.
    pub async fn versions(&self, name: &str) -> Result<Vec<String>, ServingError> {
        let prefix = self.location.path(name);
        let mut listing = self.location.store.list(Some(&prefix));
        let mut versions = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(err) => return Err(self.unavailable("list the versions of", name, &err)),
            };
            let Some(relative) = meta.location.prefix_match(&prefix) else {
                continue;
            };
            let parts: Vec<_> = relative.collect();
            if let [version, marker] = parts.as_slice()
                && marker.as_ref() == SUCCESS_MARKER
            {
                versions.push(version.as_ref().to_owned());
            }
        }
        versions.sort_by(|left, right| natural_cmp(left, right));
        Ok(versions)
    }

    /// The greatest complete version of `name`. NOT_FOUND listing the models when there is none.
    pub async fn latest(&self, name: &str) -> Result<String, ServingError> {
        let versions = self.versions(name).await?;
        match versions.last() {
            Some(version) => Ok(version.clone()),
            None => Err(self.model_not_found(name).await),
        }
    }

    /// Checks that `version` of `name` is complete. NOT_FOUND listing the complete versions (or the
    /// models) otherwise.
    pub async fn check_complete(&self, name: &str, version: &str) -> Result<(), ServingError> {
        let marker = self
            .location
            .path(&format!("{name}/{version}/{SUCCESS_MARKER}"));
        match self.location.store.head(&marker).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                let versions = self.versions(name).await?;
                if versions.is_empty() {
                    return Err(self.model_not_found(name).await);
                }
                Err(ServingError::not_found(format!(
                    "model `{name}` has no complete version `{version}` in {}; its versions are {} (a version counts once `_SUCCESS` is written)",
                    self.url(),
                    versions.join(", ")
                )))
            }
            Err(err) => Err(self.unavailable("read", &format!("{name}/{version}"), &err)),
        }
    }

    /// The text of `model.yaml` of `name` at `version`.
    pub async fn spec_text(&self, name: &str, version: &str) -> Result<String, ServingError> {
        let bytes = self.file(name, version, SPEC_FILE).await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            ServingError::bad_model(format!(
                "{} is not UTF-8 text; write model.yaml as UTF-8",
                self.url_of(&format!("{name}/{version}/{SPEC_FILE}"))
            ))
        })
    }

    /// The bytes of `file` in the version directory. BAD_MODEL when missing (the version is
    /// complete, so the file should be there), UNAVAILABLE when the store fails.
    pub async fn file(&self, name: &str, version: &str, file: &str) -> Result<Bytes, ServingError> {
        let relative = format!("{name}/{version}/{file}");
        let path = self.location.path(&relative);
        let result = match self.location.store.get(&path).await {
            Ok(result) => result.bytes().await,
            Err(err) => Err(err),
        };
        match result {
            Ok(bytes) => Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => Err(ServingError::bad_model(format!(
                "model `{name}` version `{version}` has no {file} at {}; the version directory must hold model.yaml and the artifact it names",
                self.url_of(&relative)
            ))),
            Err(err) => Err(self.unavailable("read", &relative, &err)),
        }
    }

    async fn model_not_found(&self, name: &str) -> ServingError {
        let models = match self.models().await {
            Ok(models) if models.is_empty() => "none".to_owned(),
            Ok(models) => models.join(", "),
            Err(err) => return err,
        };
        ServingError::not_found(format!(
            "model `{name}` has no complete version in the model repository {}; the models there are: {models}",
            self.url()
        ))
    }

    fn unavailable(&self, action: &str, relative: &str, err: &object_store::Error) -> ServingError {
        ServingError::Unavailable {
            message: format!(
                "cannot {action} {}: {err}; check that the object store answers",
                self.url_of(relative)
            ),
        }
    }
}

/// Natural order: runs of digits compare as numbers (`v2` < `v10`, `9` < `10`), the rest as text.
pub fn natural_cmp(left: &str, right: &str) -> Ordering {
    let mut left_chunks = chunks(left);
    let mut right_chunks = chunks(right);
    loop {
        match (left_chunks.next(), right_chunks.next()) {
            (None, None) => return left.cmp(right),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) => {
                let a_digits = a.starts_with(|c: char| c.is_ascii_digit());
                let b_digits = b.starts_with(|c: char| c.is_ascii_digit());
                let order = if a_digits && b_digits {
                    let a_trimmed = a.trim_start_matches('0');
                    let b_trimmed = b.trim_start_matches('0');
                    a_trimmed
                        .len()
                        .cmp(&b_trimmed.len())
                        .then_with(|| a_trimmed.cmp(b_trimmed))
                } else {
                    a.cmp(b)
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Splits into alternating runs of digits and non-digits.
fn chunks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let digits = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut versions = vec!["v10", "v2", "v1", "10", "9", "v1b", "a", "v01"];
        versions.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(versions, ["9", "10", "a", "v01", "v1", "v1b", "v2", "v10"]);
    }

    #[tokio::test]
    async fn lists_complete_versions_and_reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (version, complete) in [("v1", true), ("v10", true), ("v2", true), ("v3", false)] {
            let version_dir = root.join("m").join(version);
            std::fs::create_dir_all(&version_dir).unwrap();
            std::fs::write(version_dir.join("model.yaml"), format!("# {version}\n")).unwrap();
            if complete {
                std::fs::write(version_dir.join(SUCCESS_MARKER), b"").unwrap();
            }
        }
        std::fs::create_dir_all(root.join("other/1")).unwrap();
        let url = format!("file://{}", root.display());
        let repository = Repository::open(&url, BTreeMap::new()).unwrap();
        assert_eq!(repository.models().await.unwrap(), ["m", "other"]);
        assert_eq!(repository.versions("m").await.unwrap(), ["v1", "v2", "v10"]);
        assert_eq!(repository.latest("m").await.unwrap(), "v10");
        assert!(repository.versions("missing").await.unwrap().is_empty());
        assert_eq!(repository.spec_text("m", "v2").await.unwrap(), "# v2\n");
        repository.check_complete("m", "v1").await.unwrap();

        let err = repository.check_complete("m", "v3").await.unwrap_err();
        assert!(matches!(err, ServingError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("v1, v2, v10"), "{err}");
        let err = repository.latest("other").await.unwrap_err();
        assert!(
            err.to_string().contains("the models there are: m, other"),
            "{err}"
        );
        let err = repository.file("m", "v1", "model.onnx").await.unwrap_err();
        assert!(matches!(err, ServingError::BadModel { .. }), "{err}");
    }

    #[test]
    fn an_unusable_root_is_unavailable() {
        let err = Repository::open("ftp://host/x", BTreeMap::new()).unwrap_err();
        assert!(matches!(err, ServingError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("ftp://host/x"), "{err}");
    }
}
