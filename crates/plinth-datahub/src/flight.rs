//! Arrow Flight on the gateway's gRPC port: `DoGet` scans a lake dataset (time range, column projection)
//! and `DoPut` writes record batches into a dataset registered under a subject.
//!
//! A scan's ticket is the JSON text of [`ScanTicket`]; a write's `FlightDescriptor` is a command holding
//! the JSON text of [`WriteCommand`]. `GetFlightInfo` and `GetSchema` take a command descriptor holding a
//! [`ScanTicket`] and answer with the dataset's evolved Arrow schema.

use serde::{Deserialize, Serialize};

/// What `DoGet` scans: the ticket's bytes are this, as JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanTicket {
    /// The dataset to scan.
    pub dataset: String,
    /// Only rows whose `_kafka_timestamp` is at or after this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Only rows whose `_kafka_timestamp` is before this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Only these top-level columns, in this order. Empty: every column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// At most this many rows. Unset: every row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// What `DoPut` writes: the descriptor's command is this, as JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteCommand {
    /// The dataset to write into (created when new).
    pub dataset: String,
    /// The registered subject whose latest schema every row must validate against.
    pub subject: String,
    /// The object-store URL prefix for a new dataset. Unset: the gateway's lake root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_prefix: Option<String>,
}
