//! Spools left behind by an orchestrator that stopped mid-attempt. Each spool `<name>.log` has a
//! sidecar `<name>.key` naming its attempt, and is locked (`flock`) by the process writing it;
//! [`LogStore::recover_spools`] stores the unlocked ones, so a crashed attempt's output is kept.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;

use super::writer::upload_spool;
use super::{AttemptKey, LogError, LogStore};

/// The note ending a recovered log.
const RECOVERED_NOTE: &str =
    "[plinth] the orchestrator stopped before this attempt ended; its log ends here";

fn key_path(spool: &Path) -> PathBuf {
    spool.with_extension("key")
}

/// Locks a new spool for this process and writes its sidecar; the lock lasts while the returned
/// handle is open.
pub(super) fn lock_spool(spool: &Path, attempt: &AttemptKey) -> io::Result<File> {
    let lock = File::open(spool)?;
    if !try_lock(&lock)? {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "the new spool file {} is locked by another process",
                spool.display()
            ),
        ));
    }
    let key = serde_json::to_vec(attempt).map_err(io::Error::other)?;
    std::fs::write(key_path(spool), key)?;
    Ok(lock)
}

/// Takes the exclusive lock of `file` without waiting; `false` when another open file holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a file descriptor this `File` owns; no memory is involved.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        return Ok(false);
    }
    Err(err)
}

/// Removes a stored spool and its sidecar.
pub(super) fn remove_spool(spool: &Path) {
    for path in [spool.to_owned(), key_path(spool)] {
        if let Err(err) = std::fs::remove_file(&path)
            && err.kind() != io::ErrorKind::NotFound
        {
            let path = path.display();
            tracing::warn!(path = %path, error = %err, "cannot remove a log spool file");
        }
    }
}

impl LogStore {
    /// Stores the spools no live process holds (left by an orchestrator that was killed), each ending
    /// with a note, unless a log is already stored for the attempt (a reattached attempt stored the
    /// whole log). Call it at start, before attempts run; answers how many were stored.
    pub async fn recover_spools(&self) -> Result<usize, LogError> {
        let spool_dir = &self.shared.spool_dir;
        let entries = std::fs::read_dir(spool_dir).map_err(|source| LogError::Spool {
            path: spool_dir.clone(),
            source,
        })?;
        let mut stored = 0;
        for entry in entries.flatten() {
            let key_file = entry.path();
            if key_file
                .extension()
                .and_then(|extension| extension.to_str())
                != Some("key")
            {
                continue;
            }
            let spool = key_file.with_extension("log");
            match self.recover_spool(&key_file, &spool).await {
                Ok(true) => stored += 1,
                Ok(false) => {}
                Err(err) => {
                    let path = spool.display();
                    tracing::warn!(path = %path, error = %err, "cannot recover a log spool");
                }
            }
        }
        Ok(stored)
    }

    async fn recover_spool(&self, key_file: &Path, spool: &Path) -> Result<bool, LogError> {
        let spool_error = |source: io::Error| LogError::Spool {
            path: spool.to_owned(),
            source,
        };
        let mut file = match File::options().read(true).append(true).open(spool) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                remove_spool(spool);
                return Ok(false);
            }
            Err(err) => return Err(spool_error(err)),
        };
        if !try_lock(&file).map_err(spool_error)? {
            return Ok(false);
        }
        let key = std::fs::read(key_file).map_err(spool_error)?;
        let attempt: AttemptKey = serde_json::from_slice(&key)
            .map_err(|err| spool_error(io::Error::new(io::ErrorKind::InvalidData, err)))?;
        let location = self.shared.location()?;
        let object = location.path(&attempt.relative_path());
        // A log stored whole (a reattached attempt's) wins; one cut short by the kill (an upload the
        // dying runtime abandoned) is replaced by the spool.
        let spooled = file.metadata().map_err(spool_error)?.len();
        if let Ok(meta) = location.store.head(&object).await
            && meta.size >= spooled
        {
            remove_spool(spool);
            return Ok(false);
        }
        append_note(&mut file).map_err(spool_error)?;
        upload_spool(&location, &attempt, spool).await?;
        remove_spool(spool);
        Ok(true)
    }
}

/// Ends the log with [`RECOVERED_NOTE`] on a line of its own.
fn append_note(file: &mut File) -> io::Result<()> {
    let length = file.metadata()?.len();
    let mut last = [b'\n'];
    if length > 0 {
        file.seek(SeekFrom::Start(length - 1))?;
        file.read_exact(&mut last)?;
    }
    let newline = if last[0] == b'\n' { "" } else { "\n" };
    file.write_all(format!("{newline}{RECOVERED_NOTE}\n").as_bytes())
}
