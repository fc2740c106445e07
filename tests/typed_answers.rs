//! Issue 11: the GitHub backend's git-side answers are deserialised into typed
//! shapes; an answer missing a field gitops-flow relies on fails the run (exit 1)
//! with a message naming the field and the request, instead of being read as
//! "absent" or "not an ancestor". Issue 9 §10: the fake's own answers are held to
//! GitHub's REST description.

mod support;

use serde_json::{Value, json};
use support::fake_github::FakeGitHub;
use support::schema_check::check_response;
use support::{Jobs, Run, scratch};

/// The `::error::` line of a run that failed with exit 1.
fn failure(r: &Run) -> String {
    assert_eq!(r.code, 1, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r.stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("no ::error:: in\n{}", r.stdout))
        .to_string()
}

/// Removes `oid` from the target of every ref of a refs query (`defaultBranchRef`,
/// `r0`, `r1`...).
fn drop_ref_oids(v: &mut Value) {
    if let Some(repo) = v.pointer_mut("/data/repository").and_then(Value::as_object_mut) {
        for r in repo.values_mut() {
            if let Some(t) = r.get_mut("target").and_then(Value::as_object_mut) {
                t.remove("oid");
            }
        }
    }
}

#[test]
fn a_refs_answer_without_oid_fails_the_run_naming_the_field() {
    let (_s, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let before = fake.refs();
    fake.tamper_next("defaultBranchRef", drop_ref_oids);
    let r = j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    );
    let err = failure(&r);
    assert!(
        err.contains(
            "GitHub's answer to the GraphQL refs query is not as documented: missing field `oid` (at `repository.defaultBranchRef.target`)"
        ),
        "{err}"
    );
    assert_eq!(fake.refs(), before, "nothing written");
    fake.assert_clean();
}

#[test]
fn a_compare_answer_without_status_fails_instead_of_meaning_not_on_main() {
    let (_s, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    fake.set_compare_unresolvable(true);
    let j = Jobs::new(&fake);
    support::deploy_payments(&fake);
    fake.advance_main("later");
    let before = fake.refs();
    fake.tamper_next("/compare/", |v| {
        v.as_object_mut().map(|m| m.remove("status"));
    });
    let r = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    let err = failure(&r);
    assert!(
        err.contains("GitHub's answer to GET compare/{basehead} is not as documented: missing field `status`"),
        "{err}"
    );
    assert_eq!(fake.refs(), before, "nothing written");
    fake.assert_clean();
}

#[test]
fn a_commit_answer_with_a_mistyped_sha_fails_naming_it() {
    let (_s, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let before = fake.refs();
    // A branch name is resolved through `GET /commits/{ref}`.
    fake.tamper_next("/commits/main", |v| v["sha"] = json!(42));
    let r = j.run(
        &[("command", "deploy"), ("service", "payments"), ("revision", "main")],
        &[],
    );
    let err = failure(&r);
    assert!(
        err.contains(
            "GitHub's answer to GET commits/{ref} is not as documented: invalid type: integer `42`, expected a string (at `sha`)"
        ),
        "{err}"
    );
    assert_eq!(fake.refs(), before, "nothing written");
    fake.assert_clean();
}

#[test]
fn the_fake_refuses_its_own_answers_when_they_break_the_description() {
    let blob = "/repos/{owner}/{repo}/git/blobs/{file_sha}";
    let good = json!({"sha": "abc", "node_id": "B", "url": "u", "size": 1, "content": "YQ==", "encoding": "base64"});
    assert_eq!(check_response("get", blob, 200, &good), Vec::<String>::new());
    // A required property missing.
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("content");
    assert_eq!(
        check_response("get", blob, 200, &missing),
        ["answer: missing required property `content`"]
    );
    // A wrong type, and a property GitHub does not send.
    let mut wrong = good.clone();
    wrong["size"] = json!("1");
    wrong["extra"] = json!(true);
    let errs = check_response("get", blob, 200, &wrong);
    assert!(
        errs.iter().any(|e| e.contains("answer.size: expected integer")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("property `extra` is not in")),
        "{errs:?}"
    );
    // An enum: a comparison's status.
    let compare = "/repos/{owner}/{repo}/compare/{basehead}";
    let errs = check_response("get", compare, 200, &json!({"status": "sideways"}));
    assert!(
        errs.iter().any(|e| e.contains("\"sideways\" is not one of")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("missing required property `base_commit`")),
        "{errs:?}"
    );
    // A status GitHub does not answer with.
    assert_eq!(
        check_response("get", blob, 201, &good),
        ["get /repos/{owner}/{repo}/git/blobs/{file_sha}: GitHub does not answer 201"]
    );
    // Error answers are not held to the 2xx schemas.
    assert!(check_response("get", blob, 404, &json!({"message": "Not Found"})).is_empty());
}

#[test]
fn the_fake_resolves_commits_only_as_github_does() {
    let (_s, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let main = fake.rev("main").unwrap();
    let (rt, o) = fake.octocrab();
    let get = |r: &str| {
        rt.block_on(async {
            let url = format!("{}/api/v3/repos/acme/gitops/commits/{r}", fake.url);
            let resp = o._get(url.as_str()).await.unwrap();
            let status = resp.status().as_u16();
            let text = o.body_to_string(resp).await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
        })
    };
    // A branch name may hold characters of git's revision syntax (`@`).
    let at_branch = fake.push_commit("release@2", "main", "README.md", "x\n");
    assert_eq!(get("release%402").1["sha"], json!(at_branch));
    // A sha, a unique prefix, a branch, a tag (annotated or not), qualified names.
    let tag = fake
        .refs()
        .into_keys()
        .find_map(|r| r.strip_prefix("refs/tags/").map(String::from))
        .expect("a tag");
    for r in [
        main.clone(),
        main[..7].to_string(),
        "main".into(),
        "heads/main".into(),
        "refs/heads/main".into(),
        tag.clone(),
        format!("tags/{tag}"),
    ] {
        let (status, body) = get(&r);
        assert_eq!(status, 200, "{r}: {body}");
        assert_eq!(body["sha"].as_str().map(str::len), Some(40), "{r}");
    }
    assert_eq!(get("main").1["sha"], json!(main));
    // Git's revision syntax is not GitHub's.
    for r in [
        format!("{main}%5E"),
        "HEAD~1".to_string(),
        "main~1".into(),
        "main%5E%7B%7D".into(),
        format!("{main}..main"),
        "no-such-branch".into(),
    ] {
        let (status, body) = get(&r);
        assert_eq!(status, 422, "{r}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("No commit found"),
            "{r}: {body}"
        );
    }
    fake.assert_clean();
}

/// Every REST operation the fake serves answers as GitHub documents it (the fake
/// records a violation otherwise), including those no command happens to call.
#[test]
fn every_rest_answer_of_the_fake_matches_the_description() {
    let (_s, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let main = fake.rev("main").unwrap();
    fake.add_status(&main, "ci", "success");
    fake.add_check(&main, "build", "completed", Some("success"));
    fake.add_check(&main, "lint", "in_progress", None);
    let branch = fake.push_commit("feature", "main", "charts/payments/values.yaml", "replicaCount: 3\n");
    let n = fake.open_pull("feature", "main", &["gitops"]);
    let merge = fake.merge_pull(n);
    let blob = fake.git(&["rev-parse", &format!("{main}:README.md")]);
    let (rt, o) = fake.octocrab();
    let send = |method: &str, path: &str, body: Option<Value>| {
        rt.block_on(async {
            let url = format!("{}/api/v3/repos/acme/gitops{path}", fake.url);
            let r = match method {
                "GET" => o._get(url.as_str()).await,
                "POST" => o._post(url.as_str(), body.as_ref()).await,
                _ => o._patch(url.as_str(), body.as_ref()).await,
            }
            .unwrap();
            let status = r.status().as_u16();
            let text = o.body_to_string(r).await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
        })
    };
    let ok = |(status, body): (u16, Value), what: &str| {
        assert!((200..300).contains(&status), "{what}: {status} {body}");
        body
    };
    ok(send("GET", "", None), "repository");
    ok(send("GET", "/commits?sha=main&per_page=5", None), "commits");
    let c = ok(send("GET", &format!("/commits/{merge}"), None), "commit");
    assert_eq!(c["files"][0]["filename"], json!("charts/payments/values.yaml"));
    ok(send("GET", &format!("/commits/{merge}/pulls"), None), "commit pulls");
    ok(send("GET", &format!("/commits/{main}/status"), None), "status");
    ok(send("GET", &format!("/commits/{main}/check-runs"), None), "check runs");
    let cmp = ok(send("GET", &format!("/compare/{main}...{branch}"), None), "compare");
    assert_eq!(cmp["status"], json!("ahead"));
    ok(
        send("GET", "/contents/charts/payments/Chart.yaml?ref=main", None),
        "file",
    );
    let listing = ok(send("GET", "/contents/charts?ref=main", None), "directory");
    assert_eq!(listing[0]["type"], json!("dir"));
    ok(send("GET", &format!("/git/blobs/{blob}"), None), "blob");
    ok(send("GET", "/git/matching-refs/tags/payments", None), "matching refs");
    ok(send("GET", "/pulls?state=all", None), "pulls");
    ok(send("GET", &format!("/pulls/{n}"), None), "pull");
    ok(
        send(
            "PATCH",
            &format!("/pulls/{n}"),
            Some(json!({"title": "t", "body": "b"})),
        ),
        "patch pull",
    );
    ok(
        send("POST", &format!("/issues/{n}/labels"), Some(json!({"labels": ["x"]}))),
        "labels",
    );
    let pr = fake.push_commit("other", "main", "README.md", "other\n");
    assert!(!pr.is_empty());
    ok(
        send(
            "POST",
            "/pulls",
            Some(json!({"title": "o", "head": "other", "base": "main", "body": "b"})),
        ),
        "create pull",
    );
    let d = ok(
        send(
            "POST",
            "/deployments",
            Some(
                json!({"ref": main, "environment": "staging", "description": "d", "payload": {"a": 1}, "auto_merge": false, "required_contexts": []}),
            ),
        ),
        "create deployment",
    );
    let id = d["id"].as_u64().unwrap();
    ok(
        send(
            "POST",
            &format!("/deployments/{id}/statuses"),
            Some(
                json!({"state": "success", "description": "ok", "environment_url": "https://x", "log_url": "https://y"}),
            ),
        ),
        "deployment status",
    );
    ok(send("GET", "/deployments?environment=staging", None), "deployments");
    ok(
        send("GET", &format!("/deployments/{id}/statuses"), None),
        "deployment statuses",
    );
    fake.assert_clean();
}

#[test]
fn a_history_answer_without_page_info_fails_instead_of_ending_the_history() {
    let (_s, dir) = scratch("make_file_repo.sh");
    let file = dir.join("overlays/dev/payments/values.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let bumped: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("tag:") {
                "  tag: \"1.2.0\"\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&file, bumped).unwrap();
    support::git(&dir, &["commit", "-q", "-am", "set 1.2.0"]);
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let before = fake.refs();
    fake.tamper_next("history(", |v| {
        if let Some(h) = v
            .pointer_mut("/data/repository/object/history")
            .and_then(Value::as_object_mut)
        {
            h.remove("pageInfo");
        }
    });
    let r = j.run(
        &[("command", "rollback"), ("service", "payments"), ("environment", "dev")],
        &[],
    );
    let err = failure(&r);
    assert!(
        err.contains(
            "GitHub's answer to the GraphQL history query is not as documented: missing field `pageInfo` (at `repository.object.history`)"
        ),
        "{err}"
    );
    assert_eq!(fake.refs(), before, "nothing written");
    fake.assert_clean();
}
