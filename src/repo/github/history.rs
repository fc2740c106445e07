//! First-parent history of several files at once through the API: one GraphQL query
//! reads 100 commits with their first parent and, per commit, the text of every file
//! asked for (`Commit.history` with an aliased `Commit.file(path:)` per path). The
//! first-parent chain is followed through them, a page more only while a file's walk
//! wants more.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{GitHubRepo, answers, checks};
use crate::error::{Error, Result};
use crate::repo::{Git, HistoryEntry, Oid, PullRequestInfo};

/// Files read by one history query: each adds its text at each of the page's 100
/// commits to the answer.
pub(super) const PATHS_PER_QUERY: usize = 20;

/// `Commit.history` as the query below selects it.
#[derive(serde::Deserialize)]
struct History {
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
    nodes: Vec<HistoryNode>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(serde::Deserialize)]
struct HistoryNode {
    oid: Oid,
    message: String,
    parents: Parents,
    /// The pull requests that brought the commit in (the merged one, on main).
    #[serde(rename = "associatedPullRequests", deserialize_with = "answers::nullable")]
    pulls: Option<Pulls>,
    /// Asked for with `ReadPlan::checks` only.
    #[serde(rename = "statusCheckRollup", default)]
    rollup: Option<Value>,
    /// `f0`, `f1`, …: the files asked for (`null`: absent at this commit).
    #[serde(flatten)]
    files: HashMap<String, Value>,
}

#[derive(serde::Deserialize)]
struct Pulls {
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
    nodes: Vec<Option<Pull>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pull {
    number: u64,
    body: String,
    merged: bool,
    #[serde(deserialize_with = "answers::nullable")]
    merge_commit: Option<ParentNode>,
}

/// Pull requests asked for per commit: one is the usual.
const PULLS: usize = 5;

impl Pulls {
    /// The merged pull request of `sha` as `GET commits/{sha}/pulls` picks it (the
    /// one that merged as `sha`, else a merged one); `None` when more pages would
    /// have to be read to know.
    fn merged(self, sha: &str) -> Option<Option<PullRequestInfo>> {
        let more = self.page_info.has_next_page;
        let nodes: Vec<Pull> = self.nodes.into_iter().flatten().collect();
        let pick = nodes
            .iter()
            .position(|p| p.merge_commit.as_ref().is_some_and(|m| m.oid == sha))
            .or_else(|| nodes.iter().position(|p| p.merged));
        match pick {
            Some(i) => {
                let p = &nodes[i];
                Some(Some(PullRequestInfo {
                    number: p.number,
                    body: p.body.clone(),
                }))
            }
            None if more => None,
            None => Some(None),
        }
    }
}

#[derive(serde::Deserialize)]
struct Parents {
    nodes: Vec<ParentNode>,
}

#[derive(serde::Deserialize)]
struct ParentNode {
    oid: Oid,
}

/// A file's content at a commit: `Err(())` when only the REST API can read it
/// (truncated or binary).
type Content = std::result::Result<Option<Vec<u8>>, ()>;

/// One file's walk down the first-parent chain.
#[derive(Default)]
struct Walk {
    /// The newer commit seen last, with its message and the file's content there.
    prev: Option<(Oid, String, Option<Vec<u8>>)>,
    out: Vec<HistoryEntry>,
    done: bool,
}

impl GitHubRepo {
    /// [`Git::file_histories`](crate::repo::Git::file_histories) through the API,
    /// [`PATHS_PER_QUERY`] files a query.
    pub(super) fn api_file_histories(
        &self,
        head: &Oid,
        paths: &[String],
        limit: usize,
        enough: &mut dyn FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<Vec<Vec<HistoryEntry>>> {
        let mut out = Vec::with_capacity(paths.len());
        for (n, chunk) in paths.chunks(PATHS_PER_QUERY).enumerate() {
            let base = n * PATHS_PER_QUERY;
            out.extend(self.walk_histories(head, chunk, limit, &mut |i, h| enough(base + i, h))?);
        }
        Ok(out)
    }

    fn walk_histories(
        &self,
        head: &Oid,
        paths: &[String],
        limit: usize,
        enough: &mut dyn FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<Vec<Vec<HistoryEntry>>> {
        // First-parent history, as the local backend reads it: a path-filtered
        // listing would follow merged feature branches into values main never ran.
        let mut decl = String::from("query($owner: String!, $name: String!, $head: GitObjectID!, $after: String");
        let mut files = String::new();
        let mut vars = json!({"owner": self.owner, "name": self.name, "head": head});
        for (j, p) in paths.iter().enumerate() {
            decl.push_str(&format!(", $p{j}: String!"));
            vars[format!("p{j}")] = json!(p);
            files.push_str(&format!(
                " f{j}: file(path: $p{j}) {{ object {{ ... on Blob {{ text isTruncated isBinary }} }} }}"
            ));
        }
        // Per commit also the pull request that merged it (a rollback looks at the
        // last change's), and with `ReadPlan::checks` its statuses and check runs.
        let rollup = if self.with_checks.get() {
            format!(" {}", checks::ROLLUP)
        } else {
            String::new()
        };
        let query = format!(
            "{decl}) {{ repository(owner: $owner, name: $name) {{ object(oid: $head) {{ ... on Commit {{ history(first: 100, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ oid message parents(first: 1) {{ nodes {{ oid }} }} associatedPullRequests(first: {PULLS}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ number body merged mergeCommit {{ oid }} }} }}{rollup}{files} }} }} }} }} }} }}"
        );
        // sha -> (message, first parent, each file's content)
        let mut commits: HashMap<Oid, (String, Option<Oid>, Vec<Content>)> = HashMap::new();
        let mut walks: Vec<Walk> = paths.iter().map(|_| Walk::default()).collect();
        let mut after: Option<String> = None;
        let mut cur = Some(head.clone());
        let mut root = false;
        const REQUEST: &str = "the GraphQL history query";
        for _page in 0..10 {
            vars["after"] = json!(after);
            let data = self.api.graphql(&query, vars.clone())?;
            let history = data
                .pointer("/repository/object/history")
                .filter(|h| !h.is_null())
                .cloned()
                .ok_or_else(|| {
                    Error::failed(format!(
                        "GitHub returned no history for {}",
                        crate::names::short_sha(head)
                    ))
                })?;
            let history: History = answers::answer(history, REQUEST, "repository.object.history")?;
            for n in history.nodes {
                let mut contents: Vec<Content> = Vec::with_capacity(paths.len());
                for j in 0..paths.len() {
                    contents.push(match n.files.get(&format!("f{j}")) {
                        None | Some(Value::Null) => Ok(None),
                        Some(f) => {
                            let at = format!("repository.object.history.nodes.f{j}");
                            let entry: answers::FileEntry = answers::answer(f.clone(), REQUEST, &at)?;
                            // Truncated or binary: read through the REST blob API.
                            answers::blob_of(entry.object, REQUEST, &format!("{at}.object"))?
                                .and_then(answers::Blob::text)
                                .map(Some)
                                .ok_or(())
                        }
                    });
                }
                let parent = n.parents.nodes.into_iter().next().map(|p| p.oid);
                // Every commit of `head`'s history is in it.
                self.ancestry.borrow_mut().insert((n.oid.clone(), head.clone()), true);
                if let Some(pr) = n.pulls.and_then(|p| p.merged(&n.oid)) {
                    self.merged_prs.borrow_mut().insert(n.oid.clone(), pr);
                }
                if self.with_checks.get() {
                    let at = "repository.object.history.nodes.statusCheckRollup";
                    let (found, next) = checks::rollup_page(n.rollup.unwrap_or(Value::Null), REQUEST, at)?;
                    // Past the first page the gate reads them all itself.
                    if next.is_none() {
                        self.checks.borrow_mut().insert(n.oid.clone(), found);
                    }
                }
                commits.insert(n.oid, (n.message, parent, contents));
            }
            // Follow the first-parent chain as far as this page reaches.
            while let Some(sha) = cur.clone() {
                let Some((message, parent, contents)) = commits.get(&sha) else {
                    break;
                };
                for (j, walk) in walks.iter_mut().enumerate().filter(|(_, w)| !w.done) {
                    let content = match &contents[j] {
                        Ok(c) => c.clone(),
                        Err(()) => self.read_file(&sha, &paths[j])?,
                    };
                    if let Some((pid, pmsg, pcontent)) = walk.prev.take()
                        && pcontent != content
                    {
                        walk.out.push(HistoryEntry {
                            commit: pid,
                            message: pmsg,
                            content: pcontent,
                        });
                        if walk.out.len() >= limit || walk.out.last().is_some_and(|h| enough(j, h)) {
                            walk.done = true;
                            continue;
                        }
                    }
                    walk.prev = Some((sha.clone(), message.clone(), content));
                }
                root = parent.is_none();
                cur = parent.clone();
                if walks.iter().all(|w| w.done) {
                    return Ok(walks.into_iter().map(|w| w.out).collect());
                }
            }
            if cur.is_none() || !history.page_info.has_next_page {
                break;
            }
            after = history.page_info.end_cursor;
        }
        Ok(walks
            .into_iter()
            .map(|mut w| {
                // The root commit created the file.
                if root
                    && !w.done
                    && let Some((pid, pmsg, Some(c))) = w.prev.take()
                {
                    w.out.push(HistoryEntry {
                        commit: pid,
                        message: pmsg,
                        content: Some(c),
                    });
                }
                w.out
            })
            .collect())
    }
}
