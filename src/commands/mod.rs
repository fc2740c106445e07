//! The commands, written against the `Repository` seam.

pub mod demo;
pub mod deploy;
pub mod lock;
pub mod preview;
pub mod promote;
pub mod report;
pub mod rollback;
pub mod stage;
pub mod state;
pub mod status;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::actions::Runner;
use crate::cli::{Event, Inputs};
use crate::config::{Config, Environment, Track};
use crate::error::{Error, Result};
use crate::holds::Holds;
use crate::manifest;
use crate::repo::{CommitRequest, FileChange, Oid, PullRequestSpec, ReadPlan, RefUpdate, Repository, Write};

/// Everything a command needs; nothing is read from the process globally.
pub struct Ctx<'a> {
    pub inputs: &'a Inputs,
    pub config: &'a Config,
    pub repo: &'a dyn Repository,
    pub event: &'a Event,
    pub runner: &'a Runner,
    /// The main branch (short name).
    pub branch: String,
    pub env: &'a HashMap<String, String>,
    /// Seconds since the epoch (when a hold was taken).
    pub now: i64,
}

/// What a command did: becomes the step outputs, `result` and the job summary.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Outcome {
    pub changed: bool,
    pub service: Option<String>,
    pub environment: Option<String>,
    pub version: Option<String>,
    pub previous_version: Option<String>,
    pub revision: Option<String>,
    pub previous_revision: Option<String>,
    pub tag: Option<String>,
    pub rollback_revision: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub pull_request_number: Option<u64>,
    pub pull_request_url: Option<String>,
    pub report: Option<serde_json::Value>,
    /// `preview`: the environment URL.
    pub url: Option<String>,
    /// `preview`: the GitHub deployment it recorded or acted on.
    pub deployment_id: Option<u64>,
    /// `preview`: the deployment state it set (`success`, `failure`, `error`, `inactive`).
    pub state: Option<String>,
    /// A hold (`lock`) stopped the move; `lock`/`unlock`: the target is held afterwards.
    pub held: bool,
    #[serde(skip)]
    pub summary: String,
    /// The environment runs a new revision without this run having moved it (the
    /// merge that `deploy` reports for a file-tracked environment): deployments and
    /// the gate apply as after a move.
    #[serde(skip)]
    pub deployed: bool,
    /// Set when the operation failed after doing work worth reporting (a failed
    /// gate, a rollback): outputs and summary are written, then exit 1.
    #[serde(skip)]
    pub failure: Option<String>,
}

impl Outcome {
    /// Marks the run failed after it did what the outcome says (exit 1).
    pub fn fail(&mut self, msg: &str) {
        self.summary.push_str(&format!("\n❌ {msg}\n"));
        self.failure = Some(match self.failure.take() {
            Some(f) => format!("{f}; then {msg}"),
            None => msg.to_string(),
        });
    }

    /// The step outputs, every name always present (empty when not applicable).
    pub fn output_pairs(&self) -> Vec<(String, String)> {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut pairs = vec![
            ("changed".to_string(), self.changed.to_string()),
            ("service".into(), s(&self.service)),
            ("environment".into(), s(&self.environment)),
            ("version".into(), s(&self.version)),
            ("previous-version".into(), s(&self.previous_version)),
            ("revision".into(), s(&self.revision)),
            ("previous-revision".into(), s(&self.previous_revision)),
            ("tag".into(), s(&self.tag)),
            ("rollback-revision".into(), s(&self.rollback_revision)),
            ("commit".into(), s(&self.commit)),
            ("branch".into(), s(&self.branch)),
            (
                "pull-request-number".into(),
                self.pull_request_number.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("pull-request-url".into(), s(&self.pull_request_url)),
            (
                "report".into(),
                self.report.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            ),
            ("url".into(), s(&self.url)),
            (
                "deployment-id".into(),
                self.deployment_id.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("state".into(), s(&self.state)),
            ("held".into(), self.held.to_string()),
        ];
        pairs.push((
            "result".into(),
            serde_json::to_string(self).unwrap_or_else(|_| "{}".into()),
        ));
        pairs
    }
}

/// Machine-readable metadata carried in pull-request bodies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub command: String,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

const META_OPEN: &str = "<!-- gitops-flow ";

impl Meta {
    pub fn render(&self) -> String {
        format!("{META_OPEN}{} -->", serde_json::to_string(self).unwrap_or_default())
    }

    pub fn parse(body: &str) -> Option<Meta> {
        let start = body.find(META_OPEN)? + META_OPEN.len();
        let end = body[start..].find(" -->")? + start;
        serde_json::from_str(&body[start..end]).ok()
    }
}

impl Ctx<'_> {
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

    /// Reads the main branch and the tags of `service` in `envs` in one go.
    /// Reads what a command needs for `service` in `envs` at once (see [`plan_for`]);
    /// what was read at start-up already is not read again.
    pub fn prefetch(&self, service: &str, envs: &[&Environment]) -> Result<()> {
        let plan = plan_for(self.config, service, envs, Some(self.main_ref()), None);
        self.repo.prefetch(&plan)
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

    /// What a push changed, read from the version fields rather than a forge API:
    /// every (service, environment, version) whose file-tracked version differs
    /// between the push's before and after commits. A merge commit, a squash merge
    /// and a fast-forward all look the same this way.
    pub fn pushed_changes(&self, sha: &str) -> Result<Vec<Meta>> {
        let Some(after) = self.repo.resolve_revision(sha)? else {
            return Ok(Vec::new());
        };
        let before = self.pushed_before(&after)?;
        let mut out = Vec::new();
        for service in self.config.services.keys() {
            for env in self.config.environments.iter().filter(|e| e.track == Track::File) {
                let Ok(locs) = self.config.locations(env, service) else {
                    continue;
                };
                let Ok(new) = self.read_version(&after, &locs) else {
                    continue;
                };
                let old = match &before {
                    Some(b) => self.read_version(b, &locs).ok(),
                    None => None,
                };
                if old.as_deref() != Some(new.as_str()) {
                    out.push(Meta {
                        command: "push".into(),
                        service: service.clone(),
                        environment: Some(env.name.clone()),
                        from: None,
                        version: Some(new),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The one change a push made that the chain acts on: the merged pull
    /// request's metadata, else the version field the push changed (restricted to
    /// environment `only` when given). `Err` names the changes when there are several.
    pub fn pushed_change(&self, sha: &Oid, only: Option<&str>) -> Result<std::result::Result<Option<Meta>, String>> {
        if let Some(m) = self.merged_meta(sha)? {
            return Ok(Ok(Some(m)));
        }
        let mut changes = self.pushed_changes(sha)?;
        changes.retain(|m| only.is_none_or(|o| m.environment.as_deref() == Some(o)));
        if changes.len() > 1 {
            return Ok(Err(format!(
                "commit {} changed several versions ({}); pass `service` (and `from` or `environment`) to say which to act on",
                short(sha),
                changes
                    .iter()
                    .map(|m| format!(
                        "{} in `{}` to {}",
                        m.service,
                        m.environment.as_deref().unwrap_or_default(),
                        m.version.as_deref().unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Ok(changes.pop()))
    }

    /// The metadata of the gitops-flow pull request whose merge produced `sha`.
    pub fn merged_meta(&self, sha: &Oid) -> Result<Option<Meta>> {
        Ok(self
            .repo
            .pull_request_for_commit(sha)?
            .and_then(|pr| Meta::parse(&pr.body)))
    }

    /// Where one ref points, `None` when it does not exist.
    pub fn resolve_ref(&self, name: &str) -> Result<Option<crate::repo::RefTarget>> {
        Ok(self.repo.resolve_refs(&[name.to_string()])?.into_iter().next().flatten())
    }

    pub fn main_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    pub fn main_head(&self) -> Result<Oid> {
        let r = self.repo.resolve_refs(&[self.main_ref()])?;
        r.into_iter().next().flatten().map(|t| t.commit).ok_or_else(|| {
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

    /// Moves tags of one environment for several services in one atomic update:
    /// each tag to its new commit, and each rollback tag to where the tag was.
    /// Returns, per service, the previous commit (None when unchanged or new).
    pub fn move_tags(
        &self,
        env: &Environment,
        moves: &[(String, Oid)],
        command: &str,
        set_rollback: bool,
    ) -> Result<Vec<TagMove>> {
        let mut names = Vec::new();
        for (service, _) in moves {
            names.push(format!("refs/tags/{}", self.config.tag(env, service)?));
            names.push(format!("refs/tags/{}", self.config.rollback_tag(env, service)?));
        }
        let current = self.repo.resolve_refs(&names)?;
        let mut updates = Vec::new();
        let mut out = Vec::new();
        for (i, (service, new)) in moves.iter().enumerate() {
            let tag = &names[2 * i];
            let rb = &names[2 * i + 1];
            let cur = current[2 * i].clone();
            let cur_rb = current[2 * i + 1].clone();
            let previous = cur.as_ref().map(|c| c.commit.clone());
            let changed = previous.as_deref() != Some(new.as_str());
            if changed {
                updates.push(RefUpdate {
                    name: tag.clone(),
                    expected: cur.as_ref().map(|c| c.target.clone()),
                    new: new.clone(),
                });
                if set_rollback
                    && let Some(p) = &previous
                    && cur_rb.as_ref().map(|r| &r.commit) != Some(p)
                {
                    updates.push(RefUpdate {
                        name: rb.clone(),
                        expected: cur_rb.as_ref().map(|r| r.target.clone()),
                        new: p.clone(),
                    });
                }
            }
            let rollback = if changed && set_rollback {
                previous.clone().or(cur_rb.map(|r| r.commit))
            } else {
                cur_rb.map(|r| r.commit)
            };
            out.push(TagMove {
                service: service.clone(),
                tag: tag.trim_start_matches("refs/tags/").to_string(),
                previous,
                new: new.clone(),
                changed,
                rollback,
            });
        }
        if updates.is_empty() || self.inputs.dry_run {
            return Ok(out);
        }
        let message = format!("gitops-flow {command} {}", env.name);
        let services: Vec<&str> = moves.iter().map(|(s, _)| s.as_str()).collect();
        match self.update_refs_unless_held(&updates, &message, env, &services) {
            Ok(()) => Ok(out),
            Err(Error::Conflict(msg)) => {
                // Did the same move land already (a retried request, or an identical run)?
                let now = self
                    .repo
                    .resolve_refs(&updates.iter().map(|u| u.name.clone()).collect::<Vec<_>>())?;
                let landed = updates
                    .iter()
                    .zip(&now)
                    .all(|(u, n)| n.as_ref().is_some_and(|n| n.target == u.new || n.commit == u.new));
                if landed {
                    // Another run made this very move: ours wrote nothing, so it
                    // reports where the tags are now, unchanged.
                    self.runner.notice(&format!(
                        "another run moved {} to the same revision first; nothing changed by this run",
                        updates
                            .iter()
                            .map(|u| format!("`{}`", u.name.trim_start_matches("refs/tags/")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    let rb_names: Vec<String> = out
                        .iter()
                        .map(|m| -> Result<String> {
                            Ok(format!("refs/tags/{}", self.config.rollback_tag(env, &m.service)?))
                        })
                        .collect::<Result<_>>()?;
                    let rbs = self.repo.resolve_refs(&rb_names)?;
                    for (m, rb) in out.iter_mut().zip(rbs) {
                        if m.changed {
                            m.changed = false;
                            m.previous = Some(m.new.clone());
                            m.rollback = rb.map(|r| r.commit);
                        }
                    }
                    return Ok(out);
                }
                Err(Error::Conflict(format!(
                    "{msg}. Tags now: {}",
                    updates
                        .iter()
                        .zip(&now)
                        .map(|(u, n)| format!(
                            "{} at {}",
                            u.name.trim_start_matches("refs/tags/"),
                            n.as_ref().map_or("nothing".into(), |n| short(&n.commit).to_string())
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            Err(e) => Err(e),
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

    /// The holds on the main branch at `commit`.
    pub fn holds_at(&self, commit: &Oid) -> Result<Holds> {
        Holds::read(self.repo, commit)
    }

    /// `Error::Held` when a hold at `commit` stops any of `services` in `env`.
    pub fn check_holds(&self, commit: &Oid, services: &[&str], env: &Environment) -> Result<()> {
        let holds = self.holds_at(commit)?;
        let refusals: Vec<String> = services
            .iter()
            .filter_map(|s| holds.blocking(s, &env.name).map(|h| h.refusal(&self.inputs.command, s)))
            .collect();
        if refusals.is_empty() {
            return Ok(());
        }
        let mut unique = refusals;
        unique.dedup();
        Err(Error::Held(unique.join("; ")))
    }

    /// Test hook: a pause between reading the holds and writing, so that tests can
    /// land a lock in between (`GITOPS_FLOW_TEST_WRITE_DELAY_MS`).
    pub fn pause_before_write(&self) {
        if let Some(ms) = self
            .env
            .get("GITOPS_FLOW_TEST_WRITE_DELAY_MS")
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms.min(10_000)));
        }
    }

    /// Moves refs of `env` for `services` unless a hold at the main head stops them.
    /// The guarantee: the local backend moves the refs in one transaction with a
    /// check that the main branch is still where the holds were read (else it reads
    /// them again and retries); the GitHub backend reads the main head once more
    /// right after its atomic update, and a hold that landed since the holds were
    /// read undoes the move (compare-and-swap back) and fails as held.
    pub fn update_refs_unless_held(
        &self,
        updates: &[RefUpdate],
        message: &str,
        env: &Environment,
        services: &[&str],
    ) -> Result<()> {
        let main_ref = self.main_ref();
        for attempt in 0..5 {
            if attempt > 0 {
                // Read the main branch afresh (the GitHub backend caches refs).
                self.repo.forget();
            }
            let head = self.main_head()?;
            self.check_holds(&head, services, env)?;
            self.pause_before_write();
            if let Some(u) = updates.iter().find(|u| u.name == main_ref) {
                // The update of the main branch itself is the compare-and-swap on
                // the commit the holds were read at.
                if u.expected.as_ref() != Some(&head) {
                    return Err(Error::Conflict(format!(
                        "`{}` moved since it was read; nothing was written, re-run to act on the new state",
                        self.branch
                    )));
                }
                return self.repo.update_refs(updates, message);
            }
            match self.repo.update_refs_guarded(updates, message, &main_ref, &head) {
                Ok(None) => return Ok(()),
                Ok(Some(new_head)) => return self.undo_if_held(updates, message, env, services, &new_head),
                Err(Error::Conflict(msg)) => {
                    // Only the main branch moved (a new commit, perhaps a lock): read
                    // the holds again and retry; a moved ref of ours is a real conflict.
                    let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
                    let now = self.repo.resolve_refs(&names)?;
                    let ours_unmoved = updates
                        .iter()
                        .zip(&now)
                        .all(|(u, n)| u.expected.as_ref() == n.as_ref().map(|n| &n.target));
                    if !ours_unmoved {
                        return Err(Error::Conflict(msg));
                    }
                    tracing::info!("{msg}; reading the holds again");
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "`{}` kept moving; gave up after 5 attempts, re-run to try again",
            self.branch
        )))
    }

    /// After a move whose guard moved while it was in flight (GitHub): when a hold
    /// now stops it, move the refs back (compare-and-swap) and fail as held.
    fn undo_if_held(
        &self,
        updates: &[RefUpdate],
        message: &str,
        env: &Environment,
        services: &[&str],
        new_head: &Oid,
    ) -> Result<()> {
        // The main branch is gone (deleted meanwhile): nothing to read holds from.
        if new_head.is_empty() {
            return Ok(());
        }
        let Err(Error::Held(why)) = self.check_holds(new_head, services, env) else {
            return Ok(());
        };
        // A ref this move created is deleted again (all zeros, as `updateRefs` takes it).
        let back: Vec<RefUpdate> = updates
            .iter()
            .map(|u| RefUpdate {
                name: u.name.clone(),
                expected: Some(u.new.clone()),
                new: u.expected.clone().unwrap_or_else(|| DELETE.to_string()),
            })
            .collect();
        let names = updates
            .iter()
            .map(|u| {
                format!(
                    "`{}`",
                    u.name
                        .trim_start_matches("refs/tags/")
                        .trim_start_matches("refs/heads/")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let undone = self
            .repo
            .update_refs(&back, &format!("{message} (undone: a hold landed)"));
        Err(Error::Held(match undone {
            Ok(()) => {
                format!("{why} (the hold landed while this move was in flight: {names} moved and were moved back)")
            }
            Err(e) => format!(
                "{why} (the hold landed while this move was in flight: {names} moved and could not be moved back: {e}; roll back by hand)"
            ),
        }))
    }

    /// Commits `changes` straight onto the main branch, re-applying `edit` on a new
    /// head when another writer got there first (bounded), never overwriting.
    pub fn commit_direct(
        &self,
        message: &str,
        mut edit: impl FnMut(&Oid) -> Result<Vec<FileChange>>,
    ) -> Result<Option<(Oid, Oid)>> {
        for attempt in 0..5 {
            let head = self.main_head()?;
            let changes = edit(&head)?;
            if changes.is_empty() {
                return Ok(None);
            }
            if self.inputs.dry_run {
                return Ok(Some((String::new(), head)));
            }
            self.pause_before_write();
            let req = CommitRequest {
                branch: self.branch.clone(),
                expected_head: Some(head.clone()),
                parent: head.clone(),
                message: message.to_string(),
                changes,
            };
            match self.repo.commit(&req) {
                Ok(c) => return Ok(Some((c, head))),
                Err(Error::Conflict(msg)) if attempt < 4 => {
                    tracing::info!("{msg}; retrying on the new head");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!(
            "`{}` kept moving; gave up after 5 attempts, re-run to try again",
            self.branch
        )))
    }

    /// Puts `changes` on branch `head_branch` as one commit on top of the main head
    /// (resetting the branch when main moved) and opens or updates its pull request.
    pub fn propose(
        &self,
        head_branch: &str,
        main_head: &Oid,
        changes: Vec<FileChange>,
        message: &str,
        spec: PullRequestSpec,
    ) -> Result<Proposal> {
        crate::names::check_ref_name("branch", head_branch)?;
        let existing = self
            .repo
            .resolve_refs(&[format!("refs/heads/{head_branch}")])?
            .into_iter()
            .next()
            .flatten();
        // Up to date when the branch already holds exactly these files on top of main.
        let mut up_to_date = false;
        if let Some(e) = &existing
            && self.repo.is_ancestor(main_head, &e.commit)?
        {
            up_to_date = true;
            for c in &changes {
                if self.repo.read_file(&e.commit, &c.path)?.as_deref() != Some(c.content.as_slice()) {
                    up_to_date = false;
                }
            }
        }
        let mut commit = existing.as_ref().map(|e| e.commit.clone());
        // In a dry run `changed` says what would change.
        let changed = !up_to_date;
        if !up_to_date && !self.inputs.dry_run {
            let req = CommitRequest {
                branch: head_branch.to_string(),
                expected_head: existing.as_ref().map(|e| e.target.clone()),
                parent: main_head.clone(),
                message: message.to_string(),
                changes,
            };
            commit = Some(self.repo.commit(&req)?);
        }
        let pr = if self.inputs.dry_run {
            Default::default()
        } else {
            self.repo.pull_request(&spec)?
        };
        Ok(Proposal {
            commit,
            changed: changed || pr.created,
            pr,
            spec,
        })
    }

    /// Reads and edits the files of `locations` at `commit` to `version`.
    pub fn edit_locations(
        &self,
        commit: &Oid,
        locations: &[manifest::Location],
        version: &str,
    ) -> Result<(Vec<FileChange>, String)> {
        // (file, text as read, text after the edits): each file is read once.
        let mut files: Vec<(String, String, String)> = Vec::new();
        let mut old = None;
        for loc in locations {
            let i = match files.iter().position(|(f, ..)| *f == loc.file) {
                Some(i) => i,
                None => {
                    let text = self.read_text(commit, &loc.file)?;
                    files.push((loc.file.clone(), text.clone(), text));
                    files.len() - 1
                }
            };
            let edited = manifest::set(&files[i].2, loc, version)?;
            old.get_or_insert(edited.old_version);
            files[i].2 = edited.text;
        }
        let changes = files
            .into_iter()
            .filter(|(_, before, after)| before != after)
            .map(|(path, _, after)| FileChange {
                path,
                content: after.into_bytes(),
            })
            .collect();
        Ok((changes, old.unwrap_or_default()))
    }

    pub fn read_text(&self, commit: &Oid, path: &str) -> Result<String> {
        let bytes = self.repo.read_file(commit, path)?.ok_or_else(|| {
            Error::input(format!(
                "{path} not found at {} of {}; check the path in gitops-flow.yaml",
                short(commit),
                self.repo.describe()
            ))
        })?;
        String::from_utf8(bytes).map_err(|_| Error::input(format!("{path} is not UTF-8 text")))
    }

    /// `appVersion` of the service's chart at `commit` (tag and branch mode).
    pub fn chart_version(&self, service: &str, commit: &Oid) -> Result<String> {
        let chart = format!("{}/Chart.yaml", self.config.chart_dir(service)?);
        let text = self.read_text(commit, &chart)?;
        manifest::read(
            &text,
            &manifest::Location::new(chart, manifest::LocationKind::ChartAppVersion),
        )
    }

    /// The version an environment runs, read from the given locations at `commit`.
    pub fn read_version(&self, commit: &Oid, locations: &[manifest::Location]) -> Result<String> {
        let loc = locations
            .first()
            .ok_or_else(|| Error::input("no version location configured"))?;
        let text = self.read_text(commit, &loc.file)?;
        manifest::read(&text, loc)
    }
}

pub struct TagMove {
    pub service: String,
    pub tag: String,
    pub previous: Option<Oid>,
    pub new: Oid,
    pub changed: bool,
    pub rollback: Option<Oid>,
}

pub struct Proposal {
    pub commit: Option<Oid>,
    pub changed: bool,
    pub pr: crate::repo::PullRequest,
    pub spec: PullRequestSpec,
}

impl Proposal {
    pub fn fill(&self, out: &mut Outcome) {
        out.commit = self.commit.clone();
        out.branch = Some(self.spec.head.clone());
        out.pull_request_number = self.pr.number;
        out.pull_request_url = self.pr.url.clone();
    }

    pub fn summary_line(&self) -> String {
        match (&self.pr.url, self.pr.number) {
            (Some(u), Some(n)) => format!("pull request [#{n}]({u}) `{}` → `{}`", self.spec.head, self.spec.base),
            _ => format!(
                "pull request `{}` → `{}`: {} (reported, not opened by gitops-flow: no forge API on this backend)",
                self.spec.head, self.spec.base, self.spec.title
            ),
        }
    }
}

/// The new value of a ref update that deletes the ref (only the backends that can
/// move a guard's value in flight, GitHub's `updateRefs`, are ever asked to).
const DELETE: &str = "0000000000000000000000000000000000000000";

/// Short commit ids in messages: the one helper of the crate, under its old name here.
pub use crate::names::short_sha as short;

/// Runs one command.
pub fn run(ctx: &Ctx<'_>) -> Result<Outcome> {
    let moves = matches!(ctx.inputs.command.as_str(), "stage" | "deploy" | "promote" | "rollback");
    if moves || ctx.inputs.command == "status" {
        // Everything the gate and the deployments will need is checked before the first write.
        status::preflight(ctx)?;
    }
    let result = match ctx.inputs.command.as_str() {
        "stage" => stage::run(ctx),
        "deploy" => deploy::run(ctx),
        "promote" => promote::run(ctx),
        "rollback" => rollback::run(ctx),
        "status" => status::run(ctx),
        "preview" => preview::run(ctx),
        "lock" => lock::run(ctx, true),
        "unlock" => lock::run(ctx, false),
        "report" => report::run(ctx),
        other => Err(Error::input(format!("unknown command `{other}`"))),
    };
    let mut out = match result {
        Ok(o) => o,
        Err(e) => return failed_after_writes(ctx, e),
    };
    if moves
        && !out.held
        && let Err(e) = status::after_move(ctx, &mut out)
    {
        if ctx.repo.written().is_empty() {
            return Err(e);
        }
        out.fail(&e.to_string());
    }
    Ok(out)
}

/// A command failed: with nothing written that is its error as it is; after a write
/// it is a failure of the operation (exit 1) whose outputs and summary say exactly
/// what was written.
fn failed_after_writes(ctx: &Ctx<'_>, e: Error) -> Result<Outcome> {
    let writes = ctx.repo.written();
    if writes.is_empty() {
        return Err(e);
    }
    let mut out = Outcome {
        changed: true,
        held: matches!(e, Error::Held(_)),
        service: ctx.inputs.service.clone(),
        environment: ctx.inputs.environment.clone().or(ctx.inputs.to.clone()),
        version: ctx.inputs.version.clone(),
        ..Outcome::default()
    };
    let mut done = Vec::new();
    for w in &writes {
        match w {
            Write::Refs(updates) => {
                for u in updates {
                    let name = u
                        .name
                        .trim_start_matches("refs/tags/")
                        .trim_start_matches("refs/heads/");
                    done.push(format!("`{name}` moved to {}", short(&u.new)));
                    if let Some(tag) = u.name.strip_prefix("refs/tags/") {
                        if out.tag.is_none() {
                            out.tag = Some(tag.to_string());
                            out.revision = Some(u.new.clone());
                            out.previous_revision = u.expected.clone();
                        }
                    } else if let Some(b) = u.name.strip_prefix("refs/heads/") {
                        out.branch = Some(b.to_string());
                    }
                }
            }
            Write::Commit { branch, commit } => {
                done.push(format!("committed {} to `{branch}`", short(commit)));
                out.commit = Some(commit.clone());
                out.branch = Some(branch.clone());
                if *branch == ctx.branch {
                    out.revision = Some(commit.clone());
                }
            }
            Write::PullRequest { number, url } => {
                done.push(format!(
                    "pull request {}",
                    match (number, url) {
                        (Some(n), Some(u)) => format!("[#{n}]({u})"),
                        (Some(n), None) => format!("#{n}"),
                        _ => "(reported)".into(),
                    }
                ));
                out.pull_request_number = *number;
                out.pull_request_url = url.clone();
            }
            Write::Deployment { id } => done.push(format!("deployment {id} recorded")),
        }
    }
    out.summary = format!(
        "### gitops-flow {}: failed after writing\n\n{}\n",
        ctx.inputs.command,
        done.iter().map(|d| format!("- {d}\n")).collect::<String>()
    );
    out.fail(&format!("{e} (already written: {})", done.join(", ")));
    Ok(out)
}

/// What a command will read, known from the inputs alone, so that the GitHub
/// backend reads it (and the default branch) in one query: the one place that
/// derives the reads of every command.
pub fn read_plan(inputs: &Inputs, config: &Config) -> ReadPlan {
    if inputs.command == "preview" {
        // Runs in the application repository: no gitops-flow refs to read.
        return ReadPlan::default();
    }
    let main = inputs
        .branch
        .as_ref()
        .or(config.branch.as_ref())
        .map(|b| format!("refs/heads/{b}"));
    let Some(service) = &inputs.service else {
        return ReadPlan {
            refs: main.iter().cloned().collect(),
            main,
            ..ReadPlan::default()
        };
    };
    if crate::names::check_ref_component("service", service).is_err() {
        return ReadPlan {
            refs: main.iter().cloned().collect(),
            main,
            ..ReadPlan::default()
        };
    }
    let envs: Vec<&Environment> = config.environments.iter().collect();
    plan_for(config, service, &envs, main, Some(inputs.command.as_str()))
}

/// The reads of a command on `service` in `envs`: the main branch; per tag
/// environment its tag and rollback tag, the chart at their commits and whether they
/// are on the main branch; per file environment its pull-request branch; per branch
/// environment its branch and its version files there.
pub fn plan_for(
    config: &Config,
    service: &str,
    envs: &[&Environment],
    main: Option<String>,
    command: Option<&str>,
) -> ReadPlan {
    let mut plan = ReadPlan {
        refs: main.iter().cloned().collect(),
        main,
        ..ReadPlan::default()
    };
    let add_file = |plan: &mut ReadPlan, f: String| {
        if !plan.files.contains(&f) {
            plan.files.push(f);
        }
    };
    for env in envs {
        match env.track {
            Track::Tag => {
                if let (Ok(t), Ok(r)) = (config.tag(env, service), config.rollback_tag(env, service)) {
                    for name in [format!("refs/tags/{t}"), format!("refs/tags/{r}")] {
                        plan.refs.push(name.clone());
                        plan.file_refs.push(name.clone());
                        plan.on_main.push(name);
                    }
                    if let Ok(chart) = config.chart_dir(service) {
                        add_file(&mut plan, format!("{chart}/Chart.yaml"));
                    }
                }
            }
            Track::File => plan.refs.push(format!("refs/heads/gitops-flow/{}/{service}", env.name)),
            Track::Branch => {
                if let Some(b) = &env.branch {
                    plan.refs.push(format!("refs/heads/{b}"));
                    plan.file_refs.push(format!("refs/heads/{b}"));
                    for l in config.locations(env, service).unwrap_or_default() {
                        add_file(&mut plan, l.file);
                    }
                }
            }
        }
    }
    if command == Some("stage") {
        plan.refs.push(format!("refs/heads/gitops-flow/stage/{service}"));
    }
    let mut seen = std::collections::HashSet::new();
    plan.refs.retain(|r| seen.insert(r.clone()));
    plan
}

/// The next environment after `from`, if any.
pub fn next_env<'c>(config: &'c Config, from: &Environment) -> Option<&'c Environment> {
    let i = config.environments.iter().position(|e| e.name == from.name)?;
    config.environments.get(i + 1)
}

pub fn is_tag(env: &Environment) -> bool {
    env.track == Track::Tag
}
