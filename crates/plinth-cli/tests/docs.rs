//! Runs every `sh` and `python` block of docs/schema-registry.md, in order, against a fresh `plinth up`
//! (the real binary on free ports), so the user guide never drifts from what the platform does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the first surprise"
)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Platform {
    child: Child,
    grpc: String,
    http: String,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_platform() -> Platform {
    let dir = std::env::temp_dir().join(format!("plinth-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args([
            "up",
            "--registry-grpc-port",
            "0",
            "--registry-http-port",
            "0",
            "--log-level",
            "warn",
            "--data-dir",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("plinth up starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut grpc, mut http) = (None, None);
    while grpc.is_none() || http.is_none() {
        assert!(
            Instant::now() < deadline,
            "plinth up did not print its endpoints"
        );
        let line = lines.next().expect("plinth up exited early").unwrap();
        if line.contains("schema-registry") {
            let urls: Vec<&str> = line
                .split_whitespace()
                .filter(|word| word.starts_with("http://"))
                .collect();
            grpc = urls.first().map(|url| url.to_string());
            http = urls
                .get(1)
                .map(|url| url.trim_start_matches("http://").to_string());
        }
    }
    // Keep draining stdout so the platform never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Platform {
        child,
        grpc: grpc.unwrap(),
        http: http.unwrap(),
        _dir: TempDir(dir),
    }
}

/// The fenced blocks of a markdown file with their language.
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

fn python() -> PathBuf {
    let venv = std::env::var_os("PLINTH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/plinth/tools/venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash deploy/scripts/tools.sh venv`",
        python.display()
    );
    python
}

#[test]
fn schema_registry_guide_runs_as_written() {
    let platform = start_platform();
    let guide_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema-registry.md");
    let guide = std::fs::read_to_string(&guide_path).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_plinth"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut outputs = String::new();
    let mut ran = 0;
    for (lang, body) in code_blocks(&guide) {
        let body = body.replace("localhost:8081", &platform.http);
        let mut command = match lang.as_str() {
            "sh" => {
                let mut command = Command::new("bash");
                command.args(["-euo", "pipefail", "-c", &body]);
                command
            }
            "python" => {
                let mut command = Command::new(python());
                command.args(["-c", &body]);
                command
            }
            _ => continue,
        };
        let output = command
            .env("PATH", &path)
            .env("PLINTH_REGISTRY_URL", &platform.grpc)
            .output()
            .expect("block runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "this {lang} block of docs/schema-registry.md failed:\n{body}\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push_str(&stdout);
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} blocks found in the guide");
    // What the guide promises, as printed.
    assert!(
        outputs.contains("registered orders-value version 1 (schema id 1)"),
        "{outputs}"
    );
    assert!(
        outputs.contains(r#"{"id":1,"subject":"returns-value","version":1}"#),
        "{outputs}"
    );
    assert!(
        outputs.contains("compatible with orders-value"),
        "{outputs}"
    );
    assert!(
        outputs.contains("registered orders-value version 2"),
        "{outputs}"
    );
    assert!(outputs.contains("FULL_TRANSITIVE"), "{outputs}");
    assert!(
        outputs.contains("{'order_id'") || outputs.contains("{'n': 1}"),
        "{outputs}"
    );
}
