//! Integration tests of plinth-runtime: real servers on 127.0.0.1:0, real clients.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly; clippy only exempts #[test] functions themselves"
)]

mod client;
mod server;
mod support;
mod tls;
