//! How `plinth features` prints: plans like a terraform plan, listings and online rows as aligned
//! tables, values as text or JSON.

use std::fmt::Write as _;

use plinth_proto::featurestore::v1 as pb;
use serde_json::{Value as Json, json};

/// The name of a definition kind as the YAML files spell it (`feature_view`).
pub(crate) fn kind_name(kind: pb::DefinitionKind) -> &'static str {
    match kind {
        pb::DefinitionKind::Entity => "entity",
        pb::DefinitionKind::Source => "source",
        pb::DefinitionKind::FeatureView => "feature_view",
        pb::DefinitionKind::FeatureService => "feature_service",
        pb::DefinitionKind::Unspecified => "object",
    }
}

/// The name of a change (`create`, `update`, `delete`, `unchanged`).
pub(crate) fn change_name(change: pb::ChangeKind) -> &'static str {
    match change {
        pb::ChangeKind::Create => "create",
        pb::ChangeKind::Update => "update",
        pb::ChangeKind::Delete => "delete",
        pb::ChangeKind::Unchanged => "unchanged",
        pb::ChangeKind::Unspecified => "unknown",
    }
}

/// How many objects each change touches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlanCounts {
    /// New objects.
    pub(crate) create: usize,
    /// Changed objects.
    pub(crate) update: usize,
    /// Removed objects.
    pub(crate) delete: usize,
    /// Objects left as they are.
    pub(crate) unchanged: usize,
}

impl PlanCounts {
    /// Counts the changes of a plan.
    pub(crate) fn of(changes: &[pb::DefinitionChange]) -> Self {
        let mut counts = Self::default();
        for change in changes {
            match change.change() {
                pb::ChangeKind::Create => counts.create += 1,
                pb::ChangeKind::Update => counts.update += 1,
                pb::ChangeKind::Delete => counts.delete += 1,
                pb::ChangeKind::Unchanged | pb::ChangeKind::Unspecified => counts.unchanged += 1,
            }
        }
        counts
    }

    fn changes(self) -> usize {
        self.create + self.update + self.delete
    }
}

/// One plan line: `+ feature_view driver_hourly_stats`, `~ entity driver (join_keys: a -> a, b)`,
/// `- feature_service old_model`; `None` for an unchanged object.
pub(crate) fn change_line(change: &pb::DefinitionChange) -> Option<String> {
    let sign = match change.change() {
        pb::ChangeKind::Create => '+',
        pb::ChangeKind::Update => '~',
        pb::ChangeKind::Delete => '-',
        pb::ChangeKind::Unchanged | pb::ChangeKind::Unspecified => return None,
    };
    let mut line = format!("{sign} {} {}", kind_name(change.kind()), change.name);
    if !change.details.is_empty() {
        let _ = write!(line, " ({})", change.details.join("; "));
    }
    Some(line)
}

/// A whole plan (`applied` false) or the outcome of an apply (`applied` true): a line per change, then a
/// summary line.
pub(crate) fn plan_text(changes: &[pb::DefinitionChange], applied: bool, prune: bool) -> String {
    let counts = PlanCounts::of(changes);
    let mut lines: Vec<String> = changes.iter().filter_map(change_line).collect();
    if counts.changes() == 0 {
        lines.push(format!(
            "No changes: the registry matches the definitions ({} {}).",
            counts.unchanged,
            plural(counts.unchanged, "object", "objects")
        ));
        return lines.join("\n");
    }
    if !lines.is_empty() {
        lines.push(String::new());
    }
    let summary = if applied {
        format!(
            "Apply complete: {} added, {} changed, {} removed, {} unchanged.",
            counts.create, counts.update, counts.delete, counts.unchanged
        )
    } else {
        format!(
            "Plan: {} to add, {} to change, {} to remove, {} unchanged.",
            counts.create, counts.update, counts.delete, counts.unchanged
        )
    };
    lines.push(summary);
    if !applied && !prune && counts.delete == 0 {
        // Without --prune nothing is ever removed; say so, as objects deleted from the files stay.
        lines.push(
            "Registered objects missing from the files stay; --prune removes them.".to_owned(),
        );
    }
    lines.join("\n")
}

/// A plan as JSON: every change, and the counts.
pub(crate) fn plan_json(changes: &[pb::DefinitionChange]) -> Json {
    let counts = PlanCounts::of(changes);
    json!({
        "changes": changes.iter().map(|change| json!({
            "kind": kind_name(change.kind()),
            "name": change.name,
            "change": change_name(change.change()),
            "details": change.details,
        })).collect::<Vec<_>>(),
        "summary": {
            "create": counts.create,
            "update": counts.update,
            "delete": counts.delete,
            "unchanged": counts.unchanged,
        },
    })
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// Tags as `k=v,k=v`, sorted by key.
pub(crate) fn tags_text(tags: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = tags.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A definition summary as JSON.
pub(crate) fn summary_json(summary: &pb::DefinitionSummary) -> Json {
    json!({
        "kind": kind_name(summary.kind()),
        "name": summary.name,
        "owner": summary.owner,
        "description": summary.description,
        "tags": summary.tags,
        "update_time": super::super::format_timestamp(summary.update_time.as_ref()),
    })
}

/// A value as text: `-` for null, RFC 3339 for timestamps, hex for bytes.
pub(crate) fn value_text(value: Option<&pb::Value>) -> String {
    match value.and_then(|value| value.val.as_ref()) {
        None => "-".to_owned(),
        Some(pb::value::Val::StringVal(text)) => text.clone(),
        Some(pb::value::Val::BytesVal(bytes)) => format!("0x{}", hex(bytes)),
        Some(pb::value::Val::Int32Val(number)) => number.to_string(),
        Some(pb::value::Val::Int64Val(number)) => number.to_string(),
        Some(pb::value::Val::DoubleVal(number)) => number.to_string(),
        Some(pb::value::Val::FloatVal(number)) => number.to_string(),
        Some(pb::value::Val::BoolVal(flag)) => flag.to_string(),
        Some(pb::value::Val::UnixTimestampVal(time)) => {
            super::super::format_timestamp(Some(time)).unwrap_or_else(|| "-".to_owned())
        }
    }
}

/// A value as JSON: null, a string, a number, a boolean; bytes as a hex string, timestamps as RFC 3339.
pub(crate) fn value_json(value: Option<&pb::Value>) -> Json {
    match value.and_then(|value| value.val.as_ref()) {
        None => Json::Null,
        Some(pb::value::Val::StringVal(text)) => json!(text),
        Some(pb::value::Val::BytesVal(bytes)) => json!(format!("0x{}", hex(bytes))),
        Some(pb::value::Val::Int32Val(number)) => json!(number),
        Some(pb::value::Val::Int64Val(number)) => json!(number),
        Some(pb::value::Val::DoubleVal(number)) => json!(number),
        Some(pb::value::Val::FloatVal(number)) => json!(number),
        Some(pb::value::Val::BoolVal(flag)) => json!(flag),
        Some(pb::value::Val::UnixTimestampVal(time)) => {
            json!(super::super::format_timestamp(Some(time)))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// The name of an online value's status (`present`, `not_found`, ...).
pub(crate) fn status_name(status: pb::FieldStatus) -> &'static str {
    match status {
        pb::FieldStatus::Present => "present",
        pb::FieldStatus::NullValue => "null_value",
        pb::FieldStatus::NotFound => "not_found",
        pb::FieldStatus::OutsideMaxAge => "outside_max_age",
        pb::FieldStatus::Unspecified => "unspecified",
    }
}

/// The online features of a response, one row per entity: its join keys, then each feature's value,
/// then a status column (`ok`, or each feature that is not present with its status).
pub(crate) struct OnlineRows {
    /// Column names: the join keys, the features, `status`.
    pub(crate) headers: Vec<String>,
    /// One text row per entity.
    pub(crate) rows: Vec<Vec<String>>,
    /// One JSON object per entity: every column's value, and `statuses` (feature -> status).
    pub(crate) json: Vec<Json>,
}

/// Turns a GetOnlineFeatures response into rows. `keys` are the request's join keys: the response's
/// columns of those names are keys, the others features.
pub(crate) fn online_rows(response: &pb::GetOnlineFeaturesResponse, keys: &[String]) -> OnlineRows {
    let names: Vec<String> = response
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.feature_names.as_ref())
        .map(|names| names.val.clone())
        .unwrap_or_default();
    let row_count = response
        .results
        .iter()
        .map(|vector| vector.values.len())
        .max()
        .unwrap_or(0);
    let mut headers = names.clone();
    headers.push("status".to_owned());
    let mut rows = Vec::with_capacity(row_count);
    let mut json_rows = Vec::with_capacity(row_count);
    for row in 0..row_count {
        let mut cells = Vec::with_capacity(headers.len());
        let mut object = serde_json::Map::new();
        let mut statuses = serde_json::Map::new();
        let mut problems = Vec::new();
        for (column, name) in names.iter().enumerate() {
            let vector = response.results.get(column);
            let value = vector.and_then(|vector| vector.values.get(row));
            let status = vector
                .and_then(|vector| vector.statuses.get(row))
                .and_then(|status| pb::FieldStatus::try_from(*status).ok())
                .unwrap_or(pb::FieldStatus::Present);
            cells.push(value_text(value));
            object.insert(name.clone(), value_json(value));
            if !keys.contains(name) {
                statuses.insert(name.clone(), json!(status_name(status)));
                if status != pb::FieldStatus::Present {
                    problems.push(format!("{name}={}", status_name(status)));
                }
            }
        }
        cells.push(if problems.is_empty() {
            "ok".to_owned()
        } else {
            problems.join(",")
        });
        object.insert("statuses".to_owned(), Json::Object(statuses));
        rows.push(cells);
        json_rows.push(Json::Object(object));
    }
    OnlineRows {
        headers,
        rows,
        json: json_rows,
    }
}
