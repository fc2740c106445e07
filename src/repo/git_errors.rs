//! Git-library errors turned into messages a person can act on: what happened,
//! and how to fix it. The local backend asks here before showing a raw error.

use std::path::Path;

use crate::error::Error;

/// The error and its causes, as one lowercase-insensitive searchable text.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

/// `git: {what}: {error}`, with a hint when an object is missing (a shallow clone).
pub(crate) fn failed(what: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    let text = chain(e);
    let lower = text.to_lowercase();
    let hint = if lower.contains("could not be found") || lower.contains("not found") && lower.contains("object") {
        "; the object is not in this clone: if it is shallow (actions/checkout's default), fetch the history (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)"
    } else {
        ""
    };
    Error::failed(format!("git: {what}: {text}{hint}"))
}

/// Lock files that block an update of these refs, as paths relative to the checkout.
pub(crate) fn stale_locks(git_dir: &Path, refs: &[&str]) -> Vec<std::path::PathBuf> {
    let mut out: Vec<std::path::PathBuf> = refs
        .iter()
        .map(|r| git_dir.join(format!("{r}.lock")))
        .chain([git_dir.join("packed-refs.lock")])
        .filter(|p| p.exists())
        .collect();
    out.dedup();
    out
}

/// A ref update blocked by lock files.
pub(crate) fn locked(locks: &[std::path::PathBuf]) -> Error {
    let list: Vec<String> = locks.iter().map(|p| p.display().to_string()).collect();
    Error::failed(format!(
        "cannot update refs: {} exists, so git thinks another git process is writing them; nothing was written. If no git command is running (a crashed one leaves the file behind), delete it and re-run",
        list.join(" and ")
    ))
}

/// A ref whose file cannot be read as a ref.
pub(crate) fn corrupt_ref(name: &str, git_dir: &Path) -> Error {
    Error::input(format!(
        "ref `{name}` is corrupt: {} does not hold an object id; nothing was written. Delete that file and set the ref again (`git fetch --tags --force`, or re-run the command that made it)",
        git_dir.join(name).display()
    ))
}

/// A ref that points at something other than a commit.
pub(crate) fn not_a_commit(name: &str, kind: &str, id: &str) -> Error {
    let short = name
        .strip_prefix("refs/tags/")
        .or_else(|| name.strip_prefix("refs/heads/"))
        .unwrap_or(name);
    let how = if name.starts_with("refs/tags/") {
        format!("`git tag -f {short} <commit>` then push it, or delete it with `git tag -d {short}`")
    } else {
        format!("`git update-ref {name} <commit>`")
    };
    Error::input(format!(
        "`{short}` points at a {kind} ({}), not a commit, so gitops-flow cannot tell what it deploys; point it at a commit: {how}",
        crate::names::short_sha(id)
    ))
}

/// An abbreviated id that matches several objects.
pub(crate) fn ambiguous(rev: &str) -> Error {
    Error::input(format!(
        "revision `{rev}` is ambiguous: several objects in the repository start with it; give more digits of the commit id"
    ))
}

/// A revision missing from a shallow clone.
pub(crate) fn not_in_shallow_clone(rev: &str, path: &Path) -> Error {
    Error::input(format!(
        "revision `{rev}` not found in {}, which is a shallow clone: it may be in the history that was not fetched; fetch it (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout) or give a commit id that exists",
        path.display()
    ))
}
