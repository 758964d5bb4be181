//! The `plinth` command line: client subcommands for each service (talking gRPC to a running platform)
//! and `plinth up`, which runs every service built so far in one process on embedded defaults.
//!
//! This is the one crate that links the services together; the services never depend on each other.

pub mod commands;
pub mod files;
pub mod journey;
pub mod output;
