//! Configuration: layered loading (built-in defaults, then a TOML file, then `PLINTH_*` environment
//! variables) with errors that name the key, the value and where it came from, and the reusable blocks
//! every service composes its own config from.
//!
//! ```
//! use plinth_runtime::config::{self, DatabaseConfig, Validate};
//!
//! #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     database: DatabaseConfig,
//! }
//!
//! let env = [("PLINTH_DATABASE__MAX_CONNECTIONS".to_owned(), "20".to_owned())];
//! let config: Config = config::load(None, env).unwrap();
//! assert_eq!(config.database.max_connections, 20);
//! config.database.validate().unwrap();
//! ```

mod blocks;
pub mod duration;
mod load;

pub use self::blocks::{
    AuthConfig, DatabaseConfig, ListenConfig, LogFormat, PeerConfig, ServerConfig, TelemetryConfig,
    TlsConfig,
};
pub use self::load::{ENV_PREFIX, RESERVED_ENV_VARS, load, load_from_env, load_with_prefix};
pub use crate::error::{ConfigError, ConfigOrigin};

/// A configuration block that can check rules deserialization cannot express (a file exists, a URL
/// has the right scheme, two settings agree). Services call `config.validate()?` after loading.
///
/// Keys in the returned error are relative to the block; an enclosing block prefixes them with
/// [`ConfigError::within`].
pub trait Validate {
    /// Checks the block, returning the first violated rule.
    fn validate(&self) -> Result<(), ConfigError>;
}

#[cfg(test)]
mod tests;
