//! The Confluent REST surface: paths, bodies, media types and error bodies.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::backend::{Backend, registry, unique_name};

struct Client {
    router: axum::Router,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/vnd.schemaregistry.v1+json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            content_type.as_deref(),
            Some("application/vnd.schemaregistry.v1+json")
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }
}

async fn client() -> (Client, crate::backend::TestDatabase) {
    let (registry, database) = registry(Backend::Sqlite).await;
    (
        Client {
            router: plinth_schema_registry::api::rest::router(registry),
        },
        database,
    )
}

fn schema_body(schema: Value) -> Value {
    json!({"schema": schema.to_string(), "schemaType": "JSON", "references": [], "metadata": null, "ruleSet": null})
}

#[tokio::test]
async fn register_read_and_list_like_confluent() {
    let (client, _db) = client().await;
    let subject = unique_name("orders-value");
    let schema = json!({"type": "object", "properties": {"id": {"type": "integer"}}});

    let (status, body) = client
        .call(
            "POST",
            &format!("/subjects/{subject}/versions?normalize=False"),
            Some(schema_body(schema.clone())),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], 1);
    assert_eq!(body["version"], 1);

    let (_, body) = client.call("GET", "/schemas/ids/1?subject=x", None).await;
    assert_eq!(body["schemaType"], "JSON");
    assert_eq!(
        serde_json::from_str::<Value>(body["schema"].as_str().unwrap()).unwrap(),
        schema
    );
    assert!(body.get("references").is_none());

    let (_, body) = client
        .call("GET", &format!("/subjects/{subject}/versions/latest"), None)
        .await;
    assert_eq!(
        (
            body["subject"].as_str(),
            body["version"].as_i64(),
            body["id"].as_i64()
        ),
        (Some(subject.as_str()), Some(1), Some(1))
    );

    let (_, body) = client.call("GET", "/subjects", None).await;
    assert_eq!(body, json!([subject]));
    let (_, body) = client
        .call("GET", &format!("/subjects/{subject}/versions"), None)
        .await;
    assert_eq!(body, json!([1]));
    let (_, body) = client.call("GET", "/schemas/ids/1/versions", None).await;
    assert_eq!(body, json!([{"subject": subject, "version": 1}]));
    let (_, body) = client.call("GET", "/schemas/types", None).await;
    assert_eq!(body, json!(["JSON"]));

    // Lookup.
    let (status, body) = client
        .call(
            "POST",
            &format!("/subjects/{subject}?normalize=False&deleted=False"),
            Some(schema_body(schema)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 1);

    // Compatibility with verbose messages; without verbose, no `messages` key.
    let added = json!({"type": "object", "properties": {"id": {"type": "integer"}, "x": {"type": "string"}}});
    let (_, body) = client
        .call(
            "POST",
            &format!("/compatibility/subjects/{subject}/versions/latest?verbose=True"),
            Some(schema_body(added.clone())),
        )
        .await;
    assert_eq!(body["is_compatible"], false);
    assert!(!body["messages"].as_array().unwrap().is_empty());
    let (_, body) = client
        .call(
            "POST",
            &format!("/compatibility/subjects/{subject}/versions"),
            Some(schema_body(added.clone())),
        )
        .await;
    assert_eq!(body, json!({"is_compatible": false}));

    // Register an incompatible schema: 409 with Confluent's message.
    let (status, body) = client
        .call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(schema_body(added)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error_code"], 409);
    assert!(
        body["message"].as_str().unwrap().starts_with(
            "Schema being registered is incompatible with an earlier schema for subject"
        )
    );

    // Config: PUT echoes `compatibility`, GET answers `compatibilityLevel`.
    let (_, body) = client
        .call(
            "PUT",
            &format!("/config/{subject}"),
            Some(json!({"compatibility": "full"})),
        )
        .await;
    assert_eq!(body, json!({"compatibility": "FULL"}));
    let (_, body) = client
        .call("GET", &format!("/config/{subject}"), None)
        .await;
    assert_eq!(body, json!({"compatibilityLevel": "FULL"}));
    let (_, body) = client.call("GET", "/config", None).await;
    assert_eq!(body, json!({"compatibilityLevel": "BACKWARD"}));
    let (status, body) = client.call("GET", "/config/nobody", None).await;
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (StatusCode::NOT_FOUND, Some(40408))
    );
    let (_, body) = client
        .call("GET", "/config/nobody?defaultToGlobal=true", None)
        .await;
    assert_eq!(body["compatibilityLevel"], "BACKWARD");

    // Mode.
    let (_, body) = client.call("GET", "/mode", None).await;
    assert_eq!(body, json!({"mode": "READWRITE"}));

    // Associations: 404, so confluent-kafka falls back to the topic name strategy.
    let (status, _) = client
        .call(
            "GET",
            "/associations/resources/-/orders?resourceType=topic&associationType=value",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Soft delete then permanent delete.
    let (_, body) = client
        .call("DELETE", &format!("/subjects/{subject}"), None)
        .await;
    assert_eq!(body, json!([1]));
    let (status, body) = client
        .call("GET", &format!("/subjects/{subject}/versions"), None)
        .await;
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (StatusCode::NOT_FOUND, Some(40401))
    );
    let (_, body) = client
        .call(
            "GET",
            &format!("/subjects/{subject}/versions?deleted=true&deletedAsNegative=true"),
            None,
        )
        .await;
    assert_eq!(body, json!([-1]));
    let (_, body) = client
        .call(
            "DELETE",
            &format!("/subjects/{subject}?permanent=true"),
            None,
        )
        .await;
    assert_eq!(body, json!([1]));
    let (_, body) = client.call("GET", "/", None).await;
    assert_eq!(body, json!({}));
}

#[tokio::test]
async fn bad_requests_get_confluent_error_bodies() {
    let (client, _db) = client().await;
    let cases: Vec<(&str, String, Option<Value>, StatusCode, i64)> = vec![
        (
            "GET",
            "/subjects/none/versions".into(),
            None,
            StatusCode::NOT_FOUND,
            40401,
        ),
        (
            "GET",
            "/schemas/ids/77".into(),
            None,
            StatusCode::NOT_FOUND,
            40403,
        ),
        (
            "GET",
            "/schemas/ids/abc".into(),
            None,
            StatusCode::NOT_FOUND,
            40403,
        ),
        (
            "GET",
            "/subjects/x/versions/zero".into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
        ),
        (
            "POST",
            "/subjects/x/versions".into(),
            Some(json!({"schema": "{nope"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            "POST",
            "/subjects/x/versions".into(),
            Some(json!({"schema": "[1]"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            "POST",
            "/subjects/x/versions".into(),
            Some(json!({"schemaType": "JSON"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            "POST",
            "/subjects/x/versions".into(),
            Some(json!({"schema": "{}", "schemaType": "AVRO"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            "PUT",
            "/config".into(),
            Some(json!({"compatibility": "SIDEWAYS"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
        ),
        (
            "PUT",
            "/mode".into(),
            Some(json!({"mode": "WRITEONLY"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42204,
        ),
        (
            "GET",
            "/no/such/path".into(),
            None,
            StatusCode::NOT_FOUND,
            404,
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got_status, got) = client.call(method, &path, body).await;
        assert_eq!(
            (got_status, got["error_code"].as_i64()),
            (status, Some(code)),
            "{method} {path}: {got}"
        );
        assert!(
            got["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty())
        );
    }

    // Malformed JSON body: 400; wrong media type: 415.
    let request = Request::post("/subjects/x/versions")
        .header("content-type", "application/json")
        .body(Body::from("{\"schema\": "))
        .unwrap();
    let (status, body) = client.send(request).await;
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(400))
    );
    let request = Request::post("/subjects/x/versions")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let (status, body) = client.send(request).await;
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some(415))
    );
}

#[tokio::test]
async fn payload_validation_reports_per_document_errors() {
    let (client, _db) = client().await;
    let schema = json!({"type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}, "required": ["qty"]});
    client
        .call(
            "POST",
            "/subjects/items/versions",
            Some(schema_body(schema)),
        )
        .await;
    let documents = json!({"documents": [{"qty": 2}, {"qty": 0}, {}]});
    let (status, body) = client
        .call(
            "POST",
            "/subjects/items/versions/latest/validate",
            Some(documents.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["valid"], true);
    assert_eq!(results[1]["valid"], false);
    assert_eq!(results[1]["errors"][0]["instance_path"], "/qty");
    assert_eq!(results[2]["errors"][0]["instance_path"], "");
    let (_, by_id) = client
        .call("POST", "/schemas/ids/1/validate", Some(documents))
        .await;
    assert_eq!(by_id["results"], body["results"]);
}

#[tokio::test]
async fn listings_page_and_list_every_schema() {
    let (client, _db) = client().await;
    for name in ["a-value", "b-value", "c-value"] {
        let schema = json!({"type": "object", "title": name});
        client
            .call(
                "POST",
                &format!("/subjects/{name}/versions"),
                Some(schema_body(schema)),
            )
            .await;
    }
    let none = json!({"compatibility": "NONE"});
    client.call("PUT", "/config/a-value", Some(none)).await;
    client
        .call(
            "POST",
            "/subjects/a-value/versions",
            Some(schema_body(json!({"type": "array"}))),
        )
        .await;

    let (_, body) = client.call("GET", "/subjects?offset=1&limit=1", None).await;
    assert_eq!(body, json!(["b-value"]));
    let (_, body) = client
        .call("GET", "/subjects?limit=-1&subjectPrefix=a", None)
        .await;
    assert_eq!(body, json!(["a-value"]));
    let (_, body) = client
        .call("GET", "/subjects/a-value/versions?offset=1", None)
        .await;
    assert_eq!(body, json!([2]));
    let (status, body) = client.call("GET", "/subjects?limit=many", None).await;
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(42201))
    );

    let (_, body) = client.call("GET", "/schemas", None).await;
    let listed: Vec<(String, i64)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["subject"].as_str().unwrap().to_owned(),
                entry["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("a-value".into(), 1),
            ("a-value".into(), 2),
            ("b-value".into(), 1),
            ("c-value".into(), 1)
        ]
    );
    let (_, body) = client
        .call("GET", "/schemas?latestOnly=true&subjectPrefix=a", None)
        .await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["version"], 2);
    assert_eq!(
        serde_json::from_str::<Value>(body[0]["schema"].as_str().unwrap()).unwrap(),
        json!({"type": "array"})
    );
}
