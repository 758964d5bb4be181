//! The registry's errors, with Confluent's error codes, and their one mapping to gRPC and HTTP.

use plinth_proto::ids::{SchemaId, Subject};

use crate::domain::schema::InvalidSchema;
use crate::store::StoreError;

/// Everything that can go wrong in a registry operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The subject has no versions (or only soft-deleted ones and `deleted` was not asked).
    #[error("Subject '{subject}' not found.")]
    SubjectNotFound {
        /// The subject.
        subject: Subject,
    },
    /// The version does not exist.
    #[error("Version {version} not found.")]
    VersionNotFound {
        /// The version as asked.
        version: String,
    },
    /// No schema with this id, or the schema is not under the subject.
    #[error("{}", match id { Some(id) => format!("Schema {id} not found"), None => "Schema not found".to_owned() })]
    SchemaNotFound {
        /// The id, when looked up by id.
        id: Option<SchemaId>,
    },
    /// A second soft delete of a subject.
    #[error("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted {
        /// The subject.
        subject: Subject,
    },
    /// A permanent delete of a subject that was not soft-deleted first.
    #[error("Subject '{subject}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted {
        /// The subject.
        subject: Subject,
    },
    /// A second soft delete of a version.
    #[error(
        "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// The subject.
        subject: Subject,
        /// The version.
        version: i32,
    },
    /// A permanent delete of a version that was not soft-deleted first.
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// The subject.
        subject: Subject,
        /// The version.
        version: i32,
    },
    /// The subject has no configuration of its own.
    #[error("Subject '{subject}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound {
        /// The subject.
        subject: Subject,
    },
    /// The subject has no mode of its own.
    #[error("Subject '{subject}' does not have subject-level mode configured")]
    SubjectModeNotFound {
        /// The subject.
        subject: Subject,
    },
    /// The schema breaks the subject's compatibility rule.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", details.join(", "))]
    Incompatible {
        /// The subject.
        subject: Subject,
        /// Each incompatibility, then the configuration summary.
        details: Vec<String>,
        /// The configured error code (409 or 40901).
        error_code: u32,
    },
    /// The schema does not parse, fails meta-validation or has unresolvable references.
    #[error("Invalid schema {schema}, details: {detail}")]
    InvalidSchema {
        /// The schema text, shortened.
        schema: String,
        /// What is wrong, with the JSON pointer.
        detail: InvalidSchema,
    },
    /// A version that is neither a positive integer nor `latest`.
    #[error(
        "The specified version '{value}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion {
        /// The value given.
        value: String,
    },
    /// An unknown compatibility level.
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel {
        /// The value given.
        value: String,
    },
    /// An unknown mode.
    #[error("Invalid mode. Valid values are READWRITE, READONLY, IMPORT and FORWARD.")]
    InvalidMode {
        /// The value given.
        value: String,
    },
    /// The mode forbids the operation.
    #[error("{message}")]
    OperationNotPermitted {
        /// What was refused and why.
        message: String,
    },
    /// A version cannot be deleted while other schemas reference it.
    #[error("One or more references exist to the schema {{subject={subject},version={version}}}.")]
    ReferenceExists {
        /// The subject.
        subject: Subject,
        /// The version.
        version: i32,
    },
    /// IMPORT mode: the id already holds another schema.
    #[error("Overwrite new schema with id {id} is not permitted.")]
    IdConflict {
        /// The id.
        id: SchemaId,
    },
    /// The subject name is not usable.
    #[error("Invalid subject: {reason}")]
    InvalidSubject {
        /// Why.
        reason: String,
    },
    /// The schema text exceeds the configured limit.
    #[error("Schema is {size} bytes; the limit is {limit} bytes (registry.max_schema_bytes)")]
    SchemaTooLarge {
        /// Size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A request field is missing or malformed (not a schema problem).
    #[error("invalid request: field `{field}`: {reason}")]
    InvalidRequest {
        /// The field.
        field: String,
        /// What is wrong and what to send instead.
        reason: String,
    },
    /// The database failed; the request may be retried.
    #[error("Error in the backend data store: {0}")]
    Store(#[from] StoreError),
}

/// Result alias for registry operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Confluent's `error_code` for the REST body; HTTP status is `error_code / 100` for 5-digit codes.
    pub fn error_code(&self) -> u32 {
        match self {
            Self::SubjectNotFound { .. } => 40401,
            Self::VersionNotFound { .. } => 40402,
            Self::SchemaNotFound { .. } => 40403,
            Self::SubjectSoftDeleted { .. } => 40404,
            Self::SubjectNotSoftDeleted { .. } => 40405,
            Self::VersionSoftDeleted { .. } => 40406,
            Self::VersionNotSoftDeleted { .. } => 40407,
            Self::SubjectConfigNotFound { .. } => 40408,
            Self::SubjectModeNotFound { .. } => 40409,
            Self::Incompatible { error_code, .. } => *error_code,
            Self::InvalidSchema { .. } => 42201,
            Self::InvalidVersion { .. } => 42202,
            Self::InvalidCompatibilityLevel { .. } => 42203,
            Self::InvalidMode { .. } => 42204,
            Self::OperationNotPermitted { .. } => 42205,
            Self::ReferenceExists { .. } => 42206,
            Self::IdConflict { .. } => 42207,
            Self::InvalidSubject { .. } => 42208,
            Self::SchemaTooLarge { .. } => 42209,
            Self::InvalidRequest { .. } => 42201,
            Self::Store(_) => 50001,
        }
    }

    /// The HTTP status of the REST response.
    pub fn http_status(&self) -> u16 {
        let code = self.error_code();
        if code >= 10_000 {
            u16::try_from(code / 100).unwrap_or(500)
        } else {
            u16::try_from(code).unwrap_or(500)
        }
    }

    /// A machine-readable reason, for gRPC error details.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SubjectNotFound { .. } => "SUBJECT_NOT_FOUND",
            Self::VersionNotFound { .. } => "VERSION_NOT_FOUND",
            Self::SchemaNotFound { .. } => "SCHEMA_NOT_FOUND",
            Self::SubjectSoftDeleted { .. } => "SUBJECT_SOFT_DELETED",
            Self::SubjectNotSoftDeleted { .. } => "SUBJECT_NOT_SOFT_DELETED",
            Self::VersionSoftDeleted { .. } => "VERSION_SOFT_DELETED",
            Self::VersionNotSoftDeleted { .. } => "VERSION_NOT_SOFT_DELETED",
            Self::SubjectConfigNotFound { .. } => "SUBJECT_CONFIG_NOT_FOUND",
            Self::SubjectModeNotFound { .. } => "SUBJECT_MODE_NOT_FOUND",
            Self::Incompatible { .. } => "INCOMPATIBLE_SCHEMA",
            Self::InvalidSchema { .. } => "INVALID_SCHEMA",
            Self::InvalidVersion { .. } => "INVALID_VERSION",
            Self::InvalidCompatibilityLevel { .. } => "INVALID_COMPATIBILITY_LEVEL",
            Self::InvalidMode { .. } => "INVALID_MODE",
            Self::OperationNotPermitted { .. } => "OPERATION_NOT_PERMITTED",
            Self::ReferenceExists { .. } => "REFERENCE_EXISTS",
            Self::IdConflict { .. } => "ID_CONFLICT",
            Self::InvalidSubject { .. } => "INVALID_SUBJECT",
            Self::SchemaTooLarge { .. } => "SCHEMA_TOO_LARGE",
            Self::InvalidRequest { .. } => "INVALID_REQUEST",
            Self::Store(_) => "STORE_UNAVAILABLE",
        }
    }

    /// The request field the error is about, when there is one.
    pub fn field(&self) -> Option<String> {
        match self {
            Self::InvalidSchema { detail, .. } => Some(if detail.pointer.is_empty() {
                "schema".to_owned()
            } else {
                format!("schema{}", detail.pointer)
            }),
            Self::InvalidVersion { .. } | Self::VersionNotFound { .. } => Some("version".into()),
            Self::InvalidCompatibilityLevel { .. } => Some("compatibility".into()),
            Self::InvalidMode { .. } => Some("mode".into()),
            Self::InvalidSubject { .. } | Self::SubjectNotFound { .. } => Some("subject".into()),
            Self::SchemaTooLarge { .. } => Some("schema".into()),
            Self::InvalidRequest { field, .. } => Some(field.clone()),
            Self::IdConflict { .. } | Self::SchemaNotFound { id: Some(_) } => Some("id".into()),
            _ => None,
        }
    }

    /// The message a client sees. Store errors are logged with their cause and answered generically.
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(err) => {
                tracing::warn!(error = %err, "schema registry store error");
                "Error in the backend data store; the request was not applied, retry it".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Shortens a schema text for error messages.
pub(crate) fn shorten(text: &str) -> String {
    const LIMIT: usize = 200;
    if text.len() <= LIMIT {
        return text.to_owned();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl From<Error> for plinth_runtime::error::ApiError {
    fn from(err: Error) -> Self {
        use plinth_runtime::error::{ApiError, ErrorCode};
        let code = match &err {
            Error::SubjectNotFound { .. }
            | Error::VersionNotFound { .. }
            | Error::SchemaNotFound { .. }
            | Error::SubjectSoftDeleted { .. }
            | Error::VersionSoftDeleted { .. }
            | Error::SubjectConfigNotFound { .. }
            | Error::SubjectModeNotFound { .. } => ErrorCode::NotFound,
            Error::SubjectNotSoftDeleted { .. }
            | Error::VersionNotSoftDeleted { .. }
            | Error::Incompatible { .. }
            | Error::OperationNotPermitted { .. }
            | Error::ReferenceExists { .. } => ErrorCode::FailedPrecondition,
            Error::IdConflict { .. } => ErrorCode::AlreadyExists,
            Error::InvalidSchema { .. }
            | Error::InvalidVersion { .. }
            | Error::InvalidCompatibilityLevel { .. }
            | Error::InvalidMode { .. }
            | Error::InvalidSubject { .. }
            | Error::InvalidRequest { .. } => ErrorCode::InvalidArgument,
            Error::SchemaTooLarge { .. } => ErrorCode::ResourceExhausted,
            Error::Store(_) => ErrorCode::Unavailable,
        };
        let mut api = ApiError::new(code, err.reason(), err.public_message())
            .with_metadata("error_code", err.error_code().to_string());
        if let Some(field) = err.field() {
            let description = match &err {
                Error::InvalidSchema { detail, .. } => detail.reason.clone(),
                other => other.public_message(),
            };
            api = api.with_field(field, description);
        }
        if let Error::Incompatible { details, .. } = &err {
            for (idx, detail) in details.iter().enumerate() {
                api = api.with_metadata(format!("incompatibility_{idx}"), detail.clone());
            }
        }
        api
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        plinth_runtime::error::ApiError::from(err).into()
    }
}
