//! Issue 11: requests per command on the github backend (fresh shallow tag-less
//! checkout per job, as actions/checkout leaves it). Counts, not times.

mod support;

use support::fake_github::FakeGitHub;
use support::{Jobs, scratch};

fn log(fake: &FakeGitHub) -> Vec<String> {
    fake.requests()
        .iter()
        .map(|r| format!("{} {} {:?}", r.method, r.path, r.graphql))
        .collect()
}

#[test]
fn file_mode_stage_and_pull_request_promote() {
    let (_s, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    fake.clear_log();
    j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    )
    .assert_ok();
    assert!(fake.requests().len() <= 2, "direct stage: {:?}", log(&fake));
    // A pull request from a new branch: the read, the branch, the commit, the pull
    // request and auto-merge — no lookup of an open pull request for a branch that
    // did not exist.
    fake.clear_log();
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    assert_eq!(p.out("pull-request-number"), "1");
    assert!(
        fake.requests().len() <= 5,
        "promote through a pull request: {:?}",
        log(&fake)
    );
    // Re-run: the branch exists, its open pull request is found and reused.
    fake.clear_log();
    let again = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    again.assert_ok();
    assert_eq!(again.out("pull-request-number"), "1");
    assert_eq!(fake.pulls().len(), 1, "one pull request");
    fake.assert_clean();
}

#[test]
fn deploy_after_a_merged_stage_pull_request_reads_once() {
    let (_s, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    )
    .assert_ok();
    let merged = fake.merge_pull(1);
    let ev = j.dir().join("ev.json");
    std::fs::write(&ev, fake.pull_event(1).to_string()).unwrap();
    fake.clear_log();
    let d = j.run(
        &[("command", "deploy")],
        &[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_EVENT_PATH", &ev.display().to_string()),
        ],
    );
    d.assert_ok();
    assert_eq!(fake.rev("payments-staging").unwrap(), merged);
    // The service comes from the event's pull request metadata, so its tags are in
    // the first read: one read and one guarded move.
    assert_eq!(fake.requests().len(), 2, "deploy: {:?}", log(&fake));
    fake.assert_clean();
}

/// The first read also works when the main branch is named (`branch` input: the
/// comparisons sit on that ref, not on the default branch) and for annotated tags
/// (the chart is read under the tag object's target).
#[test]
fn named_branch_and_annotated_tags_are_read_in_the_first_query() {
    let (_s, dir) = scratch("make_tag_repo.sh");
    let head = support::rev(&dir, "main");
    support::git(
        &dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "tag",
            "-f",
            "-a",
            "-m",
            "annotated",
            "payments-staging",
            &head,
        ],
    );
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    fake.clear_log();
    let p = j.run(
        &[("command", "promote"), ("service", "payments"), ("branch", "main")],
        &[],
    );
    p.assert_ok();
    assert_eq!(p.out("revision"), head);
    assert_eq!(p.out("version"), "1.0.0");
    assert_eq!(fake.rev("payments-production").unwrap(), head);
    assert_eq!(fake.requests().len(), 2, "promote: {:?}", log(&fake));
    // A tag that is not on main is refused before anything moves, from the same read.
    let side = fake.git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit-tree",
        &fake.git(&["rev-parse", &format!("{head}^{{tree}}")]),
        "-m",
        "side",
    ]);
    fake.git(&["update-ref", "refs/tags/orders-staging", &side]);
    let r = j.run(
        &[("command", "promote"), ("service", "orders"), ("branch", "main")],
        &[],
    );
    r.assert_input_error("main");
    assert_ne!(fake.rev("orders-production").unwrap(), side);
    fake.assert_clean();
}

/// A comparison GitHub cannot make in the first query (a null `compare` with a
/// NOT_FOUND field error) does not fail the run: ancestry is asked through REST.
#[test]
fn an_unresolvable_compare_falls_back_to_rest() {
    let (_s, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    fake.set_compare_unresolvable(true);
    let j = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    j.run(
        &[("command", "deploy"), ("service", "payments"), ("revision", &head)],
        &[],
    )
    .assert_ok();
    // main moves on: whether staging's commit is on main must really be asked.
    fake.advance_main("later");
    fake.clear_log();
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    assert_eq!(fake.rev("payments-production").unwrap(), head);
    assert!(
        fake.requests().iter().any(|r| r.path.contains("/compare/")),
        "ancestry through REST: {:?}",
        log(&fake)
    );
    fake.assert_clean();
}
