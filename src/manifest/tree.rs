//! A light YAML node tree that remembers where each scalar starts, in bytes.

use std::collections::HashMap;

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

#[derive(Debug, Clone)]
pub struct Doc {
    pub root: Node,
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
    pub fn parse(s: &str) -> Result<KeyPath> {
        let bad = |why: &str| {
            Err(Error::input(format!(
                "key path `{s}` is not valid: {why}; write it like `image.tag` or `spec.containers[0].image`"
            )))
        };
        let mut segs = Vec::new();
        for part in s.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if name.is_empty() && segs.is_empty() && rest.is_empty() {
                return bad("it has an empty part");
            }
            if !name.is_empty() {
                segs.push(Seg::Key(name.to_string()));
            } else if rest.is_empty() {
                return bad("it has an empty part");
            }
            while !rest.is_empty() {
                let Some(end) = rest.find(']') else {
                    return bad("a `[` is not closed");
                };
                let Ok(i) = rest[1..end].parse::<usize>() else {
                    return bad("an index is not a number");
                };
                segs.push(Seg::Index(i));
                rest = &rest[end + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return bad("text follows `]`");
                }
            }
        }
        if segs.is_empty() {
            return bad("it is empty");
        }
        Ok(KeyPath(segs))
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

    /// The last scalar that starts on `line` (a value, not a key), for Flux markers.
    pub fn last_scalar_on_line(&self, line: usize) -> Option<&Node> {
        let mut best: Option<&Node> = None;
        self.walk(&mut |n, is_key| {
            if let Node::Scalar(s) = n
                && s.line == line
                && !is_key
                && best.is_none_or(|b| matches!(b, Node::Scalar(o) if o.start < s.start))
            {
                best = Some(n);
            }
        });
        best
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Node, bool)) {
        f(self, false);
        match self {
            Node::Map { entries, .. } => {
                for (_, v) in entries {
                    v.walk(f);
                }
            }
            Node::Seq { items, .. } => {
                for i in items {
                    i.walk(f);
                }
            }
            _ => {}
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

/// Structural equality ignoring positions and quoting style, where scalars whose
/// (new) start offset is in `expected` must hold the expected value instead.
/// With `allow_insert`, a mapping in `new` may have one more key than in `old`.
pub(crate) fn same_except(old: &Node, new: &Node, expected: &HashMap<usize, &str>, allow_insert: bool) -> bool {
    match (old, new) {
        (Node::Scalar(a), Node::Scalar(b)) => {
            let want = expected.get(&b.start).copied().unwrap_or(a.value.as_str());
            want == b.value && a.anchor == b.anchor && (a.tag == b.tag || expected.contains_key(&b.start))
        }
        (Node::Alias { id: a, .. }, Node::Alias { id: b, .. }) => a == b,
        (
            Node::Seq {
                items: a, anchor: x, ..
            },
            Node::Seq {
                items: b, anchor: y, ..
            },
        ) => x == y && a.len() == b.len() && a.iter().zip(b).all(|(p, q)| same_except(p, q, expected, allow_insert)),
        (
            Node::Map {
                entries: a, anchor: x, ..
            },
            Node::Map {
                entries: b, anchor: y, ..
            },
        ) => {
            if x != y {
                return false;
            }
            if a.len() == b.len() {
                a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka.value == kb.value && same_except(va, vb, expected, allow_insert))
            } else if allow_insert && b.len() == a.len() + 1 {
                // Exactly one inserted `newTag` key; all others pairwise equal in order.
                let Some(pos) = b.iter().position(|(k, _)| k.value == "newTag") else {
                    return false;
                };
                let rest: Vec<&(Scalar, Node)> = b
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != pos)
                    .map(|(_, e)| e)
                    .collect();
                a.iter()
                    .zip(rest)
                    .all(|((ka, va), (kb, vb))| ka.value == kb.value && same_except(va, vb, expected, allow_insert))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// Byte offset just after the end of the line containing `pos`, and that line's ending.
pub(crate) fn end_of_line(text: &str, pos: usize) -> (usize, String) {
    match text[pos..].find('\n') {
        Some(i) => {
            let nl = pos + i;
            let eol = if nl > 0 && text.as_bytes()[nl - 1] == b'\r' {
                "\r\n"
            } else {
                "\n"
            };
            (nl + 1, eol.to_string())
        }
        // Last line without a newline: insert a newline first.
        None => (text.len(), "\n".to_string()),
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
        let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
        let body = &text[bom..];
        let lines = LineIndex::new(body);
        let mut parser = Parser::new_from_str(body);
        let mut docs = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut flow_depth = 0usize;
        let mut root: Option<Node> = None;
        loop {
            let (event, mark) = parser.next_token().map_err(|e| {
                let m = e.marker();
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
            let node = match event {
                Event::StreamEnd => break,
                Event::DocumentEnd => {
                    docs.push(Doc {
                        root: root.take().unwrap_or(Node::Map {
                            entries: Vec::new(),
                            flow: false,
                            anchor: 0,
                            line,
                        }),
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
                Event::Alias(id) => Node::Alias { id, line },
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
                Event::StreamStart | Event::DocumentStart | Event::Nothing => continue,
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
                        if let Node::Scalar(s) = &mut node
                            && s.style == Style::Block
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
        Ok(docs)
    }
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
