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

    /// Mutable access along a route (used to build the expected tree after an edit).
    pub(crate) fn at_mut(&mut self, route: &[Seg]) -> Option<&mut Node> {
        let Some((first, rest)) = route.split_first() else {
            return Some(self);
        };
        let next = match (self, first) {
            (Node::Map { entries, .. }, Seg::Key(k)) => {
                entries.iter_mut().find(|(key, _)| key.value == *k).map(|(_, v)| v)
            }
            (Node::Seq { items, .. }, Seg::Index(i)) => items.get_mut(*i),
            _ => None,
        }?;
        next.at_mut(rest)
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

/// Structural equality ignoring positions and quoting style: the same keys in the same
/// order, the same scalar values, anchors, tags and aliases.
pub(crate) fn same_shape(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Scalar(x), Node::Scalar(y)) => x.value == y.value && x.anchor == y.anchor && x.tag == y.tag,
        (Node::Alias { id: x, .. }, Node::Alias { id: y, .. }) => x == y,
        (
            Node::Seq {
                items: x, anchor: p, ..
            },
            Node::Seq {
                items: y, anchor: q, ..
            },
        ) => p == q && x.len() == y.len() && x.iter().zip(y).all(|(m, n)| same_shape(m, n)),
        (
            Node::Map {
                entries: x, anchor: p, ..
            },
            Node::Map {
                entries: y, anchor: q, ..
            },
        ) => {
            p == q
                && x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx.value == ky.value && same_shape(vx, vy))
        }
        _ => false,
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

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// Byte offset of (1-based line, 0-based char column).
    fn offset(&self, text: &str, line: usize, col: usize) -> usize {
        let start = self.starts.get(line.saturating_sub(1)).copied().unwrap_or(text.len());
        let rest = &text[start..];
        start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i)
    }
}

/// A collection under construction, and (for a mapping) the key awaiting its value.
struct Frame {
    node: Node,
    key: Option<Scalar>,
}

impl Doc {
    /// Parses every document of a file. A UTF-8 BOM is skipped (its bytes kept in offsets).
    pub fn parse_all(text: &str, file: &str) -> Result<Vec<Doc>> {
        Parsed::parse(text, file).map(|p| p.docs)
    }
}

impl Parsed {
    pub fn parse(text: &str, file: &str) -> Result<Parsed> {
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
        let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
        let body = &text[bom..];
        let lines = LineIndex::new(body);
        let mut parser = Parser::new_from_str(body);
        let mut docs = Vec::new();
        let mut aliases = Vec::new();
        let mut text_ranges: Vec<(usize, usize)> = Vec::new();
        // A block scalar's range ends where the next event starts.
        let mut open_range: Option<usize> = None;
        let mut stack: Vec<Frame> = Vec::new();
        let mut flow_depth = 0usize;
        let mut root: Option<Node> = None;
        let mut doc_line = 1;
        loop {
            let (event, mark) = parser.next_token().map_err(|e| {
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
            })?;
            let line = mark.line();
            let start = bom + lines.offset(body, line, mark.col());
            if let Some(i) = open_range.take() {
                text_ranges[i].1 = start.max(text_ranges[i].0);
            }
            let node = match event {
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
                        Style::SingleQuoted | Style::DoubleQuoted => {
                            text_ranges.push((start, quoted_end(text, start)));
                        }
                        Style::Block => {
                            text_ranges.push((start, text.len()));
                            open_range = Some(text_ranges.len() - 1);
                        }
                        Style::Plain => {}
                    }
                    Node::Scalar(Scalar {
                        value,
                        style,
                        anchor,
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                        start,
                        line,
                        col: mark.col(),
                        in_flow: flow_depth > 0,
                    })
                }
                Event::Alias(id) => {
                    let name: String = text[start..]
                        .trim_start_matches('*')
                        .chars()
                        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
                        .collect();
                    let merge = matches!(
                        stack.last(),
                        Some(Frame { key: Some(k), .. }) if k.value == "<<" && k.style == Style::Plain
                    ) || matches!(
                        &stack[..],
                        [.., Frame { key: Some(k), .. }, Frame { node: Node::Seq { flow: true, .. }, .. }]
                            if k.value == "<<" && k.style == Style::Plain
                    );
                    aliases.push(AliasUse { id, name, line, merge });
                    Node::Alias { id, line }
                }
                Event::MappingStart(anchor, _) => {
                    let flow = text[start..].starts_with('{');
                    if flow {
                        flow_depth += 1;
                    }
                    let node = Node::Map {
                        entries: Vec::new(),
                        flow,
                        anchor,
                        line,
                    };
                    stack.push(Frame { node, key: None });
                    continue;
                }
                Event::SequenceStart(anchor, _) => {
                    let flow = text[start..].starts_with('[');
                    if flow {
                        flow_depth += 1;
                    }
                    let node = Node::Seq {
                        items: Vec::new(),
                        flow,
                        anchor,
                        line,
                    };
                    stack.push(Frame { node, key: None });
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                    Some(Frame { node, .. }) => {
                        if matches!(node, Node::Map { flow: true, .. } | Node::Seq { flow: true, .. }) {
                            flow_depth -= 1;
                        }
                        node
                    }
                    None => {
                        return Err(err_at(file, Some(line), format!("{file}:{line}: unbalanced YAML")));
                    }
                },
                Event::StreamStart | Event::Nothing => continue,
            };
            // Attach the finished node to its parent.
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame {
                    node: Node::Seq { items, .. },
                    ..
                }) => items.push(node),
                Some(Frame {
                    node: Node::Map { entries, .. },
                    key,
                }) => match key.take() {
                    None => match node {
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
                    Some(k) => {
                        let mut node = node;
                        // A block scalar's marker is on its first content line: report the key's.
                        // So is an empty value's (it is on the next token's line).
                        if let Node::Scalar(s) = &mut node
                            && (s.style == Style::Block
                                || (s.style == Style::Plain
                                    && (s.value.is_empty() || s.value == "~")
                                    && s.line > k.line))
                        {
                            s.line = k.line;
                        }
                        entries.push((k, node))
                    }
                },
                Some(Frame {
                    node: Node::Scalar(_) | Node::Alias { .. },
                    ..
                }) => {
                    unreachable!("only mappings and sequences are pushed as frames")
                }
            }
        }
        text_ranges.sort_unstable();
        Ok(Parsed {
            docs,
            aliases,
            text_ranges,
        })
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
