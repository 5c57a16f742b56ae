//! The one error type of the library, classified by who must act (DataFusion's taxonomy):
//! the operator's configuration, the data provider's files, the infrastructure, or us.
//!
//! A variant says what was being done and to what (the file, the location, the report); the
//! error that caused it is kept as its `source`, not flattened into text, so that the one
//! place that prints an error ([`Error::report`], called by `cli::main`) shows the whole chain
//! and the exit code is chosen from the variant.

use std::process::ExitCode;

/// Any error kept as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can stop a run. Rejected *rows* are not errors: they are data
/// (the rejects report); these are the problems that stop the run as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Program files or command-line values are invalid (exit 78, EX_CONFIG).
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<String>),

    /// An input file cannot be read at all (exit 2; skipped under `--keep-going`).
    #[error("{file}: {reason}")]
    UnreadableFile {
        file: String,
        reason: String,
        #[source]
        source: Option<BoxError>,
    },

    /// A local file or folder cannot be read, written, made or moved (exit 2).
    #[error("{action} {path}")]
    Io {
        /// What was being done, as a verb phrase: "writing", "cannot publish", ...
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A request to an object store failed after its retries (exit 2).
    #[error("{action} {location}")]
    ObjectStore {
        action: &'static str,
        location: String,
        #[source]
        source: object_store::Error,
    },

    /// Accepted data the reports cannot hold exactly (exit 2), e.g. a USD value beyond
    /// Decimal(18, 2).
    #[error("{0}")]
    Data(String),

    /// Another run of the same date holds the lock (exit 2).
    #[error("{0}")]
    Locked(String),

    /// The inputs look like a fault upstream (no transaction file, far fewer rows than the last
    /// published run): publishing them would replace good reports with nonsense (exit 2).
    #[error("{0}")]
    Refused(String),

    /// A bug: an invariant of our own code does not hold, or a library refused what we
    /// built (exit 2).
    #[error("internal error (please report): {what}")]
    Internal {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_code_number())
    }

    /// The exit code as a number (for a JSON log line): 78 for configuration, else 2.
    pub fn exit_code_number(&self) -> u8 {
        match self {
            Error::Config(_) => 78,
            _ => 2,
        }
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::Config(vec![msg.into()])
    }

    /// An input file that cannot be read, for a reason found in its content.
    pub(crate) fn unreadable(file: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::UnreadableFile { file: file.into(), reason: reason.into(), source: None }
    }

    /// An input file that cannot be read because of `source` (the disk, the network).
    pub(crate) fn unreadable_from(file: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::UnreadableFile { file: file.into(), reason: "cannot read".into(), source: Some(source.into()) }
    }

    /// A local I/O failure: `action` (a verb phrase) on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl std::fmt::Display,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_string();
        move |source| Error::Io { action, path, source }
    }

    /// A broken invariant of our own code.
    pub(crate) fn internal(what: impl Into<String>) -> Self {
        Error::Internal { what: what.into(), source: None }
    }

    /// A library refused what our code built (an Arrow array, a parquet writer).
    pub(crate) fn internal_from(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Internal { what: what.into(), source: Some(source.into()) }
    }

    /// The error and each of its causes, `: `-separated on one line (for the terminal, the
    /// logs and the manifest's list of skipped files).
    pub fn report(&self) -> String {
        chain(self)
    }

    /// Why an unreadable file was not read, with its causes (without the file's name).
    pub(crate) fn unreadable_reason(&self) -> Option<String> {
        let Error::UnreadableFile { reason, source, .. } = self else { return None };
        Some(match source {
            Some(s) => format!("{reason}: {}", chain(s.as_ref())),
            None => reason.clone(),
        })
    }
}

/// An error and its causes, `: `-separated. A cause whose text its error already shows (some
/// libraries' messages include their source's) is not repeated.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

impl From<polars::error::PolarsError> for Error {
    fn from(e: polars::error::PolarsError) -> Self {
        Error::internal_from("polars", e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_keeps_every_cause_and_the_exit_code_the_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
        let e = Error::io("writing", "out/earnings.csv")(io);
        assert_eq!(e.to_string(), "writing out/earnings.csv");
        assert_eq!(e.report(), "writing out/earnings.csv: No space left on device");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept, not flattened");
        assert_eq!(e.exit_code(), ExitCode::from(2));
        assert_eq!(Error::config("x").exit_code(), ExitCode::from(78));
        let unreadable = Error::unreadable_from("in/a.csv", std::io::Error::other("reset by peer"));
        assert_eq!(unreadable.report(), "in/a.csv: cannot read: reset by peer");
        assert_eq!(unreadable.unreadable_reason().as_deref(), Some("cannot read: reset by peer"));
    }
}
