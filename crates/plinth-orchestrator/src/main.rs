//! The `plinth-orchestrator` binary: parse configuration, start telemetry, run until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

/// The Plinth orchestrator (gRPC on 7004, metrics and health on 9104).
#[derive(Debug, Parser)]
#[command(name = "plinth-orchestrator", version, about)]
struct Args {
    /// TOML configuration file; `PLINTH_*` environment variables override it (e.g. PLINTH_EXECUTOR__KIND).
    #[arg(long, env = "PLINTH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The error names the key, value or endpoint and what to do; a backtrace adds nothing.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = plinth_orchestrator::Config::load(args.config.as_deref())?;
    let _telemetry =
        plinth_runtime::telemetry::init(plinth_orchestrator::SERVICE_NAME, &config.telemetry)?;
    plinth_orchestrator::run(config, plinth_runtime::server::shutdown_signal()).await?;
    Ok(())
}
