//! The schema registry with real clients: Python `confluent-kafka` (its SchemaRegistryClient and
//! JSONSerializer/JSONDeserializer), tonic over gRPC with rich error details, and auth roles.

use plinth_proto::ids::Subject;
use plinth_proto::schemaregistry::v1 as pb;
use plinth_runtime::error::{ApiError, ErrorCode};
use plinth_tests::{RegistryServer, TempDir, python};
use serde_json::{Value, json};

const CONFLUENT_ROUND_TRIP: &str = r#"
import json, sys
from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONSerializer, JSONDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField

client = SchemaRegistryClient({"url": sys.argv[1]})
schema_str = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
    "properties": {"order_id": {"type": "integer"}, "amount": {"type": "number"}},
    "required": ["order_id"],
})
ctx = SerializationContext("orders", MessageField.VALUE)
payload = JSONSerializer(schema_str, client)({"order_id": 7, "amount": 1.5}, ctx)
decoded = JSONDeserializer(schema_str, schema_registry_client=client)(payload, ctx)
decoded_with_writer_schema = JSONDeserializer(None, schema_registry_client=client)(payload, ctx)
# A second serializer (a new client, so no client-side cache) registering the same schema gets the same id.
again = JSONSerializer(schema_str, SchemaRegistryClient({"url": sys.argv[1]}))({"order_id": 8}, ctx)
latest = client.get_latest_version("orders-value")
narrowed = Schema(json.dumps({"type": "object", "properties": {"order_id": {"type": "string"}}}), "JSON")
compatible = client.test_compatibility("orders-value", narrowed)
client.set_compatibility("orders-value", "FULL")
level = client.get_compatibility("orders-value")
errors = {}
try:
    client.register_schema("orders-value", narrowed)
except SchemaRegistryError as err:
    errors["incompatible"] = [err.http_status_code, err.error_code]
try:
    client.register_schema("broken-value", Schema("{not json", "JSON"))
except SchemaRegistryError as err:
    errors["invalid"] = [err.http_status_code, err.error_code]
try:
    client.get_version("orders-value", 42)
except SchemaRegistryError as err:
    errors["missing_version"] = [err.http_status_code, err.error_code]
versions = client.get_versions("orders-value")
looked_up = client.lookup_schema("orders-value", Schema(schema_str, "JSON"))
subjects = client.get_subjects()
by_id = client.get_schema(looked_up.schema_id)
deleted = client.delete_subject("orders-value")
print(json.dumps({
    "magic": payload[0], "id": int.from_bytes(payload[1:5], "big"), "body": payload[5:].decode(),
    "again_id": int.from_bytes(again[1:5], "big"),
    "decoded": decoded, "decoded_with_writer_schema": decoded_with_writer_schema,
    "latest": {"id": latest.schema_id, "version": latest.version, "subject": latest.subject,
               "schema_type": latest.schema.schema_type},
    "compatible": compatible, "level": level, "errors": errors, "versions": versions, "deleted": deleted,
    "looked_up": [looked_up.schema_id, looked_up.version], "subjects": subjects,
    "by_id_type": by_id.schema_type, "by_id_equal": json.loads(by_id.schema_str) == json.loads(schema_str),
}))
"#;

#[tokio::test]
async fn confluent_kafka_client_round_trips_records_through_plinth() {
    let registry = RegistryServer::start().await;
    let output = tokio::process::Command::new(python())
        .arg("-c")
        .arg(CONFLUENT_ROUND_TRIP)
        .arg(registry.rest_url())
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).expect("python prints JSON");

    // Confluent wire format: magic byte 0, 4-byte big-endian id, then the JSON body.
    assert_eq!(result["magic"], 0);
    assert_eq!(result["id"], 1);
    assert_eq!(
        serde_json::from_str::<Value>(result["body"].as_str().unwrap()).unwrap(),
        json!({"order_id": 7, "amount": 1.5})
    );
    assert_eq!(result["again_id"], 1);
    assert_eq!(result["decoded"], json!({"order_id": 7, "amount": 1.5}));
    assert_eq!(result["decoded_with_writer_schema"], result["decoded"]);
    assert_eq!(
        result["latest"],
        json!({"id": 1, "version": 1, "subject": "orders-value", "schema_type": "JSON"})
    );
    assert_eq!(result["compatible"], false);
    assert_eq!(result["level"], "FULL");
    assert_eq!(result["errors"]["incompatible"], json!([409, 409]));
    assert_eq!(result["errors"]["invalid"], json!([422, 42201]));
    assert_eq!(result["errors"]["missing_version"], json!([404, 40402]));
    assert_eq!(result["versions"], json!([1]));
    assert_eq!(result["deleted"], json!([1]));
    assert_eq!(result["looked_up"], json!([1, 1]));
    assert_eq!(result["subjects"], json!(["orders-value"]));
    assert_eq!(result["by_id_type"], "JSON");
    assert_eq!(result["by_id_equal"], true);
}

fn schema(text: Value) -> Option<pb::Schema> {
    Some(pb::Schema {
        schema: text.to_string(),
        schema_type: pb::SchemaType::Json.into(),
        references: vec![],
    })
}

#[tokio::test]
async fn grpc_errors_name_the_field_and_the_fix() {
    let registry = RegistryServer::start().await;
    let mut client = registry.grpc_client(None).await;

    let request = pb::RegisterSchemaRequest {
        subject: Some(Subject::new("typo-value")),
        schema: schema(json!({"type": "strng"})),
        ..Default::default()
    };
    let status = client.register_schema(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let error = ApiError::from_status(&status);
    assert_eq!(
        (error.code, error.reason.as_ref()),
        (ErrorCode::InvalidArgument, "INVALID_SCHEMA")
    );
    assert_eq!(error.field_violations[0].field, "schema/type");
    assert!(
        error.field_violations[0]
            .description
            .contains("meta-schema"),
        "{error:?}"
    );
    assert_eq!(
        error.metadata.get("error_code").map(String::as_str),
        Some("42201")
    );

    let missing = pb::GetSubjectVersionRequest {
        subject: Some(Subject::new("nobody")),
        version: 0,
        deleted: false,
    };
    let status = client.get_subject_version(missing).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(ApiError::from_status(&status).reason, "SUBJECT_NOT_FOUND");

    let no_subject = pb::RegisterSchemaRequest {
        schema: schema(json!({})),
        ..Default::default()
    };
    let status = client.register_schema(no_subject).await.unwrap_err();
    assert_eq!(
        ApiError::from_status(&status).field_violations[0].field,
        "subject"
    );

    // Incompatible registration: FAILED_PRECONDITION with every incompatibility in the metadata.
    let subject = Some(Subject::new("evolving-value"));
    let v1 = pb::RegisterSchemaRequest {
        subject: subject.clone(),
        schema: schema(json!({"type": "object", "properties": {"a": {"type": "integer"}}})),
        ..Default::default()
    };
    client.register_schema(v1).await.unwrap();
    let bad = pb::RegisterSchemaRequest {
        subject,
        schema: schema(json!({"type": "object", "properties": {"a": {"type": "string"}}})),
        ..Default::default()
    };
    let status = client.register_schema(bad).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let error = ApiError::from_status(&status);
    assert_eq!(error.reason, "INCOMPATIBLE_SCHEMA");
    assert!(
        error
            .metadata
            .get("incompatibility_0")
            .is_some_and(|detail| detail.contains("#/properties/a")),
        "{error:?}"
    );

    // Health and reflection are served beside the registry.
    let health_channel = tonic::transport::Channel::from_shared(registry.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(health_channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plinth.schemaregistry.v1.SchemaRegistryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn roles_gate_reads_writes_and_admin_changes() {
    let tokens = TempDir::new("plinth-tokens");
    let tokens_file = tokens.0.join("tokens");
    std::fs::write(
        &tokens_file,
        "read reader-token ci-read\nwrite writer-token producer\nadmin admin-token platform\n",
    )
    .unwrap();
    let registry = RegistryServer::start_with(|config| {
        config.server.auth.enabled = true;
        config.server.auth.tokens_file = Some(tokens_file.clone());
    })
    .await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", registry.rest_url());
    let body = json!({"schema": json!({"type": "object"}).to_string()});

    let anonymous = http.get(url("/subjects")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let read = http
        .get(url("/subjects"))
        .bearer_auth("reader-token")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let denied = http
        .post(url("/subjects/a-value/versions"))
        .bearer_auth("reader-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let written = http
        .post(url("/subjects/a-value/versions"))
        .bearer_auth("writer-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 200);
    // A compatibility check changes nothing: a read token may run it.
    let checked = http
        .post(url("/compatibility/subjects/a-value/versions/latest"))
        .bearer_auth("reader-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let config = json!({"compatibility": "NONE"});
    let not_admin = http
        .put(url("/config"))
        .bearer_auth("writer-token")
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(not_admin.status(), 403);
    let admin = http
        .put(url("/config"))
        .bearer_auth("admin-token")
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    // Probes and metrics stay open for Kubernetes and Prometheus.
    assert_eq!(http.get(url("/readyz")).send().await.unwrap().status(), 200);

    // gRPC: the same roles.
    let mut reader = registry.grpc_client(Some("reader-token")).await;
    let listed = reader
        .list_subjects(pb::ListSubjectsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.subjects, vec![Subject::new("a-value")]);
    let request = pb::RegisterSchemaRequest {
        subject: Some(Subject::new("b-value")),
        schema: schema(json!({})),
        ..Default::default()
    };
    assert_eq!(
        reader.register_schema(request).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let status = registry
        .grpc_client(None)
        .await
        .list_subjects(pb::ListSubjectsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn huge_bodies_and_schemas_are_refused_with_a_limit_error() {
    let registry = RegistryServer::start_with(|config| {
        config.server.max_request_body_bytes = 256 * 1024;
        config.registry.max_schema_bytes = 64 * 1024;
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/subjects/huge-value/versions", registry.rest_url());

    // Over the request body limit: 413 before any parsing.
    let body =
        json!({"schema": json!({"description": "x".repeat(512 * 1024)}).to_string()}).to_string();
    let response = http
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // Within the body limit but over the schema limit: Confluent's 42209.
    let body = json!({"schema": json!({"description": "x".repeat(100 * 1024)}).to_string()});
    let response = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error_code"], 42209);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("registry.max_schema_bytes"),
        "{error}"
    );

    // The registry still serves afterwards.
    let ok = http
        .get(format!("{}/subjects", registry.rest_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn every_grpc_operation_round_trips() {
    let registry = RegistryServer::start().await;
    let mut client = registry.grpc_client(None).await;
    let subject = Some(Subject::new("cycle-value"));
    let v1 = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": false});
    let v2 = json!({"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}, "additionalProperties": false});

    let registered = client
        .register_schema(pb::RegisterSchemaRequest {
            subject: subject.clone(),
            schema: schema(v1.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .registered
        .unwrap();
    assert_eq!((registered.version, registered.id.unwrap().value), (1, 1));
    let found = client
        .lookup_schema(pb::LookupSchemaRequest {
            subject: subject.clone(),
            schema: schema(v1),
            deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .found
        .unwrap();
    assert_eq!(found.version, 1);
    let check = client
        .check_compatibility(pb::CheckCompatibilityRequest {
            subject: subject.clone(),
            schema: schema(v2.clone()),
            version: None,
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(check.is_compatible, "{:?}", check.messages);
    client
        .register_schema(pb::RegisterSchemaRequest {
            subject: subject.clone(),
            schema: schema(v2),
            ..Default::default()
        })
        .await
        .unwrap();
    let latest = client
        .get_subject_version(pb::GetSubjectVersionRequest {
            subject: subject.clone(),
            version: -1,
            deleted: false,
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap();
    assert_eq!((latest.version, latest.id.unwrap().value), (2, 2));
    let fetched = client
        .get_schema(pb::GetSchemaRequest { id: latest.id })
        .await
        .unwrap()
        .into_inner()
        .schema
        .unwrap();
    assert_eq!(fetched.schema_type(), pb::SchemaType::Json);
    let usages = client
        .get_schema_usages(pb::GetSchemaUsagesRequest {
            id: latest.id,
            deleted: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        usages.usages,
        vec![pb::SubjectVersionRef {
            subject: subject.clone(),
            version: 2
        }]
    );
    let versions = client
        .list_versions(pb::ListVersionsRequest {
            subject: subject.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(versions.versions, vec![1, 2]);
    let referenced = client
        .get_referenced_by(pb::GetReferencedByRequest {
            subject: subject.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(referenced.ids.is_empty());

    // Configuration and modes.
    let full = pb::Config {
        compatibility_level: pb::CompatibilityLevel::FullTransitive.into(),
        compatibility_policy: pb::CompatibilityPolicy::Lenient.into(),
    };
    let set = client
        .set_config(pb::SetConfigRequest {
            subject: subject.clone(),
            config: Some(full),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.config, Some(full));
    let got = client
        .get_config(pb::GetConfigRequest {
            subject: subject.clone(),
            default_to_global: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.config, Some(full));
    client
        .delete_config(pb::DeleteConfigRequest {
            subject: subject.clone(),
        })
        .await
        .unwrap();
    let status = client
        .get_config(pb::GetConfigRequest {
            subject: subject.clone(),
            default_to_global: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let global = client
        .get_config(pb::GetConfigRequest {
            subject: None,
            default_to_global: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        global.config.unwrap().compatibility_level(),
        pb::CompatibilityLevel::Backward
    );
    client
        .set_mode(pb::SetModeRequest {
            subject: subject.clone(),
            mode: pb::Mode::Readonly.into(),
            force: false,
        })
        .await
        .unwrap();
    let mode = client
        .get_mode(pb::GetModeRequest {
            subject: subject.clone(),
            default_to_global: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mode.mode(), pb::Mode::Readonly);
    let status = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: subject.clone(),
            permanent: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let status = client
        .set_mode(pb::SetModeRequest {
            subject: subject.clone(),
            mode: 0,
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(ApiError::from_status(&status).reason, "INVALID_MODE");
    client
        .delete_mode(pb::DeleteModeRequest {
            subject: subject.clone(),
        })
        .await
        .unwrap();

    // Validation by subject version and by id.
    let target = pb::validate_payloads_request::Target::SubjectVersion(pb::SubjectVersionRef {
        subject: subject.clone(),
        version: 0,
    });
    let validated = client
        .validate_payloads(pb::ValidatePayloadsRequest {
            target: Some(target),
            documents: vec![r#"{"n": 1}"#.into(), r#"{"n": "x", "z": 1}"#.into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(validated.id.unwrap().value, 2);
    assert!(validated.results[0].valid);
    assert!(!validated.results[1].valid);
    assert!(
        validated.results[1]
            .errors
            .iter()
            .any(|err| err.instance_path == "/n"),
        "{:?}",
        validated.results[1]
    );
    let by_id = pb::validate_payloads_request::Target::Id(plinth_proto::ids::SchemaId::new(1));
    let validated = client
        .validate_payloads(pb::ValidatePayloadsRequest {
            target: Some(by_id),
            documents: vec![r#"{"n": 1}"#.into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(validated.results[0].valid);

    // Deletes.
    let deleted = client
        .delete_subject_version(pb::DeleteSubjectVersionRequest {
            subject: subject.clone(),
            version: 1,
            permanent: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.version, 1);
    let deleted = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: subject.clone(),
            permanent: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.versions, vec![2]);
    let deleted = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: subject.clone(),
            permanent: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.versions, vec![1, 2]);
    let listed = client
        .list_subjects(pb::ListSubjectsRequest {
            deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.subjects.is_empty());
}

#[tokio::test]
async fn reflection_lists_the_registry_and_nothing_it_does_not_serve() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let registry = RegistryServer::start().await;
    let channel = tonic::transport::Channel::from_shared(registry.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    assert!(
        names
            .iter()
            .any(|name| name == "plinth.schemaregistry.v1.SchemaRegistryService"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|name| name == "grpc.health.v1.Health"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|name| name.starts_with("plinth.datahub.")),
        "{names:?}"
    );
}
