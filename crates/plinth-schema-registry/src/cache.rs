//! The read cache in front of the store. Schemas by id and fingerprints are immutable once written, so
//! they are cached for good; subject version lists and settings change, so every write invalidates them
//! locally, and on PostgreSQL every replica also invalidates them on the store's change notification.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use plinth_proto::ids::{SchemaId, Subject};

use crate::domain::config::{CompatibilityConfig, CompatibilityPolicy, Direction, Mode};
use crate::registry::{PreparedSchema, StoredSchema};
use crate::store::VersionRow;

/// Entries a bounded map holds before it is cleared wholesale (a cheap bound without LRU bookkeeping).
const MAX_ENTRIES: usize = 100_000;

/// The configuration and mode tables.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) configs: HashMap<Option<Subject>, CompatibilityConfig>,
    pub(crate) modes: HashMap<Option<Subject>, Mode>,
}

/// The key of a memoized compatibility check between a stored version and a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CompatKey {
    pub(crate) previous: SchemaId,
    pub(crate) candidate_fingerprint: Arc<str>,
    pub(crate) direction: Direction,
    pub(crate) policy: CompatibilityPolicy,
}

#[derive(Debug)]
struct Bounded<K, V> {
    map: RwLock<HashMap<K, V>>,
}

impl<K: Eq + Hash, V: Clone> Bounded<K, V> {
    fn new() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.read().ok()?.get(key).cloned()
    }

    fn insert(&self, key: K, value: V) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, value);
        }
    }

    fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Ok(mut map) = self.map.write() {
            map.remove(key);
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}

/// The registry's in-memory cache.
#[derive(Debug)]
pub(crate) struct Cache {
    schemas: Bounded<SchemaId, Arc<StoredSchema>>,
    subjects: Bounded<Subject, Arc<Vec<VersionRow>>>,
    prepared: Bounded<Arc<str>, Arc<PreparedSchema>>,
    compat: Bounded<CompatKey, Arc<Vec<String>>>,
    settings: RwLock<Option<Arc<Settings>>>,
}

impl Cache {
    pub(crate) fn new() -> Self {
        Self {
            schemas: Bounded::new(),
            subjects: Bounded::new(),
            prepared: Bounded::new(),
            compat: Bounded::new(),
            settings: RwLock::new(None),
        }
    }

    pub(crate) fn schema(&self, id: SchemaId) -> Option<Arc<StoredSchema>> {
        self.schemas.get(&id)
    }

    pub(crate) fn put_schema(&self, schema: Arc<StoredSchema>) {
        self.schemas.insert(schema.id, schema);
    }

    pub(crate) fn subject(&self, subject: &Subject) -> Option<Arc<Vec<VersionRow>>> {
        self.subjects.get(subject)
    }

    pub(crate) fn put_subject(&self, subject: Subject, versions: Arc<Vec<VersionRow>>) {
        self.subjects.insert(subject, versions);
    }

    pub(crate) fn prepared(&self, key: &str) -> Option<Arc<PreparedSchema>> {
        self.prepared.get(key)
    }

    pub(crate) fn put_prepared(&self, key: Arc<str>, prepared: Arc<PreparedSchema>) {
        self.prepared.insert(key, prepared);
    }

    pub(crate) fn compat(&self, key: &CompatKey) -> Option<Arc<Vec<String>>> {
        self.compat.get(key)
    }

    pub(crate) fn put_compat(&self, key: CompatKey, messages: Arc<Vec<String>>) {
        self.compat.insert(key, messages);
    }

    pub(crate) fn settings(&self) -> Option<Arc<Settings>> {
        self.settings.read().ok()?.clone()
    }

    pub(crate) fn put_settings(&self, settings: Arc<Settings>) {
        if let Ok(mut slot) = self.settings.write() {
            *slot = Some(settings);
        }
    }

    /// Forgets what a change to one subject may have made stale.
    pub(crate) fn invalidate_subject(&self, subject: &Subject) {
        self.subjects.remove(subject);
    }

    /// Forgets the configuration and mode tables.
    pub(crate) fn invalidate_settings(&self) {
        if let Ok(mut slot) = self.settings.write() {
            *slot = None;
        }
    }

    /// Forgets everything that can change (after a lost change notification).
    pub(crate) fn invalidate_mutable(&self) {
        self.subjects.clear();
        self.invalidate_settings();
    }
}
