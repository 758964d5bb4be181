//! The contracts of the Plinth platform: code generated from `proto/plinth/**` by tonic/prost, and the
//! hand-written identifier newtypes (`ids`) that the generated code uses in place of bare strings and
//! integers.
//!
//! This crate holds no logic: no validation beyond what an identifier type must guarantee, no
//! conversions to service domain types (those live next to the domain type in each service crate).

pub mod ids;

/// Encoded `FileDescriptorSet` of every Plinth proto package, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/plinth_descriptor.bin"));

/// Shared messages (`plinth.common.v1`).
pub mod common {
    /// Version 1.
    pub mod v1 {
        pub use crate::ids::{DatasetName, SchemaId, Subject, TopicName};
    }
}

/// The schema registry contract (`plinth.schemaregistry.v1`).
pub mod schemaregistry {
    /// Version 1.
    #[allow(missing_docs, clippy::all, unreachable_pub, reason = "generated code")]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plinth.schemaregistry.v1.rs"));
    }
}

/// The data hub gateway contract (`plinth.datahub.v1`).
pub mod datahub {
    /// Version 1.
    #[allow(missing_docs, clippy::all, unreachable_pub, reason = "generated code")]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plinth.datahub.v1.rs"));
    }
}

/// The feature store contract (`plinth.featurestore.v1`).
pub mod featurestore {
    /// Version 1.
    #[allow(missing_docs, clippy::all, unreachable_pub, reason = "generated code")]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plinth.featurestore.v1.rs"));
    }
}

/// The orchestrator contract (`plinth.orchestrator.v1`).
pub mod orchestrator {
    /// Version 1.
    #[allow(missing_docs, clippy::all, unreachable_pub, reason = "generated code")]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plinth.orchestrator.v1.rs"));
    }
}

/// The model serving contract (`plinth.serving.v1`): models, load/unload and predictions by entity key.
pub mod serving {
    /// Version 1.
    #[allow(missing_docs, clippy::all, unreachable_pub, reason = "generated code")]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/plinth.serving.v1.rs"));
    }
}

/// The Open Inference Protocol V2 over gRPC (`inference`, KServe/Triton's package name), with Triton's
/// model repository extension: an external contract, kept to the published spec so that existing clients
/// (`tritonclient`) work. Model serving implements the server; the orchestrator is a client.
#[allow(missing_docs, clippy::all, unreachable_pub, reason = "generated code")]
pub mod inference {
    include!(concat!(env!("OUT_DIR"), "/inference.rs"));
}
