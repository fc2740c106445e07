//! Issue 11: requests per command on the github backend (fresh shallow tag-less
//! checkout per job, as actions/checkout leaves it). Counts, not times.

mod support;

use support::fake_github::FakeGitHub;
use support::{Jobs, git, scratch};

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
    let head = support::deploy_payments(&fake);
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

/// Issue 10: `report` of file-tracked environments on the GitHub backend, with a
/// shallow checkout or none at all, walks the version files' histories together (one
/// GraphQL query a page for up to 20 files), not one history query a cell — and
/// gives each cell the revision the local backend gives: the last change of its
/// *value*, not of its file.
#[test]
fn file_mode_report_walks_histories_together() {
    let (_s, dir) = scratch("make_file_repo.sh");
    let n = 30;
    let commit = |msg: &str| {
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-qm", msg]);
        support::rev(&dir, "HEAD")
    };
    let values = |env: &str, i: usize, replicas: u32, tag: &str| {
        let path = dir.join(format!("apps/{env}/svc{i}.yaml"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!("replicaCount: {replicas}\nimage:\n  repository: ghcr.io/acme/svc{i}\n  tag: \"{tag}\"\n"),
        )
        .unwrap();
    };
    let mut config = std::fs::read_to_string(dir.join("gitops-flow.yaml")).unwrap();
    for i in 0..n {
        config.push_str(&format!(
            "  svc{i}:\n    version:\n      - file: apps/{{env}}/svc{i}.yaml\n        key: image.tag\n"
        ));
        for env in ["dev", "qa", "prod"] {
            values(env, i, 1, "1.0.0");
        }
    }
    std::fs::write(dir.join("gitops-flow.yaml"), &config).unwrap();
    let created = commit("svc0..svc29 at 1.0.0");
    for i in 0..10 {
        values("dev", i, 1, "1.1.0");
    }
    let bumped = commit("dev: svc0..svc9 to 1.1.0");
    // A change of the files that leaves the values as they are.
    for i in 0..n {
        values("dev", i, 2, if i < 10 { "1.1.0" } else { "1.0.0" });
    }
    let scaled = commit("dev: two replicas each");
    values("qa", 5, 1, "1.1.0");
    let qa = commit("qa: svc5 to 1.1.0");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);

    let local = support::run(&["report", "--path", &dir.display().to_string()], &[]);
    local.assert_ok();
    let local: serde_json::Value = serde_json::from_str(local.out("report")).unwrap();
    assert_eq!(local["svc3"]["dev"]["version"], "1.1.0");
    assert_eq!(
        local["svc3"]["dev"]["revision"],
        bumped.as_str(),
        "the value's change, not the file's"
    );
    assert_eq!(local["svc13"]["dev"]["revision"], created.as_str(), "not {scaled}");
    assert_eq!(local["svc5"]["qa"]["revision"], qa.as_str());

    let cells = (n + 3) * 3;
    // A shallow checkout (as actions/checkout leaves it): history through the API.
    fake.clear_log();
    let r = j.run(&[("command", "report")], &[]);
    r.assert_ok();
    let shallow_requests = fake.requests().len();
    let report: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(report, local, "github (shallow checkout) and local backends agree");
    // No checkout at all: only the configuration is there.
    let bare_ws = tempfile::tempdir().unwrap();
    std::fs::write(bare_ws.path().join("gitops-flow.yaml"), &config).unwrap();
    fake.clear_log();
    let r = j.run(
        &[("command", "report")],
        &[("GITHUB_WORKSPACE", &bare_ws.path().display().to_string())],
    );
    r.assert_ok();
    let requests = fake.requests().len();
    let report: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(report, local, "github (no checkout) and local backends agree");
    // One history query a page for 20 files (here one page), a read of the refs and
    // the holds: not one history query a cell.
    let bound = 3 + cells.div_ceil(20);
    assert!(
        requests <= bound && shallow_requests <= bound,
        "{requests} requests without a checkout, {shallow_requests} with a shallow one, for {cells} cells (at most {bound}): {:?}",
        log(&fake)
    );
    fake.assert_clean();
}

/// Issue 11: `status` in file mode with the default commit-status gate, one poll
/// (the checks are there): the state read and the statuses and check runs of the
/// expected revision in at most two requests, not a history read plus two REST
/// listings. Also when the checks are reported on a later main head (Flux).
#[test]
fn file_mode_status_with_the_commit_status_gate_costs_two_requests() {
    let (_s, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    )
    .assert_ok();
    let staged = fake.rev("main").unwrap();
    fake.add_status(&staged, "kustomization/payments-dev/0c9c2e41", "success");
    fake.add_check(&staged, "lint", "completed", Some("failure"));
    let status = || {
        j.run(
            &[
                ("command", "status"),
                ("service", "payments"),
                ("environment", "dev"),
                ("timeout", "5"),
            ],
            &[("GITOPS_FLOW_POLL_MS", "20")],
        )
    };
    fake.clear_log();
    let r = status();
    r.assert_ok();
    assert_eq!(r.out("revision"), staged);
    // The refs, and the history with the statuses and check runs of its commits.
    assert_eq!(fake.requests().len(), 2, "status: {:?}", log(&fake));
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.path.contains("/status") && !r.path.contains("/check-runs")),
        "{:?}",
        log(&fake)
    );
    // A new version, then main moves on; Flux reports on the newest commit only.
    j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.3.0")],
        &[],
    )
    .assert_ok();
    let staged = fake.rev("main").unwrap();
    let newest = fake.advance_main("unrelated");
    fake.add_check(&newest, "kustomization/payments-dev/ffff", "completed", Some("success"));
    fake.clear_log();
    let r = status();
    r.assert_ok();
    assert_eq!(r.out("revision"), staged);
    assert!(r.stdout.contains(&newest[..7]), "{}", r.stdout);
    assert!(
        fake.requests().len() <= 2,
        "status, checks on the head: {:?}",
        log(&fake)
    );
    fake.assert_clean();
}
