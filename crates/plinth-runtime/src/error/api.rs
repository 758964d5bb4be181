//! [`ApiError`]: the one error shape every Plinth service returns, and its single mapping to gRPC
//! (`tonic::Status` with rich details) and to HTTP (a status code plus a JSON body).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use tonic_types::{ErrorDetails, StatusExt as _};

/// The `ErrorInfo.domain` attached to every Plinth error.
pub const ERROR_DOMAIN: &str = "plinth";

/// The message returned for internal errors; the cause is logged instead of returned.
const INTERNAL_MESSAGE: &str =
    "internal error; the cause was logged by the service, retry later or report it";

/// The closed set of error codes a Plinth API returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// The request is malformed; fix the request.
    InvalidArgument,
    /// The addressed resource does not exist.
    NotFound,
    /// The resource to create exists already.
    AlreadyExists,
    /// The system is not in a state where the request can succeed.
    FailedPrecondition,
    /// A concurrent change conflicted with this one; re-read and retry (gRPC `ABORTED`).
    Conflict,
    /// The caller is known but lacks the role the request needs.
    PermissionDenied,
    /// The caller presented no valid credentials.
    Unauthenticated,
    /// A quota or size limit was exceeded.
    ResourceExhausted,
    /// The service cannot serve now; retry with backoff.
    Unavailable,
    /// The request did not finish in time.
    DeadlineExceeded,
    /// A bug or an unexpected failure inside the service.
    Internal,
}

impl ErrorCode {
    /// Every code, for exhaustive tests and documentation.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Conflict,
        ErrorCode::PermissionDenied,
        ErrorCode::Unauthenticated,
        ErrorCode::ResourceExhausted,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
    ];

    /// The UPPER_SNAKE name used in JSON bodies, e.g. `INVALID_ARGUMENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The gRPC status code; [`ErrorCode::Conflict`] maps to `ABORTED`.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
            ErrorCode::FailedPrecondition => tonic::Code::FailedPrecondition,
            ErrorCode::Conflict => tonic::Code::Aborted,
            ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorCode::ResourceExhausted => tonic::Code::ResourceExhausted,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    /// The code a gRPC status maps back to. Codes outside the closed set fold into the nearest one.
    pub fn from_grpc(code: tonic::Code) -> Self {
        match code {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorCode::InvalidArgument,
            tonic::Code::NotFound => ErrorCode::NotFound,
            tonic::Code::AlreadyExists => ErrorCode::AlreadyExists,
            tonic::Code::FailedPrecondition => ErrorCode::FailedPrecondition,
            tonic::Code::Aborted => ErrorCode::Conflict,
            tonic::Code::PermissionDenied => ErrorCode::PermissionDenied,
            tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
            tonic::Code::ResourceExhausted => ErrorCode::ResourceExhausted,
            tonic::Code::Unavailable | tonic::Code::Cancelled => ErrorCode::Unavailable,
            tonic::Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            tonic::Code::Ok
            | tonic::Code::Unknown
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::DataLoss => ErrorCode::Internal,
        }
    }

    /// The HTTP status for this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidArgument | ErrorCode::FailedPrecondition => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::AlreadyExists | ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field of a request: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    /// Path of the field in the request, e.g. `schema.fields[2].name`.
    pub field: String,
    /// What is wrong and what would be accepted.
    pub description: String,
}

/// An error as the client sees it: a code from a closed set, a machine-readable reason, a message
/// that says what to do, field violations and free-form metadata.
///
/// Build one with a constructor per code and the `with_*` builders:
///
/// ```
/// use plinth_runtime::error::ApiError;
///
/// let err = ApiError::invalid_argument("INVALID_SUBJECT", "fix the subject name and retry")
///     .with_field("subject", "must not be empty")
///     .with_metadata("subject", "");
/// assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
/// ```
///
/// Convert it with `tonic::Status::from(err)` in gRPC handlers and return it directly from axum
/// handlers. Errors with [`ErrorCode::Internal`] never leave the service with their message: the
/// conversion logs the message and returns a generic one.
///
/// `Display` shows everything a person needs, for CLI output:
/// ``message (CODE REASON); `field`: description``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// Machine-readable UPPER_SNAKE reason, e.g. `SUBJECT_NOT_FOUND`.
    pub reason: Cow<'static, str>,
    /// Lowercase human message that says what to do next.
    pub message: String,
    /// Invalid request fields.
    pub field_violations: Vec<FieldViolation>,
    /// Extra machine-readable context, e.g. `{"subject": "orders"}`.
    pub metadata: BTreeMap<String, String>,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
                Self::new(ErrorCode::$code, reason, message)
            }
        )*
    };
}

impl ApiError {
    /// An error with the given code, reason and message.
    pub fn new(
        code: ErrorCode,
        reason: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            field_violations: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }

    constructors! {
        /// [`ErrorCode::InvalidArgument`].
        invalid_argument => InvalidArgument,
        /// [`ErrorCode::NotFound`].
        not_found => NotFound,
        /// [`ErrorCode::AlreadyExists`].
        already_exists => AlreadyExists,
        /// [`ErrorCode::FailedPrecondition`].
        failed_precondition => FailedPrecondition,
        /// [`ErrorCode::Conflict`].
        conflict => Conflict,
        /// [`ErrorCode::PermissionDenied`].
        permission_denied => PermissionDenied,
        /// [`ErrorCode::Unauthenticated`].
        unauthenticated => Unauthenticated,
        /// [`ErrorCode::ResourceExhausted`].
        resource_exhausted => ResourceExhausted,
        /// [`ErrorCode::Unavailable`].
        unavailable => Unavailable,
        /// [`ErrorCode::DeadlineExceeded`].
        deadline_exceeded => DeadlineExceeded,
    }

    /// A required request field is missing or empty: INVALID_ARGUMENT `FIELD_REQUIRED`, naming the field
    /// and saying what to send.
    pub fn required(field: &str, what_to_do: &str) -> Self {
        Self::invalid_argument(
            "FIELD_REQUIRED",
            format!("`{field}` is required; {what_to_do}"),
        )
        .with_field(field, "required")
    }

    /// An internal error. `cause` is logged when the error is converted for the wire; the client only
    /// sees a generic message.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, "INTERNAL", cause.to_string())
    }

    /// Adds a field violation.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>, description: impl Into<String>) -> Self {
        self.field_violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The HTTP status this error is returned with.
    pub fn http_status(&self) -> StatusCode {
        self.code.http_status()
    }

    /// Reads an error back from a gRPC status, including the `ErrorInfo` and `BadRequest` details
    /// attached by `From<ApiError> for tonic::Status`. A status without details (from a proxy or a
    /// non-Plinth server) still yields an error: its reason is the code's name.
    pub fn from_status(status: &tonic::Status) -> Self {
        let code = ErrorCode::from_grpc(status.code());
        let details = status.get_error_details();
        let (reason, metadata) = match details.error_info() {
            Some(info) => (
                Cow::Owned(info.reason.clone()),
                info.metadata
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
            ),
            None => (Cow::Borrowed(code.as_str()), BTreeMap::new()),
        };
        let field_violations = details
            .bad_request()
            .map(|bad_request| {
                bad_request
                    .field_violations
                    .iter()
                    .map(|violation| FieldViolation {
                        field: violation.field.clone(),
                        description: violation.description.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ApiError {
            code,
            reason,
            message: status.message().to_owned(),
            field_violations,
            metadata,
        }
    }

    /// Returns the error as it may leave the service: internal errors are logged here and replaced
    /// by a generic message without field violations or metadata.
    fn into_public(self) -> Self {
        if self.code != ErrorCode::Internal {
            return self;
        }
        tracing::error!(
            reason = %self.reason,
            cause = %self.message,
            metadata = ?self.metadata,
            "internal error"
        );
        ApiError::new(ErrorCode::Internal, self.reason, INTERNAL_MESSAGE)
    }

    /// Builds the JSON response with an explicit HTTP status (e.g. 413 for an oversized body, where the
    /// code's own mapping would say 429).
    pub(crate) fn into_response_with_status(self, status: StatusCode) -> Response {
        let public = self.into_public();
        let body = ErrorBody {
            error: ErrorBodyInner {
                code: public.code.as_str(),
                reason: &public.reason,
                message: &public.message,
                field_violations: &public.field_violations,
                metadata: &public.metadata,
            },
        };
        (status, axum::Json(body)).into_response()
    }

    /// Builds the wire response for a request of either protocol: a trailers-only gRPC response for
    /// gRPC requests, JSON otherwise.
    pub(crate) fn into_protocol_response(
        self,
        is_grpc: bool,
        http_status: Option<StatusCode>,
    ) -> Response {
        if is_grpc {
            tonic::Status::from(self).into_http::<axum::body::Body>()
        } else {
            let status = http_status.unwrap_or_else(|| self.http_status());
            self.into_response_with_status(status)
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.message, self.code, self.reason)?;
        for violation in &self.field_violations {
            write!(f, "; `{}`: {}", violation.field, violation.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let err = err.into_public();
        let metadata: HashMap<String, String> = err.metadata.into_iter().collect();
        let mut details = ErrorDetails::with_error_info(err.reason, ERROR_DOMAIN, metadata);
        for violation in err.field_violations {
            details.add_bad_request_violation(violation.field, violation.description);
        }
        tonic::Status::with_error_details(err.code.grpc_code(), err.message, details)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        self.into_response_with_status(status)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorBodyInner<'a>,
}

#[derive(Serialize)]
struct ErrorBodyInner<'a> {
    code: &'static str,
    reason: &'a str,
    message: &'a str,
    field_violations: &'a [FieldViolation],
    metadata: &'a BTreeMap<String, String>,
}

#[cfg(test)]
mod tests;
