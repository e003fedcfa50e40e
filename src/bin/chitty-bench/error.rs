//! Why the bench could not run.

use std::path::PathBuf;

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A node could not be started.
    #[error("cannot start {0}: {1}")]
    Spawn(PathBuf, std::io::Error),
    /// A node did not get ready, or not everyone joined, in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The namespaces could not be made.
    #[error("network namespaces: {0}")]
    Lab(String),
    /// Something else went wrong.
    #[error("{0}")]
    Other(String),
}
