//! The tag flow end to end through the real binary on the local backend.

mod support;

use support::{event_file, git, git_raw, refs, rev, run, scratch};

fn p(dir: &std::path::Path) -> String {
    dir.display().to_string()
}

#[test]
fn help_lists_every_command() {
    let r = run(&["--help"], &[]);
    r.assert_ok();
    for c in ["stage", "deploy", "promote", "rollback", "status", "report", "demo"] {
        assert!(r.stdout.lines().any(|l| l.trim_start().starts_with(&format!("{c}:")) || l.trim_start().starts_with(&format!("- {c}:"))), "{c} missing in\n{}", r.stdout);
    }
}

#[test]
fn demo_walks_through_the_seed() {
    let r = run(&["demo"], &[]);
    r.assert_ok();
    for step in [
        "Initial state",
        "Staging deployment",
        "Promote to production",
        "Rollback",
    ] {
        assert!(r.stdout.contains(step), "{step} missing:\n{}", r.stdout);
    }
    assert_eq!(r.out("changed"), "true");
    let report: serde_json::Value = serde_json::from_str(r.out("report")).unwrap();
    assert_eq!(report["payments"]["staging"]["version"], "1.1.0");
    assert_eq!(report["payments"]["production"]["version"], "1.0.0");
}

#[test]
fn stage_edits_only_app_version_and_is_idempotent() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let main = rev(&dir, "main");
    let r = run(
        &[
            "stage",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--version",
            "1.2.0",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
    assert_eq!(r.out("branch"), "gitops-flow/stage/payments");
    assert_eq!(r.out("previous-version"), "1.0.0");
    let head = rev(&dir, "gitops-flow/stage/payments");
    assert_eq!(r.out("commit"), head);
    assert_eq!(
        git(&dir, &["rev-parse", &format!("{head}^")]),
        main,
        "one commit on top of main"
    );
    let diff = git(&dir, &["diff", "-U0", &main, &head]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert_eq!(changed, ["-appVersion: \"1.0.0\"", "+appVersion: \"1.2.0\""]);
    let msg = git(&dir, &["log", "-1", "--format=%B", &head]);
    assert!(
        msg.contains("Gitops-Flow-Command: stage") && msg.contains("Gitops-Flow-Version: 1.2.0"),
        "{msg}"
    );
    assert_eq!(rev(&dir, "main"), main, "main untouched");

    // Same version again: nothing changes.
    let again = run(
        &[
            "stage",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--version",
            "1.2.0",
        ],
        &[],
    );
    again.assert_ok();
    assert_eq!(again.out("changed"), "false");
    assert_eq!(rev(&dir, "gitops-flow/stage/payments"), head);

    // Another version: the same branch, still one commit on top of main.
    let next = run(
        &[
            "stage",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--version",
            "1.3.0",
        ],
        &[],
    );
    next.assert_ok();
    let head2 = rev(&dir, "gitops-flow/stage/payments");
    assert_ne!(head2, head);
    assert_eq!(git(&dir, &["rev-parse", &format!("{head2}^")]), main);
    assert!(git(&dir, &["show", &format!("{head2}:charts/payments/Chart.yaml")]).contains("appVersion: \"1.3.0\""));

    // The CRLF chart keeps its line endings and quote style.
    run(
        &["stage", "--path", &p(&dir), "--service", "orders", "--version", "2.1.0"],
        &[],
    )
    .assert_ok();
    let chart = git_raw(&dir, &["show", "gitops-flow/stage/orders:charts/orders/Chart.yaml"]);
    assert_eq!(
        chart,
        "apiVersion: v2\r\nname: orders\r\nversion: 0.1.0\r\nappVersion: '2.1.0' # crlf file\r\n"
    );
}

#[test]
fn full_flow_deploy_promote_rollback() {
    let (t, dir) = scratch("make_tag_repo.sh");
    let initial = rev(&dir, "payments-staging");
    run(
        &[
            "stage",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--version",
            "1.2.0",
        ],
        &[],
    )
    .assert_ok();
    git(&dir, &["merge", "-q", "--ff-only", "gitops-flow/stage/payments"]);
    let merged = rev(&dir, "main");

    // deploy from a real pull_request.closed payload, patched to a merged stage PR.
    let event = event_file(
        t.path(),
        "pull_request.closed.3.json",
        serde_json::json!({"pull_request": {"merged": true, "merge_commit_sha": merged, "body": "Stage\n\n<!-- gitops-flow {\"command\":\"stage\",\"service\":\"payments\",\"version\":\"1.2.0\"} -->"}}),
    );
    let ev = event.display().to_string();
    let env = [
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_EVENT_PATH", ev.as_str()),
    ];
    let d = run(&["deploy", "--path", &p(&dir)], &env);
    d.assert_ok();
    assert_eq!(d.out("changed"), "true");
    assert_eq!(d.out("service"), "payments");
    assert_eq!(d.out("version"), "1.2.0");
    assert_eq!(rev(&dir, "payments-staging"), merged);
    assert_eq!(rev(&dir, "payments-staging-rollback"), initial);
    assert_eq!(rev(&dir, "orders-staging"), initial, "other services untouched");
    assert!(d.summary.contains("payments-staging"), "{}", d.summary);
    // deploy again: nothing to do.
    assert_eq!(
        run(&["deploy", "--path", &p(&dir)], &env).assert_ok().out("changed"),
        "false"
    );

    let pr = run(&["promote", "--path", &p(&dir), "--service", "payments"], &[]);
    pr.assert_ok();
    assert_eq!(pr.out("changed"), "true");
    assert_eq!(pr.out("tag"), "payments-production");
    assert_eq!(pr.out("revision"), merged);
    assert_eq!(pr.out("previous-revision"), initial);
    assert_eq!(pr.out("version"), "1.2.0");
    assert_eq!(pr.out("previous-version"), "1.0.0");
    assert_eq!(rev(&dir, "payments-production"), merged);
    assert_eq!(rev(&dir, "payments-production-rollback"), initial);
    let result: serde_json::Value = serde_json::from_str(pr.out("result")).unwrap();
    assert_eq!(result["tag"], "payments-production");
    assert_eq!(result["changed"], true);

    // Re-running keeps the rollback point (the seed's workflow destroys it).
    let again = run(&["promote", "--path", &p(&dir), "--service", "payments"], &[]);
    assert_eq!(again.assert_ok().out("changed"), "false");
    assert_eq!(rev(&dir, "payments-production-rollback"), initial);

    let rb = run(&["rollback", "--path", &p(&dir), "--service", "payments"], &[]);
    rb.assert_ok();
    assert_eq!(rb.out("changed"), "true");
    assert_eq!(rb.out("previous-revision"), merged);
    assert_eq!(rb.out("revision"), initial);
    assert_eq!(rev(&dir, "payments-production"), initial);
    assert_eq!(
        rev(&dir, "payments-production-rollback"),
        initial,
        "rollback leaves the rollback tag"
    );
    // Twice is a no-op.
    assert_eq!(
        run(&["rollback", "--path", &p(&dir), "--service", "payments"], &[])
            .assert_ok()
            .out("changed"),
        "false"
    );
    // Roll forward with previous-revision.
    let fwd = run(
        &[
            "rollback",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--revision",
            &merged,
        ],
        &[],
    );
    assert_eq!(fwd.assert_ok().out("changed"), "true");
    assert_eq!(rev(&dir, "payments-production"), merged);

    let report = run(&["report", "--path", &p(&dir)], &[]);
    report.assert_ok();
    let j: serde_json::Value = serde_json::from_str(report.out("report")).unwrap();
    assert_eq!(j["payments"]["production"]["version"], "1.2.0");
    assert_eq!(j["payments"]["production"]["rollback-revision"], initial.as_str());
    assert_eq!(j["orders"]["staging"]["version"], "2.0.0");
    assert!(report.summary.contains("| `payments` |"), "{}", report.summary);
}

#[test]
fn deploy_finds_services_from_changed_charts_and_ignores_other_merges() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    std::fs::write(dir.join("charts/orders/values.yaml"), "x: 1\n").unwrap();
    std::fs::write(dir.join("charts/payments/values.yaml"), "replicaCount: 3\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "two services"]);
    let head = rev(&dir, "main");
    let d = run(&["deploy", "--path", &p(&dir)], &[]);
    d.assert_ok();
    assert_eq!(rev(&dir, "payments-staging"), head);
    assert_eq!(rev(&dir, "orders-staging"), head);
    assert_eq!(d.out("service"), "orders,payments");

    std::fs::write(dir.join("README.md"), "docs\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "docs only"]);
    let before = refs(&dir);
    let n = run(&["deploy", "--path", &p(&dir)], &[]);
    n.assert_ok();
    assert_eq!(n.out("changed"), "false");
    assert!(n.stdout.contains("::notice::"), "{}", n.stdout);
    assert_eq!(refs(&dir), before);
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let (t, dir) = scratch("make_tag_repo.sh");
    // A revision that is not on main.
    git(&dir, &["checkout", "-q", "-b", "side"]);
    std::fs::write(dir.join("x.txt"), "x").unwrap();
    git(&dir, &["add", "x.txt"]);
    git(&dir, &["commit", "-q", "-m", "side"]);
    let side = rev(&dir, "side");
    git(&dir, &["checkout", "-q", "main"]);
    // A broken chart on a branch we point the config at.
    let before = refs(&dir);
    let path = p(&dir);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["promote", "--service", "payments", "--to", "qa"],
            "unknown environment `qa`",
        ),
        (vec!["promote", "--service", "../etc"], "not a valid name"),
        (
            vec!["rollback", "--service", "payments", "--revision", &side],
            "is not on `main`",
        ),
        (
            vec!["rollback", "--service", "payments", "--revision", "nope"],
            "not found",
        ),
        (
            vec!["stage", "--service", "payments", "--version", "1.0\nx: y"],
            "not valid",
        ),
        (vec!["stage", "--service", "payments"], "needs a version"),
        (
            vec!["stage", "--service", "ghost", "--version", "1.0.0"],
            "charts/ghost/Chart.yaml not found",
        ),
        (vec!["rollback", "--service", "payments"], "no rollback tag"),
        (
            vec!["promote", "--service", "payments", "--from", "production"],
            "last environment",
        ),
        (vec!["frobnicate"], "invalid value"),
        (
            vec![
                "stage",
                "--service",
                "payments",
                "--version",
                "1.0.0",
                "--dry-run",
                "maybe",
            ],
            "use `true` or `false`",
        ),
    ];
    for (args, needle) in cases {
        let mut a = args.clone();
        a.extend(["--path", path.as_str()]);
        run(&a, &[]).assert_input_error(needle);
        assert_eq!(refs(&dir), before, "{args:?} wrote something");
    }
    // Bad config: the error names file and line.
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        "environments:\n  - name: staging\n    trak: tag\n",
    )
    .unwrap();
    let r = run(&["promote", "--path", &path, "--service", "payments"], &[]);
    r.assert_input_error("gitops-flow.yaml");
    assert!(r.stdout.contains("::error file=gitops-flow.yaml,line="), "{}", r.stdout);
    std::fs::write(dir.join("gitops-flow.yaml"), "services:\n  payments: {}\n").unwrap();
    run(&["promote", "--path", &path, "--service", "orders"], &[]).assert_input_error("unknown service `orders`");
    std::fs::remove_file(dir.join("gitops-flow.yaml")).unwrap();
    // Broken YAML in the chart: exit 2 naming the file and line.
    std::fs::write(dir.join("charts/payments/Chart.yaml"), "appVersion: [1.0\nname: x\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "break the chart"]);
    let before = refs(&dir);
    let r = run(
        &["stage", "--path", &path, "--service", "payments", "--version", "1.1.0"],
        &[],
    );
    r.assert_input_error("charts/payments/Chart.yaml");
    assert!(
        r.stdout.contains("::error file=charts/payments/Chart.yaml,line="),
        "{}",
        r.stdout
    );
    assert_eq!(refs(&dir), before);
    drop(t);
}

#[test]
fn dry_run_writes_nothing() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    run(
        &[
            "stage",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--version",
            "1.2.0",
        ],
        &[],
    )
    .assert_ok();
    git(&dir, &["merge", "-q", "--ff-only", "gitops-flow/stage/payments"]);
    run(&["deploy", "--path", &p(&dir), "--service", "payments"], &[]).assert_ok();
    let before = refs(&dir);
    let r = run(
        &["promote", "--path", &p(&dir), "--service", "payments", "--dry-run"],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "false");
    assert_eq!(r.out("revision"), rev(&dir, "main"));
    assert_eq!(refs(&dir), before);
}

#[test]
fn inputs_come_from_input_variables_and_the_event() {
    let (t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    // INPUT_* with hyphens kept; empty strings count as not given.
    let r = run(
        &[],
        &[
            ("INPUT_COMMAND", "stage"),
            ("INPUT_SERVICE", "payments"),
            ("INPUT_VERSION", "1.4.0"),
            ("INPUT_PATH", &path),
            ("INPUT_BACKEND", "local"),
            ("INPUT_DRY-RUN", ""),
            ("INPUT_LABELS", ""),
        ],
    );
    r.assert_ok();
    assert_eq!(r.out("version"), "1.4.0");
    // repository_dispatch client_payload fills service and version.
    let ev = event_file(
        t.path(),
        "repository_dispatch.on-demand-test.0.json",
        serde_json::json!({"client_payload": {"service": "orders", "version": "2.5.0"}}),
    );
    let evs = ev.display().to_string();
    let r = run(
        &[],
        &[
            ("INPUT_COMMAND", "stage"),
            ("INPUT_SERVICE", ""),
            ("INPUT_PATH", &path),
            ("INPUT_BACKEND", "local"),
            ("GITHUB_EVENT_NAME", "repository_dispatch"),
            ("GITHUB_EVENT_PATH", &evs),
        ],
    );
    r.assert_ok();
    assert_eq!(r.out("service"), "orders");
    assert_eq!(r.out("version"), "2.5.0");
    // workflow_dispatch inputs.
    let ev = event_file(
        t.path(),
        "workflow_dispatch.0.json",
        serde_json::json!({"inputs": {"service": "payments", "version": "1.5.0"}}),
    );
    let evs = ev.display().to_string();
    let r = run(
        &["stage", "--path", &path],
        &[("GITHUB_EVENT_NAME", "workflow_dispatch"), ("GITHUB_EVENT_PATH", &evs)],
    );
    r.assert_ok();
    assert_eq!(r.out("version"), "1.5.0");
    // The token is masked (in GitHub Actions, the only runner that reads
    // `::add-mask::`) and never printed.
    let r = run(
        &["report", "--path", &path],
        &[
            ("INPUT_TOKEN", "ghs_supersecret123"),
            ("GITHUB_ACTIONS", "true"),
            ("INPUT_BACKEND", "local"),
        ],
    );
    r.assert_ok();
    assert!(r.stdout.contains("::add-mask::ghs_supersecret123"));
    let rest: String = r.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect();
    assert!(
        !rest.contains("ghs_supersecret123")
            && !r.stderr.contains("ghs_supersecret123")
            && !r.summary.contains("ghs_supersecret")
    );
    assert!(r.outputs.values().all(|v| !v.contains("ghs_supersecret123")));
}

#[test]
fn concurrent_promotions_of_different_services_do_not_interfere() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let head = rev(&dir, "main");
    run(
        &[
            "deploy",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--revision",
            &head,
        ],
        &[],
    )
    .assert_ok();
    run(
        &["deploy", "--path", &p(&dir), "--service", "orders", "--revision", &head],
        &[],
    )
    .assert_ok();
    let path = p(&dir);
    let before = (rev(&dir, "payments-production"), rev(&dir, "orders-production"));
    let handles: Vec<_> = ["payments", "orders", "payments", "orders"]
        .into_iter()
        .map(|s| {
            let path = path.clone();
            std::thread::spawn(move || run(&["promote", "--path", &path, "--service", s], &[]))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Identical concurrent promotions of one service: one moves the tag, the other
    // finds it moved (exit 0, `changed=false`) — the same outcome as run one after
    // the other.
    let (payments, orders): (Vec<_>, Vec<_>) = results.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, support::Run)>| v.into_iter().map(|(_, r)| r).collect::<Vec<_>>();
    support::assert_one_run_wrote(&strip(payments), &head, &before.0);
    support::assert_one_run_wrote(&strip(orders), &head, &before.1);
    assert_eq!(rev(&dir, "payments-production"), head);
    assert_eq!(rev(&dir, "orders-production"), head);
}

#[test]
fn a_workspace_owned_by_another_user_still_opens() {
    // The container runs as root on a workspace owned by the runner user.
    if !std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
    {
        support::skip_unless_ci("needs root to chown the workspace to another user");
        return;
    }
    let (_t, dir) = scratch("make_tag_repo.sh");
    let st = std::process::Command::new("chown")
        .args(["-R", "4242:4242"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let r = run(
        &[
            "promote",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--allow-unmerged",
        ],
        &[],
    );
    r.assert_ok();
    let r = run(
        &[
            "stage",
            "--path",
            &p(&dir),
            "--service",
            "payments",
            "--version",
            "9.9.9",
        ],
        &[],
    );
    r.assert_ok();
    assert_eq!(r.out("changed"), "true");
}

/// Issue 9 §6: with no services listed, `a` in `prod-eu` and `a-prod` in `eu` would
/// share tag `a-prod-eu` under `{service}-{env}`: refused at load, nothing written.
#[test]
fn environments_whose_tags_two_services_share_are_refused_before_anything_is_written() {
    let (_t, dir) = scratch("make_tag_repo.sh");
    let path = p(&dir);
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        "environments:\n  - name: prod-eu\n  - name: eu\n",
    )
    .unwrap();
    let before = refs(&dir);
    let head = rev(&dir, "main");
    for service in ["a", "a-prod"] {
        let r = run(
            &["deploy", "--path", &path, "--service", service, "--revision", &head],
            &[],
        );
        r.assert_input_error(
            "environments `prod-eu` and `eu` can give two services the same name: the tag of service `a` in `prod-eu` and the tag of service `a-prod` in `eu` are both `a-prod-eu`",
        );
        assert!(
            r.stdout.contains("::error file=gitops-flow.yaml,line=3"),
            "{}",
            r.stdout
        );
        assert_eq!(refs(&dir), before, "{service}: nothing written");
    }
    // The fix the message suggests is accepted.
    std::fs::write(
        dir.join("gitops-flow.yaml"),
        "environments:\n  - { name: prod-eu, tag: '{service}/{env}' }\n  - { name: eu, tag: '{service}/{env}' }\n",
    )
    .unwrap();
    run(
        &["deploy", "--path", &path, "--service", "payments", "--revision", &head],
        &[],
    )
    .assert_ok();
    assert_eq!(rev(&dir, "refs/tags/payments/prod-eu"), head);
}
