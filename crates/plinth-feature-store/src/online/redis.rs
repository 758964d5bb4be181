//! The Redis online store.
//!
//! Layout: one hash per entity key, named `<prefix>:<entity key bytes>` (the raw
//! [`EntityKey`] bytes; Redis keys are binary-safe), shared by every view of that entity; one field
//! per feature view, named by the view, holding the [encoded](crate::domain::online_row::encode) row.
//!
//! Writes run a Lua script per row (atomic per key) that compares the new row's order-preserving
//! header with the stored one's and writes only if the new row
//! [supersedes](crate::domain::online_row::supersedes) it. A batch goes in pipelines of
//! [`WRITE_CHUNK`] rows, each pipeline starting with `SCRIPT LOAD` so that a Redis that restarted
//! (and lost its script cache) never answers `NOSCRIPT`. Reads are one pipeline of `HMGET` per key.
//!
//! A [`ConnectionManager`] reconnects after Redis restarts; every call is also bounded by
//! [`RedisConfig::timeout`], so a dead or unreachable Redis answers [`OnlineError::Unavailable`]
//! instead of hanging.
//!
//! A `rediss://` URL connects over TLS (rustls); [`RedisConfig::tls`] may name a private CA and a
//! client certificate ([`tls`]).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use async_trait::async_trait;

pub use self::tls::{ClientIdentity, RedisTls, TlsMaterialError, TlsPart};
use super::{OnlineError, OnlineStore, WriteOutcome};
use crate::domain::entity_key::EntityKey;
use crate::domain::online_row::{self, HEADER_LEN, OnlineRow};

pub mod tls;

/// Rows per write pipeline: large enough to amortize round trips, small enough to keep one pipeline
/// from holding Redis for long.
pub const WRITE_CHUNK: usize = 256;

const BACKEND: &str = "redis";

/// The conditional write: KEYS[1] the entity's hash, ARGV[1] the view, ARGV[2] the encoded row.
/// Compares header bytes 2..=HEADER_LEN (Lua is 1-based) as unsigned bytes, which orders rows by
/// `(event_ts, created_ts)`; a stored value too short to have a header is overwritten. Returns 1 when
/// written, 0 when skipped as older.
const CONDITIONAL_WRITE: &str = r"
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local header_len = tonumber(ARGV[3])
if stored and #stored >= header_len then
  local new = ARGV[2]
  for i = 2, header_len do
    local new_byte, stored_byte = string.byte(new, i), string.byte(stored, i)
    if new_byte ~= stored_byte then
      if new_byte < stored_byte then
        return 0
      end
      break
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// Where the Redis online store is and how long a call may take.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://...` for TLS.
    pub url: url::Url,
    /// Prefix of every key, usually the project name, so projects and tests do not collide.
    pub prefix: String,
    /// Upper bound of one call (connecting included); past it the call fails as unavailable.
    pub timeout: Duration,
    /// With a `rediss://` URL: the CA to trust and a client certificate; empty trusts the system
    /// roots. Must be empty with `redis://`.
    pub tls: RedisTls,
}

impl RedisConfig {
    /// A config with the default timeout of 2 s.
    pub fn new(url: url::Url, prefix: impl Into<String>) -> Self {
        Self {
            url,
            prefix: prefix.into(),
            timeout: Duration::from_secs(2),
            tls: RedisTls::default(),
        }
    }
}

/// The Redis online store (see the module doc).
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: Vec<u8>,
    timeout: Duration,
    script: Script,
    /// Whether the URL is `rediss://`, so that errors can say what to check.
    uses_tls: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RedisStore")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `config`. It connects lazily and reconnects by itself, so Redis need not be up
    /// yet: [`OnlineStore::ping`] says when it is. Fails only on a URL or TLS material the client
    /// refuses.
    pub fn new(config: &RedisConfig) -> Result<Self, OnlineError> {
        let client = open_client(config)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // Few, short retries: a call is bounded by `timeout` anyway, and a shorter backoff
            // notices a Redis that came back sooner.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(|err| {
                OnlineError::Backend {
                    backend: BACKEND,
                    cause: format!("cannot set up the Redis connection: {err}"),
                }
            })?;
        let mut prefix = config.prefix.clone().into_bytes();
        prefix.push(b':');
        Ok(Self {
            connection,
            prefix,
            timeout: config.timeout,
            script: Script::new(CONDITIONAL_WRITE),
            uses_tls: config.url.scheme() == "rediss",
        })
    }

    /// The name of `key`'s hash: the prefix, `:`, the key bytes.
    pub(crate) fn hash_key(&self, key: &EntityKey) -> Vec<u8> {
        let mut name = Vec::with_capacity(self.prefix.len() + key.as_bytes().len());
        name.extend_from_slice(&self.prefix);
        name.extend_from_slice(key.as_bytes());
        name
    }

    /// Runs `call` bounded by the timeout, mapping Redis errors.
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, OnlineError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(map_error(what, &err, self.uses_tls)),
            Err(_) => Err(OnlineError::Unavailable {
                backend: BACKEND,
                cause: format!("{what} got no answer within {:?}", self.timeout),
            }),
        }
    }

    /// The SCAN pattern of every hash of this store: the prefix with glob characters escaped.
    fn scan_pattern(&self) -> Vec<u8> {
        let mut pattern = Vec::with_capacity(self.prefix.len() + 2);
        for &byte in &self.prefix {
            if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(byte);
        }
        pattern.push(b'*');
        pattern
    }

    /// One page of a SCAN over this store's hashes: the next cursor (0 at the end) and the names.
    async fn scan_page(&self, cursor: u64) -> Result<(u64, Vec<Vec<u8>>), OnlineError> {
        let mut connection = self.connection.clone();
        self.bounded(
            "SCAN",
            ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.scan_pattern())
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection),
        )
        .await
    }

    /// Deletes every hash of this store's prefix (tests clean up with it).
    #[cfg(test)]
    pub(crate) async fn delete_all(&self) -> Result<(), OnlineError> {
        let mut cursor = 0;
        loop {
            let (next, names) = self.scan_page(cursor).await?;
            if !names.is_empty() {
                let mut connection = self.connection.clone();
                self.bounded(
                    "DEL",
                    ::redis::cmd("DEL").arg(names).exec_async(&mut connection),
                )
                .await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl OnlineStore for RedisStore {
    async fn write(
        &self,
        view: &str,
        rows: Vec<(EntityKey, OnlineRow)>,
    ) -> Result<WriteOutcome, OnlineError> {
        let mut outcome = WriteOutcome::default();
        for chunk in rows.chunks(WRITE_CHUNK) {
            let mut pipeline = ::redis::pipe();
            pipeline.load_script(&self.script).ignore();
            for (key, row) in chunk {
                let encoded = online_row::encode(row).map_err(|err| OnlineError::Unencodable {
                    view: view.to_owned(),
                    cause: err.to_string(),
                })?;
                let mut invocation = self.script.key(self.hash_key(key));
                invocation.arg(view).arg(encoded).arg(HEADER_LEN);
                pipeline.invoke_script(&invocation);
            }
            let mut connection = self.connection.clone();
            let written: Vec<i64> = self
                .bounded(
                    "the conditional write",
                    pipeline.query_async(&mut connection),
                )
                .await?;
            for flag in written {
                if flag == 1 {
                    outcome.written += 1;
                } else {
                    outcome.skipped += 1;
                }
            }
        }
        Ok(outcome)
    }

    async fn read(
        &self,
        views: &[&str],
        keys: &[EntityKey],
    ) -> Result<Vec<Vec<Option<OnlineRow>>>, OnlineError> {
        if views.is_empty() || keys.is_empty() {
            return Ok(vec![vec![]; keys.len()]);
        }
        let mut pipeline = ::redis::pipe();
        for key in keys {
            pipeline.cmd("HMGET").arg(self.hash_key(key)).arg(views);
        }
        let mut connection = self.connection.clone();
        let stored: Vec<Vec<Option<Vec<u8>>>> = self
            .bounded("HMGET", pipeline.query_async(&mut connection))
            .await?;
        if stored.len() != keys.len() {
            return Err(OnlineError::Backend {
                backend: BACKEND,
                cause: format!(
                    "asked for {} keys, Redis answered {}",
                    keys.len(),
                    stored.len()
                ),
            });
        }
        keys.iter()
            .zip(stored)
            .map(|(key, fields)| {
                views
                    .iter()
                    .zip(fields)
                    .map(|(view, field)| {
                        field
                            .map(|bytes| {
                                online_row::decode(&bytes).map_err(|err| OnlineError::Corrupt {
                                    view: (*view).to_owned(),
                                    entity_key: key.to_hex(),
                                    cause: err.to_string(),
                                })
                            })
                            .transpose()
                    })
                    .collect()
            })
            .collect()
    }

    async fn delete_view(&self, view: &str) -> Result<(), OnlineError> {
        // Each step is bounded by the timeout, not the whole walk: a large store takes many pages.
        let mut cursor = 0;
        loop {
            let (next, names) = self.scan_page(cursor).await?;
            if !names.is_empty() {
                let mut pipeline = ::redis::pipe();
                for name in &names {
                    pipeline.cmd("HDEL").arg(name).arg(view).ignore();
                }
                let mut connection = self.connection.clone();
                self.bounded("HDEL", pipeline.exec_async(&mut connection))
                    .await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    async fn ping(&self) -> Result<(), OnlineError> {
        let mut connection = self.connection.clone();
        let answer: String = self
            .bounded("PING", ::redis::cmd("PING").query_async(&mut connection))
            .await?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(OnlineError::Backend {
                backend: BACKEND,
                cause: format!("PING answered `{answer}`"),
            })
        }
    }
}

/// The client for `config.url`: TLS with `rediss://`, from [`RedisConfig::tls`] when it is set.
fn open_client(config: &RedisConfig) -> Result<Client, OnlineError> {
    let invalid = |err: RedisError| OnlineError::Backend {
        backend: BACKEND,
        cause: format!("invalid Redis URL `{}`: {err}", redacted(&config.url)),
    };
    match config.url.scheme() {
        "rediss" => {
            tls::install_crypto_provider();
            if config.tls.is_empty() {
                Client::open(config.url.as_str()).map_err(invalid)
            } else {
                Client::build_with_tls(config.url.as_str(), config.tls.certificates())
                    .map_err(invalid)
            }
        }
        _ if !config.tls.is_empty() => Err(OnlineError::Backend {
            backend: BACKEND,
            cause: format!(
                "a CA or client certificate is set for `{}`, which is not TLS; use a rediss:// URL",
                redacted(&config.url)
            ),
        }),
        _ => Client::open(config.url.as_str()).map_err(invalid),
    }
}

/// `url` without its password, for messages.
fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// Connection trouble and a Redis that is loading, failing over or busy are `Unavailable` (retry
/// later); anything else is a `Backend` error. Connection trouble that points at a TLS setting gets
/// a hint naming it.
fn map_error(what: &str, err: &RedisError, uses_tls: bool) -> OnlineError {
    use ::redis::{ErrorKind, ServerErrorKind};
    let unavailable = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    let mut cause = format!("{what} failed: {err}");
    if unavailable && let Some(hint) = tls_hint(err, uses_tls) {
        cause.push_str("; ");
        cause.push_str(hint);
    }
    if unavailable {
        OnlineError::Unavailable {
            backend: BACKEND,
            cause,
        }
    } else {
        OnlineError::Backend {
            backend: BACKEND,
            cause,
        }
    }
}

/// What to check when `err` looks like a TLS setting that does not match the Redis server.
fn tls_hint(err: &RedisError, uses_tls: bool) -> Option<&'static str> {
    if !uses_tls {
        // A TLS-only port closes the connection on the first plain-text command; a refused or
        // timed-out connection is a Redis that is down, not a TLS mismatch.
        let closed =
            err.is_connection_dropped() && !err.is_connection_refusal() && !err.is_timeout();
        return closed.then_some(
            "if this Redis serves TLS, use a rediss:// URL (and online.redis_ca_cert for a private CA)",
        );
    }
    match rustls_error(err)? {
        rustls::Error::InvalidCertificate(_) => Some(
            "Redis's certificate is not trusted: set online.redis_ca_cert to the PEM of the CA that \
             signed it, and connect by a host name or IP address the certificate holds",
        ),
        _ => Some(
            "the TLS handshake failed: check that Redis serves TLS on this port, and if it requires \
             client certificates, set online.redis_client_cert and online.redis_client_key",
        ),
    }
}

/// The rustls error under `err`, if the failure was one. The redis crate keeps an I/O error as an
/// `Arc<dyn Error>` and `io::Error::source` skips the error it wraps, so each link is unwrapped by
/// hand.
fn rustls_error(err: &RedisError) -> Option<&rustls::Error> {
    fn unwrap_link<'error>(
        link: &'error (dyn std::error::Error + 'static),
    ) -> Option<&'error rustls::Error> {
        if let Some(tls) = link.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = link.downcast_ref::<std::io::Error>() {
            return io.get_ref().and_then(|inner| unwrap_link(inner));
        }
        if let Some(shared) =
            link.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()
        {
            return unwrap_link(shared.as_ref());
        }
        None
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tls) = unwrap_link(current) {
            return Some(tls);
        }
        source = current.source();
    }
    None
}
