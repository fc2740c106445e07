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

/// A ref as a failed compare-and-swap found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    /// Full name, `refs/tags/payments-production`.
    pub name: String,
    /// Where the write expected it (`None`: absent).
    pub expected: Option<String>,
    /// Where it is now, read again after the failure (`None`: absent).
    pub now: Option<String>,
}

/// A compare-and-swap lost to a concurrent writer: what happened, and the refs that
/// moved with where they are now (empty when the loser is a commit or a lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub message: String,
    pub refs: Vec<RefState>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let moved: Vec<String> = self
            .refs
            .iter()
            .filter(|r| r.expected != r.now)
            .map(|r| {
                let name = r
                    .name
                    .trim_start_matches("refs/tags/")
                    .trim_start_matches("refs/heads/");
                match &r.now {
                    Some(at) => format!("`{name}` is at {}", crate::names::short_sha(at)),
                    None => format!("`{name}` does not exist"),
                }
            })
            .collect();
        if !moved.is_empty() {
            write!(f, " (now {})", moved.join(", "))?;
        }
        Ok(())
    }
}

/// A call to GitHub's API that failed: which call, GitHub's status and message, and
/// what a person can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// `GET`, `POST`; GraphQL calls are `POST graphql`.
    pub method: String,
    pub path: String,
    /// The HTTP status; `None` for GraphQL errors in a 200 answer.
    pub status: Option<u16>,
    /// GraphQL's error type (`FORBIDDEN`, `NOT_FOUND`, …) when GitHub gave one.
    pub error_type: Option<String>,
    pub message: String,
    pub hint: &'static str,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            None => write!(f, "GitHub GraphQL API: {}{}", self.message, self.hint),
            Some(status) => write!(
                f,
                "GitHub API {} {} returned {status}: {}{}",
                self.method, self.path, self.message, self.hint
            ),
        }
    }
}

/// Every error of the library carries its exit class (the variant) and what happened;
/// the runner renders it in one place (`lib.rs`: `::error::`, with the file and line of
/// an `Input` error's `place`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or configuration: exit 2, nothing written.
    #[error("{message}")]
    Input { message: String, place: Option<Place> },
    /// A compare-and-swap lost to a concurrent writer and retrying could not resolve it.
    #[error("{0}")]
    Conflict(Conflict),
    /// A GitHub API call failed: exit 1.
    #[error("{0}")]
    Api(Box<ApiFailure>),
    /// Any other failure of the operation (git, health gate): exit 1.
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

    /// A conflict that names no refs (a commit's branch moved, a lease was lost).
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict(Conflict {
            message: message.into(),
            refs: Vec::new(),
        })
    }

    /// The process exit code the contract assigns to this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input { .. } => 2,
            Error::Conflict(_) | Error::Api(_) | Error::Failed(_) | Error::Held(_) => 1,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_says_where_the_moved_refs_are_now() {
        let c = Conflict {
            message: "`a`, `b` changed concurrently".into(),
            refs: vec![
                RefState {
                    name: "refs/tags/a".into(),
                    expected: Some("1111111111111111111111111111111111111111".into()),
                    now: Some("2222222222222222222222222222222222222222".into()),
                },
                RefState {
                    name: "refs/tags/b".into(),
                    expected: None,
                    now: None,
                },
                RefState {
                    name: "refs/heads/c".into(),
                    expected: Some("3333333333333333333333333333333333333333".into()),
                    now: None,
                },
            ],
        };
        assert_eq!(
            Error::Conflict(c).to_string(),
            "`a`, `b` changed concurrently (now `a` is at 2222222, `c` does not exist)"
        );
    }
}
