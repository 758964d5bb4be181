//! Feature sources kept in memory between training sets, as [`FeatureIndex`]es, up to a byte budget.
//!
//! A training set whose view is joined in memory (one partition) and whose source's estimated size fits
//! the budget reads the whole source (not only the entity rows' time window), joins as usual, and then
//! indexes the rows it read on a blocking thread, after the join. A later training set that reads the
//! same columns of the same files joins against that index, without reading or decoding anything; one
//! that comes while the index is being built waits for it ([`FeatureCache::get_or_wait`]) rather than
//! read and decode the source a second time on the same cores.
//!
//! An entry is keyed by the source's URL and the columns read, and is valid for one version of the
//! source: the listed files' paths, sizes, modification times, ETags and versions, as `object_store`
//! reports them. Any change (a rewritten file, a new file in a lake dataset) makes the next training set
//! read the source again and replace the entry. When the budget is exceeded, the least recently used
//! entries go first; an index bigger than the whole budget is not kept. A budget of 0 turns the cache
//! off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::domain::pit::index::FeatureIndex;
use crate::offline::reader::{ReadColumn, SourceFiles};

/// A source and the columns read from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceKey {
    url: String,
    columns: Vec<ReadColumn>,
}

/// One file of a source as listed: what tells one version of it from the next.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileVersion {
    path: String,
    size: u64,
    modified_nanos: i64,
    e_tag: Option<String>,
    version: Option<String>,
}

/// A source's files as listed, the version an index was built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceVersion(Vec<FileVersion>);

impl SourceVersion {
    /// The version of `files` as listed.
    pub fn of(files: &SourceFiles) -> Self {
        Self(
            files
                .files
                .iter()
                .map(|file| FileVersion {
                    path: file.location.to_string(),
                    size: file.size,
                    modified_nanos: file
                        .last_modified
                        .timestamp_nanos_opt()
                        .unwrap_or_else(|| file.last_modified.timestamp()),
                    e_tag: file.e_tag.clone(),
                    version: file.version.clone(),
                })
                .collect(),
        )
    }
}

impl SourceKey {
    /// The key of `columns` read from `files`.
    pub fn of(files: &SourceFiles, columns: &[ReadColumn]) -> Self {
        Self {
            url: files.url.clone(),
            columns: columns.to_vec(),
        }
    }
}

enum Slot {
    /// A training set is indexing this version. The receiver sees its sender dropped when the build
    /// is settled, one way or the other.
    Building(watch::Receiver<()>),
    Ready {
        index: Arc<FeatureIndex>,
        bytes: u64,
        last_used: u64,
    },
}

struct Entry {
    version: SourceVersion,
    slot: Slot,
}

#[derive(Default)]
struct State {
    entries: HashMap<SourceKey, Entry>,
    /// The bytes of the ready entries.
    bytes: u64,
    /// A counter ordering uses, for least-recently-used eviction.
    clock: u64,
}

/// The cache, shared by every training set of a service.
pub struct FeatureCache {
    budget: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for FeatureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("FeatureCache")
            .field("budget", &self.budget)
            .field("bytes", &state.bytes)
            .field("entries", &state.entries.len())
            .finish()
    }
}

impl FeatureCache {
    /// A cache holding at most `budget` bytes of indexes; 0 keeps nothing.
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            state: Mutex::new(State::default()),
        }
    }

    /// The byte budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The bytes held now.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent map (every update is one statement).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The index of `key` if it was built from `version`.
    pub fn get(&self, key: &SourceKey, version: &SourceVersion) -> Option<Arc<FeatureIndex>> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        match state.entries.get_mut(key) {
            Some(Entry {
                version: built_from,
                slot: Slot::Ready {
                    index, last_used, ..
                },
            }) if built_from == version => {
                *last_used = now;
                Some(Arc::clone(index))
            }
            _ => None,
        }
    }

    /// Like [`FeatureCache::get`], but while a training set is building the index of `version`, waits
    /// until it is done: the index when it was kept, `None` when the build failed, was given up or
    /// did not fit (the caller then reads the source, and may [claim](FeatureCache::claim) it).
    pub async fn get_or_wait(
        &self,
        key: &SourceKey,
        version: &SourceVersion,
    ) -> Option<Arc<FeatureIndex>> {
        loop {
            let mut building = {
                let state = self.lock();
                match state.entries.get(key) {
                    Some(Entry {
                        version: built_from,
                        slot: Slot::Building(built),
                    }) if built_from == version => built.clone(),
                    _ => break,
                }
            };
            // Returns when the claim's sender is dropped: after the slot was settled.
            let _ = building.changed().await;
        }
        self.get(key, version)
    }

    /// Whether the caller should index `version` of `key` (estimated at `estimated_bytes` in memory):
    /// yes unless the estimate exceeds the budget or someone is indexing it already. A `Some` is a
    /// claim: hand the index to [`BuildClaim::finish`], or drop the claim to give up.
    pub fn claim(
        self: &Arc<Self>,
        key: &SourceKey,
        version: &SourceVersion,
        estimated_bytes: u64,
    ) -> Option<BuildClaim> {
        if self.budget == 0 || estimated_bytes > self.budget {
            return None;
        }
        let mut state = self.lock();
        if let Some(entry) = state.entries.get(key)
            && entry.version == *version
        {
            // Ready (a race with `get`) or being built: nothing to do.
            return None;
        }
        let (built, building) = watch::channel(());
        if let Some(Entry {
            slot: Slot::Ready { bytes, .. },
            ..
        }) = state.entries.insert(
            key.clone(),
            Entry {
                version: version.clone(),
                slot: Slot::Building(building),
            },
        ) {
            // An older version's index: replaced.
            state.bytes -= bytes;
        }
        Some(BuildClaim {
            cache: Arc::clone(self),
            key: key.clone(),
            version: version.clone(),
            done: false,
            _built: built,
        })
    }

    fn settle(&self, key: &SourceKey, version: &SourceVersion, index: Option<FeatureIndex>) {
        let mut state = self.lock();
        let ours = state.entries.get(key).is_some_and(|entry| {
            entry.version == *version && matches!(entry.slot, Slot::Building(_))
        });
        if !ours {
            return;
        }
        let Some(index) = index else {
            state.entries.remove(key);
            return;
        };
        let bytes = index.memory_size() as u64;
        if bytes > self.budget {
            state.entries.remove(key);
            return;
        }
        // Least recently used first, until the new index fits.
        while state.bytes + bytes > self.budget {
            let oldest = state
                .entries
                .iter()
                .filter_map(|(key, entry)| match entry.slot {
                    Slot::Ready { last_used, .. } => Some((last_used, key.clone())),
                    Slot::Building(_) => None,
                })
                .min_by_key(|(last_used, _)| *last_used);
            let Some((_, oldest)) = oldest else {
                break;
            };
            if let Some(Entry {
                slot: Slot::Ready { bytes, .. },
                ..
            }) = state.entries.remove(&oldest)
            {
                state.bytes -= bytes;
            }
        }
        state.clock += 1;
        let last_used = state.clock;
        state.bytes += bytes;
        if let Some(entry) = state.entries.get_mut(key) {
            entry.slot = Slot::Ready {
                index: Arc::new(index),
                bytes,
                last_used,
            };
        }
    }
}

/// The right to index one version of a source; dropped without [`BuildClaim::finish`], the claim is
/// withdrawn and a later training set may try again.
#[derive(Debug)]
pub struct BuildClaim {
    cache: Arc<FeatureCache>,
    key: SourceKey,
    version: SourceVersion,
    done: bool,
    /// Dropped after the slot is settled (fields drop after `Drop::drop`), which wakes the training
    /// sets waiting in [`FeatureCache::get_or_wait`].
    _built: watch::Sender<()>,
}

impl BuildClaim {
    /// Stores the index built, or withdraws the claim when the build failed (`None`).
    pub fn finish(mut self, index: Option<FeatureIndex>) {
        self.done = true;
        self.cache.settle(&self.key, &self.version, index);
    }
}

impl Drop for BuildClaim {
    fn drop(&mut self) {
        if !self.done {
            self.cache.settle(&self.key, &self.version, None);
        }
    }
}

#[cfg(test)]
mod tests;
