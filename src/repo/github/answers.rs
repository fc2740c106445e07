//! The git-side answers of GitHub's APIs as typed shapes, deserialised at the edge:
//! a field gitops-flow relies on that is missing or of the wrong type is an error
//! naming the field, where it sits in the answer and the request — never a silent
//! default.
//!
//! GraphQL fields the schema declares nullable are `Option`s that must still be
//! present (`#[serde(deserialize_with = "nullable")]`: a selected field is always in
//! the answer, null or not); only fields that an inline fragment may leave out
//! (`... on Tag`, `... on Blob` on an object of another type) have a default.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Deserialises `v`, an answer (or the part of one at `at`) to `request`.
pub fn answer<T: serde::de::DeserializeOwned>(v: Value, request: &str, at: &str) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (at, inner.as_str()) {
            (a, "." | "") => a.to_string(),
            ("", i) => i.to_string(),
            (a, i) => format!("{a}.{i}"),
        };
        let place = if path.is_empty() {
            String::new()
        } else {
            format!(" (at `{path}`)")
        };
        Error::failed(format!(
            "GitHub's answer to {request} is not as documented: {}{place}",
            e.into_inner()
        ))
    })
}

/// Takes the field `key` (an alias) out of a GraphQL object; a missing one is an error.
pub fn take<T: serde::de::DeserializeOwned>(
    obj: &mut Map<String, Value>,
    key: &str,
    request: &str,
    at: &str,
) -> Result<T> {
    let at = if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    };
    match obj.remove(key) {
        Some(v) => answer(v, request, &at),
        None => Err(Error::failed(format!(
            "GitHub's answer to {request} is not as documented: missing field `{key}` (at `{at}`)"
        ))),
    }
}

/// A nullable field that must be present: `null` is `None`, a missing field an error.
pub fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

// ------------------------------------------------------------------ GraphQL

/// `data` of a query on `repository(owner:, name:)`.
#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
pub struct RepositoryData<R> {
    #[serde(deserialize_with = "nullable")]
    pub repository: Option<R>,
}

/// The fixed fields of the refs query's `repository`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefsRepository {
    pub id: String,
    #[serde(flatten)]
    pub merge: super::MergeSettings,
    #[serde(deserialize_with = "nullable")]
    pub default_branch_ref: Option<GqlRef>,
}

/// `... on Blob { text isTruncated isBinary }` (with `oid` in the refs query).
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    #[serde(deserialize_with = "nullable")]
    pub text: Option<String>,
    pub is_truncated: bool,
    #[serde(deserialize_with = "nullable")]
    pub is_binary: Option<bool>,
}

impl Blob {
    /// The whole text; `None` when GitHub sent it truncated or binary, to be read
    /// through the REST blob API instead.
    pub fn text(self) -> Option<Vec<u8>> {
        let whole = !self.is_truncated && self.is_binary != Some(true);
        whole.then_some(self.text).flatten().map(String::into_bytes)
    }
}

/// A `GitObject` selected with `... on Blob { ... }`: `{}` when it is not a blob.
pub fn blob_of(obj: Option<Map<String, Value>>, request: &str, at: &str) -> Result<Option<Blob>> {
    match obj {
        Some(m) if !m.is_empty() => answer(Value::Object(m), request, at).map(Some),
        _ => Ok(None),
    }
}

/// `file(path:) { object { ... on Blob { ... } } }`: a `TreeEntry`.
#[derive(Deserialize)]
pub struct FileEntry {
    #[serde(deserialize_with = "nullable")]
    pub object: Option<Map<String, Value>>,
}

/// The target of a ref in the refs query: `{ oid f0.. ... on Tag { target { oid f0.. } } }`.
#[derive(Deserialize)]
pub struct RefTargetObject {
    pub oid: String,
    /// Only on a tag (`... on Tag`): its target.
    #[serde(default)]
    pub target: Option<Box<RefTargetObject>>,
    /// The aliased `Commit.file` selections (`f0`, `f1`...), on a commit.
    #[serde(flatten)]
    pub files: Map<String, Value>,
}

/// A `Ref` of the refs query: its target, and the aliased comparisons (`c0`...) or
/// the default branch's `name`.
#[derive(Deserialize)]
pub struct GqlRef {
    #[serde(deserialize_with = "nullable")]
    pub target: Option<RefTargetObject>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `c0: compare(headRef:) { status }`.
#[derive(Deserialize)]
pub struct Comparison {
    pub status: String,
}

#[derive(Deserialize)]
pub struct OidNode {
    pub oid: String,
}

/// `repository { object(...) { ... } }`: the object, `{}` when no fragment applied.
#[derive(Deserialize)]
pub struct ObjectAnswer {
    #[serde(deserialize_with = "nullable")]
    pub object: Option<Map<String, Value>>,
}

/// `... on Tree { entries { name } }`.
#[derive(Deserialize)]
pub struct TreeEntries {
    #[serde(deserialize_with = "nullable")]
    pub entries: Option<Vec<NameNode>>,
}

#[derive(Deserialize)]
pub struct NameNode {
    pub name: String,
}

/// `createCommitOnBranch(input:) { commit { oid } }`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCommitData {
    #[serde(deserialize_with = "nullable")]
    pub create_commit_on_branch: Option<CreateCommitPayload>,
}

#[derive(Deserialize)]
pub struct CreateCommitPayload {
    #[serde(deserialize_with = "nullable")]
    pub commit: Option<OidNode>,
}

/// `updateRefs(input:) { clientMutationId }`.
/// Read only to check the answer's shape: its payload says nothing gitops-flow uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UpdateRefsData {
    #[serde(deserialize_with = "nullable")]
    pub update_refs: Option<UpdateRefsPayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UpdateRefsPayload {
    #[serde(deserialize_with = "nullable")]
    pub client_mutation_id: Option<String>,
}

// ------------------------------------------------------------------ REST

/// `GET /commits/{ref}`: the fields gitops-flow reads (`commit` schema).
#[derive(Deserialize)]
pub struct RestCommit {
    pub sha: String,
    pub parents: Vec<ShaNode>,
}

/// `GET /commits/{ref}?per_page=&page=` read for its file list.
#[derive(Deserialize)]
pub struct RestCommitFiles {
    pub files: Vec<FileName>,
}

#[derive(Deserialize)]
pub struct FileName {
    pub filename: String,
}

#[derive(Deserialize)]
pub struct ShaNode {
    pub sha: String,
}

/// `GET /compare/{base}...{head}`.
#[derive(Deserialize)]
pub struct RestComparison {
    pub status: String,
}

/// `GET /git/matching-refs/{ref}` items (`git-ref` schema).
#[derive(Deserialize)]
pub struct RestGitRef {
    #[serde(rename = "ref")]
    pub name: String,
    pub object: RestGitRefObject,
}

#[derive(Deserialize)]
pub struct RestGitRefObject {
    pub sha: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `GET /contents/{path}` when not a directory (a list): its `type` and the rest.
#[derive(Deserialize)]
pub struct RestContentEntry {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A `content-file` (`type: file`).
#[derive(Deserialize)]
pub struct RestContentFile {
    pub encoding: String,
    pub content: String,
    pub size: u64,
    pub sha: String,
}

/// `GET /git/blobs/{sha}`.
#[derive(Deserialize)]
pub struct RestBlob {
    pub content: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused<T>(r: Result<T>) -> Error {
        match r {
            Err(e) => e,
            Ok(_) => panic!("a malformed answer was accepted"),
        }
    }

    #[test]
    fn a_missing_field_is_named_with_its_place_and_the_request() {
        let e = refused(answer::<GqlRef>(
            json!({"target": {"f0": null}}),
            "the refs query",
            "repository.r0",
        ));
        assert_eq!(
            e.to_string(),
            "GitHub's answer to the refs query is not as documented: missing field `oid` (at `repository.r0.target`)"
        );
        assert_eq!(e.exit_code(), 1);
        // A nullable field must still be there.
        let e = refused(answer::<GqlRef>(
            json!({"c0": {"status": "AHEAD"}}),
            "the refs query",
            "repository.r0",
        ));
        assert!(e.to_string().contains("missing field `target`"), "{e}");
        let e = refused(answer::<RestCommit>(
            json!({"sha": 7, "parents": []}),
            "GET commits/{ref}",
            "",
        ));
        assert!(
            e.to_string()
                .contains("invalid type: integer `7`, expected a string (at `sha`)"),
            "{e}"
        );
        let mut m = json!({"id": "x"}).as_object().cloned().unwrap();
        let e = refused(take::<String>(&mut m, "r0", "the refs query", "repository"));
        assert!(
            e.to_string().ends_with("missing field `r0` (at `repository.r0`)"),
            "{e}"
        );
    }

    #[test]
    fn blobs_and_other_objects() {
        let b = blob_of(
            json!({"text": "a", "isTruncated": false, "isBinary": false})
                .as_object()
                .cloned(),
            "q",
            "x",
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.text(), Some(b"a".to_vec()));
        let b = blob_of(
            json!({"text": "a", "isTruncated": true, "isBinary": false})
                .as_object()
                .cloned(),
            "q",
            "x",
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.text(), None);
        assert!(blob_of(Some(Map::new()), "q", "x").unwrap().is_none());
        assert!(blob_of(json!({"text": "a"}).as_object().cloned(), "q", "x").is_err());
    }
}
