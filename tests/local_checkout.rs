//! Issue 9, section 2: on the local backend the checked-out branch is never left
//! half-updated — ref, index and work tree all move, or nothing is written.

mod support;

use support::{git, refs, rev, run, scratch};

fn p(d: &std::path::Path) -> String {
    d.display().to_string()
}

fn stage(dir: &std::path::Path, version: &str) -> support::Run {
    run(
        &[
            "stage",
            "--path",
            &p(dir),
            "--service",
            "payments",
            "--version",
            version,
        ],
        &[],
    )
}

#[test]
fn a_stale_index_lock_is_refused_before_the_commit() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let before = refs(&dir);
    let lock = dir.join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let r = stage(&dir, "1.1.0");
    r.assert_input_error("index.lock");
    let err = r.stdout.lines().find(|l| l.starts_with("::error")).unwrap();
    assert!(err.contains("delete"), "says how to clear it: {err}");
    assert_eq!(refs(&dir), before, "nothing written");
    assert!(lock.exists(), "someone else's lock is left alone");
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    // Once cleared, the same command does the whole job.
    let r = stage(&dir, "1.1.0");
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    assert!(
        std::fs::read_to_string(dir.join("overlays/dev/payments/values.yaml"))
            .unwrap()
            .contains("tag: \"1.1.0\"")
    );
}

#[test]
fn a_checked_out_pull_request_branch_is_not_rebuilt_under_the_work_tree() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = p(&dir);
    stage(&dir, "1.1.0").assert_ok();
    let promote = || {
        run(
            &["promote", "--path", &path, "--service", "payments", "--to", "qa"],
            &[],
        )
    };
    promote().assert_ok();
    let branch = "gitops-flow/qa/payments";
    git(&dir, &["checkout", "-q", branch]);
    // dev moves on (main is no longer checked out, so no work tree follows it).
    stage(&dir, "1.2.0").assert_ok();
    let before = refs(&dir);
    let r = promote();
    r.assert_input_error("checked out");
    assert!(r.stdout.contains(branch), "{}", r.stdout);
    assert_eq!(refs(&dir), before, "nothing written");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    // From another branch it goes through.
    git(&dir, &["checkout", "-q", "main"]);
    promote().assert_ok();
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    assert!(git(&dir, &["show", &format!("{branch}:overlays/qa/payments/values.yaml")]).contains("1.2.0"));
}

#[test]
fn main_checked_out_in_a_linked_worktree_moves_with_its_index_and_files() {
    let (t, dir) = scratch("make_file_repo.sh");
    git(&dir, &["checkout", "-q", "-b", "elsewhere"]);
    let linked = t.path().join("linked");
    git(&dir, &["worktree", "add", "-q", &p(&linked), "main"]);
    let r = stage(&dir, "1.1.0");
    r.assert_ok();
    assert_eq!(r.out("branch"), "main");
    assert_eq!(rev(&dir, "main"), r.out("commit"));
    assert_eq!(
        git(&linked, &["status", "--porcelain"]),
        "",
        "the linked work tree is clean"
    );
    assert!(
        std::fs::read_to_string(linked.join("overlays/dev/payments/values.yaml"))
            .unwrap()
            .contains("tag: \"1.1.0\"")
    );
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    // And run from inside the linked work tree.
    let r = stage(&linked, "1.2.0");
    r.assert_ok();
    assert_eq!(git(&linked, &["status", "--porcelain"]), "");
}

#[test]
fn five_parallel_direct_stages_one_writes_the_others_find_it_done() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let main = rev(&dir, "main");
    // Hold the index lock (as a slow `git add` would) until every run has read
    // main, so that all five race for the same commit.
    let lock = dir.join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let d = dir.clone();
            std::thread::spawn(move || stage(&d, "1.1.0"))
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::remove_file(&lock).unwrap();
    let runs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for r in &runs {
        r.assert_ok();
    }
    let winners: Vec<_> = runs.iter().filter(|r| r.out("changed") == "true").collect();
    assert_eq!(winners.len(), 1, "exactly one run committed");
    let commit = rev(&dir, "main");
    assert_eq!(winners[0].out("commit"), commit);
    assert_eq!(git(&dir, &["rev-parse", "main^"]), main, "one commit");
    for r in runs.iter().filter(|r| r.out("changed") == "false") {
        assert_eq!(r.out("commit"), "");
        assert!(r.stdout.contains("already at 1.1.0"), "{}", r.stdout);
    }
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
}

#[test]
fn without_origin_head_a_feature_branch_is_not_the_main_branch() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let main = rev(&dir, "main");
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(dir.join("charts/payments/extra.yaml"), "x: 1\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "feature work"]);
    let r = run(&["deploy", "--path", &p(&dir), "--service", "payments"], &[]);
    r.assert_ok();
    assert_eq!(r.out("revision"), main, "main's head, not the feature branch");
    assert_eq!(rev(&dir, "payments-staging"), main);
    // No main or master at all: a clear exit 2.
    git(&dir, &["branch", "-q", "-m", "main", "trunk"]);
    let before = refs(&dir);
    let r = run(&["deploy", "--path", &p(&dir), "--service", "payments"], &[]);
    r.assert_input_error("pass `branch`");
    assert_eq!(refs(&dir), before);
}
