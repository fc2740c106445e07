//! The GitHub backend: reads from the workspace checkout with gix where the
//! objects are there (actions/checkout is shallow and tag-less by default) and
//! through the API where they are not; every write goes through the API —
//! GraphQL `createCommitOnBranch` (GitHub signs the commit; `expectedHeadOid` is
//! the compare-and-swap), GraphQL `updateRefs` (atomic, `beforeOid`), REST for
//! pull requests.

mod answers;
mod checks;
mod client;
mod forge;
mod history;
pub mod retry;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use base64::Engine;
use http::Method;
use serde_json::{Value, json};

pub use client::{Api, Sent};
pub use retry::RetryPolicy;

use super::local::LocalRepo;
use super::{
    Check, CommitRequest, Git, HistoryEntry, Journal, Oid, PullRequestInfo, ReadPlan, RefTarget, RefUpdate, Write,
};
use crate::error::{Error, Result};
use crate::holds::HOLDS_GUARD_REF;
use crate::names::short_sha;

const ZERO: &str = "0000000000000000000000000000000000000000";

pub struct GitHubRepo {
    api: Api,
    owner: String,
    name: String,
    web: String,
    local: Option<LocalRepo>,
    repo_id: RefCell<Option<String>>,
    default_branch: RefCell<Option<String>>,
    /// Refs read in this run; cleared after a failed write, updated after a good one.
    refs: RefCell<HashMap<String, Option<RefTarget>>>,
    /// Files read in this run: (commit, path) → content (`None`: no such file).
    files: RefCell<FileCache>,
    /// Ancestry answered in this run: (ancestor, descendant) → is an ancestor.
    ancestry: RefCell<HashMap<(Oid, Oid), bool>>,
    /// Branches this run created.
    new_branches: RefCell<std::collections::HashSet<String>>,
    /// (branch, its commit, the hold guard ref's commit) as read together, the guard
    /// first, in the last refs query (see `update_refs_guarded`).
    hold_guard: RefCell<Vec<(String, Oid, Option<Oid>)>>,
    journal: Journal,
    /// What the repository allows for merging (read with the repository id).
    merge: RefCell<Option<MergeSettings>>,
    notices: RefCell<Vec<String>>,
    /// Read statuses and check runs with the history (`ReadPlan::checks`).
    with_checks: Cell<bool>,
    /// Statuses and check runs read with the history, for the gate's first look.
    checks: RefCell<HashMap<Oid, Vec<Check>>>,
    /// The merged pull request of each commit the history read went through.
    merged_prs: RefCell<HashMap<Oid, Option<PullRequestInfo>>>,
}

/// The repository's merge settings, as GraphQL `Repository` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeSettings {
    pub auto_merge_allowed: bool,
    pub merge_commit_allowed: bool,
    pub squash_merge_allowed: bool,
    pub rebase_merge_allowed: bool,
}

impl MergeSettings {
    /// The merge method for auto-merge: squash (one commit per promotion) when
    /// allowed, else a merge commit, else rebase.
    pub fn method(&self) -> Option<&'static str> {
        if self.squash_merge_allowed {
            Some("SQUASH")
        } else if self.merge_commit_allowed {
            Some("MERGE")
        } else if self.rebase_merge_allowed {
            Some("REBASE")
        } else {
            None
        }
    }
}

/// Percent-encodes a path segment for a URL.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Encodes a repository path, keeping its slashes.
fn enc_path(p: &str) -> String {
    p.split('/').map(enc).collect::<Vec<_>>().join("/")
}

/// Deserialises a whole API answer into its typed shape; a missing field is an error
/// naming it and where it sits ([`answers::answer`]).
fn typed<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    answers::answer(v, what, "")
}

/// Files read in a run, by (commit, path); `None`: no such file at that commit.
type FileCache = HashMap<(Oid, String), Option<Vec<u8>>>;

const REFS_QUERY_HEAD: &str = "query($owner: String!, $name: String!";

/// What the GitHub backend needs, resolved from inputs and the runner's variables at
/// the edge (`lib.rs` `github_settings`); the backend knows nothing of the CLI.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `owner/name`, validated.
    pub repository: String,
    pub token: crate::secret::Secret,
    pub api_url: String,
    pub graphql_url: String,
    /// The web server, for links (`https://github.com`).
    pub server_url: String,
    pub retry: retry::RetryPolicy,
    /// The workspace checkout, read instead of the API where it has the objects.
    pub checkout: std::path::PathBuf,
}

impl GitHubRepo {
    pub fn open(settings: GitHubSettings, now: i64) -> Result<GitHubRepo> {
        let GitHubSettings {
            repository,
            token,
            api_url,
            graphql_url,
            server_url: server,
            retry: policy,
            checkout,
        } = settings;
        let (owner, name) = repository
            .split_once('/')
            .map(|(o, n)| (o.to_string(), n.to_string()))
            .expect("validated owner/name");
        let api = Api::new(&api_url, &graphql_url, &token, policy)?;
        // The workspace checkout is optional: without it every read goes to the API.
        let local = LocalRepo::open(&checkout, now).ok();
        Ok(GitHubRepo {
            api,
            web: format!("{}/{owner}/{name}", server.trim_end_matches('/')),
            owner,
            name,
            local,
            repo_id: RefCell::new(None),
            default_branch: RefCell::new(None),
            refs: RefCell::new(HashMap::new()),
            files: RefCell::new(HashMap::new()),
            ancestry: RefCell::new(HashMap::new()),
            new_branches: RefCell::new(Default::default()),
            hold_guard: RefCell::new(Vec::new()),
            journal: Journal::default(),
            merge: RefCell::new(None),
            notices: RefCell::new(Vec::new()),
            with_checks: Cell::new(false),
            checks: RefCell::new(HashMap::new()),
            merged_prs: RefCell::new(HashMap::new()),
        })
    }

    /// `GET /contents/{path}?ref=`: the file or directory listing, `None` when absent.
    fn contents(&self, commit: &Oid, path: &str) -> Result<Option<Value>> {
        let r = self.api.rest(
            Method::GET,
            &format!("{}/contents/{}?ref={commit}", self.repo_path(), enc_path(path)),
            None,
        )?;
        match r.status.as_u16() {
            200 => Ok(Some(r.body)),
            404 => Ok(None),
            _ => Err(client::api_error(&Method::GET, "contents", &r)),
        }
    }

    fn repo_path(&self) -> String {
        format!("/repos/{}/{}", enc(&self.owner), enc(&self.name))
    }

    fn local_has(&self, oid: &str) -> Option<&LocalRepo> {
        let l = self.local.as_ref()?;
        let id = gix::ObjectId::from_hex(oid.as_bytes()).ok()?;
        l.gix().has_object(id).then_some(l)
    }

    /// Refs only (see [`GitHubRepo::fetch`]).
    fn fetch_refs(&self, names: &[String]) -> Result<()> {
        self.fetch(&ReadPlan::refs(names))
    }

    /// One GraphQL query for the repository id, merge settings, default branch and
    /// every ref of `plan` not cached yet, with the plan's files at those refs'
    /// commits (`Commit.file(path:)`) and whether those commits are on the main
    /// branch (`Ref.compare(headRef:)` on the main branch).
    fn fetch(&self, plan: &ReadPlan) -> Result<()> {
        let missing: Vec<&String> = {
            let cache = self.refs.borrow();
            plan.refs.iter().filter(|n| !cache.contains_key(*n)).collect()
        };
        if missing.is_empty() && self.repo_id.borrow().is_some() {
            return Ok(());
        }
        let mut decl = String::from(REFS_QUERY_HEAD);
        let mut body = String::new();
        let mut vars = json!({ "owner": self.owner, "name": self.name });
        let mut files_sel = String::new();
        for (j, f) in plan.files.iter().enumerate() {
            decl.push_str(&format!(", $p{j}: String!"));
            vars[format!("p{j}")] = json!(f);
            files_sel.push_str(&format!(
                " f{j}: file(path: $p{j}) {{ object {{ ... on Blob {{ oid text isTruncated isBinary }} }} }}"
            ));
        }
        let mut compare_sel = String::new();
        for (i, n) in missing.iter().enumerate() {
            decl.push_str(&format!(", $r{i}: String!"));
            vars[format!("r{i}")] = json!(n);
            let files = if plan.file_refs.contains(n) && !files_sel.is_empty() {
                format!(" ... on Commit {{{files_sel} }}")
            } else {
                String::new()
            };
            body.push_str(&format!(
                " r{i}: ref(qualifiedName: $r{i}) {{ target {{ oid{files} ... on Tag {{ target {{ oid{files} }} }} }} }}"
            ));
            if plan.on_main.contains(n) {
                compare_sel.push_str(&format!(" c{i}: compare(headRef: $r{i}) {{ status }}"));
            }
        }
        let main_sel = match &plan.main {
            Some(m) if !compare_sel.is_empty() => {
                decl.push_str(", $main: String!");
                vars["main"] = json!(m);
                format!(" main: ref(qualifiedName: $main) {{ target {{ oid }}{compare_sel} }}")
            }
            _ => String::new(),
        };
        let default_compare = if plan.main.is_none() { compare_sel.as_str() } else { "" };
        // The hold guard is read before the main branch (GitHub resolves a query's
        // fields in order): see `update_refs_guarded`.
        let query = format!(
            "{decl}) {{ repository(owner: $owner, name: $name) {{ id autoMergeAllowed mergeCommitAllowed squashMergeAllowed rebaseMergeAllowed hold: ref(qualifiedName: \"{HOLDS_GUARD_REF}\") {{ target {{ oid }} }} defaultBranchRef {{ name target {{ oid }}{default_compare} }}{main_sel}{body} }} }}"
        );
        // A comparison GitHub cannot make comes back null with an error: `is_ancestor`
        // then asks the REST compare API instead of failing the whole read.
        let is_compare = |seg: &str| {
            seg.strip_prefix('c')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        let data = self.api.graphql_tolerating(&query, vars, &is_compare)?;
        const REQUEST: &str = "the GraphQL refs query";
        let data: answers::RepositoryData<serde_json::Map<String, Value>> = answers::answer(data, REQUEST, "")?;
        let mut repo = data.repository.ok_or_else(|| self.not_found())?;
        let head: answers::RefsRepository = {
            let fields = [
                "id",
                "autoMergeAllowed",
                "mergeCommitAllowed",
                "squashMergeAllowed",
                "rebaseMergeAllowed",
                "defaultBranchRef",
            ];
            let picked: serde_json::Map<String, Value> = fields.iter().filter_map(|k| repo.remove_entry(*k)).collect();
            answers::answer(Value::Object(picked), REQUEST, "repository")?
        };
        *self.repo_id.borrow_mut() = Some(head.id);
        *self.merge.borrow_mut() = Some(head.merge);
        let mut default_ref = match head.default_branch_ref {
            Some(mut r) => {
                let name: String = answers::take(&mut r.rest, "name", REQUEST, "repository.defaultBranchRef")?;
                Some((name, r))
            }
            None => None,
        };
        *self.default_branch.borrow_mut() = default_ref.as_ref().map(|(n, _)| n.clone());
        let mut cache = self.refs.borrow_mut();
        // The hold guard as it was before the main branch was read, for the branches
        // read in this same query (see `update_refs_guarded`).
        let hold: Option<answers::GqlRef> = answers::take(&mut repo, "hold", REQUEST, "repository")?;
        let hold = hold.and_then(|h| h.target).map(|t| t.oid);
        let mut guards = self.hold_guard.borrow_mut();
        guards.clear();
        if let Some((b, r)) = &default_ref
            && let Some(t) = &r.target
        {
            guards.push((format!("refs/heads/{b}"), t.oid.clone(), hold.clone()));
            cache.entry(format!("refs/heads/{b}")).or_insert_with(|| {
                Some(RefTarget {
                    target: t.oid.clone(),
                    commit: t.oid.clone(),
                })
            });
        }
        // The main branch's ref, that the comparisons were made against (`None`
        // when none were asked for), with its commit.
        let (mut base, base_at) = if !main_sel.is_empty() {
            let main: Option<answers::GqlRef> = answers::take(&mut repo, "main", REQUEST, "repository")?;
            (main, "repository.main")
        } else if !default_compare.is_empty() {
            (default_ref.take().map(|(_, r)| r), "repository.defaultBranchRef")
        } else {
            (None, "")
        };
        let base_commit = base.as_ref().and_then(|b| b.target.as_ref()).map(|t| t.oid.clone());
        if let (Some(m), Some(bc)) = (&plan.main, &base_commit)
            && !main_sel.is_empty()
        {
            guards.push((m.clone(), bc.clone(), hold.clone()));
        }
        drop(guards);
        let mut files = self.files.borrow_mut();
        let mut ancestry = self.ancestry.borrow_mut();
        for (i, n) in missing.iter().enumerate() {
            let at = format!("repository.r{i}");
            let r: Option<answers::GqlRef> = answers::take(&mut repo, &format!("r{i}"), REQUEST, "repository")?;
            let Some(target) = r.and_then(|r| r.target) else {
                cache.insert((*n).clone(), None);
                continue;
            };
            let commit = target.target.as_ref().map_or(&target.oid, |c| &c.oid).clone();
            let t = RefTarget {
                target: target.oid.clone(),
                commit,
            };
            // The files sit on the commit: directly under `target`, or under a tag's target
            // (none there when the ref does not point at a commit).
            let (mut commit_obj, obj_at) = match target.target {
                Some(inner) => (*inner, format!("{at}.target.target")),
                None => (target, format!("{at}.target")),
            };
            if plan.file_refs.contains(n) && !commit_obj.files.is_empty() {
                for (j, f) in plan.files.iter().enumerate() {
                    let entry: Option<answers::FileEntry> =
                        answers::take(&mut commit_obj.files, &format!("f{j}"), REQUEST, &obj_at)?;
                    match entry {
                        // No such file at that commit.
                        None => {
                            files.insert((t.commit.clone(), f.clone()), None);
                        }
                        Some(e) => {
                            // Truncated or binary: read through the REST blob API when needed.
                            let blob = answers::blob_of(e.object, REQUEST, &format!("{obj_at}.f{j}.object"))?;
                            if let Some(text) = blob.and_then(answers::Blob::text) {
                                files.insert((t.commit.clone(), f.clone()), Some(text));
                            }
                        }
                    }
                }
            }
            if let (Some(base), Some(bc)) = (base.as_mut(), &base_commit)
                && plan.on_main.contains(n)
            {
                let cmp: Option<answers::Comparison> =
                    answers::take(&mut base.rest, &format!("c{i}"), REQUEST, base_at)?;
                if let Some(cmp) = cmp {
                    // base = main, head = this ref: BEHIND or IDENTICAL means it is on main.
                    ancestry.insert(
                        (t.commit.clone(), bc.clone()),
                        matches!(cmp.status.as_str(), "BEHIND" | "IDENTICAL"),
                    );
                }
            }
            cache.insert((*n).clone(), Some(t));
        }
        Ok(())
    }

    /// A null `repository` in a GraphQL answer.
    fn not_found(&self) -> Error {
        Error::input(format!(
            "repository {}/{} not found, or the token cannot read it",
            self.owner, self.name
        ))
    }

    fn repository_id(&self) -> Result<String> {
        if self.repo_id.borrow().is_none() {
            self.fetch_refs(&[])?;
        }
        self.repo_id
            .borrow()
            .clone()
            .ok_or_else(|| Error::failed("GitHub did not return the repository id"))
    }

    fn forget_refs(&self) {
        self.refs.borrow_mut().clear();
    }

    /// Re-reads refs from GitHub, bypassing the cache.
    fn fresh_refs(&self, names: &[String]) -> Result<Vec<Option<RefTarget>>> {
        {
            let mut c = self.refs.borrow_mut();
            for n in names {
                c.remove(n);
            }
        }
        self.resolve_refs(names)
    }

    /// `updateRefs`; an error comes with whether an earlier attempt may have landed.
    fn gql_update_refs(&self, updates: &[RefUpdate]) -> std::result::Result<(), (Error, bool)> {
        let id = self.repository_id().map_err(|e| (e, false))?;
        let ups: Vec<Value> = updates
            .iter()
            .map(|u| json!({ "name": u.name, "afterOid": u.new, "beforeOid": u.expected.clone().unwrap_or_else(|| ZERO.into()), "force": true }))
            .collect();
        let data = self.api.graphql_write(
            "mutation($input: UpdateRefsInput!) { updateRefs(input: $input) { clientMutationId } }",
            json!({ "input": { "repositoryId": id, "refUpdates": ups } }),
        )?;
        // An answer not as documented still came after GitHub took the request: it
        // may have landed.
        let _: answers::UpdateRefsData =
            answers::answer(data, "the GraphQL updateRefs mutation", "").map_err(|e| (e, true))?;
        Ok(())
    }

    /// Moves `updates` atomically; `ours` (a part of them: the guard aside) is what
    /// the journal records.
    fn move_refs(&self, updates: &[RefUpdate], ours: &[RefUpdate]) -> Result<()> {
        match self.gql_update_refs(updates) {
            Ok(()) => {
                let mut c = self.refs.borrow_mut();
                for u in updates {
                    c.insert(
                        u.name.clone(),
                        Some(RefTarget {
                            target: u.new.clone(),
                            commit: u.new.clone(),
                        }),
                    );
                }
                self.journal.record(Write::Refs(ours.to_vec()));
                Ok(())
            }
            Err((e, maybe_landed)) => {
                let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
                // Not an `Api` error when this read fails: that would pass for GitHub's
                // refusal of the update with nothing moved, which nobody checked.
                let now = self.fresh_refs(&names).map_err(|again| {
                    Error::failed(format!(
                        "{e}; reading the refs again to see whether the update landed failed too ({again}); look at them before re-running"
                    ))
                })?;
                // A retried request whose first attempt landed: the refs are where we
                // wanted. (When GitHub refused the first attempt, refs found there were
                // moved by another run: a conflict, and that run says `changed`.)
                if maybe_landed
                    && updates
                        .iter()
                        .zip(&now)
                        .all(|(u, n)| n.as_ref().is_some_and(|n| n.target == u.new))
                {
                    self.journal.record(Write::Refs(ours.to_vec()));
                    return Ok(());
                }
                Err(super::conflict(updates, &now, &e, "").unwrap_or(e))
            }
        }
    }

    fn commit_on_branch(&self, branch: &str, expected: &str, message: &str, req: &CommitRequest) -> Result<Oid> {
        let (headline, body) = match message.split_once('\n') {
            Some((h, b)) => (h.to_string(), b.trim_start_matches('\n').to_string()),
            None => (message.to_string(), String::new()),
        };
        let additions: Vec<Value> = req
            .changes
            .iter()
            .map(
                |c| json!({ "path": c.path, "contents": base64::engine::general_purpose::STANDARD.encode(&c.content) }),
            )
            .collect();
        let input = json!({
            "branch": { "repositoryNameWithOwner": format!("{}/{}", self.owner, self.name), "branchName": branch },
            "message": { "headline": headline, "body": body },
            "fileChanges": { "additions": additions },
            "expectedHeadOid": expected,
        });
        let data = self.api.graphql(
            "mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid } } }",
            json!({ "input": input }),
        )?;
        let data: answers::CreateCommitData = answers::answer(data, "the GraphQL createCommitOnBranch mutation", "")?;
        data.create_commit_on_branch
            .and_then(|p| p.commit)
            .map(|c| c.oid)
            .ok_or_else(|| Error::failed("createCommitOnBranch returned no commit"))
    }

    /// After a failed commit: did an earlier attempt of ours land (a retried request)?
    fn landed(&self, branch: &str, parent: &str, req: &CommitRequest) -> Result<Option<Oid>> {
        let now = self.fresh_refs(&[format!("refs/heads/{branch}")])?;
        let Some(head) = now.into_iter().next().flatten() else {
            return Ok(None);
        };
        let info = self.api.rest(
            Method::GET,
            &format!("{}/commits/{}", self.repo_path(), head.commit),
            None,
        )?;
        if !info.status.is_success() {
            return Ok(None);
        }
        let info: answers::RestCommit = answers::answer(info.body, "GET commits/{ref}", "")?;
        if info.parents.len() != 1 || info.parents[0].sha != parent {
            return Ok(None);
        }
        for c in &req.changes {
            if self.read_file(&head.commit, &c.path)?.as_deref() != Some(c.content.as_slice()) {
                return Ok(None);
            }
        }
        Ok(Some(head.commit))
    }
}

impl Git for GitHubRepo {
    fn describe(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    fn web_url(&self) -> Option<String> {
        Some(self.web.clone())
    }

    fn prefetch(&self, plan: &ReadPlan) -> Result<()> {
        if plan.checks {
            self.with_checks.set(true);
        }
        self.fetch(plan)
    }

    fn written(&self) -> Vec<Write> {
        self.journal.entries()
    }

    fn default_branch(&self) -> Result<String> {
        if self.default_branch.borrow().is_none() {
            self.fetch_refs(&[])?;
        }
        self.default_branch
            .borrow()
            .clone()
            .ok_or_else(|| Error::input("the repository has no default branch; pass `branch`"))
    }

    fn resolve_refs(&self, names: &[String]) -> Result<Vec<Option<RefTarget>>> {
        self.fetch_refs(names)?;
        let cache = self.refs.borrow();
        Ok(names.iter().map(|n| cache.get(n).cloned().flatten()).collect())
    }

    fn resolve_revision(&self, rev: &str) -> Result<Option<Oid>> {
        if crate::names::is_full_oid(rev) && self.local_has(rev).is_some() {
            return Ok(Some(rev.to_lowercase()));
        }
        let r = self
            .api
            .rest(Method::GET, &format!("{}/commits/{}", self.repo_path(), enc(rev)), None)?;
        match r.status.as_u16() {
            200 => Ok(Some(
                answers::answer::<answers::RestCommit>(r.body, "GET commits/{ref}", "")?.sha,
            )),
            404 | 422 => Ok(None),
            _ => Err(client::api_error(&Method::GET, "commits/{ref}", &r)),
        }
    }

    fn first_parent(&self, commit: &Oid) -> Result<Option<Oid>> {
        if let Some(l) = self.local_has(commit)
            && !l.is_shallow()
        {
            return l.first_parent(commit);
        }
        let r = self
            .api
            .rest_ok(Method::GET, &format!("{}/commits/{commit}", self.repo_path()), None)?;
        let c: answers::RestCommit = answers::answer(r, "GET commits/{ref}", "")?;
        Ok(c.parents.into_iter().next().map(|p| p.sha))
    }

    fn read_file(&self, commit: &Oid, path: &str) -> Result<Option<Vec<u8>>> {
        if let Some(c) = self.files.borrow().get(&(commit.clone(), path.to_string())) {
            return Ok(c.clone());
        }
        if let Some(l) = self.local_has(commit) {
            return l.read_file(commit, path);
        }
        let Some(body) = self.contents(commit, path)? else {
            return Ok(None);
        };
        const CONTENTS: &str = "GET contents/{path}";
        // A directory (a list), a symlink or a submodule: not a file.
        if body.is_array() {
            return Ok(None);
        }
        let entry: answers::RestContentEntry = answers::answer(body, CONTENTS, "")?;
        if entry.kind != "file" {
            return Ok(None);
        }
        let file: answers::RestContentFile = answers::answer(Value::Object(entry.rest), CONTENTS, "")?;
        let undecodable =
            |e: base64::DecodeError| Error::failed(format!("GitHub returned undecodable content for {path}: {e}"));
        // Over 1 MB the contents API sends no content (`encoding: none`): read
        // the blob itself instead of taking it for an empty file.
        if file.encoding == "none" || (file.content.is_empty() && file.size > 0) {
            let blob = self.api.rest_ok(
                Method::GET,
                &format!("{}/git/blobs/{}", self.repo_path(), file.sha),
                None,
            )?;
            let blob: answers::RestBlob = answers::answer(blob, "GET git/blobs/{sha}", "")?;
            return base64::engine::general_purpose::STANDARD
                .decode(blob.content.replace(['\n', '\r'], ""))
                .map(Some)
                .map_err(undecodable);
        }
        base64::engine::general_purpose::STANDARD
            .decode(file.content.replace(['\n', '\r'], ""))
            .map(Some)
            .map_err(undecodable)
    }

    fn read_files(&self, reads: &[(Oid, String)]) -> Result<Vec<Option<Vec<u8>>>> {
        // What neither the cache nor the checkout has, once each.
        // (Whether the checkout has a commit is asked once per commit: a miss makes
        // the object database look at the disk again.)
        let mut local: HashMap<&Oid, bool> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut wanted: Vec<(Oid, String)> = Vec::new();
        for (c, p) in reads {
            let key = (c.clone(), p.clone());
            let here = *local.entry(c).or_insert_with(|| self.local_has(c).is_some());
            if !here && !self.files.borrow().contains_key(&key) && seen.insert(key.clone()) {
                wanted.push(key);
            }
        }
        // A few batches in flight at a time: their answers do not depend on each other.
        let queries: Vec<(String, Value)> = wanted
            .chunks(250)
            .map(|chunk| {
                let mut decl = String::from(REFS_QUERY_HEAD);
                let mut body = String::new();
                let mut vars = json!({ "owner": self.owner, "name": self.name });
                for (i, (c, p)) in chunk.iter().enumerate() {
                    decl.push_str(&format!(", $e{i}: String!"));
                    vars[format!("e{i}")] = json!(format!("{c}:{p}"));
                    body.push_str(&format!(
                        " e{i}: object(expression: $e{i}) {{ ... on Blob {{ text isTruncated isBinary }} }}"
                    ));
                }
                (
                    format!("{decl}) {{ repository(owner: $owner, name: $name) {{{body} }} }}"),
                    vars,
                )
            })
            .collect();
        let answers = self.api.graphql_reads(queries)?;
        for (chunk, data) in wanted.chunks(250).zip(answers) {
            const REQUEST: &str = "the GraphQL file query";
            let data: answers::RepositoryData<serde_json::Map<String, Value>> = answers::answer(data, REQUEST, "")?;
            let mut repo = data.repository.ok_or_else(|| self.not_found())?;
            let mut files = self.files.borrow_mut();
            for (i, key) in chunk.iter().enumerate() {
                let alias = format!("e{i}");
                let object: Option<serde_json::Map<String, Value>> =
                    answers::take(&mut repo, &alias, REQUEST, "repository")?;
                match object {
                    None => {
                        files.insert(key.clone(), None);
                    }
                    Some(b) => {
                        // Large or binary, or not a blob: `read_file` goes through the REST API.
                        let blob = answers::blob_of(Some(b), REQUEST, &format!("repository.{alias}"))?;
                        if let Some(text) = blob.and_then(answers::Blob::text) {
                            files.insert(key.clone(), Some(text));
                        }
                    }
                }
            }
        }
        reads.iter().map(|(c, p)| self.read_file(c, p)).collect()
    }

    fn list_dir(&self, commit: &Oid, path: &str) -> Result<Vec<String>> {
        if let Some(l) = self.local_has(commit) {
            return l.list_dir(commit, path);
        }
        // GraphQL `Tree.entries`: every entry, where the contents API stops at 1,000.
        let data = self.api.graphql(
            "query($owner: String!, $name: String!, $e: String!) { repository(owner: $owner, name: $name) { object(expression: $e) { ... on Tree { entries { name } } } } }",
            json!({"owner": self.owner, "name": self.name, "e": format!("{commit}:{}", path.trim_end_matches('/'))}),
        )?;
        const REQUEST: &str = "the GraphQL tree query";
        let data: answers::RepositoryData<answers::ObjectAnswer> = answers::answer(data, REQUEST, "")?;
        let object = data.repository.ok_or_else(|| self.not_found())?.object;
        // No such path, or not a tree (`{}`): no entries.
        let tree = match object {
            Some(o) if !o.is_empty() => {
                answers::answer::<answers::TreeEntries>(Value::Object(o), REQUEST, "repository.object")?
            }
            _ => return Ok(Vec::new()),
        };
        Ok(tree.entries.into_iter().flatten().map(|e| e.name).collect())
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, RefTarget)>> {
        let rel = prefix.trim_start_matches("refs/");
        let r = self.api.rest_ok(
            Method::GET,
            &format!(
                "{}/git/matching-refs/{}",
                self.repo_path(),
                enc_path(rel.trim_end_matches('/'))
            ),
            None,
        )?;
        let refs: Vec<answers::RestGitRef> = answers::answer(r, "GET git/matching-refs/{ref}", "")?;
        let mut out = Vec::new();
        let mut annotated = Vec::new();
        for e in refs {
            if !e.name.starts_with(prefix) {
                continue;
            }
            if e.object.kind == "tag" {
                annotated.push(e.name.clone());
            }
            out.push((
                e.name,
                RefTarget {
                    target: e.object.sha.clone(),
                    commit: e.object.sha,
                },
            ));
        }
        if !annotated.is_empty() {
            let peeled = self.resolve_refs(&annotated)?;
            for (name, p) in annotated.iter().zip(peeled) {
                if let (Some(slot), Some(p)) = (out.iter_mut().find(|(n, _)| n == name), p) {
                    slot.1.commit = p.commit;
                }
            }
        }
        {
            let mut cache = self.refs.borrow_mut();
            for (n, t) in &out {
                cache.insert(n.clone(), Some(t.clone()));
            }
        }
        Ok(out)
    }

    fn is_ancestor(&self, ancestor: &Oid, descendant: &Oid) -> Result<bool> {
        if ancestor == descendant {
            return Ok(true);
        }
        if let Some(known) = self.ancestry.borrow().get(&(ancestor.clone(), descendant.clone())) {
            return Ok(*known);
        }
        if let (Some(l), Some(_)) = (self.local_has(ancestor), self.local_has(descendant)) {
            // A found ancestry is real even in a shallow clone; "not found" is only
            // trusted with the full history.
            if l.is_ancestor(ancestor, descendant)? {
                return Ok(true);
            }
            if !l.is_shallow() {
                return Ok(false);
            }
        }
        let r = self.api.rest(
            Method::GET,
            &format!("{}/compare/{ancestor}...{descendant}?per_page=1", self.repo_path()),
            None,
        )?;
        match r.status.as_u16() {
            200 => {
                let c: answers::RestComparison = answers::answer(r.body, "GET compare/{basehead}", "")?;
                Ok(matches!(c.status.as_str(), "ahead" | "identical"))
            }
            404 => Ok(false),
            _ => Err(client::api_error(&Method::GET, "compare", &r)),
        }
    }

    fn changed_paths(&self, commit: &Oid) -> Result<Vec<String>> {
        if let Some(l) = self.local_has(commit)
            && let Ok(p) = l.changed_paths(commit)
            && !l.is_shallow()
        {
            return Ok(p);
        }
        // A commit's file list comes 300 a page (3,000 at most): read every page.
        let mut out = Vec::new();
        for page in 1..=10 {
            let r = self.api.rest_ok(
                Method::GET,
                &format!("{}/commits/{commit}?per_page=300&page={page}", self.repo_path()),
                None,
            )?;
            let c: answers::RestCommitFiles = answers::answer(r, "GET commits/{ref}", "")?;
            let n = c.files.len();
            out.extend(c.files.into_iter().map(|f| f.filename));
            if n < 300 {
                break;
            }
        }
        Ok(out)
    }

    fn file_history(
        &self,
        head: &Oid,
        path: &str,
        limit: usize,
        enough: &mut dyn FnMut(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>> {
        if let Some(l) = self.local_has(head)
            && !l.is_shallow()
        {
            return l.file_history(head, path, limit, enough);
        }
        let mut histories = self.api_file_histories(head, &[path.to_string()], limit, &mut |_, h| enough(h))?;
        Ok(histories.pop().unwrap_or_default())
    }

    fn file_histories(
        &self,
        head: &Oid,
        paths: &[String],
        limit: usize,
        enough: &mut dyn FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<Vec<Vec<HistoryEntry>>> {
        if let Some(l) = self.local_has(head)
            && !l.is_shallow()
        {
            return l.file_histories(head, paths, limit, enough);
        }
        self.api_file_histories(head, paths, limit, enough)
    }

    /// The hold guard: `lock` moves the ref `refs/gitops-flow/holds` to its commit
    /// right after the hold lands on the main branch. A guarded move carries a
    /// compare-and-swap of that ref at the value read together with (and before) the
    /// main head whose holds were checked, in the same atomic `updateRefs`: a lock that
    /// completed since makes it fail (`Error::Conflict`, nothing moved) and the caller
    /// reads the holds again. One write, no read after it. When the guard was not read
    /// with `guard_value` in one query, the default (move, then read the branch again).
    fn update_refs_guarded(
        &self,
        updates: &[RefUpdate],
        message: &str,
        guard: &str,
        guard_value: &Oid,
    ) -> Result<Option<Oid>> {
        let read = self
            .hold_guard
            .borrow()
            .iter()
            .find(|(branch, at, _)| branch == guard && at == guard_value)
            .map(|(_, _, hold)| hold.clone());
        let Some(hold) = read else {
            return super::update_then_reread(self, updates, message, guard, guard_value);
        };
        let mut all = updates.to_vec();
        // Unchanged, or created at the main head on first use.
        all.push(RefUpdate {
            name: HOLDS_GUARD_REF.into(),
            new: hold.clone().unwrap_or_else(|| guard_value.clone()),
            expected: hold,
        });
        match self.move_refs(&all, updates) {
            Ok(()) => Ok(None),
            // GitHub answered with a refusal and nothing moved (`move_refs` found
            // every ref, the guard too, where it was expected: not a lost
            // compare-and-swap). Perhaps the guard itself was refused — a repository
            // rule on `refs/gitops-flow/*`, or an update that leaves it where it is —
            // in words unknown here, so any refusal counts: move without the guard and
            // read the branch afterwards. A refusal of the moves themselves comes back
            // from that attempt.
            Err(Error::Api(a)) => {
                let moved = super::update_then_reread(self, updates, message, guard, guard_value)?;
                self.notices.borrow_mut().push(format!(
                    "the hold guard `{HOLDS_GUARD_REF}` could not be written ({a}); the holds were checked by reading `{guard}` again after the move instead"
                ));
                Ok(moved)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves the hold guard to `commit` (a hold just landed there, or was found
    /// there), by compare-and-swap from the value read before: never a blind move,
    /// and never back — a guard already at `commit` or at a later lock's commit (a
    /// descendant) stays, so that no value a promotion may have read comes back.
    fn holds_recorded(&self, commit: &Oid) -> Result<()> {
        // The first attempt: the guard as read with the main head `commit` was
        // made on (or found at), so never newer than `commit`.
        let mut before: Option<Option<Oid>> = self.hold_guard.borrow().first().map(|(_, _, h)| h.clone());
        for _ in 0..5 {
            let expected = match before.take() {
                Some(v) => v,
                None => {
                    let now = self
                        .fresh_refs(&[HOLDS_GUARD_REF.to_string()])?
                        .pop()
                        .flatten()
                        .map(|r| r.target);
                    if let Some(n) = &now
                        && (n == commit || self.is_ancestor(commit, n)?)
                    {
                        return Ok(());
                    }
                    now
                }
            };
            if expected.as_ref() == Some(commit) {
                return Ok(());
            }
            let up = RefUpdate {
                name: HOLDS_GUARD_REF.into(),
                expected: expected.clone(),
                new: commit.clone(),
            };
            match self.gql_update_refs(std::slice::from_ref(&up)) {
                Ok(()) => {
                    self.hold_guard.borrow_mut().clear();
                    return Ok(());
                }
                Err((e, maybe_landed)) => {
                    // Moved meanwhile (another lock), or the answer was lost: read it
                    // again. Refused outright with the guard unmoved: say why.
                    let now = self
                        .fresh_refs(&[HOLDS_GUARD_REF.to_string()])?
                        .pop()
                        .flatten()
                        .map(|r| r.target);
                    if now.as_ref() == Some(commit) {
                        return Ok(());
                    }
                    if !maybe_landed && now == expected {
                        return Err(e);
                    }
                    tracing::info!("the hold guard moved while it was being moved ({e}); reading it again");
                }
            }
        }
        Err(Error::failed(format!(
            "`{HOLDS_GUARD_REF}` kept moving; gave up after 5 attempts"
        )))
    }

    fn update_refs(&self, updates: &[RefUpdate], _message: &str) -> Result<()> {
        self.move_refs(updates, updates)
    }

    fn commit(&self, req: &CommitRequest) -> Result<Oid> {
        let full = format!("refs/heads/{}", req.branch);
        // Put the branch on the parent first when it is new or must be reset.
        let reset = req.expected_head.as_deref() != Some(req.parent.as_str());
        if reset {
            self.update_refs(
                &[RefUpdate {
                    name: full.clone(),
                    expected: req.expected_head.clone(),
                    new: req.parent.clone(),
                }],
                "reset",
            )?;
            if req.expected_head.is_none() {
                // A branch that did not exist has no open pull request (GitHub closes
                // them with their head branch): `pull_request` need not look for one.
                self.new_branches.borrow_mut().insert(req.branch.clone());
            }
        }
        let result = self.commit_on_branch(&req.branch, &req.parent, &req.message, req);
        self.forget_refs();
        let result = match result {
            Ok(oid) => Ok(oid),
            Err(e) => match self.landed(&req.branch, &req.parent, req)? {
                Some(oid) => Ok(oid),
                None => {
                    let now = self.fresh_refs(std::slice::from_ref(&full))?;
                    if now[0].as_ref().map(|n| n.target.as_str()) != Some(req.parent.as_str()) {
                        Err(Error::conflict(format!(
                            "branch `{}` moved while committing ({e}); nothing was overwritten",
                            req.branch
                        )))
                    } else {
                        Err(e)
                    }
                }
            },
        };
        match result {
            Ok(oid) => {
                self.journal.record(Write::Commit {
                    branch: req.branch.clone(),
                    commit: oid.clone(),
                });
                Ok(oid)
            }
            // The reset is a write: whatever went wrong afterwards is a failure of
            // the operation (exit 1), never "bad input, nothing written".
            Err(e) if reset => Err(Error::failed(format!(
                "branch `{}` was put on {} but the commit on top of it failed: {e}; re-run to finish",
                req.branch,
                short_sha(&req.parent)
            ))),
            Err(e) => Err(e),
        }
    }

    fn forget(&self) {
        self.forget_refs();
        self.checks.borrow_mut().clear();
    }

    fn actor(&self) -> Option<String> {
        self.local.as_ref().and_then(|l| l.actor())
    }
}
