//! Task logs. A running attempt's stdout and stderr go to a spool file on the replica that runs it
//! ([`LogWriter`]), capped at `max_bytes` so a process that prints gigabytes neither blocks nor fills
//! the disk: past the cap, output is counted and dropped. When the attempt ends the spool is stored in
//! the object store at `<root>/<pipeline>/<run_id>/<task>/<try>.log` and removed. [`LogStore::read`]
//! serves the spool while the attempt runs here (and follows it to the end), the stored object after.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use plinth_runtime::storage::{Location, Locations};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// The bytes read from a pipe or a spool file at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// Which attempt a log belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
        let (progress_sender, progress) = watch::channel(Progress::default());
        live.insert(
            attempt.clone(),
            LiveLog {
                path: path.clone(),
                progress,
            },
        );
        Ok(LogWriter {
            shared: Arc::new(WriterShared {
                finisher: Finisher {
                    store: Arc::clone(&self.shared),
                    attempt: attempt.clone(),
                    path,
                    progress: progress_sender,
                },
                state: Mutex::new(WriterState {
                    file: Some(file),
                    kept: 0,
                    dropped: 0,
                    at_line_start: true,
                    write_error: None,
                }),
            }),
        })
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

#[derive(Debug)]
struct WriterState {
    /// `None` once finished.
    file: Option<File>,
    kept: u64,
    dropped: u64,
    at_line_start: bool,
    write_error: Option<io::Error>,
}

#[derive(Debug)]
struct WriterShared {
    finisher: Finisher,
    state: Mutex<WriterState>,
}

impl WriterShared {
    fn state(&self) -> MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self, kept: u64) {
        self.finisher
            .progress
            .send_modify(|progress| progress.bytes = kept);
    }

    /// Appends the closing notes and closes the spool; returns the bytes kept. Once only.
    fn close(&self, extra_note: Option<&str>) -> Result<u64, LogError> {
        let mut state = self.state();
        if state.file.is_none() {
            return Err(LogError::AlreadyFinished {
                attempt: self.finisher.attempt.to_string(),
            });
        }
        if let Some(note) = extra_note {
            let _ = write_note(&mut state, note);
        }
        if let Some(err) = state.write_error.take() {
            let note = format!(
                "[plinth] log incomplete: writing the spool failed ({err}); {} bytes were lost",
                state.dropped
            );
            let _ = write_note(&mut state, &note);
        } else if state.dropped > 0 {
            let note = format!(
                "[plinth] log truncated: {} bytes dropped after the {} limit",
                state.dropped,
                format_bytes(self.finisher.store.max_bytes)
            );
            let _ = write_note(&mut state, &note);
        }
        if let Some(file) = state.file.take()
            && let Err(source) = file.sync_data()
        {
            let path = self.finisher.path.display();
            tracing::warn!(path = %path, error = %source, "cannot sync the log spool");
        }
        Ok(state.kept)
    }
}

impl Drop for WriterShared {
    fn drop(&mut self) {
        // Every clone is gone without `finish` (the attempt's task was aborted): store what there is
        // in the background when a runtime is there, and in any case let followers end.
        let note = "[plinth] log closed before the attempt's end was recorded";
        let Ok(kept) = self.close(Some(note)) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let finisher = self.finisher.clone();
                runtime.spawn(async move {
                    if let Err(err) = finisher.store(kept).await {
                        tracing::warn!(error = %err, "cannot store an abandoned attempt log");
                    }
                });
            }
            Err(_) => self.finisher.end(kept),
        }
    }
}

/// What storing a closed spool needs.
#[derive(Debug, Clone)]
struct Finisher {
    store: Arc<StoreShared>,
    attempt: AttemptKey,
    path: PathBuf,
    progress: watch::Sender<Progress>,
}

impl Finisher {
    /// Tells followers the log is complete.
    fn end(&self, kept: u64) {
        self.progress.send_modify(|progress| {
            progress.bytes = kept;
            progress.finished = true;
        });
    }

    /// Stores the closed spool, then forgets and removes it. On failure the spool stays, served on this
    /// replica.
    async fn store(&self, kept: u64) -> Result<u64, LogError> {
        let result = self.upload().await;
        self.end(kept);
        result?;
        self.store.live().remove(&self.attempt);
        if let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            let path = self.path.display();
            tracing::warn!(path = %path, error = %err, "cannot remove the log spool");
        }
        Ok(kept)
    }

    async fn upload(&self) -> Result<(), LogError> {
        let location = self.store.location()?;
        let relative = self.attempt.relative_path();
        let url = location.url_of(&relative);
        let store_error = |source: io::Error| LogError::Store {
            action: "store",
            url: url.clone(),
            source: object_store::Error::Generic {
                store: "log",
                source: Box::new(source),
            },
        };
        let mut spool =
            tokio::fs::File::open(&self.path)
                .await
                .map_err(|source| LogError::Spool {
                    path: self.path.clone(),
                    source,
                })?;
        let mut upload = BufWriter::new(Arc::clone(&location.store), location.path(&relative));
        if let Err(err) = tokio::io::copy(&mut spool, &mut upload).await {
            let _ = upload.abort().await;
            return Err(store_error(err));
        }
        upload.shutdown().await.map_err(store_error)
    }
}

/// Writes one attempt's log. Clones write to the same spool (stdout and stderr at once); writes never
/// block on the log and never fail: past the size cap, or after a disk error, bytes are counted and
/// dropped, and [`LogWriter::finish`] says so at the end of the log. When every clone is dropped
/// without `finish`, the log is stored in the background with a note saying so.
///
/// Writes go to a local file through the page cache, synchronously: they are short and keep each
/// chunk whole when stdout and stderr interleave.
#[derive(Debug, Clone)]
pub struct LogWriter {
    shared: Arc<WriterShared>,
}

impl LogWriter {
    /// The attempt this log belongs to.
    pub fn attempt(&self) -> &AttemptKey {
        &self.shared.finisher.attempt
    }

    /// Appends process output, keeping what fits under the cap.
    pub fn write(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let max_bytes = self.shared.finisher.store.max_bytes;
        let mut state = self.shared.state();
        let room = max_bytes.saturating_sub(state.kept);
        let keep = usize::try_from(room).map_or(bytes.len(), |room| room.min(bytes.len()));
        state.dropped += (bytes.len() - keep) as u64;
        if keep > 0 && append(&mut state, &bytes[..keep]) {
            state.kept += keep as u64;
            state.at_line_start = bytes[keep - 1] == b'\n';
            let kept = state.kept;
            drop(state);
            self.shared.notify(kept);
        }
    }

    /// Appends an orchestrator message on a line of its own, prefixed `[plinth] ` (unless it already
    /// is), e.g. `[plinth] attempt 2 started`. Messages are written even past the cap: they are few and
    /// say what happened.
    pub fn line(&self, text: &str) {
        let mut state = self.shared.state();
        let mut line = String::with_capacity(text.len() + 12);
        if !state.at_line_start {
            line.push('\n');
        }
        if !text.starts_with("[plinth]") {
            line.push_str("[plinth] ");
        }
        line.push_str(text.trim_end_matches('\n'));
        line.push('\n');
        if append(&mut state, line.as_bytes()) {
            state.kept += line.len() as u64;
            state.at_line_start = true;
            let kept = state.kept;
            drop(state);
            self.shared.notify(kept);
        }
    }

    /// Reads `reader` (a pipe, a log stream) to its end into the log, in chunks. Never stops early on
    /// the log's account, so the process on the other side never blocks on a full pipe.
    pub async fn copy_from<R: AsyncRead + Unpin>(&self, mut reader: R) -> io::Result<u64> {
        let mut buffer = vec![0_u8; CHUNK_BYTES];
        let mut total = 0_u64;
        loop {
            let read = reader.read(&mut buffer).await?;
            if read == 0 {
                return Ok(total);
            }
            total += read as u64;
            self.write(&buffer[..read]);
        }
    }

    /// The bytes dropped so far (past the cap or after a write error).
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.state().dropped
    }

    /// Ends the log: appends a note when bytes were dropped, stores it in the object store and removes
    /// the spool. Returns the bytes stored. Writes through other clones afterwards are ignored. When
    /// storing fails, the spool file is kept (and still served on this replica) and the error says where.
    pub async fn finish(self) -> Result<u64, LogError> {
        let kept = self.shared.close(None)?;
        self.shared.finisher.store(kept).await
    }
}

/// Appends to the spool; a failure is remembered (reported by `finish`) and the bytes counted dropped.
fn append(state: &mut WriterState, bytes: &[u8]) -> bool {
    let Some(file) = state.file.as_mut() else {
        return false;
    };
    if state.write_error.is_some() {
        state.dropped += bytes.len() as u64;
        return false;
    }
    match file.write_all(bytes) {
        Ok(()) => true,
        Err(err) => {
            state.dropped += bytes.len() as u64;
            state.write_error = Some(err);
            false
        }
    }
}

fn write_note(state: &mut WriterState, note: &str) -> io::Result<()> {
    let Some(file) = state.file.as_mut() else {
        return Ok(());
    };
    let mut text = String::with_capacity(note.len() + 2);
    if !state.at_line_start {
        text.push('\n');
    }
    text.push_str(note);
    text.push('\n');
    file.write_all(text.as_bytes())?;
    state.kept += text.len() as u64;
    state.at_line_start = true;
    Ok(())
}

/// `64 MiB`, `512 KiB`, `1000 bytes`.
fn format_bytes(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    match bytes {
        0 => "0 bytes".to_owned(),
        _ if bytes.is_multiple_of(GIB) => format!("{} GiB", bytes / GIB),
        _ if bytes.is_multiple_of(MIB) => format!("{} MiB", bytes / MIB),
        _ if bytes.is_multiple_of(KIB) => format!("{} KiB", bytes / KIB),
        _ => format!("{bytes} bytes"),
    }
}

/// The spool directory used when none is configured.
pub fn default_spool_dir() -> PathBuf {
    std::env::temp_dir().join("plinth-orchestrator-logs")
}

#[cfg(test)]
mod tests;
