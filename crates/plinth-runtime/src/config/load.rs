//! Layered loading: `T::default()` as TOML, the file merged over it, then environment variables.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::error::{ConfigError, ConfigOrigin};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "PLINTH_";

/// `PLINTH_*` variables that are not configuration keys and are skipped by the loader
/// (`PLINTH_CONFIG` conventionally holds the path of the configuration file itself).
pub const RESERVED_ENV_VARS: &[&str] = &["PLINTH_CONFIG"];

/// Loads a configuration with [`load`], reading the process environment.
pub fn load_from_env<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    load(file, std::env::vars())
}

/// Loads a configuration of type `T` in three layers:
///
/// 1. `T::default()`;
/// 2. the TOML `file`, if any, merged over it (tables merge key by key);
/// 3. every `PLINTH_<KEY>__<SUBKEY>=value` in `env`: a double underscore nests, a single one stays
///    part of the key, keys are lowercased (`PLINTH_DATABASE__MAX_CONNECTIONS=20` sets
///    `database.max_connections`). A `PLINTH_*` variable without `__` that names no top-level key
///    (`PLINTH_TOKEN`, `PLINTH_TOOLS_DIR`) is another tool's and is skipped. A value is read as a TOML integer, float, boolean or `[...]` array
///    when it parses as one and the key accepts it, and as a string otherwise.
///
/// Errors name the key path, the offending value, where it came from and what is expected.
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    load_with_prefix(ENV_PREFIX, file, env)
}

/// [`load`] with another environment prefix than `PLINTH_`, for processes that host several
/// services and give each its own (e.g. `PLINTH_REGISTRY_`).
pub fn load_with_prefix<T>(
    prefix: &str,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let root = match Value::try_from(T::default()) {
        Ok(Value::Table(table)) => table,
        Ok(other) => {
            return Err(ConfigError::Defaults {
                reason: format!("expected a table, got a {}", other.type_str()),
            });
        }
        Err(err) => {
            return Err(ConfigError::Defaults {
                reason: err.to_string(),
            });
        }
    };
    let mut layers = Layers {
        root,
        ..Layers::default()
    };
    if let Some(path) = file {
        let overlay = read_file(path)?;
        let origin = ConfigOrigin::File(path.to_owned());
        let root = std::mem::take(&mut layers.root);
        layers.root = merge(root, overlay, "", &origin, &mut layers.origins);
    }
    layers.apply_env(prefix, env)?;
    layers.deserialize()
}

#[derive(Default)]
struct Layers {
    root: Table,
    /// Dotted key path -> the layer that last set it. Keys absent here come from the default.
    origins: BTreeMap<String, ConfigOrigin>,
    /// Env-provided keys whose value was read as a non-string TOML scalar, with the raw text, so a
    /// string-typed key can be retried with the text (`PLINTH_DATABASE__PASSWORD=1234`).
    coerced: BTreeMap<String, String>,
}

impl Layers {
    fn apply_env(
        &mut self,
        prefix: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| {
                name.starts_with(prefix)
                    && !RESERVED_ENV_VARS.contains(&name.as_str())
                    && self.is_config_var(&name[prefix.len()..])
            })
            .collect();
        // Sorted so that `PLINTH_GRPC` is applied before `PLINTH_GRPC__LISTEN`, whatever the order
        // of the environment.
        vars.sort();
        for (name, raw) in vars {
            let segments: Vec<String> = name[prefix.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            if segments.iter().any(String::is_empty) {
                return Err(ConfigError::InvalidEnvVar {
                    name,
                    reason:
                        "empty key segment; use `__` only between keys, e.g. PLINTH_GRPC__LISTEN"
                            .to_owned(),
                });
            }
            let key = segments.join(".");
            let value = parse_env_value(&raw);
            if !value.is_str() {
                self.coerced.insert(key.clone(), raw);
            }
            set_path(&mut self.root, &segments, value).map_err(|reason| {
                ConfigError::InvalidEnvVar {
                    name: name.clone(),
                    reason,
                }
            })?;
            self.origins
                .retain(|recorded, _| !is_same_or_child(recorded, &key));
            self.origins.insert(key, ConfigOrigin::Env(name));
        }
        Ok(())
    }

    /// Whether a `PLINTH_*` variable (without the prefix) is meant as configuration: it nests
    /// (`DATABASE__URL`) or names a top-level key. Other `PLINTH_*` variables belong to other tools
    /// of the platform (the CLI's `PLINTH_TOKEN`, the build's `PLINTH_TOOLS_DIR`) and are skipped, so
    /// a shell that sets them can still start a service; a misspelled nested key is still refused.
    fn is_config_var(&self, rest: &str) -> bool {
        rest.contains("__") || self.root.contains_key(&rest.to_ascii_lowercase())
    }

    fn deserialize<T: DeserializeOwned>(mut self) -> Result<T, ConfigError> {
        loop {
            let err = match serde_path_to_error::deserialize(Value::Table(self.root.clone())) {
                Ok(config) => return Ok(config),
                Err(err) => err,
            };
            let segments = path_segments(err.path());
            let key = segments.join(".");
            if let Some(raw) = self.coerced.remove(&key) {
                // The key did not accept the typed reading of an env value: retry it as a string.
                if set_path(&mut self.root, &segments, Value::String(raw)).is_ok() {
                    continue;
                }
            }
            return Err(self.describe(&segments, err.inner().message()));
        }
    }

    fn describe(&self, segments: &[String], message: &str) -> ConfigError {
        if let Some(field) = backticked_after(message, "unknown field `") {
            let key = join_key(segments, field);
            let expected = match message.split_once(", expected ") {
                Some((_, rest)) => format!("expected {rest}"),
                None => "remove it".to_owned(),
            };
            return ConfigError::UnknownKey {
                origin: self.origin_of(&key),
                key,
                expected,
            };
        }
        if let Some(field) = backticked_after(message, "missing field `") {
            return ConfigError::InvalidValue {
                key: join_key(segments, field),
                value: None,
                origin: None,
                reason: "missing; set it in the configuration file or the environment".to_owned(),
            };
        }
        let key = segments.join(".");
        let value = lookup(&self.root, segments)
            .filter(|value| !value.is_table())
            .map(Value::to_string);
        ConfigError::InvalidValue {
            origin: Some(self.origin_of(&key)),
            key: if segments.is_empty() {
                ".".to_owned()
            } else {
                key
            },
            value,
            reason: message.to_owned(),
        }
    }

    /// The layer that set `key`: the deepest recorded ancestor-or-self, else the default.
    fn origin_of(&self, key: &str) -> ConfigOrigin {
        let mut candidate = key;
        loop {
            if let Some(origin) = self.origins.get(candidate) {
                return origin.clone();
            }
            match candidate.rfind('.') {
                Some(dot) => candidate = &candidate[..dot],
                None => return ConfigOrigin::Default,
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str::<Table>(&text).map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start);
        let (line, column) = line_and_column(&text, offset);
        ConfigError::ParseFile {
            path: path.to_owned(),
            line,
            column,
            message: err.message().trim().to_owned(),
        }
    })
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}

/// Merges `overlay` into `base`: tables merge recursively, anything else replaces.
fn merge(
    mut base: Table,
    overlay: Table,
    prefix: &str,
    origin: &ConfigOrigin,
    origins: &mut BTreeMap<String, ConfigOrigin>,
) -> Table {
    for (key, value) in overlay {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let merged = match (base.remove(&key), value) {
            (Some(Value::Table(base_table)), Value::Table(overlay_table)) => {
                Value::Table(merge(base_table, overlay_table, &path, origin, origins))
            }
            (_, value) => {
                record_origins(&path, &value, origin, origins);
                value
            }
        };
        base.insert(key, merged);
    }
    base
}

fn record_origins(
    path: &str,
    value: &Value,
    origin: &ConfigOrigin,
    origins: &mut BTreeMap<String, ConfigOrigin>,
) {
    origins.insert(path.to_owned(), origin.clone());
    if let Value::Table(table) = value {
        for (key, child) in table {
            record_origins(&format!("{path}.{key}"), child, origin, origins);
        }
    }
}

fn is_same_or_child(candidate: &str, key: &str) -> bool {
    candidate == key
        || candidate
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Reads an environment value: integers, floats, booleans and `[...]` arrays as TOML, anything else
/// as a string.
fn parse_env_value(raw: &str) -> Value {
    let trimmed = raw.trim();
    if let Ok(mut table) = toml::from_str::<Table>(&format!("v = {trimmed}"))
        && let Some(value) = table.remove("v")
    {
        let accepted = match &value {
            Value::Integer(_) | Value::Float(_) | Value::Boolean(_) => true,
            Value::Array(_) => trimmed.starts_with('['),
            _ => false,
        };
        if accepted {
            return value;
        }
    }
    Value::String(raw.to_owned())
}

fn set_path(root: &mut Table, segments: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = segments.split_last() else {
        return Err("no key after the prefix".to_owned());
    };
    let mut table = root;
    for (depth, segment) in parents.iter().enumerate() {
        let entry = table
            .entry(segment.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        table = match entry {
            Value::Table(child) => child,
            _ => {
                return Err(format!(
                    "`{}` is not a table, so it has no key `{}`",
                    segments[..=depth].join("."),
                    segments[depth + 1..].join(".")
                ));
            }
        };
    }
    table.insert(last.clone(), value);
    Ok(())
}

fn lookup<'a>(root: &'a Table, segments: &[String]) -> Option<&'a Value> {
    let (first, rest) = segments.split_first()?;
    let mut value = root.get(first)?;
    for segment in rest {
        value = match value {
            Value::Table(table) => table.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// Joins the parent path and a field, unless the path already ends with the field (serde reports the
/// failing key itself for some errors and its parent for others).
fn join_key(segments: &[String], field: &str) -> String {
    match segments.last() {
        Some(last) if last == field => segments.join("."),
        Some(_) => format!("{}.{field}", segments.join(".")),
        None => field.to_owned(),
    }
}

fn backticked_after<'a>(message: &'a str, marker: &str) -> Option<&'a str> {
    let start = message.find(marker)? + marker.len();
    let rest = &message[start..];
    rest.find('`').map(|end| &rest[..end])
}
