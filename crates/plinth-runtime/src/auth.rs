//! Bearer-token authentication and role-based authorization, as a tower layer that works on tonic
//! servers and axum routers alike.
//!
//! Tokens live in a file of `<role> <token> [name]` lines; only their SHA-256 digests are kept in
//! memory and presented tokens are compared in constant time. An [`AccessPolicy`] says which role a
//! request needs; [`AuthLayer`] enforces it and leaves a [`Caller`] (and its [`Role`]) in the request
//! extensions for handlers.

mod layer;
mod policy;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

pub use self::layer::{AuthLayer, AuthService};
pub use self::policy::{AccessPolicy, DefaultAccessPolicy};
use crate::error::AuthError;

/// What a token may do. Ordered: `Admin > Write > Read`; a role grants every lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Read-only calls.
    Read,
    /// Calls that change state.
    Write,
    /// Administrative calls (deleting subjects, changing global settings).
    Admin,
}

impl Role {
    /// The lowercase name used in token files and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}`, expected read, write or admin"
            )),
        }
    }
}

/// The authenticated caller of a request, inserted into the request extensions by [`AuthLayer`]
/// (tonic handlers read it with `request.extensions().get::<Caller>()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's role.
    pub role: Role,
    /// The token's name from the tokens file (or `line <n>` when unnamed), for audit logs.
    pub name: String,
}

/// The authenticated caller of a tonic request: `None` on public calls and when auth is disabled.
pub fn caller<T>(request: &tonic::Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// The known tokens, as SHA-256 digests.
#[derive(Clone)]
pub struct TokenStore {
    entries: Vec<TokenEntry>,
}

#[derive(Clone)]
struct TokenEntry {
    digest: [u8; 32],
    role: Role,
    name: String,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field(
                "tokens",
                &self
                    .entries
                    .iter()
                    .map(|entry| (entry.role, entry.name.as_str()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TokenStore {
    /// Reads a tokens file. Fails when the file is unreadable, a line is malformed, or it holds no
    /// token.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadTokens {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the contents of a tokens file; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, AuthError> {
        let mut entries = Vec::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line = raw_line
                .split_once('#')
                .map_or(raw_line, |(before, _)| before)
                .trim();
            if line.is_empty() {
                continue;
            }
            let invalid = |reason: String| AuthError::InvalidLine {
                path: path.to_owned(),
                line: line_number,
                reason,
            };
            let mut words = line.split_whitespace();
            let (Some(role), Some(token)) = (words.next(), words.next()) else {
                return Err(invalid("missing token".to_owned()));
            };
            let role = role.parse::<Role>().map_err(invalid)?;
            let name = words
                .next()
                .map_or_else(|| format!("line {line_number}"), str::to_owned);
            if words.next().is_some() {
                return Err(invalid("too many words".to_owned()));
            }
            entries.push(TokenEntry {
                digest: digest(token),
                role,
                name,
            });
        }
        if entries.is_empty() {
            return Err(AuthError::NoTokens {
                path: path.to_owned(),
            });
        }
        Ok(TokenStore { entries })
    }

    /// Builds a store from `(role, token, name)` triples, for tests and embedded setups.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = (Role, &'a str, &'a str)>) -> Self {
        TokenStore {
            entries: tokens
                .into_iter()
                .map(|(role, token, name)| TokenEntry {
                    digest: digest(token),
                    role,
                    name: name.to_owned(),
                })
                .collect(),
        }
    }

    /// The caller a presented token belongs to, if any. Every entry is compared, in constant time,
    /// so timing does not reveal which entry matched or how much of a digest did.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let presented = digest(token);
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        found.map(|entry| Caller {
            role: entry.role,
            name: entry.name.clone(),
        })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the store holds no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests;
