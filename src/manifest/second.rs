//! The second, independent reading of a file: serde-saphyr's parser (granit-parser),
//! which shares no code with yaml-rust2. An edit must load in both to the same data
//! as before except the intended values, so one parser's quirk cannot hide an error.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::tree::Seg;

/// Loaded YAML data, with aliases and merge keys resolved the way serde-saphyr does.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Bool(bool),
    Int(i128),
    /// Floats compare by their bits, so `.nan` equals itself.
    Float(u64),
    Str(String),
    Seq(Vec<Data>),
    Map(Vec<(Data, Data)>),
}

impl Data {
    /// The text a key path segment would name this key by.
    fn key_text(&self) -> Option<String> {
        match self {
            Data::Str(s) => Some(s.clone()),
            Data::Int(i) => Some(i.to_string()),
            Data::Bool(b) => Some(b.to_string()),
            Data::Null => Some(String::new()),
            _ => None,
        }
    }

    /// Mutable access along a route.
    pub fn at_mut(&mut self, route: &[Seg]) -> Option<&mut Data> {
        let Some((first, rest)) = route.split_first() else {
            return Some(self);
        };
        let next = match (self, first) {
            (Data::Map(entries), Seg::Key(k)) => entries
                .iter_mut()
                .rev()
                .find(|(key, _)| key.key_text().as_deref() == Some(k.as_str()))
                .map(|(_, v)| v),
            (Data::Seq(items), Seg::Index(i)) => items.get_mut(*i),
            _ => None,
        }?;
        next.at_mut(rest)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Data, E> {
        Ok(Data::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Data, E> {
        Ok(Data::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Data, E> {
        Ok(Data::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Data, E> {
        Ok(Data::Int(v.into()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Data, E> {
        i128::try_from(v).map(Data::Int).map_err(E::custom)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Data, E> {
        Ok(Data::Float(v.to_bits()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Data, E> {
        Ok(Data::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Data, E> {
        Ok(Data::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Data, E> {
        Ok(Data::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }
    fn visit_none<E>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        Data::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        Data::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Data::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            out.push((k, v));
        }
        Ok(Data::Map(out))
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        d.deserialize_any(DataVisitor)
    }
}

/// Loads every non-empty document of `text` (serde-saphyr skips null-like documents).
/// Duplicate keys are kept in order (the last one wins for lookups, as in go-yaml v2).
pub fn load(text: &str) -> Result<Vec<Data>, String> {
    let options = serde_saphyr::options! {
        budget: None,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
    };
    serde_saphyr::from_multiple_with_options::<Data>(text, options)
        .map_err(|e| e.to_string().lines().next().unwrap_or("not valid YAML").to_string())
}
