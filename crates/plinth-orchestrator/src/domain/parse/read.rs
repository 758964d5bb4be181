//! Reads one YAML document into a [`Pipeline`] with where its parts were declared, reporting every
//! mistake local to the document. Checks across tasks and documents are in `validate`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use plinth_runtime::yaml::{Document, Fields, Location, Node, Reader, nearest};
use saphyr::{Scalar, YamlData};

use super::task::{self, TaskOptions};
use super::{MAX_NAME_LENGTH, is_valid_name};
use crate::domain::cron::{Cron, parse_timezone};
use crate::domain::pipeline::{Param, ParamType, ParamValue, Pipeline, Schedule};

/// One pipeline as read, with the places later checks point at.
#[derive(Debug)]
pub(super) struct Declared {
    pub(super) pipeline: Pipeline,
    pub(super) path: String,
    pub(super) yaml: String,
    /// Where its name is written (or the document, without a name).
    pub(super) name_at: Location,
    /// Where each task's parts are, in `pipeline.tasks` order.
    pub(super) tasks: Vec<TaskPlace>,
}

/// Where a task's parts are written.
#[derive(Debug)]
pub(super) struct TaskPlace {
    /// Its name (the key of the `tasks:` mapping, or its `name:`).
    pub(super) name_at: Location,
    /// Each dependency, in `task.dependencies` order.
    pub(super) dependencies: Vec<Location>,
}

const PIPELINE_KEYS: &[&str] = &[
    "name",
    "owner",
    "description",
    "schedule",
    "timezone",
    "start_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "tags",
    "params",
    "default_args",
    "tasks",
];
const PARAM_KEYS: &[&str] = &["type", "default", "description"];
const PARAM_TYPES: [ParamType; 4] = [
    ParamType::String,
    ParamType::Integer,
    ParamType::Number,
    ParamType::Boolean,
];
/// The default of `max_active_runs` and `max_active_tasks`.
const DEFAULT_ACTIVE: u32 = 16;

/// Reads the pipeline of one document; `None` when the document is not a mapping (reported).
pub(super) fn pipeline(reader: &mut Reader, document: &Document) -> Option<Declared> {
    let root = &document.root;
    let provisional = match written_name(root) {
        Some(name) => format!("pipeline `{name}`"),
        None => "a pipeline".to_owned(),
    };
    let fields = reader.mapping(root, &provisional, PIPELINE_KEYS)?;
    let mut name_at = reader.location(root);
    let mut name = String::new();
    if let Some(node) = reader.required(&fields, "name", "my-pipeline") {
        name_at = reader.location(node);
        if let Some(text) = reader.text(node, "the name of a pipeline") {
            check_name(reader, node, &text, "pipeline");
            name = text;
        }
    }
    let what = if name.is_empty() {
        "a pipeline".to_owned()
    } else {
        format!("pipeline `{name}`")
    };
    let fields = fields.described(what.clone());
    let params = fields
        .get("params")
        .map(|node| read_params(reader, node, &what))
        .unwrap_or_default();
    let param_names: Vec<&str> = params.iter().map(|param| param.name.as_str()).collect();

    let mut pipeline = Pipeline {
        name,
        owner: String::new(),
        description: String::new(),
        tags: Default::default(),
        schedule: None,
        catchup: false,
        start_date_micros: None,
        max_active_runs: DEFAULT_ACTIVE,
        max_active_tasks: DEFAULT_ACTIVE,
        params: Vec::new(),
        tasks: Vec::new(),
    };
    if let Some(node) = fields.get("owner") {
        pipeline.owner = reader.label(node, &format!("the owner of {what}"));
    }
    if let Some(node) = fields.get("description") {
        pipeline.description = reader.label(node, &format!("the description of {what}"));
    }
    if let Some(node) = fields.get("tags") {
        pipeline.tags = reader.string_map(node, &format!("the tags of {what}"));
    }
    let timezone = read_timezone(reader, &fields, &what);
    if let Some(node) = fields.get("schedule") {
        pipeline.schedule = read_schedule(reader, node, &what, timezone);
    }
    if let Some(node) = fields.get("catchup") {
        pipeline.catchup = reader
            .boolean(node, &format!("`catchup` of {what}"))
            .unwrap_or(false);
    }
    for (key, slot) in [
        ("max_active_runs", &mut pipeline.max_active_runs),
        ("max_active_tasks", &mut pipeline.max_active_tasks),
    ] {
        if let Some(node) = fields.get(key) {
            *slot = read_active_limit(reader, node, key, &what).unwrap_or(DEFAULT_ACTIVE);
        }
    }
    let defaults = match fields.get("default_args") {
        Some(node) => task::default_args(reader, node, &what, &param_names),
        None => task::DefaultArgs::default(),
    };
    let start_date = fields.get("start_date").or(defaults.start_date);
    if let Some(node) = start_date {
        pipeline.start_date_micros = read_start_date(reader, node, &what, timezone);
    }
    if pipeline.owner.is_empty() {
        pipeline.owner = defaults.owner.clone().unwrap_or_default();
    }
    let mut places = Vec::new();
    if let Some(node) = reader.required(
        &fields,
        "tasks",
        "{hello: {uses: command, with: {command: \"echo hello\"}}}",
    ) {
        let tasks_what = format!("the tasks of {what}");
        let read = read_tasks(reader, node, &tasks_what, &defaults.options, &param_names);
        if read.is_empty() && is_empty_collection(node) {
            reader.error(
                node,
                format!("{what} has no tasks; add at least one under `tasks:`, such as `hello: {{uses: command, with: {{command: \"echo hello\"}}}}`"),
            );
        }
        for (task, place) in read {
            pipeline.tasks.push(task);
            places.push(place);
        }
    }
    pipeline.params = params;
    Some(Declared {
        pipeline,
        path: reader.path().to_owned(),
        yaml: document.text.clone(),
        name_at,
        tasks: places,
    })
}

/// The text of the `name:` of a mapping, to name it in messages about its other keys.
pub(super) fn written_name(node: &Node) -> Option<String> {
    let YamlData::Mapping(mapping) = &node.data else {
        return None;
    };
    mapping
        .iter()
        .find(|(key, _)| matches!(&key.data, YamlData::Value(Scalar::String(key)) if key == "name"))
        .and_then(|(_, value)| match &value.data {
            YamlData::Value(Scalar::String(name)) if !name.trim().is_empty() => {
                Some(name.trim().to_owned())
            }
            _ => None,
        })
}

/// Whether `tasks:` is empty for real rather than unreadable (already reported).
fn is_empty_collection(node: &Node) -> bool {
    matches!(&node.data, YamlData::Mapping(map) if map.is_empty())
        || matches!(&node.data, YamlData::Sequence(items) if items.is_empty())
}

/// Reports a pipeline or task name outside `[a-z0-9][a-z0-9_-]*`, with a fixed spelling.
pub(super) fn check_name(reader: &mut Reader, node: &Node, name: &str, kind: &str) {
    if is_valid_name(name) {
        return;
    }
    let fixed: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '_' || character == '-' {
                character
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_start_matches(['-', '_'])
        .chars()
        .take(MAX_NAME_LENGTH)
        .collect();
    let suggestion = if fixed.is_empty() {
        String::new()
    } else {
        format!(", such as `{fixed}`")
    };
    reader.error(
        node,
        format!("{kind} name `{name}` is not valid; use lower-case letters, digits, `_` and `-`, starting with a letter or digit, at most {MAX_NAME_LENGTH} characters{suggestion}"),
    );
}

fn read_timezone(reader: &mut Reader, fields: &Fields<'_>, what: &str) -> Option<Tz> {
    let Some(node) = fields.get("timezone") else {
        return Some(Tz::UTC);
    };
    let name = reader.text(node, &format!("the timezone of {what}"))?;
    match parse_timezone(&name) {
        Ok(timezone) => Some(timezone),
        Err(message) => {
            reader.error(node, format!("the timezone of {what}: {message}"));
            None
        }
    }
}

fn read_schedule(
    reader: &mut Reader,
    node: &Node,
    what: &str,
    timezone: Option<Tz>,
) -> Option<Schedule> {
    let field = format!("the schedule of {what}");
    let cron = reader.text(node, &field)?;
    let lowered = cron.to_ascii_lowercase();
    if ["@once", "@continuous", "none", "null"].contains(&lowered.as_str()) {
        reader.error(
            node,
            format!("{field} is `{cron}`; for a pipeline that runs only when triggered, remove `schedule` (or write `schedule: null`)"),
        );
        return None;
    }
    let schedule = Schedule {
        cron,
        timezone: timezone.unwrap_or(Tz::UTC).name().to_owned(),
    };
    if let Err(message) = Cron::parse(&schedule) {
        reader.error(node, format!("{field}: {message}"));
        return None;
    }
    // A bad time zone is reported on its own line; the schedule still says which zone it meant.
    timezone.map(|_| schedule)
}

fn read_start_date(
    reader: &mut Reader,
    node: &Node,
    what: &str,
    timezone: Option<Tz>,
) -> Option<i64> {
    let field = format!("the start_date of {what}");
    let text = reader.text(node, &field)?;
    let timezone = timezone.unwrap_or(Tz::UTC);
    let help = "write a date such as 2026-01-01, or a time such as 2026-01-01T03:00:00 (in the pipeline's timezone) or 2026-01-01T03:00:00Z";
    if let Ok(time) = DateTime::parse_from_rfc3339(&text) {
        return Some(time.timestamp_micros());
    }
    let naive = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .or_else(|| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S").ok())
        .or_else(|| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").ok());
    let Some(naive) = naive else {
        reader.error(
            node,
            format!("{field} `{text}` is not a date or time; {help}"),
        );
        return None;
    };
    match timezone.from_local_datetime(&naive).earliest() {
        Some(time) => Some(time.timestamp_micros()),
        None => {
            reader.error(
                node,
                format!("{field} `{text}` does not exist in {} (the clock skips it); pick a time outside the daylight saving change", timezone.name()),
            );
            None
        }
    }
}

fn read_active_limit(reader: &mut Reader, node: &Node, key: &str, what: &str) -> Option<u32> {
    let field = format!("`{key}` of {what}");
    let value = reader.integer(node, &field)?;
    if value < 1 {
        let unit = if key == "max_active_runs" {
            "run"
        } else {
            "task"
        };
        reader.error(
            node,
            format!("{field} is {value}; with no {unit} allowed to run nothing would ever run: write 1 or more (default {DEFAULT_ACTIVE})"),
        );
        return None;
    }
    match u32::try_from(value) {
        Ok(value) => Some(value),
        Err(_) => {
            reader.error(
                node,
                format!("{field} is {value}; write at most {}", u32::MAX),
            );
            None
        }
    }
}

/// Reads `params:`: a mapping of name to `{type, default, description}` or to a bare default whose
/// type is inferred.
fn read_params(reader: &mut Reader, node: &Node, what: &str) -> Vec<Param> {
    let Some(entries) = reader.entries(node, &format!("the params of {what}")) else {
        return Vec::new();
    };
    let mut params = Vec::new();
    for (name, key, value) in entries {
        if !is_param_name(&name) {
            reader.error(
                key,
                format!("parameter name `{name}` of {what} is not valid; use letters, digits and `_`, starting with a letter or `_` (it is written `{{{{ params.{name} }}}}` in templates)"),
            );
            continue;
        }
        let param_what = format!("parameter `{name}` of {what}");
        let param = match &value.data {
            YamlData::Mapping(_) => read_param_mapping(reader, &name, value, &param_what),
            _ => read_param_shorthand(reader, &name, value, &param_what),
        };
        params.extend(param);
    }
    params
}

fn is_param_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

fn read_param_shorthand(reader: &mut Reader, name: &str, node: &Node, what: &str) -> Option<Param> {
    let (param_type, default) = match &node.data {
        YamlData::Value(Scalar::String(text)) => {
            (ParamType::String, ParamValue::String(text.to_string()))
        }
        YamlData::Value(Scalar::Integer(value)) => {
            (ParamType::Integer, ParamValue::Integer(*value))
        }
        YamlData::Value(Scalar::FloatingPoint(value)) => {
            (ParamType::Number, ParamValue::Number(value.into_inner()))
        }
        YamlData::Value(Scalar::Boolean(value)) => {
            (ParamType::Boolean, ParamValue::Boolean(*value))
        }
        YamlData::Value(Scalar::Null) => {
            reader.error(
                node,
                format!("{what} has neither a type nor a default; write `{name}: {{type: string}}` (required when triggering) or `{name}: <default value>`"),
            );
            return None;
        }
        _ => {
            reader.wrong_type(
                node,
                what,
                "a default value or a mapping such as `{type: integer, default: 10}`",
            );
            return None;
        }
    };
    Some(Param {
        name: name.to_owned(),
        param_type,
        default: Some(default),
        description: String::new(),
    })
}

fn read_param_mapping(reader: &mut Reader, name: &str, node: &Node, what: &str) -> Option<Param> {
    let fields = reader.mapping(node, what, PARAM_KEYS)?;
    let description = fields
        .get("description")
        .map(|node| reader.label(node, &format!("the description of {what}")))
        .unwrap_or_default();
    let declared_type = match fields.get("type") {
        Some(type_node) => Some(read_param_type(reader, type_node, what)?),
        None => None,
    };
    let default_node = fields.get("default");
    let param_type = match (declared_type, default_node) {
        (Some(param_type), _) => param_type,
        (None, Some(default)) => match &default.data {
            YamlData::Value(Scalar::Integer(_)) => ParamType::Integer,
            YamlData::Value(Scalar::FloatingPoint(_)) => ParamType::Number,
            YamlData::Value(Scalar::Boolean(_)) => ParamType::Boolean,
            _ => ParamType::String,
        },
        (None, None) => {
            reader.error(
                node,
                format!("{what} has neither a type nor a default; add `type: string` (or integer, number, boolean)"),
            );
            return None;
        }
    };
    let default = match default_node {
        Some(default) => Some(read_param_default(reader, default, param_type, what)?),
        None => None,
    };
    Some(Param {
        name: name.to_owned(),
        param_type,
        default,
        description,
    })
}

fn read_param_type(reader: &mut Reader, node: &Node, what: &str) -> Option<ParamType> {
    let text = reader.text(node, &format!("the type of {what}"))?;
    let names: Vec<&str> = PARAM_TYPES
        .iter()
        .map(|param_type| param_type.as_str())
        .collect();
    if let Some(param_type) = PARAM_TYPES
        .into_iter()
        .find(|param_type| param_type.as_str() == text)
    {
        return Some(param_type);
    }
    let hint = match nearest(&text, &names) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    reader.error(
        node,
        format!(
            "the type of {what} is `{text}`; {hint}use one of {}",
            names.join(", ")
        ),
    );
    None
}

fn read_param_default(
    reader: &mut Reader,
    node: &Node,
    param_type: ParamType,
    what: &str,
) -> Option<ParamValue> {
    let value = match (param_type, &node.data) {
        (ParamType::String, YamlData::Value(Scalar::String(text))) => {
            Some(ParamValue::String(text.to_string()))
        }
        (ParamType::Integer, YamlData::Value(Scalar::Integer(value))) => {
            Some(ParamValue::Integer(*value))
        }
        (ParamType::Number, YamlData::Value(Scalar::Integer(value))) => {
            Some(ParamValue::Number(*value as f64))
        }
        (ParamType::Number, YamlData::Value(Scalar::FloatingPoint(value))) => {
            Some(ParamValue::Number(value.into_inner()))
        }
        (ParamType::Boolean, YamlData::Value(Scalar::Boolean(value))) => {
            Some(ParamValue::Boolean(*value))
        }
        _ => None,
    };
    if value.is_none() {
        let expected = match param_type {
            ParamType::String => "text (quote it, such as \"5\")",
            ParamType::Integer => "a whole number such as 10",
            ParamType::Number => "a number such as 0.5",
            ParamType::Boolean => "true or false",
        };
        reader.wrong_type(
            node,
            &format!("the default of {what} (type {})", param_type.as_str()),
            expected,
        );
    }
    value
}

/// Reads `tasks:`, a mapping of name to task or a list of tasks with `name:`.
fn read_tasks(
    reader: &mut Reader,
    node: &Node,
    what: &str,
    defaults: &TaskOptions,
    params: &[&str],
) -> Vec<(crate::domain::pipeline::Task, TaskPlace)> {
    let mut tasks = Vec::new();
    match &node.data {
        YamlData::Sequence(items) => {
            for item in items {
                tasks.extend(task::read(reader, None, item, defaults, params));
            }
        }
        YamlData::Mapping(_) => {
            for (name, key, value) in reader.entries(node, what).unwrap_or_default() {
                tasks.extend(task::read(
                    reader,
                    Some((name, key)),
                    value,
                    defaults,
                    params,
                ));
            }
        }
        _ => reader.wrong_type(
            node,
            &plinth_runtime::yaml::capitalized(what),
            "a mapping of task name to task (or a list of tasks with `name:`)",
        ),
    }
    tasks
}
