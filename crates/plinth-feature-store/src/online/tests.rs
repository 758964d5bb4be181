//! One scenario suite, written once against [`OnlineStore`] and run on Redis (127.0.0.1:6379, a
//! fresh prefix per test) and on the embedded store (a fresh SQLite file per test); then the Redis
//! failure cases: a closed port, a server that never answers, and a link cut and restored.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::embedded::EmbeddedStore;
use super::redis::{RedisConfig, RedisStore};
use super::*;
use crate::domain::entity_key::encode;
use crate::domain::value::Value;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn key(id: i64) -> EntityKey {
    encode(&[("driver_id", Value::Int64(id))]).unwrap()
}

fn row(event_ts: i64, created_ts: i64, trips: i64) -> OnlineRow {
    OnlineRow {
        event_ts,
        created_ts,
        values: vec![
            ("trips".into(), Value::Int64(trips)),
            ("rating".into(), Value::Float64(4.5)),
        ],
    }
}

async fn read_one(store: &dyn OnlineStore, view: &str, entity: &EntityKey) -> Option<OnlineRow> {
    let mut rows = store
        .read(&[view], std::slice::from_ref(entity))
        .await
        .unwrap();
    rows.remove(0).remove(0)
}

fn trips(row: &Option<OnlineRow>) -> Option<i64> {
    match row.as_ref()?.get("trips")? {
        Value::Int64(trips) => Some(*trips),
        _ => None,
    }
}

// ---- the scenarios -------------------------------------------------------------------------------

async fn write_then_read(store: &dyn OnlineStore) {
    let outcome = store
        .write("driver_stats", vec![(key(1), row(10, 1, 3))])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 1,
            skipped: 0
        }
    );
    assert_eq!(
        read_one(store, "driver_stats", &key(1)).await,
        Some(row(10, 1, 3))
    );
    store.ping().await.unwrap();
}

async fn a_newer_event_wins(store: &dyn OnlineStore) {
    store
        .write("driver_stats", vec![(key(1), row(10, 1, 3))])
        .await
        .unwrap();
    let outcome = store
        .write("driver_stats", vec![(key(1), row(20, 0, 4))])
        .await
        .unwrap();
    assert_eq!(outcome.written, 1);
    assert_eq!(
        trips(&read_one(store, "driver_stats", &key(1)).await),
        Some(4)
    );
}

async fn a_correction_with_a_later_created_time_replaces(store: &dyn OnlineStore) {
    // feast-dev/feast#2795: Feast skips this write; we store the correction.
    store
        .write("driver_stats", vec![(key(1), row(10, 1, 3))])
        .await
        .unwrap();
    let outcome = store
        .write("driver_stats", vec![(key(1), row(10, 2, 5))])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 1,
            skipped: 0
        }
    );
    assert_eq!(
        read_one(store, "driver_stats", &key(1)).await,
        Some(row(10, 2, 5))
    );
}

async fn an_older_row_is_skipped(store: &dyn OnlineStore) {
    store
        .write("driver_stats", vec![(key(1), row(20, 5, 4))])
        .await
        .unwrap();
    let outcome = store
        .write(
            "driver_stats",
            vec![(key(1), row(10, 9, 1)), (key(1), row(20, 4, 2))],
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 0,
            skipped: 2
        }
    );
    assert_eq!(
        trips(&read_one(store, "driver_stats", &key(1)).await),
        Some(4)
    );
}

async fn rows_of_one_key_in_one_batch_apply_in_order(store: &dyn OnlineStore) {
    let outcome = store
        .write(
            "driver_stats",
            vec![
                (key(1), row(10, 0, 1)),
                (key(1), row(30, 0, 3)),
                (key(1), row(20, 0, 2)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 2,
            skipped: 1
        }
    );
    assert_eq!(
        trips(&read_one(store, "driver_stats", &key(1)).await),
        Some(3)
    );
}

async fn a_replay_is_idempotent(store: &dyn OnlineStore) {
    let batch: Vec<_> = (0..10).map(|id| (key(id), row(100 + id, 7, id))).collect();
    let first = store.write("driver_stats", batch.clone()).await.unwrap();
    let replay = store.write("driver_stats", batch.clone()).await.unwrap();
    // Equal (event_ts, created_ts) overwrites with the same bytes: written, nothing changes.
    assert_eq!(first, replay);
    let keys: Vec<EntityKey> = batch.iter().map(|(key, _)| key.clone()).collect();
    let rows = store.read(&["driver_stats"], &keys).await.unwrap();
    for ((_, written), read) in batch.iter().zip(rows) {
        assert_eq!(read, vec![Some(written.clone())]);
    }
}

async fn many_keys_and_views_in_one_read(store: &dyn OnlineStore) {
    let views = ["driver_stats", "driver_quality", "driver_geo"];
    // View v holds keys with id % (v + 1) == 0, so each (key, view) pair is predictable.
    for (view_idx, view) in views.iter().enumerate() {
        let rows: Vec<_> = (0..600)
            .filter(|id| id % (view_idx as i64 + 1) == 0)
            .map(|id| (key(id), row(id, view_idx as i64, id * 10 + view_idx as i64)))
            .collect();
        let expected = rows.len();
        let outcome = store.write(view, rows).await.unwrap();
        assert_eq!(outcome.written, expected);
    }
    // Keys 600.. are missing everywhere; key 3 is asked for twice.
    let ids: Vec<i64> = (0..620).chain([3]).collect();
    let keys: Vec<EntityKey> = ids.iter().map(|&id| key(id)).collect();
    let rows = store.read(&views, &keys).await.unwrap();
    assert_eq!(rows.len(), ids.len());
    for (&id, found) in ids.iter().zip(&rows) {
        assert_eq!(found.len(), views.len());
        for (view_idx, row) in found.iter().enumerate() {
            let view_idx = view_idx as i64;
            let expected = (id < 600 && id % (view_idx + 1) == 0).then_some(id * 10 + view_idx);
            assert_eq!(trips(row), expected, "key {id} view {view_idx}");
        }
    }
}

async fn missing_keys_and_views_read_as_none(store: &dyn OnlineStore) {
    store
        .write("driver_stats", vec![(key(1), row(10, 1, 3))])
        .await
        .unwrap();
    let rows = store
        .read(&["driver_stats", "never_written"], &[key(2), key(1)])
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![None, None], vec![Some(row(10, 1, 3)), None]]
    );
    assert_eq!(store.read(&[], &[key(1)]).await.unwrap(), vec![vec![]]);
    assert!(store.read(&["driver_stats"], &[]).await.unwrap().is_empty());
    assert_eq!(
        store.write("driver_stats", vec![]).await.unwrap(),
        WriteOutcome::default()
    );
}

async fn views_of_one_key_are_independent_and_delete_view_removes_one(store: &dyn OnlineStore) {
    store
        .write(
            "driver_stats",
            vec![(key(1), row(10, 0, 1)), (key(2), row(10, 0, 2))],
        )
        .await
        .unwrap();
    store
        .write("driver_quality", vec![(key(1), row(5, 0, 7))])
        .await
        .unwrap();
    store.delete_view("driver_stats").await.unwrap();
    let rows = store
        .read(&["driver_stats", "driver_quality"], &[key(1), key(2)])
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![None, Some(row(5, 0, 7))], vec![None, None]]);
    // A deleted view starts over: an older row than the deleted one is written.
    let outcome = store
        .write("driver_stats", vec![(key(1), row(1, 0, 9))])
        .await
        .unwrap();
    assert_eq!(outcome.written, 1);
}

async fn extreme_timestamps_compare_exactly(store: &dyn OnlineStore) {
    // Past 2^53 a double cannot tell these apart; the stores must.
    let big = 1_i64 << 60;
    store
        .write("driver_stats", vec![(key(1), row(big + 1, 0, 1))])
        .await
        .unwrap();
    let outcome = store
        .write("driver_stats", vec![(key(1), row(big, i64::MAX, 2))])
        .await
        .unwrap();
    assert_eq!(outcome.skipped, 1);
    store
        .write("driver_stats", vec![(key(2), row(-5, 0, 1))])
        .await
        .unwrap();
    let outcome = store
        .write("driver_stats", vec![(key(2), row(-4, i64::MIN, 2))])
        .await
        .unwrap();
    assert_eq!(outcome.written, 1);
    assert_eq!(
        trips(&read_one(store, "driver_stats", &key(1)).await),
        Some(1)
    );
    assert_eq!(
        trips(&read_one(store, "driver_stats", &key(2)).await),
        Some(2)
    );
}

// ---- running them per backend --------------------------------------------------------------------

fn redis_config(prefix: &str) -> RedisConfig {
    RedisConfig::new(REDIS_URL.parse().unwrap(), prefix)
}

async fn redis_store() -> RedisStore {
    let prefix = format!("plinth-test:{}", uuid::Uuid::now_v7());
    let store = RedisStore::new(&redis_config(&prefix)).unwrap();
    store
        .ping()
        .await
        .unwrap_or_else(|err| panic!("Redis must run on {REDIS_URL} for these tests: {err}"));
    store
}

async fn embedded_store(dir: &tempfile::TempDir) -> EmbeddedStore {
    let url = format!("sqlite://{}", dir.path().join("online.db").display());
    EmbeddedStore::open(&url).await.unwrap()
}

macro_rules! scenarios {
    ($($scenario:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let store = super::redis_store().await;
                    super::$scenario(&store).await;
                    store.delete_all().await.unwrap();
                }
            )*
        }

        mod on_embedded {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::embedded_store(&dir).await;
                    super::$scenario(&store).await;
                }
            )*
        }
    };
}

scenarios!(
    write_then_read,
    a_newer_event_wins,
    a_correction_with_a_later_created_time_replaces,
    an_older_row_is_skipped,
    rows_of_one_key_in_one_batch_apply_in_order,
    a_replay_is_idempotent,
    many_keys_and_views_in_one_read,
    missing_keys_and_views_read_as_none,
    views_of_one_key_are_independent_and_delete_view_removes_one,
    extreme_timestamps_compare_exactly,
);

// ---- backend-specific ----------------------------------------------------------------------------

#[tokio::test]
async fn two_prefixes_do_not_see_each_other() {
    let one = redis_store().await;
    let other = redis_store().await;
    one.write("driver_stats", vec![(key(1), row(10, 0, 1))])
        .await
        .unwrap();
    assert_eq!(read_one(&other, "driver_stats", &key(1)).await, None);
    other.delete_view("driver_stats").await.unwrap();
    assert!(read_one(&one, "driver_stats", &key(1)).await.is_some());
    one.delete_all().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_redis_value_is_reported_not_misread() {
    let store = redis_store().await;
    store
        .write("driver_stats", vec![(key(1), row(10, 0, 1))])
        .await
        .unwrap();
    // Overwrite the field with bytes that are not a row (direct HSET, bypassing the store).
    let client = ::redis::Client::open(REDIS_URL).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let hash = store.hash_key(&key(1));
    let _: () = ::redis::cmd("HSET")
        .arg(&hash)
        .arg("driver_stats")
        .arg(b"\x01garbage".as_slice())
        .query_async(&mut connection)
        .await
        .unwrap();
    let err = store.read(&["driver_stats"], &[key(1)]).await.unwrap_err();
    assert!(matches!(err, OnlineError::Corrupt { .. }), "{err}");
    store.delete_all().await.unwrap();
}

#[tokio::test]
async fn the_embedded_store_refuses_a_non_sqlite_or_memory_url() {
    for url in ["postgres://user@localhost/db", "sqlite::memory:"] {
        let err = EmbeddedStore::open(url).await.unwrap_err();
        assert!(matches!(err, OnlineError::Backend { .. }), "{url}: {err}");
    }
}

#[tokio::test]
async fn the_embedded_store_keeps_rows_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    embedded_store(&dir)
        .await
        .write("driver_stats", vec![(key(1), row(10, 0, 1))])
        .await
        .unwrap();
    let reopened = embedded_store(&dir).await;
    assert_eq!(
        read_one(&reopened, "driver_stats", &key(1)).await,
        Some(row(10, 0, 1))
    );
}

fn fast_failing(addr: SocketAddr) -> RedisStore {
    let mut config = redis_config(&format!("plinth-test:{}", uuid::Uuid::now_v7()));
    config.url = format!("redis://{addr}").parse().unwrap();
    config.timeout = Duration::from_millis(500);
    RedisStore::new(&config).unwrap()
}

async fn assert_unavailable_promptly(store: &RedisStore) {
    let started = Instant::now();
    let ping = store.ping().await;
    let read = store.read(&["driver_stats"], &[key(1)]).await;
    let write = store
        .write("driver_stats", vec![(key(1), row(1, 1, 1))])
        .await;
    for result in [ping.map(|_| ()), read.map(|_| ()), write.map(|_| ())] {
        let err = result.unwrap_err();
        assert!(matches!(err, OnlineError::Unavailable { .. }), "{err}");
    }
    // Three calls bounded by 500 ms each, with slack for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_closed_port_is_unavailable_promptly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    assert_unavailable_promptly(&fast_failing(addr)).await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_promptly() {
    // Accepts connections and reads nothing: without the timeouts every call would hang.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let held_by_task = held.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            held_by_task
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(socket);
        }
    });
    assert_unavailable_promptly(&fast_failing(addr)).await;
    accepting.abort();
}

/// A TCP proxy to Redis whose link a test cuts (every connection dropped, new ones refused) and
/// restores, standing in for a Redis restart or a network partition.
struct Outage {
    addr: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Outage {
    async fn to(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = tokio::sync::watch::channel(true);
        let up_rx = up.subscribe();
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    continue;
                }
                let mut down = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            accepting,
        }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

#[tokio::test]
async fn redis_store_recovers_after_the_link_comes_back() {
    let proxy = Outage::to("127.0.0.1:6379".parse().unwrap()).await;
    let store = fast_failing(proxy.addr);
    store
        .write("driver_stats", vec![(key(1), row(10, 0, 1))])
        .await
        .unwrap();

    proxy.set_up(false);
    let started = Instant::now();
    let err = store.read(&["driver_stats"], &[key(1)]).await.unwrap_err();
    assert!(matches!(err, OnlineError::Unavailable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));

    proxy.set_up(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    let recovered = loop {
        match store.read(&["driver_stats"], &[key(1)]).await {
            Ok(rows) => break rows,
            Err(err) if Instant::now() < deadline => {
                assert!(matches!(err, OnlineError::Unavailable { .. }), "{err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("the store did not recover in 15 s: {err}"),
        }
    };
    assert_eq!(recovered, vec![vec![Some(row(10, 0, 1))]]);
    store.delete_all().await.unwrap();
}
