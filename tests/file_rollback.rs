//! Issue 9, section 8: a file-mode rollback is per service and idempotent, also
//! after a merged rollback pull request, and reads first-parent history on GitHub.

mod support;

use support::fake_github::FakeGitHub;
use support::{Jobs, git, run, scratch};

fn p(d: &std::path::Path) -> String {
    d.display().to_string()
}

/// Two services whose versions live in one file per environment.
fn shared_file_repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, dir) = scratch("make_file_repo.sh");
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        "environments:\n  - { name: dev, track: file, direct: true }\n  - { name: prod, track: file, direct: true }\nservices:\n  payments:\n    version:\n      - file: shared/{env}.yaml\n        key: payments.tag\n  orders:\n    version:\n      - file: shared/{env}.yaml\n        key: orders.tag\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("shared")).unwrap();
    for env in ["dev", "prod"] {
        std::fs::write(
            dir.join(format!("shared/{env}.yaml")),
            "payments:\n  tag: \"1.0.0\"\norders:\n  tag: \"2.0.0\"\n",
        )
        .unwrap();
    }
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "shared file"]);
    (t, dir)
}

#[test]
fn rolling_back_one_service_does_not_block_another_in_the_same_file() {
    let (_t, dir) = shared_file_repo();
    let path = p(&dir);
    let cmd = |c: &str, service: &str, extra: &[&str]| {
        let mut a = vec![c, "--path", &path, "--service", service];
        a.extend_from_slice(extra);
        run(&a, &[])
    };
    cmd("stage", "payments", &["--version", "1.1.0"]).assert_ok();
    cmd("stage", "orders", &["--version", "2.1.0"]).assert_ok();
    let r = cmd("rollback", "payments", &["--environment", "dev"]);
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("version"), "1.0.0");
    // The file was last changed by payments' rollback; orders still rolls back.
    let r = cmd("rollback", "orders", &["--environment", "dev"]);
    r.assert_ok();
    assert_eq!(r.out("changed"), "true", "{}", r.stdout);
    assert_eq!(r.out("version"), "2.0.0");
    let text = std::fs::read_to_string(dir.join("shared/dev.yaml")).unwrap();
    assert_eq!(text, "payments:\n  tag: \"1.0.0\"\norders:\n  tag: \"2.0.0\"\n");
    // Each one again: its value was last set by its own rollback, nothing to do.
    for s in ["payments", "orders"] {
        let r = cmd("rollback", s, &["--environment", "dev"]);
        r.assert_ok();
        assert_eq!(r.out("changed"), "false", "{s}: {}", r.stdout);
        assert!(r.stdout.contains("last changed by a rollback"), "{}", r.stdout);
    }
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
}

#[test]
fn a_merged_rollback_pull_request_is_not_rolled_back_again() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    for v in ["1.1.0", "1.2.0"] {
        jobs.run(&[("command", "stage"), ("service", "payments"), ("version", v)], &[])
            .assert_ok();
    }
    let rollback = || {
        jobs.run(
            &[
                ("command", "rollback"),
                ("service", "payments"),
                ("environment", "dev"),
                ("rollback-via", "pull-request"),
            ],
            &[],
        )
    };
    let r = rollback();
    r.assert_ok();
    assert_eq!(r.out("version"), "1.1.0");
    let number: u64 = r.out("pull-request-number").parse().unwrap();
    let pr = fake.pulls().into_iter().find(|p| p.number == number).unwrap();
    assert!(pr.body.contains(r#""command":"rollback""#), "{}", pr.body);
    let merged = fake.merge_pull(number);

    // deploy after the merge says what it deployed.
    let ev = jobs.dir().join("closed.json");
    std::fs::write(&ev, fake.pull_event(number).to_string()).unwrap();
    let evs = ev.display().to_string();
    let d = jobs.run(
        &[("command", "deploy")],
        &[("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_EVENT_PATH", &evs)],
    );
    d.assert_ok();
    assert_eq!(d.out("service"), "payments");
    assert_eq!(d.out("environment"), "dev");
    assert_eq!(d.out("version"), "1.1.0");
    assert_eq!(d.out("commit"), merged);
    assert!(d.summary.contains("`payments` `1.1.0`"), "{}", d.summary);

    // A second rollback (either way) does not bring 1.2.0 back.
    let pulls = fake.pulls().len();
    let r = rollback();
    r.assert_ok();
    assert_eq!(r.out("changed"), "false", "{}", r.stdout);
    assert_eq!(fake.pulls().len(), pulls, "no new pull request");
    let r = jobs.run(
        &[("command", "rollback"), ("service", "payments"), ("environment", "dev")],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "false", "{}", r.stdout);
    assert_eq!(fake.rev("main").unwrap(), merged, "nothing committed");
    fake.assert_clean();
}

#[test]
fn github_rollback_reads_first_parent_history() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    let file = "overlays/dev/payments/values.yaml";
    let set = |v: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let re = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("tag:") {
                    format!("  tag: \"{v}\" # set by gitops-flow")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        std::fs::write(dir.join(file), re).unwrap();
        git(&dir, &["commit", "-q", "-am", &format!("set {v}")]);
    };
    // A feature branch passes through 5.5.5 on its way to 1.2.0; main never ran 5.5.5.
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    set("5.5.5");
    set("1.2.0");
    git(&dir, &["checkout", "-q", "main"]);
    git(&dir, &["merge", "-q", "--no-ff", "-m", "Merge feature", "feature"]);
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let r = jobs.run(
        &[("command", "rollback"), ("service", "payments"), ("environment", "dev")],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("previous-version"), "1.2.0");
    assert_eq!(r.out("version"), "1.0.0", "{}", r.stdout);
    fake.assert_clean();
}

/// Issue 11: a file-mode rollback on a shallow checkout with 100 commits of history on
/// the file costs at most 3 requests (refs, the history with contents, the commit),
/// and a second page is read only when the first-parent chain leaves the first.
#[test]
fn github_rollback_with_a_long_history_costs_three_requests() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    // 100 commits that each change the file: unrelated replica counts, then a bump.
    let (file, text) = scaled_99_times(&dir);
    let bumped = text
        .replace("replicaCount: 2", "replicaCount: 101")
        .replace("tag: \"1.0.0\"", "tag: \"1.3.0\"");
    std::fs::write(dir.join(file), bumped).unwrap();
    // The bump as gitops-flow commits it (a commit without trailers costs one more
    // request: the merged pull request that may have hidden them).
    git(
        &dir,
        &[
            "commit",
            "-q",
            "-am",
            "Promote payments 1.3.0 to dev\n\nGitops-Flow-Command: stage\nGitops-Flow-Service: payments\nGitops-Flow-Environment: dev\nGitops-Flow-Version: 1.3.0",
        ],
    );
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    fake.clear_log();
    let n = roll_back_dev_payments(&jobs, &fake);
    assert!(
        n <= 3,
        "{n} requests: {:?}",
        fake.requests().iter().map(|q| q.path.clone()).collect::<Vec<_>>()
    );
    fake.assert_clean();
}

/// Issue 11: the usual way into prod is a merged pull request, whose squash commit
/// carries no trailers: a rollback over 100 commits of history still costs at most 3
/// requests (the pull request that produced each commit comes with the history).
#[test]
fn github_rollback_after_a_merged_pull_request_costs_three_requests() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    let (file, text) = scaled_99_times(&dir);
    let fake = FakeGitHub::start(&dir);
    // A person's pull request bumps the version; GitHub squashes it into main.
    let bumped = text
        .replace("replicaCount: 2", "replicaCount: 101")
        .replace("tag: \"1.0.0\"", "tag: \"1.3.0\"");
    fake.push_commit("bump-payments", "main", file, &bumped);
    let number = fake.open_pull("bump-payments", "main", &[]);
    let merged = fake.merge_pull(number);
    let message = fake.git(&["log", "-1", "--format=%B", &merged]);
    assert!(
        !message.contains("Gitops-Flow-") && !message.contains("gitops-flow"),
        "{message}"
    );
    let jobs = Jobs::new(&fake);
    fake.clear_log();
    let n = roll_back_dev_payments(&jobs, &fake);
    // The refs, the history (with each commit's merged pull request), the commit.
    assert_eq!(
        n,
        3,
        "{n} requests: {:?}",
        fake.requests().iter().map(|q| q.path.clone()).collect::<Vec<_>>()
    );
    fake.assert_clean();
}

/// 99 commits on dev's payments values that change only `replicaCount`: the file's
/// path and its text before them.
fn scaled_99_times(dir: &std::path::Path) -> (&'static str, String) {
    let file = "overlays/dev/payments/values.yaml";
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    for i in 0..99 {
        std::fs::write(
            dir.join(file),
            text.replace("replicaCount: 2", &format!("replicaCount: {}", i + 3)),
        )
        .unwrap();
        git(dir, &["commit", "-q", "-am", &format!("scale {i}")]);
    }
    (file, text)
}

/// Rolls dev's payments back from 1.3.0 to 1.0.0; the requests it cost.
fn roll_back_dev_payments(jobs: &Jobs, fake: &FakeGitHub) -> usize {
    let r = jobs.run(
        &[("command", "rollback"), ("service", "payments"), ("environment", "dev")],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("previous-version"), "1.3.0");
    assert_eq!(r.out("version"), "1.0.0", "{}", r.stdout);
    fake.requests().len()
}
