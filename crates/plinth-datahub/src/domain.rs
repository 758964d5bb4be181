//! The lake's rules as pure functions: no IO, no tonic, no sqlx, no rdkafka.

pub mod lake_file;
pub mod lake_path;
pub mod lake_schema;
pub mod records;
pub mod schema_evolution;
