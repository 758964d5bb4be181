//! Connecting to a Plinth service: a tonic channel that sends the API token and the current trace
//! context with every call. Used by the CLI and for service-to-service calls.

use std::error::Error as _;
use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use url::Url;

use crate::error::ClientError;
use crate::telemetry::{current_context, inject_metadata};
use crate::tls::ClientTls;

/// A channel that adds `authorization: Bearer <token>` and W3C `traceparent` to every call; pass it to
/// any generated client, e.g. `SchemaRegistryClient::new(channel)`.
pub type AuthChannel = InterceptedService<Channel, ClientInterceptor>;

/// The interceptor of [`AuthChannel`].
#[derive(Clone)]
pub struct ClientInterceptor {
    authorization: Option<AsciiMetadataValue>,
}

impl std::fmt::Debug for ClientInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInterceptor")
            .field("token", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ClientInterceptor {
    /// An interceptor sending `token` (if any) as a bearer token.
    pub fn new(token: Option<&str>) -> Result<Self, ClientError> {
        let authorization = token
            .map(|token| MetadataValue::try_from(format!("Bearer {}", token.trim())))
            .transpose()
            .map_err(|_| ClientError::InvalidToken)?;
        Ok(ClientInterceptor { authorization })
    }
}

impl Interceptor for ClientInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        inject_metadata(&current_context(), request.metadata_mut());
        Ok(request)
    }
}

/// Connects to `endpoint` (`http://` or `https://`), eagerly, so an unreachable service is reported
/// here with what to check. `timeout` bounds connecting and is the default deadline of each call
/// (until response headers; streams may run longer). With `https://` and no `tls`, the system roots
/// are trusted.
pub async fn connect(
    endpoint: &Url,
    tls: Option<&ClientTls>,
    token: Option<String>,
    timeout: Duration,
) -> Result<AuthChannel, ClientError> {
    let (builder, interceptor) = endpoint_builder(endpoint, tls, token, timeout)?;
    let channel = builder
        .connect()
        .await
        .map_err(|err| unreachable(endpoint, &err, timeout))?;
    Ok(InterceptedService::new(channel, interceptor))
}

/// Like [`connect`], but connects on first use and reconnects after a failure, for services whose peers
/// may start after them. Only the endpoint, TLS files and token are checked here.
pub fn connect_lazy(
    endpoint: &Url,
    tls: Option<&ClientTls>,
    token: Option<String>,
    timeout: Duration,
) -> Result<AuthChannel, ClientError> {
    let (builder, interceptor) = endpoint_builder(endpoint, tls, token, timeout)?;
    Ok(InterceptedService::new(builder.connect_lazy(), interceptor))
}

/// The endpoint with TLS and timeouts set, and the interceptor carrying the token.
fn endpoint_builder(
    endpoint: &Url,
    tls: Option<&ClientTls>,
    token: Option<String>,
    timeout: Duration,
) -> Result<(Endpoint, ClientInterceptor), ClientError> {
    let invalid = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_owned(),
    };
    let tls_config = match (endpoint.scheme(), tls) {
        ("http", None) => None,
        ("http", Some(_)) => {
            return Err(invalid(
                "TLS settings were given for an http:// endpoint; use https://",
            ));
        }
        ("https", Some(tls)) => Some(tls.tonic_config().map_err(|source| ClientError::Tls {
            endpoint: endpoint.to_string(),
            source,
        })?),
        ("https", None) => Some(ClientTlsConfig::new().with_native_roots()),
        _ => return Err(invalid("the scheme must be http:// or https://")),
    };
    let interceptor = ClientInterceptor::new(token.as_deref())?;
    let mut builder = Endpoint::from_shared(endpoint.to_string())
        .map_err(|err| invalid(&err.to_string()))?
        .connect_timeout(timeout)
        .timeout(timeout)
        // Let servers send frames of up to 1 MiB: a half-MiB streamed batch in one or two frames.
        .max_frame_size(1 << 20);
    if let Some(tls_config) = tls_config {
        builder = builder
            .tls_config(tls_config)
            .map_err(|err| invalid(&err.to_string()))?;
    }
    Ok((builder, interceptor))
}

/// Explains a failed connection by its innermost cause.
fn unreachable(endpoint: &Url, err: &tonic::transport::Error, timeout: Duration) -> ClientError {
    let mut reason = err.to_string();
    let mut hint = "check the endpoint address and that the service is running";
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(cause) = source {
        reason = cause.to_string();
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    reason = "connection refused".to_owned();
                    hint = "is the service running? start it with `plinth up`";
                }
                std::io::ErrorKind::TimedOut => {
                    reason = format!(
                        "timed out after {}",
                        crate::config::duration::format(timeout)
                    );
                    hint = "check the address and that no firewall drops the connection";
                }
                _ => {}
            }
            break;
        }
        if cause.downcast_ref::<rustls::Error>().is_some() {
            reason = format!("TLS handshake failed: {cause}");
            hint = "check that the server uses TLS, the CA file, and the client certificate";
            break;
        }
        let text = reason.to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup") {
            hint = "check the host name";
        } else if text.contains("timed out") || text.contains("elapsed") {
            reason = format!(
                "timed out after {}",
                crate::config::duration::format(timeout)
            );
            hint = "check the address and that no firewall drops the connection";
        }
        source = cause.source();
    }
    ClientError::Unreachable {
        endpoint: endpoint.to_string(),
        reason,
        hint,
    }
}

/// Registers `schema` (a JSON Schema) under the subject `<topic>-value` at the schema registry behind
/// `registry`, then creates `topic` bound to it at the data hub behind `datahub`; both steps are
/// idempotent, so a service that publishes its own events calls this at start and again after a failure.
/// `what` names the schema in the error (`the run-event schema`), which says which step failed and the
/// peer's message.
pub async fn ensure_json_topic(
    registry: AuthChannel,
    datahub: AuthChannel,
    topic: &str,
    schema: &str,
    what: &str,
) -> Result<(), String> {
    use plinth_proto::common::v1::{Subject, TopicName};
    use plinth_proto::datahub::v1 as hub;
    use plinth_proto::schemaregistry::v1 as sr;

    let subject = format!("{topic}-value");
    sr::schema_registry_service_client::SchemaRegistryServiceClient::new(registry)
        .register_schema(sr::RegisterSchemaRequest {
            subject: Some(Subject::new(subject.clone())),
            schema: Some(sr::Schema {
                schema: schema.to_owned(),
                schema_type: sr::SchemaType::Json.into(),
                references: Vec::new(),
            }),
            normalize: false,
            id: None,
            version: None,
        })
        .await
        .map_err(|status| format!("registering {what} under {subject}: {}", status.message()))?;
    let created = hub::data_hub_service_client::DataHubServiceClient::new(datahub)
        .create_topic(hub::CreateTopicRequest {
            name: Some(TopicName::new(topic.to_owned())),
            value_binding: Some(hub::SchemaBinding {
                subject: Some(Subject::new(subject)),
                pinned_version: None,
            }),
            key_binding: None,
            partition_count: 0,
            replication_factor: 0,
            retention: None,
        })
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
        Err(status) => Err(format!("creating the topic {topic}: {}", status.message())),
    }
}
