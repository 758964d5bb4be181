//! How commands print: human text by default, JSON with `--output json` (for scripts and CI).

use clap::ValueEnum;

/// Output format of client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

impl Output {
    /// Prints `json` in JSON mode, or `text` otherwise.
    pub fn print(self, json: &serde_json::Value, text: impl FnOnce() -> String) {
        match self {
            Self::Json => println!("{json}"),
            Self::Text => println!("{}", text()),
        }
    }
}
