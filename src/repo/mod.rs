//! The seams: [`Git`] (refs, objects, history, commits, atomic ref updates) and
//! [`Forge`] (proposals; through [`ForgeApi`] the merged pull request of a commit,
//! statuses and check runs, deployments), and their backends:
//!
//! * `local` — gix on a checkout: a [`Git`]; its forge is [`NoForge`].
//! * `github` — the GitHub API (gix reads of the workspace where it has the objects):
//!   a [`Git`] and a [`Forge`] with an API.
//! * `git` — the git CLI: a [`Git`], and a [`Forge`] that opens GitLab merge requests
//!   with push options (or, `forge: none`, reports what to open).

pub mod git;
pub mod git_errors;
pub mod github;
pub mod local;
mod local_history;

use crate::error::Result;

/// A 40-hex-digit git object id.
pub type Oid = String;

/// What a command will read, known before it starts: refs, files at those refs'
/// commits, and whether those commits are on the main branch. The GitHub backend
/// answers all of it with one GraphQL query; later reads are served from memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPlan {
    /// Full ref names.
    pub refs: Vec<String>,
    /// Files to read at the commit of each ref in `file_refs`.
    pub files: Vec<String>,
    /// The refs (a subset of `refs`) whose commits' `files` are read.
    pub file_refs: Vec<String>,
    /// Refs (a subset of `refs`) to check for being on the main branch.
    pub on_main: Vec<String>,
    /// The main branch's full ref name, when known (else the default branch).
    pub main: Option<String>,
    /// The commit-status gate will look at commits this command reads (`status`):
    /// the GitHub backend reads their statuses and check runs along with the history.
    pub checks: bool,
}

impl ReadPlan {
    pub fn refs(names: &[String]) -> ReadPlan {
        ReadPlan {
            refs: names.to_vec(),
            ..ReadPlan::default()
        }
    }
}

/// Where a ref points: its own target (for compare-and-swap) and the commit it peels to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTarget {
    pub target: Oid,
    pub commit: Oid,
}

/// One ref move with the value it must have now (`None`: must not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// Full name, `refs/tags/payments-staging`.
    pub name: String,
    pub expected: Option<Oid>,
    pub new: Oid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub content: Vec<u8>,
}

/// Set `branch` to a new commit on top of `parent` with `changes`, provided the
/// branch is at `expected_head` now (`None`: the branch must not exist yet).
/// When `parent` differs from `expected_head` the branch is reset onto `parent`
/// (only ever done for gitops-flow's own pull-request branches).
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub branch: String,
    pub expected_head: Option<Oid>,
    pub parent: Oid,
    pub message: String,
    pub changes: Vec<FileChange>,
}

#[derive(Debug, Clone)]
pub struct PullRequestSpec {
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub auto_merge: bool,
}

/// What became of a proposed change on the forge: the difference between a forge
/// that opens pull requests and one that cannot is in the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// Opened or updated on the forge (`created`: newly opened by this run).
    Opened { number: u64, url: String, created: bool },
    /// Not opened by gitops-flow (no forge API, a dry run): what to open.
    Reported { title: String, head: String, base: String },
}

impl Proposal {
    /// The pull request `spec` describes, reported rather than opened.
    pub fn reported(spec: &PullRequestSpec) -> Proposal {
        Proposal::Reported {
            title: spec.title.clone(),
            head: spec.head.clone(),
            base: spec.base.clone(),
        }
    }

    pub fn number(&self) -> Option<u64> {
        match self {
            Proposal::Opened { number, .. } => Some(*number),
            Proposal::Reported { .. } => None,
        }
    }

    pub fn url(&self) -> Option<&str> {
        match self {
            Proposal::Opened { url, .. } => Some(url),
            Proposal::Reported { .. } => None,
        }
    }

    /// Newly opened by this run.
    pub fn created(&self) -> bool {
        matches!(self, Proposal::Opened { created: true, .. })
    }
}

/// A pull request found for a commit (for `deploy` and the promotion chain).
#[derive(Debug, Clone)]
pub struct PullRequestInfo {
    pub number: u64,
    pub body: String,
}

/// One first-parent commit that changed a file, with the file's content after it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub commit: Oid,
    pub message: String,
    pub content: Option<Vec<u8>>,
}

/// The state of one commit status context or check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Pending,
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub state: CheckState,
}

/// One look of the commit-status gate: the statuses and check runs of a commit and,
/// read in the same look, those of the main branch's head when that is a later
/// commit containing it (Flux reports on the newest commit only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitChecks {
    pub checks: Vec<Check>,
    /// The main head and its checks; `None` when the head is the commit itself or
    /// does not contain it.
    pub head: Option<(Oid, Vec<Check>)>,
}

/// A GitHub deployment to record.
#[derive(Debug, Clone)]
pub struct DeploymentSpec {
    pub sha: Oid,
    pub environment: String,
    pub description: String,
    pub payload: serde_json::Value,
    pub production: bool,
    /// GitHub's `transient_environment`: the environment goes away (previews).
    pub transient: bool,
}

/// A pull request as the API reports it now (`preview` checks it before writing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestState {
    pub number: u64,
    pub head_sha: Oid,
    pub open: bool,
    pub labels: Vec<String>,
}

/// A recorded deployment and the state of its latest status (`None`: no status yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub id: u64,
    pub sha: Oid,
    pub state: Option<String>,
}

impl DeploymentInfo {
    /// Whether GitHub shows it as (about to be) live: no status yet, or its latest
    /// is `success`, `in_progress`, `queued` or `pending`.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_deref(),
            None | Some("success" | "in_progress" | "queued" | "pending")
        )
    }
}

/// One deployment status to write.
#[derive(Debug, Clone)]
pub struct DeploymentStatusSpec<'a> {
    pub state: &'a str,
    /// At most 140 characters (GitHub's limit); longer text is cut.
    pub description: &'a str,
    pub environment_url: Option<&'a str>,
    pub log_url: Option<&'a str>,
    /// GitHub's `auto_inactive` (only ever acts on non-transient environments).
    pub auto_inactive: bool,
}

/// One write that reached the repository (or the forge), in the order made: what a
/// failed run reports as done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Refs moved together (full names and their new values).
    Refs(Vec<RefUpdate>),
    /// A commit made on a branch (short name).
    Commit {
        branch: String,
        commit: Oid,
    },
    PullRequest {
        number: Option<u64>,
        url: Option<String>,
    },
    Deployment {
        id: u64,
    },
}

/// The writes of one run, kept by each backend.
#[derive(Debug, Default)]
pub struct Journal(std::cell::RefCell<Vec<Write>>);

impl Journal {
    pub fn record(&self, w: Write) {
        self.0.borrow_mut().push(w);
    }

    pub fn entries(&self) -> Vec<Write> {
        self.0.borrow().clone()
    }
}

/// The git side of a repository: refs, objects, history, commits and atomic ref
/// updates. Implemented by the local gix backend, by the GitHub API (gix reads of the
/// workspace where it has the objects) and by the git CLI backend.
pub trait Git {
    /// `owner/name` or the local path, for messages.
    fn describe(&self) -> String;
    /// A web URL of the repository for summary links, when there is one.
    fn web_url(&self) -> Option<String> {
        None
    }
    fn default_branch(&self) -> Result<String>;
    /// Every write this run made so far (to the repository and through its forge),
    /// oldest first.
    fn written(&self) -> Vec<Write>;
    /// Reads everything in `plan` at once so later lookups are served from memory
    /// (one round trip on the GitHub backend; nothing to do locally).
    fn prefetch(&self, _plan: &ReadPlan) -> Result<()> {
        Ok(())
    }
    /// Looks up several full ref names at once; `None` for a ref that does not exist.
    fn resolve_refs(&self, names: &[String]) -> Result<Vec<Option<RefTarget>>>;
    /// Where one ref (full name) points, `None` when it does not exist.
    fn resolve_ref(&self, name: &str) -> Result<Option<RefTarget>> {
        Ok(self.resolve_refs(&[name.to_string()])?.into_iter().next().flatten())
    }
    /// A commit id, abbreviated id or ref name to a full commit id.
    fn resolve_revision(&self, rev: &str) -> Result<Option<Oid>>;
    /// The first parent of a commit (`None` for a root commit).
    fn first_parent(&self, commit: &Oid) -> Result<Option<Oid>>;
    fn read_file(&self, commit: &Oid, path: &str) -> Result<Option<Vec<u8>>>;
    /// Reads several files at several commits at once (batched on the GitHub
    /// backend, 250 a request); later `read_file`s of them are served from memory.
    fn read_files(&self, reads: &[(Oid, String)]) -> Result<Vec<Option<Vec<u8>>>> {
        reads.iter().map(|(c, p)| self.read_file(c, p)).collect()
    }
    /// Names of the entries of a directory at a commit (empty when absent).
    fn list_dir(&self, commit: &Oid, path: &str) -> Result<Vec<String>>;
    /// All refs under a prefix such as `refs/tags/`.
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, RefTarget)>>;
    fn is_ancestor(&self, ancestor: &Oid, descendant: &Oid) -> Result<bool>;
    /// Paths changed by a commit relative to its first parent.
    fn changed_paths(&self, commit: &Oid) -> Result<Vec<String>>;
    /// First-parent history of `path` from `head`, newest first: at most `limit`
    /// changes, read lazily — it stops as soon as `enough` says so for an entry (the
    /// GitHub backend then reads no further page).
    fn file_history(
        &self,
        head: &Oid,
        path: &str,
        limit: usize,
        enough: &mut dyn FnMut(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>>;
    /// [`Git::file_history`] of several paths from the same head, `enough` told which
    /// (by index) each entry is of; the GitHub backend walks them together, one
    /// query a page for many paths.
    fn file_histories(
        &self,
        head: &Oid,
        paths: &[String],
        limit: usize,
        enough: &mut dyn FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<Vec<Vec<HistoryEntry>>> {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| self.file_history(head, p, limit, &mut |h| enough(i, h)))
            .collect()
    }
    /// Moves several refs at once, all or nothing; `Error::Conflict` when one is not
    /// at its expected value.
    fn update_refs(&self, updates: &[RefUpdate], message: &str) -> Result<()>;
    /// `update_refs`, provided the ref `guard` (never one of `updates`) still points
    /// at `guard_value` — the main branch whose holds were read. A backend that can
    /// check it in the same atomic transaction does so and answers `None` (or
    /// `Error::Conflict` when it moved). Default: the refs are moved, then the guard
    /// is read again (one request): `Some(value)` when it is elsewhere by then, for
    /// the caller to look at what landed.
    fn update_refs_guarded(
        &self,
        updates: &[RefUpdate],
        message: &str,
        guard: &str,
        guard_value: &Oid,
    ) -> Result<Option<Oid>> {
        update_then_reread(self, updates, message, guard, guard_value)
    }
    /// A hold was just recorded at `commit` on the main branch: moves what
    /// `update_refs_guarded` checks, if the backend has such a thing (GitHub).
    fn holds_recorded(&self, _commit: &Oid) -> Result<()> {
        Ok(())
    }
    /// The identity this backend writes as (the git committer), for who took a hold.
    fn actor(&self) -> Option<String> {
        None
    }
    /// Makes a commit; `Error::Conflict` when the branch moved.
    fn commit(&self, req: &CommitRequest) -> Result<Oid>;
    /// Forgets cached reads, so that polling sees new state.
    fn forget(&self) {}
}

/// The forge side: where a change is proposed (a pull or merge request), and, where
/// the forge has an API gitops-flow speaks, what it records about commits.
pub trait Forge {
    /// Opens a pull request or updates the open one from the same head — or says
    /// what to open ([`Proposal::Reported`]) where this forge cannot.
    fn propose(&self, spec: &PullRequestSpec) -> Result<Proposal>;
    /// The forge's API: `None` where there is none (the local backend, plain git
    /// hosts, GitLab through push options).
    fn api(&self) -> Option<&dyn ForgeApi>;
    /// Things worth a `::notice::` that happened along the way (auto-merge not
    /// enabled, and why; a merge request to open by hand), each returned once.
    fn take_notices(&self) -> Vec<String>;
}

/// What a forge with an API answers and records: the GitHub backend.
pub trait ForgeApi {
    /// The merged pull request that produced a commit on the main branch, if any.
    fn merged_pull_request(&self, sha: &Oid) -> Result<Option<PullRequestInfo>>;
    /// Commit statuses (latest per context) and check runs of a commit, and of the
    /// head of `main_ref` when it is a later commit containing it (see
    /// [`CommitChecks`]), taking at most `within`.
    fn commit_checks(&self, sha: &Oid, main_ref: &str, within: std::time::Duration) -> Result<CommitChecks>;
    /// Records a deployment.
    fn create_deployment(&self, d: &DeploymentSpec) -> Result<u64>;
    /// The pull request `number` as it is now.
    fn pull_request_state(&self, number: u64) -> Result<PullRequestState>;
    /// The deployments of `environment`, newest first, each with its latest state.
    fn list_deployments(&self, environment: &str) -> Result<Vec<DeploymentInfo>>;
    /// Writes one status of a deployment.
    fn set_deployment_status(&self, id: u64, status: &DeploymentStatusSpec<'_>) -> Result<()>;
}

/// No forge: the local backend. Proposals are reported, never opened.
#[derive(Debug, Default)]
pub struct NoForge;

impl Forge for NoForge {
    fn propose(&self, spec: &PullRequestSpec) -> Result<Proposal> {
        tracing::info!(head = %spec.head, base = %spec.base, "pull request (not opened on the local backend): {}", spec.title);
        Ok(Proposal::reported(spec))
    }

    fn api(&self) -> Option<&dyn ForgeApi> {
        None
    }

    fn take_notices(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `update_refs_guarded` without an atomic guard: the refs are moved, then the guard
/// is read again (one request).
pub(crate) fn update_then_reread<R: Git + ?Sized>(
    repo: &R,
    updates: &[RefUpdate],
    message: &str,
    guard: &str,
    guard_value: &Oid,
) -> Result<Option<Oid>> {
    repo.update_refs(updates, message)?;
    repo.forget();
    let after = repo.resolve_ref(guard)?;
    Ok(match after {
        Some(a) if a.target == *guard_value => None,
        Some(a) => Some(a.commit),
        None => Some(String::new()),
    })
}

/// After a failed ref write: `Error::Conflict` naming the refs when any of them is no
/// longer at its expected value (`now`, read again after the failure), else `None`.
pub(crate) fn conflict(
    updates: &[RefUpdate],
    now: &[Option<RefTarget>],
    cause: &dyn std::fmt::Display,
    what: &str,
) -> Option<crate::error::Error> {
    let moved = updates
        .iter()
        .enumerate()
        .any(|(i, u)| u.expected.as_deref() != now.get(i).and_then(|n| n.as_ref()).map(|n| n.target.as_str()));
    moved.then(|| {
        let names: Vec<String> = updates
            .iter()
            .map(|u| {
                format!(
                    "`{}`",
                    u.name
                        .trim_start_matches("refs/tags/")
                        .trim_start_matches("refs/heads/")
                )
            })
            .collect();
        crate::error::Error::Conflict(crate::error::Conflict {
            message: format!(
                "{what}{} changed concurrently ({cause}); nothing was overwritten, re-run to act on the new state",
                names.join(", ")
            ),
            refs: updates
                .iter()
                .enumerate()
                .map(|(i, u)| crate::error::RefState {
                    name: u.name.clone(),
                    expected: u.expected.clone(),
                    now: now.get(i).cloned().flatten().map(|n| n.target),
                })
                .collect(),
        })
    })
}

/// Git trailers gitops-flow writes into its commits and reads back.
pub fn trailers(command: &str, service: &str, env: Option<&str>, version: Option<&str>) -> String {
    let mut t = format!("Gitops-Flow-Command: {command}\nGitops-Flow-Service: {service}\n");
    if let Some(e) = env {
        t.push_str(&format!("Gitops-Flow-Environment: {e}\n"));
    }
    if let Some(v) = version {
        t.push_str(&format!("Gitops-Flow-Version: {v}\n"));
    }
    t
}

/// Reads a trailer value from a commit message.
pub fn trailer<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
        .map(str::trim)
}
