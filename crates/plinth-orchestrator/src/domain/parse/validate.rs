//! Checks across tasks and pipelines: unique names, known dependencies, no cycles.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use plinth_runtime::yaml::{Location, SourceError, nearest};

use super::read::Declared;

/// Adds the mistakes between the tasks of each pipeline and between pipelines to `errors`.
pub(super) fn validate(declared: &[Declared], errors: &mut Vec<SourceError>) {
    let mut pipelines: BTreeMap<&str, &Location> = BTreeMap::new();
    for pipeline in declared {
        let name = pipeline.pipeline.name.as_str();
        if name.is_empty() {
            continue;
        }
        if let Some(first) = pipelines.get(name) {
            errors.push(SourceError::at(
                &pipeline.name_at,
                format!("pipeline `{name}` is declared twice, first at {first}; pipeline names are unique across files, so rename one"),
            ));
        } else {
            pipelines.insert(name, &pipeline.name_at);
        }
        check_tasks(pipeline, errors);
    }
}

fn check_tasks(declared: &Declared, errors: &mut Vec<SourceError>) {
    let pipeline = &declared.pipeline;
    let mut names: BTreeMap<&str, &Location> = BTreeMap::new();
    for (task, place) in pipeline.tasks.iter().zip(&declared.tasks) {
        if let Some(first) = names.get(task.name.as_str()) {
            errors.push(SourceError::at(
                &place.name_at,
                format!(
                    "task `{}` is declared twice in pipeline `{}`, first at {first}; rename one",
                    task.name, pipeline.name
                ),
            ));
        } else {
            names.insert(&task.name, &place.name_at);
        }
    }
    let all: Vec<&str> = pipeline
        .tasks
        .iter()
        .map(|task| task.name.as_str())
        .collect();
    for (task, place) in pipeline.tasks.iter().zip(&declared.tasks) {
        let mut seen = BTreeSet::new();
        for (dependency, at) in task.dependencies.iter().zip(&place.dependencies) {
            if *dependency == task.name {
                errors.push(SourceError::at(
                    at,
                    format!("task `{dependency}` depends on itself; remove `{dependency}` from its dependencies"),
                ));
            } else if !names.contains_key(dependency.as_str()) {
                let others: Vec<&str> = all
                    .iter()
                    .copied()
                    .filter(|name| *name != task.name)
                    .collect();
                let hint = match nearest(dependency, &others) {
                    Some(near) => format!("did you mean `{near}`? "),
                    None => String::new(),
                };
                errors.push(SourceError::at(
                    at,
                    format!(
                        "task `{}` depends on unknown task `{dependency}`; {hint}the tasks of pipeline `{}` are {}",
                        task.name,
                        pipeline.name,
                        all.join(", ")
                    ),
                ));
            } else if !seen.insert(dependency.as_str()) {
                errors.push(SourceError::at(
                    at,
                    format!(
                        "task `{}` lists `{dependency}` twice in its dependencies; remove one",
                        task.name
                    ),
                ));
            }
        }
    }
    check_cycles(declared, errors);
}

/// Reports each cycle of dependencies once, spelled out from its first task in file order.
fn check_cycles(declared: &Declared, errors: &mut Vec<SourceError>) {
    let pipeline = &declared.pipeline;
    let index: BTreeMap<&str, usize> = pipeline
        .tasks
        .iter()
        .enumerate()
        .map(|(position, task)| (task.name.as_str(), position))
        .collect();
    // Edges from a task to its (known, other) dependencies.
    let edges: Vec<Vec<usize>> = pipeline
        .tasks
        .iter()
        .enumerate()
        .map(|(position, task)| {
            task.dependencies
                .iter()
                .filter_map(|dependency| index.get(dependency.as_str()).copied())
                .filter(|dependency| *dependency != position)
                .collect()
        })
        .collect();
    // Peel off tasks whose dependencies are all peeled: what remains is in a cycle or depends on one.
    let mut remaining_dependencies: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); edges.len()];
    for (task, dependencies) in edges.iter().enumerate() {
        for &dependency in dependencies {
            dependents[dependency].push(task);
        }
    }
    let mut done = vec![false; edges.len()];
    let mut ready: VecDeque<usize> = (0..edges.len())
        .filter(|task| remaining_dependencies[*task] == 0)
        .collect();
    while let Some(task) = ready.pop_front() {
        done[task] = true;
        for &dependent in &dependents[task] {
            remaining_dependencies[dependent] -= 1;
            if remaining_dependencies[dependent] == 0 {
                ready.push_back(dependent);
            }
        }
    }
    let mut reported = vec![false; edges.len()];
    for start in 0..edges.len() {
        if done[start] || reported[start] {
            continue;
        }
        let Some(cycle) = shortest_cycle(start, &edges, &done) else {
            continue;
        };
        for &task in &cycle {
            reported[task] = true;
        }
        let names: Vec<&str> = cycle
            .iter()
            .chain(std::iter::once(&start))
            .map(|&task| pipeline.tasks[task].name.as_str())
            .collect();
        let next = names.get(1).copied().unwrap_or_default();
        let at = pipeline.tasks[start]
            .dependencies
            .iter()
            .position(|dependency| dependency == next)
            .and_then(|position| declared.tasks[start].dependencies.get(position))
            .unwrap_or(&declared.tasks[start].name_at);
        errors.push(SourceError::at(
            at,
            format!(
                "the dependencies of pipeline `{}` form a cycle: {} (each depends on the next), so none of them could ever run; remove one of these dependencies",
                pipeline.name,
                names.join(" -> ")
            ),
        ));
    }
}

/// The shortest path of dependencies from `start` back to itself through tasks not `done`, as the
/// tasks from `start` on (without repeating it).
fn shortest_cycle(start: usize, edges: &[Vec<usize>], done: &[bool]) -> Option<Vec<usize>> {
    let mut parent: Vec<Option<usize>> = vec![None; edges.len()];
    let mut queue = VecDeque::from([start]);
    let mut visited = vec![false; edges.len()];
    visited[start] = true;
    while let Some(task) = queue.pop_front() {
        for &next in &edges[task] {
            if done[next] {
                continue;
            }
            if next == start {
                let mut path = vec![task];
                let mut cursor = task;
                while let Some(previous) = parent[cursor] {
                    path.push(previous);
                    cursor = previous;
                }
                path.reverse();
                return Some(path);
            }
            if !visited[next] {
                visited[next] = true;
                parent[next] = Some(task);
                queue.push_back(next);
            }
        }
    }
    None
}
