//! The online store: the latest row per (entity key, feature view), written by materialization and
//! push, read by GetOnlineFeatures.
//!
//! [`OnlineStore`] is the one interface; [`redis::RedisStore`] (production) and
//! [`embedded::EmbeddedStore`] (SQLite, for `plinth up` and tests) implement it. Both apply the write
//! rule of [`crate::domain::online_row::supersedes`] atomically per key inside the store, so two
//! writers racing on one key cannot put an older row over a newer one, and a replayed batch changes
//! nothing. Reads return raw rows; the read rule (TTL, statuses) is
//! [`crate::domain::online_row::status`], applied by the caller.
//!
//! Rows are stored encoded by [`crate::domain::online_row::encode`], keyed by
//! [`crate::domain::entity_key::EntityKey`] bytes: both are storage formats.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::domain::entity_key::EntityKey;
use crate::domain::online_row::OnlineRow;

pub mod embedded;
pub mod redis;

/// Where online rows live.
#[async_trait]
pub trait OnlineStore: Send + Sync + Debug {
    /// Writes `rows` of `view`. Each row replaces the stored row of its key only if it
    /// [supersedes](crate::domain::online_row::supersedes) it (newer or equal `(event_ts,
    /// created_ts)`), atomically per key; rows of one key in one batch apply in order. Not atomic
    /// across keys: after an error some rows may be written, and writing the batch again is safe.
    async fn write(
        &self,
        view: &str,
        rows: Vec<(EntityKey, OnlineRow)>,
    ) -> Result<WriteOutcome, OnlineError>;

    /// Reads the rows of every view in `views` for every key in `keys`: `result[key_idx][view_idx]`,
    /// `None` where nothing is stored. One round trip to the backend per call.
    async fn read(
        &self,
        views: &[&str],
        keys: &[EntityKey],
    ) -> Result<Vec<Vec<Option<OnlineRow>>>, OnlineError>;

    /// Removes every row of `view` (for `apply` with prune). May take a while on a large store.
    async fn delete_view(&self, view: &str) -> Result<(), OnlineError>;

    /// Answers when the backend is reachable (readiness).
    async fn ping(&self) -> Result<(), OnlineError>;
}

/// How many rows of a write replaced the stored row and how many were older and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows stored (new keys, newer rows, and equal replays).
    pub written: usize,
    /// Rows older than the stored row, left out.
    pub skipped: usize,
}

/// Why an online store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnlineError {
    /// The backend cannot be reached or did not answer in time (gRPC UNAVAILABLE): retry later.
    #[error(
        "the online store ({backend}) is unavailable: {cause}; check that it runs and is reachable, then retry"
    )]
    Unavailable {
        /// `redis` or `embedded`.
        backend: &'static str,
        /// What failed.
        cause: String,
    },
    /// A stored row cannot be decoded.
    #[error(
        "the stored online row of view `{view}` for entity key 0x{entity_key} cannot be read: {cause}; materialize the view again to rewrite it"
    )]
    Corrupt {
        /// The feature view.
        view: String,
        /// The entity key, hex.
        entity_key: String,
        /// What is wrong.
        cause: String,
    },
    /// A row cannot be encoded (a value over 4 GiB).
    #[error("a row of view `{view}` cannot be stored: {cause}")]
    Unencodable {
        /// The feature view.
        view: String,
        /// Why.
        cause: String,
    },
    /// The backend refused the call for another reason (configuration, permissions, a bug).
    #[error("the online store ({backend}) failed: {cause}")]
    Backend {
        /// `redis` or `embedded`.
        backend: &'static str,
        /// What failed.
        cause: String,
    },
}

#[cfg(test)]
mod tests;
