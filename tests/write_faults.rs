//! Issue 9, section 10: every write the GitHub backend makes is exercised with
//! "the write landed, but the answer was lost" (a 502 after applying it, or a
//! dropped connection): one write, and outputs that say what happened.

mod support;

use support::fake_github::{FakeGitHub, When};
use support::{Jobs, scratch};

fn writes_of(fake: &FakeGitHub, what: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.graphql.iter().any(|f| f == what) || (r.method == "POST" && r.path.ends_with(what)))
        .count()
}

#[test]
fn update_refs_that_landed_before_the_answer_was_lost() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    let old = fake.rev("payments-staging").unwrap();
    for when in [When::AfterApply, When::DropAfterApply] {
        fake.fault_on("updateRefs", when, 502);
        let service = if when == When::AfterApply { "payments" } else { "orders" };
        let r = jobs.run(&[("command", "deploy"), ("service", service), ("revision", &head)], &[]);
        r.assert_ok();
        assert_eq!(r.out("changed"), "true", "{when:?}: {}", r.stdout);
        assert_eq!(r.out("revision"), head);
        assert_eq!(r.out("previous-revision"), old);
        assert_eq!(fake.rev(&format!("{service}-staging")).unwrap(), head);
        assert_eq!(fake.rev(&format!("{service}-staging-rollback")).unwrap(), old);
    }
    fake.assert_clean();
}

#[test]
fn a_commit_that_landed_before_the_answer_was_lost_is_made_once() {
    let (_seed, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    for (when, version) in [(When::AfterApply, "1.1.0"), (When::DropAfterApply, "1.2.0")] {
        let main = fake.rev("main").unwrap();
        fake.fault_on("createCommitOnBranch", when, 502);
        let r = jobs.run(
            &[("command", "stage"), ("service", "payments"), ("version", version)],
            &[],
        );
        r.assert_ok();
        let now = fake.rev("main").unwrap();
        assert_eq!(
            fake.git(&["rev-parse", &format!("{now}^")]),
            main,
            "{when:?}: one commit"
        );
        assert_eq!(r.out("changed"), "true");
        assert_eq!(r.out("commit"), now);
        assert!(fake.is_verified(&now));
    }
    fake.assert_clean();
}

/// dev has 1.1.0, so promoting to qa opens a pull request (auto-merge, labelled).
fn promote_to_qa_with(fault: &str, when: When) -> (FakeGitHub, support::Run, tempfile::TempDir) {
    let (seed, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let r = {
        let jobs = Jobs::new(&fake);
        jobs.run(
            &[("command", "stage"), ("service", "payments"), ("version", "1.1.0")],
            &[],
        )
        .assert_ok();
        fake.fault_on(fault, when, 502);
        jobs.run(
            &[
                ("command", "promote"),
                ("service", "payments"),
                ("to", "qa"),
                ("labels", "gitops,qa"),
            ],
            &[],
        )
    };
    (fake, r, seed)
}

#[test]
fn pull_request_writes_that_landed_before_the_answer_was_lost() {
    for (fault, what) in [
        ("POST /api/v3/repos/acme/gitops/pulls ", "/pulls"),
        ("/labels", "/labels"),
        ("enablePullRequestAutoMerge", "enablePullRequestAutoMerge"),
    ] {
        for when in [When::AfterApply, When::DropAfterApply] {
            let (fake, r, _seed) = promote_to_qa_with(fault, when);
            r.assert_ok();
            let pulls = fake.pulls();
            assert_eq!(pulls.len(), 1, "{fault} {when:?}: one pull request");
            let pr = &pulls[0];
            assert_eq!(r.out("changed"), "true");
            assert_eq!(r.out("pull-request-number"), pr.number.to_string());
            assert_eq!(r.out("branch"), "gitops-flow/qa/payments");
            assert_eq!(pr.labels, ["gitops", "qa"], "{fault} {when:?}");
            assert!(pr.auto_merge, "{fault} {when:?}");
            assert!(writes_of(&fake, what) >= 1);
            fake.assert_clean();
        }
    }
}

#[test]
fn a_deployment_that_landed_before_the_answer_was_lost_is_recorded_once() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    fake.fault_on("POST /api/v3/repos/acme/gitops/deployments ", When::AfterApply, 502);
    let r = jobs.run(
        &[
            ("command", "deploy"),
            ("service", "payments"),
            ("revision", &head),
            ("deployments", "true"),
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(fake.deployments().len(), 1);
    assert_eq!(fake.deployments()[0].statuses, ["in_progress", "success"]);
}
