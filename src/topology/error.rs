//! What can go wrong: before a run starts, every mistake in its config at once
//! ([`ConfigErrors`], each at its `file:line:col`); once it runs, the first failure ([`Error`]).

use std::fmt;

/// One mistake in a run's configuration: where it is, when that is known, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file; `None` when the message names its place itself.
    pub file: Option<String>,
    /// Line and column (1-based, the column in characters) of the offending key or value;
    /// `None` when the file does not write the key (a default that does not fit the rest).
    pub line_col: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line_col) {
            (Some(file), Some((line, col))) => write!(f, "{file}:{line}:{col}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

/// Every mistake found in a run's configuration, in the order of the file (those without a
/// place after the others); one per line when printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// In the order of the file; those without a place after the others, as found.
    pub(super) fn sorted(mut self) -> ConfigErrors {
        self.0.sort_by_key(|e| e.line_col.unwrap_or((usize::MAX, usize::MAX)));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a run (or a replay, or a bench) stopped, or could not open what it reads and writes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error and what was being done (`opening events.jsonl`).
    #[error("{doing}")]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bare(#[from] std::io::Error),
    #[error(transparent)]
    Checkpoint(#[from] crate::state::checkpoint::CheckpointError),
    #[error(transparent)]
    RefData(#[from] crate::refdata::RefError),
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// A refusal that says everything itself: a checkpoint that does not fit the input, a
    /// transport this build lacks, a gateway that would not start.
    #[error("{0}")]
    Refused(String),
}

/// `doing` as the context of an I/O error (`"opening {path}"`).
pub(crate) fn doing(doing: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { doing: doing(), source }
}
