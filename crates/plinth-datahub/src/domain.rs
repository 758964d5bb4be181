//! The gateway's rules as pure functions: the wire format and the lake's rules. No IO, no tonic, no sqlx,
//! no rdkafka.

pub mod lake_file;
pub mod lake_path;
pub mod lake_schema;
pub mod records;
pub mod schema_evolution;
pub mod wire_format;
