//! The check after a splice: the new text must load, in yaml-rust2 and in serde-saphyr,
//! to the old data with exactly the planned values changed (and the planned keys added).
//!
//! Neither reading builds a tree, so a large file costs little beyond its two texts:
//! yaml-rust2's events of the old and the new text are compared in lockstep, one by
//! one, and may differ only at the planned scalars (and by the planned keys, once, in
//! the planned mapping); serde-saphyr reads each text into keyed digests (see
//! [`second`]). Every planned change must have been met exactly once in each.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::second::{self, Change, Set};
use super::tree::{Seg, bom_len, check_line_endings, parse_error};
use super::{Edit, Op, err_at};
use crate::error::Result;

/// Texts from this size on are read by the three readings at once, on three threads.
const PARALLEL_FROM: usize = 1 << 20;

/// Refuses, at `line`, an edit whose result does not read as planned. `empty` tells,
/// for each document of the old text, whether it is empty (null-like).
pub(super) fn verify(
    old_text: &str,
    new_text: &str,
    file: &str,
    expected: &[(Edit, String)],
    empty: &[bool],
    line: usize,
) -> Result<()> {
    let refuse = |why: String| {
        Err(err_at(
            file,
            Some(line),
            format!(
                "{file}: the value at line {line} cannot be edited safely: {why}; nothing was written — edit it by hand"
            ),
        ))
    };
    // serde-saphyr skips empty documents: map yaml-rust2 document indexes onto its own.
    let index: Vec<Option<usize>> = empty
        .iter()
        .scan(0, |n, empty| {
            Some(if *empty {
                None
            } else {
                *n += 1;
                Some(*n - 1)
            })
        })
        .collect();
    let changes: Option<Vec<Change>> = expected
        .iter()
        .map(|(edit, value)| {
            let doc = index.get(edit.doc).copied().flatten()?;
            let set = match &edit.op {
                Op::Insert { keys, .. } => Set::Insert(
                    keys.iter()
                        .zip(value.split('\n'))
                        .map(|(k, v)| (k.name().to_string(), v.to_string()))
                        .collect(),
                ),
                _ => Set::Value(value.clone()),
            };
            Some(Change {
                doc,
                route: edit.route.clone(),
                set,
            })
        })
        .collect();
    let no_changes = Vec::new();
    let keys = second::Keys::new();
    let read_old = || second::read(old_text, &keys, changes.as_ref().unwrap_or(&no_changes));
    let read_new = || second::read(new_text, &keys, &[]);
    let steps = || lockstep(old_text, new_text, file, expected);
    // 1. yaml-rust2, event by event; 2. serde-saphyr, an independent parser (aliases
    // and merge keys resolved). The readings share nothing: a large file reads at once.
    let (steps, want, new) = if old_text.len() >= PARALLEL_FROM {
        std::thread::scope(|s| {
            let steps = s.spawn(steps);
            let want = s.spawn(read_old);
            let new = read_new();
            (join(steps), join(want), new)
        })
    } else {
        (steps(), read_old(), read_new())
    };
    match steps {
        Ok(e) if e == empty => {}
        Ok(_) => return refuse("internal: the documents are not the ones located".into()),
        Err(why) => return refuse(why),
    }
    let Some(changes) = changes else {
        return refuse("internal: the second parser has no such document".into());
    };
    let Ok(want) = want else {
        // The original itself does not load in the second parser: nothing to compare.
        return match new {
            Err(_) => Ok(()),
            Ok(_) => refuse("the second YAML parser reads the edited file but not the original".into()),
        };
    };
    let new = match new {
        Ok(d) => d,
        Err(e) => return refuse(format!("the edited file would not load in serde-saphyr ({e})")),
    };
    for (i, change) in changes.iter().enumerate() {
        if change.doc >= want.len() {
            return refuse("internal: the second parser has no such document".into());
        }
        if want.iter().flat_map(|d| &d.applied).filter(|a| **a == i).count() != 1 {
            return refuse("the second YAML parser does not find the value at the same place".into());
        }
    }
    if want.len() != new.len() || want.iter().zip(&new).any(|(w, n)| w.changed != n.plain) {
        return refuse("the edit would change more than that value (serde-saphyr)".into());
    }
    Ok(())
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A collection open in the old text (and, in lockstep, in the new one).
enum Open {
    Map {
        /// The next node is a key.
        key_next: bool,
        /// The key whose value comes next (None: a complex key).
        key: Option<String>,
        /// The route names this mapping (not inside a complex key).
        named: bool,
        /// Its key or index was pushed on the route.
        pushed: bool,
    },
    Seq {
        next: usize,
        named: bool,
        pushed: bool,
    },
}

/// Where the next node of a document stands.
enum Place {
    Root,
    Key,
    /// A value or list item; None when no route names it (under a complex key).
    Value(Option<Seg>),
}

/// Follows the structure of one event stream: the route of every node.
#[derive(Default)]
struct Walk {
    stack: Vec<Open>,
    route: Vec<Seg>,
}

impl Walk {
    /// The place of the next node (a list's index advances).
    fn place(&mut self) -> Place {
        match self.stack.last_mut() {
            None => Place::Root,
            Some(Open::Map { key_next: true, .. }) => Place::Key,
            Some(Open::Map { key, named, .. }) => Place::Value(match key {
                Some(k) if *named => Some(Seg::Key(k.clone())),
                _ => None,
            }),
            Some(Open::Seq { next, named, .. }) => {
                *next += 1;
                Place::Value(named.then(|| Seg::Index(*next - 1)))
            }
        }
    }

    /// Is the route to the node at `place` (`seg` from the current route) equal to `route`?
    fn at(&self, place: &Place, route: &[Seg]) -> bool {
        match place {
            Place::Root => self.stack.is_empty() && route.is_empty(),
            Place::Value(Some(seg)) => {
                route.len() == self.route.len() + 1
                    && route[..self.route.len()] == self.route[..]
                    && route.last() == Some(seg)
            }
            _ => false,
        }
    }

    /// The route names the open mapping and it is `route`, and a key comes next.
    fn in_map(&self, route: &[Seg]) -> bool {
        matches!(
            self.stack.last(),
            Some(Open::Map {
                key_next: true,
                named: true,
                ..
            })
        ) && self.route == route
    }

    /// The next node is a mapping's key.
    fn key_next(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map { key_next: true, .. }))
    }

    /// A node ends (a scalar or alias at once; a collection at its end event).
    fn node_done(&mut self, key: Option<String>) {
        if let Some(Open::Map { key_next, key: k, .. }) = self.stack.last_mut() {
            if *key_next {
                *k = key;
            }
            *key_next = !*key_next;
        }
    }

    fn open(&mut self, place: Place, map: bool) {
        let named = matches!(place, Place::Root | Place::Value(Some(_)));
        let pushed = match place {
            Place::Value(Some(seg)) => {
                self.route.push(seg);
                true
            }
            _ => false,
        };
        self.stack.push(if map {
            Open::Map {
                key_next: true,
                key: None,
                named,
                pushed,
            }
        } else {
            Open::Seq { next: 0, named, pushed }
        });
    }

    fn close(&mut self) {
        if let Some(Open::Map { pushed: true, .. } | Open::Seq { pushed: true, .. }) = self.stack.pop() {
            self.route.pop();
        }
        self.node_done(None);
    }
}

/// Compares the events of the old and the new text one by one. Returns, for each
/// document, whether it is empty (serde-saphyr skips those), or why the texts differ
/// by more than the planned changes.
fn lockstep(old_text: &str, new_text: &str, file: &str, expected: &[(Edit, String)]) -> Result<Vec<bool>, String> {
    check_line_endings(new_text, file).map_err(|e| format!("the edited file would not parse ({e})"))?;
    let mut old = Parser::new_from_str(&old_text[bom_len(old_text)..]);
    let mut new = Parser::new_from_str(&new_text[bom_len(new_text)..]);
    let mut next_new = || {
        new.next_token()
            .map(|(e, _)| e)
            .map_err(|e| format!("the edited file would not parse ({})", parse_error(new_text, file, &e)))
    };
    let more = || "the edit would change more than that value (yaml-rust2)".to_string();
    let mut done = vec![false; expected.len()];
    let mut walk = Walk::default();
    let mut doc = 0;
    let mut empty = Vec::new();
    // The current document's root: None until it starts, then whether it is empty.
    let mut root_empty: Option<bool> = None;
    loop {
        let o = old
            .next_token()
            .map(|(e, _)| e)
            .map_err(|e| format!("internal: the original no longer parses ({e})"))?;
        let mut n = next_new()?;
        // The planned keys, once, where a key of the planned mapping comes next.
        if o != n
            && let Event::Scalar(name, ..) = &n
            && let Some(i) = expected.iter().enumerate().position(|(i, (e, _))| {
                !done[i]
                    && e.doc == doc
                    && matches!(&e.op, Op::Insert { keys, .. } if keys.first().is_some_and(|k| k.name() == name))
                    && walk.in_map(&e.route)
            })
        {
            let (
                Edit {
                    op: Op::Insert { keys, .. },
                    ..
                },
                values,
            ) = &expected[i]
            else {
                unreachable!("found as an insertion")
            };
            for (k, v) in keys.iter().zip(values.split('\n')) {
                let plain = |s: &str| Event::Scalar(s.to_string(), TScalarStyle::Plain, 0, None);
                if n != plain(k.name()) {
                    return Err(more());
                }
                match next_new()? {
                    Event::Scalar(value, _, 0, None) if value == v => {}
                    _ => return Err(more()),
                }
                n = next_new()?;
            }
            done[i] = true;
        }
        match &o {
            Event::StreamEnd => {
                if n != o {
                    return Err(more());
                }
                break;
            }
            Event::DocumentStart => root_empty = None,
            Event::DocumentEnd => {
                empty.push(root_empty.unwrap_or(false));
                doc += 1;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let place = walk.place();
                if matches!(place, Place::Root) {
                    root_empty = Some(
                        *style == TScalarStyle::Plain && matches!(value.as_str(), "~" | "null" | "" | "Null" | "NULL"),
                    );
                }
                let planned = expected.iter().enumerate().position(|(i, (e, _))| {
                    !done[i] && e.doc == doc && !matches!(e.op, Op::Insert { .. }) && walk.at(&place, &e.route)
                });
                match planned {
                    Some(i) => {
                        // The planned value, with the same anchor and tag (the quoting may change).
                        match &n {
                            Event::Scalar(v, _, a, t) if *v == expected[i].1 && a == anchor && t == tag => {}
                            _ => return Err(more()),
                        }
                        done[i] = true;
                    }
                    None if n != o => return Err(more()),
                    None => {}
                }
                let key = walk.key_next().then(|| value.clone());
                walk.node_done(key);
                continue;
            }
            _ => {}
        }
        if n != o {
            return Err(more());
        }
        match o {
            Event::Alias(_) => {
                if matches!(walk.place(), Place::Root) {
                    root_empty = Some(false);
                }
                walk.node_done(None);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let place = walk.place();
                if matches!(place, Place::Root) {
                    root_empty = Some(false);
                }
                if expected.iter().enumerate().any(|(i, (e, _))| {
                    !done[i] && e.doc == doc && !matches!(e.op, Op::Insert { .. }) && walk.at(&place, &e.route)
                }) {
                    return Err("internal: the planned place is not a value".into());
                }
                walk.open(place, matches!(o, Event::MappingStart(..)));
            }
            Event::MappingEnd | Event::SequenceEnd => walk.close(),
            _ => {}
        }
    }
    if done.iter().any(|d| !d) {
        return Err("internal: the planned place is missing".into());
    }
    Ok(empty)
}
