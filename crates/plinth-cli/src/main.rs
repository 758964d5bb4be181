//! The `plinth` binary.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = plinth_cli::commands::Cli::parse();
    match plinth_cli::commands::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
