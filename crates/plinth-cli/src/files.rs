//! The YAML files named on a command line as `FILE|DIR...` (`plinth pipeline validate|apply`,
//! `plinth features plan|apply`): each file as given, each directory walked for `*.yaml` and `*.yml`,
//! read into memory with the paths as the user wrote them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// One file read: its path as the user wrote it, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlFile {
    /// The path, so that a service's `file:line:column` errors point at something the user can open.
    pub path: String,
    /// The file's UTF-8 text.
    pub content: String,
}

/// The files under `paths`: each file as given, each directory walked (recursively, hidden entries
/// skipped) for `*.yaml` and `*.yml` in sorted order, so that the same tree always gives the same
/// request. A file named twice (itself and through its directory) is kept once: it would otherwise
/// declare its objects twice. `what` names the files in errors, e.g. `pipeline` or `definition`.
pub fn yaml_files(paths: &[PathBuf], what: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).with_context(|| {
            format!(
                "cannot read {}: check the path (a {what} file or a directory of them)",
                path.display()
            )
        })?;
        if metadata.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            if found.is_empty() {
                bail!(
                    "{} holds no *.yaml or *.yml file: point at the directory of your {what} files",
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
            // .git, editor swap files and the like are not definitions.
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

/// Reads the files found by [`yaml_files`] under `paths`.
pub fn read_yaml_files(paths: &[PathBuf], what: &str) -> anyhow::Result<Vec<YamlFile>> {
    yaml_files(paths, what)?
        .iter()
        .map(|file| {
            let content = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "cannot read {what} file {} (UTF-8 YAML expected)",
                    file.display()
                )
            })?;
            Ok(YamlFile {
                path: file.display().to_string(),
                content,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{read_yaml_files, yaml_files};

    #[test]
    fn directories_give_their_yaml_files_sorted_and_once() {
        let dir = std::env::temp_dir().join(format!("plinth-cli-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        for file in [
            "b.yaml",
            "a.yml",
            "notes.txt",
            "nested/c.yaml",
            ".git/x.yaml",
            ".hidden.yaml",
        ] {
            std::fs::write(dir.join(file), "name: x\n").unwrap();
        }
        let files = yaml_files(&[dir.clone(), dir.join("b.yaml")], "pipeline").unwrap();
        assert_eq!(
            files,
            vec![
                dir.join("a.yml"),
                dir.join("b.yaml"),
                dir.join("nested/c.yaml")
            ]
        );
        let read = read_yaml_files(&[dir.join("a.yml")], "pipeline").unwrap();
        assert_eq!(read[0].path, dir.join("a.yml").display().to_string());
        assert_eq!(read[0].content, "name: x\n");
        // A hidden directory named on purpose is walked.
        assert_eq!(
            yaml_files(&[dir.join(".git")], "pipeline").unwrap(),
            [dir.join(".git/x.yaml")]
        );

        let empty = dir.join("nested/empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = yaml_files(std::slice::from_ref(&empty), "definition").unwrap_err();
        assert!(
            err.to_string().contains(
                "holds no *.yaml or *.yml file: point at the directory of your definition files"
            ),
            "{err}"
        );
        let err = yaml_files(&[dir.join("missing.yaml")], "pipeline").unwrap_err();
        assert!(
            err.to_string()
                .contains("check the path (a pipeline file or a directory of them)"),
            "{err}"
        );
        std::fs::write(dir.join("latin1.yaml"), [0xff, 0xfe]).unwrap();
        let err = read_yaml_files(&[dir.join("latin1.yaml")], "pipeline").unwrap_err();
        assert!(err.to_string().contains("UTF-8 YAML expected"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
