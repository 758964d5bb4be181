//! Reads one task (`uses:`, `with:`, dependencies and options) and `default_args`.

use std::collections::BTreeMap;
use std::time::Duration;

use plinth_runtime::yaml::{Fields, Location, Node, Reader, nearest, scalar_text};
use saphyr::YamlData;

use super::read::{TaskPlace, check_name};
use crate::domain::pipeline::{
    CommandLine, Resources, RetryPolicy, SecretRef, Task, TaskKind, TriggerRule,
};
use crate::domain::template;

/// Options a task may set and `default_args` may give every task.
const OPTION_KEYS: [&str; 9] = [
    "trigger_rule",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "resources",
    "env",
    "secrets",
];
const TASK_OWN_KEYS: [&str; 4] = ["name", "uses", "with", "dependencies"];
/// `default_args` keys Airflow users write that are pipeline fields here.
const DEFAULT_ARGS_PIPELINE_KEYS: [&str; 2] = ["owner", "start_date"];
const RESOURCE_KEYS: &[&str] = &["cpu", "memory", "cpu_limit", "memory_limit", "gpu"];
const SECRET_KEYS: &[&str] = &["env", "secret", "key"];
const TRIGGER_RULES: [TriggerRule; 3] = [
    TriggerRule::AllSuccess,
    TriggerRule::AllDone,
    TriggerRule::OneFailed,
];
/// More retries than this is a mistake (a typo for a delay, or a loop that never gives up).
const MAX_RETRIES: i64 = 100;

/// Task options as written (unset: take the default).
#[derive(Debug, Clone, Default)]
pub(super) struct TaskOptions {
    trigger_rule: Option<TriggerRule>,
    retries: Option<u32>,
    retry_delay: Option<Duration>,
    retry_exponential_backoff: Option<bool>,
    max_retry_delay: Option<Duration>,
    execution_timeout: Option<Duration>,
    resources: Option<Resources>,
    env: BTreeMap<String, String>,
    secrets: Option<Vec<SecretRef>>,
}

/// What `default_args` holds.
#[derive(Debug, Default)]
pub(super) struct DefaultArgs<'n> {
    /// Defaults for every task.
    pub(super) options: TaskOptions,
    /// `owner`, used when the pipeline has none.
    pub(super) owner: Option<String>,
    /// `start_date`, used when the pipeline has none.
    pub(super) start_date: Option<&'n Node>,
}

/// Reads `default_args`.
pub(super) fn default_args<'n>(
    reader: &mut Reader,
    node: &'n Node,
    what: &str,
    params: &[&str],
) -> DefaultArgs<'n> {
    let allowed: Vec<&str> = OPTION_KEYS
        .iter()
        .chain(&DEFAULT_ARGS_PIPELINE_KEYS)
        .copied()
        .collect();
    let field = format!("the default_args of {what}");
    let Some(fields) = reader.mapping(node, &field, &allowed) else {
        return DefaultArgs::default();
    };
    DefaultArgs {
        options: options(reader, &fields, &field, params),
        owner: fields
            .get("owner")
            .map(|node| reader.label(node, &format!("the owner in {field}"))),
        start_date: fields.get("start_date"),
    }
}

fn options(reader: &mut Reader, fields: &Fields<'_>, what: &str, params: &[&str]) -> TaskOptions {
    let mut options = TaskOptions::default();
    if let Some(node) = fields.get("trigger_rule") {
        options.trigger_rule = trigger_rule(reader, node, what);
    }
    if let Some(node) = fields.get("retries") {
        let field = format!("`retries` of {what}");
        if let Some(value) = reader.integer(node, &field) {
            if value < 0 {
                reader.error(
                    node,
                    format!("{field} is {value}; write 0 for no retry, or how many times to retry"),
                );
            } else if value > MAX_RETRIES {
                reader.error(
                    node,
                    format!("{field} is {value}; write at most {MAX_RETRIES} (use retry_delay and retry_exponential_backoff to space retries out)"),
                );
            } else {
                options.retries = u32::try_from(value).ok();
            }
        }
    }
    for (key, slot) in [
        ("retry_delay", &mut options.retry_delay),
        ("max_retry_delay", &mut options.max_retry_delay),
        ("execution_timeout", &mut options.execution_timeout),
    ] {
        if let Some(node) = fields.get(key) {
            let field = format!("`{key}` of {what}");
            *slot = reader.duration(node, &field);
            if key == "execution_timeout" && *slot == Some(Duration::ZERO) {
                reader.error(
                    node,
                    format!("{field} is 0, which would stop every attempt at once; write a duration such as 1h, or remove it for no timeout"),
                );
                *slot = None;
            }
        }
    }
    if let Some(node) = fields.get("retry_exponential_backoff") {
        options.retry_exponential_backoff =
            reader.boolean(node, &format!("`retry_exponential_backoff` of {what}"));
    }
    if let Some(node) = fields.get("resources") {
        options.resources = resources(reader, node, what);
    }
    if let Some(node) = fields.get("env") {
        let field = format!("the env of {what}");
        if let Some(entries) = reader.entries(node, &field) {
            for (name, key, value) in entries {
                if !is_env_name(&name) {
                    reader.error(
                        key,
                        format!("environment variable name `{name}` in {what} is not valid; use letters, digits and `_`, not starting with a digit"),
                    );
                    continue;
                }
                if let Some(text) =
                    template_text(reader, value, &format!("`env.{name}` of {what}"), params)
                {
                    options.env.insert(name, text);
                }
            }
        }
    }
    if let Some(node) = fields.get("secrets") {
        options.secrets = Some(secrets(reader, node, what));
    }
    options
}

fn is_env_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

fn trigger_rule(reader: &mut Reader, node: &Node, what: &str) -> Option<TriggerRule> {
    let text = reader.text(node, &format!("`trigger_rule` of {what}"))?;
    if let Some(rule) = TRIGGER_RULES.into_iter().find(|rule| rule.as_str() == text) {
        return Some(rule);
    }
    let names: Vec<&str> = TRIGGER_RULES.iter().map(|rule| rule.as_str()).collect();
    let hint = match nearest(&text, &names) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    reader.error(
        node,
        format!(
            "`trigger_rule` of {what} is `{text}`; {hint}use one of {}",
            names.join(", ")
        ),
    );
    None
}

fn resources(reader: &mut Reader, node: &Node, what: &str) -> Option<Resources> {
    let field = format!("the resources of {what}");
    let fields = reader.mapping(node, &field, RESOURCE_KEYS)?;
    let mut resources = Resources::default();
    for (key, slot) in [
        ("cpu", &mut resources.cpu),
        ("memory", &mut resources.memory),
        ("cpu_limit", &mut resources.cpu_limit),
        ("memory_limit", &mut resources.memory_limit),
    ] {
        if let Some(node) = fields.get(key) {
            *slot = Some(reader.label(node, &format!("`{key}` in {field}")));
        }
    }
    if let Some(node) = fields.get("gpu") {
        resources.gpu = reader
            .integer_in(node, &format!("`gpu` in {field}"), 0, i64::from(u32::MAX))
            .and_then(|gpu| u32::try_from(gpu).ok());
    }
    Some(resources)
}

fn secrets(reader: &mut Reader, node: &Node, what: &str) -> Vec<SecretRef> {
    let field = format!("the secrets of {what}");
    let mut secrets = Vec::new();
    for item in reader.sequence(node, &field).unwrap_or_default() {
        let Some(fields) = reader.mapping(item, &format!("a secret of {what}"), SECRET_KEYS) else {
            continue;
        };
        let mut part = |key: &str, example: &str| {
            reader
                .required(&fields, key, example)
                .and_then(|node| reader.text(node, &format!("`{key}` of a secret of {what}")))
        };
        let env = part("env", "DB_PASSWORD");
        let secret = part("secret", "warehouse");
        let key = part("key", "password");
        if let (Some(env), Some(secret), Some(key)) = (env, secret, key) {
            secrets.push(SecretRef { env, secret, key });
        }
    }
    secrets
}

/// Text that may hold templates, checked against the declared parameters at the line of the bad
/// template.
fn template_text(reader: &mut Reader, node: &Node, what: &str, params: &[&str]) -> Option<String> {
    let Some(text) = scalar_text(node) else {
        reader.wrong_type(node, what, "text");
        return None;
    };
    if let Err(message) = template::check(&text, params) {
        // A literal block (`|`) starts on the line after its key: point at the line of the template.
        let line_offset = text
            .split('\n')
            .position(|line| template::check(line, params).is_err())
            .unwrap_or(0);
        let mut location: Location = reader.location(node);
        if line_offset > 0 {
            location.line += line_offset;
            location.column = 1;
        }
        reader.error_at(&location, format!("{what}: {message}"));
    }
    Some(text)
}

/// Reads one task. `named` is the key of the `tasks:` mapping; without it the task has a `name:`.
pub(super) fn read(
    reader: &mut Reader,
    named: Option<(String, &Node)>,
    node: &Node,
    defaults: &TaskOptions,
    params: &[&str],
) -> Option<(Task, TaskPlace)> {
    let allowed: Vec<&str> = TASK_OWN_KEYS.iter().chain(&OPTION_KEYS).copied().collect();
    let provisional = match &named {
        Some((name, _)) => format!("task `{name}`"),
        None => match super::read::written_name(node) {
            Some(name) => format!("task `{name}`"),
            None => "a task".to_owned(),
        },
    };
    let fields = reader.mapping(node, &provisional, &allowed)?;
    let (name, name_node) = match named {
        Some((name, key)) => {
            if let Some(written) = fields.get("name")
                && scalar_text(written).as_deref() != Some(name.as_str())
            {
                reader.error(
                    written,
                    format!("task `{name}` says `name: {}`; a task listed by name takes its name from its key, so remove `name:`", scalar_text(written).unwrap_or_default()),
                );
            }
            (name, key)
        }
        None => {
            let written = reader.required(&fields, "name", "my_task")?;
            (reader.text(written, "the name of a task")?, written)
        }
    };
    check_name(reader, name_node, &name, "task");
    let what = format!("task `{name}`");
    let fields = fields.described(what.clone());
    let own = options(reader, &fields, &what, params);
    let kind = match reader.required(&fields, "uses", "command") {
        Some(uses) => kind(reader, uses, fields.get("with"), &what, params),
        None => None,
    };
    let mut dependencies = Vec::new();
    let mut dependency_places = Vec::new();
    if let Some(list) = fields.get("dependencies") {
        let field = format!("the dependencies of {what}");
        for item in reader.sequence(list, &field).unwrap_or_default() {
            if let Some(dependency) = reader.text(item, &format!("a dependency of {what}")) {
                dependency_places.push(reader.location(item));
                dependencies.push(dependency);
            }
        }
    }
    let mut env = defaults.env.clone();
    env.extend(own.env);
    let retry = RetryPolicy {
        retries: own.retries.or(defaults.retries).unwrap_or(0),
        retry_delay: own
            .retry_delay
            .or(defaults.retry_delay)
            .unwrap_or(RetryPolicy::default().retry_delay),
        retry_exponential_backoff: own
            .retry_exponential_backoff
            .or(defaults.retry_exponential_backoff)
            .unwrap_or(false),
        max_retry_delay: own.max_retry_delay.or(defaults.max_retry_delay),
    };
    let task = Task {
        name,
        // A task whose `uses:` could not be read keeps its place so that its dependents are not
        // reported as depending on an unknown task; the pipeline is refused anyway.
        kind: kind.unwrap_or(TaskKind::Command {
            command: CommandLine::Argv(Vec::new()),
            image: None,
            working_dir: None,
        }),
        dependencies,
        trigger_rule: own
            .trigger_rule
            .or(defaults.trigger_rule)
            .unwrap_or_default(),
        retry,
        execution_timeout: own.execution_timeout.or(defaults.execution_timeout),
        resources: own
            .resources
            .or_else(|| defaults.resources.clone())
            .unwrap_or_default(),
        env,
        secrets: own
            .secrets
            .or_else(|| defaults.secrets.clone())
            .unwrap_or_default(),
    };
    let place = TaskPlace {
        name_at: reader.location(name_node),
        dependencies: dependency_places,
    };
    Some((task, place))
}

/// The `with:` keys of each task type.
fn with_keys(uses: &str) -> &'static [&'static str] {
    match uses {
        "command" => &["command", "image", "working_dir"],
        "materialize" => &[
            "feature_views",
            "feature_service",
            "incremental",
            "start",
            "end",
        ],
        "training-set" => &[
            "feature_service",
            "features",
            "entities",
            "event_timestamp_column",
            "output",
        ],
        "train" => &[
            "command",
            "image",
            "working_dir",
            "training_set",
            "model",
            "version",
        ],
        "batch-score" => &["model", "version", "input", "output", "columns"],
        "deploy-model" => &["model", "version"],
        _ => &[],
    }
}

/// Reads `uses:` and `with:` into the task's kind.
fn kind(
    reader: &mut Reader,
    uses_node: &Node,
    with_node: Option<&Node>,
    what: &str,
    params: &[&str],
) -> Option<TaskKind> {
    let uses = reader.text(uses_node, &format!("`uses` of {what}"))?;
    if !TaskKind::ALL_USES.contains(&uses.as_str()) {
        let hint = match nearest(&uses, &TaskKind::ALL_USES) {
            Some(near) => format!("did you mean `{near}`? "),
            None => String::new(),
        };
        reader.error(
            uses_node,
            format!(
                "unknown task type `uses: {uses}` in {what}; {hint}use one of {}",
                TaskKind::ALL_USES.join(", ")
            ),
        );
        return None;
    }
    let with_what = format!("the `with` of {what} (uses: {uses})");
    // Without `with:`, what is missing is reported at `uses:`.
    let no_parameters = Node {
        span: uses_node.span,
        data: YamlData::Mapping(Default::default()),
    };
    let with_node = with_node.unwrap_or(&no_parameters);
    let fields = reader.mapping(with_node, &with_what, with_keys(&uses))?;
    let mut with = With {
        reader,
        fields: &fields,
        what: &with_what,
        params,
    };
    let kind = match uses.as_str() {
        "command" => TaskKind::Command {
            command: with.command()?,
            image: with.optional("image"),
            working_dir: with.optional("working_dir"),
        },
        "materialize" => TaskKind::Materialize {
            feature_views: with.list("feature_views"),
            feature_service: with.optional("feature_service"),
            incremental: with.flag("incremental").unwrap_or(true),
            start: with.optional("start"),
            end: with.optional("end"),
        },
        "training-set" => {
            let feature_service = with.optional("feature_service");
            let features = with.list("features");
            if feature_service.is_none() && features.is_empty() {
                with.reader.error(
                    with_node,
                    format!("{with_what} names no features; add `feature_service: my_service` or `features: [my_view:my_feature]`"),
                );
            }
            TaskKind::TrainingSet {
                feature_service,
                features,
                entities: with.required("entities", "my_entity_rows")?,
                event_timestamp_column: with.optional("event_timestamp_column"),
                output: with
                    .optional("output")
                    .unwrap_or_else(|| "{{ pipeline }}_{{ task }}_{{ run_id }}".to_owned()),
            }
        }
        "train" => {
            let command = with.command();
            let training_set = with.required("training_set", "churn_train_{{ ds_nodash }}");
            let model = with.required("model", "churn");
            TaskKind::Train {
                command: command?,
                image: with.optional("image"),
                working_dir: with.optional("working_dir"),
                training_set: training_set?,
                model: model?,
                version: with.optional("version"),
            }
        }
        "batch-score" => {
            let model = with.required("model", "churn");
            let input = with.required("input", "customers_{{ ds_nodash }}");
            let output = with.required("output", "churn_scores_{{ ds_nodash }}");
            TaskKind::BatchScore {
                model: model?,
                version: with.optional("version"),
                input: input?,
                output: output?,
                columns: with.list("columns"),
            }
        }
        _ => {
            let model = with.required("model", "churn");
            let version = with.required("version", "\"{{ params.model_version }}\"");
            TaskKind::DeployModel {
                model: model?,
                version: version?,
            }
        }
    };
    Some(kind)
}

/// Reads the values of one `with:` mapping.
struct With<'r, 'f, 'n> {
    reader: &'r mut Reader,
    fields: &'f Fields<'n>,
    what: &'f str,
    params: &'f [&'f str],
}

impl With<'_, '_, '_> {
    fn field(&self, key: &str) -> String {
        format!("`{key}` in {}", self.what)
    }

    fn optional(&mut self, key: &str) -> Option<String> {
        let node = self.fields.get(key)?;
        template_text(self.reader, node, &self.field(key), self.params)
    }

    fn required(&mut self, key: &str, example: &str) -> Option<String> {
        let node = self.reader.required(self.fields, key, example)?;
        let text = template_text(self.reader, node, &self.field(key), self.params)?;
        if text.trim().is_empty() {
            self.reader.error(
                node,
                format!(
                    "{} is empty; write a value such as {example}",
                    self.field(key)
                ),
            );
            return None;
        }
        Some(text)
    }

    fn flag(&mut self, key: &str) -> Option<bool> {
        let node = self.fields.get(key)?;
        self.reader.boolean(node, &self.field(key))
    }

    fn list(&mut self, key: &str) -> Vec<String> {
        let Some(node) = self.fields.get(key) else {
            return Vec::new();
        };
        let field = self.field(key);
        let items = self.reader.sequence(node, &field).unwrap_or_default();
        items
            .iter()
            .filter_map(|item| {
                template_text(
                    self.reader,
                    item,
                    &format!("an item of {field}"),
                    self.params,
                )
            })
            .collect()
    }

    /// `command:` as a shell script (text) or an argument vector (a list); empty is refused.
    fn command(&mut self) -> Option<CommandLine> {
        let node = self.reader.required(
            self.fields,
            "command",
            "python train.py --epochs {{ params.epochs }}",
        )?;
        let field = self.field("command");
        let command = match &node.data {
            YamlData::Sequence(items) => CommandLine::Argv(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(index, item)| {
                        template_text(
                            self.reader,
                            item,
                            &format!("argument {index} of {field}"),
                            self.params,
                        )
                    })
                    .collect(),
            ),
            _ => CommandLine::Shell(template_text(self.reader, node, &field, self.params)?),
        };
        let empty = match &command {
            CommandLine::Shell(script) => script.trim().is_empty(),
            CommandLine::Argv(argv) => argv.first().is_none_or(|program| program.trim().is_empty()),
        };
        if empty {
            self.reader.error(
                node,
                format!("{field} is empty; write what to run, such as `python train.py` or [\"python\", \"train.py\"]"),
            );
            return None;
        }
        Some(command)
    }
}
