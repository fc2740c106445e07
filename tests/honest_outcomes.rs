//! Issue 9: exit code, outputs and repository state tell the truth under faults,
//! races and odd checkouts — "bad input" never follows a write, and a failure
//! after a write reports exactly what was written.

mod support;

use support::fake_argocd::{ARGO_TOKEN, AppState, FakeArgo};
use support::fake_github::{FakeGitHub, When};
use support::{Jobs, refs, rev, run, scratch};

const FAST: [(&str, &str); 1] = [("GITOPS_FLOW_POLL_MS", "20")];

fn p(dir: &std::path::Path) -> String {
    dir.display().to_string()
}

#[test]
fn wait_without_a_usable_gate_is_refused_before_the_tag_moves() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    let before = refs(&dir);
    // Local backend, no Argo CD: the commit-status gate cannot be read.
    let r = run(
        &["promote", "--path", &path, "--service", "payments", "--wait", "true"],
        &FAST,
    );
    r.assert_input_error("no health gate");
    assert_eq!(refs(&dir), before, "nothing written");
    assert_eq!(r.out("changed"), "false");
    // Argo CD server without its token.
    let r = run(
        &[
            "deploy",
            "--path",
            &path,
            "--service",
            "orders",
            "--revision",
            &head,
            "--wait",
            "true",
            "--argocd-server",
            "http://127.0.0.1:9",
        ],
        &FAST,
    );
    r.assert_input_error("argocd-token");
    assert_eq!(refs(&dir), before, "nothing written");
    // An Argo CD application name that can never be valid.
    let r = run(
        &[
            "promote",
            "--path",
            &path,
            "--service",
            "payments",
            "--wait",
            "true",
            "--argocd-server",
            "http://127.0.0.1:9",
            "--argocd-token",
            ARGO_TOKEN,
            "--argocd-app",
            "{service}/../{nope}",
        ],
        &FAST,
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(refs(&dir), before, "nothing written");
}

#[test]
fn argo_errors_after_the_move_are_exit_1_with_what_moved() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    let old = rev(&dir, "payments-production");
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    let argo = FakeArgo::start(
        "payments-production",
        vec![AppState::new("Healthy", "Synced", &head, "Succeeded")],
    );
    // 401: a wrong token only shows once the tag has moved.
    let r = run(
        &[
            "promote",
            "--path",
            &path,
            "--service",
            "payments",
            "--wait",
            "true",
            "--timeout",
            "2",
            "--argocd-server",
            &argo.url,
            "--argocd-token",
            "wrong-token",
        ],
        &FAST,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(rev(&dir, "payments-production"), head, "the tag moved");
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("tag"), "payments-production");
    assert_eq!(r.out("revision"), head);
    assert_eq!(r.out("previous-revision"), old);
    assert!(r.stdout.lines().any(|l| l.starts_with("::error::")), "{}", r.stdout);
    assert!(r.summary.contains("payments-production"), "{}", r.summary);

    // An application that does not exist (403/404 from Argo CD) on a rollback.
    let r = run(
        &[
            "rollback",
            "--path",
            &path,
            "--service",
            "payments",
            "--wait",
            "true",
            "--timeout",
            "2",
            "--argocd-server",
            &argo.url,
            "--argocd-token",
            ARGO_TOKEN,
            "--argocd-app",
            "no-such-app",
        ],
        &FAST,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(rev(&dir, "payments-production"), old, "rolled back");
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("revision"), old);
}

#[test]
fn a_failed_deployments_call_after_the_move_is_exit_1_with_what_moved() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    let old = fake.rev("payments-staging").unwrap();
    // Every attempt at the deployments API fails.
    for _ in 0..10 {
        fake.fault_on("/deployments", When::Instead, 403);
    }
    let r = jobs.run(
        &[
            ("command", "deploy"),
            ("service", "payments"),
            ("revision", &head),
            ("deployments", "true"),
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(fake.rev("payments-staging").unwrap(), head);
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("tag"), "payments-staging");
    assert_eq!(r.out("revision"), head);
    assert_eq!(r.out("previous-revision"), old);
}

#[test]
fn a_branch_reset_before_a_failed_commit_is_reported() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    jobs.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    )
    .assert_ok();
    // main moves on, so the stage branch is rebuilt (reset, then commit) next time.
    let main = fake.rev("main").unwrap();
    let tree = fake.git(&["rev-parse", "main^{tree}"]);
    let c = fake.git(&[
        "-c",
        "user.name=x",
        "-c",
        "user.email=x@example.com",
        "commit-tree",
        &tree,
        "-p",
        &main,
        "-m",
        "unrelated",
    ]);
    fake.git(&["update-ref", "refs/heads/main", &c]);
    for _ in 0..10 {
        fake.fault_on("createCommitOnBranch", When::Instead, 403);
    }
    let r = jobs.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.3.0")],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(fake.rev("gitops-flow/stage/payments").unwrap(), c, "the reset landed");
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("branch"), "gitops-flow/stage/payments");
    let err = r.stdout.lines().find(|l| l.starts_with("::error::")).unwrap();
    assert!(err.contains("gitops-flow/stage/payments"), "{err}");
}

#[test]
fn ten_parallel_promotes_one_changed() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    let initial = rev(&dir, "payments-production");
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    // Hold the tag's lock (as a slow concurrent git would) until every run has read
    // the tags, so that all ten race for the same compare-and-swap.
    let lock = dir.join(".git/refs/tags/payments-production.lock");
    std::fs::write(&lock, "").unwrap();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || run(&["promote", "--path", &path, "--service", "payments"], &[]))
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::remove_file(&lock).unwrap();
    let runs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    support::assert_one_run_wrote(&runs, &head, &initial);
    assert_eq!(rev(&dir, "payments-production"), head);
    assert_eq!(rev(&dir, "payments-production-rollback"), initial);
}

/// The same on GitHub: five promotes read the same tags, then race for the one
/// `updateRefs`. GitHub refuses the losers' first attempts, so the tag they find in
/// place was moved by another run: `changed=false` there, `changed=true` only for the
/// one run whose compare-and-swap wrote. (Before, every loser took the tag in place
/// for its own earlier attempt and said `changed=true`.)
#[test]
fn five_parallel_promotes_on_github_one_changed() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let initial = fake.rev("payments-production").unwrap();
    let head = support::deploy_payments(&fake);
    fake.clear_log();
    // Every run pauses between its read and its write, so all five read first.
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|_| {
                s.spawn(|| {
                    Jobs::new(&fake).run(
                        &[("command", "promote"), ("service", "payments")],
                        &[("GITOPS_FLOW_TEST_WRITE_DELAY_MS", "1500")],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    support::assert_one_run_wrote(&runs, &head, &initial);
    let writes = fake
        .requests()
        .iter()
        .filter(|r| r.graphql.iter().any(|g| g == "updateRefs") && r.status == 200)
        .count();
    assert_eq!(writes, 5, "one attempt each, no write retried");
    assert_eq!(fake.rev("payments-production").unwrap(), head);
    assert_eq!(fake.rev("payments-production-rollback").unwrap(), initial);
    fake.assert_clean();
}

/// A move given up on GitHub's rate limit at its first attempt was never processed:
/// a tag found moved afterwards is another run's, and this run does not claim it
/// (`changed=true` was said before: a give-up counted as "may have landed").
#[test]
fn a_rate_limited_move_does_not_claim_another_runs_move() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let head = support::deploy_payments(&fake);
    let initial = fake.rev("refs/tags/payments-production").unwrap();
    let bare = fake.bare.clone();
    let (to, from) = (head.clone(), initial.clone());
    // While this run's `updateRefs` is refused for the rate limit, another run makes
    // the very same move (the tag and its rollback tag).
    fake.on_fault(move || {
        support::git(&bare, &["update-ref", "refs/tags/payments-production", &to]);
        support::git(&bare, &["update-ref", "refs/tags/payments-production-rollback", &from]);
    });
    fake.fail_on_with(
        "updateRefs",
        403,
        &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "4102444800")],
        r#"{"message":"API rate limit exceeded for installation ID 1."}"#,
    );
    let r = Jobs::new(&fake).run(&[("command", "promote"), ("service", "payments")], &[]);
    assert_eq!(fake.rev("refs/tags/payments-production").unwrap(), head);
    assert_ne!(initial, head);
    r.assert_ok();
    assert_eq!(r.out("changed"), "false", "{}", r.stdout);
    assert!(r.stdout.contains("another run moved"), "{}", r.stdout);
    fake.assert_clean();
}
