//! Writing one attempt's log: the spool file, the size cap, the closing notes, and storing it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use object_store::buffered::BufWriter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use plinth_runtime::storage::Location;

use super::recover::remove_spool;
use super::{AttemptKey, CHUNK_BYTES, LogError, Progress, StoreShared};

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
    /// Holds the spool's lock until it is stored and removed, so `LogStore::recover_spools` in
    /// another process leaves it alone.
    _lock: Arc<File>,
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
        remove_spool(&self.path);
        Ok(kept)
    }

    async fn upload(&self) -> Result<(), LogError> {
        let location = self.store.location()?;
        upload_spool(&location, &self.attempt, &self.path).await
    }
}

/// Copies the spool file at `path` to the attempt's object.
pub(super) async fn upload_spool(
    location: &Location,
    attempt: &AttemptKey,
    path: &Path,
) -> Result<(), LogError> {
    let relative = attempt.relative_path();
    let url = location.url_of(&relative);
    let store_error = |source: io::Error| LogError::Store {
        action: "store",
        url: url.clone(),
        source: object_store::Error::Generic {
            store: "log",
            source: Box::new(source),
        },
    };
    let mut spool = tokio::fs::File::open(path)
        .await
        .map_err(|source| LogError::Spool {
            path: path.to_owned(),
            source,
        })?;
    // The spool's length now; a copy that reads less (a runtime shutting down fails its file reads) is
    // not stored, so the spool stays for the next start's recovery instead of an empty log.
    let expected = std::fs::metadata(path).map_or(0, |meta| meta.len());
    let mut upload = BufWriter::new(Arc::clone(&location.store), location.path(&relative));
    match tokio::io::copy(&mut spool, &mut upload).await {
        Ok(copied) if copied >= expected => {}
        Ok(copied) => {
            let _ = upload.abort().await;
            return Err(store_error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read {copied} of the spool's {expected} bytes"),
            )));
        }
        Err(err) => {
            let _ = upload.abort().await;
            return Err(store_error(err));
        }
    }
    upload.shutdown().await.map_err(store_error)
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
    pub(super) fn new(
        store: Arc<StoreShared>,
        attempt: AttemptKey,
        path: PathBuf,
        file: File,
        lock: File,
        progress: watch::Sender<Progress>,
    ) -> Self {
        Self {
            shared: Arc::new(WriterShared {
                finisher: Finisher {
                    store,
                    attempt,
                    path,
                    progress,
                    _lock: Arc::new(lock),
                },
                state: Mutex::new(WriterState {
                    file: Some(file),
                    kept: 0,
                    dropped: 0,
                    at_line_start: true,
                    write_error: None,
                }),
            }),
        }
    }

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
pub(super) fn format_bytes(bytes: u64) -> String {
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
