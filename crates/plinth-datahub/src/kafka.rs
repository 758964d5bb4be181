//! librdkafka clients built from [`KafkaConfig`]: the one place that turns the `[kafka]` block (brokers,
//! SASL, TLS, extra properties) into `rdkafka::ClientConfig`, for the producer, the admin client, the
//! Subscribe consumers and the lake sinks' consumers alike.

use std::time::Duration;

use plinth_runtime::error::ApiError;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::KafkaConfig;

/// Builds the common client configuration: brokers, security, client id, timeouts, extra properties.
pub fn base_client_config(config: &KafkaConfig) -> Result<ClientConfig, ApiError> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", &config.client_id)
        .set(
            "security.protocol",
            config.security_protocol.as_librdkafka(),
        )
        .set("socket.keepalive.enable", "true")
        // Metadata and connection errors are reported through the calls that hit them.
        .set("log_level", "4");
    if let Some(mechanism) = &config.sasl_mechanism {
        client.set("sasl.mechanisms", mechanism);
    }
    if let Some(user) = &config.sasl_username {
        client.set("sasl.username", user);
    }
    if let Some(password) = sasl_password(config)? {
        client.set("sasl.password", password);
    }
    if let Some(ca) = &config.ssl_ca_location {
        client.set("ssl.ca.location", ca.display().to_string());
    }
    if let Some(cert) = &config.ssl_certificate_location {
        client.set("ssl.certificate.location", cert.display().to_string());
    }
    if let Some(key) = &config.ssl_key_location {
        client.set("ssl.key.location", key.display().to_string());
    }
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    Ok(client)
}

fn sasl_password(config: &KafkaConfig) -> Result<Option<String>, ApiError> {
    if let Some(path) = &config.sasl_password_file {
        let text = std::fs::read_to_string(path).map_err(|err| {
            ApiError::failed_precondition(
                "KAFKA_PASSWORD_FILE_UNREADABLE",
                format!(
                    "cannot read kafka.sasl_password_file {}: {err}; mount the secret there or set kafka.sasl_password",
                    path.display()
                ),
            )
        })?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
    }
    Ok(config.sasl_password.clone())
}

/// The producer configuration: idempotent, `acks=all`, delivery bounded by `request_timeout`.
pub fn producer_config(config: &KafkaConfig) -> Result<ClientConfig, ApiError> {
    let mut client = base_client_config(config)?;
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            millis(config.request_timeout).to_string(),
        )
        .set("linger.ms", "2")
        .set("compression.type", "lz4")
        // The key's murmur2 hash picks the partition, as the Java client does, so keyed records land on the
        // same partition whichever Kafka client wrote them.
        .set("partitioner", "murmur2_random");
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    Ok(client)
}

/// A consumer configuration for `group`: manual commits only, offsets reset to earliest, session
/// timeout from the config.
pub fn consumer_config(config: &KafkaConfig, group: &str) -> Result<ClientConfig, ApiError> {
    let mut client = base_client_config(config)?;
    let session = millis(config.session_timeout);
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 4).max(100).to_string())
        .set("enable.partition.eof", "false")
        // When the prefetch queue is at its bound, librdkafka waits this long before it fetches that
        // partition again (1 s by default): a reader that drains the queue in a tenth of that would
        // otherwise sit idle for the rest. 10 ms keeps the bound without the stall.
        .set("fetch.queue.backoff.ms", "10");
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    Ok(client)
}

/// Milliseconds of a duration, saturating, at least 1.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Maps a librdkafka error of `operation` to the API error a client should see: broker trouble is
/// UNAVAILABLE (retry), everything else is internal.
pub fn kafka_error(operation: &str, err: &KafkaError) -> ApiError {
    let code = err.rdkafka_error_code();
    let unavailable = matches!(
        code,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::NotEnoughReplicas
                | RDKafkaErrorCode::NotEnoughReplicasAfterAppend
                | RDKafkaErrorCode::BrokerNotAvailable
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::Fail
                | RDKafkaErrorCode::QueueFull
        )
    ) || code.is_none();
    if unavailable {
        ApiError::unavailable(
            "KAFKA_UNAVAILABLE",
            format!(
                "the Kafka cluster did not answer {operation}: {err}; check that the brokers in kafka.bootstrap_servers are up, then retry"
            ),
        )
    } else {
        ApiError::internal(format!("kafka {operation}: {err}"))
    }
}
