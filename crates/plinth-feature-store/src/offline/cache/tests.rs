use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::DataType;

use super::{FeatureCache, FileVersion, SourceKey, SourceVersion};
use crate::domain::pit::FeatureRows;
use crate::domain::pit::index::FeatureIndex;
use crate::offline::reader::ReadColumn;

fn key(url: &str) -> SourceKey {
    SourceKey {
        url: url.to_owned(),
        columns: vec![ReadColumn {
            name: "driver_id".to_owned(),
            data_type: DataType::Int64,
            required: true,
        }],
    }
}

fn version(size: u64) -> SourceVersion {
    SourceVersion(vec![FileVersion {
        path: "drivers/a.parquet".to_owned(),
        size,
        modified_nanos: 1,
        e_tag: Some("etag".to_owned()),
        version: None,
    }])
}

fn index(rows: usize) -> FeatureIndex {
    let keys: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|k| k % 7),
    ));
    let values: ArrayRef = Arc::new(Float64Array::from_iter_values((0..rows).map(|v| v as f64)));
    FeatureIndex::build(FeatureRows {
        keys: vec![keys],
        event_timestamps: TimestampMicrosecondArray::from_iter_values(0..rows as i64),
        created_timestamps: None,
        features: vec![values],
    })
    .unwrap()
}

#[test]
fn an_index_is_found_for_its_version_only() {
    let cache = Arc::new(FeatureCache::new(1 << 30));
    let (drivers, v1, v2) = (key("file:///lake/drivers"), version(100), version(101));
    assert!(cache.get(&drivers, &v1).is_none());
    let claim = cache.claim(&drivers, &v1, 1000).expect("a first claim");
    // Someone is building it: no second claim, and nothing to get yet.
    assert!(cache.claim(&drivers, &v1, 1000).is_none());
    assert!(cache.get(&drivers, &v1).is_none());
    claim.finish(Some(index(100)));
    assert!(cache.get(&drivers, &v1).is_some());
    assert!(cache.claim(&drivers, &v1, 1000).is_none(), "already kept");
    // The source changed: the old index is not served, and the new version replaces it.
    assert!(cache.get(&drivers, &v2).is_none());
    let held = cache.bytes();
    let claim = cache
        .claim(&drivers, &v2, 1000)
        .expect("a claim for the new version");
    assert_eq!(
        cache.bytes(),
        0,
        "the old version's bytes were freed ({held} before)"
    );
    claim.finish(Some(index(50)));
    assert!(cache.get(&drivers, &v1).is_none());
    assert!(cache.get(&drivers, &v2).is_some());
    // Other columns of the same files are another entry.
    let mut other = key("file:///lake/drivers");
    other.columns[0].name = "customer_id".to_owned();
    assert!(cache.get(&other, &v2).is_none());
}

#[test]
fn a_withdrawn_or_failed_claim_lets_the_next_caller_try() {
    let cache = Arc::new(FeatureCache::new(1 << 30));
    let (drivers, v1) = (key("file:///lake/drivers"), version(100));
    drop(cache.claim(&drivers, &v1, 10).expect("a claim"));
    let claim = cache
        .claim(&drivers, &v1, 10)
        .expect("claimable again after a drop");
    claim.finish(None);
    let claim = cache
        .claim(&drivers, &v1, 10)
        .expect("claimable again after a failure");
    claim.finish(Some(index(10)));
    assert!(cache.get(&drivers, &v1).is_some());
}

#[test]
fn the_budget_evicts_the_least_recently_used_and_refuses_what_cannot_fit() {
    let one = index(1000).memory_size() as u64;
    let cache = Arc::new(FeatureCache::new(one * 2 + one / 2));
    let v = version(1);
    let (a, b, c) = (key("file:///a"), key("file:///b"), key("file:///c"));
    for source in [&a, &b] {
        cache
            .claim(source, &v, one)
            .unwrap()
            .finish(Some(index(1000)));
    }
    assert_eq!(cache.bytes(), 2 * one);
    // `a` is used after `b`, so `b` goes when `c` arrives.
    assert!(cache.get(&a, &v).is_some());
    cache.claim(&c, &v, one).unwrap().finish(Some(index(1000)));
    assert!(cache.get(&a, &v).is_some());
    assert!(cache.get(&b, &v).is_none());
    assert!(cache.get(&c, &v).is_some());
    assert_eq!(cache.bytes(), 2 * one);
    // An estimate over the budget is not claimed; an index bigger than the budget is not kept.
    assert!(cache.claim(&b, &v, one * 3).is_none());
    cache.claim(&b, &v, 1).unwrap().finish(Some(index(3000)));
    assert!(cache.get(&b, &v).is_none());
    assert!(cache.bytes() <= cache.budget());
    // A cache of 0 bytes claims nothing.
    let off = Arc::new(FeatureCache::new(0));
    assert!(off.claim(&a, &v, 1).is_none());
}

#[tokio::test]
async fn a_caller_waits_for_an_index_being_built_and_gets_it_or_nothing() {
    let cache = Arc::new(FeatureCache::new(1 << 30));
    let (drivers, v1, v2) = (key("file:///lake/drivers"), version(100), version(101));
    // Nothing is being built: no wait, nothing found.
    assert!(cache.get_or_wait(&drivers, &v1).await.is_none());

    let claim = cache.claim(&drivers, &v1, 1000).expect("a first claim");
    let waiting = tokio::spawn({
        let (cache, drivers, v1) = (Arc::clone(&cache), drivers.clone(), v1.clone());
        async move { cache.get_or_wait(&drivers, &v1).await }
    });
    // Another version of the source does not wait for this build.
    assert!(cache.get_or_wait(&drivers, &v2).await.is_none());
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "waits while the index is built");
    claim.finish(Some(index(100)));
    let found = waiting.await.expect("the waiting task");
    assert_eq!(
        found.map(|index| index.memory_size()),
        Some(index(100).memory_size()),
        "gets the index just built"
    );

    // A build given up (its claim dropped) releases the waiters with nothing.
    let claim = cache
        .claim(&drivers, &v2, 1000)
        .expect("a claim for the new version");
    let waiting = tokio::spawn({
        let (cache, drivers, v2) = (Arc::clone(&cache), drivers.clone(), v2.clone());
        async move { cache.get_or_wait(&drivers, &v2).await }
    });
    tokio::task::yield_now().await;
    drop(claim);
    assert!(waiting.await.expect("the waiting task").is_none());
    assert!(
        cache.claim(&drivers, &v2, 1000).is_some(),
        "the waiter may claim it now"
    );
}
