//! Subcommands and the global connection flags.

pub mod schema;
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
    /// Register, read, check and delete schemas in the schema registry.
    Schema(Box<schema::SchemaArgs>),
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
    /// Request timeout, e.g. 10s.
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
        Command::Schema(command) => schema::run(*command).await,
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

/// Turns a gRPC answer into a value or an error that says what the service said and what to do.
pub fn call<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    match result {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => {
            let error = plinth_runtime::error::ApiError::from_status(&status);
            Err(anyhow::anyhow!("{error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
