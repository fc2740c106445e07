//! [`Git::file_histories`](super::Git::file_histories) on the local backend: one
//! first-parent walk for all the paths together instead of one walk a path.
//!
//! The paths form a trie of their components. Each commit's tree is compared with
//! the newer commit's top-down, entry id against entry id: a subtree whose id did
//! not change holds no changed path and is not read, so a commit costs the trees
//! along what it changed, not a lookup a path in every (wide) tree. Only the blobs
//! of changed paths are read. A path is dropped from the walk once its history is
//! complete (the limit, or `enough`), and the walk stops when none is left.
//!
//! Each path's history is exactly what [`LocalRepo::file_history`] gives for it
//! (same entries, same stopping points); the comparison goes by blob id, so a mode
//! change alone is no change, as there.

use std::collections::HashMap;

use gix::ObjectId;
use gix::bstr::ByteSlice;

use super::HistoryEntry;
use super::local::{LocalRepo, git_err, oid};
use crate::error::Result;

/// What a tree entry is, as far as a path lookup cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tree,
    /// A regular or executable file: what a path's history follows.
    Blob,
    /// A symbolic link or a submodule: not a file, not a directory.
    Other,
}

/// The entry at a trie node in one commit (`None`: absent).
type Slot = Option<(ObjectId, Kind)>;

fn blob_of(slot: Slot) -> Option<ObjectId> {
    match slot {
        Some((id, Kind::Blob)) => Some(id),
        _ => None,
    }
}

struct Node {
    /// Components below, in the order first seen, and where each is in `children`.
    children: Vec<usize>,
    names: HashMap<Vec<u8>, usize>,
    /// The paths (by index) that end here.
    ends: Vec<usize>,
    /// The entry here in the newer commit of the pair compared; `None` before the
    /// first commit.
    entry: Option<Slot>,
    /// Paths at or below this node still walked.
    active: usize,
    parent: Option<usize>,
}

impl Node {
    fn new(parent: Option<usize>) -> Node {
        Node {
            children: Vec::new(),
            names: HashMap::new(),
            ends: Vec::new(),
            entry: None,
            active: 0,
            parent,
        }
    }
}

struct Trie {
    nodes: Vec<Node>,
    /// The node each path ends at (`None`: a path without components, never there).
    end_of: Vec<Option<usize>>,
}

impl Trie {
    /// Paths split as [`gix::Tree::lookup_entry_by_path`] splits them.
    fn new(paths: &[String]) -> Trie {
        let mut trie = Trie {
            nodes: vec![Node::new(None)],
            end_of: Vec::with_capacity(paths.len()),
        };
        for (i, p) in paths.iter().enumerate() {
            let parts: Vec<&[u8]> = std::path::Path::new(p)
                .components()
                .map(|c| c.as_os_str().as_encoded_bytes())
                .collect();
            if parts.is_empty() {
                trie.end_of.push(None);
                continue;
            }
            let mut n = 0;
            for part in parts {
                n = match trie.nodes[n].names.get(part) {
                    Some(&k) => trie.nodes[n].children[k],
                    None => {
                        let child = trie.nodes.len();
                        trie.nodes.push(Node::new(Some(n)));
                        let node = &mut trie.nodes[n];
                        node.names.insert(part.to_vec(), node.children.len());
                        node.children.push(child);
                        child
                    }
                };
            }
            trie.nodes[n].ends.push(i);
            trie.end_of.push(Some(n));
            let mut up = Some(n);
            while let Some(u) = up {
                trie.nodes[u].active += 1;
                up = trie.nodes[u].parent;
            }
        }
        trie
    }

    /// Path `i` needs no more of the walk.
    fn retire(&mut self, i: usize) {
        let mut up = self.end_of[i];
        while let Some(u) = up {
            self.nodes[u].active -= 1;
            up = self.nodes[u].parent;
        }
    }

    /// Moves node `n` to its entry `now` in the next (older) commit, adding each
    /// active path whose blob differs to `changed` with its blob in the newer one.
    fn step(
        &mut self,
        repo: &gix::Repository,
        n: usize,
        now: Slot,
        changed: &mut Vec<(usize, Option<ObjectId>)>,
    ) -> Result<()> {
        let node = &self.nodes[n];
        if node.active == 0 || node.entry == Some(now) {
            return Ok(());
        }
        if let Some(before) = node.entry
            && blob_of(before) != blob_of(now)
        {
            changed.extend(node.ends.iter().map(|&i| (i, blob_of(before))));
        }
        if !node.children.is_empty() {
            let mut below: Vec<Slot> = vec![None; node.children.len()];
            match now {
                Some((id, Kind::Tree)) => {
                    let tree = repo.find_object(id).map_err(git_err("look up path"))?;
                    if tree.kind.is_tree() {
                        let mut seen = vec![false; below.len()];
                        for e in gix::objs::TreeRefIter::from_bytes(&tree.data, repo.object_hash()).flatten() {
                            if let Some(&k) = node.names.get(e.filename.as_bytes())
                                && !seen[k]
                            {
                                seen[k] = true;
                                let kind = if e.mode.is_tree() {
                                    Kind::Tree
                                } else if e.mode.is_blob() {
                                    Kind::Blob
                                } else {
                                    Kind::Other
                                };
                                below[k] = Some((e.oid.to_owned(), kind));
                            }
                        }
                    }
                }
                // A lookup through a file reads it (and fails where it is missing,
                // a submodule's commit): nothing is below it.
                Some((id, _)) => {
                    repo.find_object(id).map_err(git_err("look up path"))?;
                }
                None => {}
            }
            let children = node.children.clone();
            for (c, slot) in children.into_iter().zip(below) {
                self.step(repo, c, slot, changed)?;
            }
        }
        self.nodes[n].entry = Some(now);
        Ok(())
    }
}

impl LocalRepo {
    /// The histories of `paths` from `head`, one walk for all: see the module.
    pub(crate) fn walk_histories(
        &self,
        head: &str,
        paths: &[String],
        limit: usize,
        enough: &mut dyn FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<Vec<Vec<HistoryEntry>>> {
        let mut out: Vec<Vec<HistoryEntry>> = vec![Vec::new(); paths.len()];
        if paths.is_empty() {
            return Ok(out);
        }
        let repo = self.gix();
        let read =
            |b: ObjectId| -> Result<Vec<u8>> { Ok(repo.find_object(b).map_err(git_err("read blob"))?.detach().data) };
        let mut trie = Trie::new(paths);
        let mut done: Vec<bool> = trie.end_of.iter().map(Option::is_none).collect();
        let walk = repo
            .rev_walk([oid(head)?])
            .first_parent_only()
            .all()
            .map_err(git_err("walk history"))?;
        // The newer commit of the pair being compared.
        let mut prev: Option<(String, String)> = None;
        let mut changed: Vec<(usize, Option<ObjectId>)> = Vec::new();
        for info in walk {
            if trie.nodes[0].active == 0 {
                break;
            }
            let Ok(info) = info else { break };
            let c = info.object().map_err(git_err("read commit"))?;
            let tree = c.tree_id().map_err(git_err("read tree"))?.detach();
            changed.clear();
            trie.step(repo, 0, Some((tree, Kind::Tree)), &mut changed)?;
            if let Some((pid, pmsg)) = &prev {
                for &(i, blob) in &changed {
                    if done[i] {
                        continue;
                    }
                    let content = match blob {
                        Some(b) => Some(read(b)?),
                        None => None,
                    };
                    out[i].push(HistoryEntry {
                        commit: pid.clone(),
                        message: pmsg.clone(),
                        content,
                    });
                    if out[i].len() >= limit || out[i].last().is_some_and(|h| enough(i, h)) {
                        done[i] = true;
                        trie.retire(i);
                    }
                }
            }
            let msg = c.message_raw_sloppy().to_str_lossy().into_owned();
            prev = Some((c.id.to_hex().to_string(), msg));
        }
        // The oldest commit reached adds each file still followed that it holds.
        if let Some((pid, pmsg)) = prev {
            for n in 0..trie.nodes.len() {
                let node = &trie.nodes[n];
                let Some(b) = node.entry.and_then(blob_of) else {
                    continue;
                };
                for &i in &node.ends {
                    if !done[i] {
                        out[i].push(HistoryEntry {
                            commit: pid.clone(),
                            message: pmsg.clone(),
                            content: Some(read(b)?),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}
