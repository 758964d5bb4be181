//! Cross-service tests: one binary, a module per flow.

mod schema_registry;
