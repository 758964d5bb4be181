//! Where lake data lives: object-store URL prefixes (`file:///abs/dir`, `s3://bucket/prefix`,
//! `gs://bucket/prefix`, `memory://name`) turned into an `object_store` client and a path prefix.
//!
//! One client per store (scheme + authority), shared by every prefix in it, so a `memory://` lake is one
//! store however many sinks name it, and S3 connections are pooled per bucket.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::ApiError;
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

/// A dataset root: an object store and the path prefix under which dataset directories sit.
#[derive(Clone)]
pub struct Location {
    /// The client of the store.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix inside the store (empty for a bucket root).
    pub prefix: Path,
    /// The normalized URL prefix, without a trailing `/`.
    pub url: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Location")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Location {
    /// The store path of `relative` (a `/`-separated path under the prefix).
    pub fn path(&self, relative: &str) -> Path {
        let parts = self.prefix.parts().chain(
            relative
                .split('/')
                .filter(|segment| !segment.is_empty())
                .map(object_store::path::PathPart::from),
        );
        Path::from_iter(parts)
    }

    /// The path of `path` relative to the prefix, `/`-separated; `None` outside the prefix.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let parts = path.prefix_match(&self.prefix)?;
        Some(
            parts
                .map(|part| part.as_ref().to_owned())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    /// The URL of `relative`, as shown to users.
    pub fn url_of(&self, relative: &str) -> String {
        format!("{}/{relative}", self.url)
    }
}

/// Normalizes a URL prefix: parsed, supported scheme, no trailing `/`.
pub fn normalize_url(url_prefix: &str) -> Result<String, ApiError> {
    let trimmed = url_prefix.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|err| invalid_url(url_prefix, &err.to_string()))?;
    if !matches!(url.scheme(), "file" | "s3" | "gs" | "memory") {
        return Err(invalid_url(
            url_prefix,
            &format!("scheme `{}` is not supported", url.scheme()),
        ));
    }
    if url.scheme() == "file" && !url.path().starts_with('/') {
        return Err(invalid_url(url_prefix, "a file URL needs an absolute path"));
    }
    Ok(trimmed.to_owned())
}

fn invalid_url(url_prefix: &str, why: &str) -> ApiError {
    ApiError::invalid_argument(
        "INVALID_LAKE_URL",
        format!(
            "`{url_prefix}` is not a lake URL prefix ({why}); use file:///abs/dir, s3://bucket/prefix or gs://bucket/prefix"
        ),
    )
    .with_field("url_prefix", "must be a file://, s3:// or gs:// URL")
}

/// The object-store clients, one per store, built with the lake's options.
pub struct Locations {
    options: BTreeMap<String, String>,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl std::fmt::Debug for Locations {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Locations").finish_non_exhaustive()
    }
}

impl Locations {
    /// No store yet; `options` go to `object_store::parse_url_opts`.
    pub fn new(options: BTreeMap<String, String>) -> Self {
        Self {
            options,
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// The object-store options the stores are built with.
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    /// The object-store options as the environment variables that other clients of the same store
    /// read (pyarrow, boto3, pandas, the AWS and Google SDKs): `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` and `AWS_DEFAULT_REGION`,
    /// `GOOGLE_APPLICATION_CREDENTIALS`. Options without such a variable are left out.
    pub fn client_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for (key, value) in &self.options {
            let names: &[&str] = match key.to_ascii_lowercase().as_str() {
                "aws_endpoint" | "aws_endpoint_url" | "endpoint" | "endpoint_url" => {
                    &["AWS_ENDPOINT_URL"]
                }
                "aws_access_key_id" | "access_key_id" => &["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key" | "secret_access_key" => &["AWS_SECRET_ACCESS_KEY"],
                "aws_session_token" | "aws_token" | "session_token" | "token" => {
                    &["AWS_SESSION_TOKEN"]
                }
                "aws_region" | "aws_default_region" | "region" => {
                    &["AWS_REGION", "AWS_DEFAULT_REGION"]
                }
                "google_service_account"
                | "google_service_account_path"
                | "service_account"
                | "google_application_credentials" => &["GOOGLE_APPLICATION_CREDENTIALS"],
                _ => &[],
            };
            for name in names {
                env.insert((*name).to_owned(), value.clone());
            }
        }
        env
    }

    /// The location of `url_prefix` (normalized with [`normalize_url`]). A `file://` prefix is created.
    pub fn get(&self, url_prefix: &str) -> Result<Location, ApiError> {
        let normalized = normalize_url(url_prefix)?;
        let url =
            Url::parse(&normalized).map_err(|err| invalid_url(url_prefix, &err.to_string()))?;
        let store_key = url[..url::Position::BeforePath].to_owned();
        let (built, prefix) = object_store::parse_url_opts(&url, self.options.clone()).map_err(
            |err| {
                ApiError::invalid_argument(
                    "LAKE_STORE_UNUSABLE",
                    format!(
                        "cannot open the object store of `{normalized}`: {err}; check the URL and the lake options (endpoint, region, credentials)"
                    ),
                )
            },
        )?;
        if url.scheme() == "file" {
            std::fs::create_dir_all(url.path()).map_err(|err| {
                ApiError::failed_precondition(
                    "LAKE_DIRECTORY_UNUSABLE",
                    format!(
                        "cannot create the lake directory {}: {err}; create it or give the service write access",
                        url.path()
                    ),
                )
            })?;
        }
        let store = {
            let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(stores.entry(store_key).or_insert_with(|| Arc::from(built)))
        };
        Ok(Location {
            store,
            prefix,
            url: normalized,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_options_become_the_sdk_environment() {
        let locations = Locations::new(BTreeMap::from([
            (
                "aws_endpoint".to_owned(),
                "http://127.0.0.1:4569".to_owned(),
            ),
            ("AWS_ACCESS_KEY_ID".to_owned(), "key".to_owned()),
            ("aws_secret_access_key".to_owned(), "secret".to_owned()),
            ("aws_region".to_owned(), "eu-west-1".to_owned()),
            ("aws_allow_http".to_owned(), "true".to_owned()),
        ]));
        let env = locations.client_env();
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:4569");
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "key");
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], "secret");
        assert_eq!(env["AWS_REGION"], "eu-west-1");
        assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
        assert_eq!(env.len(), 5, "{env:?}");
        assert!(Locations::new(BTreeMap::new()).client_env().is_empty());
    }
}
