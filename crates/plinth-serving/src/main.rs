//! The `plinth-serving` binary: parse configuration, start telemetry, run until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

/// Plinth model serving (gRPC: Open Inference Protocol V2 and plinth.serving.v1 on 8001; REST /v2,
/// metrics and health on 8000).
#[derive(Debug, Parser)]
#[command(name = "plinth-serving", version, about)]
struct Args {
    /// TOML configuration file; `PLINTH_*` environment variables override it (e.g. PLINTH_MODELS__ROOT).
    #[arg(long, env = "PLINTH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The error names the model, key or endpoint and what to do; a backtrace adds nothing.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = plinth_serving::Config::load(args.config.as_deref())?;
    let _telemetry =
        plinth_runtime::telemetry::init(plinth_serving::SERVICE_NAME, &config.telemetry)?;
    plinth_serving::run(config, plinth_runtime::server::shutdown_signal()).await?;
    Ok(())
}
