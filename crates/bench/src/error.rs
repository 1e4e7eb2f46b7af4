//! The one error type of the benchmark: every failure names the scenario step or the
//! resource that went wrong, so a broken run says why instead of printing odd numbers.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("could not start the {what}: {detail}")]
    Startup { what: &'static str, detail: String },

    #[error("{what}: HTTP request failed: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{what}: expected HTTP {expected}, got {got}: {body}")]
    Status {
        what: String,
        expected: u16,
        got: u16,
        body: String,
    },

    #[error("raw SQLite baseline: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("a worker of '{0}' stopped abnormally")]
    Worker(String),

    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid option: {0}")]
    Usage(String),
}
