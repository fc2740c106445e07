//! A fake GitHub on 127.0.0.1: stateful, backed by a real bare git repository,
//! refusing what GitHub would refuse (see `schema_check`), with fault injection
//! and a log of every request. REST is served under `/api/v3` and GraphQL at
//! `/api/graphql`, as on GitHub Enterprise, so base-URL handling is exercised.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use graphql_parser::query as q;
use serde_json::{Value, json};

use super::github_json as gj;
use super::schema_check::{self, arg_value};

pub const OWNER: &str = "acme";
pub const REPO: &str = "gitops";
pub const TOKEN: &str = "ghs_faketoken0123456789";
const REPO_ID: &str = "R_kgDOacmegitops";

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub status: u16,
    /// GraphQL: the root field names (`repository`, `updateRefs`...).
    pub graphql: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
    pub when: When,
    /// Only a request whose `METHOD path` line or body contains this text.
    pub matching: Option<String>,
    /// Headers of the answer besides `retry-after`.
    pub headers: Vec<(String, String)>,
}

/// How a fault meets the request it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Answer with the fault instead of handling the request.
    Instead,
    /// Handle the request (the write lands), then answer with the fault's status.
    AfterApply,
    /// Handle the request (the write lands), then drop the connection unanswered.
    DropAfterApply,
}

/// Repository settings that GraphQL `Repository` reports and auto-merge obeys.
#[derive(Debug, Clone)]
pub struct MergeSettings {
    pub auto_merge_allowed: bool,
    pub merge_commit_allowed: bool,
    pub squash_merge_allowed: bool,
    pub rebase_merge_allowed: bool,
    /// Pull requests are mergeable at once ("clean status"): GitHub refuses auto-merge.
    pub clean: bool,
}

impl Default for MergeSettings {
    fn default() -> Self {
        MergeSettings {
            auto_merge_allowed: true,
            merge_commit_allowed: true,
            squash_merge_allowed: true,
            rebase_merge_allowed: true,
            clean: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub state: String,
    pub labels: Vec<String>,
    pub auto_merge: bool,
    pub merge_commit_sha: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    pub environment: String,
    pub description: Option<String>,
    pub payload: Value,
    /// The states of its statuses, oldest first.
    pub statuses: Vec<String>,
    /// Each status as sent (`state`, `description`, `environment_url`, `log_url`...), oldest first.
    pub status_bodies: Vec<Value>,
    pub transient: bool,
    pub production: bool,
}

impl Deployment {
    pub fn state(&self) -> Option<&str> {
        self.statuses.last().map(String::as_str)
    }
}

/// A deployment as GitHub's REST API returns it (`deployment` schema).
fn deployment_json(url: &str, d: &Deployment) -> Value {
    json!({
        "url": format!("{url}/api/v3/repos/{OWNER}/{REPO}/deployments/{}", d.id),
        "id": d.id,
        "node_id": format!("DE_kwDO{}", d.id),
        "sha": d.sha,
        "ref": d.sha,
        "task": "deploy",
        "payload": d.payload,
        "original_environment": d.environment,
        "environment": d.environment,
        "description": d.description,
        "creator": gj::bot(url),
        "created_at": gj::TIME,
        "updated_at": gj::TIME,
        "statuses_url": format!("{url}/api/v3/repos/{OWNER}/{REPO}/deployments/{}/statuses", d.id),
        "repository_url": format!("{url}/api/v3/repos/{OWNER}/{REPO}"),
        "transient_environment": d.transient,
        "production_environment": d.production,
    })
}

/// A deployment status as GitHub's REST API returns it (`deployment-status` schema).
fn status_json(url: &str, d: &Deployment, i: usize) -> Value {
    let b = &d.status_bodies[i];
    let s = |k: &str| b.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    json!({
        "url": format!("{url}/api/v3/repos/{OWNER}/{REPO}/deployments/{}/statuses/{}", d.id, d.id * 100 + i as u64 + 1),
        "id": d.id * 100 + i as u64 + 1,
        "node_id": format!("DES_kwDO{}", d.id * 100 + i as u64 + 1),
        "state": d.statuses[i],
        "creator": gj::bot(url),
        "description": s("description"),
        "environment": d.environment,
        "target_url": s("log_url"),
        "log_url": s("log_url"),
        "environment_url": s("environment_url"),
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "deployment_url": format!("{url}/api/v3/repos/{OWNER}/{REPO}/deployments/{}", d.id),
        "repository_url": format!("{url}/api/v3/repos/{OWNER}/{REPO}"),
    })
}

/// `page` / `per_page` of a listing (GitHub's defaults: 1 and 30).
fn page_of<T: Clone>(items: &[T], req_query: &HashMap<String, String>) -> Vec<T> {
    let page: usize = req_query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let per: usize = req_query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    items.iter().skip((page - 1) * per).take(per).cloned().collect()
}

#[derive(Default)]
struct State {
    log: Vec<Logged>,
    violations: Vec<String>,
    faults: VecDeque<Fault>,
    latency: Duration,
    pulls: Vec<Pull>,
    verified: HashSet<String>,
    deployments: Vec<Deployment>,
    /// Commit statuses: sha -> [(context, state)].
    statuses: HashMap<String, Vec<(String, String)>>,
    /// Check runs: sha -> [(name, status, conclusion)].
    checks: HashMap<String, Vec<(String, String, Option<String>)>>,
    /// Pause before applying a write, to let tests race (path contains, ms).
    write_delay: Option<(String, u64)>,
    /// Runs once just before a write of this GraphQL field is applied: a concurrent
    /// writer that always comes between the read and the write.
    before_write: Option<(String, BeforeWrite)>,
    /// Runs when the next fault that matches a request by text fires `Instead`, before
    /// its answer (another writer acting while this request is refused).
    on_fault: Option<BeforeWrite>,
    /// Apply the next matching request, then answer with this status instead
    /// ("the write landed but the answer was lost"): (method, path suffix, status).
    /// `(method, path suffix, status, applied)`: applied false answers without handling.
    lose_answers: VecDeque<(String, String, u16, bool)>,
    /// GraphQL errors to answer the next document naming a field with: (field, type, message).
    graphql_errors: VecDeque<(String, String, String)>,
    merge: MergeSettings,
    /// `Ref.compare` answers null with a field error (a head GitHub cannot resolve).
    compare_unresolvable: bool,
    /// `updateRefs` refuses refs under this prefix (a GitHub that would not take them).
    refused_ref_prefix: Option<String>,
    /// `updateRefs` refuses an update that leaves a ref where it is.
    refuse_noop_updates: bool,
    /// Auto-merge mutations seen: (pull request number, merge method).
    auto_merges: Vec<(u64, String)>,
    /// Answers to spoil after they were handled and validated: (text the request's
    /// `METHOD path body` line contains, the change).
    tampers: VecDeque<(String, Tamper)>,
    /// Answers to spoil before they are validated (a bug in the fake, to see the
    /// answer checks refuse it): (text the `METHOD path body` line contains, the change).
    spoils: VecDeque<(String, Tamper)>,
    /// The fake's own answers that GitHub would not give (also in `violations`): a bug
    /// in the fake, reported when the fake is dropped even if the test never asks.
    bad_answers: Vec<String>,
    /// A GitHub that goes silent: every request whose `METHOD path body` line contains
    /// the text waits this long before it is handled.
    stalls: Vec<(String, Duration)>,
}

type BeforeWrite = Box<dyn FnOnce() + Send>;
type Tamper = Box<dyn FnOnce(&mut Value) + Send>;

pub struct FakeGitHub {
    pub url: String,
    pub bare: PathBuf,
    state: Arc<Mutex<State>>,
    _tmp: tempfile::TempDir,
}

fn git_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl Drop for FakeGitHub {
    /// An answer of the fake's that GitHub would not give fails the test even if it
    /// never calls `assert_clean`: whatever it proved was proved against a wrong GitHub.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let bad = self.state.lock().map(|s| s.bad_answers.clone()).unwrap_or_default();
        assert!(
            bad.is_empty(),
            "the fake GitHub gave answers GitHub would not give:\n{}",
            bad.join("\n")
        );
    }
}

impl FakeGitHub {
    /// Starts a fake whose repository `acme/gitops` is a mirror of `seed`.
    pub fn start(seed: &Path) -> FakeGitHub {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bare = tmp.path().join("gitops.git");
        git_in(
            tmp.path(),
            &[
                "clone",
                "-q",
                "--mirror",
                &seed.display().to_string(),
                &bare.display().to_string(),
            ],
            None,
            &[],
        )
        .expect("mirror");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let (st, b, u) = (state.clone(), bare.clone(), url.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, b, u) = (st.clone(), b.clone(), u.clone());
                std::thread::spawn(move || serve(conn, &st, &b, &u));
            }
        });
        FakeGitHub {
            url,
            bare,
            state,
            _tmp: tmp,
        }
    }

    /// The runner variables and inputs that point gitops-flow at this fake.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("GITHUB_API_URL".into(), format!("{}/api/v3", self.url)),
            ("GITHUB_GRAPHQL_URL".into(), format!("{}/api/graphql", self.url)),
            ("GITHUB_SERVER_URL".into(), self.url.clone()),
            ("GITHUB_REPOSITORY".into(), format!("{OWNER}/{REPO}")),
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("INPUT_TOKEN".into(), TOKEN.into()),
            ("GITOPS_FLOW_RETRY_BASE_MS".into(), "20".into()),
        ]
    }

    /// A shallow, tag-less clone like actions/checkout's default.
    pub fn checkout(&self, dir: &Path) {
        let url = format!("file://{}", self.bare.display());
        git_in(
            Path::new("/"),
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--no-tags",
                &url,
                &dir.display().to_string(),
            ],
            None,
            &[],
        )
        .expect("clone");
    }

    /// Moves main on by one commit with the same tree (someone else's push); returns it.
    pub fn advance_main(&self, message: &str) -> String {
        let head = self.rev("main").expect("main");
        let tree = self.git(&["rev-parse", &format!("{head}^{{tree}}")]);
        let next = self.git(&[
            "-c",
            "user.name=other",
            "-c",
            "user.email=other@example.com",
            "commit-tree",
            &tree,
            "-p",
            &head,
            "-m",
            message,
        ]);
        self.git(&["update-ref", "refs/heads/main", &next]);
        next
    }

    /// The bare repository behind the fake.
    pub fn bare(&self) -> &Path {
        &self.bare
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.bare, args, None, &[])
            .unwrap_or_else(|e| panic!("git {args:?}: {e}"))
            .trim_end()
            .to_string()
    }

    pub fn rev(&self, r: &str) -> Option<String> {
        sha_of(&self.bare, r)
    }

    pub fn refs(&self) -> std::collections::BTreeMap<String, String> {
        self.git(&["for-each-ref", "--format=%(refname) %(objectname)"])
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect()
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().expect("lock").log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().expect("lock").log.clear();
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().expect("lock").violations.clone()
    }

    /// Fails loudly when anything was sent that GitHub would refuse or the fake lacks.
    pub fn assert_clean(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "the fake GitHub saw requests GitHub would refuse or that it does not implement:\n{}",
            v.join("\n")
        );
    }

    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let body = if status == 403 {
            r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#
        } else {
            r#"{"message":"Server Error"}"#
        };
        let mut s = self.state.lock().expect("lock");
        for _ in 0..n {
            s.faults.push_back(Fault {
                status,
                retry_after,
                body: body.into(),
                when: When::Instead,
                matching: None,
                headers: Vec::new(),
            });
        }
    }

    /// The next request containing `matching` (in `METHOD path` or its body — a
    /// GraphQL field name such as `updateRefs`, a REST path such as `/pulls`) meets
    /// `when`; `status` is the answer for `Instead` and `AfterApply`.
    pub fn fault_on(&self, matching: &str, when: When, status: u16) {
        self.state.lock().expect("lock").faults.push_back(Fault {
            status,
            retry_after: None,
            body: r#"{"message":"Server Error"}"#.into(),
            when,
            matching: Some(matching.into()),
            headers: Vec::new(),
        });
    }

    /// The next request containing `matching` is answered with exactly this (and not
    /// handled).
    pub fn fail_on_with(&self, matching: &str, status: u16, headers: &[(&str, &str)], body: &str) {
        self.state.lock().expect("lock").faults.push_back(Fault {
            status,
            retry_after: None,
            body: body.into(),
            when: When::Instead,
            matching: Some(matching.into()),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        });
    }

    /// Runs `f` when the next fault matching a request by text fires `Instead`,
    /// before its answer is sent.
    pub fn on_fault(&self, f: impl FnOnce() + Send + 'static) {
        self.state.lock().expect("lock").on_fault = Some(Box::new(f));
    }

    /// The next request is answered with exactly this (and not handled).
    pub fn fail_next_with(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        self.state.lock().expect("lock").faults.push_back(Fault {
            status,
            retry_after: None,
            body: body.into(),
            when: When::Instead,
            matching: None,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        });
    }

    /// The next `method` request whose path ends with `suffix` is applied, then
    /// answered with `status` (the write landed, the answer was lost).
    pub fn lose_answer(&self, method: &str, suffix: &str, status: u16) {
        self.state
            .lock()
            .expect("lock")
            .lose_answers
            .push_back((method.into(), suffix.into(), status, true));
    }

    /// The next `method` request whose path ends with `suffix` is answered with
    /// `status` and not handled (the write did not land).
    pub fn refuse_next(&self, method: &str, suffix: &str, status: u16) {
        self.state
            .lock()
            .expect("lock")
            .lose_answers
            .push_back((method.into(), suffix.into(), status, false));
    }

    /// The next GraphQL document that selects `field` is answered with this error
    /// (as GitHub does: HTTP 200, `errors: [{type, message}]`), and not executed.
    pub fn graphql_error_on(&self, field: &str, kind: &str, message: &str) {
        self.state
            .lock()
            .expect("lock")
            .graphql_errors
            .push_back((field.into(), kind.into(), message.into()));
    }

    /// The next request whose `METHOD path body` line contains `matching` is handled
    /// as usual, then its JSON answer is changed by `f` (after the fake validated it):
    /// an answer GitHub would not give, to see the client refuse it.
    pub fn tamper_next(&self, matching: &str, f: impl FnOnce(&mut Value) + Send + 'static) {
        self.state
            .lock()
            .expect("lock")
            .tampers
            .push_back((matching.into(), Box::new(f)));
    }

    /// The next request whose `METHOD path body` line contains `matching` is handled
    /// as usual, then its JSON answer is changed by `f` *before* the fake validates
    /// it (REST: against the response schema; GraphQL: against the document and the
    /// schema): a bug in the fake, to see those checks refuse it.
    pub fn spoil_next(&self, matching: &str, f: impl FnOnce(&mut Value) + Send + 'static) {
        self.state
            .lock()
            .expect("lock")
            .spoils
            .push_back((matching.into(), Box::new(f)));
    }

    /// The fake's answers that did not match GitHub's description so far, forgotten
    /// (for the tests that spoil answers on purpose).
    pub fn take_bad_answers(&self) -> Vec<String> {
        let mut s = self.state.lock().expect("lock");
        let bad = std::mem::take(&mut s.bad_answers);
        s.violations.retain(|v| !bad.contains(v));
        bad
    }

    /// Makes `updateRefs` refuse every update of a ref under `prefix` (`None`: none).
    pub fn refuse_refs_under(&self, prefix: Option<&str>) {
        self.state.lock().expect("lock").refused_ref_prefix = prefix.map(String::from);
    }

    /// An octocrab client of this fake with its token, and a runtime to drive it:
    /// for tests that send GitHub's own requests to the fake directly.
    pub fn octocrab(&self) -> (tokio::runtime::Runtime, octocrab::Octocrab) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let o = rt.block_on(async {
            octocrab::Octocrab::builder()
                .base_uri(self.url.as_str())
                .expect("base uri")
                .personal_token(TOKEN.to_string())
                .build()
                .expect("client")
        });
        (rt, o)
    }

    /// Makes `updateRefs` refuse an update whose `beforeOid` is its `afterOid`.
    pub fn refuse_noop_updates(&self, on: bool) {
        self.state.lock().expect("lock").refuse_noop_updates = on;
    }

    /// Every `Ref.compare` answers null with a `NOT_FOUND` field error.
    pub fn set_compare_unresolvable(&self, on: bool) {
        self.state.lock().expect("lock").compare_unresolvable = on;
    }

    pub fn set_merge_settings(&self, m: MergeSettings) {
        self.state.lock().expect("lock").merge = m;
    }

    /// Auto-merge enabled so far: (pull request number, merge method).
    pub fn auto_merges(&self) -> Vec<(u64, String)> {
        self.state.lock().expect("lock").auto_merges.clone()
    }

    /// Every request whose `METHOD path body` line contains `matching` waits `ms`
    /// before it is handled (a GitHub that does not answer in time).
    pub fn stall(&self, matching: &str, ms: u64) {
        self.state
            .lock()
            .expect("lock")
            .stalls
            .push((matching.into(), Duration::from_millis(ms)));
    }

    pub fn set_latency(&self, ms: u64) {
        self.state.lock().expect("lock").latency = Duration::from_millis(ms);
    }

    pub fn delay_writes(&self, graphql_field: &str, ms: u64) {
        self.state.lock().expect("lock").write_delay = Some((graphql_field.into(), ms));
    }

    /// Runs `f` once, just before the next `graphql_field` mutation is applied.
    pub fn before_write(&self, graphql_field: &str, f: impl FnOnce() + Send + 'static) {
        self.state.lock().expect("lock").before_write = Some((graphql_field.into(), Box::new(f)));
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.state.lock().expect("lock").pulls.clone()
    }

    pub fn deployments(&self) -> Vec<Deployment> {
        self.state.lock().expect("lock").deployments.clone()
    }

    pub fn is_verified(&self, sha: &str) -> bool {
        self.state.lock().expect("lock").verified.contains(sha)
    }

    pub fn add_status(&self, sha: &str, context: &str, state: &str) {
        self.state
            .lock()
            .expect("lock")
            .statuses
            .entry(sha.into())
            .or_default()
            .push((context.into(), state.into()));
    }

    pub fn add_check(&self, sha: &str, name: &str, status: &str, conclusion: Option<&str>) {
        self.state
            .lock()
            .expect("lock")
            .checks
            .entry(sha.into())
            .or_default()
            .push((name.into(), status.into(), conclusion.map(String::from)));
    }

    /// Opens a pull request from `head` (which must exist) into `base` with `labels`.
    pub fn open_pull(&self, head: &str, base: &str, labels: &[&str]) -> u64 {
        let mut s = self.state.lock().expect("lock");
        let number = s.pulls.len() as u64 + 1;
        s.pulls.push(Pull {
            number,
            title: format!("Change {head}"),
            body: String::new(),
            head: head.into(),
            base: base.into(),
            state: "open".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            auto_merge: false,
            merge_commit_sha: None,
        });
        number
    }

    pub fn set_labels(&self, number: u64, labels: &[&str]) {
        let mut s = self.state.lock().expect("lock");
        let pr = s.pulls.iter_mut().find(|p| p.number == number).expect("pull exists");
        pr.labels = labels.iter().map(|l| l.to_string()).collect();
    }

    pub fn close_pull(&self, number: u64) {
        let mut s = self.state.lock().expect("lock");
        let pr = s.pulls.iter_mut().find(|p| p.number == number).expect("pull exists");
        pr.state = "closed".into();
    }

    /// A push to `branch` (created from `from` when missing): one commit writing `file`.
    pub fn push_commit(&self, branch: &str, from: &str, file: &str, content: &str) -> String {
        let _guard = self.state.lock().expect("lock");
        push_to(&self.bare, branch, from, file, content)
    }

    /// A pusher for `before_write` hooks (which run while a request is served).
    pub fn pusher(&self) -> impl Fn(&str, &str, &str) -> String + Send + 'static {
        let bare = self.bare.clone();
        move |branch, file, content| push_to(&bare, branch, branch, file, content)
    }
}

fn push_to(bare: &Path, branch: &str, from: &str, file: &str, content: &str) -> String {
    let rev = |r: &str| sha_of(bare, r);
    {
        let parent = rev(&format!("refs/heads/{branch}"))
            .or_else(|| rev(from))
            .expect("parent exists");
        let idx = bare.join(format!("index-push-{}", std::process::id()));
        let idx_s = idx.display().to_string();
        let env = [("GIT_INDEX_FILE", idx_s.as_str())];
        git_in(bare, &["read-tree", &parent], None, &env).expect("read-tree");
        let blob = git_in(bare, &["hash-object", "-w", "--stdin"], Some(content.as_bytes()), &[]).expect("blob");
        git_in(
            bare,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{},{file}", blob.trim()),
            ],
            None,
            &env,
        )
        .expect("update-index");
        let tree = git_in(bare, &["write-tree"], None, &env).expect("write-tree");
        let _ = std::fs::remove_file(&idx);
        let cenv = [
            ("GIT_AUTHOR_NAME", "Dev"),
            ("GIT_AUTHOR_EMAIL", "dev@example.com"),
            ("GIT_COMMITTER_NAME", "Dev"),
            ("GIT_COMMITTER_EMAIL", "dev@example.com"),
        ];
        let c = git_in(
            bare,
            &[
                "commit-tree",
                tree.trim(),
                "-p",
                &parent,
                "-m",
                &format!("change {file}"),
            ],
            None,
            &cenv,
        )
        .expect("commit-tree")
        .trim()
        .to_string();
        git_in(bare, &["update-ref", &format!("refs/heads/{branch}"), &c], None, &[]).expect("update-ref");
        c
    }
}

impl FakeGitHub {
    /// The pull request as a `pull_request` event payload carries it.
    pub fn pull_payload(&self, number: u64) -> Value {
        let s = self.state.lock().expect("lock");
        let pr = s.pulls.iter().find(|p| p.number == number).expect("pull");
        pull_json(&self.url, pr, &self.bare, true)
    }

    /// Merges an open pull request the way GitHub's "squash and merge" does:
    /// one new commit on the base with the head's tree. Returns the merge commit.
    pub fn merge_pull(&self, number: u64) -> String {
        let mut s = self.state.lock().expect("lock");
        let pr = s.pulls.iter_mut().find(|p| p.number == number).expect("pull exists");
        let base = self.rev(&format!("refs/heads/{}", pr.base)).expect("base");
        let head = self.rev(&format!("refs/heads/{}", pr.head)).expect("head");
        let tree = self.git(&["rev-parse", &format!("{head}^{{tree}}")]);
        let msg = format!("{} (#{number})\n\n{}", pr.title, pr.body);
        let env = [
            ("GIT_AUTHOR_NAME", "Merger"),
            ("GIT_AUTHOR_EMAIL", "m@example.com"),
            ("GIT_COMMITTER_NAME", "GitHub"),
            ("GIT_COMMITTER_EMAIL", "noreply@github.com"),
        ];
        let c = git_in(&self.bare, &["commit-tree", &tree, "-p", &base, "-m", &msg], None, &env)
            .expect("commit-tree")
            .trim()
            .to_string();
        git_in(
            &self.bare,
            &["update-ref", &format!("refs/heads/{}", pr.base), &c, &base],
            None,
            &[],
        )
        .expect("update-ref");
        pr.state = "closed".into();
        pr.merge_commit_sha = Some(c.clone());
        s.verified.insert(c.clone());
        c
    }

    /// A `pull_request` closed event for a merged pull request, as the runner gives it.
    pub fn pull_event(&self, number: u64) -> Value {
        let s = self.state.lock().expect("lock");
        let pr = s.pulls.iter().find(|p| p.number == number).expect("pull");
        json!({"action": "closed", "number": number, "pull_request": pull_json(&self.url, pr, &self.bare, true)})
    }
}

/// A pull request as GitHub's REST API returns it: `pull-request` (`full`: one pull
/// request, and the event payload) or `pull-request-simple` (a listing).
fn pull_json(url: &str, p: &Pull, bare: &Path, full: bool) -> Value {
    let sha = |branch: &str| {
        git_in(
            bare,
            &["rev-parse", "-q", "--verify", &format!("refs/heads/{branch}")],
            None,
            &[],
        )
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
    };
    let r = gj::repo_api(url);
    let n = p.number;
    let api_url = format!("{r}/pulls/{n}");
    let html_url = format!("{url}/{OWNER}/{REPO}/pull/{n}");
    let side = |branch: &str| json!({"label": format!("{OWNER}:{branch}"), "ref": branch, "sha": sha(branch), "user": gj::user(url, OWNER, 1000, "Organization"), "repo": gj::repository(url)});
    let merged = p.merge_commit_sha.is_some();
    let closed = p.state == "closed";
    let mut v = json!({
        "url": api_url,
        "id": n * 1000,
        "node_id": format!("PR_kwDO{n}"),
        "html_url": html_url,
        "diff_url": format!("{html_url}.diff"),
        "patch_url": format!("{html_url}.patch"),
        "issue_url": format!("{r}/issues/{n}"),
        "commits_url": format!("{api_url}/commits"),
        "review_comments_url": format!("{api_url}/comments"),
        "review_comment_url": format!("{r}/pulls/comments{{/number}}"),
        "comments_url": format!("{r}/issues/{n}/comments"),
        "statuses_url": format!("{r}/statuses/{}", sha(&p.head)),
        "number": n,
        "state": p.state,
        "locked": false,
        "title": p.title,
        "user": gj::bot(url),
        "body": p.body,
        "labels": p.labels.iter().map(|l| gj::label(url, l)).collect::<Vec<_>>(),
        "milestone": null,
        "created_at": gj::TIME,
        "updated_at": gj::TIME,
        "closed_at": closed.then_some("2024-01-03T00:00:00Z"),
        "merged_at": merged.then_some("2024-01-03T00:00:00Z"),
        "merge_commit_sha": p.merge_commit_sha,
        "assignee": null,
        "head": side(&p.head),
        "base": side(&p.base),
        "_links": {
            "self": gj::link(api_url.clone()),
            "html": gj::link(html_url.clone()),
            "issue": gj::link(format!("{r}/issues/{n}")),
            "comments": gj::link(format!("{r}/issues/{n}/comments")),
            "review_comments": gj::link(format!("{api_url}/comments")),
            "review_comment": gj::link(format!("{r}/pulls/comments{{/number}}")),
            "commits": gj::link(format!("{api_url}/commits")),
            "statuses": gj::link(format!("{r}/statuses/{}", sha(&p.head))),
        },
        "author_association": "NONE",
        "auto_merge": if p.auto_merge {
            json!({"enabled_by": gj::bot(url), "merge_method": "squash", "commit_title": p.title, "commit_message": p.body})
        } else {
            Value::Null
        },
    });
    if full {
        let more = json!({
            "merged": merged,
            "mergeable": null,
            "mergeable_state": "unknown",
            "merged_by": if merged { gj::user(url, "merger", 1001, "User") } else { Value::Null },
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": true,
            "commits": 1,
            "additions": 1,
            "deletions": 1,
            "changed_files": 1,
        });
        if let (Some(m), Some(extra)) = (v.as_object_mut(), more.as_object()) {
            m.extend(extra.clone());
        }
    }
    v
}

struct Req {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len = headers
        .get("content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    let (path, qs) = target.split_once('?').unwrap_or((&target, ""));
    let query = qs
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                schema_check::percent_decode(k),
                schema_check::percent_decode(&v.replace('+', " ")),
            )
        })
        .collect();
    Some(Req {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

fn respond(w: &mut TcpStream, status: u16, body: &str, extra: &[(String, String)]) {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // One write: a head and a body written apart wait on Nagle and delayed ACKs.
    head.push_str(body);
    let _ = w.write_all(head.as_bytes());
    let _ = w.flush();
}

fn serve(conn: TcpStream, state: &Arc<Mutex<State>>, bare: &Path, url: &str) {
    let _ = conn.set_nodelay(true);
    let mut writer = conn.try_clone().expect("clone stream");
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader) {
        let line = format!("{} {} {}", req.method, req.path, String::from_utf8_lossy(&req.body));
        let (latency, fault) = {
            let mut s = state.lock().expect("lock");
            let i = s
                .faults
                .iter()
                .position(|f| f.matching.as_ref().is_none_or(|m| line.contains(m.as_str())));
            let stall = s
                .stalls
                .iter()
                .filter(|(m, _)| line.contains(m.as_str()))
                .map(|(_, d)| *d)
                .sum::<Duration>();
            (s.latency + stall, i.and_then(|i| s.faults.remove(i)))
        };
        std::thread::sleep(latency);
        let body_json: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let mut graphql_fields = Vec::new();
        let authorized = |req: &Req| {
            let auth = req.headers.get("authorization").cloned().unwrap_or_default();
            auth == format!("Bearer {TOKEN}") || auth == format!("token {TOKEN}")
        };
        let (status, body, headers) = if let Some(f) = fault.as_ref().filter(|f| f.when == When::Instead) {
            let f = f.clone();
            if f.matching.is_some() {
                let hook = state.lock().expect("lock").on_fault.take();
                if let Some(h) = hook {
                    h();
                }
            }
            let mut h = Vec::new();
            if let Some(ra) = f.retry_after {
                h.push(("retry-after".to_string(), ra.to_string()));
            }
            if f.status == 403 && f.headers.is_empty() {
                h.push(("x-ratelimit-remaining".to_string(), "4999".to_string()));
            }
            h.extend(f.headers);
            (f.status, f.body, h)
        } else if !authorized(&req) {
            (401, r#"{"message":"Bad credentials"}"#.to_string(), Vec::new())
        } else {
            if req.path == "/api/graphql"
                && let Some((_, kind, message)) = {
                    let mut s = state.lock().expect("lock");
                    let query = body_json["query"].as_str().unwrap_or_default();
                    let i = s
                        .graphql_errors
                        .iter()
                        .position(|(f, ..)| query.contains(&format!("{f}(")) || query.contains(&format!("{f} ")));
                    i.and_then(|i| s.graphql_errors.remove(i))
                }
            {
                let b = json!({"data": null, "errors": [{"type": kind, "path": [], "locations": [{"line": 1, "column": 1}], "message": message}]});
                (200, b.to_string(), Vec::new())
            } else {
                let lost = {
                    let mut s = state.lock().expect("lock");
                    let i = s
                        .lose_answers
                        .iter()
                        .position(|(m, suffix, ..)| *m == req.method && req.path.ends_with(suffix.as_str()));
                    i.and_then(|i| s.lose_answers.remove(i))
                };
                let server_error = r#"{"message":"Server Error"}"#.to_string();
                match lost {
                    Some((_, _, status, false)) => (status, server_error, Vec::new()),
                    Some((_, _, status, true)) => {
                        handle(&req, &body_json, state, bare, url, &mut graphql_fields);
                        (status, server_error, Vec::new())
                    }
                    None => {
                        let (st, mut b) = handle(&req, &body_json, state, bare, url, &mut graphql_fields);
                        let tamper = {
                            let mut s = state.lock().expect("lock");
                            let i = s.tampers.iter().position(|(m, _)| line.contains(m.as_str()));
                            i.and_then(|i| s.tampers.remove(i))
                        };
                        if let Some((_, f)) = tamper {
                            f(&mut b);
                        }
                        match &fault {
                            Some(f) if f.when == When::AfterApply => (f.status, f.body.clone(), Vec::new()),
                            _ => (st, b.to_string(), Vec::new()),
                        }
                    }
                }
            }
        };
        if fault.as_ref().is_some_and(|f| f.when == When::DropAfterApply) {
            state.lock().expect("lock").log.push(Logged {
                method: req.method.clone(),
                path: req.path.clone(),
                body: body_json,
                status: 0,
                graphql: graphql_fields,
            });
            return;
        }
        state.lock().expect("lock").log.push(Logged {
            method: req.method.clone(),
            path: req.path.clone(),
            body: body_json,
            status,
            graphql: graphql_fields,
        });
        respond(&mut writer, status, &body, &headers);
    }
}

fn violation(state: &Arc<Mutex<State>>, msg: String) -> (u16, Value) {
    state.lock().expect("lock").violations.push(msg.clone());
    (
        422,
        json!({ "message": msg, "documentation_url": "https://docs.github.com/rest" }),
    )
}

fn handle(
    req: &Req,
    body: &Value,
    state: &Arc<Mutex<State>>,
    bare: &Path,
    url: &str,
    fields: &mut Vec<String>,
) -> (u16, Value) {
    if req.method == "POST" && req.path == "/api/graphql" {
        let query = body.get("query").and_then(|q| q.as_str()).unwrap_or_default();
        let vars = body.get("variables").cloned().unwrap_or(json!({}));
        return match schema_check::check_graphql(query, &vars) {
            Ok(parsed) => {
                let (status, mut answer) = graphql(&parsed, &vars, state, bare, url, fields);
                spoil(req, state, &mut answer);
                // The fake's answers are held to the document and GitHub's schema.
                let errs = schema_check::check_graphql_answer(&parsed, &vars, &answer);
                if !errs.is_empty() {
                    bad_answer(
                        state,
                        format!(
                            "POST /api/graphql: the fake's answer does not match the document and GitHub's schema:\n  {}\n{query}",
                            errs.join("\n  ")
                        ),
                    );
                }
                (status, answer)
            }
            Err(errs) => {
                let msg = format!("invalid GraphQL document: {}\n{query}", errs.join("; "));
                state.lock().expect("lock").violations.push(msg.clone());
                (
                    200,
                    json!({ "errors": errs.iter().map(|e| json!({"message": e})).collect::<Vec<_>>() }),
                )
            }
        };
    }
    let Some(path) = req.path.strip_prefix("/api/v3") else {
        return violation(
            state,
            format!("{} {}: not under /api/v3 (wrong base URL)", req.method, req.path),
        );
    };
    let method = req.method.to_ascii_lowercase();
    let Some((template, params)) = schema_check::match_operation(&method, path) else {
        return violation(
            state,
            format!(
                "{} {}: no such operation in GitHub's REST API description",
                req.method, path
            ),
        );
    };
    let has_body = !req.body.is_empty();
    let errs = schema_check::check_body(&method, &template, has_body.then_some(body));
    if !errs.is_empty() {
        return violation(
            state,
            format!(
                "{} {}: body does not match the API description: {}",
                req.method,
                path,
                errs.join("; ")
            ),
        );
    }
    if params.get("owner").map(String::as_str) != Some(OWNER) || params.get("repo").map(String::as_str) != Some(REPO) {
        return (404, json!({"message": "Not Found"}));
    }
    let (status, mut answer) = rest(&method, &template, &params, req, body, state, bare, url);
    spoil(req, state, &mut answer);
    // The fake's own answers are held to GitHub's description as its requests are.
    let errs = schema_check::check_response(&method, &template, status, &answer);
    if !errs.is_empty() {
        bad_answer(
            state,
            format!(
                "{} {}: the fake's {status} answer does not match the API description: {}",
                req.method,
                path,
                errs.join("; ")
            ),
        );
    }
    (status, answer)
}

/// Applies the first `spoil_next` whose text the request's `METHOD path body` line contains.
fn spoil(req: &Req, state: &Arc<Mutex<State>>, answer: &mut Value) {
    let line = format!("{} {} {}", req.method, req.path, String::from_utf8_lossy(&req.body));
    let f = {
        let mut s = state.lock().expect("lock");
        let i = s.spoils.iter().position(|(m, _)| line.contains(m.as_str()));
        i.and_then(|i| s.spoils.remove(i))
    };
    if let Some((_, f)) = f {
        f(answer);
    }
}

/// An answer of the fake's that GitHub would not give: a violation, and a failure
/// when the fake is dropped (`take_bad_answers` forgets them).
fn bad_answer(state: &Arc<Mutex<State>>, msg: String) {
    let mut s = state.lock().expect("lock");
    s.violations.push(msg.clone());
    s.bad_answers.push(msg);
}

/// The raw stdout of a git command (empty on failure).
fn git_bytes(dir: &Path, args: &[&str]) -> Vec<u8> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout)
        .unwrap_or_default()
}

/// A commit as `GET /commits/{ref}` returns it (`files` for one commit).
fn commit_json(bare: &Path, url: &str, sha: &str, files: Option<Vec<Value>>) -> Value {
    let parents: Vec<String> = git_in(bare, &["rev-list", "--parents", "-n", "1", sha], None, &[])
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let message = git_in(bare, &["log", "-1", "--format=%B", sha], None, &[]).unwrap_or_default();
    let tree = git_in(bare, &["rev-parse", &format!("{sha}^{{tree}}")], None, &[]).unwrap_or_default();
    gj::commit(url, sha, &message, &parents, tree.trim(), files)
}

/// `page` / `per_page` of a listing that allows up to `max` a page.
fn page_of_at_most<T: Clone>(items: &[T], q: &HashMap<String, String>, max: usize) -> Vec<T> {
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let per: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, max);
    items.iter().skip((page - 1) * per).take(per).cloned().collect()
}

/// What `GET /commits/{ref}` resolves: a commit sha (full, or an unambiguous prefix
/// of at least 4 hex digits), a branch or a tag name (also `heads/x`, `tags/x`,
/// `refs/heads/x`) or `HEAD` — not git's revision syntax (`<sha>^`, `HEAD~1`,
/// `main@{1}`, `a..b`, `<sha>:path`).
fn commitish(bare: &Path, r: &str) -> Option<String> {
    if r == "HEAD" {
        return sha_of(bare, "HEAD");
    }
    let is_hex = r.len() >= 4 && r.len() <= 40 && r.bytes().all(|b| b.is_ascii_hexdigit());
    let candidates: Vec<String> = if is_hex {
        vec![r.to_string(), format!("refs/heads/{r}"), format!("refs/tags/{r}")]
    } else if let Some(rest) = r.strip_prefix("refs/") {
        vec![format!("refs/{rest}")]
    } else if r.starts_with("heads/") || r.starts_with("tags/") {
        vec![format!("refs/{r}")]
    } else {
        vec![format!("refs/heads/{r}"), format!("refs/tags/{r}")]
    };
    candidates.iter().find_map(|c| {
        // A ref name must exist as a ref (`show-ref`), not be a revision expression.
        if c.starts_with("refs/") {
            git_in(bare, &["show-ref", "--verify", "-q", c], None, &[]).ok()?;
        }
        sha_of(bare, c)
    })
}

fn sha_of(bare: &Path, r: &str) -> Option<String> {
    git_in(
        bare,
        &["rev-parse", "--verify", "-q", &format!("{r}^{{commit}}")],
        None,
        &[],
    )
    .ok()
    .map(|s| s.trim().to_string())
}

#[allow(clippy::too_many_arguments)]
fn rest(
    method: &str,
    template: &str,
    p: &HashMap<String, String>,
    req: &Req,
    body: &Value,
    state: &Arc<Mutex<State>>,
    bare: &Path,
    url: &str,
) -> (u16, Value) {
    let not_found = || (404, json!({"message": "Not Found"}));
    match (method, template) {
        ("get", "/repos/{owner}/{repo}") => (200, gj::full_repository(url)),
        ("get", "/repos/{owner}/{repo}/commits/{ref}") => {
            // GitHub resolves a commit sha (or a unique prefix), a branch or a tag
            // name here — not git's revision syntax (`<sha>^`, `main~1`, `a..b`).
            let Some(sha) = commitish(bare, &p["ref"]) else {
                return (
                    422,
                    json!({"message": format!("No commit found for SHA: {}", p["ref"])}),
                );
            };
            let files: Vec<Value> = git_in(
                bare,
                &[
                    "diff-tree",
                    "--root",
                    "--no-commit-id",
                    "-r",
                    "-m",
                    "--first-parent",
                    &sha,
                ],
                None,
                &[],
            )
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                // `:100644 100644 <old> <new> M\t<path>`
                let (meta, path) = l.split_once('\t')?;
                let blob = meta.split_whitespace().nth(3).filter(|b| !b.bytes().all(|c| c == b'0'));
                Some(gj::diff_entry(url, &sha, path, blob))
            })
            .collect();
            // One page of the file list (`per_page`, `page`; at most 300 a page).
            let files = page_of_at_most(&files, &req.query, 300);
            (200, commit_json(bare, url, &sha, Some(files)))
        }
        ("get", "/repos/{owner}/{repo}/compare/{basehead}") => {
            let Some((base, head)) = p["basehead"].split_once("...") else {
                return not_found();
            };
            let (Some(b), Some(h)) = (sha_of(bare, base), sha_of(bare, head)) else {
                return not_found();
            };
            let anc = |a: &str, d: &str| git_in(bare, &["merge-base", "--is-ancestor", a, d], None, &[]).is_ok();
            let status = if b == h {
                "identical"
            } else if anc(&b, &h) {
                "ahead"
            } else if anc(&h, &b) {
                "behind"
            } else {
                "diverged"
            };
            let mb = git_in(bare, &["merge-base", &b, &h], None, &[])
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| b.clone());
            let count = |range: String| {
                git_in(bare, &["rev-list", "--count", &range], None, &[])
                    .ok()
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let (ahead, behind) = (count(format!("{b}..{h}")), count(format!("{h}..{b}")));
            let html = format!("{url}/{OWNER}/{REPO}/compare/{}", p["basehead"]);
            (
                200,
                json!({
                    "url": format!("{}/compare/{}", gj::repo_api(url), p["basehead"]),
                    "html_url": html,
                    "permalink_url": html,
                    "diff_url": format!("{html}.diff"),
                    "patch_url": format!("{html}.patch"),
                    "status": status,
                    "ahead_by": ahead,
                    "behind_by": behind,
                    "total_commits": ahead,
                    "base_commit": commit_json(bare, url, &b, None),
                    "merge_base_commit": commit_json(bare, url, &mb, None),
                    // `per_page` is the client's: it reads the status only.
                    "commits": [],
                }),
            )
        }
        ("get", "/repos/{owner}/{repo}/contents/{path}") => {
            let r = req.query.get("ref").cloned().unwrap_or_else(|| "main".into());
            let spec = format!("{r}:{}", p["path"]);
            match git_in(bare, &["cat-file", "-t", &spec], None, &[])
                .map(|t| t.trim().to_string())
                .as_deref()
            {
                Ok("blob") => {
                    let out = Command::new("git")
                        .args(["cat-file", "blob", &spec])
                        .current_dir(bare)
                        .output()
                        .expect("git");
                    let sha = git_in(bare, &["rev-parse", &spec], None, &[]).unwrap_or_default();
                    // As GitHub: over 1 MB the content is left out (`encoding: none`).
                    let (encoding, content) = if out.stdout.len() > 1024 * 1024 {
                        ("none", String::new())
                    } else {
                        ("base64", base64::engine::general_purpose::STANDARD.encode(&out.stdout))
                    };
                    let mut entry = gj::content_entry(url, &p["path"], "file", sha.trim(), out.stdout.len(), &r);
                    entry["encoding"] = json!(encoding);
                    entry["content"] = json!(content);
                    (200, entry)
                }
                Ok("tree") => {
                    let entries: Vec<Value> = git_in(bare, &["ls-tree", "-l", &spec], None, &[])
                        .unwrap_or_default()
                        .lines()
                        .filter_map(|l| {
                            // `<mode> <type> <oid> <size>\t<name>`
                            let (meta, name) = l.split_once('\t')?;
                            let m: Vec<&str> = meta.split_whitespace().collect();
                            let kind = match m.get(1).copied()? {
                                "blob" => "file",
                                "tree" => "dir",
                                _ => "submodule",
                            };
                            let size = m.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
                            let path = format!("{}/{name}", p["path"]);
                            Some(gj::content_entry(url, &path, kind, m.get(2)?, size, &r))
                        })
                        .collect();
                    (200, Value::Array(entries))
                }
                _ => not_found(),
            }
        }
        ("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}") => {
            let sha = &p["file_sha"];
            if git_in(bare, &["cat-file", "-t", sha], None, &[]).map(|t| t.trim() == "blob") != Ok(true) {
                return not_found();
            }
            let bytes = git_bytes(bare, &["cat-file", "blob", sha]);
            (
                200,
                json!({"sha": sha, "node_id": "B", "size": bytes.len(), "url": format!("{url}/api/v3/repos/{OWNER}/{REPO}/git/blobs/{sha}"), "content": base64::engine::general_purpose::STANDARD.encode(&bytes), "encoding": "base64"}),
            )
        }
        ("get", "/repos/{owner}/{repo}/git/matching-refs/{ref}") => {
            let prefix = format!("refs/{}", p["ref"]);
            let list: Vec<Value> = git_in(bare, &["for-each-ref", "--format=%(refname) %(objectname) %(objecttype)"], None, &[])
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut it = l.split(' ');
                    let (n, s, t) = (it.next()?, it.next()?, it.next()?);
                    n.starts_with(&prefix).then(|| json!({"ref": n, "node_id": "REF", "url": format!("{url}/api/v3/repos/{OWNER}/{REPO}/git/{n}"), "object": {"sha": s, "type": t, "url": format!("{url}/api/v3/repos/{OWNER}/{REPO}/git/{t}s/{s}")}}))
                })
                .collect();
            (200, Value::Array(list))
        }
        ("get", "/repos/{owner}/{repo}/pulls") => {
            let s = state.lock().expect("lock");
            let want_state = req.query.get("state").cloned().unwrap_or_else(|| "open".into());
            let list: Vec<Value> = s
                .pulls
                .iter()
                .filter(|pr| want_state == "all" || pr.state == want_state)
                .filter(|pr| {
                    req.query
                        .get("head")
                        .is_none_or(|h| *h == format!("{OWNER}:{}", pr.head))
                })
                .filter(|pr| req.query.get("base").is_none_or(|b| *b == pr.base))
                .map(|pr| pull_json(url, pr, bare, false))
                .collect();
            (200, Value::Array(list))
        }
        ("post", "/repos/{owner}/{repo}/pulls") => {
            let head = body["head"].as_str().unwrap_or_default().to_string();
            let base = body["base"].as_str().unwrap_or_default().to_string();
            if sha_of(bare, &format!("refs/heads/{head}")).is_none()
                || sha_of(bare, &format!("refs/heads/{base}")).is_none()
            {
                return (
                    422,
                    json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}),
                );
            }
            let mut s = state.lock().expect("lock");
            if s.pulls
                .iter()
                .any(|pr| pr.head == head && pr.base == base && pr.state == "open")
            {
                return (
                    422,
                    json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {OWNER}:{head}.")}]}),
                );
            }
            let number = s.pulls.len() as u64 + 1;
            let pr = Pull {
                number,
                title: body["title"].as_str().unwrap_or_default().into(),
                body: body["body"].as_str().unwrap_or_default().into(),
                head,
                base,
                state: "open".into(),
                labels: Vec::new(),
                auto_merge: false,
                merge_commit_sha: None,
            };
            s.pulls.push(pr.clone());
            (201, pull_json(url, &pr, bare, true))
        }
        ("patch", "/repos/{owner}/{repo}/pulls/{pull_number}") => {
            let n: u64 = p["pull_number"].parse().unwrap_or(0);
            let mut s = state.lock().expect("lock");
            let Some(pr) = s.pulls.iter_mut().find(|x| x.number == n) else {
                return not_found();
            };
            if let Some(t) = body["title"].as_str() {
                pr.title = t.into();
            }
            if let Some(b) = body["body"].as_str() {
                pr.body = b.into();
            }
            (200, pull_json(url, pr, bare, true))
        }
        ("post", "/repos/{owner}/{repo}/issues/{issue_number}/labels") => {
            let n: u64 = p["issue_number"].parse().unwrap_or(0);
            let mut s = state.lock().expect("lock");
            let Some(pr) = s.pulls.iter_mut().find(|x| x.number == n) else {
                return not_found();
            };
            for l in body["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str())
            {
                if !pr.labels.iter().any(|x| x == l) {
                    pr.labels.push(l.into());
                }
            }
            (200, Value::Array(pr.labels.iter().map(|l| gj::label(url, l)).collect()))
        }
        ("get", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls") => {
            let s = state.lock().expect("lock");
            let sha = &p["commit_sha"];
            let list: Vec<Value> = s
                .pulls
                .iter()
                .filter(|pr| pr.merge_commit_sha.as_deref() == Some(sha.as_str()))
                .map(|pr| pull_json(url, pr, bare, false))
                .collect();
            (200, Value::Array(list))
        }
        ("get", "/repos/{owner}/{repo}/commits") => {
            let sha = req.query.get("sha").cloned().unwrap_or_else(|| "main".into());
            let n = req.query.get("per_page").cloned().unwrap_or_else(|| "30".into());
            let mut args = vec!["log".to_string(), "--format=%H".into(), "-n".into(), n, sha];
            if let Some(path) = req.query.get("path") {
                args.push("--".into());
                args.push(path.clone());
            }
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let list: Vec<Value> = git_in(bare, &a, None, &[])
                .unwrap_or_default()
                .lines()
                .map(|c| commit_json(bare, url, c, None))
                .collect();
            (200, Value::Array(list))
        }
        ("post", "/repos/{owner}/{repo}/deployments") => {
            let Some(sha) = sha_of(bare, body["ref"].as_str().unwrap_or_default()) else {
                return (422, json!({"message": "No ref found"}));
            };
            let mut s = state.lock().expect("lock");
            let id = s.deployments.len() as u64 + 1;
            let env = body["environment"].as_str().unwrap_or("production").to_string();
            let d = Deployment {
                id,
                sha: sha.clone(),
                environment: env.clone(),
                description: body["description"].as_str().map(String::from),
                payload: body["payload"].clone(),
                statuses: Vec::new(),
                status_bodies: Vec::new(),
                transient: body["transient_environment"].as_bool().unwrap_or(false),
                // GitHub's default: true for `production`, false otherwise.
                production: body["production_environment"].as_bool().unwrap_or(env == "production"),
            };
            s.deployments.push(d.clone());
            let mut out = deployment_json(url, &d);
            out["ref"] = body["ref"].clone();
            (201, out)
        }
        ("get", "/repos/{owner}/{repo}/deployments") => {
            let s = state.lock().expect("lock");
            let q = |k: &str| req.query.get(k).filter(|v| !v.is_empty());
            // Newest first, as GitHub lists them.
            let list: Vec<Value> = s
                .deployments
                .iter()
                .rev()
                .filter(|d| q("environment").is_none_or(|e| *e == d.environment))
                .filter(|d| q("sha").is_none_or(|x| *x == d.sha))
                .filter(|_| q("task").is_none_or(|t| t == "deploy"))
                .map(|d| deployment_json(url, d))
                .collect();
            (200, Value::Array(page_of(&list, &req.query)))
        }
        ("get", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses") => {
            let id: u64 = p["deployment_id"].parse().unwrap_or(0);
            let s = state.lock().expect("lock");
            let Some(d) = s.deployments.iter().find(|d| d.id == id) else {
                return not_found();
            };
            let list: Vec<Value> = (0..d.statuses.len()).rev().map(|i| status_json(url, d, i)).collect();
            (200, Value::Array(page_of(&list, &req.query)))
        }
        ("get", "/repos/{owner}/{repo}/pulls/{pull_number}") => {
            let n: u64 = p["pull_number"].parse().unwrap_or(0);
            let s = state.lock().expect("lock");
            match s.pulls.iter().find(|x| x.number == n) {
                Some(pr) => (200, pull_json(url, pr, bare, true)),
                None => not_found(),
            }
        }
        ("post", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses") => {
            let id: u64 = p["deployment_id"].parse().unwrap_or(0);
            let mut s = state.lock().expect("lock");
            let Some(d) = s.deployments.iter_mut().find(|d| d.id == id) else {
                return not_found();
            };
            let st = body["state"].as_str().unwrap_or_default().to_string();
            d.statuses.push(st.clone());
            d.status_bodies.push(body.clone());
            let out = status_json(url, d, d.statuses.len() - 1);
            // GitHub's auto_inactive (default true) on success: prior deployments of the
            // same environment that are neither transient nor production and whose
            // latest state is success get an inactive status.
            if st == "success" && body["auto_inactive"].as_bool().unwrap_or(true) {
                let env = d.environment.clone();
                for o in s.deployments.iter_mut().filter(|o| {
                    o.id < id
                        && o.environment == env
                        && !o.transient
                        && !o.production
                        && o.statuses.last().is_some_and(|x| x == "success")
                }) {
                    o.statuses.push("inactive".into());
                    o.status_bodies
                        .push(json!({"state": "inactive", "description": "auto_inactive"}));
                }
            }
            (201, out)
        }
        ("get", "/repos/{owner}/{repo}/commits/{ref}/status") => {
            let sha = sha_of(bare, &p["ref"]).unwrap_or_default();
            let s = state.lock().expect("lock");
            let list = s.statuses.get(&sha).cloned().unwrap_or_default();
            // Latest status per context wins, as on GitHub.
            let mut latest: Vec<(String, String)> = Vec::new();
            for (c, st) in list.into_iter().rev() {
                if !latest.iter().any(|(x, _)| *x == c) {
                    latest.push((c, st));
                }
            }
            let overall = if latest.is_empty() {
                "pending"
            } else if latest.iter().all(|(_, s)| s == "success") {
                "success"
            } else if latest.iter().any(|(_, s)| s == "failure" || s == "error") {
                "failure"
            } else {
                "pending"
            };
            let page: usize = req.query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let per: usize = req.query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
            let items: Vec<Value> = latest
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .enumerate()
                .map(|(i, (c, st))| gj::commit_status(url, &sha, (page - 1) * per + i, c, st))
                .collect();
            (
                200,
                json!({"state": overall, "sha": sha, "total_count": latest.len(), "statuses": items, "repository": gj::minimal_repository(url), "commit_url": format!("{}/commits/{sha}", gj::repo_api(url)), "url": format!("{}/commits/{sha}/status", gj::repo_api(url))}),
            )
        }
        ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs") => {
            let sha = sha_of(bare, &p["ref"]).unwrap_or_default();
            let s = state.lock().expect("lock");
            let list = s.checks.get(&sha).cloned().unwrap_or_default();
            let page: usize = req.query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let per: usize = req.query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
            let items: Vec<Value> = list
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .enumerate()
                .map(|(i, (n, st, c))| gj::check_run(url, &sha, ((page - 1) * per + i + 1) as u64, n, st, c.as_deref()))
                .collect();
            (200, json!({"total_count": list.len(), "check_runs": items}))
        }
        _ => violation(
            state,
            format!(
                "{} {}: the fake GitHub does not implement this operation",
                req.method, req.path
            ),
        ),
    }
}

// ---------------------------------------------------------------- GraphQL execution

#[derive(Clone)]
enum Obj {
    Root,
    Repository,
    Ref(String, String),
    Commit(String),
    Tag(String, String),
    Payload(Value),
    PullRequest(u64),
    /// A comparison of a base ref's commit with a head: `AHEAD`, `BEHIND`, `DIVERGED`, `IDENTICAL`.
    Comparison(String),
    /// A tree entry: (blob or tree id, path).
    TreeEntry(String, String),
    Blob(String),
    Tree(String),
    /// A connection: its nodes, whether there is a next page, and the end cursor.
    Connection(Vec<Obj>, bool, String),
    /// A commit's statuses and check runs.
    StatusCheckRollup(String),
    /// The latest status of a context: (context, state as the REST API spells it).
    StatusContext(String, String),
    /// (name, status, conclusion) as the REST API spells them.
    /// name, status, conclusion, database id (the order of creation).
    CheckRun(String, String, Option<String>, u64),
}

fn typename(o: &Obj) -> &'static str {
    match o {
        Obj::Root => "Query",
        Obj::Repository => "Repository",
        Obj::Ref(..) => "Ref",
        Obj::Commit(_) => "Commit",
        Obj::Tag(..) => "Tag",
        Obj::Payload(_) => "Payload",
        Obj::PullRequest(_) => "PullRequest",
        Obj::Comparison(_) => "Comparison",
        Obj::TreeEntry(..) => "TreeEntry",
        Obj::Blob(_) => "Blob",
        Obj::Tree(_) => "Tree",
        Obj::Connection(..) => "CommitHistoryConnection",
        Obj::StatusCheckRollup(_) => "StatusCheckRollup",
        Obj::StatusContext(..) => "StatusContext",
        Obj::CheckRun(..) => "CheckRun",
    }
}

struct Exec<'a> {
    vars: &'a Value,
    state: &'a Arc<Mutex<State>>,
    bare: &'a Path,
    url: &'a str,
    frags: &'a HashMap<String, q::FragmentDefinition<'static, String>>,
    errors: Vec<String>,
    /// Field errors with their path, as GitHub reports a field it could not resolve.
    field_errors: Vec<Value>,
    /// The aliases from the root to the field being resolved.
    path: Vec<String>,
    /// Blob contents read in this document, by id (a blob's text, size and
    /// binary-ness are asked for together).
    blobs: HashMap<String, Vec<u8>>,
    /// One `git cat-file --batch` for the whole document.
    batch: Option<(std::process::Child, BufReader<std::process::ChildStdout>)>,
}

fn graphql(
    parsed: &schema_check::Parsed,
    vars: &Value,
    state: &Arc<Mutex<State>>,
    bare: &Path,
    url: &str,
    fields: &mut Vec<String>,
) -> (u16, Value) {
    let mut ex = Exec {
        vars,
        state,
        bare,
        url,
        frags: &parsed.fragments,
        errors: Vec::new(),
        field_errors: Vec::new(),
        path: Vec::new(),
        blobs: HashMap::new(),
        batch: None,
    };
    let (sel, mutation) = match &parsed.op {
        q::OperationDefinition::Query(x) => (&x.selection_set, false),
        q::OperationDefinition::Mutation(x) => (&x.selection_set, true),
        q::OperationDefinition::SelectionSet(x) => (x, false),
        q::OperationDefinition::Subscription(_) => unreachable!("refused by validation"),
    };
    for item in &sel.items {
        if let q::Selection::Field(f) = item {
            fields.push(f.name.clone());
        }
    }
    let data = if mutation {
        ex.mutation(sel)
    } else {
        ex.select(&Obj::Root, sel)
    };
    if !ex.field_errors.is_empty() && ex.errors.is_empty() {
        return (200, json!({ "data": data, "errors": ex.field_errors }));
    }
    if ex.errors.is_empty() {
        (200, json!({ "data": data }))
    } else {
        (
            200,
            json!({ "data": data, "errors": ex.errors.iter().map(|e| json!({"message": e, "type": "UNPROCESSABLE"})).collect::<Vec<_>>() }),
        )
    }
}

impl Drop for Exec<'_> {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.batch.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Exec<'_> {
    /// (object id, type, content) of a revision expression, through one long-lived
    /// `git cat-file --batch` (thousands of aliased reads in one document).
    fn cat(&mut self, spec: &str) -> Option<(String, String, Vec<u8>)> {
        if spec.contains('\n') {
            return None;
        }
        if self.batch.is_none() {
            let mut child = Command::new("git")
                .args(["cat-file", "--batch"])
                .current_dir(self.bare)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let out = BufReader::new(child.stdout.take()?);
            self.batch = Some((child, out));
        }
        let (child, out) = self.batch.as_mut()?;
        let stdin = child.stdin.as_mut()?;
        writeln!(stdin, "{spec}").ok()?;
        stdin.flush().ok()?;
        let mut header = String::new();
        out.read_line(&mut header).ok()?;
        let mut parts = header.split_whitespace();
        let (oid, kind, size) = (parts.next()?, parts.next()?, parts.next()?);
        if kind == "missing" || kind == "ambiguous" {
            return None;
        }
        let size: usize = size.parse().ok()?;
        let mut bytes = vec![0; size + 1];
        out.read_exact(&mut bytes).ok()?;
        bytes.pop();
        Some((oid.to_string(), kind.to_string(), bytes))
    }

    fn blob(&mut self, oid: &str) -> Vec<u8> {
        if let Some(b) = self.blobs.get(oid) {
            return b.clone();
        }
        let b = git_bytes(self.bare, &["cat-file", "blob", oid]);
        self.blobs.insert(oid.to_string(), b.clone());
        b
    }

    fn select(&mut self, obj: &Obj, sel: &q::SelectionSet<'static, String>) -> Value {
        let mut out = serde_json::Map::new();
        for item in &sel.items {
            let dirs = match item {
                q::Selection::Field(f) => &f.directives,
                q::Selection::InlineFragment(fr) => &fr.directives,
                q::Selection::FragmentSpread(sp) => &sp.directives,
            };
            if !schema_check::included(dirs, self.vars) {
                continue;
            }
            match item {
                q::Selection::Field(f) => {
                    let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    self.path.push(key.clone());
                    let v = self.field(obj, f);
                    self.path.pop();
                    out.insert(key, v);
                }
                q::Selection::InlineFragment(fr) => {
                    let applies = match &fr.type_condition {
                        Some(q::TypeCondition::On(t)) => {
                            t == typename(obj)
                                || (t == "GitObject" && matches!(obj, Obj::Commit(_) | Obj::Tag(..) | Obj::Blob(_)))
                        }
                        None => true,
                    };
                    if applies && let Value::Object(m) = self.select(obj, &fr.selection_set) {
                        out.extend(m);
                    }
                }
                q::Selection::FragmentSpread(sp) => {
                    if let Some(fd) = self.frags.get(&sp.fragment_name) {
                        let q::TypeCondition::On(t) = &fd.type_condition;
                        if t == typename(obj)
                            && let Value::Object(m) = self.select(obj, &fd.selection_set.clone())
                        {
                            out.extend(m);
                        }
                    }
                }
            }
        }
        Value::Object(out)
    }

    fn sub(&mut self, o: Option<Obj>, f: &q::Field<'static, String>) -> Value {
        match o {
            Some(o) => self.select(&o, &f.selection_set),
            None => Value::Null,
        }
    }

    fn field(&mut self, obj: &Obj, f: &q::Field<'static, String>) -> Value {
        let arg = |n: &str| arg_value(&f.arguments, n, self.vars);
        match (obj, f.name.as_str()) {
            (_, "__typename") => json!(typename(obj)),
            (Obj::Root, "repository") => {
                if arg("owner") == json!(OWNER) && arg("name") == json!(REPO) {
                    self.sub(Some(Obj::Repository), f)
                } else {
                    Value::Null
                }
            }
            (Obj::Repository, "id") => json!(REPO_ID),
            (Obj::Repository, "nameWithOwner") => json!(format!("{OWNER}/{REPO}")),
            (Obj::Repository, "autoMergeAllowed") => json!(self.state.lock().expect("lock").merge.auto_merge_allowed),
            (Obj::Repository, "mergeCommitAllowed") => {
                json!(self.state.lock().expect("lock").merge.merge_commit_allowed)
            }
            (Obj::Repository, "squashMergeAllowed") => {
                json!(self.state.lock().expect("lock").merge.squash_merge_allowed)
            }
            (Obj::Repository, "rebaseMergeAllowed") => {
                json!(self.state.lock().expect("lock").merge.rebase_merge_allowed)
            }
            (Obj::Repository, "defaultBranchRef") => {
                let sha = sha_of(self.bare, "refs/heads/main").unwrap_or_default();
                self.sub(Some(Obj::Ref("refs/heads/main".into(), sha)), f)
            }
            (Obj::Repository, "ref") => {
                let name = arg("qualifiedName").as_str().unwrap_or_default().to_string();
                let target = git_in(self.bare, &["rev-parse", "--verify", "-q", &name], None, &[])
                    .ok()
                    .map(|s| s.trim().to_string());
                let o = target.map(|t| Obj::Ref(name, t));
                self.sub(o, f)
            }
            (Obj::Ref(n, _), "name") => json!(n.rsplit('/').next()),
            (Obj::Ref(n, _), "prefix") => json!(n.rsplit_once('/').map(|x| x.0).map(|p| format!("{p}/"))),
            (Obj::Ref(_, t), "target") => {
                let kind = git_in(self.bare, &["cat-file", "-t", t], None, &[]).unwrap_or_default();
                let o = if kind.trim() == "tag" {
                    let peeled = sha_of(self.bare, t).unwrap_or_default();
                    Obj::Tag(t.clone(), peeled)
                } else {
                    Obj::Commit(t.clone())
                };
                self.sub(Some(o), f)
            }
            (Obj::Commit(s), "oid") | (Obj::Tag(s, _), "oid") => json!(s),
            (Obj::Commit(s), "url") => json!(format!("{}/{OWNER}/{REPO}/commit/{s}", self.url)),
            (Obj::Repository, "object") => {
                let spec = match arg("expression").as_str() {
                    Some(e) => e.to_string(),
                    None => arg("oid").as_str().unwrap_or_default().to_string(),
                };
                match self.cat(&spec) {
                    Some((oid, kind, bytes)) => match kind.as_str() {
                        "commit" => self.sub(Some(Obj::Commit(oid)), f),
                        "blob" => {
                            self.blobs.insert(oid.clone(), bytes);
                            self.sub(Some(Obj::Blob(oid)), f)
                        }
                        "tree" => self.sub(Some(Obj::Tree(oid)), f),
                        _ => Value::Null,
                    },
                    None => Value::Null,
                }
            }
            (Obj::Commit(c), "message") => json!(
                git_in(self.bare, &["log", "-1", "--format=%B", c], None, &[])
                    .unwrap_or_default()
                    .trim_end_matches('\n')
            ),
            (Obj::Commit(c), "parents") => {
                let first = arg("first").as_u64().unwrap_or(100) as usize;
                let line = git_in(self.bare, &["rev-list", "--parents", "-n", "1", c], None, &[]).unwrap_or_default();
                let parents: Vec<Obj> = line
                    .split_whitespace()
                    .skip(1)
                    .take(first)
                    .map(|p| Obj::Commit(p.to_string()))
                    .collect();
                self.sub(Some(Obj::Connection(parents, false, String::new())), f)
            }
            (Obj::Commit(c), "history") => {
                // As GitHub: every commit reachable from this one, newest first (not
                // first-parent); `after` is the cursor of the previous page's end.
                let first = arg("first").as_u64().unwrap_or(100).min(100) as usize;
                let skip: usize = arg("after").as_str().and_then(|a| a.parse().ok()).unwrap_or(0);
                let list = git_in(self.bare, &["rev-list", c], None, &[]).unwrap_or_default();
                let all: Vec<&str> = list.lines().collect();
                let page: Vec<Obj> = all
                    .iter()
                    .skip(skip)
                    .take(first)
                    .map(|x| Obj::Commit(x.to_string()))
                    .collect();
                let next = skip + page.len() < all.len();
                self.sub(Some(Obj::Connection(page, next, (skip + first).to_string())), f)
            }
            (Obj::Connection(items, ..), "nodes") => {
                let items = items.clone();
                Value::Array(items.iter().map(|o| self.select(o, &f.selection_set)).collect())
            }
            (Obj::Connection(_, next, cursor), "pageInfo") => {
                let p = json!({"hasNextPage": next, "endCursor": cursor});
                self.sub(Some(Obj::Payload(p)), f)
            }
            (Obj::Tag(_, p), "target") => self.sub(Some(Obj::Commit(p.clone())), f),
            (Obj::Ref(_, _), "compare") if self.state.lock().expect("lock").compare_unresolvable => {
                // As GitHub for a head it cannot resolve: null, with a NOT_FOUND error on that field.
                self.field_errors.push(json!({"type": "NOT_FOUND", "path": self.path, "locations": [{"line": 1, "column": 1}], "message": "Could not resolve to a Ref"}));
                Value::Null
            }
            (Obj::Ref(_, t), "compare") => {
                // As GitHub: the ref is the base, `headRef` the head.
                let head = arg("headRef").as_str().unwrap_or_default().to_string();
                let peel = |r: &str| sha_of(self.bare, r);
                let (Some(base), Some(head)) = (peel(t), peel(&head)) else {
                    return Value::Null;
                };
                let anc =
                    |a: &str, d: &str| git_in(self.bare, &["merge-base", "--is-ancestor", a, d], None, &[]).is_ok();
                let status = if base == head {
                    "IDENTICAL"
                } else if anc(&head, &base) {
                    "BEHIND"
                } else if anc(&base, &head) {
                    "AHEAD"
                } else {
                    "DIVERGED"
                };
                self.sub(Some(Obj::Comparison(status.into())), f)
            }
            (Obj::Comparison(st), "status") => json!(st),
            (Obj::Commit(c), "file") => {
                let path = arg("path").as_str().unwrap_or_default().to_string();
                let entry = git_in(
                    self.bare,
                    &["rev-parse", "--verify", "-q", &format!("{c}:{path}")],
                    None,
                    &[],
                )
                .ok()
                .map(|s| s.trim().to_string());
                self.sub(entry.map(|e| Obj::TreeEntry(e, path)), f)
            }
            (Obj::TreeEntry(oid, _), "oid") => json!(oid),
            (Obj::TreeEntry(_, p), "path") => json!(p),
            (Obj::TreeEntry(oid, _), "object") => {
                let kind = git_in(self.bare, &["cat-file", "-t", oid], None, &[]).unwrap_or_default();
                match kind.trim() {
                    "blob" => self.sub(Some(Obj::Blob(oid.clone())), f),
                    _ => json!({}),
                }
            }
            (Obj::Blob(oid), "oid") => json!(oid),
            (Obj::Tree(oid), "entries") => {
                let list = git_in(self.bare, &["ls-tree", oid], None, &[]).unwrap_or_default();
                let entries: Vec<Obj> = list
                    .lines()
                    .filter_map(|l| {
                        let (meta, name) = l.split_once('\t')?;
                        Some(Obj::TreeEntry(
                            meta.split_whitespace().nth(2)?.to_string(),
                            name.to_string(),
                        ))
                    })
                    .collect();
                Value::Array(entries.iter().map(|o| self.select(o, &f.selection_set)).collect())
            }
            (Obj::TreeEntry(_, p), "name") => json!(p.rsplit('/').next()),
            (Obj::Blob(oid), "text") => {
                let bytes = self.blob(oid);
                match String::from_utf8(bytes) {
                    // GitHub truncates large blobs' text; so does the fake, past 512 KiB.
                    Ok(t) if t.len() > 512 * 1024 => json!(t[..512 * 1024].to_string()),
                    Ok(t) => json!(t),
                    Err(_) => Value::Null,
                }
            }
            (Obj::Blob(oid), "byteSize") => json!(self.blob(oid).len()),
            (Obj::Blob(oid), "isTruncated") => {
                json!(self.blob(oid).len() > 512 * 1024)
            }
            (Obj::Blob(oid), "isBinary") => {
                json!(std::str::from_utf8(&self.blob(oid)).is_err())
            }
            (Obj::Payload(v), name) => match v.get(name) {
                Some(Value::Object(m)) if m.contains_key("__commit") => {
                    self.sub(Some(Obj::Commit(m["__commit"].as_str().unwrap_or_default().into())), f)
                }
                Some(Value::Object(m)) if m.contains_key("__pull") => {
                    self.sub(Some(Obj::PullRequest(m["__pull"].as_u64().unwrap_or_default())), f)
                }
                Some(x) => x.clone(),
                None => Value::Null,
            },
            (Obj::PullRequest(n), "number") => json!(n),
            (Obj::PullRequest(n), "body") => {
                let s = self.state.lock().expect("lock");
                json!(s.pulls.iter().find(|p| p.number == *n).map(|p| p.body.clone()))
            }
            (Obj::PullRequest(n), "merged") => {
                let s = self.state.lock().expect("lock");
                json!(s.pulls.iter().any(|p| p.number == *n && p.merge_commit_sha.is_some()))
            }
            (Obj::PullRequest(n), "mergeCommit") => {
                let merge = {
                    let s = self.state.lock().expect("lock");
                    s.pulls
                        .iter()
                        .find(|p| p.number == *n)
                        .and_then(|p| p.merge_commit_sha.clone())
                };
                self.sub(merge.map(Obj::Commit), f)
            }
            (Obj::Commit(c), "associatedPullRequests") => {
                // As `GET commits/{sha}/pulls`: the pull request merged as this commit.
                let first = arg("first").as_u64().unwrap_or(100) as usize;
                let skip: usize = arg("after").as_str().and_then(|a| a.parse().ok()).unwrap_or(0);
                let all: Vec<u64> = {
                    let s = self.state.lock().expect("lock");
                    s.pulls
                        .iter()
                        .filter(|p| p.merge_commit_sha.as_deref() == Some(c.as_str()))
                        .map(|p| p.number)
                        .collect()
                };
                let page: Vec<Obj> = all
                    .iter()
                    .skip(skip)
                    .take(first)
                    .map(|n| Obj::PullRequest(*n))
                    .collect();
                let next = skip + page.len() < all.len();
                self.sub(Some(Obj::Connection(page, next, (skip + first).to_string())), f)
            }
            (Obj::Commit(c), "statusCheckRollup") => {
                // As GitHub: null for a commit without statuses and check runs.
                let any = {
                    let s = self.state.lock().expect("lock");
                    s.statuses.get(c).is_some_and(|l| !l.is_empty()) || s.checks.get(c).is_some_and(|l| !l.is_empty())
                };
                self.sub(any.then(|| Obj::StatusCheckRollup(c.clone())), f)
            }
            (Obj::StatusCheckRollup(c), "contexts") => {
                // The latest status per context (as `GET commits/{ref}/status`), then
                // the check runs (as `GET commits/{ref}/check-runs`).
                let all: Vec<Obj> = {
                    let s = self.state.lock().expect("lock");
                    let mut latest: Vec<(String, String)> = Vec::new();
                    for (ctx, st) in s.statuses.get(c).cloned().unwrap_or_default().into_iter().rev() {
                        if !latest.iter().any(|(x, _)| *x == ctx) {
                            latest.push((ctx, st));
                        }
                    }
                    latest
                        .into_iter()
                        .map(|(ctx, st)| Obj::StatusContext(ctx, st))
                        .chain(
                            s.checks
                                .get(c)
                                .cloned()
                                .unwrap_or_default()
                                .into_iter()
                                .enumerate()
                                .map(|(i, (n, st, concl))| Obj::CheckRun(n, st, concl, i as u64 + 1)),
                        )
                        .collect()
                };
                let first = arg("first").as_u64().unwrap_or(100).min(100) as usize;
                let skip: usize = arg("after").as_str().and_then(|a| a.parse().ok()).unwrap_or(0);
                let page: Vec<Obj> = all.iter().skip(skip).take(first).cloned().collect();
                let next = skip + page.len() < all.len();
                self.sub(Some(Obj::Connection(page, next, (skip + first).to_string())), f)
            }
            (Obj::StatusContext(ctx, _), "context") => json!(ctx),
            (Obj::StatusContext(_, st), "state") => json!(st.to_uppercase()),
            (Obj::StatusContext(..), "targetUrl" | "description") => Value::Null,
            (Obj::CheckRun(n, ..), "name") => json!(n),
            (Obj::CheckRun(_, st, ..), "status") => json!(st.to_uppercase()),
            (Obj::CheckRun(_, _, concl, _), "conclusion") => json!(concl.as_ref().map(|c| c.to_uppercase())),
            (Obj::CheckRun(..), "detailsUrl") => Value::Null,
            (Obj::CheckRun(.., id), "databaseId") => json!(id),
            (o, name) => {
                let msg = format!("the fake GitHub does not implement field `{name}` on {}", typename(o));
                self.state.lock().expect("lock").violations.push(msg.clone());
                self.errors.push(msg);
                Value::Null
            }
        }
    }

    fn mutation(&mut self, sel: &q::SelectionSet<'static, String>) -> Value {
        let mut out = serde_json::Map::new();
        for item in &sel.items {
            let q::Selection::Field(f) = item else { continue };
            let input = arg_value(&f.arguments, "input", self.vars);
            let delay = self.state.lock().expect("lock").write_delay.clone();
            if let Some((field, ms)) = delay
                && field == f.name
            {
                std::thread::sleep(Duration::from_millis(ms));
            }
            let hook = {
                let mut s = self.state.lock().expect("lock");
                match s.before_write.take() {
                    Some((field, h)) if field == f.name => Some(h),
                    other => {
                        s.before_write = other;
                        None
                    }
                }
            };
            if let Some(h) = hook {
                h();
            }
            let result = match f.name.as_str() {
                "updateRefs" => self.update_refs(&input),
                "createCommitOnBranch" => self.create_commit(&input),
                "enablePullRequestAutoMerge" => self.auto_merge(&input),
                other => Err(format!("the fake GitHub does not implement mutation `{other}`")),
            };
            let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
            match result {
                Ok(payload) => {
                    let v = self.select(&Obj::Payload(payload), &f.selection_set);
                    out.insert(key, v);
                }
                Err(e) => {
                    if e.contains("does not implement") {
                        self.state.lock().expect("lock").violations.push(e.clone());
                    }
                    self.errors.push(e);
                    out.insert(key, Value::Null);
                }
            }
        }
        Value::Object(out)
    }

    fn update_refs(&mut self, input: &Value) -> Result<Value, String> {
        if input["repositoryId"] != json!(REPO_ID) {
            return Err("Could not resolve to a node with the global id".into());
        }
        let mut script = String::from("start\n");
        for u in input["refUpdates"].as_array().into_iter().flatten() {
            let name = u["name"].as_str().unwrap_or_default();
            let after = u["afterOid"].as_str().unwrap_or_default();
            if !name.starts_with("refs/") {
                return Err(format!("invalid ref name {name}"));
            }
            let (refused, noop) = {
                let st = self.state.lock().expect("lock");
                (st.refused_ref_prefix.clone(), st.refuse_noop_updates)
            };
            // Worded without the ref's name: GitHub's wording is not known here, and
            // the client must not depend on it.
            if refused.is_some_and(|p| name.starts_with(&p)) {
                return Err("Repository rule violations found".into());
            }
            if noop && u["beforeOid"].as_str() == Some(after) {
                return Err("Reference update failed: nothing to update".into());
            }
            match u["beforeOid"].as_str() {
                Some(before) => script.push_str(&format!("update {name} {after} {before}\n")),
                None => script.push_str(&format!("update {name} {after}\n")),
            }
        }
        script.push_str("prepare\ncommit\n");
        let _guard = self.state.lock().expect("lock");
        git_in(self.bare, &["update-ref", "--stdin"], Some(script.as_bytes()), &[])
            .map_err(|e| format!("A ref update failed: {e}"))?;
        Ok(json!({"clientMutationId": null}))
    }

    fn create_commit(&mut self, input: &Value) -> Result<Value, String> {
        let branch = input
            .pointer("/branch/branchName")
            .and_then(|b| b.as_str())
            .unwrap_or_default();
        let nwo = input
            .pointer("/branch/repositoryNameWithOwner")
            .and_then(|b| b.as_str())
            .unwrap_or_default();
        if nwo != format!("{OWNER}/{REPO}") {
            return Err(format!("Could not resolve to a Repository with the name '{nwo}'."));
        }
        let expected = input["expectedHeadOid"].as_str().unwrap_or_default();
        let mut guard = self.state.lock().expect("lock");
        let Some(head) = sha_of(self.bare, &format!("refs/heads/{branch}")) else {
            return Err(format!("A ref named \"refs/heads/{branch}\" does not exist."));
        };
        if head != expected {
            return Err(format!(
                "Expected branch to point to \"{expected}\" but it did not. Pull and try again."
            ));
        }
        let idx = self.bare.join(format!("index-{}", std::process::id()));
        let idx_s = idx.display().to_string();
        let env = [("GIT_INDEX_FILE", idx_s.as_str())];
        git_in(self.bare, &["read-tree", &head], None, &env)?;
        for a in input
            .pointer("/fileChanges/additions")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
        {
            let path = a["path"].as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a["contents"].as_str().unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let blob = git_in(self.bare, &["hash-object", "-w", "--stdin"], Some(&bytes), &[])?;
            git_in(
                self.bare,
                &[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    &format!("100644,{},{path}", blob.trim()),
                ],
                None,
                &env,
            )?;
        }
        for d in input
            .pointer("/fileChanges/deletions")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
        {
            git_in(
                self.bare,
                &["update-index", "--force-remove", d["path"].as_str().unwrap_or_default()],
                None,
                &env,
            )?;
        }
        let tree = git_in(self.bare, &["write-tree"], None, &env)?;
        let _ = std::fs::remove_file(&idx);
        let headline = input
            .pointer("/message/headline")
            .and_then(|h| h.as_str())
            .unwrap_or_default();
        let body = input
            .pointer("/message/body")
            .and_then(|h| h.as_str())
            .unwrap_or_default();
        let msg = if body.is_empty() {
            headline.to_string()
        } else {
            format!("{headline}\n\n{body}")
        };
        let cenv = [
            ("GIT_AUTHOR_NAME", "gitops-flow[bot]"),
            ("GIT_AUTHOR_EMAIL", "bot@example.com"),
            ("GIT_COMMITTER_NAME", "GitHub"),
            ("GIT_COMMITTER_EMAIL", "noreply@github.com"),
        ];
        let commit = git_in(
            self.bare,
            &["commit-tree", tree.trim(), "-p", &head, "-m", &msg],
            None,
            &cenv,
        )?
        .trim()
        .to_string();
        git_in(
            self.bare,
            &["update-ref", &format!("refs/heads/{branch}"), &commit, &head],
            None,
            &[],
        )?;
        guard.verified.insert(commit.clone());
        Ok(json!({"commit": {"__commit": commit}, "clientMutationId": null}))
    }

    fn auto_merge(&mut self, input: &Value) -> Result<Value, String> {
        let node = input["pullRequestId"].as_str().unwrap_or_default();
        // GitHub's default merge method is MERGE.
        let method = input["mergeMethod"].as_str().unwrap_or("MERGE").to_string();
        let mut s = self.state.lock().expect("lock");
        let m = s.merge.clone();
        let Some(pr) = s.pulls.iter_mut().find(|p| format!("PR_kwDO{}", p.number) == node) else {
            return Err(format!("Could not resolve to a node with the global id of '{node}'"));
        };
        // GitHub's own refusals, worded as GitHub words them.
        if !m.auto_merge_allowed {
            return Err("Pull request Auto merge is not allowed for this repository".into());
        }
        let allowed = match method.as_str() {
            "MERGE" => m.merge_commit_allowed,
            "SQUASH" => m.squash_merge_allowed,
            "REBASE" => m.rebase_merge_allowed,
            _ => false,
        };
        if !allowed {
            return Err(format!(
                "Merge method {} merging is not allowed on this repository",
                method.to_lowercase()
            ));
        }
        if m.clean {
            return Err("Pull request is in clean status".into());
        }
        pr.auto_merge = true;
        let n = pr.number;
        s.auto_merges.push((n, method));
        Ok(json!({"pullRequest": {"__pull": n}, "clientMutationId": null}))
    }
}
