//! The `plinth` binary.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: plinth_runtime::allocator::Allocator = plinth_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = plinth_cli::commands::Cli::parse();
    match plinth_cli::commands::run(cli).await {
        Ok(code) => code,
        // A reader that went away (`plinth consume ... | head`) ends the command quietly, as it does
        // for the commands that print through `output`.
        Err(err)
            if err
                .chain()
                .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
                .any(plinth_cli::output::is_broken_pipe) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
