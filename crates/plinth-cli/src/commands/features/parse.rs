//! The pure parts of `plinth features` arguments: `key=value` tags, `view:feature` references and
//! `--entity` rows turned into the column-major entity map the feature store takes.

use std::collections::HashMap;

use anyhow::bail;
use plinth_proto::featurestore::v1 as pb;

/// Parses a `--tag key=value`.
pub(crate) fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is not KEY=VALUE, e.g. team=risk")),
    }
}

/// Parses a feature reference `view:feature`.
pub(crate) fn parse_feature_ref(text: &str) -> Result<String, String> {
    match text.trim().split_once(':') {
        Some((view, feature))
            if !view.is_empty() && !feature.is_empty() && !feature.contains(':') =>
        {
            Ok(text.trim().to_owned())
        }
        _ => Err(format!(
            "`{text}` is not a feature reference VIEW:FEATURE, e.g. driver_hourly_stats:conv_rate"
        )),
    }
}

/// The features a request reads: a feature service, or `view:feature` references.
pub(crate) fn selection(
    feature_service: Option<String>,
    features: Vec<String>,
) -> anyhow::Result<pb::FeatureSelection> {
    let selection = match feature_service {
        Some(service) => pb::feature_selection::Selection::FeatureService(service),
        None if !features.is_empty() => {
            pb::feature_selection::Selection::Features(pb::FeatureList { refs: features })
        }
        None => bail!(
            "no features selected: pass --feature-service NAME or --features VIEW:FEATURE,..."
        ),
    };
    Ok(pb::FeatureSelection {
        selection: Some(selection),
    })
}

/// One `key=value` of an `--entity` row, typed: an integer when the text parses as one (or with `i:`),
/// a string with `s:` or otherwise.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EntityValue {
    /// A 64-bit integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl EntityValue {
    fn parse(text: &str) -> Result<Self, String> {
        if let Some(text) = text.strip_prefix("s:") {
            return Ok(Self::Text(text.to_owned()));
        }
        if let Some(number) = text.strip_prefix("i:") {
            return number.trim().parse().map(Self::Int).map_err(|_| {
                format!(
                    "`{text}`: `{number}` after i: is not a 64-bit integer; drop i: to send text"
                )
            });
        }
        Ok(text
            .parse()
            .map_or_else(|_| Self::Text(text.to_owned()), Self::Int))
    }

    fn is_int(&self) -> bool {
        matches!(self, Self::Int(_))
    }

    fn into_value(self) -> pb::Value {
        let val = match self {
            Self::Int(number) => pb::value::Val::Int64Val(number),
            Self::Text(text) => pb::value::Val::StringVal(text),
        };
        pb::Value { val: Some(val) }
    }
}

/// One entity row: its join keys and values, in the order given.
pub(crate) type EntityRow = Vec<(String, EntityValue)>;

/// Parses one `--entity`: `key=value` pairs separated by commas, e.g. `driver_id=1001` or
/// `driver_id=1001,customer_id=s:42`.
pub(crate) fn parse_entity_row(text: &str) -> Result<EntityRow, String> {
    let mut row: EntityRow = Vec::new();
    for pair in text.split(',') {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            format!(
                "`{pair}` is not KEY=VALUE, e.g. driver_id=1001 (s:1001 sends text, several keys: a=1,b=2)"
            )
        })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("`{pair}` has no join key before `=`"));
        }
        if row.iter().any(|(seen, _)| seen == key) {
            return Err(format!("`{text}` names the join key {key} twice"));
        }
        row.push((key.to_owned(), EntityValue::parse(value.trim())?));
    }
    Ok(row)
}

/// Checks an `--entity` as the command line is parsed, keeping its text.
pub(crate) fn check_entity_row(text: &str) -> Result<String, String> {
    parse_entity_row(text).map(|_| text.to_owned())
}

/// The column-major entity map (`join key -> one value per row`) of the `--entity` rows, with the join
/// keys in the order of the first row. Every row must name the same keys, and a column must not mix
/// integers and text (the store would find no entity under the other type).
pub(crate) fn entity_columns(
    rows: Vec<EntityRow>,
) -> anyhow::Result<(Vec<String>, HashMap<String, pb::RepeatedValue>)> {
    let Some(first) = rows.first() else {
        bail!("no entity rows: pass --entity KEY=VALUE once per row, e.g. --entity driver_id=1001");
    };
    let keys: Vec<String> = first.iter().map(|(key, _)| key.clone()).collect();
    let mut columns: Vec<Vec<EntityValue>> = vec![Vec::with_capacity(rows.len()); keys.len()];
    for (index, row) in rows.into_iter().enumerate() {
        let mut names: Vec<&str> = row.iter().map(|(key, _)| key.as_str()).collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
        expected.sort_unstable();
        if names != expected {
            bail!(
                "entity row {} names the join keys {} but the first row names {}: give every --entity the same keys",
                index + 1,
                names.join(","),
                expected.join(",")
            );
        }
        for (key, value) in row {
            if let Some(position) = keys.iter().position(|name| *name == key) {
                columns[position].push(value);
            }
        }
    }
    let mut map = HashMap::with_capacity(keys.len());
    for (key, values) in keys.iter().zip(columns) {
        let ints = values.iter().filter(|value| value.is_int()).count();
        if ints != 0 && ints != values.len() {
            bail!(
                "the join key {key} mixes integers and text across rows: prefix the values with s: to send them all as text (or fix the typo)"
            );
        }
        let values = values.into_iter().map(EntityValue::into_value).collect();
        map.insert(key.clone(), pb::RepeatedValue { val: values });
    }
    Ok((keys, map))
}
