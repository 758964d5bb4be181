//! `plinth pipeline` end to end: the real `plinth` binary against an orchestrator started in this test
//! process (SQLite in a temp dir, task processes on this machine), asserting what a user sees: exit
//! codes, tables, logs and errors that name what is wrong.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the first surprise"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "a synchronous test driving processes: std::thread::sleep blocks no runtime"
)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// An orchestrator serving on free ports in a thread of this process, stopped (and its directory
/// removed) on drop.
struct Orchestrator {
    url: String,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Orchestrator {
    fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("plinth-cli-pipeline-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = config(&dir);
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = match plinth_orchestrator::bind(&config).await {
                    Ok(server) => server,
                    Err(err) => {
                        let _ = bound_tx.send(Err(err.to_string()));
                        return;
                    }
                };
                let _ = bound_tx.send(Ok(server.grpc_addr()));
                let serving = tokio::spawn(server.serve(async move {
                    let _ = stopped.await;
                }));
                serving.await.unwrap().unwrap();
            });
        });
        let addr = bound_rx
            .recv()
            .unwrap()
            .unwrap_or_else(|err| panic!("the orchestrator did not start: {err}"));
        Self {
            url: format!("http://{addr}"),
            dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where the test's pipeline files are written and `plinth` runs.
    fn work(&self) -> PathBuf {
        self.dir.join("cli")
    }

    fn write(&self, file: &str, content: &str) {
        std::fs::write(self.work().join(file), content).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
        command
            .arg("pipeline")
            .args(args)
            .current_dir(self.work())
            .env("PLINTH_ORCHESTRATOR_URL", &self.url)
            .env_remove("PLINTH_TOKEN");
        command
    }

    /// Runs `plinth pipeline ARGS` to its end.
    fn plinth(&self, args: &[&str]) -> Ran {
        let output = self.command(args).output().unwrap();
        Ran {
            line: args.join(" "),
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `plinth pipeline ARGS`, asserting exit code 0.
    fn ok(&self, args: &[&str]) -> String {
        self.plinth(args).code(0).stdout
    }

    /// Runs `plinth pipeline ARGS -o json`, asserting exit code 0, and parses what it printed.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
        let stdout = self.ok(&args);
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"))
    }

    /// Starts a run without waiting and returns its id.
    fn start_run(&self, pipeline: &str) -> String {
        let run = self.json(&["run", pipeline]);
        run["id"].as_str().unwrap().to_owned()
    }

    /// Polls `status RUN -o json` until `done` says yes.
    fn wait_for(&self, run_id: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let run = self.json(&["status", run_id]);
            if done(&run) {
                return;
            }
            assert!(Instant::now() < deadline, "never {what}: {run:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Orchestrator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test orchestrator: SQLite, logs/lake/models as file:// under `dir`, the local executor, a fast
/// scheduler loop, and no event publishing (no data hub here).
fn config(dir: &Path) -> plinth_orchestrator::Config {
    let mut config = plinth_orchestrator::Config::default();
    config.server.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.server.http.listen = "127.0.0.1:0".parse().unwrap();
    config.server.shutdown_grace_period = Duration::from_secs(2);
    config.database.url = format!(
        "sqlite://{}?mode=rwc",
        dir.join("orchestrator.db").display()
    );
    config.logs.root = format!("file://{}", dir.join("logs").display());
    config.logs.spool_dir = Some(dir.join("spool"));
    config.lake.root = format!("file://{}", dir.join("lake").display());
    config.models.root = format!("file://{}", dir.join("models").display());
    config.executor.local.work_dir = Some(dir.join("work"));
    config.executor.local.kill_grace = Duration::from_secs(1);
    config.scheduler.poll_interval = Duration::from_millis(200);
    config.scheduler.lease_timeout = Duration::from_secs(2);
    config.events.publish = false;
    for sub in ["logs", "lake", "models", "work", "spool", "cli"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    config
}

/// What one `plinth` command did.
struct Ran {
    line: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// Asserts the exit code.
    fn code(self, code: i32) -> Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "plinth pipeline {} exited {:?}\nstdout:\n{}\nstderr:\n{}",
            self.line,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The cells of the table row of `stdout` whose first cell is `first`.
fn table_row<'a>(stdout: &'a str, first: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row for {first}: {stdout}"))
        .split_whitespace()
        .collect()
}

/// A log without the orchestrator's `[plinth] ...` lines: what the task itself printed.
fn printed_by_task(log: &str) -> String {
    log.split_inclusive('\n')
        .filter(|line| !line.starts_with("[plinth]"))
        .collect()
}

const HELLO: &str = r#"name: hello
owner: me
params:
  who: {type: string, default: world}
  count: {type: integer, default: 1}
tasks:
  greet:
    uses: command
    with:
      command: echo "hello {{ params.who }} x{{ params.count }}"
  shout:
    uses: command
    dependencies: [greet]
    with:
      command: [sh, -c, 'echo "run $PLINTH_RUN_ID done" | tr a-z A-Z']
"#;

const BROKEN: &str = r#"name: broken
tasks:
  first:
    uses: command
    with:
      command: [sh, -c, 'echo about to fail; exit 3']
  after:
    uses: command
    dependencies: [first]
    with:
      command: echo never
"#;

#[test]
fn run_wait_exits_0_when_the_run_succeeds_and_1_when_it_fails() {
    let orchestrator = Orchestrator::start("wait");
    orchestrator.write("hello.yaml", HELLO);
    orchestrator.write("broken.yaml", BROKEN);
    let applied = orchestrator.ok(&["apply", "."]);
    assert!(applied.contains("created  broken  version 1"), "{applied}");
    assert!(
        applied.contains("applied 2 pipelines: 2 created, 0 updated, 0 unchanged"),
        "{applied}"
    );
    // Applying the same files again changes nothing.
    let again = orchestrator.ok(&["apply", "hello.yaml", "broken.yaml"]);
    assert!(again.contains("2 unchanged"), "{again}");

    let succeeded = orchestrator.plinth(&["run", "hello", "--param", "who=plinth", "--wait"]);
    let succeeded = succeeded.code(0).stdout;
    assert!(succeeded.contains("started run "), "{succeeded}");
    assert!(succeeded.contains("greet succeeded (try 1)"), "{succeeded}");
    assert!(succeeded.contains("run succeeded"), "{succeeded}");
    assert!(succeeded.contains(r#""who":"plinth""#), "{succeeded}");
    assert_eq!(table_row(&succeeded, "shout")[1..3], ["succeeded", "1"]);

    let failed = orchestrator
        .plinth(&["run", "broken", "--wait"])
        .code(1)
        .stdout;
    assert!(failed.contains("run failed"), "{failed}");
    assert_eq!(table_row(&failed, "first")[1..3], ["failed", "1"]);
    assert_eq!(table_row(&failed, "after")[1], "upstream_failed");

    // The same with -o json: one document, the run with its tasks.
    let run: serde_json::Value = serde_json::from_str(
        &orchestrator
            .plinth(&["run", "broken", "--wait", "-o", "json"])
            .code(1)
            .stdout,
    )
    .unwrap();
    assert_eq!(run["state"], "failed");
    assert_eq!(run["tasks"][0]["name"], "first");
    assert_eq!(run["tasks"][0]["attempts"][0]["exit_code"], 3);

    let runs = orchestrator.ok(&["runs", "broken", "--state", "failed"]);
    assert_eq!(
        runs.lines().count(),
        3,
        "a header and two failed runs: {runs}"
    );
}

#[test]
fn status_shows_each_task_after_a_retry_and_logs_print_each_try() {
    let orchestrator = Orchestrator::start("retry");
    orchestrator.write(
        "flaky.yaml",
        r#"name: flaky
tasks:
  flaky:
    uses: command
    retries: 2
    retry_delay: 1s
    with:
      command: [sh, -c, 'echo "try $PLINTH_TRY_NUMBER"; if [ "$PLINTH_TRY_NUMBER" = 1 ]; then echo boom >&2; exit 1; fi']
  steady:
    uses: command
    with:
      command: printf 'line one\nline two\n'
"#,
    );
    orchestrator.ok(&["apply", "flaky.yaml"]);
    let waited = orchestrator.plinth(&["run", "flaky", "--wait", "-o", "json"]);
    let run: serde_json::Value = serde_json::from_str(&waited.code(0).stdout).unwrap();
    let run_id = run["id"].as_str().unwrap();

    let status = orchestrator.ok(&["status", run_id]);
    let mut lines = status.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("run {run_id} of flaky (version 1): succeeded")
    );
    let header = status
        .lines()
        .find(|line| line.starts_with("TASK"))
        .unwrap_or_else(|| panic!("no task table: {status}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["TASK", "STATE", "TRIES", "DURATION", "REASON"]
    );
    assert_eq!(table_row(&status, "flaky")[1..3], ["succeeded", "2"]);
    assert_eq!(table_row(&status, "steady")[1..3], ["succeeded", "1"]);
    let json = orchestrator.json(&["status", run_id]);
    let flaky = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["name"] == "flaky")
        .unwrap();
    let attempts: Vec<(&str, i64)> = flaky["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| {
            (
                attempt["state"].as_str().unwrap(),
                attempt["exit_code"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [("failed", 1), ("succeeded", 0)]);

    // Logs: exactly what the task printed, stdout and stderr, for the latest try or the one asked,
    // between the orchestrator's own `[plinth]` lines.
    let steady = orchestrator.ok(&["logs", run_id, "steady"]);
    assert_eq!(printed_by_task(&steady), "line one\nline two\n", "{steady}");
    assert!(
        steady.ends_with("[plinth] attempt 1 ended: exit code 0\n"),
        "{steady}"
    );
    let latest = orchestrator.ok(&["logs", run_id, "flaky"]);
    assert_eq!(printed_by_task(&latest), "try 2\n", "{latest}");
    let first = orchestrator.ok(&["logs", run_id, "flaky", "--try", "1"]);
    // stdout and stderr are two pipes: their lines interleave in the order they are read.
    let mut lines: Vec<String> = printed_by_task(&first).lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, ["boom", "try 1"], "{first}");
    let missing = orchestrator
        .plinth(&["logs", run_id, "nope"])
        .code(2)
        .stderr;
    assert!(
        missing.contains(&format!("run {run_id} has no task `nope`")),
        "{missing}"
    );
}

#[test]
fn a_bad_file_is_refused_at_its_line_and_column_by_apply_and_by_offline_validate() {
    let orchestrator = Orchestrator::start("bad-file");
    orchestrator.write("hello.yaml", HELLO);
    orchestrator.write(
        "bad.yaml",
        "name: bad\ntasks:\n  greet:\n    uses: command\n    with:\n      command: echo {{ params.nope }}\n",
    );
    let refused = orchestrator.plinth(&["apply", "."]).code(1).stdout;
    let error = refused
        .lines()
        .find(|line| line.starts_with("./bad.yaml:6:"))
        .unwrap_or_else(|| panic!("no ./bad.yaml:6:COLUMN: line: {refused}"));
    let column = error.split(':').nth(2).unwrap();
    assert!(column.parse::<u32>().unwrap() > 0, "{error}");
    assert!(error.contains("params.nope"), "{error}");
    assert!(refused.contains("1 error in 1 file"), "{refused}");
    assert!(refused.contains("nothing applied"), "{refused}");
    // All or nothing: the good file in the same apply was not stored either.
    let listed = orchestrator.ok(&["list"]);
    assert!(listed.starts_with("no pipelines applied yet"), "{listed}");

    // validate runs without a server: point --orchestrator at nothing.
    let offline = |args: &[&str]| {
        let output = orchestrator
            .command(args)
            .env("PLINTH_ORCHESTRATOR_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stdout) = offline(&["validate", "bad.yaml", "hello.yaml"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains(&error.replacen("./", "", 1)), "{stdout}");
    let (code, stdout) = offline(&["validate", "hello.yaml"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("ok  hello: 2 tasks, on demand"), "{stdout}");
    // --remote asks the server, which finds the same mistake.
    let remote = orchestrator
        .plinth(&["validate", "--remote", "bad.yaml"])
        .code(1)
        .stdout;
    assert!(remote.contains("bad.yaml:6:"), "{remote}");
}

#[test]
fn the_same_request_id_answers_the_same_run() {
    let orchestrator = Orchestrator::start("request-id");
    orchestrator.write("hello.yaml", HELLO);
    orchestrator.ok(&["apply", "hello.yaml"]);
    let first = orchestrator.json(&["run", "hello", "--request-id", "ci-build-42"]);
    let second = orchestrator.json(&["run", "hello", "--request-id", "ci-build-42"]);
    assert_eq!(first["id"], second["id"]);
    let other = orchestrator.json(&["run", "hello", "--request-id", "ci-build-43"]);
    assert_ne!(first["id"], other["id"]);
    let runs = orchestrator.json(&["runs", "hello"]);
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs:#}");
}

#[test]
fn unknown_and_wrongly_typed_params_are_refused_by_name() {
    let orchestrator = Orchestrator::start("params");
    orchestrator.write("hello.yaml", HELLO);
    orchestrator.ok(&["apply", "hello.yaml"]);
    let unknown = orchestrator
        .plinth(&["run", "hello", "--param", "whom=plinth"])
        .code(2)
        .stderr;
    assert!(
        unknown.contains("unknown parameter `whom`; did you mean `who`?"),
        "{unknown}"
    );
    let typed = orchestrator
        .plinth(&["run", "hello", "--param", "count=many"])
        .code(2)
        .stderr;
    assert!(typed.contains("parameter `count` is an integer"), "{typed}");
    let twice = orchestrator
        .plinth(&["run", "hello", "--param", "who=a", "--param", "who=b"])
        .code(2)
        .stderr;
    assert!(twice.contains("--param who is given twice"), "{twice}");
    let malformed = orchestrator
        .plinth(&["run", "hello", "--param", "who"])
        .code(2)
        .stderr;
    assert!(malformed.contains("`who` is not NAME=VALUE"), "{malformed}");
    // Nothing was started by the refused commands.
    assert_eq!(orchestrator.json(&["runs", "hello"]), serde_json::json!([]));
    // A well-typed override is recorded on the run.
    let run = orchestrator.json(&["run", "hello", "--param", "count=3"]);
    assert_eq!(run["params"]["count"], 3);
}

#[test]
fn pause_and_unpause_show_when_the_next_scheduled_run_starts() {
    let orchestrator = Orchestrator::start("pause");
    orchestrator.write(
        "nightly.yaml",
        "name: nightly\nschedule: '0 3 * * *'\ntasks:\n  noop:\n    uses: command\n    with:\n      command: 'true'\n",
    );
    orchestrator.ok(&["apply", "nightly.yaml"]);
    let paused = orchestrator.ok(&["pause", "nightly"]);
    assert_eq!(
        paused,
        "paused pipeline nightly: next scheduled run never (paused) \
         (resume with `plinth pipeline unpause nightly`)\n"
    );
    let described = orchestrator.ok(&["describe", "nightly"]);
    assert!(
        described.contains("next run:     never (paused)"),
        "{described}"
    );
    let schedule = described
        .lines()
        .find(|line| line.starts_with("schedule:"))
        .unwrap();
    assert!(schedule.ends_with("(paused)"), "{described}");

    let unpaused = orchestrator.ok(&["unpause", "nightly"]);
    let next = unpaused
        .trim_end()
        .strip_prefix("unpaused pipeline nightly: next scheduled run ")
        .unwrap_or_else(|| panic!("{unpaused}"));
    // The next 03:00 UTC after now.
    let next = chrono::DateTime::parse_from_rfc3339(next)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let now = chrono::Utc::now();
    assert!(
        next > now && next - now <= chrono::TimeDelta::days(1),
        "{next}"
    );
    assert_eq!(next.format("%H:%M:%S").to_string(), "03:00:00");
    let pipeline = orchestrator.json(&["describe", "nightly"]);
    assert_eq!(pipeline["paused"], false);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(pipeline["next_run_time"].as_str().unwrap()).unwrap(),
        next
    );
}

#[test]
fn logs_follow_streams_a_running_task_and_ends_when_the_run_is_cancelled() {
    let orchestrator = Orchestrator::start("follow");
    orchestrator.write(
        "slow.yaml",
        "name: slow\ntasks:\n  sleeper:\n    uses: command\n    with:\n      command: [sh, -c, 'echo started; sleep 120; echo finished']\n",
    );
    orchestrator.ok(&["apply", "slow.yaml"]);
    let run_id = orchestrator.start_run("slow");
    orchestrator.wait_for(&run_id, "running", |run| {
        run["tasks"][0]["state"] == "running"
    });

    let mut follow: Child = orchestrator
        .command(&["logs", &run_id, "sleeper", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(follow.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.ends_with("started\n") {
        let read = stdout.read_line(&mut seen).unwrap();
        assert!(read > 0, "--follow ended before the task printed: {seen}");
    }
    assert!(seen.starts_with("[plinth] starting attempt 1"), "{seen}");
    assert!(
        follow.try_wait().unwrap().is_none(),
        "--follow ended while the task runs"
    );

    let cancelled = orchestrator.ok(&["cancel", &run_id, "--reason", "test over"]);
    assert!(
        cancelled.contains(&format!("cancelled run {run_id} of slow")),
        "{cancelled}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("logs --follow did not end after the cancel");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    follow
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        rest.ends_with("[plinth] attempt 1 ended: cancelled; the process was stopped\n"),
        "{rest}"
    );
    assert!(
        !rest.contains("finished"),
        "the task went on after the cancel: {rest}"
    );
    orchestrator.wait_for(&run_id, "cancelled", |run| run["state"] == "cancelled");
    let run = orchestrator.json(&["status", &run_id]);
    assert!(
        run["reason"].as_str().unwrap().ends_with(": test over"),
        "{run:#}"
    );
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let orchestrator = Orchestrator::start("pipe");
    orchestrator.write("hello.yaml", HELLO);
    orchestrator.ok(&["apply", "hello.yaml"]);
    for args in [
        &["describe", "hello"][..],
        &["list", "-o", "json"],
        &["validate", "hello.yaml"],
    ] {
        // A pipe whose reader is gone before the command writes: what `| head` leaves behind.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = orchestrator
            .command(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
