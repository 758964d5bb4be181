//! Task logs. A running attempt's stdout and stderr go to a spool file on the replica that runs it
//! ([`LogWriter`]), capped at `max_bytes` so a process that prints gigabytes neither blocks nor fills
//! the disk: past the cap, output is counted and dropped. When the attempt ends the spool is stored in
//! the object store at `<root>/<pipeline>/<run_id>/<task>/<try>.log` and removed. [`LogStore::read`]
//! serves the spool while the attempt runs here (and follows it to the end), the stored object after.
//! Spools a killed orchestrator left behind are stored at the next start by
//! [`LogStore::recover_spools`].

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::ObjectStoreExt;
use plinth_runtime::storage::{Location, Locations};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// The bytes read from a pipe or a spool file at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// Which attempt a log belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptKey {
    /// The pipeline.
    pub pipeline: String,
    /// The run's id.
    pub run_id: String,
    /// The task.
    pub task: String,
    /// The attempt's number, from 1.
    pub try_number: u32,
}

impl AttemptKey {
    /// The object's path under the log root: `<pipeline>/<run_id>/<task>/<try>.log`.
    pub fn relative_path(&self) -> String {
        format!(
            "{}/{}/{}/{}.log",
            self.pipeline, self.run_id, self.task, self.try_number
        )
    }
}

impl fmt::Display for AttemptKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}/{}/{} try {}",
            self.pipeline, self.run_id, self.task, self.try_number
        )
    }
}

/// What went wrong with a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Neither a running attempt on this replica nor a stored log.
    #[error(
        "no log for {attempt}: it is not running on this replica and nothing is stored at {url}; check the run, task and try number (the attempt may not have started yet)"
    )]
    NotFound {
        /// The attempt.
        attempt: String,
        /// Where the stored log would be.
        url: String,
    },
    /// The log root cannot be used.
    #[error("the log root `{root}` is unusable: {message}")]
    Root {
        /// The configured root URL.
        root: String,
        /// Why.
        message: String,
    },
    /// The spool directory or file cannot be used.
    #[error(
        "cannot use the log spool file {path}: {source}; check that the spool directory exists and is writable"
    )]
    Spool {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: io::Error,
    },
    /// The object store refused a read or a write.
    #[error("cannot {action} the log at {url}: {source}")]
    Store {
        /// `store` or `read`.
        action: &'static str,
        /// The object's URL.
        url: String,
        /// The object-store error.
        #[source]
        source: object_store::Error,
    },
    /// `finish` was called twice (on two clones of one writer).
    #[error("the log of {attempt} is already finished")]
    AlreadyFinished {
        /// The attempt.
        attempt: String,
    },
}

/// A stream of log bytes.
pub type LogStream = BoxStream<'static, Result<Bytes, LogError>>;

/// How far a spool has been written; followers wait on changes.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    bytes: u64,
    finished: bool,
}

/// A spool being written on this replica.
#[derive(Debug, Clone)]
struct LiveLog {
    path: PathBuf,
    progress: watch::Receiver<Progress>,
}

#[derive(Debug)]
struct StoreShared {
    locations: Arc<Locations>,
    root_url: String,
    spool_dir: PathBuf,
    max_bytes: u64,
    live: Mutex<HashMap<AttemptKey, LiveLog>>,
}

impl StoreShared {
    fn live(&self) -> MutexGuard<'_, HashMap<AttemptKey, LiveLog>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn location(&self) -> Result<Location, LogError> {
        self.locations
            .get(&self.root_url)
            .map_err(|err| LogError::Root {
                root: self.root_url.clone(),
                message: err.message,
            })
    }
}

/// Where attempts' logs are written, stored and read. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogStore {
    shared: Arc<StoreShared>,
}

impl LogStore {
    /// Logs stored under `root_url` (any URL [`Locations`] opens), spooled in `spool_dir` (created) while
    /// attempts run, at most `max_bytes` kept per attempt.
    pub fn new(
        locations: Arc<Locations>,
        root_url: String,
        spool_dir: PathBuf,
        max_bytes: u64,
    ) -> Result<Self, LogError> {
        let root_url =
            plinth_runtime::storage::normalize_url(&root_url).map_err(|err| LogError::Root {
                root: root_url.clone(),
                message: err.message,
            })?;
        std::fs::create_dir_all(&spool_dir).map_err(|source| LogError::Spool {
            path: spool_dir.clone(),
            source,
        })?;
        let shared = StoreShared {
            locations,
            root_url,
            spool_dir,
            max_bytes,
            live: Mutex::new(HashMap::new()),
        };
        // Opening the store now turns a bad root into a start-up error rather than a failed attempt.
        shared.location()?;
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The URL the attempt's log is stored at once it ends.
    pub fn url(&self, attempt: &AttemptKey) -> String {
        format!("{}/{}", self.shared.root_url, attempt.relative_path())
    }

    /// A writer for `attempt`'s log, spooled on this replica until [`LogWriter::finish`]. Fails when a
    /// writer for the same attempt is still open here or the spool file cannot be created.
    pub fn writer(&self, attempt: &AttemptKey) -> io::Result<LogWriter> {
        let mut live = self.shared.live();
        if live.contains_key(attempt) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("the log of {attempt} is already being written on this replica"),
            ));
        }
        let digest = Sha256::digest(attempt.relative_path().as_bytes());
        let name: String = digest[..12]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let path = self
            .shared
            .spool_dir
            .join(format!("{name}-{}.log", uuid::Uuid::now_v7().simple()));
        let file = File::options().create_new(true).write(true).open(&path)?;
        let lock = recover::lock_spool(&path, attempt)?;
        let (progress_sender, progress) = watch::channel(Progress::default());
        live.insert(
            attempt.clone(),
            LiveLog {
                path: path.clone(),
                progress,
            },
        );
        Ok(LogWriter::new(
            Arc::clone(&self.shared),
            attempt.clone(),
            path,
            file,
            lock,
            progress_sender,
        ))
    }

    /// The attempt's log: the spool while the attempt runs on this replica (with `follow`, every byte
    /// until the attempt ends; without, what is written so far), else the stored object.
    pub async fn read(&self, attempt: &AttemptKey, follow: bool) -> Result<LogStream, LogError> {
        let live = self.shared.live().get(attempt).cloned();
        if let Some(live) = live {
            match tokio::fs::File::open(&live.path).await {
                Ok(file) => return Ok(spool_stream(file, live, follow)),
                // Finished and removed between the lookup and the open: it is stored by now.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(LogError::Spool {
                        path: live.path,
                        source,
                    });
                }
            }
        }
        let location = self.shared.location()?;
        let url = self.url(attempt);
        let path = location.path(&attempt.relative_path());
        match location.store.get(&path).await {
            Ok(result) => Ok(result
                .into_stream()
                .map(move |chunk| {
                    chunk.map_err(|source| LogError::Store {
                        action: "read",
                        url: url.clone(),
                        source,
                    })
                })
                .boxed()),
            Err(object_store::Error::NotFound { .. }) => Err(LogError::NotFound {
                attempt: attempt.to_string(),
                url,
            }),
            Err(source) => Err(LogError::Store {
                action: "read",
                url,
                source,
            }),
        }
    }
}

struct SpoolRead {
    file: tokio::fs::File,
    progress: watch::Receiver<Progress>,
    path: PathBuf,
    follow: bool,
    done: bool,
}

/// Streams a spool file; with `follow`, waits for more until the writer finishes or goes away.
fn spool_stream(file: tokio::fs::File, live: LiveLog, follow: bool) -> LogStream {
    let state = SpoolRead {
        file,
        progress: live.progress,
        path: live.path,
        follow,
        done: false,
    };
    stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            // Look at the progress before reading: a read that finds nothing after the writer finished
            // has seen every byte.
            let finished = state.progress.borrow_and_update().finished;
            let mut buffer = BytesMut::zeroed(CHUNK_BYTES);
            match state.file.read(&mut buffer).await {
                Ok(0) => {
                    if !state.follow || finished {
                        return None;
                    }
                    if state.progress.changed().await.is_err() {
                        // Every writer is gone: read what is left, then end.
                        state.follow = false;
                    }
                }
                Ok(read) => {
                    buffer.truncate(read);
                    return Some((Ok(buffer.freeze()), state));
                }
                Err(source) => {
                    state.done = true;
                    let path = state.path.clone();
                    return Some((Err(LogError::Spool { path, source }), state));
                }
            }
        }
    })
    .boxed()
}

/// The spool directory used when none is configured.
pub fn default_spool_dir() -> PathBuf {
    std::env::temp_dir().join("plinth-orchestrator-logs")
}

mod recover;
mod writer;

pub use self::writer::LogWriter;

#[cfg(test)]
mod tests;
