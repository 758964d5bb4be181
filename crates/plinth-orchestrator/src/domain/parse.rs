//! Pipeline files: YAML text in, validated [`Pipeline`]s out, or every mistake found at once, each
//! with the file, line and column and what to write instead.
//!
//! A file holds one pipeline per YAML document (documents are separated by `---`). The format is in
//! `docs/orchestrator.md`; in short: `name`, `owner`, `description`, `schedule` (cron or a preset) and
//! `timezone`, `start_date`, `catchup`, `max_active_runs`, `max_active_tasks`, `tags`, typed `params`,
//! `default_args` (defaults for every task) and `tasks`, a mapping of name to task (or a list of
//! tasks with `name:`). A task has `uses:` (its type), `with:` (that type's parameters, templates
//! allowed), `dependencies`, `trigger_rule`, retries, `execution_timeout`, `resources`, `env` and
//! `secrets`.
//!
//! Refused, all in one pass: malformed YAML; unknown keys (the nearest valid key is named); missing
//! required fields (with an example); values of the wrong type; unknown `uses:` (the valid ones are
//! listed) and `with:` keys that type does not take; unknown dependencies (the nearest task is named), a
//! task depending on itself, and cycles (the cycle is spelled out); duplicate task names, and duplicate
//! pipeline names across documents and files; bad cron or time zone; bare-number durations;
//! parameter defaults of the wrong type; templates naming undeclared parameters or unknown variables;
//! names outside `[a-z0-9][a-z0-9_-]*`; `max_active_runs: 0`; negative `retries`; empty commands.

use std::collections::{BTreeMap, BTreeSet};

use plinth_runtime::yaml::{Reader, SourceError};

use crate::domain::pipeline::Pipeline;

mod read;
mod task;
mod validate;

/// One pipeline file as given to [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineFile {
    /// The file's path, used in messages.
    pub path: String,
    /// The file's text.
    pub content: String,
}

/// A validated pipeline with the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPipeline {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// The file it was declared in.
    pub path: String,
    /// Its YAML document, as written (stored with each version and shown back to users).
    pub yaml: String,
}

/// The longest pipeline or task name.
pub const MAX_NAME_LENGTH: usize = 100;

/// Parses pipeline files into validated pipelines, in file and document order, or returns every
/// mistake found, sorted by file (in the given order), line and column.
pub fn parse(files: &[PipelineFile]) -> Result<Vec<ParsedPipeline>, Vec<SourceError>> {
    let mut declared = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let mut reader = Reader::new(&file.path, &file.content);
        for document in reader.documents() {
            declared.extend(read::pipeline(&mut reader, &document));
        }
        errors.extend(reader.into_errors());
    }
    validate::validate(&declared, &mut errors);
    let file_index = |path: &str| {
        files
            .iter()
            .position(|file| file.path == path)
            .unwrap_or(usize::MAX)
    };
    errors.sort_by_cached_key(|error| (file_index(&error.path), error.line, error.column));
    errors.dedup();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(declared
        .into_iter()
        .map(|declared| ParsedPipeline {
            pipeline: declared.pipeline,
            path: declared.path,
            yaml: declared.yaml,
        })
        .collect())
}

/// Whether `name` is a valid pipeline or task name: `[a-z0-9][a-z0-9_-]*`, at most
/// [`MAX_NAME_LENGTH`] characters.
pub fn is_valid_name(name: &str) -> bool {
    let mut characters = name.chars();
    name.len() <= MAX_NAME_LENGTH
        && characters
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && characters.all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || character == '_'
                || character == '-'
        })
}

/// The pipeline's schedule as shown to users (`0 3 * * 1 (Europe/Paris)`, `on demand`) and its tasks
/// in the order they can run.
pub fn summary(pipeline: &Pipeline) -> (String, Vec<&str>) {
    (schedule_text(pipeline), topological_order(pipeline))
}

/// The pipeline's schedule as shown to users: the cron and its time zone, or `on demand`.
pub fn schedule_text(pipeline: &Pipeline) -> String {
    match &pipeline.schedule {
        Some(schedule) => format!("{} ({})", schedule.cron, schedule.timezone),
        None => "on demand".to_owned(),
    }
}

/// The task names in an order where every task comes after its dependencies; among tasks that are
/// ready together, file order. Tasks in a cycle (refused by [`parse`]) come last, in file order.
pub fn topological_order(pipeline: &Pipeline) -> Vec<&str> {
    let index: BTreeMap<&str, usize> = pipeline
        .tasks
        .iter()
        .enumerate()
        .map(|(position, task)| (task.name.as_str(), position))
        .collect();
    let mut waiting_on: Vec<usize> = vec![0; pipeline.tasks.len()];
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); pipeline.tasks.len()];
    for (position, task) in pipeline.tasks.iter().enumerate() {
        let dependencies: BTreeSet<usize> = task
            .dependencies
            .iter()
            .filter_map(|dependency| index.get(dependency.as_str()).copied())
            .filter(|dependency| *dependency != position)
            .collect();
        waiting_on[position] = dependencies.len();
        for dependency in dependencies {
            downstream[dependency].push(position);
        }
    }
    let mut ready: BTreeSet<usize> = (0..pipeline.tasks.len())
        .filter(|position| waiting_on[*position] == 0)
        .collect();
    let mut order = Vec::with_capacity(pipeline.tasks.len());
    let mut placed = vec![false; pipeline.tasks.len()];
    while let Some(position) = ready.pop_first() {
        order.push(pipeline.tasks[position].name.as_str());
        placed[position] = true;
        for &next in &downstream[position] {
            waiting_on[next] -= 1;
            if waiting_on[next] == 0 {
                ready.insert(next);
            }
        }
    }
    order.extend(
        pipeline
            .tasks
            .iter()
            .zip(&placed)
            .filter(|(_, placed)| !**placed)
            .map(|(task, _)| task.name.as_str()),
    );
    order
}

#[cfg(test)]
mod tests;
