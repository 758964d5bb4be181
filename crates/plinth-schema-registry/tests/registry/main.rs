//! Registry behaviour against real databases: every scenario runs on SQLite and on PostgreSQL.

mod backend;
mod bad_input;
mod replicas;
mod rest;
mod semantics;
