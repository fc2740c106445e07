//! The context every command runs in: inputs, configuration, the repository, the
//! event and the runner, and the small reads every command makes.

use std::collections::HashMap;

use super::short;
use crate::actions::Runner;
use crate::cli::{Event, Inputs};
use crate::config::{Config, Environment};
use crate::error::{Error, Result};
use crate::repo::{Forge, ForgeApi, Git, Oid};

/// Everything a command needs; nothing is read from the process globally.
pub struct Ctx<'a> {
    pub inputs: &'a Inputs,
    pub config: &'a Config,
    /// The git side: refs, objects, history, commits.
    pub repo: &'a dyn Git,
    /// Where changes are proposed; its API (GitHub) for checks and deployments.
    pub forge: &'a dyn Forge,
    pub event: &'a Event,
    pub runner: &'a Runner,
    /// The main branch (short name).
    pub branch: String,
    pub env: &'a HashMap<String, String>,
    /// Seconds since the epoch (when a hold was taken).
    pub now: i64,
}

impl<'a> Ctx<'a> {
    pub fn require_service(&self) -> Result<String> {
        let s = self.inputs.service.clone().ok_or_else(|| {
            Error::input(format!(
                "`{}` needs a service; pass input `service` (or `client_payload.service`)",
                self.inputs.command
            ))
        })?;
        self.config.service(&s)?;
        Ok(s)
    }

    pub fn require_version(&self) -> Result<String> {
        self.inputs.version.clone().ok_or_else(|| {
            Error::input(format!(
                "`{}` needs a version; pass input `version` (or `client_payload.version`)",
                self.inputs.command
            ))
        })
    }

    /// The pushed commit: `GITHUB_SHA`, else the push payload's `after`.
    pub fn pushed_sha(&self) -> Option<String> {
        self.env.get("GITHUB_SHA").cloned().or_else(|| {
            self.event
                .payload
                .get("after")
                .and_then(|a| a.as_str())
                .map(String::from)
        })
    }

    /// The commit the pushed branch was at before the push: the push event's
    /// `before` (GitLab: `CI_COMMIT_BEFORE_SHA`), else the first parent of `after`.
    /// A new branch (`before` all zeros) counts from the first parent too.
    pub fn pushed_before(&self, after: &Oid) -> Result<Option<Oid>> {
        let given = self
            .event
            .payload
            .get("before")
            .and_then(|b| b.as_str())
            .filter(|b| !b.is_empty() && b.bytes().any(|c| c != b'0'));
        if let Some(b) = given
            && let Some(c) = self.repo.resolve_revision(b)?
        {
            return Ok(Some(c));
        }
        self.repo.first_parent(after)
    }

    /// The forge's API, for what only a forge with one does (GitHub).
    pub fn forge_api(&self) -> Result<&'a dyn ForgeApi> {
        self.forge.api().ok_or_else(|| {
            Error::input(format!(
                "`{}` reads pull requests and records deployments through the GitHub API: use `backend: github`",
                self.inputs.command
            ))
        })
    }

    pub fn main_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    pub fn main_head(&self) -> Result<Oid> {
        self.repo
            .resolve_ref(&self.main_ref())?
            .map(|t| t.commit)
            .ok_or_else(|| {
                Error::input(format!(
                    "branch `{}` not found in {}; pass `branch`",
                    self.branch,
                    self.repo.describe()
                ))
            })
    }

    /// Resolves a user-given revision to a commit on the main branch.
    pub fn resolve_deployable(&self, rev: &str, main_head: &Oid) -> Result<Oid> {
        let commit = self.repo.resolve_revision(rev)?.ok_or_else(|| {
            Error::input(format!(
                "revision `{rev}` not found in {}; give a commit id or a ref that exists",
                self.repo.describe()
            ))
        })?;
        self.check_on_main(&commit, main_head)?;
        Ok(commit)
    }

    pub fn check_on_main(&self, commit: &Oid, main_head: &Oid) -> Result<()> {
        if self.inputs.allow_unmerged || self.repo.is_ancestor(commit, main_head)? {
            return Ok(());
        }
        Err(Error::input(format!(
            "revision {} is not on `{}`; merge it first, or pass `allow-unmerged: true` to deploy it anyway",
            short(commit),
            self.branch
        )))
    }

    /// Environment a command acts on by input name, or the default given.
    pub fn env_or<'c>(&'c self, name: Option<&String>, default: &'c Environment) -> Result<&'c Environment> {
        match name {
            Some(n) => self.config.env(n),
            None => Ok(default),
        }
    }

    /// A commit link, or `none` when there is no commit.
    pub fn link_or(&self, sha: Option<&str>, none: &str) -> String {
        sha.map(|s| self.link_commit(s)).unwrap_or_else(|| none.to_string())
    }

    pub fn link_commit(&self, sha: &str) -> String {
        match self.repo.web_url() {
            Some(u) => format!("[`{}`]({u}/commit/{sha})", short(sha)),
            None => format!("`{}`", short(sha)),
        }
    }

    /// Who takes a hold: `GITHUB_ACTOR`, else the git identity of the checkout.
    pub fn actor(&self) -> String {
        self.env
            .get("GITHUB_ACTOR")
            .filter(|a| !a.trim().is_empty())
            .map(|a| format!("@{}", a.trim()))
            .or_else(|| self.repo.actor())
            .unwrap_or_else(|| "unknown (no GITHUB_ACTOR, no git user.name)".into())
    }
}
