//! The one error type of the library, classified by who must act (DataFusion's taxonomy):
//! the operator's configuration, the data provider's files, the infrastructure, or us.
//! `main` prints it and turns it into the exit code documented in the README.

use std::process::ExitCode;

/// Everything that can stop a run. Rejected *rows* are not errors: they are data
/// (the rejects report); these are the problems that stop the run as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Program files or command-line values are invalid (exit 78, EX_CONFIG).
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<String>),

    /// An input file cannot be read at all (exit 2).
    #[error("{file}: {reason}")]
    UnreadableFile { file: String, reason: String },

    /// Object store or file system failure (exit 2).
    #[error("storage: {0}")]
    Storage(String),

    /// Writing a report failed (exit 2).
    #[error("writing {path}: {reason}")]
    Write { path: String, reason: String },

    /// Accepted data the reports cannot hold exactly (exit 2), e.g. a USD value beyond
    /// Decimal(18, 2).
    #[error("{0}")]
    Data(String),

    /// Another run of the same date holds the lock (exit 2).
    #[error("{0}")]
    Locked(String),

    /// A bug: an invariant of our own code does not hold (exit 2).
    #[error("internal error (please report): {0}")]
    Internal(String),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) => ExitCode::from(78),
            _ => ExitCode::from(2),
        }
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(vec![msg.into()])
    }

    pub fn unreadable(file: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::UnreadableFile { file: file.into(), reason: reason.to_string() }
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<polars::error::PolarsError> for Error {
    fn from(e: polars::error::PolarsError) -> Self {
        Error::Internal(format!("polars: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
