//! `plinth up`: every service built so far in one process, on embedded defaults and the default ports,
//! with state under `--data-dir` (default `./.plinth`), until Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use plinth_runtime::config::{LogFormat, TelemetryConfig};

/// `plinth up` flags.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where embedded state (SQLite files, the local lake) lives.
    #[arg(long, default_value = ".plinth", env = "PLINTH_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address the listeners bind (127.0.0.1 keeps the platform local to this machine).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Schema registry gRPC port.
    #[arg(long, default_value_t = plinth_schema_registry::config::DEFAULT_GRPC_PORT)]
    pub registry_grpc_port: u16,
    /// Schema registry HTTP (Confluent REST) port.
    #[arg(long, default_value_t = plinth_schema_registry::config::DEFAULT_HTTP_PORT)]
    pub registry_http_port: u16,
    /// Log level (tracing filter directive).
    #[arg(long, default_value = "info", env = "PLINTH_LOG")]
    pub log_level: String,
    /// After start, run a short demo against the running platform and print each step.
    #[arg(long)]
    pub demo: bool,
}

/// Runs the platform until Ctrl-C or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let telemetry = TelemetryConfig {
        log_level: args.log_level.clone(),
        log_format: LogFormat::Text,
        ..TelemetryConfig::default()
    };
    let _telemetry = plinth_runtime::telemetry::init("plinth", &telemetry)?;

    let mut registry_config = plinth_schema_registry::Config::default();
    registry_config.server.grpc.listen = SocketAddr::new(args.bind, args.registry_grpc_port);
    registry_config.server.http.listen = SocketAddr::new(args.bind, args.registry_http_port);
    registry_config.server.shutdown_grace_period = std::time::Duration::from_secs(5);
    registry_config.database.url = format!(
        "sqlite://{}?mode=rwc",
        args.data_dir.join("schema-registry.db").display()
    );
    let registry = plinth_schema_registry::bind(&registry_config)
        .await
        .context(
            "the schema registry cannot start (is another `plinth up` running on these ports?)",
        )?;

    let registry_grpc = registry.grpc_addr();
    let registry_http = registry.http_addr();
    println!("Plinth is up (state in {}):", args.data_dir.display());
    println!(
        "  schema-registry  gRPC http://{registry_grpc}   REST http://{registry_http}  (Confluent API; /metrics)"
    );
    println!();
    println!("Next: register a schema");
    println!(
        "  echo '{{\"type\":\"object\",\"properties\":{{\"id\":{{\"type\":\"integer\"}}}}}}' > /tmp/orders.json"
    );
    println!("  plinth schema register orders-value --file /tmp/orders.json");
    println!("  curl http://{registry_http}/subjects");
    println!("Press Ctrl-C to stop.");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let registry_task = tokio::spawn(registry.serve(shutdown(stop_rx.clone())));

    if args.demo {
        crate::commands::up::demo(registry_grpc, registry_http).await?;
    }

    plinth_runtime::server::shutdown_signal().await;
    println!("stopping...");
    let _ = stop_tx.send(true);
    registry_task
        .await
        .context("the schema registry task failed")??;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The demo journey over what exists so far: register a schema, evolve it compatibly, refuse an
/// incompatible change, and validate documents; each step prints the equivalent CLI command.
pub async fn demo(registry_grpc: SocketAddr, registry_http: SocketAddr) -> anyhow::Result<()> {
    use plinth_proto::ids::Subject;
    use plinth_proto::schemaregistry::v1 as pb;
    use plinth_proto::schemaregistry::v1::schema_registry_service_client::SchemaRegistryServiceClient;

    let endpoint: url::Url = format!("http://{registry_grpc}").parse()?;
    let channel =
        plinth_runtime::client::connect(&endpoint, None, None, std::time::Duration::from_secs(10))
            .await?;
    let mut client = SchemaRegistryServiceClient::new(channel);
    let subject = Subject::new("demo-orders-value");
    let schema = |text: serde_json::Value| pb::Schema {
        schema: text.to_string(),
        schema_type: pb::SchemaType::Json.into(),
        references: vec![],
    };
    let v1 = serde_json::json!({"type": "object", "properties": {"order_id": {"type": "integer"}, "amount": {"type": "number"}}, "required": ["order_id"], "additionalProperties": false});
    let v2 = serde_json::json!({"type": "object", "properties": {"order_id": {"type": "integer"}, "amount": {"type": "number"}, "currency": {"type": "string"}}, "required": ["order_id"], "additionalProperties": false});
    let bad = serde_json::json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"], "additionalProperties": false});

    println!(
        "\n[demo 1/4] register a schema   (plinth schema register demo-orders-value --file v1.json)"
    );
    register(&mut client, &subject, schema(v1)).await?;

    println!(
        "[demo 2/4] evolve it compatibly (plinth schema register demo-orders-value --file v2.json)"
    );
    register(&mut client, &subject, schema(v2)).await?;

    println!(
        "[demo 3/4] an incompatible change is refused (plinth schema check demo-orders-value --file bad.json)"
    );
    let answer = crate::commands::call(
        client
            .check_compatibility(pb::CheckCompatibilityRequest {
                subject: Some(subject.clone()),
                schema: Some(schema(bad)),
                version: None,
                verbose: true,
            })
            .await,
    )?;
    println!(
        "  -> compatible: {}; {}",
        answer.is_compatible,
        answer.messages.first().cloned().unwrap_or_default()
    );

    println!(
        "[demo 4/4] validate payloads (plinth schema validate demo-orders-value --file orders.jsonl)"
    );
    let documents = vec![
        r#"{"order_id": 1, "amount": 9.5}"#.to_owned(),
        r#"{"order_id": "one"}"#.to_owned(),
    ];
    let answer = crate::commands::call(
        client
            .validate_payloads(pb::ValidatePayloadsRequest {
                target: Some(pb::validate_payloads_request::Target::SubjectVersion(
                    pb::SubjectVersionRef {
                        subject: Some(subject),
                        version: -1,
                    },
                )),
                documents,
            })
            .await,
    )?;
    for result in &answer.results {
        let detail = result
            .errors
            .first()
            .map(|err| format!(" ({}: {})", err.instance_path, err.message))
            .unwrap_or_default();
        println!(
            "  -> document {}: {}{detail}",
            result.index,
            if result.valid { "valid" } else { "invalid" }
        );
    }
    println!(
        "Try the Confluent REST API too: curl http://{registry_http}/subjects/demo-orders-value/versions\n"
    );
    Ok(())
}

/// One demo registration: register and print the version and id it got.
async fn register(
    client: &mut plinth_proto::schemaregistry::v1::schema_registry_service_client::SchemaRegistryServiceClient<
        plinth_runtime::client::AuthChannel,
    >,
    subject: &plinth_proto::ids::Subject,
    schema: plinth_proto::schemaregistry::v1::Schema,
) -> anyhow::Result<()> {
    let request = plinth_proto::schemaregistry::v1::RegisterSchemaRequest {
        subject: Some(subject.clone()),
        schema: Some(schema),
        ..Default::default()
    };
    let registered = crate::commands::call(client.register_schema(request).await)?
        .registered
        .unwrap_or_default();
    println!(
        "  -> version {} with schema id {}",
        registered.version,
        registered.id.unwrap_or_default()
    );
    Ok(())
}
