//! The pure parts of `plinth model predict` arguments: `--key` rows and the `--entities` JSON object,
//! both turned into the column-major entity map PredictByKey takes.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use plinth_proto::featurestore::v1 as fs;
use serde_json::Value as Json;

/// Entity rows, column-major: each join key with one value per row, keys in the order given (`--key`)
/// or sorted (`--entities`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EntityRows {
    columns: Vec<(String, Vec<fs::Value>)>,
}

impl EntityRows {
    /// Checks that there is at least one column, every column has the same number of values, and at
    /// least one row.
    fn new(columns: Vec<(String, Vec<fs::Value>)>) -> anyhow::Result<Self> {
        let Some((first, first_values)) = columns.first() else {
            bail!("no entity rows: pass --key KEY=VALUE or --entities '{{\"KEY\": [VALUE, ...]}}'");
        };
        for (key, values) in &columns {
            if values.len() != first_values.len() {
                bail!(
                    "--entities: join key {key} has {} values but {first} has {}: every join key needs one value per row",
                    values.len(),
                    first_values.len()
                );
            }
        }
        if first_values.is_empty() {
            bail!("--entities: no entity rows (join key {first} has no values)");
        }
        Ok(Self { columns })
    }

    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        self.columns.first().map_or(0, |(_, values)| values.len())
    }

    /// The join key names, in column order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(key, _)| key.as_str())
    }

    /// Row `row`'s value of each join key, in column order.
    pub(crate) fn row(&self, row: usize) -> impl Iterator<Item = (&str, Option<&fs::Value>)> {
        self.columns
            .iter()
            .map(move |(key, values)| (key.as_str(), values.get(row)))
    }

    /// The request's `entities` map.
    pub(crate) fn columns(&self) -> HashMap<String, fs::RepeatedValue> {
        self.columns
            .iter()
            .map(|(key, values)| {
                (
                    key.clone(),
                    fs::RepeatedValue {
                        val: values.clone(),
                    },
                )
            })
            .collect()
    }
}

fn int64(number: i64) -> fs::Value {
    fs::Value {
        val: Some(fs::value::Val::Int64Val(number)),
    }
}

fn text(text: &str) -> fs::Value {
    fs::Value {
        val: Some(fs::value::Val::StringVal(text.to_owned())),
    }
}

/// One `--key` value: an int64 when the text is an integer (or with `i:`), text with `s:` or otherwise.
fn key_value(raw: &str) -> Result<fs::Value, String> {
    if let Some(rest) = raw.strip_prefix("s:") {
        return Ok(text(rest));
    }
    if let Some(number) = raw.strip_prefix("i:") {
        return number.trim().parse().map(int64).map_err(|_| {
            format!("`{raw}`: `{number}` after i: is not a 64-bit integer; drop i: to send text")
        });
    }
    Ok(raw.parse().map_or_else(|_| text(raw), int64))
}

/// Parses one `--key`: `key=value` pairs separated by commas, e.g. `driver_id=1001` or
/// `driver_id=1001,customer_id=s:42`.
pub(crate) fn parse_key_row(row: &str) -> Result<Vec<(String, fs::Value)>, String> {
    let mut pairs: Vec<(String, fs::Value)> = Vec::new();
    for pair in row.split(',') {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            format!(
                "`{pair}` is not KEY=VALUE, e.g. driver_id=1001 (s:1001 sends text, several join keys: a=1,b=2)"
            )
        })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("`{pair}` has no join key before `=`"));
        }
        if pairs.iter().any(|(seen, _)| seen == key) {
            return Err(format!("`{row}` names the join key {key} twice"));
        }
        pairs.push((key.to_owned(), key_value(value.trim())?));
    }
    Ok(pairs)
}

/// Checks a `--key` as the command line is parsed, keeping its text.
pub(crate) fn check_key_row(row: &str) -> Result<String, String> {
    parse_key_row(row).map(|_| row.to_owned())
}

/// The `--key` rows, column-major; every row must name the same join keys.
pub(crate) fn key_rows(rows: &[String]) -> anyhow::Result<EntityRows> {
    let mut columns: Vec<(String, Vec<fs::Value>)> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let pairs = parse_key_row(row).map_err(anyhow::Error::msg)?;
        if index == 0 {
            columns = pairs
                .into_iter()
                .map(|(key, value)| (key, vec![value]))
                .collect();
            continue;
        }
        let expected: Vec<&str> = columns.iter().map(|(key, _)| key.as_str()).collect();
        let mut given: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
        let mut wanted = expected.clone();
        given.sort_unstable();
        wanted.sort_unstable();
        if given != wanted {
            bail!(
                "--key {row} names the join keys {} but the first --key names {}: every row needs the same join keys",
                given.join(","),
                expected.join(",")
            );
        }
        for (key, value) in pairs {
            if let Some((_, values)) = columns.iter_mut().find(|(seen, _)| *seen == key) {
                values.push(value);
            }
        }
    }
    EntityRows::new(columns)
}

/// The text of `--entities`: the argument itself, or the content of the file after `@`.
pub(crate) fn read_entities_arg(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the --entities file {path}")),
        None => Ok(arg.to_owned()),
    }
}

/// Parses `--entities`: a JSON object of join key -> array of values (integers, other numbers, strings
/// or booleans), one per row.
pub(crate) fn entities_json(text: &str) -> anyhow::Result<EntityRows> {
    let json: Json = serde_json::from_str(text).with_context(|| {
        "--entities is not JSON: pass an object of join key -> values, e.g. '{\"driver_id\": [1001, 1002]}'"
    })?;
    let Json::Object(object) = json else {
        bail!(
            "--entities must be a JSON object of join key -> values, e.g. '{{\"driver_id\": [1001, 1002]}}'"
        );
    };
    let mut columns = Vec::with_capacity(object.len());
    for (key, values) in object {
        let Json::Array(values) = values else {
            bail!(
                "--entities: join key {key} must map to an array with one value per row, e.g. [1001, 1002]"
            );
        };
        let values = values
            .iter()
            .enumerate()
            .map(|(row, value)| {
                json_value(value).with_context(|| format!("--entities: {key}[{row}]"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        columns.push((key, values));
    }
    EntityRows::new(columns)
}

/// One JSON entity value as a feature store value.
fn json_value(value: &Json) -> anyhow::Result<fs::Value> {
    let val = match value {
        Json::Bool(flag) => fs::value::Val::BoolVal(*flag),
        Json::String(string) => fs::value::Val::StringVal(string.clone()),
        Json::Number(number) => {
            if let Some(integer) = number.as_i64() {
                fs::value::Val::Int64Val(integer)
            } else if number.is_u64() {
                bail!("{number} does not fit in a 64-bit signed integer: send it as a string");
            } else if let Some(float) = number.as_f64() {
                fs::value::Val::DoubleVal(float)
            } else {
                bail!("{number} is not a number an entity key can hold");
            }
        }
        Json::Null => bail!("null is not an entity key value: drop the row or give its key"),
        Json::Array(_) | Json::Object(_) => {
            bail!("{value} is not an entity key value: use an integer, number, string or boolean")
        }
    };
    Ok(fs::Value { val: Some(val) })
}
