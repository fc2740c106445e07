//! The GitHub Actions runner protocol: workflow commands, outputs, job summary.

mod outputs;

pub use outputs::{dotenv_name, random_delimiter, write_dotenv, write_outputs, write_plain};

use std::io::Write;

use crate::error::Place;

/// Escapes the data part of a workflow command as the runner expects.
pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a property value (`file=`, `title=`) of a workflow command.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `msg` as one log line that the runner cannot take for a workflow command.
fn log_line(msg: &str) -> String {
    let text = msg.trim_start_matches('\n');
    let blank = &msg[..msg.len() - text.len()];
    let mut line = escape_data(text);
    if line.trim_start().starts_with("::") {
        line = line.replacen("::", "%3A%3A", 1);
    }
    format!("{blank}{line}")
}

/// Writes workflow commands to stdout and files to the runner's paths.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    pub output_file: Option<std::path::PathBuf>,
    pub summary_file: Option<std::path::PathBuf>,
    /// `--output-dotenv FILE`: the outputs as a dotenv file (GitLab's `artifacts:reports:dotenv`).
    pub dotenv_file: Option<std::path::PathBuf>,
    /// In GitHub Actions (`GITHUB_ACTIONS=true`): only there are `::add-mask::` lines
    /// understood; anywhere else they would print the secret.
    pub on_actions: bool,
}

impl Runner {
    fn line(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
    }

    pub fn group(&self, title: &str) {
        self.line(&format!("::group::{}", escape_data(title)));
    }

    pub fn end_group(&self) {
        self.line("::endgroup::");
    }

    pub fn notice(&self, msg: &str) {
        self.line(&format!("::notice::{}", escape_data(msg)));
    }

    pub fn warning(&self, msg: &str) {
        self.line(&format!("::warning::{}", escape_data(msg)));
    }

    pub fn error(&self, msg: &str, place: Option<&Place>) {
        let mut props = Vec::new();
        if let Some(p) = place {
            props.push(format!("file={}", escape_property(&p.file)));
            if let Some(l) = p.line {
                props.push(format!("line={l}"));
            }
            if let Some(c) = p.column {
                props.push(format!("col={c}"));
            }
        }
        let props = if props.is_empty() {
            String::new()
        } else {
            format!(" {}", props.join(","))
        };
        self.line(&format!("::error{props}::{}", escape_data(msg)));
    }

    /// Asks the runner to mask a secret in all later log lines (GitHub Actions only:
    /// elsewhere nothing reads the command and the line would show the secret).
    pub fn add_mask(&self, secret: &str) {
        if self.on_actions && !secret.is_empty() {
            self.line(&format!("::add-mask::{}", escape_data(secret)));
        }
    }

    /// A plain log line. Escaped like annotation data, so that text from outside
    /// (a check name, an Argo CD message) can neither start a line of its own nor
    /// be read as a workflow command; leading newlines are kept as blank lines.
    pub fn info(&self, msg: &str) {
        self.line(&log_line(msg));
    }

    /// Appends markdown to the job summary (no-op outside Actions).
    pub fn summary(&self, markdown: &str) -> std::io::Result<()> {
        let Some(path) = &self.summary_file else {
            return Ok(());
        };
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        f.write_all(markdown.as_bytes())?;
        if !markdown.ends_with('\n') {
            f.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Writes outputs: to `GITHUB_OUTPUT` when set, to the dotenv file when asked,
    /// and printed as `name=value` lines on stdout when neither is given.
    pub fn outputs(&self, pairs: &[(String, String)]) -> std::io::Result<()> {
        if let Some(path) = &self.dotenv_file {
            let mut buf = Vec::new();
            write_dotenv(&mut buf, pairs)?;
            std::fs::write(path, buf)?;
        }
        match &self.output_file {
            Some(path) => {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                write_outputs(&mut f, pairs)
            }
            None if self.dotenv_file.is_none() => {
                let mut buf = Vec::new();
                write_plain(&mut buf, pairs)?;
                std::io::stdout().lock().write_all(&buf)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape_data("a%b\r\nc"), "a%25b%0D%0Ac");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn log_lines_cannot_be_commands() {
        assert_eq!(
            log_line("waiting: x\n::warning::injected"),
            "waiting: x%0A::warning::injected"
        );
        assert_eq!(log_line("a\r\n::set-output name=x::y"), "a%0D%0A::set-output name=x::y");
        assert_eq!(log_line("::error::x"), "%3A%3Aerror::x");
        assert_eq!(log_line("  ::error::x"), "  %3A%3Aerror::x");
        assert_eq!(log_line("\n== title"), "\n== title");
        assert_eq!(log_line("100% done"), "100%25 done");
    }
}
