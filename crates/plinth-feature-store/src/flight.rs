//! Arrow Flight on the feature store's gRPC port: `DoGet` with a ticket holding a protobuf-encoded
//! `plinth.featurestore.v1.TrainingSetRequest` streams the point-in-time-correct training set as it is
//! built, so a trainer reads it without a round trip through the lake. Every other Flight method answers
//! UNIMPLEMENTED with what to use instead.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use plinth_proto::featurestore::v1 as pb;
use plinth_runtime::error::ApiError;
use prost::Message as _;
use tonic::{Request, Response, Status, Streaming};

use crate::feature_store::FeatureStore;

/// The largest gRPC message Flight sends.
const MAX_FLIGHT_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// The target size of one encoded `FlightData` message.
const TARGET_FLIGHT_DATA_BYTES: usize = 4 * 1024 * 1024;

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight service over the feature store.
#[derive(Debug, Clone)]
pub struct TrainingSetFlightService {
    store: Arc<FeatureStore>,
}

/// The tonic server of the Flight service.
pub fn flight_service(store: Arc<FeatureStore>) -> FlightServiceServer<TrainingSetFlightService> {
    FlightServiceServer::new(TrainingSetFlightService { store })
        .max_decoding_message_size(MAX_FLIGHT_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_FLIGHT_MESSAGE_BYTES)
}

fn unimplemented(method: &str, instead: &str) -> Status {
    Status::unimplemented(format!(
        "Flight {method} is not offered by the Plinth feature store; {instead}"
    ))
}

const INSTEAD: &str = "stream a training set with DoGet and a ticket holding a TrainingSetRequest";

#[tonic::async_trait]
impl FlightService for TrainingSetFlightService {
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
            "authenticate with a bearer token in the `authorization` header instead",
        ))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unimplemented("GetFlightInfo", INSTEAD))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(unimplemented("PollFlightInfo", INSTEAD))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(unimplemented("GetSchema", INSTEAD))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let ticket = request.into_inner().ticket;
        let training_set = pb::TrainingSetRequest::decode(ticket.as_ref()).map_err(|err| {
            Status::from(ApiError::invalid_argument(
                "TICKET_INVALID",
                format!("the ticket is not a protobuf-encoded plinth.featurestore.v1.TrainingSetRequest: {err}"),
            ))
        })?;
        let batches = crate::training::stream(&self.store, training_set)?
            .map_err(|err| FlightError::Tonic(Box::new(Status::from(crate::error::offline(err)))));
        let encoded = FlightDataEncoderBuilder::new()
            .with_max_flight_data_size(TARGET_FLIGHT_DATA_BYTES)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(encoded.boxed())))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(unimplemented(
            "DoPut",
            "write rows with Push, or to the lake through the data hub's Flight DoPut",
        ))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(unimplemented("DoExchange", INSTEAD))
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        Err(unimplemented("DoAction", INSTEAD))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }
}
