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
            // Auto-merge is a state of the one pull request, not an object: enabling
            // it again after a lost answer changes nothing.
            assert!(
                fake.auto_merges().iter().all(|(n, _)| *n == pr.number),
                "{fault} {when:?}"
            );
            // The write whose answer was lost, then exactly one more (sent again:
            // a 422 "already exists" for the pull request, the same labels, the same
            // auto-merge); never a third.
            assert_eq!(
                writes_of(&fake, what),
                2,
                "{fault} {when:?}: {:#?}",
                fake.requests()
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.status))
                    .collect::<Vec<_>>()
            );
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
    for (n, (when, service)) in [(When::AfterApply, "payments"), (When::DropAfterApply, "orders")]
        .into_iter()
        .enumerate()
    {
        fake.fault_on("POST /api/v3/repos/acme/gitops/deployments ", when, 502);
        let r = jobs.run(
            &[
                ("command", "deploy"),
                ("service", service),
                ("revision", &head),
                ("deployments", "true"),
            ],
            &[],
        );
        r.assert_ok();
        let deployments = fake.deployments();
        assert_eq!(deployments.len(), n + 1, "{when:?}: one deployment per run");
        let d = &deployments[n];
        assert_eq!(d.statuses, ["in_progress", "success"], "{when:?}");
        assert_eq!(r.out("changed"), "true");
        assert_eq!(fake.rev(&format!("{service}-staging")).unwrap(), head);
    }
    fake.assert_clean();
}

#[test]
fn deployment_statuses_that_landed_before_the_answer_was_lost_are_recorded_once() {
    for state in ["in_progress", "success"] {
        for when in [When::AfterApply, When::DropAfterApply] {
            let (_seed, dir) = scratch("make_tag_repo.sh");
            let fake = FakeGitHub::start(&dir);
            let jobs = Jobs::new(&fake);
            let head = fake.rev("main").unwrap();
            fake.fault_on(&format!("\"state\":\"{state}\""), when, 502);
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
            let deployments = fake.deployments();
            assert_eq!(deployments.len(), 1, "{state} {when:?}");
            assert_eq!(deployments[0].statuses, ["in_progress", "success"], "{state} {when:?}");
            assert_eq!(r.out("changed"), "true");
            fake.assert_clean();
        }
    }
}

/// A re-run that updates the open pull request (`PATCH /pulls/{n}`: new title and
/// body): the update lands once, on the one pull request.
#[test]
fn a_pull_request_update_that_landed_before_the_answer_was_lost() {
    for when in [When::AfterApply, When::DropAfterApply] {
        let (fake, r, _seed) = promote_to_qa_with("nothing matches this", When::Instead);
        r.assert_ok();
        let number = r.out("pull-request-number").to_string();
        let jobs = Jobs::new(&fake);
        jobs.run(
            &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
            &[],
        )
        .assert_ok();
        fake.fault_on("PATCH /api/v3/repos/acme/gitops/pulls/", when, 502);
        let r = jobs.run(&[("command", "promote"), ("service", "payments"), ("to", "qa")], &[]);
        r.assert_ok();
        let pulls = fake.pulls();
        assert_eq!(pulls.len(), 1, "{when:?}: still one pull request");
        assert_eq!(pulls[0].title, "Promote payments 1.2.0 to qa", "{when:?}");
        assert_eq!(r.out("changed"), "true", "{when:?}");
        assert_eq!(r.out("pull-request-number"), number);
        assert_eq!(r.out("version"), "1.2.0");
        let patches = fake.requests().iter().filter(|r| r.method == "PATCH").count();
        assert_eq!(patches, 2, "{when:?}: the lost update, then one more");
        // Converged: the same run again changes nothing.
        let again = jobs.run(&[("command", "promote"), ("service", "payments"), ("to", "qa")], &[]);
        again.assert_ok();
        assert_eq!(again.out("changed"), "false", "{when:?}: {}", again.stdout);
        assert_eq!(fake.pulls().len(), 1);
        fake.assert_clean();
    }
}

/// `lock` writes twice: its commit on main, then the hold guard ref
/// (`refs/gitops-flow/holds`) moved to it. Either answer lost: one hold, one commit,
/// the guard at it, and a re-run that changes nothing.
#[test]
fn lock_writes_that_landed_before_the_answer_was_lost() {
    for fault in ["createCommitOnBranch", "updateRefs"] {
        for when in [When::AfterApply, When::DropAfterApply] {
            let (_seed, dir) = scratch("make_tag_repo.sh");
            let fake = FakeGitHub::start(&dir);
            let jobs = Jobs::new(&fake);
            let main = fake.rev("main").unwrap();
            fake.fault_on(fault, when, 502);
            let lock = [
                ("command", "lock"),
                ("environment", "production"),
                ("service", "payments"),
                ("reason", "incident 7"),
            ];
            let r = jobs.run(&lock, &[]);
            r.assert_ok();
            assert!(!r.stdout.contains("::warning"), "{fault} {when:?}: {}", r.stdout);
            let now = fake.rev("main").unwrap();
            assert_eq!(
                fake.git(&["rev-parse", &format!("{now}^")]),
                main,
                "{fault} {when:?}: one commit"
            );
            assert_eq!(r.out("changed"), "true", "{fault} {when:?}");
            assert_eq!(r.out("held"), "true");
            assert_eq!(r.out("commit"), now);
            assert_eq!(
                fake.rev("refs/gitops-flow/holds").unwrap(),
                now,
                "{fault} {when:?}: the guard"
            );
            let holds = fake.git(&["show", &format!("{now}:.gitops-flow/holds.yaml")]);
            assert_eq!(holds.matches("incident 7").count(), 1, "{holds}");
            let again = jobs.run(&lock, &[]);
            again.assert_ok();
            assert_eq!(again.out("changed"), "false", "{fault} {when:?}");
            assert_eq!(fake.rev("main").unwrap(), now);
            fake.assert_clean();
        }
    }
}
