//! The GitHub backend: reads from the workspace checkout with gix where the
//! objects are there (actions/checkout is shallow and tag-less by default) and
//! through the API where they are not; every write goes through the API —
//! GraphQL `createCommitOnBranch` (GitHub signs the commit; `expectedHeadOid` is
//! the compare-and-swap), GraphQL `updateRefs` (atomic, `beforeOid`), REST for
//! pull requests.

mod answers;
mod client;
pub mod retry;

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use http::Method;
use serde_json::{Value, json};

pub use client::{Api, Sent};
pub use retry::RetryPolicy;

use super::local::LocalRepo;
use super::{
    Check, CheckState, DeploymentInfo, DeploymentSpec, DeploymentStatusSpec, Journal, PullRequestState, ReadPlan, Write,
};
use super::{
    CommitRequest, HistoryEntry, Oid, PullRequest, PullRequestInfo, PullRequestSpec, RefTarget, RefUpdate, Repository,
};
use crate::error::{Error, Result};

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
    journal: Journal,
    /// What the repository allows for merging (read with the repository id).
    merge: RefCell<Option<MergeSettings>>,
    notices: RefCell<Vec<String>>,
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

/// Deserialises an API answer into its typed shape; a missing field is an error naming it.
fn typed<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::failed(format!("GitHub's answer to {what} is not as documented: {e}")))
}

#[derive(serde::Deserialize)]
struct ApiPull {
    number: u64,
    state: String,
    head: ApiPullHead,
    labels: Vec<ApiLabel>,
}

/// A pull request as the REST API returns it: the fields gitops-flow relies on are
/// required, so a missing `number` is an error naming it, never `PATCH /pulls/0`.
#[derive(serde::Deserialize, Clone)]
struct ApiPr {
    number: u64,
    html_url: String,
    node_id: String,
    title: String,
    body: Option<String>,
    #[serde(default)]
    labels: Vec<ApiLabel>,
    auto_merge: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ApiPullHead {
    sha: String,
}

#[derive(serde::Deserialize, Clone)]
struct ApiLabel {
    name: String,
}

#[derive(serde::Deserialize)]
struct ApiDeployment {
    id: u64,
    sha: String,
}

#[derive(serde::Deserialize)]
struct ApiDeploymentStatus {
    state: String,
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
            journal: Journal::default(),
            merge: RefCell::new(None),
            notices: RefCell::new(Vec::new()),
        })
    }

    /// All items of a `{total_count, <key>: [...]}` listing, 100 a page (at most 10 pages).
    fn paginated(&self, path: &str, key: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for page in 1..=10 {
            let r = self
                .api
                .rest_ok(Method::GET, &format!("{path}?per_page=100&page={page}"), None)?;
            let items = r.get(key).and_then(|s| s.as_array()).cloned().unwrap_or_default();
            let last = items.len() < 100;
            out.extend(items);
            let total = r.get("total_count").and_then(|t| t.as_u64()).unwrap_or(0) as usize;
            if last || out.len() >= total {
                break;
            }
        }
        Ok(out)
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
        let query = format!(
            "{decl}) {{ repository(owner: $owner, name: $name) {{ id autoMergeAllowed mergeCommitAllowed squashMergeAllowed rebaseMergeAllowed defaultBranchRef {{ name target {{ oid }}{default_compare} }}{main_sel}{body} }} }}"
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
        if let Some((b, r)) = &default_ref
            && let Some(t) = &r.target
        {
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

    fn gql_update_refs(&self, updates: &[RefUpdate]) -> Result<()> {
        let id = self.repository_id()?;
        let ups: Vec<Value> = updates
            .iter()
            .map(|u| json!({ "name": u.name, "afterOid": u.new, "beforeOid": u.expected.clone().unwrap_or_else(|| ZERO.into()), "force": true }))
            .collect();
        let data = self.api.graphql(
            "mutation($input: UpdateRefsInput!) { updateRefs(input: $input) { clientMutationId } }",
            json!({ "input": { "repositoryId": id, "refUpdates": ups } }),
        )?;
        let _: answers::UpdateRefsData = answers::answer(data, "the GraphQL updateRefs mutation", "")?;
        Ok(())
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

    /// A deployment of `d.sha` to `d.environment` with the same description and
    /// payload as `d`, newest first: one that an earlier attempt created.
    fn find_deployment(&self, d: &DeploymentSpec) -> Result<Option<u64>> {
        let list = self.api.rest_ok(
            Method::GET,
            &format!(
                "{}/deployments?sha={}&environment={}&per_page=100",
                self.repo_path(),
                enc(&d.sha),
                enc(&d.environment)
            ),
            None,
        )?;
        Ok(list.as_array().into_iter().flatten().find_map(|x| {
            (x.get("payload") == Some(&d.payload)
                && x.get("description").and_then(|v| v.as_str()) == Some(d.description.as_str()))
            .then(|| x.get("id").and_then(|i| i.as_u64()))
            .flatten()
        }))
    }

    /// Turns on auto-merge with a merge method the repository allows. Where GitHub
    /// will not (auto-merge disabled, the pull request already mergeable), the pull
    /// request stays open and a notice says what to do.
    fn enable_auto_merge(&self, number: u64, node: &str) -> Result<()> {
        if self.merge.borrow().is_none() {
            self.repo_id.borrow_mut().take();
            self.fetch_refs(&[])?;
        }
        let settings = *self.merge.borrow();
        let Some(settings) = settings else {
            return Err(Error::failed("GitHub did not report the repository's merge settings"));
        };
        let notice = |why: &str| {
            self.notices
                .borrow_mut()
                .push(format!("auto-merge not enabled on pull request #{number}: {why}"));
            Ok(())
        };
        if !settings.auto_merge_allowed {
            return notice(
                "the repository does not allow auto-merge; merge the pull request yourself, or turn on \"Allow auto-merge\" in the repository settings",
            );
        }
        let Some(method) = settings.method() else {
            return notice("the repository allows no merge method; merge the pull request yourself");
        };
        let result = self.api.graphql(
            "mutation($input: EnablePullRequestAutoMergeInput!) { enablePullRequestAutoMerge(input: $input) { pullRequest { number } } }",
            json!({ "input": { "pullRequestId": node, "mergeMethod": method } }),
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("clean status") => notice(
                "it can be merged right now (GitHub calls this \"clean status\" and enables auto-merge only on pull requests that wait for checks or reviews); merge it, or protect the branch with required checks",
            ),
            Err(e) if e.to_string().contains("Auto merge is not allowed") => notice(
                "the repository does not allow auto-merge; merge the pull request yourself, or turn on \"Allow auto-merge\" in the repository settings",
            ),
            Err(e) => Err(e),
        }
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

impl Repository for GitHubRepo {
    fn describe(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    fn web_url(&self) -> Option<String> {
        Some(self.web.clone())
    }

    fn prefetch(&self, plan: &ReadPlan) -> Result<()> {
        self.fetch(plan)
    }

    fn written(&self) -> Vec<Write> {
        self.journal.entries()
    }

    fn has_checks(&self) -> bool {
        true
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
        for chunk in wanted.chunks(250) {
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
            let query = format!("{decl}) {{ repository(owner: $owner, name: $name) {{{body} }} }}");
            let data = self.api.graphql(&query, vars)?;
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
        // First-parent history, as the local backend reads it: a path-filtered
        // listing would follow merged feature branches into values main never ran.
        // One GraphQL query reads 100 commits with their first parent and the file's
        // text at each (`Commit.history` + `Commit.file`); the first-parent chain is
        // followed through them, a page more only when it leaves the page.
        const QUERY: &str = "query($owner: String!, $name: String!, $head: GitObjectID!, $path: String!, $after: String) { repository(owner: $owner, name: $name) { object(oid: $head) { ... on Commit { history(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { oid message parents(first: 1) { nodes { oid } } file(path: $path) { object { ... on Blob { text isTruncated isBinary } } } } } } } } }";
        // sha -> (message, first parent, content or None when absent; Err when only REST can read it)
        type Node = (String, Option<String>, std::result::Result<Option<Vec<u8>>, ()>);
        let mut commits: HashMap<String, Node> = HashMap::new();
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        let mut prev: Option<(Oid, String, Option<Vec<u8>>)> = None;
        let mut cur = Some(head.clone());
        let mut root = false;
        for _page in 0..10 {
            let vars = json!({"owner": self.owner, "name": self.name, "head": head, "path": path, "after": after});
            let data = self.api.graphql(QUERY, vars)?;
            const REQUEST: &str = "the GraphQL history query";
            let data: answers::RepositoryData<answers::ObjectAnswer> = answers::answer(data, REQUEST, "")?;
            // No such commit (or not a commit): no `history` in the answer.
            let history = match data.repository.and_then(|r| r.object) {
                Some(o) if o.contains_key("history") => {
                    answers::answer::<answers::HistoryObject>(Value::Object(o), REQUEST, "repository.object")?.history
                }
                _ => {
                    return Err(Error::failed(format!(
                        "GitHub returned no history for {}",
                        crate::names::short_sha(head)
                    )));
                }
            };
            for n in history.nodes.into_iter().flatten().flatten() {
                let parent = n.parents.nodes.into_iter().flatten().flatten().next().map(|p| p.oid);
                let content = match n.file {
                    None => Ok(None),
                    Some(f) => answers::blob_of(f.object, REQUEST, "repository.object.history.nodes.file.object")?
                        .and_then(answers::Blob::text)
                        .map(Some)
                        .ok_or(()),
                };
                commits.insert(n.oid, (n.message, parent, content));
            }
            // Follow the first-parent chain as far as this page reaches.
            while let Some(sha) = cur.clone() {
                let Some((message, parent, content)) = commits.get(&sha).cloned() else {
                    break;
                };
                let content = match content {
                    Ok(c) => c,
                    Err(()) => self.read_file(&sha, path)?,
                };
                if let Some((pid, pmsg, pcontent)) = prev.take()
                    && pcontent != content
                {
                    out.push(HistoryEntry {
                        commit: pid,
                        message: pmsg,
                        content: pcontent,
                    });
                    if out.len() >= limit || out.last().is_some_and(&mut *enough) {
                        return Ok(out);
                    }
                }
                root = parent.is_none();
                prev = Some((sha, message, content));
                cur = parent;
            }
            if cur.is_none() || !history.page_info.has_next_page {
                break;
            }
            after = history.page_info.end_cursor;
        }
        if root && let Some((pid, pmsg, Some(c))) = prev {
            out.push(HistoryEntry {
                commit: pid,
                message: pmsg,
                content: Some(c),
            });
        }
        Ok(out)
    }

    fn update_refs(&self, updates: &[RefUpdate], _message: &str) -> Result<()> {
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
                self.journal.record(Write::Refs(updates.to_vec()));
                Ok(())
            }
            Err(e) => {
                let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
                let now = self.fresh_refs(&names)?;
                // A retried request whose first attempt landed: the refs are where we wanted.
                if updates
                    .iter()
                    .zip(&now)
                    .all(|(u, n)| n.as_ref().is_some_and(|n| n.target == u.new))
                {
                    self.journal.record(Write::Refs(updates.to_vec()));
                    return Ok(());
                }
                Err(super::conflict(updates, &now, &e, "").unwrap_or(e))
            }
        }
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
                        Err(Error::Conflict(format!(
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
                &req.parent[..req.parent.len().min(7)]
            ))),
            Err(e) => Err(e),
        }
    }

    fn pull_request(&self, spec: &PullRequestSpec) -> Result<PullRequest> {
        let existing = if self.new_branches.borrow().contains(&spec.head) {
            None
        } else {
            let list = self.api.rest_ok(
                Method::GET,
                &format!(
                    "{}/pulls?state=open&head={}:{}&base={}",
                    self.repo_path(),
                    enc(&self.owner),
                    enc(&spec.head),
                    enc(&spec.base)
                ),
                None,
            )?;
            list.as_array().and_then(|a| a.first()).cloned()
        };
        let (pr, created): (ApiPr, bool) = match existing {
            Some(pr) => {
                let pr: ApiPr = typed(pr, "GET pulls")?;
                if pr.title == spec.title && pr.body.as_deref() == Some(spec.body.as_str()) {
                    (pr, false)
                } else {
                    let updated = self.api.rest_ok(
                        Method::PATCH,
                        &format!("{}/pulls/{}", self.repo_path(), pr.number),
                        Some(&json!({ "title": spec.title, "body": spec.body })),
                    )?;
                    let updated: ApiPr = typed(updated, "PATCH pulls/{number}")?;
                    self.journal.record(Write::PullRequest {
                        number: Some(updated.number),
                        url: Some(updated.html_url.clone()),
                    });
                    (updated, false)
                }
            }
            None => {
                let body = json!({ "title": spec.title, "head": spec.head, "base": spec.base, "body": spec.body, "maintainer_can_modify": true });
                let r = self
                    .api
                    .rest(Method::POST, &format!("{}/pulls", self.repo_path()), Some(&body))?;
                if r.status.is_success() {
                    (typed(r.body, "POST pulls")?, true)
                } else if r.status.as_u16() == 422 && r.text.contains("already exists") {
                    // A retried create whose first attempt landed.
                    let list = self.api.rest_ok(
                        Method::GET,
                        &format!(
                            "{}/pulls?state=open&head={}:{}",
                            self.repo_path(),
                            enc(&self.owner),
                            enc(&spec.head)
                        ),
                        None,
                    )?;
                    let found = list
                        .as_array()
                        .and_then(|a| a.first())
                        .cloned()
                        .ok_or_else(|| client::api_error(&Method::POST, "pulls", &r))?;
                    (typed(found, "GET pulls")?, true)
                } else {
                    return Err(client::api_error(&Method::POST, "pulls", &r));
                }
            }
        };
        let n = pr.number;
        if created {
            self.journal.record(Write::PullRequest {
                number: Some(n),
                url: Some(pr.html_url.clone()),
            });
        }
        let missing: Vec<&String> = spec
            .labels
            .iter()
            .filter(|l| !pr.labels.iter().any(|have| have.name == **l))
            .collect();
        if !missing.is_empty() {
            self.api.rest_ok(
                Method::POST,
                &format!("{}/issues/{n}/labels", self.repo_path()),
                Some(&json!({ "labels": missing })),
            )?;
        }
        if spec.auto_merge && pr.auto_merge.as_ref().is_none_or(|a| a.is_null()) {
            self.enable_auto_merge(n, &pr.node_id)?;
        }
        Ok(PullRequest::Opened {
            number: n,
            url: pr.html_url,
            created,
        })
    }

    fn pull_request_for_commit(&self, sha: &Oid) -> Result<Option<PullRequestInfo>> {
        let mut page = 1;
        loop {
            let r = self.api.rest(
                Method::GET,
                &format!("{}/commits/{sha}/pulls?per_page=100&page={page}", self.repo_path()),
                None,
            )?;
            if r.status.as_u16() == 404 || r.status.as_u16() == 422 {
                return Ok(None);
            }
            if !r.status.is_success() {
                return Err(client::api_error(&Method::GET, "commits/{sha}/pulls", &r));
            }
            let items = r.body.as_array().cloned().unwrap_or_default();
            let pick = items
                .iter()
                .find(|p| p.get("merge_commit_sha").and_then(|m| m.as_str()) == Some(sha.as_str()))
                .or_else(|| items.iter().find(|p| p.get("merged_at").is_some_and(|m| !m.is_null())));
            if let Some(p) = pick {
                return Ok(Some(PullRequestInfo {
                    number: p.get("number").and_then(|n| n.as_u64()).unwrap_or_default(),
                    body: p.get("body").and_then(|b| b.as_str()).unwrap_or_default().to_string(),
                }));
            }
            let has_next = r
                .headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .is_some_and(|l| l.contains("rel=\"next\""));
            if !has_next || items.is_empty() || page >= 10 {
                return Ok(None);
            }
            page += 1;
        }
    }

    fn forget(&self) {
        self.forget_refs();
    }

    fn actor(&self) -> Option<String> {
        self.local.as_ref().and_then(|l| l.actor())
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.notices.borrow_mut())
    }

    fn commit_checks(&self, sha: &Oid) -> Result<Vec<Check>> {
        let str_of = |v: &Value, k: &str| v.get(k).and_then(|c| c.as_str()).map(String::from);
        let mut out = Vec::new();
        for st in self.paginated(&format!("{}/commits/{sha}/status", self.repo_path()), "statuses")? {
            let state = match str_of(&st, "state").as_deref() {
                Some("success") => CheckState::Success,
                Some("failure" | "error") => CheckState::Failure,
                _ => CheckState::Pending,
            };
            out.push(Check {
                name: str_of(&st, "context").unwrap_or_default(),
                state,
            });
        }
        for c in self.paginated(&format!("{}/commits/{sha}/check-runs", self.repo_path()), "check_runs")? {
            let state = match (str_of(&c, "status").as_deref(), str_of(&c, "conclusion").as_deref()) {
                (Some("completed"), Some("success" | "neutral" | "skipped")) => CheckState::Success,
                (Some("completed"), _) => CheckState::Failure,
                _ => CheckState::Pending,
            };
            out.push(Check {
                name: str_of(&c, "name").unwrap_or_default(),
                state,
            });
        }
        Ok(out)
    }

    fn create_deployment(&self, d: &DeploymentSpec) -> Result<Option<u64>> {
        let body = json!({
            "ref": d.sha,
            "environment": d.environment,
            "description": d.description,
            "payload": d.payload,
            "auto_merge": false,
            "required_contexts": [],
            "production_environment": d.production,
            "transient_environment": d.transient,
        });
        let path = format!("{}/deployments", self.repo_path());
        // Creating a deployment is not safe to repeat: after an unknown outcome,
        // look whether it landed before creating it again.
        const TRIES: u32 = 3;
        for attempt in 0..TRIES {
            match self.api.rest_unrepeatable(Method::POST, &path, Some(&body))? {
                Sent::Answer(r) if r.status.is_success() => {
                    let id = r.body.get("id").and_then(|i| i.as_u64());
                    if let Some(id) = id {
                        self.journal.record(Write::Deployment { id });
                    }
                    return Ok(id);
                }
                Sent::Answer(r) => return Err(client::api_error(&Method::POST, "deployments", &r)),
                Sent::Unknown(what) => {
                    if let Some(id) = self.find_deployment(d)? {
                        self.journal.record(Write::Deployment { id });
                        return Ok(Some(id));
                    }
                    if attempt + 1 == TRIES {
                        return Err(Error::failed(format!(
                            "POST deployments failed {TRIES} times ({what}) and GitHub lists no such deployment; re-run the job to record it"
                        )));
                    }
                    tracing::warn!("POST deployments: {what}; it did not land, creating it again");
                    std::thread::sleep(self.api.backoff(attempt));
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    fn pull_request_state(&self, number: u64) -> Result<PullRequestState> {
        let v = self
            .api
            .rest_ok(Method::GET, &format!("{}/pulls/{number}", self.repo_path()), None)?;
        let p: ApiPull = typed(v, "GET pulls/{number}")?;
        Ok(PullRequestState {
            number: p.number,
            head_sha: p.head.sha,
            open: p.state == "open",
            labels: p.labels.into_iter().map(|l| l.name).collect(),
        })
    }

    fn list_deployments(&self, environment: &str) -> Result<Vec<DeploymentInfo>> {
        let mut out = Vec::new();
        for page in 1..=10 {
            let v = self.api.rest_ok(
                Method::GET,
                &format!(
                    "{}/deployments?environment={}&per_page=100&page={page}",
                    self.repo_path(),
                    enc(environment)
                ),
                None,
            )?;
            let items: Vec<ApiDeployment> = typed(v, "GET deployments")?;
            let last = items.len() < 100;
            for d in items {
                let v = self.api.rest_ok(
                    Method::GET,
                    &format!("{}/deployments/{}/statuses?per_page=1", self.repo_path(), d.id),
                    None,
                )?;
                let statuses: Vec<ApiDeploymentStatus> = typed(v, "GET deployments/{id}/statuses")?;
                out.push(DeploymentInfo {
                    id: d.id,
                    sha: d.sha,
                    state: statuses.into_iter().next().map(|s| s.state),
                });
            }
            if last {
                break;
            }
        }
        Ok(out)
    }

    fn set_deployment_status(&self, id: u64, st: &DeploymentStatusSpec<'_>) -> Result<()> {
        let description: String = st.description.chars().take(140).collect();
        let mut body = json!({ "state": st.state, "description": description, "auto_inactive": st.auto_inactive });
        if let Some(u) = st.environment_url {
            body["environment_url"] = json!(u);
        }
        if let Some(u) = st.log_url {
            body["log_url"] = json!(u);
        }
        self.api.rest_ok(
            Method::POST,
            &format!("{}/deployments/{id}/statuses", self.repo_path()),
            Some(&body),
        )?;
        Ok(())
    }

    fn deployment_status(
        &self,
        id: u64,
        state: &str,
        environment_url: Option<&str>,
        log_url: Option<&str>,
    ) -> Result<()> {
        let mut body = json!({ "state": state, "auto_inactive": true, "description": format!("gitops-flow: {state}") });
        if let Some(u) = environment_url {
            body["environment_url"] = json!(u);
        }
        if let Some(u) = log_url {
            body["log_url"] = json!(u);
        }
        self.api.rest_ok(
            Method::POST,
            &format!("{}/deployments/{id}/statuses", self.repo_path()),
            Some(&body),
        )?;
        Ok(())
    }
}
