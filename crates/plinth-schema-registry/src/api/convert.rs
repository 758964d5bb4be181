//! Every conversion between `plinth.schemaregistry.v1` messages and registry types, once.

use plinth_proto::ids::{SchemaId, Subject};
use plinth_proto::schemaregistry::v1 as pb;

use crate::domain::config::{CompatibilityConfig, CompatibilityLevel, CompatibilityPolicy, Mode};
use crate::domain::schema::{SchemaReference, SchemaType};
use crate::error::Error;
use crate::registry::{SchemaInput, StoredSchema, VersionView};

pub(crate) fn required_subject(subject: Option<Subject>) -> Result<Subject, Error> {
    subject.ok_or_else(|| Error::InvalidRequest {
        field: "subject".into(),
        reason: "missing; name the subject, e.g. `orders-value`".into(),
    })
}

pub(crate) fn schema_input(schema: Option<pb::Schema>) -> Result<SchemaInput, Error> {
    let schema = schema.ok_or_else(|| Error::InvalidRequest {
        field: "schema".into(),
        reason: "missing; send the schema text in `schema.schema`".into(),
    })?;
    let schema_type = match pb::SchemaType::try_from(schema.schema_type) {
        Ok(pb::SchemaType::Unspecified | pb::SchemaType::Json) => SchemaType::Json,
        Err(_) => {
            return Err(Error::InvalidRequest {
                field: "schema.schema_type".into(),
                reason: format!(
                    "unknown schema type {}; use SCHEMA_TYPE_JSON",
                    schema.schema_type
                ),
            });
        }
    };
    let references = schema
        .references
        .into_iter()
        .map(|reference| {
            Ok(SchemaReference {
                name: reference.name,
                subject: reference.subject.ok_or_else(|| Error::InvalidRequest {
                    field: "schema.references.subject".into(),
                    reason: "missing; each reference names a registered subject and version".into(),
                })?,
                version: reference.version,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(SchemaInput {
        text: schema.schema,
        schema_type,
        references,
    })
}

pub(crate) fn schema_message(schema: &StoredSchema) -> pb::Schema {
    pb::Schema {
        schema: schema.text.clone(),
        schema_type: pb::SchemaType::Json.into(),
        references: schema
            .references
            .iter()
            .map(|reference| pb::SchemaReference {
                name: reference.name.clone(),
                subject: Some(reference.subject.clone()),
                version: reference.version,
            })
            .collect(),
    }
}

pub(crate) fn version_message(view: &VersionView) -> pb::SubjectVersion {
    pb::SubjectVersion {
        subject: Some(view.subject.clone()),
        version: view.version,
        id: Some(view.schema.id),
        schema: Some(schema_message(&view.schema)),
        deleted: view.deleted,
    }
}

pub(crate) fn schema_id(id: Option<SchemaId>) -> Result<SchemaId, Error> {
    id.ok_or_else(|| Error::InvalidRequest {
        field: "id".into(),
        reason: "missing; give the global schema id".into(),
    })
}

pub(crate) fn level_to_wire(level: CompatibilityLevel) -> pb::CompatibilityLevel {
    match level {
        CompatibilityLevel::None => pb::CompatibilityLevel::None,
        CompatibilityLevel::Backward => pb::CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive => pb::CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward => pb::CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive => pb::CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full => pb::CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive => pb::CompatibilityLevel::FullTransitive,
    }
}

pub(crate) fn config_message(config: CompatibilityConfig) -> pb::Config {
    pb::Config {
        compatibility_level: level_to_wire(config.level).into(),
        compatibility_policy: match config.policy {
            CompatibilityPolicy::Strict => pb::CompatibilityPolicy::Strict,
            CompatibilityPolicy::Lenient => pb::CompatibilityPolicy::Lenient,
        }
        .into(),
    }
}

/// A config from the wire; unset fields keep `current`.
pub(crate) fn config_from_wire(
    config: Option<pb::Config>,
    current: CompatibilityConfig,
) -> Result<CompatibilityConfig, Error> {
    let config = config.ok_or_else(|| Error::InvalidRequest {
        field: "config".into(),
        reason: "missing; set config.compatibility_level".into(),
    })?;
    let level = match pb::CompatibilityLevel::try_from(config.compatibility_level) {
        Ok(pb::CompatibilityLevel::Unspecified) => current.level,
        Ok(pb::CompatibilityLevel::None) => CompatibilityLevel::None,
        Ok(pb::CompatibilityLevel::Backward) => CompatibilityLevel::Backward,
        Ok(pb::CompatibilityLevel::BackwardTransitive) => CompatibilityLevel::BackwardTransitive,
        Ok(pb::CompatibilityLevel::Forward) => CompatibilityLevel::Forward,
        Ok(pb::CompatibilityLevel::ForwardTransitive) => CompatibilityLevel::ForwardTransitive,
        Ok(pb::CompatibilityLevel::Full) => CompatibilityLevel::Full,
        Ok(pb::CompatibilityLevel::FullTransitive) => CompatibilityLevel::FullTransitive,
        Err(_) => {
            return Err(Error::InvalidCompatibilityLevel {
                value: config.compatibility_level.to_string(),
            });
        }
    };
    let policy = match pb::CompatibilityPolicy::try_from(config.compatibility_policy) {
        Ok(pb::CompatibilityPolicy::Unspecified) => current.policy,
        Ok(pb::CompatibilityPolicy::Strict) => CompatibilityPolicy::Strict,
        Ok(pb::CompatibilityPolicy::Lenient) => CompatibilityPolicy::Lenient,
        Err(_) => {
            return Err(Error::InvalidRequest {
                field: "config.compatibility_policy".into(),
                reason: format!(
                    "unknown policy {}; use STRICT or LENIENT",
                    config.compatibility_policy
                ),
            });
        }
    };
    Ok(CompatibilityConfig { level, policy })
}

pub(crate) fn mode_to_wire(mode: Mode) -> pb::Mode {
    match mode {
        Mode::ReadWrite => pb::Mode::Readwrite,
        Mode::ReadOnly => pb::Mode::Readonly,
        Mode::Import => pb::Mode::Import,
    }
}

pub(crate) fn mode_from_wire(mode: i32) -> Result<Mode, Error> {
    match pb::Mode::try_from(mode) {
        Ok(pb::Mode::Readwrite) => Ok(Mode::ReadWrite),
        Ok(pb::Mode::Readonly) => Ok(Mode::ReadOnly),
        Ok(pb::Mode::Import) => Ok(Mode::Import),
        Ok(pb::Mode::Unspecified) | Err(_) => Err(Error::InvalidMode {
            value: mode.to_string(),
        }),
    }
}
