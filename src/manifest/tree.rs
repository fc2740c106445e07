//! A light YAML node tree that remembers where each scalar starts, in bytes.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::err_at;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub value: String,
    pub style: Style,
    pub anchor: usize,
    pub tag: Option<String>,
    /// Byte offset of the scalar's first character (the quote, if quoted).
    pub start: usize,
    /// 1-based line.
    pub line: usize,
    /// 0-based column in characters.
    pub col: usize,
    /// Inside a flow collection (`[..]`, `{..}`).
    pub in_flow: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Scalar(Scalar),
    Map {
        entries: Vec<(Scalar, Node)>,
        flow: bool,
        anchor: usize,
        line: usize,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
        anchor: usize,
        line: usize,
    },
    Alias {
        id: usize,
        line: usize,
    },
}

/// A scalar found on a line, with its route and the anchors on the way to it.
pub type OnLine<'a> = (&'a Scalar, Vec<Seg>, Vec<usize>);

#[derive(Debug, Clone)]
pub struct Doc {
    pub root: Node,
    /// 1-based line where the document's content starts.
    pub line: usize,
}

/// An alias (`*name`) in the file: which anchor it reuses, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasUse {
    pub id: usize,
    pub name: String,
    pub line: usize,
    /// The alias is the value of a merge key (`<<: *name`).
    pub merge: bool,
}

/// A whole parsed file: its documents, the aliases that reuse anchored nodes, and the
/// byte ranges of quoted and block scalars (the only places where `#` is text).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub docs: Vec<Doc>,
    pub aliases: Vec<AliasUse>,
    /// Anchored nodes found outside the kept part of the tree (see [`Keep`]).
    detached: Vec<Node>,
    text_ranges: Vec<(usize, usize)>,
}

/// A dotted key path with list indexes: `spec.containers[0].image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    /// Parses the key-path grammar: segments separated by `.`; a segment is a bare key
    /// (where `\.`, `\[` and `\\` stand for `.`, `[` and `\`, as Kargo writes
    /// `example\.com/version`) or a quoted key (`"app.kubernetes.io/version"` or
    /// `'...'`, with `\"` and `\\` inside double quotes), followed by any number of
    /// `[n]` list indexes.
    pub fn parse(s: &str) -> Result<KeyPath> {
        let bad = |why: &str| {
            Err(Error::input(format!(
                "key path `{s}` is not valid: {why}; write it like `image.tag`, `spec.containers[0].image` or `metadata.labels.\"app.kubernetes.io/version\"`"
            )))
        };
        let mut segs = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            // One segment: a key (maybe empty when the segment is only indexes).
            let mut key = String::new();
            let mut quoted = false;
            match chars.peek() {
                Some(&q @ ('"' | '\'')) => {
                    chars.next();
                    quoted = true;
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' if q == '"' => match chars.next() {
                                Some(e) => key.push(e),
                                None => return bad("it ends in `\\`"),
                            },
                            c if c == q => {
                                closed = true;
                                break;
                            }
                            c => key.push(c),
                        }
                    }
                    if !closed {
                        return bad("a quote is not closed");
                    }
                }
                _ => {
                    while let Some(&c) = chars.peek() {
                        match c {
                            '.' | '[' => break,
                            '\\' => {
                                chars.next();
                                match chars.next() {
                                    Some(e) => key.push(e),
                                    None => return bad("it ends in `\\`"),
                                }
                            }
                            ']' => return bad("a `]` has no `[`"),
                            c => {
                                key.push(c);
                                chars.next();
                            }
                        }
                    }
                }
            }
            if quoted || !key.is_empty() {
                segs.push(Seg::Key(key));
            } else if chars.peek() != Some(&'[') || segs.is_empty() {
                return bad("it has an empty part");
            }
            while chars.peek() == Some(&'[') {
                chars.next();
                let mut n = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(c) => n.push(c),
                        None => return bad("a `[` is not closed"),
                    }
                }
                let Ok(i) = n.parse::<usize>() else {
                    return bad("an index is not a number");
                };
                segs.push(Seg::Index(i));
            }
            match chars.next() {
                None => break,
                Some('.') => {
                    if chars.peek().is_none() {
                        return bad("it has an empty part");
                    }
                }
                Some(_) => return bad("text follows `]` or a closing quote"),
            }
        }
        if segs.is_empty() {
            return bad("it is empty");
        }
        Ok(KeyPath(segs))
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if k.is_empty() || k.contains(['.', '[', ']', '"', '\\', '\'']) {
                        write!(f, "\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))?;
                    } else {
                        f.write_str(k)?;
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl Node {
    pub fn line(&self) -> usize {
        match self {
            Node::Scalar(s) => s.line,
            Node::Map { line, .. } | Node::Seq { line, .. } | Node::Alias { line, .. } => *line,
        }
    }

    pub fn get(&self, seg: &Seg) -> Option<&Node> {
        match (self, seg) {
            (Node::Map { entries, .. }, Seg::Key(k)) => entries.iter().find(|(key, _)| key.value == *k).map(|(_, v)| v),
            (Node::Seq { items, .. }, Seg::Index(i)) => items.get(*i),
            _ => None,
        }
    }

    pub fn get_path(&self, path: &KeyPath) -> Option<&Node> {
        path.0.iter().try_fold(self, |n, seg| n.get(seg))
    }

    /// The anchor id of this node (0: none).
    pub fn anchor(&self) -> usize {
        match self {
            Node::Scalar(s) => s.anchor,
            Node::Map { anchor, .. } | Node::Seq { anchor, .. } => *anchor,
            Node::Alias { .. } => 0,
        }
    }

    /// The last value scalar (not a key) that starts on `line` before byte `before`,
    /// with the route from this node to it and the anchors on that route.
    pub fn value_on_line(&self, line: usize, before: usize) -> Option<OnLine<'_>> {
        fn go<'a>(
            n: &'a Node,
            line: usize,
            before: usize,
            route: &mut Vec<Seg>,
            anchors: &mut Vec<usize>,
            best: &mut Option<OnLine<'a>>,
        ) {
            if n.anchor() != 0 {
                anchors.push(n.anchor());
            }
            match n {
                Node::Scalar(s) => {
                    if s.line == line && s.start < before && best.as_ref().is_none_or(|b| b.0.start < s.start) {
                        *best = Some((s, route.clone(), anchors.clone()));
                    }
                }
                Node::Map { entries, .. } => {
                    for (k, v) in entries {
                        route.push(Seg::Key(k.value.clone()));
                        go(v, line, before, route, anchors, best);
                        route.pop();
                    }
                }
                Node::Seq { items, .. } => {
                    for (i, v) in items.iter().enumerate() {
                        route.push(Seg::Index(i));
                        go(v, line, before, route, anchors, best);
                        route.pop();
                    }
                }
                Node::Alias { .. } => {}
            }
            if n.anchor() != 0 {
                anchors.pop();
            }
        }
        let mut best = None;
        go(self, line, before, &mut Vec::new(), &mut Vec::new(), &mut best);
        best
    }

    /// The node that carries anchor `id`, if it is in this tree.
    pub fn anchored(&self, id: usize) -> Option<&Node> {
        if self.anchor() == id {
            return Some(self);
        }
        match self {
            Node::Map { entries, .. } => entries.iter().find_map(|(_, v)| v.anchored(id)),
            Node::Seq { items, .. } => items.iter().find_map(|v| v.anchored(id)),
            _ => None,
        }
    }

    /// Every scalar value with the key path that leads to it (for tests and scans).
    pub fn leaves(&self) -> Vec<(String, &Scalar)> {
        let mut out = Vec::new();
        fn go<'a>(n: &'a Node, prefix: String, out: &mut Vec<(String, &'a Scalar)>) {
            match n {
                Node::Scalar(s) => out.push((prefix, s)),
                Node::Map { entries, .. } => {
                    for (k, v) in entries {
                        let p = if prefix.is_empty() {
                            k.value.clone()
                        } else {
                            format!("{prefix}.{}", k.value)
                        };
                        go(v, p, out);
                    }
                }
                Node::Seq { items, .. } => {
                    for (i, v) in items.iter().enumerate() {
                        go(v, format!("{prefix}[{i}]"), out);
                    }
                }
                Node::Alias { .. } => {}
            }
        }
        go(self, String::new(), &mut out);
        out
    }
}

/// Byte offset just after the end of the line containing `pos` (the text's length on
/// a last line without a line ending).
pub(crate) fn end_of_line(text: &str, pos: usize) -> usize {
    match text[pos..].find('\n') {
        Some(i) => pos + i + 1,
        None => text.len(),
    }
}

/// The file's own line ending: that of its first line (LF for a one-line file).
pub(crate) fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Byte offsets of parser marks (1-based line, 0-based char column), found by walking
/// from the previous mark: events come nearly in order, so no index of every line is
/// kept (a large file would pay 8 bytes per line for it).
pub(crate) struct LineCursor<'t> {
    text: &'t str,
    /// The 1-based line that starts at byte `start`.
    line: usize,
    start: usize,
}

impl<'t> LineCursor<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        LineCursor {
            text,
            line: 1,
            start: 0,
        }
    }

    /// Byte offset of (1-based line, 0-based char column); the text's length past its end.
    pub(crate) fn offset(&mut self, line: usize, col: usize) -> usize {
        let text = self.text;
        while self.line < line {
            match text[self.start..].find('\n') {
                Some(i) => {
                    self.start += i + 1;
                    self.line += 1;
                }
                None => return text.len(),
            }
        }
        while self.line > line.max(1) {
            // `start - 1` is the line feed that ends the previous line.
            self.start = text[..self.start - 1].rfind('\n').map_or(0, |i| i + 1);
            self.line -= 1;
        }
        let rest = &text[self.start..];
        self.start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i)
    }
}

/// What a parse keeps of a file when it only locates values: the nodes on some key
/// paths (with the whole subtree at each path's end), the scalars of some lines with
/// the nodes on their way, every anchored node (merge keys and aliases are looked up
/// in them), the merge keys on the kept paths and every alias use. The rest is parsed
/// but not kept: a large file costs little memory beyond its text.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// Key paths from each document's root.
    pub paths: Vec<Vec<Seg>>,
    /// 1-based lines, sorted.
    pub lines: Vec<usize>,
    /// Record where quoted and block scalars are ([`Parsed::comments`] needs it).
    pub comments: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rel {
    Off,
    /// On the way to a kept path's end.
    Prefix,
    /// At a kept path's end.
    Target,
}

impl Keep {
    /// Where the child `seg` of the node at `route` stands to the kept paths.
    fn rel(&self, route: &[Seg], seg: &Seg) -> Rel {
        let n = route.len() + 1;
        self.paths
            .iter()
            .filter(|p| p.len() >= n && p[..n - 1] == *route && p[n - 1] == *seg)
            .map(|p| if p.len() == n { Rel::Target } else { Rel::Prefix })
            .max()
            .unwrap_or(Rel::Off)
    }

    fn line(&self, line: usize) -> bool {
        self.lines.binary_search(&line).is_ok()
    }
}

/// How much of a collection under construction is kept (see [`Keep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// All of it.
    Full,
    /// It is on a kept path: its children on the path are kept (and its merge keys,
    /// anchored nodes, scalars on kept lines); list items off the path stay as empty
    /// placeholders so that indexes hold, mapping entries off the path are dropped.
    Spine,
    /// Built, and emptied at its end unless it holds a scalar on a kept line or an anchor.
    Maybe,
    /// Not kept: only the aliases and anchored nodes inside are recorded.
    Skip,
}

/// A collection under construction, and (for a mapping) the key awaiting its value.
struct Frame {
    node: Node,
    key: Option<Scalar>,
    mode: Mode,
    /// (Maybe) it holds something kept.
    needed: bool,
    /// (Spine) its key or index is on the route stack.
    on_route: bool,
}

impl Frame {
    /// The merge key `<<` awaits its value.
    fn merge_value(&self) -> bool {
        matches!(&self.key, Some(k) if k.value == "<<" && k.style == Style::Plain)
    }
}

/// The mode of a new collection under `stack`, and its route segment when it is on a
/// kept path.
fn child_mode(keep: Option<&Keep>, stack: &[Frame], route: &[Seg], anchor: usize) -> (Mode, Option<Seg>) {
    let Some(keep) = keep else {
        return (Mode::Full, None);
    };
    let Some(parent) = stack.last() else {
        return (Mode::Spine, None);
    };
    match parent.mode {
        Mode::Full => (Mode::Full, None),
        _ if anchor != 0 => (Mode::Full, None),
        Mode::Skip => (Mode::Skip, None),
        Mode::Maybe => (Mode::Maybe, None),
        Mode::Spine => {
            let seg = match (&parent.node, &parent.key) {
                (Node::Seq { items, .. }, _) => Seg::Index(items.len()),
                _ if parent.merge_value() => return (Mode::Full, None),
                (Node::Map { .. }, Some(k)) => Seg::Key(k.value.clone()),
                // A complex key: no path names it.
                _ => return (Mode::Skip, None),
            };
            match keep.rel(route, &seg) {
                Rel::Target => (Mode::Full, None),
                Rel::Prefix => (Mode::Spine, Some(seg)),
                Rel::Off if keep.lines.is_empty() => (Mode::Skip, None),
                Rel::Off => (Mode::Maybe, None),
            }
        }
    }
}

/// What stands for a node that is not kept: an empty collection, a scalar without value.
fn placeholder(node: Node) -> Node {
    match node {
        Node::Map { flow, line, .. } => Node::Map {
            entries: Vec::new(),
            flow,
            anchor: 0,
            line,
        },
        Node::Seq { flow, line, .. } => Node::Seq {
            items: Vec::new(),
            flow,
            anchor: 0,
            line,
        },
        Node::Scalar(s) => Node::Scalar(Scalar {
            value: String::new(),
            tag: None,
            ..s
        }),
        alias @ Node::Alias { .. } => alias,
    }
}

impl Doc {
    /// Parses every document of a file. A UTF-8 BOM is skipped (its bytes kept in offsets).
    pub fn parse_all(text: &str, file: &str) -> Result<Vec<Doc>> {
        Parsed::parse(text, file).map(|p| p.docs)
    }
}

/// Refuses lone carriage returns (old Mac line endings): neither parser reads them alike.
pub(crate) fn check_line_endings(text: &str, file: &str) -> Result<()> {
    if let Some(pos) = text
        .bytes()
        .enumerate()
        .position(|(i, b)| b == b'\r' && text.as_bytes().get(i + 1) != Some(&b'\n'))
    {
        let line = text[..pos].matches('\n').count() + 1;
        return Err(err_at(
            file,
            Some(line),
            format!(
                "{file}:{line}: the file ends lines with a lone carriage return (CR, old Mac style); convert it to LF or CRLF line endings to let gitops-flow edit it"
            ),
        ));
    }
    Ok(())
}

/// The error for a file yaml-rust2 does not read.
pub(crate) fn parse_error(text: &str, file: &str, e: &yaml_rust2::ScanError) -> Error {
    let m = e.marker();
    if e.info().contains("must be followed by a valid YAML whitespace")
        && let Some(l) = text.lines().nth(m.line().saturating_sub(1))
        && l.contains(":\t")
    {
        return err_at(
            file,
            Some(m.line()),
            format!(
                "{file}:{}: a tab follows the `:` of a key; YAML readers such as yaml-rust2 require a space there — replace the tab with a space",
                m.line()
            ),
        );
    }
    err_at(
        file,
        Some(m.line()),
        format!(
            "{file}:{}:{}: not valid YAML: {}; fix the file before gitops-flow edits it",
            m.line(),
            m.col() + 1,
            e.info()
        ),
    )
}

/// The byte offset of a UTF-8 BOM's end (0 without one).
pub(crate) fn bom_len(text: &str) -> usize {
    if text.starts_with('\u{feff}') { 3 } else { 0 }
}

impl Parsed {
    /// Parses a whole file and keeps all of it.
    pub fn parse(text: &str, file: &str) -> Result<Parsed> {
        Parsed::parse_with(text, file, None)
    }

    /// Parses a whole file and keeps what `keep` asks for (everything without it).
    pub(crate) fn parse_with(text: &str, file: &str, keep: Option<&Keep>) -> Result<Parsed> {
        check_line_endings(text, file)?;
        let bom = bom_len(text);
        let body = &text[bom..];
        let mut lines = LineCursor::new(body);
        let ranges = keep.is_none_or(|k| k.comments);
        let mut parser = Parser::new_from_str(body);
        let mut docs = Vec::new();
        let mut aliases = Vec::new();
        let mut detached = Vec::new();
        let mut text_ranges: Vec<(usize, usize)> = Vec::new();
        // A block scalar's range ends where the next event starts.
        let mut open_range: Option<usize> = None;
        let mut stack: Vec<Frame> = Vec::new();
        // The keys and indexes of the open collections on a kept path.
        let mut route: Vec<Seg> = Vec::new();
        let mut flow_depth = 0usize;
        let mut root: Option<Node> = None;
        let mut doc_line = 1;
        loop {
            let (event, mark) = parser.next_token().map_err(|e| parse_error(text, file, &e))?;
            let line = mark.line();
            let start = bom + lines.offset(line, mark.col());
            if let Some(i) = open_range.take() {
                text_ranges[i].1 = start.max(text_ranges[i].0);
            }
            // The finished node, and for a collection its mode and whether it holds something kept.
            let (node, finished) = match event {
                Event::StreamEnd => break,
                Event::DocumentStart => {
                    doc_line = line;
                    continue;
                }
                Event::DocumentEnd => {
                    docs.push(Doc {
                        root: root.take().unwrap_or(Node::Map {
                            entries: Vec::new(),
                            flow: false,
                            anchor: 0,
                            line,
                        }),
                        line: doc_line,
                    });
                    continue;
                }
                Event::Scalar(value, style, anchor, tag) => {
                    let style = match style {
                        TScalarStyle::Plain => Style::Plain,
                        TScalarStyle::SingleQuoted => Style::SingleQuoted,
                        TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                        _ => Style::Block,
                    };
                    // Markers of anchored or tagged scalars point at the `&`/`!`: find the value itself.
                    let mut start = start;
                    let bytes = text.as_bytes();
                    while start < text.len() && (bytes[start] == b'&' || bytes[start] == b'!') {
                        let skip = text[start..]
                            .find([' ', '\t', '\r', '\n'])
                            .unwrap_or(text.len() - start);
                        start += skip;
                        while start < text.len() && (bytes[start] == b' ' || bytes[start] == b'\t') {
                            start += 1;
                        }
                    }
                    match style {
                        Style::SingleQuoted | Style::DoubleQuoted if ranges => {
                            text_ranges.push((start, quoted_end(text, start)));
                        }
                        Style::Block if ranges => {
                            text_ranges.push((start, text.len()));
                            open_range = Some(text_ranges.len() - 1);
                        }
                        _ => {}
                    }
                    let node = Node::Scalar(Scalar {
                        value,
                        style,
                        anchor,
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                        start,
                        line,
                        col: mark.col(),
                        in_flow: flow_depth > 0,
                    });
                    (node, None)
                }
                Event::Alias(id) => {
                    let name: String = text[start..]
                        .trim_start_matches('*')
                        .chars()
                        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
                        .collect();
                    let merge = stack.last().is_some_and(Frame::merge_value)
                        || matches!(
                            &stack[..],
                            [.., parent, Frame { node: Node::Seq { flow: true, .. }, .. }] if parent.merge_value()
                        );
                    aliases.push(AliasUse { id, name, line, merge });
                    (Node::Alias { id, line }, None)
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    let map = matches!(event, Event::MappingStart(..));
                    let flow = text[start..].starts_with(if map { '{' } else { '[' });
                    if flow {
                        flow_depth += 1;
                    }
                    let (mode, seg) = child_mode(keep, &stack, &route, anchor);
                    let on_route = seg.is_some();
                    route.extend(seg);
                    let node = if map {
                        Node::Map {
                            entries: Vec::new(),
                            flow,
                            anchor,
                            line,
                        }
                    } else {
                        Node::Seq {
                            items: Vec::new(),
                            flow,
                            anchor,
                            line,
                        }
                    };
                    stack.push(Frame {
                        node,
                        key: None,
                        mode,
                        needed: false,
                        on_route,
                    });
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                    Some(frame) => {
                        if matches!(frame.node, Node::Map { flow: true, .. } | Node::Seq { flow: true, .. }) {
                            flow_depth -= 1;
                        }
                        if frame.on_route {
                            route.pop();
                        }
                        let kept = match frame.mode {
                            Mode::Full | Mode::Spine => true,
                            Mode::Maybe => frame.needed,
                            Mode::Skip => false,
                        };
                        (frame.node, Some(kept))
                    }
                    None => {
                        return Err(err_at(file, Some(line), format!("{file}:{line}: unbalanced YAML")));
                    }
                },
                Event::StreamStart | Event::Nothing => continue,
            };
            // Attach the finished node to its parent.
            let Some(parent) = stack.last_mut() else {
                root = Some(node);
                continue;
            };
            let mut node = node;
            if let (Node::Map { .. }, Some(k)) = (&parent.node, &parent.key)
                && let Node::Scalar(s) = &mut node
                // A block scalar's marker is on its first content line: report the key's.
                // So is an empty value's (it is on the next token's line).
                && (s.style == Style::Block
                    || (s.style == Style::Plain && (s.value.is_empty() || s.value == "~") && s.line > k.line))
            {
                s.line = k.line;
            }
            let is_key = matches!(parent.node, Node::Map { .. }) && parent.key.is_none();
            let kept = match finished {
                Some(kept) => kept,
                None => match (keep, parent.mode) {
                    (None, _) | (_, Mode::Full) => true,
                    (Some(_), Mode::Skip) => node.anchor() != 0,
                    (Some(k), mode) => {
                        node.anchor() != 0
                            || matches!(&node, Node::Scalar(s) if k.line(s.line))
                            || (mode == Mode::Spine
                                && !is_key
                                && (parent.merge_value() || {
                                    let seg = match (&parent.node, &parent.key) {
                                        (Node::Seq { items, .. }, _) => Seg::Index(items.len()),
                                        (_, key) => Seg::Key(key.as_ref().map(|k| k.value.clone()).unwrap_or_default()),
                                    };
                                    k.rel(&route, &seg) != Rel::Off
                                }))
                    }
                },
            };
            if kept && !is_key {
                parent.needed = true;
            }
            let skip = parent.mode == Mode::Skip;
            match (&mut parent.node, &mut parent.key) {
                (Node::Seq { items, .. }, _) => {
                    if skip {
                        if kept {
                            detached.push(node);
                        }
                    } else if kept {
                        items.push(node);
                    } else {
                        items.push(placeholder(node));
                    }
                }
                (Node::Map { .. }, key @ None) => match node {
                    Node::Scalar(s) => *key = Some(s),
                    other => {
                        // A complex key: keep it as an opaque key that no path matches.
                        *key = Some(Scalar {
                            value: format!("\u{0}complex@{}", other.line()),
                            style: Style::Plain,
                            anchor: 0,
                            tag: None,
                            start: 0,
                            line: other.line(),
                            col: 0,
                            in_flow: false,
                        });
                    }
                },
                (Node::Map { entries, .. }, key @ Some(_)) => {
                    let k = key.take().expect("matched Some");
                    if skip {
                        if kept {
                            detached.push(node);
                        }
                    } else if kept {
                        entries.push((k, node));
                    }
                }
                (Node::Scalar(_) | Node::Alias { .. }, _) => {
                    unreachable!("only mappings and sequences are pushed as frames")
                }
            }
        }
        text_ranges.sort_unstable();
        Ok(Parsed {
            docs,
            aliases,
            detached,
            text_ranges,
        })
    }

    /// The node that carries anchor `id`, wherever it is kept.
    pub fn anchored(&self, id: usize) -> Option<&Node> {
        self.docs
            .iter()
            .find_map(|d| d.root.anchored(id))
            .or_else(|| self.detached.iter().find_map(|n| n.anchored(id)))
    }

    /// The comments of the file: (1-based line, byte offset of `#`, text after `#`
    /// without the line ending). A `#` is a comment when it starts a line or follows
    /// a space or tab, and is not inside a quoted or block scalar (a plain scalar
    /// cannot contain ` #`).
    pub fn comments<'t>(&self, text: &'t str) -> Vec<(usize, usize, &'t str)> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let content = line.trim_end_matches(['\n', '\r']);
            let b = content.as_bytes();
            for (j, c) in content.char_indices() {
                if c != '#' || (j > 0 && b[j - 1] != b' ' && b[j - 1] != b'\t') {
                    continue;
                }
                let pos = offset + j;
                let inside = match self.text_ranges.partition_point(|r| r.0 <= pos) {
                    0 => false,
                    k => pos < self.text_ranges[k - 1].1,
                };
                if !inside {
                    out.push((i + 1, pos, &content[j + 1..]));
                    break;
                }
            }
            offset += line.len();
        }
        out
    }
}

/// The byte just after the closing quote of the quoted scalar starting at `start`.
fn quoted_end(text: &str, start: usize) -> usize {
    let b = text.as_bytes();
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

impl Scalar {
    /// The byte span of the scalar's text in `text` (quotes included), checked to decode
    /// to the parsed value: a multi-line scalar is refused rather than guessed.
    pub fn span(&self, text: &str, file: &str) -> Result<(usize, usize)> {
        let s = self.start;
        let rest = &text[s..];
        let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..line_end];
        let (len, decoded) = match self.style {
            Style::Plain => {
                let mut end = line.len();
                let b = line.as_bytes();
                for (i, c) in line.char_indices() {
                    if c == '#' && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
                        end = i;
                        break;
                    }
                    if self.in_flow && matches!(c, ',' | ']' | '}') {
                        end = i;
                        break;
                    }
                    if c == ':' && (i + 1 == line.len() || b[i + 1] == b' ' || b[i + 1] == b'\t') && self.in_flow {
                        end = i;
                        break;
                    }
                }
                let raw = line[..end].trim_end_matches([' ', '\t']);
                (raw.len(), raw.to_string())
            }
            Style::SingleQuoted => {
                let b = line.as_bytes();
                let mut i = 1;
                let mut out = String::new();
                let mut closed = None;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            out.push('\'');
                            i += 2;
                            continue;
                        }
                        closed = Some(i + 1);
                        break;
                    }
                    let c = line[i..].chars().next().expect("in bounds");
                    out.push(c);
                    i += c.len_utf8();
                }
                match closed {
                    Some(l) => (l, out),
                    None => (0, String::from("\u{0}")),
                }
            }
            Style::DoubleQuoted => {
                let b = line.as_bytes();
                let mut i = 1;
                let mut closed = None;
                let mut escaped = false;
                while i < b.len() {
                    if b[i] == b'\\' {
                        escaped = true;
                        i += 2;
                        continue;
                    }
                    if b[i] == b'"' {
                        closed = Some(i + 1);
                        break;
                    }
                    i += 1;
                }
                match closed {
                    // Escapes are left to the parser: accept the span when it holds none.
                    Some(l) if !escaped => (l, line[1..l - 1].to_string()),
                    Some(l) => (l, self.value.clone()),
                    None => (0, String::from("\u{0}")),
                }
            }
            Style::Block => (0, String::from("\u{0}")),
        };
        if decoded != self.value || len == 0 {
            return Err(err_at(
                file,
                Some(self.line),
                format!(
                    "{file}:{}: the value spans several lines or could not be located exactly; put it on one line to let gitops-flow edit it",
                    self.line
                ),
            ));
        }
        Ok((s, s + len))
    }
}
