use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use plinth_runtime::storage::Locations;
use tokio::sync::oneshot;

use super::*;
use crate::domain::pipeline::Resources;
use crate::logs::{AttemptKey, LogStore};

struct Fixture {
    dir: tempfile::TempDir,
    logs: LogStore,
    executor: LocalExecutor,
}

fn fixture(max_bytes: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let logs = LogStore::new(
        Arc::new(Locations::new(BTreeMap::new())),
        format!("file://{}", dir.path().join("logs").display()),
        dir.path().join("spool"),
        max_bytes,
    )
    .unwrap();
    let secrets_dir = dir.path().join("secrets");
    std::fs::create_dir_all(secrets_dir.join("warehouse")).unwrap();
    std::fs::write(secrets_dir.join("warehouse/password"), "s3cret\n").unwrap();
    let executor = LocalExecutor::new(&LocalExecutorConfig {
        secrets_dir: Some(secrets_dir),
        kill_grace: Duration::from_millis(300),
        work_dir: None,
    });
    Fixture {
        dir,
        logs,
        executor,
    }
}

fn launch(argv: &[&str]) -> Launch {
    Launch {
        pipeline: "nightly".to_owned(),
        run_id: "manual__1".to_owned(),
        task: "step".to_owned(),
        try_number: 1,
        argv: argv.iter().map(|arg| (*arg).to_owned()).collect(),
        image: None,
        working_dir: None,
        env: BTreeMap::new(),
        secrets: Vec::new(),
        resources: Resources::default(),
        timeout: None,
    }
}

fn shell(script: &str) -> Launch {
    launch(&["sh", "-c", script])
}

struct Attempt {
    key: AttemptKey,
    control: AttemptControl,
    cancel: watch::Sender<bool>,
    started: oneshot::Receiver<String>,
}

fn attempt(fixture: &Fixture, launch: &Launch) -> Attempt {
    let key = AttemptKey {
        pipeline: launch.pipeline.clone(),
        run_id: launch.run_id.clone(),
        task: launch.task.clone(),
        try_number: launch.try_number,
    };
    let (cancel, cancel_receiver) = watch::channel(false);
    let (started_sender, started) = oneshot::channel();
    let control = AttemptControl {
        log: fixture.logs.writer(&key).unwrap(),
        cancel: cancel_receiver,
        started: Some(started_sender),
    };
    Attempt {
        key,
        control,
        cancel,
        started,
    }
}

/// Runs `launch` to its end; returns the outcome, the reported reference and the stored log.
async fn run(fixture: &Fixture, launch: Launch) -> (Outcome, Option<String>, String) {
    let attempt = attempt(fixture, &launch);
    let log = attempt.control.log.clone();
    let outcome = fixture.executor.run(launch, attempt.control).await;
    log.finish().await.unwrap();
    let started = attempt.started.await.ok();
    (outcome, started, log_text(fixture, &attempt.key).await)
}

async fn log_text(fixture: &Fixture, key: &AttemptKey) -> String {
    let chunks: Vec<bytes::Bytes> = fixture
        .logs
        .read(key, false)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    String::from_utf8(chunks.concat()).unwrap()
}

/// Whether a process is gone (or a zombie waiting for init to reap it).
fn process_is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_until_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_is_gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads a pid a script wrote to a file, waiting for the file.
async fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_command_that_exits_zero_succeeds_with_its_output_logged() {
    let fixture = fixture(1024 * 1024);
    let (outcome, started, log) = run(&fixture, shell("echo to-stdout; echo to-stderr >&2")).await;
    assert_eq!(outcome, Outcome::Succeeded);
    let started = started.unwrap();
    assert!(started.starts_with("pid "), "{started}");
    assert!(log.contains("to-stdout\n"), "{log}");
    assert!(log.contains("to-stderr\n"), "{log}");
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_its_code() {
    let fixture = fixture(1024 * 1024);
    let (outcome, _, _) = run(&fixture, shell("exit 3")).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            exit_code: Some(3),
            reason: "exit code 3".to_owned()
        }
    );
}

#[tokio::test]
async fn a_process_killed_by_a_signal_fails_naming_it() {
    let fixture = fixture(1024 * 1024);
    let (outcome, _, _) = run(&fixture, shell("kill -SEGV $$")).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            exit_code: None,
            reason: "killed by signal 11 (SIGSEGV)".to_owned()
        }
    );
}

#[tokio::test]
async fn a_program_that_does_not_exist_does_not_start() {
    let fixture = fixture(1024 * 1024);
    let (outcome, started, log) = run(&fixture, launch(&["plinth-no-such-program", "--x"])).await;
    let Outcome::NotStarted { reason } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.starts_with("`plinth-no-such-program` was not found on PATH ("),
        "{reason}"
    );
    assert!(reason.contains("/usr/bin"), "{reason}");
    assert_eq!(started, None);
    assert!(log.contains(reason.as_str()), "{log}");

    let (outcome, _, _) = run(&fixture, launch(&["/no/such/dir/tool"])).await;
    assert_eq!(
        outcome.reason(),
        "`/no/such/dir/tool` does not exist; check the path in `command`"
    );
    let (outcome, _, _) = run(&fixture, launch(&[])).await;
    assert!(matches!(outcome, Outcome::NotStarted { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_timeout_stops_the_whole_process_group() {
    let fixture = fixture(1024 * 1024);
    let pid_file = fixture.dir.path().join("child.pid");
    let mut launch = shell(&format!(
        "sleep 1000 & echo $! > {}; wait",
        pid_file.display()
    ));
    launch.timeout = Some(Duration::from_millis(500));
    let begun = Instant::now();
    let (outcome, _, log) = run(&fixture, launch).await;
    assert_eq!(
        outcome,
        Outcome::TimedOut {
            after: Duration::from_millis(500)
        }
    );
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "{:?}",
        begun.elapsed()
    );
    assert!(log.contains("execution_timeout of"), "{log}");
    // The shell's child got the signal too.
    wait_until_gone(read_pid(&pid_file).await).await;
}

#[tokio::test]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let fixture = fixture(1024 * 1024);
    let pid_file = fixture.dir.path().join("child.pid");
    let mut launch = shell(&format!(
        "trap '' TERM; sleep 1000 & echo $! > {}; wait",
        pid_file.display()
    ));
    launch.timeout = Some(Duration::from_millis(200));
    let (outcome, _, log) = run(&fixture, launch).await;
    assert!(matches!(outcome, Outcome::TimedOut { .. }), "{outcome:?}");
    assert!(log.contains("after SIGTERM: sending SIGKILL"), "{log}");
    wait_until_gone(read_pid(&pid_file).await).await;
}

#[tokio::test]
async fn a_cancel_stops_a_running_process() {
    let fixture = fixture(1024 * 1024);
    let launch = shell("echo begun; sleep 1000");
    let attempt = attempt(&fixture, &launch);
    let log = attempt.control.log.clone();
    let executor = fixture.executor.clone();
    let running = tokio::spawn(async move { executor.run(launch, attempt.control).await });
    let started = attempt.started.await.unwrap();
    let pid: u32 = started.trim_start_matches("pid ").parse().unwrap();
    // Cancel once the process is surely running its script.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log_text(&fixture, &attempt.key).await.contains("begun") {
        assert!(Instant::now() < deadline, "the script never began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    attempt.cancel.send(true).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::Cancelled);
    wait_until_gone(pid).await;
    log.finish().await.unwrap();
    let text = log_text(&fixture, &attempt.key).await;
    assert!(text.contains("begun\n[plinth] cancelled"), "{text}");
}

#[tokio::test]
async fn an_attempt_cancelled_before_it_starts_never_runs() {
    let fixture = fixture(1024 * 1024);
    let marker = fixture.dir.path().join("ran");
    let launch = shell(&format!("touch {}", marker.display()));
    let attempt = attempt(&fixture, &launch);
    attempt.cancel.send(true).unwrap();
    let outcome = fixture.executor.run(launch, attempt.control).await;
    assert_eq!(outcome, Outcome::Cancelled);
    assert!(!marker.exists());
}

#[tokio::test]
async fn hundreds_of_megabytes_of_output_are_truncated_without_blocking() {
    let fixture = fixture(64 * 1024);
    let begun = Instant::now();
    let (outcome, _, log) = run(
        &fixture,
        shell("yes plinth | head -c 300000000; echo done >&2"),
    )
    .await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert!(
        begun.elapsed() < Duration::from_secs(60),
        "{:?}",
        begun.elapsed()
    );
    let note = format!(
        "[plinth] log truncated: {} bytes dropped after the 64 KiB limit\n",
        300_000_000 + 5 - 64 * 1024
    );
    assert!(
        log.ends_with(&note),
        "{}",
        &log[log.len().saturating_sub(300)..]
    );
    assert!(log.len() < 64 * 1024 + 200, "{}", log.len());
    assert!(log.starts_with("plinth\nplinth\n"));
}

#[tokio::test]
async fn env_secrets_and_the_attempt_identity_reach_the_process_and_nothing_else() {
    let fixture = fixture(1024 * 1024);
    let mut launch = shell(
        "echo \"level=$LOG_LEVEL password=$DB_PASSWORD try=$PLINTH_TRY_NUMBER task=$PLINTH_TASK\"; env",
    );
    launch
        .env
        .insert("LOG_LEVEL".to_owned(), "debug".to_owned());
    launch.secrets.push(SecretRef {
        env: "DB_PASSWORD".to_owned(),
        secret: "warehouse".to_owned(),
        key: "password".to_owned(),
    });
    let (outcome, _, log) = run(&fixture, launch).await;
    assert_eq!(outcome, Outcome::Succeeded, "{log}");
    assert!(
        log.contains("level=debug password=s3cret try=1 task=step\n"),
        "{log}"
    );
    assert!(log.lines().any(|line| line.starts_with("PATH=")), "{log}");
    // The test runner's own variables are not inherited.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(!log.contains("CARGO_MANIFEST_DIR"), "{log}");
}

#[tokio::test]
async fn a_missing_secret_does_not_start_and_names_the_file() {
    let fixture = fixture(1024 * 1024);
    let mut launch = shell("true");
    launch.secrets.push(SecretRef {
        env: "TOKEN".to_owned(),
        secret: "warehouse".to_owned(),
        key: "token".to_owned(),
    });
    let (outcome, started, _) = run(&fixture, launch.clone()).await;
    let reason = outcome.reason();
    assert!(matches!(outcome, Outcome::NotStarted { .. }), "{outcome:?}");
    assert!(reason.contains("secrets/warehouse/token"), "{reason}");
    assert_eq!(started, None);

    launch.secrets[0].secret = "../warehouse".to_owned();
    let (outcome, _, _) = run(&fixture, launch.clone()).await;
    assert!(
        outcome.reason().contains("not a plain file name"),
        "{outcome:?}"
    );

    let executor = LocalExecutor::default();
    let attempt = attempt(&fixture, &launch);
    let outcome = executor.run(launch, attempt.control).await;
    assert!(
        outcome.reason().contains("executor.local.secrets_dir"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_process_runs_in_its_working_directory() {
    let fixture = fixture(1024 * 1024);
    let work = fixture.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut launch = shell("pwd");
    launch.working_dir = Some(work.display().to_string());
    let (outcome, _, log) = run(&fixture, launch.clone()).await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert!(log.contains(&format!("{}\n", work.display())), "{log}");

    launch.working_dir = Some(fixture.dir.path().join("absent").display().to_string());
    let (outcome, _, _) = run(&fixture, launch).await;
    assert!(
        outcome.reason().contains("working directory"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn background_processes_left_by_a_finished_command_are_killed() {
    let fixture = fixture(1024 * 1024);
    let pid_file = fixture.dir.path().join("child.pid");
    let begun = Instant::now();
    let (outcome, _, _) = run(
        &fixture,
        shell(&format!("sleep 1000 & echo $! > {}", pid_file.display())),
    )
    .await;
    assert_eq!(outcome, Outcome::Succeeded);
    // The pipes were closed by the kill: no wait for the drain timeout.
    assert!(
        begun.elapsed() < OUTPUT_DRAIN_TIMEOUT,
        "{:?}",
        begun.elapsed()
    );
    wait_until_gone(read_pid(&pid_file).await).await;
}

#[tokio::test]
async fn local_processes_cannot_be_reattached() {
    let fixture = fixture(1024 * 1024);
    let launch = shell("true");
    let attempt = attempt(&fixture, &launch);
    assert_eq!(
        fixture
            .executor
            .reattach(launch, "pid 1234", attempt.control)
            .await,
        None
    );
    assert_eq!(fixture.executor.name(), "local");
}

/// Set in the copy of this test binary that plays the orchestrator in the test below.
const ORCHESTRATOR_ROLE: &str = "PLINTH_TEST_LOCAL_ORCHESTRATOR_PID_FILE";

/// Kills an orchestrator (a copy of this test binary running a `sleep` through the executor) with
/// SIGKILL, so it runs no cleanup, and checks the task process went with it (`PR_SET_PDEATHSIG`).
#[test]
fn a_task_dies_with_its_orchestrator() {
    if let Some(pid_file) = std::env::var_os(ORCHESTRATOR_ROLE) {
        play_the_orchestrator(PathBuf::from(pid_file));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("task.pid");
    let mut orchestrator = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "executor::local::tests::a_task_dies_with_its_orchestrator",
            "--exact",
            "--nocapture",
        ])
        .env(ORCHESTRATOR_ROLE, &pid_file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let task_pid = runtime.block_on(read_pid(&pid_file));
    assert!(!process_is_gone(task_pid), "the task is running");
    orchestrator.kill().unwrap();
    orchestrator.wait().unwrap();
    runtime.block_on(wait_until_gone(task_pid));
}

/// Starts `sleep 1000` through the executor, writes its pid, and waits to be killed.
fn play_the_orchestrator(pid_file: PathBuf) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let fixture = fixture(1024);
        let launch = launch(&["sleep", "1000"]);
        let attempt = attempt(&fixture, &launch);
        let executor = fixture.executor.clone();
        let running = tokio::spawn(async move { executor.run(launch, attempt.control).await });
        let started = attempt.started.await.unwrap();
        std::fs::write(&pid_file, started.trim_start_matches("pid ")).unwrap();
        let outcome = running.await.unwrap();
        panic!("the task ended before the orchestrator was killed: {outcome:?}");
    });
}
