//! Health gates, automatic rollback and GitHub deployments, through the real
//! binary against the fake Argo CD and the fake GitHub.

mod support;

use support::fake_argocd::{ARGO_TOKEN, AppState, FakeArgo};
use support::fake_github::FakeGitHub;
use support::{Jobs, git, git_raw, rev, run, scratch};

const FAST: [(&str, &str); 1] = [("GITOPS_FLOW_POLL_MS", "20")];

fn argo_args<'a>(argo: &'a FakeArgo, path: &'a str) -> Vec<&'a str> {
    vec![
        "--path",
        path,
        "--argocd-server",
        &argo.url,
        "--argocd-token",
        ARGO_TOKEN,
        "--timeout",
        "2",
    ]
}

#[test]
fn argo_healthy_only_at_the_expected_revision() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let old = rev(&dir, "payments-staging");
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    // OutOfSync on the old revision -> Progressing at the new one -> Healthy.
    let argo = FakeArgo::start(
        "payments-staging",
        vec![
            AppState::new("Healthy", "OutOfSync", &old, ""),
            AppState::new("Progressing", "Synced", &head, "Running"),
            AppState::new("Healthy", "Synced", &head, "Running"),
            AppState::new("Healthy", "Synced", &head, "Succeeded"),
        ],
    );
    let mut a = vec!["status", "--service", "payments", "--environment", "staging"];
    a.extend(argo_args(&argo, &path));
    let r = run(&a, &FAST);
    r.assert_ok();
    assert_eq!(r.out("revision"), head);
    let reqs = argo.requests();
    assert_eq!(reqs.len(), 4, "waited through the sync operation: {reqs:?}");
    assert!(
        reqs[0].ends_with("?refresh=normal") && !reqs[1].contains("refresh"),
        "{reqs:?}"
    );
    assert!(r.stdout.contains("::group::health gate"), "{}", r.stdout);
}

#[test]
fn argo_healthy_on_the_old_revision_does_not_pass() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let old = rev(&dir, "payments-staging");
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    let argo = FakeArgo::start(
        "payments-staging",
        vec![AppState::new("Healthy", "Synced", &old, "Succeeded")],
    );
    let mut a = vec!["status", "--service", "payments", "--environment", "staging"];
    a.extend(argo_args(&argo, &path));
    let start = std::time::Instant::now();
    let r = run(&a, &FAST);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let err = r.stdout.lines().find(|l| l.starts_with("::error::")).unwrap();
    assert!(
        err.contains("timed out") && err.contains("health=Healthy sync=Synced") && err.contains(&old[..7]),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 20);
}

#[test]
fn argo_degraded_fails_fast_and_rolls_back_tag_mode() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = dir.display().to_string();
    let initial = rev(&dir, "payments-production");
    let head = rev(&dir, "main");
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    let argo = FakeArgo::start(
        "payments-production",
        vec![
            AppState::new("Progressing", "Synced", &head, ""),
            AppState::new("Degraded", "Synced", &head, "Succeeded"),
        ],
    );
    let mut a = vec!["promote", "--service", "payments", "--wait", "--rollback-on-failure"];
    a.extend(argo_args(&argo, &path));
    let r = run(&a, &FAST);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(argo.requests().len(), 2, "degraded at the new revision fails at once");
    assert_eq!(rev(&dir, "payments-production"), initial, "rolled back");
    assert!(r.stdout.contains("rolled `production` back"), "{}", r.stdout);
    assert!(r.summary.contains("Rolled back"), "{}", r.summary);
    assert_eq!(r.out("rollback-revision"), initial);
    // The rollback holds production, so the next promotion cannot undo it.
    assert!(r.stdout.contains("held `payments` in `production`"), "{}", r.stdout);
    let again = run(&["promote", "--path", &path, "--service", "payments"], &[]);
    assert_eq!((again.code, again.out("held")), (1, "true"), "{}", again.stdout);
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
    // Without rollback-on-failure the tag stays and the error says how to roll back.
    run(&["promote", "--path", &path, "--service", "payments"], &[]).assert_ok();
    let mut a = vec!["status", "--service", "payments"];
    a.extend(argo_args(&argo, &path));
    let r = run(&a, &FAST);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("rollback-on-failure"), "{}", r.stdout);
    assert_eq!(rev(&dir, "payments-production"), head);
}

#[test]
fn rollback_on_failure_in_file_mode() {
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = dir.display().to_string();
    run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.1.0"],
        &[],
    )
    .assert_ok();
    // A direct commit to dev; Argo CD syncs it and it degrades.
    let head_before = rev(&dir, "main");
    let s = run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.2.0"],
        &[],
    );
    s.assert_ok();
    let commit = s.out("commit").to_string();
    let argo = FakeArgo::start("payments-dev", vec![AppState::new("Degraded", "Synced", &commit, "")]);
    let mut a = vec![
        "status",
        "--service",
        "payments",
        "--environment",
        "dev",
        "--rollback-on-failure",
    ];
    a.extend(argo_args(&argo, &path));
    let r = run(&a, &FAST);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        git_raw(&dir, &["show", "HEAD:overlays/dev/payments/values.yaml"]).contains("tag: \"1.1.0\""),
        "back to the previous value"
    );
    // The rollback, then the hold that keeps it (hold-on-rollback, the default).
    assert!(git(&dir, &["log", "-1", "--format=%B", "HEAD^"]).contains("Gitops-Flow-Command: rollback"));
    assert!(git(&dir, &["log", "-1", "--format=%B"]).contains("Gitops-Flow-Command: lock"));
    assert_ne!(rev(&dir, "main"), head_before);
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
}

#[test]
fn statuses_gate_and_deployments_on_github() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    let fast = [("GITOPS_FLOW_POLL_MS", "20"), ("GITHUB_RUN_ID", "42")];
    // Flux's notification-controller context, and an unrelated failing check.
    fake.add_status(&head, "kustomization/payments-staging/0c9c2e41", "pending");
    fake.add_status(&head, "kustomization/payments-staging/0c9c2e41", "success");
    fake.add_check(&head, "lint", "completed", Some("failure"));
    let r = jobs.run(
        &[
            ("command", "deploy"),
            ("service", "payments"),
            ("revision", &head),
            ("wait", "true"),
            ("deployments", "true"),
            ("timeout", "2"),
        ],
        &fast,
    );
    r.assert_ok();
    let d = fake.deployments();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].environment, "staging");
    assert_eq!(d[0].sha, head);
    assert_eq!(d[0].statuses, ["in_progress", "success"]);
    assert_eq!(d[0].payload["service"], "payments");

    // A failing Flux status: deployment failure, exit 1, rollback to the rollback tag.
    let commit_on = |parent: &str, msg: &str| {
        let tree = fake.git(&["rev-parse", "main^{tree}"]);
        let c = fake.git(&[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@example.com",
            "commit-tree",
            &tree,
            "-p",
            parent,
            "-m",
            msg,
        ]);
        fake.git(&["update-ref", "refs/heads/main", &c]);
        c
    };
    let next = commit_on(&head, "next");
    fake.add_status(&next, "kustomization/payments-staging/0c9c2e41", "failure");
    let r = jobs.run(
        &[
            ("command", "deploy"),
            ("service", "payments"),
            ("revision", &next),
            ("wait", "true"),
            ("deployments", "true"),
            ("rollback-on-failure", "true"),
            ("timeout", "2"),
        ],
        &fast,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let d = fake.deployments();
    assert_eq!(d[1].statuses, ["in_progress", "failure"]);
    assert_eq!(fake.rev("payments-staging").unwrap(), head, "rolled back");

    // Flux reports on the newest commit only: success there counts for an older one it contains.
    let newest = commit_on(&next, "newest");
    fake.add_status(&newest, "kustomization/payments-production/0c9c2e41", "success");
    let r = jobs.run(
        &[
            ("command", "status"),
            ("service", "payments"),
            ("environment", "production"),
            ("revision", &next),
            ("timeout", "2"),
        ],
        &fast,
    );
    r.assert_ok();
    // The status gate on a promotion pull request gates the previous environment.
    fake.add_status(&head, "kustomization/payments-staging/0c9c2e41", "success");
    let ev = jobs.dir().join("pr.json");
    std::fs::write(&ev, serde_json::json!({"action": "opened", "pull_request": {"number": 7, "body": "x <!-- gitops-flow {\"command\":\"promote\",\"service\":\"payments\",\"environment\":\"production\",\"from\":\"staging\"} -->"}}).to_string()).unwrap();
    let evs = ev.display().to_string();
    let r = jobs.run(
        &[("command", "status"), ("timeout", "2")],
        &[
            ("GITOPS_FLOW_POLL_MS", "20"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_EVENT_PATH", &evs),
        ],
    );
    r.assert_ok();
    assert_eq!(r.out("environment"), "staging");
    fake.assert_clean();
}

#[test]
fn stage_to_a_direct_environment_waits_and_rolls_back() {
    // Seed 2: dev gets the version by a direct commit; the gate waits for Argo CD
    // at that commit and rolls dev back when it degrades.
    let (_t, dir) = scratch("make_file_repo.sh");
    let path = dir.display().to_string();
    let before = rev(&dir, "main");
    // Argo CD keeps reporting the revision before the commit (it never picked it up).
    let argo = FakeArgo::start(
        "payments-dev",
        vec![AppState::new("Healthy", "Synced", &before, "Succeeded")],
    );
    let mut a = vec![
        "stage",
        "--service",
        "payments",
        "--version",
        "1.3.0",
        "--wait",
        "--rollback-on-failure",
    ];
    a.extend(argo_args(&argo, &path));
    let r = run(&a, &FAST);
    // Healthy, but on the revision before the commit: never passes, times out, rolls back.
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("timed out"), "{}", r.stdout);
    assert!(git_raw(&dir, &["show", "HEAD:overlays/dev/payments/values.yaml"]).contains("tag: \"1.0.0\""));
    assert_eq!(
        git(&dir, &["rev-list", "--count", &format!("{before}..main")]),
        "3",
        "the stage commit, its rollback and the hold that keeps it"
    );
}

#[test]
fn a_merged_promotion_records_a_deployment_for_its_environment() {
    // Seed 3: a pull request that bumps a file-tracked environment merges; `deploy`
    // records the GitHub deployment at the merge and gates it.
    let (_seed, dir) = scratch("make_file_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    jobs.run(
        &[("command", "stage"), ("service", "payments"), ("version", "1.4.0")],
        &[],
    )
    .assert_ok();
    jobs.run(&[("command", "promote"), ("service", "payments")], &[])
        .assert_ok();
    let merged = fake.merge_pull(1);
    fake.add_status(&merged, "kustomization/payments-qa/0c9c2e41", "success");
    let ev = jobs.dir().join("closed.json");
    std::fs::write(&ev, fake.pull_event(1).to_string()).unwrap();
    let evs = ev.display().to_string();
    let r = jobs.run(
        &[
            ("command", "deploy"),
            ("deployments", "true"),
            ("wait", "true"),
            ("timeout", "2"),
        ],
        &[
            ("GITOPS_FLOW_POLL_MS", "20"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_EVENT_PATH", &evs),
        ],
    );
    r.assert_ok();
    assert_eq!(r.out("environment"), "qa");
    assert_eq!(r.out("service"), "payments");
    let d = fake.deployments();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].environment.as_str(), d[0].sha.as_str()), ("qa", merged.as_str()));
    assert_eq!(d[0].statuses, ["in_progress", "success"]);
    fake.assert_clean();
}

/// Issue 11: each look of the commit-status gate is bounded by the time the gate has
/// left (as the Argo CD gate's): a GitHub that does not answer does not hold
/// `status` past its `timeout`.
#[test]
fn a_silent_github_does_not_hold_the_status_gate_past_its_timeout() {
    let (_seed, dir) = scratch("make_tag_repo.sh");
    let fake = FakeGitHub::start(&dir);
    let jobs = Jobs::new(&fake);
    let head = fake.rev("main").unwrap();
    // Statuses and check runs (REST or GraphQL) take 30 s to come.
    for m in ["/status?", "/check-runs", "statusCheckRollup"] {
        fake.stall(m, 30_000);
    }
    let start = std::time::Instant::now();
    let r = jobs.run(
        &[
            ("command", "status"),
            ("service", "payments"),
            ("environment", "staging"),
            ("revision", &head),
            ("timeout", "2"),
        ],
        &FAST,
    );
    let took = start.elapsed();
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("timed out after 2s"), "{}", r.stdout);
    assert!(
        took < std::time::Duration::from_secs(12),
        "held for {took:?}: {}",
        r.stdout
    );
}
