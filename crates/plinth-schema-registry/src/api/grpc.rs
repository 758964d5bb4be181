//! `plinth.schemaregistry.v1.SchemaRegistryService`: one short method per RPC over [`Registry`].

use std::sync::Arc;

use plinth_proto::schemaregistry::v1 as pb;
use plinth_proto::schemaregistry::v1::schema_registry_service_server::{
    SchemaRegistryService, SchemaRegistryServiceServer,
};
use tonic::{Request, Response, Status};

use super::convert;
use crate::error::Error;
use crate::registry::{DeletedFilter, Registry, ValidationTarget, VersionSpec};

/// The gRPC service over a registry.
#[derive(Debug, Clone)]
pub struct GrpcApi {
    registry: Arc<Registry>,
}

impl GrpcApi {
    /// The tonic server for a registry.
    pub fn server(
        registry: Arc<Registry>,
        max_message_bytes: usize,
    ) -> SchemaRegistryServiceServer<Self> {
        SchemaRegistryServiceServer::new(Self { registry })
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes.max(4 * 1024 * 1024))
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(value: T) -> RpcResult<T> {
    Ok(Response::new(value))
}

#[tonic::async_trait]
impl SchemaRegistryService for GrpcApi {
    async fn register_schema(
        &self,
        request: Request<pb::RegisterSchemaRequest>,
    ) -> RpcResult<pb::RegisterSchemaResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let input = convert::schema_input(request.schema)?;
        let import_id = request.id.map(plinth_proto::ids::SchemaId::new);
        let view = self
            .registry
            .register(&subject, input, import_id, request.version)
            .await?;
        reply(pb::RegisterSchemaResponse {
            registered: Some(convert::version_message(&view)),
        })
    }

    async fn lookup_schema(
        &self,
        request: Request<pb::LookupSchemaRequest>,
    ) -> RpcResult<pb::LookupSchemaResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let input = convert::schema_input(request.schema)?;
        let view = self
            .registry
            .lookup(&subject, input, request.deleted)
            .await?;
        reply(pb::LookupSchemaResponse {
            found: Some(convert::version_message(&view)),
        })
    }

    async fn get_schema(
        &self,
        request: Request<pb::GetSchemaRequest>,
    ) -> RpcResult<pb::GetSchemaResponse> {
        let id = convert::schema_id(request.into_inner().id)?;
        let schema = self.registry.schema_by_id(id).await?;
        reply(pb::GetSchemaResponse {
            schema: Some(convert::schema_message(&schema)),
        })
    }

    async fn get_schema_usages(
        &self,
        request: Request<pb::GetSchemaUsagesRequest>,
    ) -> RpcResult<pb::GetSchemaUsagesResponse> {
        let request = request.into_inner();
        let id = convert::schema_id(request.id)?;
        let usages = self
            .registry
            .usages(
                id,
                DeletedFilter {
                    deleted: request.deleted,
                    deleted_only: false,
                },
            )
            .await?;
        reply(pb::GetSchemaUsagesResponse {
            usages: usages
                .into_iter()
                .map(|(subject, version)| pb::SubjectVersionRef {
                    subject: Some(subject),
                    version,
                })
                .collect(),
        })
    }

    async fn get_subject_version(
        &self,
        request: Request<pb::GetSubjectVersionRequest>,
    ) -> RpcResult<pb::GetSubjectVersionResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let view = self
            .registry
            .version(
                &subject,
                VersionSpec::from_wire(request.version)?,
                request.deleted,
            )
            .await?;
        reply(pb::GetSubjectVersionResponse {
            version: Some(convert::version_message(&view)),
        })
    }

    async fn list_subjects(
        &self,
        request: Request<pb::ListSubjectsRequest>,
    ) -> RpcResult<pb::ListSubjectsResponse> {
        let request = request.into_inner();
        let filter = DeletedFilter {
            deleted: request.deleted,
            deleted_only: request.deleted_only,
        };
        let subjects = self
            .registry
            .subjects(&request.subject_prefix, filter)
            .await?;
        reply(pb::ListSubjectsResponse { subjects })
    }

    async fn list_versions(
        &self,
        request: Request<pb::ListVersionsRequest>,
    ) -> RpcResult<pb::ListVersionsResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let filter = DeletedFilter {
            deleted: request.deleted,
            deleted_only: request.deleted_only,
        };
        let versions = self.registry.versions(&subject, filter).await?;
        reply(pb::ListVersionsResponse { versions })
    }

    async fn get_referenced_by(
        &self,
        request: Request<pb::GetReferencedByRequest>,
    ) -> RpcResult<pb::GetReferencedByResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let ids = self
            .registry
            .referenced_by(&subject, VersionSpec::from_wire(request.version)?)
            .await?;
        reply(pb::GetReferencedByResponse { ids })
    }

    async fn delete_subject(
        &self,
        request: Request<pb::DeleteSubjectRequest>,
    ) -> RpcResult<pb::DeleteSubjectResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let versions = self
            .registry
            .delete_subject(&subject, request.permanent)
            .await?;
        reply(pb::DeleteSubjectResponse { versions })
    }

    async fn delete_subject_version(
        &self,
        request: Request<pb::DeleteSubjectVersionRequest>,
    ) -> RpcResult<pb::DeleteSubjectVersionResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let spec = VersionSpec::from_wire(request.version)?;
        let version = self
            .registry
            .delete_version(&subject, spec, request.permanent)
            .await?;
        reply(pb::DeleteSubjectVersionResponse { version })
    }

    async fn check_compatibility(
        &self,
        request: Request<pb::CheckCompatibilityRequest>,
    ) -> RpcResult<pb::CheckCompatibilityResponse> {
        let request = request.into_inner();
        let subject = convert::required_subject(request.subject)?;
        let input = convert::schema_input(request.schema)?;
        let version = request.version.map(VersionSpec::from_wire).transpose()?;
        let messages = self
            .registry
            .check_compatibility(&subject, input, version)
            .await?;
        reply(pb::CheckCompatibilityResponse {
            is_compatible: messages.is_empty(),
            messages: if request.verbose {
                messages
            } else {
                Vec::new()
            },
        })
    }

    async fn get_config(
        &self,
        request: Request<pb::GetConfigRequest>,
    ) -> RpcResult<pb::GetConfigResponse> {
        let request = request.into_inner();
        let config = self
            .registry
            .config(request.subject.as_ref(), request.default_to_global)
            .await?;
        reply(pb::GetConfigResponse {
            config: Some(convert::config_message(config)),
        })
    }

    async fn set_config(
        &self,
        request: Request<pb::SetConfigRequest>,
    ) -> RpcResult<pb::SetConfigResponse> {
        let request = request.into_inner();
        let current = self.registry.config(request.subject.as_ref(), true).await?;
        let config = convert::config_from_wire(request.config, current)?;
        let config = self
            .registry
            .set_config(request.subject.as_ref(), config)
            .await?;
        reply(pb::SetConfigResponse {
            config: Some(convert::config_message(config)),
        })
    }

    async fn delete_config(
        &self,
        request: Request<pb::DeleteConfigRequest>,
    ) -> RpcResult<pb::DeleteConfigResponse> {
        let request = request.into_inner();
        let previous = self
            .registry
            .delete_config(request.subject.as_ref())
            .await?;
        reply(pb::DeleteConfigResponse {
            config: Some(convert::config_message(previous)),
        })
    }

    async fn get_mode(
        &self,
        request: Request<pb::GetModeRequest>,
    ) -> RpcResult<pb::GetModeResponse> {
        let request = request.into_inner();
        let mode = self
            .registry
            .mode(request.subject.as_ref(), request.default_to_global)
            .await?;
        reply(pb::GetModeResponse {
            mode: convert::mode_to_wire(mode).into(),
        })
    }

    async fn set_mode(
        &self,
        request: Request<pb::SetModeRequest>,
    ) -> RpcResult<pb::SetModeResponse> {
        let request = request.into_inner();
        let mode = convert::mode_from_wire(request.mode)?;
        let mode = self
            .registry
            .set_mode(request.subject.as_ref(), mode, request.force)
            .await?;
        reply(pb::SetModeResponse {
            mode: convert::mode_to_wire(mode).into(),
        })
    }

    async fn delete_mode(
        &self,
        request: Request<pb::DeleteModeRequest>,
    ) -> RpcResult<pb::DeleteModeResponse> {
        let request = request.into_inner();
        let previous = self.registry.delete_mode(request.subject.as_ref()).await?;
        reply(pb::DeleteModeResponse {
            mode: convert::mode_to_wire(previous).into(),
        })
    }

    async fn validate_payloads(
        &self,
        request: Request<pb::ValidatePayloadsRequest>,
    ) -> RpcResult<pb::ValidatePayloadsResponse> {
        let request = request.into_inner();
        let target = match request.target {
            Some(pb::validate_payloads_request::Target::Id(id)) => ValidationTarget::Id(id),
            Some(pb::validate_payloads_request::Target::SubjectVersion(reference)) => {
                ValidationTarget::SubjectVersion(
                    convert::required_subject(reference.subject)?,
                    VersionSpec::from_wire(reference.version)?,
                )
            }
            None => {
                return Err(Error::InvalidRequest {
                    field: "target".into(),
                    reason: "missing; set `id` or `subject_version`".into(),
                }
                .into());
            }
        };
        let (id, results) = self.registry.validate(target, &request.documents).await?;
        reply(pb::ValidatePayloadsResponse {
            id: Some(id),
            results: results
                .into_iter()
                .enumerate()
                .map(|(index, errors)| pb::PayloadResult {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    valid: errors.is_empty(),
                    errors: errors
                        .into_iter()
                        .map(|err| pb::PayloadError {
                            instance_path: err.instance_path,
                            schema_path: err.schema_path,
                            message: err.message,
                        })
                        .collect(),
                })
                .collect(),
        })
    }
}
