use axum::response::IntoResponse as _;
use http_body_util::BodyExt as _;

use super::*;

#[test]
fn round_trip_through_status_keeps_reason_fields_and_metadata() {
    let original = ApiError::invalid_argument("INVALID_SCHEMA", "fix the schema and retry")
        .with_field("schema", "unexpected token at line 3")
        .with_field("subject", "must not be empty")
        .with_metadata("subject", "orders-value");

    let status = tonic::Status::from(original.clone());
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "fix the schema and retry");

    let decoded = ApiError::from_status(&status);
    assert_eq!(decoded, original);
}

#[test]
fn every_code_survives_the_round_trip() {
    for code in ErrorCode::ALL {
        let original = ApiError::new(code, "SOME_REASON", "do something");
        let decoded = ApiError::from_status(&tonic::Status::from(original));
        assert_eq!(decoded.code, code, "{code}");
    }
}

#[test]
fn conflict_is_aborted_on_the_wire() {
    let status = tonic::Status::from(ApiError::conflict("VERSION_CONFLICT", "re-read and retry"));
    assert_eq!(status.code(), tonic::Code::Aborted);
    assert_eq!(
        ApiError::conflict("X", "y").http_status(),
        StatusCode::CONFLICT
    );
}

#[test]
fn internal_errors_hide_their_cause() {
    let status = tonic::Status::from(
        ApiError::internal("connection to postgres://secret@db failed").with_metadata("k", "v"),
    );
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(!status.message().contains("secret"), "{}", status.message());
    let decoded = ApiError::from_status(&status);
    assert_eq!(decoded.reason, "INTERNAL");
    assert!(decoded.metadata.is_empty());
}

#[test]
fn status_without_details_still_decodes() {
    let decoded = ApiError::from_status(&tonic::Status::unavailable("connection refused"));
    assert_eq!(decoded.code, ErrorCode::Unavailable);
    assert_eq!(decoded.reason, "UNAVAILABLE");
    assert_eq!(decoded.message, "connection refused");
}

#[tokio::test]
async fn http_body_is_the_documented_json() {
    let response = ApiError::not_found("SUBJECT_NOT_FOUND", "check the subject name")
        .with_field("subject", "no such subject")
        .with_metadata("subject", "orders")
        .into_response();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "error": {
                "code": "NOT_FOUND",
                "reason": "SUBJECT_NOT_FOUND",
                "message": "check the subject name",
                "field_violations": [{"field": "subject", "description": "no such subject"}],
                "metadata": {"subject": "orders"}
            }
        })
    );
}

#[test]
fn display_lists_code_reason_and_fields() {
    let err = ApiError::invalid_argument("INVALID_SCHEMA", "fix the schema and retry")
        .with_field("schema", "unexpected token")
        .with_field("subject", "must not be empty");
    assert_eq!(
        err.to_string(),
        "fix the schema and retry (INVALID_ARGUMENT INVALID_SCHEMA); `schema`: unexpected token; `subject`: must not be empty"
    );
}
