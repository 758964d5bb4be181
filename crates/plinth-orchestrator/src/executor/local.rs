//! The local executor: each attempt is a child process of the orchestrator (the embedded default and
//! single-node setups).
//!
//! The process runs in a process group of its own, so a shell's children are stopped with it: on a
//! timeout or a cancel the whole group gets SIGTERM, then SIGKILL after the grace period. When the main
//! process exits, whatever it left running in its group is killed, as a container's processes are when
//! its main process exits. Stdin is `/dev/null`; stdout and stderr are drained into the attempt's
//! [`LogWriter`] as they come (the log drops what is past its cap, so the pipes never fill up).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::LocalExecutorConfig;
use crate::domain::pipeline::SecretRef;
use crate::executor::{AttemptControl, Executor, Launch, Outcome};
use crate::logs::LogWriter;

/// Variables passed from the orchestrator's environment to every process by default. Everything else
/// in the orchestrator's environment (database URLs, credentials) stays out.
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// `PATH` when the orchestrator has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long output is still collected after the main process exited and its group was killed (a
/// daemon that left the group may hold the pipes open forever).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs attempts as local child processes.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    base_env: BTreeMap<String, String>,
    secrets_dir: Option<PathBuf>,
    kill_grace: Duration,
}

impl LocalExecutor {
    /// An executor with `config`'s secrets directory and kill grace period; processes get the
    /// [`INHERITED_ENV`] variables of the orchestrator's environment (and `LC_*`).
    pub fn new(config: &LocalExecutorConfig) -> Self {
        Self {
            base_env: inherited_env(),
            secrets_dir: config.secrets_dir.clone(),
            kill_grace: config.kill_grace,
        }
    }

    /// Replaces the environment every process starts from (before the task's `env` and secrets).
    pub fn with_base_env(mut self, base_env: BTreeMap<String, String>) -> Self {
        self.base_env = base_env;
        self
    }

    /// The environment of `launch`'s process: base, the attempt's identity, the task's `env`, secrets.
    fn environment(&self, launch: &Launch) -> Result<BTreeMap<OsString, OsString>, String> {
        let mut env: BTreeMap<OsString, OsString> = self
            .base_env
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)))
            .collect();
        for (name, value) in [
            ("PLINTH_PIPELINE", launch.pipeline.clone()),
            ("PLINTH_RUN_ID", launch.run_id.clone()),
            ("PLINTH_TASK", launch.task.clone()),
            ("PLINTH_TRY_NUMBER", launch.try_number.to_string()),
        ] {
            env.insert(name.into(), value.into());
        }
        for (name, value) in &launch.env {
            env.insert(name.into(), value.into());
        }
        for secret in &launch.secrets {
            let value = self.read_secret(secret)?;
            env.insert(secret.env.clone().into(), value);
        }
        Ok(env)
    }

    /// Reads secret `s` key `k` from `<secrets_dir>/<s>/<k>`, without one trailing newline (files
    /// written with `echo` or an editor end with one; a password does not).
    fn read_secret(&self, secret: &SecretRef) -> Result<OsString, String> {
        let Some(secrets_dir) = &self.secrets_dir else {
            return Err(format!(
                "the task reads secret `{}` into `{}` but the local executor has no secrets directory; set executor.local.secrets_dir and put the value in <secrets_dir>/{}/{}",
                secret.secret, secret.env, secret.secret, secret.key
            ));
        };
        for (what, name) in [("secret", &secret.secret), ("key", &secret.key)] {
            if !is_plain_file_name(name) {
                return Err(format!(
                    "{what} name `{name}` (for `{}`) is not a plain file name; use letters, digits, `-`, `_` and `.` without `/` or `..`",
                    secret.env
                ));
            }
        }
        let path = secrets_dir.join(&secret.secret).join(&secret.key);
        let mut value = std::fs::read(&path).map_err(|err| {
            format!(
                "cannot read secret `{}` key `{}` (for `{}`) from {}: {err}; create the file or fix the task's `secrets`",
                secret.secret,
                secret.key,
                secret.env,
                path.display()
            )
        })?;
        if value.ends_with(b"\n") {
            value.pop();
            if value.ends_with(b"\r") {
                value.pop();
            }
        }
        Ok(OsString::from_vec(value))
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let Some((program, arguments)) = launch.argv.split_first() else {
            return Err("the task has no command to run; give `command` a program".to_owned());
        };
        if program.is_empty() {
            return Err(
                "the task's program is an empty string; give `command` a program".to_owned(),
            );
        }
        let env = self.environment(launch)?;
        let mut command = Command::new(program);
        command
            .args(arguments)
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A new process group whose id is the child's pid: signals reach the shell's children too.
            .process_group(0)
            // Only the leader, and only if everything else failed; `GroupGuard` kills the group.
            .kill_on_drop(true);
        if let Some(working_dir) = &launch.working_dir {
            let path = Path::new(working_dir);
            if !path.is_dir() {
                return Err(format!(
                    "the working directory `{working_dir}` does not exist or is not a directory; create it or fix `working_dir`"
                ));
            }
            command.current_dir(path);
        }
        die_with_orchestrator(&mut command);
        Ok(command)
    }
}

impl Default for LocalExecutor {
    fn default() -> Self {
        Self::new(&LocalExecutorConfig::default())
    }
}

/// The [`INHERITED_ENV`] and `LC_*` variables of this process, and a default `PATH`.
pub fn inherited_env() -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| INHERITED_ENV.contains(&name.as_str()) || name.starts_with("LC_"))
        .collect();
    env.entry("PATH".to_owned())
        .or_insert_with(|| DEFAULT_PATH.to_owned());
    env
}

fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.contains('/')
}

/// Makes the kernel kill the child when the orchestrator dies, so a crashed or killed orchestrator
/// leaves no task running unsupervised (its attempt is retried after the restart instead).
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process: children
/// are spawned from tokio worker threads, which live as long as the runtime, so in practice this is the
/// orchestrator's death. It reaches the group leader only; a shell's children outlive it unless the
/// shell passes the signal on. Linux only; elsewhere the process outlives a crashed orchestrator.
#[cfg(target_os = "linux")]
fn die_with_orchestrator(command: &mut Command) {
    let orchestrator_pid = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (prctl, getppid), allocating nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The orchestrator died between fork and prctl: the signal will never come.
            if u32::try_from(libc::getppid()).ok() != Some(orchestrator_pid) {
                return Err(std::io::Error::other("the orchestrator exited"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_orchestrator(_command: &mut Command) {}

#[async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn run(&self, launch: Launch, mut control: AttemptControl) -> Outcome {
        if *control.cancel.borrow() {
            return Outcome::Cancelled;
        }
        let mut command = match self.command(&launch) {
            Ok(command) => command,
            Err(reason) => return not_started(&control.log, reason),
        };
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                let reason = spawn_error(&launch.argv[0], &err, &command);
                return not_started(&control.log, reason);
            }
        };
        let Some(pid) = child.id() else {
            return not_started(
                &control.log,
                "the process exited before its pid could be read".to_owned(),
            );
        };
        let group = GroupGuard { pgid: pid };
        control.report_started(format!("pid {pid}"));
        let output = drain_output(&mut child, &control.log);

        let outcome = supervise(
            &mut child,
            &group,
            &launch,
            &mut control.cancel,
            &control.log,
            self.kill_grace,
        )
        .await;
        // Whatever the main process left behind in its group goes with it (and closes the pipes).
        drop(group);
        collect_output(output, &control.log).await;
        outcome
    }

    /// A local process dies with the orchestrator that started it (`PR_SET_PDEATHSIG`): nothing to
    /// reattach to.
    async fn reattach(
        &self,
        _launch: Launch,
        _executor_ref: &str,
        _control: AttemptControl,
    ) -> Option<Outcome> {
        None
    }
}

fn not_started(log: &LogWriter, reason: String) -> Outcome {
    log.line(&format!("could not start: {reason}"));
    Outcome::NotStarted { reason }
}

fn spawn_error(program: &str, err: &std::io::Error, command: &Command) -> String {
    let env_path = command
        .as_std()
        .get_envs()
        .find(|(name, _)| *name == OsStr::new("PATH"))
        .and_then(|(_, value)| value)
        .map(|value| value.to_string_lossy().into_owned())
        .unwrap_or_default();
    match err.kind() {
        std::io::ErrorKind::NotFound if program.contains('/') => {
            format!("`{program}` does not exist; check the path in `command`")
        }
        std::io::ErrorKind::NotFound => format!(
            "`{program}` was not found on PATH ({env_path}); install it, give its full path, or run it through `sh -c`"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("`{program}` is not executable: {err}; check its permissions (chmod +x)")
        }
        _ => format!("cannot start `{program}`: {err}"),
    }
}

/// Waits for the process, its timeout or a cancel, and stops its group for the latter two.
async fn supervise(
    child: &mut Child,
    group: &GroupGuard,
    launch: &Launch,
    cancel: &mut watch::Receiver<bool>,
    log: &LogWriter,
    kill_grace: Duration,
) -> Outcome {
    let timeout = async {
        match launch.timeout {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        // A dropped sender never cancels.
        if cancel.wait_for(|cancelled| *cancelled).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let stop = tokio::select! {
        status = child.wait() => return exit_outcome(status),
        () = timeout => {
            let after = launch.timeout.unwrap_or_default();
            log.line(&format!(
                "execution_timeout of {} reached: stopping the process group",
                plinth_runtime::config::duration::format(after)
            ));
            Outcome::TimedOut { after }
        }
        () = cancelled => {
            log.line("cancelled: stopping the process group");
            Outcome::Cancelled
        }
    };
    stop_group(child, group, log, kill_grace).await;
    stop
}

/// SIGTERM to the group, SIGKILL if the main process has not exited after `kill_grace`.
async fn stop_group(child: &mut Child, group: &GroupGuard, log: &LogWriter, kill_grace: Duration) {
    group.signal(libc::SIGTERM);
    if tokio::time::timeout(kill_grace, child.wait()).await.is_ok() {
        return;
    }
    log.line(&format!(
        "still running {} after SIGTERM: sending SIGKILL",
        plinth_runtime::config::duration::format(kill_grace)
    ));
    group.signal(libc::SIGKILL);
    if let Err(err) = child.wait().await {
        tracing::warn!(pid = group.pgid, error = %err, "cannot reap a killed task process");
    }
}

fn exit_outcome(status: std::io::Result<ExitStatus>) -> Outcome {
    let status = match status {
        Ok(status) => status,
        Err(err) => {
            return Outcome::Failed {
                exit_code: None,
                reason: format!("cannot wait for the process: {err}"),
            };
        }
    };
    if status.success() {
        return Outcome::Succeeded;
    }
    if let Some(code) = status.code() {
        return Outcome::Failed {
            exit_code: Some(code),
            reason: format!("exit code {code}"),
        };
    }
    let reason = match status.signal() {
        Some(signal) => match signal_name(signal) {
            Some(name) => format!("killed by signal {signal} ({name})"),
            None => format!("killed by signal {signal}"),
        },
        None => format!("ended abnormally ({status})"),
    };
    Outcome::Failed {
        exit_code: None,
        reason,
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL, e.g. out of memory",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// Copies stdout and stderr into the log, each in its own task.
fn drain_output(child: &mut Child, log: &LogWriter) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::with_capacity(2);
    if let Some(stdout) = child.stdout.take() {
        handles.push(spawn_copy(stdout, log.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        handles.push(spawn_copy(stderr, log.clone()));
    }
    handles
}

fn spawn_copy<R>(reader: R, log: LogWriter) -> JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(err) = log.copy_from(reader).await {
            log.line(&format!("reading the process output failed: {err}"));
        }
    })
}

/// Waits for the output copies to reach the pipes' ends, a bounded time.
async fn collect_output(handles: Vec<JoinHandle<()>>, log: &LogWriter) {
    for mut handle in handles {
        if tokio::time::timeout(OUTPUT_DRAIN_TIMEOUT, &mut handle)
            .await
            .is_err()
        {
            handle.abort();
            log.line(
                "output still open after the process exited (a process left its group); stopped reading it",
            );
        }
    }
}

/// The process group of a running attempt; SIGKILLs it when dropped (the attempt's future was dropped
/// by an aborted engine task), so no process is left without a supervisor.
#[derive(Debug)]
struct GroupGuard {
    pgid: u32,
}

impl GroupGuard {
    fn signal(&self, signal: i32) {
        let Ok(pgid) = libc::pid_t::try_from(self.pgid) else {
            return;
        };
        // SAFETY: killpg has no memory-safety preconditions; a group that is gone answers ESRCH.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests;
