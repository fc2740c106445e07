//! The local backend: everything through gix on a local repository.

use std::path::{Path, PathBuf};

use gix::bstr::{BStr, ByteSlice};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use super::{CommitRequest, Git, HistoryEntry, Journal, Oid, RefTarget, RefUpdate, Write};
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
    journal: Journal,
}

pub(crate) fn git_err(what: &str) -> impl Fn(gix::Error) -> Error + '_ {
    move |e| super::git_errors::failed(what, &e)
}

pub(crate) fn oid(s: &str) -> Result<gix::ObjectId> {
    gix::ObjectId::from_hex(s.as_bytes()).map_err(|_| Error::input(format!("`{s}` is not a full commit id")))
}

impl LocalRepo {
    /// Opens the repository at `path`. A checkout owned by another user (the
    /// container case) opens with reduced trust instead of failing.
    pub fn open(path: &Path, now: i64) -> Result<LocalRepo> {
        // Concurrent runs on one repository wait for each other's ref locks (git's
        // own default is 100 ms, too short for a busy runner).
        let opts = gix::open::Options::default()
            .with(gix::sec::Trust::Full)
            .config_overrides(["core.filesRefLockTimeout=5000"]);
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
            journal: Journal::default(),
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

    /// Each ref read on its own (see `resolve_refs` for a snapshot of several).
    fn read_refs(&self, names: &[String]) -> Result<Vec<Option<RefTarget>>> {
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

    /// The refs under `prefix`, each read on its own (see `list_refs`).
    fn read_ref_list(&self, prefix: &str) -> Result<Vec<(String, RefTarget)>> {
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

    /// Whether a writer holds a lock of a ref under `prefix` (or of `packed-refs`).
    fn prefix_locked(&self, prefix: &str) -> bool {
        let common = self.repo.common_dir();
        let dir = common.join(prefix);
        let dir = if prefix.ends_with('/') {
            dir.as_path()
        } else {
            dir.parent().unwrap_or(common)
        };
        common.join("packed-refs.lock").exists() || has_lock_file(dir)
    }

    /// Whether a writer holds the lock of one of `names` (or of `packed-refs`).
    fn refs_locked(&self, names: &[String]) -> bool {
        let common = self.repo.common_dir();
        common.join("packed-refs.lock").exists()
            || names.iter().any(|n| {
                let dir = if n.starts_with("refs/") {
                    common
                } else {
                    self.repo.git_dir()
                };
                dir.join(format!("{n}.lock")).exists()
            })
    }

    /// Applies ref edits with our own identity in the reflog (the checkout may have none).
    fn apply(&self, edits: Vec<RefEdit>) -> std::result::Result<(), gix::Error> {
        let sig = self.signature();
        let mut buf = gix::date::parse::TimeBuf::default();
        self.repo
            .edit_references_as(edits, Some(sig.to_ref(&mut buf)))
            .map(|_| ())
    }

    /// After a failed transaction: a conflict if any ref is no longer where we
    /// expected (read as one snapshot, after a concurrent writer let go of its locks),
    /// else a lock file still in the way, else git's own error. A lock seen first
    /// would blame a live writer's lock for what is a lost compare-and-swap.
    fn classify(&self, updates: &[RefUpdate], e: gix::Error, what: &str) -> Error {
        let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
        // A read that fails too (a corrupt ref) says nothing about a conflict.
        if let Ok(now) = self.resolve_refs(&names)
            && let Some(conflict) = super::conflict(updates, &now, &e, &format!("{what}: "))
        {
            return conflict;
        }
        let blocking: Vec<&str> = names.iter().map(String::as_str).collect();
        let locks = super::git_errors::stale_locks(self.repo.common_dir(), &blocking);
        if !locks.is_empty() {
            return super::git_errors::locked(&locks);
        }
        Error::failed(format!("{what}: git: {e}"))
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

    /// Writes the blobs, tree and commit of `changes` on top of `parent` into the
    /// object database, moving no ref. Returns the commit and the blobs, in order.
    fn write_commit_objects(
        &self,
        parent: &gix::Commit<'_>,
        changes: &[super::FileChange],
        message: &str,
    ) -> Result<(Oid, Vec<gix::ObjectId>)> {
        let parent_tree = parent.tree().map_err(git_err("read tree"))?;
        let mut editor = self.repo.edit_tree(parent_tree.id).map_err(git_err("edit tree"))?;
        let mut blobs = Vec::new();
        for ch in changes {
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
            message: message.into(),
            extra_headers: Vec::new(),
        };
        let new = self
            .repo
            .write_object(&commit)
            .map_err(git_err("write commit"))?
            .detach();
        Ok((new.to_hex().to_string(), blobs))
    }

    /// Writes a commit of `changes` on top of `parent` (objects only, no ref moves):
    /// what the `git` backend then publishes with `git push`.
    pub(crate) fn write_commit(&self, parent: &Oid, changes: &[super::FileChange], message: &str) -> Result<Oid> {
        let parent = self.commit_obj(parent)?;
        Ok(self.write_commit_objects(&parent, changes, message)?.0)
    }

    fn has_object(&self, id: &str) -> bool {
        oid(id).is_ok_and(|o| self.repo.has_object(o))
    }

    /// The work tree (this one, the main one or a linked one) that has `full`
    /// (`refs/heads/...`) checked out, if any.
    fn checkout_of(&self, full: &str) -> Option<Checkout> {
        let all = self.repo.worktrees_including_main().ok()?;
        for r in all.flatten() {
            let Some(workdir) = r.workdir().map(Path::to_path_buf) else {
                continue;
            };
            if r.head_name()
                .ok()
                .flatten()
                .is_some_and(|n| n.as_bstr() == full.as_bytes())
            {
                return Some(Checkout { repo: r, workdir });
            }
        }
        None
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

/// A work tree with the branch being written checked out.
struct Checkout {
    repo: gix::Repository,
    workdir: PathBuf,
}

/// Git's `index.lock`, taken before the branch moves and released after the index
/// and work tree followed it: concurrent runs (and git itself) wait for each other,
/// and a lock we cannot get means nothing was written.
struct IndexLock {
    lock: PathBuf,
    index: PathBuf,
    done: bool,
}

impl IndexLock {
    /// How long to wait for another process's lock before refusing.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

    fn acquire(index: &Path, workdir: &Path) -> Result<IndexLock> {
        let mut lock = index.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let start = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => {
                    return Ok(IndexLock {
                        lock,
                        index: index.to_path_buf(),
                        done: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && start.elapsed() < Self::PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::input(format!(
                        "{} exists: another git process is working in {}, or one crashed and left its lock behind. Nothing was written; if no git process is running there, delete {} and re-run",
                        lock.display(),
                        workdir.display(),
                        lock.display()
                    )));
                }
                Err(e) => {
                    return Err(Error::failed(format!("cannot create {}: {e}", lock.display())));
                }
            }
        }
    }

    /// Writes `index` through the lock file and puts it in place.
    fn commit(mut self, index: &gix::index::File) -> Result<()> {
        let write = || -> std::result::Result<(), String> {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&self.lock)
                .map_err(|e| e.to_string())?;
            let mut w = std::io::BufWriter::new(f);
            index
                .write_to(&mut w, gix::index::write::Options::default())
                .map_err(|e| e.to_string())?;
            let f = w.into_inner().map_err(|e| e.to_string())?;
            f.sync_all().map_err(|e| e.to_string())?;
            std::fs::rename(&self.lock, &self.index).map_err(|e| e.to_string())
        };
        let r = write().map_err(|e| Error::failed(format!("write index {}: {e}", self.index.display())));
        self.done = r.is_ok();
        r
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.lock);
        }
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

impl Git for LocalRepo {
    fn describe(&self) -> String {
        std::fs::canonicalize(&self.path)
            .unwrap_or_else(|_| self.path.clone())
            .display()
            .to_string()
    }

    fn written(&self) -> Vec<Write> {
        self.journal.entries()
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
        // Not the checked-out branch: that may be any feature branch.
        for b in ["main", "master"] {
            if let Ok(Some(_)) = self.repo.try_find_reference(format!("refs/heads/{b}").as_str()) {
                return Ok(b.to_string());
            }
        }
        Err(Error::input(
            "cannot tell the repository's main branch: there is no `origin/HEAD` and no `main` or `master`; pass `branch` (or set `branch:` in gitops-flow.yaml)",
        ))
    }

    /// Several refs are read as one snapshot (see [`snapshot`]).
    fn resolve_refs(&self, names: &[String]) -> Result<Vec<Option<RefTarget>>> {
        if names.len() < 2 {
            return self.read_refs(names);
        }
        snapshot(|| self.read_refs(names), || self.refs_locked(names))
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

    fn first_parent(&self, commit: &Oid) -> Result<Option<Oid>> {
        Ok(self
            .commit_obj(commit)?
            .parent_ids()
            .next()
            .map(|p| p.to_hex().to_string()))
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
        snapshot(|| self.read_ref_list(prefix), || self.prefix_locked(prefix))
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

    fn file_history(
        &self,
        head: &Oid,
        path: &str,
        limit: usize,
        enough: &mut dyn FnMut(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>> {
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
                if out.len() >= limit || out.last().is_some_and(&mut *enough) {
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

    /// One walk for all the paths (see `local_history`), not one a path.
    fn file_histories(
        &self,
        head: &Oid,
        paths: &[String],
        limit: usize,
        enough: &mut dyn FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<Vec<Vec<HistoryEntry>>> {
        self.walk_histories(head, paths, limit, enough)
    }

    fn update_refs(&self, updates: &[RefUpdate], message: &str) -> Result<()> {
        let edits = updates
            .iter()
            .map(|u| ref_change(u, message))
            .collect::<Result<Vec<_>>>()?;
        for u in updates.iter().filter(|u| u.name.starts_with("refs/heads/")) {
            if let Some(c) = self.checkout_of(&u.name) {
                return Err(Error::input(format!(
                    "refusing to move `{}`: it is checked out in {} and that work tree would go stale; check out another branch there and re-run. Nothing was written",
                    u.name.trim_start_matches("refs/heads/"),
                    c.workdir.display()
                )));
            }
        }
        self.apply(edits)
            .map_err(|e| self.classify(updates, e, "could not move refs"))?;
        self.journal.record(Write::Refs(updates.to_vec()));
        Ok(())
    }

    fn update_refs_guarded(
        &self,
        updates: &[RefUpdate],
        message: &str,
        guard: &str,
        guard_value: &Oid,
    ) -> Result<Option<Oid>> {
        for u in updates.iter().filter(|u| u.name.starts_with("refs/heads/")) {
            if let Some(c) = self.checkout_of(&u.name) {
                return Err(Error::input(format!(
                    "refusing to move `{}`: it is checked out in {} and that work tree would go stale; check out another branch there and re-run. Nothing was written",
                    u.name.trim_start_matches("refs/heads/"),
                    c.workdir.display()
                )));
            }
        }
        let mut edits = updates
            .iter()
            .map(|u| ref_change(u, message))
            .collect::<Result<Vec<_>>>()?;
        // The guard: written back to the value it must have, in the same
        // transaction, so the moves land only if it did not move.
        let name: FullName = guard
            .try_into()
            .map_err(|_| Error::input(format!("`{guard}` is not a valid ref name")))?;
        edits.push(RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: format!("{message} (holds checked at this commit)").into(),
                },
                expected: PreviousValue::MustExistAndMatch(Target::Object(oid(guard_value)?)),
                new: Target::Object(oid(guard_value)?),
            },
            name,
            deref: false,
        });
        let mut all = updates.to_vec();
        all.push(RefUpdate {
            name: guard.to_string(),
            expected: Some(guard_value.clone()),
            new: guard_value.clone(),
        });
        self.apply(edits)
            .map_err(|e| self.classify(&all, e, "could not move refs"))?;
        self.journal.record(Write::Refs(updates.to_vec()));
        Ok(None)
    }

    fn actor(&self) -> Option<String> {
        match self.repo.committer() {
            Some(Ok(sig)) => Some(format!("{} <{}>", sig.name, sig.email)),
            _ => None,
        }
    }

    fn commit(&self, req: &CommitRequest) -> Result<Oid> {
        let full = format!("refs/heads/{}", req.branch);
        let parent = self.commit_obj(&req.parent)?;
        let parent_tree = parent.tree().map_err(git_err("read tree"))?;
        // A checked-out branch moves with its index and work tree, as `git commit`
        // would: everything that can stop that is checked under git's index lock
        // before anything is written.
        let checkout = self.checkout_of(&full);
        let lock = match &checkout {
            Some(c) => Some(IndexLock::acquire(&c.repo.index_path(), &c.workdir)?),
            None => None,
        };
        // Compare-and-swap precheck (the ref transaction checks again under its lock).
        let current = self.resolve_ref(&full)?;
        if current.as_ref().map(|c| c.target.as_str()) != req.expected_head.as_deref() {
            return Err(Error::conflict(format!(
                "branch `{}` is at {} but was expected at {}; another writer got there first, nothing was overwritten",
                req.branch,
                current.as_ref().map_or("nothing", |c| short_sha(&c.target)),
                req.expected_head.as_deref().map_or("nothing", short_sha)
            )));
        }
        let mut index = None;
        if let Some(c) = &checkout {
            let wd = &c.workdir;
            if current.as_ref().map(|h| h.commit.as_str()) != Some(req.parent.as_str()) {
                return Err(Error::input(format!(
                    "branch `{}` is checked out in {} and would be rebuilt on {}, leaving that work tree stale; check out another branch there and re-run. Nothing was written",
                    req.branch,
                    wd.display(),
                    short_sha(&req.parent),
                )));
            }
            // Refuse when the files we would touch have uncommitted changes.
            let idx = c.repo.open_index().map_err(git_err("open index"))?;
            for ch in &req.changes {
                // Never write through a symbolic link: it could lead outside the repository.
                let mut at = wd.clone();
                for part in ch.path.split('/') {
                    at.push(part);
                    if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                        return Err(Error::input(format!(
                            "{} is a symbolic link in the work tree of {}; gitops-flow does not write through links, point the config at the real file",
                            at.strip_prefix(wd).unwrap_or(&at).display(),
                            wd.display()
                        )));
                    }
                }
                let head_blob = self.blob_at(&parent_tree, &ch.path)?;
                let staged = idx.entry_by_path(BStr::new(ch.path.as_bytes())).map(|e| e.id);
                let on_disk = std::fs::read(wd.join(&ch.path)).ok();
                let disk_blob = on_disk
                    .map(|d| gix::objs::compute_hash(self.repo.object_hash(), gix::objs::Kind::Blob, &d))
                    .transpose()
                    .map_err(|e| Error::failed(format!("hash: {e}")))?;
                if staged != head_blob || disk_blob != head_blob {
                    return Err(Error::input(format!(
                        "{} has uncommitted changes in {}; commit or stash them, then re-run",
                        ch.path,
                        wd.display()
                    )));
                }
            }
            index = Some(idx);
        }
        let (new_hex, blobs) = self.write_commit_objects(&parent, &req.changes, &req.message)?;
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
        self.journal.record(Write::Commit {
            branch: req.branch.clone(),
            commit: new_hex.clone(),
        });
        // As `git commit` would: bring index and work tree along, then release the lock.
        if let (Some(mut idx), Some(c), Some(lock)) = (index, checkout, lock) {
            let wd = c.workdir;
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
            lock.commit(&idx)?;
        }
        Ok(new_hex)
    }
}

/// Several refs read as one snapshot. git's files backend moves the refs of one
/// transaction a file at a time (after locking them all), so a read between two of
/// the renames sees a tag moved and its rollback tag not yet. Such a read is repeated:
/// a snapshot counts when no ref of it was locked after it was read and a second read
/// agrees (a transaction half done either still holds the lock of a ref not yet
/// moved or, finished, changes what the second read sees). A lock that stays (a
/// crashed writer) is waited for a second at most, then the last read is taken.
fn snapshot<T: PartialEq>(read: impl Fn() -> Result<T>, locked: impl Fn() -> bool) -> Result<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let first = read()?;
        let late = std::time::Instant::now() >= deadline;
        if !locked() {
            let second = read()?;
            if first == second || late {
                return Ok(second);
            }
        } else if late {
            return Ok(first);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Whether a `*.lock` file is anywhere under `dir`.
fn has_lock_file(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            has_lock_file(&path)
        } else {
            path.extension().is_some_and(|x| x == "lock")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A read that differs from the next one (a transaction half done) is never
    /// taken, nor one while a lock is held; the first agreeing pair with no lock is.
    #[test]
    fn a_snapshot_is_two_agreeing_reads_with_no_lock_between() {
        let reads = RefCell::new(vec!["torn", "moved", "moved", "moved"].into_iter());
        let locks = RefCell::new(vec![true, false].into_iter());
        let n = Cell::new(0);
        let got = snapshot(
            || {
                n.set(n.get() + 1);
                Ok(reads.borrow_mut().next().unwrap_or("moved"))
            },
            || locks.borrow_mut().next().unwrap_or(false),
        )
        .expect("read");
        assert_eq!(got, "moved");
        assert_eq!(n.get(), 3, "locked after the first read, then two that agree");

        let reads = RefCell::new(vec!["torn", "moved", "moved", "moved"].into_iter());
        let got = snapshot(|| Ok(reads.borrow_mut().next().unwrap_or("moved")), || false).expect("read");
        assert_eq!(got, "moved");
    }

    #[test]
    fn lock_files_are_found_in_nested_ref_folders() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tags = tmp.path().join("refs/tags/team");
        std::fs::create_dir_all(&tags).expect("mkdir");
        std::fs::write(tags.join("payments-prod"), "x").expect("write");
        assert!(!has_lock_file(&tmp.path().join("refs/tags")));
        std::fs::write(tags.join("payments-prod.lock"), "x").expect("write");
        assert!(has_lock_file(&tmp.path().join("refs/tags")));
    }
}
