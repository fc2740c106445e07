//! The `git` backend against real git servers on 127.0.0.1: seed 2 as written, in a
//! GitLab-CI-shaped environment (smart HTTP with a required token, merge requests
//! by push options), atomic tag moves, lost leases, and where the token may appear.

mod support;

use std::path::{Path, PathBuf};

use base64::Engine;
use support::fake_argocd::{ARGO_TOKEN, AppState, FakeArgo};
use support::git_server::{GitServer, MR_BASE, git_wrapper};
use support::{Run, git, git_raw, run, scratch};

const TOKEN: &str = "glpat-Sekr3tT0ken-4242xyz";
/// The read-only job token GitLab puts into the checkout's `origin` URL.
const JOB_TOKEN: &str = "jobtok-ReadOnly-777";

/// A GitLab CI runner in miniature: each job gets a fresh clone of the environment
/// repository, GitLab's `CI_*` variables, the token as `INPUT_TOKEN`, no
/// `GITHUB_OUTPUT`, and writes its outputs as a dotenv report.
struct GitLab<'a> {
    server: &'a GitServer,
    tmp: tempfile::TempDir,
    path: String,
    argv_log: PathBuf,
    n: std::cell::Cell<usize>,
    runs: std::cell::RefCell<Vec<String>>,
}

struct Job {
    run: Run,
    dotenv: String,
    ws: PathBuf,
}

impl Job {
    fn var(&self, name: &str) -> String {
        let key = format!("GITOPS_FLOW_{name}=");
        self.dotenv
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .unwrap_or_else(|| panic!("no {name} in {}\n{}", self.dotenv, self.run.stdout))
            .to_string()
    }
}

impl<'a> GitLab<'a> {
    fn new(server: &'a GitServer) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (bin, argv_log) = git_wrapper(tmp.path());
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        GitLab {
            server,
            tmp,
            path,
            argv_log,
            n: Default::default(),
            runs: Default::default(),
        }
    }

    /// One job: `env` are the pipeline's variables (`CI_COMMIT_SHA`, …). A job of the
    /// environment repository's own pipeline (`at`: the pushed commit) starts in the
    /// runner's checkout, whose `origin` carries the job token as GitLab sets it; a
    /// job of the application repository names the environment repository by URL
    /// and gitops-flow clones it.
    fn job(&self, at: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Job {
        self.n.set(self.n.get() + 1);
        let ws = self.tmp.path().join(format!("job{}", self.n.get()));
        let mut argv: Vec<&str> = args.to_vec();
        if at.is_some() {
            self.server.clone_to(&ws, at);
            let with_job_token =
                self.server
                    .url
                    .replacen("http://", &format!("http://gitlab-ci-token:{JOB_TOKEN}@"), 1);
            git(&ws, &["remote", "set-url", "origin", &with_job_token]);
        } else {
            argv.extend(["--remote", &self.server.url]);
        }
        let dotenv = self.tmp.path().join(format!("job{}.env", self.n.get()));
        let ws_s = ws.display().to_string();
        let dotenv_s = dotenv.display().to_string();
        argv.extend(["--path", &ws_s, "--output-dotenv", &dotenv_s]);
        let mut vars: Vec<(&str, &str)> = vec![
            ("GITLAB_CI", "true"),
            ("CI_SERVER_URL", "https://gitlab.example.com"),
            ("CI_PROJECT_PATH", "acme/gitops-env"),
            ("CI_PIPELINE_SOURCE", "push"),
            ("INPUT_TOKEN", TOKEN),
            ("GITHUB_OUTPUT", ""),
            ("GITHUB_STEP_SUMMARY", ""),
            ("GITOPS_FLOW_POLL_MS", "20"),
            ("PATH", &self.path),
        ];
        vars.extend_from_slice(env);
        let r = run(&argv, &vars);
        self.runs.borrow_mut().push(format!("{}\n{}", r.stdout, r.stderr));
        Job {
            run: r,
            dotenv: std::fs::read_to_string(&dotenv).unwrap_or_default(),
            ws,
        }
    }

    /// Merges `branch` into main on the server as a person would on GitLab.
    fn merge(&self, branch: &str, squash: bool) -> (String, String) {
        let ws = self.tmp.path().join(format!("merge-{}", self.n.get()));
        self.server.clone_to(&ws, None);
        let before = git(&ws, &["rev-parse", "HEAD"]);
        let other = format!("origin/{branch}");
        let ident = ["-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.com"];
        if squash {
            git(&ws, &["merge", "-q", "--squash", &other]);
            let mut a = ident.to_vec();
            a.extend(["commit", "-q", "-m", "Promote payments (squashed)"]);
            git(&ws, &a);
        } else {
            let mut a = ident.to_vec();
            a.extend(["merge", "-q", "--no-ff", "-m", "Merge branch into main", &other]);
            git(&ws, &a);
        }
        self.server.git_in(&ws, &["push", "-q", "origin", "HEAD:main"]);
        (before, git(&ws, &["rev-parse", "HEAD"]))
    }

    fn everything_printed(&self) -> String {
        self.runs.borrow().join("\n")
    }
}

fn ok(j: &Job) {
    assert_eq!(j.run.code, 0, "stdout:\n{}\nstderr:\n{}", j.run.stdout, j.run.stderr);
}

fn file_at(server: &GitServer, rev: &str, env: &str) -> String {
    server.git(&["show", &format!("{rev}:overlays/{env}/payments/values.yaml")])
}

fn argo(app: &str, health: &'static str, rev: &str) -> FakeArgo {
    FakeArgo::start(app, vec![AppState::new(health, "Synced", rev, "")])
}

fn as_env<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, val)| (*k, val.as_str())).collect()
}

#[test]
fn seed2_through_gitlab_ci_against_smart_http() {
    let (_seed, seed_dir) = scratch("make_seed2_repo.sh");
    let server = GitServer::http(&seed_dir, TOKEN);
    let ci = GitLab::new(&server);
    let initial = server.rev("main");
    let app_sha = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    let app = |tag: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("CI_COMMIT_TAG", tag.to_string()),
            ("CI_COMMIT_SHA", app_sha.to_string()),
            (
                "CI_COMMIT_BEFORE_SHA",
                "0000000000000000000000000000000000000000".to_string(),
            ),
        ]
    };
    let pairs = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };

    // --- app repository pipeline, tag v1.2.3 ---------------------------------
    // promote_dev: a direct commit on the environment repository's main.
    let env = pairs(&app("v1.2.3"));
    let dev = ci.job(
        None,
        &["stage", "--service", "payments", "--version", "v1.2.3"],
        &as_env(&env),
    );
    ok(&dev);
    let dev_commit = server.rev("main");
    assert_eq!(dev.var("COMMIT"), dev_commit);
    assert_eq!(dev.var("CHANGED"), "true");
    assert_eq!(dev.var("ENVIRONMENT"), "dev");
    assert_eq!(server.rev("main^"), initial, "built on the head it read");
    assert!(file_at(&server, "main", "dev").contains("tag: \"v1.2.3\""));
    assert!(file_at(&server, "main", "staging").contains("tag: \"v1.0.0\""));
    let pushes = server.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(
        pushes[0].refs,
        [("refs/heads/main".to_string(), initial.clone(), dev_commit.clone())]
    );
    assert!(pushes[0].options.is_empty());
    // gitops-flow cloned the environment repository; the clone's own branches are
    // untouched by the push: the remote is the truth.
    assert_eq!(git(&dev.ws, &["rev-parse", "main"]), initial);

    // gate_dev: healthy in Argo CD at that commit.
    let a = argo("payments-dev", "Healthy", &dev_commit);
    let gate = ci.job(
        None,
        &[
            "status",
            "--service",
            "payments",
            "--environment",
            "dev",
            "--rollback-on-failure",
            "--argocd-server",
            &a.url,
            "--argocd-token",
            ARGO_TOKEN,
            "--timeout",
            "2",
        ],
        &as_env(&env),
    );
    ok(&gate);
    assert!(!a.requests().is_empty());
    assert_eq!(server.pushes().len(), 1, "a healthy gate writes nothing");

    // open_staging_mr: one push of the branch carrying the merge request.
    let mr = ci.job(None, &["promote", "--service", "payments"], &as_env(&env));
    ok(&mr);
    assert_eq!(mr.var("PULL_REQUEST_NUMBER"), "1");
    assert_eq!(mr.var("PULL_REQUEST_URL"), format!("{MR_BASE}/1"));
    assert_eq!(mr.var("BRANCH"), "gitops-flow/staging/payments");
    let pushes = server.pushes();
    assert_eq!(pushes.len(), 2);
    let staging_branch = server.rev("gitops-flow/staging/payments");
    assert_eq!(
        pushes[1].refs,
        [(
            "refs/heads/gitops-flow/staging/payments".to_string(),
            "0".repeat(40),
            staging_branch.clone()
        )]
    );
    assert_eq!(
        pushes[1].options,
        [
            "merge_request.create",
            "merge_request.target=main",
            "merge_request.title=Promote payments v1.2.3 to staging",
            "merge_request.description=Promotes `payments` from `dev` to `staging`: `v1.0.0` → `v1.2.3`. <!-- gitops-flow {\"command\":\"promote\",\"service\":\"payments\",\"environment\":\"staging\",\"from\":\"dev\",\"version\":\"v1.2.3\"} -->",
            "merge_request.remove_source_branch",
            "merge_request.merge_when_pipeline_succeeds",
        ]
    );
    assert_eq!(server.rev("gitops-flow/staging/payments^"), dev_commit);
    assert!(file_at(&server, &staging_branch, "staging").contains("tag: \"v1.2.3\""));

    // --- the staging merge request is merged as a squash ------------------------
    let (before, after) = ci.merge("gitops-flow/staging/payments", true);
    let push_env: Vec<(&str, &str)> = vec![("CI_COMMIT_BEFORE_SHA", &before), ("CI_COMMIT_SHA", &after)];
    // Environment repository pipeline: gate staging (service found from the push) ...
    let a = argo("payments-staging", "Healthy", &after);
    let gate = ci.job(
        Some(&after),
        &[
            "status",
            "--rollback-on-failure",
            "--argocd-server",
            &a.url,
            "--argocd-token",
            ARGO_TOKEN,
            "--timeout",
            "2",
        ],
        &push_env,
    );
    ok(&gate);
    assert_eq!(gate.var("SERVICE"), "payments");
    assert_eq!(gate.var("ENVIRONMENT"), "staging");
    // ... then the prod merge request (no service: the chain).
    let prod = ci.job(Some(&after), &["promote"], &push_env);
    ok(&prod);
    assert_eq!(prod.var("ENVIRONMENT"), "prod");
    assert_eq!(prod.var("VERSION"), "v1.2.3");
    assert_eq!(prod.var("PULL_REQUEST_NUMBER"), "2");
    let pushes = server.pushes();
    assert_eq!(pushes.len(), 4, "{pushes:?}");
    assert_eq!(pushes[3].refs[0].0, "refs/heads/gitops-flow/prod/payments");
    assert!(
        pushes[3]
            .options
            .contains(&"merge_request.title=Promote payments v1.2.3 to prod".to_string())
    );
    assert!(
        !pushes[3]
            .options
            .iter()
            .any(|o| o.contains("merge_when_pipeline_succeeds")),
        "prod is merged by a person"
    );
    assert!(file_at(&server, "gitops-flow/prod/payments", "prod").contains("tag: \"v1.2.3\""));

    // --- v1.3.0, merged with a merge commit --------------------------------------
    let env = pairs(&app("v1.3.0"));
    ok(&ci.job(
        None,
        &["stage", "--service", "payments", "--version", "v1.3.0"],
        &as_env(&env),
    ));
    let old_branch = server.rev("gitops-flow/staging/payments");
    let mr = ci.job(None, &["promote", "--service", "payments"], &as_env(&env));
    ok(&mr);
    assert_eq!(mr.var("PULL_REQUEST_NUMBER"), "1", "the same merge request, updated");
    let last = server.pushes().last().cloned().expect("a push");
    assert_eq!(last.refs[0].1, old_branch, "the branch was leased on where it was");
    let (before, after) = ci.merge("gitops-flow/staging/payments", false);
    assert_eq!(
        server.git(&["rev-list", "--parents", "-n1", &after]).split(' ').count(),
        3,
        "a merge commit"
    );
    let push_env: Vec<(&str, &str)> = vec![("CI_COMMIT_BEFORE_SHA", &before), ("CI_COMMIT_SHA", &after)];
    let old_prod = server.rev("gitops-flow/prod/payments");
    let prod = ci.job(Some(&after), &["promote"], &push_env);
    ok(&prod);
    assert_eq!(prod.var("VERSION"), "v1.3.0");
    assert_eq!(prod.var("PULL_REQUEST_NUMBER"), "2");
    let last = server.pushes().last().cloned().expect("a push");
    assert_eq!(
        last.refs,
        [(
            "refs/heads/gitops-flow/prod/payments".to_string(),
            old_prod,
            server.rev("gitops-flow/prod/payments")
        )]
    );
    assert!(file_at(&server, "gitops-flow/prod/payments", "prod").contains("tag: \"v1.3.0\""));
    assert_eq!(
        server.rev("gitops-flow/prod/payments^"),
        after,
        "rebuilt on the new main"
    );

    // --- v1.4.0 degrades in dev: rolled back from history ------------------------
    let env = pairs(&app("v1.4.0"));
    let dev = ci.job(
        None,
        &["stage", "--service", "payments", "--version", "v1.4.0"],
        &as_env(&env),
    );
    ok(&dev);
    let bad = server.rev("main");
    let a = argo("payments-dev", "Degraded", &bad);
    let pushes_before = server.pushes().len();
    let gate = ci.job(
        None,
        &[
            "status",
            "--service",
            "payments",
            "--environment",
            "dev",
            "--rollback-on-failure",
            "--argocd-server",
            &a.url,
            "--argocd-token",
            ARGO_TOKEN,
            "--timeout",
            "1",
        ],
        &as_env(&env),
    );
    assert_eq!(gate.run.code, 1, "{}\n{}", gate.run.stdout, gate.run.stderr);
    assert!(gate.run.stdout.contains("not healthy in `dev`"), "{}", gate.run.stdout);
    // The rollback, then the hold that keeps automation from re-deploying v1.4.0
    // (issue 14: `rollback-on-failure` holds what it rolled back).
    assert_eq!(server.rev("main^^"), bad);
    assert!(
        file_at(&server, "main", "dev").contains("tag: \"v1.3.0\""),
        "back to the previous version"
    );
    assert!(
        server
            .git(&["log", "-1", "--format=%B", "main^"])
            .contains("Gitops-Flow-Command: rollback")
    );
    assert!(
        server.git(&["show", "main:.gitops-flow/holds.yaml"]).contains("dev"),
        "dev is held after the automatic rollback"
    );
    assert_eq!(server.pushes().len(), pushes_before + 2);
    assert_eq!(gate.var("ROLLBACK_REVISION"), server.rev("main^"));

    // --- where the token went -----------------------------------------------------
    let b64 = base64::engine::general_purpose::STANDARD;
    let forms = [
        TOKEN.to_string(),
        b64.encode(format!("oauth2:{TOKEN}")),
        b64.encode(TOKEN),
    ];
    let argv = std::fs::read_to_string(&ci.argv_log).expect("argv log");
    assert!(argv.contains("push --atomic --porcelain"), "{argv}");
    assert!(argv.contains("--force-with-lease=refs/heads/main:"), "{argv}");
    let printed = ci.everything_printed();
    assert!(
        !printed.contains("::add-mask::"),
        "add-mask outside GitHub Actions:\n{printed}"
    );
    let dotenvs: String = (1..=ci.n.get())
        .map(|i| std::fs::read_to_string(ci.tmp.path().join(format!("job{i}.env"))).unwrap_or_default())
        .collect();
    let hook_envs: String = server.pushes().iter().map(|p| p.env.clone()).collect();
    assert!(
        hook_envs.contains("GIT_PUSH_OPTION_COUNT"),
        "the hook's environment was recorded"
    );
    let requests = server.requests.lock().expect("lock").join("\n");
    for f in &forms {
        for (what, text) in [
            ("git arguments", &argv),
            ("logs", &printed),
            ("outputs", &dotenvs),
            ("hook environment", &hook_envs),
            ("request lines", &requests),
        ] {
            assert!(!text.contains(f.as_str()), "the token reached the {what}");
        }
    }
    // Every request carried the token (from the environment, as the argv log shows).
    assert!(requests.lines().all(|l| l.ends_with("auth=true")), "{requests}");
    assert!(requests.contains("POST /env.git/git-receive-pack"), "{requests}");
}

#[test]
fn a_refused_token_is_exit_1_with_what_to_do_and_no_token() {
    let (_seed, seed_dir) = scratch("make_seed2_repo.sh");
    let server = GitServer::http(&seed_dir, TOKEN);
    let ci = GitLab::new(&server);
    let wrong = "glpat-WrongWrongWrong99";
    let j = ci.job(
        None,
        &["stage", "--service", "payments", "--version", "v2.0.0"],
        &[("INPUT_TOKEN", wrong)],
    );
    assert_eq!(j.run.code, 1, "{}\n{}", j.run.stdout, j.run.stderr);
    assert!(
        j.run.stdout.contains("the token was refused or is missing"),
        "{}",
        j.run.stdout
    );
    assert!(!j.run.stdout.contains(wrong) && !j.run.stderr.contains(wrong));
    assert!(server.pushes().is_empty());
}

/// A checkout of `server` and the git wrapper (argv log, race script).
fn cli_job(server: &GitServer, tmp: &Path) -> (PathBuf, String, PathBuf) {
    let ws = tmp.join("ws");
    server.clone_to(&ws, None);
    let (bin, log) = git_wrapper(tmp);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    (ws, path, log)
}

/// A script that, run once before gitops-flow's push, pushes `refspec` to the
/// server from a clone of its own (another writer winning the race).
fn race(server: &GitServer, tmp: &Path, prepare: &str, refspec: &str) -> PathBuf {
    let other = tmp.join("other");
    server.clone_to(&other, None);
    let script = tmp.join("race.sh");
    std::fs::write(
        &script,
        format!(
            "set -e\ncd '{}'\nexport GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=Other GIT_AUTHOR_EMAIL=o@example.com GIT_COMMITTER_NAME=Other GIT_COMMITTER_EMAIL=o@example.com\n{prepare}\ngit push -f origin {refspec}\n",
            other.display()
        ),
    )
    .expect("write race");
    script
}

#[test]
fn tags_move_with_their_rollback_tags_in_one_atomic_push_and_a_lost_lease_overwrites_nothing() {
    let (_seed, seed_dir) = scratch("make_tag_repo.sh");
    let server = GitServer::file(&seed_dir);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ws, path, log) = cli_job(&server, tmp.path());
    let ws_s = ws.display().to_string();
    let base = [("PATH", path.as_str())];
    let old = server.rev("payments-staging");
    let head = server.rev("main");
    let r = run(
        &[
            "deploy",
            "--backend",
            "git",
            "--path",
            &ws_s,
            "--service",
            "payments",
            "--revision",
            &head,
        ],
        &base,
    );
    r.assert_ok();
    let pushes = server.pushes();
    assert_eq!(pushes.len(), 1, "one push per command");
    let mut refs = pushes[0].refs.clone();
    refs.sort();
    assert_eq!(
        refs,
        [
            ("refs/tags/payments-staging".to_string(), old.clone(), head.clone()),
            (
                "refs/tags/payments-staging-rollback".to_string(),
                "0".repeat(40),
                old.clone()
            ),
        ]
    );
    let argv = std::fs::read_to_string(&log).expect("log");
    assert!(
        argv.contains("--force-with-lease=refs/tags/payments-staging:"),
        "{argv}"
    );
    assert!(
        argv.contains("--force-with-lease=refs/tags/payments-staging-rollback: "),
        "must not exist yet: {argv}"
    );

    // Another writer moves the production tag between our read and our push.
    let rb_before = server.git(&["for-each-ref", "refs/tags/payments-production-rollback"]);
    let script = race(
        &server,
        tmp.path(),
        "git commit -q --allow-empty -m hotfix",
        "HEAD:refs/tags/payments-production",
    );
    let r = run(
        &["promote", "--backend", "git", "--path", &ws_s, "--service", "payments"],
        &[
            ("PATH", path.as_str()),
            ("GIT_TEST_RACE", script.to_str().expect("utf-8")),
        ],
    );
    assert_eq!(
        r.code,
        1,
        "{}\n{}\n{}\n{}",
        r.stdout,
        r.stderr,
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(format!("{}.race", log.display())).unwrap_or_default()
    );
    let err = r
        .stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .expect("an error line");
    assert!(err.contains("`payments-production`"), "{err}");
    assert!(err.contains("nothing was overwritten"), "{err}");
    let theirs = server.rev("payments-production");
    assert_eq!(
        server.git(&["log", "-1", "--format=%s", &theirs]),
        "hotfix",
        "the other writer's move stands"
    );
    assert_eq!(
        server.git(&["for-each-ref", "refs/tags/payments-production-rollback"]),
        rb_before,
        "the rollback tag did not move alone"
    );
    assert_eq!(
        server.pushes().len(),
        2,
        "only the other writer's push reached the server"
    );
}

#[test]
fn a_direct_commit_that_lost_its_lease_is_rebuilt_on_the_new_head() {
    let (_seed, seed_dir) = scratch("make_seed2_repo.sh");
    let server = GitServer::file(&seed_dir);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ws, path, log) = cli_job(&server, tmp.path());
    let ws_s = ws.display().to_string();
    let script = race(
        &server,
        tmp.path(),
        "echo other > NOTES.md && git add NOTES.md && git commit -q -m other",
        "HEAD:main",
    );
    let r = run(
        &[
            "stage",
            "--backend",
            "git",
            "--path",
            &ws_s,
            "--service",
            "payments",
            "--version",
            "v9.9.9",
        ],
        &[
            ("PATH", path.as_str()),
            ("GIT_TEST_RACE", script.to_str().expect("utf-8")),
        ],
    );
    r.assert_ok();
    let other = server.rev("main^");
    assert_eq!(server.git(&["log", "-1", "--format=%s", &other]), "other");
    assert_eq!(r.out("commit"), server.rev("main"));
    assert_eq!(
        server.git(&["show", "main:NOTES.md"]),
        "other",
        "the other writer's commit kept"
    );
    assert!(file_at(&server, "main", "dev").contains("tag: \"v9.9.9\""));
    let argv = std::fs::read_to_string(&log).expect("log");
    assert_eq!(argv.lines().filter(|l| l.contains(" push ")).count(), 2, "{argv}");
}

#[test]
fn forge_none_pushes_the_branch_and_reports_the_pull_request() {
    let (_seed, seed_dir) = scratch("make_seed2_repo.sh");
    let server = GitServer::file(&seed_dir);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ws, path, _log) = cli_job(&server, tmp.path());
    let ws_s = ws.display().to_string();
    let args = [
        "--backend",
        "git",
        "--forge",
        "none",
        "--path",
        &ws_s,
        "--service",
        "payments",
    ];
    let stage = run(
        &[&["stage", "--version", "v1.1.0"][..], &args].concat(),
        &[("PATH", path.as_str())],
    );
    stage.assert_ok();
    let r = run(&[&["promote"][..], &args].concat(), &[("PATH", path.as_str())]);
    r.assert_ok();
    let pushes = server.pushes();
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0].refs[0].0, "refs/heads/main", "dev is committed directly");
    assert!(pushes[1].options.is_empty(), "no push options without a forge");
    assert_eq!(pushes[1].refs[0].0, "refs/heads/gitops-flow/staging/payments");
    assert_eq!(r.out("branch"), "gitops-flow/staging/payments");
    assert_eq!(r.out("commit"), server.rev("gitops-flow/staging/payments"));
    assert!(
        r.stdout.contains("::notice::open the pull request `gitops-flow/staging/payments` → `main` (Promote payments v1.1.0 to staging) on the git host"),
        "{}",
        r.stdout
    );
    assert_eq!(r.out("pull-request-number"), "");
}

#[test]
fn outputs_outside_actions_are_lines_or_a_dotenv_file() {
    let (_t, dir) = scratch("make_seed2_repo.sh");
    let path = dir.display().to_string();
    let r = run(
        &["report", "--path", &path],
        &[("GITHUB_OUTPUT", ""), ("GITHUB_STEP_SUMMARY", "")],
    );
    r.assert_ok();
    assert!(r.stdout.lines().any(|l| l == "changed=false"), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("report={")), "{}", r.stdout);
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("gitops.env");
    let r = run(
        &[
            "report",
            "--path",
            &path,
            "--output-dotenv",
            file.to_str().expect("utf-8"),
        ],
        &[("GITHUB_OUTPUT", "")],
    );
    r.assert_ok();
    let text = std::fs::read_to_string(&file).expect("dotenv written");
    assert!(text.lines().any(|l| l == "GITOPS_FLOW_CHANGED=false"), "{text}");
    assert!(text.lines().all(|l| l.split_once('=').is_some_and(|(k, _)| {
        k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })));
    assert!(!r.stdout.lines().any(|l| l == "changed=false"), "not printed as well");
}

#[test]
fn add_mask_is_printed_in_github_actions_only() {
    let (_t, dir) = scratch("make_seed2_repo.sh");
    let path = dir.display().to_string();
    let secret = "ghs_MaskMeOnlyInActions1";
    let outside = run(&["report", "--path", &path], &[("INPUT_TOKEN", secret)]);
    outside.assert_ok();
    assert!(!outside.stdout.contains("::add-mask::"), "{}", outside.stdout);
    assert!(!outside.stdout.contains(secret));
    let inside = run(
        &["report", "--path", &path],
        &[
            ("INPUT_TOKEN", secret),
            ("GITHUB_ACTIONS", "true"),
            ("INPUT_BACKEND", "local"),
        ],
    );
    inside.assert_ok();
    assert!(
        inside.stdout.contains(&format!("::add-mask::{secret}")),
        "{}",
        inside.stdout
    );
}

#[test]
fn the_chain_reads_what_a_push_changed() {
    let (_seed, seed_dir) = scratch("make_seed2_repo.sh");
    let server = GitServer::file(&seed_dir);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ws, path, _log) = cli_job(&server, tmp.path());
    std::fs::write(ws.join("README.md"), "docs\n").expect("write");
    git(&ws, &["add", "README.md"]);
    git(&ws, &["commit", "-q", "-m", "docs"]);
    let before = git(&ws, &["rev-parse", "HEAD^"]);
    let after = git(&ws, &["rev-parse", "HEAD"]);
    git_raw(&ws, &["push", "-q", "origin", "HEAD:main"]);
    let ws_s = ws.display().to_string();
    let r = run(
        &["promote", "--backend", "git", "--path", &ws_s],
        &[
            ("PATH", path.as_str()),
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_BEFORE_SHA", &before),
            ("CI_COMMIT_SHA", &after),
        ],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
    assert!(r.stdout.contains("changed no version"), "{}", r.stdout);
    assert_eq!(server.pushes().len(), 1, "only the docs push");

    // One push that changed dev and staging: the chain cannot tell which promotion
    // it was and says so; `from` picks one. Two commits pushed at once (a
    // fast-forward): before..after spans both.
    let set = |env: &str, v: &str| {
        let f = ws.join(format!("overlays/{env}/payments/values.yaml"));
        let text = std::fs::read_to_string(&f).expect("read");
        std::fs::write(&f, text.replace("\"v1.0.0\"", &format!("\"{v}\""))).expect("write");
        git(&ws, &["commit", "-q", "-am", &format!("{env} {v}")]);
    };
    set("dev", "v3.0.0");
    set("staging", "v3.0.0");
    let after = git(&ws, &["rev-parse", "HEAD"]);
    let before_ff = git(&ws, &["rev-parse", "HEAD~2"]);
    git_raw(&ws, &["push", "-q", "origin", "HEAD:main"]);
    let chain = |extra: &[&'static str]| {
        let mut a = vec!["promote", "--backend", "git", "--path", &ws_s];
        a.extend_from_slice(extra);
        run(
            &a,
            &[
                ("PATH", path.as_str()),
                ("CI_PIPELINE_SOURCE", "push"),
                ("CI_COMMIT_BEFORE_SHA", &before_ff),
                ("CI_COMMIT_SHA", &after),
            ],
        )
    };
    let r = chain(&[]);
    r.assert_ok();
    assert!(
        r.stdout
            .contains("changed several versions (payments in `dev` to v3.0.0, payments in `staging` to v3.0.0)"),
        "{}",
        r.stdout
    );
    assert_eq!(server.pushes().len(), 2, "nothing promoted");
    let r = chain(&["--from", "staging"]);
    r.assert_ok();
    assert_eq!(r.out("environment"), "prod");
    assert_eq!(r.out("version"), "v3.0.0");
    assert_eq!(server.pushes().len(), 3);
    assert_eq!(server.pushes()[2].refs[0].0, "refs/heads/gitops-flow/prod/payments");
}
