//! Templates in task parameters: `{{ params.<name> }}`, `{{ logical_date }}`, `{{ ds }}`,
//! `{{ ds_nodash }}`, `{{ data_interval_start }}`, `{{ data_interval_end }}`, `{{ run_id }}`,
//! `{{ pipeline }}` and `{{ task }}`, with optional spaces inside the braces. A quoted text renders
//! as itself, so a literal `{{` is written `{{ '{{' }}`. Anything else between braces is an error:
//! [`check`] finds it when the pipeline is validated, [`render`] when a task is about to run.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat};
use plinth_runtime::yaml::nearest;

use crate::domain::pipeline::{CommandLine, ParamType, ParamValue, Pipeline, Task, TaskKind};

/// The variables besides `params.<name>`.
pub const VARIABLES: [&str; 8] = [
    "logical_date",
    "ds",
    "ds_nodash",
    "data_interval_start",
    "data_interval_end",
    "run_id",
    "pipeline",
    "task",
];

/// What a run gives its templates.
#[derive(Debug, Clone, PartialEq)]
pub struct RunContext {
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id.
    pub run_id: String,
    /// The task being rendered (set by [`render_task`]).
    pub task: Option<String>,
    /// The run's logical date, in microseconds since the epoch (UTC).
    pub logical_date_micros: i64,
    /// The start of the run's data interval.
    pub data_interval_start_micros: i64,
    /// The end of the run's data interval.
    pub data_interval_end_micros: i64,
    /// Every parameter's value (defaults and overrides, see [`resolve_params`]).
    pub params: BTreeMap<String, ParamValue>,
}

/// A template that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// The field holding the template (`with.command`, `env.LOG_LEVEL`); empty for [`render`].
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            formatter.write_str(&self.message)
        } else {
            write!(formatter, "`{}`: {}", self.field, self.message)
        }
    }
}

/// One `{{ ... }}` of a text.
enum Part<'t> {
    /// Text outside braces.
    Text(&'t str),
    /// A quoted text inside braces.
    Literal(&'t str),
    /// A name inside braces (`ds`, `params.epochs`).
    Name(&'t str),
}

/// Splits `text` into its parts; the error says what is wrong with the braces.
fn parts(text: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(Part::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let inner_end = closing(after).ok_or_else(|| {
            "`{{` has no closing `}}`; close it, or write a literal `{{` as {{ '{{' }}".to_owned()
        })?;
        let inner = after[..inner_end].trim();
        let quoted = inner.len() >= 2
            && ((inner.starts_with('\'') && inner.ends_with('\''))
                || (inner.starts_with('"') && inner.ends_with('"')));
        if quoted {
            parts.push(Part::Literal(&inner[1..inner.len() - 1]));
        } else if inner.is_empty() {
            return Err(
                "`{{ }}` names nothing; write a variable such as {{ ds }}, or a literal `{{` as {{ '{{' }}"
                    .to_owned(),
            );
        } else {
            parts.push(Part::Name(inner));
        }
        rest = &after[inner_end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// Where the `}}` closing a template starts in `text` (after its `{{`), skipping quoted text.
fn closing(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (index, character) in text.char_indices() {
        match quote {
            Some(open) if character == open => quote = None,
            Some(_) => {}
            None if character == '\'' || character == '"' => quote = Some(character),
            None if text[index..].starts_with("}}") => return Some(index),
            None => {}
        }
    }
    None
}

/// The message for a name that is neither a variable nor a declared parameter.
fn unknown_name(name: &str, declared_params: &[&str]) -> String {
    if let Some(param) = name.strip_prefix("params.") {
        let hint = match nearest(param, declared_params) {
            Some(near) => format!("did you mean `params.{near}`? "),
            None => String::new(),
        };
        let declared = if declared_params.is_empty() {
            "the pipeline declares no parameters".to_owned()
        } else {
            format!("declared: {}", declared_params.join(", "))
        };
        return format!(
            "`{{{{ {name} }}}}` uses the undeclared parameter `{param}`; {hint}declare it under `params:` ({declared})"
        );
    }
    let mut known: Vec<String> = VARIABLES.iter().map(|name| (*name).to_owned()).collect();
    known.extend(
        declared_params
            .iter()
            .map(|param| format!("params.{param}")),
    );
    let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
    let hint = match nearest(name, &candidates) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    format!(
        "unknown template variable `{name}`; {hint}use params.<name>, {}; a literal `{{{{` is written {{{{ '{{{{' }}}}",
        VARIABLES.join(", ")
    )
}

/// Checks that every template in `text` names a variable or one of `declared_params`.
pub fn check(text: &str, declared_params: &[&str]) -> Result<(), String> {
    for part in parts(text)? {
        if let Part::Name(name) = part {
            let known = VARIABLES.contains(&name)
                || name
                    .strip_prefix("params.")
                    .is_some_and(|param| declared_params.contains(&param));
            if !known {
                return Err(unknown_name(name, declared_params));
            }
        }
    }
    Ok(())
}

/// Renders `text` for the run.
pub fn render(text: &str, context: &RunContext) -> Result<String, TemplateError> {
    render_in(text, context, context.task.as_deref()).map_err(|message| TemplateError {
        field: String::new(),
        message,
    })
}

fn render_in(text: &str, context: &RunContext, task: Option<&str>) -> Result<String, String> {
    let mut rendered = String::with_capacity(text.len());
    for part in parts(text)? {
        match part {
            Part::Text(text) | Part::Literal(text) => rendered.push_str(text),
            Part::Name(name) => rendered.push_str(&value_of(name, context, task)?),
        }
    }
    Ok(rendered)
}

fn value_of(name: &str, context: &RunContext, task: Option<&str>) -> Result<String, String> {
    let date = |micros: i64| {
        DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| format!("`{name}` is out of the range of dates ({micros} µs)"))
    };
    let value = match name {
        "logical_date" => rfc3339(date(context.logical_date_micros)?),
        "ds" => date(context.logical_date_micros)?
            .format("%Y-%m-%d")
            .to_string(),
        "ds_nodash" => date(context.logical_date_micros)?
            .format("%Y%m%d")
            .to_string(),
        "data_interval_start" => rfc3339(date(context.data_interval_start_micros)?),
        "data_interval_end" => rfc3339(date(context.data_interval_end_micros)?),
        "run_id" => context.run_id.clone(),
        "pipeline" => context.pipeline.clone(),
        "task" => task
            .ok_or("`{{ task }}` is only known inside a task")?
            .to_owned(),
        _ => {
            let declared: Vec<&str> = context.params.keys().map(String::as_str).collect();
            let value = name
                .strip_prefix("params.")
                .and_then(|param| context.params.get(param))
                .ok_or_else(|| unknown_name(name, &declared))?;
            param_text(value)
        }
    };
    Ok(value)
}

fn rfc3339(time: DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A parameter's value as text in a rendered template.
pub fn param_text(value: &ParamValue) -> String {
    match value {
        ParamValue::Boolean(value) => value.to_string(),
        ParamValue::Integer(value) => value.to_string(),
        ParamValue::Number(value) => value.to_string(),
        ParamValue::String(value) => value.clone(),
    }
}

/// Every template string of a task, by field name (`with.command`, `with.command[1]`,
/// `env.LOG_LEVEL`), for checking and rendering.
fn template_fields(task: &mut Task) -> Vec<(String, &mut String)> {
    fn command<'t>(fields: &mut Vec<(String, &'t mut String)>, command: &'t mut CommandLine) {
        match command {
            CommandLine::Shell(script) => fields.push(("with.command".to_owned(), script)),
            CommandLine::Argv(argv) => {
                for (index, argument) in argv.iter_mut().enumerate() {
                    fields.push((format!("with.command[{index}]"), argument));
                }
            }
        }
    }
    fn optional<'t>(
        fields: &mut Vec<(String, &'t mut String)>,
        name: &str,
        value: &'t mut Option<String>,
    ) {
        if let Some(value) = value {
            fields.push((format!("with.{name}"), value));
        }
    }
    fn list<'t>(fields: &mut Vec<(String, &'t mut String)>, name: &str, values: &'t mut [String]) {
        for (index, value) in values.iter_mut().enumerate() {
            fields.push((format!("with.{name}[{index}]"), value));
        }
    }
    let mut fields = Vec::new();
    match &mut task.kind {
        TaskKind::Command {
            command: line,
            image,
            working_dir,
        } => {
            command(&mut fields, line);
            optional(&mut fields, "image", image);
            optional(&mut fields, "working_dir", working_dir);
        }
        TaskKind::Materialize {
            feature_views,
            feature_service,
            incremental: _,
            start,
            end,
        } => {
            list(&mut fields, "feature_views", feature_views);
            optional(&mut fields, "feature_service", feature_service);
            optional(&mut fields, "start", start);
            optional(&mut fields, "end", end);
        }
        TaskKind::TrainingSet {
            feature_service,
            features,
            entities,
            event_timestamp_column,
            output,
        } => {
            optional(&mut fields, "feature_service", feature_service);
            list(&mut fields, "features", features);
            fields.push(("with.entities".to_owned(), entities));
            optional(
                &mut fields,
                "event_timestamp_column",
                event_timestamp_column,
            );
            fields.push(("with.output".to_owned(), output));
        }
        TaskKind::Train {
            command: line,
            image,
            working_dir,
            training_set,
            model,
            version,
        } => {
            command(&mut fields, line);
            optional(&mut fields, "image", image);
            optional(&mut fields, "working_dir", working_dir);
            fields.push(("with.training_set".to_owned(), training_set));
            fields.push(("with.model".to_owned(), model));
            optional(&mut fields, "version", version);
        }
        TaskKind::BatchScore {
            model,
            version,
            input,
            output,
            columns,
        } => {
            fields.push(("with.model".to_owned(), model));
            optional(&mut fields, "version", version);
            fields.push(("with.input".to_owned(), input));
            fields.push(("with.output".to_owned(), output));
            list(&mut fields, "columns", columns);
        }
        TaskKind::DeployModel { model, version } => {
            fields.push(("with.model".to_owned(), model));
            fields.push(("with.version".to_owned(), version));
        }
    }
    for (name, value) in &mut task.env {
        fields.push((format!("env.{name}"), value));
    }
    fields
}

/// The task with every template of its parameters (`with:`) and environment rendered for the run;
/// `{{ task }}` is the task's name. The error names the field.
pub fn render_task(task: &Task, context: &RunContext) -> Result<Task, TemplateError> {
    let mut rendered = task.clone();
    let name = task.name.clone();
    for (field, value) in template_fields(&mut rendered) {
        *value = render_in(value, context, Some(&name))
            .map_err(|message| TemplateError { field, message })?;
    }
    Ok(rendered)
}

/// Checks every template of the task against the declared parameters: `(field, message)` for each
/// bad one.
pub fn check_task(task: &Task, declared_params: &[&str]) -> Vec<(String, String)> {
    let mut task = task.clone();
    template_fields(&mut task)
        .into_iter()
        .filter_map(|(field, value)| {
            check(value, declared_params)
                .err()
                .map(|message| (field, message))
        })
        .collect()
}

/// Every parameter's value for a run: the overrides (checked against the declared types) over the
/// defaults. The errors name unknown parameters (with the nearest declared one), values of the wrong
/// type, and required parameters left without a value.
pub fn resolve_params(
    pipeline: &Pipeline,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, ParamValue>, Vec<String>> {
    let declared: Vec<&str> = pipeline
        .params
        .iter()
        .map(|param| param.name.as_str())
        .collect();
    let mut errors = Vec::new();
    for name in overrides.keys() {
        if pipeline.param(name).is_none() {
            let hint = match nearest(name, &declared) {
                Some(near) => format!("did you mean `{near}`? "),
                None => String::new(),
            };
            let known = if declared.is_empty() {
                format!("pipeline `{}` declares no parameters", pipeline.name)
            } else {
                format!("declared parameters: {}", declared.join(", "))
            };
            errors.push(format!("unknown parameter `{name}`; {hint}{known}"));
        }
    }
    let mut values = BTreeMap::new();
    for param in &pipeline.params {
        let value = match overrides.get(&param.name) {
            Some(given) => match param_value(param.param_type, given) {
                Ok(value) => value,
                Err(expected) => {
                    errors.push(format!(
                        "parameter `{}` is {}, and `{given}` is not; give {expected}",
                        param.name,
                        article(param.param_type)
                    ));
                    continue;
                }
            },
            None => match &param.default {
                Some(default) => default.clone(),
                None => {
                    errors.push(format!(
                        "parameter `{}` ({}) has no default; give it a value when triggering the run",
                        param.name,
                        param.param_type.as_str()
                    ));
                    continue;
                }
            },
        };
        values.insert(param.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn article(param_type: ParamType) -> &'static str {
    match param_type {
        ParamType::String => "a string",
        ParamType::Integer => "an integer",
        ParamType::Number => "a number",
        ParamType::Boolean => "a boolean",
    }
}

/// A JSON value as a parameter of `param_type`. Text spelling the value (`"10"`, `"true"`) is accepted
/// for every type, as command lines pass text; a number or boolean given for a string becomes its
/// text. The error says what to give instead.
pub fn param_value(
    param_type: ParamType,
    given: &serde_json::Value,
) -> Result<ParamValue, &'static str> {
    use serde_json::Value;
    match (param_type, given) {
        (ParamType::String, Value::String(text)) => Ok(ParamValue::String(text.clone())),
        (ParamType::String, Value::Number(number)) => Ok(ParamValue::String(number.to_string())),
        (ParamType::String, Value::Bool(value)) => Ok(ParamValue::String(value.to_string())),
        (ParamType::Integer, Value::Number(number)) => number
            .as_i64()
            .map(ParamValue::Integer)
            .ok_or("a whole number such as 10"),
        (ParamType::Integer, Value::String(text)) => text
            .trim()
            .parse()
            .map(ParamValue::Integer)
            .map_err(|_| "a whole number such as 10"),
        (ParamType::Number, Value::Number(number)) => number
            .as_f64()
            .map(ParamValue::Number)
            .ok_or("a number such as 0.5"),
        (ParamType::Number, Value::String(text)) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite())
            .map(ParamValue::Number)
            .ok_or("a number such as 0.5"),
        (ParamType::Boolean, Value::Bool(value)) => Ok(ParamValue::Boolean(*value)),
        (ParamType::Boolean, Value::String(text)) => match text.trim() {
            "true" => Ok(ParamValue::Boolean(true)),
            "false" => Ok(ParamValue::Boolean(false)),
            _ => Err("true or false"),
        },
        (ParamType::String, _) => Err("text"),
        (ParamType::Integer, _) => Err("a whole number such as 10"),
        (ParamType::Number, _) => Err("a number such as 0.5"),
        (ParamType::Boolean, _) => Err("true or false"),
    }
}

#[cfg(test)]
mod tests;
