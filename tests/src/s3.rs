//! The s3rver S3 test server (installed by `deploy/scripts/tools.sh s3`), for tests that put the lake or
//! the model repository on a real S3 API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use crate::TempDir;

/// The s3rver test server on a free port with a `lake` bucket, its data under a directory, killed on drop.
#[derive(Debug)]
pub struct S3Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    _child: tokio::process::Child,
}

impl S3Server {
    /// Starts s3rver with its data under `dir/s3` and waits until the `lake` bucket answers.
    pub async fn start(dir: &TempDir) -> Self {
        let home = std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        let tools = std::env::var_os("PLINTH_TOOLS_DIR")
            .filter(|path| !path.is_empty())
            .map_or_else(
                || home.join(".cache/plinth/tools"),
                std::path::PathBuf::from,
            );
        let binary = tools.join("bin/s3rver");
        assert!(
            binary.exists(),
            "{} is missing: run `bash deploy/scripts/tools.sh s3`",
            binary.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|err| panic!("no free port: {err}"))
            .port();
        let data = dir.0.join("s3");
        std::fs::create_dir_all(&data).unwrap_or_else(|err| panic!("s3 data dir: {err}"));
        let child = tokio::process::Command::new(binary)
            .args([
                "-d",
                &data.display().to_string(),
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--configure-bucket",
                "lake",
                "--silent",
            ])
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("s3rver starts: {err}"));
        let server = Self {
            port,
            _child: child,
        };
        // Ready when the bucket answers a listing.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if server.store().list_with_delimiter(None).await.is_ok() {
                return server;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "s3rver did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The object-store options (`[lake] options`, `[models] options`) of the server.
    pub fn options(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("aws_endpoint".to_owned(), self.endpoint()),
            ("aws_allow_http".to_owned(), "true".to_owned()),
            ("aws_access_key_id".to_owned(), "S3RVER".to_owned()),
            ("aws_secret_access_key".to_owned(), "S3RVER".to_owned()),
            ("aws_region".to_owned(), "us-east-1".to_owned()),
        ])
    }

    /// The `lake` bucket as an object store.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("lake")
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id("S3RVER")
            .with_secret_access_key("S3RVER")
            .with_region("us-east-1")
            .build()
            .unwrap_or_else(|err| panic!("s3 client: {err}"));
        Arc::new(store)
    }
}
