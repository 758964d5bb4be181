//! The gateway's SQL state (sqlx: SQLite embedded, PostgreSQL in production): topic bindings and lake
//! sinks with the lease that keeps each sink on one replica. The records themselves live in Kafka and the
//! lake; nothing here is needed to read them.
//!
//! The tables are created with `CREATE TABLE IF NOT EXISTS` (portable SQL, `datahub_` prefix), not with a
//! sqlx migrator, so the gateway can share a database with the schema registry without the two
//! migrators' version tables colliding.

use std::time::Duration;

use plinth_proto::ids::{DatasetName, Subject, TopicName};
use plinth_runtime::error::ApiError;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS datahub_topics (
        name TEXT PRIMARY KEY,
        value_subject TEXT NOT NULL,
        value_version INTEGER,
        key_subject TEXT,
        key_version INTEGER,
        partition_count INTEGER NOT NULL,
        replication_factor INTEGER NOT NULL,
        retention_ms BIGINT,
        create_time_ms BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS datahub_lake_sinks (
        dataset TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        url_prefix TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT NOT NULL,
        create_time_ms BIGINT NOT NULL,
        owner TEXT,
        lease_until_ms BIGINT NOT NULL
    )",
];

/// A database failure.
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct StoreError(#[from] sqlx::Error);

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if plinth_runtime::database::is_unavailable(&err.0) {
            ApiError::unavailable(
                "DATABASE_UNAVAILABLE",
                format!("the gateway's database does not answer ({err}); retry shortly"),
            )
        } else {
            ApiError::internal(err)
        }
    }
}

/// A topic's binding as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRow {
    /// The topic.
    pub name: TopicName,
    /// The value subject.
    pub value_subject: Subject,
    /// The pinned value version, if any.
    pub value_version: Option<i32>,
    /// The key subject, if keys are validated.
    pub key_subject: Option<Subject>,
    /// The pinned key version, if any.
    pub key_version: Option<i32>,
    /// Partitions at creation.
    pub partition_count: i32,
    /// Replicas per partition.
    pub replication_factor: i32,
    /// `retention.ms`: `None` the broker's default, `-1` unlimited.
    pub retention_ms: Option<i64>,
    /// When the topic was bound, in ms since the epoch.
    pub create_time_ms: i64,
}

/// A lake sink's state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkState {
    /// Reading and writing.
    Running,
    /// Stopped by the user.
    Paused,
    /// Stopped by an error it does not retry.
    Failed,
}

impl SinkState {
    fn as_str(self) -> &'static str {
        match self {
            SinkState::Running => "running",
            SinkState::Paused => "paused",
            SinkState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "paused" => SinkState::Paused,
            "failed" => SinkState::Failed,
            _ => SinkState::Running,
        }
    }
}

/// A lake sink as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRow {
    /// The dataset it writes (its name).
    pub dataset: DatasetName,
    /// The topic it reads.
    pub topic: TopicName,
    /// The object-store URL prefix of the dataset.
    pub url_prefix: String,
    /// The state.
    pub state: SinkState,
    /// With `Failed`: what happened.
    pub error: String,
    /// When it was created, in ms since the epoch.
    pub create_time_ms: i64,
    /// The replica holding its lease.
    pub owner: Option<String>,
    /// Until when the lease holds, in ms since the epoch.
    pub lease_until_ms: i64,
}

/// The gateway's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Connects (creating a SQLite file when the URL says `mode=rwc`) and creates the tables.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let pool = plinth_runtime::database::connect(url, max_connections, connect_timeout).await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Stores a new binding; `false` when the topic already has one.
    pub async fn insert_topic(&self, topic: &TopicRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO datahub_topics (name, value_subject, value_version, key_subject, key_version, partition_count, replication_factor, retention_ms, create_time_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING",
        )
        .bind(topic.name.as_str())
        .bind(topic.value_subject.as_str())
        .bind(topic.value_version)
        .bind(topic.key_subject.as_ref().map(Subject::as_str))
        .bind(topic.key_version)
        .bind(topic.partition_count)
        .bind(topic.replication_factor)
        .bind(topic.retention_ms)
        .bind(topic.create_time_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The binding of `name`.
    pub async fn topic(&self, name: &TopicName) -> Result<Option<TopicRow>, StoreError> {
        let row = sqlx::query("SELECT name, value_subject, value_version, key_subject, key_version, partition_count, replication_factor, retention_ms, create_time_ms FROM datahub_topics WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| topic_row(&row)).transpose()
    }

    /// Every binding whose name starts with `prefix`, by name.
    pub async fn topics(&self, prefix: &str) -> Result<Vec<TopicRow>, StoreError> {
        let rows = sqlx::query("SELECT name, value_subject, value_version, key_subject, key_version, partition_count, replication_factor, retention_ms, create_time_ms FROM datahub_topics ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(topic_row)
            .filter(|row| {
                row.as_ref()
                    .map_or(true, |row| row.name.as_str().starts_with(prefix))
            })
            .collect()
    }

    /// Removes a binding; `false` when there was none.
    pub async fn delete_topic(&self, name: &TopicName) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM datahub_topics WHERE name = $1")
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a new sink; `false` when the dataset already has one.
    pub async fn insert_sink(&self, sink: &SinkRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO datahub_lake_sinks (dataset, topic, url_prefix, state, error, create_time_ms, owner, lease_until_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dataset) DO NOTHING",
        )
        .bind(sink.dataset.as_str())
        .bind(sink.topic.as_str())
        .bind(sink.url_prefix.as_str())
        .bind(sink.state.as_str())
        .bind(sink.error.as_str())
        .bind(sink.create_time_ms)
        .bind(sink.owner.as_deref())
        .bind(sink.lease_until_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The sink writing `dataset`.
    pub async fn sink(&self, dataset: &DatasetName) -> Result<Option<SinkRow>, StoreError> {
        let row = sqlx::query("SELECT dataset, topic, url_prefix, state, error, create_time_ms, owner, lease_until_ms FROM datahub_lake_sinks WHERE dataset = $1")
            .bind(dataset.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| sink_row(&row)).transpose()
    }

    /// Every sink, by dataset.
    pub async fn sinks(&self) -> Result<Vec<SinkRow>, StoreError> {
        let rows = sqlx::query("SELECT dataset, topic, url_prefix, state, error, create_time_ms, owner, lease_until_ms FROM datahub_lake_sinks ORDER BY dataset")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(sink_row).collect()
    }

    /// Sets a sink's state and error; `false` when the sink does not exist.
    pub async fn set_sink_state(
        &self,
        dataset: &DatasetName,
        state: SinkState,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE datahub_lake_sinks SET state = $1, error = $2 WHERE dataset = $3")
                .bind(state.as_str())
                .bind(error)
                .bind(dataset.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes or extends the lease of `dataset`'s sink for `owner` until `until_ms`, when the lease is free,
    /// expired (`now_ms`) or already `owner`'s. `true` when `owner` holds it now.
    pub async fn acquire_sink_lease(
        &self,
        dataset: &DatasetName,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE datahub_lake_sinks SET owner = $1, lease_until_ms = $2
             WHERE dataset = $3 AND (owner IS NULL OR owner = $1 OR lease_until_ms < $4)",
        )
        .bind(owner)
        .bind(until_ms)
        .bind(dataset.as_str())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up `owner`'s lease of `dataset`'s sink.
    pub async fn release_sink_lease(
        &self,
        dataset: &DatasetName,
        owner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE datahub_lake_sinks SET owner = NULL, lease_until_ms = 0 WHERE dataset = $1 AND owner = $2")
            .bind(dataset.as_str())
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes a sink; `false` when there was none.
    pub async fn delete_sink(&self, dataset: &DatasetName) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM datahub_lake_sinks WHERE dataset = $1")
            .bind(dataset.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn topic_row(row: &AnyRow) -> Result<TopicRow, StoreError> {
    Ok(TopicRow {
        name: TopicName::new(row.try_get::<String, _>("name")?),
        value_subject: Subject::new(row.try_get::<String, _>("value_subject")?),
        value_version: int32(row.try_get::<Option<i64>, _>("value_version")?),
        key_subject: row
            .try_get::<Option<String>, _>("key_subject")?
            .map(Subject::new),
        key_version: int32(row.try_get::<Option<i64>, _>("key_version")?),
        partition_count: int32(Some(row.try_get::<i64, _>("partition_count")?)).unwrap_or(0),
        replication_factor: int32(Some(row.try_get::<i64, _>("replication_factor")?)).unwrap_or(0),
        retention_ms: row.try_get("retention_ms")?,
        create_time_ms: row.try_get("create_time_ms")?,
    })
}

/// SQLite hands every INTEGER back as 64 bits; the values stored were 32-bit.
fn int32(value: Option<i64>) -> Option<i32> {
    value.and_then(|value| i32::try_from(value).ok())
}

fn sink_row(row: &AnyRow) -> Result<SinkRow, StoreError> {
    Ok(SinkRow {
        dataset: DatasetName::new(row.try_get::<String, _>("dataset")?),
        topic: TopicName::new(row.try_get::<String, _>("topic")?),
        url_prefix: row.try_get("url_prefix")?,
        state: SinkState::parse(&row.try_get::<String, _>("state")?),
        error: row.try_get("error")?,
        create_time_ms: row.try_get("create_time_ms")?,
        owner: row.try_get("owner")?,
        lease_until_ms: row.try_get("lease_until_ms")?,
    })
}
