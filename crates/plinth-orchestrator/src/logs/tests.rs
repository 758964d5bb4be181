use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;

use super::writer::format_bytes;
use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    spool: PathBuf,
    logs: LogStore,
}

fn fixture(max_bytes: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    let spool = dir.path().join("spool");
    let logs = LogStore::new(
        Arc::new(Locations::new(BTreeMap::new())),
        format!("file://{}", root.display()),
        spool.clone(),
        max_bytes,
    )
    .unwrap();
    Fixture {
        _dir: dir,
        root,
        spool,
        logs,
    }
}

fn key(try_number: u32) -> AttemptKey {
    AttemptKey {
        pipeline: "train-churn".to_owned(),
        run_id: "manual__2026-01-05T03:00:00Z".to_owned(),
        task: "train".to_owned(),
        try_number,
    }
}

async fn read_all(logs: &LogStore, attempt: &AttemptKey, follow: bool) -> String {
    let chunks: Vec<Bytes> = logs
        .read(attempt, follow)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    String::from_utf8(chunks.concat()).unwrap()
}

/// Spool files (each has a `.key` sidecar, counted with it).
fn spool_files(spool: &std::path::Path) -> usize {
    let names: Vec<PathBuf> = std::fs::read_dir(spool)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    let logs = names
        .iter()
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .count();
    assert_eq!(
        names.len(),
        2 * logs,
        "every spool has its sidecar: {names:?}"
    );
    logs
}

#[tokio::test]
async fn finish_stores_the_log_under_its_attempt_path_and_removes_the_spool() {
    let fixture = fixture(1024 * 1024);
    let writer = fixture.logs.writer(&key(2)).unwrap();
    writer.line("attempt 2 started");
    writer.write(b"hello\n");
    writer.write(b"no newline");
    writer.line("[plinth] attempt 2 ended: exit code 0");
    assert_eq!(spool_files(&fixture.spool), 1);

    let stored = writer.finish().await.unwrap();

    let expected =
        "[plinth] attempt 2 started\nhello\nno newline\n[plinth] attempt 2 ended: exit code 0\n";
    assert_eq!(stored, expected.len() as u64);
    let object = fixture
        .root
        .join("train-churn")
        .join("manual__2026-01-05T03:00:00Z")
        .join("train")
        .join("2.log");
    assert_eq!(std::fs::read_to_string(&object).unwrap(), expected);
    assert_eq!(spool_files(&fixture.spool), 0);
    assert_eq!(read_all(&fixture.logs, &key(2), false).await, expected);
    assert_eq!(read_all(&fixture.logs, &key(2), true).await, expected);
    assert!(
        fixture
            .logs
            .url(&key(2))
            .ends_with("/logs/train-churn/manual__2026-01-05T03:00:00Z/train/2.log")
    );
}

#[tokio::test]
async fn output_past_the_cap_is_counted_dropped_and_noted() {
    let fixture = fixture(1024);
    let writer = fixture.logs.writer(&key(1)).unwrap();
    let chunk = vec![b'y'; 700];
    for _ in 0..10 {
        writer.write(&chunk);
    }
    assert_eq!(writer.dropped_bytes(), 7000 - 1024);
    writer.line("attempt 1 ended");
    writer.finish().await.unwrap();

    let text = read_all(&fixture.logs, &key(1), false).await;
    let (kept, notes) = text.split_at(1024);
    assert!(kept.bytes().all(|byte| byte == b'y'));
    assert_eq!(
        notes,
        "\n[plinth] attempt 1 ended\n[plinth] log truncated: 5976 bytes dropped after the 1 KiB limit\n"
    );
}

#[tokio::test]
async fn clones_write_concurrently_and_every_chunk_stays_whole() {
    let fixture = fixture(10 * 1024 * 1024);
    let writer = fixture.logs.writer(&key(1)).unwrap();
    let mut handles = Vec::new();
    for stream in ["out", "err"] {
        let writer = writer.clone();
        handles.push(tokio::spawn(async move {
            for line in 0..500 {
                writer.write(format!("{stream} {line}\n").as_bytes());
                tokio::task::yield_now().await;
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    writer.finish().await.unwrap();
    let text = read_all(&fixture.logs, &key(1), false).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1000);
    for stream in ["out", "err"] {
        let numbers: Vec<usize> = lines
            .iter()
            .filter_map(|line| line.strip_prefix(stream)?.trim().parse().ok())
            .collect();
        assert_eq!(numbers, (0..500).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn reading_a_running_attempt_without_follow_returns_what_is_written_so_far() {
    let fixture = fixture(1024 * 1024);
    let writer = fixture.logs.writer(&key(1)).unwrap();
    writer.write(b"first\n");
    assert_eq!(read_all(&fixture.logs, &key(1), false).await, "first\n");
    writer.write(b"second\n");
    assert_eq!(
        read_all(&fixture.logs, &key(1), false).await,
        "first\nsecond\n"
    );
    writer.finish().await.unwrap();
}

#[tokio::test]
async fn follow_streams_a_running_attempt_until_it_finishes() {
    let fixture = fixture(1024 * 1024);
    let writer = fixture.logs.writer(&key(1)).unwrap();
    writer.write(b"before\n");
    let mut stream = fixture.logs.read(&key(1), true).await.unwrap();
    assert_eq!(stream.try_next().await.unwrap().unwrap(), "before\n");

    // Nothing more yet: the follower waits rather than ending.
    let waited = tokio::time::timeout(Duration::from_millis(100), stream.try_next()).await;
    assert!(waited.is_err(), "the follower ended early: {waited:?}");

    let follower = tokio::spawn(async move {
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        String::from_utf8(chunks.concat()).unwrap()
    });
    for line in 0..3 {
        writer.write(format!("line {line}\n").as_bytes());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.line("attempt 1 ended");
    writer.finish().await.unwrap();

    let followed = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the follower ends when the log is finished")
        .unwrap();
    assert_eq!(
        followed,
        "line 0\nline 1\nline 2\n[plinth] attempt 1 ended\n"
    );
}

#[tokio::test]
async fn a_writer_dropped_without_finish_is_stored_with_a_note_and_ends_its_followers() {
    let fixture = fixture(1024 * 1024);
    let writer = fixture.logs.writer(&key(1)).unwrap();
    writer.write(b"partial");
    let follower = {
        let logs = fixture.logs.clone();
        tokio::spawn(async move { read_all(&logs, &key(1), true).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(writer);
    let followed = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the follower ends when the writer is gone")
        .unwrap();
    let expected = "partial\n[plinth] log closed before the attempt's end was recorded\n";
    assert_eq!(followed, expected);
    // Stored in the background; then the attempt can be written again (a reattach).
    let stored = fixture
        .root
        .join("train-churn/manual__2026-01-05T03:00:00Z/train/1.log");
    for _ in 0..100 {
        if spool_files(&fixture.spool) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_to_string(stored).unwrap(), expected);
    fixture
        .logs
        .writer(&key(1))
        .unwrap()
        .finish()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_attempt_with_no_log_is_not_found() {
    let fixture = fixture(1024);
    let err = fixture.logs.read(&key(9), false).await.err().unwrap();
    assert!(matches!(err, LogError::NotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("train-churn/manual__2026-01-05T03:00:00Z/train/9.log"),
        "{message}"
    );
}

#[tokio::test]
async fn one_writer_per_attempt_and_finish_once() {
    let fixture = fixture(1024);
    let writer = fixture.logs.writer(&key(1)).unwrap();
    let err = fixture.logs.writer(&key(1)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    let clone = writer.clone();
    writer.finish().await.unwrap();
    // A late write through another clone is ignored, a second finish refused.
    clone.write(b"late\n");
    let err = clone.finish().await.unwrap_err();
    assert!(matches!(err, LogError::AlreadyFinished { .. }), "{err:?}");
    assert_eq!(read_all(&fixture.logs, &key(1), false).await, "");
    // The next try gets its own writer; the same try may be written again (a reattach re-reads).
    fixture
        .logs
        .writer(&key(1))
        .unwrap()
        .finish()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bad_root_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = LogStore::new(
        Arc::new(Locations::new(BTreeMap::new())),
        "ftp://somewhere/logs".to_owned(),
        dir.path().to_owned(),
        1024,
    )
    .unwrap_err();
    assert!(matches!(err, LogError::Root { .. }), "{err:?}");
}

#[tokio::test]
async fn copy_from_drains_a_reader_past_the_cap() {
    let fixture = fixture(4096);
    let writer = fixture.logs.writer(&key(1)).unwrap();
    let data = vec![b'x'; 1024 * 1024];
    let copied = writer.copy_from(&data[..]).await.unwrap();
    assert_eq!(copied, 1024 * 1024);
    assert_eq!(writer.dropped_bytes(), 1024 * 1024 - 4096);
    let note = "[plinth] log truncated: 1044480 bytes dropped after the 4 KiB limit\n";
    assert_eq!(writer.finish().await.unwrap(), 4096 + 1 + note.len() as u64);
}

#[test]
fn byte_sizes_read_as_people_write_them() {
    assert_eq!(format_bytes(64 * 1024 * 1024), "64 MiB");
    assert_eq!(format_bytes(2048), "2 KiB");
    assert_eq!(format_bytes(1000), "1000 bytes");
    assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3 GiB");
}

#[tokio::test]
async fn a_log_that_cannot_be_stored_stays_readable_from_its_spool() {
    let fixture = fixture(1024 * 1024);
    // A file where the pipeline's directory should be: the object store cannot write under it.
    std::fs::create_dir_all(&fixture.root).unwrap();
    std::fs::write(fixture.root.join("train-churn"), "not a directory").unwrap();
    let writer = fixture.logs.writer(&key(1)).unwrap();
    writer.write(b"precious output\n");
    let follower = {
        let logs = fixture.logs.clone();
        tokio::spawn(async move { read_all(&logs, &key(1), true).await })
    };

    let err = writer.finish().await.unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Store {
                action: "store",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("train-churn/manual__2026-01-05T03:00:00Z/train/1.log"),
        "{err}"
    );

    let followed = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("followers end when the log is finished, stored or not")
        .unwrap();
    assert_eq!(followed, "precious output\n");
    assert_eq!(spool_files(&fixture.spool), 1);
    assert_eq!(
        read_all(&fixture.logs, &key(1), false).await,
        "precious output\n"
    );
}

/// A second store on the same directories, as a restarted orchestrator opens them.
fn reopen(fixture: &Fixture) -> LogStore {
    LogStore::new(
        Arc::new(Locations::new(BTreeMap::new())),
        format!("file://{}", fixture.root.display()),
        fixture.spool.clone(),
        1024 * 1024,
    )
    .unwrap()
}

/// The spool and sidecar a killed orchestrator leaves behind.
fn leave_spool(fixture: &Fixture, attempt: &AttemptKey, text: &str) {
    let name = fixture.spool.join("0123456789abcdef-crashed");
    std::fs::write(name.with_extension("log"), text).unwrap();
    std::fs::write(
        name.with_extension("key"),
        serde_json::to_vec(attempt).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn spools_left_by_a_killed_orchestrator_are_stored_at_the_next_start() {
    let fixture = fixture(1024 * 1024);
    leave_spool(&fixture, &key(3), "epoch 1\nepoch 2 (cut");
    let restarted = reopen(&fixture);
    assert_eq!(restarted.recover_spools().await.unwrap(), 1);
    assert_eq!(spool_files(&fixture.spool), 0);
    assert_eq!(
        read_all(&restarted, &key(3), false).await,
        "epoch 1\nepoch 2 (cut\n[plinth] the orchestrator stopped before this attempt ended; its log ends here\n"
    );
}

#[tokio::test]
async fn recovery_leaves_live_spools_and_stored_logs_alone() {
    let fixture = fixture(1024 * 1024);
    // Live in "another orchestrator" (the first store) sharing the spool directory.
    let writer = fixture.logs.writer(&key(1)).unwrap();
    writer.write(b"still running\n");
    // Already stored in full (a reattached attempt finished): the stored log wins.
    let stored = fixture.logs.writer(&key(2)).unwrap();
    stored.write(b"the whole log\n");
    stored.finish().await.unwrap();
    leave_spool(&fixture, &key(2), "the first part");

    let other = reopen(&fixture);
    assert_eq!(other.recover_spools().await.unwrap(), 0);
    assert_eq!(spool_files(&fixture.spool), 1);
    assert_eq!(read_all(&other, &key(2), false).await, "the whole log\n");
    writer.finish().await.unwrap();
    assert_eq!(spool_files(&fixture.spool), 0);
    assert_eq!(read_all(&other, &key(1), false).await, "still running\n");
}
