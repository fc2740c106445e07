//! The local backend: everything through gix on a local repository.

use std::path::{Path, PathBuf};

use gix::bstr::{BStr, ByteSlice};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use super::{
    CommitRequest, HistoryEntry, Oid, PullRequest, PullRequestInfo, PullRequestSpec, RefTarget, RefUpdate, Repository,
};
use crate::error::{Error, Result};
use crate::names::short_sha;

/// Decoded trees by id: path lookups in wide directories (thousands of services)
/// become hash lookups instead of a linear scan per read.
type TreeMap = std::rc::Rc<std::collections::HashMap<Vec<u8>, (gix::ObjectId, bool)>>;
type TreeCache = std::cell::RefCell<std::collections::HashMap<gix::ObjectId, TreeMap>>;

pub struct LocalRepo {
    trees: TreeCache,
    repo: gix::Repository,
    path: PathBuf,
    /// Seconds since the epoch for commit times (passed in, not read here).
    now: i64,
}

pub(crate) fn git_err(what: &str) -> impl Fn(gix::Error) -> Error + '_ {
    move |e| super::git_errors::failed(what, &e)
}

fn oid(s: &str) -> Result<gix::ObjectId> {
    gix::ObjectId::from_hex(s.as_bytes()).map_err(|_| Error::input(format!("`{s}` is not a full commit id")))
}

impl LocalRepo {
    /// Opens the repository at `path`. A checkout owned by another user (the
    /// container case) opens with reduced trust instead of failing.
    pub fn open(path: &Path, now: i64) -> Result<LocalRepo> {
        let opts = gix::open::Options::default().with(gix::sec::Trust::Full);
        let repo = gix::open_opts(path, opts).map_err(|e| {
            Error::input(format!(
                "{} is not a git repository ({e}); check out the GitOps repository first (actions/checkout) or pass `path`",
                path.display()
            ))
        })?;
        Ok(LocalRepo {
            trees: Default::default(),
            repo,
            path: path.to_path_buf(),
            now,
        })
    }

    /// True for a shallow clone (or when that cannot be told).
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow().unwrap_or(true)
    }

    pub fn gix(&self) -> &gix::Repository {
        &self.repo
    }

    fn signature(&self) -> gix::actor::Signature {
        let (name, email) = match self.repo.committer() {
            Some(Ok(sig)) => (sig.name.to_owned(), sig.email.to_owned()),
            _ => ("gitops-flow".into(), "gitops-flow@users.noreply.github.com".into()),
        };
        gix::actor::Signature {
            name,
            email,
            time: gix::date::Time::new(self.now, 0),
        }
    }

    /// Applies ref edits with our own identity in the reflog (the checkout may have none).
    fn apply(&self, edits: Vec<RefEdit>) -> std::result::Result<(), gix::Error> {
        let sig = self.signature();
        let mut buf = gix::date::parse::TimeBuf::default();
        self.repo
            .edit_references_as(edits, Some(sig.to_ref(&mut buf)))
            .map(|_| ())
    }

    /// After a failed transaction: a conflict if any ref is no longer where we expected.
    fn classify(&self, updates: &[RefUpdate], e: gix::Error, what: &str) -> Error {
        let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
        let blocking: Vec<&str> = names.iter().map(String::as_str).collect();
        let locks = super::git_errors::stale_locks(self.repo.git_dir(), &blocking);
        if !locks.is_empty() {
            return super::git_errors::locked(&locks);
        }
        let now = self.resolve_refs(&names).unwrap_or_default();
        super::conflict(updates, &now, &e, &format!("{what}: "))
            .unwrap_or_else(|| Error::failed(format!("{what}: git: {e}")))
    }

    fn commit_obj(&self, id: &str) -> Result<gix::Commit<'_>> {
        self.repo
            .find_object(oid(id)?)
            .map_err(git_err("find commit"))?
            .peel_to_commit()
            .map_err(git_err("peel to commit"))
    }

    /// Entries of a tree: name -> (id, is_tree), cached.
    fn tree_entries(&self, id: gix::ObjectId) -> Result<TreeMap> {
        if let Some(t) = self.trees.borrow().get(&id) {
            return Ok(t.clone());
        }
        let obj = self.repo.find_object(id).map_err(git_err("read tree"))?;
        let tree = obj.into_tree();
        let decoded = tree
            .decode()
            .map_err(|e| Error::failed(format!("git: decode tree: {e}")))?;
        let map: std::collections::HashMap<Vec<u8>, (gix::ObjectId, bool)> = decoded
            .entries
            .iter()
            .map(|e| (e.filename.to_vec(), (e.oid.to_owned(), e.mode.is_tree())))
            .collect();
        let rc = std::rc::Rc::new(map);
        self.trees.borrow_mut().insert(id, rc.clone());
        Ok(rc)
    }

    /// The id of the object at `path` in the tree of `commit` (and whether it is a tree).
    fn entry_at(&self, commit: &str, path: &str) -> Result<Option<(gix::ObjectId, bool)>> {
        let mut tree = self
            .commit_obj(commit)?
            .tree_id()
            .map_err(git_err("read commit"))?
            .detach();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return Ok(Some((tree, true)));
        }
        for (i, part) in parts.iter().enumerate() {
            let entries = self.tree_entries(tree)?;
            match entries.get(part.as_bytes()) {
                Some(&(id, is_tree)) if i + 1 == parts.len() => return Ok(Some((id, is_tree))),
                Some(&(id, true)) => tree = id,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    fn has_object(&self, id: &str) -> bool {
        oid(id).is_ok_and(|o| self.repo.has_object(o))
    }

    /// The branch HEAD points to, when the repository has a work tree.
    fn checked_out_branch(&self) -> Option<String> {
        self.repo.workdir()?;
        let name = self.repo.head_name().ok()??;
        Some(name.as_bstr().to_str_lossy().into_owned())
    }

    /// Why a ref does not peel to a commit: it points at a tree or a blob (bad
    /// input), or an object is missing.
    fn peel_error(&self, name: &str, e: gix::Error) -> Error {
        let kind = self
            .repo
            .find_reference(name)
            .ok()
            .and_then(|mut r| r.peel_to_id().ok().map(|id| id.detach()))
            .and_then(|id| self.repo.find_header(id).ok().map(|h| (id, h.kind())));
        match kind {
            Some((id, k)) if k != gix::object::Kind::Commit => {
                super::git_errors::not_a_commit(name, &k.to_string(), &id.to_hex().to_string())
            }
            _ => git_err("peel reference")(e),
        }
    }

    fn blob_at(&self, tree: &gix::Tree<'_>, path: &str) -> Result<Option<gix::ObjectId>> {
        Ok(tree
            .lookup_entry_by_path(path)
            .map_err(git_err("look up path"))?
            .filter(|e| e.mode().is_blob())
            .map(|e| e.object_id()))
    }
}

fn ref_change(u: &RefUpdate, message: &str) -> Result<RefEdit> {
    let expected = match &u.expected {
        Some(o) => PreviousValue::MustExistAndMatch(Target::Object(oid(o)?)),
        None => PreviousValue::MustNotExist,
    };
    let name: FullName = u
        .name
        .as_str()
        .try_into()
        .map_err(|_| Error::input(format!("`{}` is not a valid ref name", u.name)))?;
    Ok(RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: message.into(),
            },
            expected,
            new: Target::Object(oid(&u.new)?),
        },
        name,
        deref: false,
    })
}

impl Repository for LocalRepo {
    fn describe(&self) -> String {
        std::fs::canonicalize(&self.path)
            .unwrap_or_else(|_| self.path.clone())
            .display()
            .to_string()
    }

    fn default_branch(&self) -> Result<String> {
        for name in ["refs/remotes/origin/HEAD"] {
            if let Ok(Some(r)) = self.repo.try_find_reference(name)
                && let gix::refs::TargetRef::Symbolic(t) = r.target()
            {
                let s = t.as_bstr().to_str_lossy();
                if let Some(b) = s.strip_prefix("refs/remotes/origin/") {
                    return Ok(b.to_string());
                }
            }
        }
        if let Ok(Some(name)) = self.repo.head_name()
            && let Some(b) = name.as_bstr().to_str_lossy().strip_prefix("refs/heads/")
        {
            return Ok(b.to_string());
        }
        for b in ["main", "master"] {
            if let Ok(Some(_)) = self.repo.try_find_reference(format!("refs/heads/{b}").as_str()) {
                return Ok(b.to_string());
            }
        }
        Err(Error::input(
            "cannot tell the repository's default branch; pass `branch`",
        ))
    }

    fn resolve_refs(&self, names: &[String]) -> Result<Vec<Option<RefTarget>>> {
        names
            .iter()
            .map(|n| {
                let found = self.repo.try_find_reference(n.as_str()).map_err(|e| {
                    if super::git_errors::chain(&e).contains("could not be decoded") {
                        super::git_errors::corrupt_ref(n, self.repo.git_dir())
                    } else {
                        git_err("find reference")(e)
                    }
                })?;
                let Some(mut r) = found else {
                    return Ok(None);
                };
                let target = match r.target() {
                    gix::refs::TargetRef::Object(o) => o.to_hex().to_string(),
                    gix::refs::TargetRef::Symbolic(_) => String::new(),
                };
                let commit = match r.peel_to_commit() {
                    Ok(c) => c.id.to_hex().to_string(),
                    Err(e) => return Err(self.peel_error(n, e)),
                };
                let target = if target.is_empty() { commit.clone() } else { target };
                Ok(Some(RefTarget { target, commit }))
            })
            .collect()
    }

    fn resolve_revision(&self, rev: &str) -> Result<Option<Oid>> {
        let parsed = self.repo.rev_parse_single(rev);
        if let Err(e) = &parsed {
            if super::git_errors::chain(e).to_lowercase().contains("ambiguous") {
                return Err(super::git_errors::ambiguous(rev));
            }
            if rev.len() >= 4 && rev.bytes().all(|b| b.is_ascii_hexdigit()) && self.is_shallow() {
                return Err(super::git_errors::not_in_shallow_clone(rev, &self.path));
            }
        }
        match parsed {
            Ok(id) => {
                let c = id
                    .object()
                    .map_err(git_err("find object"))?
                    .peel_to_commit()
                    .map_err(git_err("peel to commit"))?;
                Ok(Some(c.id.to_hex().to_string()))
            }
            Err(_) => Ok(None),
        }
    }

    fn read_file(&self, commit: &Oid, path: &str) -> Result<Option<Vec<u8>>> {
        match self.entry_at(commit, path)? {
            Some((id, false)) => Ok(Some(
                self.repo.find_object(id).map_err(git_err("read blob"))?.detach().data,
            )),
            _ => Ok(None),
        }
    }

    fn list_dir(&self, commit: &Oid, path: &str) -> Result<Vec<String>> {
        let tree = self.commit_obj(commit)?.tree().map_err(git_err("read tree"))?;
        let Some(entry) = tree.lookup_entry_by_path(path).map_err(git_err("look up path"))? else {
            return Ok(Vec::new());
        };
        if !entry.mode().is_tree() {
            return Ok(Vec::new());
        }
        let sub = entry.object().map_err(git_err("read tree"))?.into_tree();
        let decoded = sub
            .decode()
            .map_err(|e| Error::failed(format!("git: decode tree: {e}")))?;
        Ok(decoded
            .entries
            .iter()
            .map(|e| e.filename.to_str_lossy().into_owned())
            .collect())
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, RefTarget)>> {
        let platform = self.repo.references().map_err(git_err("list references"))?;
        let mut out = Vec::new();
        for r in platform.prefixed(prefix).map_err(git_err("list references"))? {
            let Ok(mut r) = r else { continue };
            let name = r.name().as_bstr().to_str_lossy().into_owned();
            let target = match r.target() {
                gix::refs::TargetRef::Object(o) => o.to_hex().to_string(),
                gix::refs::TargetRef::Symbolic(_) => continue,
            };
            let commit = match r.peel_to_id() {
                Ok(id) => id.to_hex().to_string(),
                Err(_) => continue,
            };
            out.push((name, RefTarget { target, commit }));
        }
        Ok(out)
    }

    fn is_ancestor(&self, ancestor: &Oid, descendant: &Oid) -> Result<bool> {
        if ancestor == descendant {
            return Ok(true);
        }
        if !self.has_object(ancestor) || !self.has_object(descendant) {
            return Ok(false);
        }
        match self.repo.merge_base(oid(ancestor)?, oid(descendant)?) {
            Ok(base) => Ok(base.is_some_and(|b| b.to_hex().to_string().as_str() == ancestor.as_str())),
            Err(_) => Ok(false),
        }
    }

    fn changed_paths(&self, commit: &Oid) -> Result<Vec<String>> {
        let c = self.commit_obj(commit)?;
        let new_tree = c.tree().map_err(git_err("read tree"))?;
        let parent = c.parent_ids().next();
        let old_tree = match parent {
            Some(p) => Some(
                p.object()
                    .map_err(git_err("read parent"))?
                    .peel_to_commit()
                    .map_err(git_err("peel"))?
                    .tree()
                    .map_err(git_err("read tree"))?,
            ),
            None => None,
        };
        let mut opts = gix::diff::Options::default();
        opts.track_path();
        let changes = self
            .repo
            .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(opts))
            .map_err(git_err("diff trees"))?;
        Ok(changes
            .iter()
            .filter(|c| !c.entry_mode().is_tree())
            .map(|c| c.location().to_str_lossy().into_owned())
            .collect())
    }

    fn file_history(&self, head: &Oid, path: &str, limit: usize) -> Result<Vec<HistoryEntry>> {
        let walk = self
            .repo
            .rev_walk([oid(head)?])
            .first_parent_only()
            .all()
            .map_err(git_err("walk history"))?;
        let mut out: Vec<HistoryEntry> = Vec::new();
        let mut prev: Option<(Oid, String, Option<gix::ObjectId>)> = None;
        for info in walk {
            let Ok(info) = info else { break };
            let c = info.object().map_err(git_err("read commit"))?;
            let tree = c.tree().map_err(git_err("read tree"))?;
            let blob = self.blob_at(&tree, path)?;
            let id = c.id.to_hex().to_string();
            let msg = c.message_raw_sloppy().to_str_lossy().into_owned();
            if let Some((pid, pmsg, pblob)) = prev.take()
                && pblob != blob
            {
                let content = match pblob {
                    Some(b) => Some(self.repo.find_object(b).map_err(git_err("read blob"))?.detach().data),
                    None => None,
                };
                out.push(HistoryEntry {
                    commit: pid,
                    message: pmsg,
                    content,
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            prev = Some((id, msg, blob));
        }
        if let Some((pid, pmsg, Some(b))) = prev {
            let content = Some(self.repo.find_object(b).map_err(git_err("read blob"))?.detach().data);
            out.push(HistoryEntry {
                commit: pid,
                message: pmsg,
                content,
            });
        }
        Ok(out)
    }

    fn update_refs(&self, updates: &[RefUpdate], message: &str) -> Result<()> {
        let edits = updates
            .iter()
            .map(|u| ref_change(u, message))
            .collect::<Result<Vec<_>>>()?;
        if let Some(branch) = self.checked_out_branch()
            && updates.iter().any(|u| u.name == branch)
        {
            return Err(Error::failed(format!(
                "refusing to move `{branch}`: it is checked out in {}; the work tree would go stale",
                self.path.display()
            )));
        }
        self.apply(edits)
            .map_err(|e| self.classify(updates, e, "could not move refs"))
    }

    fn commit(&self, req: &CommitRequest) -> Result<Oid> {
        let full = format!("refs/heads/{}", req.branch);
        let parent = self.commit_obj(&req.parent)?;
        let parent_tree = parent.tree().map_err(git_err("read tree"))?;
        // Compare-and-swap precheck (the ref transaction checks again under its lock).
        let current = self
            .resolve_refs(std::slice::from_ref(&full))?
            .into_iter()
            .next()
            .flatten();
        if current.as_ref().map(|c| c.target.as_str()) != req.expected_head.as_deref() {
            return Err(Error::Conflict(format!(
                "branch `{}` is at {} but was expected at {}; another writer got there first, nothing was overwritten",
                req.branch,
                current.as_ref().map_or("nothing", |c| short_sha(&c.target)),
                req.expected_head.as_deref().map_or("nothing", short_sha)
            )));
        }
        let on_worktree = self.checked_out_branch().as_deref() == Some(full.as_str());
        let workdir = self.repo.workdir().map(Path::to_path_buf);
        // Refuse when the files we would touch have uncommitted changes.
        let mut index = None;
        if on_worktree {
            let idx = self.repo.open_index().map_err(git_err("open index"))?;
            let head_tree = match &current {
                Some(c) => self.commit_obj(&c.commit)?.tree().map_err(git_err("read tree"))?,
                None => parent_tree.clone(),
            };
            for ch in &req.changes {
                // Never write through a symbolic link: it could lead outside the repository.
                let wd = workdir.as_ref().expect("has workdir");
                let mut at = wd.clone();
                for part in ch.path.split('/') {
                    at.push(part);
                    if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                        return Err(Error::input(format!(
                            "{} is a symbolic link in the work tree of {}; gitops-flow does not write through links, point the config at the real file",
                            at.strip_prefix(wd).unwrap_or(&at).display(),
                            self.path.display()
                        )));
                    }
                }
                let head_blob = self.blob_at(&head_tree, &ch.path)?;
                let staged = idx.entry_by_path(BStr::new(ch.path.as_bytes())).map(|e| e.id);
                let on_disk = std::fs::read(workdir.as_ref().expect("has workdir").join(&ch.path)).ok();
                let disk_blob = on_disk
                    .map(|d| gix::objs::compute_hash(self.repo.object_hash(), gix::objs::Kind::Blob, &d))
                    .transpose()
                    .map_err(|e| Error::failed(format!("hash: {e}")))?;
                if staged != head_blob || disk_blob != head_blob {
                    return Err(Error::input(format!(
                        "{} has uncommitted changes in {}; commit or stash them, then re-run",
                        ch.path,
                        self.path.display()
                    )));
                }
            }
            index = Some(idx);
        }
        let mut editor = self.repo.edit_tree(parent_tree.id).map_err(git_err("edit tree"))?;
        let mut blobs = Vec::new();
        for ch in &req.changes {
            let blob = self
                .repo
                .write_blob(&ch.content)
                .map_err(git_err("write blob"))?
                .detach();
            editor
                .upsert(ch.path.as_str(), gix::objs::tree::EntryKind::Blob, blob)
                .map_err(git_err("edit tree"))?;
            blobs.push(blob);
        }
        let tree = editor.write().map_err(git_err("write tree"))?.detach();
        let sig = self.signature();
        let commit = gix::objs::Commit {
            tree,
            parents: [parent.id].into_iter().collect(),
            author: sig.clone(),
            committer: sig,
            encoding: None,
            message: req.message.clone().into(),
            extra_headers: Vec::new(),
        };
        let new = self
            .repo
            .write_object(&commit)
            .map_err(git_err("write commit"))?
            .detach();
        let new_hex = new.to_hex().to_string();
        let update = RefUpdate {
            name: full.clone(),
            expected: req.expected_head.clone(),
            new: new_hex.clone(),
        };
        let edit = ref_change(
            &update,
            &format!("gitops-flow: {}", req.message.lines().next().unwrap_or_default()),
        )?;
        self.apply(vec![edit])
            .map_err(|e| self.classify(std::slice::from_ref(&update), e, "could not commit"))?;
        // As `git commit` would: bring index and work tree along.
        if let (Some(mut idx), Some(wd)) = (index, workdir) {
            for (ch, blob) in req.changes.iter().zip(&blobs) {
                let file = wd.join(&ch.path);
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::failed(format!("write {}: {e}", ch.path)))?;
                }
                let tmp = file.with_extension("gitops-flow.tmp");
                std::fs::write(&tmp, &ch.content)
                    .and_then(|_| std::fs::rename(&tmp, &file))
                    .map_err(|e| Error::failed(format!("write {}: {e}", ch.path)))?;
                let meta = gix::index::fs::Metadata::from_path_no_follow(&file)
                    .map_err(|e| Error::failed(format!("stat {}: {e}", ch.path)))?;
                let stat = gix::index::entry::Stat::from_fs(&meta)
                    .map_err(|e| Error::failed(format!("stat {}: {e}", ch.path)))?;
                let path = BStr::new(ch.path.as_bytes());
                match idx.entry_mut_by_path_and_stage(path, gix::index::entry::Stage::Unconflicted) {
                    Some(e) => {
                        e.id = *blob;
                        e.stat = stat;
                    }
                    None => {
                        idx.dangerously_push_entry(
                            stat,
                            *blob,
                            gix::index::entry::Flags::empty(),
                            gix::index::entry::Mode::FILE,
                            path,
                        );
                        idx.sort_entries();
                    }
                }
            }
            idx.remove_tree();
            idx.write(gix::index::write::Options::default())
                .map_err(|e| Error::failed(format!("write index: {e}")))?;
        }
        Ok(new_hex)
    }

    fn pull_request(&self, spec: &PullRequestSpec) -> Result<PullRequest> {
        // The local backend reports a pull request; it never opens or merges one.
        tracing::info!(head = %spec.head, base = %spec.base, "pull request (not opened on the local backend): {}", spec.title);
        Ok(PullRequest {
            number: None,
            url: None,
            created: false,
        })
    }

    fn pull_request_for_commit(&self, _sha: &Oid) -> Result<Option<PullRequestInfo>> {
        Ok(None)
    }
}
