//! The fake GitHub's REST answers, shaped as GitHub's REST API description
//! documents them (every required property, nothing undocumented): the fake
//! validates each 2xx answer it sends against the description
//! (`schema_check::check_response`), as it validates the requests it gets.

use serde_json::{Map, Value, json};

use super::fake_github::{OWNER, REPO};

pub const TIME: &str = "2024-01-01T00:00:00Z";

/// The REST API root of the fake (`http://127.0.0.1:port/api/v3`).
pub fn api(url: &str) -> String {
    format!("{url}/api/v3")
}

/// The repository's REST URL.
pub fn repo_api(url: &str) -> String {
    format!("{url}/api/v3/repos/{OWNER}/{REPO}")
}

/// A `simple-user`.
pub fn user(url: &str, login: &str, id: u64, kind: &str) -> Value {
    let u = format!("{}/users/{login}", api(url));
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": format!("{url}/avatars/{login}"),
        "gravatar_id": "",
        "url": u,
        "html_url": format!("{url}/{login}"),
        "followers_url": format!("{u}/followers"),
        "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"),
        "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"),
        "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"),
        "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"),
        "type": kind,
        "site_admin": false,
    })
}

/// The bot that writes through the Actions token.
pub fn bot(url: &str) -> Value {
    user(url, "github-actions[bot]", 41898282, "Bot")
}

/// The URL properties every repository schema has.
const REPO_URLS: &[&str] = &[
    "archive_url",
    "assignees_url",
    "blobs_url",
    "branches_url",
    "collaborators_url",
    "comments_url",
    "commits_url",
    "compare_url",
    "contents_url",
    "contributors_url",
    "deployments_url",
    "downloads_url",
    "events_url",
    "forks_url",
    "git_commits_url",
    "git_refs_url",
    "git_tags_url",
    "hooks_url",
    "issue_comment_url",
    "issue_events_url",
    "issues_url",
    "keys_url",
    "labels_url",
    "languages_url",
    "merges_url",
    "milestones_url",
    "notifications_url",
    "pulls_url",
    "releases_url",
    "stargazers_url",
    "statuses_url",
    "subscribers_url",
    "subscription_url",
    "tags_url",
    "teams_url",
    "trees_url",
];

/// `acme/gitops` as a `minimal-repository` (the commit status answer's `repository`).
pub fn minimal_repository(url: &str) -> Value {
    let r = repo_api(url);
    let mut m = Map::new();
    for k in REPO_URLS {
        m.insert((*k).into(), json!(format!("{r}/{}", k.trim_end_matches("_url"))));
    }
    let fixed = json!({
        "id": 1,
        "node_id": "R_kgDOacmegitops",
        "name": REPO,
        "full_name": format!("{OWNER}/{REPO}"),
        "owner": user(url, OWNER, 1000, "Organization"),
        "private": true,
        "html_url": format!("{url}/{OWNER}/{REPO}"),
        "description": null,
        "fork": false,
        "url": r,
    });
    m.extend(fixed.as_object().cloned().unwrap_or_default());
    Value::Object(m)
}

/// `acme/gitops` as a `repository` (a pull request's `head.repo` and `base.repo`).
pub fn repository(url: &str) -> Value {
    let mut v = minimal_repository(url);
    let more = json!({
        "clone_url": format!("{url}/{OWNER}/{REPO}.git"),
        "git_url": format!("git://127.0.0.1/{OWNER}/{REPO}.git"),
        "ssh_url": format!("git@127.0.0.1:{OWNER}/{REPO}.git"),
        "svn_url": format!("{url}/{OWNER}/{REPO}"),
        "mirror_url": null,
        "homepage": null,
        "language": null,
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 1,
        "default_branch": "main",
        "open_issues_count": 0,
        "open_issues": 0,
        "has_issues": true,
        "has_projects": false,
        "has_wiki": false,
        "has_pages": false,
        "has_downloads": true,
        "archived": false,
        "disabled": false,
        "license": null,
        "pushed_at": TIME,
        "created_at": TIME,
        "updated_at": TIME,
    });
    if let (Some(m), Some(extra)) = (v.as_object_mut(), more.as_object()) {
        m.extend(extra.clone());
    }
    v
}

/// `acme/gitops` as a `full-repository` (`GET /repos/{owner}/{repo}`).
pub fn full_repository(url: &str) -> Value {
    let mut v = repository(url);
    v["has_discussions"] = json!(false);
    v["network_count"] = json!(0);
    v["subscribers_count"] = json!(0);
    v
}

/// A `label` (the fake knows labels by name only).
pub fn label(url: &str, name: &str) -> Value {
    let id = name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000_000;
    json!({
        "id": id,
        "node_id": format!("LA_{id}"),
        "url": format!("{}/labels/{}", repo_api(url), name),
        "name": name,
        // A string: `pull-request-simple` does not allow null here (`label` does).
        "description": "",
        "color": "ededed",
        "default": false,
    })
}

/// A `link`.
pub fn link(href: String) -> Value {
    json!({ "href": href })
}

/// A git user (`commit.commit.author`).
pub fn git_user(name: &str, email: &str) -> Value {
    json!({ "name": name, "email": email, "date": TIME })
}

/// A `commit` (`GET /commits/{ref}`, `GET /commits`, a comparison's commits):
/// `files` only where GitHub lists them (one commit).
pub fn commit(url: &str, sha: &str, message: &str, parents: &[String], tree: &str, files: Option<Vec<Value>>) -> Value {
    let r = repo_api(url);
    let mut c = json!({
        "url": format!("{r}/commits/{sha}"),
        "sha": sha,
        "node_id": format!("C_{sha}"),
        "html_url": format!("{url}/{OWNER}/{REPO}/commit/{sha}"),
        "comments_url": format!("{r}/commits/{sha}/comments"),
        "commit": {
            "url": format!("{r}/git/commits/{sha}"),
            "author": git_user("Dev", "dev@example.com"),
            "committer": git_user("GitHub", "noreply@github.com"),
            "message": message,
            "comment_count": 0,
            "tree": {"sha": tree, "url": format!("{r}/git/trees/{tree}")},
        },
        "author": null,
        "committer": null,
        "parents": parents
            .iter()
            .map(|p| json!({"sha": p, "url": format!("{r}/commits/{p}"), "html_url": format!("{url}/{OWNER}/{REPO}/commit/{p}")}))
            .collect::<Vec<_>>(),
    });
    if let Some(files) = files {
        c["files"] = Value::Array(files);
    }
    c
}

/// A `diff-entry` of a commit's file list.
pub fn diff_entry(url: &str, sha: &str, filename: &str, blob: Option<&str>) -> Value {
    let r = repo_api(url);
    json!({
        "sha": blob,
        "filename": filename,
        "status": "modified",
        "additions": 1,
        "deletions": 1,
        "changes": 2,
        "blob_url": format!("{url}/{OWNER}/{REPO}/blob/{sha}/{filename}"),
        "raw_url": format!("{url}/{OWNER}/{REPO}/raw/{sha}/{filename}"),
        "contents_url": format!("{r}/contents/{filename}?ref={sha}"),
    })
}

/// The properties every `GET /contents` entry has (`content-file`, a directory's items).
pub fn content_entry(url: &str, path: &str, kind: &str, sha: &str, size: usize, at: &str) -> Value {
    let r = repo_api(url);
    let self_url = format!("{r}/contents/{path}?ref={at}");
    let git_url = format!("{r}/git/{}s/{sha}", if kind == "dir" { "tree" } else { "blob" });
    let html_url = format!(
        "{url}/{OWNER}/{REPO}/{}/{at}/{path}",
        if kind == "dir" { "tree" } else { "blob" }
    );
    let download = (kind == "file").then(|| format!("{url}/raw/{OWNER}/{REPO}/{at}/{path}"));
    json!({
        "type": kind,
        "name": path.rsplit('/').next(),
        "path": path,
        "sha": sha,
        "size": size,
        "url": self_url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": download,
        "_links": {"self": self_url, "git": git_url, "html": html_url},
    })
}

/// A `simple-commit-status`.
pub fn commit_status(url: &str, sha: &str, i: usize, context: &str, state: &str) -> Value {
    json!({
        "id": i + 1,
        "node_id": format!("SC_{}", i + 1),
        "url": format!("{}/statuses/{sha}", repo_api(url)),
        "avatar_url": null,
        "state": state,
        "description": null,
        "target_url": null,
        "context": context,
        "created_at": TIME,
        "updated_at": TIME,
    })
}

/// A `check-run`.
pub fn check_run(url: &str, sha: &str, id: u64, name: &str, status: &str, conclusion: Option<&str>) -> Value {
    let r = repo_api(url);
    json!({
        "id": id,
        "node_id": format!("CR_{id}"),
        "head_sha": sha,
        "external_id": null,
        "url": format!("{r}/check-runs/{id}"),
        "html_url": format!("{url}/{OWNER}/{REPO}/runs/{id}"),
        "details_url": null,
        "status": status,
        "conclusion": conclusion,
        "started_at": TIME,
        "completed_at": (status == "completed").then_some(TIME),
        "output": {
            "title": null,
            "summary": null,
            "text": null,
            "annotations_count": 0,
            "annotations_url": format!("{r}/check-runs/{id}/annotations"),
        },
        "name": name,
        "check_suite": {"id": 1},
        "app": null,
        "pull_requests": [],
    })
}
