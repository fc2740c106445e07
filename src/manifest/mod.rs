//! Exact, format-preserving edits of version fields in YAML files.
//!
//! An edit is data: [`plan`] resolves a [`Location`] to a list of [`Edit`]s — a route
//! to one node of one document plus an operation (replace the value, its tag part,
//! its digest part, or insert keys) — and refuses whatever is ambiguous (several
//! documents, duplicate keys, anchored nodes that aliases reuse, paths through
//! aliases). [`set`] then splices the bytes of those values and nothing else, and
//! verifies the result with two independent parsers (yaml-rust2 and serde-saphyr):
//! the new file must load to the old data with exactly the planned values changed.
//!
//! This module depends on nothing else in the crate but the error type and the
//! version grammar, so it can be lifted out and fuzzed alone.

mod image;
mod location;
mod second;
mod tree;
mod verify;

pub use image::{ImageRef, needs_quotes, policy_field, setter_of_comment};
pub use location::{DocSelector, Location, LocationKind, ValueForm};
pub use tree::{AliasUse, Doc, KeyPath, Node, Parsed, Scalar, Seg, Style};

use crate::error::{Error, Place, Result};
use tree::{Keep, end_of_line, line_ending};

/// The outcome of setting a version in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    /// The version found before the edit.
    pub old_version: String,
    pub changed: bool,
}

/// One planned change: where (document, route from its root) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Index of the document in the file.
    pub doc: usize,
    /// Keys and indexes from the document root to the value (for [`Op::Insert`]: to the
    /// mapping that gets the keys).
    pub route: Vec<Seg>,
    /// 1-based line of the value (or of the line the keys are inserted after).
    pub line: usize,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The whole value becomes the version.
    Version,
    /// The value is an image reference: its tag (and digest) become the version's.
    Image,
    /// The value becomes the version's tag part (Flux `:tag`, kustomize `newTag`).
    Tag,
    /// The value becomes the version's digest (Flux `:digest`, kustomize `digest`).
    Digest,
    /// New keys of a block mapping, written on lines after byte `after` in the
    /// mapping's indentation: `newTag` (the tag part) and/or `digest`.
    Insert {
        keys: Vec<NewKey>,
        after: usize,
        indent: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKey {
    NewTag,
    Digest,
}

impl NewKey {
    fn name(self) -> &'static str {
        match self {
            NewKey::NewTag => "newTag",
            NewKey::Digest => "digest",
        }
    }
}

/// A planned edit with the scalar it replaces (None for insertions).
#[derive(Debug, Clone)]
struct Hit {
    edit: Edit,
    scalar: Option<Scalar>,
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

/// Parses `text` keeping what locating `loc` needs: the nodes on its key path (and
/// `kind`, `metadata.name` for document selection), the lines of setter comments,
/// anchored nodes and merge keys. The rest of a large file is read but not kept.
fn parse_for(text: &str, loc: &Location) -> Result<Parsed> {
    let key = |k: &str| Seg::Key(k.to_string());
    let mut keep = Keep {
        paths: vec![vec![key("kind")], vec![key("metadata"), key("name")]],
        ..Keep::default()
    };
    match &loc.kind {
        LocationKind::Key { path, .. } => match KeyPath::parse(path) {
            Ok(p) => keep.paths.push(p.0),
            // `locate` reports it, after what it checks first.
            Err(_) => return Parsed::parse(text, &loc.file),
        },
        LocationKind::ChartAppVersion => keep.paths.push(vec![key("appVersion")]),
        LocationKind::KustomizeImage(_) => keep.paths.push(vec![key("images")]),
        LocationKind::ImagePolicy(_) => {
            // A setter is a JSON object in a comment: every line with `#` and `{` (a superset).
            keep.comments = true;
            keep.lines = text
                .split('\n')
                .enumerate()
                .filter(|(_, l)| l.contains('#') && l.contains('{'))
                .map(|(i, _)| i + 1)
                .collect();
        }
    }
    Parsed::parse_with(text, &loc.file, Some(&keep))
}

/// Where the version of `loc` lives in `text`, as a list of edits (before any version
/// is known: the operations say which part of the version each place takes).
pub fn plan(text: &str, loc: &Location) -> Result<Vec<Edit>> {
    let parsed = parse_for(text, loc)?;
    Ok(locate(&parsed, text, loc)?.into_iter().map(|h| h.edit).collect())
}

/// Reads the version a location holds.
pub fn read(text: &str, loc: &Location) -> Result<String> {
    let parsed = parse_for(text, loc)?;
    Ok(read_hits(&locate(&parsed, text, loc)?))
}

/// Sets `version` at a location: every planned edit, verified by both parsers.
pub fn set(text: &str, loc: &Location, version: &str) -> Result<Edited> {
    crate::names::check_version(version)?;
    let file = loc.file.as_str();
    let parsed = parse_for(text, loc)?;
    let hits = locate(&parsed, text, loc)?;
    let old_version = read_hits(&hits);
    let eol = line_ending(text);
    let mut splices = Vec::new();
    let mut expected: Vec<(Edit, String)> = Vec::new();
    for h in &hits {
        if let Some((splice, value)) = splice(h, text, file, version, eol)? {
            splices.push(splice);
            expected.push((h.edit.clone(), value));
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
    if let Some(w) = splices.windows(2).find(|w| w[0].end > w[1].start) {
        return Err(err_at(
            file,
            Some(w[1].line),
            format!("{file}: two version places overlap at line {}", w[1].line),
        ));
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut pos = 0;
    for s in &splices {
        out.push_str(&text[pos..s.start]);
        out.push_str(&s.with);
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    let empty = empty_docs(&parsed);
    drop(parsed);
    verify::verify(text, &out, file, &expected, &empty, splices[0].line)?;
    Ok(Edited {
        changed: out != text,
        text: out,
        old_version,
    })
}

/// For each document, whether it is empty: a plain null-like root (serde-saphyr skips those).
fn empty_docs(parsed: &Parsed) -> Vec<bool> {
    parsed
        .docs
        .iter()
        .map(|d| match &d.root {
            Node::Scalar(s) => {
                s.style == Style::Plain && matches!(s.value.as_str(), "~" | "null" | "" | "Null" | "NULL")
            }
            _ => false,
        })
        .collect()
}

fn read_hits(hits: &[Hit]) -> String {
    let first = |f: fn(&Op) -> bool| {
        hits.iter()
            .filter(|h| f(&h.edit.op))
            .find_map(|h| h.scalar.as_ref().map(|s| s.value.clone()))
    };
    if let Some(v) = first(|o| matches!(o, Op::Image)) {
        return ImageRef::parse(&v).version();
    }
    match (
        first(|o| matches!(o, Op::Version | Op::Tag)),
        first(|o| matches!(o, Op::Digest)),
    ) {
        (Some(t), Some(d)) if !t.contains('@') => format!("{t}@{d}"),
        (Some(t), _) => t,
        (None, Some(d)) => format!("@{d}"),
        (None, None) => String::new(),
    }
}

/// A replacement of bytes `start..end` with `with`.
#[derive(Debug, Clone)]
struct Splice {
    start: usize,
    end: usize,
    with: String,
    line: usize,
}

fn quote_if_needed(value: &str) -> String {
    if needs_quotes(value) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

/// The splice that puts `version` in place for one edit, and the value the node must
/// hold afterwards; None when it already holds it.
fn splice(h: &Hit, text: &str, file: &str, version: &str, eol: &str) -> Result<Option<(Splice, String)>> {
    let (tag, digest) = match version.split_once('@') {
        Some((t, d)) => (t, Some(d)),
        None => (version, None),
    };
    if let Op::Insert { keys, after, indent } = &h.edit.op {
        let mut lines = Vec::new();
        let mut values = Vec::new();
        // A `digest:` is added only for a version that carries one.
        let keys: Vec<NewKey> = keys
            .iter()
            .copied()
            .filter(|k| *k != NewKey::Digest || digest.is_some())
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        for k in &keys {
            let v = match k {
                NewKey::NewTag => tag,
                NewKey::Digest => digest.unwrap_or_default(),
            };
            lines.push(format!("{indent}{}: {}", k.name(), quote_if_needed(v)));
            values.push(v.to_string());
        }
        // After the last line of a file without a final newline: start a new line first.
        let with = if *after == text.len() && !text.ends_with('\n') {
            lines.iter().map(|l| format!("{eol}{l}")).collect::<String>()
        } else {
            lines.iter().map(|l| format!("{l}{eol}")).collect::<String>()
        };
        return Ok(Some((
            Splice {
                start: *after,
                end: *after,
                with,
                line: h.edit.line,
            },
            values.join("\n"),
        )));
    }
    let sc = h.scalar.as_ref().expect("only insertions have no scalar");
    let new_value = match &h.edit.op {
        Op::Version => version.to_string(),
        Op::Image => ImageRef::parse(&sc.value).with_version(version),
        Op::Tag => tag.to_string(),
        Op::Digest => match digest {
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
        Op::Insert { .. } => unreachable!("handled above"),
    };
    if new_value == sc.value {
        return Ok(None);
    }
    let (start, end) = sc.span(text, file)?;
    let with = match sc.style {
        Style::SingleQuoted => format!("'{new_value}'"),
        Style::DoubleQuoted => format!("\"{new_value}\""),
        Style::Plain => quote_if_needed(&new_value),
        Style::Block => unreachable!("block scalars are refused when located"),
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

fn not_found(loc: &Location) -> Error {
    let file = &loc.file;
    let what = match &loc.kind {
        LocationKind::Key { path, .. } => {
            format!("key `{path}` not found in {file}; check the `key:` path in gitops-flow.yaml")
        }
        LocationKind::ImagePolicy(p) => format!(
            "no `# {{\"$imagepolicy\": \"{p}\"}}` setter comment in {file}; add the comment after the value it sets, on the same line, or fix `imagepolicy:`"
        ),
        LocationKind::KustomizeImage(i) => {
            format!("no `images:` entry with `name: {i}` in {file}; add it or fix `kustomize-image:`")
        }
        LocationKind::ChartAppVersion => {
            format!("{file} has no `appVersion`; add `appVersion:` to the chart")
        }
    };
    err_at(file, None, what)
}

/// `Kind/name (line N)` of a document, for messages.
fn describe_doc(d: &Doc) -> String {
    match (doc_field(d, "kind"), doc_field(d, "metadata.name")) {
        (Some(k), Some(n)) => format!("{k}/{n} (line {})", d.line),
        (Some(k), None) => format!("{k} (line {})", d.line),
        _ => format!("the document at line {}", d.line),
    }
}

/// A scalar of a document by key path (`kind`, `metadata.name`).
fn doc_field<'d>(d: &'d Doc, path: &str) -> Option<&'d str> {
    match d.root.get_path(&KeyPath::parse(path).expect("a valid path")) {
        Some(Node::Scalar(s)) => Some(s.value.as_str()),
        _ => None,
    }
}

fn selects(sel: &DocSelector, d: &Doc) -> bool {
    let s = |path: &str| doc_field(d, path);
    sel.kind.as_deref().is_none_or(|k| s("kind") == Some(k))
        && sel.name.as_deref().is_none_or(|n| s("metadata.name") == Some(n))
}

/// The documents a location may look in: all, or those its `document:` selects.
fn candidate_docs<'p>(parsed: &'p Parsed, loc: &Location) -> Result<Vec<(usize, &'p Doc)>> {
    let docs: Vec<(usize, &Doc)> = parsed
        .docs
        .iter()
        .enumerate()
        .filter(|(_, d)| loc.document.as_ref().is_none_or(|s| selects(s, d)))
        .collect();
    if let Some(sel) = &loc.document
        && docs.is_empty()
    {
        return Err(err_at(
            &loc.file,
            None,
            format!(
                "{}: no document is {sel}; the documents are {}; fix `document:` in gitops-flow.yaml",
                loc.file,
                parsed.docs.iter().map(describe_doc).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(docs)
}

/// Refuses a location found in several documents.
fn one_document(parsed: &Parsed, loc: &Location, docs: &[usize], what: &str) -> Result<()> {
    let mut docs = docs.to_vec();
    docs.dedup();
    if docs.len() > 1 {
        let names: Vec<String> = docs.iter().map(|i| describe_doc(&parsed.docs[*i])).collect();
        return Err(err_at(
            &loc.file,
            Some(parsed.docs[docs[1]].line),
            format!(
                "{}: {what} is in {} documents: {}; an edit changes exactly one place, so say which with `document: {{kind: ..., name: ...}}` on this location in gitops-flow.yaml",
                loc.file,
                docs.len(),
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Refuses an edit inside an anchored node that an alias or merge key reuses.
fn not_reused(parsed: &Parsed, file: &str, anchors: &[usize], line: usize) -> Result<()> {
    for id in anchors {
        let uses: Vec<&AliasUse> = parsed.aliases.iter().filter(|a| a.id == *id).collect();
        if let Some(first) = uses.first() {
            let lines: Vec<String> = uses
                .iter()
                .map(|a| {
                    if a.merge {
                        format!("line {} (`<<: *{}`)", a.line, a.name)
                    } else {
                        format!("line {} (`*{}`)", a.line, a.name)
                    }
                })
                .collect();
            return Err(err_at(
                file,
                Some(line),
                format!(
                    "{file}:{line}: the value is inside the anchored node `&{}` that is reused at {}; editing it would change those places too — give each its own value (replace the alias with a copy) or edit by hand",
                    first.name,
                    lines.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A node found by a key path: the node, its route and the anchors on the way to it.
type Found<'n> = (&'n Node, Vec<Seg>, Vec<usize>);

/// Follows a key path, refusing duplicate keys on it and paths that pass through an
/// alias or a merge key. Returns the node, the route and the anchors on the way.
fn resolve<'n>(parsed: &'n Parsed, root: &'n Node, path: &KeyPath, file: &str) -> Result<Option<Found<'n>>> {
    let mut node = root;
    let mut anchors = Vec::new();
    for (i, seg) in path.0.iter().enumerate() {
        if node.anchor() != 0 {
            anchors.push(node.anchor());
        }
        let so_far = KeyPath(path.0[..i].to_vec());
        let next = match (node, seg) {
            (Node::Alias { id, line }, _) => {
                return Err(through_alias(
                    parsed,
                    file,
                    *id,
                    *line,
                    &so_far,
                    &KeyPath(path.0[i..].to_vec()),
                ));
            }
            (Node::Map { entries, .. }, Seg::Key(k)) => {
                let found: Vec<&(Scalar, Node)> = entries.iter().filter(|(key, _)| key.value == *k).collect();
                match found.as_slice() {
                    [] => {
                        // Not here: does a merge key bring it in?
                        for (key, v) in entries
                            .iter()
                            .filter(|(key, _)| key.value == "<<" && key.style == Style::Plain)
                        {
                            let sources: Vec<&Node> = match v {
                                Node::Seq { items, .. } => items.iter().collect(),
                                other => vec![other],
                            };
                            for src in sources {
                                if let Node::Alias { id, .. } = src
                                    && let Some(target) = parsed.anchored(*id)
                                    && target.get(seg).is_some()
                                {
                                    return Err(through_alias(
                                        parsed,
                                        file,
                                        *id,
                                        key.line,
                                        &so_far,
                                        &KeyPath(path.0[i..].to_vec()),
                                    ));
                                }
                            }
                        }
                        return Ok(None);
                    }
                    [(_, v)] => v,
                    [(a, _), (b, _), ..] => {
                        let at = KeyPath(path.0[..=i].to_vec());
                        return Err(err_at(
                            file,
                            Some(b.line),
                            format!(
                                "{file}:{}: the key `{at}` is written twice (lines {} and {}); Helm reads the last one and other tools the first — remove one",
                                b.line, a.line, b.line
                            ),
                        ));
                    }
                }
            }
            (Node::Seq { items, .. }, Seg::Index(n)) => match items.get(*n) {
                Some(v) => v,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        node = next;
    }
    if node.anchor() != 0 {
        anchors.push(node.anchor());
    }
    Ok(Some((node, path.0.clone(), anchors)))
}

/// The error for a key path that passes through an alias (`*a`) or a merge key
/// (`<<: *a`): names the anchor and the line where the value really is.
fn through_alias(parsed: &Parsed, file: &str, id: usize, line: usize, before: &KeyPath, rest: &KeyPath) -> Error {
    let name = parsed
        .aliases
        .iter()
        .find(|a| a.id == id)
        .map_or_else(|| "?".to_string(), |a| a.name.clone());
    let target = parsed.anchored(id);
    let lives = target
        .and_then(|t| t.get_path(rest))
        .map(|n| {
            format!(
                "; the value lives at line {} inside the anchor `&{name}` (line {})",
                n.line(),
                target.map_or(0, Node::line)
            )
        })
        .unwrap_or_default();
    let at = if before.0.is_empty() {
        String::from("the document")
    } else {
        format!("`{before}`")
    };
    err_at(
        file,
        Some(line),
        format!(
            "{file}:{line}: {at} takes its value from the alias `*{name}` (line {line}){lives}; gitops-flow does not edit through aliases or merge keys — point `key:` at the anchored value (if nothing else reuses it) or replace the alias with a copy"
        ),
    )
}

/// A located scalar as an edit target, refusing what cannot be edited in place.
fn scalar_hit(node: &Node, text: &str, file: &str, what: &str, doc: usize, route: Vec<Seg>, op: Op) -> Result<Hit> {
    let s = match node {
        Node::Scalar(s) => s,
        Node::Alias { line, .. } => {
            return Err(err_at(
                file,
                Some(*line),
                format!(
                    "{file}:{line}: {what} is an alias (`*name`); edit the anchored value instead, or replace the alias with a value"
                ),
            ));
        }
        other => {
            return Err(err_at(
                file,
                Some(other.line()),
                format!(
                    "{file}:{}: {what} is a mapping or list, not a value; point the location at a single value",
                    other.line()
                ),
            ));
        }
    };
    let line = s.line;
    if s.style == Style::Block {
        return Err(err_at(
            file,
            Some(line),
            format!(
                "{file}:{line}: {what} is a block scalar (`|` or `>`); write it as a plain value to let gitops-flow edit it"
            ),
        ));
    }
    if s.tag.as_deref().is_some_and(|t| !t.ends_with("str")) {
        return Err(err_at(
            file,
            Some(line),
            format!(
                "{file}:{line}: {what} carries the YAML tag `!{}`; remove it to let gitops-flow edit the value",
                s.tag.as_deref().unwrap_or_default()
            ),
        ));
    }
    if s.style == Style::Plain && (s.value.is_empty() || (s.value == "~" && !text[s.start..].starts_with('~'))) {
        return Err(err_at(
            file,
            Some(line),
            format!(
                "{file}:{line}: {what} has no value (an empty `key:` is null); write a placeholder version such as `\"0.0.0\"` there first"
            ),
        ));
    }
    Ok(Hit {
        edit: Edit { doc, route, line, op },
        scalar: Some(s.clone()),
    })
}

fn locate(parsed: &Parsed, text: &str, loc: &Location) -> Result<Vec<Hit>> {
    let file = loc.file.as_str();
    let docs = candidate_docs(parsed, loc)?;
    let mut hits: Vec<Hit> = Vec::new();
    match &loc.kind {
        LocationKind::Key { path: p, form } => {
            let path = KeyPath::parse(p)?;
            let mut found = Vec::new();
            for (i, d) in &docs {
                if let Some(f) = resolve(parsed, &d.root, &path, file)? {
                    found.push((*i, f));
                }
            }
            one_document(
                parsed,
                loc,
                &found.iter().map(|f| f.0).collect::<Vec<_>>(),
                &format!("`{p}`"),
            )?;
            for (i, (node, route, anchors)) in found {
                let op = match (form, node) {
                    (ValueForm::Version, _) => Op::Version,
                    (ValueForm::Image, _) => Op::Image,
                    (ValueForm::Auto, Node::Scalar(s)) if ImageRef::looks_like_image(&s.value) => Op::Image,
                    (ValueForm::Auto, Node::Scalar(s)) if matches!(path.0.last(), Some(Seg::Key(k)) if k.eq_ignore_ascii_case("image")) =>
                    {
                        return Err(err_at(
                            file,
                            Some(s.line),
                            format!(
                                "{file}:{}: `{p}` holds `{}`, which may be an image name or a version; say which with `value: image` (then `nginx` becomes `nginx:<version>`) or `value: version` on this location in gitops-flow.yaml",
                                s.line, s.value
                            ),
                        ));
                    }
                    _ => Op::Version,
                };
                let hit = scalar_hit(node, text, file, &format!("`{p}`"), i, route, op)?;
                not_reused(parsed, file, &anchors, hit.edit.line)?;
                hits.push(hit);
            }
        }
        LocationKind::ChartAppVersion => {
            let path = KeyPath::parse("appVersion")?;
            if let Some((i, d)) = docs.first()
                && let Some((node, route, anchors)) = resolve(parsed, &d.root, &path, file)?
            {
                // appVersion is a version, never an image reference.
                let op = match node {
                    Node::Scalar(s) if ImageRef::looks_like_image(&s.value) => Op::Tag,
                    _ => Op::Version,
                };
                let hit = scalar_hit(node, text, file, "`appVersion`", *i, route, op)?;
                not_reused(parsed, file, &anchors, hit.edit.line)?;
                hits.push(hit);
            }
        }
        LocationKind::KustomizeImage(name) => {
            let images = KeyPath::parse("images")?;
            let mut entries_found = Vec::new();
            for (i, d) in &docs {
                let Some((Node::Seq { items, .. }, route, anchors)) = resolve(parsed, &d.root, &images, file)? else {
                    continue;
                };
                for (n, item) in items.iter().enumerate() {
                    if let Node::Map { entries, .. } = item
                        && entries
                            .iter()
                            .any(|(k, v)| k.value == "name" && matches!(v, Node::Scalar(s) if s.value == *name))
                    {
                        let mut r = route.clone();
                        r.push(Seg::Index(n));
                        let mut a = anchors.clone();
                        if item.anchor() != 0 {
                            a.push(item.anchor());
                        }
                        entries_found.push((*i, item, r, a));
                    }
                }
            }
            if let [_, (_, second, ..), ..] = entries_found.as_slice() {
                let lines: Vec<String> = entries_found.iter().map(|(_, it, ..)| it.line().to_string()).collect();
                return Err(err_at(
                    file,
                    Some(second.line()),
                    format!(
                        "{file}:{}: `images:` lists `name: {name}` {} times (lines {}); kustomize applies only one — remove the others",
                        second.line(),
                        lines.len(),
                        lines.join(", ")
                    ),
                ));
            }
            for (i, item, route, anchors) in entries_found {
                hits.extend(kustomize_entry(text, file, name, i, item, route)?);
                not_reused(parsed, file, &anchors, item.line())?;
            }
        }
        LocationKind::ImagePolicy(policy) => {
            let allowed: Vec<usize> = docs.iter().map(|(i, _)| *i).collect();
            for (line, pos, comment) in parsed.comments(text) {
                let Some(reference) = setter_of_comment(comment) else {
                    continue;
                };
                let Some(field) = policy_field(&reference, policy) else {
                    continue;
                };
                let op = match field.as_deref() {
                    None => Op::Image,
                    Some("tag") => Op::Tag,
                    Some("digest") => Op::Digest,
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
                // The setter is the line comment of the value before it (kyaml's LineComment).
                let Some((i, (scalar, route, anchors))) = parsed
                    .docs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| allowed.contains(i))
                    .find_map(|(i, d)| d.root.value_on_line(line, pos).map(|f| (i, f)))
                else {
                    continue;
                };
                let hit = scalar_hit(
                    &Node::Scalar(scalar.clone()),
                    text,
                    file,
                    "the $imagepolicy value",
                    i,
                    route,
                    op,
                )?;
                not_reused(parsed, file, &anchors, line)?;
                hits.push(hit);
            }
        }
    }
    if hits.is_empty() {
        return Err(not_found(loc));
    }
    Ok(hits)
}

/// The edits of one kustomize `images:` entry, in kustomize's own form (what
/// `kustomize edit set image name:tag@digest` writes): the tag in `newTag`, the digest
/// in `digest`; missing keys are inserted after `name:` (or after `newTag:`).
fn kustomize_entry(text: &str, file: &str, name: &str, doc: usize, item: &Node, route: Vec<Seg>) -> Result<Vec<Hit>> {
    let Node::Map { entries, flow, .. } = item else {
        unreachable!("only mappings are passed")
    };
    let key = |k: &str| entries.iter().find(|(key, _)| key.value == k);
    let (name_key, name_node) = key("name").expect("selected by name");
    let with = |k: &str| {
        let mut r = route.clone();
        r.push(Seg::Key(k.to_string()));
        r
    };
    let mut hits = Vec::new();
    let new_tag = key("newTag");
    let digest = key("digest");
    if let Some((_, v)) = new_tag {
        hits.push(scalar_hit(v, text, file, "`newTag`", doc, with("newTag"), Op::Tag)?);
    }
    if let Some((_, v)) = digest {
        hits.push(scalar_hit(v, text, file, "`digest`", doc, with("digest"), Op::Digest)?);
    }
    let mut insert = Vec::new();
    if new_tag.is_none() {
        insert.push(NewKey::NewTag);
    }
    if digest.is_none() {
        insert.push(NewKey::Digest);
    }
    if insert.is_empty() {
        return Ok(hits);
    }
    if *flow {
        return Err(err_at(
            file,
            Some(name_node.line()),
            format!(
                "{file}:{}: the images entry `{name}` is in flow style and has no `{}`; add it to the entry",
                name_node.line(),
                insert[0].name()
            ),
        ));
    }
    // Insert after the `newTag:` line when there is one, else after `name:`.
    let (anchor_key, anchor_value) = match new_tag {
        Some((k, v)) => (k, v),
        None => (name_key, name_node),
    };
    let Node::Scalar(value) = anchor_value else {
        return Err(err_at(
            file,
            Some(anchor_value.line()),
            format!(
                "{file}:{}: `{}` of the images entry `{name}` is not a value",
                anchor_value.line(),
                anchor_key.value
            ),
        ));
    };
    let (_, end) = value.span(text, file)?;
    let line = value.line;
    hits.push(Hit {
        edit: Edit {
            doc,
            route,
            line,
            op: Op::Insert {
                keys: insert,
                after: end_of_line(text, end),
                indent: " ".repeat(anchor_key.col),
            },
        },
        scalar: None,
    });
    Ok(hits)
}

#[cfg(test)]
mod tests;
