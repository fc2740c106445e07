//! The `git` backend: any git host. Reads and writes objects in the checkout with
//! gix, exactly as the local backend does (it is one, by composition), and
//! publishes with the git CLI: one `git push --atomic --porcelain` per write, every
//! ref it moves leased on the value it was read at (`--force-with-lease`).
//!
//! The remote's refs are mirrored into `refs/gitops-flow/remotes/<remote>/{heads,tags}/`
//! of the checkout by `git fetch`; every read of `refs/heads/…` and `refs/tags/…`
//! goes there, so the checkout's own branches and tags are never touched and the
//! leases are the values the remote had. Pull requests go to the forge: GitLab's
//! merge-request push options, or (`forge: none`) a report of the pull request to open.

mod command;
pub mod forge;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use super::Git as _;
use super::local::LocalRepo;
use super::{CommitRequest, HistoryEntry, Journal, Oid, RefTarget, RefUpdate, Write};
use crate::cli::{Forge, Inputs};
use crate::error::{Error, Result};
use crate::names::short_sha;
use command::{Git, Said};

/// The `git` backend: a `LocalRepo` for reads and objects, the git CLI for publishing.
pub struct GitRepo {
    local: LocalRepo,
    git: Git,
    /// The remote as given (`origin` or a URL), for `git fetch` / `git push`.
    remote: String,
    /// Its URL without user information, for messages.
    url: String,
    /// `refs/gitops-flow/remotes/<remote>`: the mirror of the remote's refs.
    ns: String,
    forge: Forge,
    /// GitLab's own server (`CI_SERVER_URL`), when known: links and compare URLs.
    gitlab: bool,
    web: Option<String>,
    /// The main branch (short name), once known: commits to any other branch wait
    /// for their pull request, so that one push carries the GitLab push options.
    main: RefCell<Option<String>>,
    pending: RefCell<Option<RefUpdate>>,
    journal: Journal,
    notices: RefCell<Vec<String>>,
}

fn sanitize(remote: &str) -> String {
    let s: String = remote
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.len() > 40 || remote.contains(['/', ':']) {
        // A URL: one stable name per URL.
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        remote.hash(&mut h);
        format!("url-{:016x}", h.finish())
    } else {
        s
    }
}

/// What to do about a failed fetch, clone or push, from what git said.
fn hint(stderr: &str) -> &'static str {
    let lower = stderr.to_lowercase();
    if lower.contains("authentication failed")
        || lower.contains("returned error: 401")
        || lower.contains("returned error: 403")
        || lower.contains("could not read username")
    {
        "; the token was refused or is missing: pass a token that can write the repository (GitLab: a project or group access token with `write_repository`; GitHub: `contents: write`) as input `token`"
    } else if lower.contains("does not support push options") {
        "; the server does not take push options (GitLab does): use `forge: none` on this host"
    } else if lower.contains("could not resolve host") || lower.contains("failed to connect") {
        "; the git server cannot be reached from this job"
    } else {
        ""
    }
}

fn is_url(remote: &str) -> bool {
    remote.contains("://") || remote.contains('/') || remote.contains(':')
}

/// The git runner for `remote_url` with the token (if any) in its environment.
fn git_for(inputs: &Inputs, dir: PathBuf, remote_url: &str, env: &HashMap<String, String>) -> Git {
    let (cred_env, secrets) = match (&inputs.token, forge::http_origin(remote_url)) {
        (Some(t), Some(origin)) => (command::credential_env(t, &origin, env), command::token_forms(t)),
        (Some(t), None) => (Vec::new(), command::token_forms(t)),
        (None, _) => (Vec::new(), Vec::new()),
    };
    Git::new(dir, cred_env, secrets)
}

/// Clones `remote` into `path` when `remote` is a URL and `path` does not exist
/// (or is an empty directory): one command in a job that starts from another
/// repository. A checkout that is already there is used as it is.
pub fn clone_if_missing(inputs: &Inputs, env: &HashMap<String, String>) -> Result<()> {
    let path = &inputs.path;
    let present = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
    if present {
        return Ok(());
    }
    if !is_url(&inputs.remote) {
        return Err(Error::input(format!(
            "{} is not a checkout; check out the GitOps repository there first, or pass its URL as `remote` to clone it",
            path.display()
        )));
    }
    let git = git_for(inputs, PathBuf::from("."), &inputs.remote, env);
    let said = git.run(&[
        "clone".into(),
        "--quiet".into(),
        "--".into(),
        inputs.remote.clone(),
        path.display().to_string(),
    ])?;
    if !said.ok {
        return Err(Error::failed(format!(
            "git clone of {} into {} failed: {}{}",
            forge::strip_userinfo(&inputs.remote),
            path.display(),
            said.stderr.trim(),
            hint(&said.stderr)
        )));
    }
    Ok(())
}

impl GitRepo {
    /// Opens the checkout at `inputs.path` and mirrors the remote's refs into it.
    pub fn open(inputs: &Inputs, env: &HashMap<String, String>, now: i64) -> Result<GitRepo> {
        let local = LocalRepo::open(&inputs.path, now)?;
        let remote = inputs.remote.clone();
        let probe = Git::new(inputs.path.clone(), Vec::new(), Vec::new());
        let raw_url = if is_url(&remote) {
            remote.clone()
        } else {
            let said = probe.run(&["remote".into(), "get-url".into(), remote.clone()])?;
            if !said.ok {
                return Err(Error::input(format!(
                    "the checkout at {} has no remote `{remote}`; pass input `remote` (a remote name or the repository's URL)",
                    inputs.path.display()
                )));
            }
            said.stdout.trim().to_string()
        };
        let url = forge::strip_userinfo(&raw_url);
        let gitlab_server = env.get("CI_SERVER_URL").filter(|s| !s.is_empty()).cloned();
        let web = forge::web_url(&raw_url);
        let gitlab = inputs.forge == Forge::GitLab
            || gitlab_server
                .as_deref()
                .zip(web.as_deref())
                .is_some_and(|(s, w)| w.starts_with(s.trim_end_matches('/')));
        let repo = GitRepo {
            local,
            git: git_for(inputs, inputs.path.clone(), &raw_url, env),
            ns: format!("refs/gitops-flow/remotes/{}", sanitize(&remote)),
            remote,
            url,
            forge: inputs.forge,
            gitlab,
            web,
            main: RefCell::new(None),
            pending: RefCell::new(None),
            journal: Journal::default(),
            notices: RefCell::new(Vec::new()),
        };
        repo.fetch()?;
        Ok(repo)
    }

    /// Tells the backend which branch is the main one (direct commits push at once).
    pub fn set_main_branch(&self, branch: &str) {
        *self.main.borrow_mut() = Some(branch.to_string());
    }

    /// Mirrors the remote's branches and tags (and, in a shallow clone, the history
    /// that rollbacks and ancestry checks read).
    fn fetch(&self) -> Result<()> {
        let mut args: Vec<String> = [
            "fetch",
            "--prune",
            "--no-tags",
            "--force",
            "--no-write-fetch-head",
            "--quiet",
        ]
        .map(String::from)
        .to_vec();
        if self.local.is_shallow() {
            args.push("--unshallow".into());
        }
        args.push(self.remote.clone());
        args.push(format!("+refs/heads/*:{}/heads/*", self.ns));
        args.push(format!("+refs/tags/*:{}/tags/*", self.ns));
        let said = self.git.run(&args)?;
        if !said.ok {
            return Err(self.git_failure("fetch from", &said));
        }
        Ok(())
    }

    fn git_failure(&self, what: &str, said: &Said) -> Error {
        let text = said.stderr.trim();
        let hint = hint(text);
        Error::failed(format!(
            "git {what} `{}` ({}) failed: {text}{hint}",
            self.remote, self.url
        ))
    }

    fn mirror(&self, name: &str) -> String {
        if let Some(b) = name.strip_prefix("refs/heads/") {
            format!("{}/heads/{b}", self.ns)
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            format!("{}/tags/{t}", self.ns)
        } else {
            name.to_string()
        }
    }

    fn unmirror(&self, name: &str) -> String {
        let heads = format!("{}/heads/", self.ns);
        let tags = format!("{}/tags/", self.ns);
        if let Some(b) = name.strip_prefix(&heads) {
            format!("refs/heads/{b}")
        } else if let Some(t) = name.strip_prefix(&tags) {
            format!("refs/tags/{t}")
        } else {
            name.to_string()
        }
    }

    fn is_main(&self, branch: &str) -> bool {
        self.main.borrow().as_deref() == Some(branch)
    }

    /// One atomic push of `updates`, each leased on its expected value, with
    /// `options` as push options. Returns what the remote said (stderr).
    fn push(&self, updates: &[RefUpdate], options: &[String]) -> Result<String> {
        let mut args: Vec<String> = vec!["push".into(), "--atomic".into(), "--porcelain".into()];
        for o in options {
            args.push(format!("--push-option={o}"));
        }
        for u in updates {
            args.push(format!(
                "--force-with-lease={}:{}",
                u.name,
                u.expected.as_deref().unwrap_or_default()
            ));
        }
        args.push(self.remote.clone());
        for u in updates {
            args.push(format!("{}:{}", u.new, u.name));
        }
        let said = self.git.run(&args)?;
        if said.ok {
            self.record_mirror(updates)?;
            return Ok(said.stderr);
        }
        let lines = command::porcelain(&said.stdout);
        let rejected: Vec<&command::PushLine> = lines.iter().filter(|l| l.rejected).collect();
        if !rejected.is_empty() && rejected.iter().all(|l| command::lost_race(l)) {
            // Someone else moved a ref first: read where everything is now, name it.
            self.fetch()?;
            let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
            let now = self.resolve_refs(&names)?;
            let cause = format!(
                "the push to `{}` was refused, nothing was written: {}",
                self.remote,
                rejected
                    .iter()
                    .map(|l| format!("{} {}", l.to, l.summary))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Err(super::conflict(updates, &now, &cause, "")
                .unwrap_or_else(|| Error::conflict(format!("{cause}; re-run to act on the new state"))));
        }
        if !rejected.is_empty() {
            return Err(Error::failed(format!(
                "the push to `{}` ({}) was refused, nothing was written: {}{}",
                self.remote,
                self.url,
                rejected
                    .iter()
                    .map(|l| format!("{} {}", l.to, l.summary))
                    .collect::<Vec<_>>()
                    .join(", "),
                remote_lines(&said.stderr)
            )));
        }
        Err(self.git_failure("push to", &said))
    }

    /// Moves the mirror refs along with a push that landed.
    fn record_mirror(&self, updates: &[RefUpdate]) -> Result<()> {
        let script: String = updates
            .iter()
            .map(|u| format!("update {} {}\n", self.mirror(&u.name), u.new))
            .collect();
        let said = self.git.run_with_input(
            &["update-ref".into(), "--no-deref".into(), "--stdin".into()],
            Some(script.as_bytes()),
        )?;
        if !said.ok {
            // The push landed; only our mirror is behind. The next run fetches anew.
            tracing::warn!("could not record the push in the checkout: {}", said.stderr.trim());
        }
        Ok(())
    }

    /// Pushes the commit that waits for its pull request (if any) without options.
    fn flush_pending(&self) -> Result<()> {
        let pending = self.pending.borrow_mut().take();
        if let Some(u) = pending {
            self.push(std::slice::from_ref(&u), &[])?;
            self.journal.record(Write::Commit {
                branch: u.name.trim_start_matches("refs/heads/").to_string(),
                commit: u.new,
            });
        }
        Ok(())
    }

    /// Publishes anything still waiting; call once the command is done.
    pub fn finish(&self) -> Result<()> {
        self.flush_pending()
    }
}

/// The `remote:` lines of git's answer, for an error message.
fn remote_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(" (the server said: {})", lines.join(" / "))
    }
}

impl super::Git for GitRepo {
    fn describe(&self) -> String {
        format!("{} (remote `{}` of {})", self.url, self.remote, self.local.describe())
    }

    fn web_url(&self) -> Option<String> {
        self.web.clone()
    }

    fn default_branch(&self) -> Result<String> {
        let said = self.git.run(&[
            "ls-remote".into(),
            "--symref".into(),
            self.remote.clone(),
            "HEAD".into(),
        ])?;
        if said.ok
            && let Some(b) = said
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix("ref: refs/heads/"))
                .and_then(|r| r.split('\t').next())
        {
            return Ok(b.to_string());
        }
        for b in ["main", "master"] {
            if self.resolve_ref(&format!("refs/heads/{b}"))?.is_some() {
                return Ok(b.to_string());
            }
        }
        Err(Error::input(format!(
            "cannot tell the main branch of `{}`; pass `branch` (or set `branch:` in gitops-flow.yaml)",
            self.remote
        )))
    }

    fn written(&self) -> Vec<Write> {
        self.journal.entries()
    }

    fn resolve_refs(&self, names: &[String]) -> Result<Vec<Option<RefTarget>>> {
        let mapped: Vec<String> = names.iter().map(|n| self.mirror(n)).collect();
        self.local.resolve_refs(&mapped)
    }

    fn resolve_revision(&self, rev: &str) -> Result<Option<Oid>> {
        let candidates: Vec<String> = if rev.starts_with("refs/") {
            vec![rev.to_string()]
        } else {
            vec![format!("refs/tags/{rev}"), format!("refs/heads/{rev}")]
        };
        if crate::names::check_ref_name("revision", rev).is_ok() {
            for (c, found) in candidates.iter().zip(self.resolve_refs(&candidates)?) {
                if let Some(t) = found {
                    tracing::debug!("{rev} is {c} of `{}`", self.remote);
                    return Ok(Some(t.commit));
                }
            }
        }
        self.local.resolve_revision(rev)
    }

    fn first_parent(&self, commit: &Oid) -> Result<Option<Oid>> {
        self.local.first_parent(commit)
    }

    fn read_file(&self, commit: &Oid, path: &str) -> Result<Option<Vec<u8>>> {
        self.local.read_file(commit, path)
    }

    fn list_dir(&self, commit: &Oid, path: &str) -> Result<Vec<String>> {
        self.local.list_dir(commit, path)
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, RefTarget)>> {
        Ok(self
            .local
            .list_refs(&self.mirror(prefix))?
            .into_iter()
            .map(|(n, t)| (self.unmirror(&n), t))
            .collect())
    }

    fn is_ancestor(&self, ancestor: &Oid, descendant: &Oid) -> Result<bool> {
        self.local.is_ancestor(ancestor, descendant)
    }

    fn changed_paths(&self, commit: &Oid) -> Result<Vec<String>> {
        self.local.changed_paths(commit)
    }

    fn file_history(
        &self,
        head: &Oid,
        path: &str,
        limit: usize,
        enough: &mut dyn FnMut(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>> {
        self.local.file_history(head, path, limit, enough)
    }

    fn file_histories(
        &self,
        head: &Oid,
        paths: &[String],
        limit: usize,
        enough: &mut dyn FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<Vec<Vec<HistoryEntry>>> {
        self.local.file_histories(head, paths, limit, enough)
    }

    fn update_refs(&self, updates: &[RefUpdate], _message: &str) -> Result<()> {
        self.flush_pending()?;
        self.push(updates, &[])?;
        self.journal.record(Write::Refs(updates.to_vec()));
        Ok(())
    }

    fn commit(&self, req: &CommitRequest) -> Result<Oid> {
        self.flush_pending()?;
        let new = self.local.write_commit(&req.parent, &req.changes, &req.message)?;
        let update = RefUpdate {
            name: format!("refs/heads/{}", req.branch),
            expected: req.expected_head.clone(),
            new: new.clone(),
        };
        if self.forge == Forge::GitLab && !self.is_main(&req.branch) {
            // Pushed with its merge request's push options (`pull_request`).
            *self.pending.borrow_mut() = Some(update);
            return Ok(new);
        }
        self.push(std::slice::from_ref(&update), &[]).map_err(|e| match e {
            Error::Conflict(m) => Error::Conflict(crate::error::Conflict {
                message: format!(
                    "branch `{}` moved on `{}` since {}: {}",
                    req.branch,
                    self.remote,
                    req.expected_head.as_deref().map_or("it was read", short_sha),
                    m.message
                ),
                refs: m.refs,
            }),
            e => e,
        })?;
        self.journal.record(Write::Commit {
            branch: req.branch.clone(),
            commit: new.clone(),
        });
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mirror_names() {
        assert_eq!(super::sanitize("origin"), "origin");
        assert!(super::sanitize("https://gitlab.com/acme/env.git").starts_with("url-"));
        assert_ne!(super::sanitize("https://a/x.git"), super::sanitize("https://a/y.git"));
    }
}
