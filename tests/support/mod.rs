//! Shared helpers of the integration tests: scratch repositories built by
//! scripts, and the real binary run with a scrubbed environment.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod fake_argocd;
pub mod fake_github;
pub mod git_server;
pub mod github_json;
pub mod schema_check;

/// A test whose precondition is missing: skipped (and said so) on a developer's
/// machine, a failure in CI (`CI=true`), where a skip must not count as a pass.
pub fn skip_unless_ci(why: &str) {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "precondition missing in CI: {why}"
    );
    eprintln!("SKIPPED (would fail with CI=true): {why}");
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs git with an isolated configuration and pinned identity; trailing whitespace trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_raw(dir, args).trim_end().to_string()
}

/// Runs git and returns stdout exactly.
pub fn git_raw(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds a scratch repository with `tests/fixtures/<script>`.
pub fn scratch(script: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    let st = Command::new("bash")
        .arg(fixtures().join(script))
        .arg(&dir)
        .status()
        .expect("fixture script runs");
    assert!(st.success(), "{script} failed");
    (tmp, dir)
}

/// Every ref and where it points, to compare before/after.
pub fn refs(dir: &Path) -> BTreeMap<String, String> {
    git(dir, &["for-each-ref", "--format=%(refname) %(objectname)"])
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

pub fn rev(dir: &Path, r: &str) -> String {
    git(dir, &["rev-parse", &format!("{r}^{{commit}}")])
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub outputs: HashMap<String, String>,
    pub summary: String,
}

impl Run {
    pub fn out(&self, k: &str) -> &str {
        self.outputs
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no output {k}: {:?}\n{}", self.outputs, self.stdout))
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn assert_input_error(&self, needle: &str) -> &Self {
        assert_eq!(self.code, 2, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        let err = self
            .stdout
            .lines()
            .find(|l| l.starts_with("::error"))
            .unwrap_or_else(|| panic!("no ::error:: in\n{}", self.stdout));
        assert!(err.contains(needle), "`{needle}` not in {err}");
        self
    }
}

/// The runner's rules for GITHUB_OUTPUT (written independently of the crate's own
/// writer; the one parser of workflow outputs): `k=v` lines and `k<<DELIM` heredocs.
pub fn parse_outputs(text: &str) -> HashMap<String, String> {
    try_parse_outputs(text).unwrap_or_else(|e| panic!("{e}"))
}

/// [`parse_outputs`], with the runner's complaint about a malformed file as `Err`;
/// a later value of the same name wins.
pub fn try_parse_outputs(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut lines = text.split('\n');
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                out.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            (_, Some(h)) => {
                let name = &line[..h];
                let delim = &line[h + 2..];
                if name.is_empty() || delim.is_empty() {
                    return Err(format!("invalid heredoc line `{line}`"));
                }
                let mut value = Vec::new();
                let mut closed = false;
                for l in lines.by_ref() {
                    let l = l.strip_suffix('\r').unwrap_or(l);
                    if l == delim {
                        closed = true;
                        break;
                    }
                    value.push(l);
                }
                if !closed {
                    return Err(format!("matching delimiter not found `{delim}`"));
                }
                out.insert(name.to_string(), value.join("\n"));
            }
            _ => return Err(format!("invalid output line `{line}`")),
        }
    }
    Ok(out)
}

/// Runs the real binary with a scrubbed environment: nothing of the runner's
/// (`GITHUB_*`, `RUNNER_*`, `ACTIONS_*`, `INPUT_*`) leaks in; `env` sets what the
/// test wants. GITHUB_OUTPUT and GITHUB_STEP_SUMMARY point at temp files.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let tmp = tempfile::tempdir().expect("tempdir");
    let output = tmp.path().join("output");
    let summary = tmp.path().join("summary");
    std::fs::write(&output, "").expect("write");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitops-flow"));
    cmd.args(args).env_clear();
    for keep in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Ok(v) = std::env::var(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd.env("GITHUB_OUTPUT", &output).env("GITHUB_STEP_SUMMARY", &summary);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("binary runs");
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        outputs: parse_outputs(&text),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

/// A copy of a real event payload with `patch` merged in, written to a temp file.
pub fn event_file(dir: &Path, fixture: &str, patch: serde_json::Value) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("github/events").join(fixture)).expect("fixture");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    merge(&mut v, patch);
    let path = dir.join(format!("event-{}.json", fixture));
    std::fs::write(&path, v.to_string()).expect("write event");
    path
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// GitHub Actions jobs against the fake GitHub: each run gets a fresh shallow,
/// tag-less checkout (as actions/checkout gives), the runner variables, and its
/// inputs as `INPUT_*` variables.
pub struct Jobs<'a> {
    pub fake: &'a fake_github::FakeGitHub,
    tmp: tempfile::TempDir,
    n: std::cell::Cell<usize>,
}

impl<'a> Jobs<'a> {
    pub fn new(fake: &'a fake_github::FakeGitHub) -> Self {
        Jobs {
            fake,
            tmp: tempfile::tempdir().expect("tempdir"),
            n: Default::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn run(&self, inputs: &[(&str, &str)], extra: &[(&str, &str)]) -> Run {
        self.n.set(self.n.get() + 1);
        let ws = self.tmp.path().join(format!("workspace{}", self.n.get()));
        self.fake.checkout(&ws);
        let mut env = self.fake.env();
        env.push(("GITHUB_WORKSPACE".into(), ws.display().to_string()));
        for (k, v) in inputs {
            env.push((format!("INPUT_{}", k.to_uppercase()), v.to_string()));
        }
        for (k, v) in extra {
            env.push((k.to_string(), v.to_string()));
        }
        let pairs: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        run(&[], &pairs)
    }
}

/// Deploys `payments` at the main head of the fake GitHub (a fresh job; it must
/// succeed) and returns that head: the start of most tag-track scenarios.
pub fn deploy_payments(fake: &fake_github::FakeGitHub) -> String {
    let head = fake.rev("main").expect("main exists");
    Jobs::new(fake)
        .run(
            &[("command", "deploy"), ("service", "payments"), ("revision", &head)],
            &[],
        )
        .assert_ok();
    head
}

/// Every run of a race for one tag move succeeded with the same result; exactly one
/// says `changed=true` (from `initial`), the others say where the tag already was.
pub fn assert_one_run_wrote(runs: &[Run], head: &str, initial: &str) {
    for r in runs {
        r.assert_ok();
        assert_eq!(r.out("revision"), head);
        assert_eq!(r.out("rollback-revision"), initial, "{}", r.stdout);
    }
    let winners: Vec<_> = runs.iter().filter(|r| r.out("changed") == "true").collect();
    assert_eq!(winners.len(), 1, "exactly one run wrote");
    assert_eq!(winners[0].out("previous-revision"), initial);
    for r in runs.iter().filter(|r| r.out("changed") == "false") {
        assert_eq!(r.out("previous-revision"), head, "where the tag already is");
        assert!(
            r.stdout.contains("already points at") || r.stdout.contains("another run moved"),
            "{}",
            r.stdout
        );
    }
}

/// The commits of [`interleaved_file_repo`], by what they did.
pub struct Interleaved {
    pub root: String,
    /// alpha dev 1.1.0.
    pub alpha_dev_1: String,
    /// beta dev's second (nested) file 2.1.0.
    pub beta_dev_nested: String,
    /// Touches alpha dev's and gamma dev's files without changing their values.
    pub touch: String,
    /// The merge of a branch that set alpha prod 1.2.0 and beta prod 2.2.0, and
    /// changed gamma prod to 9.9.9 and back.
    pub merge: String,
    /// beta dev's first file 2.3.0.
    pub beta_dev_first: String,
    /// alpha dev 1.3.0.
    pub alpha_dev_3: String,
    /// Touches beta dev's nested file and alpha dev's without changing values.
    pub touch_again: String,
}

/// A file-tracked repository (dev and prod) whose cells change in interleaved
/// commits: alpha in `apps/{env}/alpha/values.yaml`, beta in two files (one deep
/// under `deep/nested/`), gamma in a root file that never changes value.
pub fn interleaved_file_repo() -> (tempfile::TempDir, PathBuf, Interleaved) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    let put = |path: &str, text: &str| {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let values = |svc: &str, note: &str, tag: &str| {
        format!("# {svc} {note}\nreplicaCount: 2\nimage:\n  repository: ghcr.io/acme/{svc}\n  tag: \"{tag}\"\n")
    };
    let commit = |msg: &str| {
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-qm", msg]);
        rev(&dir, "HEAD")
    };
    put(
        "gitops-flow.yaml",
        "environments:\n  - { name: dev, track: file, direct: true }\n  - { name: prod, track: file }\nservices:\n  alpha:\n    version:\n      - file: apps/{env}/alpha/values.yaml\n        key: image.tag\n  beta:\n    version:\n      - file: apps/{env}/beta/values.yaml\n        key: image.tag\n      - file: deep/nested/dir/{env}/beta.yaml\n        key: tag\n  gamma:\n    version:\n      - file: gamma-{env}.yaml\n        key: version\n",
    );
    for env in ["dev", "prod"] {
        put(&format!("apps/{env}/alpha/values.yaml"), &values("alpha", env, "1.0.0"));
        put(&format!("apps/{env}/beta/values.yaml"), &values("beta", env, "2.0.0"));
        put(&format!("deep/nested/dir/{env}/beta.yaml"), "tag: \"2.0.0\"\n");
        put(&format!("gamma-{env}.yaml"), "version: \"3.0.0\"\n");
    }
    let root = commit("root");
    put("apps/dev/alpha/values.yaml", &values("alpha", "dev", "1.1.0"));
    let alpha_dev_1 = commit("alpha dev 1.1.0");
    put("deep/nested/dir/dev/beta.yaml", "tag: \"2.1.0\"\n");
    let beta_dev_nested = commit("beta dev nested 2.1.0");
    put("apps/dev/alpha/values.yaml", &values("alpha", "dev (touched)", "1.1.0"));
    put("gamma-dev.yaml", "# touched\nversion: \"3.0.0\"\n");
    let touch = commit("touch alpha dev and gamma dev, same values");
    git(&dir, &["checkout", "-qb", "feature"]);
    put("apps/prod/alpha/values.yaml", &values("alpha", "prod", "1.2.0"));
    commit("alpha prod 1.2.0");
    put("gamma-prod.yaml", "version: \"9.9.9\"\n");
    commit("gamma prod 9.9.9");
    put("apps/prod/beta/values.yaml", &values("beta", "prod", "2.2.0"));
    commit("beta prod 2.2.0");
    put("gamma-prod.yaml", "version: \"3.0.0\"\n");
    commit("gamma prod back to 3.0.0");
    git(&dir, &["checkout", "-q", "main"]);
    put("README.md", "unrelated\n");
    commit("docs on main");
    git(&dir, &["merge", "-q", "--no-ff", "-m", "merge feature", "feature"]);
    let merge = rev(&dir, "HEAD");
    put("apps/dev/beta/values.yaml", &values("beta", "dev", "2.3.0"));
    let beta_dev_first = commit("beta dev 2.3.0");
    put("apps/dev/alpha/values.yaml", &values("alpha", "dev", "1.3.0"));
    let alpha_dev_3 = commit("alpha dev 1.3.0");
    put("deep/nested/dir/dev/beta.yaml", "# touched\ntag: \"2.1.0\"\n");
    put("apps/dev/alpha/values.yaml", &values("alpha", "dev again", "1.3.0"));
    let touch_again = commit("touch beta dev nested and alpha dev, same values");
    (
        tmp,
        dir,
        Interleaved {
            root,
            alpha_dev_1,
            beta_dev_nested,
            touch,
            merge,
            beta_dev_first,
            alpha_dev_3,
            touch_again,
        },
    )
}
