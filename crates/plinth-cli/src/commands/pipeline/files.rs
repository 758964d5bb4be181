//! The pipeline files named on the command line: each file as given, each directory walked for `*.yaml`
//! and `*.yml`, read into the request's `PipelineFile`s.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use plinth_proto::orchestrator::v1 as pb;

/// The files under `paths`: each file as given, each directory walked (recursively, hidden entries
/// skipped) for `*.yaml` and `*.yml` in sorted order, so that the same tree always gives the same
/// request. A file named twice (itself and through its directory) is sent once.
pub(crate) fn pipeline_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).with_context(|| {
            format!(
                "cannot read {}: check the path (a pipeline file or a directory of them)",
                path.display()
            )
        })?;
        if metadata.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            if found.is_empty() {
                bail!(
                    "{} holds no *.yaml or *.yml file: point at the directory of your pipeline files",
                    path.display()
                );
            }
            found.sort();
            files.append(&mut found);
        } else {
            files.push(path.clone());
        }
    }
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(file.clone()));
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let hidden = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with('.'));
        if hidden {
            // .git, editor swap files and the like are not pipelines.
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads the files, each named as the user wrote its path, so that `file:line:column` errors point at
/// something the user can open.
pub(crate) fn read_pipeline_files(files: &[PathBuf]) -> anyhow::Result<Vec<pb::PipelineFile>> {
    files
        .iter()
        .map(|file| {
            let content = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "cannot read pipeline file {} (UTF-8 YAML expected)",
                    file.display()
                )
            })?;
            Ok(pb::PipelineFile {
                path: file.display().to_string(),
                content,
            })
        })
        .collect()
}
