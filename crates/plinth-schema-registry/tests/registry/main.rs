//! Registry behaviour against real databases: every scenario runs on SQLite and on PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the first surprise"
)]

mod backend;
mod bad_input;
mod replicas;
mod rest;
mod semantics;
