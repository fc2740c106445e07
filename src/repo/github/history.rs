//! First-parent history of several files at once through the API: one GraphQL query
//! reads 100 commits with their first parent and, per commit, the text of every file
//! asked for (`Commit.history` with an aliased `Commit.file(path:)` per path). The
//! first-parent chain is followed through them, a page more only while a file's walk
//! wants more.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{GitHubRepo, answers};
use crate::error::{Error, Result};
use crate::repo::{Git, HistoryEntry, Oid};

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
    /// `f0`, `f1`, …: the files asked for (`null`: absent at this commit).
    #[serde(flatten)]
    files: HashMap<String, Value>,
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
        let query = format!(
            "{decl}) {{ repository(owner: $owner, name: $name) {{ object(oid: $head) {{ ... on Commit {{ history(first: 100, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ oid message parents(first: 1) {{ nodes {{ oid }} }}{files} }} }} }} }} }} }}"
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
