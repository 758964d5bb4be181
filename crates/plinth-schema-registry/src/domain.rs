//! Types and rules of the registry: subjects, schemas and their canonical form, compatibility levels and
//! modes, payload validation. No IO here: no tonic, no sqlx, no axum.

pub mod compatibility;
pub mod config;
pub mod schema;
pub mod subject;
pub mod validation;

#[cfg(test)]
mod tests;
