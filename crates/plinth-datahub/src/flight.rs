//! Arrow Flight on the gateway's gRPC port: `DoGet` scans a lake dataset (time range, column projection)
//! and `DoPut` writes record batches into a dataset registered under a subject.
//!
//! A scan's ticket is the JSON text of [`ScanTicket`]; a write's `FlightDescriptor` is a command holding
//! the JSON text of [`WriteCommand`]. `GetFlightInfo` and `GetSchema` take a command descriptor holding a
//! [`ScanTicket`] and answer with the dataset's evolved Arrow schema (projected to the ticket's columns);
//! `ListFlights` lists every dataset with a ticket that scans it whole.
//!
//! Scans read one file at a time and hand batches to the client through a channel of
//! [`SCAN_BUFFERED_BATCHES`], so a slow client slows the reading and memory stays at about one file.
//! A put answers with one `PutResult` whose `app_metadata` is JSON: `{"dataset", "rows", "schema_id",
//! "version", "files": [urls]}`. Written files are named `<dataset>/event_date=../written/<uuidv7>.parquet`
//! (see `lake::dataset`); `_kafka_partition` is -1 in their rows.
//!
//! A batch job's dataset (flat `<dataset>/part-NNNNN.parquet` files, read once its `_SUCCESS` marker
//! exists) scans like any other, but its files carry no Kafka timestamps: a ticket with `start_time` or
//! `end_time` over it is refused with INVALID_ARGUMENT, and a put into it with FAILED_PRECONDITION (the
//! job is its one writer).

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use plinth_runtime::error::ApiError;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status, Streaming};

use crate::lake::{Lake, ipc_schema};

/// The largest gRPC message Flight accepts or sends (large batches).
pub const MAX_FLIGHT_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// The target size of one encoded `FlightData` message of a scan.
const TARGET_FLIGHT_DATA_BYTES: usize = 4 * 1024 * 1024;
/// Batches a scan reads ahead of its client.
pub const SCAN_BUFFERED_BATCHES: usize = 4;

/// What `DoGet` scans: the ticket's bytes are this, as JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanTicket {
    /// The dataset to scan.
    pub dataset: String,
    /// Only rows whose `_kafka_timestamp` is at or after this instant (RFC 3339). Refused for a
    /// dataset of a batch job's flat files, which have no Kafka timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Only rows whose `_kafka_timestamp` is before this instant (RFC 3339). Refused like
    /// `start_time`.
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

/// The Flight service over a [`Lake`], with message limits fit for large batches.
pub fn flight_service(lake: Arc<Lake>) -> FlightServiceServer<LakeFlightService> {
    FlightServiceServer::new(LakeFlightService { lake })
        .max_decoding_message_size(MAX_FLIGHT_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_FLIGHT_MESSAGE_BYTES)
}

/// Arrow Flight over the lake's datasets (see the module documentation).
#[derive(Debug, Clone)]
pub struct LakeFlightService {
    lake: Arc<Lake>,
}

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn parse_json<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &str,
    example: &str,
) -> Result<T, Status> {
    serde_json::from_slice(bytes).map_err(|err| {
        Status::from(
            ApiError::invalid_argument(
                "INVALID_FLIGHT_COMMAND",
                format!("the {what} is not the expected JSON ({err}); send for example {example}"),
            )
            .with_field(what, "must be JSON"),
        )
    })
}

const SCAN_EXAMPLE: &str =
    r#"{"dataset":"orders","start_time":"2026-01-01T00:00:00Z","columns":["id"],"limit":100}"#;
const WRITE_EXAMPLE: &str = r#"{"dataset":"orders","subject":"orders-value"}"#;

fn scan_ticket_of(descriptor: &FlightDescriptor) -> Result<ScanTicket, Status> {
    if descriptor.r#type != arrow_flight::flight_descriptor::DescriptorType::Cmd as i32 {
        return Err(Status::from(ApiError::invalid_argument(
            "FLIGHT_DESCRIPTOR_NOT_COMMAND",
            format!(
                "describe a scan with a command descriptor holding a ScanTicket as JSON, for example {SCAN_EXAMPLE}"
            ),
        )));
    }
    parse_json(&descriptor.cmd, "descriptor command", SCAN_EXAMPLE)
}

impl LakeFlightService {
    async fn flight_info(&self, ticket: &ScanTicket) -> Result<FlightInfo, Status> {
        let plan = self.lake.plan_scan(ticket).await?;
        let ticket_bytes =
            serde_json::to_vec(ticket).map_err(|err| Status::internal(err.to_string()))?;
        let total_records = match (plan.total_rows, ticket.limit) {
            (Some(total), Some(limit)) => i64::try_from(total.min(limit)).unwrap_or(-1),
            (Some(total), None) => i64::try_from(total).unwrap_or(-1),
            (None, _) => -1,
        };
        let info = FlightInfo::new()
            .try_with_schema(&plan.output_schema)
            .map_err(|err| Status::internal(err.to_string()))?
            .with_descriptor(FlightDescriptor::new_cmd(ticket_bytes.clone()))
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket_bytes)))
            .with_total_records(total_records);
        Ok(info)
    }
}

#[tonic::async_trait]
impl FlightService for LakeFlightService {
    type HandshakeStream = BoxedStream<HandshakeResponse>;
    type ListFlightsStream = BoxedStream<FlightInfo>;
    type DoGetStream = BoxedStream<FlightData>;
    type DoPutStream = BoxedStream<PutResult>;
    type DoExchangeStream = BoxedStream<FlightData>;
    type DoActionStream = BoxedStream<arrow_flight::Result>;
    type ListActionsStream = BoxedStream<ActionType>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(unimplemented(
            "Handshake",
            "authenticate with the gateway's bearer token in the `authorization` header instead",
        ))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let names = self.lake.dataset_names().await?;
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            let ticket = ScanTicket {
                dataset: name.to_string(),
                ..ScanTicket::default()
            };
            match self.flight_info(&ticket).await {
                Ok(info) => infos.push(Ok(info)),
                // A dataset with a sink but no file yet has no schema to show.
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => infos.push(Err(status)),
            }
        }
        Ok(Response::new(Box::pin(futures::stream::iter(infos))))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = scan_ticket_of(request.get_ref())?;
        Ok(Response::new(self.flight_info(&ticket).await?))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(unimplemented(
            "PollFlightInfo",
            "scans are planned at once: call GetFlightInfo",
        ))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let ticket = scan_ticket_of(request.get_ref())?;
        let plan = self.lake.plan_scan(&ticket).await?;
        Ok(Response::new(SchemaResult {
            schema: ipc_schema(&plan.output_schema)?.into(),
        }))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let ticket: ScanTicket = parse_json(&request.get_ref().ticket, "ticket", SCAN_EXAMPLE)?;
        let plan = self.lake.plan_scan(&ticket).await?;
        let schema = Arc::clone(&plan.output_schema);
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<Result<RecordBatch, FlightError>>(SCAN_BUFFERED_BATCHES);
        tokio::spawn(async move {
            let mut remaining = plan.limit;
            for file in &plan.files {
                if remaining == Some(0) {
                    return;
                }
                let batches = match plan.read(file).await {
                    Ok(batches) => batches,
                    Err(err) => {
                        let _ = sender
                            .send(Err(FlightError::Tonic(Box::new(Status::from(err)))))
                            .await;
                        return;
                    }
                };
                for batch in batches {
                    let batch = match remaining {
                        Some(0) => return,
                        Some(left) => {
                            let rows = u64::try_from(batch.num_rows()).unwrap_or(u64::MAX);
                            let take = rows.min(left);
                            remaining = Some(left - take);
                            batch.slice(0, usize::try_from(take).unwrap_or(usize::MAX))
                        }
                        None => batch,
                    };
                    if sender.send(Ok(batch)).await.is_err() {
                        // The client went away.
                        return;
                    }
                }
            }
        });
        let batches = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_max_flight_data_size(TARGET_FLIGHT_DATA_BYTES)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(encoded)))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let mut stream = request.into_inner();
        let Some(first) = stream.message().await? else {
            return Err(Status::from(ApiError::invalid_argument(
                "EMPTY_PUT",
                "the put stream is empty; send a descriptor with a WriteCommand and record batches",
            )));
        };
        let descriptor = first.flight_descriptor.clone().ok_or_else(|| {
            Status::from(ApiError::invalid_argument(
                "FLIGHT_DESCRIPTOR_REQUIRED",
                format!("the first message of a put needs a command descriptor holding a WriteCommand as JSON, for example {WRITE_EXAMPLE}"),
            ))
        })?;
        let command: WriteCommand =
            parse_json(&descriptor.cmd, "descriptor command", WRITE_EXAMPLE)?;
        let mut writer = self.lake.begin_write(&command).await?;
        let data = futures::stream::once(async move { Ok(first) })
            .chain(stream)
            .map_err(FlightError::from);
        let mut batches = FlightRecordBatchStream::new_from_flight_data(data);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|err| {
                Status::from(ApiError::invalid_argument(
                    "INVALID_FLIGHT_DATA",
                    format!("the put stream does not decode as Arrow record batches: {err}"),
                ))
            })?;
            writer.add_batch(&batch)?;
        }
        let outcome = writer.finish().await?;
        let summary = serde_json::json!({
            "dataset": command.dataset,
            "rows": outcome.row_count,
            "schema_id": outcome.schema_id,
            "version": outcome.version,
            "files": outcome.files.iter().map(|file| file.url.clone()).collect::<Vec<_>>(),
        });
        let result = PutResult {
            app_metadata: summary.to_string().into_bytes().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(result)]))))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(unimplemented(
            "DoExchange",
            "scan with DoGet and write with DoPut",
        ))
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        Err(unimplemented(
            "DoAction",
            "manage sinks and datasets with the DataHubService RPCs (`plinth lake ...`)",
        ))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }
}

fn unimplemented(method: &str, instead: &str) -> Status {
    Status::unimplemented(format!(
        "Flight {method} is not offered by the Plinth lake; {instead}"
    ))
}
