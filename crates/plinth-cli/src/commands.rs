//! Subcommands and the global connection flags.

pub mod consume;
pub mod features;
pub mod init;
pub mod lake;
pub mod model;
pub mod pipeline;
pub mod produce;
pub mod schema;
pub mod topic;
pub mod up;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::output::Output;

/// Plinth: schemas, data, features, pipelines and models on one platform.
#[derive(Debug, Parser)]
#[command(name = "plinth", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in one process on embedded defaults, until Ctrl-C.
    Up(up::UpArgs),
    /// Create a model project: features, training script, pipelines, Dockerfile, CI and sample data.
    ///
    /// Example: plinth init churn && cd churn && cat README.md
    Init(init::InitArgs),
    /// Register, read, check and delete schemas in the schema registry.
    Schema(Box<schema::SchemaArgs>),
    /// Create, describe, list and delete topics bound to schema subjects (the data hub).
    Topic(Box<topic::TopicArgs>),
    /// Validate and write JSON records to a topic, one record value per line (the data hub).
    ///
    /// Example: plinth produce orders --file orders.jsonl --key-field order_id
    Produce(Box<produce::ProduceArgs>),
    /// Read a topic's records as JSON lines with a consumer group, committing as it goes (the data hub).
    ///
    /// Example: plinth consume orders --group reports --from earliest --max 10
    Consume(Box<consume::ConsumeArgs>),
    /// Land topics in the data lake as Parquet, list datasets and scan them (the data hub).
    Lake(Box<lake::LakeArgs>),
    /// Plan and apply feature definitions, materialize them, read online features and build training
    /// sets (the feature store).
    ///
    /// Example: plinth features apply features/ && plinth features materialize --incremental
    Features(Box<features::FeaturesArgs>),
    /// Validate, apply and run training and scoring pipelines, follow their runs and read task logs
    /// (the orchestrator).
    ///
    /// Example: plinth pipeline apply pipelines/ && plinth pipeline run train-churn --param epochs=20 --wait
    Pipeline(Box<pipeline::PipelineArgs>),
    /// List, load and unload model versions and predict by entity key (model serving).
    ///
    /// Example: plinth model load driver && plinth model predict driver --key driver_id=1001
    Model(Box<model::ModelArgs>),
}

/// Flags shared by client commands.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Schema registry gRPC endpoint.
    #[arg(
        long,
        env = "PLINTH_REGISTRY_URL",
        default_value = "http://127.0.0.1:7001",
        global = true
    )]
    pub registry: url::Url,
    /// Data hub gRPC endpoint (also serves Arrow Flight).
    #[arg(
        long,
        env = "PLINTH_DATAHUB_URL",
        default_value = "http://127.0.0.1:7002",
        global = true
    )]
    pub datahub: url::Url,
    /// Feature store gRPC endpoint (also serves Arrow Flight).
    #[arg(
        long,
        env = "PLINTH_FEATURE_STORE_URL",
        default_value = "http://127.0.0.1:7003",
        global = true
    )]
    pub feature_store: url::Url,
    /// Orchestrator gRPC endpoint.
    #[arg(
        long,
        env = "PLINTH_ORCHESTRATOR_URL",
        default_value = "http://127.0.0.1:7004",
        global = true
    )]
    pub orchestrator: url::Url,
    /// Bearer token, when the platform has authentication on.
    #[arg(long, env = "PLINTH_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify a TLS endpoint (https://).
    #[arg(long, env = "PLINTH_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(
        long,
        env = "PLINTH_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(
        long,
        env = "PLINTH_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Request timeout, e.g. 10s; for `plinth consume` also how long it waits for a record before it stops.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    plinth_runtime::config::duration::parse(text)
}

/// Runs a parsed command line; the exit code says success (0), a negative answer such as an
/// incompatible schema (1), or an error (2, via `Err`).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Init(args) => init::run(args),
        Command::Schema(command) => schema::run(*command).await,
        Command::Topic(command) => topic::run(*command).await,
        Command::Produce(command) => produce::run(*command).await,
        Command::Consume(command) => consume::run(*command).await,
        Command::Lake(command) => lake::run(*command).await,
        Command::Features(command) => features::run(*command).await,
        Command::Pipeline(command) => pipeline::run(*command).await,
        Command::Model(command) => model::run(*command).await,
    }
}

/// Connects to a service endpoint with the global TLS and token flags.
pub async fn channel(
    endpoint: &url::Url,
    args: &ConnectArgs,
) -> anyhow::Result<plinth_runtime::client::AuthChannel> {
    let tls = (args.ca_cert.is_some() || args.client_cert.is_some()).then(|| {
        plinth_runtime::tls::ClientTls {
            ca_path: args.ca_cert.clone(),
            cert_path: args.client_cert.clone(),
            key_path: args.client_key.clone(),
        }
    });
    Ok(
        plinth_runtime::client::connect(endpoint, tls.as_ref(), args.token.clone(), args.timeout)
            .await?,
    )
}

/// The data hub's gRPC client over a channel to `--datahub`.
pub type DataHubClient = plinth_proto::datahub::v1::data_hub_service_client::DataHubServiceClient<
    plinth_runtime::client::AuthChannel,
>;

/// Connects to the data hub named by `--datahub`.
pub async fn datahub(args: &ConnectArgs) -> anyhow::Result<DataHubClient> {
    let channel = channel(&args.datahub, args).await?;
    // Records and scans can be large; the gateway bounds them itself.
    Ok(DataHubClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

/// Formats a protobuf timestamp as RFC 3339 in UTC with milliseconds, e.g. `2026-01-02T03:04:05.678Z`.
pub fn format_timestamp(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    let timestamp = timestamp?;
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(0);
    chrono::DateTime::from_timestamp(timestamp.seconds, nanos)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Parses an RFC 3339 timestamp, e.g. `2026-01-02T03:04:05Z`, into a protobuf timestamp.
pub fn parse_timestamp(text: &str) -> Result<prost_types::Timestamp, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|err| {
        format!("`{text}` is not an RFC 3339 timestamp ({err}); use e.g. 2026-01-02T03:04:05Z")
    })?;
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// Turns a gRPC answer into a value or an error that says what the service said and what to do.
pub fn call<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    match result {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(status_error(&status)),
    }
}

/// What a gRPC status says, with its reason and field violations, as an error to print.
pub fn status_error(status: &tonic::Status) -> anyhow::Error {
    let error = plinth_runtime::error::ApiError::from_status(status);
    anyhow::anyhow!("{error}")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    fn parses(line: &str) -> bool {
        Cli::try_parse_from(line.split_whitespace()).is_ok()
    }

    #[test]
    fn data_hub_commands_parse_as_documented() {
        for line in [
            "plinth topic create orders --value-subject orders-value --partitions 3 --retention 7d",
            "plinth topic create orders --value-subject v --value-version 2 --key-subject k --key-version 1 --retention unlimited",
            "plinth topic describe orders",
            "plinth topic list --prefix ord -o json",
            "plinth topic delete orders --datahub https://hub.example:7002",
            "plinth produce orders --file orders.jsonl --key-field order_id --batch-size 100 --accept-partial",
            "plinth produce orders --key k",
            "plinth consume orders returns --group g --from 2026-01-02T03:04:05Z --max 3 --no-commit --timeout 5s",
            "plinth consume orders --group g --from earliest",
            "plinth lake sink create orders --dataset orders_v1 --url-prefix s3://lake/events",
            "plinth lake sink list --topic orders",
            "plinth lake sink pause orders",
            "plinth lake sink resume orders",
            "plinth lake sink delete orders",
            "plinth lake ls",
            "plinth lake ls orders -o json",
            "plinth lake scan orders --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z --columns a,b --limit 5 -o json",
            "plinth up --kafka-port 0 --datahub-grpc-port 0 --datahub-http-port 0",
            "plinth up --kafka-bootstrap kafka:9092",
        ] {
            assert!(
                parses(line),
                "{line}: {:?}",
                Cli::try_parse_from(line.split_whitespace()).err()
            );
        }
        for line in [
            "plinth topic create orders",
            "plinth topic create orders --value-subject v --retention forever",
            "plinth topic create orders --value-subject v --key-version 1",
            "plinth produce orders --key k --key-field id",
            "plinth produce orders --batch-size 0",
            "plinth consume orders",
            "plinth consume --group g",
            "plinth consume orders --group g --from yesterday",
            "plinth lake scan orders --from 2026-13-01",
            "plinth up --kafka-bootstrap kafka:9092 --kafka-port 9093",
        ] {
            assert!(!parses(line), "{line} should be refused");
        }
    }

    #[test]
    fn timestamps_round_trip_in_utc() {
        let timestamp = super::parse_timestamp("2026-01-02T04:04:05.5+01:00").unwrap();
        assert_eq!(
            super::format_timestamp(Some(&timestamp)).as_deref(),
            Some("2026-01-02T03:04:05.500Z")
        );
        assert!(super::parse_timestamp("2026-01-02").is_err());
    }
}
