//! The registry's two APIs over one [`Registry`](crate::registry::Registry): the Confluent-compatible
//! REST API (`rest`) and `plinth.schemaregistry.v1` over gRPC (`grpc`). Only this module touches wire
//! types; `convert` holds every proto <-> domain conversion, once.

pub mod access;
pub mod grpc;
pub mod rest;

mod convert;
