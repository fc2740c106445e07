//! Running the git CLI for the `git` backend: the token reaches git only through
//! the environment (`GIT_CONFIG_COUNT` / `http.<origin>.extraHeader`), everything git
//! says is scrubbed of it, and `git push --porcelain` is read line by line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// How to run git in the checkout: the environment that carries the credential
/// and the strings to scrub from anything git prints.
pub struct Git {
    dir: PathBuf,
    env: Vec<(String, String)>,
    secrets: Vec<String>,
}

/// What a git command said, already scrubbed.
#[derive(Debug)]
pub struct Said {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The environment that gives git the token as HTTP Basic authentication
/// (`oauth2:<token>`, which GitLab, GitHub, Gitea and Bitbucket accept) for one
/// origin only, appended after any `GIT_CONFIG_*` entries already set.
pub fn credential_env(token: &Secret, origin: &str, env: &HashMap<String, String>) -> Vec<(String, String)> {
    let n: usize = env
        .get("GIT_CONFIG_COUNT")
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("oauth2:{}", token.expose()));
    vec![
        ("GIT_CONFIG_COUNT".into(), (n + 1).to_string()),
        (format!("GIT_CONFIG_KEY_{n}"), format!("http.{origin}.extraHeader")),
        (format!("GIT_CONFIG_VALUE_{n}"), format!("Authorization: Basic {basic}")),
    ]
}

/// The forms of the token that could show up in git's output.
pub fn token_forms(token: &Secret) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut v = vec![
        token.expose().to_string(),
        b64.encode(format!("oauth2:{}", token.expose())),
        b64.encode(token.expose()),
    ];
    v.retain(|s| s.len() >= 4);
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

impl Git {
    pub fn new(dir: PathBuf, env: Vec<(String, String)>, secrets: Vec<String>) -> Git {
        Git { dir, env, secrets }
    }

    /// The token in all its forms, and the user information of any URL (a CI
    /// checkout's `origin` may carry a job token), replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let text = self
            .secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"));
        scrub_userinfo(&text)
    }

    /// Runs `git -C <checkout> <args>`; never prompts, messages in English.
    pub fn run(&self, args: &[String]) -> Result<Said> {
        self.run_with_input(args, None)
    }

    /// Runs git with `input` on its standard input.
    pub fn run_with_input(&self, args: &[String], input: Option<&[u8]>) -> Result<Said> {
        use std::io::Write as _;
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(if input.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::failed(format!(
                    "cannot run `git` ({e}); the `git` backend publishes with the git CLI: install git in the job's image (the `-cli` image has it)"
                ))
            })?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(data)
                .map_err(|e| Error::failed(format!("cannot talk to `git`: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::failed(format!("cannot run `git`: {e}")))?;
        Ok(Said {
            ok: out.status.success(),
            stdout: self.scrub(&String::from_utf8_lossy(&out.stdout)),
            stderr: self.scrub(&String::from_utf8_lossy(&out.stderr)),
        })
    }
}

/// `scheme://user:secret@host` -> `scheme://***@host`, wherever it appears.
pub fn scrub_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// One line of `git push --porcelain`: `<flag>\t<from>:<to>\t<summary>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushLine {
    pub rejected: bool,
    pub to: String,
    pub summary: String,
}

pub fn porcelain(stdout: &str) -> Vec<PushLine> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            let flag = parts.next()?;
            let refs = parts.next()?;
            let summary = parts.next().unwrap_or_default();
            if flag.chars().count() != 1 {
                return None;
            }
            let to = refs.rsplit_once(':').map_or(refs, |(_, t)| t);
            Some(PushLine {
                rejected: flag == "!",
                to: to.to_string(),
                summary: summary.trim().to_string(),
            })
        })
        .collect()
}

/// Whether a rejected line lost a race (the ref is not where it was leased, or
/// the atomic push fell with such a ref) rather than being refused for good.
pub fn lost_race(line: &PushLine) -> bool {
    [
        "stale info",
        "fetch first",
        "non-fast-forward",
        "atomic push failed",
        "failed to lock",
        "cannot lock ref",
    ]
    .iter()
    .any(|s| line.summary.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_only_in_the_environment_and_appended() {
        let env: HashMap<String, String> = [("GIT_CONFIG_COUNT".to_string(), "2".to_string())].into();
        let e = credential_env(&Secret::new("glpat-abc"), "https://gitlab.com/", &env);
        assert_eq!(e[0], ("GIT_CONFIG_COUNT".into(), "3".into()));
        assert_eq!(
            e[1],
            ("GIT_CONFIG_KEY_2".into(), "http.https://gitlab.com/.extraHeader".into())
        );
        // base64("oauth2:glpat-abc")
        assert_eq!(e[2].1, "Authorization: Basic b2F1dGgyOmdscGF0LWFiYw==");
        let forms = token_forms(&Secret::new("glpat-abc"));
        assert!(forms.contains(&"b2F1dGgyOmdscGF0LWFiYw==".to_string()));
        let g = Git::new(".".into(), e, forms);
        assert_eq!(g.scrub("x glpat-abc y b2F1dGgyOmdscGF0LWFiYw=="), "x *** y ***");
        assert_eq!(
            g.scrub("fatal: unable to access 'https://gitlab-ci-token:jobtok@gitlab.com/a/b.git/': 403"),
            "fatal: unable to access 'https://***@gitlab.com/a/b.git/': 403"
        );
        assert_eq!(
            scrub_userinfo("see http://host/x and file:///tmp/y"),
            "see http://host/x and file:///tmp/y"
        );
    }

    #[test]
    fn porcelain_lines() {
        let out = "To http://127.0.0.1:1/env.git\n!\t0123:refs/tags/a\t[rejected] (stale info)\n!\t4567:refs/tags/a-rollback\t[rejected] (atomic push failed)\n*\t89ab:refs/heads/x\t[new branch]\nDone\n";
        let lines = porcelain(out);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].rejected && lost_race(&lines[0]) && lost_race(&lines[1]));
        assert_eq!(lines[1].to, "refs/tags/a-rollback");
        assert!(!lines[2].rejected);
        let hook = porcelain("!\t0123:refs/heads/main\t[remote rejected] (pre-receive hook declined)\n");
        assert!(!lost_race(&hook[0]));
    }
}
