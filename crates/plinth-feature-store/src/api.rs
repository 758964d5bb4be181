//! `plinth.featurestore.v1.FeatureStoreService`: one short method per RPC over [`FeatureStore`], and
//! the access policy (roles) of every feature store RPC. Conversions live in `api/convert.rs`.

pub(crate) mod convert;

use std::sync::Arc;

use plinth_proto::featurestore::v1 as pb;
use plinth_proto::featurestore::v1::feature_store_service_server::{
    FeatureStoreService, FeatureStoreServiceServer,
};
use plinth_runtime::auth::{AccessPolicy, DefaultAccessPolicy, Role};
use plinth_runtime::error::ApiError;
use tonic::{Request, Response, Status};

use crate::api::convert::{
    micros_to_timestamp, selection_from_proto, timestamp_to_micros, value_from_proto,
    value_to_proto,
};
use crate::domain::online_row::Status as FieldStatus;
use crate::domain::parse::DefinitionKind;
use crate::domain::plan::{Change, ChangeType};
use crate::feature_store::{FeatureStore, MaterializeRequest};
use crate::push::{PushRequest, PushTarget};
use crate::registry::{ListFilter, StoredDefinition};

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct GrpcApi {
    store: Arc<FeatureStore>,
}

impl GrpcApi {
    /// The tonic server.
    pub fn server(
        store: Arc<FeatureStore>,
        max_message_bytes: usize,
    ) -> FeatureStoreServiceServer<Self> {
        FeatureStoreServiceServer::new(Self { store })
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes.max(16 * 1024 * 1024))
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(value: T) -> RpcResult<T> {
    Ok(Response::new(value))
}

fn files(files: Vec<pb::DefinitionFile>) -> Result<Vec<(String, String)>, ApiError> {
    if files.is_empty() {
        return Err(ApiError::required(
            "files",
            "send the definition files of the project (YAML)",
        ));
    }
    Ok(files
        .into_iter()
        .map(|file| (file.path, file.content))
        .collect())
}

fn kind_to_proto(kind: DefinitionKind) -> pb::DefinitionKind {
    match kind {
        DefinitionKind::Entity => pb::DefinitionKind::Entity,
        DefinitionKind::Source => pb::DefinitionKind::Source,
        DefinitionKind::FeatureView => pb::DefinitionKind::FeatureView,
        DefinitionKind::FeatureService => pb::DefinitionKind::FeatureService,
    }
}

fn kind_from_proto(kind: i32) -> Option<DefinitionKind> {
    match pb::DefinitionKind::try_from(kind).ok()? {
        pb::DefinitionKind::Unspecified => None,
        pb::DefinitionKind::Entity => Some(DefinitionKind::Entity),
        pb::DefinitionKind::Source => Some(DefinitionKind::Source),
        pb::DefinitionKind::FeatureView => Some(DefinitionKind::FeatureView),
        pb::DefinitionKind::FeatureService => Some(DefinitionKind::FeatureService),
    }
}

fn changes_to_proto(changes: &[Change]) -> Vec<pb::DefinitionChange> {
    changes
        .iter()
        .map(|change| pb::DefinitionChange {
            kind: kind_to_proto(change.kind).into(),
            name: change.name.clone(),
            change: match change.change {
                ChangeType::Create => pb::ChangeKind::Create,
                ChangeType::Update => pb::ChangeKind::Update,
                ChangeType::Delete => pb::ChangeKind::Delete,
                ChangeType::Unchanged => pb::ChangeKind::Unchanged,
            }
            .into(),
            details: change.details.clone(),
        })
        .collect()
}

fn summary(stored: &StoredDefinition) -> pb::DefinitionSummary {
    let metadata = stored.definition.metadata();
    pb::DefinitionSummary {
        kind: kind_to_proto(stored.definition.kind()).into(),
        name: stored.definition.name().to_owned(),
        owner: metadata.owner.clone(),
        description: metadata.description.clone(),
        tags: metadata.tags.clone().into_iter().collect(),
        update_time: Some(micros_to_timestamp(stored.update_time_micros)),
    }
}

fn status_to_proto(status: FieldStatus) -> pb::FieldStatus {
    match status {
        FieldStatus::Present => pb::FieldStatus::Present,
        FieldStatus::NullValue => pb::FieldStatus::NullValue,
        FieldStatus::NotFound => pb::FieldStatus::NotFound,
        FieldStatus::OutsideMaxAge => pb::FieldStatus::OutsideMaxAge,
    }
}

#[tonic::async_trait]
impl FeatureStoreService for GrpcApi {
    async fn plan_definitions(
        &self,
        request: Request<pb::PlanDefinitionsRequest>,
    ) -> RpcResult<pb::PlanDefinitionsResponse> {
        let request = request.into_inner();
        let changes = self
            .store
            .plan(&files(request.files)?, request.prune)
            .await?;
        reply(pb::PlanDefinitionsResponse {
            changes: changes_to_proto(&changes),
        })
    }

    async fn apply_definitions(
        &self,
        request: Request<pb::ApplyDefinitionsRequest>,
    ) -> RpcResult<pb::ApplyDefinitionsResponse> {
        let request = request.into_inner();
        let changes = self
            .store
            .apply(&files(request.files)?, request.prune)
            .await?;
        reply(pb::ApplyDefinitionsResponse {
            changes: changes_to_proto(&changes),
        })
    }

    async fn list_definitions(
        &self,
        request: Request<pb::ListDefinitionsRequest>,
    ) -> RpcResult<pb::ListDefinitionsResponse> {
        let request = request.into_inner();
        let filter = ListFilter {
            kind: kind_from_proto(request.kind),
            tags: request.tags.into_iter().collect(),
            owner: Some(request.owner).filter(|owner| !owner.is_empty()),
        };
        let stored = self.store.list(&filter).await?;
        reply(pb::ListDefinitionsResponse {
            definitions: stored.iter().map(summary).collect(),
        })
    }

    async fn describe_definition(
        &self,
        request: Request<pb::DescribeDefinitionRequest>,
    ) -> RpcResult<pb::DescribeDefinitionResponse> {
        let request = request.into_inner();
        let kind = kind_from_proto(request.kind).ok_or_else(|| {
            ApiError::required(
                "kind",
                "name the kind: entity, source, feature view or feature service",
            )
        })?;
        if request.name.is_empty() {
            return Err(ApiError::required("name", "name the object to describe").into());
        }
        let (stored, watermark) = self.store.describe(kind, &request.name).await?;
        reply(pb::DescribeDefinitionResponse {
            summary: Some(summary(&stored)),
            definition_yaml: crate::domain::parse::to_yaml(&stored.definition),
            materialized_until: watermark.map(micros_to_timestamp),
        })
    }

    async fn get_training_set(
        &self,
        request: Request<pb::GetTrainingSetRequest>,
    ) -> RpcResult<pb::GetTrainingSetResponse> {
        let request = request.into_inner();
        let output = request.output_dataset.ok_or_else(|| {
            ApiError::required("output_dataset", "name the lake dataset to write")
        })?;
        let training_set = request.training_set.ok_or_else(|| {
            ApiError::required("training_set", "give the features and the entity rows")
        })?;
        let summary = crate::training::build_to_dataset(&self.store, training_set, output).await?;
        reply(summary)
    }

    async fn materialize(
        &self,
        request: Request<pb::MaterializeRequest>,
    ) -> RpcResult<pb::MaterializeResponse> {
        let request = request.into_inner();
        let outcomes = self
            .store
            .materialize(MaterializeRequest {
                views: request.feature_views,
                start: request.start_time.as_ref().map(timestamp_to_micros),
                end: request.end_time.as_ref().map(timestamp_to_micros),
                incremental: request.incremental,
            })
            .await?;
        reply(pb::MaterializeResponse {
            views: outcomes
                .into_iter()
                .map(|outcome| pb::MaterializedView {
                    feature_view: outcome.view,
                    start_time: outcome.window.start.map(micros_to_timestamp),
                    end_time: Some(micros_to_timestamp(outcome.window.end)),
                    rows_read: i64::try_from(outcome.rows_read).unwrap_or(i64::MAX),
                    entities_written: i64::try_from(outcome.entities_written).unwrap_or(i64::MAX),
                })
                .collect(),
        })
    }

    async fn get_online_features(
        &self,
        request: Request<pb::GetOnlineFeaturesRequest>,
    ) -> RpcResult<pb::GetOnlineFeaturesResponse> {
        let request = request.into_inner();
        let selection = selection_from_proto(request.features.as_ref(), "features")?;
        // A map has no order; join keys come back sorted by name.
        let mut entities: Vec<(String, Vec<crate::domain::value::Value>)> = request
            .entities
            .into_iter()
            .map(|(name, column)| (name, column.val.iter().map(value_from_proto).collect()))
            .collect();
        entities.sort_by(|left, right| left.0.cmp(&right.0));
        let answer = self
            .store
            .get_online_features(&selection, entities, request.full_feature_names)
            .await?;
        reply(pb::GetOnlineFeaturesResponse {
            metadata: Some(pb::GetOnlineFeaturesResponseMetadata {
                feature_names: Some(pb::FeatureNames { val: answer.names }),
            }),
            results: answer
                .columns
                .iter()
                .map(|column| pb::FeatureVector {
                    values: column.values.iter().map(value_to_proto).collect(),
                    statuses: column
                        .statuses
                        .iter()
                        .map(|status| status_to_proto(*status).into())
                        .collect(),
                    event_timestamps: column
                        .event_timestamps
                        .iter()
                        .map(|micros| micros_to_timestamp(micros.unwrap_or(0)))
                        .collect(),
                })
                .collect(),
        })
    }

    async fn push(&self, request: Request<pb::PushRequest>) -> RpcResult<pb::PushResponse> {
        let request = request.into_inner();
        if request.push_source.is_empty() {
            return Err(ApiError::required("push_source", "name the push source").into());
        }
        let to = match pb::PushTarget::try_from(request.to).unwrap_or(pb::PushTarget::Unspecified) {
            pb::PushTarget::Unspecified | pb::PushTarget::Online => PushTarget::Online,
            pb::PushTarget::Offline => PushTarget::Offline,
            pb::PushTarget::OnlineAndOffline => PushTarget::OnlineAndOffline,
        };
        let mut columns: Vec<(String, Vec<crate::domain::value::Value>)> = request
            .columns
            .into_iter()
            .map(|(name, column)| (name, column.val.iter().map(value_from_proto).collect()))
            .collect();
        columns.sort_by(|left, right| left.0.cmp(&right.0));
        let outcome = self
            .store
            .push(PushRequest {
                source: request.push_source,
                columns,
                to,
            })
            .await?;
        reply(pb::PushResponse {
            feature_views: outcome.feature_views,
            row_count: i64::try_from(outcome.row_count).unwrap_or(i64::MAX),
        })
    }
}

/// Roles: reading features and definitions needs `read`; push and training sets `write`; apply and
/// materialize `admin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeatureStoreAccessPolicy;

const ADMIN_RPCS: [&str; 2] = ["/ApplyDefinitions", "/Materialize"];
const WRITE_RPCS: [&str; 3] = ["/Push", "/GetTrainingSet", "/DoPut"];

impl AccessPolicy for FeatureStoreAccessPolicy {
    fn required_role(&self, method: &http::Method, path: &str) -> Option<Role> {
        let base = DefaultAccessPolicy.required_role(method, path)?;
        if path.starts_with("/plinth.featurestore.v1.")
            || path.starts_with("/arrow.flight.protocol.")
        {
            if ADMIN_RPCS.iter().any(|rpc| path.ends_with(rpc)) {
                return Some(Role::Admin);
            }
            if WRITE_RPCS.iter().any(|rpc| path.ends_with(rpc)) {
                return Some(Role::Write);
            }
            return Some(Role::Read);
        }
        if path == "/push" {
            return Some(Role::Write);
        }
        if path == "/get-online-features" {
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
        let role = |path: &str| FeatureStoreAccessPolicy.required_role(&http::Method::POST, path);
        let service = "/plinth.featurestore.v1.FeatureStoreService";
        assert_eq!(
            role(&format!("{service}/ApplyDefinitions")),
            Some(Role::Admin)
        );
        assert_eq!(
            role(&format!("{service}/PlanDefinitions")),
            Some(Role::Read)
        );
        assert_eq!(role(&format!("{service}/Push")), Some(Role::Write));
        assert_eq!(
            role(&format!("{service}/GetOnlineFeatures")),
            Some(Role::Read)
        );
        assert_eq!(role("/push"), Some(Role::Write));
        assert_eq!(role("/get-online-features"), Some(Role::Read));
    }
}
