//! Validation of the names and values that become refs, paths and file contents.

use crate::error::{Error, Result};

/// Checks `name` against git's ref-format rules (as `git check-ref-format` with
/// `--allow-onelevel`), so that `{service}` and `{env}` expand to valid refs.
pub fn check_ref_component(kind: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::input(format!(
            "{kind} `{}` is not a valid name: {why}; use letters, digits, `-`, `_` and `.`",
            name.escape_debug()
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 100 {
        return bad("it is longer than 100 characters");
    }
    if name.starts_with('.') || name.ends_with('.') || name.starts_with('-') {
        return bad("it may not start with `.` or `-` nor end with `.`");
    }
    if name.contains("..") || name.contains("@{") || name.ends_with(".lock") {
        return bad("it may not contain `..` or `@{` nor end with `.lock`");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return bad(&format!("character {c:?} is not allowed"));
    }
    Ok(())
}

/// Checks a full ref name such as `refs/tags/payments-staging` or a branch name.
pub fn check_ref_name(kind: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(Error::input(format!(
            "{kind} `{}` is not a valid git ref name",
            name.escape_debug()
        )));
    }
    for part in name.split('/') {
        check_ref_component(kind, part)?;
    }
    Ok(())
}

/// Checks a repository-relative path: no absolute paths, no `..`, no `.git`.
pub fn check_repo_path(kind: &str, path: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::input(format!(
            "{kind} `{}` {why}; give a path relative to the repository root",
            path.escape_debug()
        )))
    };
    if path.is_empty() {
        return bad("is empty");
    }
    if path.starts_with('/')
        || path.starts_with('\\')
        || path.contains(':') && path.len() > 1 && path.as_bytes()[1] == b':'
    {
        return bad("is absolute");
    }
    for part in path.split(['/', '\\']) {
        if part == ".." {
            return bad("leaves the repository");
        }
        if part.eq_ignore_ascii_case(".git") {
            return bad("points into `.git`");
        }
    }
    if path.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    Ok(())
}

/// A version is one line of at most 128 characters from `A-Za-z0-9._+-`,
/// optionally followed by `@sha256:` and 64 hex digits.
pub fn check_version(version: &str) -> Result<()> {
    let (main, digest) = match version.split_once('@') {
        Some((m, d)) => (m, Some(d)),
        None => (version, None),
    };
    let bad = |why: &str| {
        Err(Error::input(format!(
            "version `{}` is not valid: {why}; a version is up to 128 characters of `A-Za-z0-9._+-`, optionally followed by `@sha256:<64 hex digits>`",
            version.escape_debug()
        )))
    };
    if main.is_empty() {
        return bad("it is empty");
    }
    if main.len() > 128 {
        return bad("it is longer than 128 characters");
    }
    if let Some(c) = main
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
    {
        return bad(&format!("character {c:?} is not allowed"));
    }
    if let Some(d) = digest {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return bad("the digest must be `sha256:` and 64 hex digits");
        }
    }
    Ok(())
}

/// The first seven characters of a commit id (or of whatever a server sent as
/// one), for messages. Cut on a character boundary, so never panics.
pub fn short_sha(sha: &str) -> &str {
    match sha.char_indices().nth(7) {
        Some((i, _)) => &sha[..i],
        None => sha,
    }
}

/// Checks a 40-hex-digit object id or returns `None` when it is not one.
pub fn is_full_oid(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_components() {
        assert!(check_ref_component("service", "payments").is_ok());
        assert!(check_ref_component("service", "web_ui.v2").is_ok());
        for bad in [
            "", "a..b", "-x", "x.lock", "a b", "a/b", "a~1", "a^", "x:y", "a@{1}", ".x", "x.",
        ] {
            assert!(check_ref_component("service", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths() {
        assert!(check_repo_path("chart", "charts/payments").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../b", ".git/config", "a\nb", ""] {
            assert!(check_repo_path("chart", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_shas_cut_on_character_boundaries() {
        assert_eq!(short_sha("0123456789abcdef"), "0123456");
        assert_eq!(short_sha("abc"), "abc");
        assert_eq!(short_sha(""), "");
        // A multi-byte character straddling byte 7 (`é` is 2 bytes) must not panic.
        assert_eq!(short_sha("abcdeféxyz"), "abcdefé");
        assert_eq!(short_sha("ééééééééé"), "ééééééé");
        assert_eq!(short_sha("日本語のリビジョン"), "日本語のリビジ");
    }

    #[test]
    fn versions() {
        for ok in [
            "1.2.3",
            "v1.2.3-rc.1+build.5",
            "1.10",
            &format!("1.0@sha256:{}", "a".repeat(64)),
        ] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1.2\n3",
            "1 2",
            "1.0@sha256:abc",
            &"x".repeat(129),
            "a:b",
            "x@sha512:00",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
