//! The one error type of model serving, with its gRPC status and HTTP status: every variant names what
//! was wrong (the model, version, tensor or field) and what to do.

/// Why a serving request or a load failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServingError {
    /// The request is malformed: a wrong tensor name, shape or data type, bad contents, an unknown
    /// parameter. `field` names where (`inputs[0].shape`, `entities.driver_id`).
    #[error("{field}: {message}")]
    InvalidArgument {
        /// Where in the request.
        field: String,
        /// What is wrong and what to send instead.
        message: String,
    },
    /// The model, the version or the feature is not known here; `message` lists what exists.
    #[error("{message}")]
    NotFound {
        /// What is missing and what exists.
        message: String,
    },
    /// The model exists but cannot answer now (loading, failed, unloaded version).
    #[error("{message}")]
    FailedPrecondition {
        /// Why and what to do.
        message: String,
    },
    /// A limit was exceeded (batch rows, request bytes, queue full).
    #[error("{message}")]
    ResourceExhausted {
        /// Which limit and its value.
        message: String,
    },
    /// A dependency (the feature store, the object store, ONNX Runtime's library) did not answer.
    #[error("{message}")]
    Unavailable {
        /// What did not answer, and the cause.
        message: String,
    },
    /// The deadline passed before the answer.
    #[error("{message}")]
    DeadlineExceeded {
        /// What was still running.
        message: String,
    },
    /// A model artifact or `model.yaml` is invalid, or the engine failed on it: a load fails with this.
    #[error("{message}")]
    BadModel {
        /// The model, version and reason.
        message: String,
    },
    /// A bug or an engine failure on valid input.
    #[error("{message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

impl ServingError {
    /// An [`ServingError::InvalidArgument`] at `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServingError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A [`ServingError::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        ServingError::NotFound {
            message: message.into(),
        }
    }

    /// A [`ServingError::BadModel`].
    pub fn bad_model(message: impl Into<String>) -> Self {
        ServingError::BadModel {
            message: message.into(),
        }
    }

    /// A [`ServingError::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        ServingError::Internal {
            message: message.into(),
        }
    }

    /// The gRPC status code.
    pub fn code(&self) -> tonic::Code {
        match self {
            ServingError::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            ServingError::NotFound { .. } => tonic::Code::NotFound,
            ServingError::FailedPrecondition { .. } | ServingError::BadModel { .. } => {
                tonic::Code::FailedPrecondition
            }
            ServingError::ResourceExhausted { .. } => tonic::Code::ResourceExhausted,
            ServingError::Unavailable { .. } => tonic::Code::Unavailable,
            ServingError::DeadlineExceeded { .. } => tonic::Code::DeadlineExceeded,
            ServingError::Internal { .. } => tonic::Code::Internal,
        }
    }

    /// The HTTP status of the REST front end (KServe's: 400 for bad input, 404 unknown model, ...).
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            ServingError::InvalidArgument { .. } => http::StatusCode::BAD_REQUEST,
            ServingError::NotFound { .. } => http::StatusCode::NOT_FOUND,
            ServingError::FailedPrecondition { .. } | ServingError::BadModel { .. } => {
                http::StatusCode::BAD_REQUEST
            }
            ServingError::ResourceExhausted { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            ServingError::Unavailable { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            ServingError::DeadlineExceeded { .. } => http::StatusCode::GATEWAY_TIMEOUT,
            ServingError::Internal { .. } => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ServingError> for tonic::Status {
    fn from(err: ServingError) -> Self {
        tonic::Status::new(err.code(), err.to_string())
    }
}
