//! The second, independent reading of a file: serde-saphyr's parser (granit-parser),
//! which shares no code with yaml-rust2. An edit must load in both to the same data
//! as before except the intended values, so one parser's quirk cannot hide an error.
//!
//! A document is not loaded into a tree (a large file would cost many times its size):
//! it is read once into a keyed 128-bit digest of its loaded data — aliases and merge
//! keys resolved, scalars typed — computed twice in one pass, as it is and with the
//! planned changes applied. The old file's changed digest must equal the new file's.
//! The key is random per check, so no file can be written to collide on purpose.

use std::cell::RefCell;
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::tree::Seg;

/// The secret key of the digests of one check.
#[derive(Clone)]
pub struct Keys(RandomState);

impl Keys {
    pub fn new() -> Self {
        Keys(RandomState::new())
    }

    /// 128 bits: two SipHash outputs of the same key over two domains.
    fn digest(&self, write: impl Fn(&mut dyn Hasher)) -> u128 {
        let mut a = self.0.build_hasher();
        a.write_u8(1);
        write(&mut a);
        let mut b = self.0.build_hasher();
        b.write_u8(2);
        write(&mut b);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }

    fn str(&self, s: &str) -> u128 {
        self.digest(|h| {
            h.write_u8(b's');
            h.write_usize(s.len());
            h.write(s.as_bytes());
        })
    }

    fn entry(&self, key: u128, value: u128) -> u128 {
        self.digest(|h| {
            h.write_u8(b'e');
            h.write_u128(key);
            h.write_u128(value);
        })
    }

    /// A mapping: its entries as a multiset (inserted keys land in file order, not at the end).
    fn map(&self, mut entries: Vec<u128>) -> u128 {
        entries.sort_unstable();
        self.digest(|h| {
            h.write_u8(b'm');
            h.write_usize(entries.len());
            for e in &entries {
                h.write_u128(*e);
            }
        })
    }
}

/// What a planned change makes of the node at its route.
#[derive(Debug, Clone)]
pub enum Set {
    /// The value becomes this string.
    Value(String),
    /// These keys, with these string values, are added to the mapping.
    Insert(Vec<(String, String)>),
}

/// A planned change: a route in a document (serde-saphyr's count, which skips empty
/// documents) and what it sets there.
#[derive(Debug, Clone)]
pub struct Change {
    pub doc: usize,
    pub route: Vec<Seg>,
    pub set: Set,
}

/// A document read: its digest as it is, its digest with the planned changes applied,
/// and which changes (indexes) found their place in it.
#[derive(Debug, Clone)]
pub struct DocRead {
    pub plain: u128,
    pub changed: u128,
    pub applied: Vec<usize>,
}

/// A node read: as [`DocRead`], and (for keys) the text a key path would name it by.
struct Read {
    plain: u128,
    changed: u128,
    applied: Vec<usize>,
    key_text: Option<String>,
    is_map: bool,
}

/// A change still on its way: its index and the rest of its route from this node.
#[derive(Clone, Copy)]
struct Active<'c> {
    index: usize,
    rest: &'c [Seg],
    set: &'c Set,
}

struct NodeSeed<'c> {
    keys: &'c Keys,
    changes: &'c [Active<'c>],
    /// Read the key text of a scalar (for a mapping key on a change's route).
    key_text: bool,
}

impl<'c> NodeSeed<'c> {
    fn leaf(self, plain: u128, key_text: impl FnOnce() -> Option<String>) -> Read {
        let key_text = if self.key_text { key_text() } else { None };
        self.finish(
            Read {
                plain,
                changed: plain,
                applied: Vec::new(),
                key_text,
                is_map: false,
            },
            Vec::new(),
        )
    }

    /// Applies the changes whose route ends at this node (`entries`: a mapping's
    /// entries with the changes below applied, to which inserted keys are added).
    fn finish(self, mut r: Read, mut entries: Vec<u128>) -> Read {
        let mut inserted = false;
        for a in self.changes.iter().filter(|a| a.rest.is_empty()) {
            r.applied.push(a.index);
            match (a.set, r.is_map) {
                (Set::Insert(kvs), true) => {
                    entries.extend(
                        kvs.iter()
                            .map(|(k, v)| self.keys.entry(self.keys.str(k), self.keys.str(v))),
                    );
                    inserted = true;
                }
                (Set::Insert(kvs), false) => {
                    let joined: Vec<&str> = kvs.iter().map(|(_, v)| v.as_str()).collect();
                    r.changed = self.keys.str(&joined.join("\n"));
                }
                (Set::Value(v), _) => r.changed = self.keys.str(v),
            }
        }
        if inserted {
            r.changed = self.keys.map(entries);
        }
        r
    }

    /// The changes that go on to the child `seg`.
    fn below(&self, seg: &Seg) -> Vec<Active<'c>> {
        self.changes
            .iter()
            .filter(|a| a.rest.first() == Some(seg))
            .map(|a| Active {
                rest: &a.rest[1..],
                ..*a
            })
            .collect()
    }

    fn child<'s>(&'s self, changes: &'s [Active<'c>], key_text: bool) -> NodeSeed<'s>
    where
        'c: 's,
    {
        NodeSeed {
            keys: self.keys,
            changes,
            key_text,
        }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Read;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Read, E> {
        let d = self.keys.digest(|h| {
            h.write_u8(b'b');
            h.write_u8(v.into());
        });
        Ok(self.leaf(d, || Some(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Read, E> {
        self.visit_i128(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Read, E> {
        let d = self.keys.digest(|h| {
            h.write_u8(b'i');
            h.write_i128(v);
        });
        Ok(self.leaf(d, || Some(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Read, E> {
        self.visit_i128(v.into())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Read, E> {
        i128::try_from(v).map_err(E::custom).and_then(|v| self.visit_i128(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Read, E> {
        // Floats compare by their bits, so `.nan` equals itself.
        let d = self.keys.digest(|h| {
            h.write_u8(b'f');
            h.write_u64(v.to_bits());
        });
        Ok(self.leaf(d, || None))
    }
    fn visit_str<E>(self, v: &str) -> Result<Read, E> {
        let d = self.keys.str(v);
        Ok(self.leaf(d, || Some(v.to_string())))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Read, E> {
        self.visit_str(&String::from_utf8_lossy(v))
    }
    fn visit_unit<E>(self) -> Result<Read, E> {
        let d = self.keys.digest(|h| h.write_u8(b'n'));
        Ok(self.leaf(d, || Some(String::new())))
    }
    fn visit_none<E: de::Error>(self) -> Result<Read, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        // Items are folded into running digests (in order): nothing is kept per item.
        let keys = self.keys;
        let (mut plain_a, mut plain_b) = (keys.0.build_hasher(), keys.0.build_hasher());
        let (mut changed_a, mut changed_b) = (keys.0.build_hasher(), keys.0.build_hasher());
        for (h, domain) in [
            (&mut plain_a, 1),
            (&mut plain_b, 2),
            (&mut changed_a, 1),
            (&mut changed_b, 2),
        ] {
            h.write_u8(domain);
            h.write_u8(b'q');
        }
        let mut applied = Vec::new();
        let mut n = 0usize;
        loop {
            let below = if self.changes.is_empty() {
                Vec::new()
            } else {
                self.below(&Seg::Index(n))
            };
            let Some(item) = seq.next_element_seed(self.child(&below, false))? else {
                break;
            };
            plain_a.write_u128(item.plain);
            plain_b.write_u128(item.plain);
            changed_a.write_u128(item.changed);
            changed_b.write_u128(item.changed);
            applied.extend(item.applied);
            n += 1;
        }
        for h in [&mut plain_a, &mut plain_b, &mut changed_a, &mut changed_b] {
            h.write_usize(n);
        }
        let join = |a: std::hash::DefaultHasher, b: std::hash::DefaultHasher| {
            (u128::from(a.finish()) << 64) | u128::from(b.finish())
        };
        let r = Read {
            plain: join(plain_a, plain_b),
            changed: join(changed_a, changed_b),
            applied,
            key_text: None,
            is_map: false,
        };
        Ok(self.finish(r, Vec::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        let keys = self.keys;
        // Entries off every change's route count the same in both digests.
        let mut common = Vec::new();
        // Entries whose key is on a change's route: (key text, key, value read).
        let mut on_route: Vec<(Option<String>, u128, Read)> = Vec::new();
        let routed = self.changes.iter().any(|a| !a.rest.is_empty());
        while let Some(key) = map.next_key_seed(self.child(&[], routed))? {
            let below = match &key.key_text {
                Some(k) if routed => self.below(&Seg::Key(k.clone())),
                _ => Vec::new(),
            };
            let value = map.next_value_seed(self.child(&below, false))?;
            if below.is_empty() {
                common.push(keys.entry(key.plain, value.plain));
            } else {
                on_route.push((key.key_text, key.plain, value));
            }
        }
        let inserts = self
            .changes
            .iter()
            .any(|a| a.rest.is_empty() && matches!(a.set, Set::Insert(_)));
        if on_route.is_empty() && !inserts {
            let d = keys.map(common);
            let r = Read {
                plain: d,
                changed: d,
                applied: Vec::new(),
                key_text: None,
                is_map: true,
            };
            return Ok(self.finish(r, Vec::new()));
        }
        // A key written twice: the last one is the one a route names (as in go-yaml v2).
        let mut plain = common.clone();
        let mut changed = common;
        let mut applied = Vec::new();
        for (i, (text, key, value)) in on_route.iter().enumerate() {
            plain.push(keys.entry(*key, value.plain));
            if on_route[i + 1..].iter().any(|(t, ..)| t == text) {
                changed.push(keys.entry(*key, value.plain));
            } else {
                changed.push(keys.entry(*key, value.changed));
                applied.extend(value.applied.iter().copied());
            }
        }
        let r = Read {
            plain: keys.map(plain),
            changed: keys.map(changed.clone()),
            applied,
            key_text: None,
            is_map: true,
        };
        Ok(self.finish(r, changed))
    }
}

/// What [`read`] hands to each document it reads (serde-saphyr takes no seed for
/// several documents).
struct Context {
    keys: Keys,
    changes: Vec<Change>,
    next_doc: usize,
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

impl<'de> Deserialize<'de> for DocRead {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DocRead, D::Error> {
        let (keys, changes) = CONTEXT.with_borrow_mut(|c| {
            let c = c.as_mut().expect("documents are read by `read`");
            let doc = c.next_doc;
            c.next_doc += 1;
            let changes: Vec<(usize, Change)> = c
                .changes
                .iter()
                .enumerate()
                .filter(|(_, ch)| ch.doc == doc)
                .map(|(i, ch)| (i, ch.clone()))
                .collect();
            (c.keys.clone(), changes)
        });
        let active: Vec<Active> = changes
            .iter()
            .map(|(index, ch)| Active {
                index: *index,
                rest: &ch.route,
                set: &ch.set,
            })
            .collect();
        let r = NodeSeed {
            keys: &keys,
            changes: &active,
            key_text: false,
        }
        .deserialize(d)?;
        Ok(DocRead {
            plain: r.plain,
            changed: r.changed,
            applied: r.applied,
        })
    }
}

/// Reads every non-empty document of `text` (serde-saphyr skips null-like documents)
/// into its digests under `keys`, with `changes` applied to the changed digests.
/// Duplicate keys are kept in order (the last one wins for routes, as in go-yaml v2).
pub fn read(text: &str, keys: &Keys, changes: &[Change]) -> Result<Vec<DocRead>, String> {
    let options = serde_saphyr::options! {
        budget: None,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
    };
    CONTEXT.set(Some(Context {
        keys: keys.clone(),
        changes: changes.to_vec(),
        next_doc: 0,
    }));
    let out = serde_saphyr::from_multiple_with_options::<DocRead>(text, options)
        .map_err(|e| e.to_string().lines().next().unwrap_or("not valid YAML").to_string());
    CONTEXT.set(None);
    out
}
