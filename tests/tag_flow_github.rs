//! The tag flow end to end on the github backend, against the fake GitHub.

mod support;

use support::fake_github::FakeGitHub;
use support::{Jobs, git, scratch};

struct Setup {
    fake: FakeGitHub,
    _seed: tempfile::TempDir,
}

fn setup() -> Setup {
    let (seed, dir) = scratch("make_tag_repo.sh");
    Setup {
        fake: FakeGitHub::start(&dir),
        _seed: seed,
    }
}

impl Setup {
    fn jobs(&self) -> Jobs<'_> {
        Jobs::new(&self.fake)
    }

    /// Write requests in the log (GraphQL mutations, REST other than GET).
    fn writes(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method != "GET" && !r.graphql.iter().all(|f| f == "repository"))
            .count()
    }
}

#[test]
fn stage_opens_a_pull_request_with_a_verified_commit_and_updates_it() {
    let s = setup();
    let j = s.jobs();
    let main = s.fake.rev("main").unwrap();
    s.fake.clear_log();
    let r = j.run(
        &[
            ("command", "stage"),
            ("service", "payments"),
            ("version", "1.2.0"),
            ("labels", "gitops, stage"),
            ("auto-merge", "true"),
        ],
        &[],
    );
    r.assert_ok();
    let stage_requests = s.fake.requests().len();
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("pull-request-number"), "1");
    assert!(r.out("pull-request-url").ends_with("/acme/gitops/pull/1"));
    let head = s.fake.rev("refs/heads/gitops-flow/stage/payments").unwrap();
    assert_eq!(r.out("commit"), head);
    assert!(
        s.fake.is_verified(&head),
        "the commit was made by the API (signed by GitHub)"
    );
    assert_eq!(s.fake.git(&["rev-parse", &format!("{head}^")]), main);
    let diff = s.fake.git(&["diff", "-U0", &main, &head]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert_eq!(changed, ["-appVersion: \"1.0.0\"", "+appVersion: \"1.2.0\""]);
    let pulls = s.fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].labels, ["gitops", "stage"]);
    assert!(pulls[0].auto_merge);
    assert!(
        pulls[0].body.contains("\"service\":\"payments\""),
        "metadata in the body: {}",
        pulls[0].body
    );
    assert!(
        stage_requests <= 7,
        "stage took {stage_requests} requests: {:?}",
        s.fake
            .requests()
            .iter()
            .map(|r| format!("{} {} {:?}", r.method, r.path, r.graphql))
            .collect::<Vec<_>>()
    );

    // Same version: nothing written.
    s.fake.clear_log();
    let again = j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    );
    assert_eq!(again.assert_ok().out("changed"), "false");
    assert_eq!(s.writes(), 0, "{:?}", s.fake.requests());
    // New version: same branch and pull request, updated.
    let next = j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.3.0")],
        &[],
    );
    next.assert_ok();
    assert_eq!(next.out("pull-request-number"), "1");
    let pulls = s.fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].title.contains("1.3.0"), "{}", pulls[0].title);
    let head2 = s.fake.rev("refs/heads/gitops-flow/stage/payments").unwrap();
    assert_eq!(s.fake.git(&["rev-parse", &format!("{head2}^")]), main);
    assert!(s.fake.is_verified(&head2));
    s.fake.assert_clean();
}

#[test]
fn deploy_promote_rollback_within_a_few_requests_each() {
    let s = setup();
    let j = s.jobs();
    let initial = s.fake.rev("payments-staging").unwrap();
    j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.2.0")],
        &[],
    )
    .assert_ok();
    let merged = s.fake.merge_pull(1);
    let event = j.dir().join("event.json");
    std::fs::write(&event, s.fake.pull_event(1).to_string()).unwrap();
    let ev = event.display().to_string();

    s.fake.clear_log();
    let d = j.run(
        &[("command", "deploy")],
        &[("GITHUB_EVENT_NAME", "pull_request"), ("GITHUB_EVENT_PATH", &ev)],
    );
    d.assert_ok();
    let deploy_requests = s.fake.requests().len();
    assert_eq!(d.out("service"), "payments");
    assert_eq!(s.fake.rev("payments-staging").unwrap(), merged);
    assert_eq!(s.fake.rev("payments-staging-rollback").unwrap(), initial);

    s.fake.clear_log();
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    let promote_requests = s.fake.requests().len();
    assert_eq!(p.out("changed"), "true");
    assert_eq!(s.fake.rev("payments-production").unwrap(), merged);
    assert_eq!(s.fake.rev("payments-production-rollback").unwrap(), initial);

    s.fake.clear_log();
    let again = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    assert_eq!(again.assert_ok().out("changed"), "false");
    assert_eq!(s.writes(), 0);
    assert_eq!(
        s.fake.rev("payments-production-rollback").unwrap(),
        initial,
        "rollback point kept"
    );

    s.fake.clear_log();
    let rb = j.run(&[("command", "rollback"), ("service", "payments")], &[]);
    rb.assert_ok();
    let rollback_requests = s.fake.requests().len();
    assert_eq!(rb.out("previous-revision"), merged);
    assert_eq!(s.fake.rev("payments-production").unwrap(), initial);

    let report = j.run(&[("command", "report")], &[]);
    report.assert_ok();
    let j: serde_json::Value = serde_json::from_str(report.out("report")).unwrap();
    assert_eq!(j["payments"]["staging"]["version"], "1.2.0");
    assert_eq!(j["payments"]["production"]["version"], "1.0.0");
    assert!(
        report.summary.contains("/acme/gitops/commit/"),
        "links to GitHub: {}",
        report.summary
    );

    println!("requests: deploy={deploy_requests} promote={promote_requests} rollback={rollback_requests}");
    // deploy and promote: one more than rollback, the look at the main branch right
    // after the tag update that lets a lock which landed meanwhile undo the move.
    assert!(deploy_requests <= 4, "deploy: {deploy_requests}");
    assert!(promote_requests <= 4, "promote: {promote_requests}");
    assert!(rollback_requests <= 3, "rollback: {rollback_requests}");
    s.fake.assert_clean();
}

#[test]
fn faults_are_retried_to_the_same_end_state() {
    let s = setup();
    let j = s.jobs();
    let head = s.fake.rev("main").unwrap();
    // 502s on the first requests of every command, and a secondary rate limit.
    s.fake.fail_next(2, 502, None);
    j.run(
        &[("command", "deploy"), ("service", "payments"), ("revision", &head)],
        &[],
    )
    .assert_ok();
    assert_eq!(s.fake.rev("payments-staging").unwrap(), head);
    s.fake.fail_next(1, 403, Some(1));
    s.fake.fail_next(1, 502, None);
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    assert_eq!(s.fake.rev("payments-production").unwrap(), head);
    s.fake.fail_next(3, 500, None);
    let st = j.run(
        &[("command", "stage"), ("service", "orders"), ("version", "2.2.0")],
        &[],
    );
    st.assert_ok();
    assert_eq!(s.fake.pulls().len(), 1);
    // Too many failures: exit 1, with the request named, nothing half-written.
    let before = s.fake.refs();
    s.fake.fail_next(20, 502, None);
    let r = j.run(&[("command", "rollback"), ("service", "payments")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("::error::") && r.stdout.contains("failed after"),
        "{}",
        r.stdout
    );
    assert_eq!(s.fake.refs(), before);
    s.fake.assert_clean();
}

#[test]
fn a_concurrent_tag_move_is_never_overwritten() {
    let s = setup();
    let j = s.jobs();
    let head = s.fake.rev("main").unwrap();
    let initial = s.fake.rev("payments-production").unwrap();
    j.run(
        &[("command", "deploy"), ("service", "payments"), ("revision", &head)],
        &[],
    )
    .assert_ok();
    // Someone else moves production to the same revision between our read and our write.
    let bare = s.fake.bare.clone();
    s.fake.before_write("updateRefs", move || {
        let st = std::process::Command::new("git")
            .args(["update-ref", "refs/tags/payments-production", &head])
            .current_dir(&bare)
            .status()
            .unwrap();
        assert!(st.success());
    });
    let r = j.run(
        &[("command", "promote"), ("service", "payments"), ("to", "production")],
        &[],
    );
    // Our compare-and-swap lost; the other writer did not set the rollback tag that
    // ours would have: exit 1 naming the conflict, and the rollback tag is never
    // set from a stale read.
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(s.fake.rev("payments-production").unwrap(), s.fake.rev("main").unwrap());
    assert!(r.stdout.contains("changed concurrently"), "{}", r.stdout);
    assert!(s.fake.rev("payments-production-rollback").is_none());
    assert_eq!(r.out("changed"), "false");
    // A conflicting move to a different revision: exit 1 naming the conflict, the other write stands.
    j.run(
        &[("command", "rollback"), ("service", "payments"), ("revision", &initial)],
        &[],
    )
    .assert_ok();
    let main = s.fake.rev("main").unwrap();
    let tree = s.fake.git(&["rev-parse", &format!("{main}^{{tree}}")]);
    let x = s.fake.git(&[
        "-c",
        "user.name=x",
        "-c",
        "user.email=x@example.com",
        "commit-tree",
        &tree,
        "-p",
        &main,
        "-m",
        "hotfix",
    ]);
    s.fake.git(&["update-ref", "refs/heads/main", &x]);
    let rollback_before = s.fake.rev("payments-production-rollback");
    let bare = s.fake.bare.clone();
    let x2 = x.clone();
    s.fake.before_write("updateRefs", move || {
        let st = std::process::Command::new("git")
            .args(["update-ref", "refs/tags/payments-production", &x2])
            .current_dir(&bare)
            .status()
            .unwrap();
        assert!(st.success());
    });
    let r = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("changed concurrently") && r.stdout.contains("payments-production"),
        "{}",
        r.stdout
    );
    assert_eq!(
        s.fake.rev("payments-production").unwrap(),
        x,
        "the other writer's move stands"
    );
    assert_eq!(
        s.fake.rev("payments-production-rollback"),
        rollback_before,
        "nothing half-written"
    );
    s.fake.assert_clean();
}

#[test]
fn bad_input_on_github_writes_nothing() {
    let s = setup();
    let j = s.jobs();
    let before = s.fake.refs();
    j.run(&[("command", "promote"), ("service", "payments"), ("to", "qa")], &[])
        .assert_input_error("unknown environment");
    j.run(&[("command", "rollback"), ("service", "payments")], &[])
        .assert_input_error("no rollback tag");
    j.run(
        &[
            ("command", "rollback"),
            ("service", "payments"),
            ("revision", "0123456789abcdef0123456789abcdef01234567"),
        ],
        &[],
    )
    .assert_input_error("not found");
    j.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.0 beta")],
        &[],
    )
    .assert_input_error("not valid");
    let r = j.run(
        &[("command", "report"), ("repository", "acme/gitops")],
        &[("INPUT_TOKEN", "")],
    );
    // GITHUB_TOKEN absent and token empty: the github backend says what is missing.
    r.assert_input_error("needs a token");
    assert_eq!(s.fake.refs(), before);
    assert_eq!(s.writes(), 0);
    s.fake.assert_clean();
}

/// Issue 11: the normal case — staging's tag behind main — costs one read and one
/// atomic write, with the `version` and `previous-version` outputs filled in; so do
/// `deploy` and `rollback`.
#[test]
fn tag_moves_cost_one_read_and_one_write_when_the_tag_is_behind_main() {
    let s = setup();
    let j = s.jobs();
    let initial = s.fake.rev("payments-staging").unwrap();
    let head = s.fake.rev("main").unwrap();
    s.fake.clear_log();
    let d = j.run(
        &[("command", "deploy"), ("service", "payments"), ("revision", &head)],
        &[],
    );
    d.assert_ok();
    let deploy = s.fake.requests().len();
    // main moves on: staging's tag is now behind main.
    s.fake.advance_main("later");

    s.fake.clear_log();
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    let promote = s.fake.requests().len();
    assert_eq!(p.out("changed"), "true");
    assert_eq!(p.out("revision"), head);
    assert_eq!(p.out("version"), "1.0.0");
    assert_eq!(p.out("previous-version"), "1.0.0");
    assert_eq!(s.fake.rev("payments-production").unwrap(), head);
    assert_eq!(s.fake.rev("payments-production-rollback").unwrap(), initial);

    s.fake.clear_log();
    let rb = j.run(&[("command", "rollback"), ("service", "payments")], &[]);
    rb.assert_ok();
    let rollback = s.fake.requests().len();
    assert_eq!(rb.out("revision"), initial);
    assert_eq!(s.fake.rev("payments-production").unwrap(), initial);

    let log: Vec<String> = s
        .fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    println!("requests: deploy={deploy} promote={promote} rollback={rollback}");
    // One read and one atomic write; the write also checks that no lock landed since
    // the holds were read (the hold guard ref, issue 14), without a read after it.
    assert_eq!(promote, 2, "promote: {promote} requests");
    assert_eq!(deploy, 2, "deploy: {deploy} requests");
    assert!(rollback <= 2, "rollback: {rollback} requests: {log:?}");
    s.fake.assert_clean();
}

/// Issue 11: `report` reads every cell's chart in batches (250 files a GraphQL
/// request), not one request per cell: at most 1 + ⌈cells / 100⌉ requests on a
/// shallow, tag-less checkout.
#[test]
fn report_reads_cells_in_batches() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    // More charts than the contents API lists (1,000).
    let n: usize = 1001;
    let write = |minor: usize| {
        for i in 0..n {
            let chart = dir.join(format!("charts/svc{i}"));
            std::fs::create_dir_all(&chart).unwrap();
            std::fs::write(
                chart.join("Chart.yaml"),
                format!("apiVersion: v2\nname: svc{i}\nversion: 0.1.0\nappVersion: \"{i}.{minor}.0\"\n"),
            )
            .unwrap();
        }
        git(&dir, &["add", "-A"]);
        git(
            &dir,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-qm",
                &format!("charts {minor}"),
            ],
        );
        support::rev(&dir, "HEAD")
    };
    let (old, new) = (write(0), write(1));
    let refs: String = (1..n)
        .map(|i| format!("create refs/tags/svc{i}-staging {new}\ncreate refs/tags/svc{i}-production {old}\n"))
        .collect::<String>()
        + &format!("create refs/tags/svc0-staging {new}\n");
    let mut update = std::process::Command::new("git")
        .args(["update-ref", "--stdin"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(update.stdin.as_mut().unwrap(), refs.as_bytes()).unwrap();
    assert!(update.wait().unwrap().success());
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    fake.clear_log();
    let r = j.run(&[("command", "report")], &[]);
    r.assert_ok();
    let requests = fake.requests().len();
    let report: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(report["svc7"]["staging"]["version"], "7.1.0");
    assert_eq!(report["svc7"]["production"]["version"], "7.0.0");
    assert_eq!(report["svc0"]["production"]["missing"], true);
    let cells = (n + 2) * 2;
    assert!(
        requests <= 1 + cells.div_ceil(100),
        "{requests} requests for {cells} cells"
    );
    assert_eq!(report.as_object().unwrap().len(), n + 2, "every chart listed");
    // The batched reads answer as the local backend does on the same repository.
    let local = support::run(&["report", "--path", &dir.display().to_string()], &[]);
    local.assert_ok();
    let local: serde_json::Value = serde_json::from_str(local.out("report")).unwrap();
    assert_eq!(local, report, "github and local backends agree");

    // Without a checkout every read goes to the API: the listing too, whole.
    let empty = tempfile::tempdir().unwrap();
    fake.clear_log();
    let r = j.run(
        &[("command", "report")],
        &[("GITHUB_WORKSPACE", &empty.path().display().to_string())],
    );
    r.assert_ok();
    let report: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(report, local, "every chart listed and read through the API");
    let requests = fake.requests().len();
    assert!(
        requests <= 1 + cells.div_ceil(100),
        "{requests} requests for {cells} cells without a checkout"
    );
    fake.assert_clean();
}

/// Issue 11: a file over 1 MB, which the contents API sends without content, is read
/// through the blob API — never taken for an empty file.
#[test]
fn a_chart_over_one_megabyte_is_read_whole() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let chart = dir.join("charts/payments/Chart.yaml");
    let text = std::fs::read_to_string(&chart).unwrap();
    let padding: String = (0..30_000)
        .map(|i| format!("# padding line {i:08} of a very long comment\n"))
        .collect();
    std::fs::write(&chart, format!("{padding}{}", text.replace("1.0.0", "1.5.0"))).unwrap();
    git(
        &dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qam",
            "big chart",
        ],
    );
    let head = support::rev(&dir, "HEAD");
    git(&dir, &["tag", "-f", "payments-staging", &head]);
    // main moves on, so the staging tag's commit is not in the shallow checkout.
    std::fs::write(dir.join("README.md"), "later\n").unwrap();
    git(
        &dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qam",
            "later",
        ],
    );
    let fake = FakeGitHub::start(&dir);
    let j = Jobs::new(&fake);
    let p = j.run(&[("command", "promote"), ("service", "payments")], &[]);
    p.assert_ok();
    assert_eq!(p.out("version"), "1.5.0");
    assert!(
        fake.requests().iter().any(|r| r.path.contains("/git/blobs/")),
        "read through the blob API"
    );
    fake.assert_clean();
}
