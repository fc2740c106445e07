//! The fake GitHub itself: it refuses what GitHub would refuse.

mod support;

use serde_json::json;
use support::fake_github::FakeGitHub;
use support::scratch;

fn send(fake: &FakeGitHub, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let (rt, o) = fake.octocrab();
    let url = format!("{}{path}", fake.url);
    rt.block_on(async {
        let r = match method {
            "GET" => o._get(url.as_str()).await,
            "POST" => o._post(url.as_str(), body.as_ref()).await,
            _ => o._patch(url.as_str(), body.as_ref()).await,
        }
        .unwrap();
        let status = r.status().as_u16();
        let text = o.body_to_string(r).await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    })
}

#[test]
fn refuses_an_unknown_endpoint() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let (status, body) = send(&fake, "GET", "/api/v3/repos/acme/gitops/git/reefs/heads/main", None);
    assert_eq!(status, 422);
    assert!(
        body["message"].as_str().unwrap().contains("no such operation"),
        "{body}"
    );
    assert_eq!(fake.violations().len(), 1);
}

#[test]
fn refuses_a_body_that_does_not_match_the_schema() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    // `head` must be a string; `draft_mode` is not a property of the operation.
    let (status, body) = send(
        &fake,
        "POST",
        "/api/v3/repos/acme/gitops/pulls",
        Some(json!({"title": "x", "head": 5, "base": "main"})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("body.head"), "{body}");
    let (status, _) = send(
        &fake,
        "POST",
        "/api/v3/repos/acme/gitops/pulls",
        Some(json!({"title": "x", "head": "main", "base": "main", "draft_mode": true})),
    );
    assert_eq!(status, 422);
    // Labels need at least one item.
    let (status, _) = send(
        &fake,
        "POST",
        "/api/v3/repos/acme/gitops/issues/1/labels",
        Some(json!({"labels": []})),
    );
    assert_eq!(status, 422);
    assert_eq!(fake.violations().len(), 3);
}

#[test]
fn refuses_an_invalid_graphql_document() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let cases = [
        (
            json!({"query": "query { repository(owner: \"acme\", name: \"gitops\") { idd } }"}),
            "does not exist",
        ),
        (
            json!({"query": "mutation($input: UpdateRefsInput!) { updateRefs(input: $input) { clientMutationId } }", "variables": {"input": {"refUpdates": []}}}),
            "repositoryId is required",
        ),
        (
            json!({"query": "mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit } }", "variables": {"input": {"branch": {"branchName": "x"}, "message": {"headline": "h"}, "expectedHeadOid": "0"}}}),
            "needs a selection set",
        ),
        (
            json!({"query": "query($unused: String!) { viewer { login } }", "variables": {"unused": "x"}}),
            "never used",
        ),
        (
            json!({"query": "query { repository(owner: \"acme\") { id } }"}),
            "requires argument `name`",
        ),
    ];
    for (i, (req, needle)) in cases.into_iter().enumerate() {
        let (status, body) = send(&fake, "POST", "/api/graphql", Some(req));
        assert_eq!(status, 200);
        let msg = body["errors"][0]["message"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(needle), "case {i}: `{needle}` not in {body}");
    }
    assert_eq!(fake.violations().len(), 5);
}

#[test]
fn serves_valid_requests_and_rejects_bad_credentials() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let (status, body) = send(
        &fake,
        "GET",
        "/api/v3/repos/acme/gitops/git/matching-refs/tags/payments",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 2);
    let (status, body) = send(
        &fake,
        "POST",
        "/api/graphql",
        Some(
            json!({"query": "query($o: String!, $n: String!, $r: String!) { repository(owner: $o, name: $n) { id x: ref(qualifiedName: $r) { target { oid } } } }", "variables": {"o": "acme", "n": "gitops", "r": "refs/heads/main"}}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["repository"]["x"]["target"]["oid"].as_str().unwrap(),
        fake.rev("main").unwrap()
    );
    fake.assert_clean();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let o = octocrab::Octocrab::builder()
            .base_uri(fake.url.as_str())
            .unwrap()
            .personal_token("wrong".to_string())
            .build()
            .unwrap();
        o._get(format!("{}/api/v3/repos/acme/gitops", fake.url).as_str())
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 401);
}

#[test]
fn argo_cd_applications_are_checked_against_argo_cds_own_description() {
    let text = std::fs::read_to_string(support::fixtures().join("argocd/argocd-swagger-subset.json")).unwrap();
    let root: serde_json::Value = serde_json::from_str(&text).unwrap();
    let schema = json!({"$ref": "#/definitions/v1alpha1Application"});
    let check = |app: serde_json::Value| {
        let mut errs = Vec::new();
        support::schema_check::validate_in(&root, &schema, &app, "application", &mut errs);
        errs
    };
    assert!(check(json!({"metadata": {"name": "a"}, "status": {"health": {"status": "Healthy"}, "sync": {"status": "Synced", "revision": "abc"}}})).is_empty());
    assert!(
        !check(json!({"status": {"health": {"status": 5}}})).is_empty(),
        "a number where Argo CD has a string"
    );
    assert!(
        !check(json!({"status": {"sync": {"revison": "typo"}}})).is_empty(),
        "an unknown field"
    );
}

// ------------------------------------------------ the fake's own GraphQL answers

/// A GraphQL read of the fake with its answer spoiled by `spoil` before the fake
/// validates it: the answer checks' complaints about it (taken, so that dropping the
/// fake does not fail the test).
fn spoiled_graphql_answer(spoil: impl FnOnce(&mut serde_json::Value) + Send + 'static) -> Vec<String> {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let query = json!({
        "query": "query($o: String!, $n: String!) { repository(owner: $o, name: $n) { nameWithOwner \
                  main: defaultBranchRef { name target { oid ... on Commit { history(first: 5) { \
                  pageInfo { hasNextPage } nodes { __typename oid message } } } } } \
                  ref(qualifiedName: \"refs/tags/payments-staging\") { compare(headRef: \"main\") { status } } } }",
        "variables": {"o": "acme", "n": "gitops"}
    });
    // Unspoiled, the answer is as GitHub's.
    let (status, body) = send(&fake, "POST", "/api/graphql", Some(query.clone()));
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["repository"]["ref"]["compare"]["status"], "AHEAD",
        "{body}"
    );
    assert_eq!(
        body["data"]["repository"]["main"]["target"]["history"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{body}"
    );
    fake.assert_clean();
    fake.spoil_next("defaultBranchRef", spoil);
    let (status, _) = send(&fake, "POST", "/api/graphql", Some(query));
    assert_eq!(status, 200);
    assert_eq!(fake.violations().len(), 1, "{:?}", fake.violations());
    let bad = fake.take_bad_answers();
    assert!(fake.violations().is_empty());
    bad
}

fn assert_names(bad: &[String], needle: &str) {
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains(needle), "`{needle}` not in:\n{}", bad[0]);
}

#[test]
fn refuses_its_own_graphql_answer_without_a_selected_field() {
    let bad = spoiled_graphql_answer(|v| {
        v["data"]["repository"]["main"]["target"]
            .as_object_mut()
            .unwrap()
            .remove("oid");
    });
    // `target` is a GitObject without `__typename`: read as the type it comes closest to.
    assert_names(
        &bad,
        "data.repository.main.target.oid: missing, though selected (Commit.oid)",
    );
}

#[test]
fn refuses_its_own_graphql_answer_with_a_mistyped_scalar_or_enum() {
    let bad = spoiled_graphql_answer(|v| {
        v["data"]["repository"]["main"]["target"]["history"]["nodes"][1]["oid"] = json!(42);
    });
    assert_names(
        &bad,
        "data.repository.main.target.history.nodes[1].oid: expected a GitObjectID (a string of 40 hex digits), got 42",
    );
    let bad = spoiled_graphql_answer(|v| {
        v["data"]["repository"]["main"]["target"]["history"]["pageInfo"]["hasNextPage"] = json!("false");
    });
    assert_names(
        &bad,
        "data.repository.main.target.history.pageInfo.hasNextPage: expected a Boolean (true or false), got \"false\"",
    );
    let bad = spoiled_graphql_answer(|v| v["data"]["repository"]["ref"]["compare"]["status"] = json!("EQUAL"));
    assert_names(
        &bad,
        "data.repository.ref.compare.status: expected a value of enum ComparisonStatus",
    );
    let bad = spoiled_graphql_answer(|v| {
        v["data"]["repository"]["main"]["target"]["history"]["nodes"] = json!({"oid": "x"});
    });
    assert_names(
        &bad,
        "data.repository.main.target.history.nodes: expected a list [Commit], got {\"oid\":\"x\"}",
    );
    let bad = spoiled_graphql_answer(|v| {
        v["data"]["repository"]["main"]["target"]["history"]["nodes"][0]["__typename"] = json!("Tree");
    });
    assert_names(
        &bad,
        "data.repository.main.target.history.nodes[0].__typename: expected \"Commit\", got \"Tree\"",
    );
}

#[test]
fn refuses_its_own_graphql_answer_with_null_for_a_non_null_field() {
    let bad = spoiled_graphql_answer(|v| v["data"]["repository"]["nameWithOwner"] = json!(null));
    assert_names(
        &bad,
        "data.repository.nameWithOwner: null, but the field is non-null (String!)",
    );
    // Without errors, neither may `data` be null.
    let bad = spoiled_graphql_answer(|v| v["data"] = json!(null));
    assert_names(&bad, "data: null, and there are no errors");
}

#[test]
fn refuses_its_own_graphql_answer_with_an_unselected_key() {
    let bad = spoiled_graphql_answer(|v| v["data"]["repository"]["isPrivate"] = json!(false));
    assert_names(
        &bad,
        "data.repository.isPrivate: not selected on Repository, yet in the answer",
    );
    // A field that exists on the type, selected under another alias only.
    let bad = spoiled_graphql_answer(|v| {
        v["data"]["repository"]["defaultBranchRef"] = v["data"]["repository"]["main"].clone();
    });
    assert_names(&bad, "data.repository.defaultBranchRef: not selected on Repository");
}

#[test]
#[should_panic(expected = "the fake GitHub gave answers GitHub would not give")]
fn a_bad_answer_of_the_fake_fails_the_test_even_unasked() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    fake.spoil_next("nameWithOwner", |v| v["data"]["repository"]["nameWithOwner"] = json!(7));
    let query = json!({"query": "query { repository(owner: \"acme\", name: \"gitops\") { nameWithOwner } }"});
    let (status, _) = send(&fake, "POST", "/api/graphql", Some(query));
    assert_eq!(status, 200);
    // No `assert_clean`: dropping the fake fails the test.
}

#[test]
fn a_graphql_answer_checks_fragments_aliases_and_skipped_fields() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let query = json!({
        "query": "query($skip: Boolean!) { repository(owner: \"acme\", name: \"gitops\") { ...R } } \
                  fragment R on Repository { a: object(expression: \"main:README.md\") { __typename ... on Blob { byteSize isBinary } } \
                  b: object(expression: \"main\") { ... on Blob { text } ... on Commit { oid } } \
                  c: object(expression: \"main:charts\") { ... on Tree { entries { name } } } \
                  id @skip(if: $skip) nameWithOwner @include(if: $skip) }",
        "variables": {"skip": true}
    });
    let (status, body) = send(&fake, "POST", "/api/graphql", Some(query));
    assert_eq!(status, 200);
    assert_eq!(body["data"]["repository"]["a"]["__typename"], "Blob", "{body}");
    assert!(body["data"]["repository"].get("id").is_none(), "{body}");
    fake.assert_clean();
}

#[test]
fn with_errors_a_graphql_answer_may_have_null_data_but_never_a_null_non_null_field() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let query = json!({"query": "query { repository(owner: \"acme\", name: \"gitops\") { nameWithOwner defaultBranchRef { name } } }"});
    let errors = json!([{"type": "NOT_FOUND", "path": ["repository"], "message": "x"}]);
    let e = errors.clone();
    fake.spoil_next("nameWithOwner", move |v| *v = json!({"data": null, "errors": e}));
    send(&fake, "POST", "/api/graphql", Some(query.clone()));
    let e = errors.clone();
    fake.spoil_next("nameWithOwner", move |v| {
        v["errors"] = e;
        v["data"]["repository"]["defaultBranchRef"] = json!(null);
    });
    send(&fake, "POST", "/api/graphql", Some(query.clone()));
    fake.assert_clean();
    fake.spoil_next("nameWithOwner", move |v| {
        v["errors"] = errors;
        v["data"]["repository"]["nameWithOwner"] = json!(null);
    });
    send(&fake, "POST", "/api/graphql", Some(query));
    let bad = fake.take_bad_answers();
    assert_names(
        &bad,
        "data.repository.nameWithOwner: null, but the field is non-null (String!)",
    );
}
