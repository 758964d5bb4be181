//! `plinth.datahub.v1.DataHubService`: one short method per RPC over [`Topics`], [`Producer`],
//! [`Subscriptions`] and [`Lake`], and the access policy (roles) of every gateway RPC.

use std::sync::Arc;

use plinth_proto::datahub::v1 as pb;
use plinth_proto::datahub::v1::data_hub_service_server::{DataHubService, DataHubServiceServer};
use plinth_runtime::auth::{AccessPolicy, DefaultAccessPolicy, Role};
use plinth_runtime::error::ApiError;
use tonic::{Request, Response, Status, Streaming};

use crate::lake::Lake;
use crate::produce::Producer;
use crate::subscribe::{SubscribeStream, Subscriptions};
use crate::topics::Topics;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct GrpcApi {
    topics: Arc<Topics>,
    producer: Arc<Producer>,
    subscriptions: Arc<Subscriptions>,
    lake: Arc<Lake>,
}

impl GrpcApi {
    /// The tonic server.
    pub fn server(
        topics: Arc<Topics>,
        producer: Arc<Producer>,
        subscriptions: Arc<Subscriptions>,
        lake: Arc<Lake>,
        max_message_bytes: usize,
    ) -> DataHubServiceServer<Self> {
        DataHubServiceServer::new(Self {
            topics,
            producer,
            subscriptions,
            lake,
        })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes.max(16 * 1024 * 1024))
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(value: T) -> RpcResult<T> {
    Ok(Response::new(value))
}

#[tonic::async_trait]
impl DataHubService for GrpcApi {
    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> RpcResult<pb::CreateTopicResponse> {
        let topic = self.topics.create(request.into_inner()).await?;
        reply(pb::CreateTopicResponse { topic: Some(topic) })
    }

    async fn describe_topic(
        &self,
        request: Request<pb::DescribeTopicRequest>,
    ) -> RpcResult<pb::DescribeTopicResponse> {
        reply(self.topics.describe(request.into_inner()).await?)
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> RpcResult<pb::ListTopicsResponse> {
        let topics = self.topics.list(request.into_inner()).await?;
        reply(pb::ListTopicsResponse { topics })
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> RpcResult<pb::DeleteTopicResponse> {
        let topic = self.topics.delete(request.into_inner()).await?;
        reply(pb::DeleteTopicResponse { topic: Some(topic) })
    }

    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> RpcResult<pb::ProduceResponse> {
        let batch = request
            .into_inner()
            .batch
            .ok_or_else(|| ApiError::required("batch", "send the topic and its records"))?;
        reply(self.producer.produce(batch).await?)
    }

    async fn produce_stream(
        &self,
        request: Request<Streaming<pb::ProduceStreamRequest>>,
    ) -> RpcResult<pb::ProduceStreamResponse> {
        reply(self.producer.produce_stream(request.into_inner()).await?)
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> RpcResult<Self::SubscribeStream> {
        reply(self.subscriptions.subscribe(request.into_inner()).await?)
    }

    async fn commit(&self, request: Request<pb::CommitRequest>) -> RpcResult<pb::CommitResponse> {
        reply(self.subscriptions.commit(request.into_inner()).await?)
    }

    async fn create_lake_sink(
        &self,
        request: Request<pb::CreateLakeSinkRequest>,
    ) -> RpcResult<pb::CreateLakeSinkResponse> {
        let sink = self.lake.create_sink(request.into_inner()).await?;
        reply(pb::CreateLakeSinkResponse { sink: Some(sink) })
    }

    async fn list_lake_sinks(
        &self,
        request: Request<pb::ListLakeSinksRequest>,
    ) -> RpcResult<pb::ListLakeSinksResponse> {
        let sinks = self.lake.list_sinks(request.into_inner()).await?;
        reply(pb::ListLakeSinksResponse { sinks })
    }

    async fn pause_lake_sink(
        &self,
        request: Request<pb::PauseLakeSinkRequest>,
    ) -> RpcResult<pb::PauseLakeSinkResponse> {
        let dataset = request
            .into_inner()
            .dataset
            .ok_or_else(|| ApiError::required("dataset", "name the dataset the sink writes"))?;
        let sink = self.lake.pause_sink(&dataset).await?;
        reply(pb::PauseLakeSinkResponse { sink: Some(sink) })
    }

    async fn resume_lake_sink(
        &self,
        request: Request<pb::ResumeLakeSinkRequest>,
    ) -> RpcResult<pb::ResumeLakeSinkResponse> {
        let dataset = request
            .into_inner()
            .dataset
            .ok_or_else(|| ApiError::required("dataset", "name the dataset the sink writes"))?;
        let sink = self.lake.resume_sink(&dataset).await?;
        reply(pb::ResumeLakeSinkResponse { sink: Some(sink) })
    }

    async fn delete_lake_sink(
        &self,
        request: Request<pb::DeleteLakeSinkRequest>,
    ) -> RpcResult<pb::DeleteLakeSinkResponse> {
        let dataset = request
            .into_inner()
            .dataset
            .ok_or_else(|| ApiError::required("dataset", "name the dataset the sink writes"))?;
        let sink = self.lake.delete_sink(&dataset).await?;
        reply(pb::DeleteLakeSinkResponse { sink: Some(sink) })
    }

    async fn list_datasets(
        &self,
        request: Request<pb::ListDatasetsRequest>,
    ) -> RpcResult<pb::ListDatasetsResponse> {
        reply(self.lake.list_datasets(request.into_inner()).await?)
    }

    async fn describe_dataset(
        &self,
        request: Request<pb::DescribeDatasetRequest>,
    ) -> RpcResult<pb::DescribeDatasetResponse> {
        reply(self.lake.describe_dataset(request.into_inner()).await?)
    }
}

/// The gateway's access policy: creating and deleting topics and lake sinks needs `admin`, writing
/// records (Produce, ProduceStream, Flight `DoPut`) needs `write`, reading and committing a group's
/// offsets need `read`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DataHubAccessPolicy;

const ADMIN_RPCS: [&str; 7] = [
    "/CreateTopic",
    "/DeleteTopic",
    "/CreateLakeSink",
    "/PauseLakeSink",
    "/ResumeLakeSink",
    "/DeleteLakeSink",
    "/DoExchange",
];
const WRITE_RPCS: [&str; 3] = ["/Produce", "/ProduceStream", "/DoPut"];

impl AccessPolicy for DataHubAccessPolicy {
    fn required_role(&self, method: &http::Method, path: &str) -> Option<Role> {
        let base = DefaultAccessPolicy.required_role(method, path)?;
        if path.starts_with("/plinth.datahub.v1.") || path.starts_with("/arrow.flight.protocol.") {
            if ADMIN_RPCS.iter().any(|rpc| path.ends_with(rpc)) {
                return Some(Role::Admin);
            }
            if WRITE_RPCS.iter().any(|rpc| path.ends_with(rpc)) {
                return Some(Role::Write);
            }
            return Some(Role::Read);
        }
        Some(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_what_an_rpc_changes() {
        let role = |path: &str| DataHubAccessPolicy.required_role(&http::Method::POST, path);
        assert_eq!(
            role("/plinth.datahub.v1.DataHubService/CreateTopic"),
            Some(Role::Admin)
        );
        assert_eq!(
            role("/plinth.datahub.v1.DataHubService/Produce"),
            Some(Role::Write)
        );
        assert_eq!(
            role("/plinth.datahub.v1.DataHubService/ProduceStream"),
            Some(Role::Write)
        );
        assert_eq!(
            role("/plinth.datahub.v1.DataHubService/Subscribe"),
            Some(Role::Read)
        );
        assert_eq!(
            role("/plinth.datahub.v1.DataHubService/Commit"),
            Some(Role::Read)
        );
        assert_eq!(
            role("/arrow.flight.protocol.FlightService/DoGet"),
            Some(Role::Read)
        );
        assert_eq!(
            role("/arrow.flight.protocol.FlightService/DoPut"),
            Some(Role::Write)
        );
        assert_eq!(role("/grpc.health.v1.Health/Check"), None);
    }
}
