//! Exact, format-preserving edits of version fields in YAML files.
//!
//! The file is parsed once into a light node tree that remembers where every
//! scalar starts (from yaml-rust2's event markers, converted to byte offsets);
//! an edit replaces the bytes of one scalar and nothing else. The result is
//! parsed again and compared with the original tree, so an edit that would
//! change anything but the intended values is refused instead of written.

mod image;
mod tree;

pub use image::{ImageRef, needs_quotes, policy_markers};
pub use tree::{Doc, KeyPath, Node, Scalar, Seg, Style};

use crate::config::LocationKind;
use crate::error::{Error, Place, Result};

/// One concrete place that holds a service's version in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub kind: LocationKind,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            LocationKind::Key(k) => write!(f, "{} `{k}`", self.file),
            LocationKind::ImagePolicy(p) => write!(f, "{} $imagepolicy `{p}`", self.file),
            LocationKind::KustomizeImage(i) => write!(f, "{} images[name={i}].newTag", self.file),
            LocationKind::ChartAppVersion => write!(f, "{} `appVersion`", self.file),
        }
    }
}

/// The outcome of setting a version in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    /// The version found before the edit (of the first place edited).
    pub old_version: String,
    pub changed: bool,
}

/// A planned replacement of bytes `start..end` with `with`.
#[derive(Debug, Clone)]
struct Splice {
    start: usize,
    end: usize,
    with: String,
    /// The value the scalar at this place must have after the edit (None: an insertion).
    line: usize,
}

pub(crate) fn err_at(file: &str, line: Option<usize>, msg: impl Into<String>) -> Error {
    Error::input_at(
        msg.into(),
        Place {
            file: file.to_string(),
            line: line.map(|l| l as u64),
            column: None,
        },
    )
}

/// Reads the version a location holds.
pub fn read(text: &str, file: &str, kind: &LocationKind) -> Result<String> {
    let docs = Doc::parse_all(text, file)?;
    let targets = find_targets(&docs, text, file, kind)?;
    let t = targets.first().ok_or_else(|| not_found(file, kind))?;
    if let LocationKind::ImagePolicy(_) | LocationKind::KustomizeImage(_) = kind {
        // Whole image reference first; else the tag, with the digest when one is pinned.
        if let Some(img) = targets.iter().find(|t| matches!(t.mode, Mode::Image)) {
            return Ok(img.current_version());
        }
        let tag = targets
            .iter()
            .find(|t| matches!(t.mode, Mode::TagOnly | Mode::Value))
            .map(Target::current_version);
        let digest = targets
            .iter()
            .find(|t| matches!(t.mode, Mode::Digest))
            .map(Target::current_version);
        return Ok(match (tag, digest) {
            (Some(t), Some(d)) if !t.contains('@') => format!("{t}@{d}"),
            (Some(t), _) => t,
            (None, Some(d)) => d,
            (None, None) => t.current_version(),
        });
    }
    Ok(t.current_version())
}

/// Sets `version` at a location. Every copy of the location in the file is set.
pub fn set(text: &str, file: &str, kind: &LocationKind, version: &str) -> Result<Edited> {
    crate::names::check_version(version)?;
    let docs = Doc::parse_all(text, file)?;
    let targets = find_targets(&docs, text, file, kind)?;
    if targets.is_empty() {
        return Err(not_found(file, kind));
    }
    let old_version = targets[0].current_version();
    let mut splices = Vec::new();
    let mut expected: Vec<(usize, String)> = Vec::new();
    for t in &targets {
        if let Some((s, value)) = t.splice(text, file, version)? {
            if let Some(sc) = &t.scalar {
                expected.push((sc.start, value));
            }
            splices.push(s);
        }
    }
    if splices.is_empty() {
        return Ok(Edited {
            text: text.to_string(),
            old_version,
            changed: false,
        });
    }
    splices.sort_by_key(|s| s.start);
    for w in splices.windows(2) {
        if w[0].end > w[1].start {
            return Err(err_at(
                file,
                Some(w[1].line),
                format!("{file}: two version places overlap at line {}", w[1].line),
            ));
        }
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut pos = 0;
    for s in &splices {
        out.push_str(&text[pos..s.start]);
        out.push_str(&s.with);
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    verify(&docs, &out, file, &splices, &expected)?;
    Ok(Edited {
        changed: out != text,
        text: out,
        old_version,
    })
}

fn not_found(file: &str, kind: &LocationKind) -> Error {
    let what = match kind {
        LocationKind::Key(k) => {
            format!("key `{k}` not found in {file}; check the `key:` path in gitops-flow.yaml")
        }
        LocationKind::ImagePolicy(p) => {
            format!("no `{{\"$imagepolicy\": \"{p}\"}}` marker in {file}; add the marker comment or fix `imagepolicy:`")
        }
        LocationKind::KustomizeImage(i) => {
            format!("no `images:` entry with `name: {i}` in {file}; add it or fix `kustomize-image:`")
        }
        LocationKind::ChartAppVersion => {
            format!("{file} has no `appVersion`; add `appVersion:` to the chart")
        }
    };
    err_at(file, None, what)
}

/// After the splice: the new text must parse to the same documents, except that
/// each edited scalar now holds its new value (insertions add one key).
fn verify(old: &[Doc], new_text: &str, file: &str, splices: &[Splice], expected: &[(usize, String)]) -> Result<()> {
    let new = Doc::parse_all(new_text, file).map_err(|e| {
        Error::failed(format!(
            "internal: the edit of {file} would not parse back ({e}); nothing was written"
        ))
    })?;
    let insertions: Vec<&Splice> = splices.iter().filter(|s| s.start == s.end).collect();
    // Map old scalar starts to their shifted positions in the new text.
    let shift = |pos: usize| -> usize {
        let mut p = pos as isize;
        for s in splices {
            if s.end <= pos && !(s.start == s.end && s.start == pos) {
                p += s.with.len() as isize - (s.end - s.start) as isize;
            }
        }
        p as usize
    };
    let exp: std::collections::HashMap<usize, &str> = expected.iter().map(|(p, v)| (shift(*p), v.as_str())).collect();
    let ok = old.len() == new.len()
        && old
            .iter()
            .zip(&new)
            .all(|(a, b)| tree::same_except(&a.root, &b.root, &exp, !insertions.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(err_at(
            file,
            splices.first().map(|s| s.line),
            format!(
                "{file}: the value at line {} cannot be edited safely (the edit would change more than that value); edit it by hand",
                splices.first().map_or(0, |s| s.line)
            ),
        ))
    }
}

/// A place in a parsed file that holds (part of) the version.
#[derive(Debug, Clone)]
struct Target {
    scalar: Option<Scalar>,
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    /// The whole value is the version (or an image reference whose tag is replaced).
    Value,
    /// The value is a whole image reference: replace tag and digest.
    Image,
    /// Flux `:tag` — the tag without digest.
    TagOnly,
    /// Flux `:digest` — only `sha256:...`.
    Digest,
    /// Kustomize entry without `newTag`: insert a line after `name:`.
    InsertNewTag {
        after: usize,
        indent: String,
        eol: String,
        line: usize,
    },
}

impl Target {
    fn current_version(&self) -> String {
        match (&self.scalar, &self.mode) {
            (Some(s), Mode::Image) => ImageRef::parse(&s.value).version(),
            (Some(s), Mode::Value) if ImageRef::looks_like_image(&s.value) => ImageRef::parse(&s.value).version(),
            (Some(s), _) => s.value.clone(),
            (None, _) => String::new(),
        }
    }

    /// The splice that sets `version`, or None when nothing changes.
    fn splice(&self, text: &str, file: &str, version: &str) -> Result<Option<(Splice, String)>> {
        let (main, digest) = match version.split_once('@') {
            Some((m, d)) => (m, Some(d)),
            None => (version, None),
        };
        if let Mode::InsertNewTag {
            after,
            indent,
            eol,
            line,
        } = &self.mode
        {
            let value = if needs_quotes(version) {
                format!("\"{version}\"")
            } else {
                version.to_string()
            };
            let with = if *after == text.len() && !text.ends_with('\n') {
                format!("{eol}{indent}newTag: {value}")
            } else {
                format!("{indent}newTag: {value}{eol}")
            };
            return Ok(Some((
                Splice {
                    start: *after,
                    end: *after,
                    with,
                    line: *line,
                },
                String::new(),
            )));
        }
        let sc = self.scalar.as_ref().expect("non-insert targets have a scalar");
        let new_value = match self.mode {
            Mode::Image => ImageRef::parse(&sc.value).with_version(version),
            Mode::Value if ImageRef::looks_like_image(&sc.value) => ImageRef::parse(&sc.value).with_version(version),
            Mode::Value => version.to_string(),
            Mode::TagOnly => main.to_string(),
            Mode::Digest => match digest {
                Some(d) => d.to_string(),
                None => {
                    return Err(err_at(
                        file,
                        Some(sc.line),
                        format!(
                            "{file}:{}: this file pins a digest (`{}`); give the version with its digest (`{version}@sha256:<64 hex digits>`) so the old digest does not stay deployed",
                            sc.line, sc.value
                        ),
                    ));
                }
            },
            Mode::InsertNewTag { .. } => unreachable!("handled above"),
        };
        if new_value == sc.value {
            return Ok(None);
        }
        let (start, end) = sc.span(text, file)?;
        let with = match sc.style {
            Style::SingleQuoted => format!("'{new_value}'"),
            Style::DoubleQuoted => format!("\"{new_value}\""),
            Style::Plain if needs_quotes(&new_value) => format!("\"{new_value}\""),
            Style::Plain => new_value.clone(),
            Style::Block => {
                return Err(err_at(
                    file,
                    Some(sc.line),
                    format!(
                        "{file}:{}: the version is a block scalar (`|` or `>`); write it as a plain value to let gitops-flow edit it",
                        sc.line
                    ),
                ));
            }
        };
        Ok(Some((
            Splice {
                start,
                end,
                with,
                line: sc.line,
            },
            new_value,
        )))
    }
}

fn scalar_target(node: &Node, file: &str, mode: Mode, what: &str) -> Result<Target> {
    match node {
        Node::Scalar(s) if s.style == Style::Block => Err(err_at(
            file,
            Some(s.line),
            format!(
                "{file}:{}: {what} is a block scalar (`|` or `>`); write it as a plain value to let gitops-flow edit it",
                s.line
            ),
        )),
        Node::Scalar(s) if s.tag.as_deref().is_some_and(|t| !t.ends_with("str")) => Err(err_at(
            file,
            Some(s.line),
            format!(
                "{file}:{}: {what} carries the YAML tag `!{}`; remove it to let gitops-flow edit the value",
                s.line,
                s.tag.as_deref().unwrap_or_default()
            ),
        )),
        Node::Scalar(s) => Ok(Target {
            scalar: Some(s.clone()),
            mode,
        }),
        Node::Alias { line, .. } => Err(err_at(
            file,
            Some(*line),
            format!(
                "{file}:{line}: {what} is an alias (`*name`); edit the anchored value instead, or replace the alias with a value"
            ),
        )),
        other => Err(err_at(
            file,
            Some(other.line()),
            format!(
                "{file}:{}: {what} is a mapping or list, not a value; point the location at a single value",
                other.line()
            ),
        )),
    }
}

fn find_targets(docs: &[Doc], text: &str, file: &str, kind: &LocationKind) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    match kind {
        LocationKind::Key(k) => {
            let path = KeyPath::parse(k)?;
            for d in docs {
                if let Some(n) = d.root.get_path(&path) {
                    out.push(scalar_target(n, file, Mode::Value, &format!("`{k}`"))?);
                }
            }
        }
        LocationKind::ChartAppVersion => {
            let path = KeyPath::parse("appVersion")?;
            if let Some(n) = docs.first().and_then(|d| d.root.get_path(&path)) {
                let mut t = scalar_target(n, file, Mode::Value, "`appVersion`")?;
                // appVersion is a version, never an image reference.
                if let Some(s) = &t.scalar
                    && ImageRef::looks_like_image(&s.value)
                {
                    t.mode = Mode::TagOnly;
                }
                out.push(t);
            }
        }
        LocationKind::KustomizeImage(name) => {
            for d in docs {
                let Some(Node::Seq { items, .. }) = d.root.get_path(&KeyPath::parse("images")?) else {
                    continue;
                };
                for item in items {
                    let Node::Map { entries, flow, .. } = item else {
                        continue;
                    };
                    let name_entry = entries.iter().find(|(k, _)| k.value == "name");
                    let Some((name_key, Node::Scalar(n))) = name_entry else {
                        continue;
                    };
                    if n.value != *name {
                        continue;
                    }
                    match entries.iter().find(|(k, _)| k.value == "newTag") {
                        Some((_, v)) => {
                            let mut t = scalar_target(v, file, Mode::TagOnly, "`newTag`")?;
                            // newTag holds the tag; a digest goes into newTag only when the entry has no `digest:`.
                            if !entries.iter().any(|(k, _)| k.value == "digest") {
                                t.mode = Mode::Value;
                            }
                            out.push(t);
                        }
                        None if *flow => {
                            return Err(err_at(
                                file,
                                Some(n.line),
                                format!(
                                    "{file}:{}: the images entry `{name}` is in flow style and has no `newTag`; add `newTag` to it",
                                    n.line
                                ),
                            ));
                        }
                        None => {
                            let (after, eol) = tree::end_of_line(text, n.start);
                            let indent = " ".repeat(name_key.col);
                            out.push(Target {
                                scalar: None,
                                mode: Mode::InsertNewTag {
                                    after,
                                    indent,
                                    eol,
                                    line: n.line,
                                },
                            });
                        }
                    }
                    if let Some((_, v)) = entries.iter().find(|(k, _)| k.value == "digest") {
                        out.push(scalar_target(v, file, Mode::Digest, "`digest`")?);
                    }
                }
            }
        }
        LocationKind::ImagePolicy(policy) => {
            for (line, field) in image::policy_markers(text, policy) {
                let scalar = docs.iter().find_map(|d| d.root.last_scalar_on_line(line));
                let Some(node) = scalar else {
                    return Err(err_at(
                        file,
                        Some(line),
                        format!(
                            "{file}:{line}: the $imagepolicy marker is not on a line with a value; put it after the value it sets"
                        ),
                    ));
                };
                let mode = match field.as_deref() {
                    None => Mode::Image,
                    Some("tag") => Mode::TagOnly,
                    Some("digest") => Mode::Digest,
                    Some("name") => continue,
                    Some(other) => {
                        return Err(err_at(
                            file,
                            Some(line),
                            format!(
                                "{file}:{line}: unknown $imagepolicy field `{other}`; use the policy alone, `:tag`, `:name` or `:digest`"
                            ),
                        ));
                    }
                };
                out.push(scalar_target(node, file, mode, "the $imagepolicy value")?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
