//! The error type of the library and how it maps to the runner's exit codes.

use std::fmt;

/// Where in a file a problem is, for `::error file=..,line=..::` annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or configuration: exit 2, nothing written.
    #[error("{message}")]
    Input { message: String, place: Option<Place> },
    /// A compare-and-swap lost to a concurrent writer and retrying could not resolve it.
    #[error("{0}")]
    Conflict(String),
    /// Any other failure of the operation (API, git, health gate): exit 1.
    #[error("{0}")]
    Failed(String),
    /// A hold (`lock`) stopped the move; nothing was written by it: exit 1, `held=true`.
    #[error("{0}")]
    Held(String),
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            place: None,
        }
    }

    pub fn input_at(message: impl Into<String>, place: Place) -> Self {
        Error::Input {
            message: message.into(),
            place: Some(place),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Error::Failed(message.into())
    }

    /// The process exit code the contract assigns to this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input { .. } => 2,
            Error::Conflict(_) | Error::Failed(_) | Error::Held(_) => 1,
        }
    }

    pub fn place(&self) -> Option<&Place> {
        match self {
            Error::Input { place, .. } => place.as_ref(),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
