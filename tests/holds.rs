//! Holds (`lock` / `unlock`) through the real binary: tag, file and branch tracks,
//! the local backend and the fake GitHub, a freeze, the promotion chain, and locks
//! racing promotions.

mod support;

use std::path::Path;

use support::fake_github::FakeGitHub;
use support::{Jobs, Run, git, rev, run, scratch};

fn p(dir: &Path) -> String {
    dir.display().to_string()
}

fn holds_file(dir: &Path) -> String {
    git(dir, &["show", "main:.gitops-flow/holds.yaml"])
}

fn error_line(r: &Run) -> String {
    r.stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("no ::error:: in\n{}", r.stdout))
        .to_string()
}

/// Exit 1, `held=true`, and an error naming who, when, why and how to unlock.
fn assert_held(r: &Run, who: &str, why: &str, unlock: &str) {
    assert_eq!(r.code, 1, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert_eq!(r.out("held"), "true");
    assert_eq!(r.out("changed"), "false");
    let err = error_line(r);
    for needle in [who, why, unlock, "locked by", " at 20"] {
        assert!(err.contains(needle), "`{needle}` not in {err}");
    }
}

const ACTOR: [(&str, &str); 1] = [("GITHUB_ACTOR", "octocat")];

#[test]
fn tag_track_local_lock_refuses_promote_allows_rollback_unlock_promotes_again() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    let initial = rev(&dir, "payments-production");
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    run(&["promote", "--path", &path, "--service", "payments"], &[]).assert_ok();
    assert_eq!(rev(&dir, "payments-production"), head);

    // A dry run writes nothing.
    let main_before = rev(&dir, "main");
    let r = run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--service",
            "payments",
            "--reason",
            "bad release",
            "--dry-run",
        ],
        &ACTOR,
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
    assert_eq!(rev(&dir, "main"), main_before, "dry run wrote nothing");

    let r = run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--service",
            "payments",
            "--reason",
            "bad release 1.1: 500s",
        ],
        &ACTOR,
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("held"), "true");
    let lock_commit = rev(&dir, "main");
    assert_eq!(r.out("commit"), lock_commit);
    assert_eq!(git(&dir, &["rev-parse", "main^"]), main_before, "one commit on main");
    let text = holds_file(&dir);
    assert!(
        text.contains("service: \"payments\"")
            && text.contains("by: \"@octocat\"")
            && text.contains("reason: \"bad release 1.1: 500s\""),
        "{text}"
    );
    let msg = git(&dir, &["log", "-1", "--format=%B", "main"]);
    assert!(
        msg.contains("Gitops-Flow-Command: lock") && msg.contains("Gitops-Flow-Environment: production"),
        "{msg}"
    );
    assert_eq!(
        git(&dir, &["status", "--porcelain"]),
        "",
        "the checkout follows the commit"
    );

    // Idempotent.
    let r = run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--service",
            "payments",
            "--reason",
            "again",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
    assert_eq!(rev(&dir, "main"), lock_commit);

    // Rollback stays allowed.
    let r = run(&["rollback", "--path", &path, "--service", "payments"], &[]);
    r.assert_ok();
    assert_eq!(rev(&dir, "payments-production"), initial, "rolled back while held");

    // Promote is refused, nothing moves.
    let refs_before = support::refs(&dir);
    let r = run(&["promote", "--path", &path, "--service", "payments"], &[]);
    assert_held(
        &r,
        "@octocat",
        "bad release 1.1: 500s",
        "gitops-flow unlock --environment production --service payments",
    );
    assert_eq!(support::refs(&dir), refs_before, "nothing written");
    assert!(r.summary.contains("held"), "{}", r.summary);
    // Another service is not held.
    run(&["promote", "--path", &path, "--service", "orders"], &[]).assert_ok();

    // The report shows it.
    let r = run(&["report", "--path", &path], &[]);
    r.assert_ok();
    let report: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(report["payments"]["production"]["hold"]["by"], "@octocat");
    assert_eq!(report["payments"]["production"]["hold"]["freeze"], false);
    assert!(report["orders"]["production"].get("hold").is_none());
    assert!(
        r.summary.contains("⏸️ held") && r.summary.contains("bad release 1.1: 500s"),
        "{}",
        r.summary
    );

    // Unlock, twice; then promote moves again.
    let r = run(
        &[
            "unlock",
            "--path",
            &path,
            "--environment",
            "production",
            "--service",
            "payments",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("held"), "false");
    assert!(!holds_file(&dir).contains("payments"));
    let r = run(
        &[
            "unlock",
            "--path",
            &path,
            "--environment",
            "production",
            "--service",
            "payments",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
    let r = run(&["promote", "--path", &path, "--service", "payments"], &[]);
    r.assert_ok();
    assert_eq!(r.out("held"), "false");
    assert_eq!(rev(&dir, "payments-production"), head);
}

#[test]
fn lock_inputs_are_checked_before_anything_is_written() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    let main = rev(&dir, "main");
    run(&["lock", "--path", &path, "--environment", "production"], &[]).assert_input_error("`lock` needs a reason");
    run(&["lock", "--path", &path, "--reason", "x"], &[]).assert_input_error("needs an environment");
    run(
        &["lock", "--path", &path, "--environment", "prod", "--reason", "x"],
        &[],
    )
    .assert_input_error("unknown environment `prod`");
    run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--reason",
            "a\nb",
        ],
        &[],
    )
    .assert_input_error("one line");
    assert_eq!(rev(&dir, "main"), main);
}

#[test]
fn a_freeze_without_service_stops_every_service() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    let head = rev(&dir, "main");
    for s in ["payments", "orders"] {
        run(&["deploy", "--path", &path, "--service", s, "--revision", &head], &[]).assert_ok();
    }
    run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--reason",
            "release freeze",
        ],
        &ACTOR,
    )
    .assert_ok();
    let before = support::refs(&dir);
    for s in ["payments", "orders"] {
        let r = run(&["promote", "--path", &path, "--service", s], &[]);
        assert_held(
            &r,
            "@octocat",
            "release freeze",
            "gitops-flow unlock --environment production`",
        );
        assert!(error_line(&r).contains("`production` is frozen"), "{}", r.stdout);
    }
    assert_eq!(support::refs(&dir), before);
    // Staging is not frozen.
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    let r = run(&["report", "--path", &path], &[]);
    let report: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(report["orders"]["production"]["hold"]["freeze"], true);
    assert!(report["orders"]["staging"].get("hold").is_none());
    run(&["unlock", "--path", &path, "--environment", "production"], &[]).assert_ok();
    for s in ["payments", "orders"] {
        run(&["promote", "--path", &path, "--service", s], &[]).assert_ok();
        assert_eq!(rev(&dir, &format!("{s}-production")), head);
    }
}

#[test]
fn file_track_local_stage_and_promote_refused_rollback_allowed() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    // dev is direct: stage commits there.
    run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.1.0"],
        &[],
    )
    .assert_ok();
    run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "dev",
            "--service",
            "payments",
            "--reason",
            "investigating",
        ],
        &[],
    )
    .assert_ok();
    let main = rev(&dir, "main");
    let r = run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.2.0"],
        &[],
    );
    assert_held(
        &r,
        "locked by",
        "investigating",
        "gitops-flow unlock --environment dev --service payments",
    );
    assert_eq!(rev(&dir, "main"), main);
    // Rollback of dev is allowed while held.
    let r = run(
        &[
            "rollback",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "dev",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("version"), "1.0.0");
    // qa: a pull request would be opened; a freeze of qa refuses it.
    run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "qa",
            "--reason",
            "qa cluster down",
        ],
        &[],
    )
    .assert_ok();
    let branches = git(&dir, &["branch", "--list", "gitops-flow/*"]);
    let r = run(&["promote", "--path", &path, "--service", "webui"], &[]);
    assert_held(
        &r,
        "locked by",
        "qa cluster down",
        "gitops-flow unlock --environment qa`",
    );
    assert_eq!(
        git(&dir, &["branch", "--list", "gitops-flow/*"]),
        branches,
        "no pull-request branch"
    );
    run(&["unlock", "--path", &path, "--environment", "qa"], &[]).assert_ok();
    run(&["promote", "--path", &path, "--service", "webui"], &[]).assert_ok();
}

#[test]
fn branch_track_local_promote_refused_rollback_allowed() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        "environments:\n  - { name: staging, track: branch, branch: staging }\n  - { name: production, track: branch, branch: production, direct: true }\nservices:\n  payments:\n    version:\n      - file: overlays/dev/payments/values.yaml\n        key: image.tag\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "branch config"]);
    git(&dir, &["branch", "staging"]);
    git(&dir, &["branch", "production"]);
    git(&dir, &["checkout", "-q", "staging"]);
    std::fs::write(
        dir.join("overlays/dev/payments/values.yaml"),
        "image:\n  tag: \"1.5.0\"\n",
    )
    .unwrap();
    git(&dir, &["commit", "-qam", "payments 1.5.0 on staging"]);
    git(&dir, &["checkout", "-q", "main"]);
    let staging = rev(&dir, "staging");
    let prod = rev(&dir, "production");
    run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--service",
            "payments",
            "--reason",
            "hold prod",
        ],
        &[],
    )
    .assert_ok();
    let r = run(
        &[
            "promote",
            "--path",
            &path,
            "--service",
            "payments",
            "--from",
            "staging",
            "--to",
            "production",
        ],
        &[],
    );
    assert_held(
        &r,
        "locked by",
        "hold prod",
        "unlock --environment production --service payments",
    );
    assert_eq!(rev(&dir, "production"), prod);
    run(
        &[
            "unlock",
            "--path",
            &path,
            "--environment",
            "production",
            "--service",
            "payments",
        ],
        &[],
    )
    .assert_ok();
    run(
        &[
            "promote",
            "--path",
            &path,
            "--service",
            "payments",
            "--from",
            "staging",
            "--to",
            "production",
        ],
        &[],
    )
    .assert_ok();
    assert_eq!(rev(&dir, "production"), staging);
    // Held again: rolling back the branch is allowed.
    run(
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--reason",
            "freeze",
        ],
        &[],
    )
    .assert_ok();
    let r = run(
        &[
            "rollback",
            "--path",
            &path,
            "--service",
            "payments",
            "--environment",
            "production",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
    assert_ne!(rev(&dir, "production"), staging);
}

/// Runs `args` in the background with a pause between reading the holds and
/// writing; lands `lock_args` during that pause; returns the background run.
fn race(args: Vec<String>, lock_args: &[&str]) -> Run {
    let bg = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, &[("GITOPS_FLOW_TEST_WRITE_DELAY_MS", "1500")])
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    run(lock_args, &[]).assert_ok();
    bg.join().expect("promote thread")
}

#[test]
fn a_lock_racing_a_tag_promote_wins_locally() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    let prod = rev(&dir, "payments-production");
    let r = race(
        ["promote", "--path", &path, "--service", "payments"]
            .map(String::from)
            .to_vec(),
        &[
            "lock",
            "--path",
            &path,
            "--environment",
            "production",
            "--reason",
            "raced",
        ],
    );
    assert_held(&r, "locked by", "raced", "unlock --environment production");
    assert_eq!(
        rev(&dir, "payments-production"),
        prod,
        "the promotion read before the lock did not slip through"
    );
}

#[test]
fn a_lock_racing_a_direct_commit_wins_locally() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    let before = std::fs::read_to_string(dir.join("overlays/dev/payments/values.yaml")).unwrap();
    let r = race(
        ["stage", "--path", &path, "--service", "payments", "--version", "9.9.9"]
            .map(String::from)
            .to_vec(),
        &["lock", "--path", &path, "--environment", "dev", "--reason", "raced"],
    );
    assert_held(&r, "locked by", "raced", "unlock --environment dev");
    assert_eq!(
        git(&dir, &["show", "main:overlays/dev/payments/values.yaml"]),
        before.trim_end()
    );
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%s", "main"]),
        "Hold dev (every service)"
    );
}

// ---------------------------------------------------------------- GitHub backend

#[test]
fn github_tag_track_lock_is_a_verified_commit_and_refuses_promote() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let head = support::deploy_payments(&fake);
    let r = j.run(
        &[
            ("command", "lock"),
            ("environment", "production"),
            ("service", "payments"),
            ("reason", "incident 7"),
        ],
        &ACTOR,
    );
    r.assert_ok();
    let lock = fake.rev("main").unwrap();
    assert_eq!(r.out("commit"), lock);
    assert!(fake.is_verified(&lock), "the hold is a verified commit");
    let prod = fake.rev("refs/tags/payments-production").unwrap();
    let r = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    assert_held(
        &r,
        "@octocat",
        "incident 7",
        "unlock --environment production --service payments",
    );
    assert_eq!(fake.rev("refs/tags/payments-production").unwrap(), prod);
    j.run(
        &[
            ("command", "unlock"),
            ("environment", "production"),
            ("service", "payments"),
        ],
        &[],
    )
    .assert_ok();
    j.run(&[("command", "promote"), ("service", "payments")], &[])
        .assert_ok();
    assert_eq!(fake.rev("refs/tags/payments-production").unwrap(), head);
    fake.assert_clean();
}

/// A lock — the hold committed on main, then the hold guard ref moved to it — that
/// completes after the promotion read the holds and right before its tag update:
/// the guarded `updateRefs` fails as a whole, the promotion reads the holds again and
/// stops. Nothing moved (the old design moved the tags, read main once more and moved
/// them back, at one more request per promotion).
#[test]
fn github_a_lock_landing_during_the_tag_move_stops_it_before_anything_moves() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    support::deploy_payments(&fake);
    let prod = fake.rev("refs/tags/payments-production").unwrap();
    let rb = fake.rev("refs/tags/payments-production-rollback");
    let push = fake.pusher();
    let bare = fake.bare().to_path_buf();
    fake.before_write("updateRefs", move || {
        let lock = push(
            "main",
            ".gitops-flow/holds.yaml",
            "holds:\n  - environment: \"production\"\n    by: \"@ops\"\n    at: \"2024-05-01T12:00:00Z\"\n    reason: \"raced\"\n",
        );
        support::git(&bare, &["update-ref", "refs/gitops-flow/holds", &lock]);
    });
    fake.clear_log();
    let r = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.out("held"), "true");
    assert_eq!(r.out("changed"), "false");
    let err = error_line(&r);
    assert!(err.contains("@ops") && err.contains("raced"), "{err}");
    assert!(!err.contains("moved back"), "nothing had moved: {err}");
    assert_eq!(fake.rev("refs/tags/payments-production").unwrap(), prod);
    assert_eq!(fake.rev("refs/tags/payments-production-rollback"), rb);
    // One write, the refused one: nothing to move back.
    let writes = fake
        .requests()
        .iter()
        .filter(|r| r.graphql.iter().any(|g| g == "updateRefs"))
        .count();
    assert_eq!(writes, 1, "{:?}", fake.requests());
    fake.assert_clean();
}

/// The real `lock` racing a promotion on GitHub: the promotion reads the holds, waits,
/// the lock completes, the promotion's write is refused and it stops as held.
#[test]
fn github_a_real_lock_racing_a_tag_promote_wins() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    support::deploy_payments(&fake);
    let prod = fake.rev("refs/tags/payments-production").unwrap();
    let r = std::thread::scope(|s| {
        let bg = s.spawn(|| {
            Jobs::new(&fake).run(
                &[("command", "promote"), ("service", "payments")],
                &[("GITOPS_FLOW_TEST_WRITE_DELAY_MS", "1500")],
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        let l = Jobs::new(&fake).run(
            &[("command", "lock"), ("environment", "production"), ("reason", "raced")],
            &ACTOR,
        );
        l.assert_ok();
        assert_eq!(fake.rev("refs/gitops-flow/holds").as_deref(), Some(l.out("commit")));
        bg.join().expect("promote thread")
    });
    assert_held(&r, "@octocat", "raced", "unlock --environment production");
    assert!(!error_line(&r).contains("moved back"), "{}", error_line(&r));
    assert_eq!(fake.rev("refs/tags/payments-production").unwrap(), prod);
    fake.assert_clean();
}

#[test]
fn github_a_lock_racing_a_direct_commit_wins() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let push = fake.pusher();
    fake.before_write("createCommitOnBranch", move || {
        push(
            "main",
            ".gitops-flow/holds.yaml",
            "holds:\n  - environment: \"dev\"\n    service: \"payments\"\n    by: \"@ops\"\n    at: \"2024-05-01T12:00:00Z\"\n    reason: \"raced\"\n",
        );
    });
    let r = j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "9.9.9")],
        &[],
    );
    assert_held(&r, "@ops", "raced", "unlock --environment dev --service payments");
    let main = fake.rev("main").unwrap();
    assert_eq!(
        fake.git(&["log", "-1", "--format=%s", &main]),
        "change .gitops-flow/holds.yaml"
    );
    assert!(
        fake.git(&["show", &format!("{main}:overlays/dev/payments/values.yaml")])
            .contains("1.0.0")
    );
    fake.assert_clean();
}

#[test]
fn github_the_promotion_chain_stops_at_a_held_environment() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    // prod is frozen; dev -> qa as a pull request, whose merge would continue the
    // chain into prod. (The fake's squash merge takes the head's tree whole, so the
    // lock goes first.)
    j.run(
        &[
            ("command", "lock"),
            ("environment", "prod"),
            ("reason", "change freeze"),
        ],
        &ACTOR,
    )
    .assert_ok();
    j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.1.0")],
        &[],
    )
    .assert_ok();
    let r = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    r.assert_ok();
    let number: u64 = r.out("pull-request-number").parse().unwrap();
    let merged = fake.merge_pull(number);
    let pulls = fake.pulls().len();
    let r = j.run(
        &[("command", "promote")],
        &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", &merged)],
    );
    assert_held(&r, "@octocat", "change freeze", "unlock --environment prod`");
    assert_eq!(fake.pulls().len(), pulls, "no pull request into prod");
    j.run(&[("command", "unlock"), ("environment", "prod")], &[])
        .assert_ok();
    let r = j.run(
        &[("command", "promote")],
        &[("GITHUB_EVENT_NAME", "push"), ("GITHUB_SHA", &merged)],
    );
    r.assert_ok();
    assert_eq!(r.out("environment"), "prod");
    assert_eq!(fake.pulls().len(), pulls + 1);
    fake.assert_clean();
}

/// A GitHub that will not take the hold guard ref (a repository rule on
/// `refs/gitops-flow/*`): promotions still move, checked the old way (main read again
/// after the move), and say so; `lock` records the hold and warns.
#[test]
fn github_without_the_hold_guard_ref_still_promotes_and_locks() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    fake.refuse_refs_under(Some("refs/gitops-flow/"));
    let j = Jobs::new(&fake);
    let head = support::deploy_payments(&fake);
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    assert_eq!(p.out("changed"), "true");
    assert_eq!(fake.rev("refs/tags/payments-production").unwrap(), head);
    assert!(
        p.stdout.contains("::notice::") && p.stdout.contains("refs/gitops-flow/holds"),
        "{}",
        p.stdout
    );
    assert_eq!(fake.rev("refs/gitops-flow/holds"), None);
    let l = j.run(
        &[
            ("command", "lock"),
            ("environment", "production"),
            ("reason", "no guard"),
        ],
        &ACTOR,
    );
    l.assert_ok();
    assert!(
        l.stdout.contains("::warning::") && l.stdout.contains("could not be moved"),
        "{}",
        l.stdout
    );
    let r = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    assert_held(&r, "@octocat", "no guard", "unlock --environment production");
    // Once the ref is allowed, `lock` again ("already held") completes the guard.
    let lock = fake.rev("main").unwrap();
    fake.refuse_refs_under(None);
    let again = j.run(
        &[
            ("command", "lock"),
            ("environment", "production"),
            ("reason", "no guard"),
        ],
        &ACTOR,
    );
    again.assert_ok();
    assert_eq!(again.out("changed"), "false");
    assert!(!again.stdout.contains("::warning::"), "{}", again.stdout);
    assert_eq!(fake.rev("refs/gitops-flow/holds"), Some(lock));
    fake.assert_clean();
}

/// A GitHub that refuses an update leaving a ref where it is (the guard's usual
/// compare-and-swap), in words that do not name the ref: moves still land, checked the
/// old way (main read again after the move), and say so.
#[test]
fn github_refusing_a_guard_left_in_place_still_promotes() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    fake.refuse_noop_updates(true);
    let j = Jobs::new(&fake);
    // The first guarded move creates the guard at the main head.
    let head = support::deploy_payments(&fake);
    assert_eq!(fake.rev("refs/gitops-flow/holds"), Some(head.clone()));
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    assert_eq!(p.out("changed"), "true");
    assert_eq!(fake.rev("refs/tags/payments-production").unwrap(), head);
    assert!(
        p.stdout.contains("::notice::") && p.stdout.contains("refs/gitops-flow/holds"),
        "{}",
        p.stdout
    );
    fake.assert_clean();
}

/// The guard never moves back: a lock whose guard move finds a later lock's commit
/// there (that lock moved it first) leaves it, since a promotion may have read the
/// value this lock would bring back.
#[test]
fn github_the_hold_guard_never_moves_back() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let push = fake.pusher();
    let bare = fake.bare().to_path_buf();
    let later = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = later.clone();
    // Right before this lock's guard move: another lock lands on top of it and
    // moves the guard to its own commit.
    fake.before_write("updateRefs", move || {
        let c = push(
            "main",
            ".gitops-flow/holds.yaml",
            "holds:\n  - environment: \"staging\"\n    by: \"@ops\"\n    at: \"2024-05-01T12:00:00Z\"\n    reason: \"later\"\n",
        );
        support::git(&bare, &["update-ref", "refs/gitops-flow/holds", &c]);
        *seen.lock().unwrap() = c;
    });
    let r = j.run(
        &[("command", "lock"), ("environment", "production"), ("reason", "first")],
        &ACTOR,
    );
    r.assert_ok();
    assert!(!r.stdout.contains("::warning::"), "{}", r.stdout);
    let later = later.lock().unwrap().clone();
    assert_ne!(r.out("commit"), later);
    assert_eq!(
        fake.rev("refs/gitops-flow/holds").unwrap(),
        later,
        "left at the later lock's commit, not moved back to {}",
        r.out("commit")
    );
    fake.assert_clean();
}
